/*
 * ss_peer.c - the DEALER end shared by ss_link and ss_inlet (ss_peer.h).
 */
#include "net/ss_peer.h"
#include "net/ss_transport.h"
#include "core/ss_log.h"
#include "core/ss_util.h"
#include "securestreams.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define PEER_LINGER_MS 500
#define DEFAULT_HEARTBEAT_MS 500

/* Milliseconds left until deadline (UINT64_MAX: none), capped to int. */
static int left_ms(uint64_t deadline)
{
    if (deadline == UINT64_MAX)
        return -1;
    uint64_t now = ss_now_ms();
    if (now >= deadline)
        return 0;
    uint64_t d = deadline - now;
    return d > 1000000 ? 1000000 : (int)d;
}

/* A signal interrupted a wait of ss_peer_open: with a stop to look at,
 * only that stop ends the wait (the signal may have asked for something
 * else: a followed source's first stop ends its stream, which needs the
 * router); without one, any signal does. */
static int interrupted(const ss_peer *p)
{
    return !p->stop || atomic_load(p->stop);
}

/* Sends without blocking past deadline. 0, SS_ETIMEOUT or SS_EIO; with
 * intr, SS_EINTR when a signal interrupts the wait (else it goes on: a
 * stopping component still sends what it has). */
static int send_until(ss_peer *p, const void *m, size_t n, uint64_t deadline,
                      int intr)
{
    for (;;) {
        p->drained = 0;
        if (zmq_send(p->sock, m, n, ZMQ_DONTWAIT) >= 0) {
            p->last_send_ms = ss_now_ms();
            return 0;
        }
        if (errno != EAGAIN && errno != EINTR)
            return SS_EIO;
        int left = left_ms(deadline);
        if (left == 0)
            return SS_ETIMEOUT;
        if (intr && p->stop && atomic_load(p->stop))
            return SS_EINTR;
        zmq_pollitem_t it = {p->sock, 0, ZMQ_POLLOUT, 0};
        if (zmq_poll(&it, 1, left < 0 || left > 100 ? 100 : left) < 0) {
            if (errno != EINTR)
                return SS_EIO;
            if (intr && interrupted(p))
                return SS_EINTR;
        }
    }
}

/* Logs that p still waits for its router (every SS_PEER_WAIT_NOTE_MS):
 * a component started before its router says what it waits for. */
static void note_waiting(const ss_peer *p, uint64_t start, int timeout_ms)
{
    ss_info("'%s' is waiting for router at %s (%llu s so far, gives up "
            "after %d s)%s", p->name, p->endpoint,
            (unsigned long long)((ss_now_ms() - start) / 1000),
            timeout_ms / 1000,
            p->ending && atomic_load(p->ending)
                ? ": stopped, it ends its stream once the router answers "
                  "(stop it again to give up)"
                : "");
}


/* The earlier of deadline and the next waiting note after *note. */
static uint64_t slice_end(uint64_t deadline, uint64_t note)
{
    return note < deadline ? note : deadline;
}

/* Waits for WELCOME until deadline, noting the wait every
 * SS_PEER_WAIT_NOTE_MS after *note. */
