/*
 * ss_msgpack_int.h - the inside of the MessagePack codec, shared by the
 * byte-level half (wire/ss_msgpack.c) and the Lua binding
 * (lua/ss_lua_msgpack.c) so that both write and read exactly the same
 * bytes. Not an API: include it from those two files only. Everything
 * is static inline: these are the hot path of every event.
 */
#ifndef SS_MSGPACK_INT_H
#define SS_MSGPACK_INT_H

#include "core/ss_buf.h"
#include "core/ss_util.h"
#include "securestreams.h"
#include "wire/ss_msgpack.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* writing                                                             */

/* Makes room for k more bytes (plus ss_buf's spare byte). */
static inline int reserve(ss_buf *b, size_t k)
{
    if (b->cap - b->len > k)
        return 0;
    return ss_buf_grow(b, k);
}

static inline void put_be16(char *q, uint32_t v)
{
    q[0] = (char)(v >> 8);
    q[1] = (char)v;
}

static inline void put_be32(char *q, uint32_t v)
{
    q[0] = (char)(v >> 24);
    q[1] = (char)(v >> 16);
    q[2] = (char)(v >> 8);
    q[3] = (char)v;
}

static inline void put_be64(char *q, uint64_t v)
{
    put_be32(q, (uint32_t)(v >> 32));
    put_be32(q + 4, (uint32_t)v);
}

static inline int put1(ss_buf *b, uint8_t c)
{
    if (reserve(b, 1))
        return SS_ENOMEM;
    b->data[b->len++] = (char)c;
    return 0;
}

static inline int put_uint(ss_buf *b, uint64_t v)
{
    if (reserve(b, 9))
        return SS_ENOMEM;
    char *q = b->data + b->len;
    if (v <= 0x7f) {
        q[0] = (char)v;
        b->len += 1;
    } else if (v <= 0xff) {
        q[0] = (char)0xcc;
        q[1] = (char)v;
        b->len += 2;
    } else if (v <= 0xffff) {
        q[0] = (char)0xcd;
        put_be16(q + 1, (uint32_t)v);
        b->len += 3;
    } else if (v <= 0xffffffffu) {
        q[0] = (char)0xce;
        put_be32(q + 1, (uint32_t)v);
        b->len += 5;
    } else {
        q[0] = (char)0xcf;
        put_be64(q + 1, v);
        b->len += 9;
    }
    return 0;
}

static inline int put_int(ss_buf *b, int64_t v)
{
    if (v >= 0)
        return put_uint(b, (uint64_t)v);
    if (reserve(b, 9))
        return SS_ENOMEM;
    char *q = b->data + b->len;
    if (v >= -32) {
        q[0] = (char)(uint8_t)v; /* negative fixint: 0xe0..0xff */
        b->len += 1;
    } else if (v >= INT8_MIN) {
        q[0] = (char)0xd0;
        q[1] = (char)(uint8_t)v;
        b->len += 2;
    } else if (v >= INT16_MIN) {
        q[0] = (char)0xd1;
        put_be16(q + 1, (uint32_t)(uint16_t)v);
        b->len += 3;
    } else if (v >= INT32_MIN) {
        q[0] = (char)0xd2;
        put_be32(q + 1, (uint32_t)v);
        b->len += 5;
    } else {
        q[0] = (char)0xd3;
        put_be64(q + 1, (uint64_t)v);
        b->len += 9;
    }
    return 0;
}

static inline int put_double(ss_buf *b, double v)
{
    if (reserve(b, 9))
        return SS_ENOMEM;
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    b->data[b->len] = (char)0xcb;
    put_be64(b->data + b->len + 1, u);
    b->len += 9;
    return 0;
}

/* Writes a str (bin: 0) header and the bytes. n <= UINT32_MAX. */
static inline int put_bytes(ss_buf *b, const char *s, size_t n, int str)
{
    if (reserve(b, n + 5))
        return SS_ENOMEM;
    char *q = b->data + b->len;
    size_t h;
    if (str && n <= 31) {
        q[0] = (char)(0xa0 | n);
        h = 1;
    } else if (n <= 0xff) {
        q[0] = (char)(str ? 0xd9 : 0xc4);
        q[1] = (char)n;
        h = 2;
    } else if (n <= 0xffff) {
        q[0] = (char)(str ? 0xda : 0xc5);
        put_be16(q + 1, (uint32_t)n);
        h = 3;
    } else {
        q[0] = (char)(str ? 0xdb : 0xc6);
        put_be32(q + 1, (uint32_t)n);
        h = 5;
    }
    if (n)
        memcpy(q + h, s, n);
    b->len += h + n;
    return 0;
}

