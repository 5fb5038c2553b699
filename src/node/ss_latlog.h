/*
 * ss_latlog.h - per-batch timestamps for measuring end-to-end latency
 * (docs/PERFORMANCE.md, "Latency"), off unless asked for.
 *
 * With SS_LATENCY_DIR=DIR in its environment, the source writes one line
 * "stream seq ns first_ns" to DIR/source.lat as each batch leaves it (ns:
 * then; first_ns: when its first row was read, which a paced source or a
 * slow pipe holds in the batch for a while, at most the linger), and the
 * sink one line "stream seq ns" to DIR/sink.lat as the output of that
 * batch (same lineage: every stage emits one output batch per input
 * batch, empty after a reduce) reaches it; ns is CLOCK_MONOTONIC, so the
 * two files compare on one machine only. `sstream bench` and make bench
 * join them into latency percentiles, from first_ns: the latency of the
 * batch's oldest row. Without the variable nothing is opened and every
 * call is a no-op on NULL.
 */
#ifndef SS_LATLOG_H
#define SS_LATLOG_H

#include <stdint.h>

typedef struct ss_latlog ss_latlog;

/* Opens DIR/<who>.lat for appending when SS_LATENCY_DIR is set (who: a
 * plain name, "source" or "sink"). Returns the log (caller closes) or
 * NULL: not asked for, or it cannot be opened (said once on stderr). */
ss_latlog *ss_latlog_open(const char *who);

/* Writes "stream seq now" (thread-safe). No-op on NULL. */
void ss_latlog_batch(ss_latlog *l, uint32_t stream, uint64_t seq);

/* Writes "stream seq now first_ns" (the source's line, thread-safe).
 * No-op on NULL. */
void ss_latlog_source(ss_latlog *l, uint32_t stream, uint64_t seq,
                      uint64_t first_ns);

/* Flushes, closes and frees; sets *l to NULL. Safe on NULL. */
void ss_latlog_close(ss_latlog **l);

#endif
