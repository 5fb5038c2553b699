/*
 * ss_aead.c - sealing and opening wire messages (see ss_aead.h).
 */
#include "crypto/ss_aead.h"
#include "securestreams.h"

#include <sodium.h>
#include <string.h>

/* Nonce length of the key's algorithm. */
static size_t nonce_len(const ss_key *k)
{
    return k->alg == SS_AEAD_AES256GCM
               ? crypto_aead_aes256gcm_NPUBBYTES
               : crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
}

/* See ss_aead.h. */
size_t ss_aead_overhead(const ss_key *k)
{
    return nonce_len(k) + SS_AEAD_TAG_BYTES;
}

/* See ss_aead.h. */
int ss_aead_seal_to(const ss_key *k, ss_hdr *h, const void *pt, size_t n,
                    void *dst, size_t cap, size_t *outlen)
{
    size_t nl = nonce_len(k);
    size_t over = nl + SS_AEAD_TAG_BYTES;
    if (n > SS_BATCH_MAX_SIZE - over)
        return SS_ETOOBIG;
    size_t total = SS_HDR_SIZE + n + over;
    if (cap < total)
        return SS_EINVAL;
    ss_hdr sh = *h;
    sh.flags |= SS_BF_ENCRYPTED;
    sh.len = (uint32_t)(n + over);
    uint8_t *out = dst;
    ss_hdr_encode(&sh, out);
    uint8_t *nonce = out + SS_HDR_SIZE;
    randombytes_buf(nonce, nl);
    unsigned long long clen = 0;
    if (k->alg == SS_AEAD_AES256GCM)
        crypto_aead_aes256gcm_encrypt_afternm(nonce + nl, &clen, pt, n, out,
                                              SS_HDR_SIZE, NULL, nonce,
                                              &k->aes);
    else
        crypto_aead_xchacha20poly1305_ietf_encrypt(nonce + nl, &clen, pt, n,
                                                   out, SS_HDR_SIZE, NULL,
                                                   nonce, k->key);
    *h = sh;
    *outlen = total;
    return 0;
}

/* See ss_aead.h. */
int ss_aead_seal(const ss_key *k, ss_hdr *h, const void *pt, size_t n,
                 ss_buf *out)
{
    size_t over = ss_aead_overhead(k);
    if (n > SS_BATCH_MAX_SIZE - over)
        return SS_ETOOBIG;
    size_t total = SS_HDR_SIZE + n + over;
    int rc = ss_buf_grow(out, total);
    if (rc)
        return rc;
    size_t len;
    rc = ss_aead_seal_to(k, h, pt, n, out->data + out->len, total, &len);
    if (rc)
        return rc;
    out->len += len;
    out->data[out->len] = '\0';
    return 0;
}

/* Checks the header of a sealed message; fills h and the payload view. */
static int check_sealed(const ss_key *k, const void *msg, size_t n,
                        ss_hdr *h)
{
    const char *why;
    if (!msg || ss_hdr_decode(msg, n, h, &why) != 0)
        return SS_ECRYPTO;
    if (!(h->flags & SS_BF_ENCRYPTED) || h->len < ss_aead_overhead(k))
        return SS_ECRYPTO;
    return 0;
}

/* Decrypts the checked message msg into dst (>= h->len - overhead). */
static int open_into(const ss_key *k, const uint8_t *msg, ss_hdr *h,
                     uint8_t *dst, size_t *ptlen)
{
    size_t nl = nonce_len(k);
    const uint8_t *nonce = msg + SS_HDR_SIZE;
    const uint8_t *ct = nonce + nl;
    unsigned long long clen = h->len - nl, mlen = 0;
    int r;
    if (k->alg == SS_AEAD_AES256GCM)
        r = crypto_aead_aes256gcm_decrypt_afternm(dst, &mlen, NULL, ct, clen,
                                                  msg, SS_HDR_SIZE, nonce,
                                                  &k->aes);
    else
        r = crypto_aead_xchacha20poly1305_ietf_decrypt(dst, &mlen, NULL, ct,
                                                       clen, msg,
                                                       SS_HDR_SIZE, nonce,
                                                       k->key);
    if (r != 0) {
        sodium_memzero(dst, clen - SS_AEAD_TAG_BYTES);
        return SS_ECRYPTO;
    }
    h->flags &= (uint16_t)~SS_BF_ENCRYPTED;
    h->len = (uint32_t)mlen;
    *ptlen = (size_t)mlen;
    return 0;
}

/* See ss_aead.h. */
int ss_aead_open(const ss_key *k, const void *msg, size_t n, ss_hdr *h,
                 ss_buf *pt)
{
    int rc = check_sealed(k, msg, n, h);
    if (rc)
        return rc;
    size_t max = h->len - ss_aead_overhead(k);
    rc = ss_buf_grow(pt, max);
    if (rc)
        return rc;
    size_t len;
    rc = open_into(k, msg, h, (uint8_t *)pt->data + pt->len, &len);
    if (rc)
        return rc;
    pt->len += len;
    pt->data[pt->len] = '\0';
    return 0;
}

/* See ss_aead.h. */
int ss_aead_open_to(const ss_key *k, const void *msg, size_t n, ss_hdr *h,
                    void *dst, size_t cap, size_t *ptlen)
{
    int rc = check_sealed(k, msg, n, h);
    if (rc) {
        sodium_memzero(dst, cap);
        return rc;
    }
    if (cap < h->len - ss_aead_overhead(k)) {
        sodium_memzero(dst, cap);
        return SS_EINVAL;
    }
    return open_into(k, msg, h, dst, ptlen);
}
