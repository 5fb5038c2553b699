/*
 * ss_taken.c - input lineages a stateful stage took (ss_taken.h).
 *
 * A stream's ring: bit (seq mod SS_TAKEN_WINDOW) says whether part 0 of
 * seq was taken, for seq in (hi - SS_TAKEN_WINDOW, hi]. When a newer seq
 * arrives, the bits of the seqs between the old hi and it (those that
 * leave the window at the other end) are cleared first.
 *
 * Parts above 0: open addressing on (stream index, seq, part / 64), a
 * slot holding a mask of the 64 parts of its block (a partitioned stage's
 * worker gets several parts of a seq: one slot for them all); a slot
 * whose seq left its stream's window is dead. The table is rebuilt (dead
 * slots dropped) when live and dead slots fill half of it, at the size
 * that leaves it a quarter full: each rebuild follows at least a quarter
 * of its size in inserts, so a take costs O(1) amortised.
 */
#include "wire/ss_taken.h"
#include "securestreams.h"

#include <stdlib.h>
#include <string.h>

#define WORDS (SS_TAKEN_WINDOW / 64)
#define PARTS_MIN 64

typedef struct tstream {
    uint32_t id;
    uint64_t hi;          /* newest seq taken */
    uint64_t bits[WORDS]; /* part 0 of each seq of the window */
} tstream;

typedef struct tpart {
    uint64_t seq;
    uint64_t mask;  /* parts block * 64 + i taken: bit i */
    uint32_t block; /* part / 64 */
    uint32_t s;     /* index of the stream + 1; 0: a free slot */
} tpart;

struct ss_taken {
    tstream **s;
    size_t ns, caps;
    size_t last; /* the stream found last (inputs come in runs) */
    tpart *p;
    size_t np, capp; /* slots in use (live or dead), slots */
};

/* See ss_taken.h. */
ss_taken *ss_taken_new(void) { return calloc(1, sizeof(ss_taken)); }

/* See ss_taken.h. */
void ss_taken_destroy(ss_taken **p)
{
    if (!p || !*p)
        return;
    for (size_t i = 0; i < (*p)->ns; i++)
        free((*p)->s[i]);
    free((*p)->s);
    free((*p)->p);
    free(*p);
    *p = NULL;
}

/* Whether seq is too old for stream st's window. */
static int too_late(const tstream *st, uint64_t seq)
{
    return st->hi >= SS_TAKEN_WINDOW && seq <= st->hi - SS_TAKEN_WINDOW;
}

/* The stream with id, made (empty, hi = seq) when new; NULL: no memory. */
static tstream *stream_of(ss_taken *t, uint32_t id, uint64_t seq,
                          size_t *idx)
{
    if (t->last < t->ns && t->s[t->last]->id == id) {
        *idx = t->last;
        return t->s[t->last];
    }
    for (size_t i = 0; i < t->ns; i++)
        if (t->s[i]->id == id) {
            *idx = t->last = i;
            return t->s[i];
        }
    if (t->ns == t->caps) {
        size_t cap = t->caps ? 2 * t->caps : 4;
        tstream **v = realloc(t->s, cap * sizeof *v);
        if (!v)
            return NULL;
        t->s = v;
        t->caps = cap;
    }
    tstream *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->id = id;
    st->hi = seq;
    t->s[t->ns] = st;
    *idx = t->last = t->ns++;
    return st;
}

/* Moves st's window up to end at seq (> st->hi): the bits of the seqs
 * that enter it are cleared (they held seqs that leave it). */
static void advance(tstream *st, uint64_t seq)
{
    if (seq - st->hi >= SS_TAKEN_WINDOW) {
        memset(st->bits, 0, sizeof st->bits);
    } else {
        /* counted by distance, not up to seq: a seq at the top of the
         * range must not wrap the loop around (it never ended) */
        uint64_t s = st->hi + 1, n = seq - st->hi;
        while (n > 0) {
            size_t b = (size_t)(s % SS_TAKEN_WINDOW);
            if ((b & 63) == 0 && n >= 64) { /* a whole word */
                st->bits[b / 64] = 0;
                s += 64;
                n -= 64;
            } else {
                st->bits[b / 64] &= ~(1ull << (b & 63));
                s++;
                n--;
            }
        }
    }
    st->hi = seq;
}

