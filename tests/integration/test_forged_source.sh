#!/bin/bash
# Streams belong to their producers (issue 8, defect 7). In plain mode a
# peer joins the first router as a source of its own name, in the group of
# the real source, and sends batches 0..4 on the real source's stream
# before the real source starts (tests/python/forged_source.py). The
# router refuses them, naming the forger, and sends the forger an ABORT
# (to it alone); the real source's batches all go through and the answer
# is right. (Before streams were bound to their producers, the forged
# batches were kept, the honest ones with the same numbers dropped as
# duplicates, and the run printed a wrong sum with exit status 0.)
#   forger, source -> router-1 -> pass (1 worker) -> router-2 -> sink
source "$(dirname "$0")/lib.sh"
seq 1 2000 > "$T/n.txt"
want=$(awk '{ s += $1 } END { print "sum " s " count " NR }' "$T/n.txt")
cat > "$T/pass.lua" <<'LUA'
local ZmqRx = require 'zmq-rx'
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :map(function(line) return tonumber(line) or 0 end)
  :subscribeToSocket(os.getenv('TO'))
LUA
cat > "$T/sum.lua" <<'LUA'
local ZmqRx = require 'zmq-rx'
local s, n = 0, 0
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :subscribe(function(v) s = s + v; n = n + 1 end, function(e) print(e) end,
    function()
      print(string.format('sum %d count %d', s, n))
      ZmqRx.sendZmqCompleted()
    end)
LUA
export LOG_LEVEL=info
d=$T/ipc; mkdir -p "$d"
bg "$SS" router --from "ipc://$d/r1-in" --to "ipc://$d/r1-out" --name router-1 \
    2> "$T/r1.err"
bg "$SS" router --from "ipc://$d/r2-in" --to "ipc://$d/r2-out" --name router-2 \
    2> "$T/r2.err"
bg "$SS" worker "$T/pass.lua" --from "ipc://$d/r1-out" --to "ipc://$d/r2-in" \
    --name pass-1 --stage pass 2> "$T/w.err"
"$SS" sink "$T/sum.lua" --from "ipc://$d/r2-out" --name sink > "$T/sink.out" \
    2> "$T/sink.err" &
sink=$!; _pids+=($sink)
sleep 0.5
PYTHONPATH=$ROOT/tests/python $PY "$ROOT/tests/python/forged_source.py" \
    "ipc://$d/r1-in" forger source-0 5 1000000 > "$T/forger.out" 2>&1 &
forger=$!; _pids+=($forger)
for _ in $(seq 1 50); do grep -q "^received" "$T/forger.out" && break; sleep 0.1; done
"$SS" source --to "ipc://$d/r1-in" --name source --batch-size 256 "$T/n.txt" \
    2> "$T/source.err"
check "the real source exits 0" test $? -eq 0
wait_max 60 $sink; rc=$?
kill $forger 2> /dev/null
check "the sink exits 0" test $rc -eq 0
contains "the forger sent its batches first" "$T/forger.out" "^sent 5 batches"
contains "the router refused them, naming the forger" "$T/r1.err" \
    "refused producer 'forger'"
contains "... and why" "$T/r1.err" \
    "source 'forger' sent batch [0-9]+/0 on a stream it does not own"
contains "the forger was told (ABORT to it alone)" "$T/forger.out" \
    "^aborted: router router-1 refused 'forger'"
contains "none of its batches was taken" "$T/forger.out" "^received 0$"
contains "the answer is right: every real row, no forged one" "$T/sink.out" "^$want$"
finish
