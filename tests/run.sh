#!/usr/bin/env bash
# Runs every test: the workspace's unit, property and integration tests, then each
# interop script under tests/interop/ (they install the real peers they need).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-targets --locked
for script in tests/interop/*.sh; do
    [ -e "$script" ] || continue
    echo "== interop: $script"
    bash "$script"
done
