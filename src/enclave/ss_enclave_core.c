/*
 * ss_enclave_core.c - the inside of an enclave (see ss_enclave_core.h).
 */
#include "enclave/ss_enclave_core.h"
#include "crypto/ss_aead.h"
#include "crypto/ss_snapshot.h"
#include "securestreams.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* See ss_enclave_core.h. */
int ss_ecore_have_stage(void)
{
    return 1; /* lua/ss_stage.c is part of the library */
}

/* See ss_enclave_core.h. */
int ss_ecore_init(ss_ecore *c, const ss_stage_opts *so, int encrypted,
                  int echo, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    ss_psplit_init(&c->split);
    c->encrypted = encrypted;
    c->echo = echo;
    ss_buf_init(&c->pt);
    if (echo)
        return 0;
    if (!ss_ecore_have_stage()) {
        snprintf(err, errlen, "the stage runner (lua/ss_stage.c) is not "
                              "linked into this program");
        return SS_EINVAL;
    }
    ss_stage_out_init(&c->out);
    c->out_ready = 1;
    ss_stage *st = NULL;
    int rc = ss_stage_new(so, &st, err, errlen);
    if (!rc)
        rc = ss_chain_new(&st, 1, &c->chain);
    if (rc) {
        ss_stage_out_release(&c->out);
        c->out_ready = 0;
        return rc;
    }
    c->stage = ss_chain_stage(c->chain, 0);
    return 0;
}

/* See ss_enclave_core.h. */
int ss_ecore_scripts_load(ss_ecore_scripts *sc, const char *stage,
                          const char *script, const char *const *chain,
                          size_t nchain, char *err, size_t errlen)
{
    memset(sc, 0, sizeof *sc);
    if (nchain >= SS_CHAIN_MAX) {
        snprintf(err, errlen, "more than %d chained stages",
                 SS_CHAIN_MAX - 1);
        return SS_EINVAL;
    }
    for (size_t k = 0; k <= nchain; k++) {
        const char *name = stage, *path = script;
        size_t nl = strlen(stage ? stage : "");
        if (k > 0) {
            const char *eq = strchr(chain[k - 1], '=');
            if (!eq || eq == chain[k - 1] || !eq[1]) {
                snprintf(err, errlen, "chained stage '%.200s': expected "
                         "STAGE=SCRIPT", chain[k - 1]);
                return SS_EINVAL;
            }
            name = chain[k - 1];
            nl = (size_t)(eq - name);
            path = eq + 1;
        }
        if (!name || nl == 0 || nl >= sizeof sc->stage[k]) {
            snprintf(err, errlen, "bad stage name (1 to %zu bytes)",
                     sizeof sc->stage[k] - 1);
            return SS_EINVAL;
        }
        memcpy(sc->stage[k], name, nl);
        sc->stage[k][nl] = '\0';
        sc->path[k] = path;
        int rc = ss_bundle_load(path, &sc->b[k], err, errlen);
        sc->n = k + 1;
        if (rc)
            return rc;
    }
    return 0;
}

/* See ss_enclave_core.h. */
int ss_ecore_scripts_measured(const ss_ecore_scripts *sc, ss_buf *out)
{
    const char *names[SS_CHAIN_MAX];
    for (size_t k = 0; k < sc->n; k++)
        names[k] = sc->stage[k];
    return ss_bundle_measured_chain((const ss_bundle *const *)sc->b, names,
                                    sc->n, out);
}

/* See ss_enclave_core.h. */
void ss_ecore_scripts_release(ss_ecore_scripts *sc)
{
    for (size_t k = 0; k < sc->n; k++)
        ss_bundle_destroy(&sc->b[k]);
    sc->n = 0;
}

