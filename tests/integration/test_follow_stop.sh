#!/bin/bash
# A followed input stopped early, before the pipeline is up, ends cleanly:
# the first SIGINT/SIGTERM ends the stream (with what was read: nothing
# yet), the source delivers that stream once its router answers, and the
# run completes, balanced, exit 0, as a stop later on does. A second
# signal gives up (the source: exit 1, naming the router; `sstream run`:
# exit 130). This used to fail the run: "stopped while waiting for
# router" (the source's wait for its router ended with the first stop),
# and a stop before `sstream run` had started the source (its consumers
# still starting) stopped every component (exit 130).
. "$(dirname "$0")/lib.sh"
cd "$T"
EX=$ROOT/examples/delayed-flights
"$SS" gen flights --rows 2000 --seed 3 -o f.csv
cat > count.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
local n = 0
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :subscribe(function(e) n = n + 1 end, print,
    function()
      print('events ' .. n)
      ZmqRx.sendZmqCompleted()
    end)
LUA

# 1. sstream source --follow whose router is not up yet: SIGINT, then the
# router comes; the source ends its (empty) stream there, exit 0
"$SS" source --follow --format csv --header f.csv --to "ipc://$T/r1-in" \
    --name src1 2> src1.err &
src=$!
_pids+=($src)
sleep 1.5
kill -INT $src
sleep 5.5 # past a note of its wait (every 5 s)
check "stopped before its router answers, the source waits for it" kill -0 $src
contains "... and says so" src1.err \
    "waiting for router at ipc://.*/r1-in .*stopped, it ends its stream once the router answers \(stop it again to give up\)"
bg "$SS" router --from "ipc://$T/r1-in" --to "ipc://$T/r1-out" --name r1 2> r1.err
router=$!
"$SS" sink count.lua --from "ipc://$T/r1-out" --name sink1 > sink1.out 2> sink1.err &
sink=$!
_pids+=($sink)
wait_max 60 $src
check "... once it does, the source ends its stream: exit 0" test $? -eq 0
contains "... saying it read nothing" src1.err "stopped before it read a line"
wait_max 60 $sink
check "the sink completes (exit 0)" test $? -eq 0
contains "... with the empty stream" sink1.out "^events 0$"
wait_max 30 $router
check "the router completes (exit 0)" test $? -eq 0

# 2. stopped twice while no router answers: it gives up at once, exit 1,
# naming the router
"$SS" source --follow --format csv --header f.csv --to "ipc://$T/nobody" \
    --name src2 2> src2.err &
src=$!
_pids+=($src)
sleep 1.5
kill -INT $src
sleep 1
kill -TERM $src
t0=$SECONDS
wait_max 20 $src
check "stopped again, it gives up: exit 1" test $? -eq 1
check "... within 3 s" test $((SECONDS - t0)) -le 3
contains "... naming the router it waited for" src2.err \
    "stopped while waiting for router at ipc://.*/nobody \(no answer in [0-9]+ ms\)"

# 3. under sstream run, a first router slow to come up (a loaded
# machine): sstream run starts its components through a wrapper
# (SS_RUN_EXEC) that starts component $SLOW only $SLOW_S seconds late.
# router-1 late: the source, started once the consumers' wait is over
# (SS_RUN_READY_MS), waits for router-1's answer; SIGTERM to the run
# then; router-1 comes: the run completes with the rows read (none),
# balanced, exit 0
cat > late.sh <<SH
#!/bin/bash
for a in "\$@"; do
    [ "\$a" = "\$SLOW" ] && sleep "\$SLOW_S"
done
exec "$SS" "\$@"
SH
chmod +x late.sh
cat > live.yml <<YML
name: follow-stop
source: { file: f.csv, format: csv, header: true, follow: true }
stages:
  - { name: map, script: $EX/map-csv-to-event.lua, workers: 1 }
sink: { script: count.lua }
YML
# run TAG: sstream run live.yml in the background (RUN: its timeout's
# pid, SUP: its own),
# output-dir o-TAG, stdout out-TAG, stderr err-TAG
run() {
    SS_RUN_EXEC=$T/late.sh SS_RUN_READY_MS=$READY timeout -k 10 120 \
        "$SS" run live.yml --output-dir "o-$1" --no-progress \
        > "out-$1" 2> "err-$1" &
    RUN=$!
    _pids+=($RUN)
    SUP= # sstream run itself, under timeout: signals go to it alone
    for ((i = 0; i < 300; i++)); do
        SUP=$(pgrep -P $RUN | head -1)
        [ -n "$SUP" ] && break
        sleep 0.1
    done
}
# started TAG NAME: component NAME of run TAG has started (its log exists)
started() { # $1 tag, $2 name: waits up to 30 s
    local i
    for ((i = 0; i < 300; i++)); do
        [ -e "o-$1/logs/$2.log" ] && return 0
        sleep 0.1
    done
    return 1
}
SLOW=router-1 SLOW_S=6 READY=500 run a
check "under run: the source started while router-1 is late" started a source
sleep 1 # its HELLO waits for router-1
kill -TERM $SUP
wait_max 120 $RUN
check "under run: stopped before router-1 answered, the run exits 0" test $? -eq 0
contains "... ending the followed input" err-a "ending the followed input"
contains "... the summary balances (nothing was read)" err-a \
    "rows in = rows out \+ rows filtered \+ rows rejected: 0 = 0 \+ 0 \+ 0: balanced"
contains "... the sink completed the empty stream" out-a "^events 0$"
lacks "... no failure" err-a "failed because|stopped while waiting"

# 4. under sstream run, a stop before the source was started: the sink
# late, so the consumers are not ready and the source is not started
# (no end to that wait here); SIGTERM to the run; the sink comes: the
# source starts stopped, ends an empty stream, the run completes, exit 0
SLOW=sink SLOW_S=4 READY=600000 run b
sleep 1.5
check "under run: the source is not started while the sink is late" \
    test ! -e o-b/logs/source.log
kill -TERM $SUP
wait_max 120 $RUN
check "under run: stopped before the source started, the run exits 0" test $? -eq 0
contains "... ending the followed input" err-b "ending the followed input"
contains "... the summary balances" err-b \
    "rows in = rows out \+ rows filtered \+ rows rejected: 0 = 0 \+ 0 \+ 0: balanced"
contains "... the sink completed the empty stream" out-b "^events 0$"
lacks "... not stopped as a whole" err-b "stopping every component"

# 5. ... and a second signal still aborts the run: exit 130
SLOW=sink SLOW_S=4 READY=600000 run c
sleep 1.5
kill -TERM $SUP
sleep 0.5
kill -TERM $SUP
wait_max 60 $RUN
check "under run: a second signal aborts the run, exit 130" test $? -eq 130
contains "... stopping every component" err-c "interrupted; stopping every component"
finish
