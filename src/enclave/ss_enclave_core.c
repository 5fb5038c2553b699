/*
 * ss_enclave_core.c - the inside of an enclave (see ss_enclave_core.h).
 */
#include "enclave/ss_enclave_core.h"
#include "crypto/ss_aead.h"
#include "securestreams.h"

#include <sodium.h>
#include <stdio.h>
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
    int rc = ss_stage_new(so, &c->stage, err, errlen);
    if (rc) {
        ss_stage_out_release(&c->out);
        c->out_ready = 0;
    }
    return rc;
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
    *stateful = ss_stage_stateful(c->stage);
    *uses_sgx = ss_stage_uses_sgx(c->stage);
}

/* See ss_enclave_core.h. */
void ss_ecore_set_run(ss_ecore *c, uint64_t run, const char *name)
{
    c->run = run;
    c->producer = ss_name_id(name ? name : "");
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
    if (c->stage)
        ss_stage_destroy(&c->stage);
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
    if (!(oh->flags & SS_BF_RANGE))
        oh->span = 0;
    if (!(oh->flags & SS_BF_PARTITIONED))
        oh->partition = 0;
    int rc = emit_out(c, oh, rs, rctx, &res->msg_len, err, errlen);
    if (rc == 0 && c->out.nrejects) {
        ss_hdr rh = *in;
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
    res->delta = c->out.delta;
    res->mem_peak = ss_stage_mem_peak(c->stage);
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
    if (rc)
        return rc;
#ifdef SS_TEST_HOOKS
    if (c->die_on && c->die &&
        memmem(payload, len, c->die_on, strlen(c->die_on)))
        c->die(); /* test hook, see ss_enclave_core.h */
#endif
    ss_stage_out_reset(&c->out);
    rc = ss_stage_process(c->stage, &h, payload, len, &c->out);
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
    if (ss_stage_stateful(c->stage) || c->completed) {
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
static void completion_failed(ss_ecore *c, const ss_hdr *final, int rc,
                              ss_ecore_reserve rs, void *rctx,
                              ss_ecore_res *res, char *err, size_t errlen)
{
    const char *stage = ss_stage_name(c->stage);
    const char *why = ss_stage_error(c->stage);
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
    int rc = ss_stage_complete(c->stage, &c->out);
    if (rc) {
        completion_failed(c, final, rc, rs, rctx, res, err, errlen);
        return rc;
    }
    ss_hdr oh = *final;
    oh.kind = SS_MSG_DATA;
    oh.flags = (uint16_t)((final->flags & (SS_BF_LAST_PART | SS_BF_FINAL)) |
                          SS_BF_FINAL);
    return emit_all(c, &oh, final, rs, rctx, res, err, errlen);
}
