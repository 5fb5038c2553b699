/*
 * ss_spawner.c - the enclave spawner and its worker-side calls (see
 * ss_spawner.h).
 */
#include "enclave/ss_spawner.h"
#include "core/ss_bundle.h"
#include "core/ss_util.h"
#include "enclave/ss_enclave_chan.h"
#include "enclave/ss_enclave_int.h"
#include "securestreams.h"

#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define SP_MSG_MAX 8192
#define SP_ARGS_MAX 104 /* 32 and two per chained stage */
#define SP_KIDS_MAX 16
#define SP_SPAWN 'S'
#define SP_PID 'P'
#define SP_NO 'N'
#define SP_KILL 'K'
#define SP_EXIT 'X'

/* Sends one record: type, body, and an fd when fd >= 0. */
static int sp_send(int sock, char type, const void *body, size_t n, int fd)
{
    char buf[SP_MSG_MAX];
    if (n + 1 > sizeof buf)
        return SS_ETOOBIG;
    buf[0] = type;
    if (n)
        memcpy(buf + 1, body, n);
    struct iovec iov = {buf, n + 1};
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    char cbuf[CMSG_SPACE(sizeof(int))];
    if (fd >= 0) {
        memset(cbuf, 0, sizeof cbuf);
        mh.msg_control = cbuf;
        mh.msg_controllen = sizeof cbuf;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    }
    ssize_t w;
    do
        w = sendmsg(sock, &mh, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    return w == (ssize_t)(n + 1) ? 0 : SS_EIO;
}

/* Receives one record into buf (NUL-terminated after its n bytes) and
 * the fd it carried (*fd, or -1). Returns the length, 0 at end of file,
 * or -1 (errno EAGAIN when flags has MSG_DONTWAIT and nothing waits). */
static ssize_t sp_recv(int sock, char *buf, size_t cap, int *fd, int flags)
{
    struct iovec iov = {buf, cap - 1};
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    char cbuf[CMSG_SPACE(sizeof(int))];
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof cbuf;
    if (fd)
        *fd = -1;
    ssize_t r;
    do
        r = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -1;
    buf[r] = '\0';
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm;
         cm = CMSG_NXTHDR(&mh, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            int got;
            memcpy(&got, CMSG_DATA(cm), sizeof got);
            if (fd && *fd < 0)
                *fd = got;
            else
                close(got);
        }
    return r;
}

/* ---- the spawner ------------------------------------------------------- */

/* Checks a requested argv against c and builds the one to run into out
 * (strings borrowed from req or c). Returns 0, or SS_EDENIED with why. */
static int sp_check(const ss_spawner_conf *c, char **req, size_t n,
                    char **out, char *why, size_t wlen)
{
    /* the host may choose these: each is measured (the key service
     * refuses a value the pipeline does not have) or harmless */
    static const char *const free_opts[] = {"--mem-limit", "--spin-us",
                                            "--max-instructions", "--run",
                                            "--partition-by", "--broadcast",
                                            NULL};
    size_t k = 0;
    out[k++] = (char *)c->program;
    if (n < 2 || strcmp(req[1], "enclave") != 0) {
        snprintf(why, wlen, "not an enclave command");
        return SS_EDENIED;
    }
    out[k++] = "enclave";
    int have_keys = 0, nchain = 0;
    for (size_t i = 2; i < n; i++) {
        const char *a = req[i];
        if (!strcmp(a, "--encrypted") || !strcmp(a, "--echo")) {
            out[k++] = req[i];
            continue;
        }
        if (i + 1 >= n || k + 2 >= SP_ARGS_MAX) {
            snprintf(why, wlen, "bad argument '%.64s'", a);
            return SS_EDENIED;
        }
        const char *v = req[++i];
        const char *must = NULL;
        int ok = 0;
        for (size_t f = 0; free_opts[f]; f++)
            ok |= !strcmp(a, free_opts[f]);
        if (!strcmp(a, "--shm-fd"))
            must = "3";
        else if (!strcmp(a, "--name"))
            must = c->name;
        else if (!strcmp(a, "--stage"))
            must = c->stage;
        else if (!strcmp(a, "--script"))
            must = c->script ? c->script : "";
        else if (!strcmp(a, "--chain")) {
            /* this worker's chained stages only, in order */
            if (nchain >= c->nchain) {
                snprintf(why, wlen, "--chain '%.200s' is not this "
                         "worker's", v);
                return SS_EDENIED;
            }
            must = c->chain[nchain];
        } else if (!strcmp(a, "--keys")) {
            if (!c->keys) {
                snprintf(why, wlen, "no --keys for this worker");
                return SS_EDENIED;
            }
            must = c->keys;
            have_keys = 1;
        } else if (!ok) {
            snprintf(why, wlen, "option '%.64s' is not allowed", a);
            return SS_EDENIED;
        }
        if (must && strcmp(v, must) != 0) {
            snprintf(why, wlen, "%.32s '%.200s' is not this worker's",
                     a, v);
            return SS_EDENIED;
        }
        out[k++] = req[i - 1];
        if (!strcmp(a, "--chain")) {
            out[k++] = c->script_fd > 0 ? (char *)c->chain_at[nchain]
                                        : req[i];
            nchain++;
        } else
            out[k++] = !strcmp(a, "--script") && c->script_fd > 0
                           ? "/dev/fd/4"
                           : req[i];
    }
    if (nchain != c->nchain) {
        snprintf(why, wlen, "the enclave must run this worker's %d "
                 "chained stage(s), not %d", c->nchain, nchain);
        return SS_EDENIED;
    }
    if (!have_keys && c->keys && k + 2 < SP_ARGS_MAX) {
        out[k++] = "--keys";
        out[k++] = (char *)c->keys;
    }
    out[k] = NULL;
    return 0;
}

/* Starts one enclave on memfd; returns its pid or -1. */
static pid_t sp_fork(const ss_spawner_conf *c, char **argv, int memfd)
{
    char *env[8];
    ss_sandbox_child_env(env, sizeof env / sizeof env[0]);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* async-signal-safe calls only until exec */
    if (memfd == SS_CHAN_FD) {
        if (fcntl(SS_CHAN_FD, F_SETFD, 0) < 0)
            _exit(126);
    } else if (dup2(memfd, SS_CHAN_FD) < 0) {
        _exit(126);
    }
    /* the script on fd 4 (SS_CHAN_FD is 3); a fresh open of /dev/fd/4
     * has its own offset */
    if (c->script_fd > 0 && (c->script_fd == 4 ? fcntl(4, F_SETFD, 0)
                                               : dup2(c->script_fd, 4)) < 0)
        _exit(126);
    /* the chained scripts on 5.. (the launcher put them there: see
     * ss_spawner_conf) */
    for (int k = 0; c->script_fd > 0 && k < c->nchain; k++) {
        int from = c->script_fd + 1 + k, to = 5 + k;
        if ((from == to ? fcntl(to, F_SETFD, 0) : dup2(from, to)) < 0)
            _exit(126);
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(126);
    execve(c->program, argv, env);
    _exit(127);
}

/* See ss_spawner.h. */
int ss_spawner_serve(int sock, const ss_spawner_conf *c)
{
    pid_t kids[SP_KIDS_MAX];
    size_t nkids = 0;
    prctl(PR_SET_DUMPABLE, 0);
    for (;;) {
        /* report the enclaves that ended */
        int st;
        pid_t p;
        while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
            for (size_t i = 0; i < nkids; i++)
                if (kids[i] == p) {
                    kids[i] = kids[--nkids];
                    break;
                }
            int32_t rec[2] = {(int32_t)p, (int32_t)st};
            sp_send(sock, SP_EXIT, rec, sizeof rec, -1);
        }
        struct pollfd pf = {sock, POLLIN, 0};
        int r = poll(&pf, 1, 100);
        if (r < 0 && errno != EINTR)
            break;
        if (r <= 0)
            continue;
        char buf[SP_MSG_MAX];
        int fd = -1;
        ssize_t n = sp_recv(sock, buf, sizeof buf, &fd, 0);
        if (n <= 0)
            break; /* the worker is gone */
        if (buf[0] == SP_KILL && n == 1 + (ssize_t)sizeof(int32_t)) {
            int32_t v;
            memcpy(&v, buf + 1, sizeof v);
            for (size_t i = 0; i < nkids; i++)
                if (kids[i] == (pid_t)v)
                    kill(kids[i], SIGKILL);
        } else if (buf[0] == SP_SPAWN && fd >= 0) {
            char *req[SP_ARGS_MAX], *argv[SP_ARGS_MAX], why[300] = "";
            size_t na = 0;
            for (char *s = buf + 1; s < buf + n && na < SP_ARGS_MAX;
                 s += strlen(s) + 1)
                req[na++] = s;
            int rc = nkids == SP_KIDS_MAX ? SS_EDENIED
                     : sp_check(c, req, na, argv, why, sizeof why);
            if (nkids == SP_KIDS_MAX)
                snprintf(why, sizeof why, "too many enclaves");
            pid_t pid = rc ? -1 : sp_fork(c, argv, fd);
            if (pid > 0) {
                kids[nkids++] = pid;
                int32_t v = (int32_t)pid;
                sp_send(sock, SP_PID, &v, sizeof v, -1);
            } else {
                if (!why[0])
                    snprintf(why, sizeof why, "fork: %s", strerror(errno));
                sp_send(sock, SP_NO, why, strlen(why), -1);
            }
        }
        if (fd >= 0)
            close(fd);
    }
    for (size_t i = 0; i < nkids; i++) {
        kill(kids[i], SIGKILL);
        while (waitpid(kids[i], NULL, 0) < 0 && errno == EINTR)
            ;
    }
    return 0;
}

/* ---- the worker's side ----------------------------------------------- */

/* The last EXIT the worker read while waiting for something else. */
static pid_t sp_exited_pid;
static int sp_exited_status;

/* Waits at most ms for a record of type want (remembering an EXIT seen on
 * the way). Returns its length, 0 at end of file, -1 on timeout. */
static ssize_t sp_wait(int sock, char want, char *buf, size_t cap, int ms)
{
    uint64_t end = ss_now_ms() + (uint64_t)ms;
    for (;;) {
        int left = (int)(end - ss_now_ms());
        if (ss_now_ms() >= end)
            return -1;
        struct pollfd pf = {sock, POLLIN, 0};
        int r = poll(&pf, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        ssize_t n = sp_recv(sock, buf, cap, NULL, 0);
        if (n <= 0)
            return 0;
        if (buf[0] == SP_EXIT && n == 1 + 2 * (ssize_t)sizeof(int32_t)) {
            int32_t rec[2];
            memcpy(rec, buf + 1, sizeof rec);
            sp_exited_pid = (pid_t)rec[0];
            sp_exited_status = rec[1];
        }
        if (buf[0] == want || (want == SP_PID && buf[0] == SP_NO))
            return n;
    }
}

/* See ss_spawner.h. */
int ss_spawner_spawn(int sock, int memfd, char *const argv[], pid_t *pid,
                     char *err, size_t errlen)
{
    char body[SP_MSG_MAX - 1];
    size_t n = 0;
    for (size_t i = 0; argv[i]; i++) {
        size_t l = strlen(argv[i]) + 1;
        if (n + l > sizeof body)
            return SS_ETOOBIG;
        memcpy(body + n, argv[i], l);
        n += l;
    }
    if (sp_send(sock, SP_SPAWN, body, n, memfd) != 0) {
        snprintf(err, errlen, "the enclave spawner is gone");
        return SS_EIO;
    }
    char buf[SP_MSG_MAX];
    ssize_t r = sp_wait(sock, SP_PID, buf, sizeof buf, 10000);
    if (r < 0) {
        snprintf(err, errlen, "the enclave spawner does not answer");
        return SS_ETIMEOUT;
    }
    if (r == 0) {
        snprintf(err, errlen, "the enclave spawner is gone");
        return SS_EIO;
    }
    if (buf[0] == SP_NO) {
        for (ssize_t i = 1; i < r; i++) /* printable only */
            if ((unsigned char)buf[i] < 32 || (unsigned char)buf[i] > 126)
                buf[i] = '?';
        snprintf(err, errlen, "the enclave spawner refused: %s", buf + 1);
        return SS_EDENIED;
    }
    int32_t v;
    if (r != 1 + (ssize_t)sizeof v)
        return SS_EIO;
    memcpy(&v, buf + 1, sizeof v);
    *pid = (pid_t)v;
    return 0;
}

/* See ss_spawner.h. */
int ss_spawner_poll(int sock, pid_t pid, int *status)
{
    if (sp_exited_pid == pid && pid > 0) {
        *status = sp_exited_status;
        sp_exited_pid = 0;
        return 1;
    }
    char buf[64];
    for (;;) {
        ssize_t n = sp_recv(sock, buf, sizeof buf, NULL, MSG_DONTWAIT);
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n <= 0) {
            *status = SIGKILL; /* as if killed: the spawner died */
            return SS_EIO;
        }
        if (buf[0] == SP_EXIT && n == 1 + 2 * (ssize_t)sizeof(int32_t)) {
            int32_t rec[2];
            memcpy(rec, buf + 1, sizeof rec);
            if ((pid_t)rec[0] == pid) {
                *status = rec[1];
                return 1;
            }
        }
    }
}

/* See ss_spawner.h. */
void ss_spawner_kill(int sock, pid_t pid)
{
    int32_t v = (int32_t)pid;
    int st;
    if (ss_spawner_poll(sock, pid, &st) != 0)
        return;
    if (sp_send(sock, SP_KILL, &v, sizeof v, -1) != 0)
        return;
    uint64_t end = ss_now_ms() + 5000;
    while (ss_now_ms() < end) {
        if (ss_spawner_poll(sock, pid, &st) != 0)
            return;
        usleep(2000);
    }
}

/* Drops to (uid, gid) for good; 0 or -1. */
static int drop_to(uid_t uid, gid_t gid)
{
    if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0 ||
        setresuid(uid, uid, uid) != 0)
        return -1;
    uid_t r, e, sv;
    /* no way back: a saved uid of 0 would let it regain root */
    if (getresuid(&r, &e, &sv) != 0 || r != uid || e != uid || sv != uid ||
        setresuid(0, 0, 0) == 0)
        return -1;
    return 0;
}

