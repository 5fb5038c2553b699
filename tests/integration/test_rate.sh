#!/bin/bash
# A rate-limited source (source.rate / sstream run --rate / sstream source
# --rate): DelayedFlights on 20,000 generated rows at 10,000 rows/s must
# take at least 1.8 s (a lower bound only: a loaded machine makes it
# slower, never faster) and still give awk's answer, balanced, in plain
# (4 parts, --rate 10k), encrypted (rate: 10000 in the file) and enclave
# modes; bad values are refused naming the file and line (or the option);
# a low rate (4 rows/s) delivers rows while later rows are still held
# (linger_ms 100: each row leaves in its own batch, the first reaches the
# sink before the last leaves the source, from the latency logs' own
# clocks, no timed assertion); a followed file is paced too; and a run
# restarted from a checkpoint (--restarts 1, reduce-1 killed) keeps
# pacing (its resumed source's own log shows the rate held) and gives
# awk's answer; a sealed file is paced batch by batch.
source "$(dirname "$0")/lib.sh"
EX=$ROOT/examples/delayed-flights
cd "$T"
"$SS" gen flights --rows 20000 --seed 11 -o f20k.csv 2> /dev/null
"$SS" gen flights --rows 40000 --seed 12 -o f40k.csv 2> /dev/null
reference f20k.csv | sort > expected20
reference f40k.csv | sort > expected40
sed "s|script: |script: $EX/|" "$EX/pipeline.yml" > p.yml

# paced RUN TAG ARGS...: runs sstream run (at most 180 s), sets SECS to its
# wall time, and checks its exit status, balance and answer
paced() {
    local tag=$1 exp=$2
    shift 2
    local t0 t1
    t0=$(date +%s%N)
    timeout -k 10 180 "$SS" run "$@" --no-progress --output-dir "out-$tag" \
        > "res-$tag" 2> "err-$tag"
    local rc=$?
    t1=$(date +%s%N)
    SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
    echo "    $tag: $SECS s"
    check "$tag: exit 0" test "$rc" -eq 0
    contains "$tag: the counts balance" "err-$tag" "20000 = [0-9]+ \+ [0-9]+ \+ 0: balanced|40000 = [0-9]+ \+ [0-9]+ \+ 0: balanced"
    grep '^Delays' "res-$tag" | sort > "got-$tag"
    same "$tag: awk's answer" "got-$tag" "$exp"
}
atleast() { awk -v s="$1" -v m="$2" 'BEGIN { exit !(s >= m) }'; }

# 1. plain, 4 parts, --rate 10k (k: 1000)
paced plain expected20 p.yml --data f20k.csv --rate 10k
check "plain: 20000 rows at 10k/s take at least 1.8 s ($SECS s)" atleast "$SECS" 1.8
# full speed for comparison (not asserted: only said)
paced full expected20 p.yml --data f20k.csv

# 2. encrypted, the file's rate: 10000
sed 's/^  header: true/  header: true\n  rate: 10000/' p.yml > p-rate.yml
paced encrypted expected20 p-rate.yml --data f20k.csv --security encrypted
check "encrypted: rate 10000 from the file: at least 1.8 s ($SECS s)" atleast "$SECS" 1.8
# --rate 0 on the command line lifts the file's rate (not timed)
paced lifted expected20 p-rate.yml --data f20k.csv --rate 0

# 3. enclave, --rate 10000
paced enclave expected20 p.yml --data f20k.csv --security enclave --rate 10000
check "enclave: at least 1.8 s ($SECS s)" atleast "$SECS" 1.8

# 4. bad values: the file and line, or the option
for bad in fast -5 1.5k 2G 50kB 1000000001; do
    sed "s/^  header: true/  header: true\n  rate: $bad/" p.yml > p-bad.yml
    timeout 30 "$SS" run p-bad.yml --data f20k.csv --no-progress \
        --output-dir out-bad > /dev/null 2> err-bad
    rc=$?
    check "rate: $bad is refused (exit $rc)" test "$rc" -ne 0
    contains "rate: $bad: the message names p-bad.yml line 13" err-bad \
        "p-bad.yml:13: rate must be a number of rows per second from 0 to 1000000000, such as 50000, 50k or 2M"
