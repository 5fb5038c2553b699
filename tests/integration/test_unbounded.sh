#!/bin/bash
# Unbounded input: `sstream run` on examples/carrier-delays/pipeline-live.yml
# follows a file that a feeder is still appending to (months in order, a
# few thousand rows a second, in chunks). A month's results must be
# printed while the feeder is still appending (the window closes when the
# next month arrives, the printer prints each result as it comes); after
# the feeder is done, one SIGINT ends the followed input: the run must
# finish normally (exit 0, balanced) and the whole per-window result must
# equal sqlite3 on the whole file. Then `sstream source --follow` alone:
# truncation and replacement (rotation) of the followed file are logged,
# stdin with the linger, and a foreign producer (Python) feeding a window
# stage whose first result is printed before the producer ends.
source "$(dirname "$0")/lib.sh"
EX=$ROOT/examples/carrier-delays
rows=${ROWS:-20000} chunk=400
"$SS" gen flights --rows "$rows" --seed 7 -o "$T/all.csv"

sqlite3 "$T/ref.db" <<SQL
.mode csv
.import $T/all.csv flights
.import $EX/carriers.csv carriers
.mode list
.separator ' '
.output $T/expected
SELECT printf('%04d-%02d', f.Year, f.Month), f.UniqueCarrier, COUNT(*),
       SUM(CAST(f.ArrDelay AS INTEGER)), COALESCE(c.Name, '(unknown)')
  FROM flights f LEFT JOIN carriers c ON c.Code = f.UniqueCarrier
 WHERE f.ArrDelay <> 'NA'
 GROUP BY f.Year, f.Month, f.UniqueCarrier;
SQL
LC_ALL=C sort -o "$T/expected" "$T/expected"
check "sqlite3 has about 48 months x 20 carriers" test "$(wc -l < "$T/expected")" -ge 900

# the pipeline, pointed at the growing file
mkdir -p "$T/live"
sed -e "s|script: |script: $EX/|" -e "s|file: flights.csv|file: $T/live/f.csv|" \
    "$EX/pipeline-live.yml" > "$T/live/pipeline.yml"
head -1 "$T/all.csv" > "$T/live/f.csv"
tail -n +2 "$T/all.csv" | split -l "$chunk" - "$T/chunk."

"$SS" run "$T/live/pipeline.yml" --output-dir "$T/o" --timeout 120 \
    --no-progress > "$T/run.out" 2> "$T/run.err" &
RUN=$!
_pids+=("$RUN")
# the feeder: one chunk every 0.1 s; notes how many result lines were out
# before each chunk (the last note is before the last chunk)
feed() {
    sleep 1
    for c in "$T"/chunk.*; do
        wc -l < "$T/run.out" > "$T/seen"
        cat "$c" >> "$T/live/f.csv"
        sleep 0.1
    done
}
start=$(date +%s.%N)
feed
fed=$(date +%s.%N)
seen=$(cat "$T/seen")
echo "    fed $rows rows in $(awk "BEGIN { printf \"%.1f\", $fed - $start }") s; $seen result lines out before the last chunk"
check "window results were printed while the feeder was still appending" test "$seen" -ge 20
sleep 2 # the last rows travel; the last month is still open
kill -INT "$RUN"
wait_max 60 "$RUN"
check "one SIGINT ends the followed input and the run exits 0" test $? -eq 0
contains "the supervisor says it ends the followed input" "$T/run.err" "ending the followed input"
contains "balanced" "$T/run.err" "balanced"
contains "the window stage saw no late event" "$T/o/logs/window-1.log" "window: [0-9]+ events, [0-9]+ windows, 0 late"
sed -E 's/^([^ ]+ [^ ]+ [^ ]+ [^ ]+) [^ ]+ /\1 /' "$T/run.out" | LC_ALL=C sort > "$T/got"
same "the whole per-window result equals sqlite3 on the whole file" "$T/got" "$T/expected"

# the first signal may be SIGTERM too; a second one aborts: a sink whose
# completion takes 20 s is killed, the run exits 130 at once
cat > "$T/live/slow.lua" <<'LUA'
local ZmqRx = require 'zmq-rx'
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :subscribe(function(e) end, print,
    function()
      print('completing')
      io.stdout:flush()
      os.execute('sleep 20')
      ZmqRx.sendZmqCompleted()
    end)