/* See ss_enclave_core.h. */
int ss_ecore_init_chain(ss_ecore *c, const ss_stage_opts *so,
                        const ss_ecore_scripts *sc, int encrypted,
                        char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    ss_psplit_init(&c->split);
    c->encrypted = encrypted;
    ss_buf_init(&c->pt);
    if (sc->n == 0 || sc->n > SS_CHAIN_MAX) {
        snprintf(err, errlen, "no stage to run");
        return SS_EINVAL;
    }
    ss_stage *st[SS_CHAIN_MAX] = {0};
    int rc = 0;
    for (size_t k = 0; k < sc->n && !rc; k++) {
        ss_stage_opts o = *so;
        char name[160];
        o.stage = sc->stage[k];
        if (k > 0) {
            const char *dash = so->name ? strrchr(so->name, '-') : NULL;
            snprintf(name, sizeof name, "%s-%s", sc->stage[k],
                     dash ? dash + 1 : "1");
            o.name = name;
        }
        o.script_src = ss_bundle_script(sc->b[k], &o.script_len);
        o.bundle = sc->b[k];
        o.script_path = so->script_path ? sc->path[k] : NULL;
        /* one Lua state for the chain, as in a worker (ss_chain.h) */
        rc = k > 0 && ss_chain_shared_wanted()
                 ? ss_stage_new_shared(st[0], &o, &st[k], err, errlen)
                 : ss_stage_new(&o, &st[k], err, errlen);
        if (rc && k > 0) {
            char why[512];
            snprintf(why, sizeof why, "%s", err);
            snprintf(err, errlen, "chained stage '%s': %s", sc->stage[k],
                     why);
        } else if (!rc && k > 0 &&
                   (!ss_stage_has_input(st[k]) || !ss_stage_to(st[k]))) {
            snprintf(err, errlen, "chained stage '%s': its script must "
                     "start with fromZmqSocket(...) and end with "
                     ":subscribeToSocket(...), as any stage", sc->stage[k]);
            rc = SS_EINVAL;
        }
    }
    if (!rc)
        rc = ss_chain_new(st, sc->n, &c->chain); /* takes them all */
    for (size_t k = 0; k < sc->n; k++)
        ss_stage_destroy(&st[k]);
    if (rc)
        return rc;
    ss_stage_out_init(&c->out);
    c->out_ready = 1;
    c->stage = ss_chain_stage(c->chain, 0);
    return 0;
}

/* See ss_enclave_core.h. */
int ss_ecore_stage_stateful(const ss_ecore *c, size_t k)
{
    if (!c->chain || k >= ss_chain_len(c->chain))
        return 0;
    return ss_stage_stateful(ss_chain_stage(c->chain, k));
}

/* See ss_enclave_core.h. */
size_t ss_ecore_nstages(const ss_ecore *c)
{
    return c->chain ? ss_chain_len(c->chain) : 0;
}

/* See ss_enclave_core.h. */
void ss_ecore_info(const ss_ecore *c, char *from, char *to, size_t len,
                   int *stateful, int *uses_sgx)
{
    from[0] = to[0] = '\0';
    *stateful = *uses_sgx = 0;
    if (!c->stage)
        return;
    const char *f = ss_stage_from(c->stage);
    const char *t = ss_stage_to(c->stage);
    snprintf(from, len, "%s", f ? f : "");
    snprintf(to, len, "%s", t ? t : "");
    /* the chain's: stateful if any stage is, and the enclave is where
     * the SGX operators of any of its scripts run */
    *stateful = ss_chain_stateful(c->chain);
    for (size_t k = 0; k < ss_chain_len(c->chain); k++)
        *uses_sgx |= ss_stage_uses_sgx(ss_chain_stage(c->chain, k));
}

/* See ss_enclave_core.h. */
void ss_ecore_set_run(ss_ecore *c, uint64_t run, const char *name)
{
    c->run = run;
    c->producer = ss_name_id(name ? name : "");
    snprintf(c->worker, sizeof c->worker, "%s", name ? name : "");
}

/* See ss_enclave_core.h. */
void ss_ecore_set_output(ss_ecore *c, const char *field, uint32_t copies)
{
    snprintf(c->partition_by, sizeof c->partition_by, "%s",
             field ? field : "");
    c->broadcast = copies;
}

/* See ss_enclave_core.h. */
void ss_ecore_set_key(ss_ecore *c, ss_key *k)
{
    ss_key_destroy(&c->key);
    c->key = k;
}

/* See ss_enclave_core.h. */
void ss_ecore_release(ss_ecore *c)
{
    if (c->chain)
        ss_chain_destroy(&c->chain); /* and c->stage, its first */
    c->stage = NULL;
    if (c->out_ready) {
        if (c->out.events.data)
            sodium_memzero(c->out.events.data, c->out.events.cap);
        ss_stage_out_release(&c->out);
        c->out_ready = 0;
    }
    if (c->pt.data)
        sodium_memzero(c->pt.data, c->pt.cap);
    ss_buf_release(&c->pt);
    for (size_t i = 0; i < c->split.capg; i++)
        if (c->split.g[i].events.data)
            sodium_memzero(c->split.g[i].events.data,
                           c->split.g[i].events.cap);
    ss_psplit_release(&c->split);
    ss_key_destroy(&c->key);
    ss_taken_destroy(&c->taken);
}