static int await_welcome(ss_peer *p, uint64_t deadline, int heartbeat_ms,
                         char *err, size_t errlen, int timeout_ms,
                         uint64_t start, uint64_t *note)
{
    for (;;) {
        if (p->stop && atomic_load(p->stop))
            return SS_EINTR; /* the caller says why (ss_peer_open) */
        int left = left_ms(slice_end(deadline, *note));
        zmq_pollitem_t it = {p->sock, 0, ZMQ_POLLIN, 0};
        int rc = left == 0 ? 0
                           : zmq_poll(&it, 1,
                                      p->stop && (left < 0 || left > 100)
                                          ? 100
                                          : left);
        if (rc < 0 && errno == EINTR && interrupted(p))
            return SS_EINTR; /* the caller says why (ss_peer_open) */
        if (rc < 0 && errno == EINTR)
            continue; /* not a stop of this wait: look at it again */
        if (rc == 0 && p->stop && left_ms(slice_end(deadline, *note)) > 0)
            continue; /* a 100 ms slice: look at stop again */
        if (rc < 0) {
            ss_errf(err, errlen, "cannot poll router at %s: %s",
                    p->endpoint, zmq_strerror(errno));
            return SS_EIO;
        }
        if (rc == 0 && left_ms(deadline) > 0) {
            note_waiting(p, start, timeout_ms);
            *note += SS_PEER_WAIT_NOTE_MS;
            continue;
        }
        if (rc == 0) {
            ss_errf(err, errlen,
                    "cannot reach router at %s: no answer in %d ms",
                    p->endpoint, timeout_ms);
            return SS_ETIMEOUT;
        }
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, p->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            continue;
        }
        ss_hdr h;
        const char *why;
        const uint8_t *d = zmq_msg_data(&m);
        size_t n = zmq_msg_size(&m);
        int ok = ss_hdr_decode(d, n, &h, &why) == 0;
        int v = ss_hdr_version(d, n);
        if (!ok && v >= 0 && v != SS_WIRE_VERSION) {
            ss_errf(err, errlen,
                    "router at %s speaks wire version %d, '%s' speaks %d; "
                    "upgrade one of them",
                    p->endpoint, v, p->name, SS_WIRE_VERSION);
            zmq_msg_close(&m);
            return SS_EPROTO;
        }
        if (ok && h.kind == SS_MSG_WELCOME) {
            ss_welcome w;
            if (ss_proto_welcome_parse(d + SS_HDR_SIZE, h.len, &w, &why)) {
                ss_errf(err, errlen, "router at %s sent a bad welcome: %s",
                        p->endpoint, why);
                zmq_msg_close(&m);
                return SS_EPROTO;
            }
            snprintf(p->router, sizeof p->router, "%s", w.router);
            p->heartbeat_ms = heartbeat_ms > 0 ? heartbeat_ms
                              : w.heartbeat_ms ? (int)w.heartbeat_ms
                                               : DEFAULT_HEARTBEAT_MS;
            p->peer_timeout_ms = (int)w.peer_timeout_ms;
            p->max_frame = w.max_frame ? w.max_frame
                                       : (uint64_t)SS_PROTO_MSG_MAX;
            zmq_msg_close(&m);
            p->last_recv_ms = ss_now_ms();
            return 0;
        }
        if (ok && h.kind == SS_MSG_ABORT) {
            char reason[SS_PROTO_REASON_MAX];
            if (ss_proto_abort_parse(d + SS_HDR_SIZE, h.len, reason,
                                     sizeof reason, &why))
                snprintf(reason, sizeof reason, "(unreadable reason)");
            ss_errf(err, errlen, "%s", reason);
            zmq_msg_close(&m);
            return SS_EPEER;
        }
        zmq_msg_close(&m); /* anything else before WELCOME is noise */
    }
}

