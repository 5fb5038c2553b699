#!/bin/bash
# `make bench` (bench/run.sh) on a small file: the whole matrix runs in one
# go - awk, then plain, encrypted and enclave (and the last two with
# `--links sealed`), unchained and chained - and
# every configuration gives awk's answer, has its CPU time, its latency
# percentiles (at full speed, and at a fixed rate per mode), and the CPU
# time and peak RSS of its workers, on Lua 5.4 and (when built) on
# LuaJIT; the Makefile
# passes BENCH_ROWS. (The figures themselves are for a quiet machine.)
source "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit 1
SS_BENCH_NO_DOC=1 SS_BENCH_OUT=$T/bench timeout -k 10 900 bench/run.sh 20000 \
    > "$T/out" 2> "$T/err"
check "bench/run.sh 20000 exits 0 ($(tail -3 "$T/err" | tr '\n' ' '))" test $? -eq 0
contains "awk is the reference" "$T/out" "^  awk .*reference"
for c in "plain" "encrypted" "enclave" "plain, chained" "encrypted, chained" "enclave, chained" \
         "encrypted, sealed links" "enclave, sealed links, chained"; do
    line=$(grep -E "^  $c +[0-9.]+s " "$T/out") # the matrix row (wall time)
    check "$c: runs and gives awk's answer ($line)" \
        bash -c "grep -q 'yes (20 carriers)' <<< \"\$1\"" _ "$line"
    check "$c: CPU time, against plain and Lua 5.4, latency p50 / p99 / max" \
        bash -c "grep -Eq '[0-9.]+s +[0-9.]+ +([0-9.]+x|-) +([0-9.]+x|-) +[0-9]+ / [0-9]+ / [0-9]+ ms' <<< \"\$1\"" _ "$line"
done
# latency at a fixed rate (half the plain run's rows/s by default), per
# mode: the rate, the source's measured rate, p50 / p99 / max, the wait
# in the source p50 / p99, the answer
contains "the fixed rate is half of plain's measured rows/s" "$T/out" \
    "latency at a fixed rate: [0-9]+ rows/s \(50 % of the plain run's [0-9]+ rows/s\), 20000 rows"
for c in "plain" "encrypted" "enclave" "plain, chained" "encrypted, chained" "enclave, chained" \
         "encrypted, sealed links" "enclave, sealed links, chained"; do
    line=$(grep -E "^  $c +[0-9]+/s" "$T/out")
    check "$c at a fixed rate: latency p50 / p99 / max and awk's answer ($line)" \
        bash -c "grep -Eq '[0-9]+/s +[0-9]+/s +[0-9.]+s +[0-9]+ / [0-9]+ / [0-9]+ ms +[0-9]+ / [0-9]+ ms +yes' <<< \"\$1\"" _ "$line"
done
contains "workers' CPU and peak RSS, unchained" "$T/out" \
    "^    enclave: map-1 [0-9.]+ s [0-9.]+ MB, filter-1 [0-9.]+ s [0-9.]+ MB, reduce-1"
contains "workers' CPU and peak RSS, chained: one worker" "$T/out" \
    "^    enclave, chained: map-1 [0-9.]+ s [0-9.]+ MB; source "
contains "every other process's CPU and peak RSS: source, routers, sink" "$T/out" \
    "^    plain: map-1 .*; source [0-9.]+ s [0-9.]+ MB, router-1 [0-9.]+ s [0-9.]+ MB, .*sink [0-9.]+ s [0-9.]+ MB$"
# the engines: with bin/sstream-luajit built, every configuration runs on
# LuaJIT too (interpreted, and with the JIT on outside an enclave)
if [ -x bin/sstream-luajit ]; then
    for c in "plain, LuaJIT" "enclave, LuaJIT" "enclave, chained, LuaJIT" \
             "plain, LuaJIT, JIT on" "encrypted, chained, LuaJIT, JIT on"; do
        line=$(grep -E "^  $c +[0-9.]+s " "$T/out")
        check "$c: runs, gives awk's answer, CPU against Lua 5.4 ($line)" \
            bash -c "grep -Eq '[0-9.]+x +[0-9]+ / [0-9]+ / [0-9]+ ms +yes \(20 carriers\)' <<< \"\$1\"" _ "$line"
    done
    check "no JIT in an enclave: no such row" \
        bash -c "! grep -q '^  enclave.*JIT on' \"\$1\"" _ "$T/out"
else
    echo "# LuaJIT rows not checked: bin/sstream-luajit is not built (make LUA=luajit)"
fi
check "the data went to SS_BENCH_OUT" test -s "$T/bench/flights-20000.csv"
# the Makefile's variable reaches the script
make -n bench BENCH_ROWS=1234 > "$T/make-n" 2>&1
contains "make bench BENCH_ROWS=N runs bench/run.sh N" "$T/make-n" "bench/run.sh 1234"
finish