/* Records that a stateful chain took input h: 0, SS_EDENIED when it
 * took this lineage before, or when h is too old to tell (err says
 * which), SS_ENOMEM. */
static int seen_take(ss_ecore *c, const ss_hdr *h, char *err, size_t errlen)
{
    if (!c->taken && !(c->taken = ss_taken_new())) {
        snprintf(err, errlen, "out of memory recording the inputs of "
                 "stage '%s'", ss_stage_name(c->stage));
        return SS_ENOMEM;
    }
    uint64_t newest = 0;
    int rc = ss_taken_take(c->taken, h->stream, h->seq, h->part, &newest);
    switch (rc) {
    case SS_TAKEN_NEW:
        return 0;
    case SS_TAKEN_AGAIN:
        snprintf(err, errlen, "stage '%s' keeps state and took batch "
                 "%u/%llu part %u already: refusing it again (its events "
                 "would be folded twice)", ss_stage_name(c->stage),
                 h->stream, (unsigned long long)h->seq, h->part);
        return SS_EDENIED;
    case SS_TAKEN_LATE:
        snprintf(err, errlen, "stage '%s' keeps state and took batch "
                 "%u/%llu already: batch %u/%llu part %u is %llu batches "
                 "older, beyond the last %u it remembers, so it may have "
                 "been taken before: refusing it (its events could be "
                 "folded twice)",
                 ss_stage_name(c->stage), h->stream,
                 (unsigned long long)newest, h->stream,
                 (unsigned long long)h->seq, h->part,
                 (unsigned long long)(newest - h->seq), SS_TAKEN_WINDOW);
        return SS_EDENIED;
    default:
        snprintf(err, errlen, "out of memory recording the inputs of "
                 "stage '%s'", ss_stage_name(c->stage));
        return SS_ENOMEM;
    }
}

/* See ss_enclave_core.h. */
size_t ss_ecore_taken_bytes(const ss_ecore *c)
{
    return c->taken ? ss_taken_bytes(c->taken) : 0;
}

/* Remembers every stage's totals before a call (see emit_all). */
static void snapshot(ss_ecore *c)
{
    for (size_t k = 0; k < ss_chain_len(c->chain); k++)
        c->before[k] = *ss_stage_totals(ss_chain_stage(c->chain, k));
}

/* Writes header h + payload p[0..n) (sealed when encrypted) through rs. */
static int emit(ss_ecore *c, ss_hdr *h, int which, const void *p, size_t n,
                ss_ecore_reserve rs, void *rctx, size_t *outlen)
{
    if (c->encrypted) {
        size_t need = SS_HDR_SIZE + n + ss_aead_overhead(c->key);
        if (n > SS_BATCH_MAX_SIZE - ss_aead_overhead(c->key))
            return SS_ETOOBIG;
        void *dst = rs(rctx, which, need);
        if (!dst)
            return SS_ETOOBIG;
        return ss_aead_seal_to(c->key, h, p, n, dst, need, outlen);
    }
    if (n > SS_BATCH_MAX_SIZE)
        return SS_ETOOBIG;
    uint8_t *dst = rs(rctx, which, SS_HDR_SIZE + n);
    if (!dst)
        return SS_ETOOBIG;
    h->len = (uint32_t)n;
    ss_hdr_encode(h, dst);
    if (n)
        memcpy(dst + SS_HDR_SIZE, p, n);
    *outlen = SS_HDR_SIZE + n;
    return 0;
}

/* Writes the stage output under header oh through rs: one message, or,
 * when the next stage is partitioned or broadcast, the pieces of
 * ss_psplit_cut back to back, each sealed on its own (its own header is
 * its associated data). */
