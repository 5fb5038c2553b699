#!/bin/bash
# DelayedFlights end to end with `sstream run`, 1, 2 and 4 workers per
# stage: the per-carrier answer must equal an independent awk computation
# on the same generated data, and the run's accounting must balance.
source "$(dirname "$0")/lib.sh"
rows=${ROWS:-200000}
"$SS" gen flights --rows "$rows" --seed 7 -o "$T/f.csv"
reference "$T/f.csv" > "$T/expected"
check "reference has about 20 carriers" test "$(wc -l < "$T/expected")" -ge 15
for w in 1 2 4; do
    "$SS" run "$ROOT/examples/delayed-flights/pipeline.yml" --data "$T/f.csv" \
        --workers "$w" --output-dir "$T/o$w" > "$T/r$w" 2> "$T/e$w"
    rc=$?
    check "run with $w worker(s) per stage exits 0" test $rc -eq 0
    grep '^Delays' "$T/r$w" > "$T/d$w"
    same "answer with $w worker(s) per stage equals awk" "$T/d$w" "$T/expected"
    contains "summary with $w worker(s) balances" "$T/e$w" "balanced"
    contains "summary with $w worker(s) counts every row" "$T/e$w" "rows in[^0-9]*$rows"
done
finish
