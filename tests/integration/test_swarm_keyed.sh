#!/bin/bash
# Keyed and chained pipelines on a real single-node Docker Swarm (the
# test's own: dockerd started when none runs, the swarm left at the end):
# the stack that `sstream deploy --target swarm` writes for
# pipeline-keyed.yml (reduce partitioned by carrier over 2 replicas,
# each taking its index from its task slot) and for pipeline-chained.yml
# (map, filter and reduce in one worker service, 2 routers) runs, the
# sink on this machine against the published port, and both answers
# equal awk's (the keyed printer fails the run if a carrier comes from two
# reducers, i.e. if the partitioning did not hold); and carrier-delays,
# whose names stage reads carriers.csv next to its script, equals `sstream
# run`. Builds the image
# (make image; seconds when test_image.sh or test_swarm.sh built it).
# SKIPPED with the reason when no engine or no swarm can be had;
# SS_TEST_IMAGE=0 skips it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/docker_lib.sh"
[ "${SS_TEST_IMAGE:-1}" = 0 ] && docker_skip "SS_TEST_IMAGE=0"
STACK=sstk$$
stacks_down() {
    local s i
    for s in "${STACK}k" "${STACK}c" "${STACK}d"; do "$DOCKER" stack rm "$s" > /dev/null 2>&1; done
    for ((i = 0; i < 60; i++)); do # the stack's network goes last
        "$DOCKER" network ls --format '{{.Name}}' 2> /dev/null | grep -q "^$STACK" || break
        sleep 0.5
    done
}
trap 'stacks_down; swarm_leave; docker_down; cleanup' EXIT
docker_up
swarm_mine
"$DOCKER" node update --label-add securestreams.data=true "$NODE" > /dev/null

image_build

mkdir -p "$T/data"
"$SS" gen flights --rows 20000 -o "$T/data/flights.csv"
reference "$T/data/flights.csv" > "$T/expected.txt"
chmod 755 "$T" "$T/data"
chmod 644 "$T/data/flights.csv"
E=$ROOT/examples/delayed-flights

# run_stack TAG PIPELINE PORT SINK-SCRIPT [deploy options]: deploys, runs
# the sink here, compares the Delays lines with awk, removes the stack
run_stack() {
    local tag=$1 pl=$2 port=$3 sink=$4 run
    shift 4
    run=$(printf '%016x' $((0x5c000000 + $$ + ${#tag})))
    "$SS" deploy "$pl" --target swarm --image "$IMG" --data-dir "$T/data" \
        --run "$run" -o "$T/$tag" "$@" > /dev/null
    check "$tag: sstream deploy writes the stack" [ -s "$T/$tag/stack.yml" ]
    "$DOCKER" stack deploy -c "$T/$tag/stack.yml" "${STACK}$tag" > "$T/deploy-$tag.log" 2>&1
    check "$tag: docker stack deploy takes it" [ $? -eq 0 ] || cat "$T/deploy-$tag.log"
    local t0=$SECONDS sink_pid st
    SS_RUN=$run "$SS" sink "$sink" --from "tcp://127.0.0.1:$port" \
        --connect-timeout-ms 120000 > "$T/result-$tag.txt" 2> "$T/sink-$tag.log" &
    sink_pid=$!
    _pids+=($sink_pid)
    wait_max 180 $sink_pid
    st=$?
    check "$tag: the sink ends (status $st, $((SECONDS - t0)) s)" [ $st -eq 0 ]
    grep '^Delays' "$T/result-$tag.txt" > "$T/delays-$tag.txt"
    same "$tag: the answer on Swarm equals awk" "$T/expected.txt" "$T/delays-$tag.txt"
    if [ $st -ne 0 ]; then
        tail -3 "$T/sink-$tag.log"
        for s in $("$DOCKER" stack services -q "${STACK}$tag"); do
            "$DOCKER" service logs --tail 3 "$s" 2>&1
        done | head -40
    fi
    "$DOCKER" stack rm "${STACK}$tag" > /dev/null 2>&1
}
run_stack k "$E/pipeline-keyed.yml" 5562 "$E/print-keyed.lua" --workers 2
contains "keyed: router-3 has one slot per reduce replica" "$T/k/stack.yml" '"router-3", "--partitions", "2"'
run_stack c "$E/pipeline-chained.yml" 5558 "$E/print-results.lua"
# a stage that reads a data file: carrier-delays' names.lua joins with
# carriers.csv, which must reach its container next to the script; the
# answer equals `sstream run`'s here
CD=$ROOT/examples/carrier-delays
"$SS" run "$CD/pipeline.yml" --data "$T/data/flights.csv" --output-dir "$T/o-cd" \
    --no-progress > "$T/cd-local.txt" 2> /dev/null
run=$(printf '%016x' $((0x5d000000 + $$)))
"$SS" deploy "$CD/pipeline.yml" --target swarm --image "$IMG" --data-dir "$T/data" \
    --run "$run" -o "$T/cd" > /dev/null
"$DOCKER" stack deploy -c "$T/cd/stack.yml" "${STACK}d" > "$T/deploy-d.log" 2>&1
check "carrier-delays: docker stack deploy takes it" [ $? -eq 0 ] || cat "$T/deploy-d.log"
SS_RUN=$run "$SS" sink "$CD/print-delays.lua" --from tcp://127.0.0.1:5562 \
    --connect-timeout-ms 120000 > "$T/cd-swarm.txt" 2> "$T/sink-d.log" &
sink_pid=$!
_pids+=($sink_pid)
wait_max 180 $sink_pid
check "carrier-delays: the sink ends (status $?)" [ -s "$T/cd-swarm.txt" ]
check "carrier-delays: names joined from carriers.csv in the container" grep -q "American" "$T/cd-swarm.txt"
same "carrier-delays on Swarm equals sstream run's answer" "$T/cd-local.txt" "$T/cd-swarm.txt"
"$DOCKER" stack rm "${STACK}d" > /dev/null 2>&1
finish
