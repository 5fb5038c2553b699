#!/bin/bash
# Keys by role and an authenticated control channel (docs/SECURITY.md,
# "Keys by role"; issue 8, items 1, 2 and 8):
#  - an intruder who read SS_CONTROL from a component's environment (tcp
#    and ipc) sends DONE and forged counters: refused at the handshake
#    without an admitted key, and a compromised worker's own key cannot
#    complete the run nor speak for another component
#    (control_intruder.py);
#  - in a real enclave-mode run no router or worker process has data.key
#    or platform.key in its key folder or open, and the enclave child's
#    folder holds platform.key alone;
#  - with separate uids (as root, scripts/install-users.sh): routers and
#    worker hosts run as sstream-worker, enclaves as sstream-enclave; a
#    hand-written key service client (forge_report.py) run as the worker's
#    uid cannot read platform.key, so it cannot forge a report, while the
#    same tool run as root gets the data key (what root can still do);
#    the worker's uid cannot read data.key either.
# Last line: "N passed, M failed".
source "$(dirname "$0")/lib.sh"
# the fakes write their .args files as sstream-worker (separate uids)
chmod 711 "$T"
FAKE=$T/fake-component.sh
cleanup_fakes() {
    local p
    for p in $(pgrep -f "$FAKE"); do kill -KILL "$p" 2>/dev/null; done
    cleanup
}
trap cleanup_fakes EXIT
INTRUDER=$ROOT/tests/integration/control_intruder.py
cp "$ROOT/tests/integration/fake-component.sh" "$FAKE"
chmod +x "$FAKE"

P=$T/p
mkdir -p "$P"
printf 'return 1\n' > "$P/map.lua"
printf 'return 3\n' > "$P/print.lua"
printf 'a,b\n1,2\n' > "$P/data.csv"
cat > "$P/pipeline.yml" <<'EOF'
name: fake
source:
  file: data.csv
  format: csv
stages:
  - name: map
    script: map.lua
sink:
  script: print.lua
EOF

# wait_file FILE: until FILE exists (at most 20 s)
wait_file() {
    local i
    for i in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.1; done
    return 1
}

# --- the control channel: an intruder that knows SS_CONTROL ----------------
# The four runs go at once (their components are fakes that sleep), each
# intruder as soon as its run is up, then each run is checked. The fakes
# run 16 s and the sink never sends DONE: a DONE accepted from the
# intruder (sent 1 to 3 s after its run started, the four starting
# together) would make the supervisor stop every component 10 s later
# ("still running ... after the sink finished"), and would hide the
# "never called sendZmqCompleted()" warning.
declare -A RUNPID INTRPID MODE
intrude_start() { # intrude_start NAME MODE TRANSPORT-OPTION...
    local name=$1
    MODE[$name]=$2
    shift 2
    local A=$T/args-$name
    mkdir -p "$A"
    chmod 777 "$A" # fakes may run as sstream-worker
    SS_RUN_EXEC=$FAKE FAKE_LOG_DIR=$A FAKE_SECONDS=16 FAKE_NO_DONE=1 \
        "$SS" run "$P/pipeline.yml" --no-progress "$@" \
        --output-dir "$T/o-$name" --metrics "$T/$name.jsonl" \
        > "$T/$name.out" 2> "$T/$name.err" &
    RUNPID[$name]=$!
    _pids+=($!)
}
intrude_send() { # intrude_send NAME: its intruder, in the background
    local A=$T/args-$1 ep keys
    wait_file "$A/map-1.args" || return 0 # (intrude_check says so)
    ep=$(sed -n 's/^SS_CONTROL=//p' "$A/map-1.args")
    keys=$(sed -n 's/^SS_CONTROL_KEYS=//p' "$A/map-1.args")
    timeout 20 $PY "$INTRUDER" "$ep" "${MODE[$1]}" "$keys" > "$T/$1.intr" 2>&1 &
    INTRPID[$1]=$!
    _pids+=($!)
}
intrude_check() { # intrude_check NAME
    local name=$1
    if [ -z "${INTRPID[$name]:-}" ]; then
        notok "$name: the run started" "$(cat "$T/$name.err")"
        return
    fi
    wait "${INTRPID[$name]}" # (at most its 20 s)
    wait_max 60 "${RUNPID[$name]}"
    local rc=$?
    check "$name: the run goes to its end and exits 0 ($rc)" test $rc -eq 0
    lacks "$name: the intruder's DONE did not stop the run" "$T/$name.err" \
        "still running .* after the sink finished"
    contains "$name: ... nor stand for the sink's" "$T/$name.err" \
        "the sink never called sendZmqCompleted"
    lacks "$name: no forged counters in the metrics" "$T/$name.jsonl" \
        '"name":"intruder"|"in":999999'
    contains "$name: the intruder did send ($(cat "$T/$name.intr"))" \
        "$T/$name.intr" "^sent DONE"
}
# a compromised worker host holds its own key (tcp-stolen-worker-key): it
# gets in, but may only report its own counters, and only the sink
# completes the run
intrude_start tcp-plain plain --tcp
intrude_start tcp-foreign foreign --tcp
intrude_start ipc-foreign foreign
intrude_start tcp-stolen-worker-key stolen --tcp
for n in tcp-plain tcp-foreign ipc-foreign tcp-stolen-worker-key; do
    intrude_send $n
