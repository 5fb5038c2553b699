#!/bin/bash
# The whole test suite: unit tests (normal build), Lua tests, integration
# tests, then the unit tests again under ASan+UBSan and under valgrind.
# SS_TEST_QUICK=1 skips the sanitizer and valgrind passes.
# The last line is "N passed, M failed" over every test case.
set -u
cd "$(dirname "$0")/.."
total_p=0 total_f=0
add() { # parse the "N passed, M failed" line of a log
    local line p f
    line=$(grep -E '^([a-z()_ -]*: )?[0-9]+ passed, [0-9]+ failed' "$1" | tail -1)
    p=$(printf '%s' "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')
    f=$(printf '%s' "$line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')
    if [ -z "$line" ]; then p=0; f=1; echo "  (no summary line: counted as a failure)"; fi
    total_p=$((total_p + ${p:-0})) total_f=$((total_f + ${f:-0}))
}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

section() { echo; echo "== $*"; }

section "unit tests"
tests/run-unit.sh build | tee "$log"; add "$log"

section "lua tests"
for t in tests/lua/test_*.lua; do
    echo "-- $t"
    lua5.4 "$t" 2>&1 | tee "$log"; add "$log"
done
for t in tests/lua/test_*.sh; do
    [ -e "$t" ] || continue
    echo "-- $t"
    bash "$t" 2>&1 | tee "$log"; add "$log"
done

section "integration tests"
for t in tests/integration/test_*.sh; do
    echo "-- $t"
    timeout 900 bash "$t" 2>&1 | tee "$log"; add "$log"
done

if [ "${SS_TEST_QUICK:-0}" != 1 ]; then
    section "unit tests under ASan+UBSan"
    make --no-print-directory SAN=1 all unit-bins >/dev/null || { echo "sanitizer build failed"; total_f=$((total_f + 1)); }
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        tests/run-unit.sh build-san | tee "$log"; add "$log"
    section "unit tests under valgrind"
    VALGRIND=1 tests/run-unit.sh build | tee "$log"; add "$log"
fi

echo
echo "$total_p passed, $total_f failed"
[ "$total_f" -eq 0 ]
