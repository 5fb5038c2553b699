#!/bin/bash
# `sstream source --follow` and lines written in pieces. A writer that
# flushes part of a line, pauses (longer than the source's linger, so the
# source reaches the end of the file with the line unfinished and sends
# its partial batch meanwhile), then writes the rest, must not see its
# line split into two rows. The writer cuts every line at random points
# (seeded: SEED=N reproduces a run), in 2 or 3 pieces, the header and the
# newline alone included; the sink must get every line whole, once, in
# order. Then the same through `sstream run` with format csv: a split row
# would have the wrong number of fields and be rejected.
source "$(dirname "$0")/lib.sh"
seed=${SEED:-$RANDOM}
echo "    seed $seed (SEED=$seed reproduces the cut points)"
cd "$T"
cat > live.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
local n = 0
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :subscribe(function(e)
      n = n + 1
      io.stdout:write(e, '\n')
      io.stdout:flush()
    end, print,
    function()
      print('events ' .. n)
      ZmqRx.sendZmqCompleted()
    end)
LUA
# writer.py SEED FILE LINES: writes header + lines, each cut at random
# points into pieces with random pauses (0.06-0.3 s) between them; the
# expected lines (without the header) go to expected
cat > writer.py <<'PY'
import os, random, sys, time
seed, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rnd = random.Random(seed)
lines = ["id,word,value"]
for i in range(n):
    w = "".join(rnd.choice("abcdefghij") for _ in range(rnd.randint(0, 30)))
    lines.append("%d,%s,%d" % (i, w, rnd.randint(-999, 99999)))
with open("expected", "w") as f:
    f.write("".join(l + "\n" for l in lines[1:]))
fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
for l in lines:
    data = (l + "\n").encode()
    k = rnd.choice((2, 2, 3))
    cuts = sorted(rnd.sample(range(1, len(data)), min(k - 1, len(data) - 1)))
    if rnd.random() < 0.15:
        cuts = [len(data) - 1] # the newline alone
    prev = 0
    for c in cuts + [len(data)]:
        if c > prev:
            os.write(fd, data[prev:c])
            time.sleep(rnd.uniform(0.06, 0.3))
        prev = c
os.close(fd)
PY

bg "$SS" router --from ipc://$T/sock-in --to ipc://$T/sock-out --name r 2> r.err
"$SS" sink live.lua --from ipc://$T/sock-out --name sink > lines.out 2> sink.err &
SINK=$!; _pids+=($SINK)
sleep 0.3
"$SS" source --to ipc://$T/sock-in --name src --follow --header --linger-ms 40 \
    --format csv grow.csv 2> src.err &
SRC=$!; _pids+=($SRC)
timeout 120 $PY writer.py "$seed" grow.csv 40
check "the writer wrote 40 lines in pieces" test $? -eq 0
for ((i = 0; i < 100; i++)); do # the last line travels (at most 10 s)
    [ "$(wc -l < lines.out)" -ge 40 ] && break; sleep 0.1; done
kill -TERM "$SRC"
wait_max 30 "$SRC"
check "the source ends cleanly on SIGTERM (exit 0)" test $? -eq 0
wait_max 30 "$SINK"
check "the sink completes" test $? -eq 0
contains "40 events, no more: no line was split" lines.out "^events 40$"
same "every line whole, once, in order" <(head -40 lines.out) expected
lacks "the header is skipped though written in pieces" lines.out "^id,word"
lacks "the source saw no malformed row" src.err "field|reject"

# the same through sstream run (csv rows checked for their field count),
# a second writer with other cut points
cat > p.yml <<YML
name: partial
source: { file: $T/run.csv, format: csv, header: true, follow: true, linger_ms: 40 }
stages:
  - name: pass
    script: pass.lua
sink: { script: live.lua }
YML
cat > pass.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
local csv = require 'csv'
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :map(function(line)
    local f = csv.fields(line)
    if #f ~= 3 then error('split row: ' .. line) end
    return line
  end)
  :subscribeToSocket(os.getenv('TO'))
LUA
: > run.csv
"$SS" run p.yml --output-dir o --timeout 120 --no-progress > run.out 2> run.err &
RUN=$!; _pids+=($RUN)
timeout 120 $PY writer.py "$((seed + 1))" run.csv 25
for ((i = 0; i < 100; i++)); do
    [ "$(wc -l < run.out)" -ge 25 ] && break; sleep 0.1; done
kill -INT "$RUN"
wait_max 60 "$RUN"
check "run: one SIGINT ends the followed input, exit 0" test $? -eq 0
contains "run: 25 rows reach the sink" run.out "^events 25$"
same "run: every row whole, in order" <(head -25 run.out) expected
contains "run: no row rejected" run.err "rejects: 0 in"
finish
