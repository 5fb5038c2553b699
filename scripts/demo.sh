#!/bin/bash
# The DelayedFlights demo: generates a synthetic airline dataset, runs the
# pipeline of examples/delayed-flights/ on it, and checks the answer
# against an independent awk computation. ROWS (default 2000000) and
# WORKERS (default 1) may be set.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${ROWS:-2000000}
workers=${WORKERS:-1}
out=${OUT_DIR:-out/demo}
mkdir -p "$out"
data=$out/flights-$rows.csv
if [ ! -s "$data" ]; then
    echo "demo: generating $rows rows into $data"
    bin/sstream gen flights --rows "$rows" --seed 42 -o "$data"
fi
echo "demo: running examples/delayed-flights/pipeline.yml ($workers worker(s) per stage)"
bin/sstream run examples/delayed-flights/pipeline.yml --data "$data" \
    --workers "$workers" --output-dir "$out" > "$out/results.txt"
cat "$out/results.txt"
mawk -F, -f tests/reference/delayed_flights.awk "$data" > "$out/expected.txt"
if diff <(grep '^Delays' "$out/results.txt") "$out/expected.txt" > /dev/null; then
    echo "demo: the pipeline's answer matches awk for all $(wc -l < "$out/expected.txt") carriers"
else
    echo "demo: the pipeline's answer differs from awk:" >&2
    diff <(grep '^Delays' "$out/results.txt") "$out/expected.txt" >&2 || true
    exit 1
fi
