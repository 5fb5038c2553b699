/*
 * ss_proto.h - building and parsing the control messages of the credit
 * protocol between producers, routers and workers.
 *
 * Every message is one ZeroMQ frame: the 72-byte header of ss_batch.h and
 * `len` payload bytes (on ROUTER sockets the routing-id frame comes first).
 * Control payloads are one MessagePack map, or nothing:
 *
 *   kind       header fields used            payload
 *   HELLO      aux = credits                  {name, role, stage, credits,
 *                                              stateful, group, members}
 *   WELCOME    -                              {router, heartbeat_ms,
 *                                              peer_timeout_ms}
 *   CREDIT     lineage of the acknowledged    none, or {batches: [[stream,
 *              batch; count = batches; aux =   seq, part]...]} when count > 1
 *              credits returned
 *   RECEIVED   lineage of the batch received; none, or {batches: ...} as
 *              count = batches; aux = kind     CREDIT (DATA only)
 *              received (DATA/EOS)
 *   HEARTBEAT  -                              none
 *   ABORT      -                              {reason}
 *   EOS        -                              {streams: [[id, count]...],
 *                                              roster: [name...],
 *                                              group, members}
 *
 * Builders reset their ss_buf and write one whole message into it; they
 * only fail with SS_ENOMEM (or SS_EINVAL for a string that is too long).
 * Parsers take the payload (message + SS_HDR_SIZE, hdr.len bytes), never
 * trust it, and return SS_EPROTO with a static reason in *why.
 * docs/PROTOCOL-net.md describes the same thing for humans.
 */
#ifndef SS_PROTO_H
#define SS_PROTO_H

#include "core/ss_buf.h"
#include "wire/ss_batch.h"

#include <stddef.h>
#include <stdint.h>

#define SS_PROTO_NAME_MAX 64    /* names, roles, stages, groups, with NUL */
#define SS_PROTO_REASON_MAX 512 /* ABORT reasons, with NUL */
#define SS_PROTO_CREDITS_MAX 1024
#define SS_PROTO_ROSTER_MAX 4096
#define SS_PROTO_WINDOW_MAX 4096 /* a producer's HELLO window */
#define SS_PROTO_STREAMS_MAX (1u << 20)
#define SS_PROTO_ACKS_MAX 1024 /* batches one CREDIT/RECEIVED confirms */
/* Largest payloads accepted from the network (docs/PROTOCOL.md, "Limits"):
 * every control message but EOS (HELLO, CREDIT, ABORT ...), and EOS
 * (up to SS_PROTO_STREAMS_MAX streams). DATA: SS_BATCH_MAX_SIZE. */
#define SS_PROTO_CTRL_MAX (64u << 10)
#define SS_PROTO_EOS_MAX (16u << 20)
/* The largest whole message (header + payload) any socket takes. */
#define SS_PROTO_MSG_MAX ((int64_t)SS_HDR_SIZE + SS_BATCH_MAX_SIZE)

/* The largest payload a message of this kind may carry (above). */
size_t ss_proto_payload_max(int kind);

/* The lineage of a batch: what CREDIT and RECEIVED name. */
typedef struct ss_lineage {
    uint32_t stream;
    uint32_t part;
    uint64_t seq;
} ss_lineage;

/* Who a peer is; sent once as HELLO, answered by WELCOME. */
typedef struct ss_hello {
    char name[SS_PROTO_NAME_MAX];  /* unique, also the ZMQ routing id */
    char role[SS_PROTO_NAME_MAX];  /* "source", "worker" or "sink" */
    char stage[SS_PROTO_NAME_MAX]; /* stage the peer belongs to */
    char group[SS_PROTO_NAME_MAX]; /* completion group (see ss_eos) */
    uint32_t credits;              /* consumers: batches it may hold */
    uint32_t members;              /* size of its group */
    int stateful;                  /* its death cannot be retried */
    uint32_t index;                /* workers: slot 1..N in a partitioned
                                      or broadcast stage; 0: none (the
                                      key is sent only when set) */
    uint32_t window;               /* producers: how many of its batches
                                      may be unconfirmed at once without
                                      it waiting (the router may hold up
                                      to half of their RECEIVED); 0: not
                                      said (sent only when set) */
    uint64_t window_bytes;         /* producers: ... and how many bytes of
                                      them (the router holds RECEIVED for
                                      at most half); 0: not said */
} ss_hello;

/* The router's answer to HELLO: its name and its timing. */
typedef struct ss_welcome {
    char router[SS_PROTO_NAME_MAX];
    uint32_t heartbeat_ms;    /* send something at least this often */
    uint32_t peer_timeout_ms; /* silence after which a peer is lost */
    uint64_t max_frame;       /* the largest message (header + payload)
                                 the router takes from this peer; 0: not
                                 said (an older router: SS_PROTO_MSG_MAX) */
} ss_welcome;

/* One row of a stream table: stream `stream` has batches 0..count-1. */
typedef struct ss_eos_stream {
    uint32_t stream;
    uint64_t count;
} ss_eos_stream;

