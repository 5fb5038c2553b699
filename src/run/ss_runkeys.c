/*
 * ss_runkeys.c - the per-component key folders of one run (see
 * ss_runkeys.h).
 */
#include "run/ss_runkeys.h"
#include "core/ss_util.h"
#include "crypto/ss_keys.h"
#include "securestreams.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define RK_NAME_MAX 64

typedef struct rk_comp {
    char name[RK_NAME_MAX];
    char pub[41];
    char *dir, *enclave_dir;
} rk_comp;

struct ss_runkeys {
    char *dir;   /* RUN/keys */
    char *from;  /* the pipeline's key folder, or NULL */
    rk_comp *c;
    size_t n, cap;
    /* pairs that stay here: pub text, secret in locked memory */
    char mon_pub[41], rt_pub[41], ks_pub[41];
    char *mon_sec, *rt_sec, *ks_sec; /* sodium_malloc'd, 41 bytes */
};

/* A fresh CURVE pair: pub (41) and sec (41, locked memory). */
static int make_pair(char pub[41], char *sec, char *err, size_t errlen)
{
    if (zmq_curve_keypair(pub, sec) != 0) {
        snprintf(err, errlen, "zmq_curve_keypair failed: %s",
                 zmq_strerror(zmq_errno()));
        return SS_EIO;
    }
    return 0;
}

/* Writes a Z85 key file (40 chars + newline). */
static int write_z85(const char *dir, const char *file, const char *key,
                     int secret, char *err, size_t errlen)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path)
        return SS_EINVAL;
    char *b = sodium_malloc(41);
    if (!b)
        return SS_ENOMEM;
    memcpy(b, key, 40);
    b[40] = '\n';
    int rc = ss_keys_write_file(path, b, 41, secret ? 0600 : 0644, 0, err,
                                errlen);
    sodium_free(b);
    return rc;
}

/* Copies a secret file of the pipeline's folder into dir (0600). */
static int copy_secret(const ss_runkeys *rk, const char *file,
                       const char *dir, char *err, size_t errlen)
{
    char src[PATH_MAX], dst[PATH_MAX];
    if (!rk->from) {
        snprintf(err, errlen, "no key folder to take %s from", file);
        return SS_EINVAL;
    }
    snprintf(src, sizeof src, "%s/%s", rk->from, file);
    snprintf(dst, sizeof dst, "%s/%s", dir, file);
    uint8_t *b = NULL;
    size_t n = 0;
    int rc = ss_keys_read_file(src, 4096, 1, &b, &n, err, errlen);
    if (!rc)
        rc = ss_keys_write_file(dst, b, n, 0600, 0, err, errlen);
    if (b)
        sodium_free(b);
    return rc;
}

/* See ss_runkeys.h. */
int ss_runkeys_new(const char *dir, const char *pipeline_keys,
                   ss_runkeys **out, char *err, size_t errlen)
{
    *out = NULL;
    if (sodium_init() < 0)
        return SS_ENOMEM;
    ss_runkeys *rk = calloc(1, sizeof *rk);
    if (!rk)
        return SS_ENOMEM;
    int rc = SS_ENOMEM;
    rk->dir = strdup(dir);
    rk->from = pipeline_keys ? strdup(pipeline_keys) : NULL;
    rk->mon_sec = sodium_malloc(41);
    rk->rt_sec = sodium_malloc(41);
    rk->ks_sec = sodium_malloc(41);
    if (!rk->dir || (pipeline_keys && !rk->from) || !rk->mon_sec ||
        !rk->rt_sec || !rk->ks_sec)
        goto fail;
    if (mkdir(dir, 0700) != 0) {
        snprintf(err, errlen, "cannot make the key folder %s: %s", dir,
                 strerror(errno));
        rc = SS_EIO;
        goto fail;
    }
    if ((rc = make_pair(rk->mon_pub, rk->mon_sec, err, errlen)) ||
        (rc = make_pair(rk->rt_pub, rk->rt_sec, err, errlen)) ||
        (rc = make_pair(rk->ks_pub, rk->ks_sec, err, errlen)))
        goto fail;
    *out = rk;
    return 0;
fail:
    if (rc == SS_ENOMEM)
        snprintf(err, errlen, "out of memory");
    ss_runkeys_destroy(&rk);
    return rc;
}

/* See ss_runkeys.h. */
void ss_runkeys_destroy(ss_runkeys **p)
{
    if (!p || !*p)
        return;
    ss_runkeys *rk = *p;
    for (size_t i = 0; i < rk->n; i++) {
        free(rk->c[i].dir);
        free(rk->c[i].enclave_dir);
    }
    free(rk->c);
    if (rk->mon_sec)
        sodium_free(rk->mon_sec);
    if (rk->rt_sec)
        sodium_free(rk->rt_sec);
    if (rk->ks_sec)
        sodium_free(rk->ks_sec);
    free(rk->dir);
    free(rk->from);
    free(rk);
    *p = NULL;
}

static rk_comp *find(const ss_runkeys *rk, const char *name)
{
    for (size_t i = 0; i < rk->n; i++)
        if (!strcmp(rk->c[i].name, name))
            return &rk->c[i];
    return NULL;
}


