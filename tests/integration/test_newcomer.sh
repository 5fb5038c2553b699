#!/bin/bash
# What a newcomer runs into: each friction reported by a new user gets a
# message that says what is wrong and how to fix it, instead of silence or
# a bare errno.
source "$(dirname "$0")/lib.sh"
EX=$ROOT/examples/delayed-flights
cd "$T"

# --- a stage script that never calls :subscribeToSocket drops everything
cat > nosub.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM')):map(function(e) return e end)
LUA
FROM=ipc://$T/nowhere timeout 20 "$SS" worker nosub.lua 2> e; rc=$?
check "a worker script without subscribeToSocket fails at start" test $rc -eq 1
contains "... saying what to add" e "nosub.lua never calls :subscribeToSocket\(\.\.\.\).*subscribeToSocket\(os.getenv\('TO'\)\)"

cp "$EX"/filter-event.lua "$EX"/reduce-events.lua "$EX"/print-results.lua "$EX"/map-csv-to-event.lua .
cat > nosub.yml <<'YML'
name: nosub
source: { file: data.csv, format: csv, header: true }
stages:
  - { name: map, script: map-csv-to-event.lua }
  - { name: filter, script: nosub.lua }
sink: { script: print-results.lua }
YML
"$SS" gen flights --rows 500 --seed 3 -o data.csv
timeout 60 "$SS" run nosub.yml --output-dir out1 > o 2> e; rc=$?
check "sstream run with such a stage fails instead of printing nothing" test $rc -ne 0
contains "... naming the script" e "nosub.lua never calls :subscribeToSocket"

# --- rejects past the first 10 are announced as not shown
{ head -1 data.csv; for i in $(seq 1 30); do echo "broken,line,$i"; done; tail -n +2 data.csv; } > bad.csv
cat > p.yml <<'YML'
name: p
source: { file: data.csv, format: csv, header: true }
stages:
  - { name: map, script: map-csv-to-event.lua }
  - { name: reduce, script: reduce-events.lua }
sink: { script: print-results.lua }
YML
timeout 60 "$SS" run p.yml --data bad.csv --output-dir out3 > o 2> e
n=$(grep -c "line [0-9]* rejected:" e)
check "the source logs the first 10 rejected lines in full ($n)" test "$n" -eq 10
contains "... then says the rest are not shown, and where they are" e "more rejected lines are not shown here: one in 100 is \(LOG_RATE\); all of them are in the rejects file"

# --- a line over the batch size says how to raise it
{ head -1 data.csv; printf '2008,1,1,1,1,1,1,1,AA,1,N1,1,1,1,%s,1,SFO,LAX,1,1,1,0,,0,0,0,0,0,0\n' "$(head -c 600 /dev/zero | tr '\0' 7)"; } > long.csv
timeout 60 "$SS" run p.yml --data long.csv --batch-size 512 --output-dir out4 > o 2> e
contains "a line longer than the batch size names --batch-size" e "longer than the batch size \(512 bytes; raise it with --batch-size or batch_size in the pipeline file\)"

# --- mapSGX in encrypted mode: warned like in plain mode
"$SS" keygen -o keys > /dev/null 2>&1
timeout 90 "$SS" run "$EX/sgx/pipeline.yml" --data data.csv --security encrypted \
    --output-dir out2 > o 2> e; rc=$?
