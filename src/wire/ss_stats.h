/*
 * ss_stats.h - the counters every component reports to `sstream run`, and
 * their wire form. Sending them is ss_stats_reporter.h's job (src/net),
 * receiving them ss_monitor.h's (src/run).
 *
 * A component started by the supervisor finds the supervisor's control
 * endpoint in SS_CONTROL and its key folder in SS_CONTROL_KEYS. It
 * connects a ZMQ_PUSH there as a CURVE client (the monitor admits only
 * the run's component keys, ss_stats_reporter.h) and sends, once a
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

/* The unsigned counters of a sample, in their wire order: the one list
 * the struct, the STATS codec, the metrics file (ss_monitor.c) and the
 * Prometheus page (ss_metrics_http.c) are generated from.
 * X(field, Prometheus name, 'c' counter or 'g' gauge, scale to the
 *   Prometheus unit, help text) */
#define SS_STATS_COUNTERS(X)                                                 \
    X(in, "sstream_events_in_total", 'c', 1,                                 \
      "Events received (source: rows read).")                                \
    X(in_bytes, "sstream_bytes_in_total", 'c', 1,                            \
      "Payload bytes received (source: bytes read).")                        \
    X(out, "sstream_events_out_total", 'c', 1, "Events sent on.")            \
    X(out_bytes, "sstream_bytes_out_total", 'c', 1,                          \
      "Payload bytes sent on.")                                              \
    X(batches_in, "sstream_batches_in_total", 'c', 1, "Batches received.")   \
    X(batches_out, "sstream_batches_out_total", 'c', 1, "Batches sent.")     \
    X(passed, "sstream_events_passed_total", 'c', 1,                         \
      "Events that produced at least one output.")                           \
    X(dropped, "sstream_events_dropped_total", 'c', 1,                       \
      "Events filtered out or folded into a reduce.")                        \
    X(rejected, "sstream_events_rejected_total", 'c', 1,                     \
      "Events that failed (written to the rejects file).")                   \
    X(queue, "sstream_queue_depth", 'g', 1,                                  \
      "Batches waiting (routers) or being processed (workers).")             \
    X(credits, "sstream_credits", 'g', 1, "Credits outstanding.")            \
    X(rss_kb, "sstream_resident_memory_bytes", 'g', 1024,                    \
      "Resident set size.")                                                  \
    X(peak_rss_kb, "sstream_peak_resident_memory_bytes", 'g', 1024,          \
      "Peak resident set size.")                                             \
    X(enclave_calls, "sstream_enclave_calls_total", 'c', 1,                  \
      "Calls into the enclave.")                                             \
    X(enclave_ns, "sstream_enclave_seconds_total", 'c', 1e-9,                \
      "Time spent inside enclave calls.")                                    \
    X(total_bytes, "sstream_input_size_bytes", 'g', 1,                       \
      "Size of the input (source only).")                                   \
    X(keyed, "sstream_keyed_events_total", 'c', 1,                           \
      "Router of a partitioned stage: events of keyed batches.")             \
    X(hot_events, "sstream_hot_partition_events_total", 'c', 1,              \
      "Router of a partitioned stage: events of its busiest key group.")    \
    X(hot_partition, "sstream_hot_partition", 'g', 1,                        \
      "Router of a partitioned stage: its busiest key group (0..4095).")    \
    X(hot_slot, "sstream_hot_partition_worker", 'g', 1,                      \
      "Router of a partitioned stage: the worker slot (1..N) owning it.")

/* One sample of a component's counters; plain value, no ownership.
 * Events are counted in rows (events), bytes in payload bytes. */
typedef struct ss_stats {
    char name[SS_STATS_NAME_MAX];  /* "map-1", "router-2", "source" */
    char role[SS_STATS_NAME_MAX];  /* source | router | worker | sink */
    char stage[SS_STATS_NAME_MAX]; /* stage name ("" if none) */
    int64_t pid;
#define SS_STATS_FIELD(f, ...) uint64_t f;
    SS_STATS_COUNTERS(SS_STATS_FIELD)
#undef SS_STATS_FIELD
    int final;    /* 1 on the last message before exit */
    int stateful; /* workers: the chain folds events (reduce...) */
    /* Checkpoint acknowledgements only (ss_stats_encode_barrier, when
     * marks is 1): how far the component's files went at the barrier,
     * flushed, in bytes; -1: no such file, or not a regular file. The
     * coordinator cuts each file back to its mark on a resume, and
     * commits the sink's output up to its marks once the epoch completes
     * (docs/PIPELINE.md, "Restarts"). */
    int marks;
    int64_t rejects_len; /* its rejects file */
    int64_t stdout_len;  /* the sink: its standard output */
    int64_t output_len;  /* the sink: its OUTPUT file */
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

/* A checkpoint acknowledgement (docs/PROTOCOL.md, "BARRIER"): s's
 * counters as ss_stats_encode writes them, and when s->marks its marks
 * (rejects_len, stdout_len, output_len: signed ints), in a message of
 * kind BARRIER whose header carries epoch (1 or more). Returns 0 or
 * SS_ENOMEM. */
int ss_stats_encode_barrier(const ss_stats *s, uint32_t epoch, ss_buf *out);

/* Parses a whole BARRIER acknowledgement into s and *epoch, with the
 * checks of ss_stats_decode (kind BARRIER, epoch 1 or more instead of
 * kind STATS). Returns 0 or SS_EPROTO. */
int ss_stats_decode_barrier(const void *msg, size_t n, ss_stats *s,
                            uint32_t *epoch);

/* Parses a whole STATS message of n bytes (header included) into s.
 * Never trusts msg: checks the header (magic, version, kind STATS, len),
 * that the payload is exactly one map, and the type of every known key;
 * unknown keys are skipped; missing keys stay 0 / "". Returns 0, or
 * SS_EPROTO (s is then undefined). */
int ss_stats_decode(const void *msg, size_t n, ss_stats *s);

#endif