static size_t part_hash(uint32_t s, uint64_t seq, uint32_t block)
{
    uint64_t x = seq * 0x9e3779b97f4a7c15ull ^
                 ((uint64_t)s << 32 | block) * 0xc2b2ae3d27d4eb4full;
    return (size_t)(x ^ x >> 29);
}

/* The slot of (s, seq, block) in tab[0..cap) (cap a power of two, never
 * full): its own, or the free one where it would go. */
static tpart *part_slot(tpart *tab, size_t cap, uint32_t s, uint64_t seq,
                        uint32_t block)
{
    for (size_t i = part_hash(s, seq, block) & (cap - 1);;
         i = (i + 1) & (cap - 1)) {
        tpart *e = &tab[i];
        if (!e->s || (e->s == s && e->seq == seq && e->block == block))
            return e;
    }
}

/* Rebuilds the parts table without its dead slots, at the size that
 * leaves it at most a quarter full with one more. */
static int parts_rebuild(ss_taken *t)
{
    size_t live = 0;
    for (size_t i = 0; i < t->capp; i++)
        if (t->p[i].s && !too_late(t->s[t->p[i].s - 1], t->p[i].seq))
            live++;
    size_t cap = PARTS_MIN;
    while (cap < 4 * (live + 1))
        cap *= 2;
    tpart *v = calloc(cap, sizeof *v);
    if (!v)
        return SS_ENOMEM;
    for (size_t i = 0; i < t->capp; i++) {
        const tpart *e = &t->p[i];
        if (e->s && !too_late(t->s[e->s - 1], e->seq))
            *part_slot(v, cap, e->s, e->seq, e->block) = *e;
    }
    free(t->p);
    t->p = v;
    t->capp = cap;
    t->np = live;
    return 0;
}

/* See ss_taken.h. */
int ss_taken_take(ss_taken *t, uint32_t stream, uint64_t seq, uint32_t part,
                  uint64_t *newest)
{
    size_t idx;
    tstream *st = stream_of(t, stream, seq, &idx);
    if (!st)
        return SS_ENOMEM;
    if (too_late(st, seq)) {
        if (newest)
            *newest = st->hi;
        return SS_TAKEN_LATE;
    }
    if (part == 0) {
        size_t b = (size_t)(seq % SS_TAKEN_WINDOW);
        if (seq <= st->hi && (st->bits[b / 64] >> (b & 63) & 1))
            return SS_TAKEN_AGAIN;
        if (seq > st->hi)
            advance(st, seq);
        st->bits[b / 64] |= 1ull << (b & 63);
        return SS_TAKEN_NEW;
    }
    uint32_t s = (uint32_t)idx + 1, block = part / 64;
    uint64_t bit = 1ull << (part % 64);
    tpart *e = t->capp ? part_slot(t->p, t->capp, s, seq, block) : NULL;
    if (e && e->s && (e->mask & bit))
        return SS_TAKEN_AGAIN;
    if (!e || !e->s) { /* a new slot */
        if (2 * (t->np + 1) > t->capp) {
            int rc = parts_rebuild(t);
            if (rc)
                return rc;
        }
        e = part_slot(t->p, t->capp, s, seq, block);
        e->s = s;
        e->seq = seq;
        e->block = block;
        e->mask = 0;
        t->np++;
    }
    if (seq > st->hi)
        advance(st, seq);
    e->mask |= bit;
    return SS_TAKEN_NEW;
}

/* See ss_taken.h. */
size_t ss_taken_bytes(const ss_taken *t)
{
    return sizeof *t + t->caps * sizeof *t->s + t->ns * sizeof(tstream) +
           t->capp * sizeof *t->p;
}

/* See ss_taken.h. */
size_t ss_taken_streams(const ss_taken *t) { return t->ns; }

/* See ss_taken.h. */
size_t ss_taken_parts(const ss_taken *t)
{
    size_t live = 0;
    for (size_t i = 0; i < t->capp; i++)
        if (t->p[i].s && !too_late(t->s[t->p[i].s - 1], t->p[i].seq))
            live++;
    return live;
}
