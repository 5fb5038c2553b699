#!/bin/bash
# links: sealed (docs/SECURITY.md, "Double encryption"): the data links
# between routers and their peers go without CurveZMQ, the batches' own
# sealing (AEAD over header and payload, run id, producer) alone protects
# them; control channels (monitor, key service, scale) keep CURVE.
#   1. refused where it would protect nothing (plain mode), where it
#      would leave something unauthenticated that matters (checkpoint
#      barriers), and by sstream deploy (not wired there);
#   2. sstream run --links sealed gives awk's answer (encrypted, enclave);
#   3. a network tamperer holding no key at all (tamper_proxy.py without
#      CURVE keys, between the last router and the sink) flips a bit in,
#      drops, replays or reorders a batch: the sink names the batch and
#      fails the run without printing an answer (as test_tamper.sh shows
#      for an insider holding the CURVE keys);
#   4. what is given up: a stranger with no key (forged_source.py) joins
#      router-1 under the source's name before the real source and sends
#      batches in clear. With CURVE links it gets no WELCOME and the answer
#      is right; with sealed links it is welcomed and its batches reach
#      the map worker, which refuses them (plaintext in encrypted mode),
#      and the run fails loudly: the sink exits 1 and prints no answer.
#      Availability is lost to anyone who reaches an endpoint; the data
#      is neither read nor changed unnoticed.
source "$(dirname "$0")/lib.sh"
EX=$ROOT/examples/delayed-flights
"$SS" keygen "$T/keys" > /dev/null 2>&1
"$SS" gen flights --rows 3000 --seed 3 -o "$T/f.csv" 2> /dev/null
rows=$(($(wc -l < "$T/f.csv") - 1))
reference "$T/f.csv" | sort > "$T/awk.txt"

# 1. refusals
cp -r "$EX" "$T/df"
printf 'links: sealed\n' >> "$T/df/pipeline.yml"
timeout 60 "$SS" run "$T/df/pipeline.yml" --data "$T/f.csv" --no-progress \
    --output-dir "$T/o-plain" > /dev/null 2> "$T/plain.err"
check "plain mode: links: sealed is refused (exit 1)" test $? -eq 1
contains "... saying why" "$T/plain.err" \
    "links: sealed needs security encrypted or enclave"
timeout 60 "$SS" run "$T/df/pipeline.yml" --data "$T/f.csv" --no-progress \
    --security encrypted --checkpoint-interval 500 \
    --output-dir "$T/o-ckpt" > /dev/null 2> "$T/ckpt.err"
check "with checkpoints: refused (exit 1)" test $? -eq 1
contains "... saying why" "$T/ckpt.err" \
    "links: sealed does not go with checkpoints"
timeout 60 "$SS" deploy "$T/df/pipeline.yml" --target compose \
    --security enclave -o "$T/deploy" > /dev/null 2> "$T/deploy.err"
check "sstream deploy refuses links: sealed" test $? -ne 0
contains "... saying why" "$T/deploy.err" "links: sealed is for sstream run"
timeout 60 "$SS" worker "$EX/map-csv-to-event.lua" --links sealed \
    --from ipc://$T/nowhere --to ipc://$T/nowhere2 > /dev/null 2> "$T/w.err"
check "a plain worker with --links sealed is refused" test $? -ne 0
contains "... saying why" "$T/w.err" "--links sealed needs --security"
# components started by hand: checkpoints and resumes are refused there
# too (barriers are not sealed; found by an outside review: only
# `sstream run` refused them)
timeout 60 "$SS" source --security encrypted --keys "$T/keys" --links sealed \
    --checkpoint-interval 500 --checkpoint-dir "$T/ck" --file "$T/f.csv" \
    --to ipc://$T/nowhere > /dev/null 2> "$T/sc.err"
