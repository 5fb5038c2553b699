#!/bin/bash
# sstream deploy: Compose, Swarm and Kubernetes files from the
# DelayedFlights pipeline. Each service holds only its role's keys and no
# service of a cluster target holds the data key; enclave stages are
# placed on SGX nodes; what a cluster cannot be given safely is refused
# with the reason; the Kubernetes manifests validate against the
# Kubernetes API schemas of the npm package kubernetes-models 5.1.0
# (tests/deploy/; SKIPPED when npm cannot install it). Nothing here runs
# a cluster: test_image.sh runs the image, docs/DEPLOY.md says what was
# not run.
. "$(dirname "$0")/lib.sh"
cd "$T"
P=$ROOT/examples/delayed-flights/pipeline.yml
"$SS" keygen keys > /dev/null

# --- usage and refusals
"$SS" deploy "$P" > out 2> err; st=$?
check "no --target: usage error (2)" [ $st -eq 2 ]
contains "... says so" err "--target compose\|swarm\|k8s is required"
"$SS" deploy "$P" --target nomad 2> err; st=$?
check "an unknown target: usage error" [ $st -eq 2 ]
contains "... naming it" err "--target takes compose, swarm or k8s, not 'nomad'"
"$SS" deploy "$P" --target swarm --security encrypted --keys keys -o d 2> err; st=$?
check "encrypted mode on swarm is refused (1)" [ $st -eq 1 ]
contains "... because of the data key" err "security encrypted puts the data key on every worker"
check "... and nothing is left behind" [ ! -e d/stack.yml ]
"$SS" deploy "$P" --target k8s --security enclave --keys keys -o d 2> err; st=$?
check "enclave on k8s without --keyservice is refused" [ $st -eq 1 ]
contains "... naming the option" err "needs --keyservice EP"
"$SS" deploy "$P" --target compose --security enclave -o d 2> err; st=$?
check "enclave without --keys is refused" [ $st -eq 1 ]

# --- the three targets
KS=tcp://owner.example.org:5599
"$SS" deploy "$P" --target swarm --security enclave --keys keys \
    --keyservice $KS --workers 2 --run 00000000000000c1 -o swarm > out 2> err
check "swarm, enclave: written" [ $? -eq 0 ]
"$SS" deploy "$P" --target compose --security encrypted --keys keys -o compose > out 2> err
check "compose, encrypted: written" [ $? -eq 0 ]
"$SS" deploy "$P" --target k8s --security enclave --keys keys \
    --keyservice $KS --enclave gramine --workers 2 -o k8s > out 2> err
check "k8s, enclave: written" [ $? -eq 0 ]
check "k8s.yml (it holds keys) is private" [ "$(stat -c %a k8s/k8s.yml)" = 600 ]
"$SS" deploy "$P" --target k8s -o k8s-plain > out 2> err
check "k8s, plain: written" [ $? -eq 0 ]
# keyed (partition_by, broadcast) and chained pipelines
E=$ROOT/examples
for t in k8s swarm compose; do
    "$SS" deploy $E/delayed-flights/pipeline-keyed.yml --target $t -o keyed-$t > out 2> err
    check "keyed pipeline, $t: written" [ $? -eq 0 ] || cat err
    "$SS" deploy $E/broadcast/pipeline.yml --target $t -o bcast-$t > out 2> err
    check "broadcast pipeline, $t: written" [ $? -eq 0 ] || cat err
    "$SS" deploy $E/delayed-flights/pipeline-chained.yml --target $t --workers 2 -o chain-$t > out 2> err
    check "chained pipeline, $t: written" [ $? -eq 0 ] || cat err
done

