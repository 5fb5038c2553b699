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

/* See ss_sealfile.h. */
int ss_sealfile_put_str(ss_buf *b, const char *s, size_t len)
{
    uint8_t h[5];
    size_t hl;
    if (len < 32) {
        h[0] = (uint8_t)(0xa0 | len);
        hl = 1;
    } else if (len <= 0xff) {
        h[0] = 0xd9;
        h[1] = (uint8_t)len;
        hl = 2;
    } else if (len <= 0xffff) {
        h[0] = 0xda;
        h[1] = (uint8_t)(len >> 8);
        h[2] = (uint8_t)len;
        hl = 3;
    } else if (len <= 0xffffffffu) {
        h[0] = 0xdb;
        for (int i = 0; i < 4; i++)
            h[1 + i] = (uint8_t)(len >> (24 - 8 * i));
        hl = 5;
    } else {
        return SS_ETOOBIG;
    }
    if (ss_buf_grow(b, hl + len))
        return SS_ENOMEM;
    ss_buf_put(b, h, hl);
    ss_buf_put(b, s, len);
    b->data[b->len] = '\0';
    return 0;
}

/* See ss_sealfile.h. */
int ss_sealfile_get_str(const char *p, size_t n, size_t *off,
                        const char **s, size_t *len)
{
    const uint8_t *u = (const uint8_t *)p;
    size_t o = *off;
    if (o >= n)
        return SS_EDECODE;
    uint8_t t = u[o++];
    size_t l = 0, w;
    if ((t & 0xe0) == 0xa0) {
        l = t & 0x1f;
        w = 0;
    } else if (t == 0xd9) {
        w = 1;
    } else if (t == 0xda) {
        w = 2;
    } else if (t == 0xdb) {
        w = 4;
    } else {
        return SS_EDECODE;
    }
    if (w) {
        if (n - o < w)
            return SS_EDECODE;
        l = 0;
        for (size_t i = 0; i < w; i++)
            l = (l << 8) | u[o + i];
        o += w;
    }
    if (n - o < l)
        return SS_EDECODE;
    *s = p + o;
    *len = l;
    *off = o + l;
    return 0;
}
