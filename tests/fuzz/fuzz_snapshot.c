/*
 * fuzz_snapshot.c - libFuzzer target for what a restore reads from
 * outside: a snapshot blob (src/crypto/ss_snapshot.c, the plain form: the
 * sealed one is authenticated before anything is parsed) and the state
 * bytes a stage restores (ss_stage_restore: MessagePack decoded under the
 * memory cap, then rx.lua's set functions). Checks:
 *
 *   - a blob that opens re-seals to the same bytes (the plain form has one
 *     encoding), and open never leaves bytes behind on a refusal;
 *   - state bytes that restore give a snapshot that restores into a fresh
 *     stage and snapshots again to the same bytes (the canonical encoding
 *     is a fixed point), and a refusal always says why.
 *
 * Built by `make fuzz` (build-fuzz/fuzz_snapshot); run by tests/fuzz/run.sh.
 */
#include "core/ss_buf.h"
#include "crypto/ss_snapshot.h"
#include "lua/ss_stage.h"
#include "securestreams.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_snapshot: invariant broken: %s\n", what);
        abort();
    }
}

static const char SCRIPT[] =
    "local Rx = require 'zmq-rx'\n"
    "local s = Rx.Subject.fromZmqSocket('ipc://in')\n"
    "s:reduce(function(a, x) return a end, {}):subscribe(function() end)\n"
    "s:distinct():count():subscribe(function() end)\n"
    "s:tumblingWindow{ size = 10, time = function(e) return e end }\n"
    "  :subscribeToSocket('ipc://out')\n";

static ss_stage *fresh(void)
{
    ss_stage_opts o;
    memset(&o, 0, sizeof o);
    o.script_src = SCRIPT;
    o.script_len = sizeof SCRIPT - 1;
    o.name = "f-1";
    o.stage = "f";
    o.host_errors = 1;
    o.mem_limit = 16u << 20;
    o.max_instructions = 10000000;
    ss_stage *s = NULL;
    char err[512];
    check(ss_stage_new(&o, &s, err, sizeof err) == 0, "the script loads");
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024] = "";
    /* the blob */
    ss_snapshot_info in;
    ss_buf pt = SS_BUF_INIT, again = SS_BUF_INIT;
    if (ss_snapshot_peek(data, size, &in, err, sizeof err) == 0 &&
        in.protection == 0) {
        ss_snapshot_id id = {in.run, in.epoch, in.stage, in.worker};
        int rc = ss_snapshot_open(NULL, data, size, &id, &pt, err,
                                  sizeof err);
        check(rc == 0 || rc == SS_ECRYPTO || rc == SS_ENOMEM,
              "open result");
        if (rc == 0) {
            check(pt.len == in.length, "the announced length");
            check(ss_snapshot_seal(NULL, &id, pt.data, pt.len, &again, err,
                                   sizeof err) == 0,
                  "what opens seals");
            check(again.len == size && !memcmp(again.data, data, size),
                  "one encoding of a plain blob");
        } else {
            check(pt.len == 0, "nothing left behind");
            check(err[0] != '\0', "a reason");
        }
    }
    ss_buf_release(&pt);
    ss_buf_release(&again);

    /* the state bytes */
    ss_stage *s = fresh();
    err[0] = '\0';
    int rc = ss_stage_restore(s, (const char *)data, size, err, sizeof err);
    check(rc == 0 || rc == SS_EDECODE || rc == SS_ELUA || rc == SS_ENOMEM,
          "restore result");
    if (rc) {
        check(err[0] != '\0', "a reason for every refusal");
    } else {
        ss_buf s1 = SS_BUF_INIT, s2 = SS_BUF_INIT;
        int r1 = ss_stage_snapshot(s, &s1, err, sizeof err);
        /* a restored state may hold what the operators would never have
         * made (a string where a count was): it may fail to snapshot only
         * with a reason */
        if (r1 == 0) {
            ss_stage *t = fresh();
            check(ss_stage_restore(t, s1.data, s1.len, err, sizeof err) == 0,
                  "a snapshot restores");
            check(ss_stage_snapshot(t, &s2, err, sizeof err) == 0,
                  "and snapshots again");
            check(s1.len == s2.len && !memcmp(s1.data, s2.data, s1.len),
                  "to the same bytes");
            ss_stage_destroy(&t);
        } else {
            check(err[0] != '\0', "a reason");
        }
        ss_buf_release(&s1);
        ss_buf_release(&s2);
    }
    ss_stage_destroy(&s);
    return 0;
}
