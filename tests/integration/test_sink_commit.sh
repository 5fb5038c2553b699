#!/bin/bash
# The sink commits its output at checkpoints (issue 13): with `sstream run
# --restarts N` and checkpoint_ms, a sink that prints each result as it
# comes (the carrier-delays window, the live printer) has its results
# shown on the run's stdout as each checkpoint completes, not only at the
# end, and never before: what the run's stdout holds is at most what the
# sink had written at the barrier of the last complete checkpoint (its
# mark in checkpoints/manifest.json). Kills -9 of the window worker
# (stateful), of the sink and of a router, each after results were
# committed, resume from the last checkpoint every time (the sink's
# output after its mark is cut away and written again by the replay), and
# the run's stdout and the sink's OUTPUT hold each result exactly once
# (sqlite3's answer). Poison rows rejected all along by the first stage
# are in rejects.jsonl exactly once each after the resumes (each rejects
# file is cut back to its length at the checkpoint), as many as the
# summary counts. In plain and enclave modes. What was shown cannot be
# taken back: a restart that cannot resume from the shown checkpoint
# fails the run instead of starting over.
source "$(dirname "$0")/lib.sh"
EX=$ROOT/examples/carrier-delays
cd "$T"
cp "$EX"/names.lua "$EX"/carriers.csv "$EX"/window.lua .
RUN_TIMEOUT=${RUN_TIMEOUT:-120}

"$SS" gen flights --rows 48000 --seed 5 -o clean.csv
sqlite3 ref.db <<SQL
.mode csv
.import clean.csv flights
.import carriers.csv carriers
.mode list
.separator ' '
.output expected
SELECT printf('%04d-%02d', f.Year, f.Month), f.UniqueCarrier, COUNT(*),
       SUM(CAST(f.ArrDelay AS INTEGER)), COALESCE(c.Name, '(unknown)')
  FROM flights f LEFT JOIN carriers c ON c.Code = f.UniqueCarrier
 WHERE f.ArrDelay <> 'NA'
 GROUP BY f.Year, f.Month, f.UniqueCarrier;
SQL
LC_ALL=C sort -o expected expected
check "fixture: sqlite3 gives a few hundred results" test "$(wc -l < expected)" -ge 300
# a poison row (carrier ZZ) after every 1200 rows: the first stage
# rejects it; a line of two fields after every 1000: the source rejects it
awk -F, -v OFS=, 'NR > 1 && NR % 1000 == 0 { print "bad,line" }
    NR > 1 && NR % 1200 == 0 { print; $9 = "ZZ"; print; next } 1' \
    clean.csv > data.csv
P=$(grep -c ',ZZ,' data.csv)
B=$(grep -c '^bad,line$' data.csv)
check "fixture: $P poison rows, $B bad lines" test "$P" -ge 30 -a "$B" -ge 30
R=$((P + B)) IN=$((48000 + P + B))

# the first stage, slowed (the run spans many checkpoints and the kills
# land mid-run), rejecting the poison rows
cat > slow-events.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
local csv = require 'csv'
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :map(function(line)
    for _ = 1, 20000 do end
    local row = csv.parse(line)
    if row[9] == 'ZZ' then error('poison row') end
    local delay = tonumber(row[15])
    if not delay then return nil end
    return { c = row[9], m = tonumber(row[1]) * 12 + tonumber(row[2]) - 1,
             d = delay }
  end)
  :filter(function(event) return event ~= nil end)
  :subscribeToSocket(os.getenv('TO'))
LUA
# the sink: each result as it comes, on stdout and appended to OUTPUT (a
# file it keeps open and never flushes itself)
cat > print-commit.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
local out = io and os.getenv('OUTPUT') and io.open(os.getenv('OUTPUT'), 'a')
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :subscribe(
    function(r)
      local line = string.format('%04d-%02d %s %d %d %s',
        r.month // 12, r.month % 12 + 1, r.carrier, r.n, r.sum,
        r.name or '-')
      print(line)
      if out then out:write(line, '\n') end
    end,
    function(e) print('error: ' .. tostring(e)) end,
    function()
      if out then out:close() end
      ZmqRx.sendZmqCompleted()
    end)
