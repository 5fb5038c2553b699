#!/bin/bash
# Recovery (issue 13): with `sstream run
# --restarts N`, a kill -9 of a stateful worker (the reduce), of a router
# or of the sink mid-run of DelayedFlights stops every component and
# starts the whole pipeline again (from the start without checkpoints,
# from the last complete checkpoint with them, in plain, encrypted and
# enclave modes: see the
# resume section below, with the refused stale snapshots); the answer is exactly
# awk's, printed once, and the summary balances with the counters of the
# run that completed; in plain, encrypted and enclave modes. The number
# of restarts is bounded: a component killed once more than allowed fails
# the run saying so, and no partial result is shown; a poison batch (an
# enclave that dies on it) is rejected, never a restart loop.
source "$(dirname "$0")/lib.sh"
EX=$ROOT/examples/delayed-flights
cd "$T"
cp "$EX"/*.lua .
RUN_TIMEOUT=${RUN_TIMEOUT:-240}
# a mapper slowed down on purpose, so that the run is still going when
# the victim is killed, even on a fast machine
sed 's/if not value then return {} end/for _ = 1, 100000 do end\n      if not value then return {} end/' \
    map-csv-to-event.lua > slow-map.lua
grep -q 'for _ = 1, 100000' slow-map.lua || echo "fixture: slow-map.lua not slowed" >&2
"$SS" gen flights --rows 20000 --seed 7 -o data.csv
reference data.csv > expected

# small batches: a slowed batch never keeps a worker from heartbeating
# for its peer timeout, even in encrypted mode on a loaded machine
cat > p.yml <<'YML'
name: recovery
batch_size: 8K
source: { file: data.csv, parts: 2, format: csv, header: true }
stages:
  - { name: map, script: slow-map.lua, workers: 1 }
  - { name: filter, script: filter-event.lua, workers: 1 }
  - { name: reduce, script: reduce-events.lua, workers: 1 }
sink: { script: print-results.lua, output: output.log }
YML

# kill_run TAG VICTIM KILLS RESTARTS [run options...]: runs the pipeline
# with --restarts RESTARTS (stdout res-TAG, stderr err-TAG, status rc-TAG),
# and KILLS times: waits until the reduce worker of the current
# incarnation received rows (mid-stream), then kills VICTIM (a component
# name: reduce-1, router-3, sink) with SIGKILL. Fails if a victim was not
# found.
kill_run() {
    local tag=$1 victim=$2 kills=$3 restarts=$4
    shift 4
    timeout -k 10 "$RUN_TIMEOUT" "$SS" run p.yml --output-dir "out-$tag" \
        --restarts "$restarts" --metrics "metrics-$tag" "$@" \
        > "res-$tag" 2> "err-$tag" &
    local run=$! found=0 k
    _pids+=($run)
    for ((k = 1; k <= kills; k++)); do
        local pid="" sup="" seen
        # the k-th incarnation: k-1 restarts said so before it started
        for _ in $(seq 1 1200); do
            seen=$(grep -c "restarting the whole pipeline" "err-$tag" 2> /dev/null)
            [ "${seen:-0}" -ge $((k - 1)) ] && break
            sleep 0.1
        done
        # mid-stream: reduce-1 of this incarnation has received rows (its
        # metrics line names its pid)
        for _ in $(seq 1 1200); do
            sup=$(pgrep -P "$run" | head -1)
            [ -n "$sup" ] &&
                pid=$(pgrep -P "$sup" -f -- "--name $victim( |$)" | head -1)
            local rpid
            rpid=$([ -n "$sup" ] && pgrep -P "$sup" -f -- "--name reduce-1( |$)" | head -1)
            if [ -n "$pid" ] && [ -n "$rpid" ] &&
                grep -q "\"name\":\"reduce-1\",.*\"pid\":$rpid,.*\"in\":[1-9]" \
                    "metrics-$tag" 2> /dev/null; then
                break
            fi
            pid=""
            sleep 0.1
        done
        [ -n "$pid" ] && kill -KILL "$pid" 2> /dev/null && found=$((found + 1))
    done
    wait_max $((RUN_TIMEOUT + 20)) $run
    echo $? > "rc-$tag"
    [ "$found" -eq "$kills" ]
}

# the metrics line must name the pid for the moment above
"$SS" run p.yml --output-dir out-probe --metrics metrics-probe --restarts 1 \
    > res-probe 2> err-probe
check "fixture: the pipeline runs (exit 0) with --restarts" test $? -eq 0
contains "fixture: a metrics line carries its component's pid" metrics-probe \
    '"name":"reduce-1",.*"pid":[0-9]+,'
grep '^Delays' res-probe > got-probe
same "without a kill, the answer is awk's" got-probe expected

case_ok() { # TAG WHAT
    check "$2: the run recovers and exits 0" test "$(cat "rc-$1")" -eq 0
    grep '^Delays' "res-$1" > "got-$1"
    same "$2: the answer is exactly awk's, each line once" "got-$1" expected
    contains "$2: the restart is said, naming the killed component" "err-$1" \
        "was killed by signal 9 .*restarting the whole pipeline from the start \\(restart 1 of at most 2\\)"
    contains "$2: the summary balances (counters of the completed run)" \
        "err-$1" "balanced"
    check "$2: OUTPUT was written once by the completed run" \
        test "$(wc -l < "out-$1/output.log")" -eq 1
}

check "plain: reduce-1 (stateful) was killed mid-stream" \
    kill_run reduce reduce-1 1 2
case_ok reduce "plain, kill -9 of the reduce worker"
check "plain: router-3 (in front of the reduce) was killed mid-stream" \
    kill_run router router-3 1 2
case_ok router "plain, kill -9 of a router"
check "plain: the sink was killed mid-stream" kill_run sink sink 1 2
case_ok sink "plain, kill -9 of the sink"

check "encrypted: reduce-1 was killed mid-stream" \
    kill_run enc reduce-1 1 2 --security encrypted
case_ok enc "encrypted, kill -9 of the reduce worker"
check "enclave: reduce-1 was killed mid-stream" \
    kill_run encl reduce-1 1 2 --security enclave
case_ok encl "enclave, kill -9 of the reduce worker (its enclave's state)"
check "enclave: router-4 (before the sink) was killed mid-stream" \
    kill_run enclr router-4 1 2 --security enclave
case_ok enclr "enclave, kill -9 of the last router"

# bounded: one restart allowed, the sink killed in both incarnations
check "bound: the sink was killed twice" kill_run bound sink 2 1
check "bound: the run fails (non-zero exit)" test "$(cat rc-bound)" -ne 0
contains "bound: the first kill restarted the run" err-bound \
    "restarting the whole pipeline from the start \\(restart 1 of at most 1\\)"
contains "bound: the last line says the restarts ran out" <(tail -1 err-bound) \
    "failed because sink was killed by signal 9 .* after 1 restart\\(s\\) of the pipeline, the most allowed \\(--restarts 1\\)"
lacks "bound: no result is shown" res-bound "^Delays"

# a poison batch is no restart loop: a batch whose enclave dies on it
# every time (test hook of the test build: a forbidden system call) is
# rejected whole by the worker, as without --restarts; the worker process
# itself is not killed, so nothing is restarted
SST=$ROOT/bin/sstream-test
head -1 data.csv > po.csv
tail -n +2 data.csv | head -1000 >> po.csv
tail -n +2 data.csv | sed -n 1p |
    awk -F, -v OFS=, '{ $11 = sprintf("POISON-ROW%080d", 0) } 1' >> po.csv
tail -n +1002 data.csv | head -1000 >> po.csv
{ head -1 data.csv; tail -n +2 data.csv | head -1000
  tail -n +1002 data.csv | head -1000; } > po-good.csv
reference po-good.csv > po-expected
SS_ENCLAVE_TEST_SYSCALL=POISON-ROW timeout -k 10 "$RUN_TIMEOUT" "$SST" run \
    p.yml --data po.csv --security enclave --batch-size 256 --restarts 2 \
    --output-dir out-po > res-po 2> err-po
check "poison: the run goes on and exits 0" test $? -eq 0
grep '^Delays' res-po > got-po
same "poison: the other rows give awk's answer" got-po po-expected
contains "poison: the enclave was killed twice, then the batch rejected" err-po \
    "killed by signal 31 \(SIGSYS\).* again .*rejecting the batch's 1 events"
contains "poison: the reject is counted" err-po \
    "rows in = rows out \+ rows filtered \+ rows rejected: 2001 = .* \+ 1: balanced"
lacks "poison: no restart of the pipeline" err-po "restarting the whole pipeline"

# resuming from a checkpoint (checkpoint_ms): the kill comes after at
# least one checkpoint completed; the restart resumes from the last one
# (the source seeks to its parts' offsets, the reduce and the sink
# restore their snapshots, counters continue), so the source reads fewer
# rows after the restart than the file holds, and the answer and the
# balance are still exactly awk's.
sed 's/^batch_size: 8K$/batch_size: 8K\ncheckpoint_ms: 200/' p.yml > p-ck.yml
grep -q '^checkpoint_ms: 200' p-ck.yml || echo "fixture: p-ck.yml has no checkpoint_ms" >&2
# ck_run TAG [run options...]: kill -9 of reduce-1 once a manifest exists
# (CK_PIPE and CK_VICTIM: another pipeline file and worker to kill)
ck_run() {
    local tag=$1 victim=${CK_VICTIM:-reduce-1}
    shift
    LOG_LEVEL=info timeout -k 10 "$RUN_TIMEOUT" "$SS" run "${CK_PIPE:-p-ck.yml}" \
        --output-dir "out-$tag" --restarts 2 "$@" > "res-$tag" 2> "err-$tag" &
    local run=$! sup="" pid=""
    _pids+=($run)
    for _ in $(seq 1 1200); do
        [ -s "out-$tag/checkpoints/manifest.json" ] && break
        sleep 0.1
    done
    sup=$(pgrep -P "$run" | head -1)
    pid=$([ -n "$sup" ] && pgrep -P "$sup" -f -- "--name $victim( |$)" | head -1)
    [ -s "out-$tag/checkpoints/manifest.json" ] && [ -n "$pid" ] &&
        kill -KILL "$pid"
    local ok=$?
    wait_max $((RUN_TIMEOUT + 20)) $run
    echo $? > "rc-$tag"
    return $ok
}
ck_ok() { # TAG WHAT
    check "$2: the run recovers and exits 0" test "$(cat "rc-$1")" -eq 0
    grep '^Delays' "res-$1" > "got-$1"
    same "$2: the answer is exactly awk's, each line once" "got-$1" expected
    contains "$2: the summary balances over every row" "err-$1" \
        "rows in = rows out \+ rows filtered \+ rows rejected: 20000 = .*: balanced"
    check "$2: OUTPUT was written once" \
        test "$(wc -l < "out-$1/output.log")" -eq 1
}
check "resume: reduce-1 killed after a checkpoint completed" ck_run ck
ck_ok ck "resume (plain)"
contains "resume: the restart says it resumes from checkpoint E" err-ck \
    "was killed by signal 9 .*restarting the whole pipeline from checkpoint [1-9][0-9]* \(restart 1 of at most 2\)"
E=$(grep -o 'from checkpoint [0-9]*' err-ck | head -1 | grep -o '[0-9]*$')
contains "resume: reduce-1 restored its snapshot of epoch $E" \
    out-ck/logs/reduce-1.log "reduce-1: restored the state of checkpoint $E "
contains "resume: the sink restored its snapshot of epoch $E" err-ck \
    "sink: restored the state of checkpoint $E "
contains "resume: the source resumed its parts" out-ck/logs/source.log \
    "resuming each of its 2 parts from the checkpoint"
n=$(grep -o 'source: [0-9]* lines' out-ck/logs/source.log | tail -1 | grep -o '[0-9]*')
check "resume: the source read fewer rows after the restart (${n:-?}) than the file holds (20000)" \
    test "${n:-20000}" -lt 20000 -a "${n:-0}" -gt 0

# chained (chain: true): map, filter and reduce in worker map-1, in one
# Lua state (the default): its snapshot holds one per stage, the reduce's
# state among them; killed after a checkpoint, it restores them all and
# the answer is exactly awk's (plain, then enclave: the chain runs in
# map-1's enclave)
sed 's/^checkpoint_ms: 200$/checkpoint_ms: 200\nchain: true/' p-ck.yml > p-chain-ck.yml
grep -q '^chain: true' p-chain-ck.yml || echo "fixture: p-chain-ck.yml not chained" >&2
ck_chain() { CK_PIPE=p-chain-ck.yml CK_VICTIM=map-1 ck_run "$@"; }
for mode in plain enclave; do
    check "chained resume ($mode): map-1 killed after a checkpoint completed" \
        ck_chain "ch-$mode" --security $mode
    ck_ok "ch-$mode" "chained resume ($mode)"
    Ec=$(grep -o 'from checkpoint [0-9]*' "err-ch-$mode" | head -1 | grep -o '[0-9]*$')
    check "chained resume ($mode): restarted from a checkpoint (${Ec:-none})" test -n "$Ec"
    contains "chained resume ($mode): map-1 restored its stages' snapshot of epoch $Ec" \
        "out-ch-$mode/logs/map-1.log" "map-1: restored the state of checkpoint $Ec "
    lacks "chained resume ($mode): no snapshot refused" "out-ch-$mode/logs/map-1.log" \
        "takes no snapshot|refused to restore"
    contains "chained resume ($mode): reduce-1 is chained" "err-ch-$mode" \
        "reduce-1 +chain "
done

# the attack: a stale snapshot under the name the restore reads (a
# manifest rewritten to match it passes the coordinator's hash check):
# the worker refuses it at restore, naming what differs, and exits with
# an error (so the run fails: a component that exits with an error is
# never restarted); the snapshot of the right epoch and run restores
R=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["run"])' out-ck/checkpoints/manifest.json)
E2=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["epoch"])' out-ck/checkpoints/manifest.json)
mkdir -p stale
cp "out-ck/checkpoints/reduce-1-e$E2.snap" stale/
cp "out-ck/checkpoints/reduce-1-e$E2.snap" "stale/reduce-1-e$((E2 + 1)).snap"
worker_restore() { # EPOCH RUN OUT: the reduce worker restoring, no router
    SS_RUN=$2 SS_RESTORE_EPOCH=$1 LOG_LEVEL=info timeout -k 5 10 "$SS" worker \
        reduce-events.lua --name reduce-1 --stage reduce \
        --from "ipc://$T/stale-in" --to "ipc://$T/stale-out" \
        --checkpoint-dir stale > /dev/null 2> "$3"
}
worker_restore $((E2 + 1)) "$R" err-stale
check "stale snapshot: the worker exits with an error" test $? -eq 1
contains "stale snapshot: refused, an older epoch's (rollback)" err-stale \
    "reduce-1: refused to restore checkpoint $((E2 + 1)) from stale/reduce-1-e$((E2 + 1)).snap: .*is of epoch $E2, not of epoch $((E2 + 1))"
worker_restore "$E2" 0123456789abcdef err-other
check "another run's snapshot: the worker exits with an error" test $? -eq 1
contains "another run's snapshot: refused" err-other \
    "reduce-1: refused to restore checkpoint $E2 .*run"
worker_restore "$E2" "$R" err-right
contains "control: the right snapshot restores" err-right \
    "reduce-1: restored the state of checkpoint $E2 "

# encrypted mode resumes too: the snapshots are sealed with the data key
# (the reduce's opened in its in-process enclave core, which then takes
# only batches of the new epoch, the sink's with its key), and the sink's
# end-to-end integrity check counts the batches before the resume seqs
check "resume: encrypted, reduce-1 killed after a checkpoint completed" \
    ck_run cke --security encrypted
ck_ok cke "resume (encrypted)"
contains "encrypted: the restart resumes from checkpoint E" err-cke \
    "was killed by signal 9 .*restarting the whole pipeline from checkpoint [1-9][0-9]* \(restart 1 of at most 2\)"
Ee=$(grep -o 'from checkpoint [0-9]*' err-cke | head -1 | grep -o '[0-9]*$')
contains "encrypted: reduce-1 restored its sealed snapshot of epoch $Ee" \
    out-cke/logs/reduce-1.log "reduce-1: restored the state of checkpoint $Ee "
contains "encrypted: the sink restored its sealed snapshot" err-cke \
    "sink: restored the state of checkpoint $Ee "
n=$(grep -o 'source: [0-9]* lines' out-cke/logs/source.log | tail -1 | grep -o '[0-9]*')
check "encrypted: the source read fewer rows after the restart (${n:-?}) than the file holds (20000)" \
    test "${n:-20000}" -lt 20000 -a "${n:-0}" -gt 0

# enclave mode resumes too: before the restart the run's key service is
# told to grant each enclave worker the restore of checkpoint E, released
# sealed with the data key to the worker's attested enclave, which then
# opens its sealed snapshot of exactly E (and refuses any other epoch)
check "resume: enclave, reduce-1 killed after a checkpoint completed" \
    ck_run ckn --security enclave
ck_ok ckn "resume (enclave)"
contains "enclave: the restart resumes from checkpoint E" err-ckn \
    "was killed by signal 9 .*restarting the whole pipeline from checkpoint [1-9][0-9]* \(restart 1 of at most 2\)"
En=$(grep -o 'from checkpoint [0-9]*' err-ckn | head -1 | grep -o '[0-9]*$')
contains "enclave: reduce-1's enclave restored its sealed snapshot of epoch $En" \
    out-ckn/logs/reduce-1.log "reduce-1: restored the state of checkpoint $En "
contains "enclave: the sink restored its sealed snapshot" err-ckn \
    "sink: restored the state of checkpoint $En "
n=$(grep -o 'source: [0-9]* lines' out-ckn/logs/source.log | tail -1 | grep -o '[0-9]*')
check "enclave: the source read fewer rows after the restart (${n:-?}) than the file holds (20000)" \
    test "${n:-20000}" -lt 20000 -a "${n:-0}" -gt 0

# the rollback attack end to end, in enclave mode: the host keeps an
# older checkpoint's sealed snapshot of reduce-1 (epoch E1), and when a
# later checkpoint E2 completed it puts it back under the name of E2's
# (reduce-1-eE2.snap) and rewrites the manifest's hash to match (the
# coordinator is stopped meanwhile, so the manifest stays at E2), then
# kills reduce-1. The key service grants E2; the enclave opens the
# snapshot, finds epoch E1 inside the sealed header and refuses it: the
# worker exits with an error and the run fails, naming it (a component
# that exits with an error is never restarted: no fallback to the start)
#
# The moment is chosen so that the restart must resume from E2: once the
# coordinator goes on, it takes the acknowledgements that came while it
# was stopped before it notices the kill, and a checkpoint after E2 that
# every component had acknowledged would then complete (its files, the
# genuine snapshot of reduce-1 among them, copied anew) and the restart
# would resume from it (seen once at load 15). A checkpoint needs
# reduce-1's acknowledgement, which it sends only after writing its
# snapshot of that epoch into the run folder's ckpt/ (its
# --checkpoint-dir); so with the coordinator and reduce-1 both stopped,
# no reduce-1-eN.snap there with N above the manifest's epoch means that
# no later checkpoint can complete, reduce-1 being killed before it runs
# again. Otherwise both go on and the test tries again when the next
# checkpoint completes (just after one completed, the next barrier has
# seldom reached reduce-1 yet: most runs stop at the first try).
rb_run() {
    local tag=rb
    LOG_LEVEL=info timeout -k 10 "$RUN_TIMEOUT" "$SS" run p-ck.yml \
        --output-dir "out-$tag" --restarts 2 --security enclave \
        > "res-$tag" 2> "err-$tag" &
    local run=$! sup="" pid="" e1="" e2="" ck="" quiet=0 n tries=0 last=""
    local m="out-$tag/checkpoints/manifest.json"
    _pids+=($run)
    epoch_of() { $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["epoch"])' "$1" 2>/dev/null; }
    for _ in $(seq 1 1200); do
        [ -s "$m" ] && e1=$(epoch_of "$m") &&
            cp "out-$tag/checkpoints/reduce-1-e$e1.snap" rb-old.snap 2>/dev/null && break
        e1=""
        sleep 0.05
    done
    sup=$(pgrep -P "$run" | head -1)
    pid=$([ -n "$sup" ] && pgrep -P "$sup" -f -- "--name reduce-1( |$)" | head -1)
    [ -n "$pid" ] &&
        ck=$(tr '\0' '\n' < "/proc/$pid/cmdline" | grep -A1 -x -- --checkpoint-dir | tail -1)
    for _ in $(seq 1 600); do
        [ -n "$e1" ] && [ -n "$pid" ] && [ -d "$ck" ] || break
        e2=$(epoch_of "$m")
        if [ -n "$e2" ] && [ "$e2" -gt "$e1" ] && [ "$e2" != "$last" ]; then
            last=$e2
            kill -STOP "$sup" "$pid"
            tries=$((tries + 1))
            e2=$(epoch_of "$m")
            quiet=1
            for f in "$ck"/reduce-1-e*.snap; do
                n=${f##*/reduce-1-e}
                n=${n%.snap}
                [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -gt "${e2:-0}" ] && quiet=0
            done
            [ $quiet -eq 1 ] && [ -n "$e2" ] && break
            quiet=0
            kill -CONT "$pid" "$sup"
        fi
        sleep 0.05
    done
    echo "$e1 $e2" > rb-epochs
    local ok=1
    if [ $quiet -eq 1 ]; then
        echo "    (rollback: E1 $e1, E2 $e2; stopped with no later checkpoint possible at try $tries)"
        cp rb-old.snap "out-$tag/checkpoints/reduce-1-e$e2.snap"
        $PY - "$m" "out-$tag/checkpoints/reduce-1-e$e2.snap" <<'PYEOF'
