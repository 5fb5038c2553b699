# Shared helpers for the integration tests (bash). Source it first thing.
# Every check prints "ok - NAME" or "not ok - NAME"; finish prints the
# closing "N passed, M failed" line and sets the exit status.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SS=${SS:-$ROOT/bin/sstream}
PY=/usr/bin/python3
T=$(mktemp -d "${TMPDIR:-/tmp}/sstest.XXXXXX")
# runs record themselves by name here (sstream scale NAME): one folder
# per test, so that runs of other tests never answer for this one's
export SS_STATE_DIR=$T/state
_pass=0 _fail=0
_pids=()
cleanup() {
    for p in "${_pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
    # and every background job of this shell not in _pids, e.g. the
    # feeder of `( cat rows; sleep 60 ) | sstream source ... &` ($! is
    # the source): `wait` would otherwise wait out its sleep
    for p in $(jobs -p); do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
ok() { _pass=$((_pass + 1)); echo "ok - $1"; }
notok() {
    _fail=$((_fail + 1)); echo "not ok - $1"
    if [ $# -gt 1 ] && [ -n "$2" ]; then printf '%s\n' "$2" | head -30 | sed 's/^/    /'; fi
}
# check NAME CMD...: passes when CMD succeeds
check() { local n=$1; shift; if "$@"; then ok "$n"; else notok "$n"; fi; }
# contains NAME FILE PATTERN (grep -E)
contains() {
    if grep -qE -- "$3" "$2"; then ok "$1"; else notok "$1" "$(tail -20 "$2")"; fi
}
lacks() {
    if grep -qE -- "$3" "$2"; then notok "$1" "$(grep -E -- "$3" "$2" | head)"; else ok "$1"; fi
}
# same NAME FILE1 FILE2
same() {
    if diff -q "$2" "$3" >/dev/null; then ok "$1"; else notok "$1" "$(diff "$2" "$3" | head -20)"; fi
}
bg() { "$@" & _pids+=($!); }
# wait_max SECONDS PID: `wait PID`, but for at most SECONDS. A process
# still running then is killed (TERM, then KILL) and the status is 124:
# a component that hangs fails its check instead of stalling the suite.
wait_max() {
    local i
    for ((i = 0; i < $1 * 10; i++)); do
        kill -0 "$2" 2> /dev/null || break
        sleep 0.1
    done
    if kill -0 "$2" 2> /dev/null; then
        echo "    (pid $2 still running after $1 s: killed)"
        kill -TERM "$2" 2> /dev/null; sleep 2; kill -KILL "$2" 2> /dev/null
        wait "$2" 2> /dev/null
        return 124
    fi
    wait "$2"
}
finish() { echo "$_pass passed, $_fail failed"; [ "$_fail" -eq 0 ]; }
# expected DelayedFlights answer for a CSV file
reference() { mawk -F, -f "$ROOT/tests/reference/delayed_flights.awk" "$1"; }

# run_and_kill PIPELINE WORKER TAG WHEN: runs `sstream run PIPELINE` in the
# background (output-dir out-TAG, metrics metrics-TAG, stdout res-TAG,
# stderr err-TAG, exit status in rc-TAG, at most RUN_TIMEOUT seconds, in
# the current folder), waits until the shell test WHEN holds, then kills
# WORKER (one of this run's children) with SIGKILL. Fails if there was no
# worker to kill. Used by the worker-loss tests.
RUN_TIMEOUT=${RUN_TIMEOUT:-180}
run_and_kill() { # $1 pipeline, $2 worker to kill, $3 tag, $4 when
    timeout -k 10 "$RUN_TIMEOUT" "$SS" run "$1" --output-dir "out-$3" \
        --metrics "metrics-$3" > "res-$3" 2> "err-$3" &
    local run=$!
    _pids+=($run)
    local victim=""
    for _ in $(seq 1 100); do
        # only this run's children: other runs may share the machine
        local sup
        sup=$(pgrep -P "$run" | head -1) # sstream run, under timeout
        [ -n "$sup" ] &&
            victim=$(pgrep -P "$sup" -f "sstream worker .*--name $2( |$)" | head -1)
        [ -n "$victim" ] && break
        sleep 0.05
    done
    # wait for the moment ($4, a shell test), then a little more
    for _ in $(seq 1 600); do eval "$4" && break; sleep 0.1; done
    sleep 0.5
    local killed=1 # only if it was still there to kill
    [ -n "$victim" ] && kill -KILL "$victim" 2> /dev/null && killed=0
    wait_max $((RUN_TIMEOUT + 20)) $run
    echo $? > "rc-$3"
    return $killed
}
