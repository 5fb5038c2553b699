#!/bin/bash
# `sstream run` as a supervisor, with fake components
# (tests/integration/fake-component.sh through SS_RUN_EXEC): the command
# lines and environment the components get, the summary and its balance,
# the merged rejects, the metrics file, and the failure paths: a child
# exiting 1 or killed, a syntax error found before starting, Ctrl-C and
# --timeout, all without leaving a process behind. When bin/sstream has
# the real source/router/worker/sink, a small real pipeline runs too.
# Last line: "N passed, M failed".
source "$(dirname "$0")/lib.sh"
FAKE=$T/fake-component.sh
cleanup_fakes() {
    # only what this test started (the fakes under $T), by pid
    local p
    for p in $(pgrep -f "$FAKE"); do kill -KILL "$p" 2>/dev/null; done
    cleanup
}
trap cleanup_fakes EXIT
fakes() { pgrep -f "$FAKE" | wc -l; }
# no_orphans NAME: no fake component left (waits up to 3 s for exits)
no_orphans() {
    local i
    for i in $(seq 30); do [ "$(fakes)" -eq 0 ] && break; sleep 0.1; done
    if [ "$(fakes)" -eq 0 ]; then ok "$1"; else notok "$1" "$(pgrep -af "$FAKE")"; fi
}
# wait_for N DIR: until N fake components have set up (at most 20 s)
wait_for() {
    local i
    for i in $(seq 200); do
        [ "$(ls "$2" | wc -l)" -ge "$1" ] && return 0
        sleep 0.1
    done
    return 1
}

if [ ! -x "$SS" ]; then
    notok "bin/sstream is built" "$SS is missing: run make"
    finish; exit 1
fi
cp "$ROOT/tests/integration/fake-component.sh" "$FAKE"
chmod +x "$FAKE"

# a pipeline of two stages whose scripts only need to compile
P=$T/p
mkdir -p "$P" "$T/args"
# as root, routers and enclave-mode workers run as sstream-worker (separate
# uids, docs/SECURITY.md): the fakes must be reachable and write their args
chmod 711 "$T"
chmod 777 "$T/args"
printf 'return 1\n' > "$P/map.lua"
printf 'return 2\n' > "$P/filter.lua"
printf 'return 3\n' > "$P/print.lua"
printf 'local function f()\n  return 1\nend end\n' > "$P/bad.lua"
printf 'a,b\n1,2\n' > "$P/data.csv"
cat > "$P/pipeline.yml" <<'EOF'
name: fake
source:
  file: data.csv
  parts: 4
  format: csv
  header: true
stages:
  - name: map
    script: map.lua
    workers: 2
  - name: filter
    script: filter.lua
sink:
  script: print.lua
  output: results.txt
EOF

export SS_RUN_EXEC=$FAKE

# --- a good run ------------------------------------------------------------
FAKE_LOG_DIR=$T/args FAKE_WORKERS_map=2 FAKE_ROWS=2001 FAKE_REJECTS=3 \
FAKE_DROP=filter "$SS" run "$P/pipeline.yml" --output-dir "$T/o1" \
    --metrics "$T/o1.jsonl" > "$T/out1" 2> "$T/err1"
rc=$?
check "good run exits 0" test $rc -eq 0
contains "sink stdout is the run's stdout" "$T/out1" "^fake results of sink$"
lacks "other components' stdout is not" "$T/out1" "stdout of"
check "router stdout goes to its log" grep -q "stdout of router-2" "$T/o1/logs/router-2.log"
contains "summary balances" "$T/err1" \
    "rows in = rows out \+ rows filtered \+ rows rejected: 2004 = 1801 \+ 200 \+ 3: balanced"
contains "summary lists every worker" "$T/err1" "^  map-2 +worker +1000 "
contains "summary says how many rejects" "$T/err1" "rejects: 3 in $T/o1/rejects.jsonl"
check "rejects merged into rejects.jsonl" test "$(wc -l < "$T/o1/rejects.jsonl")" -eq 3
check "per-component rejects files removed" test ! -e "$T/o1/rejects"
check "metrics file has samples of every component" \
    test "$(grep -o '"name":"[a-z0-9-]*"' "$T/o1.jsonl" | sort -u | wc -l)" -eq 8
