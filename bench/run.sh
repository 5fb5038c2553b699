#!/bin/bash
# bench/run.sh - `make bench`: DelayedFlights on a generated file (by
# default 28M rows, the size of the seed's 2005-2008 dataset, ~2.7 GB;
# generated once into out/bench/) in the seed's topology,
#
#   source (4 parts) -> router -> map -> router -> filter -> router ->
#   reduce -> router -> printer
#
# as a matrix, one after the other in the same run: the awk one-liner
# computing the same answer, then the pipeline in plain, encrypted and
# enclave modes, unchained (pipeline.yml) and chained (chain: true,
# pipeline-chained.yml: map, filter and reduce in one worker process, and
# in one enclave per worker outside plain mode). For each: wall time,
# MB/s, CPU time of all its processes (user + system, enclaves included),
# the ratios to plain and to awk, the same-answer check against awk, and
# the peak RSS of every worker process. Then appends the figures with the
# command to docs/PERFORMANCE.md.
#
#   bench/run.sh [ROWS]   or   make bench BENCH_ROWS=N
#
# Environment: SS_BENCH_WORKERS=N workers per stage (default 1);
# SS_BENCH_MODES="plain enclave" (default: plain encrypted enclave);
# SS_BENCH_CHAIN="0 1" (0: unchained, 1: chained; default both);
# SS_BENCH_NO_DOC=1: do not touch docs/PERFORMANCE.md.
set -eu
cd "$(dirname "$0")/.."
ROWS=${1:-28000000}
SS=${SS:-bin/sstream}
DATA=out/bench/flights-$ROWS.csv
RUN=out/bench/run-$(date +%Y%m%d-%H%M%S)
WORKERS=${SS_BENCH_WORKERS:-1}
MODES=${SS_BENCH_MODES:-plain encrypted enclave}
CHAINS=${SS_BENCH_CHAIN:-0 1}
mkdir -p out/bench "$RUN"

if [ ! -s "$DATA" ]; then
    echo "bench: generating $DATA ($ROWS rows, once)"
    "$SS" gen flights --rows "$ROWS" -o "$DATA.tmp"
    mv "$DATA.tmp" "$DATA"
fi
MB=$(awk -v b="$(stat -c %s "$DATA")" 'BEGIN { printf "%.1f", b / 1e6 }')

# the same answer, one line of awk: the floor for this job on one core
AWK='NR > 1 && $15 ~ /^-?[0-9]+$/ && $15 > 0 { n[$9]++; s[$9] += $15 } END { for (c in n) printf "Delays for carrier %s -> %.2f average mins - %d delayed flights\n", c, s[c] / n[c], n[c] }'
/usr/bin/time -f '%e %U %S %M' -o "$RUN/awk.time" mawk -F, "$AWK" "$DATA" \
    | sort >"$RUN/awk.txt"
read -r AWK_WALL AWK_U AWK_S AWK_RSS <"$RUN/awk.time"
AWK_CPU=$(awk -v u="$AWK_U" -v s="$AWK_S" 'BEGIN { printf "%.2f", u + s }')

ROWS_MD=""   # one table row per configuration
RSS_MD=""    # one table row per worker process
PLAIN_CPU="" PLAIN_WALL=""
echo "bench: DelayedFlights, $ROWS rows ($MB MB), $WORKERS worker(s) per stage"
printf '  %-22s %9s %9s %9s %8s %8s  %s\n' config wall MB/s cpu cpu/awk \
    cpu/plain "same answer"
printf '  %-22s %8ss %9s %8ss %8s %8s  %s\n' awk "$AWK_WALL" \
    "$(awk -v m="$MB" -v w="$AWK_WALL" 'BEGIN { printf "%.1f", m / w }')" \
    "$AWK_CPU" 1.00 - "(reference, peak RSS $((AWK_RSS / 1024)) MB)"
