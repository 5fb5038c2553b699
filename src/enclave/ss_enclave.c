/*
 * ss_enclave.c - the backend-neutral enclave interface and the `none`
 * backend (see ss_enclave.h).
 */
#include "core/ss_bundle.h"
#include "core/ss_util.h"
#include "crypto/ss_keys.h"
#include "enclave/ss_enclave_int.h"
#include "securestreams.h"
#include "wire/ss_partition.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* See ss_enclave.h. */
void ss_enclave_result_init(ss_enclave_result *r)
{
    memset(r, 0, sizeof *r);
    ss_buf_init(&r->msg);
    ss_buf_init(&r->rejects);
}

/* See ss_enclave.h. */
void ss_enclave_result_release(ss_enclave_result *r)
{
    ss_buf_release(&r->msg);
    ss_buf_release(&r->rejects);
    ss_enclave_result_init(r);
}

/* Resets r for a new call, keeping its buffers. */
static void result_reset(ss_enclave_result *r)
{
    ss_buf_reset(&r->msg);
    ss_buf_reset(&r->rejects);
    r->nrejects = 0;
    memset(&r->delta, 0, sizeof r->delta);
    r->nstages = 0;
    memset(r->stages, 0, sizeof r->stages);
}

static char *dup_or_null(const char *s, int *fail)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *fail = 1;
    return d;
}

/* Output placement for the none backend: into the result's buffers. */
static void *none_reserve(void *ctx, int which, size_t n)
{
    ss_enclave_result *r = ctx;
    ss_buf *b = which ? &r->rejects : &r->msg;
    ss_buf_reset(b);
    if (ss_buf_grow(b, n))
        return NULL;
    b->len = n;
    b->data[n] = '\0';
    return b->data;
}

/* none: the stages of the core tick the caller from their CPU-timer hook
 * (ss_enclave_set_tick). */
static void apply_tick(ss_enclave *e)
{
    if (!e->core_ready || !e->core.chain)
        return;
    for (size_t i = 0; i < ss_ecore_nstages(&e->core); i++) {
        ss_stage *st = ss_chain_stage(e->core.chain, i);
        if (st)
            ss_stage_set_tick(st, e->tick, e->tick_arg);
    }
}

/* Starts the none backend: the stage in this process. */
static int none_start(ss_enclave *e, char *err, size_t errlen)
{
    char cfg[512];
    if (ss_attest_config(cfg, sizeof cfg, e->stage, e->o.mem_limit,
                         e->o.max_instructions, e->output, e->o.encrypted,
                         e->o.echo) < 0) {
        snprintf(err, errlen, "bad stage name '%s'", e->stage);
        return SS_EINVAL;
    }
    ss_key *k = NULL;
    int rc;
    if (e->o.encrypted) {
        if (!e->key_dir) {
            snprintf(err, errlen, "encrypted mode needs the key directory");
            return SS_EINVAL;
        }
        rc = ss_keys_load_data(e->key_dir, &k, err, errlen);
        if (rc)
            return rc;
    }
    ss_stage_opts so;
    memset(&so, 0, sizeof so);
    so.name = e->name;
    so.stage = e->stage;
    so.mem_limit = e->o.mem_limit;
    so.max_instructions = e->o.max_instructions;
    so.host_errors = 1;
    ss_ecore_scripts sc; /* the scripts and their local modules */
    memset(&sc, 0, sizeof sc);
    if (e->o.echo) {
        rc = ss_ecore_init(&e->core, &so, e->o.encrypted, 1, err, errlen);
    } else {
        rc = ss_ecore_scripts_load(&sc, e->stage, e->script,
                                   (const char *const *)e->chain,
                                   (size_t)e->o.nchain, err, errlen);
        so.script_path = e->script; /* names, in this trusted process */
        if (!rc)
            rc = ss_ecore_init_chain(&e->core, &so, &sc, e->o.encrypted,
                                     err, errlen);
    }
    if (rc) {
        ss_ecore_scripts_release(&sc);
        ss_key_destroy(&k);
        return rc;
    }
    e->core_ready = 1;
    ss_ecore_set_run(&e->core, e->o.run, e->name);
    ss_ecore_set_output(&e->core, e->partition_by, e->o.broadcast);
    ss_ecore_set_key(&e->core, k);
    /* informational here: nothing is attested in this process */
    ss_buf measured;
    ss_buf_init(&measured);
    if (sc.n)
        (void)ss_ecore_scripts_measured(&sc, &measured);
    (void)ss_measure_program("/proc/self/exe", measured.data, measured.len,
                             cfg, e->measurement);
    ss_buf_release(&measured);
    ss_ecore_scripts_release(&sc);
    e->nstages = ss_ecore_nstages(&e->core);
    apply_tick(e);
    e->stateful_bits = 0;
    for (size_t i = 0; i < e->nstages; i++)
        if (ss_ecore_stage_stateful(&e->core, i))
            e->stateful_bits |= (uint64_t)1 << i;
    ss_ecore_info(&e->core, e->from, e->to, sizeof e->from, &e->stateful,
                  &e->uses_sgx);
    return 0;
}

