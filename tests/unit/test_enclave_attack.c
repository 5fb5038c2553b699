/*
 * test_enclave_attack.c - a malicious worker host against its sandbox
 * enclave (issue 8). The host side here is the attacker: it starts a real,
 * attested enclave (bin/sstream-enclave or $SSTREAM_ENCLAVE_BIN), then
 * drives the shared
 * channel itself (ss_enclave_int.h gives it the mapping, as any process
 * holding the memfd has it) and checks that the enclave does not give in:
 *
 *  - it writes its own nonce into the shared output area while the
 *    enclave seals: no output may be sealed under the host's nonce, and
 *    no two outputs may share a nonce (keystream reuse);
 *  - it sends REJECT instead of CALL to a stateful (reduce) enclave, which
 *    would drop those batches from the result without a trace: refused;
 *  - it asks a reduce enclave to complete twice (a second result from a
 *    state that already left): refused;
 *  - it swaps the snapshot a restarted reduce enclave restores
 *    (tests/attack/swap_snapshot.py: an older epoch's, another run's,
 *    another worker's, one relabelled, one flipped, a forged plain one):
 *    each is refused inside the enclave, and the honest one restores;
 *  - it starts the enclave itself with LD_PRELOAD=tests/attack/preload_key
 *    (built as build/tests/attack/preload_key.so), a library that turns
 *    seccomp off and prints the data key as it is opened: the static
 *    enclave program ignores it and works; a dynamic program started in
 *    its place runs the library but measures differently: no key.
 *
 * Run from the repository root after `make`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/ss_buf.h"
#include "crypto/ss_aead.h"
#include "crypto/ss_keyservice.h"
#include "crypto/ss_keys.h"
#include "crypto/ss_sealfile.h"
#include "enclave/ss_enclave_int.h"
#include "lua/ss_chain.h"
#include "lua/ss_lua_msgpack.h"
#include "node/ss_integrity.h"
#include "securestreams.h"
#include "wire/ss_msgpack.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/ss_test_attack_XXXXXX";
static char prog[4096];
static char keys[700];

static int setup(void **state)
{
    (void)state;
    const char *env = getenv("SSTREAM_ENCLAVE_BIN");
    const char *p = env && access(env, X_OK) == 0 ? env
                                                  : "bin/sstream-enclave";
    if (access(p, X_OK) != 0 || !realpath(p, prog)) {
        fprintf(stderr, "test_enclave_attack: bin/sstream-enclave not found "
                        "(run from the repository root after make)\n");
        return -1;
    }
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(keys, sizeof keys, "%s/keys", tmpdir);
    char err[512];
    return ss_keys_create_dir(keys, 0, NULL, 0, 0, err, sizeof err) ? -1
                                                                      : 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *script(const char *name, const char *body)
{
    static char path[4][600];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s/%s.lua", tmpdir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(body, f);
    fclose(f);
    return p;
}

#define MAP_SCRIPT                                                           \
    "local ZmqRx = require 'sgx-rx'\n"                                       \
    "ZmqRx.Subject.fromZmqSocket('tcp://x:1')\n"                             \
    ":mapSGX(function(v) return v .. '!' end)\n"                             \
    ":subscribeToSocket('tcp://x:2')\n"

#define REDUCE_SCRIPT                                                        \
    "local ZmqRx = require 'sgx-rx'\n"                                       \
    "ZmqRx.Subject.fromZmqSocket('tcp://x:1')\n"                             \
    ":reduceSGX(function(acc, v) acc.n = acc.n + 1 return acc end,"          \
    " {n = 0})\n"                                                            \
    ":subscribeToSocket('tcp://x:2')\n"

/* An attested encrypted sandbox enclave for stage `stage` running path,
 * as worker name for run (0: none), granted g by its key service (NULL:
 * no restore). */
static ss_enclave *open_attested_grant(const char *stage, const char *path,
                                       const char *name, uint64_t run,
                                       const ss_restore_grant *g,
                                       ss_keyservice **ks)
{
    char err[1024];
    assert_int_equal(ss_keyservice_new(keys, ks, err, sizeof err), 0);
    if (g) /* the coordinator's word: restore this */
        assert_int_equal(ss_keyservice_set_grant(*ks, name, g), 0);
    assert_int_equal(ss_keyservice_expect_stage(*ks, stage, prog, path,
                                                SS_ENCLAVE_DEFAULT_MEM,
                                                SS_STAGE_DEFAULT_MAX_INSTRUCTIONS, 1,
                                                err, sizeof err), 0);
    ss_enclave_opts o;
    memset(&o, 0, sizeof o);
    o.backend = "sandbox";
    o.name = name;
    o.stage = stage;
    o.script_path = path;
    o.program = prog;
    o.encrypted = 1;
    o.key_dir = keys;
    o.get_key = ss_keyservice_keyfn;
    o.key_ctx = *ks;
    o.run = run;
    ss_enclave *e = NULL;
    if (ss_enclave_open(&o, &e, err, sizeof err))
        fail_msg("open: %s", err);
    return e;
}

static ss_enclave *open_attested_as(const char *stage, const char *path,
                                    const char *name, uint64_t run,
                                    uint32_t grant, ss_keyservice **ks)
{
    ss_restore_grant g = {grant, 0, 0, 0};
    return open_attested_grant(stage, path, name, run, grant ? &g : NULL,
                               ks);
}

static ss_enclave *open_attested(const char *stage, const char *path,
                                 ss_keyservice **ks)
{
    return open_attested_as(stage, path, "victim-1", 0, 0, ks);
}

/* A sealed DATA batch seq of n events of `size` bytes each. */
static void sealed_batch(const ss_key *k, ss_buf *out, uint64_t seq,
                         uint32_t n, size_t size)
{
    ss_buf pl = SS_BUF_INIT;
    char *ev = malloc(size);
    assert_non_null(ev);
    for (uint32_t i = 0; i < n; i++) {
        memset(ev, 'a' + (int)(i % 26), size);
        assert_int_equal(ss_mp_put_str(&pl, ev, size), 0);
    }
    free(ev);
    ss_hdr h;
    memset(&h, 0, sizeof h);
    h.kind = SS_MSG_DATA;
    h.seq = seq;
    h.count = n;
    ss_buf_reset(out);
    assert_int_equal(ss_aead_seal(k, &h, pl.data, pl.len, out), 0);
    ss_buf_release(&pl);
}

/* The attacker's thread: while a request is in flight, writes its own
 * nonce where the enclave puts the output's nonce. */
struct hammer {
    ss_enclave *e;
    size_t nonce_len;
    uint8_t nonce[24];
    atomic_int stop;
};

static void *hammer_main(void *arg)
{
    struct hammer *hm = arg;
    ss_chan_ctl *ctl = hm->e->ctl;
    volatile uint8_t *dst = ss_chan_out(hm->e->base, 0) + SS_HDR_SIZE;
    while (!atomic_load(&hm->stop)) {
        if (atomic_load(&ctl->req) == atomic_load(&ctl->resp))
            continue;
        for (size_t i = 0; i < hm->nonce_len; i++)
            dst[i] = hm->nonce[i];
    }
    return NULL;
}

/* Issue 8.5: the host wrote the nonce while the enclave sealed; 47 of 91
 * map outputs carried the host's nonce. Every output that authenticates
 * must carry a nonce the enclave drew, each a different one. */
