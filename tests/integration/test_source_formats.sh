#!/bin/bash
# The source's inputs: a file cut into parts, stdin (streamed, one part),
# and JSON lines (each line becomes a structured event, a bad line is
# rejected with its line number). The sink counts and sums what arrives.
source "$(dirname "$0")/lib.sh"
cd "$T"
cat > sum.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
local json = require 'json'
local n, total, kinds = 0, 0, {}
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :subscribe(function(e)
      n = n + 1
      if type(e) == 'table' then
        total = total + e.v
        kinds[type(e.tags)] = true
      else
        total = total + tonumber(e:match('^(%d+)'))
      end
    end, print,
    function()
      local k = {}
      for t in pairs(kinds) do k[#k + 1] = t end
      table.sort(k)
      print('events ' .. n .. ' total ' .. total .. ' kinds ' .. table.concat(k, ','))
      ZmqRx.sendZmqCompleted()
    end)
LUA
wire() { # $1: tag; then the source's arguments
    local tag=$1; shift
    bg "$SS" router --from ipc://$T/$tag-in --to ipc://$T/$tag-out --name r-$tag 2> /dev/null
    "$SS" sink sum.lua --from ipc://$T/$tag-out --name sink-$tag > out-$tag 2> err-$tag &
    local sink=$!; _pids+=($sink)
    sleep 0.3
    "$SS" source --to ipc://$T/$tag-in --name src-$tag --rejects rej-$tag.jsonl "$@" 2> src-$tag.err
    echo $? > rc-$tag
    wait_max 120 $sink
}
seq 1 50000 | sed 's/$/,x/' > nums.csv      # 1..50000, sum 1250025000
wire file --parts 3 nums.csv
check "a file in 3 parts: source exits 0" test "$(cat rc-file)" -eq 0
contains "a file in 3 parts: every line arrives once" out-file "^events 50000 total 1250025000 "
seq 1 50000 | sed 's/$/,x/' | wire stdin --parts 3 -
check "stdin: source exits 0" test "$(cat rc-stdin)" -eq 0
contains "stdin: every line arrives once" out-stdin "^events 50000 total 1250025000 "
contains "stdin with --parts: says it injects one part" src-stdin.err "not a regular file: injecting it as 1 part"
{
    for i in $(seq 1 300); do echo "{\"v\": $i, \"tags\": [\"a\", \"b\"]}"; done
    echo '{"v": 1, "tags": '                                   # line 301: bad JSON
    echo '{"v": 5, "tags": []}'
} > events.jsonl
wire jsonl --format jsonl events.jsonl
check "jsonl: source exits 0" test "$(cat rc-jsonl)" -eq 0
contains "jsonl: values arrive as tables (arrays inside)" out-jsonl "^events 301 total 45155 kinds table$"
contains "jsonl: a bad line is rejected with its line number" rej-jsonl.jsonl '"line":301,"error":"json.decode: '
finish
