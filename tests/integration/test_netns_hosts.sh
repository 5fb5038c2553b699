#!/bin/bash
# Several hosts without Docker: three Linux network namespaces joined by
# veth pairs to a bridge that lives in a fourth namespace of its own, with
# addresses of 10.213.7.0/24 that exist only inside those namespaces. The
# components are started by hand, host by host, with the commands of
# docs/DEPLOY.md, over TCP with CurveZMQ (security encrypted), each host
# holding only its role's keys:
#
#   host-1 10.213.7.1   router-1..4 (bind *:5555..5562), the source
#   host-2 10.213.7.2   map-1, filter-1, the sink        (connect to host-1)
#   host-3 10.213.7.3   map-2, and reduce-1 in runs 1    (connect to host-1)
#                       and 3 (in run 2 reduce-1 is on host-2)
#
# 1. Workers and sink start before the routers (any order): DelayedFlights
#    equals awk.
# 2. host-3 (map-2, no state) loses its link mid-run: the router names the
#    lost worker and deals its batches to map-1, the run still equals
#    awk, and map-2 ends with an error naming its unreachable router.
# 3. host-3 (reduce-1, stateful) loses its link mid-run: the run ends with
#    an error naming the lost peer, in bounded time: router-3 names the
#    lost stateful worker, router-4 (its producer behind a cut link counts
#    as disconnected, TCP_USER_TIMEOUT) and the sink name reduce-1, and
#    every component ends (router-2 after its --stall-ms).
# Needs root (ip netns); prints SKIPPED with the reason otherwise.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns_lib.sh"

skip() { echo "SKIPPED: $*"; echo "0 passed, 0 failed"; exit 0; }
why=$(netns_why_not) || skip "$why"
PFX=ss$$
NET=10.213.7
netns_cleanup() {
    netns_down
    # SS_KEEP_LOGS=DIR keeps every component's log for a look afterwards
    [ -n "${SS_KEEP_LOGS:-}" ] && mkdir -p "$SS_KEEP_LOGS" && cp -r "$T"/run* "$SS_KEEP_LOGS"/ 2> /dev/null
    cleanup
}
trap netns_cleanup EXIT

# the network: a bridge in its own namespace, one veth pair per host
netns_up "$PFX" "$NET" 3 || { echo "not ok - the namespaces could not be made"; exit 1; }
BR=$NETNS_BR
reach() { netns_reach "$@"; }
check "host-2 reaches host-1 over the bridge" reach 2 1
check "host-3 reaches host-1 over the bridge" reach 3 1

cd "$T"
E=$ROOT/examples/delayed-flights
"$SS" gen flights --rows 20000 -o flights.csv
reference flights.csv > expected.txt

# keys, one directory per role (what each host would hold)
"$SS" keygen keys > /dev/null
mkdir -m 700 keys-router keys-node
cp keys/curve-server.key keys/curve-server.pub keys/curve-client.pub keys-router/
cp keys/data.key keys/curve-client.key keys/curve-client.pub keys/curve-server.pub keys-node/
check "the routers' keys hold no data key" [ ! -e keys-router/data.key ]
check "the workers' keys hold no CURVE server secret" [ ! -e keys-node/curve-server.key ]

on() { netns_on "$@"; }
H1=$NET.1
# router-k: producers connect to 5553+2k, workers to 5554+2k (the seed's
# ports: router-1 5555/5556 ... router-4 5561/5562)
# (+ 10 per run: a run's ports are never those of the run before it)
front() { echo "tcp://$H1:$((5553 + BASE + 2 * $1))"; }
back() { echo "tcp://$H1:$((5554 + BASE + 2 * $1))"; }

