#!/usr/bin/python3
"""A SecureStreams client in Python, written from docs/PROTOCOL.md only.

It shows that another language can push events into a router and read
results from one: the wire format is a 72-byte little-endian header and
MessagePack events, the router protocol HELLO / WELCOME / DATA / RECEIVED /
CREDIT / EOS (a RECEIVED or CREDIT may acknowledge several batches). Needs
Debian's python3-zmq and python3-msgpack.
"""
import os
import struct

import msgpack
import zmq

MAGIC = b"SSB1"
VERSION = 2
# magic version kind flags stream part seq count len first_row aux
# run producer epoch partition span instance
HDR = struct.Struct("<4sBBHIIQIIQQQIIHHI")  # 72 bytes
DATA, EOS, HELLO, WELCOME, CREDIT, RECEIVED, HEARTBEAT, ABORT = (
    1, 2, 3, 4, 5, 6, 7, 8)
LAST_PART = 1


def name_id(name):
    """FNV-1a 32 of a component name: its `producer` id on the wire."""
    h = 2166136261
    for b in name.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def stream_of(name):
    """The stream a source called name owns: its id, top bit clear."""
    return name_id(name) & 0x7FFFFFFF


def message(kind, payload=b"", flags=0, stream=0, part=0, seq=0, count=0,
            first_row=0, aux=0, run=0, producer=0, version=VERSION):
    return HDR.pack(MAGIC, version, kind, flags, stream, part, seq, count,
                    len(payload), first_row, aux, run, producer, 0, 0, 0,
                    0) + payload


def parse(frame):
    (magic, version, kind, flags, stream, part, seq, count, length,
     first_row, aux, run, producer, epoch, partition, span,
     instance) = HDR.unpack_from(frame)
    # instance: set only on DATA sealed by a stateful enclave
    if magic != MAGIC or version != VERSION or \
            length != len(frame) - HDR.size or (instance and kind != 1):
        raise ValueError("not a SecureStreams version 2 message")
    return dict(kind=kind, flags=flags, stream=stream, part=part, seq=seq,
                count=count, first_row=first_row, aux=aux, run=run,
                producer=producer, epoch=epoch, partition=partition,
                span=span, instance=instance, payload=frame[HDR.size:])


def confirmed(m):
    """The (stream, seq, part) lineages a RECEIVED or CREDIT names: the
    header's, or the payload's list when it acknowledges several."""
    if m["count"] <= 1 and not m["payload"]:
        return [(m["stream"], m["seq"], m["part"])]
    batches = msgpack.unpackb(m["payload"])["batches"]
    assert len(batches) == m["count"], m
    return [tuple(b) for b in batches]


class Peer:
    """A DEALER connected to a router, introduced by HELLO."""

    def __init__(self, ctx, endpoint, name, role, stage, credits=0,
                 timeout_ms=5000, run=None):
        # the run id: given, or SS_RUN (hex) as for any component
        self.run = run if run is not None else \
            int(os.environ.get("SS_RUN", "0"), 16)
        self.producer = name_id(name)
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.ROUTING_ID, name.encode())
        self.sock.setsockopt(zmq.LINGER, 1000)
        self.sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
        self.sock.connect(endpoint)
        hello = msgpack.packb({"name": name, "role": role, "stage": stage,
                               "credits": credits, "stateful": False,
                               "group": stage, "members": 1})
        self.send(HELLO, hello, aux=credits)
        welcome = self.recv()
        if welcome["kind"] != WELCOME:
            raise RuntimeError("expected WELCOME, got kind %d"
                               % welcome["kind"])

    def send(self, kind, payload=b"", **fields):
        """Sends one message stamped with this run and producer id."""
        self.sock.send(message(kind, payload, run=self.run,
                               producer=self.producer, **fields))

    def recv(self):
        while True:
            m = parse(self.sock.recv())
            if m["kind"] == ABORT:
                raise RuntimeError("router aborted: %r"
                                   % msgpack.unpackb(m["payload"]))
            if m["kind"] != HEARTBEAT:
                return m


class Producer(Peer):
    def __init__(self, ctx, endpoint, name, stage):
        super().__init__(ctx, endpoint, name, "source", stage)
        self.stage = stage

    def send_batch(self, stream, seq, events, raw=None, first_row=1):
        payload = raw if raw is not None else b"".join(
            msgpack.packb(e, use_bin_type=True) for e in events)
        self.send(DATA, payload, flags=LAST_PART, stream=stream, seq=seq,
                  count=len(events), first_row=first_row)
        r = self.recv()
        assert r["kind"] == RECEIVED and (stream, seq, 0) in \
            confirmed(r), r

    def end(self, streams):
        eos = msgpack.packb({"streams": [[s, n] for s, n in streams],
                             "roster": [], "group": self.stage,
                             "members": 1})
        self.send(EOS, eos)
        r = self.recv()
        assert r["kind"] == RECEIVED and r["aux"] == EOS, r


class Consumer(Peer):
    def __init__(self, ctx, endpoint, name, stage, credits=4):
        super().__init__(ctx, endpoint, name, "sink", stage, credits)

    def batches(self):
        """Yields (header, [events]) until end of stream. Acknowledges
        what it has read when nothing more is waiting: one CREDIT for
        all of them (coalesced, as the C workers do)."""
        done = []
        while True:
            if done and not self.sock.poll(0):
                self.ack(done)
                done = []
            m = self.recv()
            if m["kind"] == EOS:
                self.eos = msgpack.unpackb(m["payload"])
                return
            events = self._events(m)
            done.append((m["stream"], m["seq"], m["part"]))
            yield m, events

    def ack(self, lineages):
        """One CREDIT for every batch in lineages (stream, seq, part)."""
        s, q, p = lineages[0]
        payload = b"" if len(lineages) == 1 else msgpack.packb(
            {"batches": [list(x) for x in lineages]})
        self.send(CREDIT, payload, stream=s, seq=q, part=p,
                  count=len(lineages), aux=len(lineages))

    @staticmethod
    def _events(m):
        u = msgpack.Unpacker(raw=False)
        u.feed(m["payload"])
        return [e for e in u]
