/*
 * ss_link.c - the producer end of a router (see ss_link.h).
 */
#include "net/ss_link.h"
#include "core/ss_log.h"
#include "core/ss_util.h"
#include "net/ss_peer.h"
#include "securestreams.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_WINDOW 16
#define MAX_WINDOW 4096

typedef struct pending {
    ss_hdr lineage;
    uint64_t tag;
    size_t len; /* bytes sent (header included) */
} pending;

struct ss_link {
    ss_peer peer;
    pending *pend; /* window slots, npend used, in send order */
    ss_lineage *acks; /* scratch: what one RECEIVED confirms */
    unsigned npend, window;
    uint64_t pend_bytes, window_bytes; /* sum of pend[].len; its bound */
    ss_link_received_fn fn;
    void *fn_arg;
    char group[SS_PROTO_NAME_MAX];
    unsigned members;
    int eos_confirmed;
};

/* See ss_link.h. */
int ss_link_new(void *zctx, const ss_link_opts *o, ss_link **out, char *err,
                size_t errlen)
{
    *out = NULL;
    ss_hello h = {.members = o->members ? o->members : 1,
                  .stateful = o->stateful != 0};
    const char *role = o->role ? o->role : "source";
    const char *stage = o->stage ? o->stage : role;
    const char *group = o->group ? o->group : stage;
    if (!o->name || !*o->name || strlen(o->name) >= sizeof h.name ||
        strlen(role) >= sizeof h.role || strlen(stage) >= sizeof h.stage ||
        strlen(group) >= sizeof h.group) {
        snprintf(err, errlen, "link to %s: missing or too long name, role, "
                              "stage or group",
                 o->endpoint ? o->endpoint : "?");
        return SS_EINVAL;
    }
    snprintf(h.name, sizeof h.name, "%s", o->name);
    snprintf(h.role, sizeof h.role, "%s", role);
    snprintf(h.stage, sizeof h.stage, "%s", stage);
    snprintf(h.group, sizeof h.group, "%s", group);

    ss_link *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "link '%s': out of memory", o->name);
        return SS_ENOMEM;
    }
    l->window = o->window ? o->window : DEFAULT_WINDOW;
    if (l->window > MAX_WINDOW)
        l->window = MAX_WINDOW;
    l->window_bytes = o->window_bytes ? o->window_bytes
                                      : SS_BATCH_INFLIGHT_BYTES;
    h.window = o->hold && o->hold < l->window ? o->hold : l->window;
    h.window_bytes = l->window_bytes;
    l->pend = calloc(l->window, sizeof *l->pend);
    l->acks = calloc(SS_PROTO_ACKS_MAX, sizeof *l->acks);
    if (!l->pend || !l->acks) {
        free(l->pend);
        free(l->acks);
        free(l);
        snprintf(err, errlen, "link '%s': out of memory", o->name);
        return SS_ENOMEM;
    }
    snprintf(l->group, sizeof l->group, "%s", group);
    l->members = h.members;
    int rc = ss_peer_open(&l->peer, zctx, o->endpoint, &h, o->run,
                          o->connect_timeout_ms, 0, o->curve, o->stop,
                          o->ending, err, errlen);
    if (rc) {
        free(l->pend);
        free(l->acks);
        free(l);
        return rc;
    }
    *out = l;
    return 0;
}

/* See ss_link.h. */
void ss_link_on_received(ss_link *l, ss_link_received_fn fn, void *arg)
{
    l->fn = fn;
    l->fn_arg = arg;
}

/* Forgets the pending batch with lineage *v and fires the callback;
 * returns 1, or 0 if no such batch is pending. Confirmations come in send
 * order, so the match is nearly always the first slot. */
