#!/bin/bash
# A client in another language (Python, tests/python/sstream_client.py,
# written from docs/PROTOCOL.md) pushes events into a router, a real
# worker transforms them, and the client reads the results from the next
# router: the wire format and the router protocol are language-neutral.
# A malformed batch from the client is rejected and counted by the worker.
source "$(dirname "$0")/lib.sh"
cd "$T"
cat > double.lua <<'LUA'
local ZmqRx = require 'zmq-rx'
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :map(function(e) return { v = e.v * 2, tag = e.tag .. '!' } end)
  :subscribeToSocket(os.getenv('TO'))
LUA
bg "$SS" router --from ipc://$T/a-in --to ipc://$T/a-out --name ra 2> ra.err
bg "$SS" router --from ipc://$T/b-in --to ipc://$T/b-out --name rb 2> rb.err
sleep 0.3
"$SS" worker double.lua --from ipc://$T/a-out --to ipc://$T/b-in --name dbl-1 \
    --rejects rejects.jsonl 2> w.err &
wpid=$!; _pids+=($wpid)
PYTHONPATH=$ROOT/tests/python timeout -k 5 120 $PY - "$T" > py.out 2> py.err <<'PY'
import sys, threading
import zmq
from sstream_client import Producer, Consumer, stream_of
t = sys.argv[1]
ctx = zmq.Context()
got, eos = [], {}
def consume():
    c = Consumer(ctx, "ipc://%s/b-out" % t, "py-sink", "py-out")
    for hdr, events in c.batches():
        got.append((hdr["stream"], hdr["seq"], events))
    eos.update(c.eos)
th = threading.Thread(target=consume)
th.start()
p = Producer(ctx, "ipc://%s/a-in" % t, "py-src", "py")
S = stream_of("py-src")  # a source sends on the stream its name owns
for seq in range(3):
    p.send_batch(S, seq, [{"v": seq * 10 + i, "tag": "é%d" % i} for i in range(10)],
                 first_row=1 + seq * 10)
# a batch announcing 2 events whose bytes are not MessagePack
p.send_batch(S, 3, [None, None], raw=b"\xc1\xc1\xc1")
p.end([(S, 4)])
th.join(30)
values = sorted(e["v"] for _, _, evs in got for e in evs)
print("batches", len(got))
print("events", sum(len(evs) for _, _, evs in got))
print("values_ok", values == sorted(2 * (s * 10 + i) for s in range(3) for i in range(10)))
print("tags_ok", all(e["tag"].endswith("!") and e["tag"].startswith("é") for _, _, evs in got for e in evs))
print("lineage", sorted((s if s != S else "S", q) for s, q, _ in got))
print("eos_streams", [[s if s != S else "S", n] for s, n in eos.get("streams")])
ctx.destroy(linger=500)
PY
rc=$?
check "the python client ran to the end" test $rc -eq 0
[ $rc -eq 0 ] || sed 's/^/    /' py.err | tail -20
contains "4 batches came back (one per batch sent, same lineage)" py.out "^batches 4$"
contains "30 events came back" py.out "^events 30$"
contains "every value was doubled by the Lua worker" py.out "^values_ok True$"
contains "UTF-8 strings survive the round trip" py.out "^tags_ok True$"
contains "lineage is kept end to end" py.out "^lineage \[\('S', 0\), \('S', 1\), \('S', 2\), \('S', 3\)\]$"
contains "end of stream carries the stream table" py.out "^eos_streams \[\['S', 4\]\]$"
wait_max 60 $wpid; wrc=$?
check "the worker exits 0 after the client's end of stream" test $wrc -eq 0
contains "the malformed batch is rejected by the worker" rejects.jsonl '"seq":3.*malformed event encoding.*"events":2|"events":2.*malformed event encoding'
finish
