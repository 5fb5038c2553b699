#!/bin/bash
# Runs every libFuzzer target of tests/fuzz (built by `make fuzz` into
# build-fuzz/) for a few seconds each, from the seeds in
# tests/fuzz/corpus/<target>/ (read-only: new inputs go to a temporary
# directory). One "ok"/"not ok" line per target, then "N passed, M
# failed". Without clang: one SKIPPED line and "0 passed, 0 failed".
#   tests/fuzz/run.sh [SECONDS]      (default 3; FUZZ_SECONDS too)
set -u
cd "$(dirname "$0")/../.."
secs=${1:-${FUZZ_SECONDS:-3}}
if ! command -v clang > /dev/null; then
    echo "SKIPPED: fuzzers (clang is missing; scripts/deps.sh installs it)"
    echo "0 passed, 0 failed"
    exit 0
fi
if ! make --no-print-directory -j"$(nproc)" fuzz > /tmp/fuzz-build.$$ 2>&1; then
    tail -20 /tmp/fuzz-build.$$
    rm -f /tmp/fuzz-build.$$
    echo "not ok - make fuzz"
    echo "0 passed, 1 failed"
    exit 1
fi
rm -f /tmp/fuzz-build.$$
pass=0 fail=0
for src in tests/fuzz/fuzz_*.c; do
    t=$(basename "$src" .c)
    work=$(mktemp -d)
    seeds=tests/fuzz/corpus/$t
    [ -d "$seeds" ] || seeds=
    log=$work/log
    # -rss_limit_mb: a target that allocates for a claimed count fails
    if timeout -k 5 $((secs + 60)) "build-fuzz/$t" -max_total_time="$secs" \
        -max_len=4096 -rss_limit_mb=1024 -timeout=10 \
        -artifact_prefix="$work/" "$work" $seeds > "$log" 2>&1; then
        runs=$(grep -oE 'Done [0-9]+ runs' "$log" | grep -oE '[0-9]+')
        echo "ok - $t (${runs:-?} inputs in $secs s)"
        pass=$((pass + 1))
    else
        echo "not ok - $t"
        grep -E 'ERROR|invariant|SUMMARY|artifact' "$log" | head -10 | sed 's/^/    /'
        for a in "$work"/crash-* "$work"/leak-* "$work"/oom-* "$work"/timeout-*; do
            [ -e "$a" ] && { mkdir -p build-fuzz/artifacts; cp "$a" build-fuzz/artifacts/; \
                echo "    input kept in build-fuzz/artifacts/$(basename "$a")"; }
        done
        fail=$((fail + 1))
    fi
    rm -rf "$work"
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