static int emit_out(ss_ecore *c, const ss_hdr *oh, ss_ecore_reserve rs,
                    void *rctx, size_t *outlen, char *err, size_t errlen)
{
    const char *why = "";
    int rc = ss_psplit_cut(&c->split, oh, c->out.events.data,
                           c->out.events.len, c->out.count,
                           c->partition_by[0] ? c->partition_by : NULL,
                           c->broadcast, &why);
    if (rc) {
        snprintf(err, errlen, "batch %llu: %s", (unsigned long long)oh->seq,
                 why);
        return rc;
    }
    size_t ov = c->encrypted ? ss_aead_overhead(c->key) : 0, total = 0;
    for (size_t i = 0; i < c->split.npc; i++) {
        if (c->split.pc[i].n > SS_BATCH_MAX_SIZE - ov)
            return SS_ETOOBIG;
        total += SS_HDR_SIZE + c->split.pc[i].n + ov;
    }
    uint8_t *dst = rs(rctx, 0, total);
    if (!dst)
        return SS_ETOOBIG;
    size_t off = 0;
    for (size_t i = 0; i < c->split.npc; i++) {
        ss_piece *pc = &c->split.pc[i];
        size_t one = 0;
        if (c->encrypted) {
            rc = ss_aead_seal_to(c->key, &pc->h, pc->p, pc->n, dst + off,
                                 total - off, &one);
            if (rc)
                return rc;
        } else {
            pc->h.len = (uint32_t)pc->n;
            ss_hdr_encode(&pc->h, dst + off);
            if (pc->n)
                memcpy(dst + off + SS_HDR_SIZE, pc->p, pc->n);
            one = SS_HDR_SIZE + pc->n;
        }
        off += one;
    }
    for (size_t i = 0; i < c->split.ng; i++) /* plaintext copies */
        if (c->split.g[i].events.data)
            sodium_memzero(c->split.g[i].events.data,
                           c->split.g[i].events.len);
    *outlen = off;
    return 0;
}

/* Emits the stage output under out_hdr, and the rejects with in_hdr's
 * lineage. */
static int emit_all(ss_ecore *c, ss_hdr *oh, const ss_hdr *in,
                    ss_ecore_reserve rs, void *rctx, ss_ecore_res *res,
                    char *err, size_t errlen)
{
    oh->count = c->out.count;
    oh->run = c->run; /* sealed under this run, written by this worker */
    oh->producer = c->producer;
    /* a stateful chain marks every output with an id only this enclave
     * has (drawn here, not by the host): the sink checks that all of a
     * worker's outputs carry its result's id, so that a host cannot
     * split the batches between two enclaves of one worker and pass on
     * one's result (docs/SECURITY.md). Never 0, so that 0 means "none". */
    if (c->chain && ss_chain_stateful(c->chain))
        while (!c->instance)
            c->instance = randombytes_random();
    oh->instance = c->instance;
    if (!(oh->flags & SS_BF_RANGE))
        oh->span = 0;
    if (!(oh->flags & SS_BF_PARTITIONED))
        oh->partition = 0;
    int rc = emit_out(c, oh, rs, rctx, &res->msg_len, err, errlen);
    if (rc == 0)
        c->emitted += c->split.npc;
    if (rc == 0 && c->out.nrejects) {
        ss_hdr rh = *in;
        rh.instance = 0;
        rh.run = c->run;
        rh.producer = c->producer;
        rh.kind = SS_MSG_REJECT;
        rh.flags = 0;
        rh.span = 0;
        rh.partition = 0;
        rh.count = c->out.nrejects;
        rc = emit(c, &rh, 1, c->out.rejects.data, c->out.rejects.len, rs,
                  rctx, &res->rej_len);
        res->nrejects = c->out.nrejects;
    }
    if (rc == SS_ETOOBIG)
        snprintf(err, errlen, "the output of batch %llu is larger than a "
                              "batch may be",
                 (unsigned long long)in->seq);
    /* every stage's counts of this call: what its totals grew by */
    size_t ns = ss_chain_len(c->chain);
    res->nstages = ns;
    res->mem_peak = 0;
    for (size_t k = 0; k < ns; k++) {
        ss_stage *sk = ss_chain_stage(c->chain, k);
        const ss_stage_counts *t = ss_stage_totals(sk), *b = &c->before[k];
        ss_stage_counts *d = &res->stages[k];
        d->in = t->in - b->in;
        d->passed = t->passed - b->passed;
        d->dropped = t->dropped - b->dropped;
        d->rejected = t->rejected - b->rejected;
        d->out = t->out - b->out;
        d->out_bytes = t->out_bytes - b->out_bytes;
        res->mem_peak += ss_stage_mem_peak(sk);
    }
    /* unchained: the output's own counts, as always */
    res->delta = ns == 1 ? c->out.delta : res->stages[0];
    res->stages[0] = res->delta;
    if (c->out.events.data)
        sodium_memzero(c->out.events.data, c->out.events.len);
    if (c->out.rejects.data)
        sodium_memzero(c->out.rejects.data, c->out.rejects.len);
    return rc;
}

/* Checks and opens one untrusted input message: *h its header, and
 * its (plaintext) events in *payload[0..*len). */