check "by hand: a source with --links sealed and checkpoints is refused" test $? -ne 0
contains "... saying why" "$T/sc.err" "--links sealed cannot be used with checkpoints"
timeout 60 "$SS" worker "$EX/map-csv-to-event.lua" --security encrypted \
    --keys "$T/keys" --links sealed --checkpoint-dir "$T/ck" \
    --from ipc://$T/nowhere --to ipc://$T/nowhere2 > /dev/null 2> "$T/wc.err"
check "by hand: a worker with --links sealed and --checkpoint-dir is refused" test $? -ne 0
contains "... saying why" "$T/wc.err" "--links sealed cannot be used with checkpoints"
SS_RESTORE_EPOCH=1 timeout 60 "$SS" worker "$EX/reduce-events.lua" --security encrypted \
    --keys "$T/keys" --links sealed \
    --from ipc://$T/nowhere --to ipc://$T/nowhere2 > /dev/null 2> "$T/wr.err"
check "by hand: a worker with --links sealed told to resume is refused" test $? -ne 0
contains "... saying why" "$T/wr.err" "--links sealed cannot be used with checkpoints"

# 2. whole runs
for mode in encrypted enclave; do
    LOG_LEVEL=info timeout -k 10 300 "$SS" run "$EX/pipeline.yml" --data "$T/f.csv" \
        --security $mode --links sealed --keys "$T/keys" --no-progress \
        --output-dir "$T/o-$mode" > "$T/$mode.out" 2> "$T/$mode.err"
    check "$mode, links sealed: the run exits 0" test $? -eq 0
    grep '^Delays' "$T/$mode.out" | sort > "$T/$mode.txt"
    same "$mode, links sealed: awk's answer" "$T/awk.txt" "$T/$mode.txt"
    for r in 1 4; do
        contains "$mode, links sealed: router-$r ran without CurveZMQ" \
            "$T/o-$mode/logs/router-$r.log" "workers to .* \(no CurveZMQ\)"
    done
done

cat > "$T/count.lua" <<'EOF'
local ZmqRx = require 'zmq-rx'
local n = 0
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :subscribe(function() n = n + 1 end, function(e) print(e) end,
    function()
      print('total ' .. n)
      ZmqRx.sendZmqCompleted()
    end)
EOF
export LOG_LEVEL=info
RUN=5ea1ed11e5000001
KS=(--security encrypted --keys "$T/keys" --links sealed --run $RUN)

# 3. run MODE: source -> router-1 -> map -> router-2 -> [proxy] -> sink, by
# hand with sealed links (routers without --keys); the proxy has no key
tamper() {
    local mode=$1 d=$T/ipc-$1 pids=()
    mkdir -p "$d"
    "$SS" router --from "ipc://$d/r1-in" --to "ipc://$d/r1-out" --run $RUN \
        --name router-1 > "$T/$mode.r1" 2>&1 & pids+=($!)
    "$SS" router --from "ipc://$d/r2-in" --to "ipc://$d/r2-out" --run $RUN \
        --name router-2 > "$T/$mode.r2" 2>&1 & pids+=($!)
    $PY "$ROOT/tests/integration/tamper_proxy.py" "ipc://$d/px" \
        "ipc://$d/r2-out" "$mode" 3 2> "$T/$mode.px" & pids+=($!)
    "$SS" worker "$EX/map-csv-to-event.lua" --from "ipc://$d/r1-out" \
        --to "ipc://$d/r2-in" --name map-1 --stage map "${KS[@]}" \
        > "$T/$mode.w" 2>&1 & pids+=($!)
    "$SS" sink "$T/count.lua" --from "ipc://$d/px" --name sink --ordered \
        "${KS[@]}" > "$T/$mode.out" 2> "$T/$mode.err" &
    local sink=$!
    timeout 120 "$SS" source --to "ipc://$d/r1-in" --file "$T/f.csv" \
        --format csv --header --parts 2 --batch-size 4K "${KS[@]}" \
        > "$T/$mode.src" 2>&1
    wait_max 120 $sink
    echo $? > "$T/$mode.rc"
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null; done
    wait 2> /dev/null
}
tamper none
check "untouched, no CURVE on the links: the sink exits 0" \
    test "$(cat "$T/none.rc")" -eq 0
