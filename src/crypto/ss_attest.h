/*
 * ss_attest.h - enclave measurements and attestation reports.
 *
 * Measurement: SHA-256 over
 *
 *     "sstream-measurement-v1\0"
 *     u64le(len(program)) program bytes      (the enclave executable)
 *     u64le(len(script))  script bytes       (the stage script, with the
 *                                            local modules it requires:
 *                                            ss_bundle_measured)
 *     u64le(len(config))  config bytes       (ss_attest_config)
 *
 * Report (SS_REPORT_BYTES, fixed layout, signed by the platform key):
 *
 *     off  size
 *       0     8  magic "SSRPT2\0\0"
 *       8    32  measurement
 *      40    32  X25519 public key the enclave made at start (crypto_box)
 *      72    64  stage name, NUL-padded (measured through the config)
 *     136    64  worker name, NUL-padded (the key service checks it
 *                 against the connection it came from)
 *     200     8  run id, little-endian: the run the enclave serves (it
 *                 refuses batches of any other); the key service of a
 *                 run releases the key to reports of that run only
 *     208    64  ed25519 signature over bytes 0..207
 *
 * With the sandbox backend the enclave process computes its own
 * measurement (reading /proc/self/exe) and signs with platform.key: this
 * emulates SGX (EREPORT + quote) but is NOT hardware-rooted: whoever can
 * read platform.key can forge a report. Under Gramine/SGX the measurement
 * is MRENCLAVE and the signature a quote verified through Intel's chain.
 */
#ifndef SS_ATTEST_H
#define SS_ATTEST_H

#include <stddef.h>
#include <stdint.h>

#define SS_MEASUREMENT_BYTES 32
#define SS_REPORT_BYTES 272
#define SS_REPORT_NAME_MAX 64 /* with the NUL */

typedef struct ss_report {
    uint8_t measurement[SS_MEASUREMENT_BYTES];
    uint8_t pubkey[32];
    char stage[SS_REPORT_NAME_MAX];
    char name[SS_REPORT_NAME_MAX];
    uint64_t run; /* the run id the enclave was started for; 0: none */
} ss_report;

/* Writes the canonical configuration text measured with an enclave into
 * buf: the stage name, Lua memory cap, instruction budget per event (as
 * the enclave runs with it: callers pass the value in force, not 0),
 * encryption, processor ("stage" or "echo") and the sandboxed flag,
 * and how the stage cuts its output for the next stage (output, from
 * ss_partition_spec: a line "output=..." only when not NULL or "", so
 * that the measurement of a stage that does not cut is unchanged).
 * Returns the length, or SS_EINVAL if it does not fit, stage is not a
 * plain name or output holds a newline. */
int ss_attest_config(char *buf, size_t len, const char *stage,
                     size_t mem_limit, uint64_t max_instructions,
                     const char *output, int encrypted, int echo);

/* Computes a measurement from bytes. Can't fail. */
void ss_measure(const void *program, size_t nprogram, const void *script,
                size_t nscript, const char *config,
                uint8_t out[SS_MEASUREMENT_BYTES]);

/* Same, reading the program from its file 64 KiB at a time (never whole
 * in memory); the same measurement as ss_measure on its bytes. Returns
 * 0, or SS_ENOTFOUND / SS_EIO (also when it changed size while read) /
 * SS_ETOOBIG (over 1 GiB) / SS_ENOMEM, out then unset. */
int ss_measure_program(const char *program, const void *script,
                       size_t nscript, const char *config,
                       uint8_t out[SS_MEASUREMENT_BYTES]);

/* Same, reading program and script (script may be NULL: empty; else the
 * script and its local modules, ss_bundle.h). Returns
 * 0 or SS_EIO / SS_ENOTFOUND / SS_ENOMEM with a reason in err. */
int ss_measure_files(const char *program, const char *script,
                     const char *config, uint8_t out[SS_MEASUREMENT_BYTES],
                     char *err, size_t errlen);

/* Same for a chain (docs/PIPELINE.md, Chaining): the stages
 * stages[0..n) with scripts scripts[0..n), run in one enclave, measured
 * as ss_bundle_measured_chain (n == 1: as ss_measure_files; n == 0: no
 * script). Same errors. */
int ss_measure_chain_files(const char *program, const char *const *scripts,
                           const char *const *stages, size_t n,
                           const char *config,
                           uint8_t out[SS_MEASUREMENT_BYTES], char *err,
                           size_t errlen);

/* Encodes and signs r with the ed25519 secret key sk (64 bytes). */
void ss_report_sign(const ss_report *r, const uint8_t *sk,
                    uint8_t out[SS_REPORT_BYTES]);

/* Checks the size, magic, signature (against platform_pk) and the names
 * of an untrusted report and decodes it into r. Returns 0 or SS_EDENIED
 * (bad signature) / SS_EPROTO (malformed). */
int ss_report_verify(const void *buf, size_t n, const uint8_t pk[32],
                     ss_report *r);

/* Lowercase hex of a measurement into out (65 bytes). */
void ss_measurement_hex(const uint8_t m[SS_MEASUREMENT_BYTES],
                        char out[2 * SS_MEASUREMENT_BYTES + 1]);

#endif
