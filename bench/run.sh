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
# the ratios to plain and to awk, the end-to-end latency per batch at full
# speed (p50, p99 and max, from the batch's first row read by the source
# to its output reaching the sink: SS_LATENCY_DIR, src/node/ss_latlog.h),
# the same-answer check
# against awk, and the CPU time and peak RSS of every process (workers first). Then appends the figures with the
# command to docs/PERFORMANCE.md. Each configuration runs on each Lua
# engine, one after the other: Lua 5.4 (bin/sstream), and when
# bin/sstream-luajit is built (`make LUA=luajit`), LuaJIT as the stages
# run it (interpreter only: its JIT is off in every metered stage and in
# every enclave) and LuaJIT with the JIT on in the stages (SS_LUAJIT=on,
# a measuring switch; not in enclave mode, where no JIT can run); the
# column cpu/5.4 is the CPU time against the same configuration on Lua 5.4.
#
#   bench/run.sh [ROWS]   or   make bench BENCH_ROWS=N
#
# Environment: SS_BENCH_WORKERS=N workers per stage (default 1);
# SS_BENCH_MODES="plain enclave" (default: plain encrypted enclave
# encrypted-sealed enclave-sealed; MODE-sealed adds --links sealed);
# SS_BENCH_CHAIN="0 1" (0: unchained, 1: chained; default both);
# SS_BENCH_ENGINES="5.4 luajit luajit-jit" (default: those built);
# SSJ=the LuaJIT binary (default: $SS-luajit);
# SS_BENCH_NO_DOC=1: do not touch docs/PERFORMANCE.md; SS_BENCH_OUT=DIR:
# the data and the runs' folders (default out/bench).
#
# Then the latency at a fixed input rate, per mode (and chained or not,
# Lua 5.4): the same pipeline with `--rate R` on the first
# SS_BENCH_RATE_ROWS rows of the file (default 2000000, at most ROWS),
# R = SS_BENCH_RATE rows/s, by default SS_BENCH_RATE_SHARE percent
# (default 50) of the rows per second the plain unchained run of the
# matrix reached; SS_BENCH_RATE=off skips it. For each: the rate asked,
# the rate the source read at (its rows over the time from its first row
# to its last), latency p50 / p99 / max, of which the time a batch's first
# row waited in the source for the batch to leave (p50 / p99), the
# same-answer check against awk on those rows.
#
# Opt-in, what checkpoints cost: SS_BENCH_CHECKPOINTS="0 1000 200 50"
# (intervals in ms, 0: off) runs DelayedFlights (pipeline.yml, Lua 5.4) on
# the same file at each interval, alternating (one run of each interval,
# then again), SS_BENCH_CKPT_REPEAT times (default 3), in each mode of
# SS_BENCH_CKPT_MODES (default plain), with --restarts 1 (so the sink's
# output is spooled and committed at checkpoints, as a run that uses its
# checkpoints has it; no component is killed), and reports per interval the
# median wall time, rows per second, the median CPU time from the run's
# own accounting (the sum of the summary's cpu column: every component,
# enclaves included) and both against off. SS_BENCH_MODES="" skips the
# matrix (the awk reference still runs):
#   SS_BENCH_MODES= SS_BENCH_CHECKPOINTS="0 1000 200 50" bench/run.sh 2000000
set -eu
cd "$(dirname "$0")/.."
ROWS=${1:-28000000}
SS=${SS:-bin/sstream}
OUTD=${SS_BENCH_OUT:-out/bench}
DATA=$OUTD/flights-$ROWS.csv
RUN=$OUTD/run-$(date +%Y%m%d-%H%M%S)
WORKERS=${SS_BENCH_WORKERS:-1}
MODES=${SS_BENCH_MODES-plain encrypted enclave encrypted-sealed enclave-sealed}
# MODE-sealed: --security MODE --links sealed (batches sealed end to end,
# no CurveZMQ on the data links; docs/SECURITY.md "Double encryption")
mode_args() { case $1 in *-sealed) echo "--security ${1%-sealed} --links sealed" ;; *) echo "--security $1" ;; esac; }
mode_name() { case $1 in *-sealed) echo "${1%-sealed}, sealed links" ;; *) echo "$1" ;; esac; }
CKPTS=${SS_BENCH_CHECKPOINTS:-}
CKPT_REPEAT=${SS_BENCH_CKPT_REPEAT:-3}
CKPT_MODES=${SS_BENCH_CKPT_MODES:-plain}
CHAINS=${SS_BENCH_CHAIN:-0 1}
SSJ=${SSJ:-$SS-luajit}
ENGINES_BUILT="5.4"
[ -x "$SSJ" ] && ENGINES_BUILT="5.4 luajit luajit-jit"
ENGINES=${SS_BENCH_ENGINES:-$ENGINES_BUILT}
for engine in $ENGINES; do
    case $engine in
        5.4) ;;
        luajit|luajit-jit) [ -x "$SSJ" ] || {
            echo "bench: engine '$engine' needs $SSJ (make LUA=luajit)" >&2; exit 2; } ;;
        *) echo "bench: unknown engine '$engine' (5.4, luajit, luajit-jit)" >&2
           exit 2 ;;
    esac
