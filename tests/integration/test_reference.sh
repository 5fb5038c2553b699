#!/usr/bin/env bash
# test_reference.sh - the two reference computations of DelayedFlights
# (tests/reference/delayed_flights.awk and .sql) agree on a generated
# dataset of 50k rows. Uses bin/sstream gen when it is built, otherwise
# compiles a tiny driver around src/gen/ss_gen_flights.c into a temp dir.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROWS=50000
SEED=2009
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ss_ref.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() {
    echo "test_reference: $*" >&2
    echo "0 passed, 1 failed"
    exit 1
}

command -v sqlite3 >/dev/null || fail "sqlite3 is not installed"

csv=$tmp/flights.csv
if [ -x bin/sstream ] && bin/sstream gen --help >/dev/null 2>&1; then
    bin/sstream gen flights --rows "$ROWS" --seed "$SEED" -o "$csv"
else
    cat >"$tmp/gen.c" <<'CEOF'
#include "gen/ss_gen_flights.h"
#include <stdlib.h>
int main(int argc, char **argv)
{
    ss_gen_flights_opts o = {0, 0, 1};
    if (argc != 3)
        return 2;
    o.rows = strtoull(argv[1], NULL, 10);
    o.seed = strtoull(argv[2], NULL, 10);
    return ss_gen_flights_write(stdout, &o, NULL) == 0 ? 0 : 1;
}
CEOF
    ${CC:-cc} -std=c11 -O2 -Wall -Wextra -Werror -Isrc -Iinclude \
        "$tmp/gen.c" src/gen/ss_gen_flights.c -o "$tmp/gen"
    "$tmp/gen" "$ROWS" "$SEED" >"$csv"
fi
lines=$(wc -l <"$csv")
[ "$lines" -eq $((ROWS + 1)) ] || fail "$lines lines instead of $((ROWS + 1))"

sqlite3 :memory: '.read tests/reference/delayed_flights.sql' \
    <"$csv" >"$tmp/sql.out"
n=$(wc -l <"$tmp/sql.out")
[ "$n" -ge 18 ] && [ "$n" -le 22 ] || fail "sqlite3 gave $n carriers"
re='^Delays for carrier [0-9A-Z]{2} -> [0-9]+\.[0-9]{2} average mins'
re="$re - [0-9]+ delayed flights\$"
grep -Evq "$re" "$tmp/sql.out" && fail "malformed line in the sqlite3 output"

ran=0
for awk in mawk gawk busybox-awk awk; do
    if [ "$awk" = busybox-awk ]; then
        command -v busybox >/dev/null || continue
        cmd=(busybox awk)
    else
        command -v "$awk" >/dev/null || continue
        cmd=("$awk")
    fi
    "${cmd[@]}" -f tests/reference/delayed_flights.awk "$csv" >"$tmp/awk.out"
    if ! cmp -s "$tmp/awk.out" "$tmp/sql.out"; then
        diff "$tmp/awk.out" "$tmp/sql.out" >&2 || true
        fail "${cmd[*]} and sqlite3 disagree"
    fi
    ran=$((ran + 1))
done
[ "$ran" -gt 0 ] || fail "no awk found"

echo "1 passed, 0 failed"
