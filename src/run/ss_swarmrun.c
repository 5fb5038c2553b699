/*
 * ss_swarmrun.c - `sstream run --on swarm`: a pipeline on Docker Swarm,
 * driven from the owner's machine (see ss_swarmrun.h).
 *
 * The life of a run:
 *
 *   check the engine (an active swarm, a manager, the image, no stack of
 *   that name) -> the control pairs (ss_runkeys) and the monitor (bound
 *   on --advertise) -> enclave mode: the input sealed, the image's enclave
 *   program measured, the key service started here -> the stack file
 *   (ss_deploy, with the control channel) -> docker stack deploy -> the
 *   sink started here -> watch: counters, progress, `docker stack ps`
 *   every 2 s, the sink, the key service, signals, the time limit ->
 *   docker stack rm (waiting for its network to go) -> the summary.
 *
 * With --detach the process forks before it creates anything: the parent
 * waits until the child deployed the stack (a byte on a pipe) and
 * returns; the child, in its own session, follows the run with its
 * output in the output folder (results.txt, run.log) and keeps the
 * `status` file there current, as a foreground run also does.
 */
#include "run/ss_swarmrun.h"
#include "core/ss_util.h"
#include "run/ss_accounting.h"
#include "run/ss_deploy.h"
#include "run/ss_engine.h"
#include "run/ss_monitor.h"
#include "run/ss_plan.h"
#include "run/ss_progress.h"
#include "run/ss_runkeys.h"
#include "run/ss_runrec.h"
#include "run/ss_supervisor.h"
#include "securestreams.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define KEYSERVICE_PORT 5599
#define PORT0 5553           /* router k binds 5553+2k and 5554+2k */
#define TASKS_EVERY_NS (2000ull * 1000000ull)
#define DRAW_EVERY_NS (250ull * 1000000ull)
#define STALE_NS (3000ull * 1000000ull)
#define FINISH_GRACE_NS (10000ull * 1000000ull) /* sink done -> finals */
#define DOCKER_MS 60000 /* one docker command */
#define MAX_PENDING 64

/* A service seen unscheduled, since when. */
typedef struct pending {
    char svc[128];
    uint64_t since;
} pending;

typedef struct cl {
    const ss_pipeline *p;
    const ss_swarmrun_opts *o;
    char name[64];
    char image[256];
    char adv[128];
    char outdir[PATH_MAX];
    char ctldir[PATH_MAX + 32];
    char stackfile[PATH_MAX + 32];
    char logdir[PATH_MAX + 16];
    char statusfile[PATH_MAX + 16];
    char data_dir[PATH_MAX + 16];
    char run_hex[17];
    uint64_t run;
    int plain, enclave;
    ss_runkeys *rk;
    ss_monitor *mon;
    const char **names, **pubs;
    char (*nm)[SS_PIPELINE_NAME_MAX + 16]; /* the names' storage */
    size_t nnames;
    pid_t sink, ks;
    int sink_status, sink_exited;
    uint64_t sink_exit_ns;
    int deployed;
    ss_progress pg;
    int progress;
    uint64_t t0;
    char cause[2048];
    pending pend[MAX_PENDING];
    size_t npend;
    char stopped[MAX_PENDING][32]; /* stage tasks the engine stopped */
    size_t nstopped;
    int workers[SS_PIPELINE_MAX_STAGES]; /* as the run record says now */
    size_t scaled_down; /* workers taken away by sstream scale */
    ss_runrec rec;
} cl;

static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t sig_count;

static void on_signal(int sig)
{
    (void)sig;
    sig_count++;
    int e = errno;
    if (sig_pipe[1] >= 0 && write(sig_pipe[1], "s", 1) < 0) {
        /* the pipe is full: a stop is pending anyway */
    }
    errno = e;
}

