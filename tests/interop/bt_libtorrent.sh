#!/bin/bash
# Interop: Junction's BitTorrent adapter against libtorrent (python3-libtorrent) on loopback.
#   (a) libtorrent seeds a file behind Junction's tracker; Junction downloads it from the .torrent
#   (b) Junction downloads the same from a magnet (metadata from libtorrent over ut_metadata)
#   (c) libtorrent downloads a torrent Junction seeds
#   (h) the gateway fetches a multi-file torrent from libtorrent into its folder, and
#       seeds it from there to another libtorrent
#   (i) between the two steps of (h): one file of that torrent, by its SHA-1 alone (the link
#       an eD2k or Gnutella user has), comes from libtorrent through the torrent that holds it
#   (v2) BEP 52: Junction downloads a v2-only torrent libtorrent made, from its .torrent (with
#       piece layers) and from its btmh magnet (piece layers over hash requests), then seeds
#       it alone to libtorrent, by the .torrent and by the magnet (whose piece layers
#       libtorrent gets from Junction with hash requests); and libtorrent fetches a hybrid
#       Junction made over a connection Junction upgrades to v2 (BEP 52 reserved bit)
#   (v2g) after (h): the gateway fetches a v2-only folder by its btmh magnet alone
# Bytes are compared with cmp. Only 127.0.0.0/8 is used; no DHT, UPnP, LSD or public trackers.
# Env: BT_INTEROP_MB (default 256), CARGO_TARGET_DIR, KEEP=1 keeps the work dir,
#      BT_V2_ONLY=1 runs (v2) alone (about 10 s after the build).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
MB=${BT_INTEROP_MB:-256}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have no package lists yet.
if ! /usr/bin/python3 -c 'import libtorrent' 2>/dev/null \
    || ! command -v qbittorrent-nox >/dev/null || ! command -v transmission-daemon >/dev/null; then
    apt-get update -qq || true
fi
if ! /usr/bin/python3 -c 'import libtorrent' 2>/dev/null; then
    apt-get install -y python3-libtorrent >/dev/null
fi
if [ "${BT_QBITTORRENT:-1}" = 1 ] && ! command -v qbittorrent-nox >/dev/null; then
    apt-get install -y qbittorrent-nox >/dev/null || echo "qbittorrent-nox not installable; (g) skipped"
fi
if [ "${BT_TRANSMISSION:-1}" = 1 ] && ! command -v transmission-daemon >/dev/null; then
    apt-get install -y transmission-daemon transmission-cli >/dev/null || echo "transmission not installable; (d) skipped"
fi
echo "libtorrent $(/usr/bin/python3 -c 'import libtorrent; print(libtorrent.__version__)')"

(cd "$ROOT" && cargo build --release -q -p junction-bittorrent --example bt_interop)
BIN=$CARGO_TARGET_DIR/release/examples/bt_interop

WORK=$(mktemp -d /tmp/bt-interop.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    sleep 1
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ "${KEEP:-0}" = 1 ]; then
        echo "work dir kept: $WORK"
    else
        # Daemons may still be writing their state for a moment.
        rm -rf "$WORK" 2>/dev/null || { sleep 2; rm -rf "$WORK" 2>/dev/null || true; }
    fi
}
trap cleanup EXIT

pick_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
TPORT=$(pick_port); UPORT=$(pick_port)
"$BIN" tracker 127.0.0.1:$TPORT 127.0.0.1:$UPORT > "$WORK/tracker.log" 2>&1 &
PIDS+=($!)
sleep 0.5
TRACKER=http://127.0.0.1:$TPORT/announce
echo "tracker $TRACKER (udp 127.0.0.1:$UPORT)"

