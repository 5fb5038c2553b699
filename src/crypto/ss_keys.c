/*
 * ss_keys.c - data keys, platform keys, CURVE keys and the key directory
 * (see ss_keys.h).
 */
#include "crypto/ss_keys.h"
#include "core/ss_util.h"
#include "securestreams.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define DATA_MAGIC "SSDATAK1"
#define PSK_MAGIC "SSPLATS1"
#define PPK_MAGIC "SSPLATP1"
#define MAGIC_LEN 8
#define DATA_FILE_LEN (MAGIC_LEN + 4 + SS_KEY_BYTES)
#define PSK_FILE_LEN (MAGIC_LEN + crypto_sign_SECRETKEYBYTES)
#define PPK_FILE_LEN (MAGIC_LEN + crypto_sign_PUBLICKEYBYTES)

/* See ss_keys.h. */
const char *ss_aead_alg_name(int alg)
{
    switch (alg) {
    case SS_AEAD_AES256GCM: return "aes256gcm";
    case SS_AEAD_XCHACHA20POLY1305: return "xchacha20poly1305";
    }
    return "unknown";
}

/* See ss_keys.h. */
int ss_aead_alg_parse(const char *name)
{
    if (!name || !strcmp(name, "auto"))
        return SS_AEAD_AUTO;
    if (!strcmp(name, "aes256gcm") || !strcmp(name, "aes-256-gcm"))
        return SS_AEAD_AES256GCM;
    if (!strcmp(name, "xchacha20poly1305") ||
        !strcmp(name, "xchacha20-poly1305"))
        return SS_AEAD_XCHACHA20POLY1305;
    return SS_EINVAL;
}

/* Allocates an empty key in locked memory and sets its algorithm. */
static int key_alloc(int alg, ss_key **out)
{
    if (sodium_init() < 0)
        return SS_ENOMEM;
    if (alg == SS_AEAD_AUTO)
        alg = crypto_aead_aes256gcm_is_available()
                  ? SS_AEAD_AES256GCM
                  : SS_AEAD_XCHACHA20POLY1305;
    if (alg != SS_AEAD_AES256GCM && alg != SS_AEAD_XCHACHA20POLY1305)
        return SS_EINVAL;
    if (alg == SS_AEAD_AES256GCM && !crypto_aead_aes256gcm_is_available())
        return SS_EINVAL;
    ss_key *k = sodium_malloc(sizeof *k);
    if (!k)
        return SS_ENOMEM;
    sodium_memzero(k, sizeof *k);
    k->alg = (uint32_t)alg;
    *out = k;
    return 0;
}

/* Precomputes the per-key state once the key bytes are in place. */
static void key_ready(ss_key *k)
{
    if (k->alg == SS_AEAD_AES256GCM)
        crypto_aead_aes256gcm_beforenm(&k->aes, k->key);
}

/* See ss_keys.h. */
int ss_key_generate(int alg, ss_key **out)
{
    ss_key *k;
    int rc = key_alloc(alg, &k);
    if (rc)
        return rc;
    randombytes_buf(k->key, sizeof k->key);
    key_ready(k);
    *out = k;
    return 0;
}

/* See ss_keys.h. */
int ss_key_import(const void *blob, size_t n, ss_key **out)
{
    const uint8_t *b = blob;
    if (n != SS_KEY_BLOB_BYTES || b[1] || b[2] || b[3] || b[0] == 0)
        return SS_EINVAL;
    ss_key *k;
    int rc = key_alloc(b[0], &k);
    if (rc)
        return rc;
    memcpy(k->key, b + 4, SS_KEY_BYTES);
    key_ready(k);
    *out = k;
    return 0;
}

/* See ss_keys.h. */
void ss_key_export(const ss_key *k, uint8_t out[SS_KEY_BLOB_BYTES])
{
    out[0] = (uint8_t)k->alg;
    out[1] = out[2] = out[3] = 0;
    memcpy(out + 4, k->key, SS_KEY_BYTES);
}

/* See ss_keys.h. */
int ss_key_alg(const ss_key *k) { return (int)k->alg; }

/* See ss_keys.h. */
void ss_key_destroy(ss_key **p)
{
    if (!p || !*p)
        return;
    sodium_free(*p); /* zeroes before freeing */
    *p = NULL;
}