/* See ss_peer.h. */
int ss_peer_open(ss_peer *p, void *zctx, const char *endpoint,
                 const ss_hello *hello, uint64_t run, int connect_timeout_ms,
                 int heartbeat_ms, const ss_curve *curve,
                 const atomic_int *stop, const atomic_int *ending,
                 char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->stop = stop; /* set already: the wait ends at once */
    p->ending = ending;
    ss_buf_init(&p->out);
    if (!endpoint || !*endpoint) {
        ss_errf(err, errlen, "no router endpoint: none was given (a "
                "script's os.getenv('FROM') or os.getenv('TO') with the "
                "variable unset?): set FROM / TO, or give --from / --to");
        return SS_EINVAL;
    }
    if (strlen(endpoint) >= sizeof p->endpoint) {
        ss_errf(err, errlen, "bad router endpoint '%.64s...': longer than "
                "%zu bytes", endpoint, sizeof p->endpoint - 1);
        return SS_EINVAL;
    }
    if (!hello->name[0]) {
        ss_errf(err, errlen, "a peer of %s needs a name", endpoint);
        return SS_EINVAL;
    }
    snprintf(p->endpoint, sizeof p->endpoint, "%s", endpoint);
    snprintf(p->name, sizeof p->name, "%s", hello->name);
    p->id = ss_name_id(p->name);
    p->run = run;
    if (connect_timeout_ms <= 0)
        connect_timeout_ms = SS_PEER_CONNECT_TIMEOUT_MS;
    p->sock = zmq_socket(zctx, ZMQ_DEALER);
    if (!p->sock) {
        ss_errf(err, errlen, "cannot create a socket for %s: %s", endpoint,
                zmq_strerror(errno));
        return SS_EIO;
    }
    int linger = PEER_LINGER_MS;
    zmq_setsockopt(p->sock, ZMQ_LINGER, &linger, sizeof linger);
    int64_t maxmsg = SS_PROTO_MSG_MAX; /* a larger frame: disconnect */
    zmq_setsockopt(p->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (zmq_setsockopt(p->sock, ZMQ_ROUTING_ID, p->name, strlen(p->name))) {
        ss_errf(err, errlen, "bad peer name '%s': %s", p->name,
                zmq_strerror(errno));
        ss_peer_close(p);
        return SS_EINVAL;
    }
    if (curve && ss_curve_apply(p->sock, curve)) {
        ss_errf(err, errlen, "cannot set the CURVE keys for %s: %s",
                endpoint, zmq_strerror(errno));
        ss_peer_close(p);
        return SS_EIO;
    }
    if (zmq_connect(p->sock, endpoint)) {
        ss_errf(err, errlen, "cannot connect to %s: %s%s", endpoint,
                zmq_strerror(errno), ss_endpoint_hint(endpoint));
        ss_peer_close(p);
        return SS_EINVAL;
    }
    int rc = ss_proto_hello(&p->out, hello);
    if (rc) {
        ss_errf(err, errlen, "cannot build hello for '%s': %s", p->name,
                ss_strerror(rc));
        ss_peer_close(p);
        return rc;
    }
    ss_hdr_stamp(p->out.data, p->run, p->id);
    uint64_t start = ss_now_ms();
    uint64_t deadline = start + (uint64_t)connect_timeout_ms;
    uint64_t note = start + SS_PEER_WAIT_NOTE_MS;
    while ((rc = send_until(p, p->out.data, p->out.len,
                            slice_end(deadline, note), 1)) == SS_ETIMEOUT &&
           left_ms(deadline) > 0) {
        note_waiting(p, start, connect_timeout_ms);
        note += SS_PEER_WAIT_NOTE_MS;
    }
    if (rc == 0)
        rc = await_welcome(p, deadline, heartbeat_ms, err, errlen,
                           connect_timeout_ms, start, &note);
    else if (rc == SS_ETIMEOUT)
        ss_errf(err, errlen, "cannot reach router at %s: no answer in %d ms",
                endpoint, connect_timeout_ms);
    else if (rc != SS_EINTR)
        ss_errf(err, errlen, "cannot send hello to %s: %s", endpoint,
                zmq_strerror(errno));
    if (rc == SS_EINTR)
        ss_errf(err, errlen,
                "stopped while waiting for router at %s (no answer in "
                "%llu ms): start the router first (components may start "
                "in any order and wait up to their connect timeout), or "
                "check the endpoint",
                endpoint, (unsigned long long)(ss_now_ms() - start));
    if (rc) {
        int zero = 0; /* nothing queued here is worth waiting for */
        zmq_setsockopt(p->sock, ZMQ_LINGER, &zero, sizeof zero);
        ss_peer_close(p);
        return rc;
    }
    p->stop = p->ending = NULL; /* only the wait for WELCOME looks */
    ss_debug("'%s' joined router %s at %s", p->name, p->router, endpoint);
    return 0;
}

/* See ss_peer.h. */
void ss_peer_close(ss_peer *p)
{
    if (p->sock)
        zmq_close(p->sock);
    p->sock = NULL;
    ss_buf_release(&p->out);
}

/* See ss_peer.h. */
int ss_peer_send(ss_peer *p, const void *msg, size_t len)
{
    if (p->failed)
        return SS_EPEER;
    if (p->max_frame && len > p->max_frame) {
        snprintf(p->err, sizeof p->err,
                 "'%s' cannot send a message of %zu bytes: router %s at %s "
                 "takes at most %llu (its --max-frame; smaller batches, or "
                 "a larger --max-frame on the router)",
                 p->name, len, p->router, p->endpoint,
                 (unsigned long long)p->max_frame);
        return SS_ETOOBIG;
    }
    int limit = p->peer_timeout_ms > 0 ? p->peer_timeout_ms : 5000;
    int rc = send_until(p, msg, len, ss_now_ms() + (uint64_t)limit, 0);
    if (rc == SS_ETIMEOUT) {
        snprintf(p->err, sizeof p->err,
                 "router at %s took no message from '%s' for %d ms",
                 p->endpoint, p->name, limit);
        p->failed = SS_PEER_STUCK;
        return SS_EPEER;
    }
    if (rc) {
        snprintf(p->err, sizeof p->err, "cannot send to router at %s: %s",
                 p->endpoint, zmq_strerror(errno));
        return SS_EIO;
    }
    return 0;
}

/* See ss_peer.h. */
void ss_peer_abort(ss_peer *p, const char *reason)
{
    if (!p->sock || p->failed == SS_PEER_ABORTED)
        return;
    char r[SS_PROTO_REASON_MAX];
    snprintf(r, sizeof r, "%s", reason && *reason ? reason : "(no reason)");
    if (ss_proto_abort(&p->out, r))
        return;
    ss_hdr_stamp(p->out.data, p->run, p->id);
    p->drained = 0;
    if (zmq_send(p->sock, p->out.data, p->out.len, ZMQ_DONTWAIT) >= 0)
        p->last_send_ms = ss_now_ms();
}

/* See ss_peer.h. */
void ss_peer_tick(ss_peer *p)
{
    if (p->heartbeat_ms <= 0 || p->failed || p->hold_heartbeats)
        return;
    uint64_t now = ss_now_ms();
    if (now - p->last_send_ms < (uint64_t)p->heartbeat_ms)
        return;
    if (ss_proto_heartbeat(&p->out))
        return;
    ss_hdr_stamp(p->out.data, p->run, p->id);
    p->drained = 0;
    if (zmq_send(p->sock, p->out.data, p->out.len, ZMQ_DONTWAIT) >= 0)
        p->last_send_ms = now;
}

/* See ss_peer.h. */
int ss_peer_send_ctl(ss_peer *p, ss_buf *b)
{
    if (b->len < SS_HDR_SIZE)
        return SS_EINVAL;
    ss_hdr_stamp(b->data, p->run, p->id);
    return ss_peer_send(p, b->data, b->len);
}

/* Milliseconds until the next heartbeat is due (at least 1). */
static int until_heartbeat(const ss_peer *p)
{
    if (p->heartbeat_ms <= 0 || p->hold_heartbeats)
        return -1;
    uint64_t since = ss_now_ms() - p->last_send_ms;
    if (since >= (uint64_t)p->heartbeat_ms)
        return 1;
    return (int)((uint64_t)p->heartbeat_ms - since);
}

/* Milliseconds until the router counts as silent (-1: never). */
static int until_silence(const ss_peer *p)
{
    if (p->peer_timeout_ms <= 0)
        return -1;
    uint64_t since = ss_now_ms() - p->last_recv_ms;
    if (since > (uint64_t)p->peer_timeout_ms)
        return 1;
    return (int)((uint64_t)p->peer_timeout_ms - since) + 1;
}

/* See ss_peer.h. */
int ss_peer_recv(ss_peer *p, zmq_msg_t *msg, ss_hdr *hdr, int timeout_ms)
{
    if (p->failed)
        return SS_EPEER;
    uint64_t deadline = UINT64_MAX;
    if (timeout_ms >= 0)
        deadline = timeout_ms ? ss_now_ms() + (uint64_t)timeout_ms : 0;
    for (;;) {
        /* read first: a message already there costs no poll at all */
        zmq_msg_init(msg);
        if (zmq_msg_recv(msg, p->sock, ZMQ_DONTWAIT) < 0) {
            int e = errno;
            p->drained = e == EAGAIN;
            zmq_msg_close(msg);
            if (e != EAGAIN && e != EINTR) {
                snprintf(p->err, sizeof p->err,
                         "cannot receive from router at %s: %s",
                         p->endpoint, zmq_strerror(e));
                return SS_EIO;
            }
            ss_peer_tick(p);
            uint64_t now = ss_now_ms();
            if (p->peer_timeout_ms > 0 &&
                now - p->last_recv_ms > (uint64_t)p->peer_timeout_ms) {
                snprintf(p->err, sizeof p->err,
                         "router %s at %s was silent for %d ms", p->router,
                         p->endpoint, p->peer_timeout_ms);
                p->failed = SS_PEER_SILENT;
                return SS_EPEER;
            }
            int wait = left_ms(deadline);
            if (wait == 0)
                return 0;
            int hb = until_heartbeat(p);
            if (hb >= 0 && (wait < 0 || hb < wait))
                wait = hb;
            int silent = until_silence(p);
            if (silent >= 0 && (wait < 0 || silent < wait))
                wait = silent;
            /* p->drained: unless ss_peer_tick just sent */
            if (ss_transport_wait_drained(&p->sock, &p->drained, 1,
                                          wait) < 0) {
                if (errno == EINTR)
                    return SS_EINTR;
                snprintf(p->err, sizeof p->err,
                         "cannot poll router at %s: %s", p->endpoint,
                         zmq_strerror(errno));
                return SS_EIO;
            }
            continue;
        }
        p->drained = 0;
        p->last_recv_ms = ss_now_ms();
        const char *why;
        const uint8_t *d = zmq_msg_data(msg);
        if (ss_hdr_decode(d, zmq_msg_size(msg), hdr, &why)) {
            ss_warn("'%s' dropped malformed message from router %s: %s",
                    p->name, p->router, why);
            zmq_msg_close(msg);
            continue;
        }
        if (hdr->kind == SS_MSG_HEARTBEAT || hdr->kind == SS_MSG_WELCOME) {
            zmq_msg_close(msg);
            continue;
        }
        if (hdr->kind == SS_MSG_ABORT) {
            char reason[SS_PROTO_REASON_MAX];
            if (ss_proto_abort_parse(d + SS_HDR_SIZE, hdr->len, reason,
                                     sizeof reason, &why))
                snprintf(reason, sizeof reason, "(unreadable reason: %s)",
                         why);
            snprintf(p->err, sizeof p->err, "%s", reason);
            p->failed = SS_PEER_ABORTED;
            zmq_msg_close(msg);
            return SS_EPEER;
        }
        return 1;
    }
}