static int open_input(ss_ecore *c, const void *msg, size_t n, ss_hdr *h,
                      const char **payload, size_t *len, char *err,
                      size_t errlen)
{
    const char *why = "";
    if (ss_hdr_decode(msg, n, h, &why) != 0) {
        snprintf(err, errlen, "bad input message: %s", why);
        return SS_EPROTO;
    }
    if (h->kind != SS_MSG_DATA) {
        snprintf(err, errlen, "input message is a %s, not a batch",
                 ss_msg_kind_name(h->kind));
        return SS_EPROTO;
    }
    if (h->run != c->run && !ss_hdr_at_rest(h)) {
        snprintf(err, errlen, "refusing batch %u/%llu of run %016llx: this "
                 "enclave serves run %016llx (a replay from another run?)",
                 h->stream, (unsigned long long)h->seq,
                 (unsigned long long)h->run, (unsigned long long)c->run);
        return SS_EDENIED;
    }
    if (c->restored && h->epoch < c->restored_epoch) {
        /* the header is authenticated below when encrypted; a plain one
         * is refused as well, it can only be a mistake */
        snprintf(err, errlen, "refusing batch %u/%llu of epoch %u: this "
                 "enclave restored the checkpoint of epoch %u, which holds "
                 "it already (a stale replay)", h->stream,
                 (unsigned long long)h->seq, h->epoch, c->restored_epoch);
        return SS_EDENIED;
    }
    if (!c->encrypted) {
        if (h->flags & SS_BF_ENCRYPTED) {
            snprintf(err, errlen, "batch %llu is sealed but this stage "
                                  "runs without the data key",
                     (unsigned long long)h->seq);
            return SS_EINVAL;
        }
        *payload = (const char *)msg + SS_HDR_SIZE;
        *len = h->len;
        return 0;
    }
    if (!(h->flags & SS_BF_ENCRYPTED)) {
        snprintf(err, errlen, "refusing plaintext batch %llu: this "
                              "enclave only accepts sealed batches",
                 (unsigned long long)h->seq);
        return SS_EDENIED;
    }
    ss_buf_reset(&c->pt);
    int rc = ss_aead_open(c->key, msg, n, h, &c->pt);
    if (rc) {
        if (rc == SS_ECRYPTO)
            snprintf(err, errlen, "batch %llu does not authenticate "
                                  "(modified, or sealed with another "
                                  "key)",
                     (unsigned long long)h->seq);
        return rc;
    }
    *payload = c->pt.data;
    *len = c->pt.len;
    return 0;
}

/* See ss_enclave_core.h. */
int ss_ecore_call(ss_ecore *c, const void *msg, size_t n,
                  ss_ecore_reserve rs, void *rctx, ss_ecore_res *res,
                  char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    if (c->echo) {
        void *dst = rs(rctx, 0, n);
        if (!dst)
            return SS_ETOOBIG;
        memcpy(dst, msg, n);
        res->msg_len = n;
        return 0;
    }
    if (c->completed) {
        snprintf(err, errlen, "stage '%s' already completed: refusing a "
                              "batch after its end", ss_stage_name(c->stage));
        return SS_EDENIED;
    }
    ss_hdr h;
    const char *payload;
    size_t len;
    int rc = open_input(c, msg, n, &h, &payload, &len, err, errlen);
    if (rc == 0 && ss_chain_stateful(c->chain))
        rc = seen_take(c, &h, err, errlen);
    if (rc) {
        if (c->encrypted && c->pt.data)
            sodium_memzero(c->pt.data, c->pt.len);
        return rc;
    }
#ifdef SS_TEST_HOOKS
    if (c->die_on && c->die &&
        memmem(payload, len, c->die_on, strlen(c->die_on)))
        c->die(); /* test hook, see ss_enclave_core.h */
#endif
    ss_stage_out_reset(&c->out);
    snapshot(c);
    /* the whole chain on the opened batch: one open and one seal per
     * batch however many stages run here */
    rc = ss_chain_process(c->chain, &h, payload, len, &c->out);
    if (c->encrypted)
        sodium_memzero(c->pt.data, c->pt.len);
    if (rc) {
        snprintf(err, errlen, "the stage failed on batch %llu: %s",
                 (unsigned long long)h.seq, ss_strerror(rc));
        return rc;
    }
    ss_hdr oh = h;
    oh.kind = SS_MSG_DATA;
    oh.flags = h.flags & (SS_BF_LAST_PART | SS_BF_FINAL);
    return emit_all(c, &oh, &h, rs, rctx, res, err, errlen);
}

