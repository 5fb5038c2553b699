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
#include "securestreams.h"
#include "wire/ss_msgpack.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* An attested encrypted sandbox enclave for stage `stage` running path. */
static ss_enclave *open_attested(const char *stage, const char *path,
                                 ss_keyservice **ks)
{
    char err[1024];
    assert_int_equal(ss_keyservice_new(keys, ks, err, sizeof err), 0);
    assert_int_equal(ss_keyservice_expect_stage(*ks, stage, prog, path,
                                                SS_ENCLAVE_DEFAULT_MEM,
                                                SS_STAGE_DEFAULT_MAX_INSTRUCTIONS, 1,
                                                err, sizeof err), 0);
    ss_enclave_opts o;
    memset(&o, 0, sizeof o);
    o.backend = "sandbox";
    o.name = "victim-1";
    o.stage = stage;
    o.script_path = path;
    o.program = prog;
    o.encrypted = 1;
    o.key_dir = keys;
    o.get_key = ss_keyservice_keyfn;
    o.key_ctx = *ks;
    ss_enclave *e = NULL;
    if (ss_enclave_open(&o, &e, err, sizeof err))
        fail_msg("open: %s", err);
    return e;
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_cannot_choose_the_nonce),
        cmocka_unit_test(test_stateful_refuses_reject_and_second_completion),
        cmocka_unit_test(test_preload_gets_no_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
