#!/bin/bash
# `sstream scale NAME STAGE N` on runs of this machine (sstream run),
# mid-run, DelayedFlights (50,000 rows) with a map made slow (a busy loop
# per event, about 2 s for the input on one worker) so that the rescale
# lands while the map has work:
#   - plain: map 1 -> 3: the result equals awk, the books balance, the new
#     workers took rows, the summary says when it rescaled;
#   - plain with checkpoints: map 3 -> 1 at the next complete checkpoint
#     (the run stops there and resumes from it with 1 map worker; a live
#     leave could lose rows on a later resume: test_scale_ckpt.sh); the
#     result equals awk and the books balance (nothing lost, nothing
#     counted twice), the leavers' rows up to the checkpoint are in the
#     table; a reduce without partition_by is refused, saying so;
#   - enclave (separate uids when root): map 1 -> 3 -> 2 with
#     --scale-slots 2: equals awk, balances; a 4th worker is refused (a
#     slot that a worker left is not used again);
#   - encrypted with --scale-slots 1: map 1 -> 2, equals awk, balances;
#   - encrypted, one worker per stage, default slots: refused, saying the
#     sink checks stream order and what to give;
#   - refusals: a stateful stage without checkpoints, an unknown stage, N
#     out of range, an unknown run;
#   - attacks (scale_intruder.py): forged requests (N 0, garbage, a line
#     too long, a control character, nothing at all) are answered with an
#     error and change nothing; a stranger (another uid, as root) cannot
#     connect, and with the socket's modes loosened the run's credential
#     check still refuses it.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1
export SS_STATE_DIR=$T/state
E=$ROOT/examples/delayed-flights
"$SS" gen flights --rows 50000 -o flights.csv > /dev/null 2>&1
reference flights.csv > expected.txt
sed 's/^      if not value then return {} end/      for _ = 1, 20000 do end\n&/' \
    "$E/map-csv-to-event.lua" > map-slow.lua
cp "$E/filter-event.lua" "$E/reduce-events.lua" "$E/print-results.lua" .
sed 's/map-csv-to-event.lua/map-slow.lua/' "$E/pipeline.yml" > p1.yml
sed '0,/^    workers: 1$/s//    workers: 3/' p1.yml > p3.yml
check "the slow map has its busy loop, p3 its 3 map workers" \
    eval 'grep -q "for _ = 1, 20000" map-slow.lua && grep -q "workers: 3" p3.yml'

# run TAG PIPELINE ARGS...: sstream run in the background (at most 90 s)
run() {
    local tag=$1 p=$2
    shift 2
    timeout -k 5 90 "$SS" run "$p" --data flights.csv --output-dir "o-$tag" \
        --no-progress "$@" > "res-$tag" 2> "err-$tag" &
    RUN=$!
    _pids+=($RUN)
}
# scale_when_up TAG ARGS...: sstream scale ARGS, retried while the run is
# still starting (its source not started yet); output in scale-TAG
scale_when_up() {
    local tag=$1 i
    shift
    for ((i = 0; i < 100; i++)); do
        timeout 30 "$SS" scale "$@" > "scale-$tag" 2>&1
        SRC=$?
        grep -qE "is starting|still starting|no run '" "scale-$tag" || return 0
        sleep 0.2
    done
}
rows_of() { sed -n "s/^  $2 \+worker \+\([0-9]*\) .*/\1/p" "err-$1"; }

# 1. plain, map 1 -> 3, after the refusals and the attacks on the same
# run (whose map is 3 times slower still, so that it outlasts them)
sed 's/for _ = 1, 20000 do end/for _ = 1, 60000 do end/' map-slow.lua > map-slower.lua
sed 's/map-slow.lua/map-slower.lua/' p1.yml > p1s.yml
run up p1s.yml
scale_when_up up-r delayed-flights reduce 2
check "a stateful stage without checkpoints is refused (exit 1)" [ "$SRC" -eq 1 ]
contains "... saying to give the pipeline checkpoint_ms" scale-up-r \
    "stage 'reduce' keeps state .* give the pipeline checkpoint_ms: MS .* partition_by"
