#!/bin/bash
# Interop: real players against the gateway's /content (issue 13, "Players").
#   A real libtorrent seeds a 2-minute MP4 (its index, the moov box, at the end, as ffmpeg
#   writes it by default) capped at 500 kB/s. `junction serve` (BitTorrent only) streams it
#   by its magnet at /content/{magnet}, which starts the transfer.
#   (a) ffprobe (Debian ffmpeg) reads the duration while less than half of it is verified
#   (b) mpv --vo=null --ao=null --frames=50 plays from it
#   (c) range edge cases with curl: a suffix, 0-1, past the end (416), HEAD
# Only 127.0.0.0/8 is used; libtorrent has DHT, LSD, UPnP and NAT-PMP off, and the gateway
# runs no DHT, eD2k or Gnutella.
# Env: CARGO_TARGET_DIR, KEEP=1 keeps the work dir.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

export DEBIAN_FRONTEND=noninteractive
if ! command -v ffprobe >/dev/null || ! command -v mpv >/dev/null \
    || ! /usr/bin/python3 -c 'import libtorrent' 2>/dev/null; then
    echo "installing ffmpeg mpv python3-libtorrent" >&2
    apt-get update -qq || true
    apt-get install -y -qq --no-install-recommends ffmpeg mpv python3-libtorrent >/dev/null
fi
bash "$HERE/build_debug.sh"
JUNCTION=$CARGO_TARGET_DIR/debug/junction

