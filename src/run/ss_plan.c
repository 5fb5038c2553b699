/*
 * ss_plan.c - from a pipeline to its components' command lines,
 * environments and endpoints (see ss_plan.h).
 */
#include "run/ss_plan.h"
#include "core/ss_util.h"
#include "core/ss_buf.h"
#include "lua/ss_stage.h"
#include "net/ss_proto.h"
#include "net/ss_router.h"
#include "securestreams.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* What plan() works on. */
typedef struct plan_ctx {
    ss_plan *pl;
    const ss_pipeline *p;
    const ss_plan_opts *o;
    strv endpoints; /* 2 per router: from (producers), to (consumers) */
} plan_ctx;

static void remove_tmpdir(const char *dir, int depth);

/* See ss_plan.h. */
unsigned long long ss_plan_max_frame(const ss_pipeline *p)
{
    uint64_t f = SS_HDR_SIZE + p->batch_size + (64u << 10) + 256u;
    if (f <= SS_ROUTER_FRAME_DEFAULT)
        return 0;
    return f > (uint64_t)SS_PROTO_MSG_MAX ? (unsigned long long)SS_PROTO_MSG_MAX
                                          : (unsigned long long)f;
}

/* A run killed with SIGKILL leaves its endpoint folder behind. Each run
 * holds a lock on <folder>/lock while it lives: a folder of ours whose
 * lock can be taken belongs to a dead run and goes. A folder without the
 * file is being created (or is not ours to judge): it stays. */
static void sweep_dead_tmpdirs(const char *base)
{
    DIR *d = opendir(base);
    if (!d)
        return;
    struct dirent *e;
    char path[PATH_MAX], lock[PATH_MAX + 8];
    int swept = 0;
    while ((e = readdir(d)) && swept < 64) {
        if (strncmp(e->d_name, "sstream-run-", 12) != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", base, e->d_name);
        struct stat st;
        if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode) ||
            st.st_uid != geteuid())
            continue;
        snprintf(lock, sizeof lock, "%s/lock", path);
        int fd = open(lock, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            continue;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            remove_tmpdir(path, 2);
            swept++;
        }
        close(fd);
    }
    closedir(d);
}

/* Makes the run's private folder (ipc endpoints, key folders), locked
 * while the run lives (see sweep_dead_tmpdirs). */
