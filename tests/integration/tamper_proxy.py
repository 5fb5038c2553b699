#!/usr/bin/python3
"""A tampering man in the middle for tests/integration/test_tamper.sh.

It sits between a router's BACK endpoint and its consumer (the sink):
the consumer connects to LISTEN as if it were the router, and the proxy
connects to ROUTER as that consumer (same routing id), forwarding every
message both ways. It speaks just enough of the router protocol
(docs/PROTOCOL.md: 72-byte header, kinds DATA=1, CREDIT=5) to attack the
Nth DATA batch going to the consumer:

  none     forward everything (the control case)
  flip     flip one payload bit
  drop     swallow it (and acknowledge it upstream itself, so the router
           completes as if it had been delivered)
  replay   deliver it twice (the consumer's second acknowledgement is
           swallowed)
  reorder  hold it back and deliver it after the next one of its stream

and, for the attacks on results (N unused), on every batch flagged FINAL
(a stateful worker's result):

  record     forward it, and append it to the file TAMPER_FILE (one
             length-prefixed message per batch), e.g. in run A
  swapfinal  deliver the batches recorded in TAMPER_FILE instead (from an
             earlier run with the same keys and worker names), and
             acknowledge the real ones upstream itself
  dropfinal  a rogue router: swallow it (acknowledged upstream), and
             remove its stream from the end-of-stream table sent to the
             consumer, so that nothing declares it

Usage: tamper_proxy.py LISTEN ROUTER MODE N [CURVE_DIR]
With CURVE_DIR (a `sstream keygen` directory) it uses the pipeline's CURVE
keys on both sides, as a compromised host on the path would. Prints what it
did to stderr ("tamper: drop stream 0 batch 3").
"""
import os
import struct
import sys

import msgpack
import zmq

DATA, EOS, CREDIT = 1, 2, 5
FINAL = 8
# magic ver kind flags stream part seq count len first_row aux
# run producer epoch partition span reserved (wire version 2, 72 bytes)
HDR = struct.Struct("<4sBBHIIQIIQQQIIHHI")


def header(msg):
    return HDR.unpack_from(msg, 0)


def credit_for(msg, consumer):
    """A CREDIT acknowledging batch msg (same lineage, one credit), as
    the consumer whose routing id is consumer would send it."""
    h = header(msg)
    magic, ver, stream, part, seq, run = h[0], h[1], h[4], h[5], h[6], h[11]
    return HDR.pack(magic, ver, CREDIT, 0, stream, part, seq, 0, 0, 0, 1,
                    run, name_id(consumer), 0, 0, 0, 0)


def name_id(name):
    """FNV-1a 32 of a routing id: the producer field its messages carry."""
    h = 2166136261
    for b in name:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def is_final(msg):
    return header(msg)[3] & FINAL != 0


def without_streams(msg, gone):
    """An EOS message whose stream table lacks the streams in gone."""
    h = list(header(msg))
    eos = msgpack.unpackb(msg[HDR.size:])
    eos["streams"] = [r for r in eos["streams"] if r[0] not in gone]
    payload = msgpack.packb(eos)
    h[8] = len(payload)
    return HDR.pack(*h) + payload


def recorded(path):
    out = []
    with open(path, "rb") as f:
        while True:
            n = f.read(4)
            if len(n) < 4:
                return out
            out.append(f.read(struct.unpack("<I", n)[0]))


def lineage(msg):
    h = header(msg)
    return (h[4], h[6], h[5])


def curve(sock, keydir, server):
    def read(name):
        with open("%s/curve-%s" % (keydir, name)) as f:
            return f.read().strip().encode()
    sock.curve_publickey = read("client.pub")
    sock.curve_secretkey = read("client.key")
    sock.curve_serverkey = read("server.pub")
    if server:
        sock.curve_server = True
        sock.curve_publickey = read("server.pub")
        sock.curve_secretkey = read("server.key")


