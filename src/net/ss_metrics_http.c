/*
 * ss_metrics_http.c - Prometheus text-format endpoint (ss_metrics_http.h),
 * served by libmicrohttpd.
 */
#include "net/ss_metrics_http.h"
#include "core/ss_util.h"
#include "securestreams.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define REQUEST_TIMEOUT_S 2
#define MAX_CONNECTIONS 16

struct ss_metrics_http {
    struct MHD_Daemon *d;
    unsigned port;
    pthread_mutex_t mu;
    ss_stats *samples; /* one per component name */
    uint64_t *when_ms; /* when each was published */
    size_t n, cap;
};

/* The series (ss_stats.h), in output order. kind: 'c' counter, 'g'
 * gauge. scale turns the field into the unit of the name (kB -> bytes,
 * ns -> seconds). */
static const struct metric {
    const char *name;
    char kind;
    size_t off;
    double scale;
    const char *help;
} metrics[] = {
#define METRIC(f, name, kind, scale, help)                                   \
    {name, kind, offsetof(ss_stats, f), scale, help},
    SS_STATS_COUNTERS(METRIC)
#undef METRIC
};
#define NMETRICS (sizeof metrics / sizeof metrics[0])

static uint64_t field(const ss_stats *s, size_t off)
{
    return *(const uint64_t *)((const char *)s + off);
}

/* Label values: backslash, double quote and newline are escaped. */
static int put_label(ss_buf *b, const char *k, const char *v, int first)
{
    int rc = ss_buf_printf(b, "%s%s=\"", first ? "" : ",", k);
    for (; !rc && *v; v++) {
        if (*v == '\\' || *v == '"')
            rc = ss_buf_printf(b, "\\%c", *v);
        else if (*v == '\n')
            rc = ss_buf_printf(b, "\\n");
        else
            rc = ss_buf_append(b, v, 1);
    }
    return rc ? rc : ss_buf_append(b, "\"", 1);
}

static int put_labels(ss_buf *b, const ss_stats *s)
{
    int rc = ss_buf_append(b, "{", 1);
    if (!rc)
        rc = put_label(b, "component", s->name, 1);
    if (!rc)
        rc = put_label(b, "stage", s->stage, 0);
    if (!rc)
        rc = put_label(b, "role", s->role, 0);
    return rc ? rc : ss_buf_append(b, "}", 1);
}

/* Writes the page for n samples (and when each was published) into out.
 * Touches nothing shared: the caller passes a copy of the snapshot. */
static int render_page(const ss_stats *samples, const uint64_t *when_ms,
                       size_t n, ss_buf *out)
{
    ss_buf_reset(out);
    int rc = 0;
    uint64_t now = ss_now_ms();
    for (size_t k = 0; !rc && k < NMETRICS; k++) {
        const struct metric *mt = &metrics[k];
        rc = ss_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", mt->name,
                           mt->help, mt->name,
                           mt->kind == 'c' ? "counter" : "gauge");
        for (size_t i = 0; !rc && i < n; i++) {
            rc = ss_buf_printf(out, "%s", mt->name);
            if (!rc)
                rc = put_labels(out, &samples[i]);
            double v = (double)field(&samples[i], mt->off) * mt->scale;
            if (!rc)
                rc = ss_buf_printf(out, " %.17g\n", v);
        }
    }
    /* liveness: whether the component said it was finishing, and the
     * age of its last sample */
    if (!rc)
        rc = ss_buf_printf(out, "# HELP sstream_component_final 1 once the "
                                "component sent its last sample.\n"
                                "# TYPE sstream_component_final gauge\n");
    for (size_t i = 0; !rc && i < n; i++) {
        rc = ss_buf_printf(out, "sstream_component_final");
        if (!rc)
            rc = put_labels(out, &samples[i]);
        if (!rc)
            rc = ss_buf_printf(out, " %d\n", samples[i].final ? 1 : 0);
    }
    if (!rc)
        rc = ss_buf_printf(out, "# HELP sstream_sample_age_seconds Time "
                                "since the component's last sample.\n"
                                "# TYPE sstream_sample_age_seconds gauge\n");
    for (size_t i = 0; !rc && i < n; i++) {
        rc = ss_buf_printf(out, "sstream_sample_age_seconds");
        if (!rc)
            rc = put_labels(out, &samples[i]);
        if (!rc)
            rc = ss_buf_printf(out, " %.3f\n",
                               (double)(now - when_ms[i]) / 1e3);
    }
    return rc;
}

/* See ss_metrics_http.h. */
int ss_metrics_http_render(ss_metrics_http *m, ss_buf *out)
{
    /* copy the snapshot under the lock, format it outside: a publisher
     * never waits for a page to be written */
    pthread_mutex_lock(&m->mu);
    size_t n = m->n;
    ss_stats *samples = malloc((n ? n : 1) * sizeof *samples);
    uint64_t *when = malloc((n ? n : 1) * sizeof *when);
    if (samples && when) {
        if (n) {
            memcpy(samples, m->samples, n * sizeof *samples);
            memcpy(when, m->when_ms, n * sizeof *when);
        }
    }
    pthread_mutex_unlock(&m->mu);
    int rc = samples && when ? render_page(samples, when, n, out)
                             : SS_ENOMEM;
    free(samples);
    free(when);
    return rc;
}

