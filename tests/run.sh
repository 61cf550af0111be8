#!/usr/bin/env bash
# Runs every test: the workspace's unit, property and integration tests, then the interop
# scripts against real peers (each installs the peer it needs from Debian's packages).
set -euo pipefail
cd "$(dirname "$0")/.."
# The flood test (cli/tests/flood.rs) holds 10,000 connections open: lift the soft limit on
# open files to the hard one.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# A clean clone gains nothing from incremental state, which doubled the target folder.
export CARGO_INCREMENTAL=0
cargo test --workspace --all-targets --locked
for script in tests/interop/bt_libtorrent.sh tests/interop/ed2k_amule.sh \
    tests/interop/swarm_amule_libtorrent.sh tests/interop/gnutella_bridge.sh \
    tests/interop/fronts_python.sh tests/interop/players.sh tests/interop/faults.sh; do
    echo "== interop: $script"
    bash "$script"
done