/* Whether s is valid UTF-8, with a word-at-a-time ASCII fast path. */
static inline int is_utf8(const char *s, size_t n)
{
    const uint64_t hi = 0x8080808080808080ull;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        uint64_t w[4];
        memcpy(w, s + i, 32);
        if ((w[0] | w[1] | w[2] | w[3]) & hi)
            return ss_utf8_valid(s + i, n - i, NULL);
    }
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & hi)
            return ss_utf8_valid(s + i, n - i, NULL);
    }
    for (; i < n; i++)
        if ((unsigned char)s[i] & 0x80)
            return ss_utf8_valid(s + i, n - i, NULL);
    return 1;
}

/* Writes the header of a container whose count was unknown when its
 * elements were written: one byte was reserved at start; widen it. */
static inline int fix_header(ss_buf *b, size_t start, int map, uint64_t count)
{
    if (count <= 15) {
        b->data[start] = (char)((map ? 0x80 : 0x90) | count);
        return 0;
    }
    size_t extra = count <= 0xffff ? 2 : 4;
    if (reserve(b, extra))
        return SS_ENOMEM;
    size_t body = b->len - start - 1;
    memmove(b->data + start + 1 + extra, b->data + start + 1, body);
    b->len += extra;
    if (extra == 2) {
        b->data[start] = (char)(map ? 0xde : 0xdc);
        put_be16(b->data + start + 1, (uint32_t)count);
    } else {
        b->data[start] = (char)(map ? 0xdf : 0xdd);
        put_be32(b->data + start + 1, (uint32_t)count);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* reading                                                             */

enum { H_NIL, H_BOOL, H_INT, H_UINT, H_FLOAT, H_STR, H_BIN, H_ARRAY,
       H_MAP };

typedef struct mp_head {
    int kind;
    int64_t i;     /* H_INT; H_BOOL: 0/1 */
    uint64_t u;    /* H_UINT: a uint64 above INT64_MAX */
    double f;      /* H_FLOAT */
    uint32_t len;  /* H_STR/H_BIN: bytes; H_ARRAY/H_MAP: elements/pairs */
    const char *s; /* H_STR/H_BIN: the bytes, inside the input */
} mp_head;

typedef struct mp_dec {
    void *user; /* the Lua decoder's state; NULL when only checking */
    const uint8_t *p;
    size_t n;
    size_t off;
    char *err;
    size_t errlen;
} mp_dec;

/* Names of the type bytes 0xc0..0xdf, for messages. */
static const char *const type_names[32] = {
    "nil",    "(never used)", "false",   "true",    "bin8",    "bin16",
    "bin32",  "ext8",         "ext16",   "ext32",   "float32", "float64",
    "uint8",  "uint16",       "uint32",  "uint64",  "int8",    "int16",
    "int32",  "int64",        "fixext1", "fixext2", "fixext4", "fixext8",
    "fixext16", "str8",       "str16",   "str32",   "array16", "array32",
    "map16",  "map32"};

static void dec_msg(mp_dec *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), unused));

static void dec_msg(mp_dec *d, const char *fmt, ...)
{
    if (d->err && d->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->err, d->errlen, fmt, ap);
        va_end(ap);
    }
}

/* Writes the reason into d->err; evaluates to SS_EDECODE (a constant the
 * compiler sees, so that no path through read_head looks like a success
 * that left the header unset). */
#define dec_fail(d, ...) (dec_msg((d), __VA_ARGS__), SS_EDECODE)

static inline uint32_t be16(const uint8_t *q)
{
    return (uint32_t)q[0] << 8 | q[1];
}

