/*
 * ss_supervisor.c - the processes of `sstream run`: start them, relay
 * their output, watch them, stop them, report (see ss_supervisor.h).
 *
 * The other jobs of a run live next door: ss_plan.c turns the pipeline
 * into command lines and endpoints, ss_monitor.c receives the components'
 * counters on the control socket, ss_accounting.c balances the books,
 * ss_progress.c draws the live line. What is left here is the process
 * lifecycle and the terminal.
 */
#include "run/ss_supervisor.h"
#include "core/ss_bundle.h"
#include "core/ss_log.h"
#include "core/ss_buf.h"
#include "core/ss_util.h"
#include "lua/ss_chain.h"
#include "net/ss_router.h"
#include "run/ss_accounting.h"
#include "run/ss_ckresume.h"
#include "run/ss_ctlsock.h"
#include "run/ss_monitor.h"
#include "run/ss_plan.h"
#include "run/ss_progress.h"
#include "run/ss_runkeys.h"
#include "run/ss_runrec.h"
#include "wire/ss_stats.h"
#include "wire/ss_partition.h"
#include "securestreams.h"

#include <dirent.h>
#include <sodium.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define STOP_GRACE_NS (2000ull * 1000000ull)    /* SIGTERM -> SIGKILL */
#define FINISH_GRACE_NS (10000ull * 1000000ull) /* sink done -> stop rest */
#define DRAW_EVERY_NS (250ull * 1000000ull)     /* progress: 4 per second */
#define STALE_NS (3000ull * 1000000ull)         /* a rate this old is 0 */
#define READY_MS 3000 /* longest wait for the consumers before the source */
#define POLL_MS 100
#define DEFER_NS (500ull * 1000000ull) /* an error exit waits for a kill */
#define LINE_MAX_RELAY 4096
#define SCALE_SLOTS_DEFAULT 8 /* spare workers of a stage (ss_run_opts) */

extern char **environ;

/* A component while it runs; its plan is sv->plan->comps[i] and its
 * counters ss_monitor_get(sv->mon, i) for the same i. */
typedef struct child {
    const char *name; /* borrowed from the plan */
    const char *role;
    int stage;
    pid_t pid;
    int running;
    int status; /* wait status once exited */
    int exited;
    double cpu_s; /* user + system time once exited (its children too) */
    int lost;   /* a worker that died while its stage went on */
    int deferred; /* exited with an error while restarts remain: failed
                     only if no restart begins first (failure_due) */
    int err_fd, out_fd; /* read ends of stderr / relayed stdout, or -1 */
    int as_worker;      /* separate uids: runs as sstream-worker */
    int spawner;        /* ... with an enclave spawner (sstream-enclave) */
    pid_t spawner_pid;  /* that spawner while it runs (its CPU time, with
                           its enclaves', is added to cpu_s), else 0 */
    int log_fd;         /* its log file (stdout goes there too), or -1 */
    unsigned starts;    /* times started (restarts append to its log) */
    ss_buf err_line, out_line;
    char first_error[512]; /* its first "error:" line, for the cause */
    /* rescaling (sstream scale): a worker is active when it belongs to
     * its stage's current set (started at a start or restart); a spare
     * slot is not until a rescale up starts it (scaled); a rescale down
     * makes it leave (leaving), then it has left (no longer active; its
     * counters stay in the books) */
    int active, scaled, leaving, left;
    int was_lost; /* lost (killed, its stage went on) before a restart */
    double left_s; /* when it left, seconds into the run */
} child;

struct ss_supervisor {
    const ss_pipeline *p;
    ss_run_opts o;
    char *exe;   /* what to execve */
    char *argv0; /* argv[0] of the children */
    char *outdir, *logdir, *rejdir;
    int out_lock; /* <outdir>/.lock, flock'ed while the run lives, or -1 */
    ss_plan *plan;
    ss_runkeys *rk;  /* the components' key folders (tmpdir/keys) */
    int sep;         /* separate uids (root, users present) */
    uid_t w_uid, e_uid; /* sstream-worker, sstream-enclave */
    gid_t w_gid, e_gid;
    char *self;      /* this program, for the enclave spawners */
    char uid_warning[512]; /* what protection is lost, said at start */
    const char **names, **pubs; /* each kid's name and CURVE key */
    const char **ks_allow, **ks_names; /* the key service's allow list */
    size_t ks_n;
    ss_monitor *mon; /* from ss_supervisor_run on */
    const char **stage_names; /* p->stages[s].name, for the books */
    child *kids; /* as many as plan->comps, same order */
    size_t nkids;
    size_t lost; /* workers that died while their stage went on */
    int sink, source; /* indices in kids */
    ss_progress pg;
    int progress, relay_stdout;
    uint64_t t0, finish_ns, stop_ns;
    int done, stopping, killed, result, failed;
    int ran, source_started, devnull;
    int source_stopped; /* the followed source was asked to end (signal) */
    int stop_source_at_start; /* ... before it started: when it does */
    uint64_t ready_ns;
    uint64_t run;       /* this run's id, drawn at ss_supervisor_new */
    char run_env[32];   /* "SS_RUN=<16 hex digits>" for every child */
    ss_balance books; /* the verdict of the summary, once it ran */
    char cause[1024]; /* why the run failed: the first cause, "" if none */
    const struct child *cause_child; /* whose exit caused it, or NULL */
    size_t muted;     /* stderr lines kept to the logs while stopping */
    /* recovery (ss_run_opts.max_restarts) */
    int restarting;     /* every child is being killed for a restart */
    unsigned restarts;  /* restarts begun so far */
    uint64_t start_ns;  /* when the current incarnation started */
    int spool_fd;       /* the sink's stdout until it completes, or -1 */
    char *spool_path;
    char *output_path;  /* the sink's OUTPUT, or NULL */
    off_t output_len0;  /* its length before the run, -1: it did not exist */
    /* checkpoints (pipeline checkpoint_ms): the coordinator */
    char *ckptdir;      /* <outdir>/checkpoints, or NULL */
    char *stagedir;     /* <run folder>/ckpt: what the components write */
    uint32_t ckpt_epoch; /* the last complete epoch (0: none) */
    uint32_t ckpt_max;   /* the highest epoch acknowledged by anyone */
    unsigned ckpt_done;  /* epochs completed, this incarnation */
    char epoch_env[48];  /* "SS_CHECKPOINT_BASE=N" for the source */
    /* a restart that resumes from the last complete checkpoint: NULL or
     * "SS_RESUME_PARTS=..." (source), "SS_RESUME_STREAMS=..." (routers,
     * sink), "SS_RESTORE_EPOCH=E" (workers, sink) */
    char *resume_parts_env, *resume_streams_env;
    char restore_env[40];
    /* per stage: "SS_RESTORE_WORKERS=N" when the run resumes with another
     * worker count of that (partitioned, stateful) stage than the
     * checkpoint's N, else "" (rescaling: docs/ARCHITECTURE.md) */
    char (*rescale_env)[40];
    uint32_t *rescale_from; /* per stage: that N, or 0 */
    uint32_t resumed_from; /* the epoch the current incarnation resumed
                              from (0: from the start) */
    uint64_t defer_ns;     /* a deferred failure is due then (0: none) */
    /* rescaling (sstream scale NAME STAGE N): the owner's control socket
     * and the run's record in the state folder */
    int ctl_fd;            /* listening, or -1 */
    char ctl_path[PATH_MAX];
    char rec_name[64];     /* the record written ("" none) */
    int scale_slots;       /* spare worker slots per rescalable stage */
    char scalelog[1024];   /* "map 1->3 at 1.2 s; ..." for the summary */
    int *cur_workers;      /* each stage's worker count now (a rescale at
                              a checkpoint changes it) */
    int resc_stage;        /* a rescale waiting for a checkpoint: stage */
    int resc_n;            /* ... its new count (0: none waits) */
    uint32_t resc_after;   /* ... at a checkpoint above this epoch */
    double resc_asked;     /* ... asked at (s into the run) */
    unsigned long sink_lines; /* lines the sink printed, not spooled */
    /* the sink's output committed at checkpoints (two-phase: written
     * by the sink, committed by the coordinator; see "the sink's
     * commit" below) */
    uint32_t commit_epoch;   /* the epoch whose marks are committed (0:
                                none yet: committed is what was before
                                the run) */
    int64_t shown;           /* bytes of the spool on the run's stdout */
    int64_t commit_output;   /* OUTPUT's committed length, -1: no file */
    struct commit_mark *commit_rejects; /* the rejects files' committed
                                           lengths (by path: the plan may
                                           change between incarnations) */
    size_t ncommit_rejects;
};

/* A rejects file and its length at the committed checkpoint. */
typedef struct commit_mark {
    char *path;
    int64_t len;
} commit_mark;

/* Signal plumbing: handlers only write a byte to a pipe. */
static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t sig_stop_count;

static void on_signal(int sig)
{
    int saved = errno;
    if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP)
        sig_stop_count++;
    char c = (char)sig;
    if (sig_pipe[1] >= 0)
        (void)!write(sig_pipe[1], &c, 1);
    errno = saved;
}

/* ---- output to the terminal ------------------------------------------ */

static void clear_progress(ss_supervisor *sv) { ss_progress_clear(&sv->pg); }