/* See ss_metrics_http.h. */
void ss_metrics_http_publish(ss_metrics_http *m, const ss_stats *s)
{
    if (!m || !s)
        return;
    pthread_mutex_lock(&m->mu);
    size_t i = 0;
    while (i < m->n && strcmp(m->samples[i].name, s->name) != 0)
        i++;
    if (i == m->n && m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        ss_stats *ns = realloc(m->samples, cap * sizeof *ns);
        if (ns)
            m->samples = ns;
        uint64_t *nw = realloc(m->when_ms, cap * sizeof *nw);
        if (nw)
            m->when_ms = nw;
        if (ns && nw)
            m->cap = cap;
    }
    if (i < m->cap) {
        m->samples[i] = *s;
        m->when_ms[i] = ss_now_ms();
        if (i == m->n)
            m->n++;
    }
    pthread_mutex_unlock(&m->mu);
}

/* Queues r (consumed) with status and a Content-Type. */
static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
                             const char *ctype, struct MHD_Response *r)
{
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    /* one request per connection, as before: clients need not close */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

/* A short static text answer. */
static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status,
                                  const char *text)
{
    return reply(c, status, "text/plain; charset=utf-8",
                 MHD_create_response_from_buffer(strlen(text), (void *)text,
                                                 MHD_RESPMEM_PERSISTENT));
}

/* libmicrohttpd's request callback. GET and HEAD of /metrics (or /) get
 * the page (libmicrohttpd leaves the body out of a HEAD answer, keeping
 * its Content-Length); other paths 404, other methods 405. A request
 * body is read and ignored before answering. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version,
                                  const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    static int seen; /* *req_cls marks the request's first call */
    ss_metrics_http *m = cls;
    (void)version;
    (void)upload_data;
    if (*req_cls != &seen) {
        *req_cls = &seen;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
        strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                          "GET or HEAD only\n");
    if (strcmp(url, "/metrics") != 0 && strcmp(url, "/") != 0)
        return reply_text(c, MHD_HTTP_NOT_FOUND, "try /metrics\n");
    ss_buf body;
    ss_buf_init(&body);
    size_t len;
    char *page = ss_metrics_http_render(m, &body) == 0
                     ? ss_buf_detach(&body, &len)
                     : NULL;
    ss_buf_release(&body);
    if (!page)
        return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "no memory\n");
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, page, MHD_RESPMEM_MUST_FREE);
    if (!r)
        free(page);
    return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
                 r);
}

/* See ss_metrics_http.h. */
int ss_metrics_http_start(const char *addr, unsigned port,
                          ss_metrics_http **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!addr || !*addr)
        addr = "127.0.0.1";
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    unsigned flags = MHD_USE_POLL_INTERNAL_THREAD;
    if (port <= 65535 && inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
    } else if (port <= 65535 &&
               inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        flags |= MHD_USE_IPv6;
    } else {
        ss_errf(err, errlen, "metrics endpoint: bad address %s:%u (an IPv4 "
                "or IPv6 address is expected)", addr, port);
        return SS_EINVAL;
    }
    ss_metrics_http *m = calloc(1, sizeof *m);
    if (!m)
        return SS_ENOMEM;
    pthread_mutex_init(&m->mu, NULL);
    m->d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, m,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)REQUEST_TIMEOUT_S,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
        MHD_OPTION_END);
    const union MHD_DaemonInfo *info =
        m->d ? MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    if (!info || !info->port) {
        /* libmicrohttpd does not say why; the usual reason is a port in
         * use or an address this host does not have */
        ss_errf(err, errlen, "metrics endpoint: cannot listen on %s%s%s:%u "
                "(port in use, or not an address of this host?)",
                s6->sin6_family == AF_INET6 ? "[" : "", addr,
                s6->sin6_family == AF_INET6 ? "]" : "", port);
        if (m->d)
            MHD_stop_daemon(m->d);
        pthread_mutex_destroy(&m->mu);
        free(m);
        return SS_EIO;
    }
    m->port = info->port;
    *out = m;
    return 0;
}

/* See ss_metrics_http.h. */
unsigned ss_metrics_http_port(const ss_metrics_http *m) { return m->port; }

/* See ss_metrics_http.h. */
void ss_metrics_http_stop(ss_metrics_http **p)
{
    if (!p || !*p)
        return;
    ss_metrics_http *m = *p;
    MHD_stop_daemon(m->d);
    pthread_mutex_destroy(&m->mu);
    free(m->samples);
    free(m->when_ms);
    free(m);
    *p = NULL;
}

static ss_metrics_http *global;

/* See ss_metrics_http.h. */
int ss_metrics_global_start(const char *addr, unsigned port, char *err,
                            size_t errlen)
{
    if (global)
        return 0;
    return ss_metrics_http_start(addr, port, &global, err, errlen);
}

/* See ss_metrics_http.h. */
ss_metrics_http *ss_metrics_global(void) { return global; }

/* See ss_metrics_http.h. */
void ss_metrics_global_stop(void) { ss_metrics_http_stop(&global); }
