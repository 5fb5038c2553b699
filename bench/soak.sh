#!/bin/bash
# Soak: a long run with a fast source and a slow sink, then the same with
# a map worker killed (SIGKILL) and started again every minute. Every
# second the run's metrics give each component's RSS and each router's
# queue depth (sstream run --metrics); the supervisor's own RSS is read
# from /proc. At the end: the answer is checked against awk, the run's
# balance line is kept, and the growth of each component's RSS from the
# end of the first minute to the end is printed.
# A benchmark, not a test: it takes 2 x MINUTES (default 20 each).
#
#   bench/soak.sh [MINUTES]          (SOAK_RATE: sink events/s, 2000)
#
# SOAK_SCENARIOS="steady kill-restart" (the default) chooses the scenarios
# and their order: two copies with one scenario each can run side by side
# (each run picks its own free ports; give each its own SOAK_OUT).
# SOAK_KILL_EVERY: seconds between two kills of map-1 (default 60).
#
# Output in out/soak/<scenario>/ (metrics.jsonl, stderr, answer) and a
# summary on stdout.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
SS=${SS:-$ROOT/bin/sstream}
MIN=${1:-20}
RATE=${SOAK_RATE:-2000}
EVERY=${SOAK_KILL_EVERY:-60}
OUT=${SOAK_OUT:-$ROOT/out/soak}
ROWS=$((MIN * 60 * RATE))
mkdir -p "$OUT"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

cp "$ROOT/examples/delayed-flights/map-csv-to-event.lua" "$W/map.lua"
# the slow sink: counts events per carrier, and lets through at most
# RATE events a second (it spins: a slow user function, not a sleep)
cat > "$W/sink.lua" <<LUA
local ZmqRx = require 'zmq-rx'
local n, t0, per = 0, os.time(), {}
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM') or 'tcp://localhost:5556')
  :subscribe(function(e)
      n = n + 1
      local c = e.uniquecarrier or '?'
      per[c] = (per[c] or 0) + 1
      while n > (os.time() - t0 + 1) * $RATE do end
    end,
    function(err) print(err) end,
    function()
      local ks = {}
      for k in pairs(per) do ks[#ks + 1] = k end
      table.sort(ks)
      for _, k in ipairs(ks) do print(k .. ' ' .. per[k]) end
      ZmqRx.sendZmqCompleted()
    end)
LUA
cat > "$W/pipeline.yml" <<YML
name: soak
source: { file: data.csv, parts: 1, format: csv, header: true }
stages:
  - { name: map, script: map.lua, workers: 2 }
sink: { script: sink.lua }
YML
echo "soak: $MIN min per scenario, $ROWS rows, sink at $RATE events/s"
"$SS" gen flights --rows "$ROWS" --seed 11 -o "$W/data.csv" || exit 1
mawk -F, 'NR > 1 { n[$9]++ } END { for (k in n) print k, n[k] }' \
    "$W/data.csv" | sort > "$W/expected"

# scenario NAME KILL: one run; KILL=1 kills map-1 every EVERY s and starts it
# again with the same command line and environment
scenario() {
    local d=$OUT/$1 kill=$2
    rm -rf "$d"; mkdir -p "$d"
    (cd "$W" && exec "$SS" run pipeline.yml --no-progress --output-dir \
        "$d/run" --metrics "$d/metrics.jsonl" --timeout $((MIN * 60 * 3)) \
        > "$d/answer" 2> "$d/stderr") &
    local run=$! start=$SECONDS next=$EVERY kills=0 again=
    : > "$d/supervisor-rss"
    while kill -0 $run 2> /dev/null; do
        sleep 5
        local kb
        kb=$(awk '/VmRSS/ { print $2 }' /proc/$run/status 2> /dev/null)
        [ -n "$kb" ] && echo "$((SECONDS - start)) $kb" >> "$d/supervisor-rss"
        if [ "$kill" = 1 ] && [ $((SECONDS - start)) -ge $next ]; then
            next=$((next + EVERY))
            # map-1 is the run's child until it is first killed, then the
            # one this script started again (never another run's map-1)
            local v=
            if [ -n "$again" ] && kill -0 "$again" 2> /dev/null; then
                v=$again
            else
                v=$(pgrep -P $run -f "sstream worker .*--name map-1( |$)" | head -1)
            fi
            [ -n "$v" ] || continue
            tr '\0' '\n' < /proc/$v/cmdline > "$W/cmd" 2> /dev/null
            tr '\0' '\n' < /proc/$v/environ > "$W/env" 2> /dev/null
            local cwd
            cwd=$(readlink /proc/$v/cwd)
            kill -KILL $v 2> /dev/null && kills=$((kills + 1))
            sleep 1
            (cd "$cwd" && mapfile -t a < "$W/cmd" && mapfile -t e < "$W/env" &&
             exec env -i "${e[@]}" "${a[@]}" >> "$d/restarted.log" 2>&1) &
            again=$!
        fi
    done
    wait $run
    local rc=$? secs=$((SECONDS - start))
    grep -E '^[A-Z0-9]+ [0-9]+$' "$d/answer" | sort > "$d/got"
    local ok=wrong
    diff -q "$d/got" "$W/expected" > /dev/null && ok=right
    echo "== $1: exit $rc after $secs s, answer $ok ($(wc -l < "$d/got") carriers), $kills kills"
    grep -E 'balanced|not checked|unbalanced|rows in =' "$d/stderr" | tail -2 | sed 's/^ */   /'
    # per component: RSS after the first minute and at the end, max queue
    mawk -v t1=60 '
      { name = ""; t = 0; rss = 0; q = 0; role = "" }
      match($0, /"name":"[^"]*"/) { name = substr($0, RSTART + 8, RLENGTH - 9) }
      match($0, /"t":[0-9.]+/) { t = substr($0, RSTART + 4, RLENGTH - 4) + 0 }
      match($0, /"rss_kb":[0-9]+/) { rss = substr($0, RSTART + 9, RLENGTH - 9) + 0 }
      match($0, /"queue":[0-9]+/) { q = substr($0, RSTART + 8, RLENGTH - 8) + 0 }
      match($0, /"role":"[^"]*"/) { role = substr($0, RSTART + 8, RLENGTH - 9) }
      name != "" {
        if (t <= t1 || !(name in first)) first[name] = rss
        last[name] = rss
        if (rss > peak[name]) peak[name] = rss
        if (q > qmax[name]) qmax[name] = q
        roles[name] = role
      }
      END {
        printf "   %-10s %-7s %10s %10s %10s %8s\n", "component", "role", "rss@60s", "rss end", "rss peak", "queue max"
        for (n in last)
          printf "   %-10s %-7s %8.1f MB %8.1f MB %8.1f MB %8s\n", n, roles[n], first[n] / 1024, last[n] / 1024, peak[n] / 1024, roles[n] == "router" ? qmax[n] : "-"
      }' "$d/metrics.jsonl" | sort -k1,1
    awk 'NR == 1 { a = $2 } { b = $2; if ($2 > m) m = $2 }
         END { printf "   supervisor: %.1f MB first, %.1f MB last, %.1f MB peak\n", a / 1024, b / 1024, m / 1024 }' \
        "$d/supervisor-rss"
}

for s in ${SOAK_SCENARIOS:-steady kill-restart}; do
    case $s in
        steady) scenario steady 0 ;;
        kill-restart) scenario kill-restart 1 ;;
        *) echo "soak: unknown scenario '$s' (steady, kill-restart)" >&2; exit 2 ;;
    esac
done