static int confirm(ss_link *l, const ss_lineage *v)
{
    for (unsigned i = 0; i < l->npend; i++) {
        if (!ss_proto_is_lineage(&l->pend[i].lineage, v))
            continue;
        uint64_t tag = l->pend[i].tag;
        l->pend_bytes -= l->pend[i].len;
        memmove(l->pend + i, l->pend + i + 1,
                (l->npend - i - 1) * sizeof *l->pend);
        l->npend--;
        l->peer.hold_heartbeats = l->npend > 0;
        if (l->fn)
            l->fn(tag, l->fn_arg);
        return 1;
    }
    ss_debug("link '%s': router confirmed batch %u/%llu/%u that is not "
             "pending",
             l->peer.name, v->stream, (unsigned long long)v->seq, v->part);
    return 0;
}

/* Handles one message from the router; returns how many of our batches
 * it confirmed (a RECEIVED may confirm several). */
static int handle(ss_link *l, zmq_msg_t *m, const ss_hdr *h)
{
    int confirmed = 0;
    if (h->kind == SS_MSG_RECEIVED && h->aux == SS_MSG_EOS) {
        l->eos_confirmed = 1;
    } else if (h->kind == SS_MSG_RECEIVED) {
        const char *why;
        int n = ss_proto_acks_parse(
            h, (const uint8_t *)zmq_msg_data(m) + SS_HDR_SIZE, h->len,
            l->acks, SS_PROTO_ACKS_MAX, &why);
        if (n < 0)
            ss_warn("link '%s': ignored malformed confirmation from router "
                    "%s: %s",
                    l->peer.name, l->peer.router, why);
        for (int i = 0; i < n; i++)
            confirmed += confirm(l, &l->acks[i]);
    } else {
        ss_warn("link '%s': ignored unexpected %s message from router %s",
                l->peer.name, ss_msg_kind_name(h->kind), l->peer.router);
    }
    zmq_msg_close(m);
    return confirmed;
}

/* See ss_link.h. */
int ss_link_service(ss_link *l, int timeout_ms)
{
    int n = 0;
    for (;;) {
        zmq_msg_t m;
        ss_hdr h;
        int rc = ss_peer_recv(&l->peer, &m, &h, timeout_ms);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return n;
        n += handle(l, &m, &h);
        timeout_ms = 0; /* drain what is there, then return */
    }
}

/* Whether a batch of len bytes may go now: fewer than window batches
 * and, beyond the first SS_LINK_WINDOW_MIN, window_bytes in all are
 * unconfirmed (ss_link.h). */
static int has_room(const ss_link *l, size_t len)
{
    if (l->npend >= l->window)
        return 0;
    return l->npend < SS_LINK_WINDOW_MIN ||
           l->pend_bytes + len <= l->window_bytes;
}

/* See ss_link.h. */
int ss_link_send(ss_link *l, const void *msg, size_t len, uint64_t tag)
{
    ss_hdr h;
    const char *why;
    if (ss_hdr_decode(msg, len, &h, &why) || h.kind != SS_MSG_DATA) {
        snprintf(l->peer.err, sizeof l->peer.err,
                 "link '%s': refusing to send a message that is not a valid "
                 "data batch",
                 l->peer.name);
        return SS_EINVAL;
    }
    if ((h.run != l->peer.run || h.producer != l->peer.id) &&
        !ss_hdr_at_rest(&h)) {
        snprintf(l->peer.err, sizeof l->peer.err,
                 "link '%s': refusing to send batch %u/%llu written for run "
                 "%016llx by producer %08x (this link: run %016llx, "
                 "producer %08x)",
                 l->peer.name, h.stream, (unsigned long long)h.seq,
                 (unsigned long long)h.run, h.producer,
                 (unsigned long long)l->peer.run, l->peer.id);
        return SS_EINVAL;
    }
    int serviced = 0;
    while (!has_room(l, len)) {
        int rc = ss_link_service(l, -1);
        if (rc < 0)
            return rc;
        serviced = 1; /* it read until nothing was left */
    }
    if (!serviced) /* keep confirmations and heartbeats flowing */
        ss_link_service(l, 0);
    if (l->peer.failed)
        return SS_EPEER;
    int rc = ss_peer_send(&l->peer, msg, len);
    if (rc)
        return rc;
    l->pend[l->npend].lineage = h;
    l->pend[l->npend].tag = tag;
    l->pend[l->npend].len = len;
    l->pend_bytes += len;
    l->npend++;
    l->peer.hold_heartbeats = 1; /* see ss_peer.h */
    return 0;
}

