/*
 * ss_enclave.h - where a stage's user code runs: the backend-neutral
 * interface between a worker and its (possibly enclaved) stage runner.
 *
 * A worker opens an enclave for its stage script, then calls it with one
 * input wire message at a time and gets one output wire message back
 * (plus rejects and counters). Backends:
 *
 *   none     ss_stage runs in the calling process (security plain or
 *            encrypted; with encrypted the process holds the data key).
 *   sandbox  a child process (`sstream enclave`, cmd_enclave.c) runs
 *            ss_stage in a sandboxed, capped Lua state under a seccomp
 *            filter; batches cross a shared-memory region. With encrypted
 *            the child gets the data key only after attestation (its
 *            signed report checked by the key service, see get_key) and
 *            decrypts, processes and re-encrypts itself: this process only
 *            ever sees ciphertext. Emulated isolation, not hardware.
 *   gramine  the same `sstream enclave` program under gramine-sgx
 *            (deploy/gramine/); not available from this API on machines
 *            without SGX: open returns SS_EINVAL with an explanation.
 *
 * Output message: the input's header with kind DATA, flags keeping only
 * LAST_PART and FINAL of the input (plus ENCRYPTED when encrypted), count
 * and len those of the output events; lineage, first_row and aux as in
 * the input. In encrypted mode the input must be sealed (a plaintext
 * batch is refused: the host cannot inject events) and the output is
 * sealed by the enclave. Rejects: one wire message of kind REJECT, count
 * = number of rejects, same lineage as the input, payload the stage's
 * JSON reject lines; sealed when encrypted (reject texts may quote event
 * data).
 *
 * Reduce state stays inside: ss_enclave_complete() makes the chain emit
 * its final result, which leaves sealed like any other output.
 */
#ifndef SS_ENCLAVE_H
#define SS_ENCLAVE_H

#include "core/ss_buf.h"
#include "crypto/ss_attest.h"
#include "crypto/ss_keyservice.h"
#include "lua/ss_chain.h"
#include "lua/ss_stage.h"
#include "wire/ss_batch.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SS_ENCLAVE_DEFAULT_MEM (64u << 20) /* Lua cap: within ~90 MB EPC */

typedef struct ss_enclave ss_enclave;

/* Provisions the data key to an attested enclave: given the enclave's
 * signed report (SS_REPORT_BYTES), appends to sealed the data key blob
 * sealed to the report's public key (crypto_box_seal), or returns a
 * negative code with the refusal in err. ss_keyservice.h provides one for
 * an in-process key service and one for a remote one. */
typedef int (*ss_enclave_keyfn)(void *ctx, const void *report, size_t n,
                                ss_buf *sealed, char *err, size_t errlen);

typedef struct ss_enclave_opts {
    const char *backend;     /* "none" (default), "sandbox", "gramine" */
    const char *name;        /* worker name, e.g. "map-1" */
    const char *stage;       /* stage name, e.g. "map" */
    const char *script_path; /* the stage script (not needed with echo) */
    size_t mem_limit;        /* Lua cap in bytes; 0: 64 MiB */
    uint64_t max_instructions; /* per event and per completion; 0: the
                                  default (ss_stage.h). Measured. */
    int encrypted;           /* batches in and out are sealed */
    const char *key_dir;     /* none: data.key is read from here when
                                encrypted; sandbox: platform.key signs the
                                report (required when encrypted) */
    ss_enclave_keyfn get_key; /* sandbox + encrypted: key provisioning */
    void *key_ctx;
    const char *program; /* sandbox: enclave executable (default: see
                            ss_enclave_program_path) */
    unsigned spin_us;    /* sandbox: busy-wait before sleeping (default
                            50 us; 0 keeps the default) */
    uint64_t run;        /* the run it serves (0: none): outputs carry it,
                            inputs of another run are refused */
    int spawner_fd;      /* sandbox: > 0: a socket to an enclave spawner
                            (ss_spawner.h) that starts the child under the
                            enclave's own uid; 0: fork/exec here */
    int echo;            /* test/bench: no script; the output message is
                            the input message (transport only) */
    const char *partition_by; /* cut each output by the key group of this
                                 field (the next stage is partitioned) */
    uint32_t broadcast;  /* N > 0: each output as N copies (the next
                            stage is broadcast). Both are measured, and
                            res->msg then holds one or more messages back
                            to back (ss_psplit_cut) */
    const char *const *chain; /* the stages chained after this one,
                                 "STAGE=SCRIPT" each (nchain of them, at
                                 most SS_CHAIN_MAX - 1): they run in the
                                 same enclave, in order, on the batch
                                 opened once (docs/PIPELINE.md,
                                 Chaining); measured with the first
                                 (ss_bundle_measured_chain). Borrowed
                                 until open returns */
    int nchain;
} ss_enclave_opts;

/* What one call produced. Embedded by value: ss_enclave_result_init /
 * ss_enclave_result_release; the call resets it first. */
