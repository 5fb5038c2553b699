/*
 * ss_keyservice.h - releases the data key to attested enclaves only.
 *
 * The key service holds the data key, the platform public key and the
 * pipeline's manifest: the expected measurement of every enclaved stage
 * (computed by the pipeline owner from the trusted sstream binary, the
 * stage script and the enclave configuration; ss_attest.h). For a report
 * it checks the platform signature, that the stage is in the manifest and
 * that the measurement matches, and only then returns the data key sealed
 * to the report's public key (crypto_box_seal): nobody but that enclave
 * can open it, so the worker host relaying it learns nothing.
 *
 * What is sealed to the enclave (SS_KEYSERVICE_RELEASE_BYTES): the data
 * key's blob (ss_key_export), then the restore grant, 4 bytes
 * little-endian: the checkpoint epoch this enclave may restore (0: none,
 * it starts fresh; see ss_keyservice_set_restore). Sealed to the
 * enclave's one-time key, it cannot be replayed to another enclave, so
 * the host cannot make an enclave restore an epoch the key service did
 * not grant it.
 *
 * In-process: ss_keyservice_keyfn as the enclave's get_key. Over the
 * network (`sstream keyservice`, and `sstream run`'s own service):
 * net/ss_keyserver.h, under CURVE with an allow list.
 *
 * Manifest file: one line per stage, "<stage> <64 hex digits>", '#'
 * comments.
 */
#ifndef SS_KEYSERVICE_H
#define SS_KEYSERVICE_H

#include "core/ss_buf.h"
#include "crypto/ss_attest.h"
#include "crypto/ss_keys.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct ss_keyservice ss_keyservice;

/* Loads the data key and platform public key of dir. Returns 0 and *out
 * (caller destroys), or a negative code with a reason in err. */
int ss_keyservice_new(const char *key_dir, ss_keyservice **out, char *err,
                      size_t errlen);
/* Zeroes the key and frees everything; sets *p to NULL. Safe twice. */
void ss_keyservice_destroy(ss_keyservice **p);

/* Binds key releases to one run: from then on a report whose run id is
 * not run is refused ("the report is for run ..."), so an enclave started
 * for another run (or with none) gets no key. 0: any run (a standalone
 * key service serving components started by hand without --run). */
void ss_keyservice_set_run(ss_keyservice *ks, uint64_t run);

/* A restore grant: what an enclave worker may restore (see above). */
typedef struct ss_restore_grant {
    uint32_t epoch; /* the checkpoint (0: none, it starts fresh) */
    uint32_t from;  /* 0: from the worker's own snapshot; N > 0: its stage
                       (partitioned, stateful) had N workers at epoch and
                       has another count now: from the snapshots of all N
                       (STAGE-1 .. STAGE-N), its own key groups only */
    uint32_t slot;  /* with from: this worker is slot 1..slots ... */
    uint32_t slots; /* ... of the stage's slots now */
} ss_restore_grant;

/* The plaintext of a key release: the key blob and the restore grant
 * (epoch, from, slot, slots: 4 bytes little-endian each). */
#define SS_KEYSERVICE_GRANT_BYTES 16
#define SS_KEYSERVICE_RELEASE_BYTES                                          \
    (SS_KEY_BLOB_BYTES + SS_KEYSERVICE_GRANT_BYTES)

/* From now on, key releases to worker (the name in its report) grant the
 * restore of the checkpoint of epoch (0: no restore, the default): the
 * run's coordinator calls it with the last complete checkpoint before it
 * restarts a worker that is to restore it (ss_enclave_restore, enclave
 * mode). Safe to call while another thread serves requests
 * (ss_keyserver_serve): a release sees the grant before or after, whole.
 * Returns 0, SS_EINVAL (bad name) or SS_ENOMEM. */
int ss_keyservice_set_restore(ss_keyservice *ks, const char *worker,
                              uint32_t epoch);

/* The same with a whole grant: a worker of a partitioned stateful stage
 * restarted with another worker count (g->from old workers, this one
 * slot g->slot of g->slots) restores its key groups from every old
 * worker's snapshot of g->epoch, and nothing else (ss_ecore_restore_keyed).
 * SS_EINVAL also for a grant that does not hold together (from without
 * a slot in 1..slots, more than SS_PARTITIONS of either). */
int ss_keyservice_set_grant(ss_keyservice *ks, const char *worker,
                            const ss_restore_grant *g);

/* Adds (or replaces) the expected measurement of stage. 0, SS_EINVAL (bad
 * name) or SS_ENOMEM. */
int ss_keyservice_expect(ss_keyservice *ks, const char *stage,
                         const uint8_t m[SS_MEASUREMENT_BYTES]);

/* Computes and adds the expected measurement of an enclaved stage from
 * the program, the script and the configuration the enclave will run
 * with (same arguments as the enclave's: see ss_attest_config). */
int ss_keyservice_expect_stage(ss_keyservice *ks, const char *stage,
                               const char *program, const char *script,
                               size_t mem_limit, uint64_t max_instructions,
                               int encrypted, char *err, size_t errlen);

/* The same for a stage that cuts its output for a partitioned or
 * broadcast next stage: output is its ss_partition_spec ("" or NULL:
 * none, the same as ss_keyservice_expect_stage). */
int ss_keyservice_expect_stage_out(ss_keyservice *ks, const char *stage,
                                   const char *program, const char *script,
                                   size_t mem_limit,
                                   uint64_t max_instructions,
                                   const char *output, int encrypted,
                                   char *err, size_t errlen);

/* The same for the stages stages[0..n) chained into one enclave
 * (docs/PIPELINE.md, Chaining), scripts[k] stage k's script: the
 * enclave of stage stages[0] is expected to measure them all
 * (ss_measure_chain_files); output is how the last one cuts its output.
 * n == 1 is ss_keyservice_expect_stage_out. */
int ss_keyservice_expect_chain(ss_keyservice *ks, const char *program,
                               const char *const *scripts,
                               const char *const *stages, size_t n,
                               size_t mem_limit, uint64_t max_instructions,
                               const char *output, int encrypted, char *err,
                               size_t errlen);

/* Reads / writes a manifest file. */
int ss_keyservice_load_manifest(ss_keyservice *ks, const char *path,
                                char *err, size_t errlen);
int ss_keyservice_write_manifest(const ss_keyservice *ks, FILE *f);

/* Decides on one untrusted report. On success appends the sealed key to
 * sealed and returns 0. Otherwise returns SS_EDENIED (or SS_EPROTO for a
 * malformed report) with err e.g. "key service: measurement of stage
 * 'map' does not match the manifest (script changed?): refusing key".
 * Logs each decision (stage, worker, measurement prefix; never the key). */
int ss_keyservice_request(ss_keyservice *ks, const void *report, size_t n,
                          ss_buf *sealed, char *err, size_t errlen);

/* The same, for a report that arrived on a connection authenticated as
 * peer (the worker name its CURVE key stands for; NULL: not checked): a
 * report naming another worker is refused, so one worker host cannot
 * ask for the key with another's report. */
int ss_keyservice_request_as(ss_keyservice *ks, const void *report,
                             size_t n, const char *peer, ss_buf *sealed,
                             char *err, size_t errlen);

/* ss_enclave_keyfn for an in-process key service (ctx: ss_keyservice*). */
int ss_keyservice_keyfn(void *ctx, const void *report, size_t n,
                        ss_buf *sealed, char *err, size_t errlen);

#endif
