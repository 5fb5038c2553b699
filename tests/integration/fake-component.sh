#!/bin/bash
# A stand-in for `sstream router|source|worker|sink` used by
# test_run_supervisor.sh through SS_RUN_EXEC: it takes the same command
# line, reports STATS (and DONE for the sink) to $SS_CONTROL like a real
# component, and behaves as the FAKE_* variables say:
#   FAKE_ROWS=N         events each stage receives (default 1000)
#   FAKE_REJECTS=R      rows the source rejects (written to --rejects)
#   FAKE_WORKERS=W      workers per stage: each gets its share of rows
#   FAKE_WORKERS_STAGE  the same for one stage
#   FAKE_DROP=STAGE     that stage drops a tenth of its events
#   FAKE_LOSE=STAGE     that stage's workers count a tenth fewer events in
#                       and out than they were sent (the books do not
#                       balance)
#   FAKE_SECONDS=S      how long a component runs (default 0.6)
#   FAKE_MODE=hang      run until killed
#   FAKE_IGNORE_TERM=1  ignore SIGTERM (the supervisor must SIGKILL)
#   FAKE_FAIL=NAME      component NAME fails after 0.3 s: exit
#   FAKE_FAIL_STATUS    with this status (default 1), or
#   FAKE_FAIL_SIGNAL    kill itself with this signal
#   FAKE_NO_DONE=1      the sink never sends DONE
#   FAKE_LOG_DIR=DIR    write DIR/NAME.args (argv, contract env and the
#                       files of its key folders) once signals are set up
# The program is Python (python3-zmq, python3-msgpack of Debian).
exec /usr/bin/python3 - "$0" "$@" <<'PY'
import os, signal, struct, sys, time
if os.environ.get('FAKE_IGNORE_TERM') == '1':
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

args = sys.argv[2:]
role = args[0] if args else '?'
opts, pos, i = {}, [], 1
while i < len(args):
    a = args[i]
    if a == '--header':
        opts['header'] = True
        i += 1
    elif a.startswith('--') and i + 1 < len(args):
        opts[a[2:]] = args[i + 1]
        i += 2
    else:
        pos.append(a)
        i += 1
name = opts.get('name', role)
stage = opts.get('stage', '')
env = os.environ

logdir = env.get('FAKE_LOG_DIR')
if logdir:
    with open(os.path.join(logdir, name + '.args'), 'w') as f:
        f.write('argv ' + ' '.join(args) + '\n')
        for k in ('FROM', 'TO', 'DATA_FILE', 'OUTPUT', 'SS_CONTROL',
                  'SS_CONTROL_KEYS', 'SS_RUN'):
            f.write('%s=%s\n' % (k, env.get(k, '')))
        f.write('pgid_is_own=%d\n' % (os.getpgid(0) == os.getpid()))
        f.write('uid=%d\n' % os.getuid())
        for opt in ('keys', 'enclave-keys'):
            if opts.get(opt):  # what the key folders hold (keys by role)
                try:
                    files = ' '.join(sorted(os.listdir(opts[opt])))
                except OSError as e:  # another uid's (separate uids)
                    files = 'unreadable: ' + e.strerror
                f.write('%s-files=%s\n' % (opt, files))

import msgpack, zmq

ctx = zmq.Context()
sock = ctx.socket(zmq.PUSH)
sock.setsockopt(zmq.LINGER, 2000)
keys = env.get('SS_CONTROL_KEYS')
if keys:  # the monitor admits only the run's CURVE keys
    def z85(f):
        with open(os.path.join(keys, f)) as fh:
            return fh.read().strip().encode()
    pair = 'client' if os.path.exists(os.path.join(keys, 'curve-client.key')) else 'server'
    sock.curve_serverkey = z85('monitor.pub')
    sock.curve_publickey = z85('curve-%s.pub' % pair)
    sock.curve_secretkey = z85('curve-%s.key' % pair)
sock.connect(env['SS_CONTROL'])

def header(kind, n):  # wire version 2: 72 bytes, len at offset 28
    return (b'SSB1' + bytes([2, kind]) + b'\0' * 22 + struct.pack('<I', n)
            + b'\0' * 40)

rows = int(env.get('FAKE_ROWS', '1000'))
nrej = int(env.get('FAKE_REJECTS', '0'))
final = {'in': 0, 'out': 0, 'passed': 0, 'dropped': 0, 'rejected': 0}
if role == 'source':
    final.update({'in': rows + nrej, 'out': rows, 'rejected': nrej})
    if nrej and opts.get('rejects'):
        with open(opts['rejects'], 'w') as f:
            for r in range(nrej):
                f.write('{"row": %d, "error": "fake reject"}\n' % r)
elif role == 'worker':
    nw = int(env.get('FAKE_WORKERS_' + stage, env.get('FAKE_WORKERS', '1')))
    k = int(name.rsplit('-', 1)[1]) if '-' in name else 1
    mine = rows // nw + (rows % nw if k == 1 else 0)
    drop = mine // 10 if env.get('FAKE_DROP') == stage else 0
    lose = mine // 10 if env.get('FAKE_LOSE') == stage else 0
    final.update({'in': mine - lose, 'passed': mine - lose - drop,
                  'dropped': drop, 'out': mine - lose - drop})
elif role in ('sink', 'router'):
    final.update({'in': rows, 'out': rows if role == 'router' else 0})

def send(frac, is_final):
    m = {'name': name, 'role': role, 'stage': stage, 'pid': os.getpid()}
    for k, v in final.items():
        m[k] = int(v * frac)
    m['in_bytes'] = m['in'] * 10
    m['out_bytes'] = m['out'] * 10
    m['total_bytes'] = (rows + nrej) * 10 if role == 'source' else 0
    m['peak_rss_kb'] = 1024
    m['final'] = is_final
    p = msgpack.packb(m, use_bin_type=True)
    sock.send(header(9, len(p)) + p)

seconds = float(env.get('FAKE_SECONDS', '0.6'))
hang = env.get('FAKE_MODE') == 'hang'
fail = env.get('FAKE_FAIL') == name
start = time.time()
while True:
    el = time.time() - start
    if fail and el >= 0.3:
        sys.stderr.write('fake: failing on purpose\n')
        sys.stderr.flush()
        sig = env.get('FAKE_FAIL_SIGNAL')
        if sig:
            os.kill(os.getpid(), int(sig))
        os._exit(int(env.get('FAKE_FAIL_STATUS', '1')))
    if not hang and el >= seconds:
        break
    send(min(el / seconds, 1.0) if seconds > 0 else 1.0, False)
    time.sleep(0.1)

if role == 'sink':
    print('fake results of %s' % name)
    sys.stdout.flush()
    if env.get('FAKE_NO_DONE') != '1':
        sock.send(header(10, 0))
print('stdout of %s' % name) if role != 'sink' else None
send(1.0, True)
sock.close()
ctx.term()
PY