done
intrude_check tcp-plain
intrude_check tcp-foreign
intrude_check ipc-foreign
contains "the supervisor says it refused them" "$T/ipc-foreign.err" \
    "refused a connection without the pipeline's CURVE key"
intrude_check tcp-stolen-worker-key

# --- separate uids: the worker's uid cannot forge a report ----------------
W=$(id -u sstream-worker 2>/dev/null) E=$(id -u sstream-enclave 2>/dev/null)
SEP=0
[ "$(id -u)" -eq 0 ] && [ -n "$W" ] && [ -n "$E" ] && SEP=1
if [ $SEP -eq 1 ]; then
    "$SS" keygen "$T/ukeys" > /dev/null 2>&1
    A=$T/args-uids
    mkdir -p "$A"
    chmod 777 "$A"
    SS_RUN_EXEC=$FAKE FAKE_LOG_DIR=$A FAKE_SECONDS=8 \
        "$SS" run "$P/pipeline.yml" --security enclave --keys "$T/ukeys" \
        --no-progress --output-dir "$T/o-uids" > "$T/uids.out" 2> "$T/uids.err" &
    run=$!
    _pids+=($run)
    wait_file "$A/map-1.args"
    wait_file "$A/router-1.args"
    wait_file "$A/sink.args"
    argv=$(sed -n 's/^argv //p' "$A/map-1.args")
    wu=$(sed -n 's/^uid=//p' "$A/map-1.args") # the worker host's uid
    opt() { printf '%s\n' "$argv" | tr ' ' '\n' | sed -n "/^$1\$/{n;p;}"; }
    wk=$(opt --keys) ek=$(opt --enclave-keys) ks=$(opt --keyservice)
    runid=$(sed -n 's/^SS_RUN=//p' "$A/map-1.args")
    m=$("$SS" keyservice --keys "$T/ukeys" --stage "map=$P/map.lua" \
        --print-manifest | sed -n 's/^map //p')
    contains "uids: the worker host runs as sstream-worker" "$A/map-1.args" "^uid=$W$"
    contains "uids: ... and so do the routers" "$A/router-1.args" "^uid=$W$"
    contains "uids: the sink is the owner's (root)" "$A/sink.args" "^uid=0$"
    check "uids: the enclave's folder belongs to sstream-enclave, 0700" \
        test "$(stat -c '%u %a' "$ek")" = "$E 700" -a \
        "$(stat -c '%u %a' "$ek/platform.key")" = "$E 600"
    setpriv --reuid="$wu" --regid="$wu" --clear-groups $PY \
        "$ROOT/tests/integration/forge_report.py" "$ks" "$wk" "$ek" map-1 map "$m" \
        > "$T/forge-w.out" 2>&1
    rc=$?
    check "uids: the forger as the worker's uid cannot read platform.key ($(cat "$T/forge-w.out"))" \
        test $rc -eq 3
    contains "... permission denied" "$T/forge-w.out" "^cannot read platform.key: Permission denied"
    $PY "$ROOT/tests/integration/forge_report.py" "$ks" "$wk" "$ek" map-1 map "$m" 0123456789abcdef \
        > "$T/forge-stale.out" 2>&1
    contains "run: a report for another run gets no key, even signed right" \
        "$T/forge-stale.out" "^refused: .*for run 0123456789abcdef, not for this run $runid"
    $PY "$ROOT/tests/integration/forge_report.py" "$ks" "$wk" "$ek" map-1 map "$m" "$runid" \
        > "$T/forge-root.out" 2>&1
    contains "uids: the same forger as root gets the data key (no hardware: root can)" \
        "$T/forge-root.out" "^GOT THE DATA KEY \(52 bytes\)"
    sinkdir=$(dirname "$wk")/sink
    for f in "$sinkdir/data.key" "$T/ukeys/data.key" "$T/ukeys/platform.key"; do
        if setpriv --reuid="$wu" --regid="$wu" --clear-groups cat "$f" > /dev/null 2>&1; then
            notok "uids: the worker's uid cannot read $f"
        else
            ok "uids: the worker's uid cannot read $f"
        fi
    done
    wait_max 60 $run
    check "uids: the run ends well" test $? -eq 0
