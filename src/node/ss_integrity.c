/*
 * ss_integrity.c - the sink's end-to-end stream check (ss_integrity.h).
 */
#include "node/ss_integrity.h"
#include "securestreams.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_END UINT64_MAX

typedef struct istream {
    uint32_t id;
    int final;        /* emitted at completion (a stage's own stream) */
    uint8_t *seen;    /* bitmap by seq, from seq 8 * lo on */
    size_t cap;       /* bytes of seen */
    uint64_t lo;      /* bytes dropped from seen's front: every seq below
                         8 * lo arrived (so the bitmap spans only what
                         arrives out of order, not the whole stream) */
    uint64_t nseen;
    uint64_t max_seq; /* highest seq seen (valid when nseen) */
    uint64_t end;     /* seq of the END batch, or NO_END */
    uint64_t nstreams; /* aux of the END batch (source streams) */
} istream;

/* A batch split in parts (cut for a partitioned or broadcast stage)
 * whose parts are still arriving: it counts as seen once parts 0..last
 * all did. */
typedef struct ipart {
    uint32_t stream;
    uint64_t seq;
    uint8_t *seen; /* bitmap by part */
    size_t cap;    /* bytes of seen */
    uint32_t have;
    int64_t last;  /* index of the LAST_PART part, or -1 */
    uint32_t maxpart;
} ipart;

#define PART_MAX 65536u /* as the routers' limit */

/* What arrived from one writer (producer id): its outputs, the instance
 * ids they carried, and its result's. A stateful enclave marks all it
 * seals with its instance id and puts in its result how many messages it
 * sealed before it (docs/PROTOCOL.md, instance). */
typedef struct iprod {
    uint32_t producer;
    uint64_t outputs;   /* DATA messages other than its result */
    uint32_t inst;      /* the instance of the first of them */
    uint32_t other;     /* another instance seen among them, or 0 */
    int has_other;
    int has_final;
    uint32_t final_inst; /* its result's instance (0: no enclave's) */
    uint64_t final_count; /* messages its result says were sealed */
} iprod;

struct ss_integrity {
    int ordered;
    istream *s;
    size_t n, cap;
    ipart *parts;
    size_t nparts, capparts;
    char **finals; /* workers whose result must arrive */
    size_t nfinals;
    iprod *prods;  /* per writer: the instance ids of its outputs */
    size_t nprods, capprods;
};

/* See ss_integrity.h. */
int ss_integrity_new(int ordered, ss_integrity **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return SS_ENOMEM;
    (*out)->ordered = ordered;
    return 0;
}

/* See ss_integrity.h. */
void ss_integrity_destroy(ss_integrity **p)
{
    if (!p || !*p)
        return;
    for (size_t i = 0; i < (*p)->n; i++)
        free((*p)->s[i].seen);
    for (size_t i = 0; i < (*p)->nparts; i++)
        free((*p)->parts[i].seen);
    free((*p)->parts);
    for (size_t i = 0; i < (*p)->nfinals; i++)
        free((*p)->finals[i]);
    free((*p)->finals);
    free((*p)->prods);
    free((*p)->s);
    free(*p);
    *p = NULL;
}

static istream *find(ss_integrity *ig, uint32_t id)
{
    for (size_t i = 0; i < ig->n; i++)
        if (ig->s[i].id == id)
            return &ig->s[i];
    return NULL;
}

static istream *get(ss_integrity *ig, uint32_t id)
{
    istream *st = find(ig, id);
    if (st)
        return st;
    if (ig->n == ig->cap) {
        size_t cap = ig->cap ? ig->cap * 2 : 16;
        istream *v = realloc(ig->s, cap * sizeof *v);
        if (!v)
            return NULL;
        ig->s = v;
        ig->cap = cap;
    }
    st = &ig->s[ig->n++];
    memset(st, 0, sizeof *st);
    st->id = id;
    st->end = NO_END;
    return st;
}

static int has(const istream *st, uint64_t seq)
{
    if (seq / 8 < st->lo)
        return 1;
    uint64_t i = seq / 8 - st->lo;
    return i < st->cap && (st->seen[i] >> (seq % 8)) & 1;
}

