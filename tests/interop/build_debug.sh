#!/usr/bin/env bash
# Builds the debug targets the interop scripts run (the CLI and the examples) exactly as
# `cargo test --workspace --all-targets` builds them, so that after the tests this is a
# no-op. Building one package alone unifies features differently and compiles some thirty
# crates again; with the other builds that once filled CI's disk.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q --workspace --all-targets --locked
