/*
 * ss_supervisor.c - the processes of `sstream run`: plan, start, watch,
 * stop, report (see ss_supervisor.h).
 */
#include "run/ss_supervisor.h"
#include "core/ss_buf.h"
#include "core/ss_util.h"
#include "run/ss_metrics_http.h"
#include "run/ss_stats.h"
#include "securestreams.h"
#include "wire/ss_batch.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
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
#define LINE_MAX_RELAY 4096

extern char **environ;

/* A NULL-terminated vector of owned strings. */
typedef struct strv {
    char **v;
    size_t n, cap;
} strv;

static int strv_push(strv *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int strv_push(strv *s, const char *fmt, ...)
{
    if (s->n + 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        char **v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return SS_ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    int rc = vasprintf(&s->v[s->n], fmt, ap);
    va_end(ap);
    if (rc < 0)
        return SS_ENOMEM;
    s->v[++s->n] = NULL;
    return 0;
}

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

typedef struct child {
    char name[SS_STATS_NAME_MAX];
    const char *role; /* static: "router", "source", "worker", "sink" */
    int stage;        /* stage index for workers, else -1 */
    char **argv;      /* owned */
    char **env;       /* owned: "KEY=value" added to the environment */
    char *log_path;   /* stdout goes there; NULL: the sink's stdout */
    char *rejects;    /* --rejects file, NULL for routers */
    pid_t pid;
    int running;
    int status; /* wait status once exited */
    int exited;
    double cpu_s; /* user + system time once exited (its children too) */
    int lost;   /* a worker that died while its stage went on */
    int err_fd, out_fd; /* read ends of stderr / relayed stdout, or -1 */
    ss_buf err_line, out_line;
    ss_stats st;
    int have_st;
    uint64_t st_ns; /* when st arrived */
    double ev_rate, byte_rate;
} child;

struct ss_supervisor {
    const ss_pipeline *p;
    ss_run_opts o;
    char *exe;   /* what to execve */
    char *argv0; /* argv[0] of the children */
    char *outdir, *logdir, *rejdir;
    char *tmpdir; /* endpoint folder (ipc), or NULL */
    char *control;
    strv endpoints; /* 2 per router: from (producers), to (consumers) */
    child *kids;
    size_t nkids;
    size_t lost; /* workers that died while their stage went on */
    int sink, source; /* indices in kids */
    void *zctx, *pull;
    FILE *metrics;
    int progress, relay_stdout, shown, cols;
    uint64_t t0, last_draw, finish_ns, stop_ns;
    double epoch0;
    int done, stopping, killed, result, failed;
    int ran, source_started, devnull;
    uint64_t ready_ns;
};

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

static double realtime_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- output to the terminal ------------------------------------------ */

static void clear_progress(ss_supervisor *sv)
{
    if (sv->shown) {
        fputs("\r\033[K", stderr);
        sv->shown = 0;
    }
}

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

/* Makes the private folder of the ipc endpoints. */
static int make_tmpdir(ss_supervisor *sv)
{
    const char *base = ss_env("TMPDIR", "/tmp");
    char tmpl[PATH_MAX];
    /* ipc paths must fit sun_path (108 bytes) */
    if (strlen(base) > 60)
        base = "/tmp";
    snprintf(tmpl, sizeof tmpl, "%s/sstream-run-XXXXXX", base);
    if (!mkdtemp(tmpl)) {
        snprintf(tmpl, sizeof tmpl, "/tmp/sstream-run-XXXXXX");
        if (!mkdtemp(tmpl))
            return SS_EIO;
    }
    sv->tmpdir = strdup(tmpl);
    return sv->tmpdir ? 0 : SS_ENOMEM;
}

/* Picks n distinct free loopback ports (all held open while choosing). */
static int free_ports(size_t n, int *ports)
{
    int *fds = calloc(n ? n : 1, sizeof *fds);
    if (!fds)
        return SS_ENOMEM;
    int rc = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof a) ||
            getsockname(fds[i], (struct sockaddr *)&a, &len)) {
            rc = SS_EIO;
            i++;
            break;
        }
        ports[i] = ntohs(a.sin_port);
    }
    for (size_t j = 0; j < i; j++)
        if (fds[j] >= 0)
            close(fds[j]);
    free(fds);
    return rc;
}

static int make_endpoints(ss_supervisor *sv, size_t nrouters)
{
    int rc;
    if (!sv->o.tcp) {
        if ((rc = make_tmpdir(sv)))
            return rc;
        for (size_t r = 1; r <= nrouters; r++)
            if ((rc = strv_push(&sv->endpoints, "ipc://%s/r%zu-in",
                                sv->tmpdir, r)) ||
                (rc = strv_push(&sv->endpoints, "ipc://%s/r%zu-out",
                                sv->tmpdir, r)))
                return rc;
        return asprintf(&sv->control, "ipc://%s/control", sv->tmpdir) < 0
                   ? SS_ENOMEM
                   : 0;
    }
    int *ports = calloc(2 * nrouters, sizeof *ports);
    if (!ports)
        return SS_ENOMEM;
    rc = free_ports(2 * nrouters, ports);
    for (size_t i = 0; !rc && i < 2 * nrouters; i++)
        rc = strv_push(&sv->endpoints, "tcp://127.0.0.1:%d", ports[i]);
    free(ports);
    if (!rc)
        rc = (sv->control = strdup("tcp://127.0.0.1:*")) ? 0 : SS_ENOMEM;
    return rc;
}

/* Endpoint where router r (from 1) listens for producers / consumers. */
static const char *ep_from(ss_supervisor *sv, size_t r)
{
    return sv->endpoints.v[2 * (r - 1)];
}
static const char *ep_to(ss_supervisor *sv, size_t r)
{
    return sv->endpoints.v[2 * (r - 1) + 1];
}