/*
 * End of stream. A producer sends one when every batch it sent was
 * RECEIVED: streams = the batch count of each stream it contributed to,
 * group/members = the completion group it belongs to (the router waits for
 * `members` distinct producers of each group). A router sends one to each
 * worker at completion: the merged table, roster = the live workers of the
 * stage, group = the stage, members = roster size. Embedded by value:
 * ss_eos_init / ss_eos_release; owns its arrays and roster strings.
 */
typedef struct ss_eos {
    ss_eos_stream *streams; /* sorted by stream id, ids unique */
    size_t nstreams, capstreams;
    char **roster; /* nroster NUL-terminated names */
    size_t nroster, caproster;
    char group[SS_PROTO_NAME_MAX];
    uint32_t members;
} ss_eos;

static inline int ss_proto_same_lineage(const ss_hdr *a, const ss_hdr *b)
{
    return a->stream == b->stream && a->seq == b->seq && a->part == b->part;
}

static inline ss_lineage ss_proto_lineage(const ss_hdr *h)
{
    ss_lineage l = {.stream = h->stream, .part = h->part, .seq = h->seq};
    return l;
}

static inline int ss_proto_is_lineage(const ss_hdr *h, const ss_lineage *l)
{
    return h->stream == l->stream && h->seq == l->seq && h->part == l->part;
}

/* Writes header h (its len field replaced by len) and the payload into
 * out. Returns 0, SS_ETOOBIG if len exceeds SS_BATCH_MAX_SIZE, or
 * SS_ENOMEM. */
int ss_proto_build(ss_buf *out, const ss_hdr *h, const void *payload,
                   size_t len);

/* HELLO from h (aux = credits). Strings must fit SS_PROTO_NAME_MAX. */
int ss_proto_hello(ss_buf *out, const ss_hello *h);
/* Parses a HELLO payload into h. name and role are required, others
 * default to "" / 0; role must be source, worker or sink. */
int ss_proto_hello_parse(const void *p, size_t n, ss_hello *h,
                         const char **why);

int ss_proto_welcome(ss_buf *out, const ss_welcome *w);
int ss_proto_welcome_parse(const void *p, size_t n, ss_welcome *w,
                           const char **why);

/* CREDIT: batch's lineage, aux = credits returned (normally 1). */
int ss_proto_credit(ss_buf *out, const ss_hdr *batch, uint32_t credits);
/* RECEIVED: lineage of msg (a DATA or EOS header), aux = its kind. */
int ss_proto_received(ss_buf *out, const ss_hdr *msg);
/* Coalesced acknowledgements: one CREDIT returning `credits` (or one
 * RECEIVED of DATA) for the n batches v[0..n-1], 1 <= n <=
 * SS_PROTO_ACKS_MAX. The header carries v[0]'s lineage and count = n;
 * for n > 1 the payload is {batches: [[stream, seq, part], ...]} listing
 * all n. n = 1 builds exactly ss_proto_credit / ss_proto_received. */
int ss_proto_credit_n(ss_buf *out, const ss_lineage *v, size_t n,
                      uint32_t credits);
int ss_proto_received_n(ss_buf *out, const ss_lineage *v, size_t n);
/* The batches a CREDIT or RECEIVED (header h, payload p[0..n)) confirms,
 * into v[0..cap-1] (cap >= SS_PROTO_ACKS_MAX takes any valid message):
 * the header's lineage when count <= 1 and the payload is empty, else the
 * payload's list, which must hold exactly count entries. Returns how
 * many (>= 1), or SS_EPROTO with *why. */
int ss_proto_acks_parse(const ss_hdr *h, const void *p, size_t n,
                        ss_lineage *v, size_t cap, const char **why);
int ss_proto_heartbeat(ss_buf *out);
/* ABORT with a reason, truncated to SS_PROTO_REASON_MAX - 1 bytes. */
int ss_proto_abort(ss_buf *out, const char *reason);
/* Copies the reason of an ABORT payload into reason[cap] (truncating). */
int ss_proto_abort_parse(const void *p, size_t n, char *reason, size_t cap,
                         const char **why);

/* Sets e to empty. Can't fail. */
void ss_eos_init(ss_eos *e);
/* Frees what e owns and leaves it empty. Safe twice. */
void ss_eos_release(ss_eos *e);
/* Declares stream with count batches. Returns 0, SS_ENOMEM, or
 * SS_EINTEGRITY if the stream is already declared with another count. */
int ss_eos_add_stream(ss_eos *e, uint32_t stream, uint64_t count);
/* Returns the row of stream, or NULL. */
const ss_eos_stream *ss_eos_find(const ss_eos *e, uint32_t stream);
/* Appends a copy of name to the roster. 0, SS_EINVAL (too long) or
 * SS_ENOMEM. */
int ss_eos_add_roster(ss_eos *e, const char *name);
/* Merges from's stream table into into's (roster and group untouched).
 * A stream in both with different counts is SS_EINTEGRITY, with *why set
 * and *stream the conflicting id; into may then hold part of from. */
int ss_eos_merge(ss_eos *into, const ss_eos *from, uint32_t *stream,
                 const char **why);
/* Writes a whole EOS message (header + map) into out. */
int ss_eos_encode(const ss_eos *e, ss_buf *out);
/* Parses an EOS payload into e, which must be initialised (it is reset
 * first). On error e is left empty. */
int ss_eos_decode(const void *p, size_t n, ss_eos *e, const char **why);

#endif
