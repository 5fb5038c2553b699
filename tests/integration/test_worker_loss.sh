#!/bin/bash
# Losing a worker mid-run: a stateless worker killed with SIGKILL loses
# nothing (its router gives its unacknowledged batches to the other
# worker) and the answer is still awk's; a stateful worker's death stops
# the run with a message naming it, never a wrong answer. A stateless
# worker killed after its input ended, before it said so downstream, does
# not hang the run either.
source "$(dirname "$0")/lib.sh"
EX=$ROOT/examples/delayed-flights
cd "$T"
cp "$EX"/*.lua .
# a run that hangs is a failed check, not a stuck suite
RUN_TIMEOUT=${RUN_TIMEOUT:-180}
# a mapper slowed down on purpose (about 4 s of CPU per worker), so that
# there is time to kill it mid-stream even on a fast machine
sed 's/if not value then return {} end/for _ = 1, 100000 do end\n      if not value then return {} end/' \
    map-csv-to-event.lua > slow-map.lua
grep -q 'for _ = 1, 100000' slow-map.lua || echo "fixture: slow-map.lua not slowed" >&2
"$SS" gen flights --rows 40000 --seed 5 -o data.csv
reference data.csv > expected

cat > stateless.yml <<'YML'
name: loss-stateless
source: { file: data.csv, parts: 2, format: csv, header: true }
stages:
  - { name: map, script: slow-map.lua, workers: 2 }
  - { name: filter, script: filter-event.lua, workers: 1 }
  - { name: reduce, script: reduce-events.lua, workers: 1 }
sink: { script: print-results.lua }
YML
# the moments, from the run's metrics (one sample a second): the victim
# has started working, with most of its input still to come
started() { # $1 tag, $2 worker
    grep -q "\"name\":\"$2\".*\"in\":[1-9][0-9]*," "metrics-$1" 2>/dev/null
}
check "a stateless worker (map-2) was found and killed mid-stream" \
    run_and_kill stateless.yml map-2 a "started a map-2"
check "the run goes on and exits 0" test "$(cat rc-a)" -eq 0
grep '^Delays' res-a > got-a
same "the answer is still awk's after losing map-2" got-a expected
contains "the loss is reported, naming the worker" err-a "map-2 was killed by signal 9; stage 'map' goes on"
contains "the balance is not claimed after a loss" err-a "not checked: 1 worker"

sed -e 's/slow-map.lua, workers: 2/slow-map.lua, workers: 1/' \
    -e 's/reduce-events.lua, workers: 1/reduce-events.lua, workers: 2/' \
    -e 's/loss-stateless/loss-stateful/' stateless.yml > stateful.yml
check "a stateful worker (reduce-1) was found and killed mid-stream" \
    run_and_kill stateful.yml reduce-1 b "started b reduce-1"
check "the run fails (non-zero exit)" test "$(cat rc-b)" -ne 0
contains "the failure names the lost stateful worker" err-b "reduce-1.*(stateful|cannot be retried)"
lacks "... without first saying the stage goes on without it" err-b "stage 'reduce' goes on"
contains "... and the last line says why the run failed" <(tail -1 err-b) "failed because worker reduce-1 was killed by signal 9 .*stage 'reduce' is stateful"
lacks "no answer is printed after losing state" res-b "^Delays"

# A stateless worker killed after its router's end of stream, while it
# completes (a long onCompleted) and before it sent its own: the next
# router notices it disconnected and completes without it; the answer is
# still awk's. (This used to hang the run.)
sed 's/^  :subscribeToSocket(to_socket)/  :tap(nil, nil, function()\n    local t = os.clock()\n    while os.clock() - t < 12 do end -- a long completion\n  end)\n  :subscribeToSocket(to_socket)/' \
    map-csv-to-event.lua > busy-map.lua
grep -q 'a long completion' busy-map.lua || echo "fixture: busy-map.lua has no long completion" >&2
sed -e 's/slow-map.lua/busy-map.lua/' -e 's/loss-stateless/loss-late/' \
    stateless.yml > late.yml
# the moment: the filter has every mapped row, so map-2 has no data left
all_mapped='grep -q "\"name\":\"filter-1\".*\"in\":40000," metrics-c 2>/dev/null'
check "a stateless worker (map-2) was killed while completing" \
    run_and_kill late.yml map-2 c "$all_mapped"
check "the run ends by itself and exits 0" test "$(cat rc-c)" -eq 0
grep '^Delays' res-c > got-c
same "the answer is still awk's after losing map-2 at the end" got-c expected
contains "the next router completed without map-2's end of stream" err-c \
    "producer 'map-2' of stage map went away before its end of stream"
finish