/* See ss_keys.h. */
int ss_keys_write_file(const char *path, const void *p, size_t n, int mode,
                       int force, char *err, size_t errlen)
{
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW;
    flags |= force ? O_TRUNC : O_EXCL;
    int fd = open(path, flags, mode);
    if (fd < 0) {
        ss_errf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return SS_EIO;
    }
    if (fchmod(fd, (mode_t)mode) < 0)
        goto fail;
    if (ss_write_all(fd, p, n) < 0 || fsync(fd) < 0)
        goto fail;
    if (close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    return 0;
fail:
    ss_errf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    unlink(path);
    return SS_EIO;
}

/* See ss_keys.h. */
int ss_keys_read_file(const char *path, size_t max, int secret,
                      uint8_t **out, size_t *len, char *err, size_t errlen)
{
    if (sodium_init() < 0)
        return SS_ENOMEM;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        ss_errf(err, errlen, "cannot open %s: %s", path, strerror(e));
        return e == ENOENT ? SS_ENOTFOUND : SS_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        ss_errf(err, errlen, "%s is not a regular file", path);
        close(fd);
        return SS_EINVAL;
    }
    if (secret && (st.st_mode & 077)) {
        ss_errf(err, errlen,
               "%s holds a secret key but group/others may read it "
               "(mode %04o); run chmod 600 on it",
               path, (unsigned)(st.st_mode & 07777));
        close(fd);
        return SS_EDENIED;
    }
    if ((uint64_t)st.st_size > max) {
        ss_errf(err, errlen, "%s is too large to be a key file", path);
        close(fd);
        return SS_EINVAL;
    }
    uint8_t *buf = sodium_malloc(max + 1);
    if (!buf) {
        close(fd);
        return SS_ENOMEM;
    }
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, max + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            ss_errf(err, errlen, "cannot read %s: %s", path, strerror(errno));
            sodium_free(buf);
            close(fd);
            return SS_EIO;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max) {
            ss_errf(err, errlen, "%s is too large to be a key file", path);
            sodium_free(buf);
            close(fd);
            return SS_EINVAL;
        }
    }
    close(fd);
    *out = buf;
    *len = n;
    return 0;
}

/* See ss_keys.h. */
int ss_key_save(const ss_key *k, const char *path, int force, char *err,
                size_t errlen)
{
    uint8_t *b = sodium_malloc(DATA_FILE_LEN);
    if (!b)
        return SS_ENOMEM;
    memcpy(b, DATA_MAGIC, MAGIC_LEN);
    ss_key_export(k, b + MAGIC_LEN);
    int rc = ss_keys_write_file(path, b, DATA_FILE_LEN, 0600, force, err,
                                errlen);
    sodium_free(b);
    return rc;
}

/* See ss_keys.h. */
int ss_key_load(const char *path, ss_key **out, char *err, size_t errlen)
{
    uint8_t *b;
    size_t n;
    int rc = ss_keys_read_file(path, 256, 1, &b, &n, err, errlen);
    if (rc)
        return rc;
    if (n != DATA_FILE_LEN || memcmp(b, DATA_MAGIC, MAGIC_LEN) != 0) {
        ss_errf(err, errlen, "%s is not a SecureStreams data key", path);
        sodium_free(b);
        return SS_EINVAL;
    }
    int alg = b[MAGIC_LEN];
    rc = ss_key_import(b + MAGIC_LEN, SS_KEY_BLOB_BYTES, out);
    sodium_free(b);
    if (rc == SS_EINVAL) {
        if (alg == SS_AEAD_AES256GCM)
            ss_errf(err, errlen,
                   "%s: the key is for AES-256-GCM, which this CPU does "
                   "not support (create the keys with --alg "
                   "xchacha20poly1305)",
                   path);
        else
            ss_errf(err, errlen, "%s: unknown AEAD algorithm id %d", path,
                   alg);
    }
    return rc;
}

/* Formats dir/name into buf; SS_EINVAL if it does not fit. */
static int join(char *buf, size_t len, const char *dir, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= len ? SS_EINVAL : 0;
}

/* See ss_keys.h. */
int ss_keys_load_data(const char *dir, ss_key **out, char *err,
                      size_t errlen)
{
    char path[4096];
    if (join(path, sizeof path, dir, SS_KEYS_DATA))
        return SS_EINVAL;
    return ss_key_load(path, out, err, errlen);
}

/* See ss_keys.h. */
int ss_keys_load_platform_pk(const char *dir, uint8_t pk[32], char *err,
                             size_t errlen)
{
    char path[4096];
    if (join(path, sizeof path, dir, SS_KEYS_PLATFORM_PK))
        return SS_EINVAL;
    uint8_t *b;
    size_t n;
    int rc = ss_keys_read_file(path, 256, 0, &b, &n, err, errlen);
    if (rc)
        return rc;
    if (n != PPK_FILE_LEN || memcmp(b, PPK_MAGIC, MAGIC_LEN) != 0) {
        ss_errf(err, errlen, "%s is not a platform public key", path);
        sodium_free(b);
        return SS_EINVAL;
    }
    memcpy(pk, b + MAGIC_LEN, crypto_sign_PUBLICKEYBYTES);
    sodium_free(b);
    return 0;
}

/* See ss_keys.h. */
int ss_keys_load_platform_sk(const char *dir, uint8_t *sk, char *err,
                             size_t errlen)
{
    char path[4096];
    if (join(path, sizeof path, dir, SS_KEYS_PLATFORM_SK))
        return SS_EINVAL;
    uint8_t *b;
    size_t n;
    int rc = ss_keys_read_file(path, 256, 1, &b, &n, err, errlen);
    if (rc)
        return rc;
    if (n != PSK_FILE_LEN || memcmp(b, PSK_MAGIC, MAGIC_LEN) != 0) {
        ss_errf(err, errlen, "%s is not a platform signing key", path);
        sodium_free(b);
        return SS_EINVAL;
    }
    memcpy(sk, b + MAGIC_LEN, crypto_sign_SECRETKEYBYTES);
    sodium_free(b);
    return 0;
}