LUA
cat > "$T/live/slow.yml" <<YML
name: slow
source: { file: $T/live/f.csv, format: csv, header: true, follow: true }
stages:
  - { name: events, script: $EX/events.lua }
sink: { script: slow.lua }
YML
"$SS" run "$T/live/slow.yml" --output-dir "$T/o2" --timeout 120 \
    --no-progress --metrics "$T/slow.jsonl" > "$T/slow.out" 2> "$T/slow.err" &
RUN=$!
_pids+=("$RUN")
# rows flow (the source follows, past its router's handshake): then
# SIGTERM. (The source's "following" line is not logged under `run`,
# whose components log warnings only: this loop used to wait out its
# 30 s. A source stopped before its router's answer ends an empty
# stream: test_follow_stop.sh.)
for ((i = 0; i < 300; i++)); do
    grep -qs '"name":"events-1".*"in":[1-9]' "$T/slow.jsonl" && break; sleep 0.1; done
kill -TERM "$RUN"
for ((i = 0; i < 300; i++)); do
    grep -q completing "$T/slow.out" && break; sleep 0.1; done
check "SIGTERM ends the followed input: the sink completes" grep -q completing "$T/slow.out"
t0=$(date +%s)
kill -INT "$RUN"
wait_max 30 "$RUN"
rc=$?
check "a second signal aborts the run (exit 130)" test $rc -eq 130
check "... at once, not after the sink's 20 s" test $(($(date +%s) - t0)) -le 10

# sstream source --follow alone, into a router and a sink that prints
# each line as it comes: a few lines (far less than a batch) arrive while
# the source still runs (the linger sends the partial batch); truncation
# and replacement of the file are noticed and logged (the new file's
# header is skipped too); SIGTERM ends the
# stream cleanly (exit 0, the sink completes with every line once).
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
wire() { # $1: tag; the source's arguments follow; it runs in the
         # background, its stdin from $SRC_IN (default /dev/null)
    local tag=$1; shift
    bg "$SS" router --from ipc://$T/$tag-in --to ipc://$T/$tag-out --name r-$tag 2> /dev/null
    "$SS" sink live.lua --from ipc://$T/$tag-out --name sink-$tag > out-$tag 2> err-$tag &
    SINK=$!; _pids+=($SINK)
    sleep 0.3
    "$SS" source --to ipc://$T/$tag-in --name src-$tag "$@" \
        < "${SRC_IN:-/dev/null}" 2> src-$tag.err &
    SRC=$!; _pids+=($SRC)
}
arrived() { # $1 file, $2 line: waits up to 10 s for it
    local i
    for ((i = 0; i < 100; i++)); do
        grep -qx -- "$2" "$1" 2> /dev/null && return 0
        sleep 0.1
    done
    return 1
}
printf 'h\na1\na2\na3\n' > grow.txt
wire follow --follow --header --linger-ms 200 grow.txt
check "follow: 3 lines arrive while the source runs (linger)" arrived out-follow a3
printf 'a4\n' >> grow.txt
check "follow: an appended line arrives" arrived out-follow a4
: > grow.txt
sleep 0.5
printf 'h\nb1\n' >> grow.txt
check "follow: after truncation, the new line arrives" arrived out-follow b1
contains "follow: the truncation is logged" src-follow.err "grow.txt was truncated"
mv grow.txt grow.txt.1
printf 'h\nc1\nc2\n' > grow.txt
check "follow: after replacement, the new file's lines arrive" arrived out-follow c2
contains "follow: the replacement is logged" src-follow.err "grow.txt was replaced"
printf 'c3' >> grow.txt # no newline yet: the line waits
sleep 0.5
lacks "follow: an unfinished line waits for its end" out-follow "^c3"
printf '4\n' >> grow.txt
check "follow: ... and arrives once finished" arrived out-follow c34
kill -TERM "$SRC"
wait_max 30 "$SRC"
check "follow: SIGTERM ends the stream, exit 0" test $? -eq 0
wait_max 30 "$SINK"
check "follow: the sink completes" test $? -eq 0
contains "follow: every line once, then the end" out-follow "^events 8$"
lacks "follow: each file's header is skipped (new file, truncated one)" out-follow "^h$"
same "follow: the lines in order" <(head -8 out-follow) <(printf 'a1\na2\na3\na4\nb1\nc1\nc2\nc34\n')