/* Drops the full bytes at the front of st's bitmap once they are half of
 * it: the bitmap keeps the span of seqs still arriving out of order, and
 * each byte is moved O(1) times on average. */
static void compact(istream *st)
{
    size_t k = 0;
    while (k < st->cap && st->seen[k] == 0xff)
        k++;
    if (k == 0 || 2 * k < st->cap)
        return;
    memmove(st->seen, st->seen + k, st->cap - k);
    memset(st->seen + st->cap - k, 0, k);
    st->lo += k;
}

static ipart *part_find(ss_integrity *ig, uint32_t stream, uint64_t seq)
{
    for (size_t i = 0; i < ig->nparts; i++)
        if (ig->parts[i].stream == stream && ig->parts[i].seq == seq)
            return &ig->parts[i];
    return NULL;
}

/* Records part h->part of a split batch. Returns 1 when the batch is now
 * whole, 0 when parts are still missing, or SS_EINTEGRITY / SS_ENOMEM
 * (reason in err). */
static int part_seen(ss_integrity *ig, const ss_hdr *h, char *err,
                     size_t errlen)
{
    unsigned long long seq = (unsigned long long)h->seq;
    int last = (h->flags & SS_BF_LAST_PART) != 0;
    if (h->part >= PART_MAX) {
        snprintf(err, errlen, "integrity: stream %u batch %llu: part %u "
                 "out of range", h->stream, seq, h->part);
        return SS_EINTEGRITY;
    }
    ipart *ip = part_find(ig, h->stream, h->seq);
    if (!ip) {
        if (ig->nparts == ig->capparts) {
            size_t cap = ig->capparts ? 2 * ig->capparts : 8;
            ipart *v = realloc(ig->parts, cap * sizeof *v);
            if (!v)
                return SS_ENOMEM;
            ig->parts = v;
            ig->capparts = cap;
        }
        ip = &ig->parts[ig->nparts++];
        memset(ip, 0, sizeof *ip);
        ip->stream = h->stream;
        ip->seq = h->seq;
        ip->last = -1;
    }
    if (h->part / 8 < ip->cap && (ip->seen[h->part / 8] >> (h->part % 8)) & 1) {
        snprintf(err, errlen, "integrity: stream %u batch %llu part %u was "
                 "received twice (duplicated or replayed)", h->stream, seq,
                 h->part);
        return SS_EINTEGRITY;
    }
    if ((last && ip->last >= 0) || (last && ip->maxpart > h->part) ||
        (ip->last >= 0 && h->part > (uint64_t)ip->last)) {
        snprintf(err, errlen, "integrity: stream %u batch %llu: part %u "
                 "does not fit its other parts (two last parts, or a part "
                 "beyond the last)", h->stream, seq, h->part);
        return SS_EINTEGRITY;
    }
    size_t need = h->part / 8 + 1;
    if (need > ip->cap) {
        size_t cap = ip->cap ? ip->cap : 8;
        while (cap < need)
            cap *= 2;
        uint8_t *v = realloc(ip->seen, cap);
        if (!v)
            return SS_ENOMEM;
        memset(v + ip->cap, 0, cap - ip->cap);
        ip->seen = v;
        ip->cap = cap;
    }
    ip->seen[h->part / 8] |= (uint8_t)(1u << (h->part % 8));
    ip->have++;
    if (h->part > ip->maxpart)
        ip->maxpart = h->part;
    if (last)
        ip->last = h->part;
    if (ip->last < 0 || ip->have != (uint64_t)ip->last + 1)
        return 0;
    free(ip->seen);
    *ip = ig->parts[--ig->nparts];
    return 1;
}

/* See ss_integrity.h. */
int ss_integrity_expect_final(ss_integrity *ig, const char *name)
{
    if (!name || !*name)
        return SS_EINVAL;
    char **v = realloc(ig->finals, (ig->nfinals + 1) * sizeof *v);
    if (!v)
        return SS_ENOMEM;
    ig->finals = v;
    if (!(v[ig->nfinals] = strdup(name)))
        return SS_ENOMEM;
    ig->nfinals++;
    return 0;
}

