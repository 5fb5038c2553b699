#!/bin/bash
# What CurveZMQ on the data links costs on top of the batches' sealing
# (docs/PERFORMANCE.md, "Double encryption"): DelayedFlights through
# `sstream run` with `--links curve` (the default) and `--links sealed`,
# alternating (one run of each, then again), REPEAT times per mode and
# pipeline. A benchmark, not a test.
#   bench/links_cost.sh DATA.csv [REPEAT]
# Environment: SS (default bin/sstream), SS_LINKS_MODES (default
# "encrypted enclave"), SS_LINKS_PIPELINES (default "pipeline
# pipeline-chained", files of examples/delayed-flights/). Each round runs
# plain mode once per pipeline, the reference of the ratios.
# Prints one line per run (CPU: the sum of the summary's cpu column, every
# component with its enclaves) and then, per configuration, the median CPU
# with curve and with sealed links, the change, and both against plain.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SS=${SS:-$ROOT/bin/sstream}
DATA=${1:?usage: bench/links_cost.sh DATA.csv [REPEAT]}
REPEAT=${2:-5}
MODES=${SS_LINKS_MODES:-encrypted enclave}
PIPES=${SS_LINKS_PIPELINES:-pipeline pipeline-chained}
T=$(mktemp -d "${TMPDIR:-/tmp}/sslinks.XXXXXX")
trap 'rm -rf "$T"' EXIT
EX=$ROOT/examples/delayed-flights

# one MODE PIPE LINKS: runs it, prints "LINKS MODE PIPE cpu"
one() {
    local la=()
    [ "$1" = plain ] || la=(--links "$3")
    rm -rf "$T/out"
    if ! timeout 1200 "$SS" run "$EX/$2.yml" --data "$DATA" --security "$1" \
        "${la[@]}" --no-progress --output-dir "$T/out" > "$T/res" 2> "$T/err"
    then
        echo "run failed ($1 $2 links $3):" >&2
        tail -3 "$T/err" >&2
        exit 1
    fi
    awk -v l="$3" -v m="$1" -v p="$2" '
        /^  [a-z].* s +[0-9.]+ MB$/ {
            for (i = 1; i <= NF; i++) if ($i == "s") c += $(i - 1) }
        END { printf "%s %s %s %.2f\n", l, m, p, c }' "$T/err" "$T/res"
}

for ((r = 1; r <= REPEAT; r++)); do
    for p in $PIPES; do
        one plain "$p" - | tee -a "$T/all"
        for m in $MODES; do
            for l in curve sealed; do
                one "$m" "$p" "$l" | tee -a "$T/all"
            done
        done
    done
done
echo
printf '%-10s %-18s %10s %10s %8s %10s %10s\n' mode pipeline curve_cpu \
    sealed_cpu change curve/plain sealed/plain
awk '
    function med(k,   n, i, j, t, a) {
        n = split(v[k], a, " ")
        for (i = 1; i <= n; i++)
            for (j = i + 1; j <= n; j++)
                if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    { k = $1 " " $2 " " $3; v[k] = v[k] " " $4; if ($2 != "plain") cfg[$2 " " $3] = 1 }
    END {
        for (c in cfg) {
            split(c, x, " ")
            pl = med("- plain " x[2])
            a = med("curve " c); b = med("sealed " c)
            printf "%-10s %-18s %10.2f %10.2f %+7.1f%% %10.2fx %10.2fx\n",
                x[1], x[2], a, b, (b / a - 1) * 100, a / pl, b / pl
        }
        for (c in cfg) {
            split(c, x, " ")
            if (!((x[2]) in shown))
                printf "plain      %-18s %10.2f\n", x[2], med("- plain " x[2])
            shown[x[2]] = 1
        }
    }' "$T/all"