/* Reads one Z85 key (40 chars, optional trailing newline) from path. */
static int read_z85(const char *path, int secret, char out[41], char *err,
                    size_t errlen)
{
    uint8_t *b;
    size_t n;
    int rc = ss_keys_read_file(path, 128, secret, &b, &n, err, errlen);
    if (rc)
        return rc;
    while (n && (b[n - 1] == '\n' || b[n - 1] == '\r'))
        n--;
    uint8_t raw[32];
    if (n != 40) {
        rc = SS_EINVAL;
    } else {
        memcpy(out, b, 40);
        out[40] = '\0';
        rc = zmq_z85_decode(raw, out) ? 0 : SS_EINVAL;
        sodium_memzero(raw, sizeof raw);
    }
    sodium_free(b);
    if (rc) {
        sodium_memzero(out, 41);
        ss_errf(err, errlen, "%s is not a Z85 CURVE key", path);
    }
    return rc;
}

/* See ss_keys.h. */
int ss_keys_load_curve(const char *dir, const char *name, char pub[41],
                       char sec[41], char *err, size_t errlen)
{
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/curve-%s.pub", dir, name);
    if (n < 0 || (size_t)n >= sizeof path)
        return SS_EINVAL;
    int rc = read_z85(path, 0, pub, err, errlen);
    if (rc || !sec)
        return rc;
    snprintf(path, sizeof path, "%s/curve-%s.key", dir, name);
    return read_z85(path, 1, sec, err, errlen);
}


/* Creates curve-<name>.{pub,key} in dir. */
static int make_curve(const char *dir, const char *name, int force,
                      char *err, size_t errlen)
{
    char *sec = sodium_malloc(48);
    if (!sec)
        return SS_ENOMEM;
    char pub[48];
    int rc = SS_EIO;
    if (zmq_curve_keypair(pub, sec) != 0) {
        ss_errf(err, errlen, "zmq_curve_keypair failed: %s "
                            "(libzmq built without CURVE?)",
               zmq_strerror(zmq_errno()));
        goto out;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/curve-%s.key", dir, name);
    sec[40] = '\n';
    rc = ss_keys_write_file(path, sec, 41, 0600, force, err, errlen);
    if (rc)
        goto out;
    snprintf(path, sizeof path, "%s/curve-%s.pub", dir, name);
    pub[40] = '\n';
    rc = ss_keys_write_file(path, pub, 41, 0644, force, err, errlen);
out:
    sodium_free(sec);
    return rc;
}

/* See ss_keys.h. */
int ss_keys_create_dir(const char *dir, int alg, const char *const *curve,
                       size_t ncurve, int force, char *err, size_t errlen)
{
    static const char *const dflt[] = {"server", "client", "keyservice"};
    if (sodium_init() < 0)
        return SS_ENOMEM;
    if (strlen(dir) > 3000)
        return SS_EINVAL;
    if (!curve || !ncurve) {
        curve = dflt;
        ncurve = 3;
    }
    for (size_t i = 0; i < ncurve; i++)
        if (!ss_name_safe(curve[i], 65)) { /* up to 64 bytes */
            ss_errf(err, errlen, "bad CURVE key name '%s'", curve[i]);
            return SS_EINVAL;
        }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        ss_errf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return SS_EIO;
    }
    struct stat st;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        ss_errf(err, errlen, "%s is not a directory", dir);
        return SS_EINVAL;
    }
    char path[4096];

    /* The data key. */
    ss_key *k;
    int rc = ss_key_generate(alg, &k);
    if (rc) {
        ss_errf(err, errlen, "%s is not available on this CPU",
               ss_aead_alg_name(alg));
        return rc;
    }
    join(path, sizeof path, dir, SS_KEYS_DATA);
    rc = ss_key_save(k, path, force, err, errlen);
    ss_key_destroy(&k);
    if (rc)
        return rc;

    /* The platform signing pair. */
    uint8_t *sk = sodium_malloc(PSK_FILE_LEN);
    if (!sk)
        return SS_ENOMEM;
    uint8_t pk[PPK_FILE_LEN];
    memcpy(sk, PSK_MAGIC, MAGIC_LEN);
    memcpy(pk, PPK_MAGIC, MAGIC_LEN);
    crypto_sign_keypair(pk + MAGIC_LEN, sk + MAGIC_LEN);
    join(path, sizeof path, dir, SS_KEYS_PLATFORM_SK);
    rc = ss_keys_write_file(path, sk, PSK_FILE_LEN, 0600, force, err,
                            errlen);
    sodium_free(sk);
    if (rc)
        return rc;
    join(path, sizeof path, dir, SS_KEYS_PLATFORM_PK);
    rc = ss_keys_write_file(path, pk, PPK_FILE_LEN, 0644, force, err,
                            errlen);
    if (rc)
        return rc;

    for (size_t i = 0; i < ncurve; i++) {
        rc = make_curve(dir, curve[i], force, err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}
