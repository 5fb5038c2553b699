/*
 * ss_stats_reporter.h - how a component sends its counters (ss_stats.h)
 * to the supervisor's control endpoint, and to this process's metrics
 * endpoint when it serves one (ss_metrics_http.h).
 *
 * Typical use in a component:
 *
 *     ss_stats_reporter *r;
 *     ss_stats_reporter_open(zctx, getenv("SS_CONTROL"),
 *                            getenv("SS_CONTROL_KEYS"), &r, err, len);
 *     ...  every loop turn:  if (ss_stats_reporter_due(r)) {
 *              ss_stats_fill_self(&st); ss_stats_report(r, &st); }
 *     at exit:  st.final = 1; ss_stats_report(r, &st);
 *               ss_stats_reporter_destroy(&r);
 */
#ifndef SS_STATS_REPORTER_H
#define SS_STATS_REPORTER_H

#include "wire/ss_stats.h"

/* Fills pid, rss_kb and peak_rss_kb from the calling process. */
void ss_stats_fill_self(ss_stats *s);

/* The sender a component uses. Opaque; created by new, freed by destroy.
 * A reporter made with a NULL or empty endpoint is disabled: every call
 * succeeds and sends nothing. Sends never block: when the supervisor is
 * gone or slow, samples are dropped. */
typedef struct ss_stats_reporter ss_stats_reporter;

/* Creates a reporter that connects a PUSH socket to endpoint using the
 * ZeroMQ context zctx (borrowed; it must outlive the reporter; NULL makes
 * the reporter own a private context). Returns 0 and *out, SS_ENOMEM, or
 * SS_EINVAL/SS_EIO if the endpoint cannot be used (reason in errno). */
int ss_stats_reporter_new(void *zctx, const char *endpoint,
                          ss_stats_reporter **out);

/* The same, under CURVE when keydir is given (a component started by
 * `sstream run` finds it in SS_CONTROL_KEYS): the reporter is a CURVE
 * client with the component's own pair (curve-client.key/.pub of keydir)
 * and checks that the monitor holds the secret of keydir/monitor.pub.
 * The monitor admits only the run's component keys, on ipc and tcp
 * alike. On failure err says why (a key file missing or unreadable). */
#define SS_STATS_MONITOR_PUB "monitor.pub"
int ss_stats_reporter_open(void *zctx, const char *endpoint,
                           const char *keydir, ss_stats_reporter **out,
                           char *err, size_t errlen);

/* 1 if the reporter is enabled (or this process serves a metrics
 * endpoint, ss_metrics_http.h) and a second or more passed since its last
 * report (or it never reported), else 0. */
int ss_stats_reporter_due(const ss_stats_reporter *r);

/* Sends one STATS message for s. Returns 0 (also when disabled or when
 * the sample was dropped because nobody listens), or SS_ENOMEM. */
int ss_stats_report(ss_stats_reporter *r, const ss_stats *s);

/* Sends the sink's DONE message. Same returns as ss_stats_report. */
int ss_stats_report_done(ss_stats_reporter *r);

/* Acknowledges checkpoint barrier epoch to the run's coordinator, with
 * the counters s at the barrier (ss_stats_encode_barrier). Returns 0
 * (also without a control endpoint) or the errors of ss_stats_report. */
int ss_stats_report_barrier(ss_stats_reporter *r, const ss_stats *s,
                            uint32_t epoch);

/* Closes the socket, waiting at most 1 s for queued messages to leave,
 * frees r and sets *p to NULL. Safe on NULL and twice. */
void ss_stats_reporter_destroy(ss_stats_reporter **p);

#endif
