#!/bin/bash
# bench/run.sh - `make bench`: DelayedFlights on a generated 28M-row file
# (the size of the seed's 2005-2008 dataset, ~2.7 GB; generated once into
# out/bench/) in the seed's topology, 1 worker per stage:
#
#   source (4 parts) -> router -> map -> router -> filter -> router ->
#   reduce -> router -> printer
#
# Prints the wall time, MB/s, and the CPU time and peak RSS of every
# process, runs an awk one-liner computing the same answer in the same run
# (its time and peak RSS beside), checks both answers agree, and appends
# the figures with the command to docs/PERFORMANCE.md.
#
#   bench/run.sh [ROWS]        (default 28000000; SS_BENCH_NO_DOC=1: do
#                               not touch docs/PERFORMANCE.md)
#
# SS_BENCH_PIPELINE=pipeline-chained.yml runs the stages chained into one
# process (chain: true, docs/PIPELINE.md) and SS_BENCH_WORKERS=N runs N
# workers per stage (default 1): the chained DelayedFlights on 2 cores is
#   SS_BENCH_PIPELINE=pipeline-chained.yml SS_BENCH_WORKERS=2 bench/run.sh
set -eu
cd "$(dirname "$0")/.."
ROWS=${1:-28000000}
SS=${SS:-bin/sstream}
DATA=out/bench/flights-$ROWS.csv
RUN=out/bench/run-$(date +%Y%m%d-%H%M%S)
mkdir -p out/bench "$RUN"

if [ ! -s "$DATA" ]; then
    echo "bench: generating $DATA ($ROWS rows, once)"
    "$SS" gen flights --rows "$ROWS" -o "$DATA.tmp"
    mv "$DATA.tmp" "$DATA"
fi
MB=$(awk -v b="$(stat -c %s "$DATA")" 'BEGIN { printf "%.1f", b / 1e6 }')

PIPE=${SS_BENCH_PIPELINE:-pipeline.yml}
WORKERS=${SS_BENCH_WORKERS:-1}
CMD="$SS run examples/delayed-flights/$PIPE --data $DATA --workers $WORKERS --security plain --no-progress --output-dir $RUN"
echo "bench: $CMD"
start=$(date +%s.%N)
$CMD >"$RUN/stdout" 2>"$RUN/summary"
end=$(date +%s.%N)
WALL=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
grep '^Delays for carrier' "$RUN/stdout" | sort >"$RUN/pipeline.txt"

# the same answer, one line of awk
AWK='NR > 1 && $15 ~ /^-?[0-9]+$/ && $15 > 0 { n[$9]++; s[$9] += $15 } END { for (c in n) printf "Delays for carrier %s -> %.2f average mins - %d delayed flights\n", c, s[c] / n[c], n[c] }'
/usr/bin/time -f '%e %M' -o "$RUN/awk.time" mawk -F, "$AWK" "$DATA" | sort >"$RUN/awk.txt"
read -r AWK_WALL AWK_RSS <"$RUN/awk.time"

if cmp -s "$RUN/pipeline.txt" "$RUN/awk.txt" && [ -s "$RUN/awk.txt" ]; then
    SAME="yes ($(wc -l <"$RUN/awk.txt") carriers)"
else
    SAME="NO: see $RUN/pipeline.txt and $RUN/awk.txt"
fi
MBS=$(awk -v m="$MB" -v w="$WALL" 'BEGIN { printf "%.1f", m / w }')
AWK_MBS=$(awk -v m="$MB" -v w="$AWK_WALL" 'BEGIN { printf "%.1f", m / w }')

# per-process CPU time and peak RSS from the run's summary table (not
# the chained stages: theirs are in their worker's line)
TABLE=$(awk '/^  component/ { on = 1; next } on && /^  wall time/ { on = 0 }
    on && NF >= 8 && $2 != "chain" { printf "| %s | %s | %s %s | %s %s |\n", $1, $2, $(NF - 3), $(NF - 2), $(NF - 1), $NF }' "$RUN/summary")

echo
echo "DelayedFlights ($PIPE), $ROWS rows ($MB MB), $WORKERS worker(s) per stage:"
echo "  pipeline  wall $WALL s   $MBS MB/s"
echo "  awk       wall $AWK_WALL s   $AWK_MBS MB/s   peak RSS $((AWK_RSS / 1024)) MB"
echo "  same answer: $SAME"
echo "  CPU time and peak RSS per process:"
printf '%s\n' "$TABLE" | sed 's/^/    /'

if [ "${SS_BENCH_NO_DOC:-0}" != 1 ]; then
    DOC=docs/PERFORMANCE.md
    CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
    MEM=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
    {
        echo
        echo "### $(date -u '+%Y-%m-%d %H:%M UTC'), $ROWS rows"
        echo
        echo "Machine: $(nproc) cores, $CPU, $MEM, $(uname -sr)."
        echo "Commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
        echo
        echo "    SS_BENCH_PIPELINE=$PIPE SS_BENCH_WORKERS=$WORKERS bench/run.sh $ROWS"
        echo "    # = $CMD"
        echo "    # awk: mawk -F, '<one-liner in bench/run.sh>' $DATA"
        echo
        echo "| | wall time | throughput | peak RSS |"
        echo "|---|---:|---:|---:|"
        echo "| pipeline ($(printf '%s\n' "$TABLE" | grep -c '^| ') processes) | $WALL s | $MBS MB/s | see below |"
        echo "| awk one-liner | $AWK_WALL s | $AWK_MBS MB/s | $((AWK_RSS / 1024)) MB |"
        echo
        echo "Same answer as awk: $SAME."
        echo
        echo "| process | role | CPU time | peak RSS |"
        echo "|---|---|---:|---:|"
        printf '%s\n' "$TABLE"
    } >>"$DOC"
    echo "bench: appended to $DOC"
fi