check "the SGX example runs in encrypted mode" test $rc -eq 0
cat out2/logs/*.log e > all 2>/dev/null
contains "... and warns that its SGX functions run outside any enclave" all "uses mapSGX/filterSGX/reduceSGX but security is 'encrypted': its functions run outside any enclave"
# --- enclave mode: the owner reads the sealed reasons of rejects.jsonl
cat > badmap.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
local csv = require 'csv'
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :map(function(line)
    local a = csv.parse(line)
    if a[9] == 'AA' then error('carrier AA refused at row ' .. a[1]) end
    return { uniquecarrier = a[9], arrdelay = a[15] }
  end)
  :subscribeToSocket(os.getenv('TO'))
LUA
cat > enc.yml <<'YML'
name: enc
source: { file: data.csv, format: csv, header: true }
stages:
  - { name: map, script: badmap.lua }
  - { name: reduce, script: reduce-events.lua }
sink: { script: print-results.lua }
YML
naa=$(awk -F, 'NR > 1 && $9 == "AA"' data.csv | wc -l)
timeout 120 "$SS" run enc.yml --security enclave --output-dir out5 > o 2> e; rc=$?
check "an enclave-mode run with rejected rows completes" test $rc -eq 0
lacks "... its rejects file holds no reason in clear" out5/rejects.jsonl "refused at row"
"$SS" decrypt --keys out5/keys out5/rejects.jsonl plain.jsonl 2> e; rc=$?
check "sstream decrypt opens the rejects file of an enclave run" test $rc -eq 0
n=$(grep -c '"error":".*carrier AA refused at row' plain.jsonl)
check "... and gives every rejected row with its reason ($n of $naa)" test "$n" -eq "$naa" -a "$naa" -gt 0
contains "... in the plain-mode form (stage, worker, row)" plain.jsonl '"stage":"map","worker":"map-1"'
contains "... with the rejected event itself, as in plain mode" plain.jsonl '"error":".*carrier AA refused at row.*","event":"[0-9]+,[^"]*,AA,'
lacks "... which the host's rejects file never shows" out5/rejects.jsonl '"event"'
sed 's/"sealed":"\(.\{20\}\)A/"sealed":"\1B/' out5/rejects.jsonl > tampered.jsonl
"$SS" decrypt --keys out5/keys tampered.jsonl t.out 2> e; rc=$?
check "a changed sealed reason fails to open" test $rc -ne 0
contains "... naming the line" e "tampered.jsonl:[0-9]+: the sealed reasons"
# --- a failed run ends with one line that says why; the logs hold stderr
sed 's/:map(/:mapp(/' map-csv-to-event.lua > typo.lua
sed 's/map-csv-to-event.lua/typo.lua/' p.yml > typo.yml
timeout 60 "$SS" run typo.yml --output-dir out6 > o 2> e; rc=$?
check "a script typo fails the run" test $rc -eq 1
tail -1 e > last
contains "... and the last line says why, naming the worker and the typo" last "^sstream run: p failed because worker map-1: .*typo.lua:[0-9]+: attempt to call a nil value \(method 'mapp'\)"
n=$(grep -c '^\[' e)
check "... after at most 3 relayed lines ($n), the side effects are in the logs" test "$n" -le 3
contains "... where the logs hold what the components wrote on stderr" out6/logs/map-1.log "error: .*mapp"
# --- many rejected rows: a warning past 1 %, a failure past max_reject_ratio
timeout 60 "$SS" run p.yml --data bad.csv --output-dir out7 > o 2> e; rc=$?
check "a run with 40 of 530 rows rejected (30 bad lines, 10 NA delays) still succeeds" test $rc -eq 0
contains "... but warns about the share rejected" e "warning: 40 of 530 rows \(7.5%\) were rejected: see rejects.jsonl"
sed 's/^name: p$/name: p\nmax_reject_ratio: 5%/' p.yml > strict.yml
timeout 60 "$SS" run strict.yml --data bad.csv --output-dir out8 > o 2> e; rc=$?
check "with max_reject_ratio: 5% the same run fails" test $rc -eq 1
contains "... and says why on its last line" <(tail -1 e) "sstream run: p failed because 40 of 530 rows \(7.5%\) were rejected: more than max_reject_ratio 0.05"
# --- a line that is not UTF-8: its exact bytes can be recovered from rejects
{ head -1 data.csv; printf '2008,1,3,4,1,1,1,1,A\377,1,N1,1,1,1,5,1,SFO,LAX,1,1,1,0,,0,0,0,0,0,0\n'; tail -n +2 data.csv; } > u.csv
timeout 60 "$SS" run p.yml --data u.csv --output-dir out9 > o 2> e
grep '"file":"u.csv"' out9/rejects.jsonl > ur
contains "a line with invalid UTF-8 is rejected, named" ur '"line":2,"error":"invalid UTF-8 at byte 21"'
$PY - ur u.csv > ok.txt <<'PY'
import base64, json, sys
r = json.loads(open(sys.argv[1]).readline())
line = open(sys.argv[2], 'rb').read().split(b'\n')[1]
print("same" if base64.b64decode(r["event_base64"]) == line else "differs")
PY
contains "... and event_base64 gives back its exact bytes" ok.txt "^same$"
# --- kill -9 of sstream run: its endpoint folder is swept by the next run,
# and its rejects files by the next run into its output folder
mkdir -p tmp
sed 's/local array = csv.parse(value)/for _ = 1, 20000 do end\n      local array = csv.parse(value)/' \
    map-csv-to-event.lua > slow-map.lua
grep -q 'for _ = 1, 20000' slow-map.lua || echo "fixture: slow-map.lua not slowed" >&2
sed 's/map-csv-to-event.lua/slow-map.lua/' p.yml > slow.yml
"$SS" gen flights --rows 60000 --seed 4 -o big.csv
{ head -1 big.csv; for i in $(seq 1 20); do echo "broken,$i"; done; tail -n +2 big.csv; } > bigbad.csv
TMPDIR=$T/tmp "$SS" run slow.yml --data bigbad.csv --output-dir out10 > /dev/null 2>&1 &
runpid=$!
for _ in $(seq 1 150); do # until the source has written its rejects
    [ -n "$(cat out10/rejects/*.jsonl 2> /dev/null)" ] && break; sleep 0.1
done
kill -KILL $runpid 2> /dev/null; wait $runpid 2> /dev/null
sleep 1 # its children follow it (parent-death signal)
left=$(ls tmp | grep -c sstream-run-)
check "a run killed with SIGKILL leaves its endpoint folder ($left)" test "$left" -eq 1
TMPDIR=$T/tmp timeout 60 "$SS" run p.yml --output-dir out11 > /dev/null 2>&1; rc=$?
check "the next run succeeds" test $rc -eq 0
left=$(ls tmp | grep -c sstream-run-)
check "... and removes the dead run's folder, then its own ($left left)" test "$left" -eq 0
stale=$(ls out10/rejects/*.jsonl 2> /dev/null | wc -l)
check "the killed run left its rejects files behind ($stale)" test "$stale" -ge 1
TMPDIR=$T/tmp timeout 60 "$SS" run p.yml --output-dir out10 > /dev/null 2>&1
check "the next run into its folder removes them" test -z "$(ls out10/rejects 2> /dev/null)"
n=$(grep -c broken out10/rejects.jsonl)
check "... and its rejects.jsonl holds none of the dead run's rejects ($n)" test "$n" -eq 0
# --- a sink whose script fails on results: said, not hidden in the books
cat > ns.yml <<'YML'
name: ns
source: { file: data.csv, format: csv, header: true }
stages:
  - { name: map, script: map-csv-to-event.lua }
sink: { script: print-results.lua }
YML
timeout 60 "$SS" run ns.yml --output-dir out12 > o 2> e
contains "a sink failing on every result is warned about" e "warning: the sink's script failed on 500 of the 500 results it received"
contains "... and the rejects line says which rejects are the sink's" e "rejects: 500 in out12/rejects.jsonl \(500 of them by the sink"
# --- a word count: a flatMap stage emits several events per row; the
# run balances (rows out are the rows it passed) instead of failing
printf 'the quick brown fox\njumps over the lazy dog\nthe dog barks\n' > words.txt
cat > split.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :flatMap(function(line)
    local words = {}
    for w in line:gmatch('%a+') do words[#words + 1] = { word = w } end
    return ZmqRx.Observable.fromTable(words)
  end)
  :filter(function(e) return e.word ~= 'barks' end)
  :subscribeToSocket(os.getenv('TO'))
LUA
cat > count.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :reduce(function(acc, e) acc[e.word] = (acc[e.word] or 0) + 1; return acc end, {})
  :subscribeToSocket(os.getenv('TO'))
LUA
cat > wcprint.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :subscribe(function(t)
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do print(k, t[k]) end
  end, nil, function() ZmqRx.sendZmqCompleted() end)
LUA
cat > wc.yml <<'YML'
name: wc
source: { file: words.txt }
stages:
  - { name: split, script: split.lua, workers: 2 }
  - { name: count, script: count.lua }
sink: { script: wcprint.lua }
YML
for mode in plain encrypted; do
    timeout 60 "$SS" run wc.yml --security $mode --output-dir wc-$mode > o 2> e; rc=$?
    check "a word count (flatMap then reduce) succeeds in $mode mode" test $rc -eq 0
    contains "... with its counts" o "^the	3$"
    contains "... balanced on the 3 rows the split stage passed" e "rows in = rows out \+ rows filtered \+ rows rejected: 3 = 3 \+ 0 \+ 0: balanced"
    contains "... saying why its 11 words are not rows" e "rows out: the rows stage 'split' passed; it emits another number of events than it passes"
done
# --- a misspelt partition_by field: every event has the nil key and goes
# to one worker; the summary says so instead of nothing
printf 'ts,shop,amount\n1,A,10\n2,B,20\n3,A,30\n5,C,5\n11,A,4\n12,B,6\n' > sales.csv
cat > parse.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
local csv = require 'csv'
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :map(function(line)
    local r = csv.parse(line)
    return { ts = tonumber(r[1]), shop = r[2], amount = tonumber(r[3]) }
  end)
  :subscribeToSocket(os.getenv('TO'))
LUA
cat > sum.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :reduce(function(acc, e) acc[e.shop] = (acc[e.shop] or 0) + e.amount; return acc end, {})
  :subscribeToSocket(os.getenv('TO'))
LUA
for field in shop shp; do
cat > key-$field.yml <<YML
name: key
source: { file: sales.csv, format: csv, header: true }
stages:
  - { name: parse, script: parse.lua }
  - { name: sum, script: sum.lua, workers: 2, partition_by: $field }
sink: { script: wcprint.lua }
YML
done
for mode in plain enclave; do
    timeout 90 "$SS" run key-shp.yml --security $mode --output-dir key-$mode > o 2> e; rc=$?
    check "partition_by naming a field the events lack still runs ($mode)" test $rc -eq 0
    contains "... and the summary says every event went to one worker, naming the field" e "hot partition: stage sum: every keyed event \(6\) went to worker sum-[12]: none had a field 'shp' \(or each had it nil\), so all have one key; is partition_by spelled"
done
timeout 60 "$SS" run key-shop.yml --output-dir key-ok > o 2> e
lacks "a well-spelt partition_by says nothing of the kind" e "hot partition"
# --- checkpoints that never complete: the summary does not point at a
# manifest that was not written, and says why
# (300,000 rows and a barrier every 2 ms: with 100,000 rows and 20 ms a
# fast machine's source was done before the first interval had passed)
"$SS" gen flights --rows 300000 --seed 5 -o ck.csv
cat > fred.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :reduce(function(acc, e) acc.n = acc.n + 1; return acc end, { n = 0, f = function() end })
  :map(function(acc) return { n = acc.n } end)
  :subscribeToSocket(os.getenv('TO'))
LUA
cat > fshow.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :subscribe(function(r) print(r.n) end, nil, function() ZmqRx.sendZmqCompleted() end)
LUA
cat > fck.yml <<'YML'
name: fck
checkpoint_ms: 2
source: { file: ck.csv, parts: 2 }
stages:
  - { name: red, script: fred.lua }
sink: { script: fshow.lua }
YML
timeout 90 "$SS" run fck.yml --output-dir fck > o 2> e; rc=$?
check "a run whose reduce state cannot be checkpointed still completes" test $rc -eq 0
contains "... warning that no checkpoint can complete" e "no snapshot at checkpoint [0-9]+, so no checkpoint can complete: stage 'red': cannot checkpoint .*a function value"
check "... and writes no manifest" test ! -e fck/checkpoints/manifest.json
lacks "... so the summary names none" e "manifest.json"
contains "... but says none completed, and why" e "checkpoints: none complete \(every 2 ms\): barriers reached epoch [0-9]+ but not every component acknowledged one"
printf 'a\nb\n' > tiny.txt
timeout 60 "$SS" run fck.yml --data tiny.txt --output-dir fck2 > o 2> e
contains "a run too short for a barrier says so" e "checkpoints: none \(every 2 ms\): the run ended before the first barrier; no manifest written"
# --- sstream decrypt of the empty rejects.jsonl of an enclave run that
# rejected nothing: said so, not "ends after batch 0 ... (truncated?)"
: > empty.jsonl
"$SS" decrypt --keys out5/keys empty.jsonl empty.out 2> e; rc=$?
check "decrypt of an empty file fails (a sealed file is never empty)" test $rc -eq 1
contains "... saying it is empty and what an empty rejects file means" e "empty.jsonl is empty: nothing to open \(a sealed file is never empty; an empty rejects.jsonl means the run rejected nothing\)"
check "... and writes no OUT" test ! -e empty.out
# --- --workers 2 on a word count gives its reduce 2 workers dealt by
# credit: each result is partial; the summary says so
for i in $(seq 1 200); do echo "w$((i % 7)) w$((i % 3))"; done > many.txt
timeout 60 "$SS" run wc.yml --data many.txt --workers 2 --output-dir wc2 > o 2> e; rc=$?
check "a word count with --workers 2 runs" test $rc -eq 0
contains "... and notes that its reduce's results are partial, one set per worker" e "note: stage count keeps state \(a reduce...\) on 2 workers dealt by credit, so each worker's results cover only the events it got: right if the sink merges them \(examples/delayed-flights/print-results.lua does\); else give the stage partition_by: FIELD"
timeout 60 "$SS" run key-shop.yml --output-dir key-ok2 > o 2> e
lacks "a stateful stage partitioned by its key gets no such note" e "note: stage"
timeout 60 "$SS" run wc.yml --data many.txt --output-dir wc1 > o 2> e
lacks "... nor one with a single worker" e "note: stage"
# --- sstream run --on swarm without an engine, or without a client
if command -v docker > /dev/null; then
    DOCKER_HOST=unix://$T/no-engine.sock timeout 60 "$SS" run wc.yml --on swarm --output-dir sw1 > o 2> e; rc=$?
    check "run --on swarm with no engine answering fails" test $rc -eq 1
    contains "... with docker's own reason on one line" e "^sstream run: cannot reach the Docker engine \(docker info: Cannot connect to the Docker daemon"
    lacks "... without the client's half-formatted output" e "info:  *false"
    contains "... pointing at sstream cluster check" e "sstream cluster check wc.yml lists what a run on a swarm needs"
fi
DOCKER=$T/no-such-docker timeout 60 "$SS" run wc.yml --on swarm --output-dir sw2 > o 2> e; rc=$?
check "run --on swarm without the docker client fails" test $rc -eq 1
contains "... saying the client is missing, not the daemon" e "cannot run the Docker client \(cannot run .*no-such-docker: No such file or directory\): install it"
# --- a stage script run by hand without FROM: said, not "bad router endpoint ''"
(unset FROM TO; timeout 20 "$SS" lua split.lua > o 2> e); rc=$?
check "sstream lua of a stage script without FROM fails" test $rc -eq 1
contains "... saying no endpoint was given and how to give one" e "no router endpoint: none was given \(a script's os.getenv\('FROM'\) or os.getenv\('TO'\) with the variable unset\?\): set FROM / TO, or give --from / --to"
"$SS" lua --help > o
contains "sstream lua --help lists the files module" o "rx, zmq-rx, sgx-rx, sgx, csv, json, log, files"
# --- keygen -o DIR (as gen -o): the keys are made; a sealed input: plain
# mode and a run that would make new keys are refused before anything starts
"$SS" keygen -o mykeys > o 2> e; rc=$?
check "sstream keygen -o DIR makes the keys, as gen -o does" test $rc -eq 0 -a -f mykeys/data.key
"$SS" encrypt --keys mykeys words.txt words.sealed 2> e
sed 's/{ file: words.txt }/{ file: words.sealed, format: sealed }/' wc.yml > ws.yml
timeout 60 "$SS" run ws.yml --output-dir ws1 > o 2> e; rc=$?
check "a sealed input in plain mode fails" test $rc -eq 1
contains "... before anything starts, naming the file and the fix" e "^sstream run: ws.yml: source format sealed: sealed input needs security encrypted or enclave .*give --security"
check "... with no component started" test ! -d ws1/logs
timeout 60 "$SS" run ws.yml --security enclave --output-dir ws2 > o 2> e; rc=$?
check "a sealed input without --keys fails" test $rc -eq 1
contains "... saying it needs the keys it was sealed with" e "the input '.*words.sealed' is sealed \(sstream encrypt --keys DIR\): give this run the keys it was sealed with, --keys DIR"
check "... instead of making new ones" test ! -e ws2/keys/data.key
timeout 90 "$SS" run ws.yml --security enclave --keys mykeys --output-dir ws3 > o 2> e; rc=$?
check "with --keys it runs" test $rc -eq 0
contains "... and counts the words" o "^the	3$"
# --- enclave mode: a worker's CPU in the summary includes its enclave's
# (run as root the enclave is started by a spawner, not by the worker: its
# time was left out, showing 0.07 s for a map that took 0.38 s)
sed 's/for _ = 1, 20000 do end/for _ = 1, 200000 do end/' slow-map.lua > slower-map.lua
sed 's/slow-map.lua/slower-map.lua/' slow.yml > slower.yml
"$SS" gen flights --rows 1500 --seed 6 -o cpu.csv
timeout 120 "$SS" run slower.yml --data cpu.csv --security enclave --output-dir cpu > o 2> e; rc=$?
check "an enclave run with a CPU-heavy map completes" test $rc -eq 0
cpu=$(awk '$1 == "map-1" { print $8 }' e)
check "... and map-1's CPU ($cpu s) includes its enclave's (at least 0.5 s of Lua loops)" \
    awk -v c="$cpu" 'BEGIN { exit !(c + 0 >= 0.5) }'
# --- a data file the script names (files.lines) is missing: said before
# any component starts, not by every worker after the routers started
cat > names.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
local files = require 'files'
local n = 0
for _ in files.lines('shopz.csv') do n = n + 1 end
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :map(function(e) e.n = n; return e end)
  :subscribeToSocket(os.getenv('TO'))
LUA
sed 's/script: sum.lua, workers: 2, partition_by: shop/script: names.lua, workers: 2/' key-shop.yml > names.yml
timeout 60 "$SS" run names.yml --output-dir names > o 2> e; rc=$?
check "a missing data file of a stage script fails the run" test $rc -eq 1
contains "... at once, naming the stage, the file and the script" e "^sstream run: stage 'sum': data file ./shopz.csv \(named by names.lua\) does not exist"
check "... before any component started" test ! -d names/logs
finish
