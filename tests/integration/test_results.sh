#!/bin/bash
# Attacks on a run's result, in encrypted mode, by a man in the middle
# between the last router and the sink (tamper_proxy.py, holding the
# pipeline's CURVE keys like a compromised host or a rogue router, but not
# the data key):
#
#   replay     run A's sealed result batch, recorded on the way, is put in
#              place of run B's (same keys, same worker names): the sink
#              refuses it as a batch of another run, names both runs and
#              prints no answer (issue 8, 6b: without run ids in the
#              authenticated header, run B printed run A's answer);
#   dropfinal  a rogue router swallows the result batch and removes its
#              stream from the end-of-stream table: the sink, told by
#              whoever started the run which workers keep state (--finals),
#              fails naming the missing result (issue 8, 6c: it printed an
#              empty result and exited 0).
#
#   source -> router-1 -> count (1 worker, a reduce) -> router-2 -> [proxy]
#          -> sink
source "$(dirname "$0")/lib.sh"
"$SS" keygen "$T/keys" > /dev/null 2>&1
seq 1 300 > "$T/a.txt"
seq 1 500 > "$T/b.txt"
cat > "$T/count.lua" <<'EOF'
local ZmqRx = require 'zmq-rx'
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :reduce(function(n, _) return n + 1 end, 0)
  :subscribeToSocket(os.getenv('TO'))
EOF
cat > "$T/print.lua" <<'EOF'
local ZmqRx = require 'zmq-rx'
local total, results = 0, 0
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :subscribe(function(n) total = total + n; results = results + 1 end,
    function(e) print(e) end,
    function()
      print('total ' .. total .. ' from ' .. results .. ' result(s)')
      ZmqRx.sendZmqCompleted()
    end)
EOF
export LOG_LEVEL=warn
K=(--security encrypted --keys "$T/keys")

# run NAME MODE DATA RUNID [SINK OPTIONS...]: the pipeline by hand, every
# component given the run id; the sink's status in $T/NAME.rc, its output
# in $T/NAME.out/.err, the proxy's report in $T/NAME.px
run() {
    local name=$1 mode=$2 data=$3 id=$4 d=$T/ipc-$1 pids=()
    shift 4
    mkdir -p "$d"
    "$SS" router --from "ipc://$d/r1-in" --to "ipc://$d/r1-out" --keys "$T/keys" \
        --name router-1 --run "$id" > "$T/$name.r1" 2>&1 & pids+=($!)
    "$SS" router --from "ipc://$d/r2-in" --to "ipc://$d/r2-out" --keys "$T/keys" \
        --name router-2 --run "$id" > "$T/$name.r2" 2>&1 & pids+=($!)
    TAMPER_FILE=$T/final.rec $PY "$ROOT/tests/integration/tamper_proxy.py" \
        "ipc://$d/px" "ipc://$d/r2-out" "$mode" 0 "$T/keys" \
        2> "$T/$name.px" & pids+=($!)
    "$SS" worker "$T/count.lua" --from "ipc://$d/r1-out" --to "ipc://$d/r2-in" \
        --name count-1 --stage count --run "$id" "${K[@]}" \
        > "$T/$name.w" 2>&1 & pids+=($!)
    "$SS" sink "$T/print.lua" --from "ipc://$d/px" --name sink --run "$id" \
        "${K[@]}" "$@" > "$T/$name.out" 2> "$T/$name.err" &
    local sink=$!
    "$SS" source --to "ipc://$d/r1-in" --file "$data" --run "$id" "${K[@]}" \
        > "$T/$name.src" 2>&1
    wait_max 120 $sink
    echo $? > "$T/$name.rc"
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null; done
    wait 2> /dev/null
}

A=0a0a0a0a0a0a0a0a B=0b0b0b0b0b0b0b0b

# run A, recorded on the way
rm -f "$T/final.rec"
run a record "$T/a.txt" $A --finals count-1
check "run A: the sink exits 0" test "$(cat "$T/a.rc")" -eq 0
contains "run A: the answer is A's" "$T/a.out" "^total 300 from 1 result"
contains "run A: the proxy recorded the result" "$T/a.px" "^tamper: record stream"
check "run A: a result batch is on record" test -s "$T/final.rec"

# run B, whose result is replaced by A's
run b swapfinal "$T/b.txt" $B --finals count-1
contains "replay: the proxy put A's result in B's place" "$T/b.px" "^tamper: swapfinal stream"
check "replay: the sink fails (exit 1)" test "$(cat "$T/b.rc")" -eq 1
contains "replay: the sink names the replay and both runs" "$T/b.err" \
    "belongs to run $A, not to this run $B: replayed from another run"
lacks "replay: run A's answer is not printed" "$T/b.out" "total 300"
lacks "replay: no answer printed at all" "$T/b.out" "^total"

# the same run B untouched: B's answer (the control)
run b2 none "$T/b.txt" $B --finals count-1
check "control: the sink exits 0" test "$(cat "$T/b2.rc")" -eq 0
contains "control: the answer is B's" "$T/b2.out" "^total 500 from 1 result"

# a rogue router drops the result and edits the end-of-stream table
run c dropfinal "$T/b.txt" $B --finals count-1
contains "dropfinal: the proxy dropped the result" "$T/c.px" "^tamper: dropfinal stream"
contains "dropfinal: ... and removed it from the end of stream" "$T/c.px" \
    "^tamper: dropfinal removed stream"
check "dropfinal: the sink fails (exit 1)" test "$(cat "$T/c.rc")" -eq 1
contains "dropfinal: the sink names the missing result" "$T/c.err" \
    "integrity: the result of worker 'count-1' \(stream [0-9]+\) never arrived"
lacks "dropfinal: no (empty) answer printed" "$T/c.out" "^total"
finish