for chained in $CHAINS; do
    PIPE=pipeline.yml
    [ "$chained" = 1 ] && PIPE=pipeline-chained.yml
    for mode in $MODES; do
        name=$mode
        [ "$chained" = 1 ] && name="$mode, chained"
        dir=$RUN/$mode-$chained
        CMD="$SS run examples/delayed-flights/$PIPE --data $DATA --workers $WORKERS --security $mode --no-progress --output-dir $dir"
        mkdir -p "$dir"
        rc=0
        /usr/bin/time -f '%e %U %S' -o "$dir.time" $CMD >"$dir.stdout" \
            2>"$dir.summary" || rc=$?
        read -r WALL U S <"$dir.time" || true
        CPU=$(awk -v u="${U:-0}" -v s="${S:-0}" 'BEGIN { printf "%.2f", u + s }')
        grep '^Delays for carrier' "$dir.stdout" | sort >"$dir.txt" || true
        if [ "$rc" != 0 ]; then
            SAME="FAILED (exit $rc, see $dir.summary)"
        elif cmp -s "$dir.txt" "$RUN/awk.txt" && [ -s "$RUN/awk.txt" ]; then
            SAME="yes ($(wc -l <"$RUN/awk.txt") carriers)"
        else
            SAME="NO: see $dir.txt and $RUN/awk.txt"
        fi
        if [ "$mode" = plain ] && [ "$chained" = 0 ]; then
            PLAIN_CPU=$CPU PLAIN_WALL=$WALL
        fi
        MBS=$(awk -v m="$MB" -v w="$WALL" 'BEGIN { printf "%.1f", w > 0 ? m / w : 0 }')
        VS_AWK=$(awk -v c="$CPU" -v a="$AWK_CPU" 'BEGIN { printf "%.2f", a > 0 ? c / a : 0 }')
        VS_PLAIN=$(awk -v c="$CPU" -v p="$PLAIN_CPU" 'BEGIN { if (p > 0) printf "%.2f", c / p; else printf "-" }')
        printf '  %-22s %8ss %9s %8ss %8s %8s  %s\n' "$name" "$WALL" "$MBS" \
            "$CPU" "$VS_AWK" "$VS_PLAIN" "$SAME"
        ROWS_MD="$ROWS_MD| $name | $WALL s | $MBS MB/s | $CPU s | ${VS_AWK}x | ${VS_PLAIN}x | $SAME |
"
        # the workers' peak RSS (the chained stages' are their worker's)
        RSS=$(awk '/^  component/ { on = 1; next } on && /^  wall time/ { on = 0 }
            on && $2 == "worker" { printf "%s %s s %s %s, ", $1, $(NF - 3), $(NF - 1), $NF }' \
            "$dir.summary" | sed 's/, $//')
        RSS_MD="$RSS_MD| $name | ${RSS:-?} |
"
    done
done
echo "  peak RSS of the workers:"
printf '%s' "$RSS_MD" | sed 's/^| \(.*\) | \(.*\) |$/    \1: \2/'

if [ "${SS_BENCH_NO_DOC:-0}" != 1 ]; then
    DOC=docs/PERFORMANCE.md
    CPUNAME=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
    MEM=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
    {
        echo
        echo "### $(date -u '+%Y-%m-%d %H:%M UTC'), $ROWS rows, $WORKERS worker(s) per stage"
        echo
        echo "Machine: $(nproc) cores, $CPUNAME, $MEM, $(uname -sr); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
        echo "Commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
        echo
        echo "    SS_BENCH_WORKERS=$WORKERS bench/run.sh $ROWS"
        echo "    # each: $SS run examples/delayed-flights/{pipeline,pipeline-chained}.yml --data $DATA --workers $WORKERS --security MODE --no-progress"
        echo "    # awk: mawk -F, '<one-liner in bench/run.sh>' $DATA"
        echo
        echo "| configuration | wall time | throughput | CPU (user + sys, all processes) | CPU vs awk | CPU vs plain | same answer as awk |"
        echo "|---|---:|---:|---:|---:|---:|---|"
        echo "| awk one-liner | $AWK_WALL s | $(awk -v m="$MB" -v w="$AWK_WALL" 'BEGIN { printf "%.1f", m / w }') MB/s | $AWK_CPU s | 1.00x | | (reference; peak RSS $((AWK_RSS / 1024)) MB) |"
        printf '%s' "$ROWS_MD"
        echo
        echo "| configuration | workers: CPU time, peak RSS |"
        echo "|---|---|"
        printf '%s' "$RSS_MD"
    } >>"$DOC"
    echo "bench: appended to $DOC"
fi
