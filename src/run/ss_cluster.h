/*
 * ss_cluster.h - what a Docker Swarm needs before a pipeline can run on
 * it (`sstream cluster check`, docs/DEPLOY.md "Checking a cluster").
 *
 * Asks the Docker client (`docker info`, `docker node ls`, `docker node
 * inspect`, `docker image inspect`; never anything that changes the
 * engine) and reports, one line per piece, what is there, what is
 * missing, and for each missing piece the exact command that fixes it:
 *
 *   engine     a Docker engine answers
 *   swarm      it is part of an active swarm
 *   manager    it is a manager (only managers can see the nodes and
 *              deploy a stack)
 *   nodes      the nodes, their state and availability
 *   data       a ready node labelled securestreams.data=true (where
 *              `sstream deploy --target swarm` places the source)
 *   sgx        enclave pipelines: a ready node labelled sgx=true (where
 *              the enclave stages go)
 *   image      the image is on the nodes: checked on the engine asked
 *              (which, on a single-node swarm, is every node); a manager's
 *              API does not list the images of other nodes, so those are
 *              named as not checkable, with the command to check each
 *   device     the gramine backend: /dev/sgx_enclave and
 *              /dev/sgx_provision on sgx nodes, checked where the engine
 *              asked is this machine's; not needed by the sandbox backend
 *   clock      the engine's clock (`docker info` SystemTime) against this
 *              machine's, measured across the call; other nodes' clocks
 *              cannot be read through the API (said so)
 *
 * Every docker call is bounded in time (SS_CLUSTER_CALL_MS) and output.
 */
#ifndef SS_CLUSTER_H
#define SS_CLUSTER_H

#include "run/ss_pipeline.h"

#include <stdio.h>

#define SS_CLUSTER_CALL_MS 20000 /* one docker call at most */

/* What to check; every pointer borrowed. */
typedef struct ss_cluster_opts {
    const char *docker;  /* the Docker client program (default "docker") */
    const char *image;   /* the image the stack uses (required) */
    const ss_pipeline *p; /* the pipeline to run (overrides applied), or
                            NULL: then sgx labels are only counted */
    const char *enclave; /* enclave backend: sandbox (default), gramine */
    long max_skew_ms;    /* clocks further apart are missing (> 0) */
    int local;           /* 1: the engine asked runs on this machine (its
                            devices can be looked at here) */
    const char *dev_dir; /* where SGX devices are looked for ("/dev";
                            tests point it elsewhere) */
} ss_cluster_opts;

/*
 * Runs every check and writes the report to out: one line per piece,
 * "  ok       ...", "  MISSING  ..." followed by "           fix: CMD",
 * "  unknown  ..." (cannot be checked from here, with how to check it)
 * or "  n/a      ...". Returns the number of missing pieces (0: all that
 * could be checked is there), or SS_EINVAL (bad options: reason in err).
 * An engine that does not answer is one missing piece (the others are
 * then not checked, which the report says).
 */
int ss_cluster_check(const ss_cluster_opts *o, FILE *out, char *err,
                     size_t errlen);

#endif
