#!/bin/bash
# What keyed state costs in memory: a partitioned reduce keeps one
# instance of its Rx chain per key group it received (docs/LUA.md, "Keyed
# state"). DelayedFlights' keyed pipeline with its reduce on ONE worker,
# partitioned by
#   carrier: the airline query as shipped (about 20 carriers, 20 groups);
#   many:    carrier..flight number (tens of thousands of keys: all 4096
#            key groups on the one worker, the most a worker can hold).
# Prints the reduce worker's peak RSS and its number of results (one per
# key group). Compare with a build before keyed state (SS=...): it emits
# one result and holds one instance. A benchmark, not a test.
#   bench/keyed_state_mem.sh [ROWS]
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SS=${SS:-$ROOT/bin/sstream}
ROWS=${1:-200000}
T=$(mktemp -d "${TMPDIR:-/tmp}/sskeymem.XXXXXX")
trap 'rm -rf "$T"' EXIT
E=$ROOT/examples/delayed-flights
cp "$E"/*.lua "$T"/
cd "$T" || exit 1
"$SS" gen flights --rows "$ROWS" --seed 3 -o f.csv > /dev/null 2>&1
sed 's/event.uniquecarrier = array\[9\]/event.uniquecarrier = array[9] .. array[10]/' \
    map-csv-to-event.lua > map-many.lua
for v in carrier many; do
    m=map-csv-to-event.lua
    [ "$v" = many ] && m=map-many.lua
    sed -e "s/map-csv-to-event.lua/$m/" -e 's/workers: 4/workers: 1/' \
        "$E/pipeline-keyed.yml" > "p-$v.yml"
    timeout 300 "$SS" run "p-$v.yml" --data f.csv --output-dir "o-$v" \
        --no-progress > "res-$v" 2> "err-$v"
    rc=$?
    line=$(grep -E '^  reduce-1 ' "err-$v")
    # columns: name role in out passed dropped rejected cpu "s" rss "MB"
    printf '%-8s rc=%d reduce-1: results %s, peak rss %s MB, keys printed %s\n' \
        "$v" "$rc" "$(echo "$line" | awk '{print $4}')" \
        "$(echo "$line" | awk '{print $(NF-1)}')" "$(wc -l < "res-$v")"
done
