/*
 * ss_batch.c - encoding and validation of the wire header (ss_batch.h).
 */
#include "wire/ss_batch.h"
#include "securestreams.h"

#include <string.h>

/* See ss_batch.h. */
void ss_hdr_encode(const ss_hdr *h, uint8_t out[SS_HDR_SIZE])
{
    memcpy(out, SS_WIRE_MAGIC, 4);
    out[4] = SS_WIRE_VERSION;
    out[5] = h->kind;
    ss_put_u16(out + 6, h->flags);
    ss_put_u32(out + 8, h->stream);
    ss_put_u32(out + 12, h->part);
    ss_put_u64(out + 16, h->seq);
    ss_put_u32(out + 24, h->count);
    ss_put_u32(out + 28, h->len);
    ss_put_u64(out + 32, h->first_row);
    ss_put_u64(out + 40, h->aux);
    ss_put_u64(out + 48, h->run);
    ss_put_u32(out + 56, h->producer);
    ss_put_u32(out + 60, h->epoch);
    ss_put_u16(out + 64, h->partition);
    ss_put_u16(out + 66, h->span);
    ss_put_u32(out + 68, h->instance);
}

/* See ss_batch.h. */
uint32_t ss_name_id(const char *name)
{
    uint32_t h = 2166136261u;
    for (const char *p = name; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h;
}

/* See ss_batch.h. */
void ss_hdr_stamp(void *msg, uint64_t run, uint32_t producer)
{
    ss_put_u64((uint8_t *)msg + 48, run);
    ss_put_u32((uint8_t *)msg + 56, producer);
}

/* See ss_batch.h. */
int ss_hdr_version(const void *p, size_t n)
{
    const uint8_t *b = p;
    if (n < 5 || memcmp(b, SS_WIRE_MAGIC, 4) != 0)
        return -1;
    return b[4];
}

/* See ss_batch.h. */
int ss_hdr_decode(const void *p, size_t n, ss_hdr *h, const char **why)
{
    const uint8_t *b = p;
    if (n < SS_HDR_SIZE) {
        *why = "message shorter than the 72-byte header";
        return SS_EPROTO;
    }
    if (memcmp(b, SS_WIRE_MAGIC, 4) != 0) {
        *why = "bad magic (not a SecureStreams message)";
        return SS_EPROTO;
    }
    h->version = b[4];
    if (b[4] != SS_WIRE_VERSION) {
        *why = "unsupported wire version";
        return SS_EPROTO;
    }
    h->kind = b[5];
    if (h->kind < 1 || h->kind > SS_MSG_KIND_MAX) {
        *why = "unknown message kind";
        return SS_EPROTO;
    }
    h->flags = ss_get_u16(b + 6);
    h->stream = ss_get_u32(b + 8);
    h->part = ss_get_u32(b + 12);
    h->seq = ss_get_u64(b + 16);
    h->count = ss_get_u32(b + 24);
    h->len = ss_get_u32(b + 28);
    h->first_row = ss_get_u64(b + 32);
    h->aux = ss_get_u64(b + 40);
    h->run = ss_get_u64(b + 48);
    h->producer = ss_get_u32(b + 56);
    h->epoch = ss_get_u32(b + 60);
    h->partition = ss_get_u16(b + 64);
    h->span = ss_get_u16(b + 66);
    if (h->flags & ~(uint32_t)SS_BF_KNOWN) {
        *why = "unknown flag bits set";
        return SS_EPROTO;
    }
    h->instance = ss_get_u32(b + 68);
    if (h->instance && h->kind != SS_MSG_DATA) {
        *why = "instance field set on a message that is not DATA";
        return SS_EPROTO;
    }
    if ((h->span != 0) != ((h->flags & SS_BF_RANGE) != 0)) {
        *why = h->span ? "span set without the RANGE flag"
                       : "RANGE flag with a span of 0";
        return SS_EPROTO;
    }
    if ((h->flags & SS_BF_PARTITIONED) && h->partition >= SS_PARTITIONS) {
        *why = "partition beyond the 4096 key groups";
        return SS_EPROTO;
    }
    if (!(h->flags & SS_BF_PARTITIONED) && h->partition) {
        *why = "partition set without the PARTITIONED flag";
        return SS_EPROTO;
    }
    if ((size_t)h->len != n - SS_HDR_SIZE) {
        *why = "payload length does not match the header (truncated?)";
        return SS_EPROTO;
    }
    if (h->kind == SS_MSG_DATA && h->count > h->len && !(h->flags & SS_BF_ENCRYPTED)) {
        *why = "event count larger than the payload";
        return SS_EPROTO;
    }
    return 0;
}

/* See ss_batch.h. */
const char *ss_msg_kind_name(int kind)
{
    static const char *const names[] = {
        "?",         "data",  "eos",   "hello",  "welcome", "credit",
        "received",  "heartbeat", "abort", "stats", "done",    "reject",
        "barrier"};
    if (kind < 1 || kind > SS_MSG_KIND_MAX)
        return "unknown";
    return names[kind];
}

/* See ss_batch.h. */
unsigned ss_batch_credits(size_t batch_size, unsigned max)
{
    if (batch_size == 0)
        batch_size = SS_BATCH_DEFAULT_SIZE;
    size_t n = SS_BATCH_INFLIGHT_BYTES / (batch_size + 1024u);
    if (max < 2)
        max = 2;
    return n < 2 ? 2u : n > max ? max : (unsigned)n;
}