static child *add_child(ss_supervisor *sv, const char *name,
                        const char *role, int stage)
{
    child *c = &sv->kids[sv->nkids++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->role = role;
    c->stage = stage;
    c->err_fd = c->out_fd = -1;
    ss_buf_init(&c->err_line);
    ss_buf_init(&c->out_line);
    return c;
}

/* Sets the log and rejects paths of c; removes stale files. */
static int child_files(ss_supervisor *sv, child *c, int log, int rejects)
{
    if (log && asprintf(&c->log_path, "%s/%s.log", sv->logdir, c->name) < 0)
        return SS_ENOMEM;
    if (rejects) {
        if (asprintf(&c->rejects, "%s/%s.jsonl", sv->rejdir, c->name) < 0)
            return SS_ENOMEM;
        unlink(c->rejects);
    }
    return 0;
}

/* Appends the security options of a source, worker or sink: --security,
 * and outside plain mode the key directory, the key service and enclave
 * backend (workers), and --ordered (the sink, when every stage has one
 * worker, so every stream keeps its order on the way). */
static int push_security(const ss_supervisor *sv, strv *a, const char *role)
{
    const ss_pipeline *p = sv->p;
    int plain = strcmp(p->security, "plain") == 0;
    if (plain && strcmp(role, "worker") != 0)
        return 0;
    int rc = strv_push(a, "--security");
    if (!rc)
        rc = strv_push(a, "%s", p->security);
    if (rc || plain)
        return rc;
    if (sv->o.keys && ((rc = strv_push(a, "--keys")) ||
                       (rc = strv_push(a, "%s", sv->o.keys))))
        return rc;
    if (strcmp(role, "worker") == 0 &&
        strcmp(p->security, "enclave") == 0) {
        if (sv->o.keyservice &&
            ((rc = strv_push(a, "--keyservice")) ||
             (rc = strv_push(a, "%s", sv->o.keyservice))))
            return rc;
        if (sv->o.enclave && ((rc = strv_push(a, "--enclave")) ||
                              (rc = strv_push(a, "%s", sv->o.enclave))))
            return rc;
    }
    if (strcmp(role, "sink") == 0) {
        int ordered = 1;
        for (size_t s = 0; s < p->nstages; s++)
            ordered &= p->stages[s].workers == 1;
        if (ordered)
            rc = strv_push(a, "--ordered");
    }
    return rc;
}

/* Builds every component's command line and environment. */
static int plan(ss_supervisor *sv)
{
    const ss_pipeline *p = sv->p;
    size_t nrouters = p->nstages + 1;
    size_t total = nrouters + 2 + (size_t)ss_pipeline_total_workers(p);
    sv->kids = calloc(total, sizeof *sv->kids);
    if (!sv->kids)
        return SS_ENOMEM;
    int rc = make_endpoints(sv, nrouters);
    if (rc)
        return rc;

    char name[SS_STATS_NAME_MAX];
    for (size_t r = 1; r <= nrouters; r++) {
        snprintf(name, sizeof name, "router-%zu", r);
        child *c = add_child(sv, name, "router", -1);
        strv a = {0}, e = {0};
        if ((rc = strv_push(&a, "%s", sv->argv0)) ||
            (rc = strv_push(&a, "router")) ||
            (rc = strv_push(&a, "--from")) ||
            (rc = strv_push(&a, "%s", ep_from(sv, r))) ||
            (rc = strv_push(&a, "--to")) ||
            (rc = strv_push(&a, "%s", ep_to(sv, r))) ||
            (rc = strv_push(&a, "--producers")) ||
            (rc = strv_push(&a, "1")) || (rc = strv_push(&a, "--name")) ||
            (rc = strv_push(&a, "%s", name)) ||
            /* CurveZMQ: the routers' pair and the allowed peers only */
            (strcmp(p->security, "plain") != 0 && sv->o.keys &&
             ((rc = strv_push(&a, "--keys")) ||
              (rc = strv_push(&a, "%s", sv->o.keys)))) ||
            (rc = strv_push(&e, "FROM=%s", ep_from(sv, r))) ||
            (rc = strv_push(&e, "TO=%s", ep_to(sv, r))))
            goto fail;
        c->argv = a.v;
        c->env = e.v;
        if ((rc = child_files(sv, c, 1, 0)))
            return rc;
        continue;
    fail:
        strv_free(a.v);
        strv_free(e.v);
        return rc;
    }

    /* the sink */
    {
        sv->sink = (int)sv->nkids;
        child *c = add_child(sv, "sink", "sink", -1);
        if ((rc = child_files(sv, c, 0, 1)))
            return rc;
        strv a = {0}, e = {0};
        const char *from = ep_to(sv, nrouters);
        if ((rc = strv_push(&a, "%s", sv->argv0)) ||
            (rc = strv_push(&a, "sink")) ||
            (rc = strv_push(&a, "%s", p->sink.script)) ||
            (rc = strv_push(&a, "--from")) ||
            (rc = strv_push(&a, "%s", from)) ||
            (rc = strv_push(&a, "--name")) || (rc = strv_push(&a, "sink")) ||
            (rc = strv_push(&a, "--rejects")) ||
            (rc = strv_push(&a, "%s", c->rejects)) ||
            (rc = push_security(sv, &a, "sink")) ||
            (rc = strv_push(&e, "FROM=%s", from)))
            goto sink_fail;
        if (p->sink.output) {
            if (p->sink.output[0] == '/')
                rc = strv_push(&e, "OUTPUT=%s", p->sink.output);
            else
                rc = strv_push(&e, "OUTPUT=%s/%s", sv->outdir,
                               p->sink.output);
            if (rc)
                goto sink_fail;
        }
        c->argv = a.v;
        c->env = e.v;
        goto sink_ok;
    sink_fail:
        strv_free(a.v);
        strv_free(e.v);
        return rc;
    sink_ok:;
    }

    for (size_t s = 0; s < p->nstages; s++) {
        const ss_stage_conf *sc = &p->stages[s];
        for (int w = 1; w <= sc->workers; w++) {
            snprintf(name, sizeof name, "%s-%d", sc->name, w);
            child *c = add_child(sv, name, "worker", (int)s);
            if ((rc = child_files(sv, c, 1, 1)))
                return rc;
            strv a = {0}, e = {0};
            const char *from = ep_to(sv, s + 1), *to = ep_from(sv, s + 2);
            if ((rc = strv_push(&a, "%s", sv->argv0)) ||
                (rc = strv_push(&a, "worker")) ||
                (rc = strv_push(&a, "%s", sc->script)) ||
                (rc = strv_push(&a, "--from")) ||
                (rc = strv_push(&a, "%s", from)) ||
                (rc = strv_push(&a, "--to")) ||
                (rc = strv_push(&a, "%s", to)) ||
                (rc = strv_push(&a, "--name")) ||
                (rc = strv_push(&a, "%s", name)) ||
                (rc = strv_push(&a, "--stage")) ||
                (rc = strv_push(&a, "%s", sc->name)) ||
                (rc = strv_push(&a, "--rejects")) ||
                (rc = strv_push(&a, "%s", c->rejects)) ||
                (rc = push_security(sv, &a, "worker")) ||
                (rc = strv_push(&e, "FROM=%s", from)) ||
                (rc = strv_push(&e, "TO=%s", to))) {
                strv_free(a.v);
                strv_free(e.v);
                return rc;
            }
            c->argv = a.v;
            c->env = e.v;
        }
    }

    /* the source */
    sv->source = (int)sv->nkids;
    child *c = add_child(sv, "source", "source", -1);
    if ((rc = child_files(sv, c, 1, 1)))
        return rc;
    strv a = {0}, e = {0};
    const char *to = ep_from(sv, 1);
    const char *file = p->source.file ? p->source.file : "";
    if ((rc = strv_push(&a, "%s", sv->argv0)) ||
        (rc = strv_push(&a, "source")) || (rc = strv_push(&a, "--to")) ||
        (rc = strv_push(&a, "%s", to)) || (rc = strv_push(&a, "--file")) ||
        (rc = strv_push(&a, "%s", file)) ||
        (rc = strv_push(&a, "--parts")) ||
        (rc = strv_push(&a, "%d", p->source.parts)) ||
        (rc = strv_push(&a, "--format")) ||
        (rc = strv_push(&a, "%s", p->source.format)) ||
        (p->source.header && (rc = strv_push(&a, "--header"))) ||
        (rc = strv_push(&a, "--batch-size")) ||
        (rc = strv_push(&a, "%llu", (unsigned long long)p->batch_size)) ||
        (rc = strv_push(&a, "--name")) || (rc = strv_push(&a, "source")) ||
        (rc = strv_push(&a, "--rejects")) ||
        (rc = strv_push(&a, "%s", c->rejects)) ||
        (rc = push_security(sv, &a, "source")) ||
        (rc = strv_push(&e, "TO=%s", to)) ||
        (rc = strv_push(&e, "DATA_FILE=%s", file))) {
        strv_free(a.v);
        strv_free(e.v);
        return rc;
    }
    c->argv = a.v;
    c->env = e.v;
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
    if (o)
        sv->o = *o;
    sv->sink = sv->source = -1;
    int rc = SS_ENOMEM;

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
    if ((rc = plan(sv))) {
        if (rc == SS_EIO)
            snprintf(err, errlen, "cannot make the endpoints: %s",
                     strerror(errno));
        else
            goto fail;
        goto fail_noerr;
    }
    *outp = sv;
    return 0;
fail:
    snprintf(err, errlen, "%s", ss_strerror(rc));
fail_noerr:
    ss_supervisor_destroy(&sv);
    return rc;
}

/* See ss_supervisor.h. */
size_t ss_supervisor_count(const ss_supervisor *sv) { return sv->nkids; }

/* See ss_supervisor.h. */
char *const *ss_supervisor_argv(const ss_supervisor *sv, size_t i)
{
    return i < sv->nkids ? sv->kids[i].argv : NULL;
}

/* ---- starting --------------------------------------------------------- */

/* Names set by the supervisor in a child's environment. */
static int overridden(const char *kv)
{
    static const char *const names[] = {"FROM=", "TO=", "DATA_FILE=",
                                        "OUTPUT=", "SS_CONTROL=", NULL};
    for (size_t i = 0; names[i]; i++)
        if (strncmp(kv, names[i], strlen(names[i])) == 0)
            return 1;
    return 0;
}

/* environ minus the overridden names, plus c's variables, SS_CONTROL and
 * LOG_LEVEL=warn unless the user set LOG_LEVEL;
 * the array is owned by the caller, the strings are borrowed except the
 * last one (control), freed by the caller too. */
static char **child_env(const ss_supervisor *sv, const child *c,
                        char **control)
{
    static char quiet_logs[] = "LOG_LEVEL=warn";
    size_t n = 0, k = 0;
    while (environ[n])
        n++;
    for (size_t i = 0; c->env && c->env[i]; i++)
        k++;
    char **v = calloc(n + k + 3, sizeof *v);
    if (!v)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++)
        if (!overridden(environ[i]))
            v[j++] = environ[i];
    for (size_t i = 0; i < k; i++)
        v[j++] = c->env[i];
    if (!getenv("LOG_LEVEL")) /* components' info lines: LOG_LEVEL=info */
        v[j++] = quiet_logs;
    if (asprintf(control, "SS_CONTROL=%s", sv->control) < 0) {
        free(v);
        return NULL;
    }
    v[j++] = *control;
    v[j] = NULL;
    return v;
}