# a replica's slot from the engine: SS_INDEX (Swarm, from 1) or
# SS_POD_INDEX (Kubernetes, from 0); a bad one is refused by name
M=$ROOT/examples/delayed-flights/map-csv-to-event.lua
SS_INDEX=0 "$SS" worker "$M" --from tcp://127.0.0.1:1 --to tcp://127.0.0.1:2 2> err; st=$?
check "SS_INDEX=0 is refused (2)" [ $st -eq 2 ]
contains "... naming the variable" err "SS_INDEX takes 1 to 64, not '0'"
SS_POD_INDEX=64 "$SS" worker "$M" --from tcp://127.0.0.1:1 --to tcp://127.0.0.1:2 2> err; st=$?
check "SS_POD_INDEX=64 is refused (2)" [ $st -eq 2 ]
contains "... naming the variable" err "SS_POD_INDEX takes 0 to 63, not '64'"

# a stage that reads a data file (carrier-delays' names.lua reads
# carriers.csv) or requires a local module gets it next to its script
"$SS" deploy $E/carrier-delays/pipeline.yml --target swarm -o cd-swarm > out 2> err
check "carrier-delays, swarm: written" [ $? -eq 0 ] || cat err
contains "swarm: the data file a script reads travels as a config, next to the script" cd-swarm/stack.yml \
    'source: ss-file-3-1
        target: "/pipeline/carriers.csv"'
contains "... from the script's folder" cd-swarm/stack.yml "ss-file-3-1:
    file: \".*/examples/carrier-delays/carriers.csv\""
mkdir -p mods/util
printf 'local h = require "util.helpers"\nreturn h\n' > mods/map.lua
printf 'return {}\n' > mods/util/helpers.lua
printf 'return function() end\n' > mods/sink.lua
printf 'name: mods\nsource: { file: in.txt }\nstages:\n  - { name: map, script: map.lua }\nsink: { script: sink.lua }\n' > mods/p.yml
"$SS" deploy mods/p.yml --target k8s -o mods-k8s > out 2> err
check "a module-requiring pipeline, k8s: written" [ $? -eq 0 ] || cat err
contains "k8s: the module is in the ConfigMap (bytes) and placed by the volume's items" mods-k8s/k8s.yml \
    '\{key: "x1-1", path: "util/helpers.lua"\}'
"$SS" deploy $E/carrier-delays/pipeline.yml --target k8s -o cd-k8s > out 2> err
check "carrier-delays, k8s: written" [ $? -eq 0 ] || cat err

# per-service facts, read with a YAML parser
facts() { # facts FILE: one line per service: NAME|secrets|replicas|constraints
    $PY - "$1" << 'EOF'
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
for name, s in d["services"].items():
    secrets = sorted(x["target"] for x in s.get("secrets", []))
    dep = s.get("deploy", {})
    cons = ",".join(dep.get("placement", {}).get("constraints", []))
    print(f"{name}|{' '.join(secrets)}|{dep.get('replicas', 1)}|{cons}")
EOF
}
facts swarm/stack.yml > swarm.facts || notok "stack.yml parses as YAML"
facts compose/compose.yml > compose.facts || notok "compose.yml parses as YAML"
check "swarm: 4 routers, 3 stages, the source" [ "$(wc -l < swarm.facts)" -eq 8 ]
contains "swarm: a router holds only the routers' keys" swarm.facts \
    "^router-1\|curve-client.pub curve-server.key curve-server.pub\|1\|$"
contains "swarm: an enclave stage: its client keys, the platform key, 2 replicas, SGX nodes" \
    swarm.facts "^stage-map\|curve-client.key curve-client.pub curve-keyservice.pub curve-server.pub platform.key\|2\|node.labels.sgx == true$"
contains "swarm: the source (sealed input) holds no data key, on the data node" \
    swarm.facts "^source\|curve-client.key curve-client.pub curve-server.pub\|1\|node.labels.securestreams.data == true$"
lacks "swarm: no service holds the data key" swarm.facts "data.key"
facts keyed-swarm/stack.yml > keyed.facts || notok "keyed stack.yml parses as YAML"
check "keyed swarm: 4 routers, 3 stages, the source" [ "$(wc -l < keyed.facts)" -eq 8 ]
contains "keyed swarm: the partitioned stage has its 4 replicas" keyed.facts "^stage-reduce\|\|4\|$"
contains "keyed swarm: its router has one slot per worker" keyed-swarm/stack.yml \
    '"--name", "router-3", "--partitions", "4"\]'
