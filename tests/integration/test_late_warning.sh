#!/bin/bash
# Late events are never dropped without a word: an event-time window or
# join that dropped late events with no onLate says how many at its
# completion, through the stage's log, naming the operator (counts only).
# The case that needs it: carrier-delays' window without keyedWatermark
# fed by a source in 4 parts, which interleave (one watermark for all
# carriers: most events come late), in plain and enclave modes. Behind
# partition_by the same window has no late event: each key group has its
# own instance of the stage, so its own watermark (keyed state; before it,
# one watermark per worker while the stage before cut each batch by key
# group: about half the events came late). Also: log.warn writes exactly
# its arguments (it appended "userdata: 0x..." on Lua 5.4, the box of its
# own buffer).
source "$(dirname "$0")/lib.sh"
cd "$T"
printf "local log = require 'log'\nlog.warn('hello', 42)\n" > logme.lua
timeout 60 "$SS" lua logme.lua 2> logme.err
contains "log.warn writes its arguments" logme.err "warn: logme.lua:2: hello 42$"
lacks "... and nothing else" logme.err "userdata"

cp -r "$ROOT/examples/carrier-delays" ex
sed -i 's/^\(    keyedWatermark = \)true,/\1false,/' ex/window.lua
contains "the copy's window has one watermark per worker" ex/window.lua \
    "keyedWatermark = false"
sed 's/^  parts: 1$/  parts: 4/' ex/pipeline.yml > ex/pipeline-4.yml
contains "the copy's source has 4 parts" ex/pipeline-4.yml "^  parts: 4$"
"$SS" gen flights --rows 20000 --seed 5 -o f.csv
for m in plain enclave; do
    timeout 300 "$SS" run ex/pipeline-4.yml --data f.csv --security $m \
        --output-dir o-$m > res-$m 2> err-$m
    rc=$?
    check "$m: the run ends well ($rc)" test $rc -eq 0
    contains "$m: a window worker says how many late events it dropped" err-$m \
        "window-[0-9]: warn: .*tumblingWindow: [0-9]+ late events dropped .*keyedWatermark = true"
    lacks "$m: ... and its log line holds nothing else" err-$m "late events dropped.*userdata"
done
# behind partition_by, keyed state: one watermark per key group
timeout 300 "$SS" run ex/pipeline-keyed.yml --data f.csv \
    --output-dir o-kg > res-kg 2> err-kg
check "partitioned, no keyedWatermark: the run ends well" test $? -eq 0
lacks "partitioned, no keyedWatermark: no late event (a watermark per key group)" \
    err-kg "late events? dropped"
# the example as shipped (keyedWatermark = true) has no late event
timeout 300 "$SS" run "$ROOT/examples/carrier-delays/pipeline-keyed.yml" --data f.csv \
    --output-dir o-keyed > res-keyed 2> err-keyed
lacks "keyedWatermark: no late-event warning" err-keyed "late events? dropped"
finish
