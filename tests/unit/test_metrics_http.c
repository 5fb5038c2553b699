/*
 * test_metrics_http.c - the Prometheus endpoint (src/net/ss_metrics_http.c):
 * started on a free port, fetched with a raw socket, the text format
 * parsed line by line; publish replaces a component's sample; the
 * process-wide server is fed by ss_stats_report even without a
 * supervisor; other paths and methods are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/ss_buf.h"
#include "net/ss_metrics_http.h"
#include "net/ss_stats_reporter.h"
#include "securestreams.h"

/* Sends req to host (an IPv4 or IPv6 literal) on port and returns the
 * whole answer (malloc'd). */
static char *http_at(const char *host, unsigned port, const char *req)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    socklen_t sl;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        sl = sizeof *s4;
    } else {
        assert_int_equal(inet_pton(AF_INET6, host, &s6->sin6_addr), 1);
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        sl = sizeof *s6;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {5, 0}; /* a server that never closes fails */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(connect(fd, (struct sockaddr *)&ss, sl), 0);
    size_t n = strlen(req);
    assert_int_equal(write(fd, req, n), (ssize_t)n);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1024 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    close(fd);
    return buf;
}

static char *http(unsigned port, const char *req)
{
    return http_at("127.0.0.1", port, req);
}

/* The value of the series whose line starts with "name{labels}" in the
 * body, or -1 when absent. Checks every non-comment line has the form
 * NAME{...} NUMBER. */
static double value_of(const char *text, const char *series)
{
    const char *body = strstr(text, "\r\n\r\n");
    assert_non_null(body);
    body += 4;
    double found = -1;
    size_t sn = strlen(series);
    while (*body) {
        const char *eol = strchr(body, '\n');
        assert_non_null(eol); /* every line ends with a newline */
        if (*body != '#') {
            const char *brace = memchr(body, '{', (size_t)(eol - body));
            const char *close = memchr(body, '}', (size_t)(eol - body));
            assert_non_null(brace);
            assert_non_null(close);
            assert_true(close[1] == ' ');
            char *end;
            double v = strtod(close + 2, &end);
            assert_ptr_equal(end, eol);
            if ((size_t)(eol - body) > sn && !strncmp(body, series, sn) &&
                body[sn] == ' ')
                found = v;
        }
        body = eol + 1;
    }
    return found;
}

static void sample(ss_stats *s, const char *name, uint64_t in)
{
    ss_stats_init(s);
    ss_stats_set_names(s, name, "worker", "map");
    s->in = in;
    s->in_bytes = 1000;
    s->out = 7;
    s->rss_kb = 2;
    s->enclave_ns = 1500000000;
}

static void serves_metrics(void **state)
{
    (void)state;
    char err[256];
    ss_metrics_http *m;
    assert_int_equal(ss_metrics_http_start("127.0.0.1", 0, &m, err,
                                           sizeof err), 0);
    unsigned port = ss_metrics_http_port(m);
    assert_true(port > 0);

    /* empty snapshot: valid, only comments */
    char *r = http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(r, "Content-Type: text/plain; version=0.0.4"));
    assert_non_null(strstr(r, "# TYPE sstream_events_in_total counter"));
    assert_true(value_of(r, "sstream_events_in_total{component=\"map-1\","
                            "stage=\"map\",role=\"worker\"}") < 0);
    free(r);

    ss_stats a, b;
    sample(&a, "map-1", 42);
    sample(&b, "map-2", 5);
    ss_metrics_http_publish(m, &a);
    ss_metrics_http_publish(m, &b);
    a.in = 43; /* replaces map-1's sample */
    ss_metrics_http_publish(m, &a);
    r = http(port, "GET /metrics HTTP/1.0\r\n\r\n");
    const char *lab1 = "{component=\"map-1\",stage=\"map\",role=\"worker\"}";
    char series[256];
    snprintf(series, sizeof series, "sstream_events_in_total%s", lab1);
    assert_true(value_of(r, series) == 43);
    snprintf(series, sizeof series, "sstream_bytes_in_total%s", lab1);
    assert_true(value_of(r, series) == 1000);
    snprintf(series, sizeof series, "sstream_resident_memory_bytes%s", lab1);
    assert_true(value_of(r, series) == 2048);
    snprintf(series, sizeof series, "sstream_enclave_seconds_total%s", lab1);
    assert_true(value_of(r, series) == 1.5);
    assert_true(value_of(r, "sstream_events_in_total{component=\"map-2\","
                            "stage=\"map\",role=\"worker\"}") == 5);
    /* one series per component, not per publish */
    const char *p = r;
    int count = 0;
    while ((p = strstr(p, "\nsstream_events_in_total{component=\"map-1\"")))
        count++, p++;
    assert_int_equal(count, 1);
    free(r);

    r = http(port, "GET /nope HTTP/1.1\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 404", 12) == 0);
    free(r);
    r = http(port, "POST /metrics HTTP/1.1\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 405", 12) == 0);
    free(r);
    ss_metrics_http_stop(&m);
    assert_null(m);
    ss_metrics_http_stop(&m);
}

