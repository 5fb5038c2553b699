#!/bin/bash
# Keyed streams (docs/PIPELINE.md, "Keyed stages"): DelayedFlights with
# its reduce partitioned by carrier over 4 workers gives awk's answer in
# the three security modes, with each carrier's result from exactly one
# reduce worker (the printer fails on a carrier seen twice); every reduce
# worker gets exactly the rows of the key groups its slot owns, computed
# independently in Python from the documented hash, in every run and
# whatever the parallelism upstream (partition stability); a worker of a
# partitioned stateless stage killed mid-run hands its key groups on and
# the answer is still awk's; a carrier with half the rows is reported as
# a hot partition in the summary and the metrics. The broadcast example
# (each of 3 workers gets every batch) gives awk's count from each worker
# in the three modes, and the books balance with the copies.
source "$(dirname "$0")/lib.sh"
EX=$ROOT/examples/delayed-flights
cd "$T"
cp "$EX"/*.lua "$EX"/pipeline-keyed.yml .
rows=${ROWS:-60000}
"$SS" gen flights --rows "$rows" --seed 11 -o flights.csv
reference flights.csv > expected
check "reference has about 20 carriers" test "$(wc -l < expected)" -ge 15

# The rows each reduce slot must get: delayed flights (ArrDelay an integer
# > 0, as the filter keeps them) whose carrier's key group falls in the
# slot's range: key group = fmix32(fnv1a32(msgpack(carrier))) mod 4096,
# slot = key group * N / 4096 (docs/PROTOCOL.md, "Keyed streams").
slots() { # $1 csv, $2 N workers: prints "reduce-I COUNT" for each slot
    $PY - "$1" "$2" <<'PY'
import csv, re, sys
def fnv(b):
    h = 2166136261
    for x in b:
        h = ((h ^ x) * 16777619) & 0xffffffff
    return h
def fmix(h):
    h ^= h >> 16; h = (h * 0x85ebca6b) & 0xffffffff
    h ^= h >> 13; h = (h * 0xc2b2ae35) & 0xffffffff
    return h ^ (h >> 16)
n = int(sys.argv[2])
count = [0] * n
with open(sys.argv[1]) as f:
    for row in csv.reader(f):
        if row[0] == 'Year' or not re.fullmatch(r'-?[0-9]+', row[14]):
            continue
        if int(row[14]) <= 0:
            continue
        key = row[8].encode()
        assert len(key) < 32
        kg = fmix(fnv(bytes([0xa0 | len(key)]) + key)) % 4096
        count[kg * n // 4096] += 1
for i, c in enumerate(count):
    print('reduce-%d %d' % (i + 1, c))
PY
}
slots flights.csv 4 > slots-expected
got_slots() { # $1 stderr of a run: "reduce-I ROWS_IN" from the summary
    awk '$1 ~ /^reduce-[0-9]+$/ && $2 == "worker" { print $1, $3 }' "$1"
}

for mode in plain encrypted enclave; do
    timeout -k 10 300 "$SS" run pipeline-keyed.yml --data flights.csv \
        --security "$mode" --output-dir "o-$mode" \
        --no-progress > "r-$mode" 2> "e-$mode"
    check "$mode: the keyed run exits 0" test $? -eq 0
    grep '^Delays' "r-$mode" > "d-$mode"
    same "$mode: the answer equals awk (each carrier from one reducer)" \
        "d-$mode" expected
    contains "$mode: the summary balances" "e-$mode" "balanced"
    got_slots "e-$mode" > "slots-$mode"
    same "$mode: each reduce worker got exactly its key groups' rows" \
        "slots-$mode" slots-expected
done
# the same keys land on the same workers whatever runs upstream
sed -e 's/workers: 2/workers: 1/g' -e 's/parts: 4/parts: 1/' \
    pipeline-keyed.yml > keyed-1.yml
timeout -k 10 300 "$SS" run keyed-1.yml --data flights.csv \
    --output-dir o-1 --no-progress > r-1 2> e-1
check "with one map and one filter the run exits 0" test $? -eq 0
got_slots e-1 > slots-1
same "... and every reduce worker gets the same rows as before" \
    slots-1 slots-expected
lacks "no hot partition is reported for ordinary carriers" e-plain \
    "hot partition"

# a carrier with half the rows: a hot partition, named with its worker
awk -F, 'BEGIN { OFS = "," } NR > 1 && NR % 2 == 0 { $9 = "HOT" } { print }' \
    flights.csv > skewed.csv
reference skewed.csv > expected-skewed
timeout -k 10 300 "$SS" run pipeline-keyed.yml --data skewed.csv \
    --output-dir o-hot --metrics metrics-hot --no-progress \
    > r-hot 2> e-hot
check "the skewed run exits 0" test $? -eq 0
grep '^Delays' r-hot > d-hot
same "the skewed answer equals awk" d-hot expected-skewed
hot_slot=$(slots skewed.csv 4 | sort -k2 -n | tail -1 | cut -d' ' -f1)
contains "the summary reports the hot partition and its worker" e-hot \
    "hot partition: stage reduce: key group [0-9]+ holds (4[5-9]|5[0-9])% of the keyed events .*all on worker $hot_slot"
contains "the metrics carry the hot partition" metrics-hot \
    '"name":"router-3".*"hot_events":[1-9][0-9]*.*"final":true'

# a worker of a partitioned stateless stage dies mid-run: its key groups
# move to the next slot, its batches in flight are redelivered there
sed 's/if not value then return {} end/for _ = 1, 100000 do end\n      if not value then return {} end/' \
    map-csv-to-event.lua > slow-map.lua
grep -q 'for _ = 1, 100000' slow-map.lua || echo "fixture: slow-map.lua not slowed" >&2
head -20001 flights.csv > small.csv
reference small.csv > expected-small
cat > loss.yml <<'YML'
name: keyed-loss
source: { file: small.csv, parts: 2, format: csv, header: true }
stages:
  - { name: map, script: slow-map.lua, workers: 2 }
  - { name: filter, script: filter-event.lua, workers: 3, partition_by: uniquecarrier }
  - { name: reduce, script: reduce-events.lua, workers: 1 }
sink: { script: print-results.lua }
YML
started() { # $1 tag, $2 worker
    grep -q "\"name\":\"$2\".*\"in\":[1-9][0-9]*," "metrics-$1" 2>/dev/null
}
check "a worker of the partitioned stage (filter-2) was killed mid-stream" \
    run_and_kill loss.yml filter-2 loss "started loss filter-2"
if [ "$(cat rc-loss)" = 0 ]; then ok "the run goes on and exits 0"
else notok "the run goes on and exits 0 (status $(cat rc-loss))" "$(tail -12 err-loss)"; fi
grep '^Delays' res-loss > got-loss
same "the answer is still awk's after losing filter-2" got-loss expected-small
contains "the router says the key groups moved" \
    <(cat err-loss out-loss/logs/router-2.log 2>/dev/null) \
    "key groups of slot 2 move to the next live worker"
# broadcast: every worker of stage count gets every batch
mkdir -p bc/broadcast bc/delayed-flights
cp "$ROOT"/examples/broadcast/* bc/broadcast/
cp "$EX"/map-csv-to-event.lua bc/delayed-flights/
awk -F, 'NR > 1 && $15 ~ /^-?[0-9]+$/ && $15 + 0 > 0 { n++; t += $15 }
    END { printf "delayed flights: %d, total delay: %d minutes (from each of 3 workers)\n", n, t }' \
    flights.csv > expected-bc
for mode in plain encrypted enclave; do
    timeout -k 10 300 "$SS" run bc/broadcast/pipeline.yml --data flights.csv \
        --security "$mode" --output-dir "ob-$mode" --no-progress \
        > "rb-$mode" 2> "eb-$mode"
    check "$mode: the broadcast run exits 0" test $? -eq 0
    same "$mode: each of the 3 workers counted every row, as awk" \
        "rb-$mode" expected-bc
    contains "$mode: the books balance with 3 copies of each row" \
        "eb-$mode" "rows in = .*: $rows = $rows \+ 0 \+ 0: balanced"
    contains "$mode: router-2 dealt every row to each worker" "eb-$mode" \
        "router-2 +router +$((3 * rows)) +$((3 * rows))"
done
[ -n "${KEYED_DEBUG:-}" ] && cp -r "$T" /tmp/keyed/debug
finish
