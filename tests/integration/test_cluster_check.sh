#!/bin/bash
# `sstream cluster check` against a real Docker engine and a real
# single-node Swarm on this machine (dockerd started when none runs,
# and stopped again; the swarm is the test's own and is left at the
# end): with no engine it names the engine; before `docker swarm init`
# it prints that command; on a fresh swarm it names the missing data and
# sgx labels and the missing image with the exact fix, and exits 1;
# after running the printed label fixes and loading the image it exits 0;
# with the gramine backend it names the missing SGX devices of the
# labelled node (this machine has none); a plain pipeline needs no sgx
# label. The image is a tiny one imported here (no build: seconds).
# Before that, with a stand-in client (fake-docker.sh) for a 3-node swarm
# that this machine cannot have: what a manager cannot see (other nodes'
# images, devices and clocks) is said to be unknown, a label on a node
# that is down does not count, a fix that cannot pick the node lists the
# candidates, and a worker node is told to ask a manager.
# SKIPPED with the reason when no engine can be had.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/docker_lib.sh"
P=$ROOT/examples/delayed-flights/pipeline.yml
IMG=sstest-cluster/img:$$
trap '"$DOCKER" image rm -f "$IMG" > /dev/null 2>&1; swarm_leave; docker_down; cleanup' EXIT

# no engine: the first piece is missing, and nothing else is guessed
DOCKER_HOST=unix://$T/no.sock "$SS" cluster check "$P" > "$T/noengine.txt" 2>&1
check "no engine: exit status 1" [ $? -eq 1 ]
contains "... it names the engine and how to start it" "$T/noengine.txt" \
    "MISSING  no Docker engine answers"
contains "... and says nothing else can be checked" "$T/noengine.txt" "nothing else can be checked"

# a 3-node swarm, through the stand-in client
fake() { DOCKER=$ROOT/tests/integration/fake-docker.sh FAKE_SWARM=$1 "$SS" cluster check "${@:2}" > "$T/fake.txt" 2>&1; echo $? > "$T/rc"; cat "$T/fake.txt" >> "$T/all.txt"; }
fake three "$P" --security enclave --enclave gramine --image img:1
contains "3 nodes: the sgx label of the ready node counts" "$T/fake.txt" "ok +1 ready node labelled sgx=true, for the enclave stages map, filter, reduce: w1\$"
contains "... the image is checked on this manager only" "$T/fake.txt" "ok +image img:1 is on m1\$"
contains "... the other ready node's image is unknown, with how to check" "$T/fake.txt" "unknown +image img:1 on the other nodes: not visible from here .*: w1\$"
contains "... the SGX devices of a remote node are unknown" "$T/fake.txt" "unknown +SGX devices on w1: not visible from here"
contains "... other nodes' clocks are said not visible" "$T/fake.txt" "other nodes' clocks cannot be read"
check "... nothing that can be checked is missing: exit status 0" [ "$(cat "$T/rc")" = 0 ]
fake nosgx "$P" --security enclave --image img:1
contains "a label on a node that is down does not count" "$T/fake.txt" "MISSING  no ready node is labelled sgx=true \(labelled nodes are down or drained\)"
contains "... the fix names NODE and the candidates" "$T/fake.txt" "fix: docker node update --label-add sgx=true NODE"
contains "... ready nodes listed" "$T/fake.txt" "ready nodes: m1 w1\)"
check "... exit status 1" [ "$(cat "$T/rc")" = 1 ]
fake worker "$P" --image img:1
contains "a worker node is told to ask a manager" "$T/fake.txt" "MISSING  this node is not a manager"

docker_up
swarm_leave_stale
state=$("$DOCKER" info --format '{{.Swarm.LocalNodeState}}')
if [ "$state" = inactive ]; then
    "$SS" cluster check "$P" --image "$IMG" > "$T/noswarm.txt" 2>&1
    check "no swarm: exit status 1" [ $? -eq 1 ]
    contains "... it prints docker swarm init" "$T/noswarm.txt" "fix: docker swarm init --advertise-addr"