check "metrics lines are JSON with a timestamp and final samples" \
    /usr/bin/python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert all("ts" in r and "t" in r and "in" in r for r in rows)
assert sum(1 for r in rows if r["final"]) == 8' "$T/o1.jsonl"
A=$T/args
check "8 components started" test "$(ls "$A" | wc -l)" -eq 8
contains "router-1 command line" "$A/router-1.args" \
    "^argv router --from ipc://[^ ]+/r1-in --to ipc://[^ ]+/r1-out --producers 1 --name router-1 --peers source-0,source-1,source-2,source-3,map-1,map-2,map-3,map-4,map-5,map-6,map-7,map-8,map-9,map-10$"
contains "router-3 feeds the sink (the filter's 8 spare slots for sstream scale admitted)" "$A/router-3.args" \
    "^argv router .*--producers 1 --name router-3 --peers filter-1,filter-2,filter-3,filter-4,filter-5,filter-6,filter-7,filter-8,filter-9,sink$"
contains "worker command line" "$A/map-2.args" \
    "^argv worker $P/map.lua --from ipc://[^ ]+/r1-out --to ipc://[^ ]+/r2-in --name map-2 --stage map --rejects $T/o1/rejects/map-2.jsonl --security plain$"
contains "source command line" "$A/source.args" \
    "^argv source --to ipc://[^ ]+/r1-in --file $P/data.csv --parts 4 --format csv --header --batch-size 262144 --name source --rejects $T/o1/rejects/source.jsonl$"
contains "sink command line" "$A/sink.args" \
    "^argv sink $P/print.lua --from ipc://[^ ]+/r3-out --name sink --rejects $T/o1/rejects/sink.jsonl$"
contains "sink gets OUTPUT in the output folder" "$A/sink.args" "^OUTPUT=$T/o1/results.txt$"
contains "source gets DATA_FILE" "$A/source.args" "^DATA_FILE=$P/data.csv$"
check "FROM/TO match the command line" grep -q "^TO=$(sed -n 's/.*--to \([^ ]*\).*/\1/p' "$A/map-1.args")$" "$A/map-1.args"
check "every component gets SS_CONTROL" test "$(grep -c '^SS_CONTROL=ipc://' "$A"/*.args | grep -c ':1$')" -eq 8
check "every component has its own process group" test "$(grep -l 'pgid_is_own=1' "$A"/*.args | wc -l)" -eq 8
ipcdir=$(sed -n 's|^SS_CONTROL=ipc://\(.*\)/control$|\1|p' "$A/sink.args")
check "endpoint folder removed after the run" test -n "$ipcdir" -a ! -e "$ipcdir"
no_orphans "no component left after a good run"

