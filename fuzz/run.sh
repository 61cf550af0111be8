#!/usr/bin/env bash
# Runs one fuzz target on one core with the installed stable toolchain.
#
#   fuzz/run.sh TARGET SECONDS [extra libFuzzer flags...]
#
# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer=address, sancov); RUSTC_BOOTSTRAP=1
# lets the stable compiler accept them. Installs cargo-fuzz (a tool, not a dependency of
# any crate) if it is missing, seeds fuzz/corpus/TARGET from the repository's captures and
# golden vectors when that folder is empty (seed.py), also loads fuzz/regressions/TARGET
# (kept crash inputs), and stops after SECONDS. Limits: 512 MB RSS, 256 MB per malloc,
# 5 s per input; a crash, hang or over-sized allocation lands in fuzz/artifacts/TARGET/.
# Prints the executions and the final coverage (cov: edges, ft: features) at the end.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 TARGET SECONDS [libFuzzer flags...]" >&2
    exit 2
fi
target=$1
seconds=$2
shift 2
cd "$(dirname "$0")"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
if ! grep -q "^name = \"$target\"$" Cargo.toml; then
    echo "$0: no fuzz target called $target (see fuzz/Cargo.toml)" >&2
    exit 2
fi

corpus=corpus/$target
mkdir -p "$corpus" "regressions/$target" "artifacts/$target"
if [ -z "$(ls -A "$corpus")" ]; then
    python3 seed.py "$target" "$corpus"
fi

# Debug assertions and overflow checks on, AddressSanitizer on: cargo fuzz's defaults.
# FUZZ_NO_BUILD=1 runs the binary built last (while the tree does not build).
if [ "${FUZZ_NO_BUILD:-}" != 1 ]; then
    RUSTC_BOOTSTRAP=1 cargo fuzz build "$target"
fi
bin=target/x86_64-unknown-linux-gnu/release/$target

log=$(mktemp "/tmp/fuzz-$target.XXXXXX.log")
start=$(date +%s)
# What `cargo fuzz run TARGET` runs, plus the limits. One process on one core: libFuzzer's
# default without -jobs/-workers (with -jobs=1 -workers=1 it forks one child that logs
# to fuzz-0.log, the same work in a second process).
set +e
"$bin" -artifact_prefix="artifacts/$target/" "$corpus" "regressions/$target" \
    -max_total_time="$seconds" -rss_limit_mb=512 -malloc_limit_mb=256 -timeout=5 \
    -print_final_stats=1 "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
elapsed=$(($(date +%s) - start))

execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
final=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE)' "$log" | tail -1 || true)
cov=$(grep -o 'cov: [0-9]*' <<<"$final" | grep -o '[0-9]*' || true)
ft=$(grep -o 'ft: [0-9]*' <<<"$final" | grep -o '[0-9]*' || true)
echo
echo "== $target: ${execs:-?} executions in ${elapsed} s, cov: ${cov:-?} ft: ${ft:-?}," \
    "corpus $(ls "$corpus" | wc -l) files, exit $status (log $log)"
exit "$status"
