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

/* See ss_buf.h. */
int ss_buf_json_str(ss_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    /* worst case: every byte becomes \u00XX */
    if (n > (SIZE_MAX - 2) / 6 || ss_buf_grow(b, n * 6 + 2))
        return SS_ENOMEM;
    b->data[b->len++] = '"';
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = utf8_len(c);
        if (len > 1 && i + len <= n && ss_utf8_valid(s + i, len, NULL)) {
            ss_buf_put(b, s + i, len);
            i += len;
            continue;
        }
        if (c == '"' || c == '\\') {
            b->data[b->len++] = '\\';
            b->data[b->len++] = (char)c;
        } else if (c >= 0x20 && c < 0x7f) {
            b->data[b->len++] = (char)c;
        } else {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            ss_buf_put(b, e, 6);
        }
        i++;
    }
    b->data[b->len++] = '"';
    b->data[b->len] = '\0';
    return 0;
}
