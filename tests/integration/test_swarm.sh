#!/bin/bash
# A real Docker Swarm on this machine: starts dockerd when none runs,
# `docker swarm init --advertise-addr 127.0.0.1` when no swarm is active
# (and leaves it again at the end: only what the test started), builds
# the image (make image), labels the node, deploys the stack that
# `sstream deploy --target swarm` writes for DelayedFlights (plain mode),
# runs the sink on this machine against the published port of the last
# router, and compares with awk. Then the same in enclave mode, with the
# key service and the sink on this machine and sealed input; its stages
# stay unscheduled (Swarm says why) until the node is labelled sgx=true.
# SKIPPED with the reason when no engine or no swarm can be had.
# SS_TEST_IMAGE=0 skips it (the first image build takes minutes).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/docker_lib.sh"
[ "${SS_TEST_IMAGE:-1}" = 0 ] && docker_skip "SS_TEST_IMAGE=0"
STACK=sst$$
swarm_down() {
    "$DOCKER" stack rm "$STACK" > /dev/null 2>&1
    "$DOCKER" stack rm "${STACK}e" > /dev/null 2>&1
    local i
    for ((i = 0; i < 60; i++)); do # the stack's network goes last
        "$DOCKER" network ls --format '{{.Name}}' 2> /dev/null | grep -q "^$STACK" || break
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

mkdir -p "$T/data"
"$SS" gen flights --rows 20000 -o "$T/data/flights.csv"
reference "$T/data/flights.csv" > "$T/expected.txt"
chmod 755 "$T" "$T/data"
chmod 644 "$T/data/flights.csv"
RUN=$(printf '%016x' $((0x5a000000 + $$)))
P=$ROOT/examples/delayed-flights/pipeline.yml
"$SS" deploy "$P" --target swarm --image "$IMG" --data-dir "$T/data" \
    --run "$RUN" -o "$T/plain" > /dev/null
check "sstream deploy writes the stack" [ -s "$T/plain/stack.yml" ]
"$DOCKER" stack deploy -c "$T/plain/stack.yml" "$STACK" > "$T/deploy.log" 2>&1
check "docker stack deploy takes it" [ $? -eq 0 ]
# the sink runs here, on the owner's machine, against the published port
t0=$SECONDS
SS_RUN=$RUN OUTPUT=$T/output.log "$SS" sink "$ROOT/examples/delayed-flights/print-results.lua" \
    --from tcp://127.0.0.1:5562 --connect-timeout-ms 120000 > "$T/result.txt" 2> "$T/sink.log" &
sink=$!
_pids+=($sink)
wait_max 180 $sink
st=$?
check "the sink ends (status $st, $((SECONDS - t0)) s)" [ $st -eq 0 ]
same "DelayedFlights as a Swarm stack equals awk" "$T/expected.txt" "$T/result.txt"
if [ $st -ne 0 ]; then
    "$DOCKER" service ls
    for s in $("$DOCKER" stack services -q "$STACK"); do "$DOCKER" service logs --tail 3 "$s" 2>&1; done | head -40
fi
"$DOCKER" stack rm "$STACK" > /dev/null 2>&1

# enclave mode: the data key stays on this machine (the key service and
# the sink run here), the source forwards sealed input, and the enclave
# stages need a node labelled sgx=true. None is at first: their tasks stay
# pending and Swarm names the unmet constraint; once the node is
# labelled they run, get the data key after attestation, and the result
# equals awk's.
"$SS" keygen "$T/keys" > /dev/null
tail -n +2 "$T/data/flights.csv" | "$SS" encrypt --keys "$T/keys" - "$T/data/flights.csv.sealed" 2> /dev/null
chmod 644 "$T/data/flights.csv.sealed"
# the key service measures the enclave program that runs in the image
cid=$("$DOCKER" create "$IMG")
mkdir -p "$T/img"
"$DOCKER" cp "$cid:/usr/local/bin/sstream-enclave" "$T/img/sstream-enclave" > /dev/null
"$DOCKER" rm "$cid" > /dev/null
GW=$("$DOCKER" network inspect docker_gwbridge -f '{{(index .IPAM.Config 0).Gateway}}' 2> /dev/null)
check "the containers' gateway to this machine is known ($GW)" [ -n "$GW" ]
E=$ROOT/examples/delayed-flights
"$SS" keyservice --keys "$T/keys" --stage map=$E/map-csv-to-event.lua \
    --stage filter=$E/filter-event.lua --stage reduce=$E/reduce-events.lua \
    --program "$T/img/sstream-enclave" --bind "tcp://$GW:5599" 2> "$T/keyservice.log" &
_pids+=($!)
RUN=$(printf '%016x' $((0x5b000000 + $$)))
"$SS" deploy "$P" --target swarm --image "$IMG" --data-dir "$T/data" \
    --security enclave --keys "$T/keys" --keyservice "tcp://$GW:5599" \
    --run "$RUN" -o "$T/enclave" > /dev/null
lacks "the enclave stack holds no data key" "$T/enclave/stack.yml" "data\.key"
"$DOCKER" stack deploy -c "$T/enclave/stack.yml" "${STACK}e" > "$T/deploy-e.log" 2>&1
check "the enclave stack deploys" [ $? -eq 0 ] || cat "$T/deploy-e.log"
why=""
for ((i = 0; i < 60; i++)); do
    why=$("$DOCKER" service ps --no-trunc --format '{{.CurrentState}} {{.Error}}' "${STACK}e_stage-map" 2> /dev/null | head -1)
    case $why in *"no suitable node"*) break ;; esac
    sleep 0.5
