/*
 * test_aead.c - sealing and opening wire messages (src/crypto/ss_aead.c):
 * round trip, every single-bit flip of header and payload, wrong key,
 * truncation, lineage swap, and the key file checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "crypto/ss_aead.h"
#include "crypto/ss_keys.h"
#include "securestreams.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const int algs[] = {SS_AEAD_AES256GCM, SS_AEAD_XCHACHA20POLY1305};

static ss_hdr sample_hdr(void)
{
    ss_hdr h;
    memset(&h, 0, sizeof h);
    h.kind = SS_MSG_DATA;
    h.flags = SS_BF_LINES;
    h.stream = 3;
    h.part = 1;
    h.seq = 77;
    h.count = 5;
    h.first_row = 1234;
    h.aux = 9;
    h.run = 0x0a0b0c0d01020304ull; /* sealed with the rest (72 bytes) */
    h.producer = 0xfeedbeefu;
    return h;
}

/* Returns the key for alg, or NULL when this CPU lacks AES-GCM. */
static ss_key *key_for(int alg)
{
    ss_key *k = NULL;
    int rc = ss_key_generate(alg, &k);
    if (alg == SS_AEAD_AES256GCM && !crypto_aead_aes256gcm_is_available()) {
        assert_int_equal(rc, SS_EINVAL);
        return NULL;
    }
    assert_int_equal(rc, 0);
    return k;
}

static void test_round_trip(void **state)
{
    (void)state;
    for (size_t a = 0; a < 2; a++) {
        ss_key *k = key_for(algs[a]);
        if (!k)
            continue;
        size_t sizes[] = {0, 1, 100, 65536};
        for (size_t i = 0; i < 4; i++) {
            size_t n = sizes[i];
            char *pt = malloc(n + 1);
            for (size_t j = 0; j < n; j++)
                pt[j] = (char)(j * 7 + i);
            ss_hdr h = sample_hdr();
            ss_buf out = SS_BUF_INIT;
            ss_buf_append(&out, "xy", 2); /* seal appends */
            assert_int_equal(ss_aead_seal(k, &h, pt, n, &out), 0);
            assert_true(h.flags & SS_BF_ENCRYPTED);
            assert_int_equal(h.len, n + ss_aead_overhead(k));
            assert_int_equal(out.len, 2 + SS_HDR_SIZE + h.len);
            /* the plaintext does not appear in the clear */
            if (n >= 100)
                assert_null(memmem(out.data + 2, out.len - 2, pt, 32));
            ss_hdr o;
            ss_buf back = SS_BUF_INIT;
            assert_int_equal(
                ss_aead_open(k, out.data + 2, out.len - 2, &o, &back), 0);
            assert_int_equal(back.len, n);
            assert_memory_equal(back.data, pt, n);
            assert_false(o.flags & SS_BF_ENCRYPTED);
            assert_true(o.flags & SS_BF_LINES);
            assert_int_equal(o.len, n);
            assert_int_equal(o.seq, 77);
            assert_int_equal(o.stream, 3);
            assert_int_equal(o.part, 1);
            assert_int_equal(o.count, 5);
            assert_int_equal(o.first_row, 1234);
            assert_int_equal(o.aux, 9);
            /* two seals of the same plaintext differ (fresh nonce) */
            ss_hdr h2 = sample_hdr();
            ss_buf out2 = SS_BUF_INIT;
            assert_int_equal(ss_aead_seal(k, &h2, pt, n, &out2), 0);
            assert_memory_not_equal(out.data + 2 + SS_HDR_SIZE,
                                    out2.data + SS_HDR_SIZE, 12);
            ss_buf_release(&out);
            ss_buf_release(&out2);
            ss_buf_release(&back);
            free(pt);
        }
        ss_key_destroy(&k);
        assert_null(k);
        ss_key_destroy(&k); /* safe twice */
    }
}

static void test_every_bit_flip(void **state)
{
    (void)state;
    for (size_t a = 0; a < 2; a++) {
        ss_key *k = key_for(algs[a]);
        if (!k)
            continue;
        const char pt[] = "\xa5hello\xa5world\xa3one\xa3two\xa5three";
        ss_hdr h = sample_hdr();
        ss_buf msg = SS_BUF_INIT;
        assert_int_equal(ss_aead_seal(k, &h, pt, sizeof pt - 1, &msg), 0);
        ss_buf back = SS_BUF_INIT;
        ss_hdr o;
        size_t nbits = msg.len * 8, caught = 0;
        for (size_t bit = 0; bit < nbits; bit++) {
            msg.data[bit / 8] ^= (char)(1u << (bit % 8));
            int rc = ss_aead_open(k, msg.data, msg.len, &o, &back);
            msg.data[bit / 8] ^= (char)(1u << (bit % 8));
            if (rc == SS_ECRYPTO && back.len == 0)
                caught++;
            else
                fail_msg("bit %zu of %zu (byte %zu) flipped: rc %d", bit,
                         nbits, bit / 8, rc);
        }
        assert_int_equal(caught, nbits);
        /* and the untouched message still opens */
        assert_int_equal(ss_aead_open(k, msg.data, msg.len, &o, &back), 0);
        ss_buf_release(&msg);
        ss_buf_release(&back);
        ss_key_destroy(&k);
    }
}

