#!/bin/bash
# A worker whose stage runs in an enclave keeps heartbeating its router
# while one batch takes longer than the router's peer timeout.
#
# In enclave mode the worker's host process only waits on the enclave
# channel while the enclave runs the batch; in encrypted mode the stage
# runs in the worker's own process (the enclave core, backend none).
# Either way the host must keep doing what must not wait for a long
# batch: heartbeats to its router (ss_enclave_set_tick: the sandbox host
# waits on the channel in 10 ms slices and ticks between them; backend
# none ticks from the stage's CPU-timer hook, as a plain worker does).
# Before that, a router counted an enclave worker busy on a long batch as
# lost and the run failed (seen at load 18 with slow 64 KiB batches).
#
# The routers get a 2 s peer timeout (and a long --stall-ms: the batch may
# take its time while the worker heartbeats) through SS_RUN_EXEC, a
# wrapper that adds them to every `sstream router` of the run; the map
# computes for 3 to 4 s on one row (until os.time() moved 4 s on: wall
# clock, so that the test takes as long whatever the load; each turn of
# the loop builds a 4 KiB string, which keeps it far below the
# instruction budget). The run must complete with every row, and no
# router may count the map worker lost.
source "$(dirname "$0")/lib.sh"
cd "$T"
PT=2000 # the routers' --peer-timeout-ms (1 s flakes on a loaded machine)

# the wrapper runs as the components' user (sstream-worker when the run
# is root's): a folder everyone can read
W=$(mktemp -d "${TMPDIR:-/tmp}/sshb.XXXXXX")
chmod 755 "$W"
cat > "$W/sstream" <<SH
#!/bin/bash
if [ "\${1:-}" = router ]; then
    shift
    echo "test wrapper: router --peer-timeout-ms $PT --stall-ms 120000" >&2
    exec "$SS" router --peer-timeout-ms $PT --stall-ms 120000 "\$@"
fi
exec "$SS" "\$@"
SH
chmod 755 "$W/sstream"
trap 'rm -rf "$W"; cleanup' EXIT

cat > map.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :map(function(line)
    if line == '150' then -- 3 to 4 s of wall clock, whatever the load
      local t = os.time() + 4
      while os.time() < t do local _ = string.rep('x', 4096) end
    end
    return { n = tonumber(line) } end)
  :subscribeToSocket(os.getenv('TO'))
LUA
cat > sink.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
local n, sum = 0, 0
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :subscribe(function(e) n = n + 1; sum = sum + e.n end,
             function(e) print(e) end,
             function() print('events ' .. n .. ' sum ' .. sum)
                        ZmqRx.sendZmqCompleted() end)
LUA
seq 1 300 > rows
cat > p.yml <<'YML'
name: heartbeat
batch_size: 1K
source: { file: rows, parts: 1, format: lines }
stages:
  - { name: map, script: map.lua, workers: 1 }
sink: { script: sink.lua }
YML

for mode in enclave encrypted; do
    t0=$(date +%s%N)
    SS_RUN_EXEC=$W/sstream LOG_LEVEL=info timeout -k 10 60 "$SS" run p.yml \
        --security "$mode" --output-dir "out-$mode" > "res-$mode" 2> "err-$mode"
    rc=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    check "$mode: the run completes and exits 0 ($rc)" test $rc -eq 0
    contains "$mode: the sink saw every row, the slow one too" "res-$mode" \
        "^events 300 sum 45150$"
    contains "$mode: router-1 ran with a $PT ms peer timeout" \
        "out-$mode/logs/router-1.log" "^test wrapper: router --peer-timeout-ms $PT "
    check "$mode: the slow row kept the worker busy longer than the peer timeout (run: $ms ms)" \
        test "$ms" -gt $((PT + 1000))
    lacks "$mode: router-1 did not count map-1 as lost" \
        "out-$mode/logs/router-1.log" "map-1.*(lost|silent)"
    lacks "$mode: nothing was lost" "err-$mode" "lost|silent for"
    [ $rc -ne 0 ] && tail -5 "err-$mode" | sed "s/^/    $mode: /"
done
finish
