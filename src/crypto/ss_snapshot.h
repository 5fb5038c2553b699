/*
 * ss_snapshot.h - the sealed form of a stage's checkpointed state: what a
 * host stores for a worker at a barrier and gives back at a restore.
 *
 * A snapshot blob binds the state (ss_stage_snapshot's bytes, opaque
 * here) to the run, the checkpoint epoch, the stage and the worker it
 * belongs to:
 *
 * | offset | size | field |
 * |---:|---:|---|
 * | 0 | 4 | magic `SSSN` |
 * | 4 | 1 | version, 1 |
 * | 5 | 1 | protection: 0 plain (checksum only), 1 AES-256-GCM, 2 XChaCha20-Poly1305 (the data key's algorithm, ss_keys.h) |
 * | 6 | 1 | ls: length of the stage name, 1..63 |
 * | 7 | 1 | lw: length of the worker name, 1..63 |
 * | 8 | 8 | run id |
 * | 16 | 4 | epoch |
 * | 20 | 4 | reserved, 0 |
 * | 24 | 8 | plaintext length |
 * | 32 | ls | stage name (no control characters) |
 * | 32+ls | lw | worker name |
 *
 * All integers little-endian. The header (32 + ls + lw bytes) is in
 * clear, and then:
 *
 *   sealed (a key given): nonce (12 or 24 bytes, random) || ciphertext
 *       || 16-byte tag, with the data key; the associated data is the
 *       whole header, so run, epoch, stage, worker and length cannot be
 *       changed without the blob failing to open.
 *   plain (no key: security plain, the unsafe baseline): the plaintext,
 *       then SHA-256(header || plaintext). This detects accidents (a
 *       truncated or corrupted file, a snapshot of another run, epoch or
 *       worker put in place by mistake), NOT attacks: whoever can write
 *       the file can rewrite header, state and checksum alike.
 *
 * Opening checks, in this order: the layout (SS_EPROTO), the protection
 * against what the caller expects (a plain blob where a key is given is
 * refused: no downgrade; a sealed blob without a key cannot be opened:
 * SS_EDENIED), authenticity or checksum (SS_ECRYPTO: modified, or sealed
 * with another key), and then, on authenticated fields only, that it is
 * the expected run, epoch, stage and worker (SS_EDENIED, naming what
 * differs: "a snapshot of epoch 3, not of epoch 5: an older snapshot
 * (rollback refused)").
 */
#ifndef SS_SNAPSHOT_H
#define SS_SNAPSHOT_H

#include "core/ss_buf.h"
#include "crypto/ss_keys.h"

#include <stddef.h>
#include <stdint.h>

#define SS_SNAPSHOT_VERSION 1
#define SS_SNAPSHOT_NAME_MAX 63
#define SS_SNAPSHOT_FIXED 32 /* header bytes before the names */
/* Largest plaintext sealed or opened: the stage's own bound
 * (SS_STAGE_SNAPSHOT_MAX), and what fits an enclave's channel. */
#define SS_SNAPSHOT_MAX_STATE ((size_t)64 << 20)

/* Whose state a blob holds. Strings are borrowed for the call. */
typedef struct ss_snapshot_id {
    uint64_t run;       /* the run id (0: none, by hand without --run) */
    uint32_t epoch;     /* the checkpoint epoch the state is the end of */
    const char *stage;  /* stage name, 1..63 bytes */
    const char *worker; /* worker name ("reduce-2"), 1..63 bytes */
} ss_snapshot_id;

/* The clear header of a blob, as ss_snapshot_peek reads it. */
typedef struct ss_snapshot_info {
    uint64_t run;
    uint32_t epoch;
    int protection; /* 0 plain, else the key's algorithm (ss_keys.h) */
    uint64_t length; /* plaintext length */
    char stage[SS_SNAPSHOT_NAME_MAX + 1];
    char worker[SS_SNAPSHOT_NAME_MAX + 1];
} ss_snapshot_info;

/* Seals pt[0..n) as the state of id: with the data key k, or, k NULL, in
 * the plain form (checksum only). APPENDS the blob to out. Returns 0, or
 * SS_EINVAL (a name empty, too long or with a control character: err
 * says which), SS_ETOOBIG (n over SS_SNAPSHOT_MAX_STATE), SS_ENOMEM; out
 * unchanged on error. The caller keeps ownership of everything. */
int ss_snapshot_seal(const ss_key *k, const ss_snapshot_id *id,
                     const void *pt, size_t n, ss_buf *out, char *err,
                     size_t errlen);

/* Opens blob[0..n) (untrusted) with k (NULL: plain), and checks that it
 * is the state of want (run, epoch, stage and worker all equal). On
 * success APPENDS the plaintext to pt and returns 0; on error pt is
 * unchanged (nothing unauthenticated is left in it) and err says what
 * differs or why: SS_EPROTO (not a snapshot, truncated, another
 * version), SS_ECRYPTO (does not authenticate: modified, sealed with
 * another key, or a bad checksum in the plain form), SS_EDENIED (another
 * run, epoch, stage or worker; a plain blob given to a sealed stage; a
 * sealed blob given without a key), SS_ENOMEM. */
int ss_snapshot_open(const ss_key *k, const void *blob, size_t n,
                     const ss_snapshot_id *want, ss_buf *pt, char *err,
                     size_t errlen);

/* Reads the clear header of blob[0..n) into *info, NOT authenticated
 * (for tools, logs and choosing a file; ss_snapshot_open decides).
 * Returns 0 or SS_EPROTO with the reason in err. */
int ss_snapshot_peek(const void *blob, size_t n, ss_snapshot_info *info,
                     char *err, size_t errlen);

#endif