static void say(cl *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(cl *c, const char *fmt, ...)
{
    ss_progress_clear(&c->pg);
    va_list ap;
    va_start(ap, fmt);
    fputs("sstream run: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
}

static void out(cl *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void out(cl *c, const char *fmt, ...)
{
    if (c->o->quiet)
        return;
    ss_progress_clear(&c->pg);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

/* Records the first cause of failure. */
static void fail(cl *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fail(cl *c, const char *fmt, ...)
{
    if (c->cause[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->cause, sizeof c->cause, fmt, ap);
    va_end(ap);
}

/* A name as Docker and Kubernetes want it (lower case, digits, '-'). */
static void dns_name(char *out, size_t n, const char *s)
{
    size_t i = 0;
    for (; *s && i + 1 < n; s++)
        out[i++] = isalnum((unsigned char)*s)
                       ? (char)tolower((unsigned char)*s)
                       : '-';
    while (i > 0 && out[i - 1] == '-')
        i--;
    out[i] = '\0';
    if (!i)
        snprintf(out, n, "pipeline");
}

static int mkdirs(const char *path, mode_t mode)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return -1;
    for (char *s = tmp + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return -1;
            *s = '/';
        }
    return mkdir(tmp, mode) != 0 && errno != EEXIST ? -1 : 0;
}

/* Removes dir, its files and its folders' files (the key folders: two
 * levels). */
static void rm_keys(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0 && (errno == EISDIR || errno == EPERM))
            rm_keys(path);
    }
    closedir(d);
    rmdir(dir);
}

/* Trims trailing white space. */
static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
}

/* ---- the engine --------------------------------------------------------- */

/* Checks that the engine is a swarm manager with the image and no stack
 * called c->name, and finds the address the services reach us at. */
static int check_engine(cl *c)
{
    char buf[4096];
    const char *info[] = {"info", "--format",
                          "{{.Swarm.LocalNodeState}} "
                          "{{.Swarm.ControlAvailable}}",
                          NULL};
    int st = ss_engine_cmd(info, buf, sizeof buf, 30000);
    chomp(buf);
    if (st != 0) {
        /* the client prints what of the format it could (" false") on
         * stdout before its error: keep the error, its last line */
        char *why = strrchr(buf, '\n');
        why = why ? why + 1 : buf;
        if (strstr(why, "cannot run "))
            say(c, "cannot run the Docker client (%s): install it "
                   "(scripts/deploy-deps.sh installs docker.io) or set "
                   "DOCKER to its path",
                why);
        else
            say(c, "cannot reach the Docker engine (%s info: %s): is "
                   "dockerd running (systemctl start docker), and may you "
                   "use it? sstream cluster check %s lists what a run on "
                   "a swarm needs",
                ss_engine_client(), why, c->p->path);
        return -1;
    }
    if (strncmp(buf, "active", 6) != 0) {
        say(c, "this Docker engine is not in a swarm (state '%s'): run "
               "'docker swarm init' (docs/DEPLOY.md), or use sstream run "
               "without --on",
            buf);
        return -1;
    }
    if (!strstr(buf, "true")) {
        say(c, "this Docker engine is a swarm worker: docker stack deploy "
               "needs a manager; run sstream run --on swarm on a manager");
        return -1;
    }
    const char *img[] = {"image", "inspect", "--format", "{{.Id}}",
                         c->image, NULL};
    if (ss_engine_cmd(img, buf, sizeof buf, 30000) != 0) {
        say(c, "the image %s is not on this engine: build it with 'make "
               "image' (or give --image), and on a swarm of several nodes "
               "load it on each (docs/DEPLOY.md)",
            c->image);
        return -1;
    }
    const char *ls[] = {"stack", "ls", "--format", "{{.Name}}", NULL};
    if (ss_engine_cmd(ls, buf, sizeof buf, 30000) != 0) {
        chomp(buf);
        say(c, "docker stack ls failed: %s", buf);
        return -1;
    }
    for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n"))
        if (strcmp(l, c->name) == 0) {
            say(c, "a stack named '%s' already runs on this swarm: stop it "
                   "(sstream stop %s, or docker stack rm %s) or give this "
                   "run another --name",
                c->name, c->name, c->name);
            return -1;
        }
    if (c->o->advertise) {
        snprintf(c->adv, sizeof c->adv, "%s", c->o->advertise);
        return 0;
    }
    const char *gw[] = {"network", "inspect", "docker_gwbridge", "--format",
                        "{{(index .IPAM.Config 0).Gateway}}", NULL};
    if (ss_engine_cmd(gw, buf, sizeof buf, 30000) != 0 || !buf[0]) {
        chomp(buf);
        say(c, "cannot find this machine's address on the swarm's "
               "docker_gwbridge (%s): give --advertise ADDRESS, an address "
               "of this machine that the swarm's nodes reach",
            buf);
        return -1;
    }
    chomp(buf);
    snprintf(c->adv, sizeof c->adv, "%.100s", buf);
    return 0;
}

/* ---- child processes of this machine ------------------------------------ */

/* Starts this program with argv, env added to ours, stdout on out_fd and
 * stderr on err_fd. Returns its pid or -1. */
static pid_t spawn(cl *c, char *const argv[], char *const env[], int out_fd,
                   int err_fd)
{
    pid_t pid = fork();
    if (pid == 0) {
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, 0);
        if (out_fd >= 0)
            dup2(out_fd, 1);
        if (err_fd >= 0)
            dup2(err_fd, 2);
        for (size_t i = 0; env && env[i]; i++)
            putenv(env[i]);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGINT, SIG_IGN); /* the run stops it: results first */
        execv(c->o->exe, argv);
        fprintf(stderr, "cannot run %s: %s\n", c->o->exe, strerror(errno));
        _exit(127);
    }
    return pid;
}

static int open_log(cl *c, const char *what)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s.log", c->logdir, what);
    return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
}

/* The last line of log `what` (for a cause). */
static void last_line(cl *c, const char *what, char *buf, size_t n)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s.log", c->logdir, what);
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[1024];
    while (fgets(line, sizeof line, f))
        if (line[0] != '\n')
            snprintf(buf, n, "%.*s", (int)(n - 1), line);
    fclose(f);
    chomp(buf);
}

static void stop_child(pid_t *pid)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGTERM);
    for (int i = 0; i < 50; i++) {
        if (waitpid(*pid, NULL, WNOHANG) == *pid) {
            *pid = 0;
            return;
        }
        usleep(100000);
    }
    kill(*pid, SIGKILL);
    waitpid(*pid, NULL, 0);
    *pid = 0;
}

/* Enclave mode without --data-dir: seals the input into
 * OUTDIR/data/BASENAME.sealed (sstream encrypt, the header line left
 * out), which the source's node mounts. */
static int seal_input(cl *c)
{
    const char *in = c->p->source.file;
    if (!in) {
        say(c, "the pipeline names no input file: give --data FILE");
        return -1;
    }
    snprintf(c->data_dir, sizeof c->data_dir, "%s/data", c->outdir);
    if (mkdirs(c->data_dir, 0755) != 0) {
        say(c, "cannot make '%s': %s", c->data_dir, strerror(errno));
        return -1;
    }
    const char *b = strrchr(in, '/');
    b = b ? b + 1 : in;
    char sealed[PATH_MAX * 2];
    snprintf(sealed, sizeof sealed, "%s/%s.sealed", c->data_dir, b);
    FILE *f = fopen(in, "r");
    if (!f) {
        say(c, "cannot read the input '%s': %s", in, strerror(errno));
        return -1;
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        fclose(f);
        return -1;
    }
    char *argv[] = {(char *)"sstream", (char *)"encrypt", (char *)"--keys",
                    (char *)c->o->keys, (char *)"-", sealed, NULL};
    int log = open_log(c, "encrypt");
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[0], 0);
        if (log >= 0)
            dup2(log, 2);
        execv(c->o->exe, argv);
        _exit(127);
    }
    close(p[0]);
    if (log >= 0)
        close(log);
    char line[65536];
    int first = 1, ok = pid > 0;
    signal(SIGPIPE, SIG_IGN);
    while (ok && fgets(line, sizeof line, f)) {
        if (first && c->p->source.header) {
            first = 0;
            continue;
        }
        first = 0;
        size_t n = strlen(line);
        if (ss_write_all(p[1], line, n) != 0)
            ok = 0;
    }
    fclose(f);
    close(p[1]);
    int st = 0;
    if (pid > 0)
        waitpid(pid, &st, 0);
    if (!ok || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char why[512];
        last_line(c, "encrypt", why, sizeof why);
        say(c, "cannot seal the input for the enclave pipeline: %s", why);
        return -1;
    }
    chmod(sealed, 0644);
    return 0;
}

/* Enclave mode: the key service, here, measuring the enclave program of
 * the image (not this machine's build). */