/* the LuaJIT build's programs carry its suffix (make LUA=luajit) */
#ifdef SS_LUAJIT
#define ENCLAVE_SUFFIX "-luajit"
#else
#define ENCLAVE_SUFFIX ""
#endif
#ifdef SS_TEST_HOOKS
#define ENCLAVE_PROGRAM "sstream-enclave-test" ENCLAVE_SUFFIX
#else
#define ENCLAVE_PROGRAM "sstream-enclave" ENCLAVE_SUFFIX
#endif

/* See ss_enclave.h. */
int ss_enclave_program_path(char *buf, size_t len)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return SS_EIO;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return SS_EIO;
    *slash = '\0';
    int w = snprintf(buf, len, "%s/%s", self, ENCLAVE_PROGRAM);
    return w < 0 || (size_t)w >= len ? SS_ETOOBIG : 0;
}

/* See ss_enclave.h. */
int ss_enclave_open(const ss_enclave_opts *o, ss_enclave **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    const char *b = o->backend ? o->backend : "none";
    int backend;
    if (!strcmp(b, "none")) {
        backend = SS_BACKEND_NONE;
    } else if (!strcmp(b, "sandbox")) {
        backend = SS_BACKEND_SANDBOX;
    } else if (!strcmp(b, "gramine")) {
        snprintf(err, errlen, "enclave backend 'gramine' runs the worker's "
                              "`sstream enclave` under gramine-sgx "
                              "(deploy/gramine/launch.sh); it is not "
                              "available in-process on this machine");
        return SS_EINVAL;
    } else {
        snprintf(err, errlen, "unknown enclave backend '%s' (none, "
                              "sandbox, gramine)", b);
        return SS_EINVAL;
    }
    if (!o->stage || (!o->echo && !o->script_path)) {
        snprintf(err, errlen, "an enclave needs a stage name and a script");
        return SS_EINVAL;
    }
    if (o->nchain < 0 || o->nchain >= SS_CHAIN_MAX ||
        (o->nchain && (o->echo || !o->chain))) {
        snprintf(err, errlen, "an enclave chains 0 to %d stages after its "
                 "own, with scripts", SS_CHAIN_MAX - 1);
        return SS_EINVAL;
    }
    if (backend == SS_BACKEND_SANDBOX && o->encrypted &&
        (!o->get_key || !o->key_dir)) {
        snprintf(err, errlen, "an encrypted sandbox enclave needs the key "
                              "directory (platform key) and a key service");
        return SS_EINVAL;
    }
    char deflt[PATH_MAX] = "";
    if (backend == SS_BACKEND_SANDBOX && !o->program) {
        if (ss_enclave_program_path(deflt, sizeof deflt) != 0 ||
            access(deflt, X_OK) != 0) {
            snprintf(err, errlen, "the enclave program %s is missing: it "
                                  "is built next to sstream (make)",
                     deflt[0] ? deflt : ENCLAVE_PROGRAM);
            return SS_EINVAL;
        }
    }
    if (sodium_init() < 0)
        return SS_ENOMEM;
    ss_enclave *e = calloc(1, sizeof *e);
    if (!e)
        return SS_ENOMEM;
    e->memfd = -1;
    e->backend = backend;
    e->o = *o;
    int fail = 0;
    e->name = dup_or_null(o->name ? o->name : o->stage, &fail);
    e->stage = dup_or_null(o->stage, &fail);
    e->script = dup_or_null(o->script_path, &fail);
    e->key_dir = dup_or_null(o->key_dir, &fail);
    e->program = dup_or_null(o->program ? o->program : deflt, &fail);
    e->partition_by = dup_or_null(o->partition_by, &fail);
    e->o.partition_by = e->partition_by;
    if (o->nchain && !fail) {
        e->chain = calloc((size_t)o->nchain, sizeof *e->chain);
        fail = !e->chain;
        for (int i = 0; !fail && i < o->nchain; i++)
            e->chain[i] = dup_or_null(o->chain[i], &fail);
    }
    e->o.chain = (const char *const *)e->chain;
    e->nstages = o->echo ? 0 : 1 + (size_t)o->nchain;
    if (!fail && ss_partition_spec(e->output, sizeof e->output,
                                   e->partition_by, o->broadcast)) {
        snprintf(err, errlen, "bad partition_by field '%s' (or with "
                 "broadcast)", o->partition_by ? o->partition_by : "");
        ss_enclave_close(&e);
        return SS_EINVAL;
    }
    e->o.name = e->name;
    e->o.stage = e->stage;
    e->o.script_path = e->script;
    e->o.key_dir = e->key_dir;
    e->o.program = e->program;
    e->o.backend = NULL;
    if (!e->o.mem_limit)
        e->o.mem_limit = SS_ENCLAVE_DEFAULT_MEM;
    if (!e->o.spin_us)
        e->o.spin_us = 50;
    if (!e->o.max_instructions)
        e->o.max_instructions = SS_STAGE_DEFAULT_MAX_INSTRUCTIONS;
    if (fail) {
        ss_enclave_close(&e);
        return SS_ENOMEM;
    }
    int rc = backend == SS_BACKEND_NONE ? none_start(e, err, errlen)
                                        : ss_sandbox_start(e, err, errlen);
    if (rc) {
        ss_enclave_close(&e);
        return rc;
    }
    *out = e;
    return 0;
}