/* Runs in the child between fork and exec: async-signal-safe calls only. */
static void exec_child(const char *exe, char **argv, char **envp, int in,
                       int outfd, int errfd, pid_t parent)
{
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
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
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (dup2(in, 0) < 0 || dup2(outfd, 1) < 0 || dup2(errfd, 2) < 0)
        _exit(127);
#ifdef CLOSE_RANGE_CLOEXEC
    close_range(3, ~0u, CLOSE_RANGE_CLOEXEC);
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

/* Starts c. Returns 0, or SS_EIO/SS_ENOMEM (reason printed). */
static int start_child(ss_supervisor *sv, child *c, int devnull)
{
    int errp[2] = {-1, -1}, outp[2] = {-1, -1}, logfd = -1;
    char *control = NULL;
    char **envp = child_env(sv, c, &control);
    if (!envp)
        return SS_ENOMEM;
    int rc = SS_EIO;
    if (pipe2(errp, O_CLOEXEC) != 0)
        goto out;
    int outfd = STDOUT_FILENO;
    if (c->log_path) {
        logfd = open(c->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                     0644);
        if (logfd < 0) {
            say(sv, "%s: %s", c->log_path, strerror(errno));
            goto out;
        }
        outfd = logfd;
    } else if (sv->relay_stdout) {
        if (pipe2(outp, O_CLOEXEC) != 0)
            goto out;
        outfd = outp[1];
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        say(sv, "cannot start %s: %s", c->name, strerror(errno));
        goto out;
    }
    if (pid == 0)
        exec_child(sv->exe, c->argv, envp, devnull, outfd, errp[1], parent);
    setpgid(pid, pid); /* also done by the child: no race either way */
    c->pid = pid;
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
    clear_progress(sv);
    if (is_err) {
        fprintf(stderr, "[%s] %.*s\n", c->name, (int)n, s);
        fflush(stderr);
    } else {
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

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void write_metrics(ss_supervisor *sv, const ss_stats *s, uint64_t now)
{
    FILE *f = sv->metrics;
    fprintf(f, "{\"ts\":%.3f,\"t\":%.3f,\"name\":",
            sv->epoch0 + (double)(now - sv->t0) / 1e9,
            (double)(now - sv->t0) / 1e9);
    json_str(f, s->name);
    fputs(",\"role\":", f);
    json_str(f, s->role);
    fputs(",\"stage\":", f);
    json_str(f, s->stage);
    fprintf(f,
            ",\"pid\":%lld,\"in\":%llu,\"in_bytes\":%llu,\"out\":%llu,"
            "\"out_bytes\":%llu,\"batches_in\":%llu,\"batches_out\":%llu,"
            "\"passed\":%llu,\"dropped\":%llu,\"rejected\":%llu,"
            "\"queue\":%llu,\"credits\":%llu,\"rss_kb\":%llu,"
            "\"peak_rss_kb\":%llu,\"enclave_calls\":%llu,"
            "\"enclave_ns\":%llu,\"total_bytes\":%llu,\"final\":%s}\n",
            (long long)s->pid, (unsigned long long)s->in,
            (unsigned long long)s->in_bytes, (unsigned long long)s->out,
            (unsigned long long)s->out_bytes,
            (unsigned long long)s->batches_in,
            (unsigned long long)s->batches_out,
            (unsigned long long)s->passed, (unsigned long long)s->dropped,
            (unsigned long long)s->rejected, (unsigned long long)s->queue,
            (unsigned long long)s->credits, (unsigned long long)s->rss_kb,
            (unsigned long long)s->peak_rss_kb,
            (unsigned long long)s->enclave_calls,
            (unsigned long long)s->enclave_ns,
            (unsigned long long)s->total_bytes, s->final ? "true" : "false");
}

static child *find_child(ss_supervisor *sv, const ss_stats *s)
{
    for (size_t i = 0; i < sv->nkids; i++)
        if (strcmp(sv->kids[i].name, s->name) == 0)
            return &sv->kids[i];
    for (size_t i = 0; i < sv->nkids; i++)
        if (s->pid > 0 && sv->kids[i].pid == (pid_t)s->pid)
            return &sv->kids[i];
    return NULL;
}

static void on_stats(ss_supervisor *sv, const ss_stats *s, uint64_t now)
{
    ss_metrics_http_publish(ss_metrics_global(), s); /* --metrics-port */
    if (sv->metrics)
        write_metrics(sv, s, now);
    child *c = find_child(sv, s);
    if (!c)
        return;
    if (c->have_st && now > c->st_ns) {
        double dt = (double)(now - c->st_ns) / 1e9;
        uint64_t ev = s->in >= c->st.in ? s->in - c->st.in : 0;
        uint64_t by = s->in_bytes >= c->st.in_bytes
                          ? s->in_bytes - c->st.in_bytes
                          : 0;
        if (dt > 0.05) {
            c->ev_rate = (double)ev / dt;
            c->byte_rate = (double)by / dt;
        }
    }
    c->st = *s;
    c->have_st = 1;
    c->st_ns = now;
}

static void read_control(ss_supervisor *sv)
{
    for (;;) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sv->pull, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            return;
        }
        const void *data = zmq_msg_data(&m);
        size_t n = zmq_msg_size(&m);
        ss_hdr h;
        const char *why;
        uint64_t now = ss_now_ns();
        if (ss_hdr_decode(data, n, &h, &why) == 0) {
            if (h.kind == SS_MSG_DONE) {
                if (!sv->done && !sv->finish_ns)
                    sv->finish_ns = now;
                sv->done = 1;
            } else if (h.kind == SS_MSG_STATS) {
                ss_stats s;
                if (ss_stats_decode(data, n, &s) == 0)
                    on_stats(sv, &s, now);
            }
        }
        zmq_msg_close(&m);
    }
}

/* ---- progress ----------------------------------------------------------- */

typedef struct agg {
    uint64_t in, out, passed, dropped, rejected, in_bytes;
    int stateful; /* some worker of the stage folds events (reduce...) */
    double ev_rate, byte_rate;
    size_t missing; /* components without counters */
    const child *missing_one;
} agg;

static void add_agg(agg *a, const child *c, uint64_t now)
{
    if (!c->have_st) {
        if (!a->missing++)
            a->missing_one = c;
        return;
    }
    a->in += c->st.in;
    a->out += c->st.out;
    a->passed += c->st.passed;
    a->dropped += c->st.dropped;
    a->rejected += c->st.rejected;
    a->in_bytes += c->st.in_bytes;
    if (!c->st.final && now - c->st_ns < STALE_NS) {
        a->ev_rate += c->ev_rate;
        a->byte_rate += c->byte_rate;
    }
}

static void stage_agg(const ss_supervisor *sv, int stage, agg *a,
                      uint64_t now)
{
    memset(a, 0, sizeof *a);
    for (size_t i = 0; i < sv->nkids; i++)
        if (sv->kids[i].stage == stage &&
            strcmp(sv->kids[i].role, "worker") == 0) {
            add_agg(a, &sv->kids[i], now);
            if (sv->kids[i].have_st && sv->kids[i].st.stateful)
                a->stateful = 1;
        }
}

/* 1234 -> "1.2k"; 1234567 -> "1.2M". */
static const char *human(char *buf, size_t n, double v)
{
    if (v < 1000)
        snprintf(buf, n, "%.0f", v);
    else if (v < 1e6)
        snprintf(buf, n, "%.1fk", v / 1e3);
    else if (v < 1e9)
        snprintf(buf, n, "%.1fM", v / 1e6);
    else
        snprintf(buf, n, "%.1fG", v / 1e9);
    return buf;
}

static void draw_progress(ss_supervisor *sv, uint64_t now)
{
    char line[1024], h1[32], h2[32];
    size_t len = 0;
    double el = (double)(now - sv->t0) / 1e9;
#define ADD(...)                                                             \
    do {                                                                     \
        if (len < sizeof line)                                               \
            len += (size_t)snprintf(line + len, sizeof line - len,           \
                                    __VA_ARGS__);                            \
    } while (0)
    ADD("%d:%02d ", (int)el / 60, (int)el % 60);
    const child *src = &sv->kids[sv->source];
    if (src->have_st) {
        ADD("source %s rows", human(h1, sizeof h1, (double)src->st.in));
        if (src->st.total_bytes) {
            double f = (double)src->st.in_bytes / (double)src->st.total_bytes;
            if (f > 1)
                f = 1;
            ADD(" %.0f%%", f * 100);
            if (f > 0.01 && f < 1) {
                int eta = (int)(el * (1 - f) / f + 0.5);
                ADD(" ETA %d:%02d", eta / 60, eta % 60);
            }
        }
    } else {
        ADD("starting");
    }
    for (size_t s = 0; s < sv->p->nstages; s++) {
        agg a;
        stage_agg(sv, (int)s, &a, now);
        ADD(" | %s %s ev/s %.1f MB/s", sv->p->stages[s].name,
            human(h1, sizeof h1, a.ev_rate), a.byte_rate / 1e6);
    }
    const child *snk = &sv->kids[sv->sink];
    if (snk->have_st)
        ADD(" | sink %s", human(h2, sizeof h2, (double)snk->st.in));
#undef ADD
    if (len >= sizeof line)
        len = sizeof line - 1;
    int cols = sv->cols > 10 ? sv->cols - 1 : 79;
    if (len > (size_t)cols)
        len = (size_t)cols;
    fputs("\r\033[K", stderr);
    fwrite(line, 1, len, stderr);
    fflush(stderr);
    sv->shown = 1;
    sv->last_draw = now;
}

/* ---- children exits ----------------------------------------------------- */

static void on_exit_status(ss_supervisor *sv, child *c, int status)
{
    c->running = 0;
    c->exited = 1;
    c->status = status;
    int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (ok && c == &sv->kids[sv->sink] && !sv->finish_ns)
        sv->finish_ns = ss_now_ns();
    if (ok || sv->stopping)
        return;
    char w[SS_STATS_NAME_MAX + 16];
    who(c, w, sizeof w);
    if (c->stage >= 0 && c != &sv->kids[sv->sink] && WIFSIGNALED(status)) {
        /* A worker was killed (a crash, the OOM killer, an operator):
         * while its stage has other live workers, its router gives its
         * unacknowledged batches to them (or aborts the run itself if the
         * stage is stateful), so the run goes on. A worker that exits
         * with an error status has reported a failure: that fails the
         * run, below. */
        size_t alive = 0;
        for (size_t i = 0; i < sv->nkids; i++)
            if (sv->kids[i].stage == c->stage && sv->kids[i].running)
                alive++;
        if (alive > 0) {
            c->lost = 1;
            sv->lost++;
            say(sv, "warning: %s was killed by signal %d; stage '%s' goes "
                "on with %zu worker(s), its router retries the batches it "
                "had not acknowledged", w, WTERMSIG(status),
                sv->p->stages[c->stage].name, alive);
            return;
        }
    }
    if (WIFSIGNALED(status))
        say(sv, "%s killed by signal %d", w, WTERMSIG(status));
    else
        say(sv, "%s exited with status %d (see its message above)", w,
            WEXITSTATUS(status));
    sv->result = SS_RUN_FAILED;
    sv->failed = 1;
    begin_stop(sv);
}

static void reap(ss_supervisor *sv)
{
    for (;;) {
        int st;
        struct rusage ru;
        pid_t pid = wait4(-1, &st, WNOHANG, &ru);
        if (pid <= 0)
            return;
        for (size_t i = 0; i < sv->nkids; i++)
            if (sv->kids[i].running && sv->kids[i].pid == pid) {
                sv->kids[i].cpu_s =
                    (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
                on_exit_status(sv, &sv->kids[i], st);
                break;
            }
    }
}

/* ---- summary ------------------------------------------------------------- */

/* Concatenates the components' rejects files; returns the line count or
 * -1 if rejects.jsonl cannot be written. */
static long merge_rejects(ss_supervisor *sv, char **path)
{
    if (asprintf(path, "%s/rejects.jsonl", sv->outdir) < 0) {
        *path = NULL;
        return -1;
    }
    FILE *o = fopen(*path, "w");
    if (!o)
        return -1;
    long lines = 0;
    for (size_t i = 0; i < sv->nkids; i++) {
        const char *r = sv->kids[i].rejects;
        FILE *f = r ? fopen(r, "r") : NULL;
        if (!f)
            continue;
        char buf[16384];
        size_t n;
        int last = '\n';
        while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
            fwrite(buf, 1, n, o);
            for (size_t k = 0; k < n; k++)
                lines += buf[k] == '\n';
            last = buf[n - 1];
        }
        if (last != '\n') {
            fputc('\n', o);
            lines++;
        }
        fclose(f);
        unlink(r);
    }
    rmdir(sv->rejdir);
    return fclose(o) == 0 ? lines : -1;
}

static void fmt_count(char *buf, size_t n, const child *c, uint64_t v)
{
    if (c->have_st)
        snprintf(buf, n, "%llu", (unsigned long long)v);
    else
        snprintf(buf, n, "-");
}

/* Checks rows in = out + filtered + rejected, and each stage's
 * in = passed + dropped + rejected. Prints the result. */
static int balance(ss_supervisor *sv, uint64_t now)
{
    const child *src = &sv->kids[sv->source];
    for (size_t i = 0; i < sv->nkids; i++) {
        const child *c = &sv->kids[i];
        if (!c->have_st && (c->stage >= 0 || c == src)) {
            say(sv, "cannot check the balance: no counters from %s",
                c->name);
            return -1;
        }
    }
    if (sv->lost) {
        out(sv, "  rows in = rows out + rows filtered + rows rejected: not "
                "checked: %zu worker(s) died during the run, and the "
                "events they had processed but not acknowledged were "
                "processed again by others (their routers checked that no "
                "batch was lost or duplicated)\n", sv->lost);
        return 0;
    }
    uint64_t rows_in = src->st.in, filtered = 0;
    int folded = 0;
    uint64_t rejected = src->st.rejected, rows_out = 0;
    const char *bad = NULL;
    char why[256] = "";
    if (src->st.in != src->st.out + src->st.rejected) {
        bad = "source";
        snprintf(why, sizeof why, "source: read %llu rows but sent %llu "
                 "and rejected %llu", (unsigned long long)src->st.in,
                 (unsigned long long)src->st.out,
                 (unsigned long long)src->st.rejected);
    }
    uint64_t upstream = src->st.out;
    const char *upname = "the source";
    for (size_t s = 0; s < sv->p->nstages; s++) {
        agg a;
        stage_agg(sv, (int)s, &a, now);
        const char *name = sv->p->stages[s].name;
        if (!bad && a.in != a.passed + a.dropped + a.rejected) {
            bad = name;
            snprintf(why, sizeof why, "stage '%s': in %llu != passed %llu "
                     "+ dropped %llu + rejected %llu", name,
                     (unsigned long long)a.in, (unsigned long long)a.passed,
                     (unsigned long long)a.dropped,
                     (unsigned long long)a.rejected);
        }
        if (!bad && a.in != upstream) {
            bad = name;
            snprintf(why, sizeof why, "stage '%s': received %llu events "
                     "but %s sent %llu", name, (unsigned long long)a.in,
                     upname, (unsigned long long)upstream);
        }
        /* rows: until the first stateful stage, what a stage drops was
         * filtered out; what a stateful stage drops was folded into its
         * results, and counts as rows out (after it, events are results,
         * not rows) */
        if (!folded) {
            rejected += a.rejected;
            if (a.stateful) {
                rows_out = a.passed + a.dropped;
                folded = 1;
            } else {
                filtered += a.dropped;
                rows_out = a.passed;
            }
        }
        upstream = a.out;
        upname = name;
    }
    int ok = rows_in == rows_out + filtered + rejected;
    if (!ok && !bad) {
        bad = sv->p->stages[sv->p->nstages - 1].name;
        snprintf(why, sizeof why, "a stage before '%s' emits a different "
                 "number of events than it passes", bad);
    }
    out(sv, "  rows in = rows out + rows filtered + rows rejected: "
            "%llu = %llu + %llu + %llu: %s\n",
        (unsigned long long)rows_in, (unsigned long long)rows_out,
        (unsigned long long)filtered, (unsigned long long)rejected,
        !bad && ok ? "balanced" : "MISMATCH");
    if (bad)
        say(sv, "the counts do not add up: %s", why);
    return !bad && ok ? 0 : -1;
}

/* Index in kids of the k-th component in the order of the flow: source,
 * router-1, workers of stage 1, router-2, ..., sink. */
static size_t flow_order(const ss_supervisor *sv, size_t k)
{
    if (k == 0)
        return (size_t)sv->source;
    if (k == sv->nkids - 1)
        return (size_t)sv->sink;
    size_t n = 1;
    size_t nrouters = sv->p->nstages + 1;
    for (size_t r = 0; r < nrouters; r++) {
        if (n++ == k)
            return r; /* routers come first in kids */
        for (size_t i = 0; i < sv->nkids; i++)
            if (sv->kids[i].stage == (int)r && n++ == k)
                return i;
    }
    return (size_t)sv->sink;
}

/* Prints the summary; returns 0, or -1 if the counts do not balance
 * (something was lost or counted twice: the run must not pass). */
static int summary(ss_supervisor *sv, long nrejects, const char *rpath)
{
    static const child nostats; /* prints "-" */
    uint64_t now = ss_now_ns();
    double wall = (double)(now - sv->t0) / 1e9;
    out(sv, "sstream run: %s: done in %.2f s\n", sv->p->name, wall);
    out(sv, "  %-16s %-6s %12s %12s %12s %12s %10s %9s %9s\n",
        "component", "role", "rows in", "rows out", "passed", "dropped",
        "rejected", "cpu", "peak rss");
    uint64_t peak = 0;
    const child *peak_c = NULL;
    for (size_t k = 0; k < sv->nkids; k++) {
        const child *c = &sv->kids[flow_order(sv, k)];
        char in[24], o[24], pa[24], dr[24], rj[24], rss[24], cpu[24];
        fmt_count(in, sizeof in, c, c->st.in);
        fmt_count(o, sizeof o, c, c->st.out);
        int w = c->stage >= 0;
        fmt_count(pa, sizeof pa, w ? c : &nostats, c->st.passed);
        fmt_count(dr, sizeof dr, w ? c : &nostats, c->st.dropped);
        fmt_count(rj, sizeof rj, c, c->st.rejected);
        if (c->have_st)
            snprintf(rss, sizeof rss, "%.1f MB",
                     (double)c->st.peak_rss_kb / 1024.0);
        else
            snprintf(rss, sizeof rss, "-");
        if (c->exited)
            snprintf(cpu, sizeof cpu, "%.2f s", c->cpu_s);
        else
            snprintf(cpu, sizeof cpu, "-");
        out(sv, "  %-16s %-6s %12s %12s %12s %12s %10s %9s %9s\n", c->name,
            c->role, in, o, pa, dr, rj, cpu, rss);
        if (c->have_st && c->st.peak_rss_kb > peak) {
            peak = c->st.peak_rss_kb;
            peak_c = c;
        }
    }
    const child *src = &sv->kids[sv->source];
    uint64_t bytes = src->st.in_bytes ? src->st.in_bytes
                                      : src->st.total_bytes;
    out(sv, "  wall time %.2f s, input %.1f MB, %.1f MB/s, peak rss %.1f MB"
            "%s%s%s\n",
        wall, (double)bytes / 1e6, wall > 0 ? (double)bytes / 1e6 / wall : 0,
        (double)peak / 1024.0, peak_c ? " (" : "",
        peak_c ? peak_c->name : "", peak_c ? ")" : "");
    int bal = balance(sv, now);
    if (nrejects >= 0)
        out(sv, "  rejects: %ld in %s\n", nrejects, rpath);
    if (!sv->o.quiet)
        fflush(stderr);
    return bal;
}

/* ---- the run ------------------------------------------------------------- */

static int setup_control(ss_supervisor *sv)
{
    sv->zctx = zmq_ctx_new();
    if (!sv->zctx)
        return SS_ENOMEM;
    sv->pull = zmq_socket(sv->zctx, ZMQ_PULL);
    if (!sv->pull)
        return SS_EIO;
    int linger = 0, hwm = 100000;
    zmq_setsockopt(sv->pull, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sv->pull, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_bind(sv->pull, sv->control) != 0) {
        say(sv, "cannot bind the control endpoint %s: %s", sv->control,
            zmq_strerror(errno));
        return SS_EIO;
    }
    if (sv->o.tcp) {
        char ep[256];
        size_t n = sizeof ep;
        if (zmq_getsockopt(sv->pull, ZMQ_LAST_ENDPOINT, ep, &n) != 0)
            return SS_EIO;
        free(sv->control);
        sv->control = strdup(ep);
        if (!sv->control)
            return SS_ENOMEM;
    }
    return 0;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Polls the control socket, the signal pipe and the children's pipes for
 * at most timeout_ms, and handles what arrived. */
static void poll_once(ss_supervisor *sv, zmq_pollitem_t *items,
                      int *owner, long timeout_ms)
{
    size_t ni = 0;
    items[ni] = (zmq_pollitem_t){sv->pull, 0, ZMQ_POLLIN, 0};
    owner[ni++] = -1;
    items[ni] = (zmq_pollitem_t){NULL, sig_pipe[0], ZMQ_POLLIN, 0};
    owner[ni++] = -2;
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
    for (size_t i = 0; i < sv->nkids; i++)
        if (sv->kids[i].have_st && !sv->kids[i].st.final)
            return 1;
    return 0;
}

/* 1 when every worker and the sink reported once (they are connected),
 * or exited. */
static int consumers_ready(const ss_supervisor *sv)
{
    for (size_t i = 0; i < sv->nkids; i++) {
        const child *c = &sv->kids[i];
        if ((c->stage >= 0 || (int)i == sv->sink) && !c->have_st &&
            c->running)
            return 0;
    }
    return 1;
}

/* The main loop: starts the source once the consumers are ready, and
 * runs until every child exited. */
static void watch(ss_supervisor *sv, zmq_pollitem_t *items, int *owner)
{
    sig_atomic_t seen = 0;
    for (;;) {
        poll_once(sv, items, owner, POLL_MS);
        read_control(sv);
        reap(sv);
        uint64_t now = ss_now_ns();
        if (sig_stop_count != seen) {
            if (!sv->stopping) {
                say(sv, "interrupted; stopping every component");
                sv->result = SS_RUN_INTERRUPTED;
                begin_stop(sv);
            } else if (!sv->killed) {
                signal_all(sv, SIGKILL);
                sv->killed = 1;
            }
            seen = sig_stop_count;
        }
        if (sv->o.timeout_s > 0 && !sv->stopping &&
            (double)(now - sv->t0) / 1e9 >= sv->o.timeout_s) {
            say(sv, "timed out after %g s; stopping every component",
                sv->o.timeout_s);
            sv->result = SS_RUN_TIMEOUT;
            begin_stop(sv);
        }
        if (!sv->source_started && !sv->stopping &&
            (consumers_ready(sv) || now - sv->t0 >= sv->ready_ns)) {
            sv->source_started = 1;
            if (start_child(sv, &sv->kids[sv->source], sv->devnull)) {
                sv->result = SS_RUN_FAILED;
                sv->failed = 1;
                begin_stop(sv);
            }
        }
        size_t alive = running_count(sv);
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
            now - sv->last_draw >= DRAW_EVERY_NS)
            draw_progress(sv, now);
        if (sv->metrics)
            fflush(sv->metrics); /* readable while the run goes on */
    }
}

/* See ss_supervisor.h. */
int ss_supervisor_run(ss_supervisor *sv)
{
    if (sv->ran)
        return SS_RUN_FAILED;
    sv->ran = 1;
    sv->result = SS_RUN_OK;
    sv->progress = !sv->o.quiet && !sv->o.no_progress && isatty(2);
    /* a child in its own process group must not write to the terminal
     * itself (SIGTTOU with `stty tostop`): relay the sink's results */
    sv->relay_stdout = isatty(1);
    struct winsize ws;
    if (sv->progress && ioctl(2, TIOCGWINSZ, &ws) == 0)
        sv->cols = ws.ws_col;

    zmq_pollitem_t *items = calloc(2 + 2 * sv->nkids, sizeof *items);
    int *owner = calloc(2 + 2 * sv->nkids, sizeof *owner);
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (!items || !owner || devnull < 0) {
        say(sv, "out of resources");
        free(items);
        free(owner);
        if (devnull >= 0)
            close(devnull);
        return SS_RUN_FAILED;
    }
    if (sv->o.metrics && !(sv->metrics = fopen(sv->o.metrics, "w")))
        say(sv, "metrics file '%s': %s", sv->o.metrics, strerror(errno));
    if (sv->o.metrics && !sv->metrics) {
        free(items);
        free(owner);
        close(devnull);
        return SS_RUN_FAILED;
    }
    if (setup_control(sv)) {
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
    sv->epoch0 = realtime_now();
    sv->devnull = devnull;
    uint64_t ready_ms = READY_MS;
    const char *rm = ss_env("SS_RUN_READY_MS", NULL);
    if (rm && ss_parse_u64(rm, 0, 600000, 0, &ready_ms))
        ready_ms = READY_MS;
    sv->ready_ns = ready_ms * 1000000ull;
    /* everything but the source; watch() starts it when they are ready */
    for (size_t i = 0; i < sv->nkids && !sv->stopping; i++) {
        if (sig_stop_count)
            break;
        if ((int)i == sv->source)
            continue;
        if (start_child(sv, &sv->kids[i], devnull)) {
            sv->result = SS_RUN_FAILED;
            sv->failed = 1;
            begin_stop(sv);
        }
    }
    watch(sv, items, owner);

    /* drain what the children left in their pipes and final samples */
    uint64_t end = ss_now_ns();
    while ((pipes_open(sv) || (!sv->stopping && finals_missing(sv))) &&
           ss_now_ns() - end < 1000ull * 1000000ull)
        poll_once(sv, items, owner, 50);
    read_control(sv);
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
    clear_progress(sv);

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
    long nrej = merge_rejects(sv, &rpath);
    if (nrej < 0)
        say(sv, "cannot write %s", rpath ? rpath : "rejects.jsonl");
    if (sv->result == SS_RUN_OK) {
        if (!sv->done)
            say(sv, "warning: the sink never called sendZmqCompleted()");
        if (summary(sv, nrej, rpath) != 0) {
            say(sv, "the counts do not balance: failing the run");
            sv->result = SS_RUN_FAILED;
        }
    }
    free(rpath);
    if (sv->metrics) {
        if (fclose(sv->metrics) != 0)
            say(sv, "metrics file '%s': %s", sv->o.metrics, strerror(errno));
        sv->metrics = NULL;
    }
    return sv->result;
}

/* Removes the endpoint folder and whatever the components left in it. */
static void remove_tmpdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char path[PATH_MAX];
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
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
        strv_free(c->argv);
        strv_free(c->env);
        free(c->log_path);
        free(c->rejects);
        if (c->err_fd >= 0)
            close(c->err_fd);
        if (c->out_fd >= 0)
            close(c->out_fd);
        ss_buf_release(&c->err_line);
        ss_buf_release(&c->out_line);
    }
    free(sv->kids);
    if (sv->pull)
        zmq_close(sv->pull);
    if (sv->zctx)
        zmq_ctx_term(sv->zctx);
    if (sv->metrics)
        fclose(sv->metrics);
    if (sv->tmpdir)
        remove_tmpdir(sv->tmpdir);
    strv_free(sv->endpoints.v);
    free(sv->tmpdir);
    free(sv->control);
    free(sv->exe);
    free(sv->argv0);
    free(sv->outdir);
    free(sv->logdir);
    free(sv->rejdir);
    free(sv);
    *pp = NULL;
}
