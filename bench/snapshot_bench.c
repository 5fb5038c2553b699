/*
 * snapshot_bench.c - what a checkpoint of a stage's state costs, by the
 * size of the state: a reduce whose accumulator is a table of K keys (a
 * count per key, like a per-carrier aggregate grown large), K = 10,
 * 1000, 100000. For each K:
 *
 *   snapshot  ss_stage_snapshot (the operators' get, canonical encoding)
 *   seal      ss_snapshot_seal with the data key (AES-256-GCM here if the
 *             CPU has it, else XChaCha20-Poly1305)
 *   open      ss_snapshot_open (authenticate, decrypt, check the id)
 *   restore   ss_stage_restore into a freshly loaded stage (decode under
 *             the memory cap, the operators' set)
 *
 * and the snapshot's size. Taken between batches, a checkpoint stops the
 * stage for snapshot + seal (+ the host's write); a restore costs open +
 * restore once. Usage: snapshot_bench. Each figure is the best of 3.
 */
#include "core/ss_buf.h"
#include "core/ss_util.h"
#include "crypto/ss_keys.h"
#include "crypto/ss_snapshot.h"
#include "lua/ss_stage.h"
#include "securestreams.h"
#include "wire/ss_msgpack.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SCRIPT[] =
    "local Rx = require 'zmq-rx'\n"
    "Rx.Subject.fromZmqSocket('ipc://in')\n"
    "  :reduce(function(a, k) a[k] = (a[k] or 0) + 1; return a end, {})\n"
    "  :subscribeToSocket('ipc://out')\n";

static ss_stage *load(void)
{
    ss_stage_opts o;
    memset(&o, 0, sizeof o);
    o.script_src = SCRIPT;
    o.script_len = sizeof SCRIPT - 1;
    o.name = "reduce-1";
    o.stage = "reduce";
    o.host_errors = 1;
    o.mem_limit = 256u << 20;
    ss_stage *s = NULL;
    char err[512];
    if (ss_stage_new(&o, &s, err, sizeof err)) {
        fprintf(stderr, "snapshot_bench: %s\n", err);
        exit(1);
    }
    return s;
}

/* Feeds K distinct keys ("key-000123") in batches of up to 1000. */
static void fill(ss_stage *s, unsigned k)
{
    ss_stage_out out;
    ss_stage_out_init(&out);
    ss_buf b = SS_BUF_INIT;
    for (unsigned i = 0; i < k;) {
        ss_buf_reset(&b);
        unsigned n = 0;
        for (; n < 1000 && i < k; n++, i++) {
            char key[32];
            int len = snprintf(key, sizeof key, "key-%06u", i);
            ss_mp_put_str(&b, key, (size_t)len);
        }
        ss_hdr h;
        memset(&h, 0, sizeof h);
        h.kind = SS_MSG_DATA;
        h.count = n;
        h.len = (uint32_t)b.len;
        ss_stage_out_reset(&out);
        ss_stage_process(s, &h, b.data, b.len, &out);
    }
    ss_buf_release(&b);
    ss_stage_out_release(&out);
}

static double ms(uint64_t ns) { return (double)ns / 1e6; }

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    ss_key *key = NULL;
    if (ss_key_generate(SS_AEAD_AUTO, &key))
        return 1;
    printf("%-8s %12s %10s %10s %10s %10s\n", "keys", "bytes",
           "snapshot", "seal", "open", "restore");
    static const unsigned ks[] = {10, 1000, 10000, 30000, 100000};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        ss_stage *s = load();
        fill(s, ks[i]);
        uint64_t best[4] = {UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX};
        size_t bytes = 0;
        for (int r = 0; r < 3; r++) {
            ss_buf pt = SS_BUF_INIT, blob = SS_BUF_INIT, back = SS_BUF_INIT;
            char err[512];
            ss_snapshot_id id = {1, (uint32_t)r + 1, "reduce", "reduce-1"};
            uint64_t t0 = ss_now_ns();
            if (ss_stage_snapshot(s, &pt, err, sizeof err)) {
                fprintf(stderr, "snapshot: %s\n", err);
                return 1;
            }
            uint64_t t1 = ss_now_ns();
            ss_snapshot_seal(key, &id, pt.data, pt.len, &blob, err,
                             sizeof err);
            uint64_t t2 = ss_now_ns();
            if (ss_snapshot_open(key, blob.data, blob.len, &id, &back, err,
                                 sizeof err)) {
                fprintf(stderr, "open: %s\n", err);
                return 1;
            }
            uint64_t t3 = ss_now_ns();
            ss_stage *fresh = load();
            uint64_t t4 = ss_now_ns();
            if (ss_stage_restore(fresh, back.data, back.len, err,
                                 sizeof err)) {
                fprintf(stderr, "restore: %s\n", err);
                return 1;
            }
            uint64_t t5 = ss_now_ns();
            ss_stage_destroy(&fresh);
            uint64_t d[4] = {t1 - t0, t2 - t1, t3 - t2, t5 - t4};
            for (int j = 0; j < 4; j++)
                if (d[j] < best[j])
                    best[j] = d[j];
            bytes = blob.len;
            ss_buf_release(&pt);
            ss_buf_release(&blob);
            ss_buf_release(&back);
        }
        printf("%-8u %12zu %8.3fms %8.3fms %8.3fms %8.3fms\n", ks[i], bytes,
               ms(best[0]), ms(best[1]), ms(best[2]), ms(best[3]));
        ss_stage_destroy(&s);
    }
    ss_key_destroy(&key);
    return 0;
}
