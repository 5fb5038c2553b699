#!/usr/bin/python3
"""The attacker's tool of issue 10 (defect 3), for measurements: floods a
router's FRONT with large frames and reports the router's resident size.

  flood_router.py ENDPOINT ROUTER_PID MODE [N] [MB]

MODE data:  says HELLO as source 'flood', then sends N DATA frames of MB
            megabytes each (no worker: nothing drains the queue); MB may
            be a fraction (3.9: just under a 4 MiB frame limit).
MODE barrier: as data, but sends a checkpoint BARRIER (epoch 1) first:
            with a router started with --producers 2 and no other
            producer its epoch never aligns, and every frame after it is
            held for after the alignment (the router held up to 4096 of
            them, 16 GiB of 4 MiB frames, before it bounded their bytes).
MODE hello: sends N HELLO frames of MB megabytes from peers that never
            said HELLO before (each a new routing id).
MODE big:   sends one frame of MB megabytes (above the frame limit, the
            router's libzmq drops the connection).
Prints the router's VmRSS (and VmHWM, its peak) every second for 5 s
after the last frame (or until it ends), then the largest values seen,
in MB:
    largest: rss R MB, peak P MB"""
import sys
import time

import zmq

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import sstream_client as sc  # noqa: E402


def rss(pid):
    v = {}
    try:
        f = open("/proc/%d/status" % pid)
    except OSError:
        return None  # the router ended (e.g. it aborted the run)
    with f:
        for line in f:
            k, _, rest = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                v[k] = int(rest.split()[0]) // 1024
    return v


def main():
    ep, pid, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 12
    mb = float(sys.argv[5]) if len(sys.argv) > 5 else 50
    ctx = zmq.Context()
    blob = b"\xa1x" * int(mb * (1 << 19))  # mb MiB of 1-byte-string events
    socks = []
    peak = {"VmRSS": 0, "VmHWM": 0}

    def sample():
        v = rss(pid)
        for k in peak:
            peak[k] = max(peak[k], v[k] if v else 0)
        return v
    if mode in ("data", "barrier"):
        p = sc.Producer(ctx, ep, "flood", "src")
        if mode == "barrier":
            p.sock.send(sc.HDR.pack(sc.MAGIC, sc.VERSION, 12, 0, 0, 0, 0, 0,
                                    0, 0, 0, p.run, p.producer, 1, 0, 0, 0))
        for seq in range(n):
            p.send(sc.DATA, blob, flags=sc.LAST_PART,
                   stream=sc.stream_of("flood"), seq=seq, count=len(blob) // 2)
            sample()  # the router may end before the last frame (barrier)
        socks.append(p.sock)
    else:
        for i in range(1 if mode == "big" else n):
            s = ctx.socket(zmq.DEALER)
            name = "stranger-%d" % i
            s.setsockopt(zmq.ROUTING_ID, name.encode())
            s.setsockopt(zmq.LINGER, 0)
            s.connect(ep)
            s.send(sc.message(sc.HELLO, blob, producer=sc.name_id(name)))
            socks.append(s)
    for _ in range(5):
        time.sleep(1)
        v = sample()
        if v is None:
            print("router ended")
            break
        print("router rss %d MB (peak so far %d MB)" % (v["VmRSS"], v["VmHWM"]))
    print("largest: rss %d MB, peak %d MB" % (peak["VmRSS"], peak["VmHWM"]))
    for s in socks:
        s.close(0)
    ctx.term()


main()
