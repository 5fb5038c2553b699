/*
 * ss_inlet.h - the consumer end of a router: a DEALER connected to the
 * router's BACK endpoint, used by the workers of the stage after the
 * router and by the sink.
 *
 * The inlet announces `credits` (how many batches it may hold at once) in
 * its HELLO; the router sends a DATA batch only against a credit, and
 * ss_inlet_ack returns one when the batch is fully processed and its
 * outputs were RECEIVED downstream. Acknowledgements are coalesced: they
 * leave as one CREDIT message when `ack_batch` of them are waiting, when
 * ss_inlet_recv finds no input (before it waits), on ss_inlet_heartbeat
 * and on ss_inlet_flush. Until then the router keeps the batch
 * and gives it to another worker if this one dies (stateless stages) or
 * aborts the run (stateful ones). The inlet heartbeats while it waits in
 * ss_inlet_recv; a worker busy for longer than a heartbeat interval calls
 * ss_inlet_heartbeat itself, or the router counts it as lost after its
 * peer timeout.
 *
 * One thread per inlet. Nothing here asserts on what the router sends.
 */
#ifndef SS_INLET_H
#define SS_INLET_H

#include "wire/ss_batch.h"

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

typedef struct ss_inlet ss_inlet;

typedef struct ss_inlet_opts {
    const char *endpoint; /* the router's BACK, e.g. tcp://host:5556 */
    const char *name;     /* unique peer name, also the routing id */
    const char *stage;    /* the stage this worker runs */
    unsigned credits;     /* batches it may hold at once (default 4) */
    int stateful;         /* its death cannot be retried: abort */
    int connect_timeout_ms; /* wait for WELCOME at most this (<= 0:
                               SS_PEER_CONNECT_TIMEOUT_MS) */
    int heartbeat_ms;     /* 0: the router's (from WELCOME) */
    const char *role;     /* "worker" (default) or "sink" */
    const struct ss_curve *curve; /* CURVE client keys, or NULL */
    unsigned ack_batch;   /* acks sent together (default credits/2, >= 1) */
    uint64_t run;         /* the run id every message it sends carries */
    uint32_t index;       /* its slot 1..N in a partitioned or broadcast
                             stage (HELLO `index`); 0: none */
} ss_inlet_opts;

/*
 * Connects to o->endpoint, says HELLO and waits for WELCOME. Returns 0
 * and *out (caller destroys), or a negative code with a sentence in err
 * (as ss_link_new: SS_ETIMEOUT "cannot reach router at ...: no answer in
 * N ms", SS_EPEER, SS_EINVAL, SS_EIO, SS_ENOMEM).
 */
int ss_inlet_new(void *zctx, const ss_inlet_opts *o, ss_inlet **out,
                 char *err, size_t errlen);

/*
 * Waits up to timeout_ms (-1: forever) for the next DATA, EOS or BARRIER
 * (a checkpoint barrier: the caller passes it on; no CREDIT answers it).
 * Returns 1 with *msg (initialised here; the caller owns it and calls
 * zmq_msg_close) and *hdr filled; 0 on timeout; SS_EPEER with err = the
 * router's ABORT reason, or saying the router went silent; SS_EINTR if a
 * signal interrupted the wait; SS_EIO. Sends heartbeats while waiting.
 * After an EOS a silent router is no longer an error (it has exited).
 */
int ss_inlet_recv(ss_inlet *in, zmq_msg_t *msg, ss_hdr *hdr, int timeout_ms,
                  char *err, size_t errlen);

/* Acknowledges batch (its header as received: the lineage is what
 * counts) and returns one credit, at once or with the next acks (see
 * above). Returns 0, SS_EPEER or SS_EIO. */
int ss_inlet_ack(ss_inlet *in, const ss_hdr *batch);

/* Sends the acknowledgements held back, if any, as one CREDIT. Returns 0,
 * SS_EPEER or SS_EIO. */
int ss_inlet_flush(ss_inlet *in);

/* Sends the acknowledgements held back, then a HEARTBEAT unless
 * something was sent within a heartbeat interval. Returns 0, or SS_EPEER
 * after an abort (or SS_EIO). */
int ss_inlet_heartbeat(ss_inlet *in);

/* The DEALER socket, for zmq_poll only (ZMQ_POLLIN: call _recv). */
void *ss_inlet_socket(ss_inlet *in);

/* Whether our last call on that socket was a receive that found nothing
 * (ss_transport_wait_drained may then skip asking it for its events). */
int ss_inlet_drained(const ss_inlet *in);

/* Tells the router this consumer failed (ABORT with reason, see
 * ss_peer_abort), so that the run ends upstream too. Can't fail. */
void ss_inlet_abort(ss_inlet *in, const char *reason);

/* Sends the acknowledgements held back (without waiting), closes the
 * inlet and sets *p to NULL; unacknowledged batches go back to the
 * router's queue when it notices. Safe with NULL or *p NULL. */
void ss_inlet_destroy(ss_inlet **p);

#endif
