#!/bin/bash
# eD2k interop with a real aMule daemon (Debian amule-daemon 2.3.3), on 127.0.0.0/8 only.
# Installs aMule if missing, builds the Junction driver (adapters/ed2k/examples/amule_interop.rs)
# and runs it; the driver starts Junction's index server, a Junction eD2k adapter and amuled,
# then checks both directions with a 10 MiB file and a file of exactly 9,728,000 bytes.
# Usage: tests/interop/ed2k_amule.sh      (env: CARGO_TARGET_DIR, ED2K_SERVER_PORT, AMULE_*)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

if ! command -v amuled >/dev/null || ! command -v amulecmd >/dev/null; then
  echo "installing amule-daemon amule-utils" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq amule-daemon amule-utils >/dev/null
fi

WORK=$(mktemp -d /tmp/junction-ed2k-amule.XXXXXX)
export ED2K_INTEROP_DIR=$WORK
export AMULE_BASE=$WORK/amule
export AMULE_START=$HERE/ed2k_amule_start.sh
export ED2K_SERVER_PORT=${ED2K_SERVER_PORT:-$((20000 + RANDOM % 20000))}
export AMULE_TCP=${AMULE_TCP:-$((ED2K_SERVER_PORT + 11))}
export AMULE_UDP=${AMULE_UDP:-$((ED2K_SERVER_PORT + 12))}
export AMULE_EC=${AMULE_EC:-$((ED2K_SERVER_PORT + 13))}
# Control run: the same aMule downloading a 9,728,000-byte file from a second (LowID) aMule.
export ED2K_INTEROP_CONTROL=${ED2K_INTEROP_CONTROL:-1}

cleanup() {
  BASE=$AMULE_BASE bash "$HERE/ed2k_amule_stop.sh" interop || true
  BASE=$AMULE_BASE bash "$HERE/ed2k_amule_stop.sh" control || true
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

cd "$ROOT"
cargo build -q -p junction-ed2k --example amule_interop
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/examples/amule_interop
set +e
"$BIN"
rc=$?
set -e
if [ $rc -ne 0 ]; then
  echo "--- amuled log (tail) ---" >&2
  tail -40 "$AMULE_BASE/interop/logfile" 2>/dev/null >&2 || tail -40 "$AMULE_BASE/interop/stdout.log" >&2 || true
fi
exit $rc