static void test_host_cannot_choose_the_nonce(void **state)
{
    (void)state;
    ss_keyservice *ks = NULL;
    ss_enclave *e = open_attested("map", script("map", MAP_SCRIPT), &ks);
    char err[1024];
    ss_key *k = NULL;
    assert_int_equal(ss_keys_load_data(keys, &k, err, sizeof err), 0);
    struct hammer hm;
    memset(&hm, 0, sizeof hm);
    hm.e = e;
    hm.nonce_len = ss_aead_overhead(k) - SS_AEAD_TAG_BYTES;
    assert_true(hm.nonce_len <= sizeof hm.nonce);
    memset(hm.nonce, 0x5a, sizeof hm.nonce);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, hammer_main, &hm), 0);

    enum { CALLS = 300 };
    static uint8_t seen[CALLS][24];
    const char *slow = getenv("SS_TEST_SLOW"); /* valgrind */
    int calls = slow && !strcmp(slow, "1") ? 40 : CALLS;
    int nseen = 0, host_nonce = 0, reused = 0, torn = 0;
    ss_buf in = SS_BUF_INIT, pt = SS_BUF_INIT;
    ss_enclave_result r;
    ss_enclave_result_init(&r);
    for (int i = 0; i < calls && host_nonce + reused < 5; i++) {
        sealed_batch(k, &in, (uint64_t)i, 64, 1024);
        if (ss_enclave_call(e, in.data, in.len, &r, err, sizeof err))
            fail_msg("call %d: %s", i, err);
        ss_hdr oh;
        ss_buf_reset(&pt);
        if (ss_aead_open(k, r.msg.data, r.msg.len, &oh, &pt) != 0) {
            /* the host's write landed after the enclave sealed under its
             * own nonce: the output no longer opens (refused downstream),
             * which proves nothing was sealed under the host's nonce */
            torn++;
            continue;
        }
        const uint8_t *nonce = (const uint8_t *)r.msg.data + SS_HDR_SIZE;
        if (!memcmp(nonce, hm.nonce, hm.nonce_len))
            host_nonce++;
        for (int j = 0; j < nseen; j++)
            if (!memcmp(seen[j], nonce, hm.nonce_len))
                reused++;
        memcpy(seen[nseen++], nonce, hm.nonce_len);
    }
    atomic_store(&hm.stop, 1);
    pthread_join(t, NULL);
    fprintf(stderr, "host nonce: %d outputs sealed under the host's nonce, "
                    "%d nonces reused; %d intact, %d overwritten after "
                    "sealing\n",
            host_nonce, reused, nseen, torn);
    assert_int_equal(host_nonce, 0);
    assert_int_equal(reused, 0);
    ss_enclave_result_release(&r);
    ss_buf_release(&in);
    ss_buf_release(&pt);
    ss_key_destroy(&k);
    ss_enclave_close(&e);
    ss_keyservice_destroy(&ks);
}

/* Issue 8.6a: a reduce host that sends REJECT instead of CALL for every
 * other batch got a result from half the data, exit 0. A stateful
 * enclave refuses REJECT (its batches are folded into the state: none
 * may be skipped), and completes once only. */
static void test_stateful_refuses_reject_and_second_completion(void **state)
{
    (void)state;
    ss_keyservice *ks = NULL;
    ss_enclave *e =
        open_attested("reduce", script("reduce", REDUCE_SCRIPT), &ks);
    assert_true(ss_enclave_stateful(e));
    char err[1024];
    ss_key *k = NULL;
    assert_int_equal(ss_keys_load_data(keys, &k, err, sizeof err), 0);
    ss_buf in = SS_BUF_INIT;
    ss_enclave_result r;
    ss_enclave_result_init(&r);
    sealed_batch(k, &in, 0, 3, 8);
    assert_int_equal(ss_enclave_call(e, in.data, in.len, &r, err,
                                     sizeof err), 0);
    sealed_batch(k, &in, 1, 3, 8);
    int rc = ss_enclave_reject(e, in.data, in.len, &r, err, sizeof err);
    if (rc == 0)
        fail_msg("a stateful enclave rejected batch 1 whole on the host's "
                 "word (%u rejects)", r.nrejects);
    assert_int_equal(rc, SS_EDENIED);
    if (!strstr(err, "keeps state"))
        fail_msg("unclear refusal: %s", err);
    assert_true(ss_enclave_alive(e));
    /* the batch still counts when sent properly */
    assert_int_equal(ss_enclave_call(e, in.data, in.len, &r, err,
                                     sizeof err), 0);
    ss_hdr fin;
    memset(&fin, 0, sizeof fin);
    fin.kind = SS_MSG_DATA;
    fin.stream = 5;
    if (ss_enclave_complete(e, &fin, &r, err, sizeof err))
        fail_msg("complete: %s", err);
    ss_buf pt = SS_BUF_INIT;
    ss_hdr oh;
    assert_int_equal(ss_aead_open(k, r.msg.data, r.msg.len, &oh, &pt), 0);
    assert_non_null(memmem(pt.data, pt.len, "\xa1n\x06", 3)); /* {n = 6} */
    /* a second completion, or a batch after it, is refused */
    rc = ss_enclave_complete(e, &fin, &r, err, sizeof err);
    assert_int_equal(rc, SS_EDENIED);
    if (!strstr(err, "already completed"))
        fail_msg("unclear refusal: %s", err);
    sealed_batch(k, &in, 2, 3, 8);
    assert_int_equal(ss_enclave_call(e, in.data, in.len, &r, err,
                                     sizeof err), SS_EDENIED);
    ss_buf_release(&pt);
    ss_enclave_result_release(&r);
    ss_buf_release(&in);
    ss_key_destroy(&k);
    ss_enclave_close(&e);
    ss_keyservice_destroy(&ks);
}

/* A wrapper the attacker starts instead of the enclave program: it execs
 * real with LD_PRELOAD set (the host's own environment is scrubbed by the
 * sandbox backend; an attacker host does not scrub). */
static const char *preload_wrapper(const char *real, const char *out)
{
    static char path[700];
    char so[4096];
    const char *cand = "build/tests/attack/preload_key.so";
    if (!realpath(cand, so))
        fail_msg("%s is missing (make unit-bins)", cand);
    snprintf(path, sizeof path, "%s/evil-enclave.sh", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\nSS_ATTACK_OUT='%s' LD_PRELOAD='%s' exec '%s' "
               "\"$@\"\n", out, so, real);
    fclose(f);
    assert_int_equal(chmod(path, 0700), 0);
    return path;
}

/* Issue 8.3: LD_PRELOAD into the enclave child left the measurement
 * unchanged; the key was released; the preloaded code printed the key and
 * turned seccomp off. */
