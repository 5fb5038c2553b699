#!/bin/bash
# `sstream run --on swarm` for real, on one Docker Swarm made here (as
# test_swarm.sh: dockerd started when none runs, `docker swarm init
# --advertise-addr 127.0.0.1`, the image built; all stopped or left at
# the end, only what the test started). One swarm, one image, for every
# case:
#   - DelayedFlights --on swarm equals awk, plain mode, with the balanced
#     summary (the services report to the monitor here over TCP+CURVE),
#     and the stack is gone afterwards;
#   - enclave mode without a node labelled sgx=true: the run fails within
#     its --schedule-timeout, naming the service and Swarm's reason;
#   - enclave mode once the node is labelled: equals awk (the key service
#     and the sink here; no data key in the stack);
#   - --detach, status, `sstream scale NAME map 3` mid-run (the result
#     does not change, the new workers worked), a reduce refused;
#   - rescaled up then down mid-run: the same result, the books "not
#     checked" (the stopped workers' batches were dealt again);
#   - --detach then stop: the stack is removed;
#   - Ctrl-C (SIGINT) on a foreground run: exit 130, the stack removed;
#   - a stage that fails in its containers: the run fails naming it.
# SKIPPED with the reason when no engine or no swarm can be had;
# SS_TEST_IMAGE=0 skips it (the first image build takes minutes).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/docker_lib.sh"
[ "${SS_TEST_IMAGE:-1}" = 0 ] && docker_skip "SS_TEST_IMAGE=0"
NAMES="ssc$$a ssc$$b ssc$$c ssc$$d ssc$$e ssc$$f ssc$$g ssc$$i"
swarm_down() {
    local n i
    for n in $NAMES; do "$DOCKER" stack rm "$n" > /dev/null 2>&1; done
    for ((i = 0; i < 60; i++)); do
        "$DOCKER" network ls --format '{{.Name}}' 2> /dev/null | grep -q "^ssc$$" || break
        sleep 0.5
    done
    swarm_leave
    docker_down
}
trap 'swarm_down; cleanup' EXIT
docker_up
swarm_mine
"$DOCKER" node update --label-add securestreams.data=true "$NODE" > /dev/null

image_build

export SS_STATE_DIR=$T/state
chmod 755 "$T"
mkdir -p "$T/data"
"$SS" gen flights --rows 20000 -o "$T/data/flights.csv"
reference "$T/data/flights.csv" > "$T/expected.txt"
chmod 755 "$T/data"
chmod 644 "$T/data/flights.csv"
P=$ROOT/examples/delayed-flights/pipeline.yml
set -- $NAMES
A=$1 B=$2 C=$3 D=$4 F=$5 G=$6 H=$7 I=$8
stack_gone() { ! "$DOCKER" stack ls --format '{{.Name}}' | grep -qx "$1"; }

# 1. plain mode, in the foreground
t0=$SECONDS
timeout 300 "$SS" run "$P" --on swarm --image "$IMG" --name "$A" \
    --data "$T/data/flights.csv" --output-dir "$T/o-a" \
    > "$T/result-a.txt" 2> "$T/run-a.log"
st=$?
check "run --on swarm (plain) ends with 0 (status $st, $((SECONDS - t0)) s)" [ $st -eq 0 ] ||
    tail -20 "$T/run-a.log"
same "DelayedFlights --on swarm (plain) equals awk" "$T/expected.txt" "$T/result-a.txt"
contains "its summary balances, counted by the services' reports" "$T/run-a.log" \
    "rows in = rows out \+ rows filtered \+ rows rejected: 20000 = .*: balanced"
contains "the summary lists the map workers of the swarm" "$T/run-a.log" "^  map-1 +worker +[0-9]"
check "the stack is removed at the end" stack_gone "$A"
lacks "no service key or data key stays in the output folder" <(ls -R "$T/o-a") "\.key$"

# 2. enclave mode, no node labelled sgx=true: a clear failure, no hang
"$SS" keygen "$T/keys" > /dev/null
t0=$SECONDS
timeout 300 "$SS" run "$P" --on swarm --image "$IMG" --name "$B" \
    --security enclave --keys "$T/keys" --data "$T/data/flights.csv" \
    --output-dir "$T/o-b" --schedule-timeout 15 > "$T/result-b.txt" 2> "$T/run-b.log"
st=$?
took=$((SECONDS - t0))
check "an enclave run without an SGX node fails (status $st, $took s)" [ $st -eq 1 ]
check "... within its schedule timeout and the set-up (under 120 s)" [ $took -lt 120 ]
contains "... naming the service and Swarm's reason" "$T/run-b.log" \
    "service stage-[a-z]+ cannot be placed: .*no suitable node.*sgx=true"
check "... and removes its stack" stack_gone "$B"
lacks "the enclave stack file holds no data key" "$T/o-b/stack.yml" "data\.key"