done
mkdir -p "$OUTD" "$RUN"

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

# timed DIR CMD...: runs CMD (stdout DIR.stdout, stderr DIR.summary);
# sets WALL and CPU (seconds, user + system of every process it started).
# CPU from a cpuacct cgroup of its own when this user may make one: it
# counts every descendant, also an enclave whose spawner was stopped
# before it reaped it (rusage misses those); else from rusage (time(1)).
CPU_HOW="rusage of the waited-for processes (time(1))"
CGROOT=/sys/fs/cgroup/cpuacct
timed() {
    local dir=$1 cg="" rc=0
    shift
    if [ -w "$CGROOT" ] && mkdir "$CGROOT/ss-bench-$$-${dir##*/}" 2>/dev/null; then
        cg="$CGROOT/ss-bench-$$-${dir##*/}"
        CPU_HOW="a cpuacct cgroup of the run (every descendant)"
    fi
    mkdir -p "$dir.lat" && chmod 1777 "$dir.lat"
    ( [ -z "$cg" ] || echo "$BASHPID" >"$cg/cgroup.procs"
      export SS_LATENCY_DIR=$dir.lat
      exec /usr/bin/time -f '%e %U %S' -o "$dir.time" "$@" ) \
        >"$dir.stdout" 2>"$dir.summary" || rc=$?
    # latency per batch: the batch's first row read by the source ($4 of
    # source.lat; $3, when it left, in a log without it) -> the last
    # piece of its lineage at the sink
    LAT=$(awk 'FNR == NR { t[$1 " " $2] = ($4 != "" ? $4 : $3); next }
               ($1 " " $2) in t && $3 > last[$1 " " $2] { last[$1 " " $2] = $3 }
               END { for (k in last) printf "%.3f\n", (last[k] - t[k]) / 1e6 }' \
               "$dir.lat/source.lat" "$dir.lat/sink.lat" 2>/dev/null | sort -n |
          awk '{ v[NR] = $1 }
               END { if (!NR) { printf "-"; exit }
                     a = int(NR * 0.50 + 0.5); if (a < 1) a = 1
                     b = int(NR * 0.99 + 0.5); if (b < 1) b = 1
                     printf "%.0f / %.0f / %.0f ms", v[a], v[b], v[NR] }')
    # of which in the source: a batch's first row read -> the batch sent
    SRC_WAIT=$(awk '$4 != "" && $4 > 0 { printf "%.3f\n", ($3 - $4) / 1e6 }' \
                   "$dir.lat/source.lat" 2>/dev/null | sort -n |
               awk '{ v[NR] = $1 }
                    END { if (!NR) { printf "-"; exit }
                          a = int(NR * 0.50 + 0.5); if (a < 1) a = 1
                          b = int(NR * 0.99 + 0.5); if (b < 1) b = 1
                          printf "%.0f / %.0f ms", v[a], v[b] }')
    # the rate the source read at: its rows over first row to last batch
    SRC_RPS=$(awk '$4 != "" && $4 > 0 { if (!lo || $4 < lo) lo = $4 }
                   $3 > hi { hi = $3 }
                   END { printf "%.0f", (hi > lo && lo ? ROWS / ((hi - lo) / 1e9) : 0) }' \
              ROWS="${TIMED_ROWS:-0}" "$dir.lat/source.lat" 2>/dev/null || echo 0)
    read -r WALL U S <"$dir.time" || true
    CPU=$(awk -v u="${U:-0}" -v s="${S:-0}" 'BEGIN { printf "%.2f", u + s }')
    if [ -n "$cg" ]; then
        sleep 0.2 # an enclave still on its way out
        CPU=$(awk '{ printf "%.2f", $1 / 1e9 }' "$cg/cpuacct.usage")
        rmdir "$cg" 2>/dev/null || true
    fi
    return $rc
}

ROWS_MD=""   # one table row per configuration
PLAIN_RPS="" # rows/s of the plain unchained run on Lua 5.4
RSS_MD=""    # one table row per worker process
declare -A PLAIN_CPU # by engine: plain, unchained
BASE_CPU=""           # the configuration's CPU on Lua 5.4
echo "bench: DelayedFlights, $ROWS rows ($MB MB), $WORKERS worker(s) per stage; Lua engines: $ENGINES"
printf '  %-34s %9s %9s %9s %8s %8s %8s  %-21s %s\n' config wall MB/s cpu cpu/awk \
    cpu/plain cpu/5.4 "latency p50/p99/max" "same answer"
printf '  %-34s %8ss %9s %8ss %8s %8s %8s  %s\n' awk "$AWK_WALL" \
    "$(awk -v m="$MB" -v w="$AWK_WALL" 'BEGIN { printf "%.1f", m / w }')" \
    "$AWK_CPU" 1.00 - - "-                 (reference, peak RSS $((AWK_RSS / 1024)) MB)"
for chained in $CHAINS; do
    PIPE=pipeline.yml
    [ "$chained" = 1 ] && PIPE=pipeline-chained.yml
    for mode in $MODES; do
      BASE_CPU=""
      for engine in $ENGINES; do
        # no JIT in an enclave (SGX1: no executable pages after start;
        # the sandbox's seccomp filter kills a process that asks for one)
        [ "$engine" = luajit-jit ] && [ "${mode%-sealed}" = enclave ] && continue
        # the links' cost is the same on every engine: Lua 5.4 only
        [ "$engine" != 5.4 ] && [ "$mode" != "${mode%-sealed}" ] && continue
        name=$(mode_name "$mode")
        [ "$chained" = 1 ] && name="$name, chained"
        BIN=$SS JIT=""
        case $engine in
            5.4) ;;
            luajit) BIN=$SSJ; name="$name, LuaJIT" ;;
            luajit-jit) BIN=$SSJ JIT=on; name="$name, LuaJIT, JIT on" ;;
        esac
        dir=$RUN/$mode-$chained-$engine
        CMD="$BIN run examples/delayed-flights/$PIPE --data $DATA --workers $WORKERS $(mode_args "$mode") --no-progress --output-dir $dir"
        mkdir -p "$dir"
        rc=0
        if [ -n "$JIT" ]; then SS_LUAJIT=on timed "$dir" $CMD || rc=$?
        else timed "$dir" $CMD || rc=$?; fi
        grep '^Delays for carrier' "$dir.stdout" | sort >"$dir.txt" || true
        if [ "$rc" != 0 ]; then
            SAME="FAILED (exit $rc, see $dir.summary)"
        elif cmp -s "$dir.txt" "$RUN/awk.txt" && [ -s "$RUN/awk.txt" ]; then
            SAME="yes ($(wc -l <"$RUN/awk.txt") carriers)"
        else
            SAME="NO: see $dir.txt and $RUN/awk.txt"
        fi
        if [ "$mode" = plain ] && [ "$chained" = 0 ]; then
            PLAIN_CPU[$engine]=$CPU
            [ "$engine" = 5.4 ] && [ "$rc" = 0 ] &&
                PLAIN_RPS=$(awk -v r="$ROWS" -v w="$WALL" 'BEGIN { printf "%.0f", (w > 0 ? r / w : 0) }')
        fi
        [ "$engine" = 5.4 ] && BASE_CPU=$CPU
        MBS=$(awk -v m="$MB" -v w="$WALL" 'BEGIN { printf "%.1f", (w > 0 ? m / w : 0) }')
        VS_AWK=$(awk -v c="$CPU" -v a="$AWK_CPU" 'BEGIN { printf "%.2f", (a > 0 ? c / a : 0) }')
        VS_PLAIN=$(awk -v c="$CPU" -v p="${PLAIN_CPU[$engine]:-}" 'BEGIN { if (p > 0) printf "%.2fx", c / p; else printf "-" }')
        VS_54=$(awk -v c="$CPU" -v p="$BASE_CPU" 'BEGIN { if (p > 0) printf "%.2fx", c / p; else printf "-" }')
        printf '  %-34s %8ss %9s %8ss %8s %8s %8s  %-21s %s\n' "$name" "$WALL" \
            "$MBS" "$CPU" "$VS_AWK" "$VS_PLAIN" "$VS_54" "$LAT" "$SAME"
        ROWS_MD="$ROWS_MD| $name | $WALL s | $MBS MB/s | $CPU s | ${VS_AWK}x | $VS_PLAIN | $VS_54 | $LAT | $SAME |
