#!/bin/bash
# Losing a worker mid-run: a stateless worker killed with SIGKILL loses
# nothing (its router gives its unacknowledged batches to the other
# worker) and the answer is still awk's; a stateful worker's death stops
# the run with a message naming it, never a wrong answer.
source "$(dirname "$0")/lib.sh"
EX=$ROOT/examples/delayed-flights
cd "$T"
cp "$EX"/*.lua .
# a mapper slowed down on purpose, so that there is time to kill it
sed 's/if not value then return {} end/for _ = 1, 20000 do end\n      if not value then return {} end/' \
    map-csv-to-event.lua > slow-map.lua
grep -q 'for _ = 1, 20000' slow-map.lua || echo "fixture: slow-map.lua not slowed" >&2
"$SS" gen flights --rows 40000 --seed 5 -o data.csv
reference data.csv > expected

run_and_kill() { # $1 pipeline, $2 worker to kill, $3 tag
    "$SS" run "$1" --output-dir "out-$3" > "res-$3" 2> "err-$3" &
    local run=$!
    _pids+=($run)
    local victim=""
    for _ in $(seq 1 100); do
        # only this run's children: other runs may share the machine
        victim=$(pgrep -P "$run" -f "sstream worker .*--name $2( |$)" | head -1)
        [ -n "$victim" ] && break
        sleep 0.05
    done
    sleep 1
    [ -n "$victim" ] && kill -KILL "$victim"
    wait $run
    echo $? > "rc-$3"
    [ -n "$victim" ]
}

cat > stateless.yml <<'YML'
name: loss-stateless
source: { file: data.csv, parts: 2, format: csv, header: true }
stages:
  - { name: map, script: slow-map.lua, workers: 2 }
  - { name: filter, script: filter-event.lua, workers: 1 }
  - { name: reduce, script: reduce-events.lua, workers: 1 }
sink: { script: print-results.lua }
YML
check "a stateless worker (map-2) was found and killed" run_and_kill stateless.yml map-2 a
check "the run goes on and exits 0" test "$(cat rc-a)" -eq 0
grep '^Delays' res-a > got-a
same "the answer is still awk's after losing map-2" got-a expected
contains "the loss is reported, naming the worker" err-a "map-2 was killed by signal 9; stage 'map' goes on"
contains "the balance is not claimed after a loss" err-a "not checked: 1 worker"

sed -e 's/slow-map.lua, workers: 2/slow-map.lua, workers: 1/' \
    -e 's/reduce-events.lua, workers: 1/reduce-events.lua, workers: 2/' \
    -e 's/loss-stateless/loss-stateful/' stateless.yml > stateful.yml
check "a stateful worker (reduce-1) was found and killed" run_and_kill stateful.yml reduce-1 b
check "the run fails (non-zero exit)" test "$(cat rc-b)" -ne 0
contains "the failure names the lost stateful worker" err-b "reduce-1.*(stateful|cannot be retried)"
lacks "no answer is printed after losing state" res-b "^Delays"
finish