/* See ss_integrity.h. */
int ss_integrity_resume(ss_integrity *ig, uint32_t stream, uint64_t seq,
                        uint32_t nstreams)
{
    if ((nstreams && !seq) || seq >= (1ull << 40) || find(ig, stream))
        return SS_EINVAL;
    if (!seq)
        return 0;
    istream *st = get(ig, stream);
    size_t need = (size_t)((seq - 1) / 8 + 1);
    uint8_t *v = st ? calloc(need, 1) : NULL;
    if (!v)
        return SS_ENOMEM;
    for (uint64_t q = 0; q < seq; q++)
        v[q / 8] |= (uint8_t)(1u << (q % 8));
    st->seen = v;
    st->cap = need;
    st->nseen = seq;
    st->max_seq = seq - 1;
    if (nstreams) {
        st->end = seq - 1;
        st->nstreams = nstreams;
    }
    return 0;
}

static int batch_seq(ss_integrity *ig, const ss_hdr *h, char *err,
                     size_t errlen);

/* The record of writer producer, added if new; NULL when out of memory. */
static iprod *prod_get(ss_integrity *ig, uint32_t producer)
{
    for (size_t i = 0; i < ig->nprods; i++)
        if (ig->prods[i].producer == producer)
            return &ig->prods[i];
    if (ig->nprods == ig->capprods) {
        size_t cap = ig->capprods ? 2 * ig->capprods : 8;
        iprod *v = realloc(ig->prods, cap * sizeof *v);
        if (!v)
            return NULL;
        ig->prods = v;
        ig->capprods = cap;
    }
    iprod *p = &ig->prods[ig->nprods++];
    memset(p, 0, sizeof *p);
    p->producer = producer;
    return p;
}

/* Records accepted batch h against its writer (see iprod). */
static int prod_record(ss_integrity *ig, const ss_hdr *h)
{
    iprod *p = prod_get(ig, h->producer);
    if (!p)
        return SS_ENOMEM;
    if ((h->flags & SS_BF_FINAL) &&
        h->stream == (h->producer | 0x80000000u)) {
        p->has_final = 1;
        p->final_inst = h->instance;
        p->final_count = h->first_row;
        return 0;
    }
    if (p->outputs++ == 0)
        p->inst = h->instance;
    else if (h->instance != p->inst && !p->has_other) {
        p->has_other = 1;
        p->other = h->instance;
    }
    return 0;
}

/* The name of writer producer when it is an expected result's worker,
 * else "" (the caller prints the id). */
static const char *prod_name(const ss_integrity *ig, uint32_t producer)
{
    for (size_t i = 0; i < ig->nfinals; i++)
        if (ss_name_id(ig->finals[i]) == producer)
            return ig->finals[i];
    return "";
}

/* A stateful enclave's result must come with every output of its worker
 * marked with its instance, and as many of them as it sealed: else a
 * host split the batches between enclaves of one worker, or dropped some
 * outputs, and the result covers a subset. */
static int prods_check(const ss_integrity *ig, char *err, size_t errlen)
{
    for (size_t i = 0; i < ig->nprods; i++) {
        const iprod *p = &ig->prods[i];
        if (!p->has_final || !p->final_inst)
            continue;
        const char *name = prod_name(ig, p->producer);
        uint32_t bad = p->outputs && p->inst != p->final_inst ? p->inst
                       : p->has_other                         ? p->other
                                                              : 0;
        if (p->outputs && (p->inst != p->final_inst || p->has_other)) {
            snprintf(err, errlen, "integrity: worker '%s' (id %u) sent "
                     "outputs sealed by enclave instance %08x but its "
                     "result by instance %08x: its host ran two enclaves "
                     "of it and the result covers only some of the "
                     "batches", name, p->producer, bad, p->final_inst);
            return SS_EINTEGRITY;
        }
        if (p->outputs != p->final_count) {
            snprintf(err, errlen, "integrity: worker '%s' (id %u): its "
                     "result says its enclave sealed %llu outputs before "
                     "it, %llu arrived: the result does not cover the "
                     "batches that arrived", name, p->producer,
                     (unsigned long long)p->final_count,
                     (unsigned long long)p->outputs);
            return SS_EINTEGRITY;
        }
    }
    return 0;
}

