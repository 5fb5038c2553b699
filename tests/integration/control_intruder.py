"""An intruder on the control channel of `sstream run` (attack tool of
test_keys.sh).

    control_intruder.py ENDPOINT MODE [KEYDIR]

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
count nothing that is not the worker's own counters.
"""
import os, struct, sys, time
import msgpack, zmq

ep, mode = sys.argv[1], sys.argv[2]
keydir = sys.argv[3] if len(sys.argv) > 3 else None

def z85(name):
    with open(os.path.join(keydir, name)) as f:
        return f.read().strip().encode()

def header(kind, n):
    return b'SSB1' + bytes([1, kind]) + b'\0' * 22 + struct.pack('<I', n) + b'\0' * 16

def stats(name, role):
    m = {'name': name, 'role': role, 'stage': '', 'pid': os.getpid(),
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
    for m in (header(10, 0), stats('intruder', 'sink'), stats('sink', 'sink')):
        try:
            s.send(m, zmq.DONTWAIT)
        except zmq.Again:
            pass
    time.sleep(0.2)
print('sent DONE and forged counters (%s)' % mode)
s.close()
ctx.term()
