#!/bin/bash
# Instruction counts per component of DelayedFlights (seed topology, one
# worker per stage, plain mode), every component under callgrind, started
# by hand as `sstream run` would start them (valgrind cannot follow its
# exec of /proc/self/exe). Counts do not depend on the machine's load.
#
#   bench/callgrind/pipeline.sh BIN FILE.csv OUTDIR [chained|chain]
#
# "chained" runs map, filter and reduce as one stage script
# (bench/callgrind/chained.lua: the three stages' functions in one Rx
# chain), i.e. what chaining the stages into one process can save at most.
# "chain" runs the three scripts unchanged in one worker with operator
# chaining (`sstream worker map.lua --chain filter=... --chain reduce=...`,
# what `chain: true` starts).
# Prints one line per component: name, instructions (Ir).
set -u
bin=$(realpath "$1") data=$(realpath "$2") out=$3 mode=${4:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
ex=$root/examples/delayed-flights
mkdir -p "$out" && out=$(realpath "$out")
ipc=$(mktemp -d "${TMPDIR:-/tmp}/sscg.XXXXXX")
trap 'rm -rf "$ipc"' EXIT
vg() { local name=$1; shift; valgrind --tool=callgrind \
    --callgrind-out-file="$out/cg.$name" "$@" 2> "$out/$name.err"; }
if [ "$mode" = chained ]; then
    stages=("all:$root/bench/callgrind/chained.lua")
else
    stages=("map:$ex/map-csv-to-event.lua" "filter:$ex/filter-event.lua"
            "reduce:$ex/reduce-events.lua")
fi
chainopts=()
if [ "$mode" = chain ]; then
    stages=("map:$ex/map-csv-to-event.lua")
    chainopts=(--chain "filter=$ex/filter-event.lua"
               --chain "reduce=$ex/reduce-events.lua")
fi
n=${#stages[@]} pids=()
for ((i = 1; i <= n + 1; i++)); do
    vg "router-$i" "$bin" router --from "ipc://$ipc/r$i-in" \
        --to "ipc://$ipc/r$i-out" --producers 1 --name "router-$i" &
    pids+=($!)
done
for ((i = 1; i <= n; i++)); do
    st=${stages[i - 1]%%:*} script=${stages[i - 1]#*:}
    vg "$st" "$bin" worker "$script" --from "ipc://$ipc/r$i-out" \
        --to "ipc://$ipc/r$((i + 1))-in" --name "$st-1" --stage "$st" \
        --security plain "${chainopts[@]}" &
    pids+=($!)
done
vg sink "$bin" sink "$ex/print-results.lua" --from "ipc://$ipc/r$((n + 1))-out" \
    --name sink > "$out/answer" &
sink=$!
vg source "$bin" source --to "ipc://$ipc/r1-in" --file "$data" --parts 4 \
    --format csv --header --batch-size 65536 --name source
for ((t = 0; t < 1200; t++)); do kill -0 $sink 2> /dev/null || break; sleep 1; done
kill $sink 2> /dev/null
for p in "${pids[@]}"; do
    for ((t = 0; t < 120; t++)); do kill -0 "$p" 2> /dev/null || break; sleep 1; done
    kill "$p" 2> /dev/null
done
wait
for f in "$out"/cg.*; do
    printf '%-10s %s\n' "${f##*/cg.}" "$(sed -n 's/^summary: //p' "$f")"
done
