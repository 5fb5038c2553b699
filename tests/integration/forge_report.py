"""A forger of attestation reports (attack tool of test_keys.sh, issue 8
item 2): a hand-written client of the key service protocol, run as a
worker host's uid with that worker's own key folder.

    forge_report.py KEYSERVICE WORKER_KEYS ENCLAVE_KEYS NAME STAGE MEASUREMENT [RUN]

It reads platform.key from ENCLAVE_KEYS (the worker's enclave's folder),
signs a report {MEASUREMENT (hex, the manifest's), a public key of its
own, STAGE, NAME, RUN (hex; the key service of a run releases the key
to reports of that run only)} with it, asks the key service at KEYSERVICE with the
worker's CURVE keys, and opens what comes back. Prints one line:
  "cannot read platform.key: ..."   (exit 3) the uid cannot forge;
  "GOT THE DATA KEY (N bytes)"      (exit 0) the forge worked (N: the
                                    key blob and the 16-byte restore grant);
  "refused: ..." / "no answer"      (exit 1).
Uses libsodium through ctypes (ed25519, sealed boxes) and pyzmq.
"""
import ctypes, ctypes.util, os, sys
import zmq

ep, wkeys, ekeys, name, stage, mhex = sys.argv[1:7]
run = int(sys.argv[7], 16) if len(sys.argv) > 7 else 0
try:
    with open(os.path.join(ekeys, 'platform.key'), 'rb') as f:
        psk = f.read()
except OSError as e:
    print('cannot read platform.key: %s' % e.strerror)
    sys.exit(3)
if len(psk) != 72 or psk[:8] != b'SSPLATS1':
    print('cannot read platform.key: not a platform key')
    sys.exit(3)
na = ctypes.CDLL(ctypes.util.find_library('sodium'))
na.sodium_init()
pk, sk = ctypes.create_string_buffer(32), ctypes.create_string_buffer(32)
na.crypto_box_keypair(pk, sk)
body = (b'SSRPT2\0\0' + bytes.fromhex(mhex) + pk.raw +
        stage.encode().ljust(64, b'\0') + name.encode().ljust(64, b'\0') +
        run.to_bytes(8, 'little'))
sig = ctypes.create_string_buffer(64)
na.crypto_sign_detached(sig, None, body, ctypes.c_ulonglong(len(body)),
                        psk[8:])
report = body + sig.raw

def z85(f):
    with open(os.path.join(wkeys, f)) as fh:
        return fh.read().strip().encode()
ctx = zmq.Context()
s = ctx.socket(zmq.REQ)
s.linger = 0
s.curve_serverkey = z85('curve-keyservice.pub')
s.curve_publickey = z85('curve-client.pub')
s.curve_secretkey = z85('curve-client.key')
s.connect(ep)
s.send(b'SSKR1' + report)
if not s.poll(5000):
    print('no answer')
    sys.exit(1)
rep = s.recv()
if rep[:2] != b'OK':
    print('refused: %s' % rep[2:].decode(errors='replace'))
    sys.exit(1)
blob = ctypes.create_string_buffer(len(rep) - 2 - 48)
if na.crypto_box_seal_open(blob, rep[2:], ctypes.c_ulonglong(len(rep) - 2),
                           pk, sk) != 0:
    print('refused: the sealed key does not open')
    sys.exit(1)
print('GOT THE DATA KEY (%d bytes)' % len(blob.raw))
