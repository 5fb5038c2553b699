/*
 * ss_enclave_core.h - what runs inside an enclave, whatever the backend:
 * open the input (when encrypted), run ss_stage, build and seal the
 * output message and the rejects. Used in-process by the none backend and
 * by the sandbox child (`sstream enclave`). Internal to src/enclave and
 * cmd_enclave.c.
 */
#ifndef SS_ENCLAVE_CORE_H
#define SS_ENCLAVE_CORE_H

#include "core/ss_buf.h"
#include "core/ss_bundle.h"
#include "crypto/ss_keys.h"
#include "crypto/ss_keyservice.h"
#include "lua/ss_chain.h"
#include "lua/ss_stage.h"
#include "wire/ss_batch.h"
#include "wire/ss_partition.h"
#include "wire/ss_taken.h"

#include <stddef.h>
#include <stdint.h>

#define SS_ENCLAVE_CORE_DEFAULT_MEM (64u << 20)

/* Where outputs go: returns a buffer of at least n bytes for the output
 * message (which 0) or the rejects (which 1), or NULL if it cannot. */
typedef void *(*ss_ecore_reserve)(void *ctx, int which, size_t n);

typedef struct ss_ecore {
    ss_stage *stage; /* the first stage of chain (borrowed); NULL: echo */
    ss_chain *chain; /* the stages run here, in order (one unless chained,
                        docs/PIPELINE.md, Chaining); NULL with echo */
    ss_stage_counts before[SS_CHAIN_MAX]; /* totals before a call */
    ss_key *key;     /* the data key (encrypted), owned */
    int encrypted;
    int echo;
    uint64_t run;       /* the run it serves: input of another run is
                           refused, outputs carry it (ss_ecore_set_run) */
    uint32_t producer;  /* ss_name_id of the worker: outputs carry it */
    char worker[64];    /* the worker's name: snapshots are bound to it */
    int restored;       /* a snapshot was restored ... */
    uint32_t restored_epoch; /* ... of this epoch: older inputs refused */
    int granted;        /* attested: restores need the key service's grant */
    uint32_t grant;     /* the epoch granted (0: no restore) */
    uint32_t grant_from, grant_slot, grant_slots; /* a rescale granted
                           (ss_restore_grant; from 0: the own snapshot) */
    int snapped;        /* a snapshot was taken ... */
    uint32_t snap_epoch; /* ... of this epoch: the next must be later */
    ss_buf pt;          /* plaintext of the input */
    ss_stage_out out;   /* the stage's output */
    int out_ready;      /* out was initialised */
    int completed;      /* completion ran: the stream is over */
    uint32_t instance;  /* stateful: random id drawn here, in every DATA
                           message sealed (header offset 68); 0 before
                           the first output and for a stateless chain */
    uint64_t emitted;   /* stateful: DATA messages sealed before the
                           result, which carries the count (first_row) */
    /* A stateful chain's inputs, by lineage (stream, seq, part): each
     * may reach the state once (ss_ecore_call), in a record that does not
     * grow with the run (ss_taken.h); NULL until the first. */
    ss_taken *taken;
    char partition_by[SS_PARTITION_FIELD_MAX + 1]; /* "" or the field the
                           output is cut by (ss_ecore_set_output) */
    uint32_t broadcast; /* N > 0: the output goes as N copies */
    ss_psplit split;    /* the output cut for the next stage */
    /* Test hook (SS_ENCLAVE_TEST_SYSCALL=TEXT): in a test build of the
     * sandbox child (SS_TEST_HOOKS), die() is called when a batch's
     * plaintext contains die_on. Never set, nor read, otherwise (the
     * fields stay so that every build has the same layout). */
    const char *die_on;
    void (*die)(void);
} ss_ecore;

/* What one call wrote through reserve. */
typedef struct ss_ecore_res {
    size_t msg_len;
    size_t rej_len;
    uint32_t nrejects;
    ss_stage_counts delta; /* the first stage's counts (as unchained) */
    size_t nstages;        /* stages in the chain (0 with echo) */
    ss_stage_counts stages[SS_CHAIN_MAX]; /* each stage's counts; [0] is
                                             delta */
    uint64_t mem_peak;     /* the Lua peaks of all stages, summed */
} ss_ecore_res;

/* The scripts of an enclave's stages: stage k's name and bundle (its
 * script and local modules), read once; what the enclave runs and what
 * its measurement covers (ss_bundle_measured_chain). */
