/*
 * ss_keyserver.h - the key service on the network: a ZeroMQ REP socket
 * under CURVE (its own pair, an allow list of the worker hosts' keys) in
 * front of ss_keyservice, and the worker side that asks it.
 *
 * Protocol: request "SSKR1" + report (SS_REPORT_BYTES); reply "OK" +
 * sealed key, or "NO" + reason. A client without an admitted CURVE key
 * never gets past the handshake. When the allow list names its keys
 * (`sstream run` does: one per worker), a report must name the worker
 * whose key carried it (ss_keyservice_request_as).
 */
#ifndef SS_KEYSERVER_H
#define SS_KEYSERVER_H

#include "crypto/ss_keyservice.h"
#include "net/ss_curve.h"

#include <signal.h>
#include <stddef.h>

/* The service's CURVE keys: names may be NULL (no report binding) or
 * hold one worker name per allowed key. */
typedef ss_curve_auth ss_keyserver_auth;

/* Serves requests on a REP socket bound to endpoint (ipc or tcp) until
 * *stop becomes non-zero (checked every 200 ms). auth is required.
 * Returns 0, or SS_EIO / SS_EINVAL with a reason. */
int ss_keyserver_serve(ss_keyservice *ks, const char *endpoint,
                       const ss_keyserver_auth *auth,
                       volatile sig_atomic_t *stop, char *err,
                       size_t errlen);

/* Loads the service's pair (curve-keyservice.key/.pub) and, as its allow
 * list, every other curve-*.pub of dir except the routers'
 * (curve-server.pub): for `sstream keyservice --keys DIR`. The strings
 * live in *a_store (zero it with ss_curve_wipe after use). */
int ss_keyserver_auth_load(ss_curve *a_store, ss_keyserver_auth *a,
                           const char **allow_store, const char *dir,
                           char *err, size_t errlen);

/* A worker's connection details: endpoint and its CURVE client keys
 * (curve-client pair of keydir, the service's curve-keyservice.pub). */
typedef struct ss_keyserver_client {
    const char *endpoint; /* borrowed */
    ss_curve curve;
} ss_keyserver_client;

int ss_keyserver_client_load(ss_keyserver_client *c, const char *endpoint,
                             const char *keydir, char *err, size_t errlen);

/* ss_enclave_keyfn for a remote key service (ctx: ss_keyserver_client*);
 * waits at most 10 s for the answer. */
int ss_keyserver_keyfn(void *ctx, const void *report, size_t n,
                       ss_buf *sealed, char *err, size_t errlen);

#endif