timeout 30 "$SS" scale delayed-flights nosuch 2 > /dev/null 2> refuse-s; rc=$?
check "an unknown stage is refused (exit 1)" [ $rc -eq 1 ]
contains "... naming the stages there are" refuse-s "has no stage 'nosuch' \(it has map, filter, reduce\)"
timeout 30 "$SS" scale delayed-flights map 65 > /dev/null 2> refuse-n; rc=$?
check "N out of range exits 2" [ $rc -eq 2 ]
contains "... saying the range" refuse-n "N must be a number from 1 to 64, not '65'"
timeout 30 "$SS" scale nosuchrun map 2 > /dev/null 2> refuse-u; rc=$?
check "an unknown run exits 1" [ $rc -eq 1 ]
contains "... asking whether it runs under that name" refuse-u "no run 'nosuchrun' here .*is it running, under this name"
# attacks on the control socket of the same run
SOCK=$(sed -n 's/^control=//p' "$SS_STATE_DIR/delayed-flights.run")
check "the run's record names its control socket" test -S "$SOCK"
check "... in a folder only its owner enters (0700), itself 0600" \
    eval '[ "$(stat -c %a "$(dirname "$SOCK")")" = 700 ] && [ "$(stat -c %a "$SOCK")" = 600 ]'
timeout 30 $PY "$ROOT/tests/integration/scale_intruder.py" "$SOCK" forged > att
contains "a forged request for 0 workers is refused" att "^request answer: refused: N must be a number from 1 to 64, not '0'"
# an N beyond long is quoted as typed, not clamped (it said 9223372036854775807)
timeout 30 $PY "$ROOT/tests/integration/scale_intruder.py" "$SOCK" request \
    "scale map 99999999999999999999" > att2
contains "an N out of range is quoted as typed" att2 \
    "refused: N must be a number from 1 to 64, not '99999999999999999999'"
contains "garbage is answered with what the run understands" att "^request answer: error: this run understands 'scale STAGE N'"
contains "a line too long is refused" att "^long answer: error: the request was not read: its request is too long"
contains "a control character is refused" att "^ctrl answer: error: .*control character"
contains "a client that sends nothing is dropped after a second" att "^silent answer: error: .*no whole request line in time"
stranger() {
    timeout 30 setpriv --reuid=65534 --regid=65534 --clear-groups \
        $PY "$ROOT/tests/integration/scale_intruder.py" "$SOCK" request "scale map 1"
}
if [ "$(id -u)" = 0 ]; then
    stranger > att-u
    contains "a stranger (uid 65534) cannot even connect" att-u "connect: EACCES"
    # a loosened mode (the folders on the way and the socket): the run's
    # own credential check still refuses
    RUNDIR=$(dirname "$(dirname "$SOCK")")
    mode0=$(stat -c %a "$RUNDIR")
    chmod o+x "$RUNDIR" && chmod 0755 "$(dirname "$SOCK")" && chmod 0666 "$SOCK"
    stranger > att-u2
    contains "... and with the modes loosened the run refuses it by its credentials" att-u2 \
        "answer: refused: you are not the owner of this run"
    chmod "$mode0" "$RUNDIR"; chmod 0700 "$(dirname "$SOCK")"; chmod 0600 "$SOCK"
else
    echo "ok - a stranger cannot connect # SKIP not root (no other uid to play it)"
fi
timeout 30 "$SS" scale delayed-flights map 3 > scale-up 2>&1
check "scale map 3 mid-run exits 0" [ $? -eq 0 ]
contains "... and answers what it did" scale-up "^stage map of delayed-flights: 3 workers \(started map-2, map-3\)"
wait_max 100 $RUN
check "the run rescaled up ends done" [ $? -eq 0 ]
same "... with awk's result" expected.txt res-up
contains "... the books balance" err-up "rows in = .*: balanced"
contains "... the summary says when it rescaled" err-up "rescaled \(sstream scale\): map 1 -> 3 at [0-9.]+ s"
check "... and the added workers took rows" \
    eval '[ "$(rows_of up map-2)" -gt 0 ] && [ "$(rows_of up map-3)" -gt 0 ]'
lacks "... and no forged request changed it" err-up "map 1 -> 1|map 3 -> |left:"
if [ "$(id -u)" = 0 ]; then
    contains "... which said it refused the stranger" err-up "refused a request on the control socket from uid 65534: it is not the run's owner"
fi
check "... and its record is gone" test ! -e "$SS_STATE_DIR/delayed-flights.run"

