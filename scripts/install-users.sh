#!/bin/sh
# Creates the system users `sstream run` uses, when started as root, to
# keep the roles apart (docs/SECURITY.md, "Separate uids"):
#   sstream-worker   routers and worker hosts (untrusted: CURVE keys only)
#   sstream-enclave  the sandbox enclaves (the only reader of platform.key)
# No home, no shell, no password. Safe to run again.
set -eu
if [ "$(id -u)" -ne 0 ]; then
    echo "install-users: run as root" >&2
    exit 1
fi
for u in sstream-worker sstream-enclave; do
    if ! getent passwd "$u" >/dev/null; then
        useradd --system --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin --user-group "$u"
        echo "install-users: created $u" >&2
    fi
done