# run_pipeline DIR: starts one run's components; $MAP2_HOST and
# $REDUCE_HOST say where map-2 and reduce-1 go; the source reads from
# fd 0 of this function (a file or a pipe)
declare -A PID
start() { # start NAME HOST ENV... -- CMD...: one component, logs in $D/NAME.log
    local name=$1 host=$2; shift 2
    local env=()
    while [ "$1" != -- ]; do env+=("$1"); shift; done
    shift
    on "$host" env "SS_RUN=$RUN" "${env[@]}" "$@" > "$D/$name.out" 2> "$D/$name.log" &
    PID[$name]=$!
    _pids+=($!)
}
NODE_KEYS=(--security encrypted --keys "$T/keys-node")
workers_and_sink() {
    start map-1 2 "FROM=$(back 1)" "TO=$(front 2)" -- \
        "$SS" worker "$E/map-csv-to-event.lua" --name map-1 --stage map "${NODE_KEYS[@]}"
    start map-2 3 "FROM=$(back 1)" "TO=$(front 2)" -- \
        "$SS" worker "$E/map-csv-to-event.lua" --name map-2 --stage map "${NODE_KEYS[@]}"
    start filter-1 2 "FROM=$(back 2)" "TO=$(front 3)" -- \
        "$SS" worker "$E/filter-event.lua" --name filter-1 --stage filter "${NODE_KEYS[@]}"
    start reduce-1 "$REDUCE_HOST" "FROM=$(back 3)" "TO=$(front 4)" -- \
        "$SS" worker "$E/reduce-events.lua" --name reduce-1 --stage reduce "${NODE_KEYS[@]}"
    start sink 2 "FROM=$(back 4)" "OUTPUT=$D/output.log" -- \
        "$SS" sink "$E/print-results.lua" --name sink --finals reduce-1 "${NODE_KEYS[@]}"
}
routers() {
    local k
    for k in 1 2 3 4; do
        start router-$k 1 -- "$SS" router --from "tcp://*:$((5553 + BASE + 2 * k))" \
            --to "tcp://*:$((5554 + BASE + 2 * k))" --name router-$k \
            --keys "$T/keys-router" --peer-timeout-ms 3000
    done
}
# ends NAME SECONDS: the component ends within SECONDS; its status in ST
ends() { wait_max "$2" "${PID[$1]}"; ST=$?; }
# the last `ends` saw an error exit, not a time-out
failed_in_time() { [ "$ST" -ne 0 ] && [ "$ST" -ne 124 ]; }
all_end() { # every component of the run but $2 ends within 30 s
    local n hung=""
    for n in "${!PID[@]}"; do
        [ "$n" = "${2:-}" ] && continue
        ends "$n" 30
        [ "$ST" -eq 124 ] && hung="$hung $n"
    done
    check "$1: no component hangs${hung:+ (hung:$hung)}" [ -z "$hung" ]
}

# every worker and the sink joined its router (bounded: 30 s), so that
# the source, started last, feeds a complete pipeline (a worker that
# comes after its router finished would wait for it in vain)
all_joined() {
    local i
    for ((i = 0; i < 300; i++)); do
        grep -qs "'map-1' of stage map joined" "$D/router-1.log" &&
            grep -qs "'map-2' of stage map joined" "$D/router-1.log" &&
            grep -qs "'filter-1' of stage filter joined" "$D/router-2.log" &&
            grep -qs "'reduce-1' of stage reduce joined" "$D/router-3.log" &&
            grep -qs "'sink' of stage print-results joined" "$D/router-4.log" &&
            return 0
        sleep 0.1
    done
    return 1
}

# ---- 1: any start order, the whole pipeline over 3 hosts ----
D=$T/run1; mkdir -p "$D"; PID=(); BASE=0
RUN=00000000005e0001 # the run id every component of this run carries (SS_RUN)
REDUCE_HOST=3
workers_and_sink
sleep 2 # the workers wait for routers that are not up yet
routers
check "run 1: every worker joined its router" all_joined
start source 1 "TO=$(front 1)" "DATA_FILE=$T/flights.csv" -- \
    "$SS" source --format csv --header --parts 2 "${NODE_KEYS[@]}"
ends source 60; check "run 1: the source ends (status 0)" [ "$ST" -eq 0 ]
ends sink 60; check "run 1: the sink ends (status 0)" [ "$ST" -eq 0 ]
same "run 1: DelayedFlights over 3 hosts equals awk" expected.txt "$D/sink.out"
all_end "run 1"
contains "run 1: map-2 on host-3 joined router-1 over TCP" "$D/router-1.log" \
    "worker 'map-2' of stage map joined"