done
timeout 30 "$SS" run p.yml --data f20k.csv --rate 1.5k > /dev/null 2> err-opt
check "sstream run --rate 1.5k: bad usage (exit 2)" test $? -eq 2
contains "sstream run --rate: the message names the option and value" err-opt \
    "--rate must be a number of rows per second .* not '1.5k'"
timeout 30 "$SS" source --to ipc://$T/none --rate 2G f20k.csv > /dev/null 2> err-src
check "sstream source --rate 2G: bad usage (exit 2)" test $? -eq 2
contains "sstream source --rate: the message names the value" err-src \
    "--rate takes rows per second from 0 to 1000000000 .* '2G'"

# 5. a low rate does not wait for a full batch: 8 rows at 4 rows/s with a
# 64 KiB batch and linger_ms 100; from the latency logs (each side's own
# monotonic clock, one machine): several batches, and the first row's
# effect reached the sink before the source sent its last row
head -9 f20k.csv > f8.csv
sed -e 's/^  parts: 4/  parts: 1/' \
    -e 's/^  header: true/  header: true\n  rate: 4\n  linger_ms: 100/' p.yml > p-low.yml
mkdir -m 1777 lat-low
SS_LATENCY_DIR=$T/lat-low timeout -k 10 120 "$SS" run p-low.yml --data f8.csv \
    --no-progress --output-dir out-low > res-low 2> err-low
check "low rate: exit 0" test $? -eq 0
reference f8.csv | sort > expected8
grep '^Delays' res-low | sort > got-low
same "low rate: awk's answer" got-low expected8
nb=$(awk '$4 && $3 > $4 { n++ } END { print n + 0 }' lat-low/source.lat)
check "low rate: the rows left in several batches, not one full one ($nb with rows)" \
    test "$nb" -ge 4
first_sink=$(sort -k3,3n lat-low/sink.lat | awk 'NR == 1 { print $3 }')
last_src=$(sort -k3,3n lat-low/source.lat | awk 'END { print $3 }')
check "low rate: a row's effect reached the sink before the source sent its last batch" \
    awk -v a="${first_sink:-0}" -v b="${last_src:-0}" 'BEGIN { exit !(a > 0 && a < b) }'
# a row waits in the source at most about the linger (100 ms; 1 s is
# generous on a loaded machine): the source's own "left - first row" times
maxwait=$(awk '$4 { w = ($3 - $4) / 1e6; if (w > m) m = w } END { printf "%.0f", m }' lat-low/source.lat)
echo "    low rate: longest wait of a row in the source: $maxwait ms"
check "low rate: no row waited for the batch to fill (at most 1000 ms, $maxwait ms)" \
    test "${maxwait:-99999}" -le 1000

# 5b. the same under ASan+UBSan (bin/sstream-san, when `make SAN=1` built
# it): every component of the run is that binary; a runtime error aborts
# it (the source's write_held did memmove(NULL, NULL, 0) at every end)
if [ -x "$ROOT/bin/sstream-san" ]; then
    mkdir -m 1777 lat-san
    SS_LATENCY_DIR=$T/lat-san timeout -k 10 300 "$ROOT/bin/sstream-san" run \
        p-low.yml --data f8.csv --no-progress --output-dir out-san \
        > res-san 2> err-san
    check "sanitizers: the paced run exits 0" test $? -eq 0
    lacks "sanitizers: no runtime error in any component" err-san \
        "runtime error|AddressSanitizer"
    grep '^Delays' res-san | sort > got-san
    same "sanitizers: awk's answer" got-san expected8
else
    echo "# sanitizer case skipped: bin/sstream-san is not built (make SAN=1)"
fi

# 6. a followed file, paced: 2000 lines at 1000 rows/s reach the sink no
# sooner than 1.8 s after the source started
cat > count.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
local n = 0
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :subscribe(function(e)
      n = n + 1
      if n % 500 == 0 then io.stdout:write(n, '\n'); io.stdout:flush() end
    end, print,
    function() print('events ' .. n); ZmqRx.sendZmqCompleted() end)
