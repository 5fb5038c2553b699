/*
 * ss_chain.c - several stage scripts in one process (see ss_chain.h).
 *
 * Stages sharing one Lua state (the default) hand values on in Lua
 * (ss_stage.c, "a chain sharing one Lua state"): the first stage runs
 * the batch through all of them. Stages in states of their own
 * (SS_CHAIN_SHARED=0): between two stages an event is encoded once
 * (stage k's output) and decoded once (stage k+1's input), as it would
 * be between two processes; the intermediate buffers are kept and
 * reused from batch to batch. Either way chaining saves the router, the
 * sockets and the kernel's wake-ups, the copies into and out of ZeroMQ
 * messages, the framing, and a process on the CPU.
 */
#include "lua/ss_chain.h"
#include "securestreams.h"
#include "wire/ss_msgpack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ss_chain {
    size_t n;
    int shared; /* the stages share st[0]'s Lua state (ss_stage_new_shared) */
    ss_stage **st;
    ss_stage_out *mid; /* n - 1 buffers: the output of stage k < n - 1 */
};

/* See ss_chain.h. */
int ss_chain_shared_wanted(void)
{
    const char *v = getenv("SS_CHAIN_SHARED");
    return !(v && !strcmp(v, "0"));
}

/* See ss_chain.h. */
int ss_chain_new(ss_stage **stages, size_t n, ss_chain **out)
{
    *out = NULL;
    if (n == 0)
        return SS_EINVAL;
    if (n > SS_CHAIN_MAX) {
        for (size_t i = 0; i < n; i++)
            ss_stage_destroy(&stages[i]);
        return SS_EINVAL;
    }
    ss_chain *c = calloc(1, sizeof *c);
    if (c) {
        c->st = calloc(n, sizeof *c->st);
        c->mid = n > 1 ? calloc(n - 1, sizeof *c->mid) : NULL;
    }
    if (!c || !c->st || (n > 1 && !c->mid)) {
        for (size_t i = 0; i < n; i++)
            ss_stage_destroy(&stages[i]);
        if (c) {
            free(c->st);
            free(c->mid);
            free(c);
        }
        return SS_ENOMEM;
    }
    c->n = n;
    for (size_t i = 0; i < n; i++) {
        c->st[i] = stages[i];
        stages[i] = NULL;
    }
    for (size_t i = 0; i + 1 < n; i++)
        ss_stage_out_init(&c->mid[i]);
    c->shared = n > 1 && ss_stage_shared(c->st[1]);
    *out = c;
    return 0;
}

/* See ss_chain.h. */
void ss_chain_destroy(ss_chain **p)
{
    if (!p || !*p)
        return;
    ss_chain *c = *p;
    for (size_t i = 0; i < c->n; i++)
        ss_stage_destroy(&c->st[i]);
    for (size_t i = 0; i + 1 < c->n; i++)
        ss_stage_out_release(&c->mid[i]);
    free(c->st);
    free(c->mid);
    free(c);
    *p = NULL;
}

size_t ss_chain_len(const ss_chain *c) { return c->n; }
ss_stage *ss_chain_stage(ss_chain *c, size_t i) { return c->st[i]; }

/* See ss_chain.h. */
int ss_chain_stateful(const ss_chain *c)
{
    for (size_t i = 0; i < c->n; i++)
        if (ss_stage_stateful(c->st[i]))
            return 1;
    return 0;
}

/* Moves the rejects of `from` to the end of `to`. */
static int move_rejects(ss_stage_out *from, ss_stage_out *to)
{
    if (!from->nrejects)
        return 0;
    if (ss_buf_append(&to->rejects, from->rejects.data, from->rejects.len))
        return SS_ENOMEM;
    to->nrejects += from->nrejects;
    ss_buf_reset(&from->rejects);
    from->nrejects = 0;
    return 0;
}

/* Where stage k writes: the next stage's input, or the chain's output. */
static ss_stage_out *dest(ss_chain *c, size_t k, ss_stage_out *out)
{
    return k + 1 < c->n ? &c->mid[k] : out;
}

/* Feeds stage k (k >= 1) the output stage k-1 left in mid[k-1], under
 * the lineage of hdr (NULL: a completion's output, which has none). */
static int feed(ss_chain *c, size_t k, const ss_hdr *hdr, ss_stage_out *out)
{
    ss_stage_out *in = &c->mid[k - 1];
    ss_hdr h;
    if (hdr)
        h = *hdr;
    else
        memset(&h, 0, sizeof h);
    h.count = in->count;
    h.len = (uint32_t)in->events.len;
    int rc = 0;
    if (in->count || in->events.len)
        rc = ss_stage_process(c->st[k], &h, in->events.data
                                                ? in->events.data
                                                : "",
                              in->events.len, dest(c, k, out));
    ss_buf_reset(&in->events);
    in->count = 0;
    return rc;
}

/* See ss_chain.h. */
int ss_chain_process(ss_chain *c, const ss_hdr *hdr, const char *payload,
                     size_t len, ss_stage_out *out)
{
    if (c->n == 1 || c->shared) /* st[0] runs them all */
        return ss_stage_process(c->st[0], hdr, payload, len, out);
    for (size_t k = 0; k + 1 < c->n; k++)
        ss_stage_out_reset(&c->mid[k]);
    int rc = ss_stage_process(c->st[0], hdr, payload, len, &c->mid[0]);
    for (size_t k = 1; !rc && k < c->n; k++) {
        if ((rc = move_rejects(&c->mid[k - 1], out)))
            break;
        rc = feed(c, k, hdr, out);
    }
    return rc;
}

