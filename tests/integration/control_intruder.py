"""An intruder on the control channel of `sstream run` (attack tool of
test_keys.sh).

    control_intruder.py ENDPOINT MODE [KEYDIR [NAMES]]

It knows ENDPOINT (SS_CONTROL, read from a component's environment) and
tries to stop or fool the run: it sends the sink's DONE and counters
under a made-up name ("intruder") and under the sink's name, then says
what it sent on stdout. MODE:

  plain    no CURVE at all
  foreign  CURVE with a fresh key pair of its own, and the monitor's
           public key (public: KEYDIR/monitor.pub)
  stolen   CURVE with the keys of KEYDIR (a compromised worker host
           that holds its own key folder)

The monitor must refuse the first two at the handshake and, for the third,
count nothing that is not the worker's own counters. NAMES (comma-
separated) are more components to forge counters for, e.g. a chained
stage's worker (test_chain.sh): only its host worker may report them.
"""
import os, struct, sys, time
import msgpack, zmq

ep, mode = sys.argv[1], sys.argv[2]
keydir = sys.argv[3] if len(sys.argv) > 3 else None
names = sys.argv[4].split(',') if len(sys.argv) > 4 else []

def z85(name):
    with open(os.path.join(keydir, name)) as f:
        return f.read().strip().encode()

def header(kind, n):
    # the 72-byte header of wire version 2 (src/wire/ss_batch.h): magic,
    # version, kind, flags, stream, part, seq, count, len, first_row, aux,
    # run, producer, epoch, partition, span, instance (0 here)
    return struct.pack('<4sBBHIIQIIQQQIIHHI', b'SSB1', 2, kind, 0, 0, 0, 0,
                       0, n, 0, 0, 0, 0, 0, 0, 0, 0)

def stats(name, role, stage=''):
    m = {'name': name, 'role': role, 'stage': stage, 'pid': os.getpid(),
         'in': 999999, 'out': 999999, 'final': False}
    p = msgpack.packb(m, use_bin_type=True)
    return header(9, len(p)) + p

ctx = zmq.Context()
s = ctx.socket(zmq.PUSH)
s.linger = 2000
if mode == 'foreign':
    pub, sec = zmq.curve_keypair()
    s.curve_serverkey = z85('monitor.pub')
    s.curve_publickey = pub
    s.curve_secretkey = sec
elif mode == 'stolen':
    s.curve_serverkey = z85('monitor.pub')
    s.curve_publickey = z85('curve-client.pub')
    s.curve_secretkey = z85('curve-client.key')
s.connect(ep)
for _ in range(5):
    forged = [stats(n, 'worker', n.rsplit('-', 1)[0]) for n in names]
    for m in [header(10, 0), stats('intruder', 'sink'),
              stats('sink', 'sink')] + forged:
        try:
            s.send(m, zmq.DONTWAIT)
        except zmq.Again:
            pass
    time.sleep(0.2)
print('sent DONE and forged counters (%s)' % mode)
s.close()
ctx.term()
