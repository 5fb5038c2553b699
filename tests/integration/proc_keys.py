"""Looks at the processes of one `sstream run` while it runs (helper of
test_keys.sh): every router, worker and enclave below RUN_PID (its
descendants), what its
--keys folder holds and which files it has open.

    proc_keys.py RUN_PID OUT

Writes one line per process to OUT: "PID ROLE UID keys=F1,F2 open=P1,P2",
polling /proc every 10 ms until RUN_PID exits (at most 120 s).
"""
import os, sys, time

run, out = int(sys.argv[1]), sys.argv[2]
seen = {}

def ppid_of(p):
    with open('/proc/%d/stat' % p) as f:
        return int(f.read().rsplit(')', 1)[1].split()[1])

def look(p):
    with open('/proc/%d/cmdline' % p, 'rb') as f:
        argv = f.read().split(b'\0')
    argv = [a.decode(errors='replace') for a in argv if a]
    if len(argv) < 2 or argv[1] not in ('router', 'worker', 'enclave'):
        return None
    keys = ''
    if '--keys' in argv:
        d = argv[argv.index('--keys') + 1]
        keys = ','.join(sorted(os.listdir(d)))
    opened = []
    for fd in os.listdir('/proc/%d/fd' % p):
        try:
            opened.append(os.readlink('/proc/%d/fd/%s' % (p, fd)))
        except OSError:
            pass
    with open('/proc/%d/status' % p) as f:
        uid = [l.split()[1] for l in f if l.startswith('Uid:')][0]
    return '%d %s %s keys=%s open=%s' % (p, argv[1], uid, keys, ','.join(opened))

t0 = time.time()
while time.time() - t0 < 120 and os.path.exists('/proc/%d' % run):
    for d in os.listdir('/proc'):
        if not d.isdigit() or int(d) in seen:
            continue
        p = int(d)
        try:
            a, below = p, False
            for _ in range(5):  # an ancestor is the run
                a = ppid_of(a)
                if a == run:
                    below = True
                if a <= 1 or below:
                    break
            if not below:
                continue
            line = look(p)
        except (OSError, IndexError, ValueError):
            continue
        if line:
            seen[p] = line
    time.sleep(0.01)
with open(out, 'w') as f:
    for line in seen.values():
        f.write(line + '\n')