# 2. plain with checkpoints, map 3 -> 1
# (8 KiB batches: the source sends batches as credit comes, so barriers
# go out while the map works; with 64 KiB ones it had sent the whole file
# before the first barrier and no checkpoint was ever taken)
run down p3.yml --checkpoint-interval 100 --batch-size 8K
scale_when_up down delayed-flights map 1
check "scale map 1 (from 3) mid-run exits 0" [ "$SRC" -eq 0 ]
contains "... at the next complete checkpoint (a run that can resume from one)" scale-down \
    "^stage map of delayed-flights: 1 worker at the next complete checkpoint"
timeout 30 "$SS" scale delayed-flights reduce 2 > /dev/null 2> refuse-p
contains "with checkpoints, a reduce dealt by credit is refused: give it partition_by" refuse-p \
    "stage 'reduce' keeps state .* give stage 'reduce' partition_by: FIELD"
wait_max 100 $RUN
check "the run rescaled down ends done" [ $? -eq 0 ]
same "... with awk's result" expected.txt res-down
contains "... the books balance (nothing lost, nothing counted twice)" err-down "rows in = .*: balanced"
contains "... the leavers are named" err-down "^  left: map-[23] \(at [0-9.]+ s\), map-[23] \(at [0-9.]+ s\); their rows are in the table above"
check "... with their rows in the table" \
    eval '[ "$(rows_of down map-2)" -gt 0 ] && [ "$(rows_of down map-3)" -gt 0 ]'
contains "... it stopped at a checkpoint and resumed from it with 1 map worker" err-down \
    "scale: stage map: 3 -> 1 workers at checkpoint [0-9]+: stopping every component"
lacks "... no worker left while the run went on" err-down "left stage 'map' \(sstream scale\)"
lacks "... and not a restart from the start" err-down "restarting from the start|not rescaled"

# 3. enclave, map 1 -> 3 -> 2 (spare slots asked for: one worker per
# stage). 16 KiB batches: an enclave worker heartbeats its router only
# between batches and acknowledges them 8 at a time, so 64 KiB batches of
# this slow map left it silent for seconds on a loaded machine (load 18:
# counted as lost)
run enc p1.yml --security enclave --scale-slots 2 --batch-size 16K
scale_when_up enc1 delayed-flights map 3
check "enclave: scale map 3 exits 0" [ "$SRC" -eq 0 ]
scale_when_up enc2 delayed-flights map 2 # once the new ones reported
check "enclave: then scale map 2 exits 0" [ "$SRC" -eq 0 ]
timeout 30 "$SS" scale delayed-flights map 4 > /dev/null 2> refuse-slots
contains "enclave: a 4th worker is refused: no spare slot left" refuse-slots \
    "can have at most 2 workers now: 2 run, and 0 of the 2 spare slots .* --scale-slots N"
wait_max 100 $RUN
check "enclave: the run ends done" [ $? -eq 0 ]
same "enclave: ... with awk's result" expected.txt res-enc
contains "enclave: ... the books balance" err-enc "rows in = .*: balanced"
contains "enclave: ... the rescales are in the summary" err-enc "map 1 -> 3 at [0-9.]+ s; map 3 -> 2 at"
check "enclave: ... the added worker took rows in its enclave" [ "$(rows_of enc map-2)" -gt 0 ]

# 4. encrypted, one worker per stage, the default: no spare slot
run enc0 p1.yml --security encrypted
scale_when_up enc0 delayed-flights map 2
check "encrypted with one worker per stage: scale refused (exit 1)" [ "$SRC" -eq 1 ]
contains "... saying why and what to give" scale-enc0 \
    "started without spare worker slots \(its sink checks that every stream keeps its order.*--scale-slots N"
wait_max 100 $RUN
check "... and the run goes on to its end" [ $? -eq 0 ]
same "... with awk's result" expected.txt res-enc0

# 5. encrypted with a spare slot asked for: map 1 -> 2 mid-run
run encs p1.yml --security encrypted --scale-slots 1 --batch-size 16K
scale_when_up encs delayed-flights map 2
check "encrypted: scale map 2 exits 0" [ "$SRC" -eq 0 ]
wait_max 100 $RUN
check "encrypted: the run ends done" [ $? -eq 0 ]
same "encrypted: ... with awk's result" expected.txt res-encs
contains "encrypted: ... the books balance" err-encs "rows in = .*: balanced"
contains "encrypted: ... the rescale is in the summary" err-encs "map 1 -> 2 at [0-9.]+ s"
check "encrypted: ... the added worker took rows" [ "$(rows_of encs map-2)" -gt 0 ]
finish
