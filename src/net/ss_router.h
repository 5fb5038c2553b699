/*
 * ss_router.h - the router between two stages: it takes batches from the
 * producers on FRONT and deals them to the workers on BACK against their
 * credits, so that nothing is lost, nothing is counted twice, and faster
 * workers get more.
 *
 * The router reads only the 72-byte header of a DATA batch, never its
 * payload (which may be sealed). Guarantees, in order of importance:
 *
 *  - A batch RECEIVED from a producer is kept until a worker acknowledged
 *    it with CREDIT. A lost stateless worker's batches are dealt again;
 *    the loss of a stateful worker aborts the run (ABORT to every peer).
 *  - A lineage (stream, seq, part) is accepted from FRONT once; later
 *    copies are dropped and counted as duplicates.
 *  - Completion: when every producer group sent its EOS, the queue is
 *    empty and every batch was acknowledged, the router checks that every
 *    declared batch arrived (else ABORT naming the first missing one) and
 *    sends EOS to each live worker with the merged stream table and the
 *    roster of the stage.
 *
 * docs/PROTOCOL-net.md has the state machine.
 */
#ifndef SS_ROUTER_H
#define SS_ROUTER_H

#include "wire/ss_batch.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ss_router ss_router;
struct ss_router_stats;

/*
 * What a router holds, bounded with default options (docs/PROTOCOL.md,
 * "Limits"): its queue (queue_bytes, plus the one batch that takes it
 * past) and, for each producer connection, what libzmq reads before the
 * router takes it: at most SS_ROUTER_FRONT_HWM whole frames and the one
 * being read, each at most max_frame (SS_ROUTER_FRAME_DEFAULT: 4 MiB, 16
 * times the default batch, header included; a larger frame costs its sender
 * the connection, and WELCOME tells producers the limit beforehand).
 */
/* default queue_bytes: about 4 MiB (64 batches of 64 KiB, 16 of the
 * default 256 KiB), so that a larger batch_size queues fewer batches,
 * not more bytes */
#define SS_ROUTER_QUEUE_BYTES (4ull * SS_BATCH_INFLIGHT_BYTES)
#define SS_ROUTER_FRAME_DEFAULT (4ull << 20) /* 16 default batches */
/* frames libzmq holds per producer: twice a producer's default window
 * (16), which never sends more unconfirmed, nor heartbeats meanwhile
 * (ss_peer.h): a full pipe stops libzmq reading the connection, and then
 * it does not see the peer go either (its restart under the same name
 * then leaks the old connection, libzmq issue #3238) */
#define SS_ROUTER_FRONT_HWM 32
#define SS_ROUTER_PEERS_MAX 4096 /* producers, and workers, at once */

typedef struct ss_router_opts {
    const char *from;     /* FRONT endpoint to bind (producers connect) */
    const char *to;       /* BACK endpoint to bind (workers connect) */
    const char *name;     /* for logs and messages (default "router") */
    unsigned producers;   /* producer groups to wait for (default 1) */
    unsigned queue;       /* stop reading FRONT above this (default 64) */
    uint64_t queue_bytes; /* ... or above this many bytes queued
                             (default SS_ROUTER_QUEUE_BYTES) */
    uint64_t max_frame;   /* largest frame taken from producers (header +
                             payload; default SS_ROUTER_FRAME_DEFAULT, at
                             most header + 64 MiB): libzmq drops the
                             connection of a larger one */
    int heartbeat_ms;     /* peers' heartbeat interval (default 500) */
    int peer_timeout_ms;  /* a silent worker is lost (default 5000) */
    int stall_ms;         /* a worker holding batches that acknowledges
                             none for this long is lost, though it
                             heartbeats (default 6 x peer_timeout_ms) */
    int linger_ms;        /* socket linger after the end (default 1000) */
    uint64_t run;         /* the run id; 0: learnt from the first HELLO */
    const char *peers;    /* comma-separated names that may say hello on
                             either side (copied), or NULL: anyone */
    unsigned partitions;  /* N > 0: the stage's workers are slots 1..N
                             (HELLO index): a PARTITIONED batch goes to
                             the slot owning its key group, a BROADCAST
                             copy to the slot its part names; 0: credit
                             balancing only (docs/PROTOCOL.md) */
    const struct ss_curve *curve; /* CURVE server keys and the allowed
                                     peers (a ZAP handler runs in zctx),
                                     or NULL: no CURVE (ss_curve.h) */
    /* optional: called from the router's thread at every housekeeping
     * turn (every heartbeat/2) and once more when ss_router_run ends
     * (final = 1), e.g. to report the counters (cmd_router.c) */
    const char *resume; /* after a restart from a checkpoint: the source
                           streams and the seqs they resume at
                           (wire/ss_resume.h; the batches below count as
                           arrived); NULL: every stream starts at 0 */
    void (*tick)(void *arg, const struct ss_router_stats *st, int final);
    void *tick_arg;
} ss_router_opts;

