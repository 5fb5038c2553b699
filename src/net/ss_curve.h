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
#define SS_CURVE_ALLOW_MAX 64

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

/* Sets the CURVE options of sock (before bind/connect) for c's side; the
 * server side also names the ZAP domain. Returns 0 or SS_EIO. */
int ss_curve_apply(void *sock, const ss_curve *c);

/* Zeroes c. */
void ss_curve_wipe(ss_curve *c);

/* The ZAP handler of a context (inproc://zeromq.zap.01), on its own
 * thread: accepts a CURVE client whose public key is in c's allow list,
 * refuses everything else (logged once per key). Start it before binding
 * the server sockets. */
typedef struct ss_zap ss_zap;
int ss_zap_start(void *zctx, const ss_curve *c, ss_zap **out, char *err,
                 size_t errlen);
void ss_zap_stop(ss_zap **p);

#endif
