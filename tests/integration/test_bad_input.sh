#!/bin/bash
# Bad input never crashes a run nor silently disappears: each case gets a
# clear message naming the stage, the worker and the input location, the
# bad event is counted and written to the rejects file, the pipeline goes
# on, and the summary balances. Start-up errors (a script that does not
# compile, an unreachable router) fail at once with a clear message.
source "$(dirname "$0")/lib.sh"
EX=$ROOT/examples/delayed-flights
cd "$T"
cp "$EX"/filter-event.lua "$EX"/reduce-events.lua "$EX"/print-results.lua .

# --- a map stage whose user function fails on purpose for some carriers
cat > map.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
local csv = require 'csv'
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :map(function(line)
    local a = csv.parse(line)
    if a[9] == 'XX' then error('carrier XX is not allowed') end
    if a[9] == 'YY' then return { cb = print } end
    if a[9] == 'ZZ' then local t = {}; t.self = t; return t end
    return { uniquecarrier = a[9], arrdelay = a[15] }
  end)
  :subscribeToSocket(os.getenv('TO'))
LUA
cat > pipeline.yml <<'YML'
name: bad-input
source: { file: data.csv, parts: 2, format: csv, header: true }
stages:
  - { name: map, script: map.lua, workers: 2 }
  - { name: filter, script: filter-event.lua, workers: 1 }
  - { name: reduce, script: reduce-events.lua, workers: 1 }
sink: { script: print-results.lua }
YML

"$SS" gen flights --rows 3000 --seed 11 -o good.csv
# good rows, then the bad ones at known line numbers (header is line 1)
{
    cat good.csv                                   # lines 1..3001
    echo '2008,1,3,4,1,1,1,1,AA,1,"N1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20'   # 3002 unterminated quote
    echo '2008,1,3,4,AA,1,2'                       # 3003 wrong field count
    printf '2008,1,3,4,1,1,1,1,AA,1,N1\xff\xfe,1,1,1,99,1,A,B,1,1,1,0,,0,NA,NA,NA,NA,NA\n'  # 3004 not UTF-8
    printf '2008,1,3,4,1,1,1,1,AA,1,N1,1,1,1,99,1,A,B,1,1,1,0,,0,NA,NA,NA,%0300000d,NA\n' 0   # 3005 too long (the default batch is 256 KiB)
    echo '2008,1,3,4,1,1,1,1,XX,1,N1,1,1,1,99,1,A,B,1,1,1,0,,0,NA,NA,NA,NA,NA'            # 3006 lua error
    echo '2008,1,3,4,1,1,1,1,YY,1,N1,1,1,1,99,1,A,B,1,1,1,0,,0,NA,NA,NA,NA,NA'            # 3007 function value
    echo '2008,1,3,4,1,1,1,1,ZZ,1,N1,1,1,1,99,1,A,B,1,1,1,0,,0,NA,NA,NA,NA,NA'            # 3008 cyclic table
} > data.csv
reference good.csv > expected

"$SS" run pipeline.yml --output-dir out > res 2> err
rc=$?
check "the run with bad input completes (exit 0)" test $rc -eq 0
grep '^Delays' res > got
same "the good rows still give awk's answer" got expected
contains "summary balances" err "3007 = [0-9]+ \+ [0-9]+ \+ 7: balanced"
R=out/rejects.jsonl
check "7 rejects are written" test "$(wc -l < $R 2>/dev/null)" -eq 7
contains "unterminated quote: named with its line" $R '"line":3002,"error":"[^"]*unterminated quote'
contains "wrong field count: named with its line" $R '"line":3003,"error":"expected 29 fields, got 7"'
contains "invalid UTF-8: named with its line and byte" $R '"line":3004,"error":"invalid UTF-8 at byte 27"'
contains "too long for a batch: named with its line" $R '"line":3005,"error":"line is [0-9]+ bytes, longer than the batch size'
contains "lua error: names stage, worker and row" $R '"stage":"map","worker":"map-[12]".*"row":3006,"error":"[^"]*map.lua:6: carrier XX is not allowed'
contains "function value: rejected with the reason" $R '"row":3007,"error":"cannot send a function value \(at event.cb\)'
contains "cyclic table: rejected with the reason" $R '"row":3008,"error":"[^"]*(cyclic|deep)'
contains "the log names the file and line of a source reject" err "data.csv line 3002 rejected: .*unterminated quote"
contains "the log names the worker of a stage reject" err "\[map-[12]\].*rejected event.*carrier XX is not allowed"

# --- empty input: completes, says so, balances at zero
: > empty.csv
"$SS" run pipeline.yml --data empty.csv --output-dir out-empty > res-empty 2> err-empty
check "an empty input completes (exit 0)" test $? -eq 0
contains "an empty input is reported" err-empty "input '.*empty.csv' is empty"
contains "an empty input balances at zero" err-empty "0 = 0 \+ 0 \+ 0: balanced"

# --- a stage script that does not compile fails the run at start
printf 'local x = \nend\n' > broken.lua
sed 's/filter-event.lua/broken.lua/' pipeline.yml > broken.yml
"$SS" run broken.yml --output-dir out-broken > /dev/null 2> err-broken
check "a syntax error fails the run (non-zero exit)" test $? -ne 0
contains "a syntax error names the stage, file and line" err-broken "stage 'filter'.*broken.lua:2"
lacks "a syntax error starts no component" err-broken "\[router-1\]"

# --- an unreachable router fails at start with a clear message
"$SS" worker map.lua --from ipc://$T/nobody-here --to ipc://$T/nor-here \
    --connect-timeout-ms 300 --name map-9 2> err-unreach
check "an unreachable router fails the worker (exit 1)" test $? -eq 1
contains "an unreachable router is named" err-unreach "cannot reach router at ipc://$T/nobody-here"

# --- malformed and truncated wire messages from a foreign client
"$SS" router --from ipc://$T/fr-in --to ipc://$T/fr-out --name fr 2> err-router &
rpid=$!; _pids+=($rpid)
sleep 0.3
$PY - "$T" <<'PY'
import sys, zmq, struct
t = sys.argv[1]
ctx = zmq.Context()
s = ctx.socket(zmq.DEALER)
s.setsockopt(zmq.IDENTITY, b"client-7")
s.setsockopt(zmq.LINGER, 2000)
s.connect("ipc://%s/fr-in" % t)
s.send(b"hello, router")                          # not our protocol
hdr = b"SSB1" + bytes([2, 1]) + struct.pack("<HIIQIIQQQIIHHI", 0, 0, 0, 0, 1,
                                            100, 1, 0, 0, 0, 0, 0, 0, 0)
s.send(hdr + b"\x01\x02")                         # truncated payload
s.send(hdr[:20])                                   # truncated header
ctx.destroy(linger=2000)
PY
sleep 1
contains "garbage from a foreign client is dropped with a reason" err-router "client-7.*(bad magic|header)"
contains "a truncated payload is reported as such" err-router "client-7.*(truncated|length)"
check "the router survives malformed messages" kill -0 $rpid
finish
