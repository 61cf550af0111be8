#!/bin/bash
# Interop check 4 of issue 12 (the bridge to Gnutella), with real processes: a real
# libtorrent (python3-libtorrent) seeds a file only it has; Junction A (`junction serve`,
# BitTorrent + a Gnutella ultrapeer) downloads it by magnet; Junction B (`junction serve`,
# Gnutella only, a leaf whose one peer is A) searches, must get a hit naming the file's
# SHA-1 (urn:sha1) and Tiger tree root (urn:tree:tiger), and downloads it over Gnutella;
# the bytes must match. The driver is tests/examples/gnutella_interop.rs.
# (A live gtk-gnutella is not part of it: no registry ships it, shared/peers/README.md.)
# Only 127.0.0.0/8 is used: no DHT, tracker, web cache or eD2k; libtorrent has DHT, LSD,
# UPnP and NAT-PMP off.
# Env: GNUT_KIB (file size, default 6144), CARGO_TARGET_DIR, GNUT_INTEROP_BIN (a prebuilt
# driver), JUNCTION_BIN (a prebuilt `junction`), KEEP_WORK=1.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

export DEBIAN_FRONTEND=noninteractive
if ! /usr/bin/python3 -c 'import libtorrent' 2>/dev/null; then
  echo "installing python3-libtorrent" >&2
  apt-get update -qq || true
  apt-get install -y -qq python3-libtorrent >/dev/null
fi

BIN=${GNUT_INTEROP_BIN:-}
if [ -z "$BIN" ] || [ -z "${JUNCTION_BIN:-}" ]; then
  bash "$HERE/build_debug.sh"
fi
BIN=${BIN:-$CARGO_TARGET_DIR/debug/examples/gnutella_interop}
export JUNCTION_BIN=${JUNCTION_BIN:-$CARGO_TARGET_DIR/debug/junction}
export LT_PEER=$HERE/bt_lt_peer.py
WORK=$(mktemp -d /tmp/junction-gnutella.XXXXXX)
export GNUT_DIR=$WORK
cleanup() {
  # The driver stops what it started; this covers a driver that died or timed out.
  for f in "$WORK"/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  if [ -n "${KEEP_WORK:-}" ]; then
    echo "work dir kept: $WORK" >&2
  else
    rm -rf "$WORK" 2>/dev/null || { sleep 1; rm -rf "$WORK" 2>/dev/null || true; }
  fi
}
trap cleanup EXIT

set +e
# Every wait in the driver is bounded (A's fetch 60 s, the offer 30 s, B's link 30 s, its
# searches 40 s, its fetch 60 s); this caps the whole run.
timeout -k 10 300 "$BIN"
rc=$?
set -e
[ $rc -eq 124 ] && echo "FAIL gnutella: driver exceeded 300 s" >&2
exit $rc