def main():
    listen, router, mode, nth = sys.argv[1:5]
    nth = int(nth)
    keydir = sys.argv[5] if len(sys.argv) > 5 else None
    ctx = zmq.Context()
    front = ctx.socket(zmq.ROUTER)
    front.linger = 0
    if keydir:
        curve(front, keydir, True)
    front.bind(listen)
    up = None
    peer = None
    ndata = 0
    held = None
    swallow = set()
    dropped = set()  # dropfinal: FINAL streams swallowed
    poller = zmq.Poller()
    poller.register(front, zmq.POLLIN)
    idle = 0
    while True:
        ev = dict(poller.poll(500))
        if not ev:
            idle += 1
            if peer is not None and idle > 40:  # 20 s of silence: done
                break
            continue
        idle = 0
        if front in ev:
            pid, msg = front.recv_multipart()
            if up is None:
                peer = pid
                up = ctx.socket(zmq.DEALER)
                up.linger = 0
                up.setsockopt(zmq.ROUTING_ID, pid)
                if keydir:
                    curve(up, keydir, False)
                up.connect(router)
                poller.register(up, zmq.POLLIN)
            if len(msg) >= HDR.size and header(msg)[2] == CREDIT and \
                    lineage(msg) in swallow:
                swallow.discard(lineage(msg))
                continue
            up.send(msg)
        if up is not None and up in ev:
            msg = up.recv()
            if mode == "dropfinal" and len(msg) >= HDR.size and \
                    header(msg)[2] == EOS and dropped:
                msg = without_streams(msg, dropped)
                print("tamper: dropfinal removed stream%s %s from the end "
                      "of stream" % ("s" if len(dropped) > 1 else "",
                                     " ".join(map(str, sorted(dropped)))),
                      file=sys.stderr, flush=True)
            if len(msg) >= HDR.size and header(msg)[2] == DATA and \
                    is_final(msg) and mode in ("record", "swapfinal",
                                               "dropfinal"):
                h = header(msg)
                what = "stream %d batch %d" % (h[4], h[6])
                print("tamper: %s %s" % (mode, what), file=sys.stderr,
                      flush=True)
                if mode == "record":
                    with open(os.environ["TAMPER_FILE"], "ab") as f:
                        f.write(struct.pack("<I", len(msg)) + msg)
                    front.send_multipart([peer, msg])
                elif mode == "swapfinal":
                    up.send(credit_for(msg, peer))
                    for old in recorded(os.environ["TAMPER_FILE"]):
                        front.send_multipart([peer, old])
                        swallow.add(lineage(old))
                else:
                    up.send(credit_for(msg, peer))
                    dropped.add(h[4])
                continue
            if len(msg) < HDR.size or header(msg)[2] != DATA:
                if held is not None:  # nothing may overtake the held one
                    front.send_multipart([peer, held])
                    held = None
                front.send_multipart([peer, msg])
                continue
            ndata += 1
            h = header(msg)
            what = "stream %d batch %d" % (h[4], h[6])
            if held is not None and header(held)[4] == h[4]:
                front.send_multipart([peer, msg])  # overtakes the held one
                front.send_multipart([peer, held])
                held = None
                continue
            if ndata != nth or mode == "none":
                front.send_multipart([peer, msg])
                continue
            print("tamper: %s %s" % (mode, what), file=sys.stderr,
                  flush=True)
            if mode == "flip":
                b = bytearray(msg)
                b[HDR.size + len(b[HDR.size:]) // 2] ^= 0x10
                front.send_multipart([peer, bytes(b)])
            elif mode == "drop":
                up.send(credit_for(msg, peer))
            elif mode == "replay":
                front.send_multipart([peer, msg])
                front.send_multipart([peer, msg])
                swallow.add(lineage(msg))
            elif mode == "reorder":
                held = msg
    ctx.destroy(0)


if __name__ == "__main__":
    main()
