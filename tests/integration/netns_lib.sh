# Several "hosts" on one machine without Docker (bash; source it): Linux
# network namespaces joined by veth pairs to a bridge that lives in a
# namespace of its own, with addresses of NET.0/24 that exist only inside
# those namespaces. Used by tests/integration/test_netns_hosts.sh and
# bench/scale_model.sh. Needs root and iproute2.
#
#   netns_why_not             prints why namespaces cannot be made here
#                             (status 1), or nothing (status 0)
#   netns_up PFX NET N        makes PFX-br (the bridge) and the hosts
#                             PFX-h1..PFX-hN, host i at NET.i/24 on its eth0
#                             (its bridge port: portI); sets NETNS_BR and
#                             NETNS_HOSTS (index 1..N; index 0 unused)
#   netns_on I CMD...         runs CMD in host I
#   netns_reach I J           host I reaches host J over the bridge
#                             (bounded: 10 tries)
#   netns_down                kills every process left in the namespaces
#                             and deletes them (safe to call twice)

NETNS_BR=
NETNS_NET=
NETNS_HOSTS=()

netns_why_not() {
    [ "$(id -u)" -eq 0 ] || { echo "ip netns needs root"; return 1; }
    command -v ip > /dev/null || { echo "no 'ip' command (iproute2)"; return 1; }
    local probe=ssprobe$$
    ip netns add "$probe" 2> /dev/null ||
        { echo "cannot create a network namespace (ip netns add failed)"; return 1; }
    ip netns del "$probe"
}

netns_up() {
    local pfx=$1 i h
    NETNS_NET=$2
    NETNS_BR=$pfx-br
    NETNS_HOSTS=(none)
    for ((i = 1; i <= $3; i++)); do NETNS_HOSTS+=("$pfx-h$i"); done
    ip netns add "$NETNS_BR" || return 1
    ip -n "$NETNS_BR" link add br0 type bridge || return 1
    ip -n "$NETNS_BR" link set br0 up
    for ((i = 1; i <= $3; i++)); do
        h=${NETNS_HOSTS[$i]}
        ip netns add "$h" || return 1
        ip -n "$h" link add eth0 type veth peer name port$i netns "$NETNS_BR" || return 1
        ip -n "$NETNS_BR" link set port$i master br0
        ip -n "$NETNS_BR" link set port$i up
        ip -n "$h" addr add "$NETNS_NET.$i/24" dev eth0
        ip -n "$h" link set eth0 up
        ip -n "$h" link set lo up
    done
}

netns_on() { local h=${NETNS_HOSTS[$1]}; shift; ip netns exec "$h" "$@"; }

netns_reach() {
    local i
    for ((i = 0; i < 10; i++)); do
        netns_on "$1" timeout 2 bash -c "exec 3<>/dev/tcp/$NETNS_NET.$2/9" 2> /dev/null
        # a refused connection (nothing listens on port 9) proves the route
        netns_on "$1" ip neigh show "$NETNS_NET.$2" | grep -q lladdr && return 0
        sleep 0.3
    done
    return 1
}

netns_down() {
    local ns p
    for ns in "${NETNS_HOSTS[@]:1}" ${NETNS_BR:+"$NETNS_BR"}; do
        for p in $(ip netns pids "$ns" 2> /dev/null); do kill -KILL "$p" 2> /dev/null; done
        ip netns del "$ns" 2> /dev/null
    done
    NETNS_HOSTS=(none)
    NETNS_BR=
}
