/*
 * ss_batch.h - the fixed header of every SecureStreams wire message.
 *
 * One ZeroMQ frame carries one message: a 48-byte header followed by
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
 *    48      payload    DATA: `count` MessagePack values back to back
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
#define SS_WIRE_VERSION 1
#define SS_HDR_SIZE 48
#define SS_BATCH_DEFAULT_SIZE (64u * 1024u)
#define SS_BATCH_MAX_SIZE (64u * 1024u * 1024u)

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
    SS_MSG_KIND_MAX = 11
} ss_msg_kind;

enum {
    SS_BF_LAST_PART = 1u << 0, /* last part of a split batch */
    SS_BF_ENCRYPTED = 1u << 1, /* payload is AEAD-sealed */
    SS_BF_LINES = 1u << 2,     /* events are raw input lines (str) */
    SS_BF_FINAL = 1u << 3,     /* emitted at completion (own lineage) */
};

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
} ss_hdr;

/* Writes h as SS_HDR_SIZE bytes at out (magic and version included; the
 * version field of h is ignored). Can't fail. */
void ss_hdr_encode(const ss_hdr *h, uint8_t out[SS_HDR_SIZE]);

/* Parses a message of n bytes at p into h. Checks the magic, the version,
 * the kind, and that len == n - SS_HDR_SIZE. Returns 0, or SS_EPROTO with
 * a static reason in *why (never NULL on error). */
int ss_hdr_decode(const void *p, size_t n, ss_hdr *h, const char **why);

/* Name of a message kind ("data", "eos", ...), "unknown" otherwise. */
const char *ss_msg_kind_name(int kind);

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