/* Prints one message of the supervisor: "sstream run: ...\n". */
static void say(ss_supervisor *sv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(ss_supervisor *sv, const char *fmt, ...)
{
    clear_progress(sv);
    va_list ap;
    va_start(ap, fmt);
    fputs("sstream run: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
}

/* Records why the run fails, once: the first cause is the one a user
 * needs; what follows it (peers losing their router, ...) are effects. */
static void set_cause(ss_supervisor *sv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_cause(ss_supervisor *sv, const char *fmt, ...)
{
    if (sv->cause[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sv->cause, sizeof sv->cause, fmt, ap);
    va_end(ap);
}

/* Plain summary line (no prefix), skipped when quiet. */
static void out(ss_supervisor *sv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void out(ss_supervisor *sv, const char *fmt, ...)
{
    if (sv->o.quiet)
        return;
    clear_progress(sv);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

/* "worker map-2", "router-1", "source", "sink". */
static const char *who(const child *c, char *buf, size_t len)
{
    if (strncmp(c->name, c->role, strlen(c->role)) == 0)
        snprintf(buf, len, "%s", c->name);
    else
        snprintf(buf, len, "%s %s", c->role, c->name);
    return buf;
}

/* The counters of kids[i] the monitor has, NULL if none arrived yet. */
static const ss_stats *stats_of(const ss_supervisor *sv, size_t i)
{
    const ss_monitor_comp *m = sv->mon ? ss_monitor_get(sv->mon, i) : NULL;
    return m && m->have_st ? &m->st : NULL;
}

/* The counters of the chained stage plan->virt[v] (reported by its host
 * worker under its own name), NULL if none arrived yet. */
static const ss_stats *vstats_of(const ss_supervisor *sv, size_t v)
{
    return stats_of(sv, sv->nkids + v); /* added after the kids */
}

static size_t index_of(const ss_supervisor *sv, const child *c)
{
    return (size_t)(c - sv->kids);
}

/* Stage s's worker count now (its `workers`, until a rescale at a
 * checkpoint changes it). */
static int workers_of(const ss_supervisor *sv, size_t s)
{
    return sv->cur_workers ? sv->cur_workers[s] : sv->p->stages[s].workers;
}

/* Records that stage s (name) went from `from` to `to` workers: its count
 * now (workers_of), and a line "name from -> to WHEN" of the summary's
 * "rescaled" list (when: "at 1.2 s", "at checkpoint 3 (...)"). */
static void note_rescale(ss_supervisor *sv, size_t s, const char *name,
                         long from, long to, const char *when)
{
    if (sv->cur_workers)
        sv->cur_workers[s] = (int)to;
    size_t l = strlen(sv->scalelog);
    snprintf(sv->scalelog + l, sizeof sv->scalelog - l, "%s%s %ld -> %ld %s",
             l ? "; " : "", name, from, to, when);
}

/* A worker slot that is not in the books: a spare never started (or one
 * that could not join), without counters. */
static int absent(const ss_supervisor *sv, size_t i)
{
    return sv->kids[i].stage >= 0 && !sv->kids[i].active &&
           !stats_of(sv, i);
}

/* ---- preparation ------------------------------------------------------ */

static int mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return SS_EINVAL;
    for (char *s = tmp + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return SS_EIO;
        *s = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return SS_EIO;
    struct stat st;
    if (stat(tmp, &st) != 0 || !S_ISDIR(st.st_mode))
        return SS_EIO;
    return 0;
}

/* ---- keys by role (docs/SECURITY.md) ----------------------------------- */

/* Fills every component's key folder as the plan says (ss_runkeys.h):
 * its own CURVE pair, the monitor's and routers' public keys, the data
 * key where the role needs it, a router's neighbours' public keys, an
 * enclave's platform.key in a folder of its own. Notes which keys the
 * monitor and the key service admit. */
static int make_keys(ss_supervisor *sv, char *err, size_t errlen)
{
    const ss_plan *pl = sv->plan;
    int secure = strcmp(sv->p->security, "plain") != 0;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/keys", pl->tmpdir);
    if (secure && !sv->o.keys) {
        snprintf(err, errlen, "security '%s' needs the pipeline's keys",
                 sv->p->security);
        return SS_EINVAL;
    }
    int rc = ss_runkeys_new(dir, secure ? sv->o.keys : NULL, &sv->rk, err,
                            errlen);
    if (rc)
        return rc;
    sv->names = calloc(pl->ncomps + 1, sizeof *sv->names);
    sv->pubs = calloc(pl->ncomps + 1, sizeof *sv->pubs);
    sv->ks_allow = calloc(pl->ncomps + 1, sizeof *sv->ks_allow);
    sv->ks_names = calloc(pl->ncomps + 1, sizeof *sv->ks_names);
    if (!sv->names || !sv->pubs || !sv->ks_allow || !sv->ks_names) {
        snprintf(err, errlen, "out of memory");
        return SS_ENOMEM;
    }
    for (size_t i = 0; i < pl->ncomps; i++) {
        const ss_plan_comp *c = &pl->comps[i];
        if (!ss_runkeys_component(sv->rk, c->name, c->keys, err, errlen) ||
            (c->enclave_keydir &&
             !ss_runkeys_enclave(sv->rk, c->name, err, errlen)))
            return SS_EIO;
        sv->names[i] = c->name;
        if (c->keys & SS_RK_KEYSERVICE)
            sv->ks_names[sv->ks_n++] = c->name;
    }
    for (size_t i = 0; i < pl->ncomps; i++)
        sv->pubs[i] = ss_runkeys_pub(sv->rk, pl->comps[i].name);
    for (size_t k = 0; k < sv->ks_n; k++)
        sv->ks_allow[k] = ss_runkeys_pub(sv->rk, sv->ks_names[k]);
    if (!secure)
        return 0;
    /* each router admits its neighbours only: router r's producers (the
     * source, or stage r-1's workers) and consumers (stage r's workers,
     * or the sink) */
    size_t nrouters = pl->nhops + 1;
    for (size_t r = 1; r <= nrouters; r++) {
        const char *rname = pl->comps[r - 1].name; /* routers come first */
        for (size_t i = 0; i < pl->ncomps; i++) {
            const ss_plan_comp *c = &pl->comps[i];
            int prod = r == 1 ? (int)i == pl->source
                              : c->hop == (int)r - 2;
            int cons = r == nrouters ? (int)i == pl->sink
                                     : c->hop == (int)r - 1;
            if ((prod || cons) &&
                (rc = ss_runkeys_admit(sv->rk, rname, c->name, err, errlen)))
                return rc;
        }
    }
    return 0;
}

/* ---- separate uids (docs/SECURITY.md) ---------------------------------- */

/* Gives path to uid/gid with mode; SS_EIO with a reason in err. */
static int give(const char *path, uid_t uid, gid_t gid, mode_t mode,
                char *err, size_t errlen)
{
    if (chown(path, uid, gid) == 0 && chmod(path, mode) == 0)
        return 0;
    snprintf(err, errlen, "cannot give %s to uid %ld: %s", path, (long)uid,
             strerror(errno));
    return SS_EIO;
}

/* As root, with the users sstream-worker and sstream-enclave: routers and
 * sandbox enclave workers run as sstream-worker, their enclaves as
 * sstream-enclave (through a spawner), each key folder belongs to the uid
 * that uses it. The run folder becomes 01771 root:sstream-worker (routers
 * make their ipc sockets there; nobody but root removes what is not
 * theirs). Otherwise says in uid_warning what is lost. */
static int setup_uids(ss_supervisor *sv, char *err, size_t errlen)
{
    const ss_plan *pl = sv->plan;
    int secure = strcmp(sv->p->security, "plain") != 0;
    struct passwd *pw;
    if (!secure)
        return 0; /* plain: no key to keep apart, everyone sees all */
    if (geteuid() != 0) {
        if (secure)
            snprintf(sv->uid_warning, sizeof sv->uid_warning,
                     "warning: not root: every component runs as uid %ld, "
                     "so a compromised router or worker process can read "
                     "the other key folders of the run (data.key, "
                     "platform.key: forged reports get the data key); "
                     "separate uids need root (docs/SECURITY.md)",
                     (long)geteuid());
        return 0;
    }
    if (!(pw = getpwnam("sstream-worker")))
        goto missing;
    sv->w_uid = pw->pw_uid;
    sv->w_gid = pw->pw_gid;
    if (!(pw = getpwnam("sstream-enclave")))
        goto missing;
    sv->e_uid = pw->pw_uid;
    sv->e_gid = pw->pw_gid;
    if (sv->w_uid == 0 || sv->e_uid == 0 || sv->w_uid == sv->e_uid) {
        snprintf(err, errlen, "the users sstream-worker and sstream-enclave "
                              "must be two different users, not root");
        return SS_EINVAL;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return SS_EIO;
    self[n] = '\0';
    if (!(sv->self = strdup(self)))
        return SS_ENOMEM;
    /* every folder above the run folder must let sstream-worker and
     * sstream-enclave through */
    char up[PATH_MAX];
    snprintf(up, sizeof up, "%s", pl->tmpdir);
    for (char *sl = strrchr(up, '/'); sl && sl != up; sl = strrchr(up, '/')) {
        *sl = '\0';
        struct stat st;
        if (stat(up, &st) != 0 || !(st.st_mode & S_IXOTH)) {
            snprintf(err, errlen, "the run folder %s is not reachable by "
                                  "sstream-worker and sstream-enclave (%s "
                                  "is closed to others): set TMPDIR to a "
                                  "folder they can pass through",
                     pl->tmpdir, up);
            return SS_EINVAL;
        }
    }
    sv->sep = 1;
    char keys[PATH_MAX];
    snprintf(keys, sizeof keys, "%s/keys", pl->tmpdir);
    int rc = give(pl->tmpdir, 0, sv->w_gid, 01771, err, errlen);
    if (!rc)
        rc = give(keys, 0, 0, 0711, err, errlen);
    for (size_t i = 0; !rc && i < pl->ncomps; i++) {
        const ss_plan_comp *pc = &pl->comps[i];
        child *c = &sv->kids[i];
        c->as_worker = !strcmp(pc->role, "router") || pc->enclave_keydir;
        c->spawner = pc->enclave_keydir != NULL;
        if (!c->as_worker)
            continue;
        rc = ss_runkeys_chown(sv->rk, pc->name, 0, sv->w_uid, sv->w_gid, err,
                              errlen);
        if (!rc && c->spawner)
            rc = ss_runkeys_chown(sv->rk, pc->name, 1, sv->e_uid, sv->e_gid,
                                  err, errlen);
        if (!rc && pc->rejects) { /* it appends to it */
            int fd = open(pc->rejects, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
            if (fd < 0 || fchown(fd, sv->w_uid, sv->w_gid) != 0) {
                snprintf(err, errlen, "%s: %s", pc->rejects,
                         strerror(errno));
                rc = SS_EIO;
            }
            if (fd >= 0)
                close(fd);
        }
    }
    return rc;
missing:
    if (secure)
        snprintf(sv->uid_warning, sizeof sv->uid_warning,
                 "warning: the users sstream-worker and sstream-enclave do "
                 "not exist (scripts/install-users.sh makes them): every "
                 "component runs as root, so a compromised router or worker "
                 "process can read every key of the run (docs/SECURITY.md)");
    return 0;
}

/* See ss_supervisor.h. */
uint64_t ss_supervisor_run_id(const ss_supervisor *sv) { return sv->run; }

/* See ss_supervisor.h. */
int ss_supervisor_keyservice_auth(ss_supervisor *sv, ss_keyserver_auth *a)
{
    memset(a, 0, sizeof *a);
    if (!sv->rk)
        return SS_EINVAL;
    a->pub = ss_runkeys_keyservice_pub(sv->rk);
    a->sec = ss_runkeys_keyservice_sec(sv->rk);
    a->allow = sv->ks_allow;
    a->names = sv->ks_names;
    a->nallow = sv->ks_n;
    return 0;
}

/*
 * Two runs writing one output folder mix their logs, rejects and summary
 * (one run's summary counted rows whose rejects the other had truncated).
 * The run holds an exclusive flock on <outdir>/.lock for its whole life
 * (it goes with the process, even on SIGKILL; children do not inherit
 * it), with its pid written in it for the message. Returns 0, or
 * SS_EINVAL naming the folder and the pid of the run that holds it.
 */
static int lock_outdir(ss_supervisor *sv, char *err, size_t errlen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/.lock", sv->outdir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "output folder '%s': cannot open its lock "
                 "file: %s", sv->outdir, strerror(errno));
        return SS_EIO;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        if (e == EWOULDBLOCK) {
            snprintf(err, errlen, "output folder '%s' is in use by another "
                     "run (pid %s): wait for it to end, or give this run "
                     "its own folder with --output-dir", sv->outdir,
                     pid[0] ? pid : "?");
            return SS_EINVAL;
        }
        snprintf(err, errlen, "output folder '%s': cannot lock it: %s",
                 sv->outdir, strerror(e));
        return SS_EIO;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)len, 0) < 0) {
        /* the pid is only for the message: the lock is what counts */
    }
    sv->out_lock = fd;
    return 0;
}

/* A run killed by SIGKILL leaves its components' rejects files in
 * <outdir>/rejects/ (merged into rejects.jsonl only at the end). The
 * folder is ours once locked: what is in it is a dead run's, and would
 * be merged into this run's rejects.jsonl. */
static void clear_stale_rejects(ss_supervisor *sv, int keep)
{
    DIR *d = opendir(sv->rejdir);
    if (!d)
        return;
    struct dirent *e;
    char path[PATH_MAX];
    size_t n = 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 7 || strcmp(e->d_name + l - 6, ".jsonl") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", sv->rejdir, e->d_name);
        if (keep ? truncate(path, 0) == 0 : unlink(path) == 0)
            n++;
    }
    closedir(d);
    if (n && !keep)
        ss_info("removed %zu rejects file(s) a killed run left in %s", n,
                sv->rejdir);
}

/* Removes the files of epochs below `below` from the checkpoint folder
 * (NAME-eN.json; UINT32_MAX: all of them, and the manifest: a new run's
 * folder holds only its own). Returns 0, or -1 when the folder cannot be
 * read (errno). */
static int clear_checkpoints(const char *dir, uint32_t below)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *e;
    char path[PATH_MAX];
    while ((e = readdir(d))) {
        const char *dash = strrchr(e->d_name, '-');
        unsigned long ep = 0;
        char tail[16] = "";
        int is_epoch = dash && sscanf(dash, "-e%lu%15s", &ep, tail) == 2 &&
                       (!strcmp(tail, ".json") || !strcmp(tail, ".json.tmp") ||
                        !strcmp(tail, ".snap") || !strcmp(tail, ".snap.tmp"));
        int is_manifest = !strncmp(e->d_name, "manifest.json", 13);
        if ((is_epoch && ep < below) || (is_manifest && below == UINT32_MAX)) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    }
    closedir(d);
    return 0;
}

/* The folder the components write their part of a checkpoint to (in
 * the run folder, which workers of another uid reach): theirs to write
 * (separate uids: sstream-worker's), nobody else's. */
static int make_stagedir(ss_supervisor *sv, char *err, size_t errlen)
{
    if (mkdir(sv->stagedir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", sv->stagedir, strerror(errno));
        return SS_EIO;
    }
    return sv->sep ? give(sv->stagedir, sv->w_uid, sv->w_gid, 0770, err,
                          errlen)
                   : 0;
}

/* Recovery: the sink's stdout goes to a spool file in the output folder
 * until the sink completes (then it is copied to the run's stdout), and
 * the length of its OUTPUT file is noted, so that a restart cuts both
 * back to what was committed (nothing, until checkpoints commit more). */
static int note_output(ss_supervisor *sv, char *err, size_t errlen);
static int prepare_commit(ss_supervisor *sv, char *err, size_t errlen)
{
    if (asprintf(&sv->spool_path, "%s/.sink-stdout", sv->outdir) < 0) {
        sv->spool_path = NULL;
        snprintf(err, errlen, "out of memory");
        return SS_ENOMEM;
    }
    sv->spool_fd = open(sv->spool_path,
                        O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (sv->spool_fd < 0) {
        snprintf(err, errlen, "%s: %s", sv->spool_path, strerror(errno));
        return SS_EIO;
    }
    return note_output(sv, err, errlen);
}

/* Notes the sink's OUTPUT file and its length before the run, so that a
 * restart (or a rescale at a checkpoint) can tell whether the sink wrote
 * to it and cut it back. */
static int note_output(ss_supervisor *sv, char *err, size_t errlen)
{
    const char *o = sv->p->sink.output;
    if (o && asprintf(&sv->output_path, o[0] == '/' ? "%s%s" : "%s/%s",
                      o[0] == '/' ? "" : sv->outdir, o) < 0) {
        sv->output_path = NULL;
        snprintf(err, errlen, "out of memory");
        return SS_ENOMEM;
    }
    struct stat st;
    if (sv->output_path && stat(sv->output_path, &st) == 0)
        sv->output_len0 = st.st_size;
    sv->commit_output = sv->output_len0;
    return 0;
}

/* ---- the sink's commit (recovery: --restarts) -----------------------
 *
 * Flink's two-phase-commit sinks, with the coordinator as the committer:
 *
 *   sink writes ──▶ spool (<outdir>/.sink-stdout), OUTPUT, rejects files
 *        │ barrier e: flushes, acknowledges e with marks (how far each
 *        │ file goes: ss_stats.rejects_len/stdout_len/output_len)
 *   epoch e complete (manifest written) ──▶ commit_marks(e): the spool up
 *        to the sink's mark goes to the run's stdout (sv->shown), the
 *        marks of OUTPUT and of every rejects file are kept
 *   resume from e ──▶ cut_to_commit(): each file cut back to its mark of
 *        e (what was written after it is written again by the replay)
 *   the sink completes ──▶ commit_output(): the rest of the spool
 *   the run fails ──▶ OUTPUT cut back to its committed length; the rest
 *        of the spool is not shown
 *
 * So a result shows once its checkpoint completed, never before, and
 * never twice. The sink's stdout is the spool file itself (opened for
 * it in append mode: sink_stdout), so that its mark, taken by the sink
 * after a flush, is a byte offset in the spool; nothing else writes
 * there. Committed output cannot be taken back: a restart that cannot
 * resume from the committed checkpoint fails the run instead of
 * starting over (restart_committed).
 */

/* A new descriptor of the spool for the sink's stdout (append mode: its
 * own offset, the coordinator reads with pread). Returns it, or -1
 * (said). */
static int sink_stdout(ss_supervisor *sv)
{
    int fd = open(sv->spool_path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0)
        say(sv, "cannot start the sink: %s: %s", sv->spool_path,
            strerror(errno));
    return fd;
}

/* Copies the spool's bytes [sv->shown, upto) to the run's stdout. */
static void show_committed(ss_supervisor *sv, int64_t upto)
{
    char buf[16384];
    int cleared = 0;
    while (sv->spool_fd >= 0 && sv->shown < upto) {
        size_t want = (size_t)(upto - sv->shown) < sizeof buf
                          ? (size_t)(upto - sv->shown)
                          : sizeof buf;
        ssize_t r = pread(sv->spool_fd, buf, want, (off_t)sv->shown);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r < 0)
                say(sv, "warning: %s: %s: results not shown",
                    sv->spool_path, strerror(errno));
            break;
        }
        if (!cleared++)
            clear_progress(sv);
        fwrite(buf, 1, (size_t)r, stdout);
        sv->shown += r;
    }
    if (cleared)
        fflush(stdout);
}

static void forget_rejects_marks(ss_supervisor *sv)
{
    for (size_t i = 0; i < sv->ncommit_rejects; i++)
        free(sv->commit_rejects[i].path);
    free(sv->commit_rejects);
    sv->commit_rejects = NULL;
    sv->ncommit_rejects = 0;
}

/* Epoch e completed (its manifest is written): commits the sink's
 * output up to its marks of e and keeps the rejects files' marks. A
 * component without a mark in its acknowledgement of e (a router, a lost
 * worker, a source that stopped holding its rejects back) has its
 * rejects file left whole on a resume; a sink without marks commits
 * nothing more (and a resume from e is refused: prepare_resume). */
static void commit_marks(ss_supervisor *sv, uint32_t e)
{
    if (sv->spool_fd < 0)
        return;
    const ss_stats *sk = ss_monitor_ack(sv->mon, (size_t)sv->sink, e);
    if (!sk || !sk->marks || sk->stdout_len < sv->shown)
        return;
    forget_rejects_marks(sv);
    sv->commit_rejects = calloc(sv->nkids ? sv->nkids : 1,
                                sizeof *sv->commit_rejects);
    for (size_t i = 0; sv->commit_rejects && i < sv->nkids; i++) {
        const ss_stats *st = ss_monitor_ack(sv->mon, i, e);
        const char *r = sv->plan->comps[i].rejects;
        commit_mark *m = &sv->commit_rejects[sv->ncommit_rejects];
        if (!r || !st || !st->marks || st->rejects_len < 0 ||
            !(m->path = strdup(r)))
            continue;
        m->len = st->rejects_len;
        sv->ncommit_rejects++;
    }
    if (!sv->commit_rejects)
        say(sv, "warning: out of memory: the rejects files will not be cut "
                "back on a resume from checkpoint %u", e);
    sv->commit_output = sk->output_len;
    sv->commit_epoch = e;
    show_committed(sv, sk->stdout_len);
}

/* Truncates path to len (len -1: removes it). Returns 0, or -1 (said). */
static int cut_file(ss_supervisor *sv, const char *path, int64_t len)
{
    int r = len < 0 ? unlink(path) : truncate(path, (off_t)len);
    if (r != 0 && errno != ENOENT) {
        say(sv, "warning: cannot cut %s back to its committed length: %s",
            path, strerror(errno));
        return -1;
    }
    return 0;
}

/* A resume from the committed epoch: what the sink and every component
 * wrote after their marks is cut away (the replay writes it again). The
 * spool goes back to what was shown. */
static void cut_to_commit(ss_supervisor *sv)
{
    if (sv->spool_fd >= 0 && ftruncate(sv->spool_fd, (off_t)sv->shown) != 0)
        say(sv, "warning: cannot cut %s back to %lld bytes: %s",
            sv->spool_path, (long long)sv->shown, strerror(errno));
    if (sv->output_path)
        (void)cut_file(sv, sv->output_path, sv->commit_output);
    for (size_t i = 0; i < sv->ncommit_rejects; i++)
        (void)cut_file(sv, sv->commit_rejects[i].path,
                       sv->commit_rejects[i].len);
}

/* A restart from the start: nothing of the killed run is kept. The sink's
 * output is emptied back to what was there before the run, unless some
 * of it was committed already (shown: it cannot be taken back, and the
 * run from the start would show it again): then the run fails. Returns 0,
 * or -1 when the run must fail (cause set). */
static int restart_committed(ss_supervisor *sv)
{
    if (sv->shown > 0) {
        set_cause(sv, "the restart cannot resume from checkpoint %u (see "
                  "above), and the results committed at it were shown "
                  "already: a restart from the start would show them "
                  "twice", sv->commit_epoch);
        say(sv, "%s", sv->cause);
        return -1;
    }
    if (sv->spool_fd >= 0 && ftruncate(sv->spool_fd, 0) != 0)
        say(sv, "warning: cannot empty %s: %s", sv->spool_path,
            strerror(errno));
    if (sv->output_path)
        (void)cut_file(sv, sv->output_path, sv->output_len0);
    sv->commit_output = sv->output_len0;
    sv->commit_epoch = 0;
    forget_rejects_marks(sv);
    return 0;
}

/* See ss_supervisor.h. */
int ss_supervisor_new(const ss_pipeline *p, const ss_run_opts *o,
                      ss_supervisor **outp, char *err, size_t errlen)
{
    *outp = NULL;
    ss_supervisor *sv = calloc(1, sizeof *sv);
    if (!sv)
        return SS_ENOMEM;
    sv->p = p;
    sv->out_lock = -1;
    sv->ctl_fd = -1;
    sv->spool_fd = -1;
    sv->output_len0 = -1;
    if (o)
        sv->o = *o;
    sv->sink = sv->source = -1;
    int rc = ss_run_new(&sv->run);
    if (rc) {
        snprintf(err, errlen, "cannot draw a run id: no randomness from "
                 "the kernel (getrandom)");
        free(sv);
        return rc;
    }
    snprintf(sv->run_env, sizeof sv->run_env, "SS_RUN=%016llx",
             (unsigned long long)sv->run);
    rc = SS_ENOMEM;

    const char *exe = sv->o.exe ? sv->o.exe : ss_env("SS_RUN_EXEC", NULL);
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = '\0';
    sv->exe = strdup(exe ? exe : "/proc/self/exe");
    sv->argv0 = strdup(exe ? exe : n > 0 ? self : "sstream");
    if (sv->o.output_dir)
        sv->outdir = strdup(sv->o.output_dir);
    else if (asprintf(&sv->outdir, "out/%s", p->name) < 0)
        sv->outdir = NULL;
    if (!sv->exe || !sv->argv0 || !sv->outdir ||
        asprintf(&sv->logdir, "%s/logs", sv->outdir) < 0 ||
        asprintf(&sv->rejdir, "%s/rejects", sv->outdir) < 0)
        goto fail;
    if (mkdir_p(sv->logdir) || mkdir_p(sv->rejdir)) {
        rc = SS_EIO;
        snprintf(err, errlen, "output folder '%s': %s", sv->outdir,
                 strerror(errno));
        goto fail_noerr;
    }
    if ((rc = lock_outdir(sv, err, errlen)))
        goto fail_noerr;
    clear_stale_rejects(sv, 0);
    if (p->checkpoint_ms) {
        if (asprintf(&sv->ckptdir, "%s/checkpoints", sv->outdir) < 0) {
            sv->ckptdir = NULL;
            goto fail;
        }
        if (mkdir_p(sv->ckptdir) ||
            clear_checkpoints(sv->ckptdir, UINT32_MAX)) {
            rc = SS_EIO;
            snprintf(err, errlen, "checkpoint folder '%s': %s", sv->ckptdir,
                     strerror(errno));
            goto fail_noerr;
        }
    }
    rc = SS_ENOMEM;
    /* spare worker slots for sstream scale; none by default when the
     * sink checks that every stream keeps its order (outside plain
     * mode, one worker per stage: more workers would reorder them) */
    sv->scale_slots = sv->o.scale_slots;
    if (sv->scale_slots < 0) {
        int one = 1;
        for (size_t s = 0; s < p->nstages; s++)
            one &= p->stages[s].workers == 1;
        sv->scale_slots =
            one && strcmp(p->security, "plain") != 0 ? 0
                                                     : SCALE_SLOTS_DEFAULT;
    }
    ss_plan_opts po = {sv->argv0,       sv->outdir,       sv->logdir,
                       sv->rejdir,      sv->o.tcp,        sv->o.keys,
                       sv->o.keyservice, sv->o.enclave,   sv->scale_slots};
    if ((rc = ss_plan_new(p, &po, &sv->plan))) {
        if (rc == SS_EIO)
            snprintf(err, errlen, "cannot make the endpoints: %s",
                     strerror(errno));
        else
            goto fail;
        goto fail_noerr;
    }
    rc = SS_ENOMEM;
    if (sv->ckptdir &&
        asprintf(&sv->stagedir, "%s/ckpt", sv->plan->tmpdir) < 0) {
        sv->stagedir = NULL;
        goto fail;
    }
    sv->nkids = sv->plan->ncomps;
    sv->kids = calloc(sv->nkids ? sv->nkids : 1, sizeof *sv->kids);
    sv->stage_names = calloc(p->nstages ? p->nstages : 1,
                             sizeof *sv->stage_names);
    sv->rescale_env = calloc(p->nstages ? p->nstages : 1,
                             sizeof *sv->rescale_env);
    sv->rescale_from = calloc(p->nstages ? p->nstages : 1,
                              sizeof *sv->rescale_from);
    if (!sv->kids || !sv->stage_names || !sv->rescale_env ||
        !sv->rescale_from)
        goto fail;
    sv->cur_workers = calloc(p->nstages ? p->nstages : 1,
                             sizeof *sv->cur_workers);
    if (!sv->cur_workers)
        goto fail;
    for (size_t s = 0; s < p->nstages; s++) {
        sv->stage_names[s] = p->stages[s].name;
        sv->cur_workers[s] = p->stages[s].workers;
    }
    for (size_t i = 0; i < sv->nkids; i++) {
        const ss_plan_comp *pc = &sv->plan->comps[i];
        child *c = &sv->kids[i];
        c->name = pc->name;
        c->role = pc->role;
        c->stage = pc->stage;
        c->err_fd = c->out_fd = c->log_fd = -1;
        c->active = !pc->spare;
        ss_buf_init(&c->err_line);
        ss_buf_init(&c->out_line);
    }
    sv->sink = sv->plan->sink;
    sv->source = sv->plan->source;
    if ((rc = make_keys(sv, err, errlen)) ||
        (rc = setup_uids(sv, err, errlen)) ||
        (sv->stagedir && (rc = make_stagedir(sv, err, errlen))) ||
        (sv->o.max_restarts && (rc = prepare_commit(sv, err, errlen))) ||
        (!sv->o.max_restarts && p->checkpoint_ms &&
         (rc = note_output(sv, err, errlen))))
        goto fail_noerr;
    *outp = sv;
    return 0;
fail:
    snprintf(err, errlen, "%s", ss_strerror(rc));
fail_noerr:
    ss_supervisor_destroy(&sv);
    return rc;
}

/* ---- starting --------------------------------------------------------- */

/* Names set by the supervisor in a child's environment. */
static int overridden(const char *kv)
{
    static const char *const names[] = {"FROM=", "TO=", "DATA_FILE=",
                                        "OUTPUT=", "SS_CONTROL=",
                                        "SS_RUN=", "SS_CONTROL_KEYS=",
                                        "SS_CHECKPOINT_BASE=",
                                        "SS_RESUME_PARTS=",
                                        "SS_RESUME_STREAMS=",
                                        "SS_RESTORE_EPOCH=", NULL};
    for (size_t i = 0; names[i]; i++)
        if (strncmp(kv, names[i], strlen(names[i])) == 0)
            return 1;
    return 0;
}

/* environ minus the overridden names, plus c's variables, SS_CONTROL,
 * SS_RUN (the run id every component stamps on its messages) and
 * LOG_LEVEL=warn unless the user set LOG_LEVEL;
 * the array is owned by the caller, the strings are borrowed except the
 * last one (control), freed by the caller too. */
static char **child_env(const ss_supervisor *sv, const child *c,
                        char **control, const char *extra)
{
    static char quiet_logs[] = "LOG_LEVEL=warn";
    size_t n = 0, k = 0;
    while (environ[n])
        n++;
    char **env = sv->plan->comps[index_of(sv, c)].env;
    for (size_t i = 0; env && env[i]; i++)
        k++;
    char **v = calloc(n + k + 10, sizeof *v);
    if (!v)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++)
        if (!overridden(environ[i]))
            v[j++] = environ[i];
    for (size_t i = 0; i < k; i++)
        v[j++] = env[i];
    if (!getenv("LOG_LEVEL")) /* components' info lines: LOG_LEVEL=info */
        v[j++] = quiet_logs;
    if (asprintf(control, "SS_CONTROL=%s",
                 ss_monitor_endpoint(sv->mon)) < 0) {
        free(v);
        return NULL;
    }
    v[j++] = *control;
    v[j++] = (char *)sv->run_env;
    if (sv->epoch_env[0] && c == &sv->kids[sv->source])
        v[j++] = (char *)sv->epoch_env;
    if (sv->resume_parts_env && c == &sv->kids[sv->source])
        v[j++] = sv->resume_parts_env;
    else if (sv->resume_streams_env &&
             (!strcmp(c->role, "router") || c == &sv->kids[sv->sink]))
        v[j++] = sv->resume_streams_env;
    if (sv->restore_env[0] && c != &sv->kids[sv->source] &&
        strcmp(c->role, "router") != 0)
        v[j++] = (char *)sv->restore_env;
    if (sv->restore_env[0] && sv->rescale_env && !strcmp(c->role, "worker") &&
        c->stage >= 0 && (size_t)c->stage < sv->p->nstages &&
        sv->rescale_env[c->stage][0])
        v[j++] = sv->rescale_env[c->stage];
    if (extra)
        v[j++] = (char *)extra;
    v[j] = NULL;
    return v;
}

/* Runs in the child between fork and exec: async-signal-safe calls only. */
/* stops_blocked: SIGINT and SIGTERM stay blocked across exec (a followed
 * source unblocks them once its handler is in place: cmd_source.c), so
 * that a stop sent as it starts waits for it, pending. */
static void exec_child(const char *exe, char **argv, char **envp, int in,
                       int outfd, int errfd, pid_t parent, pid_t pgid,
                       uid_t uid, gid_t gid, int keep3, int keep4,
                       int *more, int nmore, int stops_blocked)
{
    setpgid(0, pgid);
    if (uid) { /* separate uids: no way back */
        if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0 ||
            setresuid(uid, uid, uid) != 0)
            _exit(127);
    }
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* after the uid change, which
                                         clears it */
    if (getppid() != parent)
        _exit(127);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
    sigset_t mask;
    sigemptyset(&mask);
    if (stops_blocked) {
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
    }
    sigprocmask(SIG_SETMASK, &mask, NULL);
    if (dup2(in, 0) < 0 || dup2(outfd, 1) < 0 || dup2(errfd, 2) < 0)
        _exit(127);
    /* more[0..nmore) go to 5.. (with keep4 only): first out of the way
     * of 3, 4 and each other */
    for (int i = 0; i < nmore; i++)
        if ((more[i] = fcntl(more[i], F_DUPFD_CLOEXEC, 200)) < 0)
            _exit(127);
    /* fds 3 and 4 when given: kept open across exec */
    if (keep4 == 3 && (keep4 = fcntl(3, F_DUPFD_CLOEXEC, 5)) < 0)
        _exit(127);
    if (keep3 == 3 ? fcntl(3, F_SETFD, 0) < 0
                   : keep3 >= 0 && dup2(keep3, 3) < 0)
        _exit(127);
    if (keep4 == 4 ? fcntl(4, F_SETFD, 0) < 0
                   : keep4 >= 0 && dup2(keep4, 4) < 0)
        _exit(127);
    for (int i = 0; keep4 >= 0 && i < nmore; i++)
        if (dup2(more[i], 5 + i) < 0)
            _exit(127);
#ifdef CLOSE_RANGE_CLOEXEC
    close_range(keep4 >= 0 ? 5 + (unsigned)nmore : keep3 >= 0 ? 4 : 3, ~0u,
                CLOSE_RANGE_CLOEXEC);
#endif
    execve(exe, argv, envp);
    static const char msg[] = "sstream run: cannot execute ";
    (void)!write(2, msg, sizeof msg - 1);
    (void)!write(2, exe, strlen(exe));
    (void)!write(2, "\n", 1);
    _exit(127);
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* A sealed-off memory file holding the bundle of script (the script and
 * its local modules), positioned at its start; -1 on failure (said). */
static int bundle_fd(const char *script)
{
    char err[512];
    int fd = ss_bundle_memfd(script, err, sizeof err);
    if (fd < 0)
        fprintf(stderr, "sstream run: %s\n", err);
    return fd < 0 ? -1 : fd;
}

/* Starts the enclave spawner of worker pc (pid, in its process group)
 * as sstream-enclave, on its end of the socket; its output goes where the
 * worker's does. Returns 0 or SS_EIO. */
static int start_spawner(ss_supervisor *sv, const ss_plan_comp *pc,
                         pid_t worker, int sock, int devnull, int outfd,
                         int errfd, pid_t *spid)
{
    char *argv[16 + 2 * SS_CHAIN_MAX];
    char specs[SS_CHAIN_MAX][512];
    int cfd[SS_CHAIN_MAX], nc = 0;
    int i = 0;
    argv[i++] = sv->self;
    argv[i++] = "enclave-spawner";
    argv[i++] = "--fd";
    argv[i++] = "3";
    argv[i++] = "--keys";
    argv[i++] = pc->enclave_keydir;
    argv[i++] = "--name";
    argv[i++] = (char *)pc->name;
    argv[i++] = "--stage";
    argv[i++] = (char *)sv->p->stages[pc->stage].name;
    argv[i++] = "--script";
    argv[i++] = sv->p->stages[pc->stage].script;
    argv[i++] = "--script-fd"; /* the script, for a uid that may not */
    argv[i++] = "4";           /* reach its folder */
    /* the stages chained into this worker run in its enclave: their
     * scripts on fds 5, 6, ... (ss_spawner_conf) */
    for (size_t k = (size_t)pc->stage + 1;
         k < sv->p->nstages && ss_pipeline_chained(sv->p, k) &&
         nc < SS_CHAIN_MAX - 1;
         k++, nc++) {
        snprintf(specs[nc], sizeof specs[nc], "%s=%s", sv->p->stages[k].name,
                 sv->p->stages[k].script);
        argv[i++] = "--chain";
        argv[i++] = specs[nc];
        cfd[nc] = -1;
    }
    argv[i] = NULL;
    /* the script with the local modules it requires (ss_bundle.h), as
     * one file: the enclave's uid cannot reach their folder */
    int sfd = bundle_fd(sv->p->stages[pc->stage].script);
    for (int k = 0; sfd >= 0 && k < nc; k++)
        if ((cfd[k] = bundle_fd(sv->p->stages[pc->stage + 1 + k].script)) <
            0) {
            while (k-- > 0)
                close(cfd[k]);
            close(sfd);
            sfd = -1;
        }
    if (sfd < 0)
        return SS_EIO;
    /* the spawner is trusted: it gets the run's environment and cuts it
     * down for the enclaves itself (ss_sandbox_child_env) */
    char **envp = environ;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        exec_child(sv->self, argv, envp, devnull, outfd, errfd, parent,
                   worker, sv->e_uid, sv->e_gid, sock, sfd, cfd, nc, 0);
    close(sfd);
    for (int k = 0; k < nc; k++)
        close(cfd[k]);
    if (pid < 0)
        return SS_EIO;
    setpgid(pid, worker); /* stopped with its worker's group */
    *spid = pid;
    return 0;
}

/* Starts c. Returns 0, or SS_EIO/SS_ENOMEM (reason printed). */
static int start_child(ss_supervisor *sv, child *c, int devnull)
{
    const ss_plan_comp *pc = &sv->plan->comps[index_of(sv, c)];
    int errp[2] = {-1, -1}, outp[2] = {-1, -1}, logfd = -1, spoolw = -1;
    char *control = NULL;
    static char spawner_env[] = "SS_ENCLAVE_SPAWNER=3";
    char **envp = child_env(sv, c, &control, c->spawner && sv->sep
                                                  ? spawner_env
                                                  : NULL);
    int sp[2] = {-1, -1}, rfd = -1;
    char **argv = NULL;
    if (!envp)
        return SS_ENOMEM;
    int rc = SS_EIO;
    if (pipe2(errp, O_CLOEXEC) != 0)
        goto out;
    if (sv->sep && c->spawner &&
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) {
        say(sv, "cannot start %s: socketpair: %s", c->name, strerror(errno));
        goto out;
    }
    /* separate uids: the rejects file is opened here and handed over as
     * fd 4, so that the output folder need not be reachable by
     * sstream-worker */
    static char fd4[] = "/dev/fd/4";
    if (sv->sep && c->as_worker && pc->rejects) {
        rfd = open(pc->rejects, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                   0644);
        size_t n = 0;
        while (pc->argv[n])
            n++;
        argv = calloc(n + 1, sizeof *argv);
        if (rfd < 0 || !argv) {
            say(sv, "cannot start %s: %s: %s", c->name, pc->rejects,
                strerror(errno));
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            argv[i] = i && !strcmp(pc->argv[i - 1], "--rejects")
                          ? fd4
                          : pc->argv[i];
    }
    int outfd = STDOUT_FILENO;
    if (pc->log_path) {
        logfd = open(pc->log_path,
                     O_WRONLY | O_CREAT | O_CLOEXEC |
                         (c->starts ? O_APPEND : O_TRUNC),
                     0644);
        if (logfd < 0) {
            say(sv, "%s: %s", pc->log_path, strerror(errno));
            goto out;
        }
        outfd = logfd;
        c->log_fd = fcntl(logfd, F_DUPFD_CLOEXEC, 3);
    } else if (c == &sv->kids[sv->sink] && sv->spool_fd >= 0) {
        if ((spoolw = sink_stdout(sv)) < 0)
            goto out;
        outfd = spoolw;
    } else if (sv->relay_stdout || sv->spool_fd >= 0) {
        if (pipe2(outp, O_CLOEXEC) != 0)
            goto out;
        outfd = outp[1];
    }
    pid_t parent = getpid();
    /* a followed source is born with SIGINT and SIGTERM blocked: our own
     * handler (inherited until exec_child resets it) never takes a stop
     * meant for it, and one sent before its handler is in place waits */
    int soft_stop = c == &sv->kids[sv->source] && sv->p->source.follow;
    sigset_t stops, old_mask;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    if (soft_stop)
        pthread_sigmask(SIG_BLOCK, &stops, &old_mask);
    pid_t pid = fork();
    if (pid == 0)
        exec_child(sv->exe, argv ? argv : pc->argv, envp, devnull, outfd,
                   errp[1], parent, 0,
                   c->as_worker && sv->sep ? sv->w_uid : 0, sv->w_gid,
                   sp[0], rfd, NULL, 0, soft_stop);
    if (soft_stop)
        pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    if (pid < 0) {
        say(sv, "cannot start %s: %s", c->name, strerror(errno));
        goto out;
    }
    setpgid(pid, pid); /* also done by the child: no race either way */
    c->spawner_pid = 0;
    if (sp[1] >= 0 && start_spawner(sv, pc, pid, sp[1], devnull, outfd,
                                    errp[1], &c->spawner_pid) != 0) {
        kill(pid, SIGKILL); /* reaped and reported as a failure */
        say(sv, "cannot start the enclave spawner of %s", c->name);
    }
    c->pid = pid;
    c->starts++;
    ss_monitor_set_pid(sv->mon, index_of(sv, c), pid);
    c->running = 1;
    c->err_fd = errp[0];
    errp[0] = -1;
    set_nonblock(c->err_fd);
    if (outp[0] >= 0) {
        c->out_fd = outp[0];
        outp[0] = -1;
        set_nonblock(c->out_fd);
    }
    rc = 0;
out:
    if (errp[0] >= 0)
        close(errp[0]);
    if (errp[1] >= 0)
        close(errp[1]);
    if (outp[0] >= 0)
        close(outp[0]);
    if (outp[1] >= 0)
        close(outp[1]);
    if (logfd >= 0)
        close(logfd);
    if (spoolw >= 0)
        close(spoolw);
    if (sp[0] >= 0)
        close(sp[0]);
    if (sp[1] >= 0)
        close(sp[1]);
    if (rfd >= 0)
        close(rfd);
    free(argv);
    free(envp);
    free(control);
    return rc;
}

/* ---- stopping --------------------------------------------------------- */

static void signal_all(ss_supervisor *sv, int sig)
{
    for (size_t i = 0; i < sv->nkids; i++) {
        child *c = &sv->kids[i];
        if (!c->running || c->pid <= 0)
            continue;
        /* the whole group (helpers of the component too), else the pid */
        if (kill(-c->pid, sig) != 0)
            kill(c->pid, sig);
    }
}

/* Asks the (followed) source to end its stream: SIGTERM to its group. */
static void stop_source(child *src)
{
    if (kill(-src->pid, SIGTERM) != 0)
        kill(src->pid, SIGTERM);
}

static void begin_stop(ss_supervisor *sv)
{
    if (sv->stopping)
        return;
    sv->stopping = 1;
    sv->stop_ns = ss_now_ns();
    signal_all(sv, SIGTERM);
}

static size_t running_count(const ss_supervisor *sv)
{
    size_t n = 0;
    for (size_t i = 0; i < sv->nkids; i++)
        n += sv->kids[i].running ? 1 : 0;
    return n;
}

/* ---- relaying output ------------------------------------------------- */

static void relay_line(ss_supervisor *sv, child *c, int is_err,
                       const char *s, size_t n)
{
    if (is_err) {
        if (c->log_fd >= 0) { /* the log has all of it, stdout and stderr */
            (void)!write(c->log_fd, s, n);
            (void)!write(c->log_fd, "\n", 1);
        }
        const char *e = memmem(s, n, ": error: ", 9);
        if (e && !c->first_error[0]) {
            size_t k = n - (size_t)(e + 9 - s);
            if (k >= sizeof c->first_error)
                k = sizeof c->first_error - 1;
            memcpy(c->first_error, e + 9, k);
            c->first_error[k] = '\0';
        }
        /* once a failure stops the run, what the others say as they stop
         * (their router went away, ...) is an effect, not news: it goes
         * to their logs only */
        if (sv->stopping && (sv->result != SS_RUN_OK || sv->restarting) &&
            c != sv->cause_child) {
            sv->muted++;
            return;
        }
        clear_progress(sv);
        fprintf(stderr, "[%s] %.*s\n", c->name, (int)n, s);
        fflush(stderr);
    } else {
        if (c == &sv->kids[sv->sink])
            sv->sink_lines++; /* shown: a rescale cannot take it back */
        clear_progress(sv);
        fwrite(s, 1, n, stdout);
        fputc('\n', stdout);
        fflush(stdout);
    }
}

/* Reads what is available on one pipe; closes it at end of file. */
static void read_pipe(ss_supervisor *sv, child *c, int is_err)
{
    int *fd = is_err ? &c->err_fd : &c->out_fd;
    ss_buf *b = is_err ? &c->err_line : &c->out_line;
    char chunk[16384];
    for (;;) {
        ssize_t r = read(*fd, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r <= 0) {
            if (b->len)
                relay_line(sv, c, is_err, b->data, b->len);
            ss_buf_release(b);
            close(*fd);
            *fd = -1;
            return;
        }
        size_t start = 0;
        for (size_t i = 0; i < (size_t)r; i++) {
            if (chunk[i] != '\n')
                continue;
            if (b->len) {
                if (ss_buf_append(b, chunk + start, i - start) == 0)
                    relay_line(sv, c, is_err, b->data, b->len);
                ss_buf_reset(b);
            } else {
                relay_line(sv, c, is_err, chunk + start, i - start);
            }
            start = i + 1;
        }
        if (start < (size_t)r)
            (void)ss_buf_append(b, chunk + start, (size_t)r - start);
        if (b->len >= LINE_MAX_RELAY) {
            relay_line(sv, c, is_err, b->data, b->len);
            ss_buf_reset(b);
        }
    }
}

/* ---- control messages -------------------------------------------------- */

/* Handles what the components reported: counters (kept by the monitor)
 * and the sink's DONE, which starts the finishing grace period. */
static void read_control(ss_supervisor *sv)
{
    ss_monitor_read(sv->mon);
    uint64_t done = ss_monitor_done_ns(sv->mon);
    if (done && !sv->done) {
        if (!sv->finish_ns)
            sv->finish_ns = done;
        sv->done = 1;
    }
}

/* ---- progress ----------------------------------------------------------- */

static void draw_progress(ss_supervisor *sv, uint64_t now)
{
    ss_progress_stage st[SS_PIPELINE_MAX_STAGES];
    size_t ns = sv->p->nstages;
    if (ns > SS_PIPELINE_MAX_STAGES)
        ns = SS_PIPELINE_MAX_STAGES;
    for (size_t s = 0; s < ns; s++) {
        st[s] = (ss_progress_stage){sv->p->stages[s].name, 0, 0};
        for (size_t i = 0; i < sv->nkids; i++)
            if (sv->kids[i].stage == (int)s &&
                strcmp(sv->kids[i].role, "worker") == 0)
                ss_monitor_rates(ss_monitor_get(sv->mon, i), now, STALE_NS,
                                 &st[s].ev_rate, &st[s].byte_rate);
        for (size_t v = 0; v < sv->plan->nvirt; v++)
            if (sv->plan->virt[v].stage == (int)s)
                ss_monitor_rates(ss_monitor_get(sv->mon, sv->nkids + v),
                                 now, STALE_NS, &st[s].ev_rate,
                                 &st[s].byte_rate);
    }
    const ss_monitor_comp *srcc = ss_monitor_get(sv->mon,
                                                 (size_t)sv->source);
    double age = srcc && srcc->have_st && now > srcc->st_ns
                     ? (double)(now - srcc->st_ns) / 1e9
                     : 0;
    ss_progress_view v = {(double)(now - sv->t0) / 1e9,
                          stats_of(sv, (size_t)sv->source),
                          age,
                          st,
                          ns,
                          stats_of(sv, (size_t)sv->sink),
                          sv->pg.cols > 10 ? sv->pg.cols - 1 : 79};
    char line[1024];
    size_t len = ss_progress_format(line, sizeof line, &v);
    ss_progress_draw(&sv->pg, line, len, now);
}

/* ---- children exits ----------------------------------------------------- */

/* Is stage s stateful, as its workers reported (a reduce, ...)? With
 * chaining, so is it if a stage chained into its workers is. */
static int stage_stateful(const ss_supervisor *sv, int s)
{
    for (size_t i = 0; i < sv->nkids; i++) {
        const ss_monitor_comp *m = ss_monitor_get(sv->mon, i);
        if (sv->kids[i].stage == s && m && m->have_st && m->st.stateful)
            return 1;
    }
    for (size_t v = 0; v < sv->plan->nvirt; v++) {
        const ss_stats *st = vstats_of(sv, v);
        if (sv->kids[sv->plan->virt[v].host].stage == s && st &&
            st->stateful)
            return 1;
    }
    return 0;
}

static void read_pipe(ss_supervisor *sv, child *c, int is_err);

/* Why a restart cannot resume from the last complete checkpoint before
 * the pipeline is stopped, or NULL when it can (the manifest is checked
 * later, in restart()). */
static const char *resume_refused(const ss_supervisor *sv)
{
    if (!sv->ckpt_epoch || !sv->ckptdir)
        return "no complete checkpoint";
    if (strcmp(sv->p->security, "enclave") == 0 && !sv->o.grant_restore)
        return "enclave mode resumes only with a key service that grants "
               "the restore (this run has none)";
    return NULL;
}

/* Recovery: c was killed by a signal and the run cannot go on without
 * it. With restarts left (max_restarts), every component is killed and
 * watch() starts the pipeline again once all are gone (restart());
 * without, the run fails saying how many restarts it had. Returns 1 when
 * it handled the death (either way), 0 when restarts are off. */
static int try_restart(ss_supervisor *sv, child *c, int status)
{
    const child *snk = &sv->kids[sv->sink];
    if (!sv->o.max_restarts || !WIFSIGNALED(status) ||
        (snk->exited && WIFEXITED(snk->status) &&
         WEXITSTATUS(snk->status) == 0))
        return 0; /* after the sink completed, its output is final */
    char w[SS_STATS_NAME_MAX + 16];
    who(c, w, sizeof w);
    int sig = WTERMSIG(status);
    if (sv->restarts >= sv->o.max_restarts) {
        sv->cause_child = c;
        set_cause(sv, "%s was killed by signal %d (%s) after %u restart(s) "
                  "of the pipeline, the most allowed (--restarts %u)", w,
                  sig, strsignal(sig), sv->restarts, sv->o.max_restarts);
        say(sv, "%s", sv->cause);
        sv->result = SS_RUN_FAILED;
        sv->failed = 1;
        begin_stop(sv);
        return 1;
    }
    sv->restarts++;
    char why[256] = "no checkpoint to resume from";
    const char *no = resume_refused(sv);
    if (sv->ckpt_epoch && !no)
        say(sv, "%s was killed by signal %d (%s); restarting the whole "
            "pipeline from checkpoint %u (restart %u of at most %u): the "
            "source resumes at its offsets, stateful stages and the sink "
            "restore their snapshots, counters continue from the "
            "checkpoint's", w, sig, strsignal(sig), sv->ckpt_epoch,
            sv->restarts, sv->o.max_restarts);
    else {
        if (sv->ckpt_epoch)
            snprintf(why, sizeof why, "the last complete checkpoint (epoch "
                     "%u) is not used: %s", sv->ckpt_epoch, no);
        say(sv, "%s was killed by signal %d (%s); restarting the whole "
            "pipeline from the start (restart %u of at most %u): %s, so "
            "every row is read again; results show only once committed "
            "(at a checkpoint, or when the sink completes), so none shows "
            "twice", w, sig, strsignal(sig),
            sv->restarts, sv->o.max_restarts, why);
    }
    sv->restarting = 1;
    sv->stopping = 1;
    sv->stop_ns = ss_now_ns();
    signal_all(sv, SIGKILL);
    sv->killed = 1;
    return 1;
}

static void fail_exit(ss_supervisor *sv, child *c, int status);

static void on_exit_status(ss_supervisor *sv, child *c, int status)
{
    c->running = 0;
    c->exited = 1;
    c->status = status;
    int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (ok && c == &sv->kids[sv->sink] && !sv->finish_ns)
        sv->finish_ns = ss_now_ns();
    if (c->leaving) { /* a rescale down asked it to leave its stage */
        c->leaving = 0;
        c->active = 0;
        c->left = 1;
        c->left_s = (double)(ss_now_ns() - sv->t0) / 1e9;
        if (ok && !sv->stopping)
            say(sv, "%s left stage '%s' (sstream scale): every batch it "
                "took was acknowledged; its counters stay in the books",
                c->name, sv->p->stages[c->stage].name);
    }
    if (!ok && c->scaled && c->active && !sv->stopping) {
        /* started by a rescale up as the run ended: its router was gone
         * before it could join, so it took nothing */
        const child *up =
            &sv->kids[sv->plan->comps[index_of(sv, c)].hop]; /* router */
        if (up->exited && WIFEXITED(up->status) &&
            WEXITSTATUS(up->status) == 0) {
            c->active = 0;
            say(sv, "warning: %s, started by sstream scale, could not join "
                "stage '%s': its router %s had already finished (it took "
                "no batch)", c->name, sv->p->stages[c->stage].name,
                up->name);
            return;
        }
    }
    if (ok || sv->stopping)
        return;
    /* what it said before it died comes first, whole */
    if (c->err_fd >= 0)
        read_pipe(sv, c, 1);
    char w[SS_STATS_NAME_MAX + 16];
    who(c, w, sizeof w);
    if (c->stage >= 0 && c != &sv->kids[sv->sink] && WIFSIGNALED(status)) {
        /* A worker was killed (a crash, the OOM killer, an operator):
         * while its stage has other live workers, its router gives its
         * unacknowledged batches to them, so the run goes on; unless the
         * stage is stateful: its state died with it. A worker that exits
         * with an error status has reported a failure: that fails the
         * run, below. */
        size_t alive = 0;
        for (size_t i = 0; i < sv->nkids; i++)
            if (sv->kids[i].stage == c->stage && sv->kids[i].running)
                alive++;
        const char *stage = sv->p->stages[c->stage].name;
        if (alive > 0 && !stage_stateful(sv, c->stage)) {
            c->lost = 1;
            sv->lost++;
            say(sv, "warning: %s was killed by signal %d; stage '%s' goes "
                "on with %zu worker(s), its router retries the batches it "
                "had not acknowledged", w, WTERMSIG(status), stage, alive);
            return;
        }
        if (alive > 0 && try_restart(sv, c, status))
            return;
        if (alive > 0) {
            sv->cause_child = c;
            set_cause(sv, "%s was killed by signal %d (%s), and stage '%s' "
                      "is stateful: the state it held is lost, so the run "
                      "cannot go on with the other %zu worker(s)", w,
                      WTERMSIG(status), strsignal(WTERMSIG(status)), stage,
                      alive);
            say(sv, "%s", sv->cause);
            sv->result = SS_RUN_FAILED;
            sv->failed = 1;
            begin_stop(sv);
            return;
        }
    }
    if (try_restart(sv, c, status))
        return;
    if (!WIFSIGNALED(status) && sv->o.max_restarts &&
        sv->restarts < sv->o.max_restarts &&
        (!sv->defer_ns || ss_now_ns() < sv->defer_ns)) {
        /* a component that exits with an error right after another was
         * killed (a router that lost a stateful worker) may be reaped
         * before it: its failure waits a moment for that death, which
         * restarts the pipeline (failure_due) */
        c->deferred = 1;
        if (!sv->defer_ns)
            sv->defer_ns = ss_now_ns() + DEFER_NS;
        return;
    }
    fail_exit(sv, c, status);
}

/* c exited with an error, or was killed, and the run cannot go on: it
 * fails, saying why. */
static void fail_exit(ss_supervisor *sv, child *c, int status)
{
    char w[SS_STATS_NAME_MAX + 16];
    who(c, w, sizeof w);
    sv->cause_child = c;
    if (WIFSIGNALED(status)) {
        set_cause(sv, "%s was killed by signal %d (%s)", w, WTERMSIG(status),
                  strsignal(WTERMSIG(status)));
        say(sv, "%s", sv->cause);
    } else {
        const char *fe = c->first_error;
        size_t nl = strlen(c->name);
        if (strncmp(fe, c->name, nl) == 0 && strncmp(fe + nl, ": ", 2) == 0)
            fe += nl + 2; /* "map-1: x" from map-1 says "x" */
        if (*fe)
            set_cause(sv, "%s: %s", w, fe);
        else
            set_cause(sv, "%s exited with status %d", w,
                      WEXITSTATUS(status));
        say(sv, "%s exited with status %d (see its message above)", w,
            WEXITSTATUS(status));
    }
    sv->result = SS_RUN_FAILED;
    sv->failed = 1;
    begin_stop(sv);
}

/* A worker's enclave spawner pid ended: its CPU time (its enclaves'
 * included: it reaps them) counts as its worker's. */
static void spawner_reaped(ss_supervisor *sv, pid_t pid,
                           const struct rusage *ru)
{
    for (size_t i = 0; i < sv->nkids; i++)
        if (sv->kids[i].spawner_pid == pid) {
            sv->kids[i].cpu_s += (double)ru->ru_utime.tv_sec +
                                 ru->ru_utime.tv_usec / 1e6 +
                                 (double)ru->ru_stime.tv_sec +
                                 ru->ru_stime.tv_usec / 1e6;
            sv->kids[i].spawner_pid = 0;
        }
}

/* Waits at most 2 s for the spawners still running once every component
 * exited (each ends when its worker's socket closes), for their CPU. */
static void reap_spawners(ss_supervisor *sv)
{
    for (int t = 0; t < 200; t++) {
        int left = 0;
        for (size_t i = 0; i < sv->nkids; i++) {
            pid_t sp = sv->kids[i].spawner_pid;
            if (!sp)
                continue;
            int st;
            struct rusage ru;
            pid_t r = wait4(sp, &st, WNOHANG, &ru);
            if (r == sp)
                spawner_reaped(sv, sp, &ru);
            else if (r < 0)
                sv->kids[i].spawner_pid = 0; /* not ours any more */
            else
                left = 1;
        }
        if (!left)
            return;
        usleep(10000);
    }
}

/* Reaps the children that exited. Those killed by a signal are handled
 * first: when a kill -9 and the failures it caused (a peer reporting its
 * router gone) are reaped together, the kill is the cause. */
static void reap(ss_supervisor *sv)
{
    enum { BATCH = 64 };
    for (;;) {
        int sts[BATCH];
        size_t kid[BATCH], n = 0;
        while (n < BATCH) {
            int st;
            struct rusage ru;
            pid_t pid = wait4(-1, &st, WNOHANG, &ru);
            if (pid <= 0)
                break;
            spawner_reaped(sv, pid, &ru);
            for (size_t i = 0; i < sv->nkids; i++)
                if (sv->kids[i].running && sv->kids[i].pid == pid) {
                    sv->kids[i].cpu_s +=
                        (double)ru.ru_utime.tv_sec +
                        ru.ru_utime.tv_usec / 1e6 +
                        (double)ru.ru_stime.tv_sec +
                        ru.ru_stime.tv_usec / 1e6;
                    sts[n] = st;
                    kid[n++] = i;
                    break;
                }
        }
        if (!n)
            return;
        for (int pass = 0; pass < 2; pass++)
            for (size_t k = 0; k < n; k++)
                if ((WIFSIGNALED(sts[k]) ? 0 : 1) == pass)
                    on_exit_status(sv, &sv->kids[kid[k]], sts[k]);
    }
}

/* ---- summary ------------------------------------------------------------- */

/* How many rejects one rejects.jsonl line stands for: an enclave's
 * sealed line holds its batch's ("events":N, at least 1: a failure of
 * the stage itself), any other line one. */
static long line_rejects(const char *line)
{
    const char *e = strstr(line, "\"events\":");
    if (!strstr(line, "\"sealed\":\"") || !e)
        return 1;
    long n = strtol(e + 9, NULL, 10);
    return n > 0 ? n : 1;
}

/* The identity of the rejected event (or sealed batch) of a rejects file
 * line: a hash of its stage and its lineage, from ",\"stream\":" to
 * ",\"error\":" (stream, seq, part, index and row; a sealed line's
 * stream, seq, part, row and count); 0 for a line without one (a failed
 * completion). The lines are ours (ss_stage.c add_reject, ss_node.c
 * enclave_rejects): these fields come first and in this order, and
 * strings are escaped, so the first match is the field. */
static uint64_t reject_key(const char *line)
{
    const char *st = strstr(line, "{\"stage\":");
    const char *w = strstr(line, ",\"worker\":");
    const char *s = strstr(line, ",\"stream\":");
    const char *e = s ? strstr(s, ",\"error\":") : NULL;
    if (!st || !w || !s || !e || w < st || s < w)
        return 0;
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (const char *p = st; p < w; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    for (const char *p = s; p < e; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h ? h : 1;
}

/* The reject keys merge_rejects has seen, and whose file each came from:
 * an open-addressing set (h 0: empty slot). */
typedef struct reject_seen {
    struct {
        uint64_t h;
        size_t from;
    } *slot;
    size_t cap, n;
} reject_seen;

/* Finds key h; if absent, adds it as from `from`. Returns the file it
 * came from first, `from` when new, or SIZE_MAX when out of memory. */
static size_t reject_seen_add(reject_seen *rs, uint64_t h, size_t from)
{
    if (2 * (rs->n + 1) > rs->cap) {
        size_t ncap = rs->cap ? 2 * rs->cap : 1024;
        reject_seen g = {calloc(ncap, sizeof *g.slot), ncap, 0};
        if (!g.slot)
            return SIZE_MAX;
        for (size_t i = 0; i < rs->cap; i++)
            if (rs->slot[i].h)
                reject_seen_add(&g, rs->slot[i].h, rs->slot[i].from);
        free(rs->slot);
        *rs = g;
    }
    size_t i = (size_t)h & (rs->cap - 1);
    while (rs->slot[i].h && rs->slot[i].h != h)
        i = (i + 1) & (rs->cap - 1);
    if (!rs->slot[i].h) {
        rs->slot[i].h = h;
        rs->slot[i].from = from;
        rs->n++;
    }
    return rs->slot[i].from;
}

/* Concatenates the components' rejects files; returns how many rejects
 * they hold (a sealed line holds a batch's) and sets *lines, or -1 if
 * rejects.jsonl cannot be written. After a worker was lost (sv->lost),
 * the batches it had not acknowledged were processed again by another
 * worker, which rejected their bad events again: a line whose event
 * (reject_key) another component's file holds already is a duplicate
 * and is left out, the files of the workers still alive read first; so
 * is a lost worker's last line cut short by its death. Each reject is
 * then in rejects.jsonl, and counted, once (test_redelivery.sh). */
static long merge_rejects(ss_supervisor *sv, char **path, long *lines)
{
    *lines = 0;
    if (asprintf(path, "%s/rejects.jsonl", sv->outdir) < 0) {
        *path = NULL;
        return -1;
    }
    FILE *o = fopen(*path, "w");
    if (!o)
        return -1;
    long rejects = 0, dups = 0;
    char *line = NULL;
    size_t cap = 0;
    reject_seen seen = {NULL, 0, 0};
    int dedup = sv->lost > 0;
    /* the living first: a duplicate is dropped from a lost worker's file */
    for (size_t k = 0; k < (dedup ? 2 : 1) * sv->nkids; k++) {
        size_t i = k % sv->nkids;
        int lost = sv->kids[i].lost;
        if (dedup && (k < sv->nkids) == lost)
            continue;
        const char *r = sv->plan->comps[i].rejects;
        FILE *f = r ? fopen(r, "r") : NULL;
        if (!f)
            continue;
        ssize_t n;
        while ((n = getline(&line, &cap, f)) > 0) {
            uint64_t key = dedup ? reject_key(line) : 0;
            if (dedup && lost && line[n - 1] != '\n') {
                dups++; /* cut short as it died: rejected again */
                continue;
            }
            if (key) {
                size_t first = reject_seen_add(&seen, key, i);
                if (first != i && first != SIZE_MAX) {
                    dups++;
                    continue;
                }
            }
            fwrite(line, 1, (size_t)n, o);
            if (line[n - 1] != '\n')
                fputc('\n', o);
            (*lines)++;
            rejects += line_rejects(line);
        }
        fclose(f);
        unlink(r);
    }
    free(line);
    free(seen.slot);
    rmdir(sv->rejdir);
    if (dups)
        say(sv, "rejects: %ld line(s) of lost workers left out: events "
                "they rejected in batches they never acknowledged, "
                "rejected again by the worker that took those batches",
            dups);
    return fclose(o) == 0 ? rejects : -1;
}

static void fmt_count(char *buf, size_t n, const ss_stats *st, uint64_t v)
{
    if (st)
        snprintf(buf, n, "%llu", (unsigned long long)v);
    else
        snprintf(buf, n, "-");
}

/* Checks the books (ss_accounting.h) and prints the result; returns 0, or
 * -1 if they do not balance. */
static int balance(ss_supervisor *sv)
{
    size_t nparts = sv->nkids + sv->plan->nvirt;
    ss_acct_part *parts = calloc(nparts ? nparts : 1, sizeof *parts);
    if (!parts) {
        say(sv, "cannot check the balance: out of memory");
        return -1;
    }
    for (size_t i = 0; i < sv->nkids; i++)
        parts[i] = (ss_acct_part){sv->kids[i].name,
                                  absent(sv, i) ? "spare" /* not counted */
                                                : sv->kids[i].role,
                                  sv->kids[i].stage, stats_of(sv, i)};
    /* a chained stage's workers are counted as if they were processes */
    for (size_t v = 0; v < sv->plan->nvirt; v++)
        parts[sv->nkids + v] = (ss_acct_part){
            sv->plan->virt[v].name, "worker", sv->plan->virt[v].stage,
            vstats_of(sv, v)};
    /* a broadcast stage's workers each get every event */
    unsigned copies[SS_PIPELINE_MAX_STAGES];
    for (size_t s = 0; s < sv->p->nstages && s < SS_PIPELINE_MAX_STAGES; s++)
        copies[s] = sv->p->stages[s].broadcast
                        ? (unsigned)sv->p->stages[s].workers
                        : 1;
    /* a stateful stage dealt by credit over several workers: each
     * worker's results cover only the events it got */
    for (size_t s = 0; s < sv->p->nstages; s++) {
        const ss_stage_conf *sc = &sv->p->stages[s];
        ss_acct_stage a;
        ss_accounting_stage(parts, nparts, (int)s, &a);
        if (a.stateful && sc->workers >= 2 && !sc->partition_by &&
            !sc->broadcast)
            out(sv, "  note: stage %s keeps state (a reduce...) on %d "
                    "workers dealt by credit, so each worker's results "
                    "cover only the events it got: right if the sink "
                    "merges them (examples/delayed-flights/print-results.lua "
                    "does); else give the stage partition_by: FIELD (each "
                    "key on one worker) or workers: 1\n",
                sc->name, sc->workers);
    }
    ss_balance b;
    ss_accounting_balance_copies(parts, nparts, sv->stage_names, copies,
                                 sv->p->nstages, sv->lost, &b);
    free(parts);
    sv->books = b;
    switch (b.verdict) {
    case SS_ACCT_NO_COUNTERS:
        say(sv, "cannot check the balance: %s", b.why);
        return -1;
    case SS_ACCT_UNCHECKED:
        out(sv, "  rows in = rows out + rows filtered + rows rejected: not "
                "checked: %zu worker(s) died during the run, and the "
                "events they had processed but not acknowledged were "
                "processed again by others (their routers checked that no "
                "batch was lost or duplicated)\n", sv->lost);
        return 0;
    default:
        break;
    }
    int ok = b.verdict == SS_ACCT_BALANCED;
    out(sv, "  rows in = rows out + rows filtered + rows rejected: "
            "%llu = %llu + %llu + %llu: %s\n",
        (unsigned long long)b.rows_in, (unsigned long long)b.rows_out,
        (unsigned long long)b.filtered, (unsigned long long)b.rejected,
        ok ? "balanced" : "MISMATCH");
    if (b.split_stage)
        out(sv, "  (rows out: the rows stage '%s' passed; it emits another "
               "number of events than it passes, as a flatMap does, and "
               "the stages after it count events, not rows)\n",
            b.split_stage);
    if (!ok)
        say(sv, "the counts do not add up: %s", b.why);
    return ok ? 0 : -1;
}

/* Reports the hot partitions: for each router in front of a partitioned
 * stage, a key group that holds more than a worker's fair share of the
 * keyed events (ss_router_hot), with the worker that owns it. */
static void hot_partitions(ss_supervisor *sv)
{
    for (size_t i = 0; i < sv->nkids; i++) {
        const ss_stats *st = stats_of(sv, i);
        size_t r = 0;
        if (!st || !st->keyed ||
            sscanf(sv->kids[i].name, "router-%zu", &r) != 1 || r < 1 ||
            r > sv->plan->nhops)
            continue;
        /* router-r deals to hop r-1: its first stage's workers */
        int s = -1;
        for (size_t k = 0; k < sv->plan->ncomps && s < 0; k++)
            if (sv->plan->comps[k].hop == (int)r - 1)
                s = sv->plan->comps[k].stage;
        if (s < 0)
            continue;
        const ss_stage_conf *sc = &sv->p->stages[s];
        ss_router_stats rs = {.keyed_events = st->keyed,
                              .hot_events = st->hot_events};
        /* the key group of a nil key: events without the field */
        static const char nil_key = (char)0xc0;
        int nil = sc->partition_by &&
                  st->hot_partition == ss_partition_of(&nil_key, 1);
        if (nil && workers_of(sv, (size_t)s) >= 2 && st->keyed &&
            st->hot_events == st->keyed) {
            out(sv, "  hot partition: stage %s: every keyed event (%llu) "
                    "went to worker %s-%llu: none had a field '%s' (or "
                    "each had it nil), so all have one key; is "
                    "partition_by spelled as the stage before names the "
                    "field?\n",
                sc->name, (unsigned long long)st->keyed, sc->name,
                (unsigned long long)st->hot_slot, sc->partition_by);
            continue;
        }
        if (!ss_router_hot(&rs, (unsigned)workers_of(sv, (size_t)s)))
            continue;
        out(sv, "  hot partition: stage %s: key group %llu holds %.0f%% of "
                "the keyed events (%llu of %llu), all on worker %s-%llu; a "
                "fair share is %.0f%%: its key is skewed\n",
            sc->name, (unsigned long long)st->hot_partition,
            100.0 * (double)st->hot_events / (double)st->keyed,
            (unsigned long long)st->hot_events,
            (unsigned long long)st->keyed, sc->name,
            (unsigned long long)st->hot_slot, 100.0 / workers_of(sv, (size_t)s));
    }
}

/* Prints the summary; returns 0, or -1 if the counts do not balance
 * (something was lost or counted twice: the run must not pass). */
static int summary(ss_supervisor *sv, long nrejects, long nlines,
                   const char *rpath)
{
    uint64_t now = ss_now_ns();
    double wall = (double)(now - sv->t0) / 1e9;
    out(sv, "sstream run: %s: done in %.2f s\n", sv->p->name, wall);
    out(sv, "  %-16s %-6s %12s %12s %12s %12s %10s %9s %9s\n",
        "component", "role", "rows in", "rows out", "passed", "dropped",
        "rejected", "cpu", "peak rss");
    static const ss_stats zero;
    uint64_t peak = 0;
    const child *peak_c = NULL;
    for (size_t k = 0; k < sv->nkids; k++) {
        size_t i = ss_plan_flow_order(sv->plan, k);
        const child *c = &sv->kids[i];
        const ss_stats *st = stats_of(sv, i);
        if (absent(sv, i))
            continue; /* a spare slot sstream scale never used */
        const ss_stats *v = st ? st : &zero;
        const ss_stats *wst = c->stage >= 0 ? st : NULL; /* workers only */
        char in[24], o[24], pa[24], dr[24], rj[24], rss[24], cpu[24];
        fmt_count(in, sizeof in, st, v->in);
        fmt_count(o, sizeof o, st, v->out);
        fmt_count(pa, sizeof pa, wst, v->passed);
        fmt_count(dr, sizeof dr, wst, v->dropped);
        fmt_count(rj, sizeof rj, st, v->rejected);
        if (st)
            snprintf(rss, sizeof rss, "%.1f MB",
                     (double)st->peak_rss_kb / 1024.0);
        else
            snprintf(rss, sizeof rss, "-");
        if (c->exited)
            snprintf(cpu, sizeof cpu, "%.2f s", c->cpu_s);
        else
            snprintf(cpu, sizeof cpu, "-");
        out(sv, "  %-16s %-6s %12s %12s %12s %12s %10s %9s %9s\n", c->name,
            c->role, in, o, pa, dr, rj, cpu, rss);
        /* the stages chained into this worker: their own rows, their CPU
         * and memory in the worker's */
        for (size_t vi = 0; vi < sv->plan->nvirt; vi++) {
            if (sv->plan->virt[vi].host != (int)i)
                continue;
            const ss_stats *vs = vstats_of(sv, vi);
            const ss_stats *vv = vs ? vs : &zero;
            fmt_count(in, sizeof in, vs, vv->in);
            fmt_count(o, sizeof o, vs, vv->out);
            fmt_count(pa, sizeof pa, vs, vv->passed);
            fmt_count(dr, sizeof dr, vs, vv->dropped);
            fmt_count(rj, sizeof rj, vs, vv->rejected);
            out(sv, "  %-16s %-6s %12s %12s %12s %12s %10s %9s %9s\n",
                sv->plan->virt[vi].name, "chain", in, o, pa, dr, rj, "-",
                "-");
        }
        if (st && st->peak_rss_kb > peak) {
            peak = st->peak_rss_kb;
            peak_c = c;
        }
    }
    const ss_stats *src = stats_of(sv, (size_t)sv->source);
    if (!src)
        src = &zero;
    uint64_t bytes = src->in_bytes ? src->in_bytes : src->total_bytes;
    out(sv, "  wall time %.2f s, input %.1f MB, %.1f MB/s, peak rss %.1f MB"
            "%s%s%s\n",
        wall, (double)bytes / 1e6, wall > 0 ? (double)bytes / 1e6 / wall : 0,
        (double)peak / 1024.0, peak_c ? " (" : "",
        peak_c ? peak_c->name : "", peak_c ? ")" : "");
    hot_partitions(sv);
    if (sv->resc_n)
        out(sv, "  not rescaled: stage %s was to get %d workers at the next "
                "complete checkpoint after epoch %u, and the run ended "
                "before one\n",
            sv->p->stages[sv->resc_stage].name, sv->resc_n,
            sv->resc_after);
    if (sv->scalelog[0]) {
        out(sv, "  rescaled (sstream scale): %s\n", sv->scalelog);
        size_t nleft = 0;
        for (size_t i = 0; i < sv->nkids; i++)
            if (sv->kids[i].left)
                out(sv, "%s%s (at %.1f s)", nleft++ ? ", " : "  left: ",
                    sv->kids[i].name, sv->kids[i].left_s);
        if (nleft)
            out(sv, "; their rows are in the table above\n");
    }
    if (sv->ckptdir && sv->ckpt_epoch)
        out(sv, "  checkpoints: %u complete every %u ms, the last epoch %u "
                "(%s/manifest.json)\n", sv->ckpt_done, sv->p->checkpoint_ms,
            sv->ckpt_epoch, sv->ckptdir);
    else if (sv->ckptdir && sv->ckpt_max)
        /* no manifest to point at: say why instead */
        out(sv, "  checkpoints: none complete (every %u ms): barriers "
                "reached epoch %u but not every component acknowledged "
                "one (see the warnings above); no manifest written\n",
            sv->p->checkpoint_ms, sv->ckpt_max);
    else if (sv->ckptdir)
        out(sv, "  checkpoints: none (every %u ms): the run ended before "
                "the first barrier; no manifest written\n",
            sv->p->checkpoint_ms);
    int bal = balance(sv);
    const ss_stats *snk = stats_of(sv, (size_t)sv->sink);
    if (nrejects >= 0 && snk && snk->rejected)
        /* the sink's rejects are results it failed to print: after the
         * rows were counted, so not in the equation above */
        out(sv, "  rejects: %ld in %s (%llu of them by the sink: results "
                "its script failed on, not counted as rows)\n",
            nrejects, rpath, (unsigned long long)snk->rejected);
    else if (nrejects >= 0 && nlines != nrejects)
        out(sv, "  rejects: %ld in %s (%ld line%s: one sealed line per "
                "batch, for the owner: sstream decrypt)\n",
            nrejects, rpath, nlines, nlines == 1 ? "" : "s");
    else if (nrejects >= 0)
        out(sv, "  rejects: %ld in %s\n", nrejects, rpath);
    if (!sv->o.quiet)
        fflush(stderr);
    return bal;
}
/* ---- the run ------------------------------------------------------------- */

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* ---- rescaling: sstream scale NAME STAGE N ------------------------------
 *
 * The owner's request arrives on the control socket (ss_ctlsock.h). A
 * stateless stage dealt by credit grows at once: the next spare slots
 * planned for it (ss_plan.slots: names, keys by role, admitted by its
 * routers, the monitor and the key service) are started as at the start
 * (same uid split, enclave spawner); its routers take new workers. It
 * shrinks gracefully: the workers started last are asked to leave
 * (SIGUSR1, ss_node_leave): each takes no more input, waits until its
 * outputs were received downstream (so every input it took is
 * acknowledged) and exits 0 with its final counters; its router deals
 * what it had sent it and it never took to the others. Nothing is lost
 * or counted twice: the books balance, the leavers' rows included. Any
 * other stage is refused, saying what to change.
 */

static int stage_of(const ss_supervisor *sv, const char *name)
{
    for (size_t s = 0; s < sv->p->nstages; s++)
        if (strcmp(sv->p->stages[s].name, name) == 0)
            return (int)s;
    return -1;
}

/* Workers of stage s in its current set: started, not leaving, alive. */
static int stage_live(const ss_supervisor *sv, int s)
{
    int n = 0;
    for (size_t i = 0; i < sv->nkids; i++) {
        const child *c = &sv->kids[i];
        n += c->stage == s && !strcmp(c->role, "worker") && c->active &&
             !c->leaving && !c->lost;
    }
    return n;
}

/* Why stage s cannot be rescaled while the run goes on, or NULL. */
static const char *scale_refused(const ss_supervisor *sv, int s, char *why,
                                 size_t len)
{
    const ss_pipeline *p = sv->p;
    const ss_stage_conf *sc = &p->stages[s];
    int stateful = sv->plan->stateful[s] > 0 || stage_stateful(sv, s);
    if (ss_pipeline_chained(p, (size_t)s) ||
        ((size_t)s + 1 < p->nstages && ss_pipeline_chained(p, (size_t)s + 1)))
        snprintf(why, len, "stage '%s' is chained with its neighbour (chain: "
                 "true): one set of workers runs both; give the pipeline "
                 "chain: false to rescale it", sc->name);
    else if (sc->broadcast)
        snprintf(why, len, "stage '%s' is broadcast: each worker gets every "
                 "batch and its router has one slot per worker, fixed at "
                 "the start", sc->name);
    else if (stateful && !p->checkpoint_ms)
        snprintf(why, len, "stage '%s' keeps state across events (its script "
                 "folds them, as a reduce does): it can be rescaled only at "
                 "a checkpoint, and this run takes none; give the pipeline "
                 "checkpoint_ms: MS (or sstream run --checkpoint-interval "
                 "MS)%s", sc->name,
                 sc->partition_by ? "" : ", and the stage partition_by: "
                                         "FIELD");
    else if (stateful && !sc->partition_by)
        snprintf(why, len, "stage '%s' keeps state across events and its "
                 "workers are dealt by credit, so each holds a state of "
                 "its own that cannot be split over another number of "
                 "workers; give stage '%s' partition_by: FIELD (each key "
                 "on one worker)", sc->name, sc->name);
    else if (stateful)
        return NULL; /* partitioned: at the next checkpoint */
    else if (sc->partition_by)
        snprintf(why, len, "stage '%s' is partitioned (partition_by): its "
                 "router has one slot per worker, fixed at the start",
                 sc->name);
    else if (sv->plan->stateful[s] < 0 && sv->scale_slots > 0)
        snprintf(why, len, "stage '%s': its script does not load here, so "
                 "it cannot be known to be stateless", sc->name);
    else
        return NULL;
    return why;
}

/* Starts n spare workers of stage s; *names gets theirs. Returns how many
 * started. */
static int scale_up(ss_supervisor *sv, int s, int n, char *names,
                    size_t len)
{
    int started = 0;
    size_t used = 0;
    names[0] = '\0';
    for (size_t i = 0; i < sv->nkids && started < n; i++) {
        child *c = &sv->kids[i];
        if (c->stage != s || strcmp(c->role, "worker") != 0 || c->active ||
            c->starts)
            continue;
        c->active = 1;
        c->scaled = 1;
        if (start_child(sv, c, sv->devnull) != 0) {
            c->active = 0;
            break;
        }
        started++;
        int w = snprintf(names + used, len - used, "%s%s", used ? ", " : "",
                         c->name);
        if (w > 0 && (size_t)w < len - used)
            used += (size_t)w;
    }
    return started;
}

/* Spare slots of stage s never started. */
static int stage_spares(const ss_supervisor *sv, int s)
{
    int n = 0;
    for (size_t i = 0; i < sv->nkids; i++) {
        const child *c = &sv->kids[i];
        n += c->stage == s && !strcmp(c->role, "worker") && !c->active &&
             !c->starts;
    }
    return n;
}

/* Replaces the value after option opt in argv (heap strings). Returns
 * 0, 1 if opt is not there, -1 out of memory. */
static int set_arg(char **argv, const char *opt, const char *val)
{
    for (size_t i = 0; argv && argv[i]; i++)
        if (!strcmp(argv[i], opt) && argv[i + 1]) {
            char *v = strdup(val);
            if (!v)
                return -1;
            free(argv[i + 1]);
            argv[i + 1] = v;
            return 0;
        }
    return 1;
}

/* The sink's --finals (outside plain mode: the stateful workers whose
 * result must arrive) with stage s's workers STAGE-1..STAGE-n. */
static int set_finals(ss_supervisor *sv, int s, int n)
{
    char **argv = sv->plan->comps[sv->sink].argv;
    const char *old = NULL;
    for (size_t i = 0; argv && argv[i]; i++)
        if (!strcmp(argv[i], "--finals") && argv[i + 1])
            old = argv[i + 1];
    if (!old)
        return 0;
    const char *st = sv->p->stages[s].name;
    size_t sl = strlen(st);
    ss_buf b = SS_BUF_INIT;
    for (const char *a = old; *a;) {
        size_t k = strcspn(a, ",");
        int mine = k > sl + 1 && !strncmp(a, st, sl) && a[sl] == '-' &&
                   strspn(a + sl + 1, "0123456789") == k - sl - 1;
        if (!mine)
            ss_buf_printf(&b, "%s%.*s", b.len ? "," : "", (int)k, a);
        a += k + (a[k] == ',');
    }
    for (int w = 1; w <= n; w++)
        ss_buf_printf(&b, "%s%s-%d", b.len ? "," : "", st, w);
    int rc = b.data ? set_arg(argv, "--finals", b.data) : -1;
    ss_buf_release(&b);
    return rc < 0 ? -1 : 0;
}

/* Whether a resume from a checkpoint can still happen in this run (a
 * restart with --restarts, a rescale of a keyed stage): it takes
 * checkpoints, can restore them (enclave mode: the key service grants
 * it), and its sink's output can be cut back (spooled, or nothing shown). */
static int can_resume(const ss_supervisor *sv)
{
    if (!sv->ckptdir || (sv->spool_fd < 0 && sv->sink_lines))
        return 0;
    return strcmp(sv->p->security, "enclave") != 0 || sv->o.grant_restore;
}

/* Stateless stage s goes from its live workers to n while the run goes
 * on: the workers started last are asked to leave (SIGUSR1); each must
 * have reported once. Fills ans; returns 0, or -1 when it refused. */
static int leave_now(ss_supervisor *sv, int s, int n, char *ans, size_t len)
{
    const ss_stage_conf *sc = &sv->p->stages[s];
    int live = stage_live(sv, s);
    char names[512] = "";
    {
        /* the workers started last leave; each must have reported once
         * (it is connected, and takes SIGUSR1 as a request to leave) */
        child *go[SS_PIPELINE_MAX_WORKERS];
        int k = 0;
        for (size_t i = sv->nkids; i-- > 0 && k < live - n;) {
            child *c = &sv->kids[i];
            if (c->stage != s || strcmp(c->role, "worker") != 0 ||
                !c->active || c->leaving || c->lost)
                continue;
            if (!stats_of(sv, i) || c->pid <= 0) {
                snprintf(ans, len, "refused: worker %s of %s is still "
                         "starting: try again in a moment; nothing was "
                         "changed\n", c->name, sv->rec_name);
                return -1;
            }
            go[k++] = c;
        }
        size_t used = 0;
        uint64_t now = ss_now_ns();
        for (int j = 0; j < k; j++) {
            go[j]->leaving = 1;
            go[j]->left_s = (double)(now - sv->t0) / 1e9;
            kill(go[j]->pid, SIGUSR1); /* the worker alone: not its group */
            int w = snprintf(names + used, sizeof names - used, "%s%s",
                             used ? ", " : "", go[j]->name);
            if (w > 0 && (size_t)w < sizeof names - used)
                used += (size_t)w;
        }
    }
    char when[48];
    snprintf(when, sizeof when, "at %.1f s",
             (double)(ss_now_ns() - sv->t0) / 1e9);
    note_rescale(sv, s, sc->name, live, n, when);
    int one = live - n == 1;
    say(sv, "scale: stage %s: %d -> %d workers: %s leave%s once the "
        "batches %s took are done; %s router deals the rest to the "
        "others (its warning that %s lost is expected)", sc->name, live,
        n, names, one ? "s" : "", one ? "it" : "they",
        one ? "its" : "their", one ? "it was" : "they were");
    snprintf(ans, len, "ok: stage %s of %s: %d worker%s (%s leave%s "
             "once the batches %s took are done)\n", sc->name,
             sv->rec_name, n, n == 1 ? "" : "s", names,
             one ? "s" : "", one ? "it" : "they");
    return 0;
}

/* A rescale of partitioned stateful stage resc_stage waited for this
 * complete checkpoint: stage s gets its new count in the plan (its
 * router's and workers' --partitions, the sink's --finals; slots 1..N'
 * active, the others out, their counters at the checkpoint kept), and
 * the pipeline is stopped and resumed from the checkpoint like a
 * restart (restart(): prepare_resume gives each worker SS_RESTORE_WORKERS
 * and the key service's grant, so each takes its key groups from every
 * old worker's snapshot); it does not count against --restarts. */
static void rescale_at_checkpoint(ss_supervisor *sv)
{
    int s = sv->resc_stage, n = sv->resc_n, old = workers_of(sv, (size_t)s);
    const char *name = sv->p->stages[s].name;
    sv->resc_n = 0;
    const char *no = NULL;
    if (sv->done || sv->finish_ns || sv->stopping)
        no = "the run is ending";
    else if (sv->sink_lines)
        no = "the sink has printed results already, which a resume from the "
             "checkpoint cannot take back";
    else if (sv->lost)
        no = "a worker was killed while its stage went on since it was "
             "asked: its router dealt the batches it held to the others, "
             "maybe after they had passed this checkpoint's barrier (rows "
             "a resume from it would lose)";
    else if (sv->spool_fd >= 0 && sv->commit_epoch != sv->ckpt_epoch)
        /* spooled (--restarts): what it wrote after its marks of the
         * checkpoint is cut away on the resume (the sink's commit) */
        no = "the sink's acknowledgement of the checkpoint had no marks of "
             "its output, which a resume from it could not cut back to";
    if (no && !sv->p->stages[s].partition_by && !sv->done &&
        !sv->finish_ns && !sv->stopping && (!can_resume(sv) || sv->lost)) {
        /* a stateless stage's scale-down: no resume can follow now, so
         * its workers may leave while the run goes on */
        char ans[1024];
        say(sv, "scale: stage %s cannot go to %d workers at checkpoint %u: "
            "%s; no resume from a checkpoint can follow now, so its "
            "workers leave while the run goes on", name, n, sv->ckpt_epoch,
            no);
        leave_now(sv, s, n, ans, sizeof ans);
        return;
    }
    if (no) {
        say(sv, "scale: the rescale of stage %s to %d workers is abandoned: "
            "%s", name, n, no);
        return;
    }
    char num[16];
    snprintf(num, sizeof num, "%d", n);
    double now = (double)(ss_now_ns() - sv->t0) / 1e9;
    int w = 0, bad = 0;
    for (size_t i = 0; i < sv->nkids; i++) {
        child *c = &sv->kids[i];
        if (c->stage != s || strcmp(c->role, "worker") != 0)
            continue;
        w++; /* slots come in order: STAGE-1, STAGE-2, ... */
        if (w <= n && !c->active) {
            c->active = 1;
            c->left = 0;
        } else if (w > n && c->active) {
            c->active = 0;
            c->left = 1;
            c->left_s = now;
        }
        if (set_arg(sv->plan->comps[i].argv, "--partitions", num) < 0)
            bad = 1;
        if (w == 1) { /* its router: router-(hop+1), routers first */
            int hop = sv->plan->comps[i].hop;
            if (hop >= 0 &&
                set_arg(sv->plan->comps[hop].argv, "--partitions", num) < 0)
                bad = 1;
        }
    }
    if (bad || set_finals(sv, s, n) != 0)
        say(sv, "warning: out of memory rescaling stage %s", name);
    char when[96];
    snprintf(when, sizeof when, "at checkpoint %u (asked at %.1f s, done "
             "at %.1f s)", sv->ckpt_epoch, sv->resc_asked, now);
    note_rescale(sv, s, name, old, n, when);
    say(sv, "scale: stage %s: %d -> %d workers at checkpoint %u: stopping "
        "every component; the pipeline resumes from checkpoint %u with the "
        "new count%s (a rescale: not counted against --restarts)", name,
        old, n, sv->ckpt_epoch, sv->ckpt_epoch,
        sv->p->stages[s].partition_by ? ", each worker taking its key "
                                        "groups' state"
                                      : "");
    sv->restarting = 1;
    sv->stopping = 1;
    sv->stop_ns = ss_now_ns();
    signal_all(sv, SIGKILL);
    sv->killed = 1;
}

/* A partitioned stateful stage, or a stateless one going down in a run
 * that can resume from a checkpoint: its rescale waits for the next
 * complete checkpoint (rescale_at_checkpoint). Fills ans. */
static void scale_at_checkpoint(ss_supervisor *sv, int s, long n,
                                char *ans, size_t len)
{
    const ss_stage_conf *sc = &sv->p->stages[s];
    int cur = sc->partition_by ? workers_of(sv, (size_t)s) : stage_live(sv, s);
    const char *no = resume_refused(sv);
    if (sv->resc_n)
        snprintf(ans, len, "refused: a rescale of stage %s to %d workers "
                 "waits for the next checkpoint already; nothing was "
                 "changed\n", sv->p->stages[sv->resc_stage].name,
                 sv->resc_n);
    else if (n == cur)
        snprintf(ans, len, "ok: stage %s of %s has %ld worker%s already\n",
                 sc->name, sv->rec_name, n, n == 1 ? "" : "s");
    else if (n > sv->plan->slots[s])
        snprintf(ans, len, "refused: stage %s of %s can have at most %d "
                 "workers: the worker slots planned at the start (sstream "
                 "run --scale-slots N plans more)\n", sc->name,
                 sv->rec_name, sv->plan->slots[s]);
    else if (sv->lost)
        snprintf(ans, len, "refused: stage %s is rescaled by resuming "
                 "from a checkpoint, and a worker of this run was killed "
                 "while its stage went on: its router dealt the batches it "
                 "held to the others, maybe after they had passed a later "
                 "checkpoint's barrier, so no checkpoint completed since "
                 "can be resumed from (rows would be lost); nothing was "
                 "changed\n", sc->name);
    else if (no && sv->ckpt_epoch)
        snprintf(ans, len, "refused: stage %s is rescaled by resuming "
                 "from a checkpoint (%s), and this run cannot: %s\n",
                 sc->name, sc->partition_by ? "it keeps state"
                                            : "workers that leave while "
                                              "checkpoints go on could lose "
                                              "rows on a later resume",
                 no);
    else {
        sv->resc_stage = s;
        sv->resc_n = (int)n;
        sv->resc_after = sv->ckpt_epoch;
        sv->resc_asked = (double)(ss_now_ns() - sv->t0) / 1e9;
        say(sv, "scale: stage %s: %d -> %ld workers at the next complete "
            "checkpoint (after epoch %u): the pipeline is stopped there and "
            "resumes from it with the new count", sc->name, cur, n,
            sv->ckpt_epoch);
        snprintf(ans, len, "ok: stage %s of %s: %ld worker%s at the next "
                 "complete checkpoint (the run resumes from it; its stderr "
                 "says when)\n", sc->name, sv->rec_name, n,
                 n == 1 ? "" : "s");
        return;
    }
}

/* Answers the owner's request "scale STAGE N" (anything else: an error
 * saying what is understood). Fills ans. */
static void scale_request(ss_supervisor *sv, const char *req, char *ans,
                          size_t len)
{
    char stage[SS_CTLSOCK_LINE_MAX], ntext[SS_CTLSOCK_LINE_MAX], extra;
    if (sscanf(req, "scale %255s %255s %c", stage, ntext, &extra) != 2) {
        snprintf(ans, len, "error: this run understands 'scale STAGE N', "
                 "not '%.80s'\n", req);
        return;
    }
    int s = stage_of(sv, stage);
    if (s < 0) {
        size_t o = (size_t)snprintf(ans, len, "refused: run %s has no stage "
                                    "'%.63s' (it has ", sv->rec_name,
                                    stage);
        for (size_t k = 0; k < sv->p->nstages && o < len; k++)
            o += (size_t)snprintf(ans + o, len - o, "%s%s", k ? ", " : "",
                                  sv->p->stages[k].name);
        if (o < len)
            snprintf(ans + o, len - o, ")\n");
        return;
    }
    const ss_stage_conf *sc = &sv->p->stages[s];
    /* quoted as typed: strtol would clamp 99999999999999999999 */
    char *nend;
    errno = 0;
    long n = strtol(ntext, &nend, 10);
    if (errno || *nend || nend == ntext || n < 1 ||
        n > SS_PIPELINE_MAX_WORKERS) {
        snprintf(ans, len, "refused: N must be a number from 1 to %d, not "
                 "'%.40s'\n", SS_PIPELINE_MAX_WORKERS, ntext);
        return;
    }
    if (sv->stopping || sv->restarting || sv->done || sv->finish_ns ||
        !sv->source_started) {
        snprintf(ans, len, "refused: run %s is %s; nothing was changed\n",
                 sv->rec_name,
                 !sv->source_started && !sv->stopping ? "starting: try "
                                                        "again in a moment"
                 : sv->restarting                     ? "restarting"
                                                      : "ending");
        return;
    }
    char why[640];
    if (scale_refused(sv, s, why, sizeof why)) {
        snprintf(ans, len, "refused: %s\n", why);
        return;
    }
    if (sc->partition_by) { /* stateful: scale_refused let it through */
        scale_at_checkpoint(sv, s, n, ans, len);
        return;
    }
    if (sv->resc_n) { /* refused: one rescale waits at a time */
        scale_at_checkpoint(sv, s, n, ans, len);
        return;
    }
    int live = stage_live(sv, s);
    char names[512] = "";
    if (n == live) {
        snprintf(ans, len, "ok: stage %s of %s has %ld worker%s already\n",
                 sc->name, sv->rec_name, n, n == 1 ? "" : "s");
        return;
    }
    if (n > live) {
        int spares = stage_spares(sv, s);
        if (n - live > spares) {
            if (sv->scale_slots == 0)
                snprintf(ans, len, "refused: run %s was started without "
                         "spare worker slots (%s), so no stage can grow; "
                         "start it with sstream run --scale-slots N\n",
                         sv->rec_name,
                         sv->o.scale_slots == 0
                             ? "--scale-slots 0"
                             : "its sink checks that every stream keeps "
                               "its order, one worker per stage outside "
                               "plain mode; more workers would reorder "
                               "them");
            else
                snprintf(ans, len, "refused: stage %s of %s can have at "
                         "most %d workers now: %d run, and %d of the %d "
                         "spare slots planned at the start are left "
                         "(sstream run --scale-slots N plans more)\n",
                         sc->name, sv->rec_name, live + spares, live,
                         spares, sv->scale_slots);
            return;
        }
        int got = scale_up(sv, s, (int)(n - live), names, sizeof names);
        if (got < n - live) {
            snprintf(ans, len, "error: stage %s of %s: only %d of %ld new "
                     "workers started (%s); see the run's messages\n",
                     sc->name, sv->rec_name, got, n - live,
                     got ? names : "none");
            return;
        }
    } else if (can_resume(sv) && !sv->lost) {
        /* a run that can resume from a checkpoint: its workers leave at
         * the next complete one (a live leave would let its router deal
         * the batches they held from before a barrier to the others after
         * they passed it, and a resume from that checkpoint lose them) */
        scale_at_checkpoint(sv, s, n, ans, len);
        return;
    } else if (leave_now(sv, s, (int)n, ans, len) != 0)
        return;
    if (n > live) {
        char when[48];
        snprintf(when, sizeof when, "at %.1f s",
                 (double)(ss_now_ns() - sv->t0) / 1e9);
        note_rescale(sv, s, sc->name, live, n, when);
        say(sv, "scale: stage %s: %d -> %ld workers: started %s", sc->name,
            live, n, names);
        snprintf(ans, len, "ok: stage %s of %s: %ld workers (started %s)\n",
                 sc->name, sv->rec_name, n, names);
    }
    if (sv->rec_name[0]) {
        ss_runrec r;
        char err[512];
        if (ss_runrec_read(sv->rec_name, &r, err, sizeof err) == 0 &&
            r.pid == (long)getpid() &&
            ss_runrec_set_workers(&r, sc->name, (int)n) == 0)
            (void)ss_runrec_write(&r, err, sizeof err);
    }
}

/* One request on the control socket: refused unless from the run's
 * owner (ss_ctlsock_accept), answered, closed. */
static void serve_control(ss_supervisor *sv)
{
    for (int k = 0; k < 8; k++) {
        char req[SS_CTLSOCK_LINE_MAX], ans[2048];
        long uid;
        const char *why;
        int fd = ss_ctlsock_accept(sv->ctl_fd, req, sizeof req, &uid, &why);
        if (fd == -1)
            return;
        if (fd == -2) {
            say(sv, "warning: refused a request on the control socket from "
                "uid %ld: %s", uid, why ? why : "?");
            continue;
        }
        scale_request(sv, req, ans, sizeof ans);
        ss_ctlsock_answer(fd, ans);
    }
}

/* Listens on the owner's control socket and records the run by name, so
 * that sstream scale NAME finds it (ss_runrec.h, on "local"). A live
 * run recorded under the same name keeps its record: this one is then
 * not reachable by that name (said). */
static void open_control(ss_supervisor *sv)
{
    char dir[PATH_MAX], err[PATH_MAX + 128];
    snprintf(dir, sizeof dir, "%s/ctl", sv->plan->tmpdir);
    sv->ctl_fd = ss_ctlsock_listen(dir, sv->ctl_path, sizeof sv->ctl_path,
                                   err, sizeof err);
    if (sv->ctl_fd < 0) {
        say(sv, "warning: sstream scale cannot reach this run: %s", err);
        return;
    }
    const char *name = sv->o.name ? sv->o.name : sv->p->name;
    ss_runrec r;
    if (ss_runrec_read(name, &r, err, sizeof err) == 0 &&
        r.pid != (long)getpid() && ss_runrec_alive(&r) != 0) {
        say(sv, "warning: a run named '%s' is running already (pid %ld%s%s)"
            ": sstream scale %s reaches that one; give this run another "
            "name (sstream run --name NAME)", name, r.pid,
            strcmp(r.on, "local") ? " on " : "",
            strcmp(r.on, "local") ? r.on : "", name);
        return;
    }
    memset(&r, 0, sizeof r);
    snprintf(r.name, sizeof r.name, "%s", name);
    snprintf(r.on, sizeof r.on, "local");
    if (!realpath(sv->p->path, r.pipeline))
        snprintf(r.pipeline, sizeof r.pipeline, "%s", sv->p->path);
    if (!realpath(sv->outdir, r.outdir))
        snprintf(r.outdir, sizeof r.outdir, "%s", sv->outdir);
    snprintf(r.security, sizeof r.security, "%s", sv->p->security);
    gethostname(r.host, sizeof r.host - 1);
    r.pid = (long)getpid();
    r.started = (long long)time(NULL);
    for (size_t s = 0; s < sv->p->nstages; s++)
        ss_runrec_set_workers(&r, sv->p->stages[s].name,
                              sv->p->stages[s].workers);
    snprintf(r.control, sizeof r.control, "%s", sv->ctl_path);
    if (ss_runrec_write(&r, err, sizeof err)) {
        say(sv, "warning: sstream scale cannot find this run by name: %s",
            err);
        return;
    }
    snprintf(sv->rec_name, sizeof sv->rec_name, "%s", name);
}

/* Stops listening and removes the run's record (if it is still ours). */
static void close_control(ss_supervisor *sv)
{
    if (sv->ctl_fd >= 0) {
        close(sv->ctl_fd);
        unlink(sv->ctl_path);
        sv->ctl_fd = -1;
    }
    ss_runrec r;
    char err[PATH_MAX + 128];
    if (sv->rec_name[0] &&
        ss_runrec_read(sv->rec_name, &r, err, sizeof err) == 0 &&
        r.pid == (long)getpid() && !strcmp(r.on, "local"))
        ss_runrec_remove(sv->rec_name);
    sv->rec_name[0] = '\0';
}

/* Polls the control socket, the signal pipe and the children's pipes for
 * at most timeout_ms, and handles what arrived. */
static void poll_once(ss_supervisor *sv, zmq_pollitem_t *items,
                      int *owner, long timeout_ms)
{
    size_t ni = 0;
    items[ni] = (zmq_pollitem_t){ss_monitor_socket(sv->mon), 0, ZMQ_POLLIN, 0};
    owner[ni++] = -1;
    items[ni] = (zmq_pollitem_t){NULL, sig_pipe[0], ZMQ_POLLIN, 0};
    owner[ni++] = -2;
    if (sv->ctl_fd >= 0) {
        items[ni] = (zmq_pollitem_t){NULL, sv->ctl_fd, ZMQ_POLLIN, 0};
        owner[ni++] = -3;
    }
    for (size_t i = 0; i < sv->nkids; i++) {
        if (sv->kids[i].err_fd >= 0) {
            items[ni] =
                (zmq_pollitem_t){NULL, sv->kids[i].err_fd, ZMQ_POLLIN, 0};
            owner[ni++] = (int)(2 * i);
        }
        if (sv->kids[i].out_fd >= 0) {
            items[ni] =
                (zmq_pollitem_t){NULL, sv->kids[i].out_fd, ZMQ_POLLIN, 0};
            owner[ni++] = (int)(2 * i + 1);
        }
    }
    if (zmq_poll(items, (int)ni, timeout_ms) <= 0)
        return;
    for (size_t k = 0; k < ni; k++) {
        if (!items[k].revents)
            continue;
        if (owner[k] == -1) {
            read_control(sv);
        } else if (owner[k] == -2) {
            char buf[64];
            while (read(sig_pipe[0], buf, sizeof buf) > 0)
                ;
        } else if (owner[k] == -3) {
            serve_control(sv);
        } else {
            read_pipe(sv, &sv->kids[owner[k] / 2], !(owner[k] % 2));
        }
    }
}

static int pipes_open(const ss_supervisor *sv)
{
    for (size_t i = 0; i < sv->nkids; i++)
        if (sv->kids[i].err_fd >= 0 || sv->kids[i].out_fd >= 0)
            return 1;
    return 0;
}

static int finals_missing(const ss_supervisor *sv)
{
    for (size_t i = 0; i < sv->nkids + sv->plan->nvirt; i++)
        if (stats_of(sv, i) && !stats_of(sv, i)->final)
            return 1;
    return 0;
}

/* 1 when every worker and the sink reported once (they are connected),
 * or exited. */
static int consumers_ready(const ss_supervisor *sv)
{
    for (size_t i = 0; i < sv->nkids; i++) {
        const child *c = &sv->kids[i];
        if ((c->stage >= 0 || (int)i == sv->sink) && !stats_of(sv, i) &&
            c->running)
            return 0;
    }
    return 1;
}

/* ---- checkpoints: the coordinator --------------------------------------
 *
 * Epoch e is complete when the source (after writing its parts' resume
 * points), every worker still in the run and the sink (the stateful ones
 * and the sink after writing their sealed snapshots, NAME-eN.snap)
 * acknowledged barrier e on the control channel (ss_monitor_ack):
 * everything the source sent before its barriers was then processed by
 * every stage and reached the sink. The components write their files
 * into the run folder's ckpt/ (stagedir: workers of another uid reach
 * it, not the output folder); the coordinator copies the newest complete
 * epoch's files into the output folder and writes its manifest, each
 * atomically (a temporary file renamed):
 * <outdir>/checkpoints/manifest.json with the run id, the epoch, each
 * component file of the epoch and its BLAKE2b-256, and every component's
 * counters at the barrier, and removes the files of older epochs.
 */

/* Is epoch e acknowledged by every component that takes part? */
static int epoch_complete(const ss_supervisor *sv, uint32_t e)
{
    for (size_t i = 0; i < sv->nkids; i++) {
        const child *c = &sv->kids[i];
        if (!strcmp(c->role, "router") || c->lost || !c->active ||
            c->leaving)
            continue;
        if (!ss_monitor_ack(sv->mon, i, e))
            return 0;
    }
    /* the stages chained into a worker: their counters, reported by it */
    for (size_t v = 0; v < sv->plan->nvirt; v++)
        if (!sv->kids[sv->plan->virt[v].host].lost &&
            !ss_monitor_ack(sv->mon, sv->nkids + v, e))
            return 0;
    return 1;
}

static void put_counters(ss_buf *b, const char *name, const ss_stats *st)
{
    ss_buf_json_str(b, name, strlen(name));
    ss_buf_printf(b, ":{\"in\":%llu,\"out\":%llu,\"passed\":%llu,"
                  "\"dropped\":%llu,\"rejected\":%llu,\"batches_in\":%llu,"
                  "\"batches_out\":%llu",
                  (unsigned long long)st->in, (unsigned long long)st->out,
                  (unsigned long long)st->passed,
                  (unsigned long long)st->dropped,
                  (unsigned long long)st->rejected,
                  (unsigned long long)st->batches_in,
                  (unsigned long long)st->batches_out);
    /* the marks of its files at the barrier (the sink's commit), for the
     * record: the coordinator keeps its own */
    if (st->marks)
        ss_buf_printf(b, ",\"rejects_len\":%lld,\"stdout_len\":%lld,"
                      "\"output_len\":%lld",
                      (long long)st->rejects_len, (long long)st->stdout_len,
                      (long long)st->output_len);
    ss_buf_printf(b, "}");
}

/* Writes data[0..n) to path through a temporary file beside it, synced
 * and renamed. Returns 0 or -1 (errno). */
static int write_file_atomic(const char *path, const void *data, size_t n)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int bad = ss_write_all(fd, data, n) != 0 || fsync(fd) != 0;
    int e = errno;
    bad |= close(fd) != 0;
    if (bad || rename(tmp, path) != 0) {
        e = bad ? e : errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return 0;
}

/* The component whose checkpoint file is name[0..l) ("<name>-eE.json"
 * or ".snap", sl the length of the "-eE..." part), or NULL. */
static const child *staged_writer(const ss_supervisor *sv, const char *name,
                                  size_t l, size_t sl)
{
    for (size_t i = 0; i < sv->nkids; i++) {
        const char *k = sv->kids[i].name;
        if (strlen(k) == l - sl && !strncmp(k, name, l - sl))
            return &sv->kids[i];
    }
    return NULL;
}

/* Reads the staged file path that component c wrote into *data (heap)
 * and *len. The folder is the worker hosts' too (separate uids): a file
 * is taken only if it is a regular file with one link, opened without
 * following a link, owned by the uid c runs as. Otherwise -1 and *why
 * (the coordinator, as root, used to copy whatever a link planted there
 * named, the owner's data.key included, into the output folder). */
static int read_staged(const ss_supervisor *sv, const child *c,
                       const char *path, char **data, size_t *len,
                       const char **why)
{
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        *why = errno == ELOOP ? "is a symbolic link" : strerror(errno);
        return -1;
    }
    struct stat st;
    uid_t want = c->as_worker && sv->sep ? sv->w_uid : geteuid();
    const size_t max = (64u << 20) + 65536;
    *why = NULL;
    if (fstat(fd, &st) != 0)
        *why = strerror(errno);
    else if (!S_ISREG(st.st_mode) || st.st_nlink != 1)
        *why = "is not a regular file with one link";
    else if (st.st_uid != want)
        *why = "belongs to another uid than its component's";
    else if ((uint64_t)st.st_size > max)
        *why = "is too large";
    char *b = *why ? NULL : malloc((size_t)st.st_size + 1);
    if (!*why && !b)
        *why = "out of memory";
    size_t got = 0;
    while (b && got < (size_t)st.st_size) {
        ssize_t r = read(fd, b + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            *why = r < 0 ? strerror(errno) : "changed while read";
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    if (*why) {
        free(b);
        return -1;
    }
    *data = b;
    *len = got;
    return 0;
}

/* Writes the manifest of complete epoch e: copies the epoch's files
 * from the components' folder into the output folder's checkpoints/,
 * hashing them. Returns 0 or -1 (said). */
static int write_manifest(ss_supervisor *sv, uint32_t e)
{
    ss_buf b = SS_BUF_INIT;
    ss_buf_printf(&b, "{\"run\":\"%016llx\",\"epoch\":%u,"
                  "\"interval_ms\":%u,\"files\":[",
                  (unsigned long long)sv->run, e, sv->p->checkpoint_ms);
    DIR *d = opendir(sv->stagedir);
    struct dirent *de;
    char json[32], snap[32], path[PATH_MAX];
    snprintf(json, sizeof json, "-e%u.json", e);
    snprintf(snap, sizeof snap, "-e%u.snap", e);
    int nfiles = 0, bad = !d;
    while (d && (de = readdir(d))) {
        size_t l = strlen(de->d_name), sl = strlen(json);
        if (l <= sl || (strcmp(de->d_name + l - sl, json) != 0 &&
                        strcmp(de->d_name + l - sl, snap) != 0))
            continue;
        snprintf(path, sizeof path, "%s/%s", sv->stagedir, de->d_name);
        char *data = NULL;
        size_t len = 0;
        unsigned char h[crypto_generichash_BYTES];
        char hex[2 * crypto_generichash_BYTES + 1];
        /* only a component's own file, never through a link */
        const child *wr = staged_writer(sv, de->d_name, l, sl);
        const char *why = "is not a file of a component of this run";
        if (!wr || read_staged(sv, wr, path, &data, &len, &why) != 0) {
            say(sv, "warning: checkpoint %u: %s %s: not copied", e, path,
                why);
            continue;
        }
        /* the staged file, copied into the output folder (atomically) */
        if ((snprintf(path, sizeof path, "%s/%s", sv->ckptdir, de->d_name),
             write_file_atomic(path, data, len) != 0)) {
            free(data);
            bad = 1;
            break;
        }
        crypto_generichash(h, sizeof h, (const unsigned char *)data, len,
                           NULL, 0);
        free(data);
        sodium_bin2hex(hex, sizeof hex, h, sizeof h);
        ss_buf_printf(&b, "%s{\"name\":", nfiles++ ? "," : "");
        ss_buf_json_str(&b, de->d_name, l);
        ss_buf_printf(&b, ",\"blake2b_256\":\"%s\"}", hex);
    }
    if (d)
        closedir(d);
    ss_buf_printf(&b, "],\"counters\":{");
    int first = 1;
    for (size_t i = 0; i < sv->nkids; i++) {
        const ss_stats *st = ss_monitor_ack(sv->mon, i, e);
        if (!st && sv->kids[i].left) /* left before: its last counters */
            st = stats_of(sv, i);
        if (!st || !strcmp(sv->kids[i].role, "router"))
            continue;
        if (!first)
            ss_buf_printf(&b, ",");
        first = 0;
        put_counters(&b, sv->kids[i].name, st);
    }
    for (size_t v = 0; v < sv->plan->nvirt; v++) {
        const ss_stats *st = ss_monitor_ack(sv->mon, sv->nkids + v, e);
        if (!st)
            continue;
        if (!first)
            ss_buf_printf(&b, ",");
        first = 0;
        put_counters(&b, sv->plan->virt[v].name, st);
    }
    /* each stage's worker count and key-group ranges at this epoch: a
     * resume with another count knows N (ss_ckresume_stage) */
    ss_buf_printf(&b, "},\"stages\":{");
    for (size_t s = 0; s < sv->p->nstages; s++) {
        const ss_stage_conf *sc = &sv->p->stages[s];
        ss_buf_printf(&b, "%s", s ? "," : "");
        ss_buf_json_str(&b, sc->name, strlen(sc->name));
        int nw = workers_of(sv, s);
        ss_buf_printf(&b, ":{\"workers\":%d,\"partitioned\":%s,"
                      "\"stateful\":%s", nw,
                      sc->partition_by ? "true" : "false",
                      stage_stateful(sv, (int)s) ? "true" : "false");
        if (sc->partition_by) {
            ss_buf_printf(&b, ",\"ranges\":[");
            for (int w = 0; w < nw; w++) {
                int lo, hi;
                ss_partition_range((uint32_t)w, (uint32_t)nw, &lo, &hi);
                ss_buf_printf(&b, "%s[%d,%d]", w ? "," : "", lo, hi);
            }
            ss_buf_printf(&b, "]");
        }
        ss_buf_printf(&b, "}");
    }
    ss_buf_printf(&b, "}}\n");
    char fin[PATH_MAX];
    snprintf(fin, sizeof fin, "%s/manifest.json", sv->ckptdir);
    if (bad || write_file_atomic(fin, b.data, b.len) != 0) {
        say(sv, "warning: checkpoint %u: cannot write %s: %s", e,
            bad ? path : fin, strerror(errno));
        ss_buf_release(&b);
        return -1;
    }
    ss_buf_release(&b);
    return 0;
}

/* Completes the newest epoch every component acknowledged (see above). */
static void coordinate(ss_supervisor *sv)
{
    if (!sv->ckptdir || sv->restarting || sv->result != SS_RUN_OK)
        return;
    const ss_monitor_comp *sk = ss_monitor_get(sv->mon, (size_t)sv->sink);
    if (!sk)
        return;
    uint32_t best = 0;
    unsigned have = sk->nacks < SS_MONITOR_ACKS ? sk->nacks : SS_MONITOR_ACKS;
    for (unsigned k = 0; k < have; k++) {
        uint32_t e = sk->ack_epoch[k];
        if (e > sv->ckpt_max)
            sv->ckpt_max = e;
        if (e > sv->ckpt_epoch && e > best && epoch_complete(sv, e))
            best = e;
    }
    if (!best || write_manifest(sv, best) != 0)
        return;
    sv->ckpt_epoch = best;
    sv->ckpt_done++;
    commit_marks(sv, best);
    clear_checkpoints(sv->ckptdir, best);
    clear_checkpoints(sv->stagedir, best + 1); /* copied, or older */
    ss_debug("checkpoint %u complete", best);
    if (sv->resc_n && best > sv->resc_after)
        rescale_at_checkpoint(sv); /* sstream scale of a keyed stage */
}

/* Starts every component but the source (watch() starts it when they
 * are ready); a failure to start one stops the run. */
static void start_consumers(ss_supervisor *sv)
{
    sv->start_ns = ss_now_ns();
    for (size_t i = 0; i < sv->nkids && !sv->stopping; i++) {
        if (sig_stop_count)
            break;
        if ((int)i == sv->source || !sv->kids[i].active)
            continue; /* a spare slot, or a worker that left */
        if (start_child(sv, &sv->kids[i], sv->devnull)) {
            set_cause(sv, "cannot start %s", sv->kids[i].name);
            sv->result = SS_RUN_FAILED;
            sv->failed = 1;
            begin_stop(sv);
        }
    }
}

/* Writes data[0..n) to path in the run folder's ckpt/, which the worker
 * hosts (another uid) can write too: through a temporary file created
 * anew (O_EXCL|O_NOFOLLOW: a link planted there is never followed, the
 * write fails instead), synced, readable by the components, renamed over
 * path (a link at path is replaced, not followed). Returns 0 or -1
 * (errno). */
static int write_staged_copy(const char *path, const void *data, size_t n)
{
    char tmp[PATH_MAX + 16];
    snprintf(tmp, sizeof tmp, "%s.restore.tmp", path);
    unlink(tmp); /* a leftover (or a planted link): removed, not followed */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0644);
    if (fd < 0)
        return -1;
    int bad = ss_write_all(fd, data, n) != 0 || fsync(fd) != 0;
    int e = errno;
    bad |= close(fd) != 0;
    if (bad || rename(tmp, path) != 0) {
        e = bad ? e : errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return 0;
}

/* Enclave mode: the key service releases the data key to every enclave
 * worker with the restore grant of epoch (0: none, it starts fresh), so
 * that its enclave restores exactly the checkpoint the run resumes from
 * (docs/SECURITY.md, Snapshots); a worker of a stage that resumes with
 * another worker count (rescale_from) is granted the restore from every
 * old worker's snapshot, as its slot of the new count. Returns 0, or -1
 * (said). */
static int set_grants(ss_supervisor *sv, uint32_t epoch)
{
    if (!sv->o.grant_restore)
        return 0;
    for (size_t k = 0; k < sv->ks_n; k++) {
        ss_restore_grant g = {epoch, 0, 0, 0};
        for (size_t i = 0; epoch && i < sv->nkids; i++) {
            const child *c = &sv->kids[i];
            if (strcmp(c->name, sv->ks_names[k]) == 0 && !c->active) {
                g.epoch = 0; /* a spare slot, or one that left: it is not
                                started, and restores nothing */
                break;
            }
            if (strcmp(c->name, sv->ks_names[k]) != 0 || c->stage < 0 ||
                (size_t)c->stage >= sv->p->nstages ||
                !sv->rescale_from[c->stage])
                continue;
            const char *dash = strrchr(c->name, '-');
            g.from = sv->rescale_from[c->stage];
            g.slot = dash ? (uint32_t)strtoul(dash + 1, NULL, 10) : 0;
            g.slots = (uint32_t)workers_of(sv, (size_t)c->stage);
        }
        int rc = sv->o.grant_restore(sv->o.grant_ctx, sv->ks_names[k], &g);
        if (rc) {
            say(sv, "the key service cannot grant %s the restore of "
                "checkpoint %u: %s", sv->ks_names[k], epoch,
                ss_strerror(rc));
            return -1;
        }
    }
    return 0;
}

static void forget_resume(ss_supervisor *sv)
{
    for (size_t s = 0; sv->rescale_env && s < sv->p->nstages; s++) {
        sv->rescale_env[s][0] = '\0';
        sv->rescale_from[s] = 0;
    }
    free(sv->resume_parts_env);
    free(sv->resume_streams_env);
    sv->resume_parts_env = sv->resume_streams_env = NULL;
    sv->restore_env[0] = '\0';
    sv->resumed_from = 0;
}

/* A restart from the last complete checkpoint (after ss_monitor_reset):
 * checks the manifest (ss_ckresume_load), puts the snapshots back where
 * the workers and the sink read them, sets the resume points of the
 * source, routers and sink (their environment, child_env) and the
 * counters each component continues from. The sink's marks of the
 * checkpoint must be committed (commit_marks: what it wrote after them
 * is cut away, cut_to_commit). Returns 0, or -1 when the restart goes
 * from the start (said). */
static int prepare_resume(ss_supervisor *sv)
{
    forget_resume(sv);
    if (sv->spool_fd < 0 && sv->sink_lines) {
        /* not spooled (no --restarts: a rescale): shown as it came */
        say(sv, "checkpoint %u is not used: the sink had printed results "
            "already; restarting from the start instead", sv->ckpt_epoch);
        return -1;
    }
    if (sv->spool_fd >= 0 && sv->commit_epoch != sv->ckpt_epoch) {
        say(sv, "checkpoint %u is not used: the sink's acknowledgement of "
            "it had no marks of its output (how far its stdout and OUTPUT "
            "went), so what it wrote after it cannot be cut away; "
            "restarting from the start instead", sv->ckpt_epoch);
        return -1;
    }
    ss_ckresume r;
    char err[1024];
    int rc = ss_ckresume_load(sv->ckptdir, sv->run, sv->ckpt_epoch, &r, err,
                              sizeof err);
    if (rc) {
        say(sv, "checkpoint %u is refused: %s; restarting from the start "
            "instead", sv->ckpt_epoch, err);
        return -1;
    }
    /* a stage whose worker count differs from the checkpoint's: a
     * partitioned one moves its key groups (each new worker restores its
     * range from every old worker's snapshot), a stateful one dealt by
     * credit cannot (its state is not per key) */
    for (size_t s = 0; s < sv->p->nstages && !rc; s++) {
        const ss_stage_conf *sc = &sv->p->stages[s];
        ss_ckresume_stage_info si;
        if (!ss_ckresume_stage(&r, sc->name, &si) ||
            si.workers == (unsigned)workers_of(sv, s) || !si.stateful)
            continue;
        if (!si.partitioned || !sc->partition_by) {
            say(sv, "checkpoint %u is not used: stage %s had %u worker(s) "
                "at the checkpoint and has %d now, and its state is not "
                "per key group (%s): it cannot be rescaled; restarting from "
                "the start instead", sv->ckpt_epoch, sc->name, si.workers,
                workers_of(sv, s), si.partitioned ? "it is not partitioned now"
                                            : "no partition_by");
            rc = -1;
            break;
        }
        /* stages chained after it in one Lua state: the chain keeps one
         * state per worker (ss_stage.h, keyed state), not per group */
        int chained = 0;
        for (size_t v = 0; v < sv->plan->nvirt && ss_chain_shared_wanted();
             v++)
            chained |= sv->kids[sv->plan->virt[v].host].stage == (int)s;
        if (chained) {
            say(sv, "checkpoint %u is not used: stage %s had %u worker(s) "
                "at the checkpoint and has %d now, and its workers run the "
                "stages chained after it in one Lua state, which keeps one "
                "state per worker, not per key group: it cannot be "
                "rescaled; restarting from the start instead",
                sv->ckpt_epoch, sc->name, si.workers, workers_of(sv, s));
            rc = -1;
            break;
        }
        sv->rescale_from[s] = si.workers;
        snprintf(sv->rescale_env[s], sizeof sv->rescale_env[s],
                 "SS_RESTORE_WORKERS=%u", si.workers);
        say(sv, "stage %s resumes on %d worker(s) from the snapshots of "
            "its %u worker(s) at checkpoint %u: each takes its key groups",
            sc->name, workers_of(sv, s), si.workers, sv->ckpt_epoch);
    }
    /* the snapshots, checked against the manifest, back into the folder
     * the components read (they check them again when they restore) */
    for (size_t i = 0; i < r.nsnaps && !rc; i++) {
        char from[PATH_MAX], to[PATH_MAX];
        snprintf(from, sizeof from, "%s/%s", sv->ckptdir, r.snaps[i]);
        snprintf(to, sizeof to, "%s/%s", sv->stagedir, r.snaps[i]);
        char *data = NULL;
        size_t len = 0;
        if (ss_read_file(from, (64u << 20) + 65536, &data, &len) != 0 ||
            write_staged_copy(to, data, len) != 0) {
            say(sv, "checkpoint %u is not used: cannot copy %s to %s: %s; "
                "restarting from the start instead", sv->ckpt_epoch, from,
                to, strerror(errno));
            rc = -1;
        }
        free(data);
    }
    if (!rc && (asprintf(&sv->resume_parts_env, "SS_RESUME_PARTS=%s",
                         r.parts) < 0 ||
                asprintf(&sv->resume_streams_env, "SS_RESUME_STREAMS=%s",
                         r.streams) < 0)) {
        sv->resume_parts_env = sv->resume_streams_env = NULL;
        rc = -1;
    }
    for (size_t i = 0; !rc && i < sv->nkids; i++) {
        ss_stats base;
        const child *c = &sv->kids[i];
        if (!strcmp(c->role, "router"))
            continue;
        if (ss_ckresume_counters(&r, c->name, &base)) {
            ss_monitor_set_base(sv->mon, i, &base);
            continue;
        }
        /* a worker that a rescaled stage did not have at the checkpoint
         * starts from 0 (the counters of the old workers that are gone
         * are the rescaling coordinator's to keep in the books) */
        if (c->stage >= 0 && (size_t)c->stage < sv->p->nstages &&
            sv->rescale_from[c->stage] && !strcmp(c->role, "worker"))
            continue;
        /* nor has a spare slot never started, nor one started by sstream
         * scale after the checkpoint: it had done nothing before it */
        if (c->stage >= 0 && ((!c->active && !c->left) ||
                              (c->scaled && c->active)))
            continue;
        if (c->was_lost) {
            /* killed while its stage went on: its router dealt the
             * batches it held to the others, maybe after they had passed
             * this checkpoint's barrier (its state would miss them) */
            say(sv, "checkpoint %u is not used: %s was killed before it "
                "took part in it, and its router dealt the batches it held "
                "to the others, maybe after they had passed its barrier "
                "(rows a resume from it would lose); restarting from the "
                "start instead", sv->ckpt_epoch, c->name);
            rc = -1;
        } else if (!c->lost) {
            say(sv, "checkpoint %u is not used: it has no counters of %s; "
                "restarting from the start instead", sv->ckpt_epoch,
                sv->kids[i].name);
            rc = -1;
        }
    }
    for (size_t v = 0; !rc && v < sv->plan->nvirt; v++) {
        ss_stats base;
        const ss_plan_virt *pv = &sv->plan->virt[v];
        if (ss_ckresume_counters(&r, pv->name, &base))
            ss_monitor_set_base(sv->mon, sv->nkids + v, &base);
        else if (!sv->kids[pv->host].lost) {
            say(sv, "checkpoint %u is not used: it has no counters of the "
                "chained stage %s; restarting from the start instead",
                sv->ckpt_epoch, pv->name);
            rc = -1;
        }
    }
    ss_ckresume_release(&r);
    if (!rc && set_grants(sv, sv->ckpt_epoch) != 0) {
        say(sv, "checkpoint %u is not used; restarting from the start "
            "instead", sv->ckpt_epoch);
        rc = -1;
    }
    if (rc) {
        forget_resume(sv);
        ss_monitor_reset(sv->mon);
        return -1;
    }
    snprintf(sv->restore_env, sizeof sv->restore_env, "SS_RESTORE_EPOCH=%u",
             sv->ckpt_epoch);
    sv->resumed_from = sv->ckpt_epoch;
    return 0;
}

/* Recovery, once every child of the killed incarnation is gone: cuts
 * the sink's outputs back to what was committed, forgets every counter
 * and rejects file of the dead incarnation (they are counted again from
 * the start), and starts the pipeline again, under the same run id and
 * keys. */
static void restart(ss_supervisor *sv)
{
    ss_monitor_read(sv->mon); /* what the dead sent: dropped below */
    ss_monitor_reset(sv->mon);
    for (size_t i = 0; i < sv->nkids; i++) {
        child *c = &sv->kids[i];
        if (c->err_fd >= 0) /* the rest of what it said, to its log */
            read_pipe(sv, c, 1);
        if (c->out_fd >= 0)
            read_pipe(sv, c, 0);
        if (c->err_fd >= 0)
            close(c->err_fd);
        if (c->out_fd >= 0)
            close(c->out_fd);
        c->err_fd = c->out_fd = -1;
        if (c->log_fd >= 0)
            close(c->log_fd);
        c->log_fd = -1;
        ss_buf_reset(&c->err_line);
        ss_buf_reset(&c->out_line);
        c->pid = 0;
        c->was_lost = c->lost;
        c->exited = c->status = c->lost = 0;
        c->first_error[0] = '\0';
        if (c->leaving) { /* killed as it left: it stays out */
            c->leaving = 0;
            c->active = 0;
            c->left = 1;
        }
    }
    /* before the sink's held output is emptied: it must be empty */
    int resumed = sv->ckpt_epoch && !resume_refused(sv) &&
                  prepare_resume(sv) == 0;
    for (size_t i = 0; resumed && i < sv->nkids; i++)
        if (sv->kids[i].left && !sv->kids[i].active)
            ss_monitor_show_base(sv->mon, i); /* its rows before it */
    if (!resumed) {
        forget_resume(sv);
        /* from the start: no enclave may restore anything (a grant
         * left over is harmless: nobody is told to restore, and an
         * enclave that restored nothing takes every epoch) */
        (void)set_grants(sv, 0);
        if (restart_committed(sv) != 0) {
            sv->result = SS_RUN_FAILED;
            sv->failed = 1;
            sv->restarting = 0; /* watch() ends: every child is gone */
            return;
        }
        clear_stale_rejects(sv, 1); /* emptied: owners and modes stay */
    } else {
        cut_to_commit(sv);
    }
    /* checkpoints of the new incarnation have epochs above any issued
     * before (its source starts counting from there) */
    if (sv->ckptdir)
        snprintf(sv->epoch_env, sizeof sv->epoch_env,
                 "SS_CHECKPOINT_BASE=%u",
                 sv->ckpt_max > sv->ckpt_epoch ? sv->ckpt_max
                                               : sv->ckpt_epoch);
    sv->ckpt_done = 0;
    sv->lost = 0;
    sv->done = 0;
    sv->finish_ns = 0;
    sv->stopping = sv->killed = sv->restarting = 0;
    sv->source_started = 0;
    sv->cause_child = NULL;
    start_consumers(sv);
}

/* The sink completed (exit 0): what it printed after its last committed
 * checkpoint, held while a restart could still undo it, goes to the
 * run's stdout. */
static void commit_output(ss_supervisor *sv)
{
    struct stat st;
    if (sv->spool_fd >= 0 && fstat(sv->spool_fd, &st) == 0)
        show_committed(sv, (int64_t)st.st_size);
}

/* A deferred failure (on_exit_status): dropped when a restart began
 * (the error exit was an effect of the kill) or the run is stopping
 * anyway; once due (or when nothing runs any more: force), the first
 * deferred component fails the run. */
static void failure_due(ss_supervisor *sv, int force)
{
    if (!sv->defer_ns)
        return;
    int drop = sv->restarting || sv->stopping;
    if (!drop && !force && ss_now_ns() < sv->defer_ns)
        return;
    sv->defer_ns = 0;
    child *first = NULL;
    for (size_t i = 0; i < sv->nkids; i++) {
        if (sv->kids[i].deferred && !first)
            first = &sv->kids[i];
        sv->kids[i].deferred = 0;
    }
    if (first && !drop)
        fail_exit(sv, first, first->status);
}

/* The main loop: starts the source once the consumers are ready, and
 * runs until every child exited. */
static void watch(ss_supervisor *sv, zmq_pollitem_t *items, int *owner)
{
    sig_atomic_t seen = 0;
    for (;;) {
        poll_once(sv, items, owner, POLL_MS);
        read_control(sv);
        /* deaths first: once a component died (a restart begins), no
         * epoch completes any more in this incarnation, also when the
         * acknowledgements that would complete one were read in the same
         * turn (a stopped and continued supervisor, a loaded machine) */
        reap(sv);
        failure_due(sv, 0);
        coordinate(sv);
        uint64_t now = ss_now_ns();
        if (sig_stop_count != seen) {
            child *src = sv->source >= 0 ? &sv->kids[sv->source] : NULL;
            if (!sv->stopping && !sv->source_stopped && sv->p->source.follow &&
                src && (!sv->source_started || (src->running && src->pid > 0))) {
                /* an unbounded input ends when asked: the source ends its
                 * stream cleanly and the run finishes with what it read;
                 * asked before the source started (the consumers still
                 * starting), it starts stopped: an empty stream */
                say(sv, "interrupted; ending the followed input: the run "
                        "finishes with what was read (interrupt again to "
                        "abort)");
                sv->source_stopped = 1;
                if (sv->source_started)
                    stop_source(src);
                else
                    sv->stop_source_at_start = 1;
            } else if (!sv->stopping || sv->restarting) {
                sv->restarting = 0; /* no restart after an interrupt */
                say(sv, "interrupted; stopping every component");
                set_cause(sv, "interrupted (Ctrl-C, or a signal)");
                sv->result = SS_RUN_INTERRUPTED;
                begin_stop(sv);
            } else if (!sv->killed) {
                signal_all(sv, SIGKILL);
                sv->killed = 1;
            }
            seen = sig_stop_count;
        }
        if (sv->o.timeout_s > 0 && (!sv->stopping || sv->restarting) &&
            (double)(now - sv->t0) / 1e9 >= sv->o.timeout_s) {
            say(sv, "timed out after %g s; stopping every component",
                sv->o.timeout_s);
            set_cause(sv, "timed out after %g s (--timeout)",
                      sv->o.timeout_s);
            sv->result = SS_RUN_TIMEOUT;
            sv->restarting = 0;
            begin_stop(sv);
        }
        if (!sv->source_started && !sv->stopping &&
            (consumers_ready(sv) || now - sv->start_ns >= sv->ready_ns)) {
            sv->source_started = 1;
            if (start_child(sv, &sv->kids[sv->source], sv->devnull)) {
                set_cause(sv, "cannot start the source");
                sv->result = SS_RUN_FAILED;
                sv->failed = 1;
                begin_stop(sv);
            } else if (sv->stop_source_at_start) {
                /* pending in it until its handler takes it (exec_child) */
                sv->stop_source_at_start = 0;
                stop_source(&sv->kids[sv->source]);
            }
        }
        size_t alive = running_count(sv);
        if (!alive && sv->defer_ns)
            failure_due(sv, 1);
        if (!alive && sv->restarting) {
            restart(sv);
            continue;
        }
        if (!alive)
            return;
        if (sv->finish_ns && !sv->stopping && now > sv->finish_ns &&
            now - sv->finish_ns > FINISH_GRACE_NS) {
            say(sv, "%zu component(s) still running %llu s after the sink "
                    "finished; stopping them", alive,
                (unsigned long long)(FINISH_GRACE_NS / 1000000000ull));
            begin_stop(sv);
        }
        now = ss_now_ns(); /* begin_stop above may have set stop_ns */
        if (sv->stopping && !sv->killed && now > sv->stop_ns &&
            now - sv->stop_ns > STOP_GRACE_NS) {
            signal_all(sv, SIGKILL);
            sv->killed = 1;
        }
        if (sv->progress && !sv->stopping &&
            now - sv->pg.last_draw >= DRAW_EVERY_NS)
            draw_progress(sv, now);
        ss_monitor_flush(sv->mon); /* readable while the run goes on */
    }
}

/* The sink did not complete: what it wrote after its last committed
 * checkpoint is not shown, and its OUTPUT goes back to its committed
 * length. */
static void uncommitted(ss_supervisor *sv)
{
    struct stat st;
    if (fstat(sv->spool_fd, &st) == 0 && (int64_t)st.st_size > sv->shown) {
        if (sv->commit_epoch)
            say(sv, "the sink did not complete: what it printed after "
                    "checkpoint %u was not committed, and is not shown",
                sv->commit_epoch);
        else
            say(sv, "the sink did not complete: what it printed was not "
                    "committed, and is not shown");
    }
    if (sv->output_path)
        (void)cut_file(sv, sv->output_path, sv->commit_output);
}

/* The counts did not balance: the results are wrong. What the sink
 * printed and was not shown yet (its spool after the last committed
 * checkpoint: a sink that completed) is held back; what was shown stays
 * shown, and the run says that it is wrong too. */
static void mismatch_output(ss_supervisor *sv, int sink_ok)
{
    struct stat st;
    int held = sink_ok && sv->spool_fd >= 0 &&
               fstat(sv->spool_fd, &st) == 0 &&
               (int64_t)st.st_size > sv->shown;
    if (held)
        say(sv, "the results are wrong: what the sink printed after %s is "
                "not shown", sv->commit_epoch ? "its last committed checkpoint"
                                              : "the start");
    if (sv->shown > 0 || sv->spool_fd < 0) /* not spooled: shown */
        say(sv, "the results are wrong: what the sink printed (on the "
                "standard output) comes from counts that do not balance");
    else if (!held)
        say(sv, "the results are wrong: the counts do not balance");
}

/* See ss_supervisor.h. */
int ss_supervisor_run(ss_supervisor *sv)
{
    if (sv->ran)
        return SS_RUN_FAILED;
    sv->ran = 1;
    sv->result = SS_RUN_OK;
    if (sv->uid_warning[0] && !sv->o.quiet)
        say(sv, "%s", sv->uid_warning);
    sv->progress = !sv->o.quiet && !sv->o.no_progress && isatty(2);
    /* a child in its own process group must not write to the terminal
     * itself (SIGTTOU with `stty tostop`): relay the sink's results */
    sv->relay_stdout = isatty(1);
    struct winsize ws;
    if (sv->progress && ioctl(2, TIOCGWINSZ, &ws) == 0)
        sv->pg.cols = ws.ws_col;

    zmq_pollitem_t *items = calloc(3 + 2 * sv->nkids, sizeof *items);
    int *owner = calloc(3 + 2 * sv->nkids, sizeof *owner);
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (!items || !owner || devnull < 0) {
        say(sv, "out of resources");
        free(items);
        free(owner);
        if (devnull >= 0)
            close(devnull);
        return SS_RUN_FAILED;
    }
    char err[512];
    int rc = 0;
    /* the control channel admits the run's components only */
    ss_monitor_auth auth = {{ss_runkeys_monitor_pub(sv->rk),
                             ss_runkeys_monitor_sec(sv->rk), sv->pubs,
                             sv->names, sv->nkids},
                            sv->kids[sv->sink].name};
    if (!(rc = ss_monitor_new(sv->plan->control, sv->o.metrics, &auth,
                              &sv->mon, err, sizeof err))) {
        for (size_t i = 0; i < sv->nkids && !rc; i++)
            if (ss_monitor_add(sv->mon, sv->kids[i].name) < 0) {
                snprintf(err, sizeof err, "out of memory");
                rc = SS_ENOMEM;
            }
        /* the chained stages' names, after the kids (vstats_of) */
        for (size_t v = 0; v < sv->plan->nvirt && !rc; v++)
            if (ss_monitor_add_hosted(
                    sv->mon, sv->plan->virt[v].name,
                    sv->kids[sv->plan->virt[v].host].name) < 0) {
                snprintf(err, sizeof err, "out of memory");
                rc = SS_ENOMEM;
            }
    }
    if (rc) {
        say(sv, "%s", err);
        free(items);
        free(owner);
        close(devnull);
        return SS_RUN_FAILED;
    }
    raise_nofile();

    struct sigaction sa, old_int, old_term, old_hup, old_chld;
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        say(sv, "pipe: %s", strerror(errno));
        free(items);
        free(owner);
        close(devnull);
        return SS_RUN_FAILED;
    }
    sig_stop_count = 0;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGHUP, &sa, &old_hup);
    sigaction(SIGCHLD, &sa, &old_chld);

    sv->t0 = ss_now_ns();
    ss_monitor_start(sv->mon, sv->t0);
    sv->devnull = devnull;
    uint64_t ready_ms = READY_MS;
    const char *rm = ss_env("SS_RUN_READY_MS", NULL);
    if (rm && ss_parse_u64(rm, 0, 600000, 0, &ready_ms))
        ready_ms = READY_MS;
    sv->ready_ns = ready_ms * 1000000ull;
    if (sv->o.scale_slots != 0 || sv->o.name) /* sstream scale NAME ... */
        open_control(sv);
    /* everything but the source; watch() starts it when they are ready */
    start_consumers(sv);
    watch(sv, items, owner);
    close_control(sv);

    /* drain what the children left in their pipes and final samples */
    uint64_t end = ss_now_ns();
    while ((pipes_open(sv) || (!sv->stopping && finals_missing(sv))) &&
           ss_now_ns() - end < 1000ull * 1000000ull)
        poll_once(sv, items, owner, 50);
    read_control(sv);
    coordinate(sv); /* the sink's last acknowledgement */
    for (size_t i = 0; i < sv->nkids; i++) {
        child *c = &sv->kids[i];
        if (c->err_fd >= 0) {
            close(c->err_fd);
            c->err_fd = -1;
        }
        if (c->out_fd >= 0) {
            close(c->out_fd);
            c->out_fd = -1;
        }
    }
    reap_spawners(sv);
    clear_progress(sv);
    const child *sk = &sv->kids[sv->sink];
    /* a sink that completed: the rest of its spool is shown once the
     * books balance (below), not before */
    int sink_ok = sk->exited && WIFEXITED(sk->status) &&
                  WEXITSTATUS(sk->status) == 0;
    if (!sink_ok && sv->spool_fd >= 0)
        uncommitted(sv);

    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    sigaction(SIGCHLD, &old_chld, NULL);
    close(sig_pipe[0]);
    close(sig_pipe[1]);
    sig_pipe[0] = sig_pipe[1] = -1;
    close(devnull);
    free(items);
    free(owner);

    char *rpath = NULL;
    long nlines = 0;
    long nrej = merge_rejects(sv, &rpath, &nlines);
    if (nrej < 0)
        say(sv, "cannot write %s", rpath ? rpath : "rejects.jsonl");
    if (sv->result == SS_RUN_OK) {
        if (!sv->done)
            say(sv, "warning: the sink never called sendZmqCompleted()");
        if (summary(sv, nrej, nlines, rpath) != 0) {
            say(sv, "the counts do not balance: failing the run");
            mismatch_output(sv, sink_ok);
            sink_ok = 0;
            set_cause(sv, "the counts do not balance (see the summary): "
                      "the results are wrong");
            sv->result = SS_RUN_FAILED;
        } else {
            char m[512];
            int r = ss_accounting_rejects(&sv->books,
                                          sv->p->max_reject_ratio, m,
                                          sizeof m);
            const ss_stats *snk = stats_of(sv, (size_t)sv->sink);
            if (snk && snk->rejected)
                say(sv, "warning: the sink's script failed on %llu of the "
                        "%llu results it received: they are not in the "
                        "output (reasons in rejects.jsonl)",
                    (unsigned long long)snk->rejected,
                    (unsigned long long)snk->in);
            if (r == SS_ACCT_REJECTS_WARN) {
                say(sv, "warning: %s", m);
            } else if (r == SS_ACCT_REJECTS_FAIL) {
                set_cause(sv, "%s", m);
                sv->result = SS_RUN_FAILED;
            }
        }
    }
    free(rpath);
    if (sink_ok)
        commit_output(sv);
    if (sv->result != SS_RUN_OK) {
        /* the last line says why, whatever scrolled by before it */
        if (sv->muted)
            say(sv, "(%zu message(s) of the other components as they "
                    "stopped are in %s/)", sv->muted, sv->logdir);
        int stopped = sv->result == SS_RUN_INTERRUPTED ||
                      sv->result == SS_RUN_TIMEOUT;
        say(sv, "%s %s %s", sv->p->name,
            stopped ? "stopped:" : "failed because",
            sv->cause[0] ? sv->cause : "a component failed (see above)");
    }
    if (ss_monitor_close_metrics(sv->mon) != 0)
        say(sv, "metrics file '%s': %s", sv->o.metrics, strerror(errno));
    return sv->result;
}

/* See ss_supervisor.h. */
void ss_supervisor_destroy(ss_supervisor **pp)
{
    if (!pp || !*pp)
        return;
    ss_supervisor *sv = *pp;
    for (size_t i = 0; i < sv->nkids; i++) {
        child *c = &sv->kids[i];
        if (c->running && c->pid > 0) { /* never left behind */
            kill(-c->pid, SIGKILL);
            kill(c->pid, SIGKILL);
            waitpid(c->pid, NULL, 0);
        }
        if (c->err_fd >= 0)
            close(c->err_fd);
        if (c->out_fd >= 0)
            close(c->out_fd);
        if (c->log_fd >= 0)
            close(c->log_fd);
        ss_buf_release(&c->err_line);
        ss_buf_release(&c->out_line);
    }
    close_control(sv);
    free(sv->cur_workers);
    free(sv->kids);
    free(sv->stage_names);
    if (sv->spool_fd >= 0) {
        close(sv->spool_fd);
        if (sv->spool_path)
            unlink(sv->spool_path); /* committed, or reported */
    }
    free(sv->spool_path);
    free(sv->output_path);
    forget_rejects_marks(sv);
    free(sv->ckptdir);
    free(sv->stagedir);
    forget_resume(sv);
    free(sv->rescale_env);
    free(sv->rescale_from);
    ss_monitor_destroy(&sv->mon);
    ss_runkeys_destroy(&sv->rk);
    free(sv->self);
    free(sv->names);
    free(sv->pubs);
    free(sv->ks_allow);
    free(sv->ks_names);
    ss_plan_destroy(&sv->plan);
    free(sv->exe);
    free(sv->argv0);
    if (sv->out_lock >= 0)
        close(sv->out_lock); /* releases the folder */
    free(sv->outdir);
    free(sv->logdir);
    free(sv->rejdir);
    free(sv);
    *pp = NULL;
}