/* See ss_runkeys.h. */
const char *ss_runkeys_component(ss_runkeys *rk, const char *name,
                                 int flags, char *err, size_t errlen)
{
    if (!ss_name_safe(name, RK_NAME_MAX) || find(rk, name)) {
        snprintf(err, errlen, "bad or repeated component name '%s'", name);
        return NULL;
    }
    if (rk->n == rk->cap) {
        size_t cap = rk->cap ? 2 * rk->cap : 16;
        rk_comp *c = realloc(rk->c, cap * sizeof *c);
        if (!c) {
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        rk->c = c;
        rk->cap = cap;
    }
    rk_comp *c = &rk->c[rk->n];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    if (asprintf(&c->dir, "%s/%s", rk->dir, name) < 0) {
        c->dir = NULL;
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (mkdir(c->dir, 0700) != 0) {
        snprintf(err, errlen, "cannot make %s: %s", c->dir,
                 strerror(errno));
        free(c->dir);
        return NULL;
    }
    int rc;
    char *sec = sodium_malloc(41);
    if (!sec) {
        snprintf(err, errlen, "out of memory");
        rc = SS_ENOMEM;
    } else {
        /* its own pair: the data links' client key (not routers) and the
         * control channel's key (every component) */
        rc = make_pair(c->pub, sec, err, errlen);
        if (!rc)
            rc = write_z85(c->dir, "curve-client.pub", c->pub, 0, err,
                           errlen);
        if (!rc)
            rc = write_z85(c->dir, "curve-client.key", sec, 1, err, errlen);
        if (!rc)
            rc = write_z85(c->dir, "curve-server.pub", rk->rt_pub, 0, err,
                           errlen);
        if (!rc && (flags & SS_RK_ROUTER))
            rc = write_z85(c->dir, "curve-server.key", rk->rt_sec, 1, err,
                           errlen);
    }
    if (sec)
        sodium_free(sec);
    if (!rc)
        rc = write_z85(c->dir, "monitor.pub", rk->mon_pub, 0, err, errlen);
    if (!rc && (flags & SS_RK_KEYSERVICE))
        rc = write_z85(c->dir, "curve-keyservice.pub", rk->ks_pub, 0, err,
                       errlen);
    if (!rc && (flags & SS_RK_DATA))
        rc = copy_secret(rk, SS_KEYS_DATA, c->dir, err, errlen);
    if (rc) {
        free(c->dir);
        return NULL;
    }
    rk->n++;
    return c->dir;
}

/* See ss_runkeys.h. */
int ss_runkeys_admit(ss_runkeys *rk, const char *router, const char *peer,
                     char *err, size_t errlen)
{
    rk_comp *r = find(rk, router), *p = find(rk, peer);
    if (!r || !p) {
        snprintf(err, errlen, "no key folder for '%s'", r ? peer : router);
        return SS_EINVAL;
    }
    char file[RK_NAME_MAX + 16];
    snprintf(file, sizeof file, "curve-%s.pub", peer);
    return write_z85(r->dir, file, p->pub, 0, err, errlen);
}

/* See ss_runkeys.h. */
const char *ss_runkeys_enclave(ss_runkeys *rk, const char *name, char *err,
                               size_t errlen)
{
    rk_comp *c = find(rk, name);
    if (!c || c->enclave_dir) {
        snprintf(err, errlen, "no key folder for '%s'", name);
        return NULL;
    }
    if (asprintf(&c->enclave_dir, "%s/%s.enclave", rk->dir, name) < 0) {
        c->enclave_dir = NULL;
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int rc = 0;
    if (mkdir(c->enclave_dir, 0700) != 0) {
        snprintf(err, errlen, "cannot make %s: %s", c->enclave_dir,
                 strerror(errno));
        rc = SS_EIO;
    }
    if (!rc)
        rc = copy_secret(rk, SS_KEYS_PLATFORM_SK, c->enclave_dir, err,
                         errlen);
    if (rc) {
        free(c->enclave_dir);
        c->enclave_dir = NULL;
        return NULL;
    }
    return c->enclave_dir;
}

/* chown of dir and of every file in it (one level). */
static int chown_dir(const char *dir, uid_t uid, gid_t gid, char *err,
                     size_t errlen)
{
    static const char *const files[] = {
        "curve-client.key", "curve-client.pub", "curve-server.key",
        "curve-server.pub", "monitor.pub", "curve-keyservice.pub",
        SS_KEYS_DATA, SS_KEYS_PLATFORM_SK, NULL};
    char path[PATH_MAX];
    for (size_t i = 0; files[i]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (lchown(path, uid, gid) != 0 && errno != ENOENT)
            goto fail;
    }
    if (chown(dir, uid, gid) == 0)
        return 0;
    snprintf(path, sizeof path, "%s", dir);
fail:
    snprintf(err, errlen, "cannot give %s to uid %ld: %s", path, (long)uid,
             strerror(errno));
    return SS_EIO;
}

/* See ss_runkeys.h. */
int ss_runkeys_chown(ss_runkeys *rk, const char *name, int enclave,
                     uid_t uid, gid_t gid, char *err, size_t errlen)
{
    rk_comp *c = find(rk, name);
    const char *dir = c ? (enclave ? c->enclave_dir : c->dir) : NULL;
    if (!dir) {
        snprintf(err, errlen, "no key folder for '%s'", name);
        return SS_EINVAL;
    }
    return chown_dir(dir, uid, gid, err, errlen);
}

/* See ss_runkeys.h. */
const char *ss_runkeys_pub(const ss_runkeys *rk, const char *name)
{
    const rk_comp *c = find(rk, name);
    return c ? c->pub : NULL;
}

/* See ss_runkeys.h. */
const char *ss_runkeys_monitor_pub(const ss_runkeys *rk)
{
    return rk->mon_pub;
}
const char *ss_runkeys_monitor_sec(const ss_runkeys *rk)
{
    return rk->mon_sec;
}
const char *ss_runkeys_keyservice_pub(const ss_runkeys *rk)
{
    return rk->ks_pub;
}
const char *ss_runkeys_keyservice_sec(const ss_runkeys *rk)
{
    return rk->ks_sec;
}
