#!/bin/bash
# Keyed state restored on another worker count, at the worker (issue 13,
# rescaling): DelayedFlights' reduce partitioned by carrier over 2 and
# over 3 workers, checkpoints every 50 ms (plain mode): the last complete
# checkpoint's snapshots hold each key group's state apart. Workers
# started by hand as the supervisor starts them for a resume with another
# count (SS_RESTORE_EPOCH=E, SS_RESTORE_WORKERS=N, --index I --partitions
# N') restore, before they reach their router, the key groups of their
# new range from every old snapshot: 2 -> 3, 2 -> 1, 3 -> 1, 3 -> 2 give
# the same key groups in all (none lost, none twice) as the old workers
# had, each new worker its own range; a missing, swapped, another run's
# or another stage's snapshot, and a worker with no slot, are refused
# (exit 1, naming the file). Encrypted mode too: 2 -> 3 from the sealed
# snapshots (the worker's in-process core opens them with the run's data
# key), a swap refused. Enclave mode: each worker's enclave restores from the sealed
# snapshots exactly what a standalone key service granted (--restore
# WORKER=EPOCH:N:I:M); fewer snapshots, another slot, or its own snapshot
# alone are refused inside the enclave (more attacks: test_enclave_attack,
# test_rescale_restore_refused).
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1
E=$ROOT/examples/delayed-flights
"$SS" gen flights --rows 20000 --seed 11 -o flights.csv > /dev/null 2>&1
reference flights.csv > expected.txt
cp "$E"/*.lua .
# a map slowed (a busy loop per event) so that checkpoints complete
sed -i 's/^      if not value then return {} end/      for _ = 1, 10000 do end\n&/' \
    map-csv-to-event.lua
check "the map has its busy loop" grep -q "for _ = 1, 10000" map-csv-to-event.lua
for n in 2 3; do
    sed -e "s/workers: 4/workers: $n/" -e "s/batch_size: [0-9]*K/batch_size: 4K/" \
        "$E/pipeline-keyed.yml" > "p$n.yml"
    printf 'checkpoint_ms: 50\n' >> "p$n.yml"
    timeout 120 "$SS" run "p$n.yml" --data flights.csv --output-dir "o$n" \
        --no-progress > "res$n" 2> "err$n"
    check "reduce on $n workers: the run ends well" test $? -eq 0
    same "... with awk's answer" expected.txt "res$n"
    check "... and a complete checkpoint with one snapshot per reduce worker" \
        test -s "o$n/checkpoints/manifest.json" -a \
        "$(ls o$n/checkpoints/reduce-*-e*.snap 2> /dev/null | wc -l)" = "$n"
    contains "... whose manifest records the stage's workers and key-group ranges" \
        "o$n/checkpoints/manifest.json" "\"reduce\":\{\"workers\":$n,\"partitioned\":true,\"stateful\":true,\"ranges\":\[\[0,"
done
field() { $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }

# restore TAG FROM TO [WORKER...]: the workers of TO slots (all, or those
# given) restore from the checkpoint of the FROM-worker run; each one's
# stderr in w-TAG-I; prints the sum of their key groups with state
restore() {
    local tag=$1 from=$2 to=$3 i sum=0 k
    shift 3
    local run epoch
    run=$(field "o$from/checkpoints/manifest.json" run)
    epoch=$(field "o$from/checkpoints/manifest.json" epoch)
    for ((i = 1; i <= to; i++)); do
        LOG_LEVEL=info SS_RESTORE_EPOCH=$epoch SS_RESTORE_WORKERS=$from \
            timeout 20 "$SS" worker "$E/reduce-events.lua" --name "reduce-$i" \
            --stage reduce --index "$i" --partitions "$to" --run "$run" \
            --checkpoint-dir "ck-$tag" --from "ipc://$T/none-in" \
            --to "ipc://$T/none-out" --connect-timeout-ms 300 \
            > /dev/null 2> "w-$tag-$i"
        k=$(sed -n 's/.*restored the key groups .* (\([0-9]*\) key group(s) with state)/\1/p' "w-$tag-$i")
        sum=$((sum + ${k:-0}))
    done
    echo "$sum"
}
# the key groups with state at the checkpoint, as the old workers hold
# them: each old worker restoring its own range of the same count
for n in 2 3; do
    mkdir "ck-own$n" && cp o$n/checkpoints/*.snap "ck-own$n/"
    restore own$n $n $n > "groups$n"
    check "$n -> $n: every worker restores its own key groups" \
        test "$(cat "groups$n")" -gt 0
done
for c in "2 3" "2 1" "3 1" "3 2"; do
    set -- $c
    tag=$1to$2
    mkdir "ck-$tag" && cp o$1/checkpoints/*.snap "ck-$tag/"
    got=$(restore "$tag" "$1" "$2")
    check "$1 -> $2: the key groups with state are those of the $1 old workers, none lost, none twice ($got of $(cat groups$1))" \
        test "$got" = "$(cat groups$1)"
    ok_ranges=1
    for ((w = 1; w <= $2; w++)); do
        lo=$(( ((w - 1) * 4096 + $2 - 1) / $2 )) hi=$(( (w * 4096 + $2 - 1) / $2 - 1 ))
        grep -q "reduce-$w: restored the key groups $lo\.\.$hi of checkpoint [0-9]* from the snapshots of $1 workers" \
            "w-$tag-$w" || ok_ranges=0
    done
    check "$1 -> $2: each new worker took its own range of key groups from $1 snapshots" \
        test $ok_ranges = 1
done

# refusals: the worker exits 1 before it reaches its router, naming why
mkdir ck-bad && cp o2/checkpoints/*.snap ck-bad/
refused() { # TAG ENV...: reduce-1 of 3 restoring from 2, with ENV
    local tag=$1 run epoch
    shift
    run=$(field o2/checkpoints/manifest.json run)
    epoch=$(field o2/checkpoints/manifest.json epoch)
    env LOG_LEVEL=info SS_RESTORE_EPOCH=$epoch SS_RESTORE_WORKERS=2 "$@" \
        timeout 20 "$SS" worker "$E/reduce-events.lua" --name reduce-2 \
        --stage reduce --index 2 --partitions 3 --run "$run" \
        --checkpoint-dir ck-bad --from "ipc://$T/none-in" \
        --to "ipc://$T/none-out" --connect-timeout-ms 300 > /dev/null 2> "r-$tag"
    echo $? > "rc-$tag"
}
refused more SS_RESTORE_WORKERS=3
check "a missing old snapshot: refused (exit 1)" test "$(cat rc-more)" = 1
contains "... naming the file" r-more "cannot read .*/reduce-3-e[0-9]+\.snap"
e2=$(field o2/checkpoints/manifest.json epoch)
cp "ck-bad/reduce-1-e$e2.snap" saved.snap
cp "ck-bad/reduce-2-e$e2.snap" "ck-bad/reduce-1-e$e2.snap"
refused swap
check "reduce-2's snapshot in reduce-1's place: refused (exit 1)" test "$(cat rc-swap)" = 1
contains "... as another worker's" r-swap "refused to restore checkpoint $e2 from .*reduce-1-e$e2\.snap: .*not of worker 'reduce-1'"
e3=$(field o3/checkpoints/manifest.json epoch)
cp "o3/checkpoints/reduce-1-e$e3.snap" "ck-bad/reduce-1-e$e2.snap"
refused foreign
check "another run's snapshot in its place: refused (exit 1)" test "$(cat rc-foreign)" = 1
contains "... as another run's" r-foreign "refused to restore checkpoint $e2 from .*reduce-1-e$e2\.snap: .*(another run|of epoch)"
cp "ck-bad/sink-e$e2.snap" "ck-bad/reduce-1-e$e2.snap"
refused stage
check "another stage's snapshot (the sink's) in its place: refused (exit 1)" test "$(cat rc-stage)" = 1
contains "... as another stage's" r-stage "refused to restore checkpoint $e2 from .*reduce-1-e$e2\.snap: snapshot holds the state of worker 'sink' of stage '[^']*', not of worker 'reduce-1' of stage 'reduce'"
cp saved.snap "ck-bad/reduce-1-e$e2.snap"
run=$(field o2/checkpoints/manifest.json run)
LOG_LEVEL=info SS_RESTORE_EPOCH=$e2 SS_RESTORE_WORKERS=2 timeout 20 "$SS" worker \
    "$E/reduce-events.lua" --name reduce-2 --stage reduce --run "$run" \
    --checkpoint-dir ck-bad --from "ipc://$T/none-in" --to "ipc://$T/none-out" \
    --connect-timeout-ms 300 > /dev/null 2> r-noslot
