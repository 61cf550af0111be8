#!/usr/bin/env python3
"""Seeds fuzz/corpus/TARGET from what the repository already holds: captured traffic
(adapters/*/tests/data), golden vectors and literals in the adapters' tests (byte strings,
byte arrays, strings, raw strings), and hex layouts in the protocol specs. Usage:
seed.py TARGET OUT_DIR. Writes at most 3000 distinct inputs of at most 64 KiB each; the
fuzzer's merge (cmin) keeps the ones that add coverage."""

import glob
import hashlib
import os
import re
import struct
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SPECS = os.path.normpath(os.path.join(ROOT, "..", "shared", "specs"))
MAX_LEN = 64 * 1024
MAX_FILES = 3000


def read(path):
    with open(path, "rb") as f:
        return f.read()


def rs_files(*globs):
    out = []
    for g in globs:
        out += sorted(glob.glob(os.path.join(ROOT, g), recursive=True))
    return out


ESC = {"n": b"\n", "r": b"\r", "t": b"\t", "0": b"\0", "\\": b"\\", '"': b'"', "'": b"'"}


def unescape(body):
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            n = body[i + 1]
            if n == "x" and i + 3 < len(body):
                try:
                    out.append(int(body[i + 2 : i + 4], 16))
                    i += 4
                    continue
                except ValueError:
                    pass
            if n == "\n":  # line continuation: skip the newline and leading spaces
                i += 2
                while i < len(body) and body[i] in " \t":
                    i += 1
                continue
            if n == "u" and body[i + 2 : i + 3] == "{":
                end = body.find("}", i)
                try:
                    out += chr(int(body[i + 3 : end], 16)).encode()
                    i = end + 1
                    continue
                except ValueError:
                    pass
            out += ESC.get(n, n.encode())
            i += 2
            continue
        out += c.encode()
        i += 1
    return bytes(out)


STR = re.compile(r'(?<![A-Za-z0-9_#])b?"((?:[^"\\]|\\.)*)"', re.S)
RAW = re.compile(r'b?r(#+)"(.*?)"\1', re.S)
ARR = re.compile(r"\[((?:\s*(?:0x[0-9A-Fa-f]{1,2}|\d{1,3})(?:u8)?\s*,)+\s*(?:0x[0-9A-Fa-f]{1,2}|\d{1,3})?(?:u8)?\s*)\]")


def literals(paths):
    """Byte strings, strings, raw strings and byte arrays of the given Rust sources."""
    out = []
    for p in paths:
        src = read(p).decode("utf-8", "replace")
        for m in RAW.finditer(src):
            out.append(m.group(2).encode())
        for m in STR.finditer(src):
            out.append(unescape(m.group(1)))
        for m in ARR.finditer(src):
            try:
                nums = [int(x.replace("u8", ""), 0) for x in re.findall(r"0x[0-9A-Fa-f]+|\d+", m.group(1))]
                if all(n < 256 for n in nums) and len(nums) >= 2:
                    out.append(bytes(nums))
            except ValueError:
                pass
    return [x for x in out if len(x) >= 2]


def spec_hex(name):
    """Runs of hex byte pairs in a spec's code blocks (`E3 09 00 00 00 ...`)."""
    path = os.path.join(SPECS, name)
    if not os.path.exists(path):
        return []
    out = []
    for line in read(path).decode("utf-8", "replace").splitlines():
        m = re.findall(r"\b[0-9A-Fa-f]{2}\b", line)
        if len(m) >= 4 and re.fullmatch(r"[\s0-9A-Fa-f|`:]*", line.split("#")[0].split("//")[0] or " "):
            out.append(bytes(int(x, 16) for x in m))
    return out


GNUT_DATA = os.path.join(ROOT, "adapters/gnutella/tests/data")


def captures(pattern="*.bin", deflate=False):
    out = []
    for p in sorted(glob.glob(os.path.join(GNUT_DATA, pattern))):
        if p.endswith(".deflate.bin") != deflate:
            continue
        out.append(read(p))
    return out


