/*
 * ss_enclave_sandbox.c - the host side of the sandbox backend: spawns
 * `sstream enclave` on a memfd channel, attests and provisions it, relays
 * requests, and reports a dead child clearly (see ss_enclave.h).
 */
#include "core/ss_buf.h"
#include "core/ss_log.h"
#include "core/ss_util.h"
#include "enclave/ss_enclave_int.h"
#include "enclave/ss_spawner.h"
#include "securestreams.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define START_TIMEOUT_MS 60000 /* measuring + loading the script */
#define TICK_MS 10

/* What a signal means for an enclave. */
static const char *sig_meaning(int sig)
{
    switch (sig) {
    case SIGSYS: return "forbidden system call";
    case SIGKILL: return "killed (out of memory, or by another process)";
    case SIGSEGV: return "crashed (invalid memory access)";
    case SIGBUS: return "crashed (bus error)";
    case SIGABRT: return "aborted";
    case SIGTERM: return "terminated";
    }
    return "killed";
}

/* Formats how the child ended into err. */
static void describe_death(ss_enclave *e, int st, char *err, size_t errlen)
{
    const char *last = e->ctl && e->ctl->err[0] ? e->ctl->err : NULL;
    char detail[1100] = "";
    if (last && e->ctl->status < 0) {
        char tmp[1024];
        memcpy(tmp, e->ctl->err, sizeof tmp);
        tmp[sizeof tmp - 1] = '\0';
        snprintf(detail, sizeof detail, " (last error: %s)", tmp);
    }
    if (WIFSIGNALED(st)) {
        int sig = WTERMSIG(st);
        const char *ab = sigabbrev_np(sig);
        snprintf(err, errlen, "enclave of worker %s was killed by signal %d "
                              "(SIG%s): %s%s",
                 e->name, sig, ab ? ab : "?", sig_meaning(sig), detail);
    } else if (WIFEXITED(st)) {
        snprintf(err, errlen, "enclave of worker %s exited with status %d%s",
                 e->name, WEXITSTATUS(st), detail);
    } else {
        snprintf(err, errlen, "enclave of worker %s is gone%s", e->name,
                 detail);
    }
}

/* Checks whether the child is gone; if so reaps it, marks the enclave
 * dead and describes why. Returns 1 if dead. */
static int check_child(ss_enclave *e, char *err, size_t errlen)
{
    if (!e->pid)
        return 1;
    int st = 0;
    if (e->o.spawner_fd > 0) { /* a child of the spawner, not ours */
        if (ss_spawner_poll(e->o.spawner_fd, e->pid, &st) == 0)
            return 0;
        describe_death(e, st, err, errlen);
        e->pid = 0;
        e->dead = 1;
        return 1;
    }
    pid_t r = waitpid(e->pid, &st, WNOHANG);
    if (r == 0)
        return 0;
    if (r < 0) {
        /* someone else reaped it (waitpid(-1) in the caller?) */
        if (kill(e->pid, 0) == 0 || errno != ESRCH)
            return 0;
        snprintf(err, errlen, "enclave of worker %s is gone (reaped "
                              "elsewhere)", e->name);
    } else {
        describe_death(e, st, err, errlen);
    }
    e->pid = 0;
    e->dead = 1;
    return 1;
}

/* Waits for the response to request seq. Returns 0, SS_EPEER (dead) or
 * SS_ETIMEOUT (timeout_ms > 0 elapsed). A quick answer comes while it
 * spins, or wakes the futex; a slow one is waited for in TICK_MS slices,
 * and between two slices it checks that the child lives and, with tick,
 * runs the caller's duties (ss_enclave_set_tick: a worker's heartbeats
 * to its router must not wait for a long batch). So a request that
 * answers within its first slice pays nothing for either. */
