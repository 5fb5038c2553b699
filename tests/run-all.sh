#!/bin/bash
# The whole test suite: unit tests (normal build), Lua tests, integration
# tests, then the unit tests again under ASan+UBSan and under valgrind.
# SS_TEST_QUICK=1 skips the sanitizer and valgrind passes.
# The last line is "N passed, M failed" over every test case.
set -u
cd "$(dirname "$0")/.."
total_p=0 total_f=0
recap=$(mktemp)
add() { # parse the "N passed, M failed" line of a log ($2: what ran)
    local line p f
    line=$(grep -E '^([a-z()_ -]*: )?[0-9]+ passed, [0-9]+ failed' "$1" | tail -1)
    p=$(printf '%s' "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')
    f=$(printf '%s' "$line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')
    if [ -z "$line" ]; then
        p=0 f=1
        echo "  (no summary line: counted as a failure)"
        { echo "-- $2: no summary line (killed after a timeout?); it ended with:"
          tail -5 "$1" | sed 's/^/    /'
        } >> "$recap"
    fi
    total_p=$((total_p + ${p:-0})) total_f=$((total_f + ${f:-0}))
    if [ -n "$line" ] && [ "${f:-0}" -ne 0 ]; then # for the recap at the end
        { echo "-- $2"
          grep -E '^(not ok|unit .*FAILED|  \(no summary)' "$1" | head -20
        } >> "$recap"
    fi
}
log=$(mktemp)
trap 'rm -f "$log" "$recap"' EXIT

section() { echo; echo "== $*"; }

section "unit tests"
tests/run-unit.sh build | tee "$log"; add "$log" "unit tests"

section "lua tests"
for t in tests/lua/test_*.lua; do
    echo "-- $t"
    lua5.4 "$t" 2>&1 | tee "$log"; add "$log" "$t"
done
for t in tests/lua/test_*.sh; do
    [ -e "$t" ] || continue
    echo "-- $t"
    bash "$t" 2>&1 | tee "$log"; add "$log" "$t"
done

section "fuzzers (a few seconds each; SKIPPED without clang)"
tests/fuzz/run.sh 2>&1 | tee "$log"; add "$log" "fuzzers"

section "integration tests"
for t in tests/integration/test_*.sh; do
    echo "-- $t"
    start=$SECONDS
    timeout -k 10 900 bash "$t" 2>&1 | tee "$log"; add "$log" "$t"
    echo "  ($((SECONDS - start)) s)"
done

if [ "${SS_TEST_QUICK:-0}" != 1 ]; then
    section "unit tests under ASan+UBSan"
    make --no-print-directory -j"$(nproc)" SAN=1 all unit-bins >/dev/null || { echo "sanitizer build failed"; total_f=$((total_f + 1)); }
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        tests/run-unit.sh build-san | tee "$log"; add "$log" "unit tests under ASan+UBSan"
    section "unit tests under valgrind"
    VALGRIND=1 tests/run-unit.sh build | tee "$log"; add "$log" "unit tests under valgrind"
fi

if [ -s "$recap" ]; then
    echo
    echo "== what failed (details above)"
    cat "$recap"
fi
echo
echo "$total_p passed, $total_f failed"
[ "$total_f" -eq 0 ]