static int start_keyservice(cl *c)
{
    char prog[PATH_MAX + 64];
    snprintf(prog, sizeof prog, "%.*s/sstream-enclave", PATH_MAX, c->ctldir);
    char cid[256];
    const char *create[] = {"create", c->image, NULL};
    if (ss_engine_cmd(create, cid, sizeof cid, DOCKER_MS) != 0) {
        chomp(cid);
        say(c, "cannot read the enclave program of %s: %s", c->image, cid);
        return -1;
    }
    chomp(cid);
    char src[300];
    snprintf(src, sizeof src, "%s:/usr/local/bin/sstream-enclave", cid);
    const char *cp[] = {"cp", src, prog, NULL};
    char buf[1024];
    int st = ss_engine_cmd(cp, buf, sizeof buf, DOCKER_MS);
    const char *rm[] = {"rm", cid, NULL};
    ss_engine_cmd(rm, NULL, 0, DOCKER_MS);
    if (st != 0) {
        chomp(buf);
        say(c, "cannot copy the enclave program out of %s: %s", c->image,
            buf);
        return -1;
    }
    char bind[200];
    snprintf(bind, sizeof bind, "tcp://%s:%d", c->adv, KEYSERVICE_PORT);
    char *argv[8 + 2 * SS_PIPELINE_MAX_STAGES];
    char stages[SS_PIPELINE_MAX_STAGES][PATH_MAX + 80];
    size_t n = 0;
    argv[n++] = (char *)"sstream";
    argv[n++] = (char *)"keyservice";
    argv[n++] = (char *)"--keys";
    argv[n++] = (char *)c->o->keys;
    argv[n++] = (char *)"--program";
    argv[n++] = prog;
    argv[n++] = (char *)"--bind";
    argv[n++] = bind;
    argv[n++] = (char *)"--run";
    argv[n++] = c->run_hex;
    for (size_t s = 0; s < c->p->nstages && s < SS_PIPELINE_MAX_STAGES;
         s++) {
        snprintf(stages[s], sizeof stages[s], "%s=%s", c->p->stages[s].name,
                 c->p->stages[s].script);
        argv[n++] = (char *)"--stage";
        argv[n++] = stages[s];
    }
    argv[n] = NULL;
    int log = open_log(c, "keyservice");
    c->ks = spawn(c, argv, NULL, log, log);
    if (log >= 0)
        close(log);
    if (c->ks <= 0) {
        say(c, "cannot start the key service");
        return -1;
    }
    return 0;
}

/* The sink, here: it opens and prints the results. */
static int start_sink(cl *c, int out_fd)
{
    size_t last = c->p->nstages + 1;
    char from[200], env_run[40], env_ctl[300], env_keys[PATH_MAX + 64],
        env_out[PATH_MAX + 32];
    snprintf(from, sizeof from, "tcp://%s:%d",
             c->o->node ? c->o->node : "127.0.0.1", PORT0 + 2 * (int)last + 1);
    snprintf(env_run, sizeof env_run, "SS_RUN=%s", c->run_hex);
    snprintf(env_ctl, sizeof env_ctl, "SS_CONTROL=%s",
             ss_monitor_endpoint(c->mon));
    snprintf(env_keys, sizeof env_keys, "SS_CONTROL_KEYS=%s/sink", c->ctldir);
    snprintf(env_out, sizeof env_out, "OUTPUT=%s/output.log", c->outdir);
    char *finals = NULL;
    if (!c->plain && ss_plan_finals(c->p, &finals) != 0) {
        say(c, "out of memory");
        return -1;
    }
    char *argv[20];
    size_t n = 0;
    argv[n++] = (char *)"sstream";
    argv[n++] = (char *)"sink";
    argv[n++] = c->p->sink.script;
    argv[n++] = (char *)"--from";
    argv[n++] = from;
    argv[n++] = (char *)"--name";
    argv[n++] = (char *)"sink";
    argv[n++] = (char *)"--connect-timeout-ms";
    argv[n++] = (char *)"300000";
    if (!c->plain) {
        argv[n++] = (char *)"--security";
        argv[n++] = c->p->security;
        argv[n++] = (char *)"--keys";
        argv[n++] = (char *)c->o->keys;
    }
    if (finals) {
        argv[n++] = (char *)"--finals";
        argv[n++] = finals;
    }
    argv[n] = NULL;
    char *env[] = {env_run, env_ctl, env_keys, env_out, NULL};
    int log = open_log(c, "sink");
    c->sink = spawn(c, argv, env, out_fd, log);
    if (log >= 0)
        close(log);
    free(finals);
    if (c->sink <= 0) {
        say(c, "cannot start the sink");
        return -1;
    }
    return 0;
}

/* ---- keys, monitor, stack ----------------------------------------------- */

