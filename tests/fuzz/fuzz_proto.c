/*
 * fuzz_proto.c - libFuzzer target for the control-message parsers
 * (src/net/ss_proto.c): HELLO, WELCOME, ABORT, CREDIT/RECEIVED lists and
 * EOS, on any payload. The first input byte picks the parser and the
 * header's count (for the acknowledgement lists); the rest is the
 * payload. Checks the documented results and limits (a refusal always
 * has a reason; names fit their buffers; at most `cap` lineages), that
 * an EOS that decodes encodes and decodes again to the same table, and,
 * under ASan, that no claimed count makes the parser allocate or read
 * beyond the bytes there are.
 * Built by `make fuzz` (build-fuzz/fuzz_proto); run by tests/fuzz/run.sh.
 */
#include "core/ss_buf.h"
#include "net/ss_proto.h"
#include "securestreams.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_proto: invariant broken: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int which = data[0] % 5;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    const char *why = NULL;
    int rc;
    switch (which) {
    case 0: {
        ss_hello h;
        rc = ss_proto_hello_parse(p, n, &h, &why);
        if (rc == 0)
            check(strlen(h.name) < sizeof h.name &&
                      strlen(h.stage) < sizeof h.stage,
                  "hello strings fit");
        break;
    }
    case 1: {
        ss_welcome w;
        rc = ss_proto_welcome_parse(p, n, &w, &why);
        if (rc == 0)
            check(strlen(w.router) < sizeof w.router, "router name fits");
        break;
    }
    case 2: {
        char reason[SS_PROTO_REASON_MAX];
        rc = ss_proto_abort_parse(p, n, reason, sizeof reason, &why);
        if (rc == 0)
            check(strlen(reason) < sizeof reason, "reason fits");
        break;
    }
    case 3: {
        ss_lineage v[16];
        ss_hdr h;
        memset(&h, 0, sizeof h);
        h.kind = SS_MSG_CREDIT;
        h.count = data[0] / 5;
        int k = ss_proto_acks_parse(&h, p, n, v, 16, &why);
        check(k <= 16, "at most cap lineages");
        rc = k < 0 ? k : 0;
        break;
    }
    default: {
        ss_eos e, e2;
        ss_eos_init(&e);
        ss_eos_init(&e2);
        rc = ss_eos_decode(p, n, &e, &why);
        if (rc == 0) {
            ss_buf b = SS_BUF_INIT;
            check(ss_eos_encode(&e, &b) == 0, "a decoded EOS encodes");
            check(b.len >= SS_HDR_SIZE, "encoded EOS has a header");
            check(ss_eos_decode(b.data + SS_HDR_SIZE, b.len - SS_HDR_SIZE,
                                &e2, &why) == 0,
                  "and decodes again");
            check(e2.nstreams == e.nstreams && e2.members == e.members,
                  "to the same table");
            ss_buf_release(&b);
        }
        ss_eos_release(&e);
        ss_eos_release(&e2);
        break;
    }
    }
    check(rc == 0 || rc == SS_EPROTO || rc == SS_ENOMEM || rc == SS_EINTEGRITY,
          "result code");
    if (rc == SS_EPROTO)
        check(why != NULL && *why, "a reason for every refusal");
    return 0;
}
