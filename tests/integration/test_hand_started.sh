#!/bin/bash
# Components started by hand, as on a cluster (no supervisor to stop
# them): when a peer dies or aborts, every component ends within a
# bounded time, with an error naming what failed; none waits forever.
#   1. the source is killed (SIGKILL) mid-stream: its router aborts, the
#      map workers pass the ABORT on, the next router (whose producers all
#      aborted) and the sink end, with the reason.
#   2. every worker of a stateless stage is killed at once: the next
#      router, whose producer group can never complete, ends with an
#      error naming them (it used to wait forever: a group exists only
#      once an EOS arrived), and so does the router before them, whose
#      queue waits with no worker left (after --stall-ms).
source "$(dirname "$0")/lib.sh"
cd "$T"
PT=1500 # --peer-timeout-ms of every router: failures show in seconds
LIMIT=30 # every component must be gone this long after the kill
port=$((20000 + RANDOM % 20000))
ep() { echo "tcp://127.0.0.1:$((port + $1))"; }

cat > map.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :map(function(line) return { line = line } end)
  :subscribeToSocket(os.getenv('TO'))
LUA
cat > sink.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
local n = 0
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :subscribe(function() n = n + 1 end, function(e) print(e) end,
             function() print('events ' .. n); sendZmqCompleted() end)
LUA
seq 1 3000 > part1
seq 1 80000 > part2 # more than a batch (256 KiB): sent before its end

# start PREFIX: r1, two map workers, r2, a sink; their pids in $pids
start() {
    pids=()
    "$SS" router --from "$(ep 0)" --to "$(ep 1)" --name r1 \
        --peer-timeout-ms $PT --stall-ms 5000 2> "$1-r1.err" & pids+=($!); _pids+=($!)
    "$SS" router --from "$(ep 2)" --to "$(ep 3)" --name r2 \
        --peer-timeout-ms $PT 2> "$1-r2.err" & pids+=($!); _pids+=($!)
    sleep 0.3
    for w in 1 2; do
        FROM=$(ep 1) TO=$(ep 2) "$SS" worker map.lua --name "map-$w" \
            --stage map 2> "$1-map-$w.err" & pids+=($!); _pids+=($!)
    done
    FROM=$(ep 3) "$SS" sink sink.lua --name sink > "$1-sink.out" \
        2> "$1-sink.err" & pids+=($!); _pids+=($!)
    sleep 0.5
}
# all_end PREFIX: every pid in $pids ends within LIMIT s; their status
all_end() {
    local p rc all=0
    : > "$1-status"
    for p in "${pids[@]}"; do
        wait_max $LIMIT "$p"; rc=$?
        echo "$rc" >> "$1-status"
        [ "$rc" -eq 124 ] && all=1
    done
    return $all
}

# 1. the source dies mid-stream
start a
( cat part1; sleep 60 ) | "$SS" source --to "$(ep 0)" --name src \
    2> a-src.err & src=$!; _pids+=($src)
for _ in $(seq 1 50); do grep -q "joined" a-r1.err && break; sleep 0.1; done
sleep 1 # part1 went through; the source now waits for more input
kill -KILL $src
check "1: every component ends within $LIMIT s of the source's death" all_end a
check "1: none of them claims success" \
    bash -c '! grep -qx 0 a-status'
contains "1: r1 names the dead source" a-r1.err "source src(-0)? of stage .* disconnected before its end of stream"
contains "1: the map workers pass r1's ABORT on" a-map-1.err "source src(-0)? of stage .* disconnected"
contains "1: r2 ends, passing on why the workers aborted" a-r2.err "end of stream can never come: .*the last to abort said: .*source src"
contains "1: the sink reports the reason" a-sink.err "source src"
lacks "1: the sink prints no result" a-sink.out "^events"

# 2. every worker of the stateless stage dies at once
port=$((port + 10))
start b
# more input comes after the kill: it waits in r1's queue, with no worker
( cat part1; sleep 4; cat part2; sleep 60 ) | "$SS" source --to "$(ep 0)" \
    --name src 2> b-src.err & src=$!; _pids+=($src)
for _ in $(seq 1 50); do grep -q "joined" b-r2.err && break; sleep 0.1; done
sleep 1
kill -KILL "${pids[2]}" "${pids[3]}"
# (not the source: it waits on its input, and hears r1's ABORT only when
# it next sends)
pids=("${pids[0]}" "${pids[1]}" "${pids[4]}") # r1, r2, the sink
check "2: r1, r2 and the sink end within $LIMIT s of losing every map worker" all_end b
contains "2: r2 says its end of stream can never come, naming the workers" b-r2.err "end of stream can never come: .*'map-[12]'.*'map-[12]'"
contains "2: the sink reports it" b-sink.err "end of stream can never come"
contains "2: r1, its queue full and no worker left, says so" b-r1.err "no worker left: the last, 'map-[12]', was lost"
kill -KILL $src 2>/dev/null
finish
