/*
 * ss_stats_reporter.c - the component side of the control endpoint (see
 * ss_stats_reporter.h).
 */
#include "net/ss_stats_reporter.h"
#include "core/ss_util.h"
#include "net/ss_metrics_http.h"
#include "securestreams.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <zmq.h>

/* See ss_stats_reporter.h. */
void ss_stats_fill_self(ss_stats *s)
{
    s->pid = (int64_t)getpid();
    long rss = ss_rss_kb();
    long peak = ss_peak_rss_kb();
    s->rss_kb = rss > 0 ? (uint64_t)rss : 0;
    s->peak_rss_kb = peak > 0 ? (uint64_t)peak : 0;
    if (s->peak_rss_kb < s->rss_kb)
        s->peak_rss_kb = s->rss_kb;
}

struct ss_stats_reporter {
    void *ctx;     /* borrowed, or own_ctx */
    void *own_ctx; /* context created by new when zctx was NULL */
    void *sock;    /* NULL when disabled */
    uint64_t last_ms;
    int reported;
    ss_buf buf;
};

/* See ss_stats_reporter.h. */
int ss_stats_reporter_new(void *zctx, const char *endpoint,
                          ss_stats_reporter **out)
{
    *out = NULL;
    ss_stats_reporter *r = calloc(1, sizeof *r);
    if (!r)
        return SS_ENOMEM;
    ss_buf_init(&r->buf);
    if (!endpoint || !*endpoint) {
        *out = r;
        return 0;
    }
    r->ctx = zctx;
    if (!r->ctx) {
        r->own_ctx = r->ctx = zmq_ctx_new();
        if (!r->ctx) {
            free(r);
            return SS_ENOMEM;
        }
    }
    int rc = SS_EIO;
    r->sock = zmq_socket(r->ctx, ZMQ_PUSH);
    if (!r->sock)
        goto fail;
    int hwm = 16, linger = 1000, immediate = 0;
    zmq_setsockopt(r->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(r->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(r->sock, ZMQ_IMMEDIATE, &immediate, sizeof immediate);
    if (zmq_connect(r->sock, endpoint) != 0) {
        rc = errno == EINVAL || errno == EPROTONOSUPPORT ? SS_EINVAL : SS_EIO;
        goto fail;
    }
    *out = r;
    return 0;
fail:
    if (r->sock)
        zmq_close(r->sock);
    if (r->own_ctx)
        zmq_ctx_term(r->own_ctx);
    free(r);
    return rc;
}

/* See ss_stats_reporter.h. */
int ss_stats_reporter_due(const ss_stats_reporter *r)
{
    if (!r || (!r->sock && !ss_metrics_global()))
        return 0;
    return !r->reported || ss_now_ms() - r->last_ms >= 1000;
}

static int send_buf(ss_stats_reporter *r)
{
    /* EAGAIN (nobody listening, queue full) drops the sample by design. */
    (void)zmq_send(r->sock, r->buf.data, r->buf.len, ZMQ_DONTWAIT);
    r->last_ms = ss_now_ms();
    r->reported = 1;
    return 0;
}

/* See ss_stats_reporter.h. */
int ss_stats_report(ss_stats_reporter *r, const ss_stats *s)
{
    /* the Prometheus endpoint, when this process serves one */
    ss_metrics_http_publish(ss_metrics_global(), s);
    if (r && !r->sock) {
        r->last_ms = ss_now_ms();
        r->reported = 1;
    }
    if (!r || !r->sock)
        return 0;
    int rc = ss_stats_encode(s, &r->buf);
    return rc ? rc : send_buf(r);
}

/* See ss_stats_reporter.h. */
int ss_stats_report_done(ss_stats_reporter *r)
{
    if (!r || !r->sock)
        return 0;
    int rc = ss_stats_encode_done(&r->buf);
    return rc ? rc : send_buf(r);
}

/* See ss_stats_reporter.h. */
void ss_stats_reporter_destroy(ss_stats_reporter **p)
{
    if (!p || !*p)
        return;
    ss_stats_reporter *r = *p;
    if (r->sock)
        zmq_close(r->sock);
    if (r->own_ctx)
        zmq_ctx_term(r->own_ctx);
    ss_buf_release(&r->buf);
    free(r);
    *p = NULL;
}