FAIL=0
echo "== (v2) BEP 52: a v2-only torrent: Junction fetches it from libtorrent, then libtorrent from Junction alone (.torrent and btmh magnet each way)"
mkdir -p "$WORK/v2-seed" "$WORK/j-v2" "$WORK/lt-v2-get" "$WORK/lt-v2-mag"
head -c 3000000 /dev/urandom > "$WORK/v2-seed/v2.bin"
V2IH=$(/usr/bin/python3 "$HERE/bt_lt_peer.py" create "$WORK/v2-seed/v2.bin" "$WORK/v2.torrent" "$TRACKER" v2)
echo "libtorrent v2-only torrent, SHA-256 info-hash $V2IH"
# And a folder: its files each start a piece (pads between them), the last piece is short.
mkdir -p "$WORK/v2-multi/album/cd2" "$WORK/j-v2multi" "$WORK/lt-v2-multi"
head -c 100000 /dev/urandom > "$WORK/v2-multi/album/a.flac"
echo "five" > "$WORK/v2-multi/album/cover.txt"
head -c 1234567 /dev/urandom > "$WORK/v2-multi/album/cd2/b.flac"
/usr/bin/python3 "$HERE/bt_lt_peer.py" create "$WORK/v2-multi/album" "$WORK/v2multi.torrent" "$TRACKER" v2 >/dev/null
/usr/bin/python3 "$HERE/bt_lt_peer.py" run --ip 127.0.0.19 --port 6901 --seed "$WORK/v2.torrent:$WORK/v2-seed" \
    --seed "$WORK/v2multi.torrent:$WORK/v2-multi" > "$WORK/lt-v2-seed.log" 2>&1 &
LT_V2=$!
PIDS+=($LT_V2)
sleep 1
# Junction stays up after the fetch, seeding, for the two libtorrent fetches below.
"$BIN" fetch 127.0.0.20:0 "$WORK/j-v2/v2.bin" --torrent "$WORK/v2.torrent" --timeout 60 --linger 120 > "$WORK/v2.log" 2>&1 &
J_V2=$!
PIDS+=($J_V2)
for _ in $(seq 1 300); do grep -q "seeding for\|RESULT" "$WORK/v2.log" && break; kill -0 $J_V2 2>/dev/null || break; sleep 0.2; done
grep -E "RESULT" "$WORK/v2.log" || true
if grep -q "seeding for" "$WORK/v2.log" && cmp "$WORK/v2-seed/v2.bin" "$WORK/j-v2/v2.bin"; then
    echo "(v2) PASS: Junction fetched the v2-only torrent (SHA-256 Merkle checks), bytes match"
    V2MAG="magnet:?xt=urn:btmh:1220$V2IH&tr=$(/usr/bin/python3 -c 'import urllib.parse,sys; print(urllib.parse.quote(sys.argv[1], safe=""))' "$TRACKER")"
    mkdir -p "$WORK/j-v2m"
    if "$BIN" fetch 127.0.0.23:0 "$WORK/j-v2m/v2.bin" --magnet "$V2MAG" --timeout 60 > "$WORK/v2m.log" 2>&1 \
        && cmp "$WORK/v2-seed/v2.bin" "$WORK/j-v2m/v2.bin"; then
        echo "(v2) PASS: Junction fetched it by its btmh magnet (info dict over ut_metadata, piece layers over hash requests), bytes match"
    else
        echo "(v2) FAIL: Junction by btmh magnet"; tail -5 "$WORK/v2m.log"; FAIL=1
    fi
    # The folder, into one file of the torrent's layout (pads included); then seeded on.
    "$BIN" fetch 127.0.0.24:0 "$WORK/j-v2multi/all.bin" --torrent "$WORK/v2multi.torrent" --timeout 60 --linger 120 \
        > "$WORK/v2multi.log" 2>&1 &
    J_V2M=$!
    PIDS+=($J_V2M)
    for _ in $(seq 1 300); do grep -q "seeding for" "$WORK/v2multi.log" && break; kill -0 $J_V2M 2>/dev/null || break; sleep 0.2; done
    if grep -q "seeding for" "$WORK/v2multi.log" && /usr/bin/python3 -c 'import libtorrent as lt, os, sys
