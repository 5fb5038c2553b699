/*
 * ss_monitor.h - the receiving end of the control endpoint: what the
 * components of a run report (ss_stats.h: STATS samples, the sink's DONE).
 *
 * The monitor binds one ZMQ_PULL socket, keeps the last sample of each
 * component it was told about (by name, else by pid), the event and byte
 * rates between its last two samples, and when DONE arrived; it also
 * appends every sample to the metrics file (JSON lines, docs/PIPELINE.md)
 * and publishes it to the process's metrics endpoint (ss_metrics_http.h).
 * With an auth (what `sstream run` gives it) the socket is a CURVE server
 * that admits only the run's component keys, each named after its
 * component: a sample counts only under its sender's own name, and DONE
 * only from auth->done_from (the sink); the rest is dropped and counted
 * (ss_monitor_refused), on ipc and tcp alike.
 * It starts no process and reads no clock but ss_now_ns: a local run
 * (ss_supervisor.c) and a cluster run can both drive it from their own
 * poll loop (ss_monitor_socket) and read it between polls.
 *
 *     ss_monitor *m;
 *     ss_monitor_new(endpoint, metrics_path, &auth, &m, err, sizeof err);
 *     i = ss_monitor_add(m, "map-1");  ...  ss_monitor_start(m, t0);
 *     loop: zmq_poll(... ss_monitor_socket(m) ...); ss_monitor_read(m);
 *           ss_monitor_get(m, i)->have_st ...
 *     ss_monitor_close_metrics(m); ss_monitor_destroy(&m);
 */
#ifndef SS_MONITOR_H
#define SS_MONITOR_H

#include "net/ss_curve.h"
#include "wire/ss_stats.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SS_MONITOR_ACKS 64 /* checkpoint acknowledgements kept: epochs
                              between the source and the sink */

/* What the monitor knows of one component. */
typedef struct ss_monitor_comp {
    char name[SS_STATS_NAME_MAX];
    pid_t pid;       /* 0 until ss_monitor_set_pid */
    char host[SS_STATS_NAME_MAX]; /* a chained stage's: the worker that
                                     reports for it ("" if none) */
    ss_stats st;     /* the last sample, valid if have_st */
    int have_st;
    uint64_t st_ns;  /* ss_now_ns() when st arrived */
    double ev_rate, byte_rate; /* events, bytes in per second */
    /* checkpoint acknowledgements (BARRIER on the control channel): the
     * last SS_MONITOR_ACKS epochs it passed, with its counters there */
    uint32_t ack_epoch[SS_MONITOR_ACKS];
    ss_stats ack_st[SS_MONITOR_ACKS];
    unsigned nacks; /* acknowledgements received (ring position) */
    /* a restart from a checkpoint: its counters there, added to every
     * sample and acknowledgement it sends (ss_monitor_set_base) */
    ss_stats base;
    int have_base;
} ss_monitor_comp;

typedef struct ss_monitor ss_monitor;

/* Who may speak on the control channel (borrowed during ss_monitor_new
 * only: copied). */
typedef struct ss_monitor_auth {
    ss_curve_auth curve;   /* the monitor's pair, the components' keys
                              and names */
    const char *done_from; /* the only name whose DONE counts */
} ss_monitor_auth;

/* Opens metrics_path for writing (truncated; NULL: no file), then binds
 * a PULL socket to endpoint (a "tcp://host:*" port is chosen by the
 * system: see ss_monitor_endpoint), under CURVE with auth's allow list
 * (NULL: no authentication, for tests of the codec only). Returns 0 and
 * *out (caller destroys), or SS_ENOMEM / SS_EIO with a reason in err. */
int ss_monitor_new(const char *endpoint, const char *metrics_path,
                   const ss_monitor_auth *auth, ss_monitor **out, char *err,
                   size_t errlen);

/* Connections refused (no admitted key) plus messages dropped (a sample
 * under another component's name, a DONE not from done_from). */
unsigned long ss_monitor_refused(const ss_monitor *m);