done
echo "    (stage-map: $why)"
check "an enclave stage without an SGX node stays pending, Swarm naming the constraint" \
    grep -q "Pending.*no suitable node" <<< "$why"
lacks "docker stack deploy ignores none of the stack's options (cap_add, cap_drop, user)" \
    "$T/deploy-e.log" "[Ii]gnoring unsupported"
caps=$("$DOCKER" service inspect -f '{{.Spec.TaskTemplate.ContainerSpec.User}} {{.Spec.TaskTemplate.ContainerSpec.CapabilityDrop}} {{.Spec.TaskTemplate.ContainerSpec.CapabilityAdd}}' "${STACK}e_stage-map")
check "the enclave workers' service starts as root and drops every capability but SETUID and SETGID ($caps)" \
    grep -qE "^0 \[(CAP_)?ALL\] \[(CAP_)?SET[UG]ID (CAP_)?SET[UG]ID\]$" <<< "$caps"
caps=$("$DOCKER" service inspect -f '{{.Spec.TaskTemplate.ContainerSpec.User}} {{.Spec.TaskTemplate.ContainerSpec.CapabilityDrop}} {{.Spec.TaskTemplate.ContainerSpec.CapabilityAdd}}' "${STACK}e_router-1")
check "a router's service runs as the image's user and drops every capability ($caps)" \
    grep -qE "^ \[(CAP_)?ALL\] \[\]$" <<< "$caps"
"$DOCKER" node update --label-add sgx=true "$NODE" > /dev/null
# in the running map task: the worker (pid 1, started as root) became
# sstream with no capability, its enclave runs as sstream-enclave
st=""
for ((i = 0; i < 60; i++)); do
    cid=$("$DOCKER" ps -q --filter "name=${STACK}e_stage-map" | head -1)
    [ -n "$cid" ] && st=$("$DOCKER" exec -u 65534 "$cid" sh -c 'for p in /proc/[0-9]*; do
        u=$(sed -n "s/^Uid:[[:space:]]*\([0-9]*\).*/\1/p" $p/status)
        c=$(sed -n "s/^CapEff:[[:space:]]*//p" $p/status)
        echo "${p#/proc/} $u $c"; done' 2> /dev/null)
    case $st in *" 10002 "*) break ;; esac
    sleep 0.5
done
echo "$st" | sed 's/^/    (pid uid CapEff) /'
check "in the map task, pid 1 (the worker) runs as sstream with CapEff 0" \
    grep -q "^1 10001 0000000000000000$" <<< "$st"
check "... its enclave processes as sstream-enclave with CapEff 0" \
    grep -q "^[0-9]* 10002 0000000000000000$" <<< "$st"
check "... and no process of the task has a capability (the reader: nobody)" \
    [ -z "$(grep -v ' 0000000000000000$' <<< "$st")" ]
t0=$SECONDS
SS_RUN=$RUN "$SS" sink "$E/print-results.lua" --from tcp://127.0.0.1:5562 \
    --security enclave --keys "$T/keys" --finals reduce-1 \
    --connect-timeout-ms 120000 > "$T/result-e.txt" 2> "$T/sink-e.log" &
sink=$!
_pids+=($sink)
wait_max 180 $sink
st=$?
check "once the node is labelled, the enclave run ends (status $st, $((SECONDS - t0)) s)" [ $st -eq 0 ]
same "DelayedFlights in enclave mode on Swarm equals awk" "$T/expected.txt" "$T/result-e.txt"
contains "the key service released the data key to attested enclaves only" \
    "$T/keyservice.log" "released the data key to worker map-1 of stage 'map'"
if [ $st -ne 0 ]; then
    tail -5 "$T/sink-e.log" "$T/keyservice.log"
    for s in $("$DOCKER" stack services -q "${STACK}e"); do "$DOCKER" service logs --tail 3 "$s" 2>&1; done | head -40
fi
finish