static inline uint32_t be32(const uint8_t *q)
{
    return (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 |
           (uint32_t)q[2] << 8 | q[3];
}

static inline uint64_t be64(const uint8_t *q)
{
    return (uint64_t)be32(q) << 32 | be32(q + 4);
}

/* Parses the header at d->off into h and moves d->off past it (and past
 * the bytes of a str/bin). Checks that the bytes announced are there:
 * a str/bin's payload, and at least one byte per array element and two
 * per map pair. */
static inline int read_head(mp_dec *d, mp_head *h)
{
    size_t off = d->off;
    if (off >= d->n)
        return dec_fail(d, "truncated input at offset %zu (value expected)",
                        off);
    const uint8_t *q = d->p + off + 1;
    size_t avail = d->n - off - 1; /* bytes after the type byte */
    uint8_t c = d->p[off];
    size_t hl;      /* length-field bytes */
    uint64_t len;

    if (c <= 0x7f) {
        h->kind = H_INT;
        h->i = c;
        d->off = off + 1;
        return 0;
    }
    if (c >= 0xe0) {
        h->kind = H_INT;
        h->i = (int8_t)c;
        d->off = off + 1;
        return 0;
    }
    if (c >= 0xa0 && c <= 0xbf) {
        h->kind = H_STR;
        len = c & 0x1f;
        hl = 0;
        goto bytes;
    }
    if (c <= 0x9f) { /* 0x80..0x9f: fixmap, fixarray */
        h->kind = c >= 0x90 ? H_ARRAY : H_MAP;
        len = c & 0x0f;
        hl = 0;
        goto container;
    }
    switch (c) {
    case 0xc0:
        h->kind = H_NIL;
        d->off = off + 1;
        return 0;
    case 0xc2:
    case 0xc3:
        h->kind = H_BOOL;
        h->i = c & 1;
        d->off = off + 1;
        return 0;
    case 0xc4: case 0xc5: case 0xc6:
        h->kind = H_BIN;
        hl = (size_t)1 << (c - 0xc4);
        goto sized_bytes;
    case 0xd9: case 0xda: case 0xdb:
        h->kind = H_STR;
        hl = (size_t)1 << (c - 0xd9);
        goto sized_bytes;
    case 0xca:
        if (avail < 4)
            goto truncated;
        {
            uint32_t u = be32(q);
            float fv;
            memcpy(&fv, &u, 4);
            h->kind = H_FLOAT;
            h->f = fv;
        }
        d->off = off + 5;
        return 0;
    case 0xcb:
        if (avail < 8)
            goto truncated;
        {
            uint64_t u = be64(q);
            memcpy(&h->f, &u, 8);
            h->kind = H_FLOAT;
        }
        d->off = off + 9;
        return 0;
    case 0xcc: case 0xcd: case 0xce: case 0xcf: {
        size_t w = (size_t)1 << (c - 0xcc);
        if (avail < w)
            goto truncated;
        uint64_t u = w == 1 ? q[0] : w == 2 ? be16(q)
                                   : w == 4 ? be32(q) : be64(q);
        if (u > INT64_MAX) {
            h->kind = H_UINT;
            h->u = u;
        } else {
            h->kind = H_INT;
            h->i = (int64_t)u;
        }
        d->off = off + 1 + w;
        return 0;
    }
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
        size_t w = (size_t)1 << (c - 0xd0);
        if (avail < w)
            goto truncated;
        h->kind = H_INT;
        h->i = w == 1 ? (int8_t)q[0]
             : w == 2 ? (int16_t)be16(q)
             : w == 4 ? (int32_t)be32(q) : (int64_t)be64(q);
        d->off = off + 1 + w;
        return 0;
    }
    case 0xdc: case 0xdd:
        h->kind = H_ARRAY;
        hl = c == 0xdc ? 2 : 4;
        goto sized_container;
    case 0xde: case 0xdf:
        h->kind = H_MAP;
        hl = c == 0xde ? 2 : 4;
        goto sized_container;
    case 0xc1:
        return dec_fail(d, "invalid type byte 0xc1 at offset %zu", off);
    default: /* 0xc7..0xc9, 0xd4..0xd8 */
        return dec_fail(d, "unsupported %s value (type byte 0x%02x) at "
                        "offset %zu", type_names[c - 0xc0], c, off);
    }

sized_bytes:
    if (avail < hl)
        goto truncated;
    len = hl == 1 ? q[0] : hl == 2 ? be16(q) : be32(q);
bytes:
    if (avail - hl < len)
        goto truncated;
    h->len = (uint32_t)len;
    h->s = (const char *)q + hl;
    d->off = off + 1 + hl + (size_t)len;
    return 0;

sized_container:
    if (avail < hl)
        goto truncated;
    len = hl == 2 ? be16(q) : be32(q);
container:
    if ((h->kind == H_MAP ? 2 * len : len) > avail - hl)
        return dec_fail(d, "truncated %s at offset %zu (%llu %s, %zu bytes "
                        "left)",
                        hl ? type_names[c - 0xc0]
                           : h->kind == H_MAP ? "fixmap" : "fixarray",
                        off, (unsigned long long)len,
                        h->kind == H_MAP ? "pairs" : "elements",
                        avail - hl);
    h->len = (uint32_t)len;
    d->off = off + 1 + hl;
    return 0;

truncated:
    return dec_fail(d, "truncated %s at offset %zu",
                    c >= 0xc0 ? type_names[c - 0xc0] : "fixstr", off);
}

static inline int too_deep(mp_dec *d, size_t at)
{
    return dec_fail(d, "nesting deeper than %d at offset %zu",
                    SS_MP_MAX_DEPTH, at);
}

#endif
