/*
 * ss_stats_reporter.c - the component side of the control endpoint (see
 * ss_stats_reporter.h).
 */
#include "net/ss_stats_reporter.h"
#include "core/ss_util.h"
#include "crypto/ss_keys.h"
#include "net/ss_metrics_http.h"
#include "securestreams.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
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

/* Sets the CURVE client options of sock from keydir: the component's
 * pair (curve-client) and the monitor's public key
 * (SS_STATS_MONITOR_PUB). */
static int reporter_curve(void *sock, const char *keydir, char *err,
                          size_t errlen)
{
    char pub[41], srv[41] = "", path[4096];
    char *sec = sodium_malloc(41);
    if (!sec)
        return SS_ENOMEM;
    int rc = ss_keys_load_curve(keydir, "client", pub, sec, err, errlen);
    if (!rc) {
        uint8_t *b = NULL;
        size_t n = 0;
        snprintf(path, sizeof path, "%s/%s", keydir, SS_STATS_MONITOR_PUB);
        rc = ss_keys_read_file(path, 128, 0, &b, &n, err, errlen);
        while (!rc && n && (b[n - 1] == '\n' || b[n - 1] == '\r'))
            n--;
        if (!rc && n != 40) {
            snprintf(err, errlen, "%s is not a Z85 CURVE key", path);
            rc = SS_EINVAL;
        }
        if (!rc) {
            memcpy(srv, b, 40);
            srv[40] = '\0';
        }
        if (b)
            sodium_free(b);
    }
    if (!rc && (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, srv, 41) ||
                zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pub, 41) ||
                zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sec, 41))) {
        snprintf(err, errlen, "cannot set the control channel's CURVE keys:"
                              " %s", zmq_strerror(zmq_errno()));
        rc = SS_EIO;
    }
    sodium_free(sec);
    return rc;
}

/* See ss_stats_reporter.h. */
int ss_stats_reporter_open(void *zctx, const char *endpoint,
                           const char *keydir, ss_stats_reporter **out,
                           char *err, size_t errlen)
{
    *out = NULL;
    if (errlen)
        err[0] = '\0';
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
    if (keydir && *keydir &&
        (rc = reporter_curve(r->sock, keydir, err, errlen)) != 0)
        goto fail;
    if (zmq_connect(r->sock, endpoint) != 0) {
        rc = errno == EINVAL || errno == EPROTONOSUPPORT ? SS_EINVAL : SS_EIO;
        if (errlen)
            snprintf(err, errlen, "%s", zmq_strerror(errno));
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
int ss_stats_reporter_new(void *zctx, const char *endpoint,
                          ss_stats_reporter **out)
{
    char err[256];
    return ss_stats_reporter_open(zctx, endpoint, NULL, out, err,
                                  sizeof err);
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
int ss_stats_report_barrier(ss_stats_reporter *r, const ss_stats *s,
                            uint32_t epoch)
{
    if (!r || !r->sock)
        return 0;
    int rc = ss_stats_encode_barrier(s, epoch, &r->buf);
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
