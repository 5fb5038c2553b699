#!/bin/bash
# A worker killed and restarted under its own name, while the router it
# sends to has a full queue (nobody takes from it), must not leave a
# connection behind in that router. When libzmq's pipe for the dead
# worker is full, libzmq stops reading the connection and does not see
# the worker die; the restarted worker then takes its name over
# (ZMQ_ROUTER_HANDOVER) and libzmq leaks the old connection: its socket
# and about 100 kB (libzmq issues #3238, #4407). With 16 frames per
# connection and producers heartbeating while they waited, each kill
# left router r2 about one socket more; producers now send no heartbeat
# while a message is unconfirmed, and a connection holds 32 frames
# (twice the window). Components by hand on ipc endpoints:
#   source -> r1 -> map-1 -> r2 (--queue 2) -> a slow sink (20,000
#   events/s, spinning): r2's queue stays full and it reads map-1's
#   connection only as the sink takes a batch (with no sink at all, it
#   would never read it, and not see map-1 come back: it would end the
#   run, "the end of stream can never come")
source "$(dirname "$0")/lib.sh"
cd "$T"
ep() { echo "ipc://$T/$1"; }
cat > map.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :map(function(line) return { line = line } end)
  :subscribeToSocket(os.getenv('TO'))
LUA
cat > sink.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
local n, t0 = 0, os.time()
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :subscribe(function()
      n = n + 1
      while n > (os.time() - t0 + 1) * 20000 do end
    end, function(e) print(e) end,
    function() ZmqRx.sendZmqCompleted() end)
LUA
seq 1 2000000 > rows
bg "$SS" router --from "$(ep r1a)" --to "$(ep r1b)" --name r1 \
    --stall-ms 600000 2> r1.err
bg "$SS" router --from "$(ep r2a)" --to "$(ep r2b)" --name r2 --queue 2 \
    2> r2.err
r2=$!
bg env FROM="$(ep r2b)" "$SS" sink sink.lua --name sink > sink.out 2> sink.err
sleep 0.3
bg "$SS" source --to "$(ep r1a)" --name src --file rows 2> src.err
worker() { # starts map-1 (again); sets W
    FROM=$(ep r1b) TO=$(ep r2a) "$SS" worker map.lua --name map-1 \
        --stage map 2>> map-1.err &
    W=$!
    _pids+=($W)
}
sockets() { ls -la "/proc/$r2/fd" 2> /dev/null | grep -c socket; }
worker
# map-1's window to r2 fills (16 batches unconfirmed) and it waits
for _ in $(seq 1 100); do
    grep -q "producer 'map-1'.*joined" r2.err && break
    sleep 0.1
done
sleep 3
before=$(sockets)
for k in 1 2 3 4 5 6; do
    kill -KILL "$W"
    wait "$W" 2> /dev/null
    sleep 0.5
    worker
    sleep 3 # it joins again, fills its window, waits
done
sleep 2
after=$(sockets)
echo "    r2's sockets: $before before 6 restarts of map-1, $after after"
check "r2 is still running" kill -0 "$r2"
check "map-1 started 7 times, each joined r1" \
    test "$(grep -c "worker 'map-1' of stage map joined" r1.err)" -ge 7
check "6 restarts of map-1 leave r2 no connection more (at most 1)" \
    test $((after - before)) -le 1
finish
