#!/bin/bash
# What resuming from a checkpoint saves: DelayedFlights (with a map slowed
# on purpose, so that the kill lands at the same point of the work) through
# `sstream run --restarts 1`, reduce-1 killed with SIGKILL KILL_S seconds
# after the start; once with checkpoints off (the restart reads the whole
# input again) and once with checkpoints every 200 ms (the restart resumes
# from the last complete one). A benchmark, not a test.
#   bench/resume_cost.sh [ROWS] [KILL_S]
# Prints per mode: the wall time from start to end (kill and restart
# included), the rows the source read after the restart, whether the
# answer is awk's, and where the restart went from (a kill before the
# first checkpoint completed restarts from the start either way).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SS=${SS:-$ROOT/bin/sstream}
ROWS=${1:-20000}
KILL_S=${2:-6}
T=$(mktemp -d "${TMPDIR:-/tmp}/ssresume.XXXXXX")
trap 'rm -rf "$T"' EXIT
cp "$ROOT"/examples/delayed-flights/*.lua "$T"/
cd "$T" || exit 1
sed 's/if not value then return {} end/for _ = 1, 100000 do end\n      if not value then return {} end/' \
    map-csv-to-event.lua > slow-map.lua
"$SS" gen flights --rows "$ROWS" --seed 7 -o data.csv
mawk -F, -f "$ROOT/tests/reference/delayed_flights.awk" data.csv > expected
cat > p.yml <<'YML'
name: resume-cost
batch_size: 8K
source: { file: data.csv, parts: 2, format: csv, header: true }
stages:
  - { name: map, script: slow-map.lua, workers: 1 }
  - { name: filter, script: filter-event.lua, workers: 1 }
  - { name: reduce, script: reduce-events.lua, workers: 1 }
sink: { script: print-results.lua }
YML
printf '%-22s %8s %14s %8s  %s\n' checkpoints wall_s rows_after same \
    'the restart'
for iv in 0 200; do
    rm -rf out
    t0=$(date +%s.%N)
    LOG_LEVEL=info timeout 600 "$SS" run p.yml --output-dir out --restarts 1 \
        --checkpoint-interval "$iv" --no-progress > res 2> err &
    run=$!
    sleep "$KILL_S"
    sup=$(pgrep -P "$run" | head -1)
    victim=$([ -n "$sup" ] && pgrep -P "$sup" -f -- "--name reduce-1( |$)" | head -1)
    [ -n "$victim" ] && kill -KILL "$victim"
    wait "$run"
    rc=$?
    t1=$(date +%s.%N)
    grep -q "restarting the whole pipeline" err ||
        { echo "no restart (interval $iv): the run ended before the kill?"; exit 1; }
    after=$(grep -o 'source: [0-9]* lines' out/logs/source.log | tail -1 | grep -o '[0-9]*')
    same=no
    [ "$rc" -eq 0 ] && grep '^Delays' res | cmp -s - expected && same=yes
    how=$(grep -o 'restarting the whole pipeline from [a-z]* [0-9a-z]*' err |
          head -1 | sed 's/restarting the whole pipeline //')
    awk -v iv="$iv" -v a="$t0" -v b="$t1" -v n="${after:-?}" -v s="$same" \
        -v how="$how" \
        'BEGIN{printf "%-22s %8.2f %14s %8s  %s\n",
               (iv == 0 ? "off" : iv " ms"), b - a, n, s, how}'
done
