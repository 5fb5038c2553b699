#!/bin/bash
# Two runs of one pipeline from one folder used to share out/<name>: one
# run's summary counted rejects whose file the other had truncated
# (issue 10, defect 6). A run now holds a lock on its output folder for
# its whole life: a second run into the same folder fails at once,
# naming the folder and the run that holds it, and writes nothing there;
# once the first ends (or dies, even by SIGKILL), the folder is free.
# The components are the fakes of tests/integration/fake-component.sh.
source "$(dirname "$0")/lib.sh"
FAKE=$T/fake-component.sh
cp "$ROOT/tests/integration/fake-component.sh" "$FAKE"
chmod +x "$FAKE"
export SS_RUN_EXEC=$FAKE
cd "$T"
printf 'return 1\n' > map.lua
printf 'return 3\n' > print.lua
printf 'a,b\n1,2\n' > data.csv
cat > pipeline.yml <<'YML'
name: locked
source: { file: data.csv, format: csv, header: true }
stages:
  - { name: map, script: map.lua }
sink: { script: print.lua }
YML

FAKE_SECONDS=4 FAKE_REJECTS=5 "$SS" run pipeline.yml > out1 2> err1 &
first=$!; _pids+=($first)
for _ in $(seq 1 100); do [ -e out/locked/.lock ] && break; sleep 0.1; done
check "the first run locks out/locked" test -e out/locked/.lock
start=$SECONDS
timeout 20 "$SS" run pipeline.yml > out2 2> err2
rc=$?
check "a second run into the same folder fails (status 1)" test "$rc" -eq 1
check "at once" test $((SECONDS - start)) -le 3
contains "it names the folder and the run holding it" err2 \
    "output folder 'out/locked' is in use by another run \(pid $first\)"
lacks "it ran nothing" err2 "balanced|rows in"
wait_max 60 $first
check "the first run ends well" test $? -eq 0
n=$(grep -oE 'rejects: [0-9]+ in out/locked/rejects.jsonl' err1 | grep -oE '[0-9]+' | head -1)
check "its summary's rejects ($n) are all in its rejects.jsonl" \
    test "${n:-x}" -gt 0 -a "$(wc -l < out/locked/rejects.jsonl)" -eq "${n:-0}"
timeout 60 "$SS" run pipeline.yml > out3 2> err3
check "the folder is free again after the first run" test $? -eq 0

FAKE_MODE=hang "$SS" run pipeline.yml > out4 2> err4 &
hung=$!; _pids+=($hung)
sleep 1.5
kill -KILL $hung; wait $hung 2>/dev/null
timeout 60 "$SS" run pipeline.yml > out5 2> err5
check "and after a run killed by SIGKILL" test $? -eq 0
for p in $(pgrep -f "$FAKE"); do kill -KILL "$p" 2>/dev/null; done
finish
