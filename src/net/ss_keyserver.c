/*
 * ss_keyserver.c - the key service's socket and its client (see
 * ss_keyserver.h).
 */
#include "net/ss_keyserver.h"
#include "core/ss_log.h"
#include "crypto/ss_keys.h"
#include "securestreams.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#define KS_REQ_MAGIC "SSKR1"
#define KS_REMOTE_TIMEOUT_MS 10000

/* See ss_keyserver.h. */
int ss_keyserver_serve(ss_keyservice *ks, const char *endpoint,
                       const ss_keyserver_auth *auth,
                       volatile sig_atomic_t *stop, char *err,
                       size_t errlen)
{
    if (!auth || !auth->pub || !auth->sec) {
        snprintf(err, errlen, "the key service needs its CURVE pair");
        return SS_EINVAL;
    }
    void *zctx = zmq_ctx_new();
    void *s = zctx ? zmq_socket(zctx, ZMQ_REP) : NULL;
    ss_zap *zap = NULL;
    int rc = 0;
    if (!s) {
        snprintf(err, errlen, "cannot make the key service's socket");
        rc = SS_ENOMEM;
        goto out;
    }
    if ((rc = ss_curve_serve_auth(zctx, s, auth, &zap, err, errlen)))
        goto out;
    if (zmq_bind(s, endpoint) != 0) {
        snprintf(err, errlen, "cannot bind %s: %s", endpoint,
                 zmq_strerror(zmq_errno()));
        rc = SS_EIO;
        goto out;
    }
    /* who may ask is decided by CURVE keys, not by the file mode: worker
     * hosts of another uid must be able to connect */
    if (strncmp(endpoint, "ipc://", 6) == 0)
        chmod(endpoint + 6, 0666);
    int tmo = 200, linger = 0;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    ss_info("key service: serving on %s under CURVE, %zu client key(s) "
            "admitted", endpoint, auth->nallow);
    ss_buf reply = SS_BUF_INIT;
    while (!*stop) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        int got = zmq_msg_recv(&m, s, 0);
        if (got < 0) {
            zmq_msg_close(&m);
            if (zmq_errno() == EAGAIN || zmq_errno() == EINTR)
                continue;
            snprintf(err, errlen, "receive failed: %s",
                     zmq_strerror(zmq_errno()));
            rc = SS_EIO;
            break;
        }
        const uint8_t *req = zmq_msg_data(&m);
        const char *peer = auth->names ? zmq_msg_gets(&m, "User-Id") : NULL;
        ss_buf_reset(&reply);
        char why[512] = "key service: malformed request";
        int r = SS_EPROTO;
        if (got == (int)(5 + SS_REPORT_BYTES) &&
            !memcmp(req, KS_REQ_MAGIC, 5)) {
            ss_buf_append(&reply, "OK", 2);
            r = ss_keyservice_request_as(ks, req + 5, SS_REPORT_BYTES,
                                         auth->names ? (peer ? peer : "")
                                                     : NULL,
                                         &reply, why, sizeof why);
        }
        zmq_msg_close(&m);
        if (r) {
            ss_buf_reset(&reply);
            ss_buf_append(&reply, "NO", 2);
            ss_buf_append(&reply, why, strlen(why));
        }
        zmq_send(s, reply.data, reply.len, 0);
        if (reply.data)
            sodium_memzero(reply.data, reply.len);
    }
    ss_buf_release(&reply);
out:
    if (s)
        zmq_close(s);
    ss_zap_stop(&zap);
    if (zctx)
        zmq_ctx_term(zctx);
    return rc;
}

