/*
 * ss_curve.h - CurveZMQ on the pipeline's sockets (security encrypted and
 * enclave): routers are CURVE servers and authenticate their peers with a
 * ZAP handler that allows only the pipeline's component public keys; the
 * sources, workers and the sink are CURVE clients that know the routers'
 * public key. A process without the pipeline's CURVE keys cannot connect.
 *
 * Keys come from the key directory (`sstream keygen`, ss_keys.h):
 * curve-server.key/.pub for routers, curve-client.key/.pub for the
 * others; every curve-*.pub of the directory is allowed by the routers.
 */
#ifndef SS_CURVE_H
#define SS_CURVE_H

#include <stddef.h>

#define SS_CURVE_DOMAIN "sstream"
#define SS_CURVE_ALLOW_MAX 256

/* One end's CURVE keys, Z85 text (40 characters + NUL). Zero it after use
 * (ss_curve_wipe): sec is a secret. */
typedef struct ss_curve {
    char pub[41];
    char sec[41];
    char server[41];   /* client: the routers' public key */
    int is_server;
    size_t nallow;     /* server: allowed client keys */
    char allow[SS_CURVE_ALLOW_MAX][41];
} ss_curve;

/* Loads the keys of dir for a server (router: its pair and every
 * curve-*.pub as the allow list) or a client (its pair and the server's
 * public key). Returns 0 or a negative code with a reason in err. */
int ss_curve_load(ss_curve *c, const char *dir, int server, char *err,
                  size_t errlen);

/* The same with the pair named name (curve-NAME.key/.pub) instead of
 * "server" / "client". */
int ss_curve_load_pair(ss_curve *c, const char *dir, const char *name,
                       int server, char *err, size_t errlen);

/* Fills c for a client (its pair, the server's public key) or a server
 * (its pair; no allow list: give the ZAP handler one) from Z85 text.
 * Returns 0 or SS_EINVAL (a key is not 40 characters). */
int ss_curve_client(ss_curve *c, const char *pub, const char *sec,
                    const char *server);
int ss_curve_server(ss_curve *c, const char *pub, const char *sec);

/* Sets the CURVE options of sock (before bind/connect) for c's side; the
 * server side also names the ZAP domain. Returns 0 or SS_EIO. */
int ss_curve_apply(void *sock, const ss_curve *c);

/* Zeroes c. */
void ss_curve_wipe(ss_curve *c);

typedef struct ss_zap ss_zap;

/* What a CURVE server admits: its pair and the allowed client keys (Z85
 * text, borrowed). names is NULL, or holds the name each key stands for:
 * the ZAP handler then gives it as the connection's user id. */
typedef struct ss_curve_auth {
    const char *pub, *sec;
    const char *const *allow;
    const char *const *names;
    size_t nallow;
} ss_curve_auth;

/* Starts a's ZAP handler on zctx and sets a's CURVE server options on
 * sock (before bind). *zap is stopped by the caller after closing sock.
 * Returns 0 or a negative code with a reason in err. */
int ss_curve_serve_auth(void *zctx, void *sock, const ss_curve_auth *a,
                        ss_zap **zap, char *err, size_t errlen);

/* The ZAP handler of a context (inproc://zeromq.zap.01), on its own
 * thread: accepts a CURVE client whose public key is in c's allow list,
 * refuses everything else (logged once per key). Start it before binding
 * the server sockets. */
int ss_zap_start(void *zctx, const ss_curve *c, ss_zap **out, char *err,
                 size_t errlen);
/* The same with an explicit allow list: n Z85 public keys (borrowed,
 * copied; a key that does not decode is left out). */
int ss_zap_start_keys(void *zctx, const char *const *z85, size_t n,
                      ss_zap **out, char *err, size_t errlen);
/* The same, and a connection admitted with key i carries names[i]
 * (truncated to 63 bytes) as its ZAP user id: a receiver reads it with
 * zmq_msg_gets(msg, "User-Id"). Without names the user id is "peer". */
int ss_zap_start_named(void *zctx, const char *const *z85,
                       const char *const *names, size_t n, ss_zap **out,
                       char *err, size_t errlen);
/* How many connections it refused so far. */
unsigned long ss_zap_refused(const ss_zap *z);
void ss_zap_stop(ss_zap **p);

#endif
