/*
 * ss_engine.c - the container engine's client as a child process with a
 * time limit (ss_engine.h).
 */
#include "run/ss_engine.h"
#include "core/ss_util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ARGS 64

/* See ss_engine.h. */
const char *ss_engine_client(void) { return ss_env("DOCKER", "docker"); }

/* Starts the client with stdout and stderr on fd; returns its pid or -1. */
static pid_t start(const char *const *argv, int fd)
{
    const char *av[MAX_ARGS + 2];
    size_t n = 0;
    av[n++] = ss_engine_client();
    for (; argv[n - 1] && n <= MAX_ARGS; n++)
        av[n] = argv[n - 1];
    if (n > MAX_ARGS)
        return -1;
    av[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        signal(SIGPIPE, SIG_DFL);
        execvp(av[0], (char *const *)av);
        fprintf(stderr, "cannot run %s: %s\n", av[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

/* Waits for pid until deadline (ss_now_ns), killing it past it. Returns
 * its status, or -1. */
static int finish(pid_t pid, uint64_t deadline)
{
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        if (r < 0 && errno != EINTR)
            return -1;
        if (ss_now_ns() > deadline) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
            return -1;
        }
        usleep(20000);
    }
}

/* See ss_engine.h. */
int ss_engine_cmd_fd(const char *const *argv, int fd, long timeout_ms)
{
    pid_t pid = start(argv, fd);
    if (pid < 0)
        return -1;
    return finish(pid, ss_now_ns() + (uint64_t)timeout_ms * 1000000ull);
}

/* See ss_engine.h. */
int ss_engine_cmd(const char *const *argv, char *out, size_t outlen,
                  long timeout_ms)
{
    int p[2];
    if (out && outlen)
        out[0] = '\0';
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = start(argv, p[1]);
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return -1;
    }
    uint64_t deadline = ss_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    size_t len = 0;
    int timed_out = 0;
    for (;;) {
        uint64_t now = ss_now_ns();
        if (now >= deadline) {
            timed_out = 1;
            break;
        }
        struct pollfd pf = {p[0], POLLIN, 0};
        int ms = (int)((deadline - now) / 1000000ull) + 1;
        int r = poll(&pf, 1, ms > 1000 ? 1000 : ms);
        if (r < 0 && errno != EINTR)
            break;
        if (r <= 0)
            continue;
        char buf[4096];
        ssize_t k = read(p[0], buf, sizeof buf);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        if (out && outlen > len + 1) {
            size_t c = (size_t)k < outlen - 1 - len ? (size_t)k
                                                     : outlen - 1 - len;
            memcpy(out + len, buf, c);
            len += c;
            out[len] = '\0';
        }
    }
    close(p[0]);
    int st = finish(pid, timed_out ? 0 : deadline);
    if (timed_out && out && outlen)
        snprintf(out, outlen, "%s did not answer in %ld ms",
                 ss_engine_client(), timeout_ms);
    return st;
}
