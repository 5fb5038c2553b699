/*
 * ss_engine.c - the container engine's client as a child process with a
 * time limit (ss_engine.h).
 */
#include "run/ss_engine.h"
#include "core/ss_util.h"
#include "securestreams.h"

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

/* Reads what is ready on fd into b (at most max bytes kept). 0 at end of
 * file, 1 if more may come. */
static int drain(int fd, char *b, size_t *n, size_t max)
{
    char tmp[4096];
    ssize_t r = read(fd, tmp, sizeof tmp);
    if (r < 0)
        return errno == EINTR || errno == EAGAIN ? 1 : 0;
    if (r == 0)
        return 0;
    size_t take = (size_t)r;
    if (*n + take > max)
        take = max - *n;
    memcpy(b + *n, tmp, take);
    *n += take;
    return 1;
}

/* The first line of s, without trailing blanks, into out. */
static void first_line(const char *s, char *out, size_t n)
{
    while (*s == ' ' || *s == '\n')
        s++;
    size_t i = 0;
    for (; s[i] && s[i] != '\n' && i + 1 < n; i++)
        out[i] = s[i];
    while (i > 0 && (out[i - 1] == ' ' || out[i - 1] == '\r'))
        i--;
    out[i] = '\0';
}

/* See ss_engine.h. */
int ss_engine_query(const char *prog, const char *const *argv,
                    long timeout_ms, size_t max, char **out, char *why,
                    size_t whylen)
{
    *out = NULL;
    if (!prog)
        prog = ss_engine_client();
    const char *av[MAX_ARGS + 2];
    size_t n = 0;
    av[n++] = prog;
    for (; argv[n - 1]; n++) {
        if (n > MAX_ARGS) {
            ss_errf(why, whylen, "too many arguments for '%s'", prog);
            return SS_EINVAL;
        }
        av[n] = argv[n - 1];
    }
    av[n] = NULL;
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC))
        goto sys;
    if (pipe2(pe, O_CLOEXEC)) {
        close(po[0]);
        close(po[1]);
        goto sys;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(po[0]), close(po[1]), close(pe[0]), close(pe[1]);
        goto sys;
    }
    if (pid == 0) {
        int nul = open("/dev/null", O_RDONLY);
        if (nul < 0 || dup2(nul, 0) < 0 || dup2(po[1], 1) < 0 ||
            dup2(pe[1], 2) < 0)
            _exit(127);
        signal(SIGPIPE, SIG_DFL);
        execvp(prog, (char *const *)av);
        dprintf(2, "cannot run '%s': %s\n", prog, strerror(errno));
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    char *ob = malloc(max + 1), *eb = malloc(max + 1);
    size_t on = 0, en = 0;
    int open_o = 1, open_e = 1, timed_out = 0;
    uint64_t end = ss_now_ms() + (uint64_t)timeout_ms;
    while (ob && eb && (open_o || open_e)) {
        uint64_t now = ss_now_ms();
        if (now >= end) {
            timed_out = 1;
            break;
        }
        struct pollfd pf[2] = {{open_o ? po[0] : -1, POLLIN, 0},
                               {open_e ? pe[0] : -1, POLLIN, 0}};
        if (poll(pf, 2, (int)(end - now)) < 0 && errno != EINTR)
            break;
        if (open_o && pf[0].revents)
            open_o = drain(po[0], ob, &on, max);
        if (open_e && pf[1].revents)
            open_e = drain(pe[0], eb, &en, max);
    }
    close(po[0]);
    close(pe[0]);
    if (timed_out || !ob || !eb)
        kill(pid, SIGKILL);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!ob || !eb) {
        free(ob);
        free(eb);
        ss_errf(why, whylen, "out of memory");
        return SS_ENOMEM;
    }
    ob[on] = '\0';
    eb[en] = '\0';
    int rc = 0;
    if (timed_out) {
        ss_errf(why, whylen, "no answer in %ld ms", timeout_ms);
        rc = SS_ETIMEOUT;
    } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char line[512];
        first_line(eb, line, sizeof line);
        if (!*line)
            first_line(ob, line, sizeof line);
        if (*line)
            ss_errf(why, whylen, "%s", line);
        else if (WIFSIGNALED(st))
            ss_errf(why, whylen, "killed by signal %d", WTERMSIG(st));
        else
            ss_errf(why, whylen, "exit status %d", WEXITSTATUS(st));
        rc = SS_EIO;
    }
    free(eb);
    if (rc)
        free(ob);
    else
        *out = ob;
    return rc;
sys:
    ss_errf(why, whylen, "cannot start '%s': %s", prog, strerror(errno));
    return SS_EIO;
}
