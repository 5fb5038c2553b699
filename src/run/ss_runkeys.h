/*
 * ss_runkeys.h - keys by role for one `sstream run` (docs/SECURITY.md,
 * "Keys by role").
 *
 * `sstream run` never hands the pipeline's key folder to a component.
 * It makes one private folder per component under the run folder
 * (RUN/keys/NAME, mode 0700) holding only what that role needs:
 *
 *   every component   curve-client.key/.pub  its own CURVE pair, fresh
 *                                            for this run (a router uses
 *                                            it on the control channel
 *                                            only)
 *                     monitor.pub            the monitor's (supervisor's)
 *                                            CURVE public key
 *                     curve-server.pub       the routers' public key
 *   routers           curve-server.key       the routers' secret key
 *                     curve-PEER.pub         the peers they admit: the
 *                                            producers and consumers next
 *                                            to them, nobody else (and
 *                                            its own curve-client.pub,
 *                                            whose secret only it holds)
 *   data key holders  data.key               source (unless the input is
 *                                            sealed), sink, workers in
 *                                            encrypted mode (and enclave
 *                                            mode with backend none)
 *   enclave workers   curve-keyservice.pub   the key service's public key
 *
 * and, for an enclave worker of the sandbox backend, a second folder
 * RUN/keys/NAME.enclave with platform.key, for the enclave child (with
 * separate uids it belongs to the enclave's uid: the worker host's uid
 * cannot open it).
 *
 * The monitor's own pair and the key service's pair are generated here
 * too; their secrets stay in this process.
 */
#ifndef SS_RUNKEYS_H
#define SS_RUNKEYS_H

#include <stddef.h>
#include <sys/types.h>

typedef struct ss_runkeys ss_runkeys;

/* What a component's folder holds (ss_runkeys_component). */
enum {
    SS_RK_ROUTER = 1,    /* the routers' server pair too */
    SS_RK_DATA = 2,      /* data.key */
    SS_RK_KEYSERVICE = 4 /* curve-keyservice.pub */
};

/* Makes dir (mode 0700; it must not exist, or be empty and ours) and the
 * run's monitor, router and key service pairs. pipeline_keys is the
 * pipeline's key folder (data.key, platform.key) or NULL in plain mode.
 * Returns 0 and *out (caller destroys), or a negative code with a reason
 * in err. */
int ss_runkeys_new(const char *dir, const char *pipeline_keys,
                   ss_runkeys **out, char *err, size_t errlen);

/* Zeroes the secrets it holds and frees rk (the files stay: the caller
 * removes the run folder); sets *p to NULL. Safe on NULL and twice. */
void ss_runkeys_destroy(ss_runkeys **p);

/* Makes the folder of component name with what flags say (see above).
 * Returns its path (owned by rk) or NULL with a reason in err. */
const char *ss_runkeys_component(ss_runkeys *rk, const char *name,
                                 int flags, char *err, size_t errlen);

/* Lets router admit peer: copies peer's public key into the router's
 * folder as curve-PEER.pub. Both must have folders. Returns 0 or a
 * negative code with a reason in err. */
int ss_runkeys_admit(ss_runkeys *rk, const char *router, const char *peer,
                     char *err, size_t errlen);

/* Makes NAME.enclave with platform.key for the sandbox enclave of worker
 * name. Returns its path (owned by rk) or NULL with a reason in err. */
const char *ss_runkeys_enclave(ss_runkeys *rk, const char *name, char *err,
                               size_t errlen);

/* Gives the folder of name (and NAME.enclave if any) to uid/gid: chown of
 * the folder and its files (it stays 0700 / 0600). Root only. Returns 0
 * or SS_EIO with a reason in err. */
int ss_runkeys_chown(ss_runkeys *rk, const char *name, int enclave,
                     uid_t uid, gid_t gid, char *err, size_t errlen);

/* The public key (Z85, borrowed) of component name, or NULL. */
const char *ss_runkeys_pub(const ss_runkeys *rk, const char *name);

/* The monitor's and the key service's pairs (Z85, borrowed; the secrets
 * live in locked memory until destroy). */
const char *ss_runkeys_monitor_pub(const ss_runkeys *rk);
const char *ss_runkeys_monitor_sec(const ss_runkeys *rk);
const char *ss_runkeys_keyservice_pub(const ss_runkeys *rk);
const char *ss_runkeys_keyservice_sec(const ss_runkeys *rk);

#endif
