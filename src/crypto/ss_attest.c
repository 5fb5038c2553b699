/*
 * ss_attest.c - measurements and signed attestation reports (see
 * ss_attest.h).
 */
#include "crypto/ss_attest.h"
#include "core/ss_buf.h"
#include "core/ss_bundle.h"
#include "core/ss_util.h"
#include "securestreams.h"
#include "wire/ss_batch.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REPORT_MAGIC "SSRPT2\0\0"
#define REPORT_SIGNED 208
#define MEASURE_TAG "sstream-measurement-v1"

/* 1 if s is a non-empty name of [A-Za-z0-9._-] shorter than max. */
static int plain_name(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    if (n == 0 || n >= max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* See ss_attest.h. */
int ss_attest_config(char *buf, size_t len, const char *stage,
                     size_t mem_limit, uint64_t max_instructions,
                     const char *output, int encrypted, int echo)
{
    if (!stage || !plain_name(stage, SS_REPORT_NAME_MAX))
        return SS_EINVAL;
    if (output && strchr(output, '\n'))
        return SS_EINVAL;
    int has_out = output && *output;
    int n = snprintf(buf, len,
                     "sstream-enclave-config v1\nstage=%s\nmem_limit=%zu\n"
                     "max_instructions=%llu\n"
                     "encrypted=%d\nprocessor=%s\nsandboxed=1\n%s%s%s",
                     stage, mem_limit, (unsigned long long)max_instructions,
                     encrypted ? 1 : 0, echo ? "echo" : "stage",
                     has_out ? "output=" : "", has_out ? output : "",
                     has_out ? "\n" : "");
    if (n < 0 || (size_t)n >= len)
        return SS_EINVAL;
    return n;
}

/* Feeds a length-prefixed field into the hash. */
static void absorb(crypto_hash_sha256_state *st, const void *p, size_t n)
{
    uint8_t l[8];
    ss_put_u64(l, (uint64_t)n);
    crypto_hash_sha256_update(st, l, 8);
    if (n)
        crypto_hash_sha256_update(st, p, n);
}

/* A measurement's hash, before the program: its tag. */
static void measure_begin(crypto_hash_sha256_state *st)
{
    crypto_hash_sha256_init(st);
    crypto_hash_sha256_update(st, (const uint8_t *)MEASURE_TAG,
                              sizeof MEASURE_TAG);
}

/* A measurement's hash, after the program: the script and the config. */
static void measure_end(crypto_hash_sha256_state *st, const void *script,
                        size_t nscript, const char *config,
                        uint8_t out[SS_MEASUREMENT_BYTES])
{
    absorb(st, script, nscript);
    absorb(st, config, strlen(config));
    crypto_hash_sha256_final(st, out);
}

/* See ss_attest.h. */
void ss_measure(const void *program, size_t nprogram, const void *script,
                size_t nscript, const char *config,
                uint8_t out[SS_MEASUREMENT_BYTES])
{
    crypto_hash_sha256_state st;
    measure_begin(&st);
    absorb(&st, program, nprogram);
    measure_end(&st, script, nscript, config, out);
}

/* Feeds the file at path into the hash as absorb would its bytes (its
 * length, then its bytes), reading it 64 KiB at a time: a program of a
 * few MB read whole stayed in the heap of the worker (and of the
 * enclave) for its life. Returns 0, SS_ENOTFOUND, SS_EIO (also when the
 * file changed size while read), SS_ETOOBIG or SS_ENOMEM. */
static int absorb_file(crypto_hash_sha256_state *st, const char *path,
                       size_t max)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? SS_ENOTFOUND : SS_EIO;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return SS_EIO;
    }
    if ((uint64_t)sb.st_size > max) {
        close(fd);
        return SS_ETOOBIG;
    }
    enum { CHUNK = 64 * 1024 };
    uint8_t *b = malloc(CHUNK);
    if (!b) {
        close(fd);
        return SS_ENOMEM;
    }
    uint8_t l[8];
    ss_put_u64(l, (uint64_t)sb.st_size);
    crypto_hash_sha256_update(st, l, 8);
    uint64_t n = 0;
    int rc = 0;
    for (;;) {
        ssize_t r = read(fd, b, CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = SS_EIO;
            break;
        }
        if (r == 0)
            break;
        n += (uint64_t)r;
        if (n > (uint64_t)sb.st_size) {
            rc = SS_EIO; /* grew while read */
            break;
        }
        crypto_hash_sha256_update(st, b, (unsigned long long)r);
    }
    free(b);
    close(fd);
    if (!rc && n != (uint64_t)sb.st_size)
        rc = SS_EIO; /* shrank while read */
    return rc;
}

