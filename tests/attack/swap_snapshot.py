#!/usr/bin/env python3
"""swap_snapshot.py - the attacker's tool against checkpoint snapshots.

Whoever can write the folder where a worker host keeps its snapshots
(the host itself in enclave mode, or anyone with access to that storage)
tries to make a restarted worker resume from a state of its choosing. The
store is a folder of blobs named WORKER-eEPOCH.snap, as workers write them
into their checkpoint folder (src/crypto/ss_snapshot.h describes a blob).
Each mode rewrites STORE/WORKER-eEPOCH.snap, the file the victim will
restore:

  older   STORE WORKER EPOCH          the same worker's snapshot of an older
                                      epoch (rollback: undo what came after)
  foreign STORE WORKER EPOCH OTHER    the same worker's snapshot of the same
                                      epoch from another run's store OTHER
  worker  STORE WORKER EPOCH OTHERW   another worker's snapshot (its key
                                      groups' state, counted twice)
  relabel STORE WORKER EPOCH          an older snapshot whose clear header is
                                      rewritten to say EPOCH
  flip    STORE WORKER EPOCH          one bit of the sealed state flipped
  forge   STORE WORKER EPOCH STATE    a plain (checksum only) blob holding
                                      the bytes of file STATE, with the right
                                      header and a correct SHA-256: a state
                                      the attacker wrote, passed off as a
                                      snapshot without a key

Prints what it did. Exit 0 when the file was rewritten, 2 on bad usage,
1 when the store lacks what the mode needs.
"""
import glob
import hashlib
import os
import re
import struct
import sys

FIXED = 32


def parse(blob):
    if len(blob) < FIXED or blob[:4] != b"SSSN":
        raise ValueError("not a snapshot")
    prot, ls, lw = blob[5], blob[6], blob[7]
    run, epoch = struct.unpack_from("<QI", blob, 8)
    length = struct.unpack_from("<Q", blob, 24)[0]
    stage = blob[FIXED:FIXED + ls].decode()
    worker = blob[FIXED + ls:FIXED + ls + lw].decode()
    return {"prot": prot, "ls": ls, "lw": lw, "run": run, "epoch": epoch,
            "length": length, "stage": stage, "worker": worker,
            "hl": FIXED + ls + lw}


def path(store, worker, epoch):
    return os.path.join(store, "%s-e%d.snap" % (worker, epoch))


def read(p):
    with open(p, "rb") as f:
        return f.read()


def write(p, data):
    tmp = p + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, p)


def epochs(store, worker):
    out = []
    for p in glob.glob(os.path.join(store, "%s-e*.snap" % worker)):
        m = re.search(r"-e(\d+)\.snap$", p)
        if m:
            out.append(int(m.group(1)))
    return sorted(out)


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    mode, store, worker, epoch = argv[0], argv[1], argv[2], int(argv[3])
    target = path(store, worker, epoch)
    older = [e for e in epochs(store, worker) if e < epoch]
    if mode in ("older", "relabel"):
        if not older:
            print("no snapshot of %s older than epoch %d in %s"
                  % (worker, epoch, store), file=sys.stderr)
            return 1
        blob = read(path(store, worker, older[-1]))
        if mode == "relabel":
            blob = bytearray(blob)
            struct.pack_into("<I", blob, 16, epoch)
            blob = bytes(blob)
        write(target, blob)
        print("%s: epoch %d's snapshot put in place of epoch %d's%s"
              % (mode, older[-1], epoch,
                 " (header rewritten to say %d)" % epoch
                 if mode == "relabel" else ""))
    elif mode == "foreign":
        if len(argv) < 5:
            return 2
        write(target, read(path(argv[4], worker, epoch)))
        print("foreign: %s's epoch %d from another run's store %s"
              % (worker, epoch, argv[4]))
    elif mode == "worker":
        if len(argv) < 5:
            return 2
        write(target, read(path(store, argv[4], epoch)))
        print("worker: %s's snapshot put in place of %s's" % (argv[4], worker))
    elif mode == "flip":
        blob = bytearray(read(target))
        h = parse(bytes(blob))
        blob[h["hl"] + (len(blob) - h["hl"]) // 2] ^= 0x01
        write(target, bytes(blob))
        print("flip: one bit of the sealed state flipped")
    elif mode == "forge":
        if len(argv) < 5:
            return 2
        h = parse(read(target))
        state = read(argv[4])
        hdr = bytearray(read(target)[:h["hl"]])
        hdr[5] = 0  # plain: checksum only
        struct.pack_into("<Q", hdr, 24, len(state))
        body = bytes(hdr) + state
        write(target, body + hashlib.sha256(body).digest())
        print("forge: a plain blob with %d bytes of chosen state and a "
              "correct checksum" % len(state))
    else:
        print("unknown mode %r" % mode, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
