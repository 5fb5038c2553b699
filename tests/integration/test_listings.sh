#!/bin/bash
# The seed's listings run as printed (typos fixed, see docs/LISTINGS.md):
# 5.1 and 8.2 as single-process scripts; 8.3-8.7 and 8.8-8.10 as a
# pipeline of separate components wired by hand, like the seed's compose
# file, with the answer checked against awk.
source "$(dirname "$0")/lib.sh"
L=$ROOT/tests/lua/listings
cd "$T"

"$SS" lua "$L/listing-5.1.lua" > out51 2>&1
contains "listing 5.1 prints the adults' average (37.33)" out51 "Adult_people_average:[[:space:]]+37\.33"
contains "listing 5.1 completes" out51 "Process_complete!"

"$SS" gen flights --rows 20000 --seed 3 -o data.csv
reference data.csv > expected
"$SS" lua "$L/listing-8.2.lua" > out82 2> err82
check "listing 8.2 exits 0" test $? -eq 0
# its lines read "Delays for carrier XX > AVG average mins - N delayed flights"
awk '/^Delays/ { printf "Delays for carrier %s -> %.2f average mins - %d delayed flights\n", $4, $6, $10 }' out82 | sort > got82
same "listing 8.2 gives awk's answer" got82 expected
contains "listing 8.2 completes" out82 "^completed!"
check "listing 8.2 writes its time to output.log" test -s output.log

# 8.3 -> router -> 8.4 -> router -> 8.5 -> router -> 8.6 -> router -> 8.7
pipeline() { # $1: mapper, $2: filter, $3: reducer
    local d=$T/p-$1; mkdir -p "$d"; cp data.csv "$d/"; cd "$d"
    for i in 1 2 3 4; do
        bg "$SS" router --from "ipc://$d/r$i-in" --to "ipc://$d/r$i-out" --name "r$i"
    done
    sleep 0.3
    bg "$SS" worker "$L/$1" --from "ipc://$d/r1-out" --to "ipc://$d/r2-in" --name map-1
    bg "$SS" worker "$L/$2" --from "ipc://$d/r2-out" --to "ipc://$d/r3-in" --name filter-1
    bg "$SS" worker "$L/$3" --from "ipc://$d/r3-out" --to "ipc://$d/r4-in" --name reduce-1
    "$SS" sink "$L/listing-8.7.lua" --from "ipc://$d/r4-out" --name printer > out 2> err &
    local sink=$!
    _pids+=($sink)
    "$SS" lua --to "ipc://$d/r1-in" "$L/listing-8.3.lua" 2> src-err
    local src=$?
    wait_max 120 $sink; local snk=$?
    check "listing 8.3 (data stream, $1) exits 0" test $src -eq 0
    check "listing 8.7 (printer, $1) exits 0" test $snk -eq 0
    awk '/^Delays/ { printf "Delays for carrier %s -> %.2f average mins - %d delayed flights\n", $4, $6, $10 }' out | sort > got
    same "listings 8.3-8.7 with $1 give awk's answer" got "$T/expected"
    contains "the printer completes ($1)" out "^completed!"
    cd "$T"
}
pipeline listing-8.4.lua listing-8.5.lua listing-8.6.lua
pipeline listing-8.8.lua listing-8.9.lua listing-8.10.lua
finish
