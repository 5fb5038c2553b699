/*
 * ss_monitor.c - the control endpoint of a run (see ss_monitor.h).
 */
#include "run/ss_monitor.h"
#include "core/ss_buf.h"
#include "core/ss_util.h"
#include "net/ss_metrics_http.h"
#include "securestreams.h"
#include "wire/ss_batch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zmq.h>

struct ss_monitor {
    void *zctx, *pull;
    ss_zap *zap;       /* with auth: the allow list */
    int authed;        /* messages must carry a ZAP user id */
    char *done_from;   /* with auth: whose DONE counts */
    unsigned long dropped;
    char *endpoint;
    FILE *metrics;
    ss_buf line; /* one line of the metrics file */
    ss_monitor_comp *comps;
    size_t n, cap;
    char **groups; /* keys that report for GROUP-N (replicas) */
    size_t ngroups;
    uint64_t t0, done_ns;
    double epoch0;
};

static double realtime_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* See ss_monitor.h. */
int ss_monitor_new(const char *endpoint, const char *metrics_path,
                   const ss_monitor_auth *auth, ss_monitor **out, char *err,
                   size_t errlen)
{
    *out = NULL;
    ss_monitor *m = calloc(1, sizeof *m);
    if (!m || !(m->endpoint = strdup(endpoint))) {
        free(m);
        snprintf(err, errlen, "out of memory");
        return SS_ENOMEM;
    }
    int rc = SS_EIO;
    if (metrics_path && !(m->metrics = fopen(metrics_path, "w"))) {
        snprintf(err, errlen, "metrics file '%s': %s", metrics_path,
                 strerror(errno));
        goto fail;
    }
    if (!(m->zctx = zmq_ctx_new()) ||
        !(m->pull = zmq_socket(m->zctx, ZMQ_PULL))) {
        snprintf(err, errlen, "control socket: %s", zmq_strerror(errno));
        goto fail;
    }
    int linger = 0, hwm = 100000;
    zmq_setsockopt(m->pull, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(m->pull, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (auth) {
        m->authed = 1;
        if (auth->done_from && !(m->done_from = strdup(auth->done_from))) {
            snprintf(err, errlen, "out of memory");
            rc = SS_ENOMEM;
            goto fail;
        }
        char why[256];
        if (ss_curve_serve_auth(m->zctx, m->pull, &auth->curve, &m->zap,
                                why, sizeof why) != 0) {
            snprintf(err, errlen, "control channel: %s", why);
            goto fail;
        }
    }
    if (zmq_bind(m->pull, endpoint) != 0) {
        snprintf(err, errlen, "cannot bind the control endpoint %s: %s",
                 endpoint, zmq_strerror(errno));
        goto fail;
    }
    /* with auth, who may talk is decided by CURVE keys, not by the file
     * mode: components of other uids must be able to connect */
    if (auth && strncmp(endpoint, "ipc://", 6) == 0)
        chmod(endpoint + 6, 0666);
    if (strncmp(endpoint, "tcp://", 6) == 0) { /* the port the system chose */
        char ep[256];
        size_t n = sizeof ep;
        if (zmq_getsockopt(m->pull, ZMQ_LAST_ENDPOINT, ep, &n) != 0) {
            snprintf(err, errlen, "control endpoint: %s",
                     zmq_strerror(errno));
            goto fail;
        }
        free(m->endpoint);
        if (!(m->endpoint = strdup(ep))) {
            snprintf(err, errlen, "out of memory");
            rc = SS_ENOMEM;
            goto fail;
        }
    }
    m->t0 = ss_now_ns();
    m->epoch0 = realtime_now();
    *out = m;
    return 0;
fail:
    ss_monitor_destroy(&m);
    return rc;
}

/* See ss_monitor.h. */
unsigned long ss_monitor_refused(const ss_monitor *m)
{
    return m->dropped + ss_zap_refused(m->zap);
}

/* See ss_monitor.h. */
const char *ss_monitor_endpoint(const ss_monitor *m) { return m->endpoint; }

/* See ss_monitor.h. */
void *ss_monitor_socket(const ss_monitor *m) { return m->pull; }

/* See ss_monitor.h. */
int ss_monitor_add(ss_monitor *m, const char *name)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        ss_monitor_comp *c = realloc(m->comps, cap * sizeof *c);
        if (!c)
            return SS_ENOMEM;
        m->comps = c;
        m->cap = cap;
    }
    ss_monitor_comp *c = &m->comps[m->n];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    return (int)m->n++;
}

/* See ss_monitor.h. */
int ss_monitor_add_hosted(ss_monitor *m, const char *name, const char *host)
{
    int i = ss_monitor_add(m, name);
    if (i >= 0)
        snprintf(m->comps[i].host, sizeof m->comps[i].host, "%s", host);
    return i;
}

/* See ss_monitor.h. */
int ss_monitor_allow_replicas(ss_monitor *m, const char *group)
{
    char **g = realloc(m->groups, (m->ngroups + 1) * sizeof *g);
    if (!g)
        return SS_ENOMEM;
    m->groups = g;
    if (!(g[m->ngroups] = strdup(group)))
        return SS_ENOMEM;
    m->ngroups++;
    return 0;
}