/* The control pairs (one per reporting name) and the monitor. */
static int make_monitor(cl *c)
{
    char err[1024];
    snprintf(c->ctldir, sizeof c->ctldir, "%s/cluster-keys", c->outdir);
    rm_keys(c->ctldir); /* an earlier run's, interrupted */
    if (ss_runkeys_new(c->ctldir, c->plain ? NULL : c->o->keys, &c->rk, err,
                       sizeof err)) {
        say(c, "%s", err);
        return -1;
    }
    size_t nr = c->p->nstages + 1;
    size_t max = nr + c->p->nstages + 2;
    c->names = calloc(max, sizeof *c->names);
    c->pubs = calloc(max, sizeof *c->pubs);
    c->nm = calloc(max, sizeof *c->nm);
    if (!c->names || !c->pubs || !c->nm) {
        say(c, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < max; i++) {
        char *nm = c->nm[i];
        size_t nl = sizeof c->nm[i];
        if (i < nr)
            snprintf(nm, nl, "router-%zu", i + 1);
        else if (i == nr)
            snprintf(nm, nl, "source");
        else if (i == max - 1)
            snprintf(nm, nl, "sink");
        else
            snprintf(nm, nl, "%s", c->p->stages[i - nr - 1].name);
        if (!ss_runkeys_component(c->rk, nm, 0, err, sizeof err)) {
            say(c, "%s", err);
            return -1;
        }
        c->pubs[i] = ss_runkeys_pub(c->rk, nm);
        c->names[i] = nm;
    }
    c->nnames = max;
    char ep[200], metrics[PATH_MAX + 32];
    snprintf(ep, sizeof ep, "tcp://%s:*", c->adv);
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", c->outdir);
    ss_monitor_auth auth = {{ss_runkeys_monitor_pub(c->rk),
                             ss_runkeys_monitor_sec(c->rk), c->pubs,
                             c->names, max},
                            "sink"};
    if (ss_monitor_new(ep, metrics, &auth, &c->mon, err, sizeof err)) {
        say(c, "the run's monitor cannot listen on %s: %s (give --advertise "
               "ADDRESS, an address of this machine)",
            ep, err);
        return -1;
    }
    for (size_t k = 1; k <= nr; k++) {
        char r[32];
        snprintf(r, sizeof r, "router-%zu", k);
        ss_monitor_add(c->mon, r);
    }
    ss_monitor_add(c->mon, "source");
    for (size_t s = 0; s < c->p->nstages; s++) {
        ss_monitor_allow_replicas(c->mon, c->p->stages[s].name);
        for (int w = 1; w <= c->p->stages[s].workers; w++) {
            char wn[SS_PIPELINE_NAME_MAX + 16];
            snprintf(wn, sizeof wn, "%s-%d", c->p->stages[s].name, w);
            ss_monitor_add(c->mon, wn);
        }
    }
    ss_monitor_add(c->mon, "sink");
    return 0;
}

static int write_stack(cl *c)
{
    char err[1024], ks[200];
    snprintf(ks, sizeof ks, "tcp://%s:%d", c->adv, KEYSERVICE_PORT);
    ss_deploy_opts d = {.target = SS_DEPLOY_SWARM,
                        .image = c->image,
                        .keys = c->plain ? NULL : c->o->keys,
                        .keyservice = c->enclave ? ks : NULL,
                        .run = c->run_hex,
                        .data_dir = c->data_dir,
                        .control = ss_monitor_endpoint(c->mon),
                        .control_keys = c->ctldir};
    snprintf(c->stackfile, sizeof c->stackfile, "%s/stack.yml", c->outdir);
    FILE *f = fopen(c->stackfile, "w");
    if (!f) {
        say(c, "cannot write '%s': %s", c->stackfile, strerror(errno));
        return -1;
    }
    int rc = ss_deploy_write(c->p, &d, f, err, sizeof err);
    if (fclose(f) != 0 && !rc) {
        snprintf(err, sizeof err, "cannot write '%.900s'", c->stackfile);
        rc = SS_EIO;
    }
    if (rc) {
        say(c, "%s", err);
        return -1;
    }
    return 0;
}

static int deploy(cl *c)
{
    const char *argv[] = {"stack", "deploy", "-c", c->stackfile, c->name,
                          NULL};
    char buf[8192];
    int st = ss_engine_cmd(argv, buf, sizeof buf, 180000);
    if (st != 0) {
        chomp(buf);
        say(c, "docker stack deploy failed: %s", buf);
        /* what it made before failing goes too */
        c->deployed = 1;
        return -1;
    }
    c->deployed = 1;
    return 0;
}

/* Removes the stack and waits (at most 60 s) until its network went, so
 * that a next run of the same name can start. */
static void undeploy(cl *c)
{
    if (!c->deployed)
        return;
    const char *rm[] = {"stack", "rm", c->name, NULL};
    char buf[4096];
    if (ss_engine_cmd(rm, buf, sizeof buf, DOCKER_MS) != 0) {
        chomp(buf);
        say(c, "docker stack rm %s failed: %s", c->name, buf);
        return;
    }
    char net[128];
    snprintf(net, sizeof net, "%s_sstream", c->name);
    for (int i = 0; i < 120; i++) {
        const char *ls[] = {"network", "ls", "--filter", "label=com.docker."
                            "stack.namespace", "--format", "{{.Name}}",
                            NULL};
        if (ss_engine_cmd(ls, buf, sizeof buf, 10000) != 0)
            break;
        int found = 0;
        for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n"))
            found |= strcmp(l, net) == 0;
        if (!found)
            break;
        usleep(500000);
    }
    c->deployed = 0;
}

/* ---- watching the stack ------------------------------------------------- */

/* What a service needs to be placed, for the message. */
static const char *placement_hint(const cl *c, const char *svc)
{
    if (strcmp(svc, "source") == 0)
        return "the source runs on a node labelled for the data: docker "
               "node update --label-add securestreams.data=true NODE";
    if (strncmp(svc, "stage-", 6) == 0 && c->enclave)
        return "enclave stages run only on nodes labelled for enclaves: "
               "docker node update --label-add sgx=true NODE";
    return "see docker service ps --no-trunc";
}

/* The last log lines of service svc, for a failure. */
static void service_logs(cl *c, const char *svc)
{
    char full[256], buf[4096];
    snprintf(full, sizeof full, "%s_%s", c->name, svc);
    const char *argv[] = {"service", "logs", "--tail", "5", "--no-task-ids",
                          full, NULL};
    if (ss_engine_cmd(argv, buf, sizeof buf, 15000) == 0 && buf[0]) {
        chomp(buf);
        out(c, "  last lines of %s:\n", svc);
        for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n"))
            out(c, "    %s\n", l);
    }
}

/* A worker's task that the engine shut down while the run went on (a
 * rescale down): like a worker lost in a local run, its router dealt its
 * batches in flight again, so the books cannot count rows once each. */
static void note_stopped(cl *c, const char *id)
{
    for (size_t i = 0; i < c->nstopped; i++)
        if (strcmp(c->stopped[i], id) == 0)
            return;
    if (c->nstopped < MAX_PENDING)
        snprintf(c->stopped[c->nstopped++], sizeof c->stopped[0], "%.31s",
                 id);
}

/* Follows `sstream scale`, which writes each stage's workers into the run
 * record: workers it took away count as stopped (docker stack ps may no
 * longer list a removed replica's task when it is polled). */
static void check_record(cl *c)
{
    ss_runrec r;
    char err[256];
    if (ss_runrec_read(c->name, &r, err, sizeof err) != 0)
        return;
    for (size_t s = 0; s < c->p->nstages && s < SS_PIPELINE_MAX_STAGES;
         s++) {
        int n = ss_runrec_workers(&r, c->p->stages[s].name);
        if (n > 0 && n < c->workers[s])
            c->scaled_down += (size_t)(c->workers[s] - n);
        if (n > 0)
            c->workers[s] = n;
    }
}

/* Workers stopped during the run: by sstream scale, or seen shut down. */
static size_t stopped_workers(const cl *c)
{
    return c->scaled_down > c->nstopped ? c->scaled_down : c->nstopped;
}

/* Reads the state of every task (docker stack ps) and fails the run on a
 * failed task or one unscheduled for longer than the limit. */
static void check_tasks(cl *c, uint64_t now)
{
    const char *argv[] = {"stack", "ps", "--no-trunc", "--format",
                          "{{.ID}}\t{{.Name}}\t{{.CurrentState}}\t"
                          "{{.Error}}",
                          c->name, NULL};
    static char buf[65536];
    if (ss_engine_cmd(argv, buf, sizeof buf, 30000) != 0)
        return; /* a slow engine: next time */
    double limit = c->o->schedule_s > 0 ? c->o->schedule_s : 60;
    size_t npend = 0;
    pending seen[MAX_PENDING] = {{"", 0}};
    char *save = NULL;
    for (char *l = strtok_r(buf, "\n", &save); l;
         l = strtok_r(NULL, "\n", &save)) {
        char *id = l, *t0 = strchr(l, '\t');
        if (!t0)
            continue;
        *t0 = '\0';
        char *task = t0 + 1;
        while (*task == ' ' || *task == '\\' || *task == '_')
            task++; /* an older task: " \_ NAME" */
        char *t1 = strchr(task, '\t');
        if (!t1)
            continue;
        *t1 = '\0';
        char *state = t1 + 1;
        char *t2 = strchr(state, '\t');
        const char *error = "";
        if (t2) {
            *t2 = '\0';
            error = t2 + 1;
        }
        /* NAME_SERVICE.SLOT -> SERVICE */
        char svc[128];
        size_t pl = strlen(c->name);
        const char *s = strncmp(task, c->name, pl) == 0 && task[pl] == '_'
                            ? task + pl + 1
                            : task;
        snprintf(svc, sizeof svc, "%s", s);
        char *dot = strrchr(svc, '.');
        if (dot)
            *dot = '\0';
        if (strncmp(state, "Failed", 6) == 0 ||
            strncmp(state, "Rejected", 8) == 0) {
            fail(c, "service %s failed (task %s: %s%s%s)", svc, task,
                 state, *error ? ": " : "", error);
            if (!c->cause[0] || strstr(c->cause, svc))
                service_logs(c, svc);
            return;
        }
        if (strncmp(svc, "stage-", 6) == 0 &&
            (strncmp(state, "Shutdown", 8) == 0 ||
             strncmp(state, "Remove", 6) == 0))
            note_stopped(c, id);
        if (strncmp(state, "Pending", 7) == 0 && *error &&
            npend < MAX_PENDING) {
            uint64_t since = now;
            for (size_t i = 0; i < c->npend; i++)
                if (strcmp(c->pend[i].svc, svc) == 0)
                    since = c->pend[i].since;
            snprintf(seen[npend].svc, sizeof seen[npend].svc, "%s", svc);
            seen[npend++].since = since;
            if ((double)(now - since) / 1e9 > limit) {
                fail(c, "service %s cannot be placed: its task %s has been "
                        "%s for %.0f s: %s; %s",
                     svc, task, "pending", (double)(now - since) / 1e9,
                     error, placement_hint(c, svc));
                return;
            }
        }
    }
    memcpy(c->pend, seen, npend * sizeof *seen);
    c->npend = npend;
}

/* The stage of a monitored name (STAGE-N), or -1 (router, source,
 * sink). */
static int stage_of(const cl *c, const char *name)
{
    for (size_t s = 0; s < c->p->nstages; s++) {
        size_t l = strlen(c->p->stages[s].name);
        if (strncmp(name, c->p->stages[s].name, l) == 0 && name[l] == '-' &&
            isdigit((unsigned char)name[l + 1]))
            return (int)s;
    }
    return -1;
}

static const char *role_of(const cl *c, const char *name)
{
    if (strcmp(name, "source") == 0)
        return "source";
    if (strcmp(name, "sink") == 0)
        return "sink";
    if (strncmp(name, "router-", 7) == 0)
        return "router";
    return stage_of(c, name) >= 0 ? "worker" : "other";
}

static const ss_stats *stats_named(const cl *c, const char *name)
{
    for (size_t i = 0;; i++) {
        const ss_monitor_comp *m = ss_monitor_get(c->mon, i);
        if (!m)
            return NULL;
        if (strcmp(m->name, name) == 0)
            return m->have_st ? &m->st : NULL;
    }
}

/* The live line, and the status file that `sstream status` shows. */
static void draw(cl *c, uint64_t now, const char *state)
{
    ss_progress_stage st[SS_PIPELINE_MAX_STAGES];
    size_t ns = c->p->nstages;
    for (size_t s = 0; s < ns; s++)
        st[s] = (ss_progress_stage){c->p->stages[s].name, 0, 0};
    const ss_monitor_comp *src = NULL;
    for (size_t i = 0;; i++) {
        const ss_monitor_comp *m = ss_monitor_get(c->mon, i);
        if (!m)
            break;
        int s = stage_of(c, m->name);
        if (s >= 0)
            ss_monitor_rates(m, now, STALE_NS, &st[s].ev_rate,
                             &st[s].byte_rate);
        if (strcmp(m->name, "source") == 0)
            src = m;
    }
    double age = src && src->have_st && now > src->st_ns
                     ? (double)(now - src->st_ns) / 1e9
                     : 0;
    ss_progress_view v = {(double)(now - c->t0) / 1e9,
                          stats_named(c, "source"),
                          age,
                          st,
                          ns,
                          stats_named(c, "sink"),
                          c->pg.cols > 10 ? c->pg.cols - 1 : 79};
    char line[1024];
    size_t len = ss_progress_format(line, sizeof line, &v);
    if (c->progress)
        ss_progress_draw(&c->pg, line, len, now);
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp", c->statusfile);
    FILE *f = fopen(tmp, "w");
    if (f) {
        fprintf(f, "state: %s\nprogress: %s\n", state, line);
        if (c->cause[0])
            fprintf(f, "cause: %s\n", c->cause);
        if (fclose(f) == 0)
            rename(tmp, c->statusfile);
    }
}

/* Every component reported its last sample (or the grace ran out). */
static int finals_in(const cl *c)
{
    for (size_t i = 0;; i++) {
        const ss_monitor_comp *m = ss_monitor_get(c->mon, i);
        if (!m)
            return 1;
        if (!m->have_st || !m->st.final)
            return 0;
    }
}

/* ---- the summary -------------------------------------------------------- */

static void fmt_count(char *buf, size_t n, const ss_stats *st, uint64_t v)
{
    if (st)
        snprintf(buf, n, "%llu", (unsigned long long)v);
    else
        snprintf(buf, n, "-");
}

static void row(cl *c, const ss_monitor_comp *m, const char *role)
{
    static const ss_stats zero;
    const ss_stats *st = m->have_st ? &m->st : NULL;
    const ss_stats *v = st ? st : &zero;
    const ss_stats *wst = strcmp(role, "worker") == 0 ? st : NULL;
    char in[24], o[24], pa[24], dr[24], rj[24], rss[24];
    fmt_count(in, sizeof in, st, v->in);
    fmt_count(o, sizeof o, st, v->out);
    fmt_count(pa, sizeof pa, wst, v->passed);
    fmt_count(dr, sizeof dr, wst, v->dropped);
    fmt_count(rj, sizeof rj, st, v->rejected);
    if (st)
        snprintf(rss, sizeof rss, "%.1f MB", (double)st->peak_rss_kb / 1024.0);
    else
        snprintf(rss, sizeof rss, "-");
    out(c, "  %-16s %-6s %12s %12s %12s %12s %10s %9s %9s\n", m->name, role,
        in, o, pa, dr, rj, "-", rss);
}

/* Prints the summary as a local run does (the cpu column is not known
 * from here); returns 0, or -1 if the books do not balance. */
static int summary(cl *c)
{
    uint64_t now = ss_now_ns();
    double wall = (double)(now - c->t0) / 1e9;
    out(c, "sstream run: %s: done in %.2f s on swarm (stack %s)\n",
        c->p->name, wall, c->name);
    out(c, "  %-16s %-6s %12s %12s %12s %12s %10s %9s %9s\n", "component",
        "role", "rows in", "rows out", "passed", "dropped", "rejected",
        "cpu", "peak rss");
    size_t n = 0;
    while (ss_monitor_get(c->mon, n))
        n++;
    ss_acct_part *parts = calloc(n ? n : 1, sizeof *parts);
    if (!parts)
        return -1;
    /* in the order of the flow: source, router-1, stage 1, router-2 ...,
     * the sink; a replica a rescale added comes with its stage */
    const ss_monitor_comp *m;
    uint64_t peak = 0;
    const char *peak_name = NULL;
    for (size_t k = 0; k <= c->p->nstages + 2; k++) {
        char rname[32];
        snprintf(rname, sizeof rname, "router-%zu", k);
        for (size_t i = 0; i < n; i++) {
            m = ss_monitor_get(c->mon, i);
            if (k == 0 ? strcmp(m->name, "source") == 0
                : k == c->p->nstages + 2 ? strcmp(m->name, "sink") == 0
                                         : strcmp(m->name, rname) == 0)
                row(c, m, role_of(c, m->name));
        }
        for (size_t i = 0; k >= 1 && k <= c->p->nstages && i < n; i++) {
            m = ss_monitor_get(c->mon, i);
            if (stage_of(c, m->name) == (int)k - 1)
                row(c, m, "worker");
        }
    }
    for (size_t i = 0; i < n; i++) {
        m = ss_monitor_get(c->mon, i);
        parts[i] = (ss_acct_part){m->name, role_of(c, m->name),
                                  stage_of(c, m->name),
                                  m->have_st ? &m->st : NULL};
        if (m->have_st && m->st.peak_rss_kb > peak) {
            peak = m->st.peak_rss_kb;
            peak_name = m->name;
        }
    }
    const ss_stats *src = stats_named(c, "source");
    uint64_t bytes = src ? (src->in_bytes ? src->in_bytes : src->total_bytes)
                         : 0;
    out(c, "  wall time %.2f s, input %.1f MB, %.1f MB/s, peak rss %.1f MB"
           "%s%s%s\n",
        wall, (double)bytes / 1e6, wall > 0 ? (double)bytes / 1e6 / wall : 0,
        (double)peak / 1024.0, peak_name ? " (" : "",
        peak_name ? peak_name : "", peak_name ? ")" : "");
    const char *names[SS_PIPELINE_MAX_STAGES];
    for (size_t s = 0; s < c->p->nstages && s < SS_PIPELINE_MAX_STAGES; s++)
        names[s] = c->p->stages[s].name;
    unsigned copies[SS_PIPELINE_MAX_STAGES]; /* a broadcast stage's */
    for (size_t s = 0; s < c->p->nstages && s < SS_PIPELINE_MAX_STAGES; s++)
        copies[s] = c->p->stages[s].broadcast
                        ? (unsigned)c->p->stages[s].workers
                        : 1;
    ss_balance b;
    ss_accounting_balance_copies(parts, n, names, copies, c->p->nstages,
                                 stopped_workers(c), &b);
    free(parts);
    if (b.verdict == SS_ACCT_NO_COUNTERS) {
        say(c, "cannot check the balance: %s", b.why);
        return -1;
    }
    if (b.verdict == SS_ACCT_UNCHECKED) {
        out(c, "  rows in = rows out + rows filtered + rows rejected: not "
               "checked: the engine stopped %zu worker(s) during the run "
               "(a rescale down), and the events they had processed but "
               "not acknowledged were processed again by others (their "
               "routers checked that no batch was lost or duplicated)\n",
            stopped_workers(c));
        fflush(stderr);
        return 0;
    }
    int ok = b.verdict == SS_ACCT_BALANCED;
    out(c, "  rows in = rows out + rows filtered + rows rejected: "
           "%llu = %llu + %llu + %llu: %s\n",
        (unsigned long long)b.rows_in, (unsigned long long)b.rows_out,
        (unsigned long long)b.filtered, (unsigned long long)b.rejected,
        ok ? "balanced" : "MISMATCH");
    if (b.split_stage)
        out(c, "  (rows out: the rows stage '%s' passed; it emits another "
               "number of events than it passes, as a flatMap does, and "
               "the stages after it count events, not rows)\n",
            b.split_stage);
    if (!ok)
        say(c, "the counts do not add up: %s", b.why);
    char msg[256];
    if (ok && ss_accounting_rejects(&b, c->p->max_reject_ratio, msg,
                                    sizeof msg) == SS_ACCT_REJECTS_FAIL) {
        say(c, "%s", msg);
        return -1;
    }
    fflush(stderr);
    return ok ? 0 : -1;
}

/* ---- the run ------------------------------------------------------------ */

static void signals(struct sigaction *old, int install)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < 3; i++) {
        if (install) {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = on_signal;
            sigemptyset(&sa.sa_mask);
            sigaction(sigs[i], &sa, &old[i]);
        } else {
            sigaction(sigs[i], &old[i], NULL);
        }
    }
}