LUA
seq 1 2000 > grow.txt
bg "$SS" router --from ipc://$T/sock-in --to ipc://$T/sock-out --name r 2> r.err
"$SS" sink count.lua --from ipc://$T/sock-out --name sink > count.out 2> sink.err &
SINK=$!; _pids+=($SINK)
sleep 0.3
t0=$(date +%s%N)
"$SS" source --to ipc://$T/sock-in --name src --follow --rate 1000 grow.txt 2> src.err &
SRC=$!; _pids+=($SRC)
for ((i = 0; i < 600; i++)); do grep -qx 2000 count.out && break; sleep 0.1; done
t1=$(date +%s%N)
SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
check "follow: all 2000 lines arrived" grep -qx 2000 count.out
check "follow: 2000 lines at 1000/s took at least 1.8 s ($SECS s)" atleast "$SECS" 1.8
kill -TERM "$SRC"
wait_max 30 "$SRC"
check "follow: the source ends cleanly on SIGTERM" test $? -eq 0
wait_max 30 "$SINK"
contains "follow: the sink counted 2000 events" count.out "^events 2000$"

# 7. a restart from a checkpoint keeps pacing: 40000 rows at 10k/s,
# checkpoints every 200 ms, reduce-1 killed once a checkpoint completed;
# the resumed source's own last log line ("N lines ... T s (R lines/s,
# paced)", LOG_LEVEL=info) must show the rate held: T >= N / 10000 - 0.1
# (its clock starts before its first row is due) and R <= 10600
t0=$(date +%s%N)
LOG_LEVEL=info timeout -k 10 180 "$SS" run p.yml --data f40k.csv --rate 10k \
    --checkpoint-interval 200 --restarts 1 --no-progress --output-dir out-r \
    > res-r 2> err-r &
run=$!
_pids+=($run)
e1=""
for _ in $(seq 1 600); do
    e1=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["epoch"])' \
        out-r/checkpoints/manifest.json 2> /dev/null) && [ -n "$e1" ] && break
    sleep 0.1
done
sup=$(pgrep -P "$run" | head -1)
victim=$([ -n "$sup" ] && pgrep -P "$sup" -f -- "--name reduce-1( |$)" | head -1)
check "restart: a checkpoint completed before the kill (epoch ${e1:-none})" test -n "$e1"
check "restart: reduce-1 was found and killed" \
    eval '[ -n "$victim" ] && kill -KILL "$victim"'
wait_max 200 $run
check "restart: the run recovers and exits 0" test $? -eq 0
t1=$(date +%s%N)
SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
contains "restart: it resumed from a checkpoint" err-r \
    "restarting the whole pipeline from checkpoint [1-9][0-9]*"
grep '^Delays' res-r | sort > got-r
same "restart: awk's answer" got-r expected40
check "restart: 40000 rows at 10k/s took at least 3.6 s over both incarnations ($SECS s)" \
    atleast "$SECS" 3.6
contains "restart: the source's last start resumed its parts from the checkpoint" \
    out-r/logs/source.log "resuming each of its 4 parts from the checkpoint"
last=$(grep -E "lines, .* \(([0-9]+) lines/s, paced\)" out-r/logs/source.log | tail -1)
echo "    resumed source: $last"
read -r n2 s2 r2 < <(sed -E 's/.*source: ([0-9]+) lines, .* ([0-9.]+) s \(([0-9]+) lines\/s, paced\).*/\1 \2 \3/' <<< "$last")
check "restart: the resumed source read its ${n2:-?} rows at the rate (${s2:-?} s, ${r2:-?} rows/s)" \
    awk -v n="${n2:-0}" -v s="${s2:-0}" -v r="${r2:-99999}" \
    'BEGIN { exit !(n > 0 && s >= n / 10000 - 0.1 && r <= 10600) }'

# 8. a sealed file (sstream encrypt, format: sealed) is paced batch by
# batch: 20001 rows (its header is inside) at 10k/s, encrypted mode
"$SS" keygen keys > /dev/null 2>&1
"$SS" encrypt --keys keys f20k.csv f20k.sealed 2> /dev/null
sed -e 's/format: csv/format: sealed/' -e '/header: true/d' p.yml > p-sealed.yml
t0=$(date +%s%N)
timeout -k 10 180 "$SS" run p-sealed.yml --data f20k.sealed --keys keys \
    --security encrypted --rate 10k --no-progress --output-dir out-sealed \
    > res-sealed 2> err-sealed
check "sealed: exit 0" test $? -eq 0
t1=$(date +%s%N)
SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
grep '^Delays' res-sealed | sort > got-sealed
same "sealed: awk's answer" got-sealed expected20
check "sealed: 20001 rows at 10k/s, batch by batch, took at least 1.5 s ($SECS s)" \
    atleast "$SECS" 1.5
finish