/* See ss_enclave_core.h. */
int ss_ecore_reject(ss_ecore *c, const void *msg, size_t n,
                    ss_ecore_reserve rs, void *rctx, ss_ecore_res *res,
                    char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    if (c->echo) {
        snprintf(err, errlen, "an echo enclave has no stage to reject for");
        return SS_EINVAL;
    }
    if (ss_chain_stateful(c->chain) || c->completed) {
        snprintf(err, errlen, "stage '%s' keeps state: refusing to reject "
                              "a batch whole on the host's word (every "
                              "batch must reach the state)",
                 ss_stage_name(c->stage));
        return SS_EDENIED;
    }
    ss_hdr h;
    const char *payload;
    size_t len;
    int rc = open_input(c, msg, n, &h, &payload, &len, err, errlen);
    if (c->encrypted && c->pt.data)
        sodium_memzero(c->pt.data, c->pt.len); /* authenticated: enough */
    if (rc)
        return rc;
    ss_stage_out_reset(&c->out);
    snapshot(c);
    ss_stage_reject_batch(c->stage, &h,
                          "the enclave died each time it processed this "
                          "batch: all its events are rejected",
                          &c->out);
    ss_hdr oh = h;
    oh.kind = SS_MSG_DATA;
    oh.flags = h.flags & (SS_BF_LAST_PART | SS_BF_FINAL);
    return emit_all(c, &oh, &h, rs, rctx, res, err, errlen);
}

/* The stage failed at completion: its reason (which may quote data)
 * leaves like a per-event reason, as a REJECT message under the final
 * header's lineage with count 0, sealed when encrypted; err names the
 * stage and quotes the reason only in clear mode. */
static void completion_failed(ss_ecore *c, ss_stage *failed,
                              const ss_hdr *final, int rc,
                              ss_ecore_reserve rs, void *rctx,
                              ss_ecore_res *res, char *err, size_t errlen)
{
    if (!failed)
        failed = c->stage;
    const char *stage = ss_stage_name(failed);
    const char *why = ss_stage_error(failed);
    ss_buf line = SS_BUF_INIT;
    ss_buf_printf(&line, "{\"stage\":");
    ss_buf_json_str(&line, stage, strlen(stage));
    ss_buf_printf(&line, ",\"events\":0,\"error\":");
    char msg[700];
    snprintf(msg, sizeof msg, "the stage failed at completion: %s",
             why && *why ? why : ss_strerror(rc));
    ss_buf_json_str(&line, msg, strlen(msg));
    ss_buf_append(&line, "}\n", 2);
    ss_hdr rh = *final;
    rh.kind = SS_MSG_REJECT;
    rh.flags = 0;
    rh.count = 0;
    rh.instance = 0;
    size_t rl = 0;
    if (line.data && emit(c, &rh, 1, line.data, line.len, rs, rctx, &rl) == 0)
        res->rej_len = rl;
    if (line.data)
        sodium_memzero(line.data, line.len);
    ss_buf_release(&line);
    if (c->encrypted)
        snprintf(err, errlen, "stage '%s' failed at completion (the reason "
                              "is sealed with the rejects, for the owner)",
                 stage);
    else
        snprintf(err, errlen, "stage '%s' %s", stage, msg + 10);
}

/* See ss_enclave_core.h. */
int ss_ecore_complete(ss_ecore *c, const ss_hdr *final, ss_ecore_reserve rs,
                      void *rctx, ss_ecore_res *res, char *err,
                      size_t errlen)
{
    memset(res, 0, sizeof *res);
    if (c->echo) {
        res->msg_len = 0;
        return 0;
    }
    if (c->completed) {
        snprintf(err, errlen, "stage '%s' already completed: refusing a "
                              "second completion", ss_stage_name(c->stage));
        return SS_EDENIED;
    }
    c->completed = 1;
    ss_stage_out_reset(&c->out);
    snapshot(c);
    ss_stage *failed = NULL;
    int rc = ss_chain_complete(c->chain, &c->out, &failed);
    if (rc) {
        completion_failed(c, failed, final, rc, rs, rctx, res, err, errlen);
        return rc;
    }
    /* the result's lineage is the core's, not the host's: its worker's
     * own stream (ss_name_id(worker) | 2^31), batch 0, the end of it. A
     * host that chose it put the results of two enclaves of one worker
     * on batches 0 and 1 of that stream, and the sink took both (a
     * reduce's total counted twice); now a second result is the same
     * batch again, a duplicate */
    ss_hdr oh = *final;
    oh.kind = SS_MSG_DATA;
    oh.flags = SS_BF_LAST_PART | SS_BF_FINAL;
    oh.stream = c->producer | 0x80000000u;
    oh.part = 0;
    oh.seq = 0;
    /* the number of messages this enclave sealed before it: the sink
     * checks it against those of this worker that it received */
    oh.first_row = c->emitted;
    oh.aux = SS_AUX_END;
    return emit_all(c, &oh, &oh, rs, rctx, res, err, errlen);
}

