/*
 * ss_snapshot.c - sealed snapshots of a stage's state (see ss_snapshot.h).
 */
#include "crypto/ss_snapshot.h"
#include "crypto/ss_aead.h"
#include "securestreams.h"
#include "wire/ss_batch.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define HASH_BYTES crypto_hash_sha256_BYTES

/* 1 if s is a name a blob can carry: 1..63 bytes, no control char. */
static int name_ok(const char *s)
{
    if (!s)
        return 0;
    size_t n = strlen(s);
    if (n < 1 || n > SS_SNAPSHOT_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

static size_t nonce_len(int alg)
{
    return alg == SS_AEAD_AES256GCM
               ? crypto_aead_aes256gcm_NPUBBYTES
               : crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
}

static const char *protection_name(int p)
{
    return p == 0 ? "plain (checksum only)" : ss_aead_alg_name(p);
}

/* See ss_snapshot.h. */
int ss_snapshot_seal(const ss_key *k, const ss_snapshot_id *id,
                     const void *pt, size_t n, ss_buf *out, char *err,
                     size_t errlen)
{
    if (!name_ok(id->stage) || !name_ok(id->worker)) {
        snprintf(err, errlen, "snapshot: bad %s name (1 to %d bytes, no "
                 "control characters)", name_ok(id->stage) ? "worker"
                                                           : "stage",
                 SS_SNAPSHOT_NAME_MAX);
        return SS_EINVAL;
    }
    if (n > SS_SNAPSHOT_MAX_STATE) {
        snprintf(err, errlen, "snapshot of worker '%s': %zu bytes of state, "
                 "over the %zu MiB limit", id->worker, n,
                 SS_SNAPSHOT_MAX_STATE >> 20);
        return SS_ETOOBIG;
    }
    if (k && k->alg != SS_AEAD_AES256GCM &&
        k->alg != SS_AEAD_XCHACHA20POLY1305) {
        snprintf(err, errlen, "snapshot: unknown key algorithm %u",
                 (unsigned)k->alg);
        return SS_EINVAL;
    }
    size_t ls = strlen(id->stage), lw = strlen(id->worker);
    size_t hl = SS_SNAPSHOT_FIXED + ls + lw;
    size_t nl = k ? nonce_len((int)k->alg) : 0;
    size_t body = k ? nl + n + SS_AEAD_TAG_BYTES : n + HASH_BYTES;
    int rc = ss_buf_grow(out, hl + body);
    if (rc) {
        snprintf(err, errlen, "snapshot: out of memory");
        return rc;
    }
    uint8_t *h = (uint8_t *)out->data + out->len;
    memcpy(h, "SSSN", 4);
    h[4] = SS_SNAPSHOT_VERSION;
    h[5] = k ? (uint8_t)k->alg : 0;
    h[6] = (uint8_t)ls;
    h[7] = (uint8_t)lw;
    ss_put_u64(h + 8, id->run);
    ss_put_u32(h + 16, id->epoch);
    ss_put_u32(h + 20, 0);
    ss_put_u64(h + 24, (uint64_t)n);
    memcpy(h + SS_SNAPSHOT_FIXED, id->stage, ls);
    memcpy(h + SS_SNAPSHOT_FIXED + ls, id->worker, lw);
    uint8_t *p = h + hl;
    if (!k) {
        if (n)
            memcpy(p, pt, n);
        crypto_hash_sha256_state st;
        crypto_hash_sha256_init(&st);
        crypto_hash_sha256_update(&st, h, hl + n);
        crypto_hash_sha256_final(&st, p + n);
    } else {
        randombytes_buf(p, nl);
        unsigned long long clen = 0;
        if (k->alg == SS_AEAD_AES256GCM)
            crypto_aead_aes256gcm_encrypt_afternm(p + nl, &clen, pt, n, h,
                                                  hl, NULL, p, &k->aes);
        else
            crypto_aead_xchacha20poly1305_ietf_encrypt(p + nl, &clen, pt, n,
                                                       h, hl, NULL, p,
                                                       k->key);
    }
    out->len += hl + body;
    out->data[out->len] = '\0';
    return 0;
}

/* See ss_snapshot.h. */
int ss_snapshot_peek(const void *blob, size_t n, ss_snapshot_info *info,
                     char *err, size_t errlen)
{
    const uint8_t *h = blob;
    memset(info, 0, sizeof *info);
    if (!blob || n < SS_SNAPSHOT_FIXED || memcmp(h, "SSSN", 4) != 0) {
        snprintf(err, errlen, "not a snapshot (%s)",
                 n < SS_SNAPSHOT_FIXED ? "shorter than its header"
                                       : "no SSSN magic");
        return SS_EPROTO;
    }
    if (h[4] != SS_SNAPSHOT_VERSION) {
        snprintf(err, errlen, "snapshot of version %u, this program reads "
                 "version %d", h[4], SS_SNAPSHOT_VERSION);
        return SS_EPROTO;
    }
    if (h[5] != 0 && h[5] != SS_AEAD_AES256GCM &&
        h[5] != SS_AEAD_XCHACHA20POLY1305) {
        snprintf(err, errlen, "snapshot with unknown protection %u", h[5]);
        return SS_EPROTO;
    }
    size_t ls = h[6], lw = h[7];
    if (ls < 1 || ls > SS_SNAPSHOT_NAME_MAX || lw < 1 ||
        lw > SS_SNAPSHOT_NAME_MAX || ss_get_u32(h + 20) != 0) {
        snprintf(err, errlen, "not a snapshot (bad name lengths or "
                 "reserved bytes)");
        return SS_EPROTO;
    }
    size_t hl = SS_SNAPSHOT_FIXED + ls + lw;
    uint64_t len = ss_get_u64(h + 24);
    if (len > SS_SNAPSHOT_MAX_STATE) {
        snprintf(err, errlen, "snapshot announces %" PRIu64 " bytes of "
                 "state, over the %zu MiB limit", len,
                 SS_SNAPSHOT_MAX_STATE >> 20);
        return SS_EPROTO;
    }
    size_t body = h[5] ? nonce_len(h[5]) + (size_t)len + SS_AEAD_TAG_BYTES
                       : (size_t)len + HASH_BYTES;
    if (n != hl + body) {
        snprintf(err, errlen, "snapshot of %zu bytes, its header announces "
                 "%zu (%s)", n, hl + body,
                 n < hl + body ? "truncated" : "bytes appended");
        return SS_EPROTO;
    }
    info->run = ss_get_u64(h + 8);
    info->epoch = ss_get_u32(h + 16);
    info->protection = h[5];
    info->length = len;
    memcpy(info->stage, h + SS_SNAPSHOT_FIXED, ls);
    memcpy(info->worker, h + SS_SNAPSHOT_FIXED + ls, lw);
    info->stage[ls] = info->worker[lw] = '\0';
    if (!name_ok(info->stage) || !name_ok(info->worker)) {
        snprintf(err, errlen, "not a snapshot (a name with a control "
                 "character)");
        return SS_EPROTO;
    }
    return 0;
}

/* The identity checks, on authenticated fields. */
static int check_id(const ss_snapshot_info *in, const ss_snapshot_id *want,
                    char *err, size_t errlen)
{
    if (in->run != want->run) {
        snprintf(err, errlen, "snapshot of worker '%s' belongs to run "
                 "%016" PRIx64 ", not to this run %016" PRIx64 ": a "
                 "snapshot of another run", in->worker, in->run, want->run);
        return SS_EDENIED;
    }
    if (strcmp(in->stage, want->stage) != 0 ||
        strcmp(in->worker, want->worker) != 0) {
        snprintf(err, errlen, "snapshot holds the state of worker '%s' of "
                 "stage '%s', not of worker '%s' of stage '%s'", in->worker,
                 in->stage, want->worker, want->stage);
        return SS_EDENIED;
    }
    if (in->epoch != want->epoch) {
        snprintf(err, errlen, "snapshot of worker '%s' is of epoch %" PRIu32
                 ", not of epoch %" PRIu32 ": %s", in->worker, in->epoch,
                 want->epoch,
                 in->epoch < want->epoch
                     ? "an older snapshot (rollback refused)"
                     : "a snapshot of a later epoch than the one restored");
        return SS_EDENIED;
    }
    return 0;
}

/* See ss_snapshot.h. */
int ss_snapshot_open(const ss_key *k, const void *blob, size_t n,
                     const ss_snapshot_id *want, ss_buf *pt, char *err,
                     size_t errlen)
{
    ss_snapshot_info in;
    int rc = ss_snapshot_peek(blob, n, &in, err, errlen);
    if (rc)
        return rc;
    const uint8_t *h = blob;
    int want_prot = k ? (int)k->alg : 0;
    if (in.protection != want_prot) {
        snprintf(err, errlen, "snapshot of worker '%s' is %s, but this "
                 "stage %s", in.worker, protection_name(in.protection),
                 k ? "seals its snapshots with the data key (a plain one "
                     "is refused)"
                   : "has no data key to open it");
        return SS_EDENIED;
    }
    size_t hl = SS_SNAPSHOT_FIXED + h[6] + h[7];
    size_t len = (size_t)in.length;
    rc = ss_buf_grow(pt, len);
    if (rc) {
        snprintf(err, errlen, "snapshot: out of memory");
        return rc;
    }
    uint8_t *dst = (uint8_t *)pt->data + pt->len;
    const uint8_t *p = h + hl;
    if (!k) {
        uint8_t sum[HASH_BYTES];
        crypto_hash_sha256_state st;
        crypto_hash_sha256_init(&st);
        crypto_hash_sha256_update(&st, h, hl + len);
        crypto_hash_sha256_final(&st, sum);
        if (sodium_memcmp(sum, p + len, HASH_BYTES) != 0) {
            snprintf(err, errlen, "snapshot of worker '%s' is damaged: its "
                     "checksum does not match (plain snapshots detect "
                     "accidents, not attacks)", in.worker);
            return SS_ECRYPTO;
        }
        rc = check_id(&in, want, err, errlen);
        if (rc)
            return rc;
        if (len)
            memcpy(dst, p, len);
    } else {
        size_t nl = nonce_len((int)k->alg);
        unsigned long long mlen = 0;
        int r;
        if (k->alg == SS_AEAD_AES256GCM)
            r = crypto_aead_aes256gcm_decrypt_afternm(
                dst, &mlen, NULL, p + nl, len + SS_AEAD_TAG_BYTES, h, hl, p,
                &k->aes);
        else
            r = crypto_aead_xchacha20poly1305_ietf_decrypt(
                dst, &mlen, NULL, p + nl, len + SS_AEAD_TAG_BYTES, h, hl, p,
                k->key);
        if (r != 0 || mlen != len) {
            sodium_memzero(dst, len);
            snprintf(err, errlen, "snapshot of worker '%s' does not "
                     "authenticate (modified, or sealed with another key)",
                     in.worker);
            return SS_ECRYPTO;
        }
        rc = check_id(&in, want, err, errlen);
        if (rc) {
            sodium_memzero(dst, len);
            return rc;
        }
    }
    pt->len += len;
    pt->data[pt->len] = '\0';
    return 0;
}
