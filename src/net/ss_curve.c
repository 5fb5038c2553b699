/*
 * ss_curve.c - CurveZMQ keys on sockets and the routers' ZAP handler
 * (ss_curve.h).
 */
#include "net/ss_curve.h"
#include "core/ss_log.h"
#include "crypto/ss_keys.h"
#include "securestreams.h"

#include <dirent.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"

/* See ss_curve.h. */
void ss_curve_wipe(ss_curve *c) { sodium_memzero(c, sizeof *c); }

/* Adds every curve-*.pub of dir to c's allow list. */
static int load_allow(ss_curve *c, const char *dir, char *err,
                      size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "cannot read key directory %s", dir);
        return SS_EIO;
    }
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n <= 10 || strncmp(e->d_name, "curve-", 6) != 0 ||
            strcmp(e->d_name + n - 4, ".pub") != 0)
            continue;
        if (c->nallow == SS_CURVE_ALLOW_MAX) {
            snprintf(err, errlen, "more than %d CURVE keys in %s",
                     SS_CURVE_ALLOW_MAX, dir);
            rc = SS_EINVAL;
            break;
        }
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(n - 10), e->d_name + 6);
        rc = ss_keys_load_curve(dir, name, c->allow[c->nallow], NULL, err,
                                errlen);
        if (!rc)
            c->nallow++;
    }
    closedir(d);
    return rc;
}

/* See ss_curve.h. */
int ss_curve_load(ss_curve *c, const char *dir, int server, char *err,
                  size_t errlen)
{
    return ss_curve_load_pair(c, dir, server ? "server" : "client", server,
                              err, errlen);
}

/* See ss_curve.h. */
int ss_curve_load_pair(ss_curve *c, const char *dir, const char *name,
                       int server, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->is_server = server;
    int rc = ss_keys_load_curve(dir, name, c->pub, c->sec, err, errlen);
    if (!rc && !server)
        rc = ss_keys_load_curve(dir, "server", c->server, NULL, err,
                                errlen);
    if (!rc && server)
        rc = load_allow(c, dir, err, errlen);
    if (rc)
        ss_curve_wipe(c);
    return rc;
}

/* See ss_curve.h. */
int ss_curve_client(ss_curve *c, const char *pub, const char *sec,
                    const char *server)
{
    memset(c, 0, sizeof *c);
    if (strlen(pub) != 40 || strlen(sec) != 40 || strlen(server) != 40)
        return SS_EINVAL;
    memcpy(c->pub, pub, 41);
    memcpy(c->sec, sec, 41);
    memcpy(c->server, server, 41);
    return 0;
}

/* See ss_curve.h. */
int ss_curve_server(ss_curve *c, const char *pub, const char *sec)
{
    memset(c, 0, sizeof *c);
    if (strlen(pub) != 40 || strlen(sec) != 40)
        return SS_EINVAL;
    memcpy(c->pub, pub, 41);
    memcpy(c->sec, sec, 41);
    c->is_server = 1;
    return 0;
}

/* See ss_curve.h. */
int ss_curve_apply(void *sock, const ss_curve *c)
{
    int rc = 0;
    if (c->is_server) {
        int one = 1;
        rc |= zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, SS_CURVE_DOMAIN,
                             strlen(SS_CURVE_DOMAIN));
        rc |= zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one);
    } else {
        rc |= zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, c->server, 41);
        rc |= zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, c->pub, 41);
    }
    rc |= zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, c->sec, 41);
    return rc ? SS_EIO : 0;
}

struct ss_zap {
    void *sock;
    pthread_t th;
    atomic_int stop;
    atomic_ulong refused;
    size_t nallow;
    uint8_t (*allow)[32]; /* malloc'd, nallow keys */
    char (*names)[64];    /* NULL, or the user id of each key */
};

/* Index + 1 of key in the allow list, or 0. */
static size_t allowed(const ss_zap *z, const void *key, size_t n)
{
    if (n != 32)
        return 0;
    for (size_t i = 0; i < z->nallow; i++)
        if (sodium_memcmp(z->allow[i], key, 32) == 0)
            return i + 1;
    return 0;
}

/* Serves ZAP requests (RFC 27): version, request id, domain, address,
 * identity, mechanism, credentials... -> version, request id, status
 * code, status text, user id, metadata. */
