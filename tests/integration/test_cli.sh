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
finish