/* See ss_link.h. */
int ss_link_send_eos(ss_link *l, const ss_eos *eos, int timeout_ms)
{
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX
                                       : ss_now_ms() + (uint64_t)timeout_ms;
    while (l->npend > 0) {
        uint64_t now = ss_now_ms();
        if (deadline != UINT64_MAX && now >= deadline)
            goto timeout;
        int rc = ss_link_service(
            l, deadline == UINT64_MAX ? -1 : (int)(deadline - now));
        if (rc < 0)
            return rc;
    }
    ss_eos e = *eos; /* shallow: only group and members change */
    if (!e.group[0])
        snprintf(e.group, sizeof e.group, "%s", l->group);
    if (!e.members)
        e.members = l->members;
    ss_buf b = SS_BUF_INIT;
    int rc = ss_eos_encode(&e, &b);
    if (rc == 0)
        rc = ss_peer_send_ctl(&l->peer, &b);
    ss_buf_release(&b);
    if (rc)
        return rc;
    l->eos_confirmed = 0;
    l->peer.hold_heartbeats = 1; /* until the EOS is confirmed */
    while (!l->eos_confirmed) {
        uint64_t now = ss_now_ms();
        if (deadline != UINT64_MAX && now >= deadline)
            goto timeout;
        rc = ss_link_service(
            l, deadline == UINT64_MAX ? -1 : (int)(deadline - now));
        if (rc < 0 && !l->eos_confirmed) { /* an ABORT right after */
            l->peer.hold_heartbeats = 0;  /* the confirmation is not */
            return rc;                    /* ours */
        }
    }
    l->peer.hold_heartbeats = 0;
    return 0;
timeout:
    l->peer.hold_heartbeats = l->npend > 0;
    snprintf(l->peer.err, sizeof l->peer.err,
             "link '%s': router %s at %s did not confirm the end of stream "
             "in %d ms (%u batches unconfirmed)",
             l->peer.name, l->peer.router, l->peer.endpoint, timeout_ms,
             l->npend);
    return SS_ETIMEOUT;
}

/* See ss_link.h. */
int ss_link_send_barrier(ss_link *l, uint32_t epoch)
{
    if (epoch == 0)
        return SS_EINVAL;
    if (l->peer.failed)
        return SS_EPEER;
    ss_hdr h = {.kind = SS_MSG_BARRIER, .epoch = epoch};
    ss_buf b = SS_BUF_INIT;
    int rc = ss_proto_build(&b, &h, NULL, 0);
    if (rc == 0)
        rc = ss_peer_send_ctl(&l->peer, &b);
    ss_buf_release(&b);
    return rc;
}

/* See ss_link.h. */
const char *ss_link_error(const ss_link *l) { return l->peer.err; }

/* See ss_link.h. */
void *ss_link_socket(ss_link *l) { return l->peer.sock; }

/* See ss_link.h. */
int ss_link_drained(const ss_link *l) { return l->peer.drained; }

/* See ss_link.h. */
void ss_link_abort(ss_link *l, const char *reason)
{
    if (l)
        ss_peer_abort(&l->peer, reason);
}

/* See ss_link.h. */
void ss_link_destroy(ss_link **p)
{
    if (!p || !*p)
        return;
    ss_link *l = *p;
    ss_peer_close(&l->peer);
    free(l->pend);
    free(l->acks);
    free(l);
    *p = NULL;
}
