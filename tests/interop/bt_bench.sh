#!/bin/bash
# Benchmark: libtorrent seeds a BENCH_MB (default 1024) MiB torrent on loopback; Junction, then a
# libtorrent leecher, download it from that seeder. Prints times, MB/s and the ratio, plus one
# core's SHA-1 speed (openssl speed sha1) for reference. Loopback only.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
MB=${BENCH_MB:-1024}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
/usr/bin/python3 -c 'import libtorrent' 2>/dev/null || apt-get install -y python3-libtorrent >/dev/null
(cd "$ROOT" && cargo build --release -q -p junction-bittorrent --example bt_interop)
BIN=$CARGO_TARGET_DIR/release/examples/bt_interop
WORK=$(mktemp -d /tmp/bt-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done; sleep 1; for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK" 2>/dev/null || true; }
trap cleanup EXIT
pick_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
TP=$(pick_port)
"$BIN" tracker 127.0.0.1:$TP > "$WORK/tracker.log" 2>&1 & PIDS+=($!)
mkdir -p "$WORK/seed" "$WORK/j" "$WORK/lt"
head -c $((MB * 1024 * 1024)) /dev/urandom > "$WORK/seed/bench.bin"
SIZE=$(stat -c %s "$WORK/seed/bench.bin")
/usr/bin/python3 "$HERE/bt_lt_peer.py" create "$WORK/seed/bench.bin" "$WORK/b.torrent" "http://127.0.0.1:$TP/announce" >/dev/null
/usr/bin/python3 "$HERE/bt_lt_peer.py" run --ip 127.0.0.2 --port 6891 --seed "$WORK/b.torrent:$WORK/seed" > "$WORK/seed.log" 2>&1 & PIDS+=($!)
sleep 2
# Warm the page cache of the seeder's file so both leechers see the same conditions.
cat "$WORK/seed/bench.bin" > /dev/null

T0=$(date +%s.%N)
"$BIN" fetch 127.0.0.3:0 "$WORK/j/bench.bin" --torrent "$WORK/b.torrent" --timeout 900 | grep RESULT
T1=$(date +%s.%N)
cmp "$WORK/seed/bench.bin" "$WORK/j/bench.bin" && echo "junction: bytes match"
JT=$(echo "$T1 - $T0" | bc)
rm -f "$WORK/j/bench.bin"

T0=$(date +%s.%N)
/usr/bin/python3 "$HERE/bt_lt_peer.py" run --ip 127.0.0.4 --port 6892 --get "$WORK/b.torrent:$WORK/lt" --exit-when-done > "$WORK/lt.log" 2>&1
T1=$(date +%s.%N)
cmp "$WORK/seed/bench.bin" "$WORK/lt/bench.bin" && echo "libtorrent: bytes match"
LT=$(echo "$T1 - $T0" | bc)

SHA=$(openssl speed -seconds 2 -bytes 16384 sha1 2>/dev/null | awk '/^sha1/ {print $2}' | tr -d k)
echo "size $SIZE bytes"
echo "junction:   $JT s  $(echo "scale=1; $SIZE / $JT / 1000000" | bc) MB/s (process start to verified end)"
echo "libtorrent: $LT s  $(echo "scale=1; $SIZE / $LT / 1000000" | bc) MB/s (process start to done)"
echo "junction/libtorrent speed ratio: $(echo "scale=2; $LT / $JT" | bc)"
[ -n "$SHA" ] && echo "openssl sha1 one core: $(echo "scale=1; $SHA / 1000" | bc) MB/s; junction at $(echo "scale=0; 100 * $SIZE / $JT / ($SHA * 1000)" | bc)% of it"
