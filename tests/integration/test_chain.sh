#!/bin/bash
# Operator chaining (`chain: true`, docs/PIPELINE.md): DelayedFlights with
# its three stages chained into one worker process equals awk; the
# summary still shows each stage's rows and balances; a reject in the
# second chained stage is named with that stage; `chain: false` on a stage
# and unequal worker counts break the chain; in encrypted and enclave
# modes the chained stages run in one enclave and give the unchained
# run's answer and counts, and a changed chained script gets no key; a
# chained stage with a local module and a data file; SS_CHAIN_SHARED=0
# (a Lua state per stage) gives the default's counts.
source "$(dirname "$0")/lib.sh"
EX=$ROOT/examples/delayed-flights
rows=${ROWS:-100000}
"$SS" gen flights --rows "$rows" --seed 11 -o "$T/f.csv"
reference "$T/f.csv" > "$T/expected"
check "reference has about 20 carriers" test "$(wc -l < "$T/expected")" -ge 15

# pipe NAME CHAIN MAPW FILTERW FILTER_SCRIPT [REDUCE_CHAIN]: a pipeline file
pipe() {
    cat > "$T/$1.yml" <<EOF2
name: $1
chain: $2
source: {file: f.csv, parts: 4, format: csv, header: true}
stages:
  - {name: map, script: $EX/map-csv-to-event.lua, workers: $3}
  - {name: filter, script: $5, workers: $4}
  - {name: reduce, script: $EX/reduce-events.lua, workers: $4${6:+, chain: $6}}
sink: {script: $EX/print-results.lua}
EOF2
}
run() { # NAME [options]: runs $T/NAME.yml; stdout r.NAME, stderr e.NAME
    local n=$1; shift
    timeout -k 10 300 "$SS" run "$T/$n.yml" --data "$T/f.csv" --no-progress \
        --output-dir "$T/o.$n" "$@" > "$T/r.$n" 2> "$T/e.$n"
}

for w in 1 2; do
    pipe "c$w" true $w $w "$EX/filter-event.lua"
    run "c$w"
    check "chained, $w worker(s): exits 0" test $? -eq 0
    grep '^Delays' "$T/r.c$w" > "$T/d.c$w"
    same "chained, $w worker(s): answer equals awk" "$T/d.c$w" "$T/expected"
    contains "chained, $w worker(s): balanced" "$T/e.c$w" "rows in[^0-9]*$rows .*balanced"
    contains "chained, $w worker(s): filter-$w has its own row" "$T/e.c$w" \
        "filter-$w +chain +[0-9]+ +[0-9]+ "
    contains "chained, $w worker(s): reduce-1 has its own row" "$T/e.c$w" \
        "reduce-1 +chain "
    lacks "chained, $w worker(s): two routers only" "$T/e.c$w" "router-3"
    lacks "chained, $w worker(s): no filter process" "$T/e.c$w" "filter-1 +worker"
done

# a reject in the second chained stage names it
cat > "$T/filter-ha.lua" <<'EOF2'
local ZmqRx = require 'zmq-rx'
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :filter(function(event)
      if event.uniquecarrier == 'HA' then error('no HA here') end
      return (tonumber(event.arrdelay) or 0) > 0
    end)
  :subscribeToSocket(os.getenv('TO'))
EOF2
pipe rej true 1 1 "$T/filter-ha.lua"
run rej
check "reject in a chained stage: exits 0" test $? -eq 0
nha=$(grep -c ',HA,' "$T/f.csv")
contains "reject in a chained stage: named with its stage" "$T/o.rej/rejects.jsonl" \
    '"stage":"filter","worker":"filter-1".*no HA here'
lacks "reject in a chained stage: never named map" "$T/o.rej/rejects.jsonl" '"stage":"map"'
contains "reject in a chained stage: counted on filter-1" "$T/e.rej" \
    "filter-1 +chain +$rows +[0-9]+ +[0-9]+ +[0-9]+ +$nha "
contains "reject in a chained stage: balanced" "$T/e.rej" "balanced"
grep '^Delays' "$T/r.rej" > "$T/d.rej"
grep -v 'carrier HA ' "$T/expected" > "$T/expected-noha"
same "reject in a chained stage: the other carriers equal awk" "$T/d.rej" "$T/expected-noha"

# chain: false on reduce: map and filter chained, reduce its own process
pipe nored true 1 1 "$EX/filter-event.lua" false
run nored
check "reduce chain: false: exits 0" test $? -eq 0
contains "reduce chain: false: filter chained" "$T/e.nored" "filter-1 +chain "
contains "reduce chain: false: reduce is a process" "$T/e.nored" "reduce-1 +worker "
contains "reduce chain: false: three routers" "$T/e.nored" "router-3 "
contains "reduce chain: false: balanced" "$T/e.nored" "balanced"