"
        # the workers' peak RSS (the chained stages' are their worker's)
        # the workers first, then every other process (source, routers,
        # sink): "map-1 22.3 s 12.4 MB, ...; source 1.9 s 18.2 MB, ..."
        RSS=$(awk '/^  component/ { on = 1; next } on && /^  wall time/ { on = 0 }
            on && NF >= 4 && $NF == "MB" {
                one = sprintf("%s %s s %s %s", $1, $(NF - 3), $(NF - 1), $NF)
                if ($2 == "worker") w = w (w == "" ? "" : ", ") one
                else o = o (o == "" ? "" : ", ") one
            }
            END { printf "%s", w; if (o != "") printf "; %s", o }' "$dir.summary")
        RSS_MD="$RSS_MD| $name | ${RSS:-?} |
"
      done
    done
done
echo "  CPU: $CPU_HOW"
echo "  CPU time and peak RSS of every process, the workers first (an enclave's are not in its worker's):"
printf '%s' "$RSS_MD" | sed 's/^| \(.*\) | \(.*\) |$/    \1: \2/'

# ---- latency at a fixed input rate (SS_BENCH_RATE) ---------------------
RATE=${SS_BENCH_RATE:-}
RATE_SHARE=${SS_BENCH_RATE_SHARE:-50}
RATE_ROWS=${SS_BENCH_RATE_ROWS:-2000000}
[ "$RATE_ROWS" -gt "$ROWS" ] && RATE_ROWS=$ROWS
RATE_MD=""
if [ "$RATE" != off ] && [ -n "$MODES" ]; then
    if [ -z "$RATE" ] && [ -n "$PLAIN_RPS" ] && [ "$PLAIN_RPS" -gt 0 ]; then
        RATE=$(awk -v r="$PLAIN_RPS" -v s="$RATE_SHARE" 'BEGIN { printf "%.0f", r * s / 100 }')
        RATE_HOW="$RATE_SHARE % of the plain run's $PLAIN_RPS rows/s"
    else
        RATE_HOW="SS_BENCH_RATE"
    fi
fi
if [ "$RATE" != off ] && [ -n "$RATE" ] && [ -n "$MODES" ]; then
    RDATA=$DATA
    if [ "$RATE_ROWS" -lt "$ROWS" ]; then
        RDATA=$OUTD/flights-$ROWS-first$RATE_ROWS.csv
        [ -s "$RDATA" ] || { head -n $((RATE_ROWS + 1)) "$DATA" >"$RDATA.tmp" && mv "$RDATA.tmp" "$RDATA"; }
    fi
    mawk -F, "$AWK" "$RDATA" | sort >"$RUN/awk-rate.txt"
    echo "bench: latency at a fixed rate: $RATE rows/s ($RATE_HOW), $RATE_ROWS rows, Lua 5.4"
    printf '  %-24s %10s %12s %9s  %-21s %-16s %s\n' config rate "source read" wall "latency p50/p99/max" "in source p50/p99" "same answer"
    for chained in $CHAINS; do
        PIPE=pipeline.yml
        [ "$chained" = 1 ] && PIPE=pipeline-chained.yml
        for mode in $MODES; do
            name=$(mode_name "$mode")
            [ "$chained" = 1 ] && name="$name, chained"
            dir=$RUN/rate-$mode-$chained
            mkdir -p "$dir"
            rc=0
            TIMED_ROWS=$RATE_ROWS timed "$dir" "$SS" run examples/delayed-flights/$PIPE \
                --data "$RDATA" --workers "$WORKERS" $(mode_args "$mode") \
                --rate "$RATE" --no-progress --output-dir "$dir" || rc=$?
            grep '^Delays for carrier' "$dir.stdout" | sort >"$dir.txt" || true
            if [ "$rc" != 0 ]; then
                SAME="FAILED (exit $rc, see $dir.summary)"
            elif cmp -s "$dir.txt" "$RUN/awk-rate.txt" && [ -s "$RUN/awk-rate.txt" ]; then
                SAME="yes"
            else
                SAME="NO: see $dir.txt and $RUN/awk-rate.txt"
            fi
            printf '  %-24s %10s %12s %8ss  %-21s %-16s %s\n' "$name" "$RATE/s" "$SRC_RPS/s" \
                "$WALL" "$LAT" "$SRC_WAIT" "$SAME"
            RATE_MD="$RATE_MD| $name | $RATE rows/s | $SRC_RPS rows/s | $WALL s | $LAT | $SRC_WAIT | $SAME |
"
        done
    done
fi

# ---- opt-in: what checkpoints cost (SS_BENCH_CHECKPOINTS) --------------
# median N: the median of the numbers on stdin (the lower middle one)
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
CKPT_MD=""
if [ -n "$CKPTS" ]; then
    echo "bench: what checkpoints cost, DelayedFlights, $ROWS rows, intervals (ms, 0 off): $CKPTS; $CKPT_REPEAT runs each, alternating"
    printf '  %-8s %-9s %9s %12s %8s %9s %8s %12s %s
' mode interval wall rows/s "vs off" cpu "vs off" checkpoints "same answer"
    for mode in $CKPT_MODES; do
        declare -A CW=() CC=() CN=() CS=()
        for ((r = 1; r <= CKPT_REPEAT; r++)); do
            for iv in $CKPTS; do
                dir=$RUN/ckpt-$mode-$iv-$r
                mkdir -p "$dir"
                rc=0
                timed "$dir" "$SS" run examples/delayed-flights/pipeline.yml \
                    --data "$DATA" --workers "$WORKERS" --security "$mode" \
                    --checkpoint-interval "$iv" --restarts 1 --no-progress \
                    --output-dir "$dir" || rc=$?
                # CPU from the run's own accounting: its summary's cpu column
                c=$(awk '/^  component/ { on = 1; next } on && /^  wall time/ { on = 0 }
                    on { s += $(NF - 3) } END { printf "%.2f", s }' "$dir.summary")
                w=$(sed -n 's/.*wall time \([0-9.]*\) s.*/\1/p' "$dir.summary")
                n=$(sed -n 's/.*checkpoints: \([0-9]*\) complete.*/\1/p' "$dir.summary")
                grep '^Delays for carrier' "$dir.stdout" | sort >"$dir.txt" || true
                same=yes
                [ "$rc" = 0 ] && cmp -s "$dir.txt" "$RUN/awk.txt" || same="NO ($dir)"
                CW[$iv]="${CW[$iv]:-} ${w:-0}" CC[$iv]="${CC[$iv]:-} $c"
                CN[$iv]="${CN[$iv]:-} ${n:-0}"
                [ "$same" = yes ] || CS[$iv]=$same
            done
        done
        w0="" c0=""
        for iv in $CKPTS; do
            w=$(printf '%s\n' ${CW[$iv]} | median)
            c=$(printf '%s\n' ${CC[$iv]} | median)
            n=$(printf '%s\n' ${CN[$iv]} | median)
            [ -z "$w0" ] && w0=$w c0=$c
            label="$iv ms"
            [ "$iv" = 0 ] && label=off
            rps=$(awk -v r="$ROWS" -v w="$w" 'BEGIN { printf "%.0f", (w > 0 ? r / w : 0) }')
            dw=$(awk -v a="$w" -v b="$w0" 'BEGIN { printf "%+.0f %%", (b > 0 ? (a / b - 1) * 100 : 0) }')
            dc=$(awk -v a="$c" -v b="$c0" 'BEGIN { printf "%+.0f %%", (b > 0 ? (a / b - 1) * 100 : 0) }')
            printf '  %-8s %-9s %8ss %12s %8s %8ss %8s %12s %s\n' "$mode" "$label" \
                "$w" "$rps" "$dw" "$c" "$dc" "$n" "${CS[$iv]:-yes}"
            CKPT_MD="$CKPT_MD| $mode | $label | $w s ($(echo ${CW[$iv]} | tr ' ' '/')) | $rps | $dw | $c s ($(echo ${CC[$iv]} | tr ' ' '/')) | $dc | $n | ${CS[$iv]:-yes} |
"
        done
        unset CW CC CN CS
    done
fi

if [ "${SS_BENCH_NO_DOC:-0}" != 1 ] && [ -n "$CKPT_MD" ]; then
    {
        echo
        echo "### Checkpoint cost, $(date -u '+%Y-%m-%d %H:%M UTC'), $ROWS rows"
        echo
        echo "Machine: $(nproc) cores, load average at the end: $(cut -d' ' -f1-3 /proc/loadavg). Commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
        echo
        echo "    SS_BENCH_MODES=\"$MODES\" SS_BENCH_CHECKPOINTS=\"$CKPTS\" SS_BENCH_CKPT_REPEAT=$CKPT_REPEAT SS_BENCH_CKPT_MODES=\"$CKPT_MODES\" bench/run.sh $ROWS"
        echo
        echo "| mode | interval | median wall (each run) | rows/s | wall vs off | median CPU (each run) | CPU vs off | checkpoints | same answer as awk |"
        echo "|---|---|---:|---:|---:|---:|---:|---:|---|"
        printf '%s' "$CKPT_MD"
    } >>docs/PERFORMANCE.md
    echo "bench: appended the checkpoint cost to docs/PERFORMANCE.md"
fi

if [ "${SS_BENCH_NO_DOC:-0}" != 1 ] && [ -n "$ROWS_MD" ]; then
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
        echo "    SS_BENCH_WORKERS=$WORKERS SS_BENCH_ENGINES=\"$ENGINES\" bench/run.sh $ROWS"
        echo "    # each: $SS (LuaJIT: $SSJ, JIT on: SS_LUAJIT=on) run examples/delayed-flights/{pipeline,pipeline-chained}.yml --data $DATA --workers $WORKERS --security MODE [--links sealed] --no-progress"
        echo "    # awk: mawk -F, '<one-liner in bench/run.sh>' $DATA"
        echo
        echo "| configuration | wall time | throughput | CPU (user + sys, all processes) | CPU vs awk | CPU vs plain (same engine) | CPU vs Lua 5.4 (same configuration) | latency per batch p50 / p99 / max | same answer as awk |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
        echo "| awk one-liner | $AWK_WALL s | $(awk -v m="$MB" -v w="$AWK_WALL" 'BEGIN { printf "%.1f", m / w }') MB/s | $AWK_CPU s | 1.00x | | | | (reference; peak RSS $((AWK_RSS / 1024)) MB) |"
        printf '%s' "$ROWS_MD"
        echo
        echo "CPU: $CPU_HOW."
        echo
        echo "| configuration | every process: CPU time, peak RSS; the workers first, then source, routers and sink (an enclave's are not in its worker's) |"
        echo "|---|---|"
        printf '%s' "$RSS_MD"
        if [ -n "$RATE_MD" ]; then
            echo
            echo "Latency at a fixed input rate ($RATE_HOW; the first $RATE_ROWS rows, Lua 5.4, \`--rate $RATE\`):"
            echo
            echo "| configuration | rate asked | source read at | wall time | latency per batch p50 / p99 / max (first row read -> sink) | of which in the source (first row read -> batch sent) p50 / p99 | same answer as awk |"
            echo "|---|---:|---:|---:|---:|---:|---|"
            printf '%s' "$RATE_MD"
        fi
    } >>"$DOC"
    echo "bench: appended to $DOC"
fi
