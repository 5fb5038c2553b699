#!/bin/bash
# A stand-in for the docker client of a 3-node swarm, for
# test_cluster_check.sh: answers the read-only questions `sstream cluster
# check` asks, as the real client prints them for its --format templates.
# FAKE_SWARM picks the state:
#   three   m1 (this manager, data label), w1 (ready, sgx), w2 (down, sgx)
#   nosgx   the same, w1 without its sgx label
#   worker  this engine is a worker of the swarm
now=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
case "$1 $2" in
"info --format")
    ctl=true; [ "${FAKE_SWARM:-}" = worker ] && ctl=false
    printf '24.0.5\tactive\t%s\tid-m1\t%s\tm1\n' "$ctl" "$now" ;;
"node ls")
    printf 'id-m1\nid-w1\nid-w2\n' ;;
"node inspect")
    sgx1=true; [ "${FAKE_SWARM:-}" = nosgx ] && sgx1=""
    printf 'id-m1\tm1\tready\tactive\tmanager\t<no value>\ttrue\n'
    printf 'id-w1\tw1\tready\tactive\tworker\t%s\t\n' "$sgx1"
    printf 'id-w2\tw2\tdown\tactive\tworker\ttrue\t\n' ;;
"image inspect")
    echo sha256:0123 ;;
*)
    echo "fake-docker: unexpected '$*'" >&2; exit 1 ;;
esac