typedef struct ss_ecore_scripts {
    size_t n;
    char stage[SS_CHAIN_MAX][64];
    const char *path[SS_CHAIN_MAX]; /* borrowed from the caller */
    ss_bundle *b[SS_CHAIN_MAX];
} ss_ecore_scripts;

/* Loads stage's script and those of the stages chained after it, each
 * given as "STAGE=SCRIPT" (chain[0..nchain), nchain < SS_CHAIN_MAX).
 * Strings are borrowed. Returns 0 (release sc after), or SS_EINVAL (a
 * bad spec) or a bundle error, with a reason naming the file in err. */
int ss_ecore_scripts_load(ss_ecore_scripts *sc, const char *stage,
                          const char *script, const char *const *chain,
                          size_t nchain, char *err, size_t errlen);
/* Appends what the measurement covers (ss_bundle_measured_chain). */
int ss_ecore_scripts_measured(const ss_ecore_scripts *sc, ss_buf *out);
void ss_ecore_scripts_release(ss_ecore_scripts *sc);

/* Loads the stages of sc as one chain (ss_chain.h): stage k gets so with
 * stage sc->stage[k], its script and modules from sc->b[k] (and the
 * path sc->path[k] as its chunk name when so->script_path is set), and
 * for k >= 1 the worker name STAGE-N, N what follows the last '-' of
 * so->name (as a chained plain worker reports, ss_node.h). Returns like
 * ss_ecore_init; sc is not needed afterwards. */
int ss_ecore_init_chain(ss_ecore *c, const ss_stage_opts *so,
                        const ss_ecore_scripts *sc, int encrypted,
                        char *err, size_t errlen);

/* Whether stage k of the chain keeps state; 0 past its end. */
int ss_ecore_stage_stateful(const ss_ecore *c, size_t k);
/* The number of stages (0 with echo) and the name of stage k. */
size_t ss_ecore_nstages(const ss_ecore *c);

/* 1 if the stage runner is linked into this program. */
int ss_ecore_have_stage(void);

/* Loads the stage (unless echo): a chain of one. The key is given later
 * (set_key).
 * Returns 0, or a negative code with a one-line reason in err. */
int ss_ecore_init(ss_ecore *c, const ss_stage_opts *so, int encrypted,
                  int echo, char *err, size_t errlen);
/* Binds the core to a run and a worker name: its outputs carry run and
 * ss_name_id(name), and it refuses an input of another run (an input
 * with run 0 only when sealed at rest, ss_hdr_at_rest). Can't fail. */
void ss_ecore_set_run(ss_ecore *c, uint64_t run, const char *name);
/* How outputs are cut for the next stage (ss_psplit_cut): by the key
 * group of field (partitioned), as copies copies (broadcast), or not
 * (NULL, 0). The output message of a call or a completion is then one or
 * more messages back to back, each sealed on its own. The caller has
 * checked field (ss_partition_field_ok). Can't fail. */
void ss_ecore_set_output(ss_ecore *c, const char *field, uint32_t copies);
/* Takes ownership of k (destroys any previous key). */
void ss_ecore_set_key(ss_ecore *c, ss_key *k);
void ss_ecore_release(ss_ecore *c);

/* Heap bytes held by the record of a stateful chain's inputs (0 before
 * the first); it does not grow with the number of batches (ss_taken.h). */
size_t ss_ecore_taken_bytes(const ss_ecore *c);

/* What the script declared (see ss_stage.h); from/to get "" if none.
 * Echo: nothing. */
void ss_ecore_info(const ss_ecore *c, char *from, char *to, size_t len,
                   int *stateful, int *uses_sgx);

/* Processes one untrusted input message (which must not change while
 * this runs: the sandbox child passes a private copy). See ss_enclave.h
 * for the output rules and errors. A stateful chain takes each input
 * lineage (stream, seq, part) once: a batch its host sends again (the
 * state would fold it twice) is refused with SS_EDENIED, once it
 * authenticated (a refused or failed first call does not count: it
 * folded nothing, or the run fails). */
int ss_ecore_call(ss_ecore *c, const void *msg, size_t n,
                  ss_ecore_reserve rs, void *rctx, ss_ecore_res *res,
                  char *err, size_t errlen);

/* Opens (authenticates) one input message like ss_ecore_call, but runs
 * nothing: all its events are rejected (ss_stage_reject_batch) and its
 * output is an empty batch with its lineage, so that the stream stays
 * complete. For a batch the host reports killed the enclave twice.
 * Refused (SS_EDENIED) for a stateful stage: the host's word would drop
 * batches from the state (a reduce over half the data), and a stateful
 * stage whose enclave dies fails the run anyway. */