WORK=$(mktemp -d /tmp/players.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    sleep 1
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ "${KEEP:-0}" = 1 ]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
pick_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
quote() { /usr/bin/python3 -c 'import urllib.parse,sys; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }

mkdir -p "$WORK/seed"
ffmpeg -v error -f lavfi -i testsrc=duration=120:size=320x240:rate=25 \
    -f lavfi -i sine=frequency=440:duration=120 \
    -c:v libx264 -preset ultrafast -b:v 1M -c:a aac -pix_fmt yuv420p "$WORK/seed/clip.mp4"
SIZE=$(stat -c %s "$WORK/seed/clip.mp4")
IH=$(/usr/bin/python3 "$HERE/bt_lt_peer.py" create "$WORK/seed/clip.mp4" "$WORK/clip.torrent")
LTPORT=$(pick_port)
/usr/bin/python3 "$HERE/bt_lt_peer.py" run --ip 127.0.0.21 --port "$LTPORT" \
    --seed "$WORK/clip.torrent:$WORK/seed" --upload-limit 500000 > "$WORK/lt.log" 2>&1 &
PIDS+=($!)
echo "libtorrent seeds clip.mp4 ($SIZE bytes, btih $IH) at 500 kB/s"

GRPC=$(pick_port); HTTP=$(pick_port); JBT=$(pick_port)
cat > "$WORK/gw.toml" <<TOML
[gateway]
listen = "127.0.0.1:$GRPC"
[http]
listen = "127.0.0.1:$HTTP"
[ed2k]
enabled = false
[gnutella]
enabled = false
[bittorrent]
listen = "127.0.0.1:$JBT"
[bittorrent.dht]
enabled = false
TOML
"$JUNCTION" serve --config "$WORK/gw.toml" --data-dir "$WORK/gw" > "$WORK/gw.log" 2>&1 &
PIDS+=($!)
J() { "$JUNCTION" --server "127.0.0.1:$GRPC" "$@"; }
for _ in $(seq 1 100); do J transfers >/dev/null 2>&1 && break; sleep 0.1; done
sleep 1 # libtorrent is listening by now

MAGNET="magnet:?xt=urn:btih:$IH&dn=clip.mp4&x.pe=127.0.0.21:$LTPORT"
URL="http://127.0.0.1:$HTTP/content/$(quote "$MAGNET")"
verified_share() {
    J transfers --json | /usr/bin/python3 -c '
import json, sys
for line in sys.stdin:
    t = json.loads(line)
    if t.get("name") == "clip.mp4":
        print("%.3f" % (int(t.get("bytes_verified", 0)) / max(int(t.get("size", 1)), 1)))
        break
else:
    print("none")'
}

FAIL=0
echo "== (a) ffprobe reads the duration while the transfer is below 50%"
T0=$(date +%s.%N)
if D=$(timeout 60 ffprobe -v error -show_entries format=duration -of default=nw=1:nk=1 "$URL" 2> "$WORK/ffprobe.err"); then
    T1=$(date +%s.%N)
    AT=$(verified_share)
    echo "ffprobe: duration $D s after $(echo "$T1 - $T0" | bc) s, with $AT of the file verified"
    if /usr/bin/python3 -c "import sys; d=float('$D'); s=float('$AT'); sys.exit(0 if abs(d-120)<1 and s<0.5 else 1)"; then
        echo "(a) PASS"
    else
        echo "(a) FAIL: duration $D (want 120), verified share $AT (want < 0.5)"; FAIL=1
    fi
else
    echo "(a) FAIL: ffprobe"; tail -5 "$WORK/ffprobe.err"; tail -20 "$WORK/gw.log"; FAIL=1
fi

echo "== (b) mpv plays 50 frames"
if timeout 90 mpv --no-config --really-quiet --vo=null --ao=null --frames=50 "$URL" > "$WORK/mpv.log" 2>&1; then
    echo "mpv: played 50 frames with $(verified_share) of the file verified"
    echo "(b) PASS"
else
    echo "(b) FAIL: mpv exit $?"; tail -10 "$WORK/mpv.log"; FAIL=1
fi

echo "== (c) ranges: a suffix, 0-1, past the end, HEAD"
status_of() { curl -s -o "$WORK/body" -D "$WORK/head" -w '%{http_code}' "$@" "$URL"; }
head_field() { grep -i "^$1:" "$WORK/head" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
S=$(status_of -r 0-1)
R1=$(head_field content-range); N1=$(stat -c %s "$WORK/body")
cmp -s "$WORK/body" <(head -c 2 "$WORK/seed/clip.mp4") && B1=same || B1=differ
S2=$(status_of -r -100)
R2=$(head_field content-range); N2=$(stat -c %s "$WORK/body")
cmp -s "$WORK/body" <(tail -c 100 "$WORK/seed/clip.mp4") && B2=same || B2=differ
S3=$(status_of -r "$SIZE-")
R3=$(head_field content-range)
S4=$(status_of -I)
L4=$(head_field content-length); A4=$(head_field accept-ranges); T4=$(head_field content-type)
echo "0-1: $S $R1 ($N1 bytes, $B1); -100: $S2 $R2 ($N2 bytes, $B2); $SIZE-: $S3 $R3; HEAD: $S4 length $L4, ranges $A4, type $T4"
if [ "$S" = 206 ] && [ "$R1" = "bytes 0-1/$SIZE" ] && [ "$B1" = same ] \
    && [ "$S2" = 206 ] && [ "$R2" = "bytes $((SIZE - 100))-$((SIZE - 1))/$SIZE" ] && [ "$B2" = same ] \
    && [ "$S3" = 416 ] && [ "$R3" = "bytes */$SIZE" ] \
    && [ "$S4" = 200 ] && [ "$L4" = "$SIZE" ] && [ "$A4" = bytes ] && [ "$T4" = video/mp4 ]; then
    echo "(c) PASS"
else
    echo "(c) FAIL"; FAIL=1
fi

echo "== the whole file, once verified, is the seed's"
for _ in $(seq 1 60); do [ "$(verified_share)" = "1.000" ] && break; sleep 1; done
if curl -sf "$URL" -o "$WORK/whole.mp4" && cmp "$WORK/whole.mp4" "$WORK/seed/clip.mp4"; then
    echo "PASS: bytes match"
else
    echo "FAIL: the streamed file differs"; FAIL=1
fi
exit $FAIL