import hashlib, json, os, sys
m, snap = sys.argv[1], sys.argv[2]
text = open(m).read()
h = hashlib.blake2b(open(snap, 'rb').read(), digest_size=32).hexdigest()
for f in json.loads(text)["files"]:
    if f["name"] == os.path.basename(snap):
        text = text.replace(f["blake2b_256"], h)
open(m, 'w').write(text)
PYEOF
        kill -KILL "$pid"
        ok=$?
        kill -CONT "$sup"
    else
        echo "    rollback: no moment found with E2 > E1 (${e1:-none}, ${e2:-none}) and no later checkpoint possible"
    fi
    wait_max $((RUN_TIMEOUT + 20)) $run
    echo $? > "rc-$tag"
    [ -n "$e1" ] && [ "${e2:-0}" -gt "$e1" ] && [ $ok -eq 0 ]
}
check "rollback (enclave): an older snapshot put back under E2's name, reduce-1 killed" rb_run
read -r E1 E2 < rb-epochs
check "rollback: the run fails (non-zero exit)" test "$(cat rc-rb)" -ne 0
contains "rollback: the run resumed from checkpoint $E2 (the manifest passed)" err-rb \
    "restarting the whole pipeline from checkpoint $E2 "
contains "rollback: the enclave refused the snapshot of epoch $E1 under E2's name" \
    out-rb/logs/reduce-1.log \
    "reduce-1: refused to restore checkpoint $E2 from .*reduce-1-e$E2.snap: .*epoch $E1.*$E2|reduce-1: refused to restore checkpoint $E2 from .*reduce-1-e$E2.snap: .*$E2.*epoch $E1"
contains "rollback: the run's failure names reduce-1" err-rb "failed because .*reduce-1"
lacks "rollback: no result is shown" res-rb "^Delays"
lacks "rollback: reduce-1 restored nothing" out-rb/logs/reduce-1.log \
    "reduce-1: restored the state of checkpoint"

# without --restarts the loss of state still fails the run (as before)
check "no restarts: reduce-1 was killed mid-stream" kill_run none reduce-1 1 0
check "no restarts: the run fails" test "$(cat rc-none)" -ne 0
contains "no restarts: the failure names the lost stateful worker" err-none \
    "failed because worker reduce-1 was killed by signal 9"
lacks "no restarts: nothing restarted" err-none "restarting the whole pipeline"
finish