int ss_ecore_reject(ss_ecore *c, const void *msg, size_t n,
                    ss_ecore_reserve rs, void *rctx, ss_ecore_res *res,
                    char *err, size_t errlen);

/* Makes restores depend on the key service (an attested enclave: the
 * grant came sealed with the data key, SS_KEYSERVICE_RELEASE_BYTES):
 * only the checkpoint of epoch `epoch` may be restored, none when 0.
 * Can't fail. */
void ss_ecore_set_grant(ss_ecore *c, uint32_t epoch);

/* The same with a whole grant (ss_keyservice.h): with g->from > 0 the
 * only restore allowed is ss_ecore_restore_keyed of g->epoch from
 * exactly g->from snapshots as slot g->slot of g->slots; with 0 only
 * ss_ecore_restore of g->epoch. Can't fail. */
void ss_ecore_set_restore_grant(ss_ecore *c, const ss_restore_grant *g);

/* Takes the stage's state at a barrier and seals it (ss_snapshot.h) as
 * the state of epoch: with the data key when encrypted (the plaintext
 * never leaves the core: it is built and zeroed in private memory), with
 * the plain checksum otherwise; bound to the core's run (set_run), the
 * stage and the worker name. The blob is written through rs (which 0);
 * *len gets its length. Epochs go up: an epoch not above the last
 * snapshot's, or below a restored one, is refused (SS_EDENIED). Errors:
 * those of ss_chain_snapshot and ss_snapshot_seal, SS_EDENIED after
 * completion, SS_ETOOBIG when rs cannot hold the blob. */
int ss_ecore_snapshot(ss_ecore *c, uint32_t epoch, ss_ecore_reserve rs,
                      void *rctx, size_t *len, char *err, size_t errlen);

/* Opens the untrusted blob[0..n) as the state of this run, stage and
 * worker at epoch (ss_snapshot_open: another run, epoch, stage or worker,
 * a modified blob, a plain blob where the core holds a key are refused
 * with the reason in err) and restores it into the stage (before its
 * first batch). An attested core (ss_ecore_set_grant) restores only the
 * epoch the key service granted it: another epoch, or any when none was
 * granted, is refused (SS_EDENIED), so its host cannot pick an older
 * checkpoint even with a matching blob. From then on an input batch of
 * an epoch below `epoch` is
 * refused: its effect is in the restored state already. Errors: those
 * of ss_snapshot_open and ss_chain_restore; SS_EDENIED after a batch. On
 * a failure after the blob opened the stage is unusable: the caller
 * starts a fresh enclave. */
int ss_ecore_restore(ss_ecore *c, uint32_t epoch, const void *blob,
                     size_t n, char *err, size_t errlen);

/* A restore with another worker count (keyed state, docs/ARCHITECTURE.md
 * "Rescaling"): the stage (partitioned, stateful) had r->from workers at
 * checkpoint r->epoch, this core is slot r->slot of r->slots now (its
 * worker must be named STAGE-slot). blobs[0..r->from) are the old
 * workers' snapshots in slot order, each opened as ss_ecore_restore
 * does but as the state of worker STAGE-j (j = 1..from), and only the
 * key groups of this slot's range are restored from them
 * (ss_chain_restore_groups; a group outside its old worker's range, one
 * restored twice, state outside key groups: refused). An attested core
 * restores only what the key service granted (ss_ecore_set_restore_grant:
 * the same epoch, from, slot and slots), so that a host can neither
 * leave out an old snapshot, nor hand another range, nor choose an
 * older epoch. Errors as ss_ecore_restore, SS_EINVAL for a request that
 * does not hold together. */
int ss_ecore_restore_keyed(ss_ecore *c, const ss_restore_grant *r,
                           const void *const *blobs, const size_t *lens,
                           char *err, size_t errlen);

/* Completion, output under header final, whose lineage the core sets
 * itself: the worker's own stream (ss_name_id of the set_run name |
 * 2^31), batch 0, part 0, marked as its end (SS_AUX_END). Once only: a second
 * completion, and any batch after it, is refused (SS_EDENIED). If the
 * stage fails (SS_ELUA), its reason goes out as a REJECT message with
 * count 0 (res->rej_len; sealed when encrypted) and err only names the
 * stage when encrypted. */
int ss_ecore_complete(ss_ecore *c, const ss_hdr *final, ss_ecore_reserve rs,
                      void *rctx, ss_ecore_res *res, char *err,
                      size_t errlen);

#endif