/* See ss_enclave_core.h. */
int ss_ecore_snapshot(ss_ecore *c, uint32_t epoch, ss_ecore_reserve rs,
                      void *rctx, size_t *len, char *err, size_t errlen)
{
    *len = 0;
    if (c->echo) {
        snprintf(err, errlen, "an echo enclave has no state");
        return SS_EINVAL;
    }
    const char *stage = ss_stage_name(c->stage);
    if (c->completed) {
        snprintf(err, errlen, "stage '%s' already completed: no snapshot "
                 "after its end", stage);
        return SS_EDENIED;
    }
    if ((c->snapped && epoch <= c->snap_epoch) ||
        (c->restored && epoch < c->restored_epoch)) {
        snprintf(err, errlen, "stage '%s': refusing a snapshot of epoch %u: "
                 "this enclave already %s epoch %u (epochs only go up)",
                 stage, epoch, c->snapped ? "took a snapshot of" : "restored",
                 c->snapped ? c->snap_epoch : c->restored_epoch);
        return SS_EDENIED;
    }
    ss_buf pt = SS_BUF_INIT, blob = SS_BUF_INIT;
    int rc = ss_chain_snapshot(c->chain, &pt, err, errlen);
    if (rc == 0) {
        ss_snapshot_id id = {c->run, epoch, stage, c->worker};
        rc = ss_snapshot_seal(c->encrypted ? c->key : NULL, &id, pt.data,
                              pt.len, &blob, err, errlen);
    }
    if (pt.data)
        sodium_memzero(pt.data, pt.cap);
    ss_buf_release(&pt);
    if (rc == 0) {
        void *dst = rs(rctx, 0, blob.len);
        if (!dst) {
            snprintf(err, errlen, "stage '%s': the snapshot (%zu bytes) "
                     "does not fit the output area", stage, blob.len);
            rc = SS_ETOOBIG;
        } else {
            memcpy(dst, blob.data, blob.len);
            *len = blob.len;
            c->snapped = 1;
            c->snap_epoch = epoch;
        }
    }
    ss_buf_release(&blob);
    return rc;
}

/* See ss_enclave_core.h. */
void ss_ecore_set_grant(ss_ecore *c, uint32_t epoch)
{
    c->granted = 1;
    c->grant = epoch;
    c->grant_from = c->grant_slot = c->grant_slots = 0;
}

/* See ss_enclave_core.h. */
void ss_ecore_set_restore_grant(ss_ecore *c, const ss_restore_grant *g)
{
    ss_ecore_set_grant(c, g->epoch);
    c->grant_from = g->from;
    c->grant_slot = g->slot;
    c->grant_slots = g->slots;
}

/* What every restore checks first: the core is fresh, and an attested
 * one was granted this epoch. 0 or SS_EDENIED/SS_EINVAL with err. */
static int restore_allowed(ss_ecore *c, uint32_t epoch, char *err,
                           size_t errlen)
{
    if (c->echo) {
        snprintf(err, errlen, "an echo enclave has no state");
        return SS_EINVAL;
    }
    const char *stage = ss_stage_name(c->stage);
    if (c->restored || c->snapped || c->completed) {
        snprintf(err, errlen, "stage '%s': a snapshot is restored once, "
                 "before anything else", stage);
        return SS_EDENIED;
    }
    if (c->granted && c->grant == 0) {
        snprintf(err, errlen, "stage '%s': the key service granted this "
                 "enclave no restore (it starts fresh): refusing the "
                 "snapshot of epoch %u", stage, epoch);
        return SS_EDENIED;
    }
    if (c->granted && epoch != c->grant) {
        snprintf(err, errlen, "stage '%s': the key service granted the "
                 "restore of epoch %u, not of epoch %u: %s", stage,
                 c->grant, epoch,
                 epoch < c->grant ? "an older checkpoint (rollback refused)"
                                  : "a checkpoint it did not grant");
        return SS_EDENIED;
    }
    return 0;
}