fs = lt.torrent_info(sys.argv[1]).files(); got = open(sys.argv[2], "rb").read()
for i in range(fs.num_files()):
    if fs.file_flags(i) & lt.file_storage.flag_pad_file: continue
    want = open(os.path.join(sys.argv[3], fs.file_path(i)), "rb").read()
    assert got[fs.file_offset(i):fs.file_offset(i) + len(want)] == want, fs.file_path(i)' \
        "$WORK/v2multi.torrent" "$WORK/j-v2multi/all.bin" "$WORK/v2-multi"; then
        echo "(v2) PASS: Junction fetched a v2-only folder, each file at its piece-aligned place"
    else
        echo "(v2) FAIL: Junction, a v2-only folder"; tail -5 "$WORK/v2multi.log"; FAIL=1
    fi
    # The libtorrent seed leaves: what libtorrent gets next comes from Junction.
    kill -INT $LT_V2 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 $LT_V2 2>/dev/null || break; sleep 0.1; done
    if timeout 60 /usr/bin/python3 "$HERE/bt_lt_peer.py" run --ip 127.0.0.21 --port 6902 --get "$WORK/v2.torrent:$WORK/lt-v2-get" \
        --exit-when-done > "$WORK/lt-v2-get.log" 2>&1 && cmp "$WORK/v2-seed/v2.bin" "$WORK/lt-v2-get/v2.bin"; then
        echo "(v2) PASS: libtorrent fetched the v2-only torrent from Junction (.torrent), bytes match"
    else
        echo "(v2) FAIL: libtorrent from Junction (.torrent)"; grep -v Deprec "$WORK/lt-v2-get.log" | tail -5; FAIL=1
    fi
    if LT_ALL=1 timeout 60 /usr/bin/python3 "$HERE/bt_lt_peer.py" run --ip 127.0.0.22 --port 6903 --get "$V2MAG:$WORK/lt-v2-mag" \
        --exit-when-done --verbose > "$WORK/lt-v2-mag.log" 2>&1 && cmp "$WORK/v2-seed/v2.bin" "$WORK/lt-v2-mag/v2.bin" \
        && grep -q "<== HASHES" "$WORK/lt-v2-mag.log"; then
        echo "(v2) PASS: libtorrent fetched it from Junction by its btmh magnet, piece layers from Junction's hashes: $(grep -c '<== HASHES' "$WORK/lt-v2-mag.log") answer(s), bytes match"
    else
        echo "(v2) FAIL: libtorrent from Junction (btmh magnet)"; grep "HASH\|error" "$WORK/lt-v2-mag.log" | tail -5; FAIL=1
    fi
    if timeout 60 /usr/bin/python3 "$HERE/bt_lt_peer.py" run --ip 127.0.0.25 --port 6904 --get "$WORK/v2multi.torrent:$WORK/lt-v2-multi" \
        --exit-when-done > "$WORK/lt-v2-multi.log" 2>&1 && diff -r "$WORK/v2-multi/album" "$WORK/lt-v2-multi/album"; then
        echo "(v2) PASS: libtorrent fetched the v2-only folder from Junction, every file matches"
    else
        echo "(v2) FAIL: libtorrent, the v2-only folder from Junction"; grep -v Deprec "$WORK/lt-v2-multi.log" | tail -5; FAIL=1
    fi
    kill -INT $J_V2M 2>/dev/null || true
else
    echo "(v2) FAIL: Junction could not fetch the v2-only torrent"; tail -10 "$WORK/v2.log"; FAIL=1
