#!/bin/sh
# Builds the container image securestreams:<version> from
# deploy/docker/Dockerfile (`make image`). Prints the image's name and
# size.
#
# The base image is BASE (default debian:bookworm-slim). When it is not
# on this engine and cannot be pulled (no image registry reachable, as on
# machines that reach only Debian's package mirrors), a Debian 12 minbase
# is made here with mmdebstrap and imported as
# securestreams/debian:bookworm-minbase (docs, man pages and locales left
# out, as in the -slim images), and used instead.
#
#   scripts/build-image.sh            (DOCKER=docker BASE=... to change)
set -eu
cd "$(dirname "$0")/.."
DOCKER=${DOCKER:-docker}
BASE=${BASE:-debian:bookworm-slim}
LOCAL_BASE=securestreams/debian:bookworm-minbase
version=$(awk '/define SS_VERSION_(MAJOR|MINOR|PATCH)/ { v = v sep $3; sep = "." }
               END { print v }' include/securestreams.h)
IMAGE=${IMAGE:-securestreams:$version}

if ! $DOCKER info > /dev/null 2>&1; then
    echo "build-image: no Docker engine answers ('$DOCKER info' failed); start dockerd first" >&2
    exit 1
fi
if ! $DOCKER image inspect "$BASE" > /dev/null 2>&1 &&
   ! timeout 60 $DOCKER pull -q "$BASE" > /dev/null 2>&1; then
    echo "build-image: cannot pull $BASE; using $LOCAL_BASE made with mmdebstrap" >&2
    BASE=$LOCAL_BASE
    if ! $DOCKER image inspect "$BASE" > /dev/null 2>&1; then
        command -v mmdebstrap > /dev/null || {
            echo "build-image: mmdebstrap is missing (scripts/deploy-deps.sh installs it)" >&2
            exit 1
        }
        log=$(mktemp)
        mmdebstrap --quiet --variant=minbase \
            --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
            --dpkgopt='path-exclude=/usr/share/man/*' \
            --dpkgopt='path-exclude=/usr/share/locale/*' \
            --dpkgopt='path-exclude=/usr/share/info/*' \
            --dpkgopt='path-exclude=/usr/share/doc/*' \
            --dpkgopt='path-include=/usr/share/doc/*/copyright' \
            bookworm - 2> "$log" | $DOCKER import - "$BASE" > /dev/null || {
            cat "$log" >&2; rm -f "$log"
            echo "build-image: mmdebstrap | docker import failed" >&2
            exit 1
        }
        rm -f "$log"
    fi
fi
# the classic builder: it needs no buildx plugin (Debian's docker.io has none)
log=$(mktemp)
DOCKER_BUILDKIT=0 $DOCKER build --build-arg "BASE=$BASE" -t "$IMAGE" \
    -f deploy/docker/Dockerfile . > "$log" 2>&1 || {
    cat "$log" >&2; rm -f "$log"
    echo "build-image: docker build failed" >&2
    exit 1
}
rm -f "$log"
size=$($DOCKER image inspect -f '{{.Size}}' "$IMAGE")
echo "$IMAGE: $((size / 1000000)) MB (base $BASE)"
