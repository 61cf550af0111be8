#!/bin/bash
# The fetch of faults.sh's gw-part case, as a user makes it: `junction get` a .torrent on a
# running gateway, then `junction cat ID -o OUT`, which waits for every byte and writes the
# verified file (OUT appears only once complete). Meanwhile a progress line a second, from
# `junction transfers --json`: "  12.0s verified V/SIZE bytes, written W, peers P, ...".
# faults.sh reads the verified count for its partition trigger and its reports.
# Usage: faults_gw_get.sh JUNCTION_BIN SERVER TORRENT OUT
set -euo pipefail
J=$1 SERVER=$2 TORRENT=$3 OUT=$4
PY=/usr/bin/python3
j() { "$J" --server "$SERVER" "$@"; }
T0=$(date +%s.%N)
started=$(j get "$TORRENT" --json)
id=$($PY -c 'import json, sys; print(json.loads(sys.stdin.readline())["id"])' <<< "$started")
echo "transfer $id started"
progress() {
  while sleep 1; do
    j transfers --json 2>/dev/null | $PY -c '
import json, sys, time
id, t0 = sys.argv[1], float(sys.argv[2])
for line in sys.stdin:
    t = json.loads(line)
    if t["id"] != id:
        continue
    nets = "; ".join("%s %s, %d sources, %d dropped" % (n["network"], n["state"], n["sources"], n["sources_dropped"])
                     for n in t["per_network"])
    print("%7.1fs verified %d/%d bytes, written %d, peers %d, %d B/s, %s; %s"
          % (time.time() - t0, t["bytes_verified"], t["size"], t["bytes_written"], t["peers"],
             t["rate_bytes_per_sec"], t["state"], nets), flush=True)' "$id" "$T0" || true
  done
}
progress &
PROGRESS=$!
trap 'kill $PROGRESS 2>/dev/null || true' EXIT
trap 'exit 143' TERM INT
j cat "$id" -o "$OUT"
