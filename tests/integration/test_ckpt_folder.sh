#!/bin/bash
# The run folder's ckpt/, where components write their checkpoint files,
# is writable by the worker hosts' uid (sstream-worker) when sstream run
# runs as root with separate uids. A compromised worker host plants
# symbolic links there (tests/attack/plant_ckpt_links.py): one to the
# owner's data.key named like a snapshot of an epoch, and ones where the
# source and the sink (root) open their temporary files. Root must
# follow none of them: no copy of data.key in the output folder's
# checkpoints/, the victim file untouched, the manifest lists the run's
# own files only, and the answer is awk's. (Before the fix the
# coordinator copied data.key into checkpoints/ as steal-eN.snap, 0644,
# and root wrote the source's resume points into the victim file.)
source "$(dirname "$0")/lib.sh"
if [ "$(id -u)" != 0 ] || ! id sstream-worker >/dev/null 2>&1 ||
   ! id sstream-enclave >/dev/null 2>&1; then
    echo "ok - skipped: needs root and the users sstream-worker, sstream-enclave"
    finish
    exit $?
fi
EX=$ROOT/examples/delayed-flights
cd "$T"
chmod 0755 "$T"
cp "$EX"/*.lua .
RUN_TIMEOUT=${RUN_TIMEOUT:-240}
sed 's/if not value then return {} end/for _ = 1, 20000 do end\n      if not value then return {} end/' \
    map-csv-to-event.lua > slow-map.lua
"$SS" gen flights --rows 20000 --seed 5 -o data.csv
reference data.csv > expected
cat > p.yml <<'YML'
name: ckptattack
batch_size: 8K
checkpoint_ms: 250
source: { file: data.csv, parts: 2, format: csv, header: true }
stages:
  - { name: map, script: slow-map.lua, workers: 1 }
  - { name: filter, script: filter-event.lua, workers: 1 }
  - { name: reduce, script: reduce-events.lua, workers: 1 }
sink: { script: print-results.lua }
YML
mkdir -m 0755 runs
"$SS" keygen keys > /dev/null
echo "the owner's file" > victim
chmod 0600 victim
cp victim victim.orig
timeout -k 5 "$RUN_TIMEOUT" $PY "$ROOT/tests/attack/plant_ckpt_links.py" \
    sstream-worker "$T/runs" "$T/keys/data.key" "$T/victim" \
    "$RUN_TIMEOUT" > planted 2>&1 &
att=$!
_pids+=($att)
TMPDIR=$T/runs timeout -k 10 "$RUN_TIMEOUT" "$SS" run p.yml --keys keys \
    --output-dir out --security enclave > res 2> err
rc=$?
kill $att 2>/dev/null
wait $att 2>/dev/null
check "the run exits 0" test $rc -eq 0
grep '^Delays' res > got
same "the answer is awk's" got expected
contains "checkpoints completed" err "checkpoints: [1-9][0-9]* complete"
copied=
for f in out/checkpoints/*; do
    [ -f "$f" ] && cmp -s "$f" keys/data.key && copied="$copied $f"
done
check "no copy of data.key in the checkpoints (found:${copied:- none})" \
    test -z "$copied"
check "the victim file is untouched" cmp -s victim victim.orig
check "the manifest lists the run's files only" $PY - out/checkpoints <<'PY'
import json, os, re, sys
m = json.load(open(os.path.join(sys.argv[1], 'manifest.json')))
names = [f['name'] for f in m['files']]
ok = all(re.fullmatch(r'(source|reduce-1|sink)-e\d+\.(json|snap)', n) for n in names)
left = [x for x in os.listdir(sys.argv[1]) if x != 'manifest.json' and x not in names]
if not ok or left: print('files', names, 'left', left)
sys.exit(0 if ok and not left else 1)
PY
finish
