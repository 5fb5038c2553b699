#!/bin/bash
# A batch redelivered after a worker's loss is never counted twice.
#
# A stateless map worker killed with SIGKILL holds batches it processed
# whose outputs may already have reached the next router (RECEIVED) but
# that it had not acknowledged upstream: its router deals them again to
# the other worker, whose outputs carry the same lineage, and the next
# router must drop them as duplicates. Here 2 map workers, one of them
# killed at three moments of the stream (just started, a third in, two
# thirds in), in plain and in encrypted mode; each run must give awk's
# answer (which prints the number of delayed flights per carrier: one
# event counted twice shows), and every component downstream of the
# loss must have taken exactly what it takes in a run without a loss:
# router-2 accepts each source row once, the filter and the reduce see
# the same events, the sink the same results; and each event rejected
# by the map is in rejects.jsonl, and counted in the summary, once (a
# lost worker's rejects in batches it never acknowledged were counted
# again: "rejects: 1999" for 1977 rows rejected).
source "$(dirname "$0")/lib.sh"
EX=$ROOT/examples/delayed-flights
cd "$T"
cp "$EX"/*.lua .
RUN_TIMEOUT=${RUN_TIMEOUT:-240}
# a mapper slowed down on purpose (as test_worker_loss.sh), so that batches
# are in flight in both workers for several seconds on any machine, and
# that rejects (raises on) the rows of flights not delayed whose number
# ends in 3: rows awk leaves out too, so the answer stays awk's, while
# about 5 % of the rows are rejected, a few in every batch
sed -e 's/if not value then return {} end/for _ = 1, 100000 do end\n      if not value then return {} end/' \
    -e 's/event.arrdelay = array\[15\]/&\n      if not ((tonumber(event.arrdelay) or 0) > 0) and string.sub(array[10] or "", -1) == "3" then error("not delayed, number ends in 3") end/' \
    map-csv-to-event.lua > slow-map.lua
grep -q 'for _ = 1, 100000' slow-map.lua || echo "fixture: slow-map.lua not slowed" >&2
grep -q 'number ends in 3' slow-map.lua || echo "fixture: slow-map.lua rejects nothing" >&2
ROWS=${ROWS:-30000}
"$SS" gen flights --rows $ROWS --seed 11 -o data.csv
reference data.csv > expected

pipeline() { # $1 name, $2 security
    cat <<YML
name: $1
security: $2
batch_size: 16384
source: { file: data.csv, parts: 2, format: csv, header: true }
stages:
  - { name: map, script: slow-map.lua, workers: 2 }
  - { name: filter, script: filter-event.lua, workers: 1 }
  - { name: reduce, script: reduce-events.lua, workers: 1 }
sink: { script: print-results.lua }
YML
}

# last "final" counter FIELD of component NAME in a metrics file
final() { # $1 metrics, $2 name, $3 field
    $PY - "$1" "$2" "$3" <<'PY'
import json, sys
path, name, field = sys.argv[1:4]
v = "none"
for line in open(path):
    try:
        s = json.loads(line)
    except ValueError:
        continue
    if s.get("name") == name and s.get("final"):
        v = s.get(field, "none")
print(v)
PY
}
# the victim has taken at least $3 events (metrics: one sample a second)
took() { # $1 tag, $2 worker, $3 events
    local n
    n=$(grep -o "\"name\":\"$2\",[^}]*" "metrics-$1" 2>/dev/null | tail -1 |
        sed -n 's/.*"in":\([0-9]*\),.*/\1/p')
    [ -n "$n" ] && [ "$n" -ge "$3" ]
}

# the run without a loss: what each component downstream takes
pipeline redeliv-clean plain > clean.yml
timeout -k 10 "$RUN_TIMEOUT" "$SS" run clean.yml --output-dir out-clean \
    --metrics metrics-clean --no-progress > res-clean 2> err-clean
check "the run without a loss exits 0" test $? -eq 0
grep '^Delays' res-clean > got-clean
same "... and gives awk's answer" got-clean expected
COUNTERS="router-2:in filter-1:in filter-1:out reduce-1:in sink:in"
declare -A clean
for c in $COUNTERS; do
    clean[$c]=$(final metrics-clean ${c%:*} ${c#*:})
done
sent=$(final metrics-clean source out)
check "the source sent every row ($sent of $ROWS)" test "$sent" = $ROWS
# rejects: how many, and each event at most once (stage and row)
nrejects() { grep -o 'rejects: [0-9]* in' "$1" | grep -o '[0-9]*'; }
twice() { # the events with more than one line in a rejects.jsonl
    $PY -c 'import collections, json, sys
c = collections.Counter()
for l in open(sys.argv[1]):
    d = json.loads(l)
    c[(d["stage"], d.get("stream"), d.get("seq"), d.get("part"), d.get("row"))] += 1
print(sum(1 for v in c.values() if v > 1))' "$1"
}
clean_rej=$(nrejects err-clean)
check "the map rejects some rows ($clean_rej)" test "${clean_rej:-0}" -gt 100
check "... each once in rejects.jsonl" test "$(wc -l < out-clean/rejects.jsonl)" = "$clean_rej"

n=0
for mode in plain encrypted; do
    # [victim, events it has taken when it is killed]
    for moment in map-2:1 map-1:$((ROWS / 6)) map-2:$((ROWS / 3)); do
        n=$((n + 1))
        victim=${moment%:*} at=${moment#*:} tag=$mode-$n
        pipeline redeliv-$tag $mode > $tag.yml
        check "$mode: $victim killed after taking $at events" \
            run_and_kill $tag.yml $victim $tag "took $tag $victim $at"
        check "... the run exits 0" test "$(cat rc-$tag)" -eq 0
        grep '^Delays' res-$tag > got-$tag
        same "... the answer is awk's (no row counted twice)" got-$tag expected
        contains "... the loss was reported" err-$tag \
            "$victim was killed by signal 9; stage 'map' goes on"
        r=$(nrejects err-$tag)
        check "... rejects: $r, as without a loss ($clean_rej)" \
            test "$r" = "$clean_rej"
        check "... rejects.jsonl holds each rejected event once" \
            test "$(twice out-$tag/rejects.jsonl)" = 0
        check "... and the same lines as without a loss" \
            test "$(wc -l < out-$tag/rejects.jsonl)" = "$clean_rej"
        for c in $COUNTERS; do
            v=$(final metrics-$tag ${c%:*} ${c#*:})
            want=${clean[$c]}
            check "... ${c%:*} ${c#*:} = $v, as without a loss ($want)" \
                test "$v" = "$want"
        done
    done
done
finish