/* Follows the deployed run to its end; returns its status. */
static int watch(cl *c)
{
    uint64_t last_tasks = 0, last_draw = 0;
    uint64_t deadline = c->o->timeout_s > 0
                            ? c->t0 + (uint64_t)(c->o->timeout_s * 1e9)
                            : 0;
    int status = -1;
    while (status < 0) {
        zmq_pollitem_t it[2] = {
            {ss_monitor_socket(c->mon), 0, ZMQ_POLLIN, 0},
            {NULL, sig_pipe[0], ZMQ_POLLIN, 0}};
        zmq_poll(it, 2, 100);
        ss_monitor_read(c->mon);
        uint64_t now = ss_now_ns();
        if (sig_count) {
            char b[16];
            while (read(sig_pipe[0], b, sizeof b) > 0)
                ;
            say(c, "interrupted: removing the stack %s", c->name);
            fail(c, "interrupted");
            status = SS_RUN_INTERRUPTED;
            break;
        }
        if (deadline && now > deadline) {
            say(c, "timed out after %.0f s: removing the stack %s",
                c->o->timeout_s, c->name);
            fail(c, "timed out");
            status = SS_RUN_TIMEOUT;
            break;
        }
        if (!c->sink_exited && c->sink > 0) {
            int st;
            if (waitpid(c->sink, &st, WNOHANG) == c->sink) {
                c->sink_exited = 1;
                c->sink = 0;
                c->sink_status = st;
                c->sink_exit_ns = now;
                if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                    char why[512];
                    last_line(c, "sink", why, sizeof why);
                    fail(c, "the sink (on this machine) failed: %s", why);
                }
            }
        }
        if (c->ks > 0) {
            int st;
            if (waitpid(c->ks, &st, WNOHANG) == c->ks) {
                c->ks = 0;
                char why[512];
                last_line(c, "keyservice", why, sizeof why);
                fail(c, "the key service (on this machine) ended: %s", why);
            }
        }
        if (!c->sink_exited && now - last_tasks > TASKS_EVERY_NS) {
            last_tasks = now;
            check_tasks(c, now);
            check_record(c);
        }
        if (c->cause[0]) {
            status = SS_RUN_FAILED;
            break;
        }
        if (c->sink_exited &&
            (finals_in(c) || now - c->sink_exit_ns > FINISH_GRACE_NS))
            status = SS_RUN_OK;
        if (now - last_draw > DRAW_EVERY_NS) {
            last_draw = now;
            draw(c, now, "running");
        }
    }
    ss_progress_clear(&c->pg);
    return status;
}

