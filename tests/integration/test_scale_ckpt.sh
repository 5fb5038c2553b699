#!/bin/bash
# A rescale down of a stateless stage (map 2 -> 1) in a run that takes
# checkpoints, followed by a resume from a checkpoint (a rescale of the
# keyed reduce 4 -> 3, which stops the pipeline at the next complete
# checkpoint and resumes from it). DelayedFlights keyed, 1,500,000 rows
# (about 11 s; a map made slow with small batches did not show the loss),
# a checkpoint every 300 ms, the map scaled as soon as the run is up. A map worker that left gracefully while checkpoints went on
# took no part in the later ones and its router dealt the batches it held
# (from before a barrier) to the survivors after they had passed it: the
# checkpoint's source offsets were past rows no state held, and the
# resume from it lost them (the map received fewer events than the
# source sent: MISMATCH, wrong averages). Now the map's scale-down in a
# run with checkpoints waits for the next complete checkpoint and
# resumes from it with the new count, as the keyed rescale does. The
# result must equal awk's and the books balance. Then a map worker killed
# mid-run: a later rescale of the keyed reduce is refused (a checkpoint
# completed after the kill may miss the rows its router dealt again).
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1
E=$ROOT/examples/delayed-flights
"$SS" gen flights --rows 1500000 -o flights.csv > /dev/null 2>&1
reference flights.csv | sort > expected.txt
cp "$E"/*.lua "$E/pipeline-keyed.yml" .
check "the keyed pipeline: map and filter on 2 workers, reduce on 4 by carrier" \
    eval '[ "$(grep -c "^    workers: 2$" pipeline-keyed.yml)" = 2 ] && grep -q "^    workers: 4$" pipeline-keyed.yml'

# scale_retry TAG STAGE N: sstream scale delayed-flights-keyed STAGE N,
# again while the run is starting, restarting or a rescale waits
scale_retry() {
    local i
    for ((i = 0; i < 150; i++)); do
        timeout 30 "$SS" scale delayed-flights-keyed "$2" "$3" > "scale-$1" 2>&1
        SRC=$?
        grep -qE "is starting|is restarting|still starting|waits for the next checkpoint already|no run '" "scale-$1" ||
            return 0
        sleep 0.2
    done
}

timeout -k 5 120 "$SS" run pipeline-keyed.yml --data flights.csv \
    --checkpoint-interval 300 --output-dir o --no-progress > res 2> err &
run=$!
_pids+=($run)
scale_retry map map 1
check "scale map 1 (from 2) mid-run is accepted" [ "$SRC" -eq 0 ]
contains "... at the next complete checkpoint (the run can resume from one)" scale-map \
    "map of delayed-flights-keyed: 1 worker at the next complete checkpoint"
sleep 0.5
scale_retry reduce reduce 3
check "then scale reduce 3 (from 4) is accepted" [ "$SRC" -eq 0 ]
wait_max 130 $run
check "the run ends done" [ $? -eq 0 ]
sort res > sorted
same "... with awk's result (no row lost by the resume)" expected.txt sorted
contains "... the books balance" err "rows in = .*: balanced"
lacks "... no stage received fewer events than the source sent" err "received [0-9]+ events but"
contains "the reduce resumed from a checkpoint on 3 workers" err \
    "stage reduce resumes on 3 worker\(s\) from the snapshots of its 4 worker\(s\) at checkpoint [0-9]+"
contains "the summary says the map went down at a checkpoint" err \
    "rescaled \(sstream scale\): map 2 -> 1 at checkpoint [0-9]+ .*; reduce 4 -> 3 at checkpoint [0-9]+"
contains "... and keeps the rows of the workers that went" err "^  left: map-2 .*reduce-4"
lacks "no live leave (no worker lost, dealt again)" err "map-2 left stage 'map'|map-2 was lost"
lacks "no failure, no restart from the start" err "restarting from the start|failed because"

# 2. map-2 killed (kill -9) while the run goes on (its stage goes on with
# map-1, its router deals the batches it held to map-1, maybe after map-1
# passed a later barrier), then the keyed reduce 4 -> 3: a checkpoint
# completed since could miss those rows, so the rescale is refused,
# saying why, and the run ends with awk's answer
timeout -k 5 120 "$SS" run pipeline-keyed.yml --data flights.csv \
    --checkpoint-interval 300 --output-dir o2 --no-progress > res2 2> err2 &
run=$!
_pids+=($run)
victim=""
for ((i = 0; i < 200; i++)); do
    sup=$(pgrep -P "$run" | head -1) # sstream run, under timeout
    [ -n "$sup" ] && victim=$(pgrep -P "$sup" -f "sstream worker .*--name map-2( |$)" | head -1)
    [ -n "$victim" ] && break
    sleep 0.05
done
# once a checkpoint completed (the manifest is written)
for ((i = 0; i < 100; i++)); do [ -s o2/checkpoints/manifest.json ] && break; sleep 0.05; done
check "map-2 was there to kill" kill -KILL "$victim"
for ((i = 0; i < 100; i++)); do grep -q "map-2 was killed" err2 && break; sleep 0.1; done
scale_retry kill reduce 3
check "then scale reduce 3 is refused (exit 1)" [ "$SRC" -eq 1 ]
contains "... saying a checkpoint completed since could lose rows" scale-kill \
    "a worker of this run was killed while its stage went on: .* no checkpoint completed since can be resumed from"
wait_max 130 $run
check "the run ends done" [ $? -eq 0 ]
sort res2 > sorted2
same "... with awk's result" expected.txt sorted2
contains "... its routers checked that no batch was lost or duplicated" err2 \
    "rows in = .*: not checked: 1 worker\(s\) died .*no batch was lost or duplicated"
lacks "... no restart, no resume" err2 "restarting|resumes on"
finish