/* See ss_enclave.h. */
void ss_enclave_close(ss_enclave **p)
{
    if (!p || !*p)
        return;
    ss_enclave *e = *p;
    if (e->core_ready)
        ss_ecore_release(&e->core);
    if (e->backend == SS_BACKEND_SANDBOX)
        ss_sandbox_stop(e);
    free(e->name);
    free(e->stage);
    free(e->script);
    free(e->key_dir);
    free(e->program);
    free(e->partition_by);
    for (int i = 0; e->chain && i < e->o.nchain; i++)
        free(e->chain[i]);
    free(e->chain);
    ss_buf_release(&e->store);
    free(e);
    *p = NULL;
}

/* See ss_enclave.h. */
const uint8_t *ss_enclave_measurement(const ss_enclave *e)
{
    return e->measurement;
}
/* See ss_enclave.h. */
const char *ss_enclave_backend(const ss_enclave *e)
{
    return e->backend == SS_BACKEND_SANDBOX ? "sandbox" : "none";
}
/* See ss_enclave.h. */
const char *ss_enclave_from(const ss_enclave *e)
{
    return e->from[0] ? e->from : NULL;
}
/* See ss_enclave.h. */
const char *ss_enclave_to(const ss_enclave *e)
{
    return e->to[0] ? e->to : NULL;
}
/* See ss_enclave.h. */
int ss_enclave_stateful(const ss_enclave *e) { return e->stateful; }
/* See ss_enclave.h. */
int ss_enclave_uses_sgx(const ss_enclave *e) { return e->uses_sgx; }
/* See ss_enclave.h. */
size_t ss_enclave_nstages(const ss_enclave *e) { return e->nstages; }
/* See ss_enclave.h. */
int ss_enclave_stage_stateful(const ss_enclave *e, size_t k)
{
    return k < e->nstages && k < 64 && (e->stateful_bits >> k & 1);
}
/* See ss_enclave.h. */
pid_t ss_enclave_pid(const ss_enclave *e) { return e->pid; }
/* See ss_enclave.h. */
long ss_enclave_peak_rss_kb(const ss_enclave *e)
{
    return e->backend == SS_BACKEND_SANDBOX ? e->peak_rss_kb
                                            : ss_peak_rss_kb();
}