/* Detached: the parent returns once the child says the stack is up. */
static int detach(cl *c, int *notify)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0) {
        close(p[1]);
        char b = 0;
        ssize_t r;
        while ((r = read(p[0], &b, 1)) < 0 && errno == EINTR)
            ;
        close(p[0]);
        if (r == 1 && b == '1') {
            printf("%s\n", c->name);
            fprintf(stderr, "sstream run: %s runs on swarm, followed by "
                            "process %ld: sstream status %s, sstream logs "
                            "%s, sstream stop %s (results in "
                            "%s/results.txt)\n",
                    c->name, (long)pid, c->name, c->name, c->name,
                    c->outdir);
            return 1;
        }
        char log[PATH_MAX + 16];
        snprintf(log, sizeof log, "%s/run.log", c->outdir);
        FILE *f = fopen(log, "r");
        char line[1024];
        while (f && fgets(line, sizeof line, f))
            fputs(line, stderr);
        if (f)
            fclose(f);
        return 2;
    }
    close(p[0]);
    setsid();
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/results.txt", c->outdir);
    int o = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    snprintf(path, sizeof path, "%s/run.log", c->outdir);
    int e = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int nul = open("/dev/null", O_RDONLY);
    if (o < 0 || e < 0 || nul < 0)
        _exit(1);
    dup2(nul, 0);
    dup2(o, 1);
    dup2(e, 2);
    close(nul);
    close(o);
    close(e);
    *notify = p[1];
    return 0;
}

