/*
 * ss_msgpack.c - MessagePack without Lua (see ss_msgpack.h): the put_*
 * writers, skip/validate, get_str, and MessagePack -> JSON text.
 *
 * The header parser (read_head, ss_msgpack_int.h) is the one the Lua
 * decoder (lua/ss_lua_msgpack.c) uses, so that skip/validate, to_json and
 * decoding accept the same bytes.
 */
#include "wire/ss_msgpack.h"
#include "core/ss_util.h"
#include "securestreams.h"
#include "wire/ss_msgpack_int.h"

#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* See ss_msgpack.h. */
int ss_mp_put_str(ss_buf *b, const char *s, size_t n)
{
    if (n > UINT32_MAX)
        return SS_ETOOBIG;
    return put_bytes(b, s, n, 1);
}

/* See ss_msgpack.h. */
int ss_mp_put_bin(ss_buf *b, const char *s, size_t n)
{
    if (n > UINT32_MAX)
        return SS_ETOOBIG;
    return put_bytes(b, s, n, 0);
}

/* See ss_msgpack.h. */
int ss_mp_put_nil(ss_buf *b) { return put1(b, 0xc0); }

/* See ss_msgpack.h. */
int ss_mp_put_bool(ss_buf *b, int v) { return put1(b, v ? 0xc3 : 0xc2); }

/* See ss_msgpack.h. */
int ss_mp_put_int(ss_buf *b, int64_t v) { return put_int(b, v); }

/* See ss_msgpack.h. */
int ss_mp_put_uint(ss_buf *b, uint64_t v) { return put_uint(b, v); }

/* See ss_msgpack.h. */
int ss_mp_put_double(ss_buf *b, double v) { return put_double(b, v); }

static int put_container(ss_buf *b, uint32_t count, int map)
{
    if (reserve(b, 5))
        return SS_ENOMEM;
    char *q = b->data + b->len;
    if (count <= 15) {
        q[0] = (char)((map ? 0x80 : 0x90) | count);
        b->len += 1;
    } else if (count <= 0xffff) {
        q[0] = (char)(map ? 0xde : 0xdc);
        put_be16(q + 1, count);
        b->len += 3;
    } else {
        q[0] = (char)(map ? 0xdf : 0xdd);
        put_be32(q + 1, count);
        b->len += 5;
    }
    return 0;
}

/* See ss_msgpack.h. */
int ss_mp_put_array(ss_buf *b, uint32_t count)
{
    return put_container(b, count, 0);
}

/* See ss_msgpack.h. */
int ss_mp_put_map(ss_buf *b, uint32_t count)
{
    return put_container(b, count, 1);
}

/* Checks one value without a Lua state; is_key: it is a map key. */
static int skip_value(mp_dec *d, int depth, int is_key)
{
    mp_head h;
    size_t at = d->off;
    int rc = read_head(d, &h);
    if (rc)
        return rc;
    if (is_key && (h.kind == H_NIL || (h.kind == H_FLOAT && isnan(h.f))))
        return dec_fail(d, "%s map key at offset %zu",
                        h.kind == H_NIL ? "nil" : "NaN", at);
    if (h.kind == H_ARRAY) {
        if (depth + 1 > SS_MP_MAX_DEPTH)
            return too_deep(d, at);
        for (uint32_t i = 0; i < h.len; i++)
            if ((rc = skip_value(d, depth + 1, 0)))
                return rc;
    } else if (h.kind == H_MAP) {
        if (depth + 1 > SS_MP_MAX_DEPTH)
            return too_deep(d, at);
        for (uint32_t i = 0; i < h.len; i++)
            if ((rc = skip_value(d, depth + 1, 1)) ||
                (rc = skip_value(d, depth + 1, 0)))
                return rc;
    }
    return 0;
}

/* See ss_msgpack.h. */
int ss_mp_validate(const char *p, size_t n, size_t *off, char *err,
                   size_t errlen)
{
    mp_dec d = {NULL, (const uint8_t *)p, n, *off, err, errlen};
    if (err && errlen)
        err[0] = '\0';
    int rc = skip_value(&d, 0, 0);
    if (rc == 0)
        *off = d.off;
    return rc;
}

/* See ss_msgpack.h. */
int ss_mp_skip(const char *p, size_t n, size_t *off)
{
    return ss_mp_validate(p, n, off, NULL, 0);
}

/* See ss_msgpack.h. */
int ss_mp_get_str(const char *p, size_t n, size_t *off, const char **s,
                  size_t *len)
{
    mp_dec d = {NULL, (const uint8_t *)p, n, *off, NULL, 0};
    mp_head h;
    if (read_head(&d, &h) || (h.kind != H_STR && h.kind != H_BIN))
        return SS_EDECODE;
    *s = h.s;
    *len = h.len;
    *off = d.off;
    return 0;
}