/* Copies the sandbox child's outputs (checked) into res. */
static int sandbox_collect(ss_enclave *e, ss_enclave_result *res, char *err,
                           size_t errlen)
{
    ss_chan_ctl *ctl = e->ctl;
    uint64_t ml = ctl->msg_len, rl = ctl->rej_len;
    if (ml > SS_CHAN_OUT_CAP / 2 || rl > SS_CHAN_OUT_CAP / 2) {
        snprintf(err, errlen, "enclave of worker %s returned bad lengths",
                 e->name);
        return SS_EPEER;
    }
    if (ss_buf_append(&res->msg, ss_chan_out(e->base, 0), ml) ||
        ss_buf_append(&res->rejects, ss_chan_out(e->base, 1), rl))
        return SS_ENOMEM;
    res->nrejects = ctl->nrejects;
    res->delta.in = ctl->counts[0];
    res->delta.passed = ctl->counts[1];
    res->delta.dropped = ctl->counts[2];
    res->delta.rejected = ctl->counts[3];
    res->delta.out = ctl->counts[4];
    res->delta.out_bytes = ctl->counts[5];
    res->mem_peak = ctl->mem_peak;
    res->nstages = e->nstages;
    res->stages[0] = res->delta;
    for (size_t k = 1; k < e->nstages; k++) {
        const uint64_t *c = ctl->chain_counts[k - 1];
        ss_stage_counts *d = &res->stages[k];
        d->in = c[0];
        d->passed = c[1];
        d->dropped = c[2];
        d->rejected = c[3];
        d->out = c[4];
        d->out_bytes = c[5];
    }
    return 0;
}

/* Fills res from a none-backend core result. */
static void none_collect(ss_enclave_result *res, const ss_ecore_res *cr)
{
    res->msg.len = cr->msg_len;
    res->rejects.len = cr->rej_len;
    res->nrejects = cr->nrejects;
    res->delta = cr->delta;
    res->mem_peak = cr->mem_peak;
    res->nstages = cr->nstages;
    memcpy(res->stages, cr->stages, sizeof res->stages);
}

/* One batch in (op SS_CHAN_CALL or SS_CHAN_REJECT), results in res. */
static int batch_request(ss_enclave *e, uint32_t op, const void *msg,
                         size_t n, ss_enclave_result *res, char *err,
                         size_t errlen)
{
    result_reset(res);
    if (e->backend == SS_BACKEND_NONE) {
        ss_ecore_res cr;
        int rc = op == SS_CHAN_CALL
                     ? ss_ecore_call(&e->core, msg, n, none_reserve, res,
                                     &cr, err, errlen)
                     : ss_ecore_reject(&e->core, msg, n, none_reserve, res,
                                       &cr, err, errlen);
        if (rc)
            return rc;
        none_collect(res, &cr);
        return 0;
    }
    if (n > SS_CHAN_IN_CAP) {
        snprintf(err, errlen, "batch larger than the enclave channel");
        return SS_ETOOBIG;
    }
    int rc = ss_sandbox_request(e, op, msg, n, err, errlen);
    return rc ? rc : sandbox_collect(e, res, err, errlen);
}

/* See ss_enclave.h. */
int ss_enclave_call(ss_enclave *e, const void *msg, size_t n,
                    ss_enclave_result *res, char *err, size_t errlen)
{
    return batch_request(e, SS_CHAN_CALL, msg, n, res, err, errlen);
}

/* See ss_enclave.h. */
int ss_enclave_reject(ss_enclave *e, const void *msg, size_t n,
                      ss_enclave_result *res, char *err, size_t errlen)
{
    return batch_request(e, SS_CHAN_REJECT, msg, n, res, err, errlen);
}