/* The replica group of name (GROUP-N, N digits from 1), or NULL. */
static const char *replica_group(const ss_monitor *m, const char *name)
{
    for (size_t i = 0; i < m->ngroups; i++) {
        size_t l = strlen(m->groups[i]);
        const char *d = name + l + 1;
        if (strncmp(name, m->groups[i], l) != 0 || name[l] != '-' ||
            *d < '1' || *d > '9')
            continue;
        while (*d >= '0' && *d <= '9')
            d++;
        if (!*d)
            return m->groups[i];
    }
    return NULL;
}

/* A sample named s->name may come from `from` (the key's name): its own,
 * for a replica its service's, or, for a chained stage, its host
 * worker's. */
static int may_report(const ss_monitor *m, const ss_stats *s,
                      const char *from)
{
    if (strcmp(s->name, from) == 0)
        return 1;
    const char *grp = replica_group(m, s->name);
    if (grp && strcmp(grp, from) == 0)
        return 1;
    for (size_t i = 0; i < m->n; i++)
        if (m->comps[i].host[0] && strcmp(m->comps[i].name, s->name) == 0)
            return strcmp(m->comps[i].host, from) == 0;
    return 0;
}

/* See ss_monitor.h. */
void ss_monitor_set_pid(ss_monitor *m, size_t i, pid_t pid)
{
    if (i < m->n)
        m->comps[i].pid = pid;
}

/* See ss_monitor.h. */
void ss_monitor_start(ss_monitor *m, uint64_t t0)
{
    m->t0 = t0;
    m->epoch0 = realtime_now();
}

/* See ss_monitor.h. */
uint64_t ss_monitor_done_ns(const ss_monitor *m) { return m->done_ns; }

/* See ss_monitor.h. */
const ss_monitor_comp *ss_monitor_get(const ss_monitor *m, size_t i)
{
    return i < m->n ? &m->comps[i] : NULL;
}

/* See ss_monitor.h. */
void ss_monitor_rates(const ss_monitor_comp *c, uint64_t now,
                      uint64_t stale_ns, double *ev, double *bytes)
{
    if (c->have_st && !c->st.final && now - c->st_ns < stale_ns) {
        *ev += c->ev_rate;
        *bytes += c->byte_rate;
    }
}

/* Appends one line of the metrics file (docs/PIPELINE.md) for s. */
static void write_metrics(ss_monitor *m, const ss_stats *s, uint64_t now)
{
    ss_buf *b = &m->line;
    ss_buf_reset(b);
    int rc = ss_buf_printf(b, "{\"ts\":%.3f,\"t\":%.3f,\"name\":",
                           m->epoch0 + (double)(now - m->t0) / 1e9,
                           (double)(now - m->t0) / 1e9);
    if (!rc)
        rc = ss_buf_json_str(b, s->name, strlen(s->name));
    if (!rc)
        rc = ss_buf_printf(b, ",\"role\":");
    if (!rc)
        rc = ss_buf_json_str(b, s->role, strlen(s->role));
    if (!rc)
        rc = ss_buf_printf(b, ",\"stage\":");
    if (!rc)
        rc = ss_buf_json_str(b, s->stage, strlen(s->stage));
    if (!rc)
        rc = ss_buf_printf(b, ",\"pid\":%lld", (long long)s->pid);
#define FIELD(f, ...)                                                        \
    if (!rc)                                                                 \
        rc = ss_buf_printf(b, ",\"" #f "\":%llu", (unsigned long long)s->f);
    SS_STATS_COUNTERS(FIELD)
#undef FIELD
    if (!rc)
        rc = ss_buf_printf(b, ",\"final\":%s}\n",
                           s->final ? "true" : "false");
    if (!rc) /* a sample that does not fit in memory is left out */
        fwrite(b->data, 1, b->len, m->metrics);
}

static ss_monitor_comp *find_comp(ss_monitor *m, const ss_stats *s)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->comps[i].name, s->name) == 0)
            return &m->comps[i];
    for (size_t i = 0; i < m->n; i++)
        if (s->pid > 0 && m->comps[i].pid == (pid_t)s->pid)
            return &m->comps[i];
    return NULL;
}

/* s plus c's base (a restart from a checkpoint), into *out. */
static const ss_stats *based(const ss_monitor_comp *c, const ss_stats *s,
                             ss_stats *out)
{
    if (!c || !c->have_base)
        return s;
    *out = *s;
    out->in += c->base.in;
    out->out += c->base.out;
    out->passed += c->base.passed;
    out->dropped += c->base.dropped;
    out->rejected += c->base.rejected;
    out->batches_in += c->base.batches_in;
    out->batches_out += c->base.batches_out;
    return out;
}

/* See ss_monitor.h. */
void ss_monitor_set_base(ss_monitor *m, size_t i, const ss_stats *base)
{
    if (i >= m->n)
        return;
    m->comps[i].base = *base;
    m->comps[i].have_base = 1;
}

