/*
 * ss_aead.h - sealing and opening one wire message with the data key.
 *
 * A sealed message is the 72-byte header followed by
 *
 *     nonce || ciphertext || tag
 *
 * with nonce 12 bytes (AES-256-GCM) or 24 bytes (XChaCha20-Poly1305), both
 * drawn at random for every message, and a 16-byte tag. The algorithm is
 * that of the key (data.key records it).
 *
 * Associated data: all 72 header bytes exactly as they are sent, i.e.
 * after sealing has set SS_BF_ENCRYPTED in flags and len to the sealed
 * length (nonce + plaintext + tag). So the magic, version, kind, every
 * flag, the lineage (stream, part, seq), count, len, first_row and aux are
 * all authenticated: a router forwarding a sealed message must not change
 * any header byte, and cannot move a payload to another lineage or lie
 * about its count. The header itself stays readable (it is not secret):
 * kind, lineage, event count and sizes are visible to whoever carries the
 * message.
 *
 * Random nonces: with AES-GCM (96-bit nonces) one data key must not seal
 * more than 2^32 messages (NIST SP 800-38D); at 64 KiB per batch that is
 * 256 TiB. XChaCha20's 192-bit nonces have no practical bound. Rotate the
 * key (sstream keygen) well before.
 */
#ifndef SS_AEAD_H
#define SS_AEAD_H

#include "core/ss_buf.h"
#include "crypto/ss_keys.h"
#include "wire/ss_batch.h"

#include <stddef.h>

#define SS_AEAD_TAG_BYTES 16
#define SS_AEAD_MAX_NONCE_BYTES 24

/* Bytes a sealed payload adds to the plaintext for key k (nonce + tag). */
size_t ss_aead_overhead(const ss_key *k);

/* Seals pt[0..n) under k with h as the header: sets SS_BF_ENCRYPTED in
 * h->flags and h->len to n + ss_aead_overhead(k), then APPENDS the encoded
 * header and the sealed payload to out (out->len grows by SS_HDR_SIZE +
 * h->len). pt may not overlap out. The caller keeps ownership of
 * everything. Returns 0, SS_ETOOBIG (sealed length over
 * SS_BATCH_MAX_SIZE) or SS_ENOMEM; on error out and *h are unchanged. */
int ss_aead_seal(const ss_key *k, ss_hdr *h, const void *pt, size_t n,
                 ss_buf *out);

/* Same, into a caller-provided buffer dst of cap bytes (which must hold
 * SS_HDR_SIZE + n + overhead): for writing straight into shared memory.
 * *outlen gets the message length. Returns 0, SS_ETOOBIG or SS_EINVAL
 * (cap too small). */
int ss_aead_seal_to(const ss_key *k, ss_hdr *h, const void *pt, size_t n,
                    void *dst, size_t cap, size_t *outlen);

/* Opens a sealed message msg[0..n) (header + sealed payload). On success
 * *h holds the header as the plaintext's: SS_BF_ENCRYPTED cleared and len
 * the plaintext length (every other field as sent), and the plaintext is
 * APPENDED to pt. Returns 0, SS_ECRYPTO on anything that does not verify
 * (malformed or truncated header, flag missing, payload shorter than the
 * overhead, wrong key, any modified bit), or SS_ENOMEM. On error pt is
 * unchanged (nothing unauthenticated is ever left in it) and *h is
 * unspecified. msg may be untrusted. */
int ss_aead_open(const ss_key *k, const void *msg, size_t n, ss_hdr *h,
                 ss_buf *pt);

/* Same, into a caller-provided buffer of cap bytes (at least the sealed
 * length minus the overhead); *ptlen gets the plaintext length. On error
 * nothing unauthenticated is left in the buffer (what was written is
 * zeroed). Returns SS_EINVAL if cap is too small. */
int ss_aead_open_to(const ss_key *k, const void *msg, size_t n, ss_hdr *h,
                    void *dst, size_t cap, size_t *ptlen);

#endif
