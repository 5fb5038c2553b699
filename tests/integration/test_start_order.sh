#!/bin/bash
# Components started by hand in any order find each other: the sink and
# the workers start first, their routers only 7 s later (past the old
# 5 s limit that made them give up), then the source. They wait, say
# what they wait for ("is waiting for router at ..."), and the run gives
# awk's answer. A worker whose router never comes gives up after its
# --connect-timeout-ms with the endpoint named.
. "$(dirname "$0")/lib.sh"
cd "$T"
E=$ROOT/examples/delayed-flights
"$SS" gen flights --rows 5000 -o f.csv
reference f.csv > expected.txt

ep() { echo "ipc://$T/$1"; }
declare -a kids=()
start() { "$@" & kids+=($!); _pids+=($!); }

# stage i reads from router i's back end and writes to router i+1's front
start "$SS" worker "$E/map-csv-to-event.lua" --from "$(ep r1b)" --to "$(ep r2f)" \
    --name map-1 --stage map 2> map.log
start "$SS" worker "$E/filter-event.lua" --from "$(ep r2b)" --to "$(ep r3f)" \
    --name filter-1 --stage filter 2> filter.log
start "$SS" worker "$E/reduce-events.lua" --from "$(ep r3b)" --to "$(ep r4f)" \
    --name reduce-1 --stage reduce 2> reduce.log
OUTPUT=$T/out.log "$SS" sink "$E/print-results.lua" --from "$(ep r4b)" \
    --name sink > result.txt 2> sink.log &
sink=$!
_pids+=($sink)
sleep 7 # longer than the old 5 s connect limit
for r in 1 2 3 4; do
    start "$SS" router --from "$(ep r${r}f)" --to "$(ep r${r}b)" \
        --name router-$r 2> router-$r.log
done
"$SS" source --to "$(ep r1f)" --file f.csv --format csv --header 2> source.log &
src=$!
_pids+=($src)
wait_max 60 $src
check "the source, started last, finishes" [ $? -eq 0 ]
wait_max 60 $sink
check "the sink, started before its router, finishes" [ $? -eq 0 ]
same "the result equals awk's" expected.txt result.txt
contains "a worker says what it waits for" map.log \
    "'map-1' is waiting for router at ipc://.*/r1b \([0-9]+ s so far, gives up after 60 s\)"
contains "so does the sink" sink.log "'sink' is waiting for router at ipc://.*/r4b"
for k in "${kids[@]}"; do
    wait_max 30 "$k" || notok "component $k ends" "$(tail -n 3 ./*.log)"
done

# a router that never comes: the worker gives up, naming it
start_s=$SECONDS
"$SS" worker "$E/filter-event.lua" --from "$(ep nobody)" --to "$(ep nobody2)" \
    --name lonely --connect-timeout-ms 1500 2> lonely.log &
lonely=$!
_pids+=($lonely)
wait_max 20 $lonely
check "a worker whose router never comes exits 1" [ $? -eq 1 ]
check "... after its connect timeout, not before" [ $((SECONDS - start_s)) -ge 1 ]
contains "... naming the router" lonely.log \
    "cannot reach router at ipc://.*/nobody: no answer in 1500 ms"

# Ctrl-C on a source whose router never came: it ends at once and says
# what it waited for (it said only "interrupted" with --follow, and
# without --follow it went on waiting for its whole connect timeout). A
# followed source ends its stream at the first Ctrl-C, which it delivers
# once the router answers: the second one gives up that wait
# (test_follow_stop.sh)
echo "a,b" > lines.txt
for mode in follow plain; do
    flag=; [ $mode = follow ] && flag=--follow
    "$SS" source $flag --file lines.txt --to "$(ep nobody3)" \
        --name src-$mode 2> src-$mode.log &
    s=$!
    _pids+=($s)
    sleep 1.5
    kill -INT $s
    [ $mode = follow ] && { sleep 0.5; kill -INT $s; }
    start_s=$SECONDS
    wait_max 20 $s
    check "$mode source stopped while no router answers exits 1" [ $? -eq 1 ]
    check "... within 3 s of Ctrl-C" [ $((SECONDS - start_s)) -le 3 ]
    contains "... saying what it waited for and what to do" src-$mode.log \
        "stopped while waiting for router at ipc://.*/nobody3 \(no answer in [0-9]+ ms\): start the router first"
done
finish
