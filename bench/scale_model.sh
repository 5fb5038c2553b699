#!/bin/bash
# bench/scale_model.sh - the measurements behind the scale-out model of
# docs/PERFORMANCE.md ("Scale-out model"), and the model fitted from them.
#
#   bench/scale_model.sh [DATA.csv]
#
# 1. Locally (ipc, `sstream run`), DelayedFlights (examples/delayed-flights/
#    pipeline.yml, the seed's topology) on DATA (default /work/perf/f2m.csv,
#    else a generated file of SS_SCALE_ROWS rows in the output folder), in
#    each mode of SS_SCALE_MODES: with 1 worker per stage at each batch size
#    of SS_SCALE_BATCHES (at least two sizes: what separates the per-row
#    from the per-batch cost), with every worker count of SS_SCALE_WORKERS
#    at the first batch size, and once on a 2,000-row file (the fixed
#    start-up cost of each process). Per run: each process's CPU (the run's
#    summary), rows, bytes and batches in and out (the run's --metrics
#    file, final samples), wall time, user + sys of the whole run
#    (time(1)), the load average before and after, and whether the answer
#    equals awk's.
# 2. Across three hosts made of network namespaces (tests/integration/
#    netns_lib.sh, as test_netns_hosts.sh; needs root, else skipped):
#    host-1 the source and the four routers, host-2 map-1, filter-1 and the
#    sink, host-3 reduce-1 and map-2; over TCP, in each mode of
#    SS_SCALE_NETNS_MODES (encrypted: CurveZMQ on every link), with each
#    map worker count of SS_SCALE_NETNS_MAPS, at the first batch size.
#    Each component's CPU from time(1); batches from the source's and the
#    routers' last log lines.
# 3. bench/scale_model.py fits the model from the local runs of 1 worker
#    and predicts the others (2 and 4 workers, the namespace runs) and N
#    hosts x C cores; it writes RUN/model.md and prints it.
#
# Environment (defaults): SS (bin/sstream), SS_SCALE_OUT (out/scale),
# SS_SCALE_MODES ("plain encrypted"), SS_SCALE_BATCHES ("64K 16K 256K"),
# SS_SCALE_WORKERS ("1 2 4"), SS_SCALE_NETNS_MODES ("plain encrypted"),
# SS_SCALE_NETNS_MAPS ("1 2"), SS_SCALE_NETNS=0 (skip part 2),
# SS_SCALE_REPEAT (1: runs of each configuration, alternating),
# SS_SCALE_ROWS (2000000, for a generated file), SS_SCALE_TIMEOUT (900 s
# per run). Everything it makes (runs, namespaces, processes) is under
# the run's folder or removed at exit; a configuration that fails or
# times out is recorded as such and left out of the fit.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
SS=${SS:-$ROOT/bin/sstream}
case $SS in /*) ;; *) SS=$ROOT/$SS ;; esac
OUTD=${SS_SCALE_OUT:-$ROOT/out/scale}
MODES=${SS_SCALE_MODES-plain encrypted}
BATCHES=${SS_SCALE_BATCHES:-64K 16K 256K}
WORKERS=${SS_SCALE_WORKERS:-1 2 4}
NETNS_MODES=${SS_SCALE_NETNS_MODES-plain encrypted}
NETNS_MAPS=${SS_SCALE_NETNS_MAPS:-1 2}
REPEAT=${SS_SCALE_REPEAT:-1}
TMO=${SS_SCALE_TIMEOUT:-900}
B0=${BATCHES%% *}
E=$ROOT/examples/delayed-flights
[ -x "$SS" ] || { echo "scale_model: no $SS (make all)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "scale_model: needs /usr/bin/time (Debian: time)" >&2; exit 2; }
mkdir -p "$OUTD"
RUN=$OUTD/run-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$RUN"

DATA=${1:-/work/perf/f2m.csv}
if [ ! -s "$DATA" ]; then
    [ $# -ge 1 ] && { echo "scale_model: no file $DATA" >&2; exit 2; }
    DATA=$OUTD/flights-${SS_SCALE_ROWS:-2000000}.csv
    if [ ! -s "$DATA" ]; then
        echo "scale_model: generating $DATA (once)"
        "$SS" gen flights --rows "${SS_SCALE_ROWS:-2000000}" --seed 1 -o "$DATA.tmp" &&
            mv "$DATA.tmp" "$DATA" || exit 1
    fi
fi
DATA=$(cd "$(dirname "$DATA")" && pwd)/$(basename "$DATA")
head -n 2001 "$DATA" > "$RUN/small.csv"
mawk -F, -f tests/reference/delayed_flights.awk "$DATA" > "$RUN/expected.txt"
mawk -F, -f tests/reference/delayed_flights.awk "$RUN/small.csv" > "$RUN/expected-small.txt"
{
    echo "data=$DATA"
    echo "rows=$(($(wc -l < "$DATA") - 1))"
    echo "bytes=$(stat -c %s "$DATA")"
    echo "commit=$(git rev-parse --short HEAD 2> /dev/null)$(git diff --quiet HEAD 2> /dev/null || echo +changes)"
    echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "nproc=$(nproc)"
    echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "batches=$BATCHES"
} > "$RUN/info"

# every process this script started and has not reaped yet; namespaces
PIDS=()
NETNS_UP=0
on_exit() {
    local p
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2> /dev/null; done
    [ "$NETNS_UP" = 1 ] && netns_down
    wait 2> /dev/null
}
trap on_exit EXIT
trap 'exit 130' INT TERM

load() { cut -d' ' -f1-3 /proc/loadavg; }

# local_run MODE WORKERS BATCH TAG [DATA EXPECTED]: one `sstream run`
local_run() {
    local mode=$1 w=$2 b=$3 tag=$4 data=${5:-$DATA} exp=${6:-$RUN/expected.txt}
    local d=$RUN/local-$mode-w$w-b$b-$tag rc same=no
    mkdir -p "$d"
    echo "scale_model: local $mode, $w worker(s)/stage, batch $b, $tag ($(load))"
    local l0
    l0=$(load)
    /usr/bin/time -f "%e %U %S" -o "$d/time" timeout -k 30 $((TMO + 60)) \
        "$SS" run "$E/pipeline.yml" --data "$data" --security "$mode" --workers "$w" \
        --batch-size "$b" --output-dir "$d/out" --name "scale-model-$$" \
        --metrics "$d/metrics.jsonl" --timeout "$TMO" --no-progress \
        > "$d/stdout" 2> "$d/summary" < /dev/null
    rc=$?
    diff -q "$exp" "$d/stdout" > /dev/null && same=yes
    {
        echo "where=local"; echo "mode=$mode"; echo "workers=$w"; echo "maps=$w"
        echo "batch=$b"; echo "tag=$tag"; echo "rc=$rc"; echo "same_as_awk=$same"
        echo "load_before=$l0"; echo "load_after=$(load)"
        echo "time=$(tail -1 "$d/time")"
    } > "$d/info"
    [ "$rc" -eq 0 ] && [ "$same" = yes ] || echo "scale_model: that run failed (status $rc, same as awk: $same): $d" >&2
    rm -rf "$d/out/keys"
}

for ((rep = 1; rep <= REPEAT; rep++)); do
    for mode in $MODES; do
        local_run "$mode" 1 "$B0" "small$rep" "$RUN/small.csv" "$RUN/expected-small.txt"
    done
    for b in $BATCHES; do
        for mode in $MODES; do local_run "$mode" 1 "$b" "r$rep"; done
    done
    for w in $WORKERS; do
        [ "$w" = 1 ] && continue
        for mode in $MODES; do local_run "$mode" "$w" "$B0" "r$rep"; done
    done
done

# ---- across three namespace hosts, over TCP ----
netns_part() {
    . "$ROOT/tests/integration/netns_lib.sh"
    local why
    why=$(netns_why_not) || { echo "scale_model: namespace runs skipped: $why"; return 0; }
    NET=10.213.9
    netns_up "ssm$$" "$NET" 3 || { echo "scale_model: cannot make the namespaces" >&2; return 1; }
    NETNS_UP=1
    netns_reach 2 1 && netns_reach 3 1 || { echo "scale_model: the namespace hosts do not reach each other" >&2; return 1; }
    "$SS" keygen "$RUN/keys" > /dev/null || return 1
    mkdir -m 700 "$RUN/keys-router" "$RUN/keys-node"
    cp "$RUN"/keys/curve-server.key "$RUN"/keys/curve-server.pub "$RUN"/keys/curve-client.pub "$RUN/keys-router/"
    cp "$RUN"/keys/data.key "$RUN"/keys/curve-client.key "$RUN"/keys/curve-client.pub \
        "$RUN"/keys/curve-server.pub "$RUN/keys-node/"
    local base=0 mode maps
    for ((rep = 1; rep <= REPEAT; rep++)); do
        for maps in $NETNS_MAPS; do
            for mode in $NETNS_MODES; do
                netns_run "$mode" "$maps" "$B0" "r$rep" "$base"
                base=$((base + 10))
            done
        done
    done
}

# netns_run MODE MAPS BATCH TAG PORTBASE
netns_run() {
    local mode=$1 maps=$2 b=$3 tag=$4 base=$5
    local d=$RUN/netns-$mode-m$maps-b$b-$tag k i n st rc=0 same=no
    local h1=$NET.1 runid nk=() rk=()
    mkdir -p "$d"
    echo "scale_model: namespace hosts, $mode, $maps map worker(s), batch $b, $tag ($(load))"
    runid=$(od -An -N8 -tx8 /dev/urandom | tr -d ' \n')
    if [ "$mode" != plain ]; then
        nk=(--security "$mode" --keys "$RUN/keys-node")
        rk=(--keys "$RUN/keys-router")
    fi
    front() { echo "tcp://$h1:$((5553 + base + 2 * $1))"; }
    back() { echo "tcp://$h1:$((5554 + base + 2 * $1))"; }
    declare -A pid=()
    # comp NAME HOST ENV... -- CMD...: one component, its CPU in NAME.time
    comp() {
        local name=$1 host=$2 env=()
        shift 2
        while [ "$1" != -- ]; do env+=("$1"); shift; done
        shift
        netns_on "$host" env "SS_RUN=$runid" "${env[@]}" /usr/bin/time -f "%e %U %S %M" \
            -o "$d/$name.time" timeout -k 10 "$TMO" "$@" > "$d/$name.out" 2> "$d/$name.log" < /dev/null &
        pid[$name]=$!
        PIDS+=($!)
    }
    for k in 1 2 3 4; do
        comp router-$k 1 -- "$SS" router --from "tcp://*:$((5553 + base + 2 * k))" \
            --to "tcp://*:$((5554 + base + 2 * k))" --name router-$k "${rk[@]}"
    done
    for ((i = 1; i <= maps; i++)); do
        comp map-$i $((i % 2 == 1 ? 2 : 3)) "FROM=$(back 1)" "TO=$(front 2)" -- \
            "$SS" worker "$E/map-csv-to-event.lua" --name map-$i --stage map --batch-size "$b" "${nk[@]}"
    done
    comp filter-1 2 "FROM=$(back 2)" "TO=$(front 3)" -- \
        "$SS" worker "$E/filter-event.lua" --name filter-1 --stage filter --batch-size "$b" "${nk[@]}"
    comp reduce-1 3 "FROM=$(back 3)" "TO=$(front 4)" -- \
        "$SS" worker "$E/reduce-events.lua" --name reduce-1 --stage reduce --batch-size "$b" "${nk[@]}"
    local fin=()
    [ "$mode" != plain ] && fin=(--finals reduce-1)
    comp sink 2 "FROM=$(back 4)" -- "$SS" sink "$E/print-results.lua" --name sink "${fin[@]}" "${nk[@]}"
    # every worker and the sink joined its router (bounded: 60 s)
    for ((n = 0; n < 600; n++)); do
        k=0
        for ((i = 1; i <= maps; i++)); do grep -qs "'map-$i' of stage map joined" "$d/router-1.log" || k=1; done
        grep -qs "'filter-1' of stage filter joined" "$d/router-2.log" || k=1
        grep -qs "'reduce-1' of stage reduce joined" "$d/router-3.log" || k=1
        grep -qs "'sink' of stage print-results joined" "$d/router-4.log" || k=1
        [ $k = 0 ] && break
        sleep 0.1
    done
    [ $k = 0 ] || { echo "scale_model: not every worker joined in 60 s: $d" >&2; rc=1; }
    local l0 t0 t1
    l0=$(load)
    t0=$(date +%s.%N)
    comp source 1 "TO=$(front 1)" "DATA_FILE=$DATA" -- \
        "$SS" source --format csv --header --parts 4 --batch-size "$b" "${nk[@]}"
    # the sink ends last; then every component, each bounded
    for n in sink source router-1 router-2 router-3 router-4 filter-1 reduce-1 $(for ((i = 1; i <= maps; i++)); do echo map-$i; done); do
        for ((k = 0; k < TMO * 10; k++)); do kill -0 "${pid[$n]}" 2> /dev/null || break; sleep 0.1; done
        kill -0 "${pid[$n]}" 2> /dev/null && { echo "scale_model: $n still runs: killed" >&2; kill -TERM "${pid[$n]}"; rc=124; }
        wait "${pid[$n]}"
        st=$?
        [ $st -ne 0 ] && [ $rc = 0 ] && rc=$st
        [ "$n" = sink ] && t1=$(date +%s.%N)
    done
    diff -q "$RUN/expected.txt" "$d/sink.out" > /dev/null && same=yes
    {
        echo "where=netns"; echo "mode=$mode"; echo "workers=1"; echo "maps=$maps"
        echo "batch=$b"; echo "tag=$tag"; echo "rc=$rc"; echo "same_as_awk=$same"
        echo "load_before=$l0"; echo "load_after=$(load)"
        echo "wall=$(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }")"
    } > "$d/info"
    [ "$rc" -eq 0 ] && [ "$same" = yes ] || echo "scale_model: that run failed (status $rc, same as awk: $same): $d" >&2
    PIDS=()
}

if [ "${SS_SCALE_NETNS:-1}" != 0 ] && [ -n "$NETNS_MODES" ]; then
    netns_part
    [ "$NETNS_UP" = 1 ] && netns_down
    NETNS_UP=0
fi
rm -rf "$RUN/keys" "$RUN/keys-router" "$RUN/keys-node"

python3 bench/scale_model.py "$RUN" | tee "$RUN/model.md"
echo "scale_model: runs and model in $RUN"
