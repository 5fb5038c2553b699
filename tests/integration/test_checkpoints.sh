#!/bin/bash
# Checkpoint barriers through a whole pipeline (issue 13, the flow part):
# with checkpoint_ms, the source parts inject BARRIERs, the routers align
# them, the workers pass them on and the sink acknowledges; the
# supervisor completes epochs and writes checkpoints/manifest.json. The
# answer is unchanged (awk's), the stateful worker and the sink write
# snapshots (sealed outside plain mode), the manifest's counters are a
# consistent
# cut (each stage received exactly what the stage before sent before the
# barrier), the source's resume points are exact line boundaries, the
# hashes match the files, and after a restart epochs stay above those
# issued before; in plain, encrypted and enclave modes.
source "$(dirname "$0")/lib.sh"
EX=$ROOT/examples/delayed-flights
cd "$T"
cp "$EX"/*.lua .
RUN_TIMEOUT=${RUN_TIMEOUT:-180}
# slowed a little, so that the run spans several checkpoint intervals
sed 's/if not value then return {} end/for _ = 1, 20000 do end\n      if not value then return {} end/' \
    map-csv-to-event.lua > slow-map.lua
grep -q 'for _ = 1, 20000' slow-map.lua || echo "fixture: slow-map.lua not slowed" >&2
"$SS" gen flights --rows 30000 --seed 11 -o data.csv
reference data.csv > expected

cat > p.yml <<'YML'
name: ckpt
batch_size: 8K
checkpoint_ms: 300
source: { file: data.csv, parts: 2, format: csv, header: true }
stages:
  - { name: map, script: slow-map.lua, workers: 2 }
  - { name: filter, script: filter-event.lua, workers: 1 }
  - { name: reduce, script: reduce-events.lua, workers: 1 }
sink: { script: print-results.lua }
YML

# manifest_ok DIR [sealed]: the manifest's checks (python3, prints what
# is wrong); sealed: the snapshots must be sealed (not the plain form)
manifest_ok() {
    $PY - "$1" data.csv "${2:-plain}" <<'PY'
import hashlib, json, os, struct, sys
d, data = sys.argv[1], open(sys.argv[2], 'rb').read()
sealed = sys.argv[3] == 'sealed'
m = json.load(open(os.path.join(d, 'manifest.json')))
bad = []
e = m['epoch']
if not (isinstance(m['run'], str) and len(m['run']) == 16): bad.append('run id')
if e < 1: bad.append('epoch %r' % e)
names = sorted(f['name'] for f in m['files'])
want_files = sorted(['source-e%d.json' % e, 'reduce-1-e%d.snap' % e,
                     'sink-e%d.snap' % e])
if names != want_files: bad.append('files %r' % names)
# the snapshots: of this run, epoch and worker, sealed outside plain mode
# (crypto/ss_snapshot.h: magic, version, protection, lengths, run, epoch)
for w in ('reduce-1', 'sink'):
    p = os.path.join(d, '%s-e%d.snap' % (w, e))
    if not os.path.exists(p): continue
    b = open(p, 'rb').read()
    magic, ver, prot, ls, lw, run, ep = struct.unpack_from('<4sBBBBQI', b)
    name = b[32 + ls:32 + ls + lw].decode()
    if magic != b'SSSN' or run != int(m['run'], 16) or ep != e or name != w:
        bad.append('snapshot header of ' + w)
    if (prot != 0) != sealed: bad.append('snapshot protection of %s: %d' % (w, prot))
    # the reduce's state holds its key "count": in clear only in plain mode
    if w == 'reduce-1' and (b'count' in b) == sealed:
        bad.append('state of reduce-1 %s' % ('in clear' if sealed else
                                              'not found in the plain form'))
for f in m['files']:
    h = hashlib.blake2b(open(os.path.join(d, f['name']), 'rb').read(),
                        digest_size=32).hexdigest()
    if h != f['blake2b_256']: bad.append('hash of ' + f['name'])
left = sorted(x for x in os.listdir(d) if x != 'manifest.json')
if left != want_files: bad.append('older files left: %r' % left)
c = m['counters']
want = {'source', 'map-1', 'map-2', 'filter-1', 'reduce-1', 'sink'}
if set(c) != want: bad.append('components %r' % sorted(c))
else:
    # a consistent cut: what each stage got is what the one before sent
    if c['source']['in'] != c['source']['out'] + c['source']['rejected']:
        bad.append('source lines')
    if c['map-1']['in'] + c['map-2']['in'] != c['source']['out']:
        bad.append('map in %d+%d != source out %d' % (
            c['map-1']['in'], c['map-2']['in'], c['source']['out']))
    if c['filter-1']['in'] != c['map-1']['out'] + c['map-2']['out']:
        bad.append('filter in != map out')
    if c['reduce-1']['in'] != c['filter-1']['out']:
        bad.append('reduce in != filter out')
    if c['sink']['in'] != c['reduce-1']['out']:
        bad.append('sink in != reduce out')
    if c['source']['out'] == 0: bad.append('a checkpoint before any row')
s = json.load(open(os.path.join(d, 'source-e%d.json' % e)))
if s['epoch'] != e or s['run'] != m['run']: bad.append('source file header')
rows = 0
for p in s['parts']:
    o = p['offset']
    # a line boundary, and the number of the line that starts there
    if o and data[o - 1:o] != b'\n': bad.append('part %d offset' % p['part'])
    if data[:o].count(b'\n') + 1 != p['row']: bad.append('part %d row' % p['part'])
print('; '.join(bad) if bad else 'ok')
sys.exit(1 if bad else 0)
PY
}

timeout -k 10 "$RUN_TIMEOUT" "$SS" run p.yml --output-dir out-a > res-a 2> err-a
check "plain: the run with checkpoints exits 0" test $? -eq 0
grep '^Delays' res-a > got-a
same "plain: the answer is still awk's" got-a expected
contains "plain: the summary balances" err-a "balanced"
contains "plain: several checkpoints completed" err-a \
    "checkpoints: ([2-9]|[1-9][0-9]+) complete every 300 ms"
check "plain: the manifest holds (hashes, resume points, a consistent cut)" \
    manifest_ok out-a/checkpoints

# checkpoints off: no folder, no line
sed 's/^checkpoint_ms: 300/checkpoint_ms: 0/' p.yml > off.yml
timeout -k 10 "$RUN_TIMEOUT" "$SS" run off.yml --output-dir out-off > res-off 2> err-off
check "off: exits 0" test $? -eq 0
lacks "off: no checkpoint line" err-off "checkpoints:"
check "off: no checkpoint folder" test ! -e out-off/checkpoints
# --checkpoint-interval overrides the file
timeout -k 10 "$RUN_TIMEOUT" "$SS" run off.yml --output-dir out-ov \
    --checkpoint-interval 250 > res-ov 2> err-ov
check "override: exits 0" test $? -eq 0
contains "override: --checkpoint-interval turned them on" err-ov \
    "checkpoints: [1-9][0-9]* complete every 250 ms"

timeout -k 10 "$RUN_TIMEOUT" "$SS" run p.yml --output-dir out-e \
    --security encrypted > res-e 2> err-e
check "encrypted: exits 0" test $? -eq 0
grep '^Delays' res-e > got-e
same "encrypted: the answer is still awk's" got-e expected
contains "encrypted: checkpoints completed" err-e "checkpoints: [1-9][0-9]* complete"
check "encrypted: the manifest holds (snapshots sealed)" \
    manifest_ok out-e/checkpoints sealed

timeout -k 10 "$RUN_TIMEOUT" "$SS" run p.yml --output-dir out-n \
    --security enclave > res-n 2> err-n
check "enclave: exits 0" test $? -eq 0
grep '^Delays' res-n > got-n
same "enclave: the answer is still awk's" got-n expected
contains "enclave: checkpoints completed" err-n "checkpoints: [1-9][0-9]* complete"
check "enclave: the manifest holds (snapshots sealed in the enclave)" \
    manifest_ok out-n/checkpoints sealed

# a restart: the killed incarnation completed epoch E; the new one's
# epochs are above it (its source counts from there)
timeout -k 10 "$RUN_TIMEOUT" "$SS" run p.yml --output-dir out-r --restarts 1 \
    > res-r 2> err-r &
run=$!
_pids+=($run)
e1=""
for _ in $(seq 1 600); do
    e1=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["epoch"])' \
        out-r/checkpoints/manifest.json 2> /dev/null) && [ -n "$e1" ] && break
    sleep 0.1
done
sup=$(pgrep -P "$run" | head -1)
victim=$([ -n "$sup" ] && pgrep -P "$sup" -f -- "--name reduce-1( |$)" | head -1)
check "restart: a checkpoint completed before the kill (epoch ${e1:-none})" test -n "$e1"
# never kill 0 (this test's whole process group) when reduce-1 is not found
check "restart: reduce-1 was found and killed" \
    eval '[ -n "$victim" ] && kill -KILL "$victim"'
wait_max $((RUN_TIMEOUT + 20)) $run
check "restart: the run recovers and exits 0" test $? -eq 0
contains "restart: it resumes from the last complete checkpoint" err-r \
    "restarting the whole pipeline from checkpoint [1-9][0-9]* \(restart 1 of at most 1\)"
grep '^Delays' res-r > got-r
same "restart: the answer is still awk's" got-r expected
e2=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["epoch"])' \
    out-r/checkpoints/manifest.json 2> /dev/null)
# (the resumed incarnation may end before its first barrier: then the
# manifest stays the one it resumed from)
if grep -q "checkpoints: 0 complete" err-r; then
    check "restart: no new checkpoint, the manifest is still epoch ${e1:-?}" \
        test "${e2:-0}" -ge "${e1:-1}"
else
    check "restart: the new incarnation's epochs are above ($e2 > ${e1:-?})" \
        test "${e2:-0}" -gt "${e1:-0}"
fi
check "restart: its manifest holds" manifest_ok out-r/checkpoints
finish
