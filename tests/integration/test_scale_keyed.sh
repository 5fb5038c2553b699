#!/bin/bash
# `sstream scale NAME reduce N` on a keyed stateful stage (partition_by)
# of a local run with checkpoints, in plain, encrypted and enclave modes:
# DelayedFlights keyed (40,000 rows, 8 KiB batches, a checkpoint every
# 100 ms, a map made slow so that checkpoints complete mid-run), reduce
# on 2 workers, rescaled to 3 and then to 1 mid-run. Each rescale waits
# for the next complete checkpoint, stops the pipeline and resumes from
# it with the new count, each new worker taking its key groups' state
# from every old worker's snapshot (in the enclave in enclave mode). The
# result equals awk's, the books balance (each row counted once, the
# workers that went keep their rows up to the checkpoint), the rescales
# do not count against --restarts (the run has none), and the summary
# says what happened. Also: a second request while one waits is refused.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1
E=$ROOT/examples/delayed-flights
"$SS" gen flights --rows 40000 -o flights.csv > /dev/null 2>&1
reference flights.csv | sort > expected.txt
sed 's/^      if not value then return {} end/      for _ = 1, 40000 do end\n&/' \
    "$E/map-csv-to-event.lua" > map-slow.lua
cp "$E/filter-event.lua" "$E/reduce-events.lua" "$E/print-keyed.lua" .
sed -e 's/map-csv-to-event.lua/map-slow.lua/' -e 's/^    workers: 4$/    workers: 2/' \
    "$E/pipeline-keyed.yml" | sed '0,/^    workers: 2$/s//    workers: 1/' > pk.yml
check "the keyed pipeline: a slow map on 1 worker, reduce on 2 by carrier" \
    eval 'grep -q "for _ = 1, 40000" map-slow.lua && grep -q "partition_by: uniquecarrier" pk.yml &&
          [ "$(grep -c "^    workers: 2$" pk.yml)" = 2 ]'

# scale_retry TAG N: sstream scale delayed-flights-keyed reduce N, again
# while the run is starting or a rescale waits; output in scale-TAG
scale_retry() {
    local i
    for ((i = 0; i < 150; i++)); do
        timeout 30 "$SS" scale delayed-flights-keyed reduce "$2" > "scale-$1" 2>&1
        SRC=$?
        grep -qE "is starting|waits for the next checkpoint already|no run '" "scale-$1" ||
            return 0
        sleep 0.2
    done
}
rows_of() { sed -n "s/^  $2 \+worker \+\([0-9]*\) .*/\1/p" "err-$1"; }

for mode in plain encrypted enclave; do
    timeout -k 5 120 "$SS" run pk.yml --data flights.csv --security $mode \
        --batch-size 8K --checkpoint-interval 100 --output-dir "o-$mode" \
        --no-progress > "res-$mode" 2> "err-$mode" &
    run=$!
    _pids+=($run)
    scale_retry "$mode-3" 3
    check "$mode: scale reduce 3 is accepted for the next checkpoint" [ "$SRC" -eq 0 ]
    contains "$mode: ... saying so" "scale-$mode-3" "reduce of delayed-flights-keyed: 3 workers at the next complete checkpoint"
    timeout 30 "$SS" scale delayed-flights-keyed reduce 1 > /dev/null 2> "busy-$mode"
    contains "$mode: a second request while it waits is refused" "busy-$mode" \
        "a rescale of stage reduce to 3 workers waits for the next checkpoint already|has 3 workers already"
    for ((i = 0; i < 300; i++)); do grep -q "resumes on 3 worker" "err-$mode" && break; sleep 0.1; done
    scale_retry "$mode-1" 1
    check "$mode: then scale reduce 1 is accepted" [ "$SRC" -eq 0 ]
    wait_max 130 $run
    check "$mode: the run ends done" [ $? -eq 0 ]
    sort "res-$mode" > "sorted-$mode"
    same "$mode: ... with awk's result" expected.txt "sorted-$mode"
    contains "$mode: ... the books balance (each row once)" "err-$mode" "rows in = .*: balanced"
    contains "$mode: it stopped at a checkpoint and resumed from it on 3 workers" "err-$mode" \
        "stage reduce resumes on 3 worker\(s\) from the snapshots of its 2 worker\(s\) at checkpoint [0-9]+"
    contains "$mode: ... then on 1 worker" "err-$mode" \
        "stage reduce resumes on 1 worker\(s\) from the snapshots of its 3 worker\(s\) at checkpoint [0-9]+"
    contains "$mode: ... said as a rescale, not a restart" "err-$mode" "\(a rescale: not counted against --restarts\)"
    contains "$mode: the summary says when" "err-$mode" \
        "rescaled \(sstream scale\): reduce 2 -> 3 at checkpoint [0-9]+ .*; reduce 3 -> 1 at checkpoint [0-9]+"
    contains "$mode: ... and keeps the rows of the workers that went" "err-$mode" "^  left: reduce-[23] .*reduce-[23]"
    check "$mode: reduce-3 took rows while it was there" [ "$(rows_of $mode reduce-3)" -gt 0 ]
    lacks "$mode: no failure, no restart from the start" "err-$mode" "restarting from the start|failed because"
done
finish
