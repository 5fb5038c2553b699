/*
 * ss_partition.c - key groups of events (see ss_partition.h).
 */
#include "wire/ss_partition.h"
#include "core/ss_util.h"
#include "securestreams.h"
#include "wire/ss_msgpack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a 32 spreads short keys poorly over the low bits (mod 4096 keeps
 * only those): MurmurHash3's finaliser mixes every input bit into them. */
static uint32_t fmix32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

/* See ss_partition.h. */
int ss_partition_field_ok(const char *f)
{
    size_t n = f ? strlen(f) : 0;
    if (n == 0 || n > SS_PARTITION_FIELD_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = f[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

/* See ss_partition.h. */
int ss_partition_spec(char *buf, size_t len, const char *field,
                      uint32_t copies)
{
    int n;
    if (field && *field) {
        if (copies || !ss_partition_field_ok(field))
            return SS_EINVAL;
        n = snprintf(buf, len, "partition_by:%s", field);
    } else if (copies) {
        n = snprintf(buf, len, "broadcast:%u", copies);
    } else {
        n = snprintf(buf, len, "%s", "");
    }
    return n < 0 || (size_t)n >= len ? SS_EINVAL : 0;
}

/* See ss_partition.h. */
uint16_t ss_partition_of(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 16777619u;
    return (uint16_t)(fmix32(h) % SS_PARTITIONS);
}

/* Reads a map header at p[*off..n): its pair count, or -1 when the value
 * there is not a map (*off unchanged then). */
static int64_t map_head(const char *p, size_t n, size_t *off)
{
    const uint8_t *b = (const uint8_t *)p;
    size_t o = *off;
    if (o >= n)
        return -1;
    uint8_t c = b[o];
    if (c >= 0x80 && c <= 0x8f) {
        *off = o + 1;
        return c & 0x0f;
    }
    if (c == 0xde && o + 3 <= n) {
        *off = o + 3;
        return (int64_t)(b[o + 1] << 8 | b[o + 2]);
    }
    if (c == 0xdf && o + 5 <= n) {
        *off = o + 5;
        return (int64_t)((uint32_t)b[o + 1] << 24 | (uint32_t)b[o + 2] << 16 |
                         (uint32_t)b[o + 3] << 8 | (uint32_t)b[o + 4]);
    }
    return -1;
}

/* See ss_partition.h. */
int ss_partition_event(const char *ev, size_t n, size_t *off,
                       const char *field, size_t flen, uint16_t *kg)
{
    static const uint8_t nil = 0xc0;
    size_t start = *off, end = start;
    if (ss_mp_skip(ev, n, &end) != 0)
        return SS_EDECODE;
    const char *key = (const char *)&nil;
    size_t klen = 1;
    size_t o = start;
    int64_t pairs = map_head(ev, end, &o);
    for (int64_t i = 0; i < pairs; i++) {
        const char *s;
        size_t sl;
        size_t vo = o;
        int is_str = ss_mp_get_str(ev, end, &vo, &s, &sl) == 0 &&
                     (uint8_t)ev[o] != 0xc4 && (uint8_t)ev[o] != 0xc5 &&
                     (uint8_t)ev[o] != 0xc6; /* str, not bin */
        if (!is_str) {
            vo = o;
            if (ss_mp_skip(ev, end, &vo) != 0)
                return SS_EDECODE;
        }
        size_t ve = vo;
        if (ss_mp_skip(ev, end, &ve) != 0)
            return SS_EDECODE;
        if (is_str && sl == flen && memcmp(s, field, flen) == 0) {
            key = ev + vo;
            klen = ve - vo;
            break;
        }
        o = ve;
    }
    *kg = ss_partition_of(key, klen);
    *off = end;
    return 0;
}

/* See ss_partition.h. */
void ss_psplit_init(ss_psplit *s)
{
    memset(s, 0, sizeof *s);
    memset(s->idx, 0xff, sizeof s->idx); /* every entry -1 */
}

/* See ss_partition.h. */
void ss_psplit_release(ss_psplit *s)
{
    for (size_t i = 0; i < s->capg; i++)
        ss_buf_release(&s->g[i].events);
    free(s->g);
    free(s->pc);
    ss_psplit_init(s);
}

static int cmp_group(const void *a, const void *b)
{
    const ss_pgroup *x = a, *y = b;
    return (int)x->kg - (int)y->kg;
}

/* See ss_partition.h. */
int ss_psplit_run(ss_psplit *s, const char *p, size_t n, uint32_t count,
                  const char *field)
{
    size_t flen = strlen(field);
    for (size_t i = 0; i < s->ng; i++)
        s->idx[s->g[i].kg] = -1;
    s->ng = 0;
    size_t off = 0;
    int rc = 0;
    for (uint32_t e = 0; e < count && !rc; e++) {
        size_t start = off;
        uint16_t kg;
        if (ss_partition_event(p, n, &off, field, flen, &kg)) {
            rc = SS_EDECODE;
            break;
        }
        int16_t gi = s->idx[kg];
        if (gi < 0) {
            if (s->ng == s->capg) {
                size_t cap = s->capg ? 2 * s->capg : 16;
                ss_pgroup *v = realloc(s->g, cap * sizeof *v);
                if (!v) {
                    rc = SS_ENOMEM;
                    break;
                }
                for (size_t i = s->capg; i < cap; i++)
                    ss_buf_init(&v[i].events);
                s->g = v;
                s->capg = cap;
            }
            gi = (int16_t)s->ng++;
            s->idx[kg] = gi;
            s->g[gi].kg = kg;
            s->g[gi].count = 0;
            ss_buf_reset(&s->g[gi].events);
        }
        ss_pgroup *g = &s->g[gi];
        if (ss_buf_append(&g->events, p + start, off - start)) {
            rc = SS_ENOMEM;
            break;
        }
        g->count++;
    }
    for (size_t i = 0; i < s->ng; i++)
        s->idx[s->g[i].kg] = -1;
    if (rc) {
        s->ng = 0;
        return rc;
    }
    ss_sort(s->g, s->ng, sizeof *s->g, cmp_group);
    return 0;
}

static ss_piece *piece_add(ss_psplit *s)
{
    if (s->npc == s->cappc) {
        size_t cap = s->cappc ? 2 * s->cappc : 16;
        ss_piece *v = realloc(s->pc, cap * sizeof *v);
        if (!v)
            return NULL;
        s->pc = v;
        s->cappc = cap;
    }
    return &s->pc[s->npc++];
}

/* See ss_partition.h. */
int ss_psplit_cut(ss_psplit *s, const ss_hdr *base, const char *ev,
                  size_t len, uint32_t count, const char *field,
                  uint32_t copies, const char **why)
{
    s->npc = 0;
    ss_hdr h = *base;
    h.kind = SS_MSG_DATA;
    h.flags = base->flags & (SS_BF_LAST_PART | SS_BF_FINAL);
    h.partition = 0;
    h.span = 0;
    /* an empty output of a part keeps the part's lineage: only cutting
     * a part again cannot be told apart downstream */
    int split = ((field && *field) && count > 0) || copies > 0;
    if (split && !(base->part == 0 && (base->flags & SS_BF_LAST_PART))) {
        *why = "the input batch is itself a part of a cut batch (it comes "
               "from a partitioned or broadcast stage that is stateless): "
               "its output cannot be cut again";
        return SS_EPROTO;
    }
    if (field && *field && count > 0) {
        int rc = ss_psplit_run(s, ev, len, count, field);
        if (rc) {
            *why = rc == SS_EDECODE ? "malformed event in the stage's output"
                                    : "out of memory";
            return rc;
        }
        for (size_t i = 0; i < s->ng; i++) {
            ss_piece *pc = piece_add(s);
            if (!pc) {
                *why = "out of memory";
                return SS_ENOMEM;
            }
            pc->h = h;
            pc->h.part = (uint32_t)i;
            pc->h.flags = (uint16_t)((h.flags & SS_BF_FINAL) |
                                     SS_BF_PARTITIONED |
                                     (i + 1 == s->ng ? SS_BF_LAST_PART : 0));
            pc->h.partition = s->g[i].kg;
            pc->h.count = s->g[i].count;
            pc->h.len = (uint32_t)s->g[i].events.len;
            pc->p = s->g[i].events.data ? s->g[i].events.data : "";
            pc->n = s->g[i].events.len;
        }
        return 0;
    }
    uint32_t n = !(field && *field) && copies > 0 ? copies : 1;
    for (uint32_t i = 0; i < n; i++) {
        ss_piece *pc = piece_add(s);
        if (!pc) {
            *why = "out of memory";
            return SS_ENOMEM;
        }
        pc->h = h;
        pc->h.count = count;
        pc->h.len = (uint32_t)len;
        if (n > 1 || copies > 0) {
            pc->h.part = i;
            pc->h.flags = (uint16_t)((h.flags & SS_BF_FINAL) |
                                     SS_BF_BROADCAST |
                                     (i + 1 == n ? SS_BF_LAST_PART : 0));
        }
        pc->p = ev ? ev : "";
        pc->n = len;
    }
    return 0;
}