contains "run 1: a worker started first waited for its router" "$D/map-2.log" \
    "'map-2' is waiting for router at tcp://$H1:5556|stage 'map' ready"

# feed: the input in two halves, the second once $D/cut exists (the
# link is cut in between), bounded: 30 s at most
feed() {
    head -n 8001 "$T/flights.csv"
    local i
    for ((i = 0; i < 300; i++)); do [ -e "$D/cut" ] && break; sleep 0.1; done
    sleep 0.5
    tail -n +8002 "$T/flights.csv"
}
# fed_source: the source of runs 2 and 3, reading feed on stdin
fed_source() {
    ( feed | on 1 env "SS_RUN=$RUN" "TO=$(front 1)" timeout -k 5 90 "$SS" source - \
        --format csv --header "${NODE_KEYS[@]}" 2> "$D/source.log" ) &
    PID[source]=$!
    _pids+=($!)
}
# cut HOST: host's link goes down on the bridge side, as a pulled cable
cut() {
    # wait (bounded) until some of the first half went through
    local i
    for ((i = 0; i < 100; i++)); do
        grep -q "joined" "$D/router-2.log" 2> /dev/null && break
        sleep 0.1
    done
    ip -n "$BR" link set "port$1" down
    touch "$D/cut"
}

# ---- 2: host-3 holds only map-2 (stateless); its link goes down ----
D=$T/run2; mkdir -p "$D"; PID=(); BASE=10
RUN=00000000005e0002
REDUCE_HOST=2
routers
workers_and_sink
all_joined || notok "every worker joined its router"
fed_source
sleep 1
t0=$SECONDS
cut 3
ends map-2 30
check "run 2: map-2, cut off, ends within 30 s with an error (status $ST)" failed_in_time
contains "run 2: map-2 names its unreachable router" "$D/map-2.log" \
    "router(-[0-9])? .*at tcp://$H1:55[0-9]+ .*silent|tcp://$H1:55[0-9]+.*(no answer|took no message)"
ends sink 60
check "run 2: the run goes on without host-3 and ends (status $ST)" [ "$ST" -eq 0 ]
same "run 2: the result still equals awk" expected.txt "$D/sink.out"
contains "run 2: router-1 names the lost worker" "$D/router-1.log" "worker 'map-2' of stage map was lost"
all_end "run 2"
echo "    (run 2 took $((SECONDS - t0)) s after the cut)"
ip -n "$BR" link set port3 up

# ---- 3: host-3 holds reduce-1 (stateful); its link goes down ----
D=$T/run3; mkdir -p "$D"; PID=(); BASE=20
RUN=00000000005e0003
REDUCE_HOST=3
routers
workers_and_sink
all_joined || notok "every worker joined its router"
fed_source
sleep 1
t0=$SECONDS
cut 3
ends sink 60
check "run 3: the sink ends with an error (status $ST)" failed_in_time
ends router-3 60
check "run 3: router-3 ends with an error (status $ST)" failed_in_time
contains "run 3: router-3 names the lost stateful worker" "$D/router-3.log" \
    "stateful worker 'reduce-1' of stage reduce was lost"
ends router-4 30
check "run 3: router-4 ends with an error (status $ST)" failed_in_time
contains "run 3: the sink names the lost producer" "$D/sink.log" \
    "producer reduce-1 of stage reduce disconnected before its end of stream"
# router-2 either finished before the cut, or lost its only filter worker
# (filter-1 ended on router-3's ABORT): it then waits --stall-ms (6 peer
# timeouts) for a new one, as for an engine restarting containers, and
# ends naming the worker it lost
all_end "run 3"
contains "run 3: router-2 completed, or ended naming its lost filter worker" \
    "$D/router-2.log" "complete: |filter-1"
echo "    (run 3 ended $((SECONDS - t0)) s after the cut)"
finish