fi
kill -INT $J_V2 2>/dev/null || true
# Junction's own torrents are v1+v2 hybrids: libtorrent offers v2 (reserved bit 0x10) and
# Junction upgrades the connection by answering with the v2 info-hash.
mkdir -p "$WORK/j-hybrid" "$WORK/lt-hybrid"
head -c 2000000 /dev/urandom > "$WORK/j-hybrid/hybrid.bin"
"$BIN" seed 127.0.0.26:0 "$WORK/j-hybrid/hybrid.bin" "$WORK/hybrid.torrent" "$TRACKER" > "$WORK/j-hybrid.log" 2>&1 &
J_HY=$!
PIDS+=($J_HY)
for _ in $(seq 1 100); do [ -s "$WORK/hybrid.torrent" ] && break; sleep 0.2; done
if LT_ALL=1 timeout 60 /usr/bin/python3 "$HERE/bt_lt_peer.py" run --ip 127.0.0.27 --port 6905 --get "$WORK/hybrid.torrent:$WORK/lt-hybrid" \
    --exit-when-done --verbose > "$WORK/lt-hybrid.log" 2>&1 && cmp "$WORK/j-hybrid/hybrid.bin" "$WORK/lt-hybrid/hybrid.bin" \
    && grep -q "<== EXTENSIONS.*FAST v2 extension" "$WORK/lt-hybrid.log"; then
    echo "(v2) PASS: libtorrent fetched Junction's hybrid over a connection upgraded to v2, bytes match"
else
    echo "(v2) FAIL: libtorrent, Junction's hybrid in v2"; grep "EXTENSIONS\|error" "$WORK/lt-hybrid.log" | tail -5; FAIL=1
fi
kill -INT $J_HY 2>/dev/null || true
if [ "${BT_V2_ONLY:-0}" = 1 ]; then
    exit $FAIL
fi

mkdir -p "$WORK/lt-seed" "$WORK/j-a" "$WORK/j-b" "$WORK/j-seed" "$WORK/lt-get"
echo "creating a ${MB} MiB file"
head -c $((MB * 1024 * 1024)) /dev/urandom > "$WORK/lt-seed/interop.bin"
IH=$(/usr/bin/python3 "$HERE/bt_lt_peer.py" create "$WORK/lt-seed/interop.bin" "$WORK/lt.torrent" "$TRACKER")
SIZE=$(stat -c %s "$WORK/lt-seed/interop.bin")
echo "libtorrent torrent $IH"

/usr/bin/python3 "$HERE/bt_lt_peer.py" run --ip 127.0.0.2 --port 6881 --seed "$WORK/lt.torrent:$WORK/lt-seed" \
    --status-file "$WORK/lt-seed.json" > "$WORK/lt-seed.log" 2>&1 &
PIDS+=($!)
sleep 2

echo "== (a) Junction downloads from libtorrent (.torrent)"
if "$BIN" fetch 127.0.0.3:0 "$WORK/j-a/interop.bin" --torrent "$WORK/lt.torrent" --timeout 600 | tee "$WORK/a.log" | grep -E "RESULT|stats|metadata|Note"; then
    cmp "$WORK/lt-seed/interop.bin" "$WORK/j-a/interop.bin" && echo "(a) PASS: bytes match" || { echo "(a) FAIL: bytes differ"; FAIL=1; }
else
    echo "(a) FAIL"; tail -20 "$WORK/a.log"; FAIL=1
fi

echo "== (b) Junction downloads from libtorrent (magnet, metadata over ut_metadata)"
MAGNET="magnet:?xt=urn:btih:$IH&tr=$(/usr/bin/python3 -c 'import urllib.parse,sys; print(urllib.parse.quote(sys.argv[1], safe=""))' "$TRACKER")"
if "$BIN" fetch 127.0.0.4:0 "$WORK/j-b/interop.bin" --magnet "$MAGNET" --size "$SIZE" --timeout 600 | tee "$WORK/b.log" | grep -E "RESULT|stats|metadata|Note"; then
    cmp "$WORK/lt-seed/interop.bin" "$WORK/j-b/interop.bin" && echo "(b) PASS: bytes match" || { echo "(b) FAIL: bytes differ"; FAIL=1; }
else
    echo "(b) FAIL"; tail -20 "$WORK/b.log"; FAIL=1