/* Counters, updated by the router's thread as it goes. */
typedef struct ss_router_stats {
    uint64_t in_batches, in_bytes;   /* DATA accepted from FRONT */
    uint64_t out_batches, out_bytes; /* DATA sent to workers (retries too) */
    uint64_t in_events, out_events;  /* events in those batches */
    uint64_t acked;                  /* batches acknowledged by workers */
    uint64_t duplicates;             /* DATA dropped as already accepted */
    uint64_t rejected;               /* malformed or unexpected messages */
    uint64_t redelivered;            /* batches dealt again after a loss */
    uint64_t workers_lost;
    uint64_t producers_lost; /* went away before their end of stream */
    uint32_t queue_depth;  /* batches waiting for a worker */
    uint32_t inflight;     /* batches sent and not yet acknowledged */
    uint32_t credits;      /* credits the live workers have left */
    uint32_t workers;      /* live workers */
    uint32_t producers;    /* producers that said HELLO */
    /* keyed streams: events of the PARTITIONED batches accepted, and the
     * key group with the most of them (hot_events); see
     * ss_router_hot() */
    uint64_t keyed_events, hot_events;
    uint32_t hot_partition;
    uint32_t hot_slot; /* the slot 1..N owning it (0: not partitioned) */
    /* checkpoints: barriers accepted from producers, barriers forwarded
     * (one per epoch, to every worker), the last epoch aligned */
    uint64_t barriers_in, barriers_out;
    uint32_t epoch;
} ss_router_stats;

/* 1 if st shows a hot partition: with n slots (n >= 2), one key group
 * holds more than a worker's fair share of the keyed events
 * (hot_events * n > keyed_events, at least 100 keyed events): a key
 * group is never split, so its worker does more than any balance would
 * give it and the stage waits for it. Can't fail. */
int ss_router_hot(const ss_router_stats *st, unsigned n);

/*
 * Creates the router and binds both endpoints in zctx (which must outlive
 * it). Returns 0 and *out (caller destroys), or a negative code with a
 * sentence in err, e.g. SS_EIO "cannot bind tcp://x:5555: Address already
 * in use", SS_EINVAL for bad options, SS_ENOMEM.
 */
int ss_router_new(void *zctx, const ss_router_opts *o, ss_router **out,
                  char *err, size_t errlen);

/*
 * Runs the router until the run completes (returns 0 after sending EOS
 * to the workers) or fails: SS_EINTEGRITY (a batch is missing, a stream
 * table is inconsistent), SS_EPEER (a stateful worker was lost), SS_EINTR
 * (ss_router_stop), SS_EPROTO (producers disagree on their groups),
 * SS_EIO. Every failure sends ABORT with the reason to every peer and
 * copies it into err. Call once.
 */
int ss_router_run(ss_router *r, char *err, size_t errlen);

/* Asks a running router to abort at its next wake-up (at most a
 * heartbeat later). Async-signal-safe and thread-safe. */
void ss_router_stop(ss_router *r);

/* The counters. Read them from the router's thread (a hook) or after
 * ss_router_run returned; another thread may see a torn snapshot. */
const ss_router_stats *ss_router_stats_get(ss_router *r);

/* Closes the sockets (lingering linger_ms for messages still queued),
 * frees everything and sets *p to NULL. Safe with NULL or *p NULL. */
void ss_router_destroy(ss_router **p);

#endif
