# Docker helpers for the integration tests (bash; source after lib.sh).
# docker_up: makes sure a Docker engine answers, starting dockerd when
# none runs (it is stopped again at exit: only what the test started).
# Prints SKIPPED with the reason and exits 0 when no engine can be had.
DOCKER=${DOCKER:-docker}
_dockerd_pid=""
docker_skip() { echo "SKIPPED: $*"; echo "0 passed, 0 failed"; exit 0; }
docker_down() {
    [ -n "$_dockerd_pid" ] || return 0
    kill -TERM "$_dockerd_pid" 2> /dev/null
    local i
    for ((i = 0; i < 200; i++)); do
        kill -0 "$_dockerd_pid" 2> /dev/null || break
        sleep 0.1
    done
    kill -KILL "$_dockerd_pid" 2> /dev/null
    _dockerd_pid=""
}
docker_up() {
    command -v "$DOCKER" > /dev/null || docker_skip "no docker client (scripts/deploy-deps.sh installs docker.io)"
    # One Docker test at a time on this machine: the engine is shared, and
    # a test stops the dockerd it started (another worktree's test may be
    # using it). The lock goes with this shell; waits at most 15 min.
    exec 9> "${SS_DOCKER_LOCK:-/tmp/securestreams-docker.lock}"
    flock -w 900 9 || docker_skip "another Docker test held the lock for 15 min"
    if timeout 20 "$DOCKER" info > /dev/null 2>&1; then return 0; fi
    [ "$(id -u)" -eq 0 ] || docker_skip "no Docker engine runs and starting dockerd needs root"
    command -v dockerd > /dev/null || docker_skip "no dockerd (scripts/deploy-deps.sh installs docker.io)"
    dockerd --pidfile "$T/dockerd.pid" > "$T/dockerd.log" 2>&1 &
    _dockerd_pid=$!
    local i
    for ((i = 0; i < 60; i++)); do
        timeout 5 "$DOCKER" info > /dev/null 2>&1 && return 0
        kill -0 "$_dockerd_pid" 2> /dev/null || break
        sleep 0.5
    done
    local why
    why=$(grep -m1 -iE 'level=(error|fatal)' "$T/dockerd.log" | cut -c1-200)
    docker_down
    docker_skip "dockerd did not start: ${why:-no answer in 30 s}"
}

# swarm_mine: makes this engine the single node of a swarm of the test's
# own (`docker swarm init --advertise-addr 127.0.0.1`), leaving first a
# swarm that an earlier test made and could not leave (its node carries
# the label securestreams.test); swarm_leave leaves it again. SKIPPED when
# someone else's swarm is active. Sets NODE to the node's id.
_swarm_mine=0
swarm_leave() {
    [ $_swarm_mine = 1 ] && "$DOCKER" swarm leave --force > /dev/null 2>&1
    _swarm_mine=0
}
swarm_leave_stale() {
    local state mark
    state=$("$DOCKER" info --format '{{.Swarm.LocalNodeState}}' 2> /dev/null)
    [ "$state" = active ] || return 0
    mark=$("$DOCKER" node inspect self --format '{{index .Spec.Labels "securestreams.test"}}' 2> /dev/null)
    [ -n "$mark" ] ||
        docker_skip "a swarm is already active on this engine: the test leaves other people's swarms alone"
    "$DOCKER" swarm leave --force > /dev/null 2>&1
}
swarm_mine() {
    swarm_leave_stale
    "$DOCKER" swarm init --advertise-addr 127.0.0.1 > "$T/init.log" 2>&1 ||
        docker_skip "docker swarm init failed: $(tail -1 "$T/init.log")"
    _swarm_mine=1
    NODE=$("$DOCKER" node ls -q | head -1)
    "$DOCKER" node update --label-add securestreams.test=1 "$NODE" > /dev/null
}

# image_build: builds the image with scripts/build-image.sh (seconds when
# an earlier test built it: the engine keeps its layers), checks that it
# built and sets IMG to its name; on failure shows the end of the build's
# output and ends the test (finish).
image_build() {
    local start=$SECONDS out st
    out=$("$ROOT/scripts/build-image.sh" 2>&1)
    st=$?
    check "the image builds ($((SECONDS - start)) s)" [ $st -eq 0 ]
    if [ $st -ne 0 ]; then
        printf '%s\n' "$out" | tail -5 | sed 's/^/    /'
        finish
        exit
    fi
    IMG=$(printf '%s\n' "$out" | sed -n 's/^\(securestreams:[^:]*\): .*/\1/p' | tail -1)
}
