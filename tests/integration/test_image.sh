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
finish
