/*
 * ss_buf.c - growable byte buffer (see ss_buf.h).
 */
#include "core/ss_buf.h"
#include "core/ss_util.h"
#include "securestreams.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* See ss_buf.h. */
void ss_buf_init(ss_buf *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
}

/* See ss_buf.h. */
void ss_buf_release(ss_buf *b)
{
    free(b->data);
    ss_buf_init(b);
}

/* See ss_buf.h. */
int ss_buf_grow(ss_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        return SS_ENOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return SS_ENOMEM;
    b->data = p;
    b->cap = cap;
    b->data[b->len] = '\0';
    return 0;
}

/* See ss_buf.h. */
int ss_buf_append(ss_buf *b, const void *p, size_t n)
{
    int rc = ss_buf_grow(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

/* See ss_buf.h. */
int ss_buf_printf(ss_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return SS_EINVAL;
    int rc = ss_buf_grow(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

/* See ss_buf.h. */
char *ss_buf_detach(ss_buf *b, size_t *len)
{
    if (!b->data && ss_buf_grow(b, 0))
        return NULL;
    char *p = b->data;
    if (len)
        *len = b->len;
    ss_buf_init(b);
    return p;
}

/* Length of the UTF-8 sequence that starts with byte c (1 for ASCII, 0 if
 * c cannot start one). */
static size_t utf8_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return 2;
    if (c >= 0xE0 && c <= 0xEF)
        return 3;
    if (c >= 0xF0 && c <= 0xF4)
        return 4;
    return 0;
}

/* See ss_buf.h. The one JSON string writer of the code base: reject
 * lines, the metrics file, json.encode and MessagePack -> JSON all write
 * strings through it, so that one line never mixes two spellings. */
int ss_buf_json_str(ss_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t start = b->len;
    if (ss_buf_append(b, "\"", 1))
        return SS_ENOMEM;
    size_t i = 0;
    while (i < n) {
        size_t run = i; /* printable ASCII (and DEL) goes as it is */
        while (run < n && u[run] >= 0x20 && u[run] < 0x80 &&
               u[run] != '"' && u[run] != '\\')
            run++;
        if (run > i) {
            if (ss_buf_append(b, s + i, run - i))
                goto nomem;
            i = run;
            continue;
        }
        unsigned c = u[i];
        if (c >= 0x80) {
            size_t len = utf8_len((unsigned char)c);
            if (len > 1 && i + len <= n && ss_utf8_valid(s + i, len, NULL)) {
                if (ss_buf_append(b, s + i, len))
                    goto nomem;
                i += len;
                continue;
            }
        }
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t el = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default: /* another control byte, or a byte of invalid UTF-8 */
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            el = 6;
        }
        if (ss_buf_append(b, esc, el))
            goto nomem;
        i++;
    }
    if (ss_buf_append(b, "\"", 1))
        goto nomem;
    return 0;
nomem:
    b->len = start;
    if (b->data)
        b->data[start] = '\0';
    return SS_ENOMEM;
}