fi

echo "== (c) libtorrent downloads from Junction"
head -c $((MB * 1024 * 1024)) /dev/urandom > "$WORK/j-seed/junction.bin"
"$BIN" seed 127.0.0.5:0 "$WORK/j-seed/junction.bin" "$WORK/j.torrent" "$TRACKER" > "$WORK/j-seed.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$WORK/j.torrent" ] && break; sleep 0.2; done
head -1 "$WORK/j-seed.log"
T0=$(date +%s.%N)
if timeout 600 /usr/bin/python3 "$HERE/bt_lt_peer.py" run --ip 127.0.0.6 --port 6882 --get "$WORK/j.torrent:$WORK/lt-get" \
    --exit-when-done --status-file "$WORK/lt-get.json" > "$WORK/lt-get.log" 2>&1; then
    T1=$(date +%s.%N)
    grep DONE "$WORK/lt-get.log" || true
    echo "libtorrent fetched $SIZE bytes from Junction in $(echo "$T1 - $T0" | bc) s ($(echo "scale=1; $SIZE / ($T1 - $T0) / 1000000" | bc) MB/s incl. start-up)"
    cmp "$WORK/j-seed/junction.bin" "$WORK/lt-get/junction.bin" && echo "(c) PASS: bytes match" || { echo "(c) FAIL: bytes differ"; FAIL=1; }
else
    echo "(c) FAIL"; tail -20 "$WORK/lt-get.log"; tail -5 "$WORK/j-seed.log"; FAIL=1
fi

echo "== (e) DHT: Junction and libtorrent, each bootstrapped only from the other; magnet without trackers or size"
mkdir -p "$WORK/j-e"
/usr/bin/python3 "$HERE/bt_lt_peer.py" run --ip 127.0.0.9 --port 6895 --seed "$WORK/lt.torrent:$WORK/lt-seed" \
    --dht --bootstrap 127.0.0.11:7001 --dht-every 3 --status-file "$WORK/lt-dht.json" > "$WORK/lt-dht.log" 2>&1 &
PIDS+=($!)
sleep 1
# No xl= and no --size: Junction fetches the metadata alone first for the size, then the data.
if "$BIN" fetch 127.0.0.11:0 "$WORK/j-e/interop.bin" --magnet "magnet:?xt=urn:btih:$IH" \
    --dht 127.0.0.11:7001 --bootstrap 127.0.0.9:6895 --timeout 180 | tee "$WORK/e.log" | grep -E "RESULT|stats|metadata|size lookup"; then
    cmp "$WORK/lt-seed/interop.bin" "$WORK/j-e/interop.bin" && echo "(e) PASS: found over the DHT, bytes match" || { echo "(e) FAIL: bytes differ"; FAIL=1; }
    echo "libtorrent DHT nodes: $(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dht_nodes"])' "$WORK/lt-dht.json")"
else
    echo "(e) FAIL"; tail -20 "$WORK/e.log"; FAIL=1
fi

echo "== (f) DHT: libtorrent finds Junction's peer over the DHT (magnet without trackers) and downloads"
"$BIN" seed 127.0.0.12:0 "$WORK/j-seed/junction.bin" "$WORK/j-dht.torrent" http://127.0.0.1:9/announce \
    --dht 127.0.0.12:7002 --bootstrap 127.0.0.13:6896 > "$WORK/j-dht-seed.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$WORK/j-dht.torrent" ] && break; sleep 0.2; done
JIH=$(head -1 "$WORK/j-dht-seed.log" | awk '{print $2}')
mkdir -p "$WORK/lt-get-dht"
if timeout 180 /usr/bin/python3 "$HERE/bt_lt_peer.py" run --ip 127.0.0.13 --port 6896 --dht --bootstrap 127.0.0.12:7002 \
    --dht-every 3 --get "magnet:?xt=urn:btih:$JIH:$WORK/lt-get-dht" --exit-when-done > "$WORK/lt-get-dht.log" 2>&1; then
    grep DONE "$WORK/lt-get-dht.log" || true
    cmp "$WORK/j-seed/junction.bin" "$WORK/lt-get-dht/junction.bin" && echo "(f) PASS: libtorrent found Junction over the DHT, bytes match" || { echo "(f) FAIL: bytes differ"; FAIL=1; }