# a followed file that is not there yet is waited for (tail -F); a stop
# before it appears ends an empty stream
wire later --follow later.txt
sleep 0.5
printf 'e1\n' > later.txt
check "follow: a file that appears later is followed" arrived out-later e1
contains "follow: the wait is logged" src-later.err "waiting for later.txt to appear"
kill -INT "$SRC"
wait_max 30 "$SRC"
check "follow: ... SIGINT ends it, exit 0" test $? -eq 0
wire never --follow never.txt
sleep 0.5
kill -INT "$SRC"
wait_max 30 "$SRC"
check "follow: stopped before the file appeared: exit 0" test $? -eq 0
wait_max 30 "$SINK"
contains "follow: ... an empty stream, completed" out-never "^events 0$"

timeout 30 "$SS" source --to ipc://$T/none --format sealed --security encrypted \
    --follow grow.txt 2> sealed.err
check "follow: a sealed file is refused (exit 1)" test $? -eq 1
contains "follow: ... saying why" sealed.err "a sealed file is complete .*: it cannot be followed"

# stdin: a pipe that stays open; its first line arrives before its end
mkfifo in.fifo
SRC_IN=in.fifo wire stdin --linger-ms 200 -
exec 7> in.fifo # after the fork: only this shell holds the writing end
printf 'd1\nd2\n' >&7
check "stdin: lines arrive while the pipe stays open (linger)" arrived out-stdin d2
printf 'd3\n' >&7
exec 7>&-
wait_max 30 "$SRC"
check "stdin: the end of the pipe ends the stream, exit 0" test $? -eq 0
wait_max 30 "$SINK"
contains "stdin: every line once" out-stdin "^events 3$"
# a foreign producer (tests/python/sstream_client.py, written from
# docs/PROTOCOL.md) feeds a window stage without end in sight: it sends
# two batches, then waits until the sink printed the first window (closed
# by the second batch) before it sends more and ends its stream
cat > win.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :tumblingWindow({
    size = 10,
    time = function(e) return e.t end,
    seed = function() return 0 end,
    reduce = function(acc, e) return acc + 1 end,
  })
  :map(function(w) return 'window ' .. w.from .. ' ' .. w.value end)
  :subscribeToSocket(os.getenv('TO'))
LUA
bg "$SS" router --from ipc://$T/p-in --to ipc://$T/p-mid --name rp 2> rp.err
bg "$SS" router --from ipc://$T/p-mid2 --to ipc://$T/p-out --name rq 2> rq.err
sleep 0.3
bg "$SS" worker win.lua --from ipc://$T/p-mid --to ipc://$T/p-mid2 --name win-1 2> win.err
"$SS" sink live.lua --from ipc://$T/p-out --name sink-p > out-p 2> err-p &
SINK=$!; _pids+=($SINK)
PYTHONPATH=$ROOT/tests/python timeout -k 5 60 $PY - "$T" > pyp.out 2> pyp.err <<'PY'
import sys, time
import zmq
from sstream_client import Producer, stream_of, DATA, LAST_PART
t = sys.argv[1]
ctx = zmq.Context()
p = Producer(ctx, "ipc://%s/p-in" % t, "py-src", "py")
S = stream_of("py-src")
p.send_batch(S, 0, [{"t": i} for i in range(10)], first_row=1)
p.send_batch(S, 1, [{"t": 10 + i} for i in range(10)], first_row=11)
seen, t0 = False, time.time()
while time.time() - t0 < 20 and not seen:
    with open("%s/out-p" % t) as f:
        seen = any(l.startswith("window 0 ") for l in f)
    time.sleep(0.05)
print("first window before the end", seen, round(time.time() - t0, 2))
p.send_batch(S, 2, [{"t": 20 + i} for i in range(5)], first_row=21)
p.end([(S, 3)])
ctx.destroy(linger=500)
PY
check "python producer: ran to the end" test $? -eq 0
sed 's/^/    /' pyp.out
contains "python producer: the first window was printed before its stream ended" pyp.out "^first window before the end True"
wait_max 30 "$SINK"
check "python producer: the sink completes" test $? -eq 0
same "python producer: every window once" <(grep '^window' out-p) <(printf 'window 0 10\nwindow 10 10\nwindow 20 5\n')
finish
