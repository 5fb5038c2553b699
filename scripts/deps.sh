#!/bin/sh
# Installs the Debian packages SecureStreams needs to build, test and run,
# and only those that are missing. Safe to run again; quiet when all is there.
set -eu

PKGS="build-essential pkg-config lua5.4 liblua5.4-dev libzmq3-dev
libsodium-dev libseccomp-dev libyaml-dev libmsgpack-dev libcmocka-dev
python3 python3-zmq python3-msgpack python3-yaml sqlite3 mawk valgrind procps time
libluajit2-5.1-dev cppcheck clang-format libmicrohttpd-dev clang"

missing=""
for p in $PKGS; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = "installed" ] || missing="$missing $p"
done
# the users that keep the roles of `sstream run` apart (as root only)
if [ "$(id -u)" -eq 0 ]; then
    "$(dirname "$0")/install-users.sh"
fi
[ -z "$missing" ] && exit 0

echo "deps: installing:$missing" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=sudo
    else
        echo "deps: need root (or sudo) to install:$missing" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
