#!/usr/bin/env bash
# Instruction-count gate of the lbcore hot path (issue 7).
#
# Builds the `lbcore-icount` scenarios (benches/src/icount.rs) in release mode, runs each under
# `valgrind --tool=callgrind`, counting only inside the measured region, and compares the
# instructions per unit (packet, connection, table build, advert) with the committed baseline
# benches/baseline/instructions.txt. Fails (exit 1) when a scenario costs more than
# LBCORE_GATE_THRESHOLD percent (default 10) over its baseline, or has no baseline.
#
#   .ci/bench-gate.sh                          # the gate
#   LBCORE_GATE_UPDATE=1 .ci/bench-gate.sh     # measure and rewrite the baseline file
#   LBCORE_GATE_SELFTEST=1 .ci/bench-gate.sh   # inject ~50 % extra work: the gate must fail
#
# Counts are deterministic (same binary, same inputs, no timing), so they do not depend on
# machine load; they do depend on the compiler, so the baseline records the rustc version and
# the gate warns when it differs. Installs valgrind with apt-get when it is missing (as root);
# fails loudly when valgrind cannot be had or cannot run.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BASELINE=${LBCORE_GATE_BASELINE:-$ROOT/benches/baseline/instructions.txt}
THRESHOLD=${LBCORE_GATE_THRESHOLD:-10}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

die() {
    echo "bench-gate: FAIL: $*" >&2
    exit 1
}

# --- valgrind -------------------------------------------------------------------------------
if ! command -v valgrind >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "bench-gate: installing valgrind (apt-get)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null 2>&1 || {
            DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
        } || die "valgrind is missing and apt-get install -y valgrind failed"
    else
        die "valgrind is missing (install it: apt-get install -y valgrind); the gate cannot run without it"
    fi
fi
valgrind -q --tool=callgrind --callgrind-out-file=/dev/null true >/dev/null 2>&1 ||
    die "valgrind is installed but cannot run here ($(valgrind --version 2>&1))"

# --- build ----------------------------------------------------------------------------------
echo "bench-gate: cargo build --release -p lbcore-benches --bin lbcore-icount"
cargo build --release --locked -q -p lbcore-benches --bin lbcore-icount
BIN=$TARGET_DIR/release/lbcore-icount
[ -x "$BIN" ] || die "no binary at $BIN"
"$BIN" all >/dev/null || die "a scenario failed its own check (native run)"

RUSTC=$(rustc --version)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# --- measure --------------------------------------------------------------------------------
: >"$WORK/now.txt"
for name in $("$BIN" list); do
    out=$WORK/$name.callgrind
    line=$(valgrind --tool=callgrind --collect-atstart=no \
        --toggle-collect='*lbcore_icount_measured*' \
        --callgrind-out-file="$out" "$BIN" "$name" 2>"$WORK/$name.log") ||
        { cat "$WORK/$name.log" >&2; die "$name: the run under valgrind failed"; }
    read -r _ units unit <<<"$line"
    ir=$(awk '/^summary:/ {print $2}' "$out")
    [ -n "$ir" ] && [ "$ir" -gt 0 ] || die "$name: no instruction count in $out"
    awk -v n="$name" -v ir="$ir" -v u="$units" -v unit="$unit" \
        'BEGIN { printf "%s %.1f %s\n", n, ir / u, unit }' >>"$WORK/now.txt"
done

if [ "${LBCORE_GATE_UPDATE:-0}" = 1 ]; then
    mkdir -p "$(dirname "$BASELINE")"
    {
        echo "# lbcore instruction-count baseline: instructions per unit, measured by .ci/bench-gate.sh"
        echo "# (callgrind, only the measured region of benches/src/icount.rs). $RUSTC"
        echo "# Rewrite with: LBCORE_GATE_UPDATE=1 .ci/bench-gate.sh"
        cat "$WORK/now.txt"
    } >"$BASELINE"
    echo "bench-gate: wrote $BASELINE"
    cat "$WORK/now.txt"
    exit 0
fi

# --- compare --------------------------------------------------------------------------------
[ -f "$BASELINE" ] || die "no baseline file $BASELINE (create it with LBCORE_GATE_UPDATE=1)"
if ! grep -qF "$RUSTC" "$BASELINE"; then
    echo "bench-gate: warning: baseline was measured with another compiler than $RUSTC;" \
        "counts may shift (see the header of $BASELINE)"
fi
[ "${LBCORE_GATE_SELFTEST:-0}" = 1 ] && echo "bench-gate: SELF-TEST: extra work injected, this run must FAIL"

awk -v limit="$THRESHOLD" '
    FNR == NR { if ($1 !~ /^#/ && NF >= 2) base[$1] = $2; next }
    {
        name = $1; now = $2; unit = $3
        if (!(name in base)) {
            printf "%-28s %-10s %12s %12.1f %9s  FAIL (no baseline)\n", name, unit, "-", now, "-"
            bad++
            next
        }
        change = (now - base[name]) * 100 / base[name]
        status = "ok"
        if (change > limit) { status = "FAIL (regressed)"; bad++ }
        else if (change < -limit) status = "ok (faster: update the baseline)"
        printf "%-28s %-10s %12.1f %12.1f %+8.1f%%  %s\n", name, unit, base[name], now, change, status
    }
    BEGIN { printf "%-28s %-10s %12s %12s %9s  %s\n", "scenario", "per", "baseline", "now", "change", "status" }
    END {
        if (bad) { printf "bench-gate: FAIL: %d scenario(s) over the +%s%% limit or without a baseline\n", bad, limit; exit 1 }
        printf "bench-gate: ok: every scenario within +%s%% of the baseline\n", limit
    }
' "$BASELINE" "$WORK/now.txt"