else
    echo "(f) FAIL"; grep -v Deprec "$WORK/lt-get-dht.log" | tail -5; FAIL=1
fi

if [ "${BT_QBITTORRENT:-1}" = 1 ] && command -v qbittorrent-nox >/dev/null; then
    echo "== (g) qBittorrent downloads from Junction"
    WEBUI=$(pick_port)
    BASE="$WORK/qbittorrent" "$HERE/bt_qbittorrent_start.sh" qb 127.0.0.14 6897 "$WEBUI"
    PIDS+=($(cat "$WORK/qbittorrent/qb/pid"))
    mkdir -p "$WORK/qb-get"
    T0=$(date +%s.%N)
    curl -sf -F "torrents=@$WORK/j.torrent" -F "savepath=$WORK/qb-get" "http://127.0.0.1:$WEBUI/api/v2/torrents/add" >/dev/null
    OK=0
    for _ in $(seq 1 1200); do
        P=$(curl -sf "http://127.0.0.1:$WEBUI/api/v2/torrents/info" | /usr/bin/python3 -c 'import json,sys; t=json.load(sys.stdin); print(t[0]["progress"] if t else 0)' 2>/dev/null || echo 0)
        [ "$P" = "1" ] && { OK=1; break; }
        sleep 0.25
    done
    T1=$(date +%s.%N)
    if [ $OK = 1 ] && cmp "$WORK/j-seed/junction.bin" "$WORK/qb-get/junction.bin"; then
        echo "qBittorrent fetched $SIZE bytes from Junction in $(echo "$T1 - $T0" | bc) s"
        echo "(g) PASS: bytes match"
    else
        echo "(g) FAIL (progress $P)"; tail -5 "$WORK/qbittorrent/qb/stdout.log"; FAIL=1
    fi
fi

if [ "${BT_TRANSMISSION:-1}" = 1 ] && command -v transmission-daemon >/dev/null; then
    echo "== (d) Junction downloads from Transmission (Transmission never dials 127.x: Junction dials it)"
    TPORT2=$(pick_port); RPC=$(pick_port)
    "$BIN" tracker 127.0.0.1:$TPORT2 > "$WORK/tracker2.log" 2>&1 &
    PIDS+=($!)
    TRACKER2=http://127.0.0.1:$TPORT2/announce
    /usr/bin/python3 "$HERE/bt_lt_peer.py" create "$WORK/lt-seed/interop.bin" "$WORK/tr.torrent" "$TRACKER2" >/dev/null
    BASE="$WORK/transmission" BIND_IP=127.0.0.7 "$HERE/bt_transmission_start.sh" tr 51413 "$RPC"
    PIDS+=($(cat "$WORK/transmission/tr/pid"))
    transmission-remote 127.0.0.1:$RPC -a "$WORK/tr.torrent" -w "$WORK/lt-seed" >/dev/null
    for _ in $(seq 1 300); do
        transmission-remote 127.0.0.1:$RPC -l | grep -q "Seeding\|Idle" && break; sleep 0.2
    done
    transmission-remote 127.0.0.1:$RPC -l | sed -n 2p
    mkdir -p "$WORK/j-d"
    if "$BIN" fetch 127.0.0.8:0 "$WORK/j-d/interop.bin" --torrent "$WORK/tr.torrent" --timeout 600 | tee "$WORK/d.log" | grep -E "RESULT|stats"; then
        cmp "$WORK/lt-seed/interop.bin" "$WORK/j-d/interop.bin" && echo "(d) PASS: bytes match" || { echo "(d) FAIL: bytes differ"; FAIL=1; }
    else
        echo "(d) FAIL"; tail -20 "$WORK/d.log"; FAIL=1
    fi