def after_handshake(data):
    """The descriptor stream after the last handshake block, if the capture has one."""
    if data[:9] == b"GNUTELLA " or data[:8] == b"GNUTELLA":
        cut = data.rfind(b"\r\n\r\n")
        return data[cut + 4 :] if cut >= 0 else data
    return data


def descriptors(stream):
    """(type, payload) of each whole descriptor of a bare stream."""
    out = []
    i = 0
    while i + 23 <= len(stream):
        kind = stream[i + 16]
        (n,) = struct.unpack_from("<I", stream, i + 19)
        if n > len(stream) - i - 23:
            break
        out.append((kind, stream[i + 23 : i + 23 + n]))
        i += 23 + n
    return out


def header_values(data):
    out = []
    for line in data.split(b"\r\n"):
        if b": " in line and len(line) < 4096:
            out.append(line.split(b": ", 1)[1])
    return out


def bencode(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    items = sorted((k.encode() if isinstance(k, str) else k, x) for k, x in v.items())
    return b"d" + b"".join(bencode(k) + bencode(x) for k, x in items) + b"e"


def v2_torrents():
    """Small v2-only and hybrid torrents (BEP 52 layout; hashes are not real ones, the
    structure is what the fuzzer needs to start from)."""
    out = []
    pl = 16384
    for hybrid in (False, True):
        for lengths in ([5], [pl * 3 + 7], [pl * 2, 10, 0]):
            tree = {}
            layers = {}
            files = []
            for n, length in enumerate(lengths):
                root = hashlib.sha256(b"root%d" % n).digest()
                entry = {"length": length}
                if length > 0:
                    entry["pieces root"] = root
                if length > pl:
                    layers[root] = b"".join(
                        hashlib.sha256(b"%d" % i).digest() for i in range((length + pl - 1) // pl)
                    )
                tree["f%d.bin" % n] = {"": entry}
                files.append({"length": length, "path": ["f%d.bin" % n]})
            info = {"file tree": tree, "meta version": 2, "name": "t", "piece length": pl}
            if hybrid:
                total = sum(lengths)
                info["files"] = files
                info["pieces"] = b"\x11" * 20 * ((total + pl - 1) // pl)
            t = {"announce": "http://127.0.0.1:6969/announce", "info": info}
            if layers:
                t["piece layers"] = layers
            out.append(bencode(t))
    return out


def gnut_src():
    return literals(rs_files("adapters/gnutella/src/**/*.rs", "adapters/gnutella/tests/*.rs"))


def seeds(target):
    bt_src = lambda *g: literals(rs_files(*g))
    if target in ("bencode", "bt_krpc", "bt_metainfo", "bt_metainfo_v2", "bt_tracker", "core_link"):
        s = bt_src(
            "adapters/core/src/bencode.rs",
            "adapters/core/src/link/**/*.rs",
            "adapters/core/src/torrent.rs",
            "adapters/bittorrent/src/krpc*.rs",
            "adapters/bittorrent/src/krpc/*.rs",
            "adapters/bittorrent/src/metainfo*.rs",
            "adapters/bittorrent/src/metainfo/*.rs",
            "adapters/bittorrent/src/tracker/*.rs",
            "adapters/bittorrent/src/compact.rs",
            "adapters/bittorrent/src/magnet.rs",
            "adapters/bittorrent/tests/*.rs",
        )
        s += [read(p) for p in glob.glob(os.path.join(ROOT, "adapters/bittorrent/tests/data/*"))]
        s += v2_torrents() + spec_hex("bittorrent.md")
        return s
    if target == "bt_peer_message":
        return (
            bt_src("adapters/bittorrent/src/wire/**/*.rs", "adapters/bittorrent/tests/**/*.rs")
            + [read(p) for p in glob.glob(os.path.join(ROOT, "adapters/bittorrent/tests/data/*.bin"))]
            + spec_hex("bittorrent.md")
        )
    if target in ("bt_magnet", "query_parse"):
        return bt_src(
            "adapters/bittorrent/src/magnet.rs",
            "adapters/core/src/query/**/*.rs",
            "adapters/core/src/link/**/*.rs",
            "adapters/ed2k/src/link.rs",
        )
    if target == "bt_http":
        return bt_src("adapters/bittorrent/src/net/http.rs", "adapters/bittorrent/src/net/tracker_client.rs", "adapters/bittorrent/tests/trackers.rs")
    if target == "bt_torznab":
        return bt_src("adapters/bittorrent/src/net/torznab.rs", "gateway/src/**/torznab*.rs")
    if target.startswith("ed2k_"):
        s = literals(rs_files("adapters/ed2k/src/**/*.rs", "adapters/ed2k/tests/*.rs"))
        s += spec_hex("ed2k.md")
        if target in ("ed2k_link",):
            s += bt_src("adapters/core/src/link/**/*.rs")
        if target in ("ed2k_message", "ed2k_server_udp", "ed2k_search_results"):
            # the targets read a selector byte first (and an opcode for the messages):
            # frames and datagrams become selector + opcode + payload
            more = []
            for x in s:
                if len(x) >= 6 and x[0] in (0xE3, 0xC5, 0xD4) and target == "ed2k_message":
                    more += [bytes([sel]) + x[5:] for sel in (0, 1, 2, 0x80, 0x82)]
                elif len(x) >= 2 and x[0] in (0xE3, 0xC5) and target == "ed2k_server_udp":
                    more += [bytes([sel]) + x[1:] for sel in (0, 0x80)]
                else:
                    more.append(b"\x00" + x)
            s = more
        return s
    if target == "gnutella_descriptor":
        return [after_handshake(c) for c in captures()] + spec_hex("gnutella.md")
    if target == "gnutella_handshake":
        return [c[:8192] for c in captures()] + gnut_src()
    if target == "gnutella_browse":
        return [c for c in captures("06h*")] + [c[c.find(b"\r\n\r\n") + 4 :] for c in captures("06h*.b2a.bin")] + gnut_src()
    if target == "gnutella_thex":
        return captures("06k*") + [c[c.find(b"\r\n\r\n") + 4 :] for c in captures("06k*.b2a.bin")] + gnut_src()
    if target == "gnutella_ggep":
        out = gnut_src()
        for c in captures():
            for kind, p in descriptors(after_handshake(c)):
                i = p.find(b"\xc3")
                if i >= 0:
                    out.append(p[i:])
        return out
    if target == "gnutella_qrp":
        out = []
        for c in captures():
            seq = b"".join(struct.pack("<H", len(p)) + p for kind, p in descriptors(after_handshake(c)) if kind == 0x30 and len(p) < 65536)
            if seq:
                out.append(seq)
        return out
    if target == "gnutella_link":
        return captures(deflate=True)
    if target == "gateway_http":
        out = literals(rs_files("gateway/src/http/**/*.rs", "tests/it/http*.rs", "tests/it/torznab*.rs"))
        for c in captures("06*"):
            out += header_values(c)
        return out
    if target == "http_range":
        out = literals(rs_files("adapters/core/src/http_range.rs", "gateway/src/http/content.rs", "gateway/tests/*.rs"))
        for c in captures("06*"):
            out += [v for v in header_values(c) if v.startswith(b"bytes")]
        return out
    if target == "gnutella_http_fields":
        out = gnut_src()
        for c in captures("06*"):
            out += header_values(c)
        return out
    raise SystemExit("seed.py: no seeds known for target %r" % target)


def main():
    target, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    seen = set()
    for data in seeds(target):
        data = data[:MAX_LEN]
        if not data:
            continue
        h = hashlib.sha1(data).hexdigest()
        if h in seen:
            continue
        seen.add(h)
        with open(os.path.join(out_dir, "seed-" + h), "wb") as f:
            f.write(data)
        if len(seen) >= MAX_FILES:
            break
    print("seed.py: %s: %d seed inputs in %s" % (target, len(seen), out_dir))


if __name__ == "__main__":
    main()