LUA
cat > p.yml <<'YML'
name: sinkcommit
batch_size: 4K
checkpoint_ms: 150
source: { file: data.csv, parts: 1, format: csv, header: true }
stages:
  - { name: events, script: slow-events.lua, workers: 1 }
  - { name: window, script: window.lua, workers: 1 }
  - { name: names, script: names.lua, workers: 1 }
sink: { script: print-commit.lua, output: results.txt }
YML

# the sink's stdout mark in the manifest (0 when none yet)
mark() {
    local m
    m=$(grep -o '"sink":{[^}]*' "$1/checkpoints/manifest.json" 2> /dev/null |
        grep -o '"stdout_len":[0-9]*' | cut -d: -f2)
    echo "${m:-0}"
}

# probe TAG RUN: the run's stdout read first, the mark after (so the mark
# is at least the one of that moment); counted only while the sink still
# runs (once it completed, the rest is committed at once)
probe() {
    local size m sup
    size=$(stat -c %s "res-$1")
    m=$(mark "out-$1")
    sup=$(pgrep -P "$2" | head -1)
    [ -n "$sup" ] && pgrep -P "$sup" -f -- "--name sink( |$)" > /dev/null &&
        [ "$size" -gt "$m" ] && echo "stdout $size bytes > mark $m" >> "early-$1"
    return 0
}

# commit_run TAG VICTIMS... [-- run options]: runs p.yml with --restarts
# (stdout res-TAG, stderr err-TAG, status rc-TAG); before each kill, waits
# until the run's stdout grew in the current incarnation (results were
# committed in it: a checkpoint completed), then kills the next victim
# with SIGKILL (the lines shown then: shown-TAG). All along,
# checks that the run's stdout never holds more than the sink's mark of
# the last complete checkpoint (early-TAG: what broke it). Fails if a
# victim was not found.
commit_run() {
    local tag=$1 victims=() opts=()
    shift
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do victims+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    opts=("$@")
    : > "early-$tag"
    : > "shown-$tag"
    LOG_LEVEL=info timeout -k 10 "$RUN_TIMEOUT" "$SS" run p.yml \
        --output-dir "out-$tag" --restarts "${#victims[@]}" --no-progress \
        "${opts[@]}" > "res-$tag" 2> "err-$tag" &
    local run=$! found=0 k=0 lines
    _pids+=($run)
    for v in "${victims[@]}"; do
        k=$((k + 1))
        local pid="" sup="" seen
        # the k-th incarnation started (k-1 restarts said; once said, the
        # dead incarnation commits nothing more), and then committed
        # results of its own
        for _ in $(seq 1 $((RUN_TIMEOUT * 10))); do
            kill -0 "$run" 2> /dev/null || break
            seen=$(grep -c "restarting the whole pipeline" "err-$tag" 2> /dev/null)
            [ "${seen:-0}" -ge $((k - 1)) ] && break
            sleep 0.05
        done
        lines=$(wc -l < "res-$tag")
        echo "$(date +%T.%N | cut -c1-12) incarnation $k from $lines lines" >> "trace-$tag"
        for _ in $(seq 1 $((RUN_TIMEOUT * 10))); do
            kill -0 "$run" 2> /dev/null || break
            probe "$tag" "$run"
            [ "$(wc -l < "res-$tag")" -gt "$lines" ] && break
            sleep 0.1
        done
        lines=$(wc -l < "res-$tag")
        echo "$(date +%T.%N | cut -c1-12) kill $v at $lines lines" >> "trace-$tag"
        sup=$(pgrep -P "$run" | head -1)
        pid=$([ -n "$sup" ] && pgrep -P "$sup" -f -- "--name $v( |$)" | head -1)
        [ -n "$pid" ] && kill -KILL "$pid" 2> /dev/null &&
            found=$((found + 1)) && echo "$lines" >> "shown-$tag"
    done
    for _ in $(seq 1 $((RUN_TIMEOUT * 10))); do
        kill -0 "$run" 2> /dev/null || break
        probe "$tag" "$run"
        sleep 0.1
    done
    wait_max $((RUN_TIMEOUT + 20)) $run
    echo $? > "rc-$tag"
    [ "$found" -eq "${#victims[@]}" ]
}

