#!/usr/bin/env bash
# `sstream bench all --quick` into a temporary folder: it succeeds, every
# CSV has the expected header and number of rows, every measured value is
# a positive number (throughput percentiles: >= 0, an idle component
# counts as 0 MB/s), every run has its latency percentiles, the SVGs are well-formed XML, and the report embeds
# charts that exist.
source "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit 1
OUT=$T/eval

start=$(date +%s)
if "$SS" bench all --quick --out "$OUT" >"$T/bench.log" 2>&1; then
    ok "bench all --quick exits 0 ($(($(date +%s) - start)) s)"
else
    notok "bench all --quick exits 0" "$(tail -20 "$T/bench.log")"
fi

# csv FILE HEADER MIN_ROWS MAX_ROWS FIRST_NUMERIC_COLUMN [ZERO_OK_FROM]
csv() {
    local f=$OUT/$1 header=$2 lo=$3 hi=$4 first=$5 zero=${6:-0}
    if [ ! -s "$f" ]; then
        notok "$1 exists"
        return
    fi
    local h
    h=$(head -1 "$f")
    if [ "$h" = "$header" ]; then ok "$1 header"; else notok "$1 header" "got: $h"; fi
    local n
    n=$(($(wc -l <"$f") - 1))
    if [ "$n" -ge "$lo" ] && [ "$n" -le "$hi" ]; then
        ok "$1 has $n rows"
    else
        notok "$1 has $lo..$hi rows" "got $n"
    fi
    local bad
    bad=$(awk -F, -v first="$first" -v zero="$zero" -v cols="$(awk -F, '{print NF; exit}' "$f")" '
        NR == 1 { next }
        NF != cols { print "line " NR ": " NF " fields"; next }
        {
            for (i = first; i <= NF; i++) {
                if ($i !~ /^[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/) {
                    print "line " NR " field " i ": not a number: " $i; continue
                }
                if ($i + 0 <= 0 && !(zero && i >= zero && $i + 0 == 0))
                    print "line " NR " field " i ": not positive: " $i
            }
        }' "$f" | head -5)
    if [ -z "$bad" ]; then ok "$1 values are positive numbers"; else notok "$1 values" "$bad"; fi
}

csv micro_call.csv "mode,calls,total_s,ns_per_call" 2 2 2
# 4 variants x 6 chunk sizes (1K..1M, x4) x 2 runs
csv micro_copy.csv "variant,chunk_bytes,run,seconds,mb_per_s" 48 48 2
# 6 benchmarks x 2 parameters; stddev columns may be 0 only with 1 run
csv micro_lua.csv "bench,param,runs,native_mean_s,native_sd_s,enclave_mean_s,enclave_sd_s,peak_mem_kb,ratio" 12 12 2
modes=$(cut -d, -f1 "$OUT/throughput.csv" 2>/dev/null | tail -n +2 | sort -u | wc -l)
csv throughput.csv "mode,workers,completion_s,input_mb,mb_per_s" 3 9 2
if grep -q '^plain,' "$OUT/throughput.csv" 2>/dev/null; then ok "plain mode ran"; else notok "plain mode ran"; fi
# end-to-end latency per batch (SS_LATENCY_DIR): one row per run
csv latency.csv "mode,workers,batches,p50_ms,p99_ms,max_ms" 3 9 2
awk -F, 'NR > 1 && !($4 <= $5 && $5 <= $6) { bad = 1 } END { exit bad }' "$OUT/latency.csv" 2>/dev/null
check "latency.csv: p50 <= p99 <= max" test $? -eq 0
contains "report shows the latency percentiles" "$OUT/EVALUATION.md" "End-to-end latency per batch"
csv throughput_series.csv "mode,workers,t_s,min_mb_s,p25_mb_s,median_mb_s,p75_mb_s,max_mb_s" $((3 * modes)) 100000 2 4
# workers 1..2 in every stage, mappers 1..4; 2 runs each
csv scalability.csv "experiment,workers,run,seconds" 12 12 2

bad_svg=""
for s in "$OUT"/*.svg; do
    $PY -c 'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])' "$s" 2>/dev/null || bad_svg="$bad_svg $s"
done
nsvg=$(ls "$OUT"/*.svg 2>/dev/null | wc -l)
if [ -z "$bad_svg" ] && [ "$nsvg" -ge 5 ]; then ok "$nsvg SVG charts are well-formed"; else notok "SVG charts" "count $nsvg, bad:$bad_svg"; fi

missing=""
for img in $(grep -o '([a-z_0-9]*\.svg)' "$OUT/EVALUATION.md" | tr -d '()'); do
    [ -f "$OUT/$img" ] || missing="$missing $img"
done
if [ -s "$OUT/EVALUATION.md" ] && [ -z "$missing" ] && grep -q 'cores (nproc)' "$OUT/EVALUATION.md"; then
    ok "report embeds existing charts and describes the machine"
else
    notok "report" "missing:$missing"
fi
contains "report quotes the seed" "$OUT/EVALUATION.md" "23.6 ns"

finish