/* ------------------------------------------------------------------ */
/* MessagePack -> JSON text                                            */

/* See ss_msgpack.h. */
size_t ss_mp_fmt_double(char *buf, size_t size, double v)
{
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, size, "%.*g", prec, v);
        if (n < 0 || (size_t)n >= size)
            return 0;
        if (prec == 17 || strtod(buf, NULL) == v)
            break;
    }
    /* the C library wrote the locale's decimal point */
    const char *dp = localeconv()->decimal_point;
    if (dp && strcmp(dp, ".") != 0 && dp[0]) {
        size_t dl = strlen(dp);
        char *at = strstr(buf, dp);
        if (at) {
            *at = '.';
            memmove(at + 1, at + dl, strlen(at + dl) + 1);
            n -= (int)(dl - 1);
        }
    }
    if (!strpbrk(buf, ".eEni")) { /* keep it a float: 1 -> 1.0 */
        if ((size_t)n + 2 >= size)
            return 0;
        memcpy(buf + n, ".0", 3);
        n += 2;
    }
    return (size_t)n;
}

static int json_value(mp_dec *d, ss_buf *out, int depth);

#define JSON_KEY_MAX 128

/* A map key: strings as they are, anything else as its JSON text (cut to
 * JSON_KEY_MAX bytes). */
static int json_key(mp_dec *d, ss_buf *out, int depth)
{
    size_t at = d->off;
    mp_head h;
    if (at < d->n && ((d->p[at] >= 0xa0 && d->p[at] <= 0xbf) ||
                      (d->p[at] >= 0xd9 && d->p[at] <= 0xdb) ||
                      (d->p[at] >= 0xc4 && d->p[at] <= 0xc6))) {
        int rc = read_head(d, &h);
        if (rc)
            return rc;
        return ss_buf_json_str(out, h.s, h.len);
    }
    ss_buf tmp = SS_BUF_INIT;
    int rc = json_value(d, &tmp, depth);
    if (!rc && tmp.len > JSON_KEY_MAX) {
        /* cut (at a character boundary): keys nested in keys would
         * otherwise grow exponentially with each level of escaping */
        size_t cut = JSON_KEY_MAX;
        while (cut > 0 && ((unsigned char)tmp.data[cut] & 0xc0) == 0x80)
            cut--;
        tmp.len = cut;
        rc = ss_buf_append(&tmp, "...", 3);
    }
    if (!rc)
        rc = ss_buf_json_str(out, tmp.data ? tmp.data : "", tmp.len);
    ss_buf_release(&tmp);
    return rc;
}

static int json_value(mp_dec *d, ss_buf *out, int depth)
{
    mp_head h;
    size_t at = d->off;
    int rc = read_head(d, &h);
    if (rc)
        return rc;
    char num[40];
    switch (h.kind) {
    case H_NIL:
        return ss_buf_append(out, "null", 4);
    case H_BOOL:
        return h.i ? ss_buf_append(out, "true", 4)
                   : ss_buf_append(out, "false", 5);
    case H_INT:
        return ss_buf_printf(out, "%lld", (long long)h.i);
    case H_UINT:
        return ss_buf_printf(out, "%llu", (unsigned long long)h.u);
    case H_FLOAT:
        if (!isfinite(h.f))
            return ss_buf_append(out, "null", 4);
        {
            size_t nl = ss_mp_fmt_double(num, sizeof num, h.f);
            return ss_buf_append(out, num, nl);
        }
    case H_STR:
    case H_BIN:
        return ss_buf_json_str(out, h.s, h.len);
    default:
        break;
    }
    if (depth + 1 > SS_MP_MAX_DEPTH)
        return too_deep(d, at);
    int map = h.kind == H_MAP;
    if ((rc = put1(out, map ? '{' : '[')))
        return rc;
    for (uint32_t i = 0; i < h.len; i++) {
        if (i && (rc = put1(out, ',')))
            return rc;
        if (map && ((rc = json_key(d, out, depth + 1)) ||
                    (rc = put1(out, ':'))))
            return rc;
        if ((rc = json_value(d, out, depth + 1)))
            return rc;
    }
    return put1(out, map ? '}' : ']');
}

/* See ss_msgpack.h. */
int ss_mp_to_json(const char *p, size_t n, size_t *off, ss_buf *out)
{
    mp_dec d = {NULL, (const uint8_t *)p, n, *off, NULL, 0};
    size_t start = out->len;
    int rc = json_value(&d, out, 0);
    if (rc) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
        return rc;
    }
    if (reserve(out, 0) == 0)
        out->data[out->len] = '\0';
    *off = d.off;
    return 0;
}
