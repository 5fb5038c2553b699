/*
 * ss_metrics_http.h - a Prometheus text-format endpoint for the counters
 * of ss_stats.h.
 *
 * A small thread serves `GET /metrics` (text format 0.0.4) on a TCP
 * address from a snapshot the component updates: one ss_stats per
 * component name, replaced by every publish. A component publishes its
 * own sample (ss_stats_report does it for every component, see
 * ss_stats.c); `sstream run` publishes every sample it receives, so its
 * endpoint shows the whole pipeline. Each counter is one series per
 * component, labelled component, stage and role:
 *
 *   sstream_events_in_total{component="map-1",stage="map",role="worker"} 42
 *
 * The process-wide server (ss_metrics_global_*) is what `--metrics-port N`
 * and the SS_METRICS_PORT environment variable start (src/cli/main.c);
 * SS_METRICS_ADDR (default 127.0.0.1, IPv4 or IPv6) chooses the interface.
 *
 * libmicrohttpd serves the requests from one internal thread (at most 16
 * connections, 2 s each). GET and HEAD of /metrics (or /) get the page,
 * HEAD without its body; other paths get 404, other methods 405. The
 * page is formatted from a copy of the snapshot taken under the lock, so
 * a publisher never waits longer than that copy.
 */
#ifndef SS_METRICS_HTTP_H
#define SS_METRICS_HTTP_H

#include "core/ss_buf.h"
#include "wire/ss_stats.h"

typedef struct ss_metrics_http ss_metrics_http;

/* Binds addr:port (addr: an IPv4 or IPv6 literal, NULL: 127.0.0.1; port
 * 0: any free port, see ss_metrics_http_port) and starts serving. Returns
 * 0 and *out (stop with ss_metrics_http_stop), or SS_EINVAL (bad address),
 * SS_EIO (bind/listen failed) or SS_ENOMEM, with a reason in err. */
int ss_metrics_http_start(const char *addr, unsigned port,
                          ss_metrics_http **out, char *err, size_t errlen);

/* The bound port. */
unsigned ss_metrics_http_port(const ss_metrics_http *m);

/* Replaces (or adds) the sample of component s->name. Thread-safe; a NULL
 * m does nothing. */
void ss_metrics_http_publish(ss_metrics_http *m, const ss_stats *s);

/* Writes the current snapshot in the text format into out (reset
 * first). Returns 0 or SS_ENOMEM. Thread-safe. */
int ss_metrics_http_render(ss_metrics_http *m, ss_buf *out);

/* Stops the thread, closes the socket, frees *p, sets it to NULL. Safe
 * on NULL and twice. */
void ss_metrics_http_stop(ss_metrics_http **p);

/* The process-wide server: started at most once. Returns 0 (also when
 * already started) or like ss_metrics_http_start. */
int ss_metrics_global_start(const char *addr, unsigned port, char *err,
                            size_t errlen);
/* The process-wide server, or NULL when none was started. */
ss_metrics_http *ss_metrics_global(void);
void ss_metrics_global_stop(void);

#endif