static void *zap_main(void *arg)
{
    ss_zap *z = arg;
    while (!atomic_load(&z->stop)) {
        zmq_msg_t part[8];
        size_t n = 0;
        int more = 1, bad = 0;
        while (more) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, z->sock, 0) < 0) {
                zmq_msg_close(&m);
                bad = -1;
                break;
            }
            more = zmq_msg_more(&m);
            if (n < 8)
                part[n++] = m;
            else {
                zmq_msg_close(&m);
                bad = 1;
            }
        }
        if (bad < 0) { /* timeout (to look at stop) or shutdown */
            for (size_t i = 0; i < n; i++)
                zmq_msg_close(&part[i]);
            continue;
        }
        size_t who = 0;
        int ok = !bad && n >= 7 && zmq_msg_size(&part[5]) == 5 &&
                 memcmp(zmq_msg_data(&part[5]), "CURVE", 5) == 0 &&
                 (who = allowed(z, zmq_msg_data(&part[6]),
                                zmq_msg_size(&part[6]))) != 0;
        if (!ok) {
            unsigned long k = atomic_fetch_add(&z->refused, 1) + 1;
            if (k <= 5)
                ss_warn("refused a connection without the pipeline's "
                        "CURVE key (from %.*s)",
                        n >= 4 ? (int)zmq_msg_size(&part[3]) : 1,
                        n >= 4 ? (const char *)zmq_msg_data(&part[3]) : "?");
        }
        const char *code = ok ? "200" : "400";
        const char *text = ok ? "OK" : "not a key of this pipeline";
        zmq_send(z->sock, "1.0", 3, ZMQ_SNDMORE);
        if (n >= 2)
            zmq_send(z->sock, zmq_msg_data(&part[1]), zmq_msg_size(&part[1]),
                     ZMQ_SNDMORE);
        else
            zmq_send(z->sock, "", 0, ZMQ_SNDMORE);
        zmq_send(z->sock, code, 3, ZMQ_SNDMORE);
        zmq_send(z->sock, text, strlen(text), ZMQ_SNDMORE);
        const char *uid = !ok ? "" : z->names ? z->names[who - 1] : "peer";
        zmq_send(z->sock, uid, strlen(uid), ZMQ_SNDMORE);
        zmq_send(z->sock, "", 0, 0);
        for (size_t i = 0; i < n; i++)
            zmq_msg_close(&part[i]);
    }
    return NULL;
}

/* See ss_curve.h. */
int ss_zap_start_named(void *zctx, const char *const *z85,
                       const char *const *names, size_t n, ss_zap **out,
                       char *err, size_t errlen)
{
    *out = NULL;
    ss_zap *z = calloc(1, sizeof *z);
    if (!z || !(z->allow = calloc(n ? n : 1, sizeof *z->allow)) ||
        (names && !(z->names = calloc(n ? n : 1, sizeof *z->names)))) {
        if (z)
            free(z->allow);
        free(z);
        return SS_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        if (z85[i] && strlen(z85[i]) == 40 &&
            zmq_z85_decode(z->allow[z->nallow], z85[i])) {
            if (names)
                snprintf(z->names[z->nallow], sizeof z->names[0], "%s",
                         names[i] ? names[i] : "");
            z->nallow++;
        }
    z->sock = zmq_socket(zctx, ZMQ_REP);
    int tmo = 100, linger = 0;
    if (!z->sock ||
        zmq_setsockopt(z->sock, ZMQ_RCVTIMEO, &tmo, sizeof tmo) ||
        zmq_setsockopt(z->sock, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_bind(z->sock, ZAP_ENDPOINT)) {
        snprintf(err, errlen, "cannot start the ZAP handler: %s",
                 zmq_strerror(zmq_errno()));
        if (z->sock)
            zmq_close(z->sock);
        free(z->allow);
        free(z->names);
        free(z);
        return SS_EIO;
    }
    if (pthread_create(&z->th, NULL, zap_main, z) != 0) {
        zmq_close(z->sock);
        free(z->allow);
        free(z->names);
        free(z);
        snprintf(err, errlen, "cannot start the ZAP handler thread");
        return SS_EIO;
    }
    *out = z;
    return 0;
}

/* See ss_curve.h. */
int ss_zap_start_keys(void *zctx, const char *const *z85, size_t n,
                      ss_zap **out, char *err, size_t errlen)
{
    return ss_zap_start_named(zctx, z85, NULL, n, out, err, errlen);
}

/* See ss_curve.h. */
int ss_zap_start(void *zctx, const ss_curve *c, ss_zap **out, char *err,
                 size_t errlen)
{
    const char *keys[SS_CURVE_ALLOW_MAX];
    for (size_t i = 0; i < c->nallow; i++)
        keys[i] = c->allow[i];
    return ss_zap_start_keys(zctx, keys, c->nallow, out, err, errlen);
}

/* See ss_curve.h. */
unsigned long ss_zap_refused(const ss_zap *z)
{
    return z ? atomic_load((atomic_ulong *)&z->refused) : 0;
}

/* See ss_curve.h. */
void ss_zap_stop(ss_zap **p)
{
    if (!p || !*p)
        return;
    ss_zap *z = *p;
    atomic_store(&z->stop, 1);
    pthread_join(z->th, NULL);
    zmq_close(z->sock);
    sodium_memzero(z->allow, z->nallow * sizeof *z->allow);
    free(z->allow);
    free(z->names);
    free(z);
    *p = NULL;
}

/* See ss_curve.h. */
int ss_curve_serve_auth(void *zctx, void *sock, const ss_curve_auth *a,
                        ss_zap **zap, char *err, size_t errlen)
{
    ss_curve c;
    *zap = NULL;
    if (!a || !a->pub || !a->sec || ss_curve_server(&c, a->pub, a->sec)) {
        snprintf(err, errlen, "no usable CURVE server pair");
        return SS_EINVAL;
    }
    /* the ZAP handler first: no connection is admitted without it */
    int rc = ss_zap_start_named(zctx, a->allow, a->names, a->nallow, zap,
                                err, errlen);
    if (!rc && ss_curve_apply(sock, &c) != 0) {
        snprintf(err, errlen, "cannot set CURVE on the socket: %s",
                 zmq_strerror(zmq_errno()));
        ss_zap_stop(zap);
        rc = SS_EIO;
    }
    ss_curve_wipe(&c);
    return rc;
}
