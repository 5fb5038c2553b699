#!/bin/bash
# A stage script that requires its own modules (helpers.lua beside it, and
# util/num.lua that helpers requires) runs the same in every mode: in
# enclave mode the modules travel with the script into the enclave and are
# covered by its measurement, so a changed module gets no key. So do the
# data files it reads with the `files` module (a changed data file:
# test_carrier_delays.sh).
source "$(dirname "$0")/lib.sh"
EX=$ROOT/examples/delayed-flights
cd "$T"
cp "$EX"/filter-event.lua "$EX"/reduce-events.lua "$EX"/print-results.lua .
cat > helpers.lua <<'LUA'
local M = {}
local util = require 'util.num'
function M.delay(a) return util.num(a[15]) end
return M
LUA
mkdir -p util
cat > util/num.lua <<'LUA'
return { num = function(s) return tonumber(s) end }
LUA
cat > mapmod.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
local csv = require 'csv'
local helpers = require("helpers")
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :map(function(line)
    local a = csv.parse(line)
    return { uniquecarrier = a[9], arrdelay = helpers.delay(a) }
  end)
  :subscribeToSocket(os.getenv('TO'))
LUA
cat > p.yml <<'YML'
name: mod
source: { file: data.csv, format: csv, header: true }
stages:
  - { name: map, script: mapmod.lua }
  - { name: filter, script: filter-event.lua }
  - { name: reduce, script: reduce-events.lua }
sink: { script: print-results.lua }
YML
"$SS" gen flights --rows 3000 --seed 8 -o data.csv
reference data.csv > expected
for m in plain encrypted enclave; do
    timeout 120 "$SS" run p.yml --security $m --output-dir "out-$m" \
        --no-progress > "got-$m" 2> "err-$m"
    rc=$?
    check "a script with its own modules runs in $m mode" test $rc -eq 0
    sort "got-$m" | grep '^Delays' > "sorted-$m"
    same "... and gives awk's answer ($m)" "sorted-$m" expected
done

# the modules are found beside the script, not in the working folder
(cd / && timeout 120 "$SS" run "$T/p.yml" --output-dir "$T/out-cwd" \
    --no-progress > "$T/got-cwd" 2> "$T/err-cwd")
check "plain mode run from another folder finds helpers.lua beside the script" test $? -eq 0
sort "$T/got-cwd" | grep '^Delays' > sorted-cwd
same "... and gives awk's answer" sorted-cwd expected

# the same script bytes, beside a changed helpers.lua: the enclave loads
# that module, so its measurement differs and the key service refuses
mkdir -p evil/util
cp mapmod.lua evil/
cp util/num.lua evil/util/
sed 's/a\[15\]/a[14]/' helpers.lua > evil/helpers.lua
timeout 120 env SS_RUN_TEST_SWAP_SCRIPT="map=$T/evil/mapmod.lua" \
    "$ROOT/bin/sstream-test" run p.yml --security enclave \
    --output-dir out-evil --no-progress > got-evil 2> err-evil
rc=$?
check "a changed module: the run fails" test $rc -ne 0
contains "... because the key service refuses the enclave" err-evil \
    "measurement of stage 'map' does not match the manifest"
lacks "... and no answer is printed" got-evil "^Delays"

# data files: files.read / files.lines of a literal bundle the file (here
# in a subfolder, its last line without a newline) in every mode; a name
# computed at run time is not bundled, and says how to bundle it
mkdir -p tables
printf 'AA,1\nDL,2\nWN,3' > tables/codes.csv
cat > mapfile.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
local csv = require 'csv'
local files = require 'files'
local codes, n = {}, 0
for line in files.lines('tables/codes.csv') do
  local f = csv.fields(line)
  codes[f[1]] = tonumber(f[2])
  n = n + 1
end
assert(n == 3, 'three lines, got ' .. n)
assert(#files.read 'tables/codes.csv' == 14)
assert(table.concat(files.list(), ' ') == 'tables/codes.csv')
local ok, err = pcall(files.read, 'tables/' .. 'other.csv')
assert(not ok and err:find("'tables/other.csv' is not a bundled data file", 1, true), err)
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :map(function(line)
    local a = csv.parse(line)
    return { uniquecarrier = a[9], arrdelay = codes[a[9]] or 0 }
  end)
  :subscribeToSocket(os.getenv('TO'))
LUA
sed 's/mapmod.lua/mapfile.lua/' p.yml > pf.yml
for m in plain encrypted enclave; do
    timeout 120 "$SS" run pf.yml --security $m --output-dir "outf-$m" \
        --no-progress > "gotf-$m" 2> "errf-$m"
    check "a script reading a bundled data file runs in $m mode" test $? -eq 0
    grep '^Delays' "gotf-$m" | sort > "sortedf-$m"
done
check "... with results" test -s sortedf-plain
same "... the same in encrypted mode" sortedf-encrypted sortedf-plain
same "... and in enclave mode" sortedf-enclave sortedf-plain

# a data file over 16 MiB: refused before the stage runs, naming it
head -c $((16 * 1024 * 1024 + 1)) /dev/zero > tables/big.bin
sed 's|tables/codes.csv|tables/big.bin|' mapfile.lua > mapbig.lua
sed 's/mapmod.lua/mapbig.lua/' p.yml > pbig.yml
for m in plain enclave; do
    timeout 120 "$SS" run pbig.yml --security $m --output-dir "outb-$m" \
        --no-progress > "gotb-$m" 2> "errb-$m"
    check "a data file over 16 MiB fails the run ($m)" test $? -ne 0
    contains "... saying which and the limit ($m)" "errb-$m" \
        "data file .*tables/big.bin \(named by .*mapbig.lua\) is 16777217 bytes: a file bundled with a stage script may have at most 16 MiB"
done
finish
