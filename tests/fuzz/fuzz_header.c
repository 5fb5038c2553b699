/*
 * fuzz_header.c - libFuzzer target for the batch header decoder
 * (src/wire/ss_batch.c): ss_hdr_decode and ss_hdr_version on any bytes.
 * Checks that a header that decodes re-encodes to the same 72 bytes (no
 * byte is ignored: reserved ones must be 0), that `len` matches the input,
 * and that decoding never reads past the input (ASan).
 * Built by `make fuzz` (build-fuzz/fuzz_header); run by tests/fuzz/run.sh.
 */
#include "securestreams.h"
#include "wire/ss_batch.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_header: invariant broken: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ss_hdr h;
    const char *why = NULL;
    int v = ss_hdr_version(data, size);
    check(v >= -1 && v <= 255, "version range");
    int rc = ss_hdr_decode(data, size, &h, &why);
    check(rc == 0 || rc == SS_EPROTO, "decode result");
    if (rc) {
        check(why != NULL && *why, "a reason for every refusal");
        return 0;
    }
    check(v == SS_WIRE_VERSION, "decoded => our version");
    check((size_t)h.len + SS_HDR_SIZE == size, "len matches the frame");
    check(h.kind >= 1 && h.kind <= SS_MSG_KIND_MAX, "kind in range");
    uint8_t out[SS_HDR_SIZE];
    ss_hdr_encode(&h, out);
    check(memcmp(out, data, SS_HDR_SIZE) == 0,
          "what decodes re-encodes to the same bytes");
    return 0;
}
