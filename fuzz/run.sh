#!/usr/bin/env bash
# Long fuzzing run of every target (or the ones named): `bash fuzz/run.sh [TARGET...]`.
#
#   FUZZ_SECONDS     seconds per target (default 600); targets run one after the other, each
#                    in one libFuzzer process (one core)
#   FUZZ_RUNS        stop each target after this many executions instead (e.g. 10000000);
#                    FUZZ_SECONDS still bounds the time
#   FUZZ_SANITIZER   address (default) or none: lbcore and the harnesses have no unsafe code,
#                    so ASan guards only the dependencies' unsafe code and costs 2-10x in speed;
#                    `none` is for reaching many executions. Overflow checks and debug
#                    assertions are on either way.
#   FUZZ_TARGET_DIR  cargo target dir (default target/fuzz-build-<sanitizer>)
#
# New inputs go to a scratch corpus under target/fuzz-corpus/<target>/ (the checked-in seeds in
# fuzz/corpus/<target>/ and fuzz/regressions/<target>/ are read, never written). Crashes land in
# fuzz/artifacts/<target>/: minimise one with `cargo +nightly fuzz tmin`, fix the bug, copy the
# file into fuzz/regressions/<target>/ and name a test after it in lbcore/tests/fuzz_corpus.rs.
# Each target's final line (executions, cov, ft, corpus) goes to target/fuzz-logs/summary.txt.
# Exits non-zero if any target crashed.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
SECONDS_PER=${FUZZ_SECONDS:-600}
RUNS=${FUZZ_RUNS:--1}
SANITIZER=${FUZZ_SANITIZER:-address}
TDIR=${FUZZ_TARGET_DIR:-$ROOT/target/fuzz-build-$SANITIZER}
ALL=(parse_frame pipeline conn_model wire vrrp_sim config)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL[@]}"); fi
LOGS=$ROOT/target/fuzz-logs
mkdir -p "$LOGS"
: >"$LOGS/summary.txt"

# Build once, then run the binaries: `cargo fuzz run` would rebuild before every target.
cargo +nightly fuzz build --fuzz-dir "$ROOT/fuzz" --target-dir "$TDIR" -O -a -s "$SANITIZER" || exit 1
BIN=$TDIR/$(rustc +nightly -vV | sed -n 's/^host: //p')/release
failed=0
for t in "${TARGETS[@]}"; do
    scratch=$ROOT/target/fuzz-corpus/$t
    mkdir -p "$scratch" "$ROOT/fuzz/artifacts/$t"
    echo "=== $t: ${SECONDS_PER}s, runs ${RUNS} (-1: unbounded), sanitizer $SANITIZER"
    rc=0
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_odr_violation=0} "$BIN/$t" \
        -artifact_prefix="$ROOT/fuzz/artifacts/$t/" -max_total_time="$SECONDS_PER" -runs="$RUNS" -print_final_stats=1 \
        "$scratch" "$ROOT/fuzz/corpus/$t" "$ROOT/fuzz/regressions/$t" >"$LOGS/$t.log" 2>&1 || rc=$?
    last=$(grep -E '^#[0-9]+' "$LOGS/$t.log" | tail -1)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOGS/$t.log")
    echo "$t rc=$rc executions=${runs:-?} last: $last" | tee -a "$LOGS/summary.txt"
    [ "$rc" -eq 0 ] || failed=1
done
exit $failed
