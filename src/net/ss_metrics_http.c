/*
 * ss_metrics_http.c - Prometheus text-format endpoint (ss_metrics_http.h).
 */
#include "net/ss_metrics_http.h"
#include "core/ss_util.h"
#include "securestreams.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct ss_metrics_http {
    int lfd;        /* listening socket */
    int wake[2];    /* stop pipe */
    unsigned port;
    pthread_t th;
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

/* See ss_metrics_http.h. */
int ss_metrics_http_render(ss_metrics_http *m, ss_buf *out)
{
    ss_buf_reset(out);
    pthread_mutex_lock(&m->mu);
    int rc = 0;
    uint64_t now = ss_now_ms();
    for (size_t k = 0; !rc && k < NMETRICS; k++) {
        const struct metric *mt = &metrics[k];
        rc = ss_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", mt->name,
                           mt->help, mt->name,
                           mt->kind == 'c' ? "counter" : "gauge");
        for (size_t i = 0; !rc && i < m->n; i++) {
            rc = ss_buf_printf(out, "%s", mt->name);
            if (!rc)
                rc = put_labels(out, &m->samples[i]);
            double v = (double)field(&m->samples[i], mt->off) * mt->scale;
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
    for (size_t i = 0; !rc && i < m->n; i++) {
        rc = ss_buf_printf(out, "sstream_component_final");
        if (!rc)
            rc = put_labels(out, &m->samples[i]);
        if (!rc)
            rc = ss_buf_printf(out, " %d\n", m->samples[i].final ? 1 : 0);
    }
    if (!rc)
        rc = ss_buf_printf(out, "# HELP sstream_sample_age_seconds Time "
                                "since the component's last sample.\n"
                                "# TYPE sstream_sample_age_seconds gauge\n");
    for (size_t i = 0; !rc && i < m->n; i++) {
        rc = ss_buf_printf(out, "sstream_sample_age_seconds");
        if (!rc)
            rc = put_labels(out, &m->samples[i]);
        if (!rc)
            rc = ss_buf_printf(out, " %.3f\n",
                               (double)(now - m->when_ms[i]) / 1e3);
    }
    pthread_mutex_unlock(&m->mu);
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

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void respond(int fd, const char *status, const char *ctype,
                    const char *body, size_t n)
{
    char head[256];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 %s\r\nContent-Type: %s\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      status, ctype, n);
    send_all(fd, head, (size_t)hn);
    send_all(fd, body, n);
}

/* Reads the request head (up to 4 KiB, 2 s) and answers it. */
static void serve(ss_metrics_http *m, int fd, ss_buf *body)
{
    char req[4096];
    size_t n = 0;
    uint64_t deadline = ss_now_ms() + 2000;
    while (n < sizeof req - 1) {
        uint64_t now = ss_now_ms();
        if (now >= deadline)
            return;
        struct pollfd p = {fd, POLLIN, 0};
        int pr = poll(&p, 1, (int)(deadline - now));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return;
        ssize_t r = recv(fd, req + n, sizeof req - 1 - n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        req[n] = '\0';
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
            break;
    }
    req[n] = '\0';
    static const char text[] = "text/plain; charset=utf-8";
    if (strncmp(req, "GET ", 4) != 0 && strncmp(req, "HEAD ", 5) != 0) {
        respond(fd, "405 Method Not Allowed", text, "GET only\n", 9);
        return;
    }
    const char *path = strchr(req, ' ') + 1;
    size_t plen = strcspn(path, " ?\r\n");
    if ((plen == 8 && !strncmp(path, "/metrics", 8)) ||
        (plen == 1 && path[0] == '/')) {
        if (ss_metrics_http_render(m, body)) {
            respond(fd, "500 Internal Server Error", text, "no memory\n",
                    10);
            return;
        }
        respond(fd, "200 OK", "text/plain; version=0.0.4; charset=utf-8",
                body->data ? (const char *)body->data : "", body->len);
        return;
    }
    respond(fd, "404 Not Found", text, "try /metrics\n", 13);
}

static void *serve_loop(void *arg)
{
    ss_metrics_http *m = arg;
    ss_buf body;
    ss_buf_init(&body);
    for (;;) {
        struct pollfd p[2] = {{m->lfd, POLLIN, 0}, {m->wake[0], POLLIN, 0}};
        int pr = poll(p, 2, -1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0 || (p[1].revents & (POLLIN | POLLHUP)))
            break;
        if (!(p[0].revents & POLLIN))
            continue;
        int fd = accept4(m->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        serve(m, fd, &body);
        shutdown(fd, SHUT_WR);
        close(fd);
    }
    ss_buf_release(&body);
    return NULL;
}

/* See ss_metrics_http.h. */
int ss_metrics_http_start(const char *addr, unsigned port,
                          ss_metrics_http **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!addr || !*addr)
        addr = "127.0.0.1";
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (port > 65535 || inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "metrics endpoint: bad address %s:%u", addr,
                 port);
        return SS_EINVAL;
    }
    ss_metrics_http *m = calloc(1, sizeof *m);
    if (!m)
        return SS_ENOMEM;
    m->wake[0] = m->wake[1] = -1;
    m->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (m->lfd >= 0)
        setsockopt(m->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    socklen_t sl = sizeof sa;
    if (m->lfd < 0 || bind(m->lfd, (struct sockaddr *)&sa, sizeof sa) ||
        listen(m->lfd, 16) ||
        getsockname(m->lfd, (struct sockaddr *)&sa, &sl) ||
        pipe2(m->wake, O_CLOEXEC)) {
        snprintf(err, errlen, "metrics endpoint: cannot listen on %s:%u: %s",
                 addr, port, strerror(errno));
        if (m->lfd >= 0)
            close(m->lfd);
        free(m);
        return SS_EIO;
    }
    m->port = ntohs(sa.sin_port);
    pthread_mutex_init(&m->mu, NULL);
    if (pthread_create(&m->th, NULL, serve_loop, m) != 0) {
        snprintf(err, errlen, "metrics endpoint: cannot start a thread");
        close(m->lfd);
        close(m->wake[0]);
        close(m->wake[1]);
        pthread_mutex_destroy(&m->mu);
        free(m);
        return SS_ENOMEM;
    }
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
    (void)!write(m->wake[1], "x", 1);
    pthread_join(m->th, NULL);
    close(m->lfd);
    close(m->wake[0]);
    close(m->wake[1]);
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
