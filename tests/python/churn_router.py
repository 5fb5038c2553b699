#!/usr/bin/python3
"""The attacker's tool of issue 10 (defect 4, memory per peer name): a
churn of peers with distinct names against one router, measuring the
router's resident size.

  churn_router.py FRONT BACK ROUTER_PID N [SIDE] [WIDTH] [RATE]

Each of N peers (names churn-0 .. churn-N-1) connects, says HELLO, waits
for its WELCOME and goes away (closes its socket, so the router sees it
disconnect). SIDE front: as stateless workers of stage 'up' on the
router's FRONT (producers that go away before their end of stream, as a
restarted container with a new name does); back: as stateless workers
on its BACK; both (the default): half on each side. WIDTH peers are open
at once (default 100), and at most RATE peers start per second (default
1000: a router forgets a peer about a peer timeout after it went away,
and takes at most 4096 at once).

Prints the router's VmRSS every tenth of the churn, then one line
    churn: N peers, W welcomed, R refused, rss first F kB, half H kB,
           last L kB, peak P kB; heap first F kB, half H kB, last L kB
(one line) where "first" is after the first tenth and "half" after half
of the peers, "rss" the whole process and "heap" its main heap, where
the router keeps its peer records. libzmq's I/O thread allocates in an
arena of its own, whose resident size rises in steps of several MB while
its pools warm up over the first ten thousands of peers, and when
disconnections come in bursts (malloc keeps up to 64 MiB of freed memory:
ss_transport.c); compare the heap's half and last. Exit 0, or 1 when a peer got no
answer within 30 s (a loaded machine answers late)."""
import sys
import time

import msgpack
import zmq

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import sstream_client as sc  # noqa: E402


def status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, rest = line.partition(":")
            if k == key:
                return int(rest.split()[0])
    return 0


def heap_kb(pid):
    """The resident kB of the process's main heap ([heap] in smaps): the
    router's own records live there (its thread is the main thread);
    libzmq's I/O thread allocates in an arena of its own."""
    kb, in_heap = 0, False
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            if line[0] in "0123456789abcdef" and "-" in line.split()[0]:
                in_heap = line.rstrip().endswith("[heap]")
            elif in_heap and line.startswith("Rss:"):
                kb += int(line.split()[1])
    return kb


def main():
    front, back, pid, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
        int(sys.argv[4])
    side = sys.argv[5] if len(sys.argv) > 5 else "both"
    width = int(sys.argv[6]) if len(sys.argv) > 6 else 100
    rate = float(sys.argv[7]) if len(sys.argv) > 7 else 1000.0
    start = time.time()
    ctx = zmq.Context()
    welcomed = refused = 0
    first = half = last = peak = 0
    heap = {}
    tenth = max(1, n // 10)
    i = 0
    while i < n:
        ahead = i / rate - (time.time() - start)
        if ahead > 0:
            time.sleep(ahead)
        socks = []
        for j in range(i, min(n, i + width)):
            name = "churn-%d" % j
            on_back = side == "back" or (side == "both" and j % 2)
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.ROUTING_ID, name.encode())
            s.setsockopt(zmq.LINGER, 0)
            s.connect(back if on_back else front)
            hello = msgpack.packb({"name": name, "role": "worker",
                                   "stage": "up", "credits": 1,
                                   "stateful": False, "group": "up",
                                   "members": 1})
            s.send(sc.message(sc.HELLO, hello, producer=sc.name_id(name),
                              aux=1))
            socks.append(s)
        for s in socks:
            deadline = time.time() + 30
            while True:
                left = deadline - time.time()
                if left <= 0 or not s.poll(int(left * 1000)):
                    print("churn: a peer got no answer in 30 s",
                          file=sys.stderr)
                    return 1
                m = sc.parse(s.recv())
                if m["kind"] == sc.WELCOME:
                    welcomed += 1
                    break
                if m["kind"] == sc.ABORT:
                    refused += 1
                    if refused <= 3:
                        print("churn: refused: %s" % msgpack.unpackb(
                            m["payload"]).get("reason"), file=sys.stderr)
                    break
            s.close(0)
        before = i
        i = min(n, i + width)
        if before // tenth != i // tenth or i == n:
            ctx.term()  # every closed socket is gone (fds, libzmq's too)
            ctx = zmq.Context()
            last = status(pid, "VmRSS")
            h = heap_kb(pid)
            peak = max(peak, last)
            if not first:
                first, heap["first"] = last, h
            if not half and i >= n // 2:
                half, heap["half"] = last, h
            heap["last"] = h
            print("after %d peers: router rss %d kB (heap %d kB)"
                  % (i, last, h), flush=True)
    print("churn: %d peers, %d welcomed, %d refused, rss first %d kB, "
          "half %d kB, last %d kB, peak %d kB; heap first %d kB, half %d kB, "
          "last %d kB"
          % (n, welcomed, refused, first, half, last, peak,
             heap.get("first", 0), heap.get("half", 0), heap.get("last", 0)),
          flush=True)
    ctx.term()
    return 0


sys.exit(main())
