#!/bin/bash
# Script limits and enclave output hygiene, end to end (issue 8, item 9):
#  - a stage whose function never ends on some rows (`while true do end`)
#    used to hang the run until --timeout; now each such event runs out of
#    max_instructions and is rejected with a clear reason, the run goes on
#    and exits 0 with the other rows' answer, in plain and enclave modes;
#  - a completion, or a script's main chunk, that never ends fails the run
#    naming the stage, in both modes, well before --timeout;
#  - print() of 5 KB in an enclaved stage used to crash the enclave
#    (SIGSEGV): the run now gives the right answer, the line is bounded.
source "$(dirname "$0")/lib.sh"
[ -n "${KEEP:-}" ] && trap - EXIT && echo "kept $T"
EX=$ROOT/examples/delayed-flights
"$SS" gen flights --rows 3000 --seed 21 -o "$T/f.csv" 2> /dev/null
head -1 "$T/f.csv" > "$T/h"
tail -n +2 "$T/f.csv" > "$T/rows"
{ cat "$T/h" "$T/rows"; } > "$T/good.csv"
reference "$T/good.csv" > "$T/expected"
# the same rows plus 3 rows whose carrier makes the map loop forever
{ cat "$T/h"; head -1000 "$T/rows"
  for i in 1 2 3; do
      sed -n "${i}p" "$T/rows" | awk -F, -v OFS=, '{ $11 = "LOOP-ROW" } 1'
  done
  tail -n +1001 "$T/rows"; } > "$T/loop.csv"

mkdir -p "$T/p"
cp "$EX"/*.lua "$T/p/"
cat > "$T/p/map.lua" <<'EOF'
local ZmqRx = require 'zmq-rx'
local csv = require 'csv'
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM') or 'tcp://localhost:5555')
  :map(function(value)
    local a = csv.parse(value)
    if a[11] == 'LOOP-ROW' then while true do end end
    if a[11] == 'PRINT-ROW' then print(string.rep('p', 5000)) end
    return { uniquecarrier = a[9], arrdelay = a[15] }
  end)
  :subscribeToSocket(os.getenv('TO') or 'tcp://localhost:5556')
EOF
{ cat "$EX/reduce-events.lua" | sed '$d'
  echo "  :map(function(r) while true do end end)"
  tail -1 "$EX/reduce-events.lua"; } > "$T/p/reduce-loop.lua"
{ echo "while true do end"; cat "$EX/map-csv-to-event.lua"; } > "$T/p/map-stuck.lua"
sed 's/map-csv-to-event.lua/map.lua/' "$EX/pipeline.yml" > "$T/p/loop.yml"
sed 's/map-csv-to-event.lua/map-stuck.lua/' "$EX/pipeline.yml" > "$T/p/stuck.yml"
sed 's/reduce-events.lua/reduce-loop.lua/' "$EX/pipeline.yml" > "$T/p/done.yml"

for mode in plain enclave; do
    # --- events that never end -------------------------------------------
    o=$T/loop-$mode
    start=$(date +%s)
    "$SS" run "$T/p/loop.yml" --data "$T/loop.csv" --security $mode \
        --max-instructions 2000000 --timeout 240 --output-dir "$o" \
        --no-progress > "$o.out" 2> "$o.err"
    rc=$? took=$(( $(date +%s) - start ))
    check "$mode, endless events: the run goes on and exits 0 ($rc, ${took}s)" \
        test $rc -eq 0
    grep '^Delays' "$o.out" > "$o.d"
    same "$mode, endless events: the other rows give awk's answer" "$o.d" "$T/expected"
    contains "$mode, endless events: 3 rejected and counted" "$o.err" \
        "rows in = rows out \+ rows filtered \+ rows rejected: 3003 = .* \+ 3: balanced"
    if [ $mode = plain ]; then
        contains "plain, endless events: the reason names the limit" \
            "$o/rejects.jsonl" "stage 'map': an event ran past max_instructions \(2000000 Lua instructions\): stopped"
    else
        contains "enclave, endless events: reasons sealed for the owner" \
            "$o/rejects.jsonl" '"stage":"map".*"sealed":"[A-Za-z0-9+/=]{40,}"'
    fi

    # --- a completion that never ends ------------------------------------
    o=$T/done-$mode
    start=$(date +%s)
    "$SS" run "$T/p/done.yml" --data "$T/good.csv" --security $mode \
        --max-instructions 2000000 --timeout 240 --output-dir "$o" \
        --no-progress > "$o.out" 2> "$o.err"
    rc=$? took=$(( $(date +%s) - start ))
    check "$mode, endless completion: the run fails, not times out ($rc, ${took}s)" \
        test $rc -eq 1
    contains "$mode, endless completion: naming the stage" "$o.err" \
        "stage 'reduce'.*(ran past max_instructions|failed at completion)"
    lacks "$mode, endless completion: no answer" "$o.out" "^Delays"

    # --- a script whose main chunk never ends ------------------------------
    o=$T/stuck-$mode
    start=$(date +%s)
    "$SS" run "$T/p/stuck.yml" --data "$T/good.csv" --security $mode \
        --max-instructions 2000000 --timeout 240 --output-dir "$o" \
        --no-progress > "$o.out" 2> "$o.err"
    rc=$? took=$(( $(date +%s) - start ))
    check "$mode, endless main chunk: the run fails, not times out ($rc, ${took}s)" \
        test $rc -eq 1
    contains "$mode, endless main chunk: naming the stage" "$o.err" \
        "stage 'map': loading the script ran past max_instructions"
done

# --- print() of 5 KB inside an enclave -------------------------------------
# (print goes to the log at level info; the row's tail number changes, not
# its carrier: awk's answer is that of all the rows)
{ cat "$T/h"; head -1000 "$T/rows"
  sed -n 1p "$T/rows" | awk -F, -v OFS=, '{ $11 = "PRINT-ROW" } 1'
  tail -n +1001 "$T/rows"; } > "$T/print.csv"
reference "$T/print.csv" > "$T/print-expected"
o=$T/print
LOG_LEVEL=info "$SS" run "$T/p/loop.yml" --data "$T/print.csv" \
    --security enclave --timeout 240 --output-dir "$o" --no-progress \
    > "$o.out" 2> "$o.err"
check "enclave, print of 5 KB: exits 0" test $? -eq 0
grep '^Delays' "$o.out" > "$o.d"
same "enclave, print of 5 KB: awk's answer" "$o.d" "$T/print-expected"
lacks "enclave, print of 5 KB: the enclave did not crash" "$o.err" "SIGSEGV|userdata:"
contains "enclave, print of 5 KB: one bounded line" "$o.err" \
    "map-1: info: p{1024} \[\.\.\. 3976 bytes cut\]$"
finish
