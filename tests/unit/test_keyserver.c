/*
 * test_keyserver.c - the key service on the network (src/net/ss_keyserver.c)
 * is under CURVE with an allow list, and binds a report to the worker
 * whose key carried it (issue 8, items 2 and 8).
 *
 * A service with one admitted worker key ("map-1") runs on a thread, on
 * ipc and on tcp. Attacks, each with a hand-written client of the
 * protocol ("SSKR1" + report):
 *  - a plain client (no CURVE) gets no answer;
 *  - a CURVE client with a key of its own gets no answer;
 *  - the admitted key with a valid report of another worker ("map-2")
 *    is refused, naming both;
 * and the admitted key with its own report gets the data key, sealed to
 * the report's key (it opens, and equals data.key).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "crypto/ss_attest.h"
#include "crypto/ss_keys.h"
#include "crypto/ss_keyservice.h"
#include "net/ss_keyserver.h"
#include "securestreams.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

static char dir[] = "/tmp/ss_test_keyserver_XXXXXX";

typedef struct server {
    ss_keyservice *ks;
    ss_keyserver_auth auth;
    const char *allow[1], *names[1];
    char pub[41], sec[41], worker_pub[41], worker_sec[41];
    char endpoint[256];
    volatile sig_atomic_t stop;
    pthread_t th;
    int rc;
    char err[256];
} server;

static void *serve_main(void *arg)
{
    server *s = arg;
    s->rc = ss_keyserver_serve(s->ks, s->endpoint, &s->auth, &s->stop,
                               s->err, sizeof s->err);
    return NULL;
}

/* A report for worker name of stage "map" (expected measurement m),
 * signed with the pipeline's platform key; *box_sk gets its secret. */
static void make_report_run(const char *name, const uint8_t m[32],
                            uint64_t run, uint8_t out[SS_REPORT_BYTES],
                            uint8_t box_pk[32], uint8_t box_sk[32]);
static void make_report(const char *name, const uint8_t m[32],
                        uint8_t out[SS_REPORT_BYTES], uint8_t box_pk[32],
                        uint8_t box_sk[32])
{
    make_report_run(name, m, 0, out, box_pk, box_sk);
}

/* The same, for run id run. */
static void make_report_run(const char *name, const uint8_t m[32],
                            uint64_t run, uint8_t out[SS_REPORT_BYTES],
                            uint8_t box_pk[32], uint8_t box_sk[32])
{
    uint8_t psk[64];
    char err[256];
    assert_int_equal(ss_keys_load_platform_sk(dir, psk, err, sizeof err),
                     0);
    crypto_box_keypair(box_pk, box_sk);
    ss_report r;
    memset(&r, 0, sizeof r);
    memcpy(r.measurement, m, 32);
    memcpy(r.pubkey, box_pk, 32);
    snprintf(r.stage, sizeof r.stage, "map");
    snprintf(r.name, sizeof r.name, "%s", name);
    r.run = run;
    ss_report_sign(&r, psk, out);
    sodium_memzero(psk, sizeof psk);
}

/* A raw REQ client: sends the request, returns the reply length or -1
 * when nothing came back within 1 s. curve: NULL (plain) or a client. */
static int raw_ask(const char *ep, const ss_curve *curve,
                   const uint8_t *report, char *rep, size_t cap)
{
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_REQ);
    int tmo = 1000, linger = 0;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (curve)
        assert_int_equal(ss_curve_apply(s, curve), 0);
    assert_int_equal(zmq_connect(s, ep), 0);
    uint8_t req[5 + SS_REPORT_BYTES];
    memcpy(req, "SSKR1", 5);
    memcpy(req + 5, report, SS_REPORT_BYTES);
    zmq_send(s, req, sizeof req, ZMQ_DONTWAIT);
    int got = zmq_recv(s, rep, cap, 0);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return got;
}