# unequal worker counts: map (2) is not chained to filter (1)
pipe uneq true 2 1 "$EX/filter-event.lua"
run uneq
check "unequal workers: exits 0" test $? -eq 0
contains "unequal workers: filter is a process" "$T/e.uneq" "filter-1 +worker "
contains "unequal workers: reduce chained into filter" "$T/e.uneq" "reduce-1 +chain "
contains "unequal workers: balanced" "$T/e.uneq" "balanced"

# attack: a chained stage's counters come from its host worker only. An
# intruder holding the sink's keys (its key folder, as a compromised sink
# host would) forges filter-1's counters on the control channel while a
# chained run goes on: they are refused, and the books use filter-1's own.
"$SS" gen flights --rows 1500000 --seed 12 -o "$T/big.csv"
pipe atk true 1 1 "$EX/filter-event.lua"
mkdir -p "$T/tmp"
TMPDIR=$T/tmp timeout -k 10 300 "$SS" run "$T/atk.yml" --data "$T/big.csv" \
    --no-progress --output-dir "$T/o.atk" --metrics "$T/atk.jsonl" \
    > "$T/r.atk" 2> "$T/e.atk" &
run=$!
_pids+=($run)
for i in $(seq 200); do
    d=$(ls -d "$T"/tmp/sstream-run-* 2>/dev/null | head -1)
    [ -n "$d" ] && [ -S "$d/control" ] && [ -s "$d/keys/sink/curve-client.key" ] && break
    sleep 0.05
done
timeout 20 $PY "$ROOT/tests/integration/control_intruder.py" "ipc://$d/control" \
    stolen "$d/keys/sink" filter-1 > "$T/atk.intr" 2>&1
wait_max 120 $run
check "attack: the run exits 0" test $? -eq 0
contains "attack: the intruder did send ($(cat "$T/atk.intr"))" "$T/atk.intr" "^sent DONE"
lacks "attack: no forged counters of filter-1 in the metrics" "$T/atk.jsonl" \
    '"name":"filter-1"[^}]*"in":999999'
contains "attack: filter-1's real counters are in the metrics" "$T/atk.jsonl" \
    '"name":"filter-1".*"in":1500000,'
contains "attack: the books use them" "$T/e.atk" "filter-1 +chain +1500000 "
contains "attack: balanced" "$T/e.atk" "balanced"

# encrypted and enclave: the chained stages run in the worker's one
# enclave (one open and one seal per batch); the answer equals the
# unchained run's in the same mode, and every stage still has its row
pipe u1 false 1 1 "$EX/filter-event.lua"
for mode in encrypted enclave; do
    run u1 --security $mode
    check "$mode, unchained: exits 0" test $? -eq 0
    grep '^Delays' "$T/r.u1" > "$T/d.u.$mode"
    for w in 1 2; do
        run "c$w" --security $mode
        check "$mode, chained, $w worker(s): exits 0" test $? -eq 0
        grep '^Delays' "$T/r.c$w" > "$T/d.$mode.$w"
        same "$mode, chained, $w worker(s): answer equals the unchained run's" \
            "$T/d.$mode.$w" "$T/d.u.$mode"
        same "$mode, chained, $w worker(s): answer equals awk" "$T/d.$mode.$w" "$T/expected"
        lacks "$mode, chained, $w worker(s): no 'not implemented'" "$T/e.c$w" \
            "not implemented"
        contains "$mode, chained, $w worker(s): filter-$w has its own row" "$T/e.c$w" \
            "filter-$w +chain +[0-9]+ +[0-9]+ "
        contains "$mode, chained, $w worker(s): reduce-1 has its own row" "$T/e.c$w" \
            "reduce-1 +chain +[0-9]+ +1 "
        lacks "$mode, chained, $w worker(s): two routers only" "$T/e.c$w" "router-3"
        lacks "$mode, chained, $w worker(s): no filter process" "$T/e.c$w" \
            "filter-1 +worker"
        contains "$mode, chained, $w worker(s): balanced" "$T/e.c$w" \
            "rows in[^0-9]*$rows .*balanced"
    done
    # the rows each stage passed and dropped are the unchained run's
    for st in filter-1 reduce-1; do
        a=$(grep -E "^ +$st " "$T/e.u1" | awk '{print $3, $4, $5, $6, $7}')
        b=$(grep -E "^ +$st " "$T/e.c1" | awk '{print $3, $4, $5, $6, $7}')
        check "$mode: $st counts chained ($b) = unchained ($a)" test -n "$a" -a "$a" = "$b"
    done
done

# a reject in the second chained stage, in the enclave of encrypted mode:
# named with that stage, opened by the worker that holds the key
run rej --security encrypted
check "encrypted, reject in a chained stage: exits 0" test $? -eq 0
contains "encrypted, reject in a chained stage: named with its stage" \
    "$T/o.rej/rejects.jsonl" '"stage":"filter","worker":"filter-1".*no HA here'