static void test_wrong_key(void **state)
{
    (void)state;
    for (size_t a = 0; a < 2; a++) {
        ss_key *k = key_for(algs[a]);
        if (!k)
            continue;
        ss_key *k2 = key_for(algs[a]);
        ss_key *other = key_for(algs[1 - a]);
        ss_hdr h = sample_hdr();
        ss_buf msg = SS_BUF_INIT, back = SS_BUF_INIT;
        assert_int_equal(ss_aead_seal(k, &h, "secret", 6, &msg), 0);
        ss_hdr o;
        assert_int_equal(ss_aead_open(k2, msg.data, msg.len, &o, &back),
                         SS_ECRYPTO);
        if (other)
            assert_int_equal(
                ss_aead_open(other, msg.data, msg.len, &o, &back),
                SS_ECRYPTO);
        assert_int_equal(back.len, 0);
        ss_buf_release(&msg);
        ss_buf_release(&back);
        ss_key_destroy(&k);
        ss_key_destroy(&k2);
        ss_key_destroy(&other);
    }
}

static void test_truncated_and_extended(void **state)
{
    (void)state;
    ss_key *k = key_for(SS_AEAD_XCHACHA20POLY1305);
    ss_hdr h = sample_hdr();
    ss_buf msg = SS_BUF_INIT, back = SS_BUF_INIT;
    assert_int_equal(ss_aead_seal(k, &h, "0123456789", 10, &msg), 0);
    ss_hdr o;
    for (size_t n = 0; n < msg.len; n++)
        assert_int_equal(ss_aead_open(k, msg.data, n, &o, &back),
                         SS_ECRYPTO);
    /* a byte added at the end, with or without fixing len */
    ss_buf_append(&msg, "!", 1);
    assert_int_equal(ss_aead_open(k, msg.data, msg.len, &o, &back),
                     SS_ECRYPTO);
    uint8_t *p = (uint8_t *)msg.data;
    ss_put_u32(p + 28, ss_get_u32(p + 28) + 1);
    assert_int_equal(ss_aead_open(k, msg.data, msg.len, &o, &back),
                     SS_ECRYPTO);
    /* truncated tag with len fixed to match */
    ss_put_u32(p + 28, ss_get_u32(p + 28) - 2);
    assert_int_equal(ss_aead_open(k, msg.data, msg.len - 2, &o, &back),
                     SS_ECRYPTO);
    assert_int_equal(ss_aead_open(k, NULL, 0, &o, &back), SS_ECRYPTO);
    assert_int_equal(back.len, 0);
    ss_buf_release(&msg);
    ss_buf_release(&back);
    ss_key_destroy(&k);
}

/* A payload moved under another header (lineage) does not open. */
static void test_lineage_swap(void **state)
{
    (void)state;
    ss_key *k = key_for(SS_AEAD_XCHACHA20POLY1305);
    ss_hdr h1 = sample_hdr(), h2 = sample_hdr();
    h2.seq = 78;
    ss_buf m1 = SS_BUF_INIT, m2 = SS_BUF_INIT, back = SS_BUF_INIT;
    assert_int_equal(ss_aead_seal(k, &h1, "aaaa", 4, &m1), 0);
    assert_int_equal(ss_aead_seal(k, &h2, "bbbb", 4, &m2), 0);
    memcpy(m1.data, m2.data, SS_HDR_SIZE);
    ss_hdr o;
    assert_int_equal(ss_aead_open(k, m1.data, m1.len, &o, &back),
                     SS_ECRYPTO);
    /* a plaintext message (flag clear) is refused by open */
    ss_buf plain = SS_BUF_INIT;
    ss_hdr hp = sample_hdr();
    hp.len = 4;
    uint8_t raw[SS_HDR_SIZE];
    ss_hdr_encode(&hp, raw);
    ss_buf_append(&plain, raw, sizeof raw);
    ss_buf_append(&plain, "cccc", 4);
    assert_int_equal(ss_aead_open(k, plain.data, plain.len, &o, &back),
                     SS_ECRYPTO);
    ss_buf_release(&m1);
    ss_buf_release(&m2);
    ss_buf_release(&plain);
    ss_buf_release(&back);
    ss_key_destroy(&k);
}