static int await(ss_enclave *e, uint32_t seq, int timeout_ms, int tick,
                 char *err, size_t errlen)
{
    e->spin.limit_ns = (uint64_t)e->o.spin_us * 1000;
    uint64_t spin = ss_chan_spin_ns(&e->spin);
    uint64_t t0 = ss_now_ns();
    uint64_t deadline = timeout_ms > 0 ? ss_now_ms() + (uint64_t)timeout_ms
                                       : 0;
    for (;;) {
        uint32_t cur = atomic_load_explicit(&e->ctl->resp,
                                            memory_order_acquire);
        if (cur == seq) {
            ss_chan_spin_record(&e->spin, ss_now_ns() - t0);
            return 0;
        }
        if (ss_chan_wait(&e->ctl->resp, &e->ctl->resp_sleeping, cur, spin,
                         TICK_MS))
            continue;
        spin = 0;
        if (check_child(e, err, errlen))
            return SS_EPEER;
        if (tick && e->tick)
            e->tick(e->tick_arg);
        if (deadline && ss_now_ms() > deadline) {
            snprintf(err, errlen, "enclave of worker %s does not answer",
                     e->name);
            return SS_ETIMEOUT;
        }
    }
}

/* Kills and reaps the child if there is one. */
static void kill_child(ss_enclave *e)
{
    if (!e->pid)
        return;
    if (e->o.spawner_fd > 0) {
        ss_spawner_kill(e->o.spawner_fd, e->pid);
        e->pid = 0;
        return;
    }
    kill(e->pid, SIGKILL);
    while (waitpid(e->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    e->pid = 0;
}

/* Copies the child's error message (untrusted bytes) into err. */
static void child_err(ss_enclave *e, int rc, char *err, size_t errlen)
{
    char tmp[1024];
    memcpy(tmp, e->ctl->err, sizeof tmp);
    tmp[sizeof tmp - 1] = '\0';
    snprintf(err, errlen, "%s", tmp[0] ? tmp : ss_strerror(rc));
}

/* Status from the child, mapped to a known error code. */
static int child_status(ss_enclave *e)
{
    int32_t s = e->ctl->status;
    if (s > 0 || s < SS_ENOTFOUND)
        return SS_EPEER;
    return s;
}

/* See ss_enclave_int.h. */
int ss_sandbox_request(ss_enclave *e, uint32_t op, const void *in,
                       size_t n, char *err, size_t errlen)
{
    if (e->dead || !e->pid) {
        snprintf(err, errlen, "enclave of worker %s is down (restart it)",
                 e->name);
        return SS_EPEER;
    }
    if (n > SS_CHAN_IN_CAP)
        return SS_ETOOBIG;
    if (n)
        memcpy(ss_chan_in(e->base), in, n);
    e->ctl->op = op;
    e->ctl->in_len = n;
    uint32_t seq = ++e->seq;
    ss_chan_ring(&e->ctl->req, &e->ctl->req_sleeping, seq);
    int rc = await(e, seq, 0, 1, err, errlen);
    if (rc)
        return rc;
    e->peak_rss_kb = (long)e->ctl->peak_rss_kb;
    rc = child_status(e);
    if (rc)
        child_err(e, rc, err, errlen);
    return rc;
}

/* Builds the child's argv into args (strings owned by e or buf). */
static void build_argv(ss_enclave *e, char **args, char bufs[5][32])
{
    int i = 0;
    args[i++] = e->program;
    args[i++] = "enclave";
    args[i++] = "--shm-fd";
    args[i++] = "3";
    args[i++] = "--name";
    args[i++] = e->name;
    args[i++] = "--stage";
    args[i++] = e->stage;
    snprintf(bufs[0], 32, "%zu", e->o.mem_limit);
    args[i++] = "--mem-limit";
    args[i++] = bufs[0];
    snprintf(bufs[1], 32, "%u", e->o.spin_us);
    args[i++] = "--spin-us";
    args[i++] = bufs[1];
    snprintf(bufs[2], 32, "%llu", (unsigned long long)e->o.max_instructions);
    args[i++] = "--max-instructions";
    args[i++] = bufs[2];
    if (e->o.echo) {
        args[i++] = "--echo";
    } else {
        args[i++] = "--script";
        args[i++] = e->script;
    }
    if (e->o.run) {
        snprintf(bufs[3], 32, "%016llx", (unsigned long long)e->o.run);
        args[i++] = "--run";
        args[i++] = bufs[3];
    }
    if (e->partition_by) {
        args[i++] = "--partition-by";
        args[i++] = e->partition_by;
    }
    if (e->o.broadcast) {
        snprintf(bufs[4], 32, "%u", e->o.broadcast);
        args[i++] = "--broadcast";
        args[i++] = bufs[4];
    }
    for (int k = 0; k < e->o.nchain; k++) { /* after the first, in order */
        args[i++] = "--chain";
        args[i++] = e->chain[k];
    }
    if (e->o.encrypted)
        args[i++] = "--encrypted";
    if (e->key_dir) {
        args[i++] = "--keys";
        args[i++] = e->key_dir;
    }
    args[i] = NULL;
}

/* The enclave's environment: only what is listed here passes, so that
 * nothing in the host's environment (LD_PRELOAD, LD_LIBRARY_PATH, ...)
 * reaches it. The log settings only change what the enclave writes to
 * the host's own log. (The enclave program is static, so that a host
 * that execs it itself with LD_PRELOAD gets nothing either; a host that
 * execs another program gets another measurement, and no key.) Test
 * builds also pass their test hooks. */
/* See ss_enclave_int.h. */
void ss_sandbox_child_env(char **env, size_t max)
{
    static const char *const keep[] = {
        "LOG_LEVEL", "LOG_RATE",
        /* measuring switches of chaining (src/lua/ss_chain.h): the
         * same outputs either way */
        "SS_CHAIN_SHARED", "SS_CHAIN_DEFER",
#ifdef SS_TEST_HOOKS
        "SS_ENCLAVE_TEST_SYSCALL",
#endif
    };
    size_t n = 0;
    for (size_t i = 0; i < sizeof keep / sizeof keep[0] && n + 1 < max;
         i++) {
        size_t kl = strlen(keep[i]);
        for (char **ev = environ; ev && *ev; ev++)
            if (!strncmp(*ev, keep[i], kl) && (*ev)[kl] == '=') {
                env[n++] = *ev;
                break;
            }
    }
    env[n] = NULL;
}

/* Maps a fresh channel. */
static int chan_create(ss_enclave *e, char *err, size_t errlen)
{
    e->memfd = memfd_create("sstream-enclave", MFD_CLOEXEC |
                                                   MFD_ALLOW_SEALING);
    if (e->memfd < 0 || ftruncate(e->memfd, SS_CHAN_SIZE) < 0) {
        snprintf(err, errlen, "cannot create the enclave channel: %s",
                 strerror(errno));
        return SS_EIO;
    }
    fcntl(e->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
    e->base = mmap(NULL, SS_CHAN_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                   e->memfd, 0);
    if (e->base == MAP_FAILED) {
        e->base = NULL;
        snprintf(err, errlen, "cannot map the enclave channel: %s",
                 strerror(errno));
        return SS_EIO;
    }
    e->ctl = e->base;
    return 0;
}

/* See ss_enclave_int.h. */
int ss_sandbox_start(ss_enclave *e, char *err, size_t errlen)
{
    int rc;
    if (!e->base && (rc = chan_create(e, err, errlen)) != 0)
        return rc;
    ss_chan_ctl *ctl = e->ctl;
    memset(ctl, 0, sizeof *ctl);
    ctl->magic = SS_CHAN_MAGIC;
    ctl->version = SS_CHAN_VERSION;
    ctl->op = SS_CHAN_START;
    atomic_store(&ctl->req, 1);
    e->seq = 1;
    e->dead = 0;

    char *args[32 + 2 * SS_CHAIN_MAX], bufs[5][32], *env[8];
    build_argv(e, args, bufs);
    ss_sandbox_child_env(env, sizeof env / sizeof env[0]);
    pid_t parent = getpid();
    pid_t pid;
    if (e->o.spawner_fd > 0) {
        /* separate uids: the spawner starts it as the enclave's user */
        char why[512];
        rc = ss_spawner_spawn(e->o.spawner_fd, e->memfd, args, &pid, why,
                              sizeof why);
        if (rc) {
            snprintf(err, errlen, "cannot start the enclave of worker %s: "
                                  "%s", e->name, why);
            return rc;
        }
    } else if ((pid = fork()) < 0) {
        snprintf(err, errlen, "cannot start the enclave: fork: %s",
                 strerror(errno));
        return SS_EIO;
    }
    if (pid == 0) {
        /* async-signal-safe calls only until exec */
        if (e->memfd == SS_CHAN_FD) {
            if (fcntl(SS_CHAN_FD, F_SETFD, 0) < 0) /* keep across exec */
                _exit(126);
        } else if (dup2(e->memfd, SS_CHAN_FD) < 0) {
            _exit(126);
        }
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(126);
        execve(e->program, args, env);
        _exit(127);
    }
    e->pid = pid;
    rc = await(e, 1, START_TIMEOUT_MS, 1, err, errlen);
    if (rc == SS_EPEER && e->ctl->status < 0 && e->ctl->err[0]) {
        /* it failed to start and said why */
        char why[1100];
        child_err(e, SS_EPEER, why, sizeof why);
        snprintf(err, errlen, "enclave of worker %s failed to start: %s",
                 e->name, why);
        return child_status(e) == SS_EPEER ? SS_EPEER : child_status(e);
    }
    if (rc) {
        kill_child(e);
        e->dead = 1;
        return rc;
    }
    rc = child_status(e);
    if (rc) {
        char why[1100];
        child_err(e, rc, why, sizeof why);
        snprintf(err, errlen, "enclave of worker %s failed to start: %s",
                 e->name, why);
        kill_child(e);
        e->dead = 1;
        return rc;
    }
    memcpy(e->measurement, ctl->measurement, SS_MEASUREMENT_BYTES);
    memcpy(e->from, ctl->from, sizeof e->from);
    e->from[sizeof e->from - 1] = '\0';
    memcpy(e->to, ctl->to, sizeof e->to);
    e->to[sizeof e->to - 1] = '\0';
    e->stateful = ctl->stateful != 0;
    e->uses_sgx = ctl->uses_sgx != 0;
    e->peak_rss_kb = (long)ctl->peak_rss_kb;
    if (ctl->nstages != e->nstages) {
        snprintf(err, errlen, "enclave of worker %s loaded %u stages, not "
                 "the %zu asked for", e->name, ctl->nstages, e->nstages);
        kill_child(e);
        e->dead = 1;
        return SS_EPROTO;
    }
    e->stateful_bits = ctl->stateful_bits;
    if (!e->o.encrypted)
        return 0;

    /* attestation: the report goes to the key service, the sealed key
     * comes back and only the enclave can open it */
    if (!ctl->has_report) {
        snprintf(err, errlen, "enclave of worker %s produced no report",
                 e->name);
        kill_child(e);
        e->dead = 1;
        return SS_EDENIED;
    }
    uint8_t report[SS_REPORT_BYTES];
    memcpy(report, ctl->report, sizeof report);
    ss_buf sealed = SS_BUF_INIT;
    rc = e->o.get_key(e->o.key_ctx, report, sizeof report, &sealed, err,
                      errlen);
    if (!rc)
        rc = ss_sandbox_request(e, SS_CHAN_PROVISION, sealed.data,
                                sealed.len, err, errlen);
    ss_buf_release(&sealed);
    if (rc) {
        kill_child(e);
        e->dead = 1;
        return rc;
    }
    return 0;
}

/* See ss_enclave_int.h. */
void ss_sandbox_stop(ss_enclave *e)
{
    if (e->pid && !e->dead && e->ctl) {
        char err[256];
        e->ctl->op = SS_CHAN_QUIT;
        e->ctl->in_len = 0;
        uint32_t seq = ++e->seq;
        ss_chan_ring(&e->ctl->req, &e->ctl->req_sleeping, seq);
        /* no tick: the caller is closing, its duties are over */
        if (await(e, seq, 1000, 0, err, sizeof err) == 0) {
            for (int i = 0; i < 100 && e->pid; i++) {
                int st;
                if (e->o.spawner_fd > 0
                        ? ss_spawner_poll(e->o.spawner_fd, e->pid, &st) != 0
                        : waitpid(e->pid, &st, WNOHANG) == e->pid)
                    e->pid = 0;
                else
                    usleep(1000);
            }
        }
    }
    kill_child(e);
    if (e->base)
        munmap(e->base, SS_CHAN_SIZE);
    e->base = NULL;
    e->ctl = NULL;
    if (e->memfd >= 0)
        close(e->memfd);
    e->memfd = -1;
}