# 3. enclave mode on a labelled node
"$DOCKER" node update --label-add sgx=true "$NODE" > /dev/null
t0=$SECONDS
timeout 300 "$SS" run "$P" --on swarm --image "$IMG" --name "$C" \
    --security enclave --keys "$T/keys" --data "$T/data/flights.csv" \
    --output-dir "$T/o-c" > "$T/result-c.txt" 2> "$T/run-c.log"
st=$?
check "run --on swarm (enclave) ends with 0 (status $st, $((SECONDS - t0)) s)" [ $st -eq 0 ] ||
    tail -20 "$T/run-c.log"
same "DelayedFlights --on swarm (enclave) equals awk" "$T/expected.txt" "$T/result-c.txt"
contains "its summary balances" "$T/run-c.log" "rows in = .*: balanced"
contains "the key service here released the data key to attested enclaves" \
    "$T/o-c/logs/keyservice.log" "released the data key to worker map-1"

# 4. detached, rescaled mid-run: a map stage made slow (a busy loop per
# event, about 10 s for the input on one worker), so that the rescale
# comes while it has work
mkdir -p "$T/slow"
E=$ROOT/examples/delayed-flights
sed 's/^      if not value then return {} end/      for _ = 1, 50000 do end\n&/' \
    "$E/map-csv-to-event.lua" > "$T/slow/map-slow.lua"
cp "$E/filter-event.lua" "$E/reduce-events.lua" "$E/print-results.lua" "$T/slow/"
sed 's/map-csv-to-event.lua/map-slow.lua/' "$P" > "$T/slow/pipeline.yml"
check "the slow map has its busy loop" grep -q "for _ = 1, 50000" "$T/slow/map-slow.lua"
gone() { ! kill -0 "$1" 2> /dev/null; }
"$SS" run "$T/slow/pipeline.yml" --on swarm --image "$IMG" --name "$D" --detach \
    --data "$T/data/flights.csv" --output-dir "$T/o-d" > "$T/detach-d.txt" 2> "$T/detach-d.log"
check "run --detach returns once deployed, printing the name" grep -qx "$D" "$T/detach-d.txt" ||
    cat "$T/detach-d.log"
rows=""
for ((i = 0; i < 240; i++)); do # until the source reported rows
    rows=$(sed -n 's/^progress: .*source \([0-9.]*[kM]*\) rows.*/\1/p' "$T/o-d/status" 2> /dev/null)
    [ -n "$rows" ] && [ "$rows" != 0 ] && break
    sleep 0.5
done
"$SS" status "$D" > "$T/status-d.txt"
check "sstream status says it runs" grep -q "^state: running" "$T/status-d.txt"
contains "... with its services and replicas" "$T/status-d.txt" "${D}_stage-map"
"$SS" scale "$D" reduce 2 > /dev/null 2> "$T/scale-r.txt"
check "sstream scale refuses a stateful stage" [ $? -eq 1 ]
contains "... saying why" "$T/scale-r.txt" "stage 'reduce' keeps state.*handing it over at a checkpoint is done by the supervisor of a run on this machine only"
"$SS" scale "$D" map 3 > "$T/scale-m.txt" 2>&1
st=$?
check "sstream scale $D map 3 mid-run (the source had sent $rows rows)" [ $st -eq 0 ]
[ $st -eq 0 ] || cat "$T/scale-m.txt"
reps=$("$DOCKER" service ls --filter "name=${D}_stage-map" --format '{{.Replicas}}')
echo "    (stage-map replicas: $reps)"
check "the swarm runs 3 map workers" grep -q "/3" <<< "$reps"
pid=$(sed -n 's/^pid=//p' "$SS_STATE_DIR/$D.run")
for ((i = 0; i < 600; i++)); do gone "$pid" && break; sleep 0.5; done
check "the detached run ends" gone "$pid"
check "status says done" grep -q "^state: done" "$T/o-d/status" || cat "$T/o-d/run.log"
same "rescaled mid-run, the result equals awk" "$T/expected.txt" "$T/o-d/results.txt"
contains "... and balances" "$T/o-d/run.log" "rows in = .*: balanced"
contains "... and a map worker added by the rescale took part" "$T/o-d/run.log" "^  map-[23] +worker +[1-9]"
check "... and its stack is gone" stack_gone "$D"

# 4b. down mid-run: a run whose map starts on 3 workers is scaled to 1
# once the source has sent rows; the stopped replicas' batches in flight
# are dealt again by their router; the result is the same, and the books
# say why rows are not checked. The map is 4x slower than in 4 (about
# 40 s for the input on one worker): on a quiet machine a run of 4's
# pipeline ended before a scale down came (12 s; "service ... not found")
mkdir -p "$T/slower"
sed 's/for _ = 1, 50000 do end/for _ = 1, 200000 do end/' "$T/slow/map-slow.lua" > "$T/slower/map-slow.lua"
cp "$T/slow/filter-event.lua" "$T/slow/reduce-events.lua" "$T/slow/print-results.lua" "$T/slower/"
sed '0,/^    workers: 1$/s//    workers: 3/' "$T/slow/pipeline.yml" > "$T/slower/pipeline.yml"
check "the slower map has its longer busy loop and 3 workers" \
    eval 'grep -q "for _ = 1, 200000" "$T/slower/map-slow.lua" &&
          [ "$(grep -c "^    workers: 3$" "$T/slower/pipeline.yml")" = 1 ]'