/* See ss_keyserver.h. */
int ss_keyserver_auth_load(ss_curve *a_store, ss_keyserver_auth *a,
                           const char **allow_store, const char *dir,
                           char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    int rc = ss_curve_load_pair(a_store, dir, "keyservice", 1, err, errlen);
    if (rc)
        return rc;
    char routers[41] = "";
    if (ss_keys_load_curve(dir, "server", routers, NULL, NULL, 0) != 0)
        routers[0] = '\0';
    for (size_t i = 0; i < a_store->nallow; i++) {
        const char *k = a_store->allow[i];
        if (!strcmp(k, a_store->pub) || (routers[0] && !strcmp(k, routers)))
            continue;
        allow_store[a->nallow++] = k;
    }
    a->pub = a_store->pub;
    a->sec = a_store->sec;
    a->allow = allow_store;
    return 0;
}

/* See ss_keyserver.h. */
int ss_keyserver_client_load(ss_keyserver_client *c, const char *endpoint,
                             const char *keydir, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->endpoint = endpoint;
    char pub[41], srv[41];
    char *sec = sodium_malloc(41);
    if (!sec)
        return SS_ENOMEM;
    int rc = ss_keys_load_curve(keydir, "client", pub, sec, err, errlen);
    if (!rc)
        rc = ss_keys_load_curve(keydir, "keyservice", srv, NULL, err,
                                errlen);
    if (!rc)
        rc = ss_curve_client(&c->curve, pub, sec, srv);
    sodium_free(sec);
    return rc;
}

/* See ss_keyserver.h. */
int ss_keyserver_keyfn(void *ctx, const void *report, size_t n,
                       ss_buf *sealed, char *err, size_t errlen)
{
    const ss_keyserver_client *kc = ctx;
    const char *endpoint = kc->endpoint;
    void *zctx = zmq_ctx_new();
    void *s = zctx ? zmq_socket(zctx, ZMQ_REQ) : NULL;
    int rc = SS_EIO;
    if (!s) {
        snprintf(err, errlen, "key service: cannot create a socket");
        goto out;
    }
    int linger = 0, tmo = KS_REMOTE_TIMEOUT_MS;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
    zmq_setsockopt(s, ZMQ_SNDTIMEO, &tmo, sizeof tmo);
    if (ss_curve_apply(s, &kc->curve) != 0 ||
        zmq_connect(s, endpoint) != 0) {
        snprintf(err, errlen, "key service: cannot connect to %s: %s",
                 endpoint, zmq_strerror(zmq_errno()));
        goto out;
    }
    uint8_t req[5 + SS_REPORT_BYTES];
    if (n != SS_REPORT_BYTES) {
        rc = SS_EINVAL;
        goto out;
    }
    memcpy(req, KS_REQ_MAGIC, 5);
    memcpy(req + 5, report, n);
    if (zmq_send(s, req, sizeof req, 0) < 0) {
        snprintf(err, errlen, "key service %s: send failed: %s", endpoint,
                 zmq_strerror(zmq_errno()));
        goto out;
    }
    char rep[1024];
    int got = zmq_recv(s, rep, sizeof rep - 1, 0);
    if (got < 0) {
        snprintf(err, errlen, "key service %s did not answer in %d s "
                              "(or refused this host's CURVE key)",
                 endpoint, KS_REMOTE_TIMEOUT_MS / 1000);
        rc = SS_ETIMEOUT;
        goto out;
    }
    if (got > (int)sizeof rep - 1)
        got = (int)sizeof rep - 1;
    if (got >= 2 && !memcmp(rep, "OK", 2)) {
        rc = ss_buf_append(sealed, rep + 2, (size_t)got - 2);
    } else {
        rep[got] = '\0';
        /* the reason is text from the service: keep it printable */
        for (int i = 0; i < got; i++)
            if ((unsigned char)rep[i] < 32 || (unsigned char)rep[i] > 126)
                rep[i] = '?';
        snprintf(err, errlen, "%s", got > 2 ? rep + 2 : "key service: "
                                                         "refused");
        rc = SS_EDENIED;
    }
    sodium_memzero(rep, sizeof rep);
out:
    if (s)
        zmq_close(s);
    if (zctx)
        zmq_ctx_term(zctx);
    return rc;
}
