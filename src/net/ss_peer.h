/*
 * ss_peer.h - (internal to src/net) what ss_link and ss_inlet share: a
 * DEALER socket connected to one router that introduces itself with
 * HELLO, waits for WELCOME, sends HEARTBEAT when it has been quiet for a
 * heartbeat interval, and notices a router that aborted or went silent.
 *
 * Embedded by value in its owner; not thread-safe (one thread per socket,
 * as ZeroMQ wants).
 */
#ifndef SS_PEER_H
#define SS_PEER_H

#include "core/ss_buf.h"
#include "net/ss_curve.h"
#include "net/ss_proto.h"
#include "wire/ss_batch.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

/* Why a peer end failed (ss_peer.failed); 0 while it is fine. */
enum {
    SS_PEER_ABORTED = 1, /* the router sent ABORT */
    SS_PEER_SILENT = 2,  /* nothing from the router for a peer timeout */
    SS_PEER_STUCK = 3,   /* the router took no message for a peer timeout */
};

typedef struct ss_peer {
    void *sock;
    char endpoint[256];
    char name[SS_PROTO_NAME_MAX];
    uint32_t id;                    /* ss_name_id(name): our producer id */
    uint64_t run;                   /* the run id our headers carry */
    char router[SS_PROTO_NAME_MAX]; /* from WELCOME */
    ss_buf out;                     /* scratch for control messages */
    int heartbeat_ms;               /* 0: never */
    int peer_timeout_ms;            /* router silence limit, 0: none */
    uint64_t max_frame; /* the largest message the router takes (its
                           WELCOME; SS_PROTO_MSG_MAX if it says none) */
    uint64_t last_recv_ms, last_send_ms;
    const atomic_int *stop; /* while opening: nonzero ends the wait */
    const atomic_int *ending; /* while opening: nonzero, the notes of the
                                 wait say the owner ends its stream once
                                 the router answers */
    int hold_heartbeats; /* producers (ss_link): the router has our
                            unconfirmed message, and reads FRONT only as
                            its queue has room: a heartbeat now would
                            wait unread behind it, fill the connection's
                            receive limit (SS_ROUTER_FRONT_HWM) and keep
                            libzmq from seeing us go */
    int drained; /* our last call on sock was a receive that found
                    nothing (EAGAIN): a wait may skip asking ZMQ_EVENTS
                    (ss_transport_wait_drained); every other call on
                    sock clears it */
    int failed;                          /* sticky: SS_PEER_ABORTED... */
    char err[SS_PROTO_REASON_MAX + 128]; /* why, when failed */
} ss_peer;

/* How long a peer waits for its router by default: components of a
 * cluster start in any order (containers, hosts), so a router that comes
 * up within a minute is found. ZeroMQ retries the connection meanwhile. */
#define SS_PEER_CONNECT_TIMEOUT_MS 60000
/* While it waits, a peer says so every this many milliseconds. */
#define SS_PEER_WAIT_NOTE_MS 5000

/*
 * Creates the DEALER (routing id = hello->name; a CURVE client with curve's
 * keys unless curve is NULL; every message it sends carries run and
 * ss_name_id(hello->name)),
 * keys unless curve is NULL), connects it to endpoint,
 * sends hello and waits up to connect_timeout_ms (<= 0: the default
 * SS_PEER_CONNECT_TIMEOUT_MS) for WELCOME, logging "'NAME' is waiting for
 * router at EP (N s so far, gives up after M s)" at info level every
 * SS_PEER_WAIT_NOTE_MS while there is no answer. heartbeat_ms
 * 0 means "as the router says". Returns 0; SS_ETIMEOUT with err "cannot
 * reach router at EP: no answer in N ms"; SS_EPEER with the router's ABORT
 * reason; SS_EINTR (err: "stopped while waiting for router at EP (no
 * answer in N ms): start the router first ...") when *stop is nonzero
 * (before or during the wait, checked every 100 ms and whenever a signal
 * interrupts the wait), or, with stop NULL, when a signal interrupts the
 * wait; SS_EINVAL / SS_EIO / SS_ENOMEM. On error p holds nothing.
 * ending (or NULL): while *ending is nonzero the waiting notes add
 * ": stopped, it ends its stream once the router answers (stop it again
 * to give up)" (a followed source, ss_source.c).
 */
int ss_peer_open(ss_peer *p, void *zctx, const char *endpoint,
                 const ss_hello *hello, uint64_t run, int connect_timeout_ms,
                 int heartbeat_ms, const ss_curve *curve,
                 const atomic_int *stop, const atomic_int *ending,
                 char *err, size_t errlen);

/* Closes the socket and frees p's memory. Safe twice. */
void ss_peer_close(ss_peer *p);

/* Sends one whole message, blocking at most a peer timeout. Returns 0,
 * SS_EPEER (p->err says why), SS_ETOOBIG (larger than the router's
 * max_frame: it would drop the connection; p->err says so) or SS_EIO. */
int ss_peer_send(ss_peer *p, const void *msg, size_t len);
/* Stamps the control message in b (just built by ss_proto) with p's run
 * and producer id, then sends it like ss_peer_send. */
int ss_peer_send_ctl(ss_peer *p, ss_buf *b);

/*
 * Tells the router this end fails: sends ABORT with reason (cut to
 * SS_PROTO_REASON_MAX - 1 bytes), without blocking; the socket lingers
 * while it leaves. Skipped when the router itself aborted us (it knows)
 * or p is not open. Can't fail: an ABORT that cannot leave is dropped,
 * and the router then notices the silence instead.
 */
void ss_peer_abort(ss_peer *p, const char *reason);

/* Sends a HEARTBEAT if nothing was sent for a heartbeat interval.
 * Never blocks; a heartbeat that cannot leave now is skipped. */
void ss_peer_tick(ss_peer *p);

/*
 * Waits up to timeout_ms (-1: forever) for the next message other than
 * HEARTBEAT and WELCOME, heartbeating meanwhile. Returns 1 with *msg
 * (initialised here, caller closes) and *hdr filled; 0 on timeout;
 * SS_EPEER after an ABORT or when the router stayed silent longer than
 * the peer timeout (p->err says which, and every later call fails the
 * same way); SS_EINTR when a signal interrupted the wait; SS_EIO.
 * Malformed messages are logged and skipped.
 */
int ss_peer_recv(ss_peer *p, zmq_msg_t *msg, ss_hdr *hdr, int timeout_ms);

#endif
