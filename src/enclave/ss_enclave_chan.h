/*
 * ss_enclave_chan.h - the shared-memory channel between a worker (host)
 * and its sandbox enclave child. Internal to src/enclave and
 * cmd_enclave.c.
 *
 * One memfd, mapped MAP_SHARED by both, laid out as
 *
 *   [0, CTL)                 ss_chan_ctl: doorbells, op, lengths, status
 *   [CTL, CTL+IN)            input area: the host writes one message
 *   [CTL+IN, CTL+IN+OUT/2)   output message, written by the child
 *   [.. + OUT/2, .. + OUT)   rejects, written by the child
 *
 * Doorbells: req (host -> child) and resp (child -> host) are sequence
 * numbers and futex words. The host writes op/in_len and the input, then
 * increments req; the child handles it, writes the results and sets
 * resp = req. Waiters spin for a while, then announce themselves in
 * *_sleeping and FUTEX_WAIT; wakers FUTEX_WAKE only when the other side
 * announced it sleeps (all four accesses seq_cst: no lost wake-up). The
 * host waits with a timeout so that it notices a dead child.
 *
 * Trust: the child treats everything the host wrote as hostile (reads op
 * and lengths once, copies the input into private memory before parsing
 * or decrypting it: no double fetch). The host checks the child's
 * lengths and status too.
 *
 * Request 1 is implicit: the child's start-up (its response carries the
 * measurement, the script's declarations and the signed report).
 */
#ifndef SS_ENCLAVE_CHAN_H
#define SS_ENCLAVE_CHAN_H

#include "crypto/ss_attest.h"
#include "lua/ss_chain.h"
#include "wire/ss_batch.h"

#include <stdatomic.h>
#include <stdint.h>

#define SS_CHAN_MAGIC 0x48435353u /* "SSCH" */
#define SS_CHAN_VERSION 2 /* 2: chained stages */
#define SS_CHAN_CTL_SIZE 8192u
#define SS_CHAN_IN_CAP                                                       \
    ((SS_HDR_SIZE + SS_BATCH_MAX_SIZE + 4095u) & ~(size_t)4095u)
#define SS_CHAN_OUT_CAP (2 * SS_CHAN_IN_CAP)
#define SS_CHAN_SIZE (SS_CHAN_CTL_SIZE + SS_CHAN_IN_CAP + SS_CHAN_OUT_CAP)
#define SS_CHAN_FD 3 /* the memfd's number in the child */

enum ss_chan_op {
    SS_CHAN_START = 1,     /* implicit first request */
    SS_CHAN_PROVISION = 2, /* in: data key sealed to the report's key */
    SS_CHAN_CALL = 3,      /* in: one wire message */
    SS_CHAN_COMPLETE = 4,  /* in: the final header (SS_HDR_SIZE bytes) */
    SS_CHAN_PING = 5,      /* nothing */
    SS_CHAN_ECHO = 6,      /* in: bytes, out: the same bytes */
    SS_CHAN_QUIT = 7,      /* the child exits 0 */
    SS_CHAN_PUSH = 8,      /* bench: in: bytes, appended to a private
                              store; out: nothing */
    SS_CHAN_DIGEST = 9,    /* bench: out: SHA-256 of the store (32 bytes);
                              counts[0] = its length; the store empties */
    SS_CHAN_REJECT = 10,   /* in: one wire message, authenticated but not
                              run: all its events rejected (see
                              ss_enclave_reject) */
    SS_CHAN_SNAPSHOT = 11, /* in: the epoch (u32 LE); out: the sealed
                              snapshot blob (ss_enclave_snapshot) */
    SS_CHAN_RESTORE = 12,  /* in: the epoch (u32 LE), then the blob
                              (ss_enclave_restore) */
    SS_CHAN_RESTORE_KEYED = 13, /* in: epoch, from, slot, slots (u32 LE
                              each), then `from` times a length (u32 LE)
                              and a blob (ss_enclave_restore_keyed) */
};

typedef struct ss_chan_ctl {
    uint32_t magic;
    uint32_t version;
    _Alignas(64) _Atomic uint32_t req;
    _Atomic uint32_t req_sleeping;
    _Alignas(64) _Atomic uint32_t resp;
    _Atomic uint32_t resp_sleeping;
    _Alignas(64) uint32_t op;
    int32_t status; /* 0 or a negative ss_err */
    uint64_t in_len;
    uint64_t msg_len;
    uint64_t rej_len;
    uint32_t nrejects;
    uint32_t stateful;
    uint32_t uses_sgx;
    uint32_t has_report;
    uint64_t counts[6]; /* in passed dropped rejected out out_bytes */
    uint64_t mem_peak;  /* Lua peak, bytes (all stages) */
    uint32_t nstages;   /* start-up: the stages loaded (1 + chained) */
    uint64_t stateful_bits; /* start-up: bit k, stage k keeps state */
    uint64_t chain_counts[SS_CHAIN_MAX - 1][6]; /* stage k + 1's counts,
                                                   as counts[] */
    int64_t peak_rss_kb;
    uint8_t measurement[SS_MEASUREMENT_BYTES];
    uint8_t report[SS_REPORT_BYTES];
    char from[256];
    char to[256];
    char err[1024];
} ss_chan_ctl;

_Static_assert(sizeof(ss_chan_ctl) <= SS_CHAN_CTL_SIZE, "ctl too large");

static inline uint8_t *ss_chan_in(void *base)
{
    return (uint8_t *)base + SS_CHAN_CTL_SIZE;
}
static inline uint8_t *ss_chan_out(void *base, int which)
{
    return (uint8_t *)base + SS_CHAN_CTL_SIZE + SS_CHAN_IN_CAP +
           (which ? SS_CHAN_OUT_CAP / 2 : 0);
}

/* Waits until *word != old: spins spin_ns, then sleeps on the futex
 * (announcing it in *sleeping), waking every timeout_ms (0: never) to let
 * the caller check its peer. Returns 1 when the word changed, 0 on a
 * timeout tick. */
int ss_chan_wait(_Atomic uint32_t *word, _Atomic uint32_t *sleeping,
                 uint32_t old, uint64_t spin_ns, int timeout_ms);

/* Adaptive spinning for one side of the channel. Spinning before the
 * futex makes a quick answer cheap (an empty round trip in well under a
 * microsecond), but a wait that outlasts the spin (a batch that takes a
 * millisecond to process, the idle time between batches) burns a core for
 * nothing, which on a machine with few cores slows the whole pipeline.
 * So a side spins only while its recent waits were short. */
typedef struct ss_chan_spin {
    uint64_t limit_ns; /* at most this; 0: never spin */
    uint64_t avg_ns;   /* moving average of the recent waits */
} ss_chan_spin;

/* How long to spin before the next wait. */
static inline uint64_t ss_chan_spin_ns(const ss_chan_spin *s)
{
    return s->avg_ns <= s->limit_ns ? s->limit_ns : 0;
}

/* Records how long a wait lasted (until the word changed). */
static inline void ss_chan_spin_record(ss_chan_spin *s, uint64_t waited_ns)
{
    s->avg_ns = (s->avg_ns * 7 + waited_ns) / 8;
}

/* Stores val into *word and wakes the other side if it sleeps. */
void ss_chan_ring(_Atomic uint32_t *word, _Atomic uint32_t *sleeping,
                  uint32_t val);

/* The child's side: runs the enclave (see ss_enclave_child.c). argv is
 * that of `sstream enclave`. Returns the process exit status. */
int ss_enclave_child_main(int argc, char **argv);

#endif