fi

echo "== (h) a multi-file torrent from libtorrent, through the gateway (junction serve + get), saved as its folder; then seeded from it"
bash "$HERE/build_debug.sh"
JUNCTION=$CARGO_TARGET_DIR/debug/junction
mkdir -p "$WORK/lt-multi/Show S2/extras" "$WORK/lt-multi-get"
head -c 3000000 /dev/urandom > "$WORK/lt-multi/Show S2/e1.mkv"
head -c 1500001 /dev/urandom > "$WORK/lt-multi/Show S2/extras/e2.mkv"
echo "shot on a phone" > "$WORK/lt-multi/Show S2/notes.txt"
# Each file named by its own SHA-1 (BEP 47), so the gateway knows where a file's bytes lie.
IHM=$(/usr/bin/python3 "$HERE/bt_lt_peer.py" create "$WORK/lt-multi/Show S2" "$WORK/multi.torrent" "$TRACKER" file-sha1)
/usr/bin/python3 "$HERE/bt_lt_peer.py" run --ip 127.0.0.16 --port 6899 --seed "$WORK/multi.torrent:$WORK/lt-multi" \
    > "$WORK/lt-multi.log" 2>&1 &
LT_MULTI=$!
PIDS+=($LT_MULTI)
GRPC=$(pick_port); JBT=$(pick_port)
cat > "$WORK/gw.toml" <<TOML
[gateway]
listen = "127.0.0.1:$GRPC"
[http]
enabled = false
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
for _ in $(seq 1 100); do "$JUNCTION" --server "127.0.0.1:$GRPC" transfers >/dev/null 2>&1 && break; sleep 0.1; done
MAGNET_M="magnet:?xt=urn:btih:$IHM&tr=$(/usr/bin/python3 -c 'import urllib.parse,sys; print(urllib.parse.quote(sys.argv[1], safe=""))' "$TRACKER")"
J() { "$JUNCTION" --server "127.0.0.1:$GRPC" "$@"; }
# The state of the folder's transfer ($HID), or of every transfer before it is known.
state_of() {
    J transfers --json | /usr/bin/python3 -c 'import json,sys
print(" ".join(t["state"] for t in map(json.loads, sys.stdin) if sys.argv[1] in ("", t["id"])))' "${HID:-}"
}
# First one file only (as a user picks in qBittorrent), then every file.
if timeout 180 "$JUNCTION" --server "127.0.0.1:$GRPC" get "$MAGNET_M" --files 0 --wait > "$WORK/h.log" 2>&1; then
    HID=$(J transfers --json | /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["id"])')
    J files "$HID" | tee "$WORK/h-files.log"
    FIRST=$(J files "$HID" --json | /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["path"])')
    if [ "$(grep -c ' get ' "$WORK/h-files.log")" = 1 ] && cmp "$WORK/lt-multi/Show S2/$FIRST" "$WORK/gw/downloads/Show S2/$FIRST"; then
        echo "(h) PASS: only file 0 ($FIRST) was asked for, and it matches"
    else
        echo "(h) FAIL: files after --files 0"; FAIL=1
    fi
    # (i) Another file of the torrent, by its SHA-1 and size alone.
    case "$FIRST" in extras/e2.mkv) OTHER=e1.mkv ;; *) OTHER=extras/e2.mkv ;; esac
    SRC_I="$WORK/lt-multi/Show S2/$OTHER"
    LINK_I=$(/usr/bin/python3 -c 'import base64,hashlib,os,sys; p = sys.argv[1]
print("magnet:?xt=urn:sha1:%s&xl=%d&dn=%s" % (base64.b32encode(hashlib.sha1(open(p, "rb").read()).digest()).decode(), os.path.getsize(p), os.path.basename(p)))' "$SRC_I")
    if timeout 120 "$JUNCTION" --server "127.0.0.1:$GRPC" get "$LINK_I" --wait > "$WORK/i.log" 2>&1 \
        && cmp "$SRC_I" "$WORK/gw/downloads/$(basename "$OTHER")"; then
        BY_BT=$(J transfers --json | /usr/bin/python3 -c 'import json,sys
for t in map(json.loads, sys.stdin):
    if t["name"] == sys.argv[1]:
        print(sum(n["bytes_verified"] for n in t["per_network"] if n["network"] == "bittorrent"), t["size"])' "$(basename "$OTHER")")
        echo "(i) PASS: $OTHER by its SHA-1 alone came through the torrent that holds it, bytes match; verified by BitTorrent, of the size: $BY_BT"
    else
        echo "(i) FAIL: $OTHER by its SHA-1 alone"; tail -5 "$WORK/i.log"; { grep -i "torrent that holds\|error" "$WORK/gw.log" || true; } | tail -5; FAIL=1
    fi
    J files "$HID" --all > /dev/null
    for _ in $(seq 1 600); do [ "$(state_of)" = complete ] && break; sleep 0.2; done
fi
if [ "$(state_of)" = complete ] && diff -r "$WORK/lt-multi/Show S2" "$WORK/gw/downloads/Show S2"; then
    echo "(h) PASS: the gateway saved the folder, every file matches"
    # The original seed leaves; a second libtorrent gets the torrent from the gateway alone.
    kill -INT $LT_MULTI 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 $LT_MULTI 2>/dev/null || break; sleep 0.1; done
    kill -0 $LT_MULTI 2>/dev/null && { echo "(h) the first libtorrent did not stop"; FAIL=1; }
    if timeout 120 /usr/bin/python3 "$HERE/bt_lt_peer.py" run --ip 127.0.0.18 --port 6900 \
        --get "$WORK/multi.torrent:$WORK/lt-multi-get" --exit-when-done > "$WORK/lt-multi-get.log" 2>&1 \
        && diff -r "$WORK/lt-multi/Show S2" "$WORK/lt-multi-get/Show S2"; then
        echo "(h) PASS: libtorrent fetched the folder from the gateway's files"
    else
        echo "(h) FAIL: libtorrent could not fetch it from the gateway"; tail -5 "$WORK/lt-multi-get.log"; tail -5 "$WORK/gw.log"; FAIL=1
    fi
else
    echo "(h) FAIL"; tail -5 "$WORK/h.log"; tail -20 "$WORK/gw.log"; ls -R "$WORK/gw" | head -20; FAIL=1
fi

echo "== (v2g) the gateway fetches libtorrent's v2-only folder by its btmh magnet alone (no size)"
/usr/bin/python3 "$HERE/bt_lt_peer.py" run --ip 127.0.0.28 --port 6906 --seed "$WORK/v2multi.torrent:$WORK/v2-multi" \
    > "$WORK/lt-v2g.log" 2>&1 &
PIDS+=($!)
V2MIH=$(/usr/bin/python3 -c 'import libtorrent as lt, sys; print(lt.torrent_info(sys.argv[1]).info_hashes().v2)' "$WORK/v2multi.torrent")
V2GMAG="magnet:?xt=urn:btmh:1220$V2MIH&tr=$(/usr/bin/python3 -c 'import urllib.parse,sys; print(urllib.parse.quote(sys.argv[1], safe=""))' "$TRACKER")"
if timeout 120 "$JUNCTION" --server "127.0.0.1:$GRPC" get "$V2GMAG" --wait > "$WORK/v2g.log" 2>&1 \
    && diff -r "$WORK/v2-multi/album" "$WORK/gw/downloads/album"; then
    echo "(v2g) PASS: the gateway saved the v2-only folder from its btmh magnet, every file matches"
else
    echo "(v2g) FAIL"; tail -5 "$WORK/v2g.log"; tail -10 "$WORK/gw.log"; FAIL=1
fi

exit $FAIL