# overrides, tcp
rm -f "$A"/*
FAKE_LOG_DIR=$A FAKE_WORKERS=3 DATA_FILE=/nonexistent "$SS" run "$P/pipeline.yml" \
    --data "$P/data.csv" --workers 3 --security enclave --batch-size 1M \
    --tcp --quiet --scale-slots 0 --output-dir "$T/o2" > "$T/out2" 2> "$T/err2"
check "run with overrides and --tcp exits 0" test $? -eq 0
check "--workers 3 starts 3 workers per stage" test -e "$A/filter-3.args" -a -e "$A/map-3.args"
contains "--security reaches the workers" "$A/filter-1.args" "--security enclave( |$)"
contains "... with their own keys, the enclave's and the key service" "$A/filter-1.args" \
    "--keys [^ ]+/keys/filter-1 --enclave-keys [^ ]+/keys/filter-1.enclave --keyservice ipc://"
# keys by role (docs/SECURITY.md): nobody but the data's owner side holds data.key,
# and platform.key sits in the enclave's own folder
contains "enclave worker: only CURVE keys" "$A/map-2.args" \
    "^keys-files=curve-client.key curve-client.pub curve-keyservice.pub curve-server.pub monitor.pub$"
contains "enclave worker: platform.key in the enclave's folder (another uid's, as root)" \
    "$A/map-2.args" "^enclave-keys-files=(platform.key|unreadable: Permission denied)$"
contains "router: its CURVE keys and its neighbours' only" "$A/router-2.args" \
    "^keys-files=curve-client.key curve-client.pub curve-filter-1.pub curve-filter-2.pub curve-filter-3.pub curve-map-1.pub curve-map-2.pub curve-map-3.pub curve-server.key curve-server.pub monitor.pub$"
contains "sink: the data key" "$A/sink.args" \
    "^keys-files=curve-client.key curve-client.pub curve-server.pub data.key monitor.pub$"
contains "source: the data key" "$A/source.args" \
    "^keys-files=curve-client.key curve-client.pub curve-server.pub data.key monitor.pub$"
lacks "no router or worker gets data.key or platform.key" \
    <(grep -h '^keys-files=' "$A"/router-*.args "$A"/map-*.args "$A"/filter-*.args) \
    "data.key|platform"
contains "--batch-size reaches the source" "$A/source.args" "--batch-size 1048576 "
# ... and the workers and the sink (their output batches, and the credits
# they offer: 2 of 1 MiB, not 16; issue 9)
contains "--batch-size reaches the workers" "$A/filter-1.args" "--batch-size 1048576( |$)"
contains "--batch-size reaches the sink" "$A/sink.args" "--batch-size 1048576( |$)"
contains "--tcp gives loopback endpoints" "$A/map-1.args" "^FROM=tcp://127\.0\.0\.1:[0-9]+$"
contains "--tcp control endpoint" "$A/map-1.args" "^SS_CONTROL=tcp://127\.0\.0\.1:[0-9]+$"
check "--quiet prints nothing on success" test ! -s "$T/err2"

# batches larger than a router takes by default (4 MiB frames): the
# routers get a --max-frame for a whole batch, its last event and its
# sealing (72 + 8 MiB + 64 KiB + 256)
rm -f "$A"/*
FAKE_LOG_DIR=$A FAKE_WORKERS_map=2 FAKE_ROWS=2001 FAKE_REJECTS=3 \
FAKE_DROP=filter "$SS" run "$P/pipeline.yml" \
    --data "$P/data.csv" --batch-size 8M --quiet --output-dir "$T/o2b" \
    > "$T/out2b" 2> "$T/err2b"
rc=$?
check "run with --batch-size 8M exits 0" test $rc -eq 0
[ $rc -eq 0 ] || { echo "rc=$rc"; cat "$T/err2b" "$T/out2b"; }
contains "--batch-size 8M gives the routers --max-frame 8454472" \
    "$A/router-2.args" "^argv router .* --max-frame 8454472 "

# DATA_FILE overrides the file's source.file
rm -f "$A"/*
cp "$P/data.csv" "$T/other.csv"
FAKE_LOG_DIR=$A DATA_FILE=$T/other.csv "$SS" run "$P/pipeline.yml" --quiet \
    --output-dir "$T/o3" > /dev/null 2>&1
contains "DATA_FILE overrides source.file" "$A/source.args" "--file $T/other.csv "

FAKE_NO_DONE=1 FAKE_WORKERS_map=2 "$SS" run "$P/pipeline.yml" --output-dir "$T/o4" \
    > /dev/null 2> "$T/err4"
rc=$?
if [ $rc -eq 0 ]; then ok "a sink without sendZmqCompleted() still ends"
else notok "a sink without sendZmqCompleted() still ends" "$(tail -5 "$T/err4")"; fi
contains "... with a warning" "$T/err4" "never called sendZmqCompleted"

# --- failures ----------------------------------------------------------------
FAKE_FAIL=map-2 FAKE_MODE=hang "$SS" run "$P/pipeline.yml" --output-dir "$T/o5" \
    > /dev/null 2> "$T/err5"
rc=$?
check "a child exiting 1 fails the run with 1" test $rc -eq 1
contains "... naming it" "$T/err5" \
    "^sstream run: worker map-2 exited with status 1 \(see its message above\)$"
contains "... after its message, prefixed" "$T/err5" "^\[map-2\] fake: failing on purpose$"
no_orphans "... and every other child is stopped"

FAKE_FAIL=router-2 FAKE_FAIL_SIGNAL=9 FAKE_MODE=hang "$SS" run "$P/pipeline.yml" \
    --output-dir "$T/o6" > /dev/null 2> "$T/err6"
check "a child killed by a signal fails the run" test $? -eq 1
contains "... saying which signal" "$T/err6" "^sstream run: router-2 was killed by signal 9 \(Killed\)$"
contains "... and ending with why the run failed" <(tail -1 "$T/err6") "^sstream run: .* failed because router-2 was killed by signal 9 \(Killed\)$"
no_orphans "... leaving no child"

sed 's/script: filter.lua/script: bad.lua/' "$P/pipeline.yml" > "$P/bad.yml"
rm -f "$A"/*
(cd "$P" && FAKE_LOG_DIR=$A "$SS" run bad.yml --output-dir "$T/o7" > /dev/null 2> "$T/err7")
check "a syntax error in a stage script fails at start" test $? -eq 1
contains "... naming the stage, file and line" "$T/err7" \
    "^sstream run: stage 'filter': bad.lua:3: .*near 'end'"
check "... before starting anything" test -z "$(ls "$A")"

sed 's/workers: 2/workers: 65/' "$P/pipeline.yml" > "$P/w.yml"
(cd "$P" && "$SS" run w.yml > /dev/null 2> "$T/err8")
check "an invalid pipeline file fails with 1" test $? -eq 1
contains "... with file:line and the key" "$T/err8" \
    "^sstream run: w.yml:10: stage 'map': workers must be a number from 1 to 64$"
"$SS" run "$P/pipeline.yml" --data "$T/none.csv" > /dev/null 2> "$T/err9"
check "a missing data file fails at start" test $? -eq 1
contains "... naming it" "$T/err9" "data file '$T/none.csv': No such file"
"$SS" run "$P/pipeline.yml" --bogus > /dev/null 2> "$T/err10"
check "an unknown option is bad usage (2)" test $? -eq 2
"$SS" run --help > "$T/help" 2>&1
check "--help exits 0" test $? -eq 0
contains "--help lists --timeout" "$T/help" "--timeout S"

# --- Ctrl-C, --timeout, a killed supervisor -----------------------------------
rm -f "$A"/*
FAKE_LOG_DIR=$A FAKE_MODE=hang "$SS" run "$P/pipeline.yml" --output-dir "$T/o11" \
    > /dev/null 2> "$T/err11" &
sv=$!
if wait_for 8 "$A"; then ok "all 8 components started"; else notok "all 8 components started"; fi
kill -INT $sv
wait_max 60 $sv
check "Ctrl-C exits 130" test $? -eq 130
contains "... saying so" "$T/err11" "interrupted; stopping every component"
no_orphans "Ctrl-C leaves no orphans"

rm -f "$A"/*
FAKE_LOG_DIR=$A FAKE_MODE=hang FAKE_IGNORE_TERM=1 "$SS" run "$P/pipeline.yml" \
    --output-dir "$T/o12" > /dev/null 2> "$T/err12" &
sv=$!
wait_for 8 "$A"
start=$(date +%s%N)
kill -TERM $sv
wait_max 60 $sv
rc=$?
el=$(( ($(date +%s%N) - start) / 1000000 ))
check "SIGTERM exits 130 even when children ignore SIGTERM" test $rc -eq 130
check "... killing them after about 2 s ($el ms)" test $el -ge 1500 -a $el -lt 6000
no_orphans "... and leaves no orphans"

start=$(date +%s%N)
FAKE_MODE=hang "$SS" run "$P/pipeline.yml" --timeout 1.5 --output-dir "$T/o13" \
    > /dev/null 2> "$T/err13"
rc=$?
el=$(( ($(date +%s%N) - start) / 1000000 ))
check "--timeout exits 124" test $rc -eq 124
check "... after the timeout ($el ms)" test $el -ge 1400 -a $el -lt 8000
contains "... saying so" "$T/err13" "timed out after 1.5 s"
no_orphans "--timeout leaves no orphans"

rm -f "$A"/*
FAKE_LOG_DIR=$A FAKE_MODE=hang "$SS" run "$P/pipeline.yml" --output-dir "$T/o14" \
    > /dev/null 2>&1 &
sv=$!
disown $sv # no "Killed" notice from bash
wait_for 8 "$A"
kill -KILL $sv
for i in $(seq 50); do kill -0 $sv 2>/dev/null || break; sleep 0.1; done
no_orphans "a supervisor killed by SIGKILL leaves no orphans (PDEATHSIG)"

# --- the real components, once they are built ---------------------------------
# --- counts that do not balance: the results are wrong, and said so ------
# with --restarts the sink's output is spooled and shown once committed:
# a sink that completed has its output held back when the books do not
# balance (it was shown before the balance check); without, it was
# printed as it came, and the run says it is wrong
for r in 1 0; do
    FAKE_LOSE=map "$SS" run "$P/pipeline.yml" --restarts $r --output-dir "$T/om$r" \
        > "$T/outm$r" 2> "$T/errm$r"
    rc=$?
    check "restarts $r: counts that do not balance fail the run" test $rc -ne 0
    contains "restarts $r: ... MISMATCH in the summary" "$T/errm$r" "rows in = .*: MISMATCH"
    contains "restarts $r: ... the last line says the results are wrong" "$T/errm$r" \
        "failed because the counts do not balance \(see the summary\): the results are wrong$"
done
lacks "restarts 1: the uncommitted results are not shown" "$T/outm1" "fake results"
contains "restarts 1: ... saying so" "$T/errm1" \
    "the results are wrong: what the sink printed after the start is not shown"
contains "restarts 0: results printed as they came stay shown" "$T/outm0" "^fake results of sink$"
contains "restarts 0: ... said to be wrong" "$T/errm0" \
    "the results are wrong: what the sink printed \(on the standard output\) comes from counts that do not balance"

unset SS_RUN_EXEC
real=1
for c in source router worker sink; do
    "$SS" $c --help > /dev/null 2>&1 || real=0
done
if [ $real = 1 ] && "$SS" gen --help > /dev/null 2>&1; then
    "$SS" gen flights --rows 3000 --seed 3 -o "$T/f.csv" > /dev/null 2>&1
    timeout 120 "$SS" run "$ROOT/examples/delayed-flights/pipeline.yml" \
        --data "$T/f.csv" --workers 2 --output-dir "$T/real" \
        --metrics "$T/real.jsonl" > "$T/real.out" 2> "$T/real.err"
    rc=$?
    check "real components: run exits 0" test $rc -eq 0
    [ $rc -eq 0 ] || tail -20 "$T/real.err" | sed 's/^/    /'
    contains "real components: results on stdout" "$T/real.out" "^Delays for carrier"
    contains "real components: the counts balance" "$T/real.err" "rows in[^0-9]*3000 = .*: balanced"
    # CPU seconds of each process from the kernel: all 12 rows (source, 4 routers, 6 workers, sink) have one,
    # and the map workers (csv parsing in Lua) used some
    n=$(grep -cE '^  [a-z0-9-]+ +(source|router|worker|sink) .* [0-9]+\.[0-9]{2} s +[0-9.]+ MB$' "$T/real.err")
    check "real components: the summary gives 12 CPU times ($n)" test "$n" -eq 12
    cpu=$(awk '$1 ~ /^map-/ { s += $(NF - 3) } END { print (s > 0) }' "$T/real.err")
    check "real components: the map workers' CPU time is not zero" test "$cpu" = 1
else
    echo "skip - real components not built yet (source/router/worker/sink)"
fi

finish
