#!/bin/bash
# A pre-encrypted dataset injected without the data key (docs/SECURITY.md,
# "Sealed input"): `sstream encrypt` seals a flights CSV with the pipeline's
# keys, `format: sealed` forwards its batches unchanged, and
#  - DelayedFlights in encrypted and enclave modes gives awk's answer on the
#    plain file (the CSV header line is inside the sealed data: the filter
#    drops it, ArrDelay not being a number) and the summary balances;
#  - `sstream decrypt` still gives the input back byte for byte;
#  - plain mode, a plain file, a header: true, a truncated file and a file
#    without its end record are refused by the source, naming the record;
#  - a flipped byte in the sealed file is reported and fails the run.
source "$(dirname "$0")/lib.sh"
EX=$ROOT/examples/delayed-flights
rows=${ROWS:-20000}
"$SS" gen flights --rows "$rows" --seed 7 -o "$T/f.csv" 2> /dev/null
reference "$T/f.csv" > "$T/expected"
"$SS" keygen "$T/keys" > /dev/null 2>&1
"$SS" encrypt --keys "$T/keys" "$T/f.csv" "$T/f.sealed" 2> "$T/enc.err"
check "encrypt: exits 0" test $? -eq 0
"$SS" decrypt --keys "$T/keys" "$T/f.sealed" "$T/f.back" 2> /dev/null
same "decrypt gives the input back" "$T/f.csv" "$T/f.back"

# the pipeline, reading the sealed file (no header skipping: no key)
mkdir -p "$T/p"
cp "$EX"/*.lua "$T/p/"
sed -e 's/format: csv/format: sealed/' -e '/header: true/d' \
    "$EX/pipeline.yml" > "$T/p/pipeline.yml"
contains "pipeline copy reads format: sealed" "$T/p/pipeline.yml" \
    "format: sealed"

# run NAME FILE MODE: DelayedFlights on FILE; leaves $T/NAME.{out,err}, $rc
run() {
    "$SS" run "$T/p/pipeline.yml" --data "$2" --keys "$T/keys" \
        --security "$3" --output-dir "$T/$1" --no-progress \
        > "$T/$1.out" 2> "$T/$1.err"
    rc=$?
}
for mode in encrypted enclave; do
    run "$mode" "$T/f.sealed" $mode
    check "$mode: exits 0" test $rc -eq 0
    grep '^Delays' "$T/$mode.out" > "$T/$mode.d"
    same "$mode: answer equals awk on the plain file" "$T/$mode.d" \
        "$T/expected"
    contains "$mode: balanced" "$T/$mode.err" \
        "rows in = .*: $((rows + 1)) = .*: balanced"
    lacks "$mode: the source reports no error" "$T/$mode.err" \
        "\[source\].*error"
done

# refusals, by the source, before anything is sent
run plain "$T/f.sealed" plain
check "plain: fails" test $rc -ne 0
contains "plain: refused" "$T/plain.err" \
    "sealed input needs security encrypted or enclave"
run notsealed "$T/f.csv" encrypted
check "plain file: fails" test $rc -ne 0
contains "plain file: refused naming record 1" "$T/notsealed.err" \
    "record 1 .*not a sealed file"
head -c 100000 "$T/f.sealed" > "$T/trunc.sealed"
run trunc "$T/trunc.sealed" encrypted
check "truncated file: fails" test $rc -ne 0
contains "truncated file: refused naming the record" "$T/trunc.err" \
    "record [0-9]+ \(at byte [0-9]+\): file ends inside a record \(truncated\)"
# without its end record: cut at the last record's start
$PY - "$T/f.sealed" "$T/noend.sealed" <<'PYEOF'
import struct, sys
d = open(sys.argv[1], "rb").read()
pos = last = 0
while pos < len(d):
    last = pos
    pos += 4 + struct.unpack_from("<I", d, pos)[0]
open(sys.argv[2], "wb").write(d[:last])
PYEOF
run noend "$T/noend.sealed" encrypted
check "no end record: fails" test $rc -ne 0
contains "no end record: refused" "$T/noend.err" \
    "ends after record [0-9]+ without its end record \(truncated\)"
sed -e 's/format: csv/format: sealed/' "$EX/pipeline.yml" \
    > "$T/p/hdr.yml"
"$SS" run "$T/p/hdr.yml" --data "$T/f.sealed" --keys "$T/keys" \
    --security encrypted --output-dir "$T/hdr" --no-progress \
    > "$T/hdr.out" 2> "$T/hdr.err"
check "header: true with format: sealed: fails" test $? -ne 0
contains "header: true with format: sealed: explained" "$T/hdr.err" \
    "header line cannot be skipped without the data key"

# a flipped byte inside the third batch's sealed payload
cp "$T/f.sealed" "$T/flip.sealed"
off=$($PY - "$T/f.sealed" <<'PYEOF'
import struct, sys
d = open(sys.argv[1], "rb").read()
pos = 0
for _ in range(2):
    pos += 4 + struct.unpack_from("<I", d, pos)[0]
print(pos + 4 + 200)
PYEOF
)
b=$(od -An -tu1 -j "$off" -N1 "$T/flip.sealed" | tr -d ' ')
printf "$(printf '\\%03o' $((b ^ 1)))" |
    dd of="$T/flip.sealed" bs=1 seek="$off" conv=notrunc 2> /dev/null
cmp -s "$T/f.sealed" "$T/flip.sealed"
check "flipped byte: the file differs" test $? -ne 0
run flip "$T/flip.sealed" encrypted
check "flipped byte: the run fails" test $rc -ne 0
contains "flipped byte: reported" "$T/flip.err" \
    "stream [0-9]+ batch 2: batch 2 does not authenticate"
lacks "flipped byte: no answer printed" "$T/flip.out" "^Delays"
finish
