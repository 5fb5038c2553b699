/*
 * ss_batch.h - the fixed header of every SecureStreams wire message.
 *
 * One ZeroMQ frame carries one message: a 72-byte header followed by
 * `len` payload bytes. Integers are little-endian. docs/PROTOCOL.md is the
 * normative description; this header and ss_batch.c implement it.
 *
 *   off size field
 *     0   4  magic      "SSB1"
 *     4   1  version    SS_WIRE_VERSION
 *     5   1  kind       ss_msg_kind
 *     6   2  flags      SS_BF_*
 *     8   4  stream     lineage: id of the source stream the batch derives from
 *    12   4  part       lineage: split index when one batch became several
 *    16   8  seq        lineage: batch number within the stream, from 0
 *    24   4  count      number of events in the payload
 *    28   4  len        payload length in bytes
 *    32   8  first_row  row number (from 0, within the stream) of event 0
 *    40   8  aux        kind-specific (credits for HELLO/CREDIT, ...)
 *    48   8  run        run id: 64 random bits drawn once per run
 *    56   4  producer   ss_name_id() of the component that wrote it
 *    60   4  epoch      checkpoint epoch (0 until checkpoints exist)
 *    64   2  partition  key group of the batch's events (PARTITIONED)
 *    66   2  span       RANGE: seqs this message stands for, else 0
 *    68   4  instance   DATA sealed by a stateful enclave core: the random
 *                       id it drew at its first output (never 0); else 0
 *    72      payload    DATA: `count` MessagePack values back to back
 *                       (or, with SS_BF_ENCRYPTED, their AEAD sealing);
 *                       control kinds: one MessagePack map (ss_proto.h)
 *
 * Lineage (stream, seq, part) identifies a batch end to end: a stateless
 * worker emits exactly one output batch (possibly empty) per input batch
 * with the same lineage, so routers can drop duplicates after a retry and
 * check that nothing was lost.
 */
#ifndef SS_BATCH_H
#define SS_BATCH_H

#include <stddef.h>
#include <stdint.h>

#define SS_WIRE_MAGIC "SSB1"
#define SS_WIRE_VERSION 2
#define SS_HDR_SIZE 72
/* 256 KiB: a quarter of the per-batch costs (system calls, wake-ups) of
 * 64 KiB for about 1 MB more per worker (docs/PERFORMANCE.md, "Batch
 * size") */
#define SS_BATCH_DEFAULT_SIZE (256u * 1024u)
#define SS_BATCH_MAX_SIZE (64u * 1024u * 1024u)
/* Memory in flight is bounded in bytes, not in batches, so that a larger
 * batch_size means fewer batches in flight rather than more memory: a
 * producer keeps at most this many bytes of batches unconfirmed (its
 * window, ss_link.h) and a worker takes on credit about as many
 * (ss_batch_credits): 16 batches of 64 KiB with their header and seal
 * (4 of the default 256 KiB). */
#define SS_BATCH_INFLIGHT_BYTES (16u * ((64u << 10) + 1024u))

typedef enum ss_msg_kind {
    SS_MSG_DATA = 1,      /* a batch of events */
    SS_MSG_EOS = 2,       /* end of stream(s), with batch counts */
    SS_MSG_HELLO = 3,     /* peer -> router: who I am, my credits */
    SS_MSG_WELCOME = 4,   /* router -> peer: accepted */
    SS_MSG_CREDIT = 5,    /* worker -> router: batch done (+ credit) */
    SS_MSG_RECEIVED = 6,  /* router -> producer: batch safely queued */
    SS_MSG_HEARTBEAT = 7, /* either way: I am alive */
    SS_MSG_ABORT = 8,     /* router -> peers: the run failed (reason) */
    SS_MSG_STATS = 9,     /* component -> supervisor: counters */
    SS_MSG_DONE = 10,     /* sink -> supervisor: sendZmqCompleted() */
    SS_MSG_REJECT = 11,   /* component -> supervisor: one rejected event */
    SS_MSG_BARRIER = 12,  /* checkpoint barrier (epoch); routers align */
    SS_MSG_KIND_MAX = 12
} ss_msg_kind;

enum {
    SS_BF_LAST_PART = 1u << 0, /* last part of a split batch */
    SS_BF_ENCRYPTED = 1u << 1, /* payload is AEAD-sealed */
    SS_BF_LINES = 1u << 2,     /* events are raw input lines (str) */
    SS_BF_FINAL = 1u << 3,     /* emitted at completion (own lineage) */
    SS_BF_RANGE = 1u << 4,     /* stands for `span` empty batches */
    SS_BF_PARTITIONED = 1u << 5, /* `partition` is the key group */
    SS_BF_BROADCAST = 1u << 6, /* one copy dealt to every worker */
    SS_BF_KNOWN = (1u << 7) - 1 /* every other flag bit must be 0 */
};

