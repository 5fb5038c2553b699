#!/bin/bash
# A worker busy in one long event still heartbeats its router: the script
# budget's CPU timer arms a Lua hook about every 10 ms of CPU, and that
# hook runs the worker's tick (src/lua/ss_stage.c, ss_stage_set_tick),
# which sends the heartbeats due. Components started by hand with a
# router peer timeout of 2 s (and a long --stall-ms: a batch may take
# its time while the worker heartbeats), and one row on which the map burns 6 s of
# CPU (well under max_instructions: os.clock is called in the loop): the
# worker must not be declared lost, and the sink sees every row.
source "$(dirname "$0")/lib.sh"
cd "$T"
PT=2000 # --peer-timeout-ms of both routers (heartbeats every 1000 ms); 1 s
        # flaked on a loaded machine (r2 seen silent for 1000 ms at load 17)
port=$((20000 + RANDOM % 20000))
ep() { echo "tcp://127.0.0.1:$((port + $1))"; }

cat > map.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :map(function(line)
    if line == '100' then
      local t = os.clock()
      while os.clock() - t < 6 do end
    end
    return { line = line } end)
  :subscribeToSocket(os.getenv('TO'))
LUA
cat > sink.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
local n = 0
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :subscribe(function() n = n + 1 end, function(e) print(e) end,
             function() print('events ' .. n); ZmqRx.sendZmqCompleted() end)
LUA
seq 1 300 > rows

bg "$SS" router --from "$(ep 0)" --to "$(ep 1)" --name r1 \
    --peer-timeout-ms $PT --stall-ms 120000 2> r1.err
bg "$SS" router --from "$(ep 2)" --to "$(ep 3)" --name r2 \
    --peer-timeout-ms $PT 2> r2.err
sleep 0.3
bg env FROM="$(ep 1)" TO="$(ep 2)" "$SS" worker map.lua --name map-1 --stage map \
    2> map-1.err
FROM=$(ep 3) "$SS" sink sink.lua --name sink > sink.out 2> sink.err &
sink=$!; _pids+=($sink)
sleep 0.5
"$SS" source --to "$(ep 0)" --name src < rows 2> src.err &
src=$!; _pids+=($src)
wait_max 120 $sink; rc=$?
check "the sink ends by itself and exits 0 ($rc)" test $rc -eq 0
contains "the sink saw every row, the long one too" sink.out "^events 300$"
lacks "r1 did not lose the busy worker" r1.err "map-1.*(lost|silent)"
lacks "the worker was not stopped by the budget" map-1.err "max_instructions"
[ $rc -ne 0 ] && sed "s/^/    sink: /" sink.err | tail -5
finish