# rejects_once WHAT FILE: the poison rows (rejected by the first stage)
# and the bad lines (rejected by the source), each once
rejects_once() {
    local p b
    p=$(grep -o '"row":[0-9]*' "$2" | sort | uniq | wc -l)
    b=$(grep -o '"line":[0-9]*' "$2" | sort | uniq | wc -l)
    check "$1: rejects.jsonl holds the $P poison rows and the $B bad lines, once each ($(wc -l < "$2") lines)" \
        test "$(wc -l < "$2")" -eq "$R" -a "$p" -eq "$P" -a "$b" -eq "$B"
}

commit_ok() { # TAG WHAT KILLS
    check "$2: the run recovers and exits 0" test "$(cat "rc-$1")" -eq 0
    check "$2: results were shown as checkpoints completed, before each of the $3 kills ($(echo $(cat "shown-$1")) lines)" \
        test "$(grep -c '^[1-9]' "shown-$1")" -eq "$3"
    check "$2: never more on stdout than the sink's mark of the last complete checkpoint" \
        test ! -s "early-$1"
    [ -s "early-$1" ] && head -3 "early-$1"
    n=$(grep -c "restarting the whole pipeline from checkpoint [1-9]" "err-$1")
    check "$2: each of the $3 restarts resumed from a checkpoint ($n)" test "$n" -eq "$3"
    lacks "$2: no restart from the start" "err-$1" "from the start"
    LC_ALL=C sort "res-$1" > "got-$1"
    same "$2: the run's stdout holds each result once (sqlite3's answer)" "got-$1" expected
    LC_ALL=C sort "out-$1/results.txt" > "gotout-$1"
    same "$2: OUTPUT holds each result once" "gotout-$1" expected
    rejects_once "$2" "out-$1/rejects.jsonl"
    contains "$2: the summary counts $R rejects and balances" "err-$1" \
        "rows in = rows out \+ rows filtered \+ rows rejected: $IN = .* \+ $R: balanced"
}

check "plain: window-1, then the sink, then router-3 killed after results were committed" \
    commit_run plain window-1 sink router-3
commit_ok plain "plain" 3

# rejects after a resume, with a sink that prints only at its end: the
# window worker killed once a checkpoint completed after rows were
# rejected; the rows the first stage rejected between that checkpoint and
# the kill, rejected again by the replay, show once
sed 's/print-commit.lua/print-end.lua/' p.yml > p-end.yml
cat > print-end.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :reduce(function(n, r) return n + 1 end, 0)
  :subscribe(function(n) print('results ' .. n) end, print,
    function() ZmqRx.sendZmqCompleted() end)
LUA
LOG_LEVEL=info timeout -k 10 "$RUN_TIMEOUT" "$SS" run p-end.yml \
    --output-dir out-rej --restarts 1 --no-progress > res-rej 2> err-rej &
run=$!
_pids+=($run)
killed=1
for _ in $(seq 1 $((RUN_TIMEOUT * 10))); do
    kill -0 "$run" 2> /dev/null || break
    if [ -s out-rej/checkpoints/manifest.json ] &&
        [ -s out-rej/rejects/events-1.jsonl ] &&
        [ "$(wc -l < out-rej/rejects/events-1.jsonl)" -ge 3 ]; then
        sup=$(pgrep -P "$run" | head -1)
        pid=$([ -n "$sup" ] && pgrep -P "$sup" -f -- "--name window-1( |$)" | head -1)
        [ -n "$pid" ] && kill -KILL "$pid" && killed=0
        break
    fi
    sleep 0.05
done
wait_max $((RUN_TIMEOUT + 20)) $run
rc=$?
check "rejects: window-1 killed after rows were rejected and a checkpoint completed" \
    test "$killed" -eq 0
check "rejects: the run recovers and exits 0" test "$rc" -eq 0
contains "rejects: the restart resumed from a checkpoint" err-rej \
    "restarting the whole pipeline from checkpoint [1-9]"
contains "rejects: the sink saw every result" res-rej "^results $(wc -l < expected)\$"
rejects_once "rejects" out-rej/rejects.jsonl
contains "rejects: the summary counts $R rejects and balances" err-rej \
    "rows in = rows out \+ rows filtered \+ rows rejected: $IN = .* \+ $R: balanced"