/* The endpoint components must connect to (borrowed). */
const char *ss_monitor_endpoint(const ss_monitor *m);

/* The ZeroMQ socket, for zmq_poll (borrowed; do not read from it). */
void *ss_monitor_socket(const ss_monitor *m);

/* Adds a component named name; returns its index (from 0, in the order
 * of the calls) or SS_ENOMEM. */
int ss_monitor_add(ss_monitor *m, const char *name);

/* Adds a stage chained into the worker host (docs/PIPELINE.md,
 * Chaining): host reports its counters under name, and with
 * authentication its samples under name are taken from host's key only.
 * Returns its index, or SS_ENOMEM. */
int ss_monitor_add_hosted(ss_monitor *m, const char *name,
                          const char *host);

/* Lets the key named group report for components named GROUP-N (N a
 * number from 1): on a container engine the replicas of a stage share
 * their service's key. A replica not added yet (one a rescale started)
 * is added when its first sample arrives, after the others (at most 4096
 * components in all). Returns 0 or SS_ENOMEM. */
int ss_monitor_allow_replicas(ss_monitor *m, const char *group);

/* Records the pid of component i (samples whose name is unknown are
 * matched by pid). */
void ss_monitor_set_pid(ss_monitor *m, size_t i, pid_t pid);

/* Sets time zero of the metrics file ("t") to t0 (ss_now_ns) and of
 * "ts" to the wall clock now. */
void ss_monitor_start(ss_monitor *m, uint64_t t0);

/* Handles every message waiting on the socket, without blocking.
 * Messages that are not a valid STATS or DONE are ignored. */
void ss_monitor_read(ss_monitor *m);

/* ss_now_ns() when the first DONE arrived, or 0. */
uint64_t ss_monitor_done_ns(const ss_monitor *m);

/* Component i (borrowed, valid until the next add), NULL if out of
 * range. */
const ss_monitor_comp *ss_monitor_get(const ss_monitor *m, size_t i);

/* Sums into *ev and *bytes the current rates of c: 0 for a component
 * that sent its final sample or none since stale_ns. */
void ss_monitor_rates(const ss_monitor_comp *c, uint64_t now,
                      uint64_t stale_ns, double *ev, double *bytes);

/* Flushes the metrics file so that it can be read during the run. */
void ss_monitor_flush(ss_monitor *m);

/* Closes the metrics file. Returns 0, or SS_EIO (errno tells why) when
 * it could not be written completely. Safe twice. */
int ss_monitor_close_metrics(ss_monitor *m);

/* The counters component i acknowledged at checkpoint epoch, or NULL if
 * it has not (or that acknowledgement is older than the last
 * SS_MONITOR_ACKS). */
const ss_stats *ss_monitor_ack(const ss_monitor *m, size_t i,
                               uint32_t epoch);

/* Forgets every component's sample, rates and pid and the sink's DONE,
 * keeping the components (names, order, hosts): a restarted pipeline
 * (ss_supervisor.h, max_restarts) reports from scratch. Read the socket
 * first: what the dead incarnation had sent is forgotten with it. Can't
 * fail. */
void ss_monitor_reset(ss_monitor *m);

/* A restart from a checkpoint: component i's counters at the checkpoint
 * (in, out, passed, dropped, rejected, batches_in, batches_out; copied)
 * are added to what it reports from now on, so that its totals continue
 * from the checkpoint's. ss_monitor_reset forgets it. */
void ss_monitor_set_base(ss_monitor *m, size_t i, const ss_stats *base);

/* Makes component i's base (ss_monitor_set_base) its last counters, final,
 * when it reported nothing since: a worker that a rescale at a checkpoint
 * took away keeps its counters at the checkpoint in the books. */
void ss_monitor_show_base(ss_monitor *m, size_t i);

/* Closes the socket and the metrics file, frees *p, sets it to NULL.
 * Safe on NULL. */
void ss_monitor_destroy(ss_monitor **p);

#endif
