/*
 * ss_enclave_int.h - the enclave handle, shared by the backends
 * (ss_enclave.c: dispatch and none; ss_enclave_sandbox.c). Internal.
 */
#ifndef SS_ENCLAVE_INT_H
#define SS_ENCLAVE_INT_H

#include "enclave/ss_enclave.h"
#include "enclave/ss_enclave_chan.h"
#include "enclave/ss_enclave_core.h"

#include <sys/types.h>

enum { SS_BACKEND_NONE = 0, SS_BACKEND_SANDBOX = 1 };

struct ss_enclave {
    ss_enclave_opts o; /* strings point into the copies below */
    char *name, *stage, *script, *key_dir, *program, *partition_by;
    char output[80]; /* ss_partition_spec of o, measured */
    int backend;
    uint8_t measurement[SS_MEASUREMENT_BYTES];
    char from[256], to[256];
    int stateful, uses_sgx;
    char **chain;       /* copies of o.chain (o.chain points here) */
    size_t nstages;     /* 1 + o.nchain */
    uint64_t stateful_bits; /* bit k: stage k keeps state */
    ss_stage_tick_fn tick;  /* the caller's duties during a long request */
    void *tick_arg;         /* (ss_enclave_set_tick) */
    /* none */
    ss_ecore core;
    int core_ready;
    /* sandbox */
    int memfd;
    void *base; /* mapped channel */
    ss_chan_ctl *ctl;
    pid_t pid;  /* 0 when no child */
    int dead;   /* the child died; restart needed */
    uint32_t seq;
    ss_chan_spin spin; /* waiting for responses */
    long peak_rss_kb;
    ss_buf store; /* none: what ss_enclave_push appended */
};

/* The enclave's environment: the few names it may see, taken from
 * environ (borrowed strings; env ends with NULL, at most max slots). Used
 * by the sandbox host and the spawner (ss_spawner.h). */
void ss_sandbox_child_env(char **env, size_t max);

/* Sandbox backend entry points (ss_enclave_sandbox.c). */
int ss_sandbox_start(ss_enclave *e, char *err, size_t errlen);
void ss_sandbox_stop(ss_enclave *e);
int ss_sandbox_request(ss_enclave *e, uint32_t op, const void *in,
                       size_t n, char *err, size_t errlen);

#endif