/* See ss_monitor.h. */
void ss_monitor_show_base(ss_monitor *m, size_t i)
{
    if (i >= m->n || !m->comps[i].have_base || m->comps[i].have_st)
        return;
    m->comps[i].st = m->comps[i].base;
    m->comps[i].st.final = 1;
    m->comps[i].have_st = 1;
}

static void on_stats(ss_monitor *m, const ss_stats *s0, uint64_t now)
{
    const ss_stats *s = s0;
    ss_stats sb;
    ss_metrics_http_publish(ss_metrics_global(), s); /* --metrics-port */
    if (m->metrics)
        write_metrics(m, s, now);
    ss_monitor_comp *c = find_comp(m, s);
    if (!c && replica_group(m, s->name) && m->n < 4096 &&
        ss_monitor_add(m, s->name) >= 0) /* a replica added by a rescale */
        c = &m->comps[m->n - 1];
    if (!c)
        return;
    s = based(c, s0, &sb);
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

/* A checkpoint acknowledgement: kept in the component's ring. */
static void on_ack(ss_monitor *m, const ss_stats *s, uint32_t epoch)
{
    ss_monitor_comp *c = find_comp(m, s);
    if (!c)
        return;
    unsigned k = c->nacks++ % SS_MONITOR_ACKS;
    ss_stats sb;
    c->ack_epoch[k] = epoch;
    c->ack_st[k] = *based(c, s, &sb);
}

/* See ss_monitor.h. */
const ss_stats *ss_monitor_ack(const ss_monitor *m, size_t i,
                               uint32_t epoch)
{
    if (i >= m->n || !epoch)
        return NULL;
    const ss_monitor_comp *c = &m->comps[i];
    unsigned have = c->nacks < SS_MONITOR_ACKS ? c->nacks : SS_MONITOR_ACKS;
    for (unsigned k = 0; k < have; k++)
        if (c->ack_epoch[k] == epoch)
            return &c->ack_st[k];
    return NULL;
}

/* See ss_monitor.h. */
void ss_monitor_read(ss_monitor *m)
{
    for (;;) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, m->pull, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            return;
        }
        const void *data = zmq_msg_data(&msg);
        size_t n = zmq_msg_size(&msg);
        /* with auth, the ZAP handler named the sender after its key */
        const char *from = m->authed ? zmq_msg_gets(&msg, "User-Id") : NULL;
        ss_hdr h;
        const char *why;
        uint64_t now = ss_now_ns();
        if (m->authed && !from) {
            m->dropped++;
        } else if (ss_hdr_decode(data, n, &h, &why) == 0) {
            if (h.kind == SS_MSG_DONE && m->authed &&
                (!m->done_from || strcmp(from, m->done_from) != 0)) {
                m->dropped++;
            } else if (h.kind == SS_MSG_DONE) {
                if (!m->done_ns)
                    m->done_ns = now;
            } else if (h.kind == SS_MSG_STATS) {
                ss_stats s;
                if (ss_stats_decode(data, n, &s) != 0)
                    ;
                else if (m->authed && !may_report(m, &s, from))
                    m->dropped++;
                else
                    on_stats(m, &s, now);
            } else if (h.kind == SS_MSG_BARRIER) {
                ss_stats s;
                uint32_t epoch;
                if (ss_stats_decode_barrier(data, n, &s, &epoch) != 0)
                    ;
                else if (m->authed && !may_report(m, &s, from))
                    m->dropped++;
                else
                    on_ack(m, &s, epoch);
            }
        }
        zmq_msg_close(&msg);
    }
}

/* See ss_monitor.h. */
void ss_monitor_flush(ss_monitor *m)
{
    if (m->metrics)
        fflush(m->metrics);
}

/* See ss_monitor.h. */
int ss_monitor_close_metrics(ss_monitor *m)
{
    if (!m->metrics)
        return 0;
    int rc = fclose(m->metrics) == 0 ? 0 : SS_EIO;
    m->metrics = NULL;
    return rc;
}

/* See ss_monitor.h. */
void ss_monitor_reset(ss_monitor *m)
{
    for (size_t i = 0; i < m->n; i++) {
        ss_monitor_comp *c = &m->comps[i];
        memset(&c->st, 0, sizeof c->st);
        c->have_st = 0;
        c->st_ns = 0;
        c->pid = 0;
        c->ev_rate = c->byte_rate = 0;
        c->nacks = 0;
        c->have_base = 0;
    }
    m->done_ns = 0;
}

/* See ss_monitor.h. */
void ss_monitor_destroy(ss_monitor **pp)
{
    if (!pp || !*pp)
        return;
    ss_monitor *m = *pp;
    if (m->pull)
        zmq_close(m->pull);
    ss_zap_stop(&m->zap);
    if (m->zctx)
        zmq_ctx_term(m->zctx);
    free(m->done_from);
    if (m->metrics)
        fclose(m->metrics);
    ss_buf_release(&m->line);
    free(m->comps);
    for (size_t i = 0; i < m->ngroups; i++)
        free(m->groups[i]);
    free(m->groups);
    free(m->endpoint);
    free(m);
    *pp = NULL;
}
