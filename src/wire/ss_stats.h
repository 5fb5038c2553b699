/*
 * ss_stats.h - the counters every component reports to `sstream run`, and
 * their wire form. Sending them is ss_stats_reporter.h's job (src/net),
 * receiving them ss_monitor.h's (src/run).
 *
 * A component started by the supervisor finds the supervisor's control
 * endpoint in SS_CONTROL. It connects a ZMQ_PUSH there and sends, once a
 * second and once at exit (final = 1), one single-frame STATS message:
 * the 72-byte header of ss_batch.h (kind SS_MSG_STATS, len = payload
 * length, every other field 0) followed by one MessagePack map with the
 * keys of struct ss_stats (name, role, stage: str; final: bool; the rest:
 * unsigned ints). The sink also sends one DONE message (header only) when
 * its script calls sendZmqCompleted(). docs/PIPELINE.md lists the keys.
 */
#ifndef SS_STATS_H
#define SS_STATS_H

#include "core/ss_buf.h"

#include <stddef.h>
#include <stdint.h>

#define SS_STATS_NAME_MAX 64 /* name, role and stage, with the NUL */

/* One sample of a component's counters; plain value, no ownership.
 * Events are counted in rows (events), bytes in payload bytes. */
typedef struct ss_stats {
    char name[SS_STATS_NAME_MAX];  /* "map-1", "router-2", "source" */
    char role[SS_STATS_NAME_MAX];  /* source | router | worker | sink */
    char stage[SS_STATS_NAME_MAX]; /* stage name ("" if none) */
    int64_t pid;
    uint64_t in, in_bytes;   /* events / bytes received (source: read) */
    uint64_t out, out_bytes; /* events / bytes sent on */
    uint64_t batches_in, batches_out;
    uint64_t passed;   /* events that produced >= 1 output */
    uint64_t dropped;  /* events filtered out or folded into a reduce */
    uint64_t rejected; /* events that failed (written to --rejects) */
    uint64_t queue;    /* batches waiting (routers) */
    uint64_t credits;  /* credits outstanding */
    uint64_t rss_kb, peak_rss_kb;
    uint64_t enclave_calls, enclave_ns;
    uint64_t total_bytes; /* source only: input size, for the ETA */
    int final;            /* 1 on the last message before exit */
    int stateful;         /* workers: the chain folds events (reduce...) */
} ss_stats;

/* Sets every field of s to zero / "". Can't fail. */
void ss_stats_init(ss_stats *s);

/* Copies name, role and stage into s, truncating each to
 * SS_STATS_NAME_MAX - 1 bytes (NULL means ""). Can't fail. */
void ss_stats_set_names(ss_stats *s, const char *name, const char *role,
                        const char *stage);

/* Resets out and writes one whole STATS message (header + MessagePack
 * map) for s into it. Returns 0 or SS_ENOMEM. The caller owns out. */
int ss_stats_encode(const ss_stats *s, ss_buf *out);

/* Resets out and writes one whole DONE message (header, empty payload).
 * Returns 0 or SS_ENOMEM. */
int ss_stats_encode_done(ss_buf *out);

/* Parses a whole STATS message of n bytes (header included) into s.
 * Never trusts msg: checks the header (magic, version, kind STATS, len),
 * that the payload is exactly one map, and the type of every known key;
 * unknown keys are skipped; missing keys stay 0 / "". Returns 0, or
 * SS_EPROTO (s is then undefined). */
int ss_stats_decode(const void *msg, size_t n, ss_stats *s);

#endif
