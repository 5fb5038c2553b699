#!/bin/bash
# The other Lua engine (docs/LUA.md, "Engines"): builds bin/sstream-luajit
# (`make LUA=luajit`, into build-luajit/) and runs on it the Lua tests,
# the seed's listings, the unit tests of the stage runtime (sandbox,
# memory cap) and of the pipeline file, the script budget
# (test_script_limits), DelayedFlights in the three
# security modes against awk, and the engine's own checks: a pipeline
# file's `lua:` key refused by the other binary, a Lua 5.3 script failing
# at start with a reason. The enclave run also checks that the enclave's
# LuaJIT never starts its JIT: were it on, its first compiled trace would
# map code executable and the enclave's seccomp filter would kill it (the
# batches would be rejected, the answer would differ from awk's), and that
# the measuring switch SS_LUAJIT=on turns the JIT on in a plain stage only.
# SKIPPED (0 passed, 0 failed) when LuaJIT's development package
# (libluajit2-5.1-dev, see scripts/deps.sh) is not installed.
source "$(dirname "$0")/../integration/lib.sh"
cd "$ROOT"
if ! pkg-config --exists luajit; then
    echo "SKIPPED: LuaJIT is not installed (pkg-config luajit; scripts/deps.sh installs libluajit2-5.1-dev)"
    finish
    exit 0
fi
LJ=$ROOT/bin/sstream-luajit

timeout -k 10 1200 make --no-print-directory -j2 LUA=luajit all unit-bins \
    > "$T/build.log" 2>&1
check "make LUA=luajit builds bin/sstream-luajit" test $? -eq 0 -a -x "$LJ"
[ -x "$LJ" ] || { finish; exit 1; }

# summary NAME LOG: the log's "N passed, M failed" line has M = 0, N > 0
summary() {
    if grep -qE '^[1-9][0-9]* passed, 0 failed' "$2"; then ok "$1"
    else notok "$1" "$(grep -E '^(not ok|FAILED|  )|passed' "$2" | head -20)"; fi
}

for t in tests/lua/test_*.lua; do
    timeout -k 5 300 "$LJ" lua "$t" > "$T/lua.log" 2>&1
    summary "$t on LuaJIT" "$T/lua.log"
done

for u in test_stage test_pipeline; do
    CMOCKA_MESSAGE_OUTPUT=stdout timeout -k 5 300 "build-luajit/tests/$u" \
        > "$T/$u.log" 2>&1
    check "unit $u on LuaJIT" test $? -eq 0
done

SS=$LJ timeout -k 10 600 bash tests/integration/test_listings.sh \
    > "$T/listings.log" 2>&1
summary "the seed's listings on LuaJIT" "$T/listings.log"

# the script budget on LuaJIT: endless events, completion and main chunk
# end as rejects / failures naming the stage, plain and enclave (a plain
# worker's stage used to run the JIT, whose compiled loops never look at
# hooks: the run hung until --timeout)
SS=$LJ timeout -k 10 900 bash tests/integration/test_script_limits.sh \
    > "$T/limits.log" 2>&1
summary "the script budget on LuaJIT (test_script_limits)" "$T/limits.log"

"$LJ" gen flights --rows 20000 --seed 5 -o "$T/f.csv"
reference "$T/f.csv" > "$T/expected"
for mode in plain encrypted enclave; do
    timeout -k 10 300 "$LJ" run examples/delayed-flights/pipeline.yml \
        --data "$T/f.csv" --security "$mode" --no-progress \
        --output-dir "$T/o-$mode" > "$T/r-$mode" 2> "$T/e-$mode"
    check "DelayedFlights on LuaJIT, $mode, exits 0" test $? -eq 0
    grep '^Delays' "$T/r-$mode" > "$T/d-$mode"
    same "DelayedFlights on LuaJIT, $mode, equals awk" "$T/d-$mode" "$T/expected"
done

# the lua: key: each binary refuses the other engine's pipelines by name
mkdir -p "$T/k" && cd "$T/k"
cat > int.lua <<'EOF'
local ZmqRx = require 'zmq-rx'
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :map(function(x) return #x // 2 end)
  :subscribeToSocket(os.getenv('TO'))
EOF
cat > cnt.lua <<'EOF'
local ZmqRx = require 'zmq-rx'
local n = 0
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :subscribe(function() n = n + 1 end, nil, function() print('n=' .. n) end)
EOF
printf 'a\nbb\nccc\n' > d.txt
printf 'lua: 5.4\nsource: {file: d.txt}\nstages:\n  - {name: half, script: int.lua}\nsink: {script: cnt.lua}\n' > p54.yml
sed 's/^lua: 5.4/lua: luajit/' p54.yml > pjit.yml
sed '/^lua:/d' p54.yml > pnone.yml
timeout 60 "$LJ" run p54.yml --no-progress > out1 2>&1
check "LuaJIT refuses a 'lua: 5.4' pipeline" test $? -ne 0
contains "... naming line, engine and the binary to use" out1 \
    "p54.yml:1: lua: 5.4: this pipeline's scripts need Lua 5.4, but this binary runs LuaJIT.*use bin/sstream "
timeout 60 "$SS" run pjit.yml --no-progress > out2 2>&1
check "Lua 5.4 refuses a 'lua: luajit' pipeline" test $? -ne 0
contains "... naming the binary to use" out2 \
    "pjit.yml:1: lua: luajit: .*runs Lua 5\.4.*use bin/sstream-luajit"
timeout 60 "$LJ" run pnone.yml --no-progress > out3 2>&1
check "a Lua 5.3 script (//) fails at start on LuaJIT" test $? -ne 0
contains "... with the line and the reason" out3 \
    "int.lua:3: .*this binary runs LuaJIT: Lua 5.1 syntax"
lacks "... before any row went through" out3 "^n="
timeout 60 "$SS" run p54.yml --no-progress > out4 2>&1
lacks "Lua 5.4 accepts the 'lua: 5.4' pipeline" out4 "lua: 5.4:"
contains "... and runs it to the end" out4 "^n=3"

# SS_LUAJIT=on (bench/run.sh's measuring switch) turns the JIT on in a
# plain stage, which otherwise runs the interpreter, and never in an
# enclave (whose seccomp filter would kill it at its first trace)
cat > js.lua <<'EOF'
local ZmqRx = require 'zmq-rx'
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :map(function(x) return 'jit=' .. tostring(jit ~= nil and jit.status()) end)
  :subscribeToSocket(os.getenv('TO'))
EOF
cat > jp.lua <<'EOF'
local ZmqRx = require 'zmq-rx'
local seen = {}
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :subscribe(function(x) seen[x] = true end, nil,
             function() for k in pairs(seen) do print(k) end end)
EOF
printf 'source: {file: d.txt}\nstages:\n  - {name: js, script: js.lua}\nsink: {script: jp.lua}\n' > pj.yml
timeout 60 "$LJ" run pj.yml --no-progress > j1 2>&1
contains "a plain LuaJIT stage runs the interpreter" j1 "^jit=false$"
SS_LUAJIT=on timeout 60 "$LJ" run pj.yml --no-progress > j2 2>&1
contains "SS_LUAJIT=on: the JIT runs in a plain stage" j2 "^jit=true$"
SS_LUAJIT=on timeout 120 "$LJ" run pj.yml --security enclave --no-progress > j3 2>&1
contains "SS_LUAJIT=on: never in an enclave (no jit module there)" j3 "^jit=false$"
finish
