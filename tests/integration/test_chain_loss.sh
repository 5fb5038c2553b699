#!/bin/bash
# Losing a chained worker mid-run (chain: true): a worker whose chained
# stages are all stateless loses nothing (its router gives its batches to
# the other worker; the answer is still awk's); a worker whose chain holds
# a reduce is stateful: its death stops the run naming it, never a wrong
# answer. (test_worker_loss.sh does the same without chaining.)
source "$(dirname "$0")/lib.sh"
EX=$ROOT/examples/delayed-flights
cd "$T"
cp "$EX"/*.lua .
RUN_TIMEOUT=${RUN_TIMEOUT:-180}
# a mapper slowed down on purpose, so that there is time to kill it
sed 's/if not value then return {} end/for _ = 1, 100000 do end\n      if not value then return {} end/' \
    map-csv-to-event.lua > slow-map.lua
grep -q 'for _ = 1, 100000' slow-map.lua || echo "fixture: slow-map.lua not slowed" >&2
"$SS" gen flights --rows 40000 --seed 5 -o data.csv
reference data.csv > expected

# map and filter chained (2 workers each); reduce (1 worker) on its own
cat > stateless.yml <<'YML'
name: chain-loss-stateless
chain: true
source: { file: data.csv, parts: 2, format: csv, header: true }
stages:
  - { name: map, script: slow-map.lua, workers: 2 }
  - { name: filter, script: filter-event.lua, workers: 2 }
  - { name: reduce, script: reduce-events.lua, workers: 1 }
sink: { script: print-results.lua }
YML
started() { # $1 tag, $2 worker
    grep -q "\"name\":\"$2\".*\"in\":[1-9][0-9]*," "metrics-$1" 2>/dev/null
}
check "a chained stateless worker (map-2) was found and killed mid-stream" \
    run_and_kill stateless.yml map-2 a "started a map-2"
check "the run goes on and exits 0" test "$(cat rc-a)" -eq 0
grep '^Delays' res-a > got-a
same "the answer is still awk's after losing map-2" got-a expected
contains "the loss is reported, naming the worker" err-a "map-2 was killed by signal 9; stage 'map' goes on"
contains "the balance is not claimed after a loss" err-a "not checked: 1 worker"

# the three chained: the worker holds reduce's state
sed -e 's/reduce-events.lua, workers: 1/reduce-events.lua, workers: 2/' \
    -e 's/chain-loss-stateless/chain-loss-stateful/' stateless.yml > stateful.yml
check "a chained stateful worker (map-2) was found and killed mid-stream" \
    run_and_kill stateful.yml map-2 b "started b map-2"
check "the run fails (non-zero exit)" test "$(cat rc-b)" -ne 0
contains "the failure names the lost worker" err-b "map-2.*(stateful|cannot be retried)"
lacks "... without saying its stage goes on" err-b "stage 'map' goes on"
lacks "no answer is printed after losing state" res-b "^Delays"
finish
