/*
 * ss_sealfile.c - records of a sealed stream file (see ss_sealfile.h).
 */
#include "crypto/ss_sealfile.h"
#include "securestreams.h"

#include <string.h>

/* See ss_sealfile.h. */
int ss_sealfile_read(FILE *f, ss_buf *msg, ss_hdr *h, const char **why)
{
    uint8_t lb[4];
    size_t got = fread(lb, 1, 4, f);
    if (got == 0 && feof(f))
        return 0;
    if (ferror(f))
        return SS_EIO;
    if (got < 4) {
        *why = "file ends inside a record length (truncated)";
        return SS_EPROTO;
    }
    uint32_t n = ss_get_u32(lb);
    if (n < SS_HDR_SIZE || n > SS_SEALFILE_MAX_RECORD) {
        *why = "bad record length (corrupted file?)";
        return SS_EPROTO;
    }
    ss_buf_reset(msg);
    if (ss_buf_grow(msg, n))
        return SS_ENOMEM;
    got = fread(msg->data, 1, n, f);
    if (ferror(f))
        return SS_EIO;
    if (got < n) {
        *why = "file ends inside a record (truncated)";
        return SS_EPROTO;
    }
    msg->len = n;
    msg->data[n] = '\0';
    return ss_hdr_decode(msg->data, n, h, why) ? SS_EPROTO : 1;
}

/* See ss_sealfile.h. */
int ss_sealfile_write(FILE *f, const void *msg, size_t n)
{
    uint8_t lb[4];
    if (n > UINT32_MAX)
        return SS_ETOOBIG;
    ss_put_u32(lb, (uint32_t)n);
    if (fwrite(lb, 1, 4, f) != 4 || fwrite(msg, 1, n, f) != n)
        return SS_EIO;
    return 0;
}
