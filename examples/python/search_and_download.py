#!/usr/bin/env python3
"""Searches every network through Junction's gRPC API and downloads the best match.

Only the official packages (pip install grpcio grpcio-reflection): the message types come
from the gateway itself, through gRPC reflection, so no .proto files or generated code.
Usage: search_and_download.py [--server 127.0.0.1:4470] QUERY OUTPUT_FILE
"""
import argparse

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
args.add_argument("--server", default="127.0.0.1:4470")
args.add_argument("query")
args.add_argument("output")
a = args.parse_args()

channel = grpc.insecure_channel(a.server)
pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
M = lambda name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"junction.v1.{name}"))
call = lambda kind, name, req, resp: getattr(channel, kind)(
    f"/junction.v1.Gateway/{name}",
    request_serializer=M(req).SerializeToString,
    response_deserializer=M(resp).FromString,
)

items = {}
for ev in call("unary_stream", "Search", "SearchRequest", "SearchEvent")(
    M("SearchRequest")(query=a.query, timeout_ms=5000), timeout=30
):
    kind = ev.WhichOneof("event")
    if kind in ("item", "update"):
        items[getattr(ev, kind).id] = getattr(ev, kind)
if not items:
    raise SystemExit(f"nothing found for {a.query!r}")
best = max(items.values(), key=lambda i: i.score)
print(f"{len(items)} items; downloading {best.name!r} ({best.size} bytes)")

start = call("unary_unary", "StartTransfer", "StartTransferRequest", "Transfer")
transfer = start(M("StartTransferRequest")(item_id=best.id), timeout=30)
read = call("unary_stream", "ReadContent", "ReadContentRequest", "ContentChunk")
with open(a.output, "wb") as out:
    # Verified bytes stream as they arrive; the read waits for the rest of the download.
    for chunk in read(M("ReadContentRequest")(transfer_id=transfer.id), timeout=600):
        out.write(chunk.data)
    print(f"wrote {out.tell()} bytes to {a.output}")