/* See ss_enclave.h. */
int ss_enclave_complete(ss_enclave *e, const ss_hdr *final,
                        ss_enclave_result *res, char *err, size_t errlen)
{
    result_reset(res);
    if (e->backend == SS_BACKEND_NONE) {
        ss_ecore_res cr;
        int rc = ss_ecore_complete(&e->core, final, none_reserve, res, &cr,
                                   err, errlen);
        if (rc == 0 || rc == SS_ELUA)
            none_collect(res, &cr);
        return rc;
    }
    ss_hdr h = *final;
    h.kind = SS_MSG_DATA;
    h.len = 0;
    uint8_t raw[SS_HDR_SIZE];
    ss_hdr_encode(&h, raw);
    int rc = ss_sandbox_request(e, SS_CHAN_COMPLETE, raw, sizeof raw, err,
                                errlen);
    if (rc == SS_ELUA) { /* the (sealed) reason comes with the rejects */
        char ignored[64];
        sandbox_collect(e, res, ignored, sizeof ignored);
        return rc;
    }
    return rc ? rc : sandbox_collect(e, res, err, errlen);
}

/* See ss_enclave.h. */
int ss_enclave_alive(ss_enclave *e)
{
    if (e->backend == SS_BACKEND_NONE)
        return 1;
    if (e->dead || !e->pid)
        return 0;
    int st;
    if (waitpid(e->pid, &st, WNOHANG) == e->pid) {
        e->pid = 0;
        e->dead = 1;
        return 0;
    }
    return 1;
}

/* See ss_enclave.h. */
void ss_enclave_set_tick(ss_enclave *e, ss_stage_tick_fn fn, void *arg)
{
    e->tick = fn;
    e->tick_arg = arg;
    if (e->backend == SS_BACKEND_NONE)
        apply_tick(e);
}