static int make_tmpdir(plan_ctx *cx)
{
    const char *base = ss_env("TMPDIR", "/tmp");
    char tmpl[PATH_MAX];
    /* ipc paths must fit sun_path (108 bytes) */
    if (strlen(base) > 60)
        base = "/tmp";
    sweep_dead_tmpdirs(base);
    snprintf(tmpl, sizeof tmpl, "%s/sstream-run-XXXXXX", base);
    if (!mkdtemp(tmpl)) {
        snprintf(tmpl, sizeof tmpl, "/tmp/sstream-run-XXXXXX");
        if (!mkdtemp(tmpl))
            return SS_EIO;
    }
    cx->pl->tmpdir = strdup(tmpl);
    if (!cx->pl->tmpdir)
        return SS_ENOMEM;
    char lock[PATH_MAX + 8];
    snprintf(lock, sizeof lock, "%s/lock", tmpl);
    int fd = open(lock, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        fd = -1;
    }
    cx->pl->tmpdir_lock = fd; /* without it the folder is just not swept */
    return 0;
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

static int make_endpoints(plan_ctx *cx, size_t nrouters)
{
    int rc;
    if ((rc = make_tmpdir(cx)))
        return rc;
    if (!cx->o->tcp) {
        for (size_t r = 1; r <= nrouters; r++)
            if ((rc = strv_push(&cx->endpoints, "ipc://%s/r%zu-in",
                                cx->pl->tmpdir, r)) ||
                (rc = strv_push(&cx->endpoints, "ipc://%s/r%zu-out",
                                cx->pl->tmpdir, r)))
                return rc;
        return asprintf(&cx->pl->control, "ipc://%s/control", cx->pl->tmpdir) < 0
                   ? SS_ENOMEM
                   : 0;
    }
    int *ports = calloc(2 * nrouters, sizeof *ports);
    if (!ports)
        return SS_ENOMEM;
    rc = free_ports(2 * nrouters, ports);
    for (size_t i = 0; !rc && i < 2 * nrouters; i++)
        rc = strv_push(&cx->endpoints, "tcp://127.0.0.1:%d", ports[i]);
    free(ports);
    if (!rc)
        rc = (cx->pl->control = strdup("tcp://127.0.0.1:*")) ? 0 : SS_ENOMEM;
    return rc;
}

/* Endpoint where router r (from 1) listens for producers / consumers. */
static const char *ep_from(plan_ctx *cx, size_t r)
{
    return cx->endpoints.v[2 * (r - 1)];
}
static const char *ep_to(plan_ctx *cx, size_t r)
{
    return cx->endpoints.v[2 * (r - 1) + 1];
}

static ss_plan_comp *add_child(plan_ctx *cx, const char *name,
                               const char *role, int stage)
{
    ss_plan_comp *c = &cx->pl->comps[cx->pl->ncomps++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->role = role;
    c->stage = stage;
    c->hop = -1;
    return c;
}

/* Checkpoints (checkpoint_ms): where the source, the workers and the
 * sink write their part of a checkpoint (resume points, snapshots): the
 * run folder's ckpt/, which the workers can reach whatever their uid;
 * the supervisor copies a complete epoch into the output folder. */
static int push_checkpoints(plan_ctx *cx, strv *a)
{
    if (!cx->p->checkpoint_ms)
        return 0;
    int rc = strv_push(a, "--checkpoint-dir");
    return rc ? rc : strv_push(a, "%s/ckpt", cx->pl->tmpdir);
}

/* Sets the log and rejects paths of c; removes stale files. */
static int child_files(plan_ctx *cx, ss_plan_comp *c, int log, int rejects)
{
    if (log && asprintf(&c->log_path, "%s/%s.log", cx->o->logdir, c->name) < 0)
        return SS_ENOMEM;
    if (rejects) {
        if (asprintf(&c->rejects, "%s/%s.jsonl", cx->o->rejdir, c->name) < 0)
            return SS_ENOMEM;
        unlink(c->rejects);
    }
    return 0;
}

/* Names c's key folder (and its enclave's) and says what it must hold
 * (docs/SECURITY.md, keys by role): the data key only where clear data
 * is handled by the component's own process (source unless its input is
 * sealed, sink, a worker in encrypted mode or with backend none); an
 * enclave worker the key service's public key, and platform.key in its
 * enclave's own folder. */
static int comp_keys(plan_ctx *cx, ss_plan_comp *c)
{
    const ss_pipeline *p = cx->p;
    int secure = strcmp(p->security, "plain") != 0;
    int enclave = strcmp(p->security, "enclave") == 0;
    const char *backend = cx->o->enclave ? cx->o->enclave : "sandbox";
    if (asprintf(&c->keydir, "%s/keys/%s", cx->pl->tmpdir, c->name) < 0) {
        c->keydir = NULL;
        return SS_ENOMEM;
    }
    if (!strcmp(c->role, "router"))
        c->keys = SS_RK_ROUTER;
    else if (!secure)
        c->keys = 0;
    else if (!strcmp(c->role, "sink"))
        c->keys = SS_RK_DATA;
    else if (!strcmp(c->role, "source"))
        c->keys = strcmp(p->source.format, "sealed") ? SS_RK_DATA : 0;
    else if (!enclave || !strcmp(backend, "none"))
        c->keys = SS_RK_DATA;
    else
        c->keys = SS_RK_KEYSERVICE;
    if (c->keys & SS_RK_KEYSERVICE) {
        if (asprintf(&c->enclave_keydir, "%s/keys/%s.enclave",
                     cx->pl->tmpdir, c->name) < 0) {
            c->enclave_keydir = NULL;
            return SS_ENOMEM;
        }
    }
    return 0;
}

/* Appends the security options of a source, worker or sink: --security,
 * and outside plain mode its key folder, the key service, the enclave's
 * key folder and backend (workers), and --ordered (the sink, when every
 * stage has one worker slot, so every stream keeps its order on the way;
 * a stage with spare slots may have more). */
static int push_security(const plan_ctx *cx, const ss_plan_comp *c,
                         strv *a, const char *role)
{
    const ss_pipeline *p = cx->p;
    int plain = strcmp(p->security, "plain") == 0;
    if (plain && strcmp(role, "worker") != 0)
        return 0;
    int rc = strv_push(a, "--security");
    if (!rc)
        rc = strv_push(a, "%s", p->security);
    if (rc || plain)
        return rc;
    if ((rc = strv_push(a, "--keys")) ||
        (rc = strv_push(a, "%s", c->keydir)))
        return rc;
    /* links: sealed: its links to the routers without CurveZMQ (the
     * key service's and the monitor's keep it) */
    if (ss_pipeline_links_sealed(p) &&
        ((rc = strv_push(a, "--links")) || (rc = strv_push(a, "sealed"))))
        return rc;
    if (c->enclave_keydir &&
        ((rc = strv_push(a, "--enclave-keys")) ||
         (rc = strv_push(a, "%s", c->enclave_keydir))))
        return rc;
    if (strcmp(role, "worker") == 0 &&
        strcmp(p->security, "enclave") == 0) {
        if (cx->o->keyservice &&
            ((rc = strv_push(a, "--keyservice")) ||
             (rc = strv_push(a, "%s", cx->o->keyservice))))
            return rc;
        if (cx->o->enclave && ((rc = strv_push(a, "--enclave")) ||
                              (rc = strv_push(a, "%s", cx->o->enclave))))
            return rc;
    }
    if (strcmp(role, "sink") == 0) {
        int ordered = 1;
        for (size_t s = 0; s < p->nstages; s++)
            ordered &= cx->pl->slots[s] == 1; /* spares: may grow */
        if (ordered)
            rc = strv_push(a, "--ordered");
    }
    return rc;
}

/* Appends the script limits every stage runs with (worker, sink), and
 * the pipeline's batch_size when it is not the default: a worker's
 * output batches, and the credits it offers (as many batches as
 * SS_BATCH_INFLIGHT_BYTES holds, ss_node_credits), follow it. */
static int push_limits(const plan_ctx *cx, strv *a)
{
    const ss_pipeline *p = cx->p;
    int rc = 0;
    if (p->batch_size != SS_BATCH_DEFAULT_SIZE &&
        ((rc = strv_push(a, "--batch-size")) ||
         (rc = strv_push(a, "%llu", (unsigned long long)p->batch_size))))
        return rc;
    if (p->max_instructions &&
        ((rc = strv_push(a, "--max-instructions")) ||
         (rc = strv_push(a, "%llu", (unsigned long long)p->max_instructions))))
        return rc;
    return 0;
}

/* Appends "name," to b. */
static int add_name(ss_buf *b, const char *fmt, const char *a, int i)
{
    char name[SS_STATS_NAME_MAX + 16];
    int n = snprintf(name, sizeof name, fmt, a, i);
    return ss_buf_append(b, name, (size_t)n) || ss_buf_append(b, ",", 1)
               ? SS_ENOMEM
               : 0;
}

/* *out = the names that may join router r (1-based), comma-separated
 * (its --peers): on FRONT the source's parts or the previous hop's
 * workers, on BACK the next hop's workers or the sink (heads[h]: the
 * first stage of hop h). Caller frees. */
static int router_peers(const ss_pipeline *p, const int *slots,
                        const size_t *heads, size_t nhops, size_t r,
                        char **out)
{
    ss_buf b = SS_BUF_INIT;
    int rc = 0;
    if (r == 1)
        for (int i = 0; i < p->source.parts && !rc; i++)
            rc = add_name(&b, "%s-%d", "source", i);
    else
        for (int w = 1; w <= slots[heads[r - 2]] && !rc; w++)
            rc = add_name(&b, "%s-%d", p->stages[heads[r - 2]].name, w);
    if (r == nhops + 1)
        rc = rc ? rc : add_name(&b, "%s", "sink", 0);
    else
        for (int w = 1; w <= slots[heads[r - 1]] && !rc; w++)
            rc = add_name(&b, "%s-%d", p->stages[heads[r - 1]].name, w);
    if (!rc && b.len)
        b.data[b.len - 1] = '\0'; /* the last comma */
    if (rc || !b.len) {
        ss_buf_release(&b);
        *out = NULL;
        return rc;
    }
    *out = b.data;
    return 0;
}

/* Appends the keyed options of worker w (1..) of stage s, which runs
 * the stages s..last chained: --index when its stage is partitioned or
 * broadcast (its router routes by slot), --partitions N when it is
 * partitioned (its key groups), and --partition-by /
 * --broadcast when the stage after last is. */
static int push_keyed(const plan_ctx *cx, strv *a, size_t s, size_t last,
                      int w)
{
    const ss_pipeline *p = cx->p;
    const ss_stage_conf *sc = &p->stages[s];
    const ss_stage_conf *next =
        last + 1 < p->nstages ? &p->stages[last + 1] : NULL;
    int rc = 0;
    if ((sc->partition_by || sc->broadcast) &&
        ((rc = strv_push(a, "--index")) || (rc = strv_push(a, "%d", w))))
        return rc;
    /* a partitioned stage's workers know their key groups (a restore
     * with another worker count takes those) */
    if (sc->partition_by &&
        ((rc = strv_push(a, "--partitions")) ||
         (rc = strv_push(a, "%d", sc->workers))))
        return rc;
    if (next && next->partition_by &&
        ((rc = strv_push(a, "--partition-by")) ||
         (rc = strv_push(a, "%s", next->partition_by))))
        return rc;
    if (next && next->broadcast &&
        ((rc = strv_push(a, "--broadcast")) ||
         (rc = strv_push(a, "%d", next->workers))))
        return rc;
    return 0;
}

/* Whether stage s keeps state across events (ss_stage_stateful): its
 * script is loaded once in a sandboxed, capped Lua state, as an enclave
 * would. 1, 0, or -1 if it does not load that way (then nothing is
 * expected of it: the worker reports its own failure). */
int ss_plan_stage_stateful(const ss_stage_conf *sc)
{
    ss_stage_opts so;
    memset(&so, 0, sizeof so);
    so.script_path = sc->script;
    so.name = sc->name;
    so.stage = sc->name;
    so.mem_limit = 64u << 20;
    so.sandboxed = 1;
    so.host_errors = 1;
    ss_stage *st = NULL;
    char err[256];
    if (ss_stage_new(&so, &st, err, sizeof err))
        return -1;
    int stateful = ss_stage_stateful(st);
    ss_stage_destroy(&st);
    return stateful;
}

/* See ss_plan.h. */
int ss_plan_finals(const ss_pipeline *p, char **out)
{
    *out = NULL;
    ss_buf b = SS_BUF_INIT;
    size_t done = SIZE_MAX; /* the chain whose workers are listed */
    for (size_t s = 0; s < p->nstages; s++) {
        const ss_stage_conf *sc = &p->stages[s];
        if (ss_plan_stage_stateful(sc) != 1)
            continue;
        size_t head = s;
        while (head > 0 && ss_pipeline_chained(p, head))
            head--;
        if (head == done)
            continue;
        done = head;
        for (int w = 1; w <= sc->workers; w++) {
            char name[SS_STATS_NAME_MAX + 8];
            int n = snprintf(name, sizeof name, "%s%s-%d",
                             b.len ? "," : "", p->stages[head].name, w);
            if (ss_buf_append(&b, name, (size_t)n)) {
                ss_buf_release(&b);
                return SS_ENOMEM;
            }
        }
    }
    if (b.len && ss_buf_append(&b, "", 1)) {
        ss_buf_release(&b);
        return SS_ENOMEM;
    }
    *out = b.len ? b.data : NULL; /* ss_buf memory is malloc'd */
    if (!b.len)
        ss_buf_release(&b);
    return 0;
}

/* Adds SS_CONTROL_KEYS (its key folder: its CURVE pair, the monitor's
 * public key) to every component's environment. */
static int control_keys(plan_ctx *cx)
{
    for (size_t i = 0; i < cx->pl->ncomps; i++) {
        ss_plan_comp *c = &cx->pl->comps[i];
        strv e = {c->env, 0, 0};
        while (e.v && e.v[e.n])
            e.n++;
        e.cap = e.n + 1;
        int rc = strv_push(&e, "SS_CONTROL_KEYS=%s", c->keydir);
        c->env = e.v;
        if (rc)
            return rc;
    }
    return 0;
}

/* Sets pl->slots and pl->stateful (ss_plan.h): spare worker slots for
 * the stages a rescale may give workers while the run goes on. */
static void plan_slots(plan_ctx *cx)
{
    const ss_pipeline *p = cx->p;
    for (size_t s = 0; s < p->nstages && s < SS_PIPELINE_MAX_STAGES; s++) {
        const ss_stage_conf *sc = &p->stages[s];
        int chained = ss_pipeline_chained(p, s) ||
                      (s + 1 < p->nstages && ss_pipeline_chained(p, s + 1));
        cx->pl->slots[s] = sc->workers;
        cx->pl->stateful[s] = cx->o->scale_slots > 0
                                  ? ss_plan_stage_stateful(sc)
                                  : -1;
        /* stateless and dealt by credit: grows live; partitioned and
         * stateful in a run with checkpoints: at a checkpoint (the run
         * resumes from it with another count: the routers' and workers'
         * --partitions change then) */
        int keyed = sc->partition_by && cx->pl->stateful[s] == 1 &&
                    p->checkpoint_ms;
        if (cx->o->scale_slots <= 0 || chained || sc->broadcast ||
            (!keyed && (sc->partition_by || cx->pl->stateful[s] != 0)))
            continue;
        int n = sc->workers + cx->o->scale_slots;
        cx->pl->slots[s] = n > SS_PIPELINE_MAX_WORKERS
                               ? (sc->workers > SS_PIPELINE_MAX_WORKERS
                                      ? sc->workers
                                      : SS_PIPELINE_MAX_WORKERS)
                               : n;
    }
}

/* Builds every component's command line and environment. */
static int plan(plan_ctx *cx)
{
    const ss_pipeline *p = cx->p;
    /* hops: heads[h] is the first stage of hop h, the stages up to the
     * next head are chained into its workers */
    size_t heads[SS_PIPELINE_MAX_STAGES], nhops = 0;
    for (size_t s = 0; s < p->nstages && s < SS_PIPELINE_MAX_STAGES; s++)
        if (!ss_pipeline_chained(p, s))
            heads[nhops++] = s;
    cx->pl->nhops = nhops;
    size_t nrouters = nhops + 1;
    size_t total = nrouters + 2 + (size_t)ss_pipeline_total_workers(p);
    plan_slots(cx);
    for (size_t s = 0; s < p->nstages && s < SS_PIPELINE_MAX_STAGES; s++)
        total += (size_t)(cx->pl->slots[s] - p->stages[s].workers);
    cx->pl->comps = calloc(total, sizeof *cx->pl->comps);
    cx->pl->virt = calloc(total, sizeof *cx->pl->virt);
    if (!cx->pl->comps || !cx->pl->virt)
        return SS_ENOMEM;
    int rc = make_endpoints(cx, nrouters);
    if (rc)
        return rc;

    char name[SS_STATS_NAME_MAX];
    for (size_t r = 1; r <= nrouters; r++) {
        snprintf(name, sizeof name, "router-%zu", r);
        ss_plan_comp *c = add_child(cx, name, "router", -1);
        if ((rc = comp_keys(cx, c)))
            return rc;
        strv a = {0}, e = {0};
        char *allow = NULL;
        if ((rc = strv_push(&a, "%s", cx->o->argv0)) ||
            (rc = strv_push(&a, "router")) ||
            (rc = strv_push(&a, "--from")) ||
            (rc = strv_push(&a, "%s", ep_from(cx, r))) ||
            (rc = strv_push(&a, "--to")) ||
            (rc = strv_push(&a, "%s", ep_to(cx, r))) ||
            (rc = strv_push(&a, "--producers")) ||
            (rc = strv_push(&a, "1")) || (rc = strv_push(&a, "--name")) ||
            (rc = strv_push(&a, "%s", name)) ||
            /* batches larger than a router's default frame limit: room
             * for a whole batch, its last event and its sealing */
            (ss_plan_max_frame(p) &&
             ((rc = strv_push(&a, "--max-frame")) ||
              (rc = strv_push(&a, "%llu", ss_plan_max_frame(p))))) ||
            /* in front of a partitioned or broadcast stage: its slots */
            (r <= nhops &&
             (p->stages[heads[r - 1]].partition_by ||
              p->stages[heads[r - 1]].broadcast) &&
             ((rc = strv_push(&a, "--partitions")) ||
              (rc = strv_push(&a, "%d", p->stages[heads[r - 1]].workers)))) ||
            /* CurveZMQ: the routers' pair and the allowed peers only
             * (links: sealed: none on the data links) */
            (strcmp(p->security, "plain") != 0 &&
             !ss_pipeline_links_sealed(p) &&
             ((rc = strv_push(&a, "--keys")) ||
              (rc = strv_push(&a, "%s", c->keydir)))) ||
            (rc = strv_push(&e, "FROM=%s", ep_from(cx, r))) ||
            (rc = strv_push(&e, "TO=%s", ep_to(cx, r))) ||
            /* only the components of this run may join (--peers) */
            (rc = router_peers(p, cx->pl->slots, heads, nhops, r,
                               &allow)) ||
            (allow && ((rc = strv_push(&a, "--peers")) ||
                       (rc = strv_push(&a, "%s", allow)))))
            goto fail;
        free(allow);
        c->argv = a.v;
        c->env = e.v;
        if ((rc = child_files(cx, c, 1, 0)))
            return rc;
        continue;
    fail:
        free(allow);
        strv_free(a.v);
        strv_free(e.v);
        return rc;
    }

    /* the sink; outside plain mode it is told which workers keep state,
     * so that it fails the run if one of their results does not arrive */
    char *finals = NULL;
    if (strcmp(p->security, "plain") != 0 &&
        (rc = ss_plan_finals(p, &finals)))
        return rc;
    {
        cx->pl->sink = (int)cx->pl->ncomps;
        ss_plan_comp *c = add_child(cx, "sink", "sink", -1);
        if ((rc = child_files(cx, c, 0, 1)) || (rc = comp_keys(cx, c)))
            return rc;
        strv a = {0}, e = {0};
        const char *from = ep_to(cx, nrouters);
        if ((rc = strv_push(&a, "%s", cx->o->argv0)) ||
            (rc = strv_push(&a, "sink")) ||
            (rc = strv_push(&a, "%s", p->sink.script)) ||
            (rc = strv_push(&a, "--from")) ||
            (rc = strv_push(&a, "%s", from)) ||
            (rc = strv_push(&a, "--name")) || (rc = strv_push(&a, "sink")) ||
            (rc = strv_push(&a, "--rejects")) ||
            (rc = strv_push(&a, "%s", c->rejects)) ||
            (rc = push_checkpoints(cx, &a)) ||
            (rc = push_security(cx, c, &a, "sink")) ||
            (rc = push_limits(cx, &a)) ||
            (finals && ((rc = strv_push(&a, "--finals")) ||
                        (rc = strv_push(&a, "%s", finals)))) ||
            (rc = strv_push(&e, "FROM=%s", from)))
            goto sink_fail;
        free(finals);
        finals = NULL;
        if (p->sink.output) {
            if (p->sink.output[0] == '/')
                rc = strv_push(&e, "OUTPUT=%s", p->sink.output);
            else
                rc = strv_push(&e, "OUTPUT=%s/%s", cx->o->outdir,
                               p->sink.output);
            if (rc)
                goto sink_fail;
        }
        c->argv = a.v;
        c->env = e.v;
        goto sink_ok;
    sink_fail:
        free(finals);
        strv_free(a.v);
        strv_free(e.v);
        return rc;
    sink_ok:;
    }

    for (size_t hop = 0; hop < nhops; hop++) {
        size_t s = heads[hop];
        size_t end = hop + 1 < nhops ? heads[hop + 1] : p->nstages;
        const ss_stage_conf *sc = &p->stages[s];
        for (int w = 1; w <= cx->pl->slots[s]; w++) {
            snprintf(name, sizeof name, "%s-%d", sc->name, w);
            ss_plan_comp *c = add_child(cx, name, "worker", (int)s);
            c->hop = (int)hop;
            c->spare = w > sc->workers;
            if ((rc = child_files(cx, c, 1, 1)) || (rc = comp_keys(cx, c)))
                return rc;
            strv a = {0}, e = {0};
            const char *from = ep_to(cx, hop + 1), *to = ep_from(cx, hop + 2);
            for (size_t k = s + 1; k < end; k++) {
                ss_plan_virt *v = &cx->pl->virt[cx->pl->nvirt++];
                snprintf(v->name, sizeof v->name, "%s-%d",
                         p->stages[k].name, w);
                v->stage = (int)k;
                v->host = (int)(c - cx->pl->comps);
            }
            if ((rc = strv_push(&a, "%s", cx->o->argv0)) ||
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
                (rc = push_checkpoints(cx, &a)) ||
                (rc = push_security(cx, c, &a, "worker")) ||
                (rc = push_limits(cx, &a)) ||
                (rc = push_keyed(cx, &a, s, end - 1, w)) ||
                (rc = strv_push(&e, "FROM=%s", from)) ||
                (rc = strv_push(&e, "TO=%s", to))) {
                strv_free(a.v);
                strv_free(e.v);
                return rc;
            }
            for (size_t k = s + 1; k < end && !rc; k++)
                if (!(rc = strv_push(&a, "--chain")))
                    rc = strv_push(&a, "%s=%s", p->stages[k].name,
                                   p->stages[k].script);
            if (rc) {
                strv_free(a.v);
                strv_free(e.v);
                return rc;
            }
            c->argv = a.v;
            c->env = e.v;
        }
    }

    /* the source */
    cx->pl->source = (int)cx->pl->ncomps;
    ss_plan_comp *c = add_child(cx, "source", "source", -1);
    if ((rc = child_files(cx, c, 1, 1)) || (rc = comp_keys(cx, c)))
        return rc;
    strv a = {0}, e = {0};
    const char *to = ep_from(cx, 1);
    const char *file = p->source.file ? p->source.file : "";
    /* checkpoints: a file read in parts (a followed file or a sealed one
     * is not replayed from an offset: no barriers) */
    int ckpt = p->checkpoint_ms && !p->source.follow &&
               strcmp(p->source.format, "sealed") != 0;
    if ((rc = strv_push(&a, "%s", cx->o->argv0)) ||
        (rc = strv_push(&a, "source")) || (rc = strv_push(&a, "--to")) ||
        (rc = strv_push(&a, "%s", to)) || (rc = strv_push(&a, "--file")) ||
        (rc = strv_push(&a, "%s", file)) ||
        (rc = strv_push(&a, "--parts")) ||
        (rc = strv_push(&a, "%d", p->source.parts)) ||
        (rc = strv_push(&a, "--format")) ||
        (rc = strv_push(&a, "%s", p->source.format)) ||
        (p->source.header && (rc = strv_push(&a, "--header"))) ||
        (p->source.follow && (rc = strv_push(&a, "--follow"))) ||
        (p->source.linger_ms >= 0 &&
         ((rc = strv_push(&a, "--linger-ms")) ||
          (rc = strv_push(&a, "%d", p->source.linger_ms)))) ||
        (p->source.rate &&
         ((rc = strv_push(&a, "--rate")) ||
          (rc = strv_push(&a, "%llu",
                          (unsigned long long)p->source.rate)))) ||
        (ckpt && ((rc = strv_push(&a, "--checkpoint-interval")) ||
                  (rc = strv_push(&a, "%u", p->checkpoint_ms)) ||
                  (rc = push_checkpoints(cx, &a)))) ||
        (rc = strv_push(&a, "--batch-size")) ||
        (rc = strv_push(&a, "%llu", (unsigned long long)p->batch_size)) ||
        (rc = strv_push(&a, "--name")) || (rc = strv_push(&a, "source")) ||
        (rc = strv_push(&a, "--rejects")) ||
        (rc = strv_push(&a, "%s", c->rejects)) ||
        (rc = push_security(cx, c, &a, "source")) ||
        (rc = strv_push(&e, "TO=%s", to)) ||
        (rc = strv_push(&e, "DATA_FILE=%s", file))) {
        strv_free(a.v);
        strv_free(e.v);
        return rc;
    }
    c->argv = a.v;
    c->env = e.v;
    return control_keys(cx);
}
/* See ss_plan.h. */
size_t ss_plan_flow_order(const ss_plan *pl, size_t k)
{
    if (k == 0)
        return (size_t)pl->source;
    if (k == pl->ncomps - 1)
        return (size_t)pl->sink;
    size_t n = 1;
    size_t nrouters = pl->nhops + 1;
    for (size_t r = 0; r < nrouters; r++) {
        if (n++ == k)
            return r; /* routers come first in comps */
        for (size_t i = 0; i < pl->ncomps; i++)
            if (pl->comps[i].hop == (int)r && n++ == k)
                return i;
    }
    return (size_t)pl->sink;
}

/* Removes the run folder and whatever the components left in it (key
 * folders two levels down; never follows a symbolic link). */
static void remove_tmpdir(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char path[PATH_MAX];
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            struct stat st;
            if (depth > 0 && lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
                remove_tmpdir(path, depth - 1);
            else
                unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* See ss_plan.h. */
int ss_plan_new(const ss_pipeline *p, const ss_plan_opts *o, ss_plan **out)
{
    *out = NULL;
    ss_plan *pl = calloc(1, sizeof *pl);
    if (!pl)
        return SS_ENOMEM;
    pl->sink = pl->source = -1;
    pl->tmpdir_lock = -1;
    pl->nstages = p->nstages;
    plan_ctx cx = {pl, p, o, {0}};
    int rc = plan(&cx);
    pl->endpoints = cx.endpoints.v;
    if (rc) {
        int en = errno; /* the caller tells why with it */
        ss_plan_destroy(&pl);
        errno = en;
        return rc;
    }
    *out = pl;
    return 0;
}

/* See ss_plan.h. */
void ss_plan_destroy(ss_plan **pp)
{
    if (!pp || !*pp)
        return;
    ss_plan *pl = *pp;
    for (size_t i = 0; i < pl->ncomps; i++) {
        ss_plan_comp *c = &pl->comps[i];
        strv_free(c->argv);
        strv_free(c->env);
        free(c->log_path);
        free(c->rejects);
        free(c->keydir);
        free(c->enclave_keydir);
    }
    free(pl->comps);
    free(pl->virt);
    if (pl->tmpdir)
        remove_tmpdir(pl->tmpdir, 2);
    if (pl->tmpdir_lock >= 0)
        close(pl->tmpdir_lock);
    strv_free(pl->endpoints);
    free(pl->tmpdir);
    free(pl->control);
    free(pl);
    *pp = NULL;
}
