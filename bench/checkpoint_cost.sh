#!/bin/bash
# What checkpoint barriers cost: DelayedFlights through `sstream run` with
# checkpoints off and at a few intervals, each run REPEAT times, the best
# wall time kept (the machine may be shared). A benchmark, not a test.
#   bench/checkpoint_cost.sh [ROWS] [REPEAT] [SECURITY]
# Prints one line per interval: the interval, the best wall time, the
# rows per second, the checkpoints completed, the change against off, and
# the least CPU time (user + system) of all the run's processes and its
# change (CPU time is less disturbed than wall time by other load).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SS=${SS:-$ROOT/bin/sstream}
ROWS=${1:-500000}
REPEAT=${2:-3}
SEC=${3:-plain}
T=$(mktemp -d "${TMPDIR:-/tmp}/ssckpt.XXXXXX")
trap 'rm -rf "$T"' EXIT
cp "$ROOT"/examples/delayed-flights/*.lua "$T"/
cd "$T" || exit 1
"$SS" gen flights --rows "$ROWS" --seed 3 -o data.csv
cat > p.yml <<'YML'
name: ckpt-cost
source: { file: data.csv, parts: 4, format: csv, header: true }
stages:
  - { name: map, script: map-csv-to-event.lua, workers: 1 }
  - { name: filter, script: filter-event.lua, workers: 1 }
  - { name: reduce, script: reduce-events.lua, workers: 1 }
sink: { script: print-results.lua }
YML
printf '%-10s %8s %12s %12s %8s %8s %8s\n' interval wall_s rows_per_s \
    checkpoints change cpu_s change
base="" cbase=""
for iv in 0 1000 200 50; do
    best="" n=0 cpu=""
    for ((r = 0; r < REPEAT; r++)); do
        rm -rf out
        # the CPU time of sstream run's children (every component)
        c0=$(awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat)
        timeout 600 "$SS" run p.yml --output-dir out --security "$SEC" \
            --checkpoint-interval "$iv" --no-progress > /dev/null 2> err ||
            { echo "run failed (interval $iv):"; tail -3 err; exit 1; }
        c1=$(awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat)
        u=$(awk -v a="$c0" -v b="$c1" -v hz="$(getconf CLK_TCK)" \
            'BEGIN{print (b - a) / hz}')
        w=$(sed -n 's/.*wall time \([0-9.]*\) s.*/\1/p' err)
        c=$(sed -n 's/.*checkpoints: \([0-9]*\) complete.*/\1/p' err)
        if [ -z "$best" ] || awk -v a="$w" -v b="$best" 'BEGIN{exit !(a<b)}'; then
            best=$w n=${c:-0}
        fi
        if [ -z "$cpu" ] || awk -v a="$u" -v b="$cpu" 'BEGIN{exit !(a<b)}'; then
            cpu=$u
        fi
    done
    [ -z "$base" ] && base=$best && cbase=$cpu
    awk -v iv="$iv" -v w="$best" -v rows="$ROWS" -v n="$n" -v b="$base" \
        -v u="$cpu" -v cb="$cbase" \
        'BEGIN{printf "%-10s %8.2f %12.0f %12d %+7.1f%% %8.2f %+7.1f%%\n",
               (iv == 0 ? "off" : iv " ms"), w, rows / w, n, (w / b - 1) * 100,
               u, (u / cb - 1) * 100}'
done