/* See ss_integrity.h. */
int ss_integrity_batch(ss_integrity *ig, const ss_hdr *h, char *err,
                       size_t errlen)
{
    int rc = batch_seq(ig, h, err, errlen);
    return rc ? rc : prod_record(ig, h);
}

/* The stream checks of ss_integrity_batch. */
static int batch_seq(ss_integrity *ig, const ss_hdr *h, char *err,
                     size_t errlen)
{
    istream *st = get(ig, h->stream);
    if (!st)
        return SS_ENOMEM;
    unsigned long long seq = (unsigned long long)h->seq;
    if (h->seq >= (1ull << 40)) {
        snprintf(err, errlen, "integrity: stream %u batch %llu: batch "
                 "number out of range", h->stream, seq);
        return SS_EINTEGRITY;
    }
    if (h->flags & SS_BF_FINAL)
        st->final = 1;
    if (has(st, h->seq)) {
        snprintf(err, errlen, "integrity: stream %u batch %llu was "
                 "received twice (duplicated or replayed)", h->stream, seq);
        return SS_EINTEGRITY;
    }
    if (st->end != NO_END && h->seq > st->end) {
        snprintf(err, errlen, "integrity: stream %u batch %llu arrived "
                 "after the end of its stream (batch %llu)", h->stream, seq,
                 (unsigned long long)st->end);
        return SS_EINTEGRITY;
    }
    if (h->aux & SS_AUX_END) {
        if (st->nseen && st->max_seq > h->seq) {
            snprintf(err, errlen, "integrity: stream %u batch %llu says "
                     "it ends the stream but batch %llu came before it",
                     h->stream, seq, (unsigned long long)st->max_seq);
            return SS_EINTEGRITY;
        }
        st->end = h->seq;
        st->nstreams = SS_AUX_STREAMS(h->aux);
    }
    if (ig->ordered && st->nseen && h->seq < st->max_seq) {
        snprintf(err, errlen, "integrity: stream %u batch %llu arrived "
                 "after batch %llu (reordered)", h->stream, seq,
                 (unsigned long long)st->max_seq);
        return SS_EINTEGRITY;
    }
    if (!(h->part == 0 && (h->flags & SS_BF_LAST_PART))) {
        /* one part of a split batch: the seq counts once all arrived */
        int rc = part_seen(ig, h, err, errlen);
        if (rc < 0)
            return rc;
        if (!st->nseen || h->seq > st->max_seq)
            st->max_seq = h->seq;
        st->nseen++;
        if (rc == 0)
            return 0;
        goto whole_seq;
    }
    if (part_find(ig, h->stream, h->seq)) {
        snprintf(err, errlen, "integrity: stream %u batch %llu arrived "
                 "whole after some of its parts (duplicated or replayed)",
                 h->stream, seq);
        return SS_EINTEGRITY;
    }
    if (!st->nseen || h->seq > st->max_seq)
        st->max_seq = h->seq;
    st->nseen++;
whole_seq:;
    /* h->seq / 8 >= st->lo: has() said it had not arrived */
    size_t need = (size_t)(h->seq / 8 - st->lo + 1);
    if (need > st->cap) {
        size_t cap = st->cap ? st->cap : 64;
        while (cap < need)
            cap *= 2;
        uint8_t *v = realloc(st->seen, cap);
        if (!v)
            return SS_ENOMEM;
        memset(v + st->cap, 0, cap - st->cap);
        st->seen = v;
        st->cap = cap;
    }
    st->seen[h->seq / 8 - st->lo] |= (uint8_t)(1u << (h->seq % 8));
    compact(st);
    return 0;
}

