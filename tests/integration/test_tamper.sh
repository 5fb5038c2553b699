#!/bin/bash
# Tampering on the way, in encrypted mode: a man in the middle
# (tamper_proxy.py, holding the pipeline's CURVE keys like a compromised
# host on the path, but not the data key) sits between the last router and
# the sink and flips a bit in, drops, replays or reorders one batch. Each
# must be detected at the sink, naming the stream and the batch, and the
# run must fail (sink exit status 1) instead of printing an answer. The
# control run through the same proxy, untouched, prints the right total.
#   source -> router-1 -> map (1 worker) -> router-2 -> [proxy] -> sink
source "$(dirname "$0")/lib.sh"
EX=$ROOT/examples/delayed-flights
"$SS" keygen "$T/keys" > /dev/null 2>&1
"$SS" gen flights --rows 3000 --seed 3 -o "$T/f.csv" 2> /dev/null
rows=$(($(wc -l < "$T/f.csv") - 1))
cat > "$T/count.lua" <<'EOF'
local ZmqRx = require 'zmq-rx'
local n = 0
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM') or 'tcp://localhost:5558')
  :subscribe(function() n = n + 1 end, function(e) print(e) end,
    function()
      print('total ' .. n)
      ZmqRx.sendZmqCompleted()
    end)
EOF
export LOG_LEVEL=warn
K=(--security encrypted --keys "$T/keys")

# run MODE: the whole pipeline by hand with the proxy in MODE on the 3rd
# batch; the sink's status in $T/MODE.rc, its output in $T/MODE.out/.err
run() {
    local mode=$1 d=$T/ipc-$1 pids=()
    mkdir -p "$d"
    "$SS" router --from "ipc://$d/r1-in" --to "ipc://$d/r1-out" --keys "$T/keys" \
        --name router-1 > "$T/$mode.r1" 2>&1 & pids+=($!)
    "$SS" router --from "ipc://$d/r2-in" --to "ipc://$d/r2-out" --keys "$T/keys" \
        --name router-2 > "$T/$mode.r2" 2>&1 & pids+=($!)
    $PY "$ROOT/tests/integration/tamper_proxy.py" "ipc://$d/px" \
        "ipc://$d/r2-out" "$mode" 3 "$T/keys" 2> "$T/$mode.px" & pids+=($!)
    "$SS" worker "$EX/map-csv-to-event.lua" --from "ipc://$d/r1-out" \
        --to "ipc://$d/r2-in" --name map-1 --stage map "${K[@]}" \
        > "$T/$mode.w" 2>&1 & pids+=($!)
    "$SS" sink "$T/count.lua" --from "ipc://$d/px" --name sink --ordered \
        "${K[@]}" > "$T/$mode.out" 2> "$T/$mode.err" &
    local sink=$!
    "$SS" source --to "ipc://$d/r1-in" --file "$T/f.csv" --format csv \
        --header --parts 2 --batch-size 4K "${K[@]}" > "$T/$mode.src" 2>&1
    wait_max 120 $sink
    echo $? > "$T/$mode.rc"
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null; done
    wait 2> /dev/null
}

run none
check "untouched: the sink exits 0" test "$(cat "$T/none.rc")" -eq 0
contains "untouched: the answer counts every row" "$T/none.out" "^total $rows$"

# mode, expected message at the sink
declare -A want=(
    [flip]="stream [0-9]+ batch [0-9]+ does not authenticate"
    [drop]="stream [0-9]+ batch [0-9]+ is missing \(dropped"
    [replay]="stream [0-9]+ batch [0-9]+ was received twice"
    [reorder]="stream [0-9]+ batch [0-9]+ arrived after batch [0-9]+ \(reordered\)"
)
for mode in flip drop replay reorder; do
    run $mode
    contains "$mode: the proxy tampered" "$T/$mode.px" "^tamper: $mode stream"
    check "$mode: the sink fails (exit 1)" test "$(cat "$T/$mode.rc")" -eq 1
    contains "$mode: detected at the sink" "$T/$mode.err" "integrity: ${want[$mode]}"
    # the sink names the very batch the proxy touched (reorder: the held one)
    b=$(sed -n 's/^tamper: [a-z]* \(stream [0-9]* batch [0-9]*\)$/\1/p' "$T/$mode.px")
    contains "$mode: ... naming $b" "$T/$mode.err" "integrity: $b "
    lacks "$mode: no answer printed" "$T/$mode.out" "^total"
done
finish
