#!/usr/bin/env python3
# DelayedFlights (seed topology, 1 worker per stage) at several batch sizes
# in several modes, in alternating (shuffled) order, with one frozen
# binary: per run the CPU (user+sys) of the whole run (`sstream run` and
# every process it waited for), the wall time, and the peak RSS (VmHWM,
# sampled every 50 ms) of every process, enclaves as NAME@enclave.
# docs/PERFORMANCE.md, "Batch size".
#   SIZES="64 128 256 512" MODES="plain encrypted enclave" \
#     bench/batch_size.py BIN DATA.csv REPS OUT.json
# then bench/batch_size.py --table OUT.json prints the medians.
import sys, os, time, re, subprocess, json, random, statistics as st
def table(path):
    rows = {}
    for x in json.load(open(path)):
        if x['ok']:
            rows.setdefault((x['mode'], int(x['size'])), []).append(x)
    print('| mode | batch_size | runs | CPU user+sys (median) | peak RSS: source | router-1 | largest worker (its enclave included) |')
    print('|---|---|---|---|---|---|---|')
    order = ['plain', 'encrypted', 'enclave']
    for (m, s) in sorted(rows, key=lambda k: (order.index(k[0]) if k[0] in order else 9, k[1])):
        xs = rows[(m, s)]
        cpu = st.median([x['user'] + x['sys'] for x in xs])
        def mx(n): return max(x['sampled'].get(n, 0) for x in xs)
        ws = {k for x in xs for k in x['sampled'] if k.split('@')[0].split('-')[0] in ('map', 'filter', 'reduce', 'sink')}
        big = max(ws, key=mx)
        print(f'| {m} | {s}K | {len(xs)} | {cpu:.2f} s | {mx("source"):.1f} MB | {mx("router-1"):.1f} MB | {big} {mx(big):.1f} MB |')
if sys.argv[1] == '--table':
    table(sys.argv[2])
    sys.exit(0)
bin_, data, reps, outp = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
sizes = os.environ.get('SIZES', '64 128 256 512').split()
modes = os.environ.get('MODES', 'plain encrypted enclave').split()
exdir = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'examples', 'delayed-flights')
tmp = os.environ.get('TMPDIR', '/tmp')
for s in sizes:  # the example pipeline with only batch_size changed
    src = open(os.path.join(exdir, 'pipeline.yml')).read()
    open(os.path.join(exdir, f'.bench-p{s}.yml'), 'w').write(re.sub(r'(?m)^batch_size: .*$', f'batch_size: {s}K', src))
def kids(pid):
    out = []
    try:
        for t in os.listdir(f'/proc/{pid}/task'):
            out += [int(x) for x in open(f'/proc/{pid}/task/{t}/children').read().split()]
    except Exception: pass
    return out
def name_of(pid):
    try: a = [x.decode() for x in open(f'/proc/{pid}/cmdline','rb').read().split(b'\0')]
    except Exception: return None
    if '--name' in a:
        n = a[a.index('--name')+1]
        return n + '@enclave' if a[0].endswith('sstream-enclave') else n
    return os.path.basename(a[0]) + ':' + (os.path.basename(a[2]) if len(a) > 2 else '')
def one(size, mode):
    yml = os.path.join(exdir, f'.bench-p{size}.yml')
    cmd = [bin_, 'run', yml, '--data', data, '--no-progress', '--security', mode, '--output-dir', os.path.join(tmp, f'ss-batch-{os.getpid()}-{mode}-{size}')]
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=exdir)
    best = {}; encl = {}
    while True:
        r = os.wait4(p.pid, os.WNOHANG)
        if r[0] == p.pid: break
        todo = kids(p.pid); seen = []
        while todo:
            c = todo.pop(); seen.append(c); todo += kids(c)
        for c in seen:
            try:
                st = open(f'/proc/{c}/status').read()
                hwm = int(re.search(r'VmHWM:\s+(\d+)', st).group(1))
            except Exception: continue
            n = name_of(c)
            if n and hwm > best.get((c, n), 0): best[(c, n)] = hwm
        time.sleep(0.05)
    wall = time.time() - t0
    ru = r[2]
    out = p.stdout.read().decode()
    summ = {}
    for l in out.splitlines():
        m = re.match(r'\s+(\S+)\s+(source|router|worker|sink)\s+.*\s([\d.]+) s\s+([\d.]+) MB$', l)
        if m: summ[m.group(1)] = (float(m.group(3)), float(m.group(4)))
    ok = 'balanced' in out
    sampled = {}
    for (c, n), v in best.items():
        sampled[n] = max(sampled.get(n, 0), v / 1024)
    return dict(size=size, mode=mode, wall=wall, user=ru.ru_utime, sys=ru.ru_stime, ok=ok, summary=summ, sampled=sampled)
res = []
for r in range(reps):
    order = [(s, m) for s in sizes for m in modes]
    random.Random(r).shuffle(order)
    for s, m in order:
        x = one(s, m); x['rep'] = r; res.append(x)
        print(f"{r} {m:9s} {s:>4s}K wall {x['wall']:5.2f} cpu {x['user']+x['sys']:5.2f} ({x['user']:.2f}+{x['sys']:.2f}) ok={x['ok']} maxrss " +
              ' '.join(f"{k}={v:.1f}" for k, v in sorted(x['sampled'].items()) if v > 14), flush=True)
        json.dump(res, open(outp, 'w'))
for s in sizes:
    os.unlink(os.path.join(exdir, f'.bench-p{s}.yml'))
table(outp)
