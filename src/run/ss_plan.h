/*
 * ss_plan.h - from a pipeline to the list of its components: for each one
 * its name, role, command line, environment, log and rejects files, and
 * the endpoints that join them. Starts nothing.
 *
 * Components, in this order (ss_plan.comps): the routers (router-1
 * between the source and stage 1, router-k+1 after stage k, the last one
 * feeding the sink), the sink, the workers stage by stage, the source.
 * With chaining (ss_pipeline_chained), a hop is a group of chained
 * stages run by one set of workers: the routers are between hops, and
 * the workers of the later stages of a group are only names (virt).
 * Router r listens on endpoints[2(r-1)] for its producers and on
 * endpoints[2(r-1)+1] for its consumers: ipc sockets in the run's private
 * folder (tmpdir, made with tcp too), or free loopback tcp ports. Each
 * component gets its own key folder, tmpdir/keys/NAME (keydir), and a
 * sandbox enclave worker a second one for its enclave (enclave_keydir):
 * the plan names them and says what each must hold (keys: SS_RK_*); the
 * supervisor fills them (ss_runkeys.h). `control` is where the
 * supervisor's control socket binds (ss_monitor.h); with tcp it has port
 * "*" and the real one is known after binding.
 */
#ifndef SS_PLAN_H
#define SS_PLAN_H

#include "run/ss_pipeline.h"
#include "run/ss_runkeys.h"
#include "wire/ss_stats.h"

#include <stddef.h>

/* What the plan needs beyond the pipeline; every string borrowed. */
typedef struct ss_plan_opts {
    const char *argv0;  /* argv[0] of every component */
    const char *outdir; /* the sink's relative OUTPUT is made absolute here */
    const char *logdir; /* <name>.log: stdout of every component but sink */
    const char *rejdir; /* <name>.jsonl: --rejects of all but routers */
    int tcp;            /* loopback tcp endpoints instead of ipc */
    const char *keys;   /* the pipeline's key folder (not plain): never
                           given to a component; see keydir */
    const char *keyservice; /* enclave workers: --keyservice */
    const char *enclave;    /* enclave workers: --enclave */
    int scale_slots;        /* worker slots planned beyond `workers` for
                               each stage that can be rescaled while it
                               runs (see ss_plan.slots); 0: none */
} ss_plan_opts;

/* One component; every pointer owned by the plan except role. */
typedef struct ss_plan_comp {
    char name[SS_STATS_NAME_MAX]; /* "router-1", "map-2", "source", "sink" */
    const char *role; /* static: "router", "source", "worker", "sink" */
    int stage;        /* stage index for workers, else -1 (a chained
                         worker: the first stage it runs) */
    int hop;          /* workers: their hop, between router-(hop+1) and
                         router-(hop+2) (= stage without chaining), else
                         -1 */
    char **argv;      /* NULL-terminated; argv[0] is opts.argv0 */
    char **env;       /* NULL-terminated "KEY=value" to add */
    char *log_path;   /* stdout goes there; NULL: the sink's stdout */
    char *rejects;    /* --rejects file, NULL for routers */
    char *keydir;     /* its key folder (--keys, SS_CONTROL_KEYS) */
    char *enclave_keydir; /* its sandbox enclave's (--enclave-keys), or
                             NULL */
    int keys;         /* what keydir must hold: SS_RK_* flags */
    int spare;        /* a worker slot for a rescale (sstream scale): planned
                         (name, keys, admitted by its routers and the
                         monitor) but not started at the start */
} ss_plan_comp;

/* A stage chained into the workers of an earlier one (docs/PIPELINE.md,
 * Chaining): no process of its own, but its own counters, which its
 * host worker reports under this name (ss_node.h). */
typedef struct ss_plan_virt {
    char name[SS_STATS_NAME_MAX]; /* "filter-1" */
    int stage;                    /* its stage index */
    int host;                     /* index in comps of the worker */
} ss_plan_virt;

typedef struct ss_plan {
    ss_plan_comp *comps;
    size_t ncomps;
    size_t nstages;
    size_t nhops;       /* groups of chained stages (nstages without
                           chaining): nhops + 1 routers */
    ss_plan_virt *virt; /* the chained stages' workers */
    size_t nvirt;
    int source, sink; /* indices in comps */
    char **endpoints; /* 2 per router, NULL-terminated */
    char *tmpdir;     /* the run folder: ipc endpoints, tmpdir/keys */
    int tmpdir_lock;  /* held open (flock) while the run lives; -1: none */
    char *control;    /* control endpoint to bind */
    /* rescaling while the run goes on (sstream scale): a stage whose
     * workers are stateless, dealt by credit (no partition_by, no
     * broadcast) and not chained, or stateful and partitioned in a run
     * with checkpoints (rescaled at a checkpoint), has slots[s] worker
     * slots, its `workers` then opts.scale_slots spares (at most
     * SS_PIPELINE_MAX_WORKERS in all); any other stage has slots[s] =
     * workers. stateful[s]: 1, 0, or -1 (its script does not load). */
    int slots[SS_PIPELINE_MAX_STAGES];
    int stateful[SS_PIPELINE_MAX_STAGES];
} ss_plan;

/* Plans a run of p with o. Makes the run folder (mode 0700), picks free
 * ports (tcp) and removes stale rejects files; nothing else touches the
 * file system. Returns 0 and *out (caller destroys), SS_ENOMEM, or SS_EIO
 * when the endpoints cannot be made (errno tells why). */
int ss_plan_new(const ss_pipeline *p, const ss_plan_opts *o, ss_plan **out);

/* *out = the names of the workers of every stateful stage of p (a
 * reduce: STAGE-1..STAGE-W), comma-separated, for the sink's --finals;
 * NULL if there is none (caller frees). A stage chained into the workers
 * of an earlier one has its result sent by them: their names (once per
 * chain). Loads each script once in a
 * sandboxed, capped Lua state to ask. Returns 0 or SS_ENOMEM. */
int ss_plan_finals(const ss_pipeline *p, char **out);

/* 1 if stage sc keeps state across events (its script loaded once in a
 * sandboxed, capped Lua state, as an enclave would), 0 if not, -1 if it
 * does not load. */
int ss_plan_stage_stateful(const ss_stage_conf *sc);

/* Index in comps of the k-th component (0 <= k < ncomps) in the order of
 * the flow: source, router-1, workers of stage 1, router-2, ..., sink. */
size_t ss_plan_flow_order(const ss_plan *pl, size_t k);

/* Frees pl, removes the run folder and what was left in it (key folders
 * included); sets *p to NULL. Safe on NULL. */
void ss_plan_destroy(ss_plan **p);

/* The --max-frame p's routers need (a whole batch, room for the last
 * event that took it past batch_size and for its sealing, header
 * included; at most the wire's limit), or 0 when a router's default
 * (SS_ROUTER_FRAME_DEFAULT) is enough. Used by sstream run and deploy.
 * Can't fail. */
unsigned long long ss_plan_max_frame(const ss_pipeline *p);

#endif
