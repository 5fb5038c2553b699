#!/bin/bash
# The container image (make image, deploy/docker/Dockerfile): builds
# securestreams:<version> (on a base made with mmdebstrap where no image
# registry answers), smaller than 120 MB, sstream as entrypoint, a
# HEALTHCHECK, components as the non-root user sstream, no compiler
# inside; DelayedFlights run in a container (no network at all) equals
# awk in plain and enclave modes. Starts dockerd when none runs and stops
# it again; SKIPPED with the reason when no engine can be had.
# SS_TEST_IMAGE=0 skips it (the first build takes a few minutes).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/docker_lib.sh"
[ "${SS_TEST_IMAGE:-1}" = 0 ] && docker_skip "SS_TEST_IMAGE=0"
trap 'docker_down; cleanup' EXIT
docker_up

start=$SECONDS
out=$("$ROOT/scripts/build-image.sh" 2>&1)
st=$?
echo "    ($out; $((SECONDS - start)) s)"
check "make image builds the image" [ $st -eq 0 ]
[ $st -eq 0 ] || { finish; exit; }
IMG=$(printf '%s\n' "$out" | sed -n 's/^\(securestreams:[^:]*\): .*/\1/p' | tail -1)
size=$("$DOCKER" image inspect -f '{{.Size}}' "$IMG")
check "the image is under 120 MB ($((size / 1000000)) MB)" [ "$size" -lt 120000000 ]
cfg() { "$DOCKER" image inspect -f "$1" "$IMG"; }
check "sstream is the entrypoint" [ "$(cfg '{{json .Config.Entrypoint}}')" = '["/usr/local/bin/sstream"]' ]
check "it runs as the user sstream" [ "$(cfg '{{.Config.User}}')" = sstream ]
check "it has a HEALTHCHECK" [ -n "$(cfg '{{if .Config.Healthcheck}}{{json .Config.Healthcheck.Test}}{{end}}')" ]
run() { timeout 120 "$DOCKER" run --rm --network none "$@"; }
check "'docker run IMAGE version' answers" [ "$(run "$IMG" version)" = "sstream $(grep -E 'define SS_VERSION_(MAJOR|MINOR|PATCH)' "$ROOT/include/securestreams.h" | awk '{printf "%s%s", s, $3; s="."}')" ]
check "the process is not root" [ "$(run --entrypoint id "$IMG" -u)" = 10001 ]
check "no compiler in the image" [ -z "$(run --entrypoint sh "$IMG" -c 'command -v cc gcc c99 make || true')" ]

"$SS" gen flights --rows 20000 -o "$T/flights.csv"
reference "$T/flights.csv" > "$T/expected.txt"
chmod 755 "$T"
chmod 644 "$T/flights.csv"
for mode in plain enclave; do
    run -v "$T/flights.csv:/data/flights.csv:ro" "$IMG" run \
        /usr/local/share/securestreams/examples/delayed-flights/pipeline.yml \
        --data /data/flights.csv --security $mode --no-progress \
        --output-dir /work/out --timeout 100 > "$T/$mode.txt" 2> "$T/$mode.err"
    check "DelayedFlights in the container ($mode) exits 0" [ $? -eq 0 ]
    same "... and equals awk ($mode)" "$T/expected.txt" "$T/$mode.txt"
done

# separate uids in the container, as the deploy files start an enclave
# worker: root with only CAP_SETUID and CAP_SETGID, no-new-privileges;
# the worker becomes sstream and its enclave runs as sstream-enclave,
# both with no capability once rows flow (image_uids.sh reads their
# /proc/PID/status mid-run), and the run still equals awk
K=$T/k
mkdir -p "$K"
"$SS" keygen "$K/root" > /dev/null
mkdir -p "$K/w" "$K/e"
cp "$K/root/curve-client.key" "$K/root/curve-client.pub" "$K/root/curve-server.pub" \
    "$K/root/curve-keyservice.pub" "$K/w/"
cp "$K/root/platform.key" "$K/e/"
chown -R 10001:10001 "$K/w"
chown -R 10002:10002 "$K/e"
chmod 700 "$K/w" "$K/e"
chmod 755 "$K"
run --user 0 --cap-drop ALL --cap-add SETUID --cap-add SETGID \
    --security-opt no-new-privileges \
    -v "$K:/k:ro" -v "$T/flights.csv:/data/flights.csv:ro" \
    -v "$ROOT/tests/integration/image_uids.sh:/image_uids.sh:ro" \
    --entrypoint /bin/sh "$IMG" /image_uids.sh > "$T/uids.txt" 2> "$T/uids.err"
check "the split-uid container run ends (status $?)" [ -s "$T/uids.txt" ]
sed -n '1,/^---$/p' "$T/uids.txt" | sed 's/^/    /'
contains "the worker runs as sstream (10001), its enclave as sstream-enclave (10002)" \
    "$T/uids.txt" "^uids 10001,10001,10001,10001 10002,10002,10002,10002$"
contains "... its spawner as sstream-enclave" "$T/uids.txt" "^spawner-uid 10002$"
contains "worker and enclave have no effective capability while rows flow" \
    "$T/uids.txt" "^capeff 0000000000000000 0000000000000000$"
contains "... nor a permitted one" "$T/uids.txt" "^capprm 0000000000000000 0000000000000000$"
contains "... and cannot gain one by exec (no_new_privs)" "$T/uids.txt" "^nonewprivs 1 1$"
contains "attack: the worker's uid cannot read the enclave's platform.key (the enclave's can)" \
    "$T/uids.txt" "^attack-read-platform-key: denied$"
contains "... (the enclave's uid can: the check can fail)" "$T/uids.txt" "^enclave-reads-platform-key: yes$"
contains "attack: the worker's uid cannot become root again" "$T/uids.txt" "^attack-back-to-root: denied$"
sed -n '/^---$/,$p' "$T/uids.txt" | tail -n +2 > "$T/uids-result.txt"
same "... and the run equals awk" "$T/expected.txt" "$T/uids-result.txt"
[ $_fail -gt 0 ] && tail -20 "$T/uids.err"
check "no setuid or setgid file in the image" \
    [ -z "$(run --entrypoint sh "$IMG" -c 'find / -xdev -type f -perm /6000 2> /dev/null')" ]
finish