fi
swarm_mine

cc() { "$SS" cluster check "$@" > "$T/out.txt" 2>&1; echo $? > "$T/rc"; cat "$T/out.txt" >> "$T/all.txt"; }
cc "$P" --security enclave --image "$IMG"
check "a fresh swarm: exit status 1" [ "$(cat "$T/rc")" = 1 ]
contains "... engine, swarm and manager are ok" "$T/out.txt" "ok +this node is a manager"
contains "... it names the missing sgx label and the stages that need it" "$T/out.txt" \
    "MISSING  no ready node is labelled sgx=true: the enclave stages map, filter, reduce cannot be placed"
contains "... and the missing data label" "$T/out.txt" "MISSING  no ready node is labelled securestreams.data=true"
HOST=$("$DOCKER" node inspect self --format '{{.Description.Hostname}}')
contains "... with the exact fix naming this node" "$T/out.txt" \
    "fix: docker node update --label-add sgx=true $HOST\$"
contains "... it names the missing image" "$T/out.txt" "MISSING  image $IMG is not on $HOST"
contains "... the clocks are compared" "$T/out.txt" "ok +clocks: the engine and this machine agree"
check "... three pieces missing" grep -q "^3 missing" "$T/out.txt"

# run the label fixes exactly as printed, and bring the image
grep -o 'fix: docker node update --label-add [^ ]* [^ ]*$' "$T/out.txt" | sed 's/^fix: //' > "$T/fixes.sh"
check "two label fixes printed" [ "$(wc -l < "$T/fixes.sh")" = 2 ]
bash -e "$T/fixes.sh" > /dev/null
check "... and they run" [ $? -eq 0 ]
mkdir -p "$T/img" && echo securestreams-test > "$T/img/mark"
tar -C "$T/img" -cf - mark | "$DOCKER" import - "$IMG" > /dev/null
cc "$P" --security enclave --image "$IMG"
check "after the fixes: exit status 0" [ "$(cat "$T/rc")" = 0 ]
contains "... the sgx label is ok" "$T/out.txt" "ok +1 ready node labelled sgx=true"
contains "... the image is ok" "$T/out.txt" "ok +image $IMG is on $HOST \(the only node\)"
contains "... the sandbox backend needs no SGX device" "$T/out.txt" "n/a +SGX devices: not needed \(sandbox backend"
contains "... nothing missing" "$T/out.txt" "^nothing missing"

# the gramine backend needs the SGX devices on the labelled node: this
# machine has none (or, if it has, the check says ok)
cc "$P" --security enclave --enclave gramine --image "$IMG"
if [ -c /dev/sgx_enclave ] && [ -c /dev/sgx_provision ]; then
    contains "gramine: the SGX devices are found" "$T/out.txt" "ok +SGX devices: $HOST"
else
    check "gramine without SGX devices: exit status 1" [ "$(cat "$T/rc")" = 1 ]
    contains "... it names the missing devices of the labelled node" "$T/out.txt" \
        "MISSING  SGX devices: $HOST \(this machine\) is labelled sgx=true but has no /dev/sgx_enclave"
    contains "... and the fix" "$T/out.txt" "fix: docker node update --label-rm sgx $HOST"
fi

# a plain pipeline needs no sgx label
"$DOCKER" node update --label-rm sgx "$NODE" > /dev/null
cc "$P" --image "$IMG"
check "plain: exit status 0 without an sgx label" [ "$(cat "$T/rc")" = 0 ]
contains "... sgx labels are not needed" "$T/out.txt" "n/a +sgx=true labels: not needed"
if [ $_fail -gt 0 ] || [ -n "${SS_TEST_VERBOSE:-}" ]; then sed 's/^/    /' "$T/all.txt" | tail -60; fi
finish
