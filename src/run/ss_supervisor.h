/*
 * ss_supervisor.h - starts the processes of a pipeline, watches them and
 * reports (live progress, metrics file, final summary).
 *
 * One supervisor runs one pipeline once. Every component is a child
 * process running the same binary (/proc/self/exe, or SS_RUN_EXEC when
 * set, for tests) in its own process group, with PR_SET_PDEATHSIG so that
 * none outlives the supervisor. Components report their counters over the
 * control endpoint (ss_stats.h) given to them in SS_CONTROL, under CURVE:
 * each has its own pair in its key folder (SS_CONTROL_KEYS, ss_runkeys.h)
 * and the monitor admits only those; counters count only under the
 * sender's own name, and only the sink's DONE completes the run.
 *
 * As root, with the users sstream-worker and sstream-enclave, routers and
 * enclave-mode worker hosts run as sstream-worker and their enclaves as
 * sstream-enclave, through one enclave spawner per worker (ss_spawner.h);
 * otherwise the run warns at start that every component shares a uid
 * (docs/SECURITY.md, "Separate uids").
 *
 * Start order: routers (router-1 between source and stage 1, router-k+1
 * after stage k, the last one feeding the sink), the sink, the workers,
 * the source. The run ends when the sink sent DONE (or exited) and every
 * child exited; a child exiting non-zero or by a signal fails the run and
 * every other child is stopped (SIGTERM, SIGKILL 2 s later), unless
 * max_restarts allows a restart of the whole pipeline (see there).
 */
#ifndef SS_SUPERVISOR_H
#define SS_SUPERVISOR_H

#include "crypto/ss_keyservice.h"
#include "net/ss_keyserver.h"
#include "run/ss_pipeline.h"

#include <stdint.h>

/* Exit statuses of a run, as returned by ss_supervisor_run. */
enum {
    SS_RUN_OK = 0,
    SS_RUN_FAILED = 1,
    SS_RUN_TIMEOUT = 124,
    SS_RUN_INTERRUPTED = 130,
};

/* How to run. Zero-initialise, then set what you need. */
typedef struct ss_run_opts {
    const char *exe;        /* program run for each component; NULL:
                               $SS_RUN_EXEC, else /proc/self/exe */
    const char *output_dir; /* logs, rejects; NULL: out/<name> */
    const char *metrics;    /* JSON lines of every STATS sample, or NULL */
    double timeout_s;       /* stop and fail with 124 after this; 0: none */
    int quiet;              /* no progress, no summary: errors only */
    int no_progress;        /* no live progress line */
    int tcp;                /* loopback tcp endpoints instead of ipc */
    /* security encrypted / enclave (the pipeline's `security:`) */
    const char *keys;       /* the pipeline's key folder (required);
                               components get copies of the files their
                               role needs only (ss_runkeys.h) */
    const char *keyservice; /* enclave: the key service's endpoint */
    const char *enclave;    /* enclave: backend (NULL: sandbox) */
    /* recovery: when a component is killed by a signal (kill -9, the
     * OOM killer) and the run cannot go on without it (a stateful
     * worker, a stage's last worker, a router, the sink, the source),
     * stop every component and start the whole pipeline again (from
     * the last complete checkpoint, or from the start), at most this
     * many times (0: fail the run, as before). The sink's standard
     * output and its OUTPUT file are committed at each checkpoint (up to
     * the sink's marks at its barrier) and when the sink completes, and
     * cut back to the committed marks on a resume, so each result shows
     * once, never before its checkpoint completed; so are the rejects
     * files. A component that exits with an error status is never
     * restarted: it said why. */
    unsigned max_restarts;
    /* enclave mode: before a restart from the checkpoint of epoch E,
     * grant_restore(grant_ctx, worker, grant) is called for each enclave
     * worker (its component name) with grant->epoch E, and with epoch 0
     * before a restart from the start, so that the key service releases
     * the data key with the grant the worker's enclave needs to restore
     * exactly E (ss_keyservice_set_grant). A worker of a partitioned
     * stateful stage that resumes with another worker count than at E
     * gets grant->from = the count at E and its slot and the new count
     * (ss_restore_grant). It returns 0 or a negative code; on failure the
     * restart goes from the start. NULL: enclave mode restarts from the
     * start. */
    int (*grant_restore)(void *grant_ctx, const char *worker,
                         const ss_restore_grant *grant);
    void *grant_ctx;
    /* rescaling while the run goes on (sstream scale NAME STAGE N): the
     * run's name in the state folder's records (ss_runrec.h); NULL: the
     * pipeline's. With scale_slots > 0 (-1: the default, 8, or 0 when
     * the sink checks stream order: outside plain mode with one worker
     * per stage), every stage that can be rescaled live (stateless,
     * dealt by credit, not chained) gets that many spare worker slots,
     * and the supervisor listens on a control socket (ss_ctlsock.h) in
     * the run folder for the owner's requests. 0: neither. */
    const char *name;
    int scale_slots;
} ss_run_opts;

typedef struct ss_supervisor ss_supervisor;

/* Prepares a run of p (borrowed: it must outlive the supervisor): makes
 * the output folder, the private endpoint folder and every component's
 * command line and environment. Starts nothing. Returns 0 and *out
 * (caller destroys), or a negative code with a reason in err. */
int ss_supervisor_new(const ss_pipeline *p, const ss_run_opts *o,
                      ss_supervisor **out, char *err, size_t errlen);

/* This run's id (drawn by ss_supervisor_new; never 0). */
uint64_t ss_supervisor_run_id(const ss_supervisor *sv);

/* The key service's CURVE keys for this run (enclave mode): its pair and
 * the enclave workers' keys, each named after its worker (borrowed from
 * sv; valid until destroy). Returns 0 or SS_EINVAL. */
int ss_supervisor_keyservice_auth(ss_supervisor *sv, ss_keyserver_auth *a);

/* Runs the pipeline to its end. Installs handlers for SIGINT, SIGTERM,
 * SIGHUP (all three stop the run: SS_RUN_INTERRUPTED) and SIGCHLD for the
 * duration (restored before returning). Prints progress,
 * errors and the summary to stderr. Returns one of SS_RUN_*; never
 * returns while a child it started is alive. Call once. */
int ss_supervisor_run(ss_supervisor *sv);

/* Frees sv, removes the endpoint folder; sets *p to NULL. Safe on NULL. */
void ss_supervisor_destroy(ss_supervisor **p);

#endif
