/*
 * ss_node.h - a pipeline component that runs a stage script: a worker
 * (input from a router, output to the next router), a sink (input only),
 * or a standalone script (`sstream lua`), which may still open sockets.
 *
 * The node owns the stage (ss_stage), its input (ss_inlet, credit-based),
 * its output (ss_link, windowed with receipts), the rejects file and the
 * stats reporter. An input batch is acknowledged upstream only when the
 * output batch derived from it was RECEIVED by the next router, so a
 * worker that dies loses nothing: its unacknowledged batches are retried.
 */
#ifndef SS_NODE_H
#define SS_NODE_H

#include <stdint.h>

#include <stddef.h>
#include <stdint.h>

typedef struct ss_node_opts {
    const char *script;     /* stage script path (required) */
    const char *role;       /* "worker", "sink" or "lua" */
    const char *name;       /* component name, e.g. "map-1" */
    const char *stage;      /* stage name, e.g. "map" */
    const char *from;       /* input endpoint override (NULL: FROM/script) */
    const char *to;         /* output endpoint override (NULL: TO/script) */
    const char *rejects;    /* rejects file (JSON lines), NULL: none */
    const char *checkpoint_dir; /* worker (stateful) and sink: at each
                               checkpoint barrier, the sealed snapshot of
                               the state goes to <dir>/<name>-e<N>.snap
                               before the acknowledgement; NULL: none */
    const char *security;   /* plain | encrypted | enclave */
    const char *keys;       /* key directory (encrypted, enclave) */
    int links_sealed;       /* 1: its links to the routers without
                               CurveZMQ (--links sealed; encrypted and
                               enclave only: every batch is sealed) */
    const char *enclave;    /* enclave backend: sandbox | gramine | none */
    const char *keyservice; /* enclave: the key service's endpoint */
    const char *enclave_keys; /* enclave (sandbox): folder whose
                                 platform.key the enclave child signs its
                                 report with (NULL: keys) */
    int ordered;            /* sink: every stream keeps its order on the
                               way (one worker per stage): check it */
    size_t batch_size;      /* target output batch size in bytes */
    size_t mem_limit;       /* Lua memory cap in bytes, 0: none */
    uint64_t max_instructions; /* Lua instructions per event and per
                                  completion, 0: the default (see
                                  ss_stage.h) */
    unsigned credits;       /* batches in flight towards this node; 0
                               (the default): as many as
                               SS_BATCH_INFLIGHT_BYTES holds of
                               batch_size, 2 to SS_NODE_CREDITS_MAX
                               (ss_node_credits) */
    int connect_timeout_ms; /* how long to wait for a router */
    int heartbeat_ms;
    uint64_t run;           /* the run id (--run / SS_RUN), 0: none */
    const char *finals;     /* sink: comma-separated names of the stateful
                               workers whose result must arrive (checked
                               in encrypted and enclave modes) */
    const char *partition_by; /* worker: cut each output batch by the key
                                 group of this field (the next stage is
                                 partitioned; docs/PROTOCOL.md) */
    uint32_t broadcast;     /* worker: N > 0: send each output batch as N
                               copies, one per worker of the next stage */
    uint32_t index;         /* worker: its slot in its stage, 1..N (the
                               router of a partitioned or broadcast stage
                               routes by it); 0: none */
    uint32_t partitions;    /* worker: its stage is partitioned over this
                               many workers (slots 1..partitions; with
                               index, the key groups it owns: a restore
                               with SS_RESTORE_WORKERS takes those); 0:
                               not partitioned */
    const char *const *chain; /* worker: the stages chained
                                 after this one, "STAGE=SCRIPT" each, run
                                 in this process (ss_chain.h), or in
                                 its enclave outside plain mode; stage
                                 STAGE's counters are reported under the
                                 name STAGE-N, N this worker's index (the
                                 number after the last '-' of name) */
    int nchain;
    int argc;               /* script arguments (the `arg` table) */
    char **argv;
} ss_node_opts;

/* Fills o with the defaults (role worker, 256 KiB batches, credits from
 * the batch size (4), 256 MiB Lua cap, 5 s connect timeout, 500 ms
 * heartbeats). */
void ss_node_opts_default(ss_node_opts *o);

/* The most credits a node offers by default (with batches of 64 KiB or
 * less). */
#define SS_NODE_CREDITS_MAX 16

/* The credits o's node offers its router: o->credits, or if 0 as many
 * batches of o->batch_size as SS_BATCH_INFLIGHT_BYTES holds, 2 to
 * SS_NODE_CREDITS_MAX (64 KiB: 16, 256 KiB, the default: 4). Can't
 * fail. */
unsigned ss_node_credits(const ss_node_opts *o);

/* A running component. Opaque: new, run once, destroy; stop from a
 * signal handler or another thread. */
typedef struct ss_node ss_node;

/* Creates a node for o (borrowed: it must outlive the node). Starts
 * nothing and installs no signal handler. Returns 0 and *out (caller
 * destroys), or SS_ENOMEM. */
int ss_node_new(const ss_node_opts *o, ss_node **out);

/* Loads the script, connects, and runs the component to completion (the
 * end of its input, or of its script for one without input), then sends
 * its final counters. Returns 0, or a negative code whose reason was
 * logged (SS_EINTR after ss_node_stop). Call once. */
int ss_node_run(ss_node *n);

/* Makes ss_node_run return SS_EINTR at its next turn (at most a
 * heartbeat later). Async-signal-safe. */
void ss_node_stop(ss_node *n);

/* Makes a stateless worker leave its stage (a rescale down, sstream
 * scale): at its next turn it stops taking input, waits until every
 * output it sent was RECEIVED downstream (so every input it took is
 * acknowledged), and ss_node_run returns 0 with its final counters,
 * which count exactly the batches it acknowledged. What its router had
 * already sent it and it did not take goes back to the router's queue
 * when the router sees it gone, for the others. A stateful worker, a
 * chained one or a sink ignores it (a warning). Async-signal-safe. */
void ss_node_leave(ss_node *n);

/* Closes every socket and file, frees *p and sets it to NULL. Safe on
 * NULL. */
void ss_node_destroy(ss_node **p);

#endif