static void label_escaping(void **state)
{
    (void)state;
    char err[256];
    ss_metrics_http *m;
    assert_int_equal(ss_metrics_http_start(NULL, 0, &m, err, sizeof err), 0);
    ss_stats a;
    sample(&a, "we\"ird\\name", 1);
    ss_metrics_http_publish(m, &a);
    ss_buf b;
    ss_buf_init(&b);
    assert_int_equal(ss_metrics_http_render(m, &b), 0);
    assert_non_null(memmem(b.data, b.len, "component=\"we\\\"ird\\\\name\"",
                           25));
    ss_buf_release(&b);
    ss_metrics_http_stop(&m);
}

static void bad_address(void **state)
{
    (void)state;
    char err[256];
    ss_metrics_http *m;
    assert_int_equal(ss_metrics_http_start("not-an-ip", 0, &m, err,
                                           sizeof err), SS_EINVAL);
    assert_null(m);
    /* a port in use */
    ss_metrics_http *a;
    assert_int_equal(ss_metrics_http_start(NULL, 0, &a, err, sizeof err), 0);
    assert_int_equal(ss_metrics_http_start(NULL, ss_metrics_http_port(a), &m,
                                           err, sizeof err), SS_EIO);
    assert_non_null(strstr(err, "cannot listen"));
    ss_metrics_http_stop(&a);
}

/* HEAD gets the headers of GET, Content-Length included, and no body (the
 * hand-written server sent the body too). */
static void head_has_no_body(void **state)
{
    (void)state;
    char err[256];
    ss_metrics_http *m;
    assert_int_equal(ss_metrics_http_start("127.0.0.1", 0, &m, err,
                                           sizeof err), 0);
    ss_stats a;
    sample(&a, "map-1", 42);
    ss_metrics_http_publish(m, &a);
    unsigned port = ss_metrics_http_port(m);
    char *g = http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    char *h = http(port, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_true(strncmp(h, "HTTP/1.1 200 OK\r\n", 17) == 0);
    const char *gbody = strstr(g, "\r\n\r\n");
    const char *hend = strstr(h, "\r\n\r\n");
    assert_non_null(gbody);
    assert_non_null(hend);
    assert_string_equal(hend + 4, ""); /* nothing after the headers */
    const char *cl = strcasestr(h, "Content-Length: ");
    assert_non_null(cl);
    assert_int_equal(strtoul(cl + 16, NULL, 10), strlen(gbody + 4));
    assert_true(strlen(gbody + 4) > 0);
    free(g);
    free(h);
    ss_metrics_http_stop(&m);
}

/* An IPv6 address (::1) works like an IPv4 one; a bracketed or unknown
 * name is refused as a bad address. */
static void serves_ipv6(void **state)
{
    (void)state;
    char err[256];
    ss_metrics_http *m;
    int rc = ss_metrics_http_start("::1", 0, &m, err, sizeof err);
    if (rc == SS_EIO) { /* a host without IPv6 loopback */
        print_message("skipped: %s\n", err);
        skip();
    }
    assert_int_equal(rc, 0);
    ss_stats a;
    sample(&a, "map-1", 42);
    ss_metrics_http_publish(m, &a);
    char *r = http_at("::1", ss_metrics_http_port(m),
                      "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_true(value_of(r, "sstream_events_in_total{component=\"map-1\","
                            "stage=\"map\",role=\"worker\"}") == 42);
    free(r);
    ss_metrics_http_stop(&m);
    assert_int_equal(ss_metrics_http_start("[::1]", 0, &m, err, sizeof err),
                     SS_EINVAL);
    assert_null(m);
}

/* ss_stats_report feeds the process-wide server even with no supervisor
 * (a reporter with no endpoint), and due() says when. */
static void global_from_reporter(void **state)
{
    (void)state;
    char err[256];
    ss_stats_reporter *r;
    assert_int_equal(ss_stats_reporter_new(NULL, NULL, &r), 0);
    assert_int_equal(ss_stats_reporter_due(r), 0);
    assert_int_equal(ss_metrics_global_start(NULL, 0, err, sizeof err), 0);
    assert_int_equal(ss_stats_reporter_due(r), 1);
    ss_stats a;
    sample(&a, "sink", 9);
    assert_int_equal(ss_stats_report(r, &a), 0);
    assert_int_equal(ss_stats_reporter_due(r), 0); /* just reported */
    char *t = http(ss_metrics_http_port(ss_metrics_global()),
                   "GET /metrics HTTP/1.1\r\n\r\n");
    assert_true(value_of(t, "sstream_events_in_total{component=\"sink\","
                            "stage=\"map\",role=\"worker\"}") == 9);
    free(t);
    ss_stats_reporter_destroy(&r);
    ss_metrics_global_stop();
    assert_null(ss_metrics_global());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(serves_metrics),
        cmocka_unit_test(label_escaping),
        cmocka_unit_test(bad_address),
        cmocka_unit_test(head_has_no_body),
        cmocka_unit_test(serves_ipv6),
        cmocka_unit_test(global_from_reporter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
