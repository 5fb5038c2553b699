/*
 * ss_link.h - the producer end of a router: a DEALER connected to the
 * router's FRONT endpoint, used by sources and by the workers of the
 * stage before the router.
 *
 * The link sends DATA batches and keeps at most `window` of them, and at
 * most `window_bytes` bytes of them (beyond the first SS_LINK_WINDOW_MIN
 * batches, which always go), sent but not yet RECEIVED by the router (a batch is RECEIVED once the router has
 * queued it: from then on the router, not the producer, answers for it).
 * Each RECEIVED fires the on_received callback with the tag given to
 * ss_link_send, which is how a worker knows when it may acknowledge the
 * input batch the output derives from. When everything was RECEIVED the
 * producer sends its end of stream with ss_link_send_eos.
 *
 * One thread per link. Nothing here asserts on what the router sends.
 */
#ifndef SS_LINK_H
#define SS_LINK_H

#include "net/ss_curve.h"
#include "net/ss_proto.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ss_link ss_link;

/* Batches a link may keep unconfirmed whatever their size, so that one
 * is on its way while the next is built. */
#define SS_LINK_WINDOW_MIN 2

typedef struct ss_link_opts {
    const char *endpoint; /* the router's FRONT, e.g. tcp://host:5555 */
    const char *name;     /* unique peer name, also the routing id */
    const char *role;     /* "source" or "worker" (default "source") */
    const char *stage;    /* this producer's stage (default = role) */
    const char *group;    /* completion group (default = stage) */
    unsigned members;     /* producers in the group (default 1) */
    unsigned window;      /* max batches sent but not RECEIVED (16) */
    uint64_t window_bytes; /* ... and max bytes of them, headers included
                              (0: SS_BATCH_INFLIGHT_BYTES), except that
                              SS_LINK_WINDOW_MIN batches of any size may
                              always be unconfirmed */
    unsigned hold;        /* what HELLO tells the router as our window
                             (0: window): the router holds up to half
                             of that many RECEIVED before it sends them
                             together. A worker gives min(window, its
                             credits): each unconfirmed output keeps the
                             credit of its input */
    int connect_timeout_ms; /* wait for WELCOME at most this (<= 0:
                               SS_PEER_CONNECT_TIMEOUT_MS) */
    const ss_curve *curve;  /* CURVE client keys, or NULL (ss_curve.h) */
    int stateful; /* its output cannot be produced again if it dies: the
                     router fails the run if it vanishes before its EOS */
    uint64_t run; /* the run id: every message carries it, and a DATA
                     batch must carry it and ss_name_id(name) already */
    const atomic_int *stop; /* or NULL: while waiting for WELCOME, its
                               being nonzero ends the wait (SS_EINTR,
                               err says where it waited), and a signal
                               ends it only then; NULL: any signal
                               that interrupts the wait ends it */
    const atomic_int *ending; /* or NULL: nonzero while waiting for
                                 WELCOME, the waiting notes say that
                                 the stream ends once the router
                                 answers (ss_peer_open) */
} ss_link_opts;

typedef void (*ss_link_received_fn)(uint64_t tag, void *arg);

/*
 * Connects to o->endpoint, says HELLO and waits for WELCOME. Returns 0
 * and *out (caller destroys), or a negative code with a sentence in err:
 * SS_ETIMEOUT "cannot reach router at tcp://...: no answer in 60000 ms",
 * SS_EPEER (the router aborted), SS_EINTR (stopped while waiting: see
 * o->stop), SS_EINVAL (bad options), SS_EIO, SS_ENOMEM. zctx must
 * outlive the link.
 */
int ss_link_new(void *zctx, const ss_link_opts *o, ss_link **out, char *err,
                size_t errlen);

/* Sets the function called with a batch's tag when the router confirms
 * it. Called from inside ss_link_send, _service and _send_eos only. */
void ss_link_on_received(ss_link *l, ss_link_received_fn fn, void *arg);

/*
 * Sends msg (a whole DATA message, header + payload, copied) and
 * remembers tag until the router confirms its lineage. First waits,
 * servicing RECEIVED messages, while sending it would leave more than
 * `window` batches, or more than `window_bytes` bytes in more than
 * SS_LINK_WINDOW_MIN batches, unconfirmed.
 * Returns 0; SS_EINVAL if msg is not a valid DATA message; SS_EPEER if the
 * router aborted or went silent (ss_link_error says why); SS_ETOOBIG if
 * msg is larger than the router takes (its WELCOME's max_frame: it would
 * drop the connection; nothing is sent, ss_link_error names the limit);
 * SS_EINTR if a signal interrupted the wait; SS_EIO.
 */
int ss_link_send(ss_link *l, const void *msg, size_t len, uint64_t tag);

/* Waits up to timeout_ms (-1: forever, 0: just look) for messages from
 * the router and handles all that arrived (heartbeating if idle). Returns
 * how many batches were confirmed, or the errors of ss_link_send. */
int ss_link_service(ss_link *l, int timeout_ms);

/*
 * Waits until every batch was RECEIVED, then sends eos (group and members
 * default to the link's when eos->group is empty / members is 0) and
 * waits for the router to confirm it. Returns 0, SS_ETIMEOUT after
 * timeout_ms (-1: forever), or the errors of ss_link_send.
 */
int ss_link_send_eos(ss_link *l, const ss_eos *eos, int timeout_ms);

/* Sends a checkpoint BARRIER of epoch (1 or more) now, behind every
 * batch sent before it (docs/PROTOCOL.md, "BARRIER"); it takes no slot of
 * the window and is not confirmed. Returns 0, SS_EINVAL (epoch 0), or the
 * errors of ss_link_send. */
int ss_link_send_barrier(ss_link *l, uint32_t epoch);

/* Why the last call failed (the router's ABORT reason...); never NULL. */
const char *ss_link_error(const ss_link *l);

/* The DEALER socket, for zmq_poll only (ZMQ_POLLIN: call _service). */
void *ss_link_socket(ss_link *l);

/* Whether our last call on that socket was a receive that found nothing
 * (ss_transport_wait_drained may then skip asking it for its events). */
int ss_link_drained(const ss_link *l);

/* Tells the router this producer failed (ABORT with reason, see
 * ss_peer_abort), so that the run ends downstream too. Can't fail. */
void ss_link_abort(ss_link *l, const char *reason);

/* Closes the link (pending batches are forgotten) and sets *p to NULL.
 * Safe with NULL or *p NULL. */
void ss_link_destroy(ss_link **p);

#endif