/* Checks one stream is whole: an end, and every batch up to it. */
static int whole(ss_integrity *ig, const istream *st, char *err,
                 size_t errlen)
{
    if (st->end == NO_END) {
        snprintf(err, errlen, "integrity: stream %u has no end: its last "
                 "batch (after batch %llu) is missing (dropped on the way)",
                 st->id, (unsigned long long)st->max_seq);
        return SS_EINTEGRITY;
    }
    for (uint64_t q = 0; q <= st->end; q++)
        if (!has(st, q)) {
            snprintf(err, errlen, "integrity: stream %u batch %llu is "
                     "missing (%sdropped on the way)", st->id,
                     (unsigned long long)q,
                     part_find(ig, st->id, q) ? "some of its parts were "
                                                : "");
            return SS_EINTEGRITY;
        }
    return 0;
}

/* See ss_integrity.h. */
size_t ss_integrity_bytes(const ss_integrity *ig)
{
    size_t n = sizeof *ig + ig->cap * sizeof *ig->s +
               ig->capparts * sizeof *ig->parts;
    for (size_t i = 0; i < ig->n; i++)
        n += ig->s[i].cap;
    for (size_t i = 0; i < ig->nparts; i++)
        n += ig->parts[i].cap;
    return n;
}

/* See ss_integrity.h. */
int ss_integrity_finish(ss_integrity *ig, const ss_eos *eos, char *err,
                        size_t errlen)
{
    uint64_t declared = 0, ended = 0;
    for (size_t i = 0; i < ig->n; i++) {
        const istream *st = &ig->s[i];
        int rc = whole(ig, st, err, errlen);
        if (rc)
            return rc;
        if (st->final)
            continue;
        if (declared && st->nstreams != declared) {
            snprintf(err, errlen, "integrity: stream %u ends saying the "
                     "source has %llu streams, another said %llu", st->id,
                     (unsigned long long)st->nstreams,
                     (unsigned long long)declared);
            return SS_EINTEGRITY;
        }
        declared = st->nstreams;
        ended++;
    }
    int prc = prods_check(ig, err, errlen);
    if (prc)
        return prc;
    /* the results the run must have: a rogue router that swallows one
     * and strikes it from the end-of-stream table is caught here */
    for (size_t i = 0; i < ig->nfinals; i++) {
        uint32_t id = ss_name_id(ig->finals[i]) | 0x80000000u;
        const istream *st = find(ig, id);
        if (!st || !st->final || st->end == NO_END) {
            snprintf(err, errlen, "integrity: the result of worker '%s' "
                     "(stream %u) never arrived: dropped on the way",
                     ig->finals[i], id);
            return SS_EINTEGRITY;
        }
    }
    if (!declared) {
        snprintf(err, errlen, "integrity: no source stream arrived with its "
                 "end: the end batches were dropped on the way");
        return SS_EINTEGRITY;
    }
    if (ended != declared) {
        snprintf(err, errlen, "integrity: the source injected %llu "
                 "stream%s but %llu arrived (%s)",
                 (unsigned long long)declared, declared == 1 ? "" : "s",
                 (unsigned long long)ended,
                 ended < declared ? "a source stream is missing entirely"
                                  : "a stream that no source announced");
        return SS_EINTEGRITY;
    }
    /* the routers' table must agree with what arrived */
    for (size_t i = 0; eos && i < eos->nstreams; i++) {
        const ss_eos_stream *row = &eos->streams[i];
        const istream *st = find(ig, row->stream);
        uint64_t have = st ? st->end + 1 : 0;
        if (row->count != have) {
            snprintf(err, errlen, "integrity: the end-of-stream table says "
                     "stream %u has %llu batches but %llu arrived with an "
                     "authenticated end", row->stream,
                     (unsigned long long)row->count,
                     (unsigned long long)have);
            return SS_EINTEGRITY;
        }
    }
    for (size_t i = 0; eos && i < ig->n; i++)
        if (!ss_eos_find(eos, ig->s[i].id)) {
            snprintf(err, errlen, "integrity: stream %u arrived but the "
                     "end-of-stream table does not list it", ig->s[i].id);
            return SS_EINTEGRITY;
        }
    return 0;
}