/* See ss_enclave_core.h. */
int ss_ecore_restore_keyed(ss_ecore *c, const ss_restore_grant *r,
                           const void *const *blobs, const size_t *lens,
                           char *err, size_t errlen)
{
    int rc = restore_allowed(c, r->epoch, err, errlen);
    if (rc)
        return rc;
    const char *stage = ss_stage_name(c->stage);
    if (!r->from || r->from > SS_PARTITIONS || !r->slots ||
        r->slots > SS_PARTITIONS || !r->slot || r->slot > r->slots) {
        snprintf(err, errlen, "stage '%s': a restore from %u workers as "
                 "slot %u of %u does not hold together", stage, r->from,
                 r->slot, r->slots);
        return SS_EINVAL;
    }
    if (c->granted && (c->grant_from != r->from ||
                       c->grant_slot != r->slot ||
                       c->grant_slots != r->slots)) {
        if (!c->grant_from)
            snprintf(err, errlen, "stage '%s': the key service granted the "
                     "restore of this worker's own snapshot of epoch %u, "
                     "not one from %u workers' snapshots", stage, c->grant,
                     r->from);
        else
            snprintf(err, errlen, "stage '%s': the key service granted the "
                     "restore from %u workers as slot %u of %u, not from "
                     "%u as slot %u of %u: refused", stage, c->grant_from,
                     c->grant_slot, c->grant_slots, r->from, r->slot,
                     r->slots);
        return SS_EDENIED;
    }
    char own[80];
    snprintf(own, sizeof own, "%s-%u", stage, r->slot);
    if (strcmp(own, c->worker) != 0) {
        snprintf(err, errlen, "stage '%s': worker '%s' is not slot %u (a "
                 "slot's worker is named %s)", stage, c->worker, r->slot,
                 own);
        return SS_EDENIED;
    }
    ss_stage_groups sel;
    ss_partition_range(r->slot - 1, r->slots, &sel.lo, &sel.hi);
    ss_buf pt = SS_BUF_INIT;
    for (uint32_t j = 1; j <= r->from && !rc; j++) {
        char old[80];
        snprintf(old, sizeof old, "%s-%u", stage, j);
        ss_snapshot_id want = {c->run, r->epoch, stage, old};
        ss_buf_reset(&pt);
        char why[400] = "";
        rc = ss_snapshot_open(c->encrypted ? c->key : NULL, blobs[j - 1],
                              lens[j - 1], &want, &pt, why, sizeof why);
        /* the state outside key groups moves only with its own worker,
         * when the count did not change */
        sel.base = r->from == r->slots && j == r->slot;
        ss_partition_range(j - 1, r->from, &sel.own_lo, &sel.own_hi);
        if (!rc)
            rc = ss_chain_restore_groups(c->chain, pt.data, pt.len, &sel,
                                         why, sizeof why);
        if (rc)
            snprintf(err, errlen, "the snapshot of %s: %s", old, why);
        if (pt.data)
            sodium_memzero(pt.data, pt.cap);
    }
    ss_buf_release(&pt);
    if (rc == 0) {
        c->restored = 1;
        c->restored_epoch = r->epoch;
    }
    return rc;
}

/* See ss_enclave_core.h. */
int ss_ecore_restore(ss_ecore *c, uint32_t epoch, const void *blob,
                     size_t n, char *err, size_t errlen)
{
    int rc0 = restore_allowed(c, epoch, err, errlen);
    if (rc0)
        return rc0;
    const char *stage = ss_stage_name(c->stage);
    if (c->granted && c->grant_from) {
        snprintf(err, errlen, "stage '%s': the key service granted the "
                 "restore from the snapshots of %u workers (another worker "
                 "count), not from this worker's own", stage, c->grant_from);
        return SS_EDENIED;
    }
    ss_snapshot_id want = {c->run, epoch, stage, c->worker};
    ss_buf pt = SS_BUF_INIT;
    int rc = ss_snapshot_open(c->encrypted ? c->key : NULL, blob, n, &want,
                              &pt, err, errlen);
    if (rc == 0)
        rc = ss_chain_restore(c->chain, pt.data, pt.len, err, errlen);
    if (pt.data)
        sodium_memzero(pt.data, pt.cap);
    ss_buf_release(&pt);
    if (rc == 0) {
        c->restored = 1;
        c->restored_epoch = epoch;
    }
    return rc;
}
