#!/usr/bin/env bash
# Runs every Junction benchmark in release mode and prints one table (issue 6).
#   bench/run.sh [harness options]      e.g. bench/run.sh --dl-mib 64 --read-mib 1024
# 1. criterion: search merge throughput (its figure goes into the table);
# 2. the harness: first-item delay, downloads per network, ReadContent, RSS of the real
#    `junction serve` binary (built here in release mode).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p junction
cargo bench -p junction-bench --bench merge -- --noplot
cargo build --release -p junction-bench --bin harness
target="${CARGO_TARGET_DIR:-target}"
exec "$target/release/harness" --junction "$target/release/junction" "$@"
