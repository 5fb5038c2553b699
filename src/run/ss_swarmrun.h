/*
 * ss_swarmrun.h - a whole pipeline run on a container engine, driven from
 * the owner's machine: `sstream run PIPELINE.yml --on swarm`.
 *
 * What runs where:
 *
 *   the Swarm (docker stack deploy)     this machine (the owner's)
 *   ------------------------------      -----------------------------
 *   router-1 .. router-N+1              the run's monitor (counters,
 *   stage-S (replicas = workers)          progress, summary), bound on
 *   source (sealed input in enclave       --advertise under CURVE
 *     mode: it needs no key)            the key service (enclave mode)
 *                                       the sink: it opens and prints
 *                                         the results (data key)
 *
 * The stack is what `sstream deploy --target swarm` writes
 * (ss_deploy.h), plus the control channel: each service reports its
 * counters to the monitor over TCP under CURVE with a pair made for this
 * run (one per service, shared by a stage's replicas: ss_monitor
 * admits STAGE-N from the key of stage STAGE). The data key never enters
 * the cluster.
 *
 * The run fails, naming the service, when a task of the stack fails, when
 * a task stays unscheduled longer than the schedule limit (Swarm's
 * reason, from `docker stack ps --no-trunc`, is quoted), when the sink or
 * the key service fails, or at the time limit; the stack is removed at
 * the end in every case (also on SIGINT, SIGTERM, SIGHUP).
 */
#ifndef SS_SWARMRUN_H
#define SS_SWARMRUN_H

#include "run/ss_pipeline.h"

typedef struct ss_swarmrun_opts {
    const char *pipeline_file; /* as given (for the run record) */
    const char *name;       /* the run's (and stack's) name; NULL: the
                               pipeline's name in DNS form */
    const char *image;      /* NULL: securestreams:VERSION */
    const char *advertise;  /* this machine's address as the services
                               reach it (monitor, key service); NULL: the
                               gateway of Docker's docker_gwbridge */
    const char *node;       /* a swarm node whose published port the sink
                               connects to; NULL: 127.0.0.1 */
    const char *output_dir; /* NULL: out/<pipeline name> */
    const char *keys;       /* the pipeline's keys (not plain) */
    const char *data_dir;   /* where the data node holds the input; NULL:
                               the input's folder on this machine (a
                               single-node swarm), sealed into the output
                               folder in enclave mode */
    const char *exe;        /* this program, for the sink, the key
                               service and sstream encrypt */
    double timeout_s;       /* 0: none */
    double schedule_s;      /* longest a task may stay unscheduled
                               (0: 60 s) */
    int quiet, no_progress;
    int detach;             /* return once the stack is up; a background
                               process follows the run */
} ss_swarmrun_opts;

/* Runs p (overrides applied, checked) on the engine named by o and
 * returns the run's exit status: 0 done (results on stdout, summary on
 * stderr), 1 failed (the cause on stderr), 124 timed out, 130
 * interrupted. With o->detach: 0 once the run is deployed and a
 * background process follows it (sstream status NAME). Never returns
 * while a stack it deployed is left behind, except when detached. */
int ss_swarmrun_run(const ss_pipeline *p, const ss_swarmrun_opts *o);

#endif
