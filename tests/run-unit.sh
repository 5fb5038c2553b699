#!/bin/bash
# Runs every cmocka unit test binary of a build folder (default build/),
# under valgrind when VALGRIND=1. Prints one line per binary and, last,
# "N passed, M failed" counting test cases.
set -u
dir=${1:-build}
passed=0 failed=0 bins=0
vg=()
if [ "${VALGRIND:-0}" = 1 ]; then
    vg=(valgrind --quiet --error-exitcode=99 --leak-check=full
        --errors-for-leak-kinds=definite --show-leak-kinds=definite
        --suppressions="$(dirname "$0")/valgrind.supp")
fi
export SS_TEST_SLOW=${VALGRIND:-0}
for t in "$dir"/tests/test_*; do
    [ -x "$t" ] || continue
    bins=$((bins + 1))
    name=$(basename "$t")
    out=$(CMOCKA_MESSAGE_OUTPUT=stdout timeout 900 "${vg[@]}" "$t" 2>&1)
    rc=$?
    p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    p=${p:-0} f=${f:-0}
    if [ $rc -ne 0 ] && [ "$f" = 0 ]; then f=1; fi
    passed=$((passed + p)) failed=$((failed + f))
    if [ $rc -eq 0 ]; then
        echo "unit ${VALGRIND:+(valgrind) }$name: $p passed"
    else
        echo "unit ${VALGRIND:+(valgrind) }$name: FAILED (exit $rc)"
        # cmocka's own failure lines first: a leak report from valgrind
        # after a failed assertion would push them out of the tail
        printf '%s\n' "$out" |
            grep -E '^\[ *(ERROR|LINE|FAILED) *\]|error:' | head -30 |
            sed 's/^/    /'
        printf '%s\n' "$out" | tail -25 | sed 's/^/    /'
    fi
done
echo "unit: $passed passed, $failed failed"
[ $failed -eq 0 ]