"$SS" run "$T/slower/pipeline.yml" --on swarm --image "$IMG" --name "$I" --detach \
    --data "$T/data/flights.csv" --output-dir "$T/o-i" > /dev/null 2> "$T/detach-i.log"
for ((i = 0; i < 240; i++)); do
    grep -q '^progress: .*source [1-9]' "$T/o-i/status" 2> /dev/null && break
    sleep 0.5
done
sleep 2 # every map worker takes batches
"$SS" scale "$I" map 1 > "$T/scale-i.txt" 2>&1
st=$?
check "sstream scale $I map 1 (from 3), mid-run" [ $st -eq 0 ]
[ $st -eq 0 ] || cat "$T/scale-i.txt"
pid=$(sed -n 's/^pid=//p' "$SS_STATE_DIR/$I.run")
for ((i = 0; i < 600; i++)); do gone "$pid" && break; sleep 0.5; done
check "the run rescaled down ends done" grep -q "^state: done" "$T/o-i/status" || cat "$T/o-i/run.log"
same "rescaled down mid-run, the result equals awk" "$T/expected.txt" "$T/o-i/results.txt"
contains "... and the summary says the stopped workers' rows are not checked" "$T/o-i/run.log" \
    "not checked: the engine stopped [1-9][0-9]* worker\(s\) during the run"

# 5. detached, then stopped (the slow pipeline again: it is still running)
"$SS" run "$T/slow/pipeline.yml" --on swarm --image "$IMG" --name "$F" --detach \
    --data "$T/data/flights.csv" --output-dir "$T/o-e" > /dev/null 2> "$T/detach-e.log"
"$SS" status "$F" > "$T/status-e.txt"
check "a second detached run runs" grep -q "^state: running" "$T/status-e.txt"
"$SS" logs "$F" router-1 > "$T/logs-e.txt" 2>&1
check "sstream logs NAME router-1 shows its router's log" grep -q "== router-1" "$T/logs-e.txt"
t0=$SECONDS
timeout 150 "$SS" stop "$F" > "$T/stop-e.txt" 2>&1
check "sstream stop ends it ($((SECONDS - t0)) s)" [ $? -eq 0 ]
check "... its stack is removed" stack_gone "$F"
check "... and status says stopped" grep -q "^state: stopped" "$T/o-e/status"
"$SS" status "$F" > /dev/null
check "status of a stopped run exits 1" [ $? -eq 1 ]

# 6. Ctrl-C on a run in the foreground
"$SS" run "$T/slow/pipeline.yml" --on swarm --image "$IMG" --name "$G" \
    --data "$T/data/flights.csv" --output-dir "$T/o-g" > /dev/null 2> "$T/run-g.log" &
pid=$!
_pids+=($pid)
for ((i = 0; i < 240; i++)); do
    grep -q "^state: running" "$T/o-g/status" 2> /dev/null && break
    sleep 0.5
done
sleep 2
kill -INT $pid
t0=$SECONDS
wait_max 120 $pid
st=$?
check "Ctrl-C ends the run with 130 (status $st, $((SECONDS - t0)) s)" [ $st -eq 130 ]
contains "... saying it removes the stack" "$T/run-g.log" "interrupted: removing the stack $G"
check "... and the stack is gone" stack_gone "$G"

# 7. a stage that fails in its containers (its script raises where SS_NAME
# is set, i.e. not in the run's own check here)
mkdir -p "$T/bad"
cp "$E/"*.lua "$T/bad/"
{ echo "if os.getenv('SS_NAME') then error('filter fails on purpose') end"
  cat "$E/filter-event.lua"; } > "$T/bad/filter-event.lua"
cp "$P" "$T/bad/pipeline.yml"
t0=$SECONDS
timeout 300 "$SS" run "$T/bad/pipeline.yml" --on swarm --image "$IMG" --name "$H" \
    --data "$T/data/flights.csv" --output-dir "$T/o-h" > /dev/null 2> "$T/run-h.log"
st=$?
check "a run whose filter fails in its containers fails (status $st, $((SECONDS - t0)) s)" [ $st -eq 1 ]
contains "... naming the service and the task's error" "$T/run-h.log" \
    "service stage-filter failed \(task .*stage-filter\.1: Failed.*non-zero exit"
contains "... with its last log lines" "$T/run-h.log" "filter fails on purpose"
check "... and removes its stack" stack_gone "$H"
finish