typedef struct ss_enclave_result {
    ss_buf msg;     /* output wire message (header + payload) */
    ss_buf rejects; /* see above; empty when nrejects is 0 */
    uint32_t nrejects;
    ss_stage_counts delta; /* this call's counts (the first stage's) */
    size_t nstages;        /* stages run (1 + nchain; 0: echo) */
    ss_stage_counts stages[SS_CHAIN_MAX]; /* each stage's counts of this
                                             call; [0] is delta */
    uint64_t mem_peak;     /* Lua memory peak so far, bytes */
} ss_enclave_result;

void ss_enclave_result_init(ss_enclave_result *r);
void ss_enclave_result_release(ss_enclave_result *r);

/* Starts the stage runner for o (copied). For sandbox: spawns the child,
 * waits for its report, and when encrypted runs attestation through
 * o->get_key. Returns 0 and *out (caller closes), or a negative code with
 * a one-line reason in err: SS_EINVAL (options), SS_ELUA (script failed
 * to load), SS_EDENIED (key refused), SS_EPEER (the child died: reason
 * says how). */
int ss_enclave_open(const ss_enclave_opts *o, ss_enclave **out, char *err,
                    size_t errlen);

/* The sandbox enclave program this build starts by default: the static
 * `sstream-enclave` next to this process's executable (in a test build,
 * `sstream-enclave-test`, which has the test hooks). Writes its path into
 * buf. Returns 0, SS_EIO (no /proc/self/exe) or SS_ETOOBIG. */
int ss_enclave_program_path(char *buf, size_t len);

/* Stops the runner (the child is asked to quit, then killed) and frees
 * everything; sets *p to NULL. Safe on NULL and twice. */
void ss_enclave_close(ss_enclave **p);

/* The enclave's measurement (SS_MEASUREMENT_BYTES, borrowed). */
const uint8_t *ss_enclave_measurement(const ss_enclave *e);
/* The backend's name ("none", "sandbox"). */
const char *ss_enclave_backend(const ss_enclave *e);
/* What the script declared: endpoints (borrowed, may be NULL), whether it
 * keeps state, whether it uses the SGX operators. */
const char *ss_enclave_from(const ss_enclave *e);
const char *ss_enclave_to(const ss_enclave *e);
int ss_enclave_stateful(const ss_enclave *e);
int ss_enclave_uses_sgx(const ss_enclave *e);
/* The number of stages it runs (1 + nchain) and whether stage k keeps
 * state (0 past the end). */
size_t ss_enclave_nstages(const ss_enclave *e);
int ss_enclave_stage_stateful(const ss_enclave *e, size_t k);
/* The child's pid (sandbox) or 0. */
pid_t ss_enclave_pid(const ss_enclave *e);

/* Processes one input message msg[0..n) (kind DATA). Returns 0 and fills
 * res, or: SS_ECRYPTO (input does not authenticate), SS_EDENIED
 * (plaintext input in encrypted mode), SS_EPROTO (bad message),
 * SS_ETOOBIG (output too large), SS_ENOMEM, or SS_EPEER if the enclave
 * died: err then says e.g. "enclave of worker map-1 was killed by signal
 * 31 (SIGSYS): forbidden system call"; the enclave is then down until
 * ss_enclave_restart. Never trusts msg. */
int ss_enclave_call(ss_enclave *e, const void *msg, size_t n,
                    ss_enclave_result *res, char *err, size_t errlen);

/* For a batch that killed the enclave each time: authenticates msg like
 * ss_enclave_call but runs nothing. Every event is rejected and counted
 * (one reject record, sealed when encrypted) and res->msg is an empty
 * batch with the input's lineage, so that the stream stays complete.
 * Same errors as ss_enclave_call. */
int ss_enclave_reject(ss_enclave *e, const void *msg, size_t n,
                      ss_enclave_result *res, char *err, size_t errlen);

/* Completion: the chain's onCompleted; res->msg gets what it emitted
 * (e.g. the reduce result) under header final (kind DATA; SS_BF_FINAL is
 * added; count/len are set). Same errors as ss_enclave_call, and
 * SS_ELUA if the stage failed: res->rejects then holds its reason as a
 * REJECT message with count 0, sealed when encrypted (it may quote data),
 * and err names the stage only. Once only: SS_EDENIED the second time. */
int ss_enclave_complete(ss_enclave *e, const ss_hdr *final,
                        ss_enclave_result *res, char *err, size_t errlen);

