#!/bin/bash
# One transfer, two real networks (issue 11, "Real peers"): a real aMule (Debian
# amule-daemon 2.3.3) and a real libtorrent (python3-libtorrent) seed the same 24 MiB file,
# each capped at 2 MiB/s; an embedded Junction gateway fetches it from ONE magnet carrying
# both xt=urn:btih: and xt=urn:ed2k: (plus xl=, dn=, tr=). The driver
# (tests/examples/swarm_interop.rs) checks that the file is byte-identical, that the
# transfer's per-network counters show verified bytes from eD2k AND BitTorrent, and that
# no more than 1.10x the size was received.
# The same run checks the bridge (issue 12) both ways: a 20 MiB file only libtorrent seeds
# is fetched by the gateway, and aMule downloads it from Junction by the ed2k:// link
# GetLinks gives (first, before aMule served Junction anything); a file only aMule shares
# is fetched by the gateway, and a second libtorrent downloads it from Junction by the
# magnet `junction links ID --server ...` prints (the CLI binary, run as a user would). On demand: a third libtorrent, on the DHT only (bootstrapped from the
# gateway's node), seeds a torrent whose info dict carries sha1 and ed2k keys; aMule finds
# it by a search on Junction's index server, with no Junction transfer running, and
# downloads it from Junction, which fetches it meanwhile (this check runs first).
# BRIDGE_ONLY=ed2k or =demand runs only that check.
# Only 127.0.0.0/8 is used: Junction's own eD2k index server, BitTorrent tracker and DHT
# node; aMule has Kad, server-list updates and UPnP off; libtorrent has LSD, UPnP and
# NAT-PMP off, and its DHT (the third one only) knows no node but the gateway's.
# Usage: tests/interop/swarm_amule_libtorrent.sh
# Env: SWARM_MIB (24), SWARM_RATE_KIB (2048, each seed's cap), SWARM_TIMEOUT (90 s for the
# transfer), CARGO_TARGET_DIR, SWARM_INTEROP_BIN (a prebuilt driver), JUNCTION_BIN (a
# prebuilt `junction`), KEEP_WORK=1.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

export DEBIAN_FRONTEND=noninteractive
if ! command -v amuled >/dev/null || ! command -v amulecmd >/dev/null \
    || ! /usr/bin/python3 -c 'import libtorrent' 2>/dev/null; then
  echo "installing amule-daemon amule-utils python3-libtorrent" >&2
  apt-get update -qq || true
  apt-get install -y -qq amule-daemon amule-utils python3-libtorrent >/dev/null
fi

WORK=$(mktemp -d /tmp/junction-swarm.XXXXXX)
export SWARM_DIR=$WORK
export LT_PEER=$HERE/bt_lt_peer.py
export AMULE_BASE=$WORK/amule
export AMULE_START=$HERE/ed2k_amule_start.sh
export ED2K_SERVER_PORT=${ED2K_SERVER_PORT:-$((20000 + RANDOM % 20000))}
export AMULE_TCP=${AMULE_TCP:-$((ED2K_SERVER_PORT + 11))}
export AMULE_UDP=${AMULE_UDP:-$((ED2K_SERVER_PORT + 12))}
export AMULE_EC=${AMULE_EC:-$((ED2K_SERVER_PORT + 13))}
export LT_PORT=${LT_PORT:-$((ED2K_SERVER_PORT + 14))}

cleanup() {
  # The driver stops both seeds itself; this covers a driver that died or timed out.
  for f in "$WORK/lt.pid" "$WORK/lt-dht.pid"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  BASE=$AMULE_BASE bash "$HERE/ed2k_amule_stop.sh" swarm || true
  if [ -n "${KEEP_WORK:-}" ]; then
    echo "work dir kept: $WORK" >&2
  else
    rm -rf "$WORK" 2>/dev/null || { sleep 1; rm -rf "$WORK" 2>/dev/null || true; }
  fi
}
trap cleanup EXIT

cd "$ROOT"
BIN=${SWARM_INTEROP_BIN:-}
if [ -z "$BIN" ]; then
  bash "$HERE/build_debug.sh"
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/examples/swarm_interop
fi
# build_debug.sh builds the CLI too.
export JUNCTION_BIN=${JUNCTION_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/junction}
set +e
# Every wait in the driver is bounded (aMule's login 60 s, the transfer SWARM_TIMEOUT);
# this caps the whole run.
timeout -k 10 720 "$BIN"
rc=$?
[ $rc -eq 124 ] && echo "FAIL swarm: driver exceeded 720 s" >&2
set -e
if [ $rc -ne 0 ]; then
  echo "--- amuled log (tail) ---" >&2
  tail -30 "$AMULE_BASE/swarm/logfile" 2>/dev/null >&2 || tail -30 "$AMULE_BASE/swarm/stdout.log" >&2 || true
  echo "--- libtorrent log (tail) ---" >&2
  grep -v Deprecat "$WORK/lt.log" 2>/dev/null | tail -15 >&2 || true
fi
exit $rc