static void run_on(const char *endpoint)
{
    char err[512];
    server sv;
    memset(&sv, 0, sizeof sv);
    assert_int_equal(ss_keyservice_new(dir, &sv.ks, err, sizeof err), 0);
    uint8_t m[32];
    randombytes_buf(m, sizeof m);
    assert_int_equal(ss_keyservice_expect(sv.ks, "map", m), 0);
    assert_int_equal(zmq_curve_keypair(sv.pub, sv.sec), 0);
    assert_int_equal(zmq_curve_keypair(sv.worker_pub, sv.worker_sec), 0);
    sv.allow[0] = sv.worker_pub;
    sv.names[0] = "map-1";
    sv.auth = (ss_keyserver_auth){sv.pub, sv.sec, sv.allow, sv.names, 1};
    snprintf(sv.endpoint, sizeof sv.endpoint, "%s", endpoint);
    assert_int_equal(pthread_create(&sv.th, NULL, serve_main, &sv), 0);
    usleep(100000);

    uint8_t report[SS_REPORT_BYTES], other[SS_REPORT_BYTES];
    uint8_t bpk[32], bsk[32], opk[32], osk[32];
    make_report("map-1", m, report, bpk, bsk);
    make_report("map-2", m, other, opk, osk);
    char rep[1024];

    /* a plain client: nothing */
    assert_int_equal(raw_ask(endpoint, NULL, report, rep, sizeof rep), -1);
    /* a CURVE client with a key of its own: nothing */
    char fpub[41], fsec[41];
    assert_int_equal(zmq_curve_keypair(fpub, fsec), 0);
    ss_curve foreign;
    assert_int_equal(ss_curve_client(&foreign, fpub, fsec, sv.pub), 0);
    assert_int_equal(raw_ask(endpoint, &foreign, report, rep, sizeof rep),
                     -1);

    /* the admitted key, another worker's report: refused, named */
    ss_keyserver_client kc;
    memset(&kc, 0, sizeof kc);
    kc.endpoint = endpoint;
    assert_int_equal(ss_curve_client(&kc.curve, sv.worker_pub,
                                     sv.worker_sec, sv.pub), 0);
    ss_buf sealed = SS_BUF_INIT;
    int rc = ss_keyserver_keyfn(&kc, other, sizeof other, &sealed, err,
                                sizeof err);
    assert_int_equal(rc, SS_EDENIED);
    assert_string_equal(err, "key service: a report of worker 'map-2' came "
                             "from the connection of 'map-1': refusing "
                             "key");
    assert_int_equal(sealed.len, 0);

    /* the admitted key with its own report: the data key, sealed to it */
    rc = ss_keyserver_keyfn(&kc, report, sizeof report, &sealed, err,
                            sizeof err);
    if (rc)
        fail_msg("refused: %s", err);
    assert_int_equal(sealed.len,
                     crypto_box_SEALBYTES + SS_KEYSERVICE_RELEASE_BYTES);
    uint8_t blob[SS_KEYSERVICE_RELEASE_BYTES], want[SS_KEY_BLOB_BYTES];
    assert_int_equal(crypto_box_seal_open(blob, (uint8_t *)sealed.data,
                                          sealed.len, bpk, bsk), 0);
    ss_key *k = NULL;
    assert_int_equal(ss_keys_load_data(dir, &k, err, sizeof err), 0);
    ss_key_export(k, want);
    assert_memory_equal(blob, want, sizeof want);
    /* no restore granted: the grant is epoch 0 */
    assert_memory_equal(blob + SS_KEY_BLOB_BYTES, "\0\0\0\0", 4);
    ss_key_destroy(&k);
    ss_buf_release(&sealed);

    sv.stop = 1;
    pthread_join(sv.th, NULL);
    assert_int_equal(sv.rc, 0);
    ss_keyservice_destroy(&sv.ks);
}

/* A key service bound to a run releases the key to that run's reports
 * only: a report signed right but for another run (an enclave started
 * with a stale or forged --run) gets nothing, named; 0 (unbound) takes
 * any run. */
static void test_run_bound(void **state)
{
    (void)state;
    char err[512];
    ss_keyservice *ks = NULL;
    assert_int_equal(ss_keyservice_new(dir, &ks, err, sizeof err), 0);
    uint8_t m[32], rep_a[SS_REPORT_BYTES], rep_b[SS_REPORT_BYTES];
    uint8_t pk[32], sk[32];
    randombytes_buf(m, sizeof m);
    assert_int_equal(ss_keyservice_expect(ks, "map", m), 0);
    make_report_run("map-1", m, 0xa1a1, rep_a, pk, sk);
    make_report_run("map-1", m, 0xb2b2, rep_b, pk, sk);
    ss_buf sealed = SS_BUF_INIT;
    ss_keyservice_set_run(ks, 0xa1a1);
    assert_int_equal(ss_keyservice_request(ks, rep_b, sizeof rep_b, &sealed,
                                           err, sizeof err),
                     SS_EDENIED);
    assert_string_equal(err, "key service: the report of worker 'map-1' is "
                             "for run 000000000000b2b2, not for this run "
                             "000000000000a1a1: refusing key");
    assert_int_equal(sealed.len, 0);
    assert_int_equal(ss_keyservice_request(ks, rep_a, sizeof rep_a, &sealed,
                                           err, sizeof err),
                     0);
    assert_true(sealed.len > 0);
    ss_buf_reset(&sealed);
    ss_keyservice_set_run(ks, 0);
    assert_int_equal(ss_keyservice_request(ks, rep_b, sizeof rep_b, &sealed,
                                           err, sizeof err),
                     0);
    ss_buf_release(&sealed);
    ss_keyservice_destroy(&ks);
}

static void test_ipc(void **state)
{
    (void)state;
    char ep[256];
    snprintf(ep, sizeof ep, "ipc://%s/ks", dir);
    run_on(ep);
}

static void test_tcp(void **state)
{
    (void)state;
    char ep[64]; /* a port of its own: tests of other folders run too */
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", 20000 + getpid() % 20000);
    run_on(ep);
}

int main(void)
{
    if (!mkdtemp(dir) || sodium_init() < 0)
        return 1;
    char err[512];
    char keys[300];
    snprintf(keys, sizeof keys, "%s", dir);
    if (ss_keys_create_dir(keys, SS_AEAD_AUTO, NULL, 0, 1, err,
                           sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_bound),
        cmocka_unit_test(test_ipc),
        cmocka_unit_test(test_tcp),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = rc ? rc : 1;
    return rc;
}