contains "... and counts every row" "$T/none.out" "^total $rows$"
declare -A want=(
    [flip]="stream [0-9]+ batch [0-9]+ does not authenticate"
    [drop]="stream [0-9]+ batch [0-9]+ is missing \(dropped"
    [replay]="stream [0-9]+ batch [0-9]+ was received twice"
    [reorder]="stream [0-9]+ batch [0-9]+ arrived after batch [0-9]+ \(reordered\)"
)
for mode in flip drop replay reorder; do
    tamper $mode
    contains "$mode (no key): the proxy tampered" "$T/$mode.px" "^tamper: $mode stream"
    check "$mode (no key): the sink fails (exit 1)" test "$(cat "$T/$mode.rc")" -eq 1
    contains "$mode (no key): detected at the sink" "$T/$mode.err" "integrity: ${want[$mode]}"
    lacks "$mode (no key): no answer printed" "$T/$mode.out" "^total"
done

# 4. stranger LINKS: forged_source.py, with no key, joins router-1 as
# source-0 (a name of the run: --peers) before the real source starts
stranger() {
    local links=$1 d=$T/ipc-s-$1 pids=() k=() rk=()
    mkdir -p "$d"
    k=(--security encrypted --keys "$T/keys" --links "$links" --run $RUN)
    [ "$links" = curve ] && rk=(--keys "$T/keys")
    "$SS" router --from "ipc://$d/r1-in" --to "ipc://$d/r1-out" --run $RUN \
        --name router-1 --peers source-0,map-1 --stall-ms 3000 "${rk[@]}" \
        > "$T/s-$links.r1" 2>&1 & pids+=($!)
    "$SS" router --from "ipc://$d/r2-in" --to "ipc://$d/r2-out" --run $RUN \
        --name router-2 --peers map-1,sink "${rk[@]}" \
        > "$T/s-$links.r2" 2>&1 & pids+=($!)
    "$SS" worker "$EX/map-csv-to-event.lua" --from "ipc://$d/r1-out" \
        --to "ipc://$d/r2-in" --name map-1 --stage map "${k[@]}" \
        > "$T/s-$links.w" 2>&1 & pids+=($!)
    "$SS" sink "$T/count.lua" --from "ipc://$d/r2-out" --name sink \
        --ordered "${k[@]}" > "$T/s-$links.out" 2> "$T/s-$links.err" &
    local sink=$!
    sleep 0.5
    PYTHONPATH=$ROOT/tests/python $PY "$ROOT/tests/python/forged_source.py" \
        "ipc://$d/r1-in" source-0 source-0 5 forged $RUN \
        > "$T/s-$links.forger" 2>&1 & pids+=($!)
    for _ in $(seq 1 80); do
        grep -qE "^(received|no welcome)" "$T/s-$links.forger" && break
        sleep 0.1
    done
    timeout 120 "$SS" source --to "ipc://$d/r1-in" --file "$T/f.csv" \
        --format csv --header --batch-size 4K "${k[@]}" \
        > "$T/s-$links.src" 2>&1
    wait_max 120 $sink
    echo $? > "$T/s-$links.rc"
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null; done
    wait 2> /dev/null
}
stranger curve
contains "curve links: the stranger gets no WELCOME" "$T/s-curve.forger" \
    "^no welcome"
check "curve links: the sink exits 0" test "$(cat "$T/s-curve.rc")" -eq 0
contains "curve links: ... counting every row" "$T/s-curve.out" "^total $rows$"
stranger sealed
contains "sealed links: the stranger is welcomed and sends its batches" \
    "$T/s-sealed.forger" "^sent 5 batches"
contains "sealed links: the map worker refuses them (plaintext)" \
    "$T/s-sealed.w" "refusing plaintext batch"
check "sealed links: the run fails (sink exit 1)" \
    test "$(cat "$T/s-sealed.rc")" -eq 1
lacks "sealed links: no answer printed" "$T/s-sealed.out" "^total"
finish
