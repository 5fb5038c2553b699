#!/bin/bash
# The state folder, where runs record themselves by name (ss_runrec.h),
# against another local user (statedir_attacker.sh, fake_ctl.py, run as
# nobody through setpriv: the checks that need it run as root only):
#   - HOME unset: the folder is the passwd entry's home of the uid, never
#     /tmp/.local/state/securestreams; a uid without a home is refused,
#     saying to set SS_STATE_DIR;
#   - a state folder prepared by another user, with NAME.run.tmp and
#     NAME.run linked to a file of root's: root's sstream run refuses the
#     folder, naming it and what is wrong, and the file is unchanged (it
#     used to be overwritten with the run record);
#   - a record planted there pointing at the attacker's socket: sstream
#     scale refuses the folder and never prints the attacker's forged ok;
#   - a record in root's own folder whose control= is a socket of
#     another uid: refused (the socket's owner is checked);
#   - a folder writable by others: refused; a run whose supervisor is
#     gone: scale says it ended.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1
H=$ROOT/tests/integration
E=$ROOT/examples/delayed-flights

# no home at all (HOME unset): not /tmp
env -u SS_STATE_DIR -u XDG_STATE_HOME -u HOME "$SS" scale nosuchrun map 2 \
    > o 2> e; rc=$?
check "HOME unset: scale of an unknown run exits 1" test "$rc" = 1
lacks "HOME unset: the state folder is not under /tmp" e "/tmp/\.local"
home=$(getent passwd "$(id -u)" | cut -d: -f6)
contains "HOME unset: ... but the passwd home of the uid ($home)" e \
    "$home/\.local/state/securestreams"

if [ "$(id -u)" != 0 ]; then
    echo "# not root: the attacks by another uid are skipped"
    finish; exit
fi

# a uid without a passwd entry nor HOME: refused, saying what to set
setpriv --reuid=54321 --regid=54321 --clear-groups \
    env -u SS_STATE_DIR -u XDG_STATE_HOME -u HOME "$SS" scale x map 2 \
    > o 2> e; rc=$?
check "no home: exits 1" test "$rc" = 1
contains "no home: says to set SS_STATE_DIR" e "set SS_STATE_DIR"

# a shared folder like /tmp (1777), where the attacker prepares things
A=$(mktemp -d /tmp/sdatt.XXXXXX)
chmod 1777 "$A"
trap 'cleanup; rm -rf "$A"' EXIT
echo precious > "$A/victim.txt"
chmod 600 "$A/victim.txt"
nobody() { timeout 30 setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
nobody sh "$H/statedir_attacker.sh" link "$A/xdg/securestreams" rvE \
    "$A/victim.txt"
check "the attacker linked rvE.run.tmp to root's file" \
    test -L "$A/xdg/securestreams/rvE.run.tmp"
"$SS" gen flights --rows 3000 -o f.csv > /dev/null 2>&1
timeout 120 env -u SS_STATE_DIR -u HOME XDG_STATE_HOME="$A/xdg" \
    "$SS" run "$E/pipeline.yml" --data f.csv --name rvE \
    --output-dir "$T/outE" --quiet > runo 2> rune; rc=$?
check "root's run still runs (exit $rc)" test "$rc" = 0
check "root's file is unchanged" \
    eval '[ "$(cat "$A/victim.txt")" = precious ]'
contains "the run names the folder and what is wrong" rune \
    "refusing the state folder '$A/xdg/securestreams': it is owned by another user"

# a planted record pointing at the attacker's fake supervisor
nobody $PY "$H/fake_ctl.py" "$A/fake.sock" "$A/fake.log" &
fpid=$!; _pids+=($fpid)
for _ in $(seq 50); do [ -S "$A/fake.sock" ] && break; sleep 0.1; done
check "the attacker's fake supervisor listens" test -S "$A/fake.sock"
nobody sh "$H/statedir_attacker.sh" record "$A/xdg2/securestreams" rvF \
    "$A/fake.sock"
timeout 60 env -u SS_STATE_DIR XDG_STATE_HOME="$A/xdg2" \
    "$SS" scale rvF map 3 > o 2> e; rc=$?
check "planted record: scale exits 1" test "$rc" = 1
lacks "planted record: no forged ok printed" o "forged"
contains "planted record: the folder is refused" e \
    "refusing the state folder .*owned by another user"

# root's own folder, a record whose control= is the attacker's socket
mkdir -p "$SS_STATE_DIR"; chmod 700 "$SS_STATE_DIR"
printf 'name=rvG\non=local\npipeline=/x.yml\noutdir=/tmp\nsecurity=plain\nhost=%s\npid=1\nstarted=0\nworkers=map=1\ncontrol=%s\n' \
    "$(hostname)" "$A/fake.sock" > "$SS_STATE_DIR/rvG.run"
chmod 600 "$SS_STATE_DIR/rvG.run"
timeout 60 "$SS" scale rvG map 3 > o 2> e; rc=$?
check "another uid's socket: scale exits 1" test "$rc" = 1
lacks "another uid's socket: no forged ok printed" o "forged"
contains "another uid's socket: refused, saying whose" e \
    "belongs to another user \(uid 65534\)"
check "the fake supervisor got no request" test ! -s "$A/fake.log"

# a folder writable by others
mkdir -m 777 loose; chmod 777 loose
SS_STATE_DIR=$T/loose timeout 30 "$SS" scale rvG map 3 > o 2> e; rc=$?
check "loose folder: exits 1" test "$rc" = 1
contains "loose folder: says why" e "writable by group or others"

# a run that ended: said so, not "no run"
sh -c 'exit 0' & dead=$!; wait $dead
sed "s/^pid=1\$/pid=$dead/" "$SS_STATE_DIR/rvG.run" > "$SS_STATE_DIR/rvH.run"
sed -i 's/^name=rvG/name=rvH/' "$SS_STATE_DIR/rvH.run"
chmod 600 "$SS_STATE_DIR/rvH.run"
timeout 30 "$SS" scale rvH map 3 > o 2> e; rc=$?
check "ended run: exits 1" test "$rc" = 1
contains "ended run: says it ended" e "run rvH has ended"
finish