else
    ok "# SKIP separate uids: needs root and the users (scripts/install-users.sh)"
fi

# --- a real enclave-mode run: what routers and workers hold ---------------
EX=$ROOT/examples/delayed-flights
"$SS" gen flights --rows 200000 --seed 5 -o "$T/f.csv" > /dev/null 2>&1
"$SS" keygen "$T/keys" > /dev/null 2>&1
"$SS" run "$EX/pipeline.yml" --data "$T/f.csv" --security enclave \
    --keys "$T/keys" --output-dir "$T/real" --no-progress \
    > "$T/real.out" 2> "$T/real.err" &
run=$!
_pids+=($run)
# every router, worker and enclave of the run, looked at while it runs
$PY "$ROOT/tests/integration/proc_keys.py" $run "$T/procs" &
scan=$!
wait_max 120 $run
check "real enclave run: exits 0" test $? -eq 0
wait_max 10 $scan
contains "real enclave run: answers" "$T/real.out" "^Delays for carrier"
check "found the 4 routers, 3 workers and 3 enclaves while running" \
    test "$(grep -c '^[0-9]* router ' "$T/procs")" -ge 4 -a \
    "$(grep -c '^[0-9]* worker ' "$T/procs")" -ge 3 -a \
    "$(grep -c '^[0-9]* enclave ' "$T/procs")" -ge 3
lacks "no router or worker key folder holds data.key or platform.key" \
    <(grep '^[0-9]* \(router\|worker\) ' "$T/procs" | sed 's/ open=.*//') \
    "data.key|platform.key"
check "... and each was read (7 key folders)" \
    test "$(grep '^[0-9]* \(router\|worker\) ' "$T/procs" | grep -c 'keys=curve-')" -ge 7
lacks "no router, worker or enclave has a key file of the pipeline open" \
    "$T/procs" "open=.*$T/keys"
lacks "no router, worker or enclave has data.key open" "$T/procs" \
    "open=.*data.key"
if [ $SEP -eq 1 ]; then
    check "real run: routers and workers run as sstream-worker" \
        test "$(grep '^[0-9]* \(router\|worker\) ' "$T/procs" | grep -vc "^[0-9]* [a-z]* $W ")" -eq 0
    check "real run: enclaves run as sstream-enclave" \
        test "$(grep '^[0-9]* enclave ' "$T/procs" | grep -vc "^[0-9]* enclave $E ")" -eq 0
fi
check "each enclave's folder holds platform.key alone" \
    test "$(grep -c '^[0-9]* enclave [0-9]* keys=platform.key open=' "$T/procs")" -ge 3 \
    -a "$(grep '^[0-9]* enclave ' "$T/procs" | grep -vc ' keys=platform.key ')" -eq 0

finish
