/*
 * ss_deploy.h - what a container engine needs to run a pipeline
 * (`sstream deploy`, docs/DEPLOY.md): a Compose file for one Docker host,
 * a stack file for Docker Swarm, or Kubernetes manifests.
 *
 * One service (Deployment) per router, one per stage with replicas =
 * workers, the source; the routers' ports are the seed's (router k binds
 * 5553+2k and 5554+2k) and peers reach them by service name. Each
 * service gets only its role's keys (ss_deploy_role_keys). On Swarm and
 * Kubernetes the cluster's operator can read every secret, so the data
 * key never goes there: the sink (which opens the results) and the key
 * service run on the owner's machine, encrypted mode (every worker holds
 * the data key) is refused, and an enclave-mode source forwards sealed
 * input (`sstream encrypt`). Enclave stages are placed on nodes labelled
 * for SGX. Compose runs on the owner's own host and may hold it.
 * Chained stages (ss_pipeline_chained) run in the workers of the first
 * of their group, with no router between them; a keyed stage's workers
 * each get their slot (Compose --index, Swarm SS_INDEX from the task
 * slot, Kubernetes a StatefulSet's pod index as SS_POD_INDEX).
 */
#ifndef SS_DEPLOY_H
#define SS_DEPLOY_H

#include "run/ss_pipeline.h"

#include <stdio.h>

typedef enum ss_deploy_target {
    SS_DEPLOY_COMPOSE,
    SS_DEPLOY_SWARM,
    SS_DEPLOY_K8S
} ss_deploy_target;

typedef struct ss_deploy_opts {
    ss_deploy_target target;
    const char *image;      /* container image (required) */
    const char *keys;       /* key directory (sstream keygen); required
                               outside plain mode */
    const char *keyservice; /* enclave mode on swarm/k8s: the key service
                               on the owner's machine, e.g.
                               tcp://owner.example.org:5599 (required) */
    const char *enclave;    /* enclave backend: sandbox (default), gramine */
    const char *run;        /* run id (16 hex digits) or NULL */
    const char *data_dir;   /* the nodes' folder holding the input
                               (default /srv/securestreams/data) */
    /* Swarm only (what `sstream run --on swarm` sets): every service
     * reports its counters to the run's monitor on the owner's machine.
     * control is its endpoint (SS_CONTROL, tcp://OWNER:PORT);
     * control_keys a folder with one subfolder per reporting name
     * (router-K, source, and each stage's name, shared by its replicas)
     * holding curve-client.key, curve-client.pub and monitor.pub, shipped
     * as Docker secrets into /run/secrets/control (SS_CONTROL_KEYS). Both
     * NULL: no monitor. */
    const char *control;
    const char *control_keys;
} ss_deploy_opts;

/* Parses "compose", "swarm" or "k8s". Returns 0, or SS_EINVAL. */
int ss_deploy_target_parse(const char *s, ss_deploy_target *out);

/* The file name the target is written to: compose.yml, stack.yml or
 * k8s.yml. Never NULL. */
const char *ss_deploy_file_name(ss_deploy_target t);

/* The key files (sstream keygen names) that a component of role
 * ("router", "worker", "source", "sink", "keyservice") needs in security
 * mode sec on target t, as a NULL-terminated static list; an empty list
 * for plain mode and for roles that do not run on t (the sink and the key
 * service on swarm/k8s). Never lists data.key on swarm or k8s. */
const char *const *ss_deploy_role_keys(ss_deploy_target t, const char *sec,
                                       const char *role);

/*
 * Writes the target's description of p (overrides already applied) to f.
 * Checks first what the target cannot do (encrypted mode on a cluster, a
 * missing --keys or --keyservice, an unreadable script or key), naming
 * it in err. Returns 0, SS_EINVAL, SS_EIO or SS_ENOMEM. Kubernetes
 * Secrets carry the keys' bytes (base64): the file is as secret as the
 * keys it holds.
 */
int ss_deploy_write(const ss_pipeline *p, const ss_deploy_opts *o, FILE *f,
                    char *err, size_t errlen);

#endif