static void test_seal_to_bounds(void **state)
{
    (void)state;
    ss_key *k = key_for(SS_AEAD_XCHACHA20POLY1305);
    uint8_t buf[256];
    size_t len;
    ss_hdr h = sample_hdr();
    assert_int_equal(ss_aead_seal_to(k, &h, "abc", 3, buf,
                                     SS_HDR_SIZE + 3 + 39, &len),
                     SS_EINVAL);
    assert_false(h.flags & SS_BF_ENCRYPTED); /* unchanged on error */
    assert_int_equal(ss_aead_seal_to(k, &h, "abc", 3, buf, sizeof buf,
                                     &len), 0);
    assert_int_equal(len, SS_HDR_SIZE + 3 + 40);
    ss_hdr o;
    uint8_t pt[8];
    size_t ptlen;
    assert_int_equal(ss_aead_open_to(k, buf, len, &o, pt, 2, &ptlen),
                     SS_EINVAL);
    assert_int_equal(ss_aead_open_to(k, buf, len, &o, pt, 8, &ptlen), 0);
    assert_int_equal(ptlen, 3);
    assert_memory_equal(pt, "abc", 3);
    assert_int_equal(ss_aead_seal(k, &h, buf, SS_BATCH_MAX_SIZE, NULL),
                     SS_ETOOBIG);
    ss_key_destroy(&k);
}

static void test_key_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/ss_test_aead_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char kd[256], path[300], err[256];
    snprintf(kd, sizeof kd, "%s/keys", dir);
    assert_int_equal(ss_keys_create_dir(kd, SS_AEAD_AUTO, NULL, 0, 0, err,
                                        sizeof err), 0);
    /* exists already: refused without force */
    assert_int_not_equal(ss_keys_create_dir(kd, SS_AEAD_AUTO, NULL, 0, 0,
                                            err, sizeof err), 0);
    struct stat st;
    snprintf(path, sizeof path, "%s/data.key", kd);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    ss_key *k = NULL;
    assert_int_equal(ss_keys_load_data(kd, &k, err, sizeof err), 0);
    int want = crypto_aead_aes256gcm_is_available()
                   ? SS_AEAD_AES256GCM
                   : SS_AEAD_XCHACHA20POLY1305;
    assert_int_equal(ss_key_alg(k), want);
    /* a message sealed with the loaded key opens with a second load */
    ss_hdr h = sample_hdr();
    ss_buf m = SS_BUF_INIT, back = SS_BUF_INIT;
    assert_int_equal(ss_aead_seal(k, &h, "x", 1, &m), 0);
    ss_key *k2 = NULL;
    assert_int_equal(ss_keys_load_data(kd, &k2, err, sizeof err), 0);
    ss_hdr o;
    assert_int_equal(ss_aead_open(k2, m.data, m.len, &o, &back), 0);
    /* readable by others: refused */
    chmod(path, 0644);
    ss_key *k3 = NULL;
    assert_int_equal(ss_keys_load_data(kd, &k3, err, sizeof err),
                     SS_EDENIED);
    assert_non_null(strstr(err, "chmod 600"));
    chmod(path, 0600);
    /* unknown algorithm id: refused */
    FILE *f = fopen(path, "r+b");
    fseek(f, 8, SEEK_SET);
    fputc(7, f);
    fclose(f);
    assert_int_equal(ss_keys_load_data(kd, &k3, err, sizeof err),
                     SS_EINVAL);
    assert_non_null(strstr(err, "algorithm"));
    assert_null(k3);
    /* platform and CURVE keys */
    uint8_t pk[32], *sk = sodium_malloc(64);
    assert_int_equal(ss_keys_load_platform_pk(kd, pk, err, sizeof err), 0);
    assert_int_equal(ss_keys_load_platform_sk(kd, sk, err, sizeof err), 0);
    assert_memory_equal(sk + 32, pk, 32); /* ed25519 sk embeds pk */
    sodium_free(sk);
    char pub[41], sec[41];
    assert_int_equal(
        ss_keys_load_curve(kd, "server", pub, sec, err, sizeof err), 0);
    assert_int_equal(strlen(pub), 40);
    assert_int_equal(strlen(sec), 40);
    assert_int_equal(
        ss_keys_load_curve(kd, "nobody", pub, NULL, err, sizeof err),
        SS_ENOTFOUND);
    ss_buf_release(&m);
    ss_buf_release(&back);
    ss_key_destroy(&k);
    ss_key_destroy(&k2);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_every_bit_flip),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_truncated_and_extended),
        cmocka_unit_test(test_lineage_swap),
        cmocka_unit_test(test_seal_to_bounds),
        cmocka_unit_test(test_key_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