contains "encrypted, reject in a chained stage: counted on filter-1" "$T/e.rej" \
    "filter-1 +chain +$rows +[0-9]+ +[0-9]+ +[0-9]+ +$nha "
grep '^Delays' "$T/r.rej" > "$T/d.rej.enc"
same "encrypted, reject in a chained stage: the other carriers equal awk" \
    "$T/d.rej.enc" "$T/expected-noha"

# a chain followed by a partitioned stage, in enclave mode: the chain's
# enclave cuts its output by key for the next router (measured with the
# chain), and the answer is plain mode's
sed -e "s#script: #script: $EX/#" -e 's/^batch_size: .*/&\nchain: true/' \
    "$EX/pipeline-keyed.yml" > "$T/keyed.yml"
for mode in plain enclave; do
    run keyed --security $mode
    check "keyed after a chain, $mode: exits 0" test $? -eq 0
    grep '^Delays' "$T/r.keyed" | sort > "$T/d.keyed.$mode"
    contains "keyed after a chain, $mode: filter-2 chained" "$T/e.keyed" "filter-2 +chain "
    contains "keyed after a chain, $mode: reduce-4 is a process" "$T/e.keyed" "reduce-4 +worker "
    contains "keyed after a chain, $mode: balanced" "$T/e.keyed" "balanced"
done
same "keyed after a chain: enclave gives plain's answer" "$T/d.keyed.enclave" "$T/d.keyed.plain"
check "keyed after a chain: 20 carriers or so" test "$(wc -l < "$T/d.keyed.plain")" -ge 15

# a chained stage with a local module and a data file of its own (one Lua
# state for the chain, each script with its own package.loaded and
# files: a state shared by the old measuring switch refused such a
# script), in plain and enclave modes (the enclave measures and loads the
# filter's bundle): awk's answer, as the same filter unchained gives
mkdir -p "$T/fm"
cat > "$T/fm/filter.lua" <<'EOF2'
local ZmqRx = require 'zmq-rx'
local thresh = require 'thresh'
local files = require 'files'
local limit = tonumber(files.read('limit.txt'))
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :filter(function(event)
      return (tonumber(event.arrdelay) or 0) > thresh.at(limit)
    end)
  :subscribeToSocket(os.getenv('TO'))
EOF2
printf 'return {at = function(x) return x end}\n' > "$T/fm/thresh.lua"
printf '0\n' > "$T/fm/limit.txt"
pipe fm true 1 1 "$T/fm/filter.lua"
for mode in plain enclave; do
    run fm --security $mode
    check "local module and data file in a chained stage, $mode: exits 0" test $? -eq 0
    grep '^Delays' "$T/r.fm" > "$T/d.fm.$mode"
    same "local module and data file in a chained stage, $mode: answer equals awk" \
        "$T/d.fm.$mode" "$T/expected"
    contains "local module and data file in a chained stage, $mode: filter-1 chained" \
        "$T/e.fm" "filter-1 +chain "
done

# SS_CHAIN_SHARED=0 (a Lua state per stage: the benchmarks' old way)
# gives the same answer and the same counts as the default
SS_CHAIN_SHARED=0 run c1
check "SS_CHAIN_SHARED=0: exits 0" test $? -eq 0
grep '^Delays' "$T/r.c1" > "$T/d.sep"
same "SS_CHAIN_SHARED=0: answer equals awk" "$T/d.sep" "$T/expected"
cp "$T/e.c1" "$T/e.sep"
run c1
for st in filter-1 reduce-1; do
    a=$(grep -E "^ +$st " "$T/e.sep" | awk '{print $3, $4, $5, $6, $7}')
    b=$(grep -E "^ +$st " "$T/e.c1" | awk '{print $3, $4, $5, $6, $7}')
    check "SS_CHAIN_SHARED=0: $st counts ($a) = one state's ($b)" test -n "$a" -a "$a" = "$b"
done

# attack: the chained scripts are measured with the first one. A filter
# script changed after the key service's manifest was made (the test
# build's hook gives the workers that file) makes map-1's enclave, which
# runs it, measure differently: no key, no answer.
sed 's/> 0/> -1000/' "$EX/filter-event.lua" > "$T/evil-filter.lua"
SS_RUN_TEST_SWAP_SCRIPT="filter=$T/evil-filter.lua" timeout -k 10 300 \
    "$ROOT/bin/sstream-test" run "$T/c1.yml" --data "$T/f.csv" \
    --security enclave --no-progress --output-dir "$T/o.evil" \
    > "$T/r.evil" 2> "$T/e.evil"
check "attack: a changed chained script: the run fails" test $? -ne 0
contains "attack: ... because map's enclave (which runs it) gets no key" "$T/e.evil" \
    "measurement of stage 'map' does not match the manifest"
lacks "attack: ... and no answer is printed" "$T/r.evil" "^Delays"
finish