# what was shown cannot be taken back: when the checkpoint whose results
# were shown cannot be resumed from (its snapshots changed on the host
# since: the manifest refuses them), the run fails rather than restart
# from the start and show them twice. The supervisor is stopped while the
# snapshots are changed and window-1 killed (so that no newer checkpoint
# completes in between).
LOG_LEVEL=info timeout -k 10 "$RUN_TIMEOUT" "$SS" run p.yml --output-dir out-nb \
    --restarts 2 --no-progress > res-nb 2> err-nb &
run=$!
_pids+=($run)
done_nb=1
for _ in $(seq 1 $((RUN_TIMEOUT * 10))); do
    kill -0 "$run" 2> /dev/null || break
    if [ -s res-nb ]; then
        sup=$(pgrep -P "$run" | head -1)
        [ -n "$sup" ] && kill -STOP "$sup" && {
            for f in out-nb/checkpoints/*.snap; do printf x >> "$f"; done
            pid=$(pgrep -P "$sup" -f -- "--name window-1( |$)" | head -1)
            [ -n "$pid" ] && kill -KILL "$pid" && done_nb=0
            kill -CONT "$sup"
        }
        break
    fi
    sleep 0.05
done
wait_max $((RUN_TIMEOUT + 20)) $run
rc=$?
check "no take-back: window-1 killed after results were shown, the snapshots changed" \
    test "$done_nb" -eq 0
check "no take-back: the run fails" test "$rc" -ne 0
contains "no take-back: the checkpoint is refused" err-nb \
    "checkpoint [0-9]+ is refused: .*does not match the manifest"
contains "no take-back: the run says why it does not start over" err-nb \
    "failed because the restart cannot resume from checkpoint [0-9]+ .*would show them twice"
LC_ALL=C sort res-nb > got-nb
check "no take-back: what was shown ($(wc -l < got-nb) lines) are results, each once" \
    test -s got-nb -a "$(LC_ALL=C comm -23 got-nb expected | wc -l)" -eq 0 -a \
         "$(uniq -d got-nb | wc -l)" -eq 0

# a rescale at a checkpoint (sstream scale of the keyed window stage,
# 3 -> 2 workers) after results were shown, with --restarts: the resume
# cuts the sink's output back to its marks of the checkpoint, as a
# restart's does, so the rescale goes on and each result shows once
sed -e 's/^name: sinkcommit$/name: sinkcommit-keyed/' \
    -e 's/{ name: window, script: window.lua, workers: 1 }/{ name: window, script: window.lua, workers: 3, partition_by: c }/' \
    p.yml > pk.yml
LOG_LEVEL=info timeout -k 10 "$RUN_TIMEOUT" "$SS" run pk.yml --output-dir out-sc \
    --restarts 1 --no-progress > res-sc 2> err-sc &
run=$!
_pids+=($run)
for _ in $(seq 1 $((RUN_TIMEOUT * 10))); do
    kill -0 "$run" 2> /dev/null || break
    [ -s res-sc ] && break
    sleep 0.05
done
shown_sc=$(wc -l < res-sc)
timeout 30 "$SS" scale sinkcommit-keyed window 2 > scale-sc 2>&1
wait_max $((RUN_TIMEOUT + 20)) $run
rc=$?
check "rescale: asked after $shown_sc results were shown" test "$shown_sc" -gt 0
contains "rescale: accepted for the next checkpoint" scale-sc \
    "window of sinkcommit-keyed: 2 workers at the next complete checkpoint"
check "rescale: the run exits 0" test "$rc" -eq 0
contains "rescale: it resumed from a checkpoint on 2 workers" err-sc \
    "stage window resumes on 2 worker\(s\) from the snapshots of its 3 worker\(s\) at checkpoint [0-9]+"
lacks "rescale: not abandoned" err-sc "abandoned"
LC_ALL=C sort res-sc > got-sc
same "rescale: the run's stdout holds each result once (sqlite3's answer)" got-sc expected
LC_ALL=C sort out-sc/results.txt > gotout-sc
same "rescale: OUTPUT holds each result once" gotout-sc expected
rejects_once "rescale" out-sc/rejects.jsonl

check "enclave: the sink, then window-1 killed after results were committed" \
    commit_run encl sink window-1 -- --security enclave
commit_ok encl "enclave" 2
finish