check "a worker with no slot (no --index/--partitions): refused (exit 1)" test $? = 1
contains "... saying it has no key groups" r-noslot "has no slot of a partitioned stage"

# encrypted mode: the snapshots are sealed with the run's data key, and
# the worker's in-process enclave core opens each (the worker holds the
# key in this mode); 2 -> 3, and reduce-2's sealed snapshot in reduce-1's
# place is refused the same way
timeout 120 "$SS" run p2.yml --data flights.csv --security encrypted \
    --output-dir e2 --no-progress > res-e2 2> err-e2
check "encrypted, reduce on 2 workers: the run ends well" test $? -eq 0
same "... with awk's answer" expected.txt res-e2
check "... and a complete checkpoint" test -s e2/checkpoints/manifest.json
erun=$(field e2/checkpoints/manifest.json run)
eep=$(field e2/checkpoints/manifest.json epoch)
mkdir ck-enc && cp e2/checkpoints/*.snap ck-enc/
enc_worker() { # I: reduce-I of 3 restoring from the 2 sealed snapshots
    LOG_LEVEL=info SS_RESTORE_EPOCH=$eep SS_RESTORE_WORKERS=2 timeout 20 \
        "$SS" worker "$E/reduce-events.lua" --security encrypted --keys e2/keys \
        --name "reduce-$1" --stage reduce --index "$1" --partitions 3 \
        --run "$erun" --checkpoint-dir ck-enc --from "ipc://$T/none-in" \
        --to "ipc://$T/none-out" --connect-timeout-ms 300 > /dev/null 2> "we-$1"
}
ok_ranges=1
for w in 1 2 3; do
    enc_worker $w
    lo=$(( ((w - 1) * 4096 + 2) / 3 )) hi=$(( (w * 4096 + 2) / 3 - 1 ))
    grep -q "reduce-$w: restored the key groups $lo\.\.$hi of checkpoint $eep from the snapshots of 2 workers" \
        "we-$w" || ok_ranges=0
done
check "encrypted 2 -> 3: each new worker opened both sealed snapshots and took its range" \
    test $ok_ranges = 1
cp "ck-enc/reduce-2-e$eep.snap" "ck-enc/reduce-1-e$eep.snap"
enc_worker 1
check "encrypted: reduce-2's sealed snapshot in reduce-1's place: refused (exit 1)" test $? = 1
contains "... as another worker's" we-1 "refused to restore checkpoint $eep from the snapshots of 2 workers: .*not of worker 'reduce-1'"

# enclave mode: the snapshots are opened inside each worker's enclave,
# which restores only what the key service granted it (a standalone one
# here: --restore WORKER=EPOCH:N:I:M); the host's word (SS_RESTORE_WORKERS,
# --index, --partitions) must match it
timeout 120 "$SS" run p2.yml --data flights.csv --security enclave \
    --output-dir n2 --no-progress > res-n2 2> err-n2
check "enclave, reduce on 2 workers: the run ends well" test $? -eq 0
same "... with awk's answer" expected.txt res-n2
check "... and a complete checkpoint" test -s n2/checkpoints/manifest.json
nrun=$(field n2/checkpoints/manifest.json run)
nep=$(field n2/checkpoints/manifest.json epoch)
mkdir ck-ncl && cp n2/checkpoints/*.snap ck-ncl/
LOG_LEVEL=info timeout 120 "$SS" keyservice --keys n2/keys \
    --stage "reduce=$E/reduce-events.lua" --run "$nrun" --bind "ipc://$T/ks" \
    --restore "reduce-1=$nep:2:1:3" --restore "reduce-2=$nep:2:2:3" \
    --restore "reduce-3=$nep:2:3:3" > /dev/null 2> ks.err &
_pids+=($!)
for ((i = 0; i < 100; i++)); do [ -S "$T/ks" ] && break; sleep 0.1; done
check "the key service serves" test -S "$T/ks"
ncl_worker() { # NAME INDEX FROM (empty: no SS_RESTORE_WORKERS) TAG
    env LOG_LEVEL=info SS_RESTORE_EPOCH=$nep ${3:+SS_RESTORE_WORKERS=$3} \
        timeout 30 "$SS" worker "$E/reduce-events.lua" --security enclave \
        --keys n2/keys --enclave-keys n2/keys --keyservice "ipc://$T/ks" \
        --name "$1" --stage reduce --index "$2" --partitions 3 --run "$nrun" \
        --checkpoint-dir ck-ncl --from "ipc://$T/none-in" \
        --to "ipc://$T/none-out" --connect-timeout-ms 300 > /dev/null 2> "wn-$4"
}
ok_ranges=1
for w in 1 2 3; do
    ncl_worker "reduce-$w" $w 2 $w
    lo=$(( ((w - 1) * 4096 + 2) / 3 )) hi=$(( (w * 4096 + 2) / 3 - 1 ))
    grep -q "reduce-$w: restored the key groups $lo\.\.$hi of checkpoint $nep from the snapshots of 2 workers" \
        "wn-$w" || ok_ranges=0
done
check "enclave 2 -> 3: each new worker's enclave restored its range from both sealed snapshots, as granted" \
    test $ok_ranges = 1
ncl_worker reduce-2 2 1 fewer
check "enclave: from 1 snapshot where 2 were granted: refused (exit 1)" test $? = 1
contains "... inside the enclave, naming the grant" wn-fewer \
    "granted the restore from 2 workers as slot 2 of 3, not from 1 as slot 2 of 3"
ncl_worker reduce-2 3 2 slot
check "enclave: reduce-2 claiming slot 3: refused (exit 1)" test $? = 1
contains "... naming the grant" wn-slot "granted the restore from 2 workers as slot 2 of 3, not from 2 as slot 3 of 3"
ncl_worker reduce-2 2 "" own
check "enclave: its own snapshot alone where a rescale was granted: refused (exit 1)" test $? = 1
contains "... saying so" wn-own "granted the restore from the snapshots of 2 workers .*not from this worker's own"
finish