/* Key groups of a PARTITIONED batch: partition < SS_PARTITIONS. */
#define SS_PARTITIONS 4096u

/* aux of a DATA batch. SS_AUX_END marks the last batch of its stream
 * (seq + 1 = the stream's batch count); on a source's last batches the
 * low 32 bits hold the number of streams the source injected. Workers and
 * enclaves keep aux from input to output, and sealing authenticates it:
 * the sink's end-to-end check (node/ss_integrity.h) relies on it. */
#define SS_AUX_END (1ull << 63)
#define SS_AUX_STREAMS(aux) ((uint32_t)(aux))

typedef struct ss_hdr {
    uint8_t version;
    uint8_t kind;
    uint16_t flags;
    uint32_t stream;
    uint32_t part;
    uint64_t seq;
    uint32_t count;
    uint32_t len;
    uint64_t first_row;
    uint64_t aux;
    uint64_t run;       /* the run id (0: none, e.g. a file at rest) */
    uint32_t producer;  /* ss_name_id() of the writer */
    uint32_t epoch;
    uint16_t partition;
    uint16_t span;
    uint32_t instance;  /* stateful enclave's instance id (DATA), or 0 */
} ss_hdr;

/* Writes h as SS_HDR_SIZE bytes at out (magic and version included; the
 * version field of h is ignored). Can't fail. */
void ss_hdr_encode(const ss_hdr *h, uint8_t out[SS_HDR_SIZE]);

/* Parses a message of n bytes at p into h. Checks the magic, the version,
 * the kind, that len == n - SS_HDR_SIZE, that unknown flag bits are 0,
 * that instance is 0 unless the kind is DATA, that span is 0 unless
 * RANGE (1.. with it) and that a PARTITIONED batch's partition is below SS_PARTITIONS. Returns 0,
 * or SS_EPROTO with a static reason in *why (never NULL on error). h->version
 * is set even when the version is the wrong one (after a good magic), so
 * that a router can name both versions. */
int ss_hdr_decode(const void *p, size_t n, ss_hdr *h, const char **why);

/* The id of a component name on the wire (the `producer` field, FINAL
 * stream ids): FNV-1a 32 of its bytes. Can't fail. */
uint32_t ss_name_id(const char *name);

/* 1 if h is a batch sealed at rest by `sstream encrypt` (run 0, producer
 * 0, ENCRYPTED and LINES): raw input lines, accepted from any run as a
 * source's input only (docs/PROTOCOL.md, "Sealed input files"). */
static inline int ss_hdr_at_rest(const ss_hdr *h)
{
    const unsigned f = SS_BF_ENCRYPTED | SS_BF_LINES;
    return h->kind == SS_MSG_DATA && h->run == 0 && h->producer == 0 &&
           (h->flags & f) == f && !(h->flags & SS_BF_FINAL);
}

/* Writes run and producer into an encoded header at msg (which holds at
 * least SS_HDR_SIZE bytes): how a component signs the control messages
 * it built. Never use it on a sealed message. Can't fail. */
void ss_hdr_stamp(void *msg, uint64_t run, uint32_t producer);

/* The wire version of a message of n bytes at p that starts with the
 * magic, or -1 (too short or not ours). */
int ss_hdr_version(const void *p, size_t n);

/* Name of a message kind ("data", "eos", ...), "unknown" otherwise. */
const char *ss_msg_kind_name(int kind);

/* The credits a consumer of batches of about batch_size bytes offers by
 * default: as many as SS_BATCH_INFLIGHT_BYTES holds (header and seal
 * included), at least 2 (one being worked on, one waiting) and at most
 * max (at least 2). batch_size 0 counts as SS_BATCH_DEFAULT_SIZE.
 * Can't fail: 64 KiB -> 16, 256 KiB (the default) -> 4, 512 KiB or
 * more -> 2. */
unsigned ss_batch_credits(size_t batch_size, unsigned max);

static inline void ss_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void ss_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void ss_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t ss_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t ss_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}
static inline uint64_t ss_get_u64(const uint8_t *p)
{
    return (uint64_t)ss_get_u32(p) | ((uint64_t)ss_get_u32(p + 4) << 32);
}

#endif