/* See ss_attest.h. */
int ss_measure_program(const char *program, const void *script,
                       size_t nscript, const char *config,
                       uint8_t out[SS_MEASUREMENT_BYTES])
{
    crypto_hash_sha256_state st;
    measure_begin(&st);
    int rc = absorb_file(&st, program, 1u << 30);
    if (rc) {
        sodium_memzero(&st, sizeof st);
        return rc;
    }
    measure_end(&st, script, nscript, config, out);
    return 0;
}

/* See ss_attest.h. */
int ss_measure_files(const char *program, const char *script,
                     const char *config, uint8_t out[SS_MEASUREMENT_BYTES],
                     char *err, size_t errlen)
{
    const char *stage = "";
    return ss_measure_chain_files(program, script ? &script : NULL,
                                  script ? &stage : NULL, script ? 1 : 0,
                                  config, out, err, errlen);
}

/* See ss_attest.h. */
int ss_measure_chain_files(const char *program, const char *const *scripts,
                           const char *const *stages, size_t n,
                           const char *config,
                           uint8_t out[SS_MEASUREMENT_BYTES], char *err,
                           size_t errlen)
{
    int rc = 0;
    ss_buf m;
    ss_buf_init(&m);
    ss_bundle **b = n ? calloc(n, sizeof *b) : NULL;
    if (n && !b)
        rc = SS_ENOMEM;
    /* each script with the local modules it requires, as the enclave
     * loads them (ss_bundle.h) */
    for (size_t k = 0; !rc && k < n; k++)
        rc = ss_bundle_load(scripts[k], &b[k], err, errlen);
    if (!rc && n &&
        ss_bundle_measured_chain((const ss_bundle *const *)b, stages, n, &m))
        rc = SS_ENOMEM;
    for (size_t k = 0; b && k < n; k++)
        ss_bundle_destroy(&b[k]);
    free(b);
    if (!rc) {
        rc = ss_measure_program(program, m.data, m.len, config, out);
        if (rc)
            snprintf(err, errlen, "cannot read enclave program %s: %s",
                     program, ss_strerror(rc));
    }
    ss_buf_release(&m);
    return rc;
}

/* See ss_attest.h. */
void ss_report_sign(const ss_report *r, const uint8_t *sk,
                    uint8_t out[SS_REPORT_BYTES])
{
    memset(out, 0, SS_REPORT_BYTES);
    memcpy(out, REPORT_MAGIC, 8);
    memcpy(out + 8, r->measurement, 32);
    memcpy(out + 40, r->pubkey, 32);
    memcpy(out + 72, r->stage, strnlen(r->stage, SS_REPORT_NAME_MAX - 1));
    memcpy(out + 136, r->name, strnlen(r->name, SS_REPORT_NAME_MAX - 1));
    for (int i = 0; i < 8; i++)
        out[200 + i] = (uint8_t)(r->run >> (8 * i));
    crypto_sign_detached(out + REPORT_SIGNED, NULL, out, REPORT_SIGNED, sk);
}

/* Copies a NUL-padded name field; 0 if it is not a plain name. */
static int get_name(const uint8_t *p, char out[SS_REPORT_NAME_MAX])
{
    memcpy(out, p, SS_REPORT_NAME_MAX);
    if (out[SS_REPORT_NAME_MAX - 1] != '\0')
        return 0;
    size_t n = strlen(out);
    for (size_t i = n; i < SS_REPORT_NAME_MAX; i++)
        if (out[i])
            return 0;
    return plain_name(out, SS_REPORT_NAME_MAX);
}

/* See ss_attest.h. */
int ss_report_verify(const void *buf, size_t n, const uint8_t pk[32],
                     ss_report *r)
{
    const uint8_t *b = buf;
    if (n != SS_REPORT_BYTES || memcmp(b, REPORT_MAGIC, 8) != 0)
        return SS_EPROTO;
    if (crypto_sign_verify_detached(b + REPORT_SIGNED, b, REPORT_SIGNED,
                                    pk) != 0)
        return SS_EDENIED;
    memcpy(r->measurement, b + 8, 32);
    memcpy(r->pubkey, b + 40, 32);
    if (!get_name(b + 72, r->stage) || !get_name(b + 136, r->name))
        return SS_EPROTO;
    r->run = 0;
    for (int i = 7; i >= 0; i--)
        r->run = (r->run << 8) | b[200 + i];
    return 0;
}

/* See ss_attest.h. */
void ss_measurement_hex(const uint8_t m[SS_MEASUREMENT_BYTES],
                        char out[2 * SS_MEASUREMENT_BYTES + 1])
{
    sodium_bin2hex(out, 2 * SS_MEASUREMENT_BYTES + 1, m,
                   SS_MEASUREMENT_BYTES);
}