contains "keyed swarm: the stage before cuts by the key" keyed-swarm/stack.yml \
    '"--stage", "filter", "--partition-by", "uniquecarrier"\]'
contains "keyed swarm: a replica's index is its task slot" keyed-swarm/stack.yml \
    'SS_INDEX: "\{\{\.Task\.Slot\}\}"'
contains "broadcast compose: the map sends 3 copies" bcast-compose/compose.yml '"--broadcast", "3"'
contains "broadcast compose: each count worker its index" bcast-compose/compose.yml \
    '"--stage", "count", "--index", "3"\]'
facts chain-swarm/stack.yml > chain.facts || notok "chained stack.yml parses as YAML"
check "chained swarm: 2 routers, 1 stage service, the source" [ "$(wc -l < chain.facts)" -eq 4 ]
contains "chained swarm: the map workers run filter and reduce too" chain-swarm/stack.yml \
    '"--chain", "filter=/pipeline/filter-event.lua", "--chain", "reduce=/pipeline/reduce-events.lua"\]'
contains "chained swarm: 2 replicas" chain.facts "^stage-map\|\|2\|$"
lacks "swarm: no sink and no key service in the cluster" swarm.facts "^(sink|keyservice)\|"
lacks "swarm: the stack file names no data key file" swarm/stack.yml "data\.key"
contains "swarm: the source reads sealed input" swarm/stack.yml '"--format", "sealed"'
contains "swarm: each replica its own name" swarm/stack.yml 'SS_NAME: "map-\{\{\.Task\.Slot\}\}"'
contains "swarm: the run id" swarm/stack.yml 'SS_RUN: "00000000000000c1"'
contains "compose: the sink on the owner's host opens the results" compose.facts \
    "^sink\|curve-client.key curve-client.pub curve-server.pub data.key\|"
contains "compose: routers still hold no data key" compose.facts \
    "^router-4\|curve-client.pub curve-server.key curve-server.pub\|"

# privileges: no capability anywhere but SETUID/SETGID for a worker
# that splits uids (the sandbox enclave's own user)
contains "swarm: the enclave worker starts as root with SETUID and SETGID only" swarm/stack.yml \
    '"--user", "sstream", "--enclave-user", "sstream-enclave"\]'
check "swarm: every service drops every capability" \
    [ "$(grep -c '^    cap_drop: \[ALL\]$' swarm/stack.yml)" = "$(grep -c '^    image: ' swarm/stack.yml)" ]
check "swarm: only the 3 enclave stages add SETUID and SETGID" \
    [ "$(grep -c '^    cap_add: \[SETUID, SETGID\]$' swarm/stack.yml)" = 3 ]
contains "swarm: platform.key belongs to the enclave's uid" swarm/stack.yml \
    'target: platform.key
        uid: "10002"'
check "compose: every service has no-new-privileges" \
    [ "$(grep -c 'no-new-privileges:true' compose/compose.yml)" = "$(grep -c '^    image: ' compose/compose.yml)" ]
lacks "compose (encrypted): no service starts as root" compose/compose.yml '^    user: "0"'
lacks "k8s gramine: the worker does not split uids (the SGX hardware guards it)" k8s/k8s.yml 'enclave-user'
"$SS" deploy "$P" --target k8s --security enclave --keys keys --keyservice $KS -o k8s-sandbox > out 2> err
check "k8s, enclave (sandbox): written" [ $? -eq 0 ]
$PY - k8s-sandbox/k8s.yml > k8s-sandbox.facts << 'EOF'
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d["kind"] != "Deployment":
        continue
    spec = d["spec"]["template"]["spec"]
    c = spec["containers"][0]["securityContext"]
    ic = [i["securityContext"]["capabilities"].get("add", []) for i in spec.get("initContainers", [])]
    print(d["metadata"]["name"], "user:", spec["securityContext"].get("runAsUser"),
          "add:", c["capabilities"].get("add", []), "drop:", c["capabilities"]["drop"],
          "init-add:", ic, "chown-platform:", any("chown 10002:10002 /keys/platform.key" in " ".join(i["command"]) for i in spec.get("initContainers", [])))