static void test_preload_gets_no_key(void **state)
{
    (void)state;
    char out[700], err[1024];
    snprintf(out, sizeof out, "%s/attack-out", tmpdir);
    const char *path = script("map", MAP_SCRIPT);
    ss_keyservice *ks = NULL;
    assert_int_equal(ss_keyservice_new(keys, &ks, err, sizeof err), 0);
    assert_int_equal(ss_keyservice_expect_stage(ks, "map", prog, path,
                                                SS_ENCLAVE_DEFAULT_MEM,
                                                SS_STAGE_DEFAULT_MAX_INSTRUCTIONS, 1,
                                                err, sizeof err), 0);
    ss_enclave_opts o;
    memset(&o, 0, sizeof o);
    o.backend = "sandbox";
    o.name = "victim-1";
    o.stage = "map";
    o.script_path = path;
    o.encrypted = 1;
    o.key_dir = keys;
    o.get_key = ss_keyservice_keyfn;
    o.key_ctx = ks;

    /* the enclave program itself, preloaded: nothing is loaded into it */
    unlink(out);
    o.program = preload_wrapper(prog, out);
    ss_enclave *e = NULL;
    if (ss_enclave_open(&o, &e, err, sizeof err))
        fail_msg("the preloaded (static) enclave was refused: %s", err);
    ss_key *k = NULL;
    assert_int_equal(ss_keys_load_data(keys, &k, err, sizeof err), 0);
    ss_buf in = SS_BUF_INIT;
    ss_enclave_result r;
    ss_enclave_result_init(&r);
    sealed_batch(k, &in, 0, 2, 16);
    assert_int_equal(ss_enclave_call(e, in.data, in.len, &r, err,
                                     sizeof err), 0);
    ss_enclave_close(&e);
    if (access(out, F_OK) == 0) {
        FILE *f = fopen(out, "r");
        char what[2048] = "";
        size_t n = f ? fread(what, 1, sizeof what - 1, f) : 0;
        what[n] = '\0';
        fail_msg("the preloaded library ran in the enclave:\n%s", what);
    }

    /* a dynamic program in its place runs the library, but measures
     * differently: the key service refuses, nothing to print */
    char dyn[4200];
    snprintf(dyn, sizeof dyn, "%s", prog);
    *strrchr(dyn, '/') = '\0';
    strcat(dyn, "/sstream");
    if (access(dyn, X_OK) == 0) {
        o.program = preload_wrapper(dyn, out);
        int rc = ss_enclave_open(&o, &e, err, sizeof err);
        assert_int_equal(rc, SS_EDENIED);
        assert_non_null(strstr(err, "does not match the manifest"));
        FILE *f = fopen(out, "r");
        assert_non_null(f); /* it did run: the test would see a key */
        char line[600];
        int ran = 0;
        while (fgets(line, sizeof line, f)) {
            ran |= !strncmp(line, "PRELOADED", 9);
            if (!strncmp(line, "KEY ", 4))
                fail_msg("the data key leaked: %s", line);
        }
        fclose(f);
        assert_true(ran);
    }
    ss_enclave_result_release(&r);
    ss_buf_release(&in);
    ss_key_destroy(&k);
    ss_keyservice_destroy(&ks);
}

/* --- snapshots ------------------------------------------------------------ */

#define SUM_SCRIPT                                                           \
    "local ZmqRx = require 'sgx-rx'\n"                                       \
    "ZmqRx.Subject.fromZmqSocket('tcp://x:1')\n"                             \
    ":reduceSGX(function(acc, v) return acc + v end, 0)\n"                   \
    ":subscribeToSocket('tcp://x:2')\n"

/* A sealed batch of run, epoch, seq holding the integers vals[0..n). */
static void sealed_ints(const ss_key *k, ss_buf *out, uint64_t run,
                        uint32_t epoch, uint64_t seq, const int *vals,
                        uint32_t n)
{
    ss_buf pl = SS_BUF_INIT;
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(ss_mp_put_int(&pl, vals[i]), 0);
    ss_hdr h;
    memset(&h, 0, sizeof h);
    h.kind = SS_MSG_DATA;
    h.flags = SS_BF_LAST_PART;
    h.stream = 7;
    h.seq = seq;
    h.count = n;
    h.run = run;
    h.epoch = epoch;
    ss_buf_reset(out);
    assert_int_equal(ss_aead_seal(k, &h, pl.data, pl.len, out), 0);
    ss_buf_release(&pl);
}

static void save(const char *dir, const char *worker, uint32_t epoch,
                 const ss_buf *b)
{
    char p[900];
    snprintf(p, sizeof p, "%s/%s-e%u.snap", dir, worker, epoch);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b->data, 1, b->len, f), b->len);
    fclose(f);
}