/* See ss_chain.h. */
int ss_chain_complete(ss_chain *c, ss_stage_out *out, ss_stage **failed)
{
    if (failed)
        *failed = NULL;
    if (c->shared) { /* what stage k emits goes through the rest now */
        for (size_t k = 0; k < c->n; k++) {
            int rc = ss_stage_complete(c->st[k], out);
            if (rc) {
                if (failed)
                    *failed = c->st[k];
                return rc;
            }
        }
        return 0;
    }
    for (size_t k = 0; k + 1 < c->n; k++)
        ss_stage_out_reset(&c->mid[k]);
    for (size_t k = 0; k < c->n; k++) {
        int rc = 0;
        if (k > 0) {
            rc = feed(c, k, NULL, out);
            if (!rc)
                rc = move_rejects(&c->mid[k - 1], out);
        }
        if (!rc)
            rc = ss_stage_complete(c->st[k], dest(c, k, out));
        if (rc) {
            if (failed)
                *failed = c->st[k];
            return rc;
        }
    }
    return 0;
}

/* See ss_chain.h. */
int ss_chain_snapshot(ss_chain *c, ss_buf *out, char *err, size_t errlen)
{
    size_t mark = out->len;
    ss_buf one = SS_BUF_INIT;
    int rc = ss_mp_put_array(out, (uint32_t)c->n);
    for (size_t i = 0; rc == 0 && i < c->n; i++) {
        ss_buf_reset(&one);
        rc = ss_stage_snapshot(c->st[i], &one, err, errlen);
        if (rc == 0)
            rc = ss_mp_put_bin(out, one.data ? one.data : "", one.len);
    }
    if (one.data) /* plaintext state */
        memset(one.data, 0, one.cap);
    ss_buf_release(&one);
    if (rc) {
        if (rc == SS_ENOMEM)
            snprintf(err, errlen, "out of memory for the snapshot");
        out->len = mark;
        if (out->data)
            out->data[mark] = '\0';
    }
    return rc;
}

/* Reads a MessagePack array header at p[*off..n) into *count. */
static int get_array(const char *p, size_t n, size_t *off, uint32_t *count)
{
    const unsigned char *u = (const unsigned char *)p + *off;
    size_t left = n - *off;
    if (left < 1)
        return SS_EDECODE;
    if ((u[0] & 0xf0) == 0x90) {
        *count = u[0] & 0x0f;
        *off += 1;
    } else if (u[0] == 0xdc && left >= 3) {
        *count = (uint32_t)u[1] << 8 | u[2];
        *off += 3;
    } else if (u[0] == 0xdd && left >= 5) {
        *count = (uint32_t)u[1] << 24 | (uint32_t)u[2] << 16 |
                 (uint32_t)u[3] << 8 | u[4];
        *off += 5;
    } else {
        return SS_EDECODE;
    }
    return 0;
}

/* See ss_chain.h. */
int ss_chain_restore(ss_chain *c, const char *data, size_t len, char *err,
                     size_t errlen)
{
    ss_stage_groups all = {1, 0, SS_PARTITIONS - 1, 0, SS_PARTITIONS - 1};
    return ss_chain_restore_groups(c, data, len, &all, err, errlen);
}

/* See ss_chain.h. */
int ss_chain_restore_groups(ss_chain *c, const char *data, size_t len,
                            const ss_stage_groups *sel, char *err,
                            size_t errlen)
{
    size_t off = 0;
    uint32_t n = 0;
    /* one stage's own snapshot ([version, [...]], ss_stage_snapshot) for
     * a chain of one: what a worker that is not chained may have saved */
    if (c->n == 1 && data && len >= 2 &&
        ((unsigned char)data[0] & 0xf0) == 0x90 &&
        !((unsigned char)data[1] >= 0xc4 && (unsigned char)data[1] <= 0xc6))
        return ss_stage_restore_groups(c->st[0], data, len, sel, err,
                                       errlen);
    if (!data || get_array(data, len, &off, &n) != 0) {
        snprintf(err, errlen, "not a snapshot of a worker's stages (an "
                 "array of one snapshot per stage)");
        return SS_EDECODE;
    }
    if (n != c->n) {
        snprintf(err, errlen, "the snapshot holds %u stage(s), this worker "
                 "runs %zu: not a snapshot of this worker", n, c->n);
        return SS_EDECODE;
    }
    for (size_t i = 0; i < c->n; i++) {
        const char *s;
        size_t sl;
        if (ss_mp_get_str(data, len, &off, &s, &sl) != 0) {
            snprintf(err, errlen, "snapshot of stage %zu of %zu is not a "
                     "byte string (truncated?)", i + 1, c->n);
            return SS_EDECODE;
        }
        int rc = ss_stage_restore_groups(c->st[i], s, sl, sel, err, errlen);
        if (rc)
            return rc;
    }
    if (off != len) {
        snprintf(err, errlen, "%zu bytes after the snapshot", len - off);
        return SS_EDECODE;
    }
    return 0;
}
