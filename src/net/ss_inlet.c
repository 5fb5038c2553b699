/*
 * ss_inlet.c - the consumer end of a router (see ss_inlet.h).
 */
#include "net/ss_inlet.h"
#include "core/ss_log.h"
#include "core/ss_util.h"
#include "net/ss_peer.h"
#include "net/ss_proto.h"
#include "securestreams.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CREDITS 4

struct ss_inlet {
    ss_peer peer;
    int eos_seen;
    ss_lineage *acks; /* acknowledged, not yet sent: nacks of capacks */
    unsigned nacks, capacks, ack_batch;
};

/* See ss_inlet.h. */
int ss_inlet_new(void *zctx, const ss_inlet_opts *o, ss_inlet **out,
                 char *err, size_t errlen)
{
    *out = NULL;
    ss_hello h = {.credits = o->credits ? o->credits : DEFAULT_CREDITS,
                  .stateful = o->stateful != 0,
                  .members = 1,
                  .index = o->index};
    const char *role = o->role ? o->role : "worker";
    const char *stage = o->stage ? o->stage : role;
    if (!o->name || !*o->name || strlen(o->name) >= sizeof h.name ||
        strlen(role) >= sizeof h.role || strlen(stage) >= sizeof h.stage) {
        snprintf(err, errlen,
                 "inlet from %s: missing or too long name, role or stage",
                 o->endpoint ? o->endpoint : "?");
        return SS_EINVAL;
    }
    if (h.credits > SS_PROTO_CREDITS_MAX) {
        snprintf(err, errlen, "inlet '%s': at most %d credits", o->name,
                 SS_PROTO_CREDITS_MAX);
        return SS_EINVAL;
    }
    snprintf(h.name, sizeof h.name, "%s", o->name);
    snprintf(h.role, sizeof h.role, "%s", role);
    snprintf(h.stage, sizeof h.stage, "%s", stage);
    snprintf(h.group, sizeof h.group, "%s", stage);

    ss_inlet *in = calloc(1, sizeof *in);
    if (in) {
        in->capacks = h.credits;
        in->acks = calloc(in->capacks, sizeof *in->acks);
    }
    if (!in || !in->acks) {
        free(in);
        snprintf(err, errlen, "inlet '%s': out of memory", o->name);
        return SS_ENOMEM;
    }
    in->ack_batch = o->ack_batch ? o->ack_batch : (h.credits + 1) / 2;
    if (in->ack_batch > in->capacks)
        in->ack_batch = in->capacks;
    int rc = ss_peer_open(&in->peer, zctx, o->endpoint, &h, o->run,
                          o->connect_timeout_ms, o->heartbeat_ms, o->curve,
                          NULL, NULL, err, errlen);
    if (rc) {
        free(in->acks);
        free(in);
        return rc;
    }
    *out = in;
    return 0;
}

/* See ss_inlet.h. */
int ss_inlet_flush(ss_inlet *in)
{
    if (!in->nacks)
        return 0;
    if (in->peer.failed)
        return SS_EPEER;
    int rc = ss_proto_credit_n(&in->peer.out, in->acks, in->nacks,
                               in->nacks);
    if (rc == 0)
        rc = ss_peer_send_ctl(&in->peer, &in->peer.out);
    if (rc == 0)
        in->nacks = 0;
    return rc;
}

/* See ss_inlet.h. */
int ss_inlet_recv(ss_inlet *in, zmq_msg_t *msg, ss_hdr *hdr, int timeout_ms,
                  char *err, size_t errlen)
{
    for (;;) {
        /* what is already there first; acknowledgements held back go out
         * before waiting, so the router never waits for them */
        int rc = ss_peer_recv(&in->peer, msg, hdr, 0);
        if (rc == 0 && in->nacks)
            rc = ss_inlet_flush(in);
        if (rc == 0 && timeout_ms != 0)
            rc = ss_peer_recv(&in->peer, msg, hdr, timeout_ms);
        if (rc == SS_EPEER && in->eos_seen &&
            in->peer.failed == SS_PEER_SILENT) {
            in->peer.failed = 0; /* the router exits after EOS */
            in->peer.last_recv_ms = ss_now_ms();
            return 0;
        }
        if (rc < 0) {
            if (err && errlen)
                snprintf(err, errlen, "%s", in->peer.err);
            return rc;
        }
        if (rc == 0)
            return 0;
        if (hdr->kind == SS_MSG_DATA || hdr->kind == SS_MSG_EOS ||
            hdr->kind == SS_MSG_BARRIER) {
            if (hdr->kind == SS_MSG_EOS)
                in->eos_seen = 1;
            return 1;
        }
        ss_warn("inlet '%s': ignored unexpected %s message from router %s",
                in->peer.name, ss_msg_kind_name(hdr->kind),
                in->peer.router);
        zmq_msg_close(msg);
    }
}

/* See ss_inlet.h. */
int ss_inlet_ack(ss_inlet *in, const ss_hdr *batch)
{
    if (in->peer.failed)
        return SS_EPEER;
    if (in->nacks == in->capacks) { /* more acks than credits: a bug */
        int rc = ss_inlet_flush(in);
        if (rc)
            return rc;
    }
    in->acks[in->nacks++] = ss_proto_lineage(batch);
    return in->nacks >= in->ack_batch ? ss_inlet_flush(in) : 0;
}

/* See ss_inlet.h. */
int ss_inlet_heartbeat(ss_inlet *in)
{
    if (in->peer.failed)
        return SS_EPEER;
    int rc = ss_inlet_flush(in);
    if (rc)
        return rc;
    ss_peer_tick(&in->peer);
    return 0;
}

/* See ss_inlet.h. */
void *ss_inlet_socket(ss_inlet *in) { return in->peer.sock; }

/* See ss_inlet.h. */
int ss_inlet_drained(const ss_inlet *in) { return in->peer.drained; }

/* See ss_inlet.h. */
void ss_inlet_abort(ss_inlet *in, const char *reason)
{
    if (in)
        ss_peer_abort(&in->peer, reason);
}

/* See ss_inlet.h. */
void ss_inlet_destroy(ss_inlet **p)
{
    if (!p || !*p)
        return;
    ss_inlet *in = *p;
    if (in->nacks && !in->peer.failed && /* acknowledged is acknowledged */
        ss_proto_credit_n(&in->peer.out, in->acks, in->nacks,
                          in->nacks) == 0 &&
        in->peer.out.len >= SS_HDR_SIZE) {
        /* stamped like every message of this peer (ss_peer_send_ctl):
         * unstamped, the router dropped it as written by someone else */
        ss_hdr_stamp(in->peer.out.data, in->peer.run, in->peer.id);
        zmq_send(in->peer.sock, in->peer.out.data, in->peer.out.len,
                 ZMQ_DONTWAIT); /* the socket lingers while it leaves */
    }
    ss_peer_close(&in->peer);
    free(in->acks);
    free(in);
    *p = NULL;
}
