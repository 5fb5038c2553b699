/*
 * ss_keys.h - key material of a pipeline and its key directory.
 *
 * `sstream keygen DIR` creates (DIR is mode 0700):
 *
 *   data.key           the data key: AEAD algorithm id + 32 key bytes
 *                      (mode 0600). Seals every batch (ss_aead.h).
 *   platform.key       ed25519 secret key (mode 0600) that signs the
 *                      sandbox backend's attestation reports; it stands
 *                      for the CPU's quoting key and is NOT hardware-rooted.
 *   platform.pub       its public key, given to the key service.
 *   curve-<name>.key   ZeroMQ CURVE secret key, Z85 text (mode 0600)
 *   curve-<name>.pub   ZeroMQ CURVE public key, Z85 text
 *                      (default names: "server" for routers, "client"
 *                      for the peers that connect to them, "keyservice"
 *                      for the key service).
 *
 * Binary formats (sizes fixed and checked exactly):
 *   data.key     "SSDATAK1" | alg (1) | 3 zero bytes | key (32)  = 44 bytes
 *   platform.key "SSPLATS1" | ed25519 secret key (64)             = 72 bytes
 *   platform.pub "SSPLATP1" | ed25519 public key (32)             = 40 bytes
 *
 * Secret files are refused if group or others may read them. Secret bytes
 * live in sodium_malloc'd memory (locked, guarded, zeroed on free) and are
 * never logged.
 */
#ifndef SS_KEYS_H
#define SS_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#define SS_KEY_BYTES 32
/* Exported form of a data key (alg, 3 zero bytes, key): what the key
 * service seals to an attested enclave. */
#define SS_KEY_BLOB_BYTES (4 + SS_KEY_BYTES)

#define SS_KEYS_DATA "data.key"
#define SS_KEYS_PLATFORM_SK "platform.key"
#define SS_KEYS_PLATFORM_PK "platform.pub"

/* AEAD algorithm ids, as stored in data.key. */
enum ss_aead_alg {
    SS_AEAD_AUTO = 0,              /* keygen: best available here */
    SS_AEAD_AES256GCM = 1,         /* 12-byte random nonce */
    SS_AEAD_XCHACHA20POLY1305 = 2, /* 24-byte random nonce */
};

/* A data key. Allocated with sodium_malloc (mlocked, guard pages);
 * fields are private to src/crypto. The AES-GCM state is precomputed. */
typedef struct ss_key {
    crypto_aead_aes256gcm_state aes; /* 16-byte aligned, first */
    uint8_t key[SS_KEY_BYTES];
    uint32_t alg;
    uint8_t pad[12]; /* keeps sizeof a multiple of 16 (sodium_malloc) */
} ss_key;

/* Name of an algorithm ("aes256gcm", "xchacha20poly1305") or "unknown".
 * ss_aead_alg_parse returns the id, or SS_EINVAL. */
const char *ss_aead_alg_name(int alg);
int ss_aead_alg_parse(const char *name);

/* Creates a fresh random key for alg (SS_AEAD_AUTO: AES-256-GCM if this
 * CPU has it, else XChaCha20-Poly1305). Returns 0 and *out (caller
 * destroys), SS_EINVAL (unknown alg, or AES-GCM unavailable here), or
 * SS_ENOMEM. Initializes libsodium if needed. */
int ss_key_generate(int alg, ss_key **out);

/* Builds a key from an exported blob (SS_KEY_BLOB_BYTES). Checks the alg
 * is known and usable on this CPU. Returns 0, SS_EINVAL or SS_ENOMEM. The
 * caller still owns (and should sodium_memzero) blob. */
int ss_key_import(const void *blob, size_t n, ss_key **out);

/* Writes k's blob to out. Handle with care: out is key material. */
void ss_key_export(const ss_key *k, uint8_t out[SS_KEY_BLOB_BYTES]);

/* The key's algorithm id. */
int ss_key_alg(const ss_key *k);

/* Zeroes and frees the key; sets *p to NULL. Safe on NULL and twice. */
void ss_key_destroy(ss_key **p);

/* Writes the key to path (created with O_EXCL unless force, mode 0600).
 * Returns 0, SS_EIO (errno kept) or SS_EINVAL; on error a one-line
 * reason naming the file goes to err. */
int ss_key_save(const ss_key *k, const char *path, int force, char *err,
                size_t errlen);

/* Reads a data key file. Refuses a file readable by group/others, a bad
 * size or magic, an unknown algorithm, or AES-GCM on a CPU without it.
 * Returns 0 and *out, or SS_ENOTFOUND / SS_EIO / SS_EINVAL / SS_EDENIED /
 * SS_ENOMEM with a reason in err. */
int ss_key_load(const char *path, ss_key **out, char *err, size_t errlen);

/* Convenience: ss_key_load(dir/data.key). */
int ss_keys_load_data(const char *dir, ss_key **out, char *err,
                      size_t errlen);

/* Creates the key directory: data key (alg), platform key pair, and a
 * CURVE pair for each of the ncurve names (NULL/0: "server", "client",
 * "keyservice").
 * Fails on an existing file unless force. Returns 0 or a negative code with
 * a reason in err. */
int ss_keys_create_dir(const char *dir, int alg, const char *const *curve,
                       size_t ncurve, int force, char *err, size_t errlen);

/* The platform signing key pair. sk must point to 64 bytes the caller
 * keeps in locked memory and zeroes after use. */
int ss_keys_load_platform_pk(const char *dir, uint8_t pk[32], char *err,
                             size_t errlen);
int ss_keys_load_platform_sk(const char *dir, uint8_t *sk, char *err,
                             size_t errlen);

/* Loads a CURVE pair as NUL-terminated Z85 text (40 chars + NUL), for
 * zmq_setsockopt(ZMQ_CURVE_PUBLICKEY/SECRETKEY). sec may be NULL to read
 * only the public key; otherwise the caller zeroes it after use. */
int ss_keys_load_curve(const char *dir, const char *name, char pub[41],
                       char sec[41], char *err, size_t errlen);

/* Reads a whole small file (<= max bytes) into sodium_malloc'd memory;
 * *out is freed with sodium_free. With secret set, refuses a file that
 * group/others can read. Shared by the key loaders. */
int ss_keys_read_file(const char *path, size_t max, int secret,
                      uint8_t **out, size_t *len, char *err, size_t errlen);

/* Writes n bytes to path with the given mode (O_EXCL unless force),
 * fsyncs it. Returns 0 or SS_EIO with a reason in err. */
int ss_keys_write_file(const char *path, const void *p, size_t n, int mode,
                       int force, char *err, size_t errlen);

#endif