/* Checkpoint: takes the state of the stage (of each stage of a chained
 * worker: ss_chain_snapshot) between batches (at a barrier)
 * and seals it as the state of `epoch` of this run, stage and worker
 * (crypto/ss_snapshot.h), into sealed (reset first). The snapshot is
 * taken AND sealed where the stage runs: inside the sandbox enclave,
 * with the data key, so the host gets only ciphertext; with backend none
 * in this process (encrypted: with the data key; plain: the plain form,
 * a checksum against accidents only). The run is the one the enclave was
 * opened for (o->run). Epochs must go up from one snapshot to the next.
 * Returns 0, or a negative code with the reason in err: SS_EENCODE (a
 * state value that cannot be checkpointed: err names the operator; the
 * path of the value only outside an enclave), SS_EDENIED (after
 * completion, epoch not above the last one), SS_ELUA, SS_ETOOBIG,
 * SS_EPEER (the enclave died). The caller stores the blob; it needs no
 * other protection for confidentiality (sealed modes) or integrity. */
int ss_enclave_snapshot(ss_enclave *e, uint32_t epoch, ss_buf *sealed,
                        char *err, size_t errlen);

/* Restores blob[0..n) (untrusted) into a freshly opened (or restarted)
 * enclave, before its first batch. Inside the enclave it is opened and
 * refused unless it is a snapshot of this enclave's run, of this stage
 * and worker, of exactly `epoch`, unmodified and sealed with the data
 * key (a plain blob is refused in encrypted mode): err says what
 * differs (SS_EDENIED: other run, epoch, stage or worker; SS_ECRYPTO:
 * modified or another key; SS_EPROTO: not a snapshot). An attested
 * (sandbox, encrypted) enclave restores only the epoch the key service
 * granted it with the data key (ss_keyservice_set_restore, called by the
 * run's coordinator before it restarts the worker): another epoch, or
 * any restore without a grant, is refused (SS_EDENIED), so that a host
 * cannot choose an older checkpoint. The components that resume must
 * serve the run id that took the snapshot (a snapshot of another run is
 * refused): a restart from a checkpoint keeps the run's id and moves the
 * epochs on. Once restored, the enclave refuses input batches of an
 * epoch below `epoch` (their effect is in the state already): batches
 * replayed after a restore must carry the new epoch. After a failure,
 * restart the enclave before using it. */
int ss_enclave_restore(ss_enclave *e, uint32_t epoch, const void *blob,
                       size_t n, char *err, size_t errlen);

/* The same for a worker of a partitioned stateful stage restarted with
 * another worker count: blobs[0..r->from) are the snapshots of the
 * stage's r->from workers at r->epoch (STAGE-1 .. STAGE-from), and the
 * enclave restores from them the key groups of its slot r->slot of
 * r->slots, refusing anything the key service did not grant
 * (ss_ecore_restore_keyed). SS_ETOOBIG when they do not fit the
 * channel together. */
int ss_enclave_restore_keyed(ss_enclave *e, const ss_restore_grant *r,
                             const void *const *blobs, const size_t *lens,
                             char *err, size_t errlen);

/* What the caller must keep doing while the enclave works on one
 * request, however long it takes (a worker's heartbeats to its router,
 * its acknowledgements, its counters): fn(arg) is called about every
 * 10 ms that a request (call, reject, completion, snapshot, restore,
 * and the start-up of a restarted enclave) has waited, never for one
 * that answers sooner, so a quick batch pays nothing for it. Sandbox:
 * from the host's wait on the channel, which sleeps in 10 ms slices;
 * none: from the stage's CPU-timer hook inside user code
 * (ss_stage_set_tick, whose rules apply: the timer's signal is blocked
 * while fn runs). fn must not call back into e, and must not block for
 * long (the enclave's answer waits meanwhile). NULL: none (the default).
 * Kept across ss_enclave_restart. Can't fail. */
void ss_enclave_set_tick(ss_enclave *e, ss_stage_tick_fn fn, void *arg);

/* 1 if the runner is up (a sandbox child that died makes it 0). */
int ss_enclave_alive(ss_enclave *e);

/* Starts a fresh runner after a death (sandbox: new child, new report,
 * new key provisioning). State of a stateful chain is lost: the caller
 * decides whether that is acceptable. Returns like ss_enclave_open. */
int ss_enclave_restart(ss_enclave *e, char *err, size_t errlen);

/* Transport-only round trips for benchmarks: ping (no payload) and echo
 * (n bytes in, the same n bytes out into out). Sandbox and none. */
int ss_enclave_ping(ss_enclave *e, char *err, size_t errlen);
int ss_enclave_echo(ss_enclave *e, const void *p, size_t n, ss_buf *out,
                    char *err, size_t errlen);

/* Copy benchmark (bench micro): push appends n bytes to a store private
 * to the enclave (one copy in, nothing out); digest returns the SHA-256
 * of the store and its length, then empties it (keeping its memory).
 * Sandbox and none. */
int ss_enclave_push(ss_enclave *e, const void *p, size_t n, char *err,
                    size_t errlen);
int ss_enclave_digest(ss_enclave *e, uint8_t sha256[32], uint64_t *len,
                      char *err, size_t errlen);

/* Peak resident set of the child in KiB as last reported (sandbox), or
 * of this process (none). */
long ss_enclave_peak_rss_kb(const ss_enclave *e);

#endif
