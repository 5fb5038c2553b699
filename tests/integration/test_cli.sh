#!/bin/bash
# The command line: every command answers --help with its usage (exit 0),
# reports bad usage as "sstream <cmd>: ..." with exit 2, and docs/CLI.md
# is what the binary says.
source "$(dirname "$0")/lib.sh"
for c in run source router worker sink lua gen keygen encrypt decrypt keyservice bench; do
    "$SS" "$c" --help > "$T/h" 2>&1
    rc=$?
    check "sstream $c --help exits 0" test $rc -eq 0
    contains "sstream $c --help shows its usage" "$T/h" "^usage: sstream $c"
    "$SS" "$c" --no-such-option > /dev/null 2> "$T/e"
    rc=$?
    check "sstream $c rejects an unknown option with exit 2" test $rc -eq 2
    contains "sstream $c names itself in the error" "$T/e" "^sstream $c: "
done
"$SS" frobnicate 2> "$T/e"; rc=$?
check "an unknown command exits 2" test $rc -eq 2
contains "an unknown command is named" "$T/e" "'frobnicate' is not a command"
"$SS" version > "$T/v"
contains "version prints the version" "$T/v" "^sstream [0-9]+\.[0-9]+\.[0-9]+$"
"$ROOT/scripts/gen-cli-doc.sh" "$SS" > "$T/cli.md"
same "docs/CLI.md is up to date (scripts/gen-cli-doc.sh)" "$T/cli.md" "$ROOT/docs/CLI.md"
"$SS" worker "$ROOT/examples/delayed-flights/filter-event.lua" --credits 0 2> "$T/e"; rc=$?
check "a bad option value exits 2" test $rc -eq 2
contains "a bad option value is named" "$T/e" "credits takes 1 to 128, not '0'"
FROM=localhost:5999 timeout 20 "$SS" worker "$ROOT/examples/delayed-flights/filter-event.lua" 2> "$T/e"; rc=$?
check "an endpoint without tcp:// fails" test $rc -ne 0
contains "... with a hint on how to write it" "$T/e" "cannot connect to localhost:5999: .*an endpoint names its transport: tcp://HOST:PORT"
# run --on: what goes with it, and the commands that follow a cluster run
P=$ROOT/examples/delayed-flights/pipeline.yml
"$SS" run "$P" --on compose 2> "$T/e"; rc=$?
check "run --on compose exits 2" test $rc -eq 2
contains "... saying it is not supported and what to use" "$T/e" "compose is not supported yet.*docker swarm init"
"$SS" run "$P" --detach 2> "$T/e"; rc=$?
check "run --detach without --on exits 2" test $rc -eq 2
contains "... saying it goes with --on swarm" "$T/e" "go with --on swarm"
mkdir -p "$T/busy"
"$SS" gen flights --rows 10 -o "$T/f.csv"
(exec 8> "$T/busy/.lock"; flock 8; sleep 30) &
lockpid=$!
_pids+=($lockpid)
sleep 0.5
DOCKER=/bin/false "$SS" run "$P" --data "$T/f.csv" --on swarm --output-dir "$T/busy" 2> "$T/e"; rc=$?
check "run --on swarm into a folder in use fails" test $rc -eq 1
contains "... naming the folder" "$T/e" "output folder '.*busy' is in use by another run"
kill $lockpid 2> /dev/null
DOCKER=/bin/false "$SS" run "$P" --data "$T/f.csv" --on swarm --output-dir "$T/nodocker" 2> "$T/e"; rc=$?
check "run --on swarm without an engine fails" test $rc -eq 1
contains "... saying it cannot reach it" "$T/e" "cannot reach the Docker engine"
for c in status logs stop; do
    SS_STATE_DIR=$T/state "$SS" $c nosuchrun 2> "$T/e"; rc=$?
    check "$c of an unknown run exits 1" test $rc -eq 1
    contains "... saying where it looked" "$T/e" "no run 'nosuchrun' here \($T/state/nosuchrun.run"
done
# stop of a run that already ended (no follower, no stack): says so and
# exits 0, instead of passing on what `docker stack rm` answers
mkdir -p "$T/state" "$T/ended-out"
true & deadpid=$!
wait $deadpid
printf 'name=ended1\non=swarm\npipeline=%s\noutdir=%s\nsecurity=plain\nhost=%s\npid=%s\nstarted=1\nworkers=map=1\n' \
    "$P" "$T/ended-out" "$(hostname)" "$deadpid" > "$T/state/ended1.run"
cat > "$T/fakedocker" <<'SH'
#!/bin/sh
[ "$1 $2" = "stack ls" ] && { echo otherstack; exit 0; }
echo "Error response from daemon: This node is not a swarm manager." >&2
exit 1
SH
chmod +x "$T/fakedocker"
DOCKER=$T/fakedocker SS_STATE_DIR=$T/state "$SS" stop ended1 > "$T/o" 2> "$T/e"; rc=$?
check "stop of a run that already ended exits 0" test $rc -eq 0
contains "... saying it ended and there is nothing to stop" "$T/o" "ended1 already ended: .*nothing to stop"
SS_STATE_DIR=$T/state "$SS" scale nosuchrun map 3 2> "$T/e"; rc=$?
check "scale of an unknown run exits 1" test $rc -eq 1
contains "... and asks whether it runs under that name" "$T/e" "no run .nosuchrun. here .*is it running, under this name"
"$SS" scale nosuchrun map 0 2> "$T/e"; rc=$?
check "scale to 0 workers exits 2" test $rc -eq 2
finish