/* See ss_swarmrun.h. */
int ss_swarmrun_run(const ss_pipeline *p, const ss_swarmrun_opts *o)
{
    cl *c = calloc(1, sizeof *c);
    if (!c)
        return SS_RUN_FAILED;
    c->p = p;
    c->o = o;
    c->plain = strcmp(p->security, "plain") == 0;
    c->enclave = strcmp(p->security, "enclave") == 0;
    int status = SS_RUN_FAILED, notify = -1;
    if (o->name)
        snprintf(c->name, sizeof c->name, "%s", o->name);
    else
        dns_name(c->name, sizeof c->name, p->name);
    snprintf(c->image, sizeof c->image, "%s",
             o->image ? o->image : "securestreams:" SS_VERSION_STRING);
    char od[PATH_MAX];
    snprintf(od, sizeof od, "%s", o->output_dir ? o->output_dir : "out/");
    if (!o->output_dir)
        snprintf(od, sizeof od, "out/%s", p->name);
    if (mkdirs(od, 0755) != 0 || !realpath(od, c->outdir)) {
        say(c, "output folder '%s': %s", od, strerror(errno));
        free(c);
        return SS_RUN_FAILED;
    }
    snprintf(c->logdir, sizeof c->logdir, "%s/logs", c->outdir);
    snprintf(c->statusfile, sizeof c->statusfile, "%s/status", c->outdir);
    mkdirs(c->logdir, 0700);
    for (size_t s = 0; s < p->nstages; s++)
        if (c->plain && ss_pipeline_chained(p, s)) {
            /* the chained stages' counters come from their host's
             * replicas under the chained stage's names: not admitted yet */
            say(c, "stage '%s' is chained: sstream run --on swarm does not "
                   "run chained stages yet; set chain: false, or use "
                   "sstream deploy --target swarm",
                p->stages[s].name);
            free(c);
            return SS_RUN_FAILED;
        }
    if (!c->plain && !o->keys) {
        say(c, "security %s needs the pipeline's keys (--keys DIR)",
            p->security);
        free(c);
        return SS_RUN_FAILED;
    }
    /* one run at a time in an output folder, as a local run (the lock
     * goes with the process that follows the run, detached or not) */
    char lk[PATH_MAX + 16];
    snprintf(lk, sizeof lk, "%s/.lock", c->outdir);
    int lock = open(lk, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) != 0) {
        say(c, "output folder '%s' is in use by another run (%s): wait for "
               "it to end, or give this run its own --output-dir",
            c->outdir, lock < 0 ? strerror(errno) : "locked");
        if (lock >= 0)
            close(lock);
        free(c);
        return SS_RUN_FAILED;
    }
    if (o->detach) {
        int d = detach(c, &notify);
        if (d == 1 || d == 2) {
            close(lock); /* the child holds it */
            free(c);
            return d == 1 ? SS_RUN_OK : SS_RUN_FAILED;
        }
        if (d < 0) {
            say(c, "cannot detach: %s", strerror(errno));
            close(lock);
            free(c);
            return SS_RUN_FAILED;
        }
    }
    struct sigaction old[3];
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        close(lock);
        free(c);
        return SS_RUN_FAILED;
    }
    signals(old, 1);
    c->progress = !o->quiet && !o->no_progress && !o->detach &&
                  isatty(STDERR_FILENO);
    struct winsize ws;
    if (c->progress && ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0)
        c->pg.cols = ws.ws_col;
    c->t0 = ss_now_ns();
    if (ss_run_new(&c->run) != 0)
        goto out;
    snprintf(c->run_hex, sizeof c->run_hex, "%016llx",
             (unsigned long long)c->run);
    if (check_engine(c) != 0)
        goto out;
    if (o->data_dir) {
        snprintf(c->data_dir, sizeof c->data_dir, "%s", o->data_dir);
    } else if (c->enclave) {
        if (seal_input(c) != 0)
            goto out;
    } else if (p->source.file) {
        char abs[PATH_MAX];
        if (!realpath(p->source.file, abs)) {
            say(c, "cannot find the input '%s': %s", p->source.file,
                strerror(errno));
            goto out;
        }
        char *sl = strrchr(abs, '/');
        *sl = '\0';
        snprintf(c->data_dir, sizeof c->data_dir, "%s", *abs ? abs : "/");
    }
    if (make_monitor(c) != 0 || (c->enclave && start_keyservice(c) != 0) ||
        write_stack(c) != 0)
        goto out;
    if (!o->quiet)
        out(c, "sstream run: %s on swarm: stack %s, image %s, monitor "
               "%s%s\n",
            p->name, c->name, c->image, ss_monitor_endpoint(c->mon),
            c->enclave ? ", key service here" : "");
    ss_monitor_start(c->mon, c->t0);
    if (deploy(c) != 0)
        goto out;
    if (start_sink(c, STDOUT_FILENO) != 0)
        goto out;
    /* the record that status, logs, stop and scale read */
    snprintf(c->rec.name, sizeof c->rec.name, "%s", c->name);
    snprintf(c->rec.on, sizeof c->rec.on, "swarm");
    if (!realpath(o->pipeline_file, c->rec.pipeline))
        snprintf(c->rec.pipeline, sizeof c->rec.pipeline, "%s",
                 o->pipeline_file);
    snprintf(c->rec.outdir, sizeof c->rec.outdir, "%s", c->outdir);
    snprintf(c->rec.security, sizeof c->rec.security, "%s", p->security);
    gethostname(c->rec.host, sizeof c->rec.host - 1);
    c->rec.pid = (long)getpid();
    c->rec.started = (long long)time(NULL);
    for (size_t s = 0; s < p->nstages; s++) {
        ss_runrec_set_workers(&c->rec, p->stages[s].name,
                              p->stages[s].workers);
        if (s < SS_PIPELINE_MAX_STAGES)
            c->workers[s] = p->stages[s].workers;
    }
    char err[512];
    if (ss_runrec_write(&c->rec, err, sizeof err) != 0)
        say(c, "warning: %s (sstream status cannot follow this run)", err);
    draw(c, ss_now_ns(), "running");
    if (notify >= 0) {
        if (write(notify, "1", 1) != 1) {
            /* the parent is gone: the run goes on */
        }
        close(notify);
        notify = -1;
    }
    status = watch(c);