/* See ss_spawner.h. */
int ss_spawner_launch_as(const ss_spawner_launch *l, char *err,
                         size_t errlen)
{
    if (geteuid() != 0) {
        ss_errf(err, errlen, "separate uids need root to start (with "
                             "CAP_SETUID and CAP_SETGID), and this is uid "
                             "%u",
                (unsigned)geteuid());
        return SS_EDENIED;
    }
    if (!l->w_uid || !l->e_uid || l->w_uid == l->e_uid) {
        ss_errf(err, errlen, "the worker's and the enclave's users must be "
                             "two users other than root");
        return SS_EINVAL;
    }
    int sfd = ss_bundle_memfd(l->script, err, errlen);
    if (sfd < 0)
        return sfd;
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) {
        ss_errf(err, errlen, "socketpair: %s", strerror(errno));
        close(sfd);
        return SS_EIO;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* the spawner: its socket on fd 3, the bundle on fd 4 */
        if (drop_to(l->e_uid, l->e_gid) != 0 ||
            prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
            _exit(126);
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* after the uid change */
        if (getppid() != parent)
            _exit(127);
        int s3 = sp[1], b4 = sfd;
        if (b4 == 3 && (b4 = fcntl(3, F_DUPFD_CLOEXEC, 5)) < 0)
            _exit(127);
        /* dup2 onto itself keeps close-on-exec: clear it then */
        if ((s3 == 3 ? fcntl(3, F_SETFD, 0) : dup2(s3, 3)) < 0 ||
            (b4 == 4 ? fcntl(4, F_SETFD, 0) : dup2(b4, 4)) < 0)
            _exit(127);
        const char *argv[] = {l->self, "enclave-spawner", "--fd", "3",
                              "--keys", l->keys, "--name", l->name,
                              "--stage", l->stage, "--script", l->script,
                              "--script-fd", "4", NULL};
        execv(l->self, (char *const *)argv);
        dprintf(2, "sstream: cannot execute %s: %s\n", l->self,
                strerror(errno));
        _exit(127);
    }
    int e = errno;
    close(sp[1]);
    close(sfd);
    if (pid < 0) {
        close(sp[0]);
        ss_errf(err, errlen, "fork: %s", strerror(e));
        return SS_EIO;
    }
    /* no exec from here on can gain a privilege (a setuid file) */
    if (drop_to(l->w_uid, l->w_gid) != 0 ||
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        e = errno;
        close(sp[0]);
        kill(pid, SIGKILL);
        ss_errf(err, errlen, "cannot become uid %u: %s", (unsigned)l->w_uid,
                strerror(e));
        return SS_EDENIED;
    }
    /* the worker keeps its end open across nothing: no exec follows */
    return sp[0];
}
