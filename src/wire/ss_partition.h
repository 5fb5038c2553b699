/*
 * ss_partition.h - keyed streams at the byte level: the key group of an
 * event, a batch's events grouped by key group, and which worker of a
 * partitioned stage owns a key group (docs/PROTOCOL.md, "Keyed streams").
 *
 * No Lua here: the key is read from the encoded event (a MessagePack map)
 * so that the same code runs in a worker process and inside an enclave,
 * on exactly the bytes that leave the stage.
 *
 *   key group = fmix32(FNV-1a 32(encoding of the key's value)) mod 4096
 *
 * where the encoding is the value's MessagePack bytes as the stage wrote
 * them (a string key "AA" is a3 41 41). An event that is not a map, or
 * has no such field, has the key nil (c0): all of them share one group.
 * Key groups map to the N workers of a stage by contiguous ranges:
 * worker slot floor(g * N / 4096) (Flink's key-group ranges), so that a
 * change of N moves whole key groups.
 */
#ifndef SS_PARTITION_H
#define SS_PARTITION_H

#include "core/ss_buf.h"
#include "wire/ss_batch.h"

#include <stddef.h>
#include <stdint.h>

/* Longest field name partition_by accepts. */
#define SS_PARTITION_FIELD_MAX 63

/* 1 if f may name a partition_by field: 1 to SS_PARTITION_FIELD_MAX
 * bytes of A-Z a-z 0-9 _ - . (it is written into an enclave's measured
 * configuration, one line of text). */
int ss_partition_field_ok(const char *f);

/* Writes how a stage cuts its output into buf, as measured with an
 * enclave: "" (neither), "partition_by:FIELD" or "broadcast:N". Returns
 * 0, or SS_EINVAL (bad field, both given, or it does not fit). */
int ss_partition_spec(char *buf, size_t len, const char *field,
                      uint32_t copies);

/* The key group (0..SS_PARTITIONS-1) of a key whose MessagePack encoding
 * is p[0..n). Can't fail. */
uint16_t ss_partition_of(const void *p, size_t n);

/* The key group of the event at ev[*off..n): the value of map key field
 * (a str of flen bytes), or nil when the event is not a map or has no such
 * key. Advances *off past the event. Returns 0, or SS_EDECODE for a
 * malformed event (*off unchanged). */
int ss_partition_event(const char *ev, size_t n, size_t *off,
                       const char *field, size_t flen, uint16_t *kg);

/* The slot (0..nslots-1) of the worker owning key group kg in a stage of
 * nslots workers: contiguous ranges. nslots 0 is taken as 1. */
static inline uint32_t ss_partition_slot(uint16_t kg, uint32_t nslots)
{
    if (!nslots)
        nslots = 1;
    return (uint32_t)(((uint64_t)kg * nslots) / SS_PARTITIONS);
}

/* The key groups slot (0..nslots-1) owns in a stage of nslots workers
 * (1..SS_PARTITIONS; 0 is taken as 1): *lo..*hi inclusive, the groups
 * kg with ss_partition_slot(kg, nslots) == slot. A slot of a stage of
 * more than SS_PARTITIONS workers may own none: then *lo > *hi. */
static inline void ss_partition_range(uint32_t slot, uint32_t nslots,
                                      int *lo, int *hi)
{
    if (!nslots)
        nslots = 1;
    /* the first kg with kg * nslots >= slot * SS_PARTITIONS */
    uint64_t a = ((uint64_t)slot * SS_PARTITIONS + nslots - 1) / nslots;
    uint64_t b = ((uint64_t)(slot + 1) * SS_PARTITIONS + nslots - 1) / nslots;
    *lo = (int)a;
    *hi = (int)b - 1;
}

/* One group of a split batch: its key group and its events (a copy). */
typedef struct ss_pgroup {
    uint16_t kg;
    uint32_t count;
    ss_buf events;
} ss_pgroup;

/* A batch's events grouped by key group, in increasing key group order,
 * events in their order within a group. Reused across batches: init once,
 * ss_psplit_run per batch, release at the end. */
/* One output batch of a cut (ss_psplit_cut): its header (len is the
 * plaintext length n) and its events p[0..n) (borrowed). */
typedef struct ss_piece {
    ss_hdr h;
    const char *p;
    size_t n;
} ss_piece;

typedef struct ss_psplit {
    ss_pgroup *g; /* ng groups */
    size_t ng, capg;
    ss_piece *pc; /* npc pieces (ss_psplit_cut) */
    size_t npc, cappc;
    int16_t idx[SS_PARTITIONS]; /* kg -> index in g during a run, or -1 */
} ss_psplit;

void ss_psplit_init(ss_psplit *s);
void ss_psplit_release(ss_psplit *s);

/* Groups the count events at p[0..n) by the key group of field. Returns
 * 0 (s->ng groups, 0 when count is 0), SS_EDECODE (a malformed event, or
 * fewer than count events) or SS_ENOMEM. The groups' buffers are reused
 * from the previous run. */
int ss_psplit_run(ss_psplit *s, const char *p, size_t n, uint32_t count,
                  const char *field);

/* Cuts one stage output (count events at ev[0..len), the output of the
 * input batch whose header is base) into the batches the next stage gets
 * (docs/PROTOCOL.md, "Keyed streams"):
 *
 *   field (partition_by): one batch per key group, parts 0..k-1 in key
 *     group order, flagged PARTITIONED with partition = the key group,
 *     LAST_PART on the last; no event: one empty batch, not PARTITIONED;
 *   copies > 0 (broadcast): copies batches, part i for worker slot i,
 *     flagged BROADCAST, LAST_PART on the last;
 *   neither: one batch, the input's lineage.
 *
 * Every piece keeps base's stream, seq, first_row, aux, run, producer
 * and the LAST_PART/FINAL flags it had (kind DATA); count and len are the
 * piece's. Cutting needs an unsplit input (part 0 with LAST_PART) unless
 * the output is empty and partitioned (it then keeps the input's
 * lineage): otherwise SS_EPROTO with the reason in *why. Returns 0 (s->npc >= 1
 * pieces, valid until the next run or cut), SS_EDECODE (a malformed
 * event, *why says so) or SS_ENOMEM. */
int ss_psplit_cut(ss_psplit *s, const ss_hdr *base, const char *ev,
                  size_t len, uint32_t count, const char *field,
                  uint32_t copies, const char **why);

#endif