static void load_file(const char *dir, const char *worker, uint32_t epoch,
                      ss_buf *b)
{
    char p[900];
    snprintf(p, sizeof p, "%s/%s-e%u.snap", dir, worker, epoch);
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    ss_buf_reset(b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        assert_int_equal(ss_buf_append(b, chunk, n), 0);
    fclose(f);
}

/* Runs the attacker's tool; returns its exit status. */
static int attacker(const char *args)
{
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "python3 tests/attack/swap_snapshot.py %s",
             args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A reduce (sum) enclave of run `run` as worker `name`: batches of
 * epochs 0, 1, 2 with a snapshot after each of epochs 1 and 2 (after
 * the barriers of epochs 1 and 2), saved in dir. Sums (scale 1): 6 at
 * epoch 1, 6 + 15 = 21 at epoch 2. */
static void take_snapshots(const char *path, const char *name, uint64_t run,
                           const char *dir, const ss_key *k, int scale)
{
    ss_keyservice *ks = NULL;
    ss_enclave *e = open_attested_as("sum", path, name, run, 0, &ks);
    char err[1024];
    ss_buf in = SS_BUF_INIT, blob = SS_BUF_INIT;
    ss_enclave_result r;
    ss_enclave_result_init(&r);
    const int a[] = {1 * scale, 2 * scale, 3 * scale},
              b[] = {4 * scale, 5 * scale, 6 * scale};
    sealed_ints(k, &in, run, 0, 0, a, 3);
    if (ss_enclave_call(e, in.data, in.len, &r, err, sizeof err))
        fail_msg("call: %s", err);
    if (ss_enclave_snapshot(e, 1, &blob, err, sizeof err))
        fail_msg("snapshot 1: %s", err);
    save(dir, name, 1, &blob);
    /* the host stores ciphertext only: not even the operator's state
     * fields are in clear (they are in a plain snapshot) */
    assert_null(memmem(blob.data, blob.len, "\xa3" "acc", 4));
    sealed_ints(k, &in, run, 1, 1, b, 3);
    if (ss_enclave_call(e, in.data, in.len, &r, err, sizeof err))
        fail_msg("call: %s", err);
    if (ss_enclave_snapshot(e, 2, &blob, err, sizeof err))
        fail_msg("snapshot 2: %s", err);
    save(dir, name, 2, &blob);
    ss_enclave_result_release(&r);
    ss_buf_release(&in);
    ss_buf_release(&blob);
    ss_enclave_close(&e);
    ss_keyservice_destroy(&ks);
}

/* Restores STORE/victim-1-<epoch>.snap, asking for epoch, into a fresh
 * enclave of run to which the key service granted the restore of epoch
 * grant (0: none); returns the code, err the reason. On success, feeds
 * one batch of epoch 3 (value 100) and completes: *got is the sum. */
static int restore_epoch(const char *path, const char *store, uint64_t run,
                         uint32_t grant, uint32_t epoch, const ss_key *k,
                         long *got, char *err, size_t errlen)
{
    ss_keyservice *ks = NULL;
    ss_enclave *e =
        open_attested_as("sum", path, "victim-1", run, grant, &ks);
    ss_buf blob = SS_BUF_INIT, in = SS_BUF_INIT, pt = SS_BUF_INIT;
    load_file(store, "victim-1", epoch, &blob);
    int rc = ss_enclave_restore(e, epoch, blob.data, blob.len, err, errlen);
    if (rc == 0) {
        ss_enclave_result r;
        ss_enclave_result_init(&r);
        static const int c[] = {100};
        char cerr[1024];
        /* a batch of epoch 1 is in the restored state: refused */
        sealed_ints(k, &in, run, 1, 1, c, 1);
        assert_int_equal(ss_enclave_call(e, in.data, in.len, &r, cerr,
                                         sizeof cerr),
                         SS_EDENIED);
        sealed_ints(k, &in, run, 3, 2, c, 1);
        if (ss_enclave_call(e, in.data, in.len, &r, cerr, sizeof cerr))
            fail_msg("call after restore: %s", cerr);
        ss_hdr fin;
        memset(&fin, 0, sizeof fin);
        fin.kind = SS_MSG_DATA;
        fin.stream = 0x80000009u;
        fin.run = run;
        if (ss_enclave_complete(e, &fin, &r, cerr, sizeof cerr))
            fail_msg("complete: %s", cerr);
        ss_hdr oh;
        assert_int_equal(ss_aead_open(k, r.msg.data, r.msg.len, &oh, &pt),
                         0);
        lua_State *L = luaL_newstate();
        size_t off = 0;
        assert_int_equal(ss_mp_decode_lua(L, pt.data, pt.len, &off, cerr,
                                          sizeof cerr),
                         0);
        *got = (long)lua_tointeger(L, -1);
        lua_close(L);
        ss_enclave_result_release(&r);
    }
    ss_buf_release(&blob);
    ss_buf_release(&in);
    ss_buf_release(&pt);
    ss_enclave_close(&e);
    ss_keyservice_destroy(&ks);
    return rc;
}

/* The run's coordinator granted epoch 2: STORE/victim-1-2.snap. */
static int restore_from(const char *path, const char *store, uint64_t run,
                        const ss_key *k, long *got, char *err, size_t errlen)
{
    return restore_epoch(path, store, run, 2, 2, k, got, err, errlen);
}

/* Issue 13: a host (or whoever writes its snapshot folder) swaps the
 * snapshot a restarted reduce enclave restores. Each swap is refused
 * inside the enclave; so is a host that asks for epoch 1 with epoch 1's
 * own snapshot when the key service granted epoch 2, or restores when it
 * granted none. The honest snapshot gives 21 + 100. Without the checks
 * (ss_snapshot_open's identity checks, the header as associated data,
 * the refusal of a plain blob, the grant) the swaps restore and the sum
 * is wrong: 6 + 100 (older), another run's or worker's total, or the
 * forger's number. */
static void test_swapped_snapshots_refused(void **state)
{
    (void)state;
    const char *path = script("sum", SUM_SCRIPT);
    char err[1024], store[700], other[700], args[2200], st[800];
    ss_key *k = NULL;
    assert_int_equal(ss_keys_load_data(keys, &k, err, sizeof err), 0);
    const uint64_t run = 0x5eed0001, run2 = 0x5eed0002;
    snprintf(store, sizeof store, "%s/store", tmpdir);
    snprintf(other, sizeof other, "%s/store-run2", tmpdir);
    assert_int_equal(mkdir(store, 0700), 0);
    assert_int_equal(mkdir(other, 0700), 0);
    take_snapshots(path, "victim-1", run, store, k, 1);
    take_snapshots(path, "victim-2", run, store, k, 10);
    take_snapshots(path, "victim-1", run2, other, k, 100);
    ss_buf honest = SS_BUF_INIT;
    load_file(store, "victim-1", 2, &honest);

    /* a state the forger chose: the same chain with 1000000 folded in */
    snprintf(st, sizeof st, "%s/forged-state", tmpdir);
    {
        ss_stage_opts so;
        memset(&so, 0, sizeof so);
        so.script_path = path;
        so.name = "victim-1";
        so.stage = "sum";
        so.host_errors = 1;
        ss_stage *sg = NULL;
        assert_int_equal(ss_stage_new(&so, &sg, err, sizeof err), 0);
        ss_chain *ch = NULL;
        assert_int_equal(ss_chain_new(&sg, 1, &ch), 0);
        ss_hdr h;
        memset(&h, 0, sizeof h);
        h.kind = SS_MSG_DATA;
        h.count = 1;
        ss_stage_out o;
        ss_stage_out_init(&o);
        ss_buf ev = SS_BUF_INIT, bytes = SS_BUF_INIT;
        ss_mp_put_int(&ev, 1000000);
        assert_int_equal(ss_chain_process(ch, &h, ev.data, ev.len, &o), 0);
        assert_int_equal(ss_chain_snapshot(ch, &bytes, err, sizeof err), 0);
        FILE *f = fopen(st, "wb");
        assert_non_null(f);
        fwrite(bytes.data, 1, bytes.len, f);
        fclose(f);
        ss_buf_release(&ev);
        ss_buf_release(&bytes);
        ss_stage_out_release(&o);
        ss_chain_destroy(&ch);
    }

    struct {
        const char *mode, *extra, *want;
    } attacks[] = {
        {"older", "", "not of epoch 2: an older snapshot (rollback "
                      "refused)"},
        {"foreign", other, "a snapshot of another run"},
        {"worker", "victim-2", "not of worker 'victim-1'"},
        {"relabel", "", "does not authenticate"},
        {"flip", "", "does not authenticate"},
        {"forge", st, "a plain one is refused"},
    };
    char won[2048] = "";
    long got = 0;
    int rc_lie;
    for (size_t i = 0; i < sizeof attacks / sizeof attacks[0]; i++) {
        save(store, "victim-1", 2, &honest);
        snprintf(args, sizeof args, "%s '%s' victim-1 2 %s%s%s",
                 attacks[i].mode, store, attacks[i].extra[0] ? "'" : "",
                 attacks[i].extra, attacks[i].extra[0] ? "'" : "");
        assert_int_equal(attacker(args), 0);
        err[0] = '\0';
        int rc = restore_from(path, store, run, k, &got, err, sizeof err);
        if (rc == 0) {
            size_t w = strlen(won);
            snprintf(won + w, sizeof won - w, "\n  %s: restored, the sum is "
                     "%ld (honest: 121)", attacks[i].mode, got);
            continue;
        }
        if (!strstr(err, attacks[i].want))
            fail_msg("attack '%s': refused, but unclearly: %s",
                     attacks[i].mode, err);
        fprintf(stderr, "attack %-7s refused: %s\n", attacks[i].mode, err);
    }
    /* a host that lies consistently: asks for epoch 1 and gives epoch
     * 1's own, untouched snapshot, while the key service granted 2; or
     * restores when the key service granted nothing */
    rc_lie = restore_epoch(path, store, run, 2, 1, k, &got, err, sizeof err);
    if (rc_lie == 0) {
        size_t w = strlen(won);
        snprintf(won + w, sizeof won - w, "\n  epoch 1 asked for: restored, "
                 "the sum is %ld (honest: 121)", got);
    } else if (!strstr(err, "granted the restore of epoch 2, not of epoch "
                            "1: an older checkpoint (rollback refused)")) {
        fail_msg("the rollback lie was refused, but unclearly: %s", err);
    } else {
        fprintf(stderr, "attack lie     refused: %s\n", err);
    }
    save(store, "victim-1", 2, &honest);
    rc_lie = restore_epoch(path, store, run, 0, 2, k, &got, err, sizeof err);
    if (rc_lie == 0) {
        size_t w = strlen(won);
        snprintf(won + w, sizeof won - w, "\n  no grant: restored, the sum "
                 "is %ld", got);
    } else if (!strstr(err, "granted this enclave no restore")) {
        fail_msg("the ungranted restore was refused, but unclearly: %s",
                 err);
    }
    if (won[0])
        fail_msg("swapped snapshots the enclave restored:%s", won);
    /* the honest snapshot restores: 1+2+3+4+5+6, then 100 */
    save(store, "victim-1", 2, &honest);
    if (restore_from(path, store, run, k, &got, err, sizeof err))
        fail_msg("honest restore: %s", err);
    assert_int_equal(got, 121);
    /* the owner (data key) reads the state; the host cannot */
    char dyn[4200], cmd[9000], out[800];
    snprintf(dyn, sizeof dyn, "%s", prog);
    *strrchr(dyn, '/') = '\0';
    snprintf(out, sizeof out, "%s/state.txt", tmpdir);
    snprintf(cmd, sizeof cmd, "'%s/sstream' decrypt --keys '%s' "
             "'%s/victim-1-e2.snap' '%s'", dyn, keys, store, out);
    assert_int_equal(system(cmd), 0);
    FILE *f = fopen(out, "r");
    assert_non_null(f);
    char text[2048] = "";
    size_t tn = fread(text, 1, sizeof text - 1, f);
    text[tn] = '\0';
    fclose(f);
    if (!strstr(text, "\"epoch\":2,\"stage\":\"sum\",\"worker\":"
                      "\"victim-1\"") ||
        !strstr(text, "[2,true,[[\"reduce\",{\"acc\":21,\"has\":true}]],"
                            "[]]"))
        fail_msg("sstream decrypt of the snapshot gave:\n%s", text);
    ss_buf_release(&honest);
    ss_key_destroy(&k);
}

/* The final sum of a "sum" enclave of run, as its host completes it. */
static long complete_sum(ss_enclave *e, const ss_key *k, uint64_t run)
{
    char err[1024];
    ss_enclave_result r;
    ss_enclave_result_init(&r);
    ss_hdr fin;
    memset(&fin, 0, sizeof fin);
    fin.kind = SS_MSG_DATA;
    fin.stream = 0x80000009u;
    fin.run = run;
    if (ss_enclave_complete(e, &fin, &r, err, sizeof err))
        fail_msg("complete: %s", err);
    ss_buf pt = SS_BUF_INIT;
    ss_hdr oh;
    assert_int_equal(ss_aead_open(k, r.msg.data, r.msg.len, &oh, &pt), 0);
    lua_State *L = luaL_newstate();
    size_t off = 0;
    assert_int_equal(ss_mp_decode_lua(L, pt.data, pt.len, &off, err,
                                      sizeof err), 0);
    long got = (long)lua_tointeger(L, -1);
    lua_close(L);
    ss_buf_release(&pt);
    ss_enclave_result_release(&r);
    return got;
}

/* A reduce host that sends one of its (authentic) batches twice: the
 * enclave folded it twice and sealed a wrong total (1+2+3+10 counted as
 * 1+2+3+10+1+2+3 = 22, and 32 with batch 1 again), which the sink could
 * not tell: the host forwards one of the two identical empty outputs. A
 * stateful enclave takes each lineage once; another part of the same
 * batch is another input (a partitioned stage gets parts). */
static void test_stateful_takes_each_batch_once(void **state)
{
    (void)state;
    const uint64_t run = 0x1234abcdull;
    ss_keyservice *ks = NULL;
    ss_enclave *e = open_attested_as("sum", script("sum", SUM_SCRIPT),
                                     "victim-1", run, 0, &ks);
    assert_true(ss_enclave_stateful(e));
    char err[1024];
    ss_key *k = NULL;
    assert_int_equal(ss_keys_load_data(keys, &k, err, sizeof err), 0);
    ss_buf b0 = SS_BUF_INIT, b1 = SS_BUF_INIT;
    static const int v0[] = {1, 2, 3}, v1[] = {10};
    sealed_ints(k, &b0, run, 0, 0, v0, 3);
    sealed_ints(k, &b1, run, 0, 1, v1, 1);
    ss_enclave_result r;
    ss_enclave_result_init(&r);
    assert_int_equal(ss_enclave_call(e, b0.data, b0.len, &r, err,
                                     sizeof err), 0);
    assert_int_equal(ss_enclave_call(e, b1.data, b1.len, &r, err,
                                     sizeof err), 0);
    int twice = 0;
    for (int i = 0; i < 2; i++) { /* the attack: batches 0 and 1 again */
        const ss_buf *b = i ? &b1 : &b0;
        int rc = ss_enclave_call(e, b->data, b->len, &r, err, sizeof err);
        if (rc == 0) {
            twice++;
            continue;
        }
        assert_int_equal(rc, SS_EDENIED);
        if (!strstr(err, "already") || !strstr(err, "twice"))
            fail_msg("unclear refusal: %s", err);
    }
    assert_true(ss_enclave_alive(e));
    long got = complete_sum(e, k, run);
    fprintf(stderr, "batches folded twice: %d, total %ld (honest: 16)\n",
            twice, got);
    assert_int_equal(twice, 0);
    assert_int_equal(got, 16);
    ss_enclave_close(&e);
    ss_keyservice_destroy(&ks);

    /* parts of one batch are distinct inputs */
    e = open_attested_as("sum", script("sum", SUM_SCRIPT), "victim-1", run,
                         0, &ks);
    for (uint32_t part = 0; part < 3; part++) {
        ss_buf pl = SS_BUF_INIT;
        assert_int_equal(ss_mp_put_int(&pl, 5), 0);
        ss_hdr h;
        memset(&h, 0, sizeof h);
        h.kind = SS_MSG_DATA;
        h.flags = part == 2 ? SS_BF_LAST_PART : 0;
        h.stream = 7;
        h.seq = 4;
        h.part = part;
        h.count = 1;
        h.run = run;
        ss_buf_reset(&b0);
        assert_int_equal(ss_aead_seal(k, &h, pl.data, pl.len, &b0), 0);
        ss_buf_release(&pl);
        if (ss_enclave_call(e, b0.data, b0.len, &r, err, sizeof err))
            fail_msg("part %u: %s", part, err);
    }
    assert_int_equal(complete_sum(e, k, run), 15);
    ss_enclave_result_release(&r);
    ss_buf_release(&b0);
    ss_buf_release(&b1);
    ss_key_destroy(&k);
    ss_enclave_close(&e);
    ss_keyservice_destroy(&ks);
}

/* One sealed output message out[0..n) of an enclave, checked and
 * recorded by the sink's integrity check ig; its header in *h. */
static int sink_takes(ss_integrity *ig, const ss_key *k, const ss_buf *out,
                      ss_hdr *h, char *err, size_t errlen)
{
    ss_buf pt = SS_BUF_INIT;
    assert_int_equal(ss_aead_open(k, out->data, out->len, h, &pt), 0);
    ss_buf_release(&pt);
    return ss_integrity_batch(ig, h, err, errlen);
}

/* The source's one stream (7) of run, sealed with k: batch 0 holds 1, 2
 * and 3; batch 1 holds 10 and ends the stream. */
static void two_batches(const ss_key *k, uint64_t run, ss_buf *b0, ss_buf *b1)
{
    static const int v0[] = {1, 2, 3};
    sealed_ints(k, b0, run, 0, 0, v0, 3);
    ss_buf pl = SS_BUF_INIT;
    assert_int_equal(ss_mp_put_int(&pl, 10), 0);
    ss_hdr h;
    memset(&h, 0, sizeof h);
    h.kind = SS_MSG_DATA;
    h.flags = SS_BF_LAST_PART;
    h.stream = 7;
    h.seq = 1;
    h.count = 1;
    h.run = run;
    h.aux = SS_AUX_END | 1;
    assert_int_equal(ss_aead_seal(k, &h, pl.data, pl.len, b1), 0);
    ss_buf_release(&pl);
}

/* A reduce host starts two enclaves of its worker (the spawner starts as
 * many as it is asked for, the key service releases to each), feeds both
 * every batch, completes both, and used to choose the lineage of each
 * result: batch 0 (no end mark) and batch 1 (the end) of its own stream.
 * The sink took both results, one worker's total counted twice, every
 * check passed. The core sets a result's lineage itself (the worker's own
 * stream, batch 0, its end): the second result is the same batch again,
 * which the sink refuses (and a router drops as a duplicate). Its
 * first_row is the number of outputs the enclave sealed before it (2). */
static void test_result_lineage_is_the_enclaves(void **state)
{
    (void)state;
    const uint64_t run = 0x5151ull;
    char err[1024];
    ss_key *k = NULL;
    assert_int_equal(ss_keys_load_data(keys, &k, err, sizeof err), 0);
    ss_integrity *ig = NULL;
    assert_int_equal(ss_integrity_new(0, &ig), 0);
    assert_int_equal(ss_integrity_expect_final(ig, "victim-1"), 0);
    ss_buf b0 = SS_BUF_INIT, b1 = SS_BUF_INIT;
    two_batches(k, run, &b0, &b1);
    ss_enclave_result r;
    ss_enclave_result_init(&r);
    int refused = 0, bad_lineage = 0;
    uint32_t own = ss_name_id("victim-1") | 0x80000000u;
    for (int i = 0; i < 2; i++) {
        ss_keyservice *ks = NULL;
        ss_enclave *e = open_attested_as("sum", script("sum", SUM_SCRIPT),
                                         "victim-1", run, 0, &ks);
        for (int j = 0; j < 2; j++) {
            const ss_buf *b = j ? &b1 : &b0;
            if (ss_enclave_call(e, b->data, b->len, &r, err, sizeof err))
                fail_msg("call: %s", err);
            ss_hdr oh;
            if (i == 0) /* one enclave's empty outputs reach the sink */
                assert_int_equal(sink_takes(ig, k, &r.msg, &oh, err,
                                            sizeof err), 0);
        }
        ss_hdr fin; /* the host's choice */
        memset(&fin, 0, sizeof fin);
        fin.kind = SS_MSG_DATA;
        fin.flags = SS_BF_LAST_PART | SS_BF_FINAL;
        fin.stream = own;
        fin.seq = (uint64_t)i;
        fin.aux = i ? SS_AUX_END : 0;
        fin.first_row = 99;
        fin.run = run;
        if (ss_enclave_complete(e, &fin, &r, err, sizeof err))
            fail_msg("complete: %s", err);
        ss_hdr oh;
        char why[1024] = "";
        if (sink_takes(ig, k, &r.msg, &oh, why, sizeof why) != 0) {
            refused++;
            fprintf(stderr, "result %d refused: %s\n", i, why);
            if (!strstr(why, "twice"))
                fail_msg("unclear refusal: %s", why);
        }
        fprintf(stderr, "result %d sealed as stream %u batch %llu%s\n", i,
                oh.stream, (unsigned long long)oh.seq,
                oh.aux & SS_AUX_END ? " (end)" : "");
        if (oh.stream != own || oh.seq != 0 || !(oh.aux & SS_AUX_END) ||
            !(oh.flags & SS_BF_FINAL) || oh.first_row != 2)
            bad_lineage++;
        ss_enclave_close(&e);
        ss_keyservice_destroy(&ks);
    }
    if (refused != 1)
        fail_msg("the sink took %d results of worker victim-1",
                 2 - refused);
    assert_int_equal(bad_lineage, 0);
    assert_int_equal(ss_integrity_finish(ig, NULL, err, sizeof err), 0);
    ss_integrity_destroy(&ig);
    ss_enclave_result_release(&r);
    ss_buf_release(&b0);
    ss_buf_release(&b1);
    ss_key_destroy(&k);
}

/* The attacker's tool for the split fold: a reduce host starts two
 * enclaves of its one worker (nothing limits that: the spawner starts
 * what it is asked, the key service releases the key to each). Enclave A
 * folds only the batches the host picks (here batch 0: 1+2+3) and
 * completes; enclave B takes the others (batch 1, the end of the stream)
 * and seals their empty outputs. The sink gets one authentic output per
 * input batch, A's sealed result, every stream complete: it must refuse
 * the run, since the result covers a subset (6, not 16). FAILS today
 * (the hole in docs/SECURITY.md): the sink takes all of it. */
static void test_fold_split_across_two_enclaves(void **state)
{
    (void)state;
    const uint64_t run = 0x5252ull;
    char err[1024];
    ss_key *k = NULL;
    assert_int_equal(ss_keys_load_data(keys, &k, err, sizeof err), 0);
    ss_integrity *ig = NULL;
    assert_int_equal(ss_integrity_new(0, &ig), 0);
    assert_int_equal(ss_integrity_expect_final(ig, "victim-1"), 0);
    ss_buf b0 = SS_BUF_INIT, b1 = SS_BUF_INIT;
    two_batches(k, run, &b0, &b1);
    ss_enclave_result r;
    ss_enclave_result_init(&r);
    ss_keyservice *ksa = NULL, *ksb = NULL;
    ss_enclave *a = open_attested_as("sum", script("sum", SUM_SCRIPT),
                                     "victim-1", run, 0, &ksa);
    ss_enclave *b = open_attested_as("sum", script("sum", SUM_SCRIPT),
                                     "victim-1", run, 0, &ksb);
    ss_hdr oh;
    int refused = 0;
    char why[1024] = "";
    /* A folds batch 0, B takes batch 1: each output reaches the sink */
    if (ss_enclave_call(a, b0.data, b0.len, &r, err, sizeof err))
        fail_msg("call A: %s", err);
    if (sink_takes(ig, k, &r.msg, &oh, why, sizeof why))
        refused++;
    if (ss_enclave_call(b, b1.data, b1.len, &r, err, sizeof err))
        fail_msg("call B: %s", err);
    if (!refused && sink_takes(ig, k, &r.msg, &oh, why, sizeof why))
        refused++;
    ss_hdr fin;
    memset(&fin, 0, sizeof fin);
    fin.kind = SS_MSG_DATA;
    fin.run = run;
    if (ss_enclave_complete(a, &fin, &r, err, sizeof err))
        fail_msg("complete A: %s", err);
    if (!refused && sink_takes(ig, k, &r.msg, &oh, why, sizeof why))
        refused++;
    if (!refused && ss_integrity_finish(ig, NULL, why, sizeof why))
        refused++;
    fprintf(stderr, "split fold: the sink %s%s\n",
            refused ? "refused the run: " : "took a result of 6 of 16",
            why);
    if (!refused)
        fail_msg("the sink took a result folded from a subset of the "
                 "batches (two enclaves of worker victim-1)");
    if (!strstr(why, "victim-1"))
        fail_msg("the refusal does not name the worker: %s", why);
    ss_enclave_close(&a);
    ss_enclave_close(&b);
    ss_keyservice_destroy(&ksa);
    ss_keyservice_destroy(&ksb);
    ss_integrity_destroy(&ig);
    ss_enclave_result_release(&r);
    ss_buf_release(&b0);
    ss_buf_release(&b1);
    ss_key_destroy(&k);
}

/* The sink's side of the instance check on headers alone: a result
 * that says its enclave sealed 3 outputs when 2 of that worker arrived
 * is refused naming the worker; 2 is taken; a result with no instance
 * (plain and encrypted modes: the worker itself wrote it) is not
 * checked; an output of another instance is refused. */
static void test_sink_checks_a_results_outputs(void **state)
{
    (void)state;
    const uint32_t w = ss_name_id("victim-1");
    for (int c = 0; c < 4; c++) {
        static const uint32_t inst[4][3] = {
            {7, 7, 7}, {7, 7, 7}, {0, 0, 0}, {7, 9, 7}};
        static const uint64_t says[4] = {3, 2, 5, 2};
        static const int ok[4] = {0, 1, 1, 0};
        ss_integrity *ig = NULL;
        assert_int_equal(ss_integrity_new(0, &ig), 0);
        assert_int_equal(ss_integrity_expect_final(ig, "victim-1"), 0);
        char err[512] = "";
        for (int i = 0; i < 3; i++) {
            ss_hdr h;
            memset(&h, 0, sizeof h);
            h.kind = SS_MSG_DATA;
            h.flags = SS_BF_LAST_PART;
            h.producer = w;
            h.instance = inst[c][i];
            h.stream = 7;
            h.seq = (uint64_t)i;
            if (i == 1)
                h.aux = SS_AUX_END | 1;
            if (i == 2) { /* the result */
                h.flags |= SS_BF_FINAL;
                h.stream = w | 0x80000000u;
                h.seq = 0;
                h.aux = SS_AUX_END;
                h.first_row = says[c];
            }
            assert_int_equal(ss_integrity_batch(ig, &h, err, sizeof err),
                             0);
        }
        int rc = ss_integrity_finish(ig, NULL, err, sizeof err);
        fprintf(stderr, "case %d: %s\n", c, rc ? err : "taken");
        if (ok[c])
            assert_int_equal(rc, 0);
        else if (rc != SS_EINTEGRITY || !strstr(err, "victim-1"))
            fail_msg("case %d: %d %s", c, rc, err);
        ss_integrity_destroy(&ig);
    }
}


/* --- rescaling: key groups restored from several workers' snapshots ----- */

/* A sealed PARTITIONED batch of run, epoch, seq for key group g. */
static void sealed_group(const ss_key *k, ss_buf *out, uint64_t run,
                         uint32_t epoch, uint64_t seq, int g, const int *vals,
                         uint32_t n)
{
    ss_buf pl = SS_BUF_INIT;
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(ss_mp_put_int(&pl, vals[i]), 0);
    ss_hdr h;
    memset(&h, 0, sizeof h);
    h.kind = SS_MSG_DATA;
    h.flags = SS_BF_LAST_PART | SS_BF_PARTITIONED;
    h.partition = (uint16_t)g;
    h.stream = 7;
    h.seq = seq;
    h.count = n;
    h.run = run;
    h.epoch = epoch;
    ss_buf_reset(out);
    assert_int_equal(ss_aead_seal(k, &h, pl.data, pl.len, out), 0);
    ss_buf_release(&pl);
}

/* Worker `name` of a partitioned sum over 2 workers (slot 1: key groups
 * 0..2047, slot 2: 2048..4095) of run: two key groups of its range get
 * batches before the barrier of epoch 1, one more batch after it; its
 * snapshots of epochs 1 and 2 go to dir. The sums at epoch 2: slot 1,
 * group 10: 3, group 1500: 12; slot 2, group 2100: 300, 4000: 1000. */
static void take_keyed(const char *stage, const char *path, const char *name,
                       int slot, uint64_t run, const char *dir,
                       const ss_key *k)
{
    ss_keyservice *ks = NULL;
    ss_enclave *e = open_attested_grant(stage, path, name, run, NULL, &ks);
    char err[1024];
    ss_buf in = SS_BUF_INIT, blob = SS_BUF_INIT;
    ss_enclave_result r;
    ss_enclave_result_init(&r);
    static const int v1[] = {1, 2}, v2[] = {4}, v3[] = {8}, w1[] = {100},
                     w2[] = {1000}, w3[] = {200};
    const int g1 = slot == 1 ? 10 : 2100, g2 = slot == 1 ? 1500 : 4000;
    sealed_group(k, &in, run, 0, 0, g1, slot == 1 ? v1 : w1,
                 slot == 1 ? 2 : 1);
    if (ss_enclave_call(e, in.data, in.len, &r, err, sizeof err))
        fail_msg("call: %s", err);
    sealed_group(k, &in, run, 0, 1, g2, slot == 1 ? v2 : w2, 1);
    if (ss_enclave_call(e, in.data, in.len, &r, err, sizeof err))
        fail_msg("call: %s", err);
    if (ss_enclave_snapshot(e, 1, &blob, err, sizeof err))
        fail_msg("snapshot 1: %s", err);
    save(dir, name, 1, &blob);
    sealed_group(k, &in, run, 1, 2, slot == 1 ? g2 : g1,
                 slot == 1 ? v3 : w3, 1);
    if (ss_enclave_call(e, in.data, in.len, &r, err, sizeof err))
        fail_msg("call: %s", err);
    if (ss_enclave_snapshot(e, 2, &blob, err, sizeof err))
        fail_msg("snapshot 2: %s", err);
    save(dir, name, 2, &blob);
    ss_enclave_result_release(&r);
    ss_buf_release(&in);
    ss_buf_release(&blob);
    ss_enclave_close(&e);
    ss_keyservice_destroy(&ks);
}

/* One restore attempt of the new worker sum-<slot> of 3, granted g, with
 * the host's request r and blobs (file names in dir: "WORKER-eE"); on
 * success one more batch (group 1500, 5, epoch 3) and the completion:
 * got = the results, "a,b,..." by key group. */
static int rescale_attempt(const char *path, uint64_t run,
                           const ss_restore_grant *g,
                           const ss_restore_grant *r, const char *dir,
                           const char *const *files, const ss_key *k,
                           char *got, size_t gotlen, char *err,
                           size_t errlen)
{
    ss_keyservice *ks = NULL;
    char name[32];
    snprintf(name, sizeof name, "sum-%u", g->slot);
    ss_enclave *e = open_attested_grant("sum", path, name, run, g, &ks);
    ss_buf blobs[4];
    const void *bp[4];
    size_t bl[4];
    for (uint32_t j = 0; j < r->from; j++) {
        ss_buf_init(&blobs[j]);
        char p[900];
        snprintf(p, sizeof p, "%s/%s.snap", dir, files[j]);
        FILE *f = fopen(p, "rb");
        assert_non_null(f);
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
            assert_int_equal(ss_buf_append(&blobs[j], chunk, n), 0);
        fclose(f);
        bp[j] = blobs[j].data;
        bl[j] = blobs[j].len;
    }
    int rc = ss_enclave_restore_keyed(e, r, bp, bl, err, errlen);
    got[0] = '\0';
    if (rc == 0) {
        ss_enclave_result res;
        ss_enclave_result_init(&res);
        ss_buf in = SS_BUF_INIT, pt = SS_BUF_INIT;
        static const int five[] = {5};
        char cerr[1024];
        sealed_group(k, &in, run, 3, 9, 1500, five, 1);
        if (ss_enclave_call(e, in.data, in.len, &res, cerr, sizeof cerr))
            fail_msg("call after restore: %s", cerr);
        ss_hdr fin;
        memset(&fin, 0, sizeof fin);
        fin.kind = SS_MSG_DATA;
        fin.stream = 0x80000009u;
        fin.run = run;
        if (ss_enclave_complete(e, &fin, &res, cerr, sizeof cerr))
            fail_msg("complete: %s", cerr);
        ss_hdr oh;
        assert_int_equal(ss_aead_open(k, res.msg.data, res.msg.len, &oh,
                                      &pt), 0);
        lua_State *L = luaL_newstate();
        size_t off = 0, w = 0;
        for (uint32_t i = 0; i < oh.count; i++) {
            assert_int_equal(ss_mp_decode_lua(L, pt.data, pt.len, &off, cerr,
                                              sizeof cerr), 0);
            w += (size_t)snprintf(got + w, gotlen - w, "%s%lld",
                                  i ? "," : "",
                                  (long long)lua_tointeger(L, -1));
            lua_pop(L, 1);
        }
        lua_close(L);
        ss_buf_release(&in);
        ss_buf_release(&pt);
        ss_enclave_result_release(&res);
    }
    for (uint32_t j = 0; j < r->from; j++)
        ss_buf_release(&blobs[j]);
    ss_enclave_close(&e);
    ss_keyservice_destroy(&ks);
    return rc;
}

/* Issue 13, rescaling: a partitioned sum goes from 2 workers to 3 at
 * checkpoint 2; the new sum-2 (key groups 1366..2730) restores its
 * groups from both old snapshots, inside its enclave, as the key service
 * granted (epoch 2, from 2 workers, slot 2 of 3). A host that hands it
 * an older epoch's snapshot, another run's, another stage's, the two in
 * the wrong order, fewer old snapshots than the stage had, or asks for
 * another slot, another epoch or a plain own-snapshot restore is refused
 * inside the enclave; the honest restore gives the groups of its range
 * only (12 + 5 and 300, not 3 or 1000). */
static void test_rescale_restore_refused(void **state)
{
    (void)state;
    const char *path = script("sum", SUM_SCRIPT);
    char err[1024], store[700], got[256];
    ss_key *k = NULL;
    assert_int_equal(ss_keys_load_data(keys, &k, err, sizeof err), 0);
    const uint64_t run = 0x5eed0011, run2 = 0x5eed0012;
    snprintf(store, sizeof store, "%s/store-rescale", tmpdir);
    assert_int_equal(mkdir(store, 0700), 0);
    take_keyed("sum", path, "sum-1", 1, run, store, k);
    take_keyed("sum", path, "sum-2", 2, run, store, k);
    /* another run's sum-1, and another stage's worker, in other files */
    char other[760];
    snprintf(other, sizeof other, "%s/run2", store);
    assert_int_equal(mkdir(other, 0700), 0);
    take_keyed("sum", path, "sum-1", 1, run2, other, k);
    const char *tally = script("tally", SUM_SCRIPT);
    take_keyed("tally", tally, "tally-1", 1, run, store, k);

    const ss_restore_grant g = {2, 2, 2, 3};
    struct {
        const char *what;
        ss_restore_grant r;
        const char *files[2];
        const char *want;
    } attacks[] = {
        {"older", {2, 2, 2, 3}, {"sum-1-e1", "sum-2-e2"},
         "not of epoch 2: an older snapshot (rollback refused)"},
        {"foreign", {2, 2, 2, 3}, {"run2/sum-1-e2", "sum-2-e2"},
         "a snapshot of another run"},
        {"stage", {2, 2, 2, 3}, {"tally-1-e2", "sum-2-e2"},
         "of stage 'tally', not of worker 'sum-1' of stage 'sum'"},
        {"swapped", {2, 2, 2, 3}, {"sum-2-e2", "sum-1-e2"},
         "not of worker 'sum-1'"},
        {"fewer", {2, 1, 2, 3}, {"sum-1-e2", NULL},
         "granted the restore from 2 workers as slot 2 of 3, not from 1"},
        {"slot", {2, 2, 3, 3}, {"sum-1-e2", "sum-2-e2"},
         "granted the restore from 2 workers as slot 2 of 3, not from 2 as "
         "slot 3 of 3"},
        {"epoch", {1, 2, 2, 3}, {"sum-1-e1", "sum-2-e1"},
         "granted the restore of epoch 2, not of epoch 1"},
    };
    char won[2048] = "";
    for (size_t i = 0; i < sizeof attacks / sizeof attacks[0]; i++) {
        err[0] = '\0';
        int rc = rescale_attempt(path, run, &g, &attacks[i].r, store,
                                 attacks[i].files, k, got, sizeof got, err,
                                 sizeof err);
        if (rc == 0) {
            size_t w = strlen(won);
            snprintf(won + w, sizeof won - w, "\n  %s: restored, results "
                     "%s (honest: 17,300)", attacks[i].what, got);
            continue;
        }
        if (!strstr(err, attacks[i].want))
            fail_msg("attack '%s': refused, but unclearly: %s",
                     attacks[i].what, err);
        fprintf(stderr, "rescale attack %-8s refused: %s\n",
                attacks[i].what, err);
    }
    /* the host restores the new sum-2 from the old sum-2's own snapshot
     * alone, as if the count had not changed */
    {
        ss_keyservice *ks = NULL;
        ss_enclave *e = open_attested_grant("sum", path, "sum-2", run, &g,
                                            &ks);
        ss_buf blob = SS_BUF_INIT;
        load_file(store, "sum-2", 2, &blob);
        int rc = ss_enclave_restore(e, 2, blob.data, blob.len, err,
                                    sizeof err);
        if (rc == 0)
            strcat(won, "\n  own: the old sum-2's snapshot restored alone");
        else if (!strstr(err, "not from this worker's own"))
            fail_msg("own-snapshot restore refused, but unclearly: %s",
                     err);
        ss_buf_release(&blob);
        ss_enclave_close(&e);
        ss_keyservice_destroy(&ks);
    }
    if (won[0])
        fail_msg("rescale restores the enclave accepted:%s", won);
    /* the honest one: groups 1500 (12, then 5) and 2100 (300) */
    const char *const honest[2] = {"sum-1-e2", "sum-2-e2"};
    if (rescale_attempt(path, run, &g, &g, store, honest, k, got,
                        sizeof got, err, sizeof err))
        fail_msg("honest rescale restore: %s", err);
    assert_string_equal(got, "17,300");
    ss_key_destroy(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_cannot_choose_the_nonce),
        cmocka_unit_test(test_stateful_refuses_reject_and_second_completion),
        cmocka_unit_test(test_preload_gets_no_key),
        cmocka_unit_test(test_swapped_snapshots_refused),
        cmocka_unit_test(test_stateful_takes_each_batch_once),
        cmocka_unit_test(test_result_lineage_is_the_enclaves),
        cmocka_unit_test(test_fold_split_across_two_enclaves),
        cmocka_unit_test(test_sink_checks_a_results_outputs),
        cmocka_unit_test(test_rescale_restore_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
