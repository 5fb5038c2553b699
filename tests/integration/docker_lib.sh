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