out:
    if (notify >= 0)
        close(notify); /* the parent prints run.log */
    if (status == SS_RUN_FAILED && c->cause[0] &&
        strcmp(c->cause, "interrupted") != 0)
        say(c, "%s", c->cause);
    stop_child(&c->sink);
    undeploy(c);
    stop_child(&c->ks);
    if (status == SS_RUN_OK) {
        if (c->sink_exited && WIFEXITED(c->sink_status) &&
            WEXITSTATUS(c->sink_status) == 0) {
            ss_monitor_read(c->mon);
            check_record(c); /* a rescale in the last poll's interval */
            if (summary(c) != 0)
                status = SS_RUN_FAILED;
        } else {
            status = SS_RUN_FAILED;
        }
    }
    const char *end = status == SS_RUN_OK            ? "done"
                      : status == SS_RUN_TIMEOUT     ? "timed out"
                      : status == SS_RUN_INTERRUPTED ? "stopped"
                                                     : "failed";
    if (c->mon) {
        ss_monitor_close_metrics(c->mon);
        draw(c, ss_now_ns(), end);
    } else {
        FILE *sf = fopen(c->statusfile, "w");
        if (sf) {
            fprintf(sf, "state: %s\n", end);
            fclose(sf);
        }
    }
    ss_monitor_destroy(&c->mon);
    ss_runkeys_destroy(&c->rk);
    if (c->ctldir[0])
        rm_keys(c->ctldir);
    free(c->names);
    free(c->pubs);
    free(c->nm);
    signals(old, 0);
    close(sig_pipe[0]);
    close(sig_pipe[1]);
    sig_pipe[0] = sig_pipe[1] = -1;
    sig_count = 0;
    close(lock);
    free(c);
    return status;
}