EOF
contains "k8s sandbox: the worker starts as root with SETUID and SETGID only; its init container chowns platform.key with CHOWN only" \
    k8s-sandbox.facts "^delayed-flights-stage-map user: 0 add: \['SETUID', 'SETGID'\] drop: \['ALL'\] init-add: \[\['CHOWN'\]\] chown-platform: True$"
contains "k8s sandbox: a router runs as 10001 with no capability" \
    k8s-sandbox.facts "^delayed-flights-router-1 user: 10001 add: \[\] drop: \['ALL'\] init-add: \[\[\]\] chown-platform: False$"

# --- Kubernetes manifests against the API schemas
$PY - k8s/k8s.yml > k8s.facts << 'EOF'
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d["kind"] == "Secret":
        print(d["metadata"]["name"], "keys:", " ".join(sorted(d["data"])))
    if d["kind"] == "Deployment":
        spec = d["spec"]["template"]["spec"]
        print(d["metadata"]["name"], "replicas:", d["spec"]["replicas"],
              "nodeSelector:", spec.get("nodeSelector", {}),
              "limits:", spec["containers"][0].get("resources", {}).get("limits", {}))
EOF
contains "k8s: the routers' Secret" k8s.facts "^delayed-flights-router-keys keys: curve-client.pub curve-server.key curve-server.pub$"
contains "k8s: the workers' Secret has no data key" k8s.facts "^delayed-flights-node-keys keys: curve-client.key curve-client.pub curve-keyservice.pub curve-server.pub platform.key$"
contains "k8s: a stage's Deployment: replicas, SGX node selector, SGX device plugin resources" \
    k8s.facts "^delayed-flights-stage-map replicas: 2 nodeSelector: \{'securestreams.io/sgx': 'true'\} limits: \{.*'sgx.intel.com/enclave': 1"
NPMDIR=${SS_K8S_VALIDATOR:-$ROOT/build/k8s-validate}
mkdir -p "$NPMDIR"
cp "$ROOT/tests/deploy/package.json" "$ROOT/tests/deploy/k8s-validate.mjs" "$NPMDIR/"
if ! command -v npm > /dev/null || ! command -v node > /dev/null; then
    echo "SKIPPED: k8s schema validation: no node/npm"
elif ! [ -d "$NPMDIR/node_modules/kubernetes-models" ] &&
     ! (cd "$NPMDIR" && timeout 300 npm install --no-audit --no-fund --silent > npm.log 2>&1); then
    echo "SKIPPED: k8s schema validation: npm install failed: $(tail -1 "$NPMDIR/npm.log")"
else
    for f in k8s/k8s.yml k8s-sandbox/k8s.yml k8s-plain/k8s.yml keyed-k8s/k8s.yml bcast-k8s/k8s.yml chain-k8s/k8s.yml cd-k8s/k8s.yml mods-k8s/k8s.yml; do
        node "$NPMDIR/k8s-validate.mjs" "$f" > val.out 2>&1
        check "$f validates against the Kubernetes API schemas ($(tail -1 val.out))" [ $? -eq 0 ]
        grep '^not ok' val.out | head -5
    done
    # the validator does reject: a broken copy fails
    sed 's/replicas: 2/replicas: "two"/' k8s/k8s.yml > broken.yml
    node "$NPMDIR/k8s-validate.mjs" broken.yml > val.out 2>&1
    check "a manifest with replicas: \"two\" does not validate" [ $? -ne 0 ]
    contains "... and the validator says why" val.out "spec/replicas must be integer"
fi
finish
