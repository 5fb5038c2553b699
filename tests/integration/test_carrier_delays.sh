#!/bin/bash
# examples/carrier-delays end to end: a tumbling event-time window (one
# month per carrier) and a join with a static table (carriers.csv), run by
# `sstream run`, must give what sqlite3 computes with GROUP BY and a LEFT
# JOIN on the same file, in the three security modes: in enclave mode the
# join stage runs in an enclave too, carriers.csv bundled with its script
# (files.lines); a join reading it with io fails there.
source "$(dirname "$0")/lib.sh"
EX=$ROOT/examples/carrier-delays
rows=${ROWS:-20000}
"$SS" gen flights --rows "$rows" --seed 5 -o "$T/f.csv"

# sqlite3's answer: month, carrier, flights, total delay, name (the CSV's
# columns are text to sqlite3: cast them to sort months as numbers)
sqlite3 "$T/ref.db" <<SQL
.mode csv
.import $T/f.csv flights
.import $EX/carriers.csv carriers
.mode list
.separator ' '
.output $T/expected
SELECT printf('%04d-%02d', f.Year, f.Month), f.UniqueCarrier, COUNT(*),
       SUM(CAST(f.ArrDelay AS INTEGER)), COALESCE(c.Name, '(unknown)')
  FROM flights f LEFT JOIN carriers c ON c.Code = f.UniqueCarrier
 WHERE f.ArrDelay <> 'NA'
 GROUP BY f.Year, f.Month, f.UniqueCarrier
 ORDER BY CAST(f.Year AS INTEGER), CAST(f.Month AS INTEGER), f.UniqueCarrier;
SQL
check "sqlite3 has about 48 months x 20 carriers" test "$(wc -l < "$T/expected")" -ge 900
contains "sqlite3 sees the carrier missing from carriers.csv" "$T/expected" " AQ .*\(unknown\)$"

# output lines: month carrier flights total average name; drop the average
# for the comparison, and check it apart (total / flights, 2 decimals)
strip_avg() { sed -E 's/^([^ ]+ [^ ]+ [^ ]+ [^ ]+) [^ ]+ /\1 /' "$1"; }
avg_ok() {
    awk '{ a = sprintf("%.2f", $4 / $3); if (a != $5) { print "line " NR ": " $0 " (want " a ")"; bad = 1 } }
         END { exit bad }' "$1"
}

run() { # $1: tag, $2: pipeline file, $3...: more options
    local tag=$1 p=$2; shift 2
    timeout 300 "$SS" run "$p" --data "$T/f.csv" --output-dir "$T/o-$tag" \
        --timeout 240 --no-progress "$@" > "$T/$tag.out" 2> "$T/$tag.err"
}

run plain "$EX/pipeline.yml"
check "plain: exits 0" test $? -eq 0
strip_avg "$T/plain.out" > "$T/plain.got"
same "plain: per carrier and month, with names, equals sqlite3" "$T/plain.got" "$T/expected"
check "plain: averages are total / flights" avg_ok "$T/plain.out"
contains "plain: the window stage saw no late event" "$T/o-plain/logs/window-1.log" "window: [0-9]+ events, [0-9]+ windows, 0 late"
contains "plain: balanced" "$T/plain.err" "balanced"

# encrypted: the whole example, join included (the stages hold the key and
# read carriers.csv themselves), over sealed batches
run encrypted "$EX/pipeline.yml" --security encrypted
check "encrypted: exits 0" test $? -eq 0
strip_avg "$T/encrypted.out" > "$T/encrypted.got"
same "encrypted: per carrier and month, with names, equals sqlite3" "$T/encrypted.got" "$T/expected"
contains "encrypted: balanced" "$T/encrypted.err" "balanced"

# enclave mode: every stage in an enclave, the join too: names.lua reads
# carriers.csv with files.lines, so the file travels in the stage's bundle
# (and its measurement); the window state lives in the enclave
LOG_LEVEL=info run enclave "$EX/pipeline.yml" --security enclave
check "enclave: exits 0" test $? -eq 0
strip_avg "$T/enclave.out" > "$T/enclave.got"
same "enclave: per carrier and month, with names, equals sqlite3" "$T/enclave.got" "$T/expected"
contains "enclave: balanced" "$T/enclave.err" "balanced"
contains "enclave: the join ran in an enclave" "$T/enclave.err" "stage 'names' runs in enclave"
contains "... which the key service vouched for" "$T/enclave.err" "released the data key to worker names-1"

# the same names.lua beside a changed carriers.csv: the enclave loads that
# file, so its measurement differs and the key service refuses the enclave
mkdir -p "$T/evil"
cp "$EX/names.lua" "$T/evil/"
sed 's/^AA,American Airlines$/AA,Evil Airlines/' "$EX/carriers.csv" > "$T/evil/carriers.csv"
SS="$ROOT/bin/sstream-test" SS_RUN_TEST_SWAP_SCRIPT="names=$T/evil/names.lua" \
    run evil "$EX/pipeline.yml" --security enclave
check "enclave: a changed carriers.csv: the run fails" test $? -ne 0
contains "... because the key service refuses the enclave" "$T/evil.err" \
    "measurement of stage 'names' does not match the manifest"
lacks "... and no name from the changed file is printed" "$T/evil.out" "Evil"

# the sandbox still has no io: the old names.lua (io.lines) fails there
mkdir -p "$T/io"
cp "$EX"/*.lua "$EX"/carriers.csv "$EX"/pipeline.yml "$T/io/"
cat > "$T/io/names.lua" <<'LUA'
local ZmqRx = require 'zmq-rx'
local names = {}
for line in io.lines('carriers.csv') do names[#names + 1] = line end
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM')):subscribeToSocket(os.getenv('TO'))
LUA
run io "$T/io/pipeline.yml" --security enclave
check "enclave: a join stage reading its table with io fails" test $? -ne 0
contains "... because io does not exist in the enclave" "$T/io.err" "attempt to index a nil value \(global 'io'\)"
finish