/* See ss_enclave.h. */
int ss_enclave_restart(ss_enclave *e, char *err, size_t errlen)
{
    if (e->backend == SS_BACKEND_NONE) {
        if (e->core_ready)
            ss_ecore_release(&e->core);
        e->core_ready = 0;
        return none_start(e, err, errlen);
    }
    if (e->pid) {
        kill(e->pid, SIGKILL);
        while (waitpid(e->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        e->pid = 0;
    }
    return ss_sandbox_start(e, err, errlen);
}

/* See ss_enclave.h. */
int ss_enclave_ping(ss_enclave *e, char *err, size_t errlen)
{
    if (e->backend == SS_BACKEND_NONE)
        return 0;
    return ss_sandbox_request(e, SS_CHAN_PING, NULL, 0, err, errlen);
}

/* See ss_enclave.h. */
int ss_enclave_push(ss_enclave *e, const void *p, size_t n, char *err,
                    size_t errlen)
{
    if (e->backend == SS_BACKEND_NONE)
        return ss_buf_append(&e->store, p, n);
    return ss_sandbox_request(e, SS_CHAN_PUSH, p, n, err, errlen);
}

/* See ss_enclave.h. */
int ss_enclave_digest(ss_enclave *e, uint8_t sha256[32], uint64_t *len,
                      char *err, size_t errlen)
{
    if (e->backend == SS_BACKEND_NONE) {
        crypto_hash_sha256(sha256, (const unsigned char *)e->store.data,
                           e->store.len);
        *len = e->store.len;
        ss_buf_reset(&e->store);
        return 0;
    }
    int rc = ss_sandbox_request(e, SS_CHAN_DIGEST, NULL, 0, err, errlen);
    if (rc)
        return rc;
    if (e->ctl->msg_len != crypto_hash_sha256_BYTES)
        return SS_EPEER;
    memcpy(sha256, ss_chan_out(e->base, 0), crypto_hash_sha256_BYTES);
    *len = e->ctl->counts[0];
    return 0;
}

/* See ss_enclave.h. */
int ss_enclave_echo(ss_enclave *e, const void *p, size_t n, ss_buf *out,
                    char *err, size_t errlen)
{
    ss_buf_reset(out);
    if (e->backend == SS_BACKEND_NONE)
        return ss_buf_append(out, p, n);
    int rc = ss_sandbox_request(e, SS_CHAN_ECHO, p, n, err, errlen);
    if (rc)
        return rc;
    uint64_t ml = e->ctl->msg_len;
    if (ml > SS_CHAN_OUT_CAP / 2)
        return SS_EPEER;
    return ss_buf_append(out, ss_chan_out(e->base, 0), ml);
}

/* Output placement into one ss_buf (a snapshot blob). */
static void *buf_reserve(void *ctx, int which, size_t n)
{
    ss_buf *b = ctx;
    (void)which;
    ss_buf_reset(b);
    if (ss_buf_grow(b, n))
        return NULL;
    b->len = n;
    b->data[n] = '\0';
    return b->data;
}

/* See ss_enclave.h. */
int ss_enclave_snapshot(ss_enclave *e, uint32_t epoch, ss_buf *sealed,
                        char *err, size_t errlen)
{
    ss_buf_reset(sealed);
    if (e->backend == SS_BACKEND_NONE) {
        size_t len = 0;
        int rc = ss_ecore_snapshot(&e->core, epoch, buf_reserve, sealed, &len,
                                   err, errlen);
        if (rc)
            ss_buf_reset(sealed);
        return rc;
    }
    uint8_t in[4];
    ss_put_u32(in, epoch);
    int rc = ss_sandbox_request(e, SS_CHAN_SNAPSHOT, in, sizeof in, err,
                                errlen);
    if (rc)
        return rc;
    uint64_t ml = e->ctl->msg_len;
    if (ml > SS_CHAN_OUT_CAP / 2) {
        snprintf(err, errlen, "enclave of worker %s returned bad lengths",
                 e->name);
        return SS_EPEER;
    }
    return ss_buf_append(sealed, ss_chan_out(e->base, 0), ml);
}

/* See ss_enclave.h. */
int ss_enclave_restore_keyed(ss_enclave *e, const ss_restore_grant *r,
                             const void *const *blobs, const size_t *lens,
                             char *err, size_t errlen)
{
    if (e->backend == SS_BACKEND_NONE)
        return ss_ecore_restore_keyed(&e->core, r, blobs, lens, err,
                                      errlen);
    size_t n = 16;
    for (uint32_t j = 0; j < r->from; j++) {
        if (lens[j] > SS_CHAN_IN_CAP || n + 4 + lens[j] > SS_CHAN_IN_CAP) {
            snprintf(err, errlen, "the %u snapshots are larger together "
                     "than the enclave channel (%zu bytes)", r->from,
                     (size_t)SS_CHAN_IN_CAP);
            return SS_ETOOBIG;
        }
        n += 4 + lens[j];
    }
    uint8_t *in = malloc(n);
    if (!in)
        return SS_ENOMEM;
    ss_put_u32(in, r->epoch);
    ss_put_u32(in + 4, r->from);
    ss_put_u32(in + 8, r->slot);
    ss_put_u32(in + 12, r->slots);
    size_t off = 16;
    for (uint32_t j = 0; j < r->from; j++) {
        ss_put_u32(in + off, (uint32_t)lens[j]);
        if (lens[j])
            memcpy(in + off + 4, blobs[j], lens[j]);
        off += 4 + lens[j];
    }
    int rc = ss_sandbox_request(e, SS_CHAN_RESTORE_KEYED, in, n, err,
                                errlen);
    free(in);
    return rc;
}

/* See ss_enclave.h. */
int ss_enclave_restore(ss_enclave *e, uint32_t epoch, const void *blob,
                       size_t n, char *err, size_t errlen)
{
    if (e->backend == SS_BACKEND_NONE)
        return ss_ecore_restore(&e->core, epoch, blob, n, err, errlen);
    if (n > SS_CHAN_IN_CAP - 4) {
        snprintf(err, errlen, "snapshot larger than the enclave channel");
        return SS_ETOOBIG;
    }
    uint8_t *in = malloc(n + 4);
    if (!in)
        return SS_ENOMEM;
    ss_put_u32(in, epoch);
    if (n)
        memcpy(in + 4, blob, n);
    int rc = ss_sandbox_request(e, SS_CHAN_RESTORE, in, n + 4, err, errlen);
    free(in);
    return rc;
}
