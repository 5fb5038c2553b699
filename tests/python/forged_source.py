#!/usr/bin/python3
"""An attacker's tool for tests/integration/test_forged_source.sh: joins a
router's FRONT as a source of its own name, in the group of the real
source, and sends batches on the real source's stream before the real
source starts (issue 8, defect 7: the router used to keep them and drop
the honest batches with the same numbers as duplicates, so the forged
events replaced real ones and the run exited 0).

Usage: forged_source.py ENDPOINT NAME VICTIM BATCHES EVENT [RUN_HEX]
  sends seqs 0..BATCHES-1 on stream_of(VICTIM), each holding 50 copies
  of the string EVENT, without waiting; then prints, for 3 s, what the
  router answered ("received N" / "aborted: REASON"), and stays connected
  until killed (no end of stream: a forger does not need one).
"""
import sys
import time

import msgpack
import zmq

from sstream_client import (ABORT, DATA, HELLO, LAST_PART, RECEIVED,
                            WELCOME, confirmed, message, name_id, parse,
                            stream_of)


def main():
    ep, name, victim, nbatches, event = sys.argv[1:6]
    run = int(sys.argv[6], 16) if len(sys.argv) > 6 else 0
    me = name_id(name)
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.ROUTING_ID, name.encode())
    s.linger = 0
    s.connect(ep)
    hello = msgpack.packb({"name": name, "role": "source",
                           "stage": "source", "credits": 0,
                           "stateful": False, "group": "source",
                           "members": 1})
    s.send(message(HELLO, hello, run=run, producer=me))
    if not s.poll(5000) or parse(s.recv())["kind"] != WELCOME:
        print("no welcome", flush=True)
        return 1
    stream = stream_of(victim)
    payload = b"".join(msgpack.packb(event) for _ in range(50))
    for seq in range(int(nbatches)):
        s.send(message(DATA, payload, flags=LAST_PART | 4, stream=stream,
                       seq=seq, count=50, first_row=1 + 50 * seq, run=run,
                       producer=me))
    print("sent %s batches on stream %d (%s's)" % (nbatches, stream,
                                                    victim), flush=True)
    got = 0
    end = time.time() + 3
    while time.time() < end:
        if not s.poll(200):
            continue
        m = parse(s.recv())
        if m["kind"] == RECEIVED:
            got += len(confirmed(m))
        elif m["kind"] == ABORT:
            print("aborted: %s" % msgpack.unpackb(m["payload"])["reason"],
                  flush=True)
    print("received %d" % got, flush=True)
    while True:  # stay connected, like a forger that says nothing more
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
