/*
 * ss_csv.c - RFC 4180 CSV lines (see ss_csv.h).
 *
 * Most lines hold no '"' at all: one memchr proves it, and the line is
 * then cut at each separator with memchr. Lines with quotes go through
 * the general scanner, which copies into the scratch buffer only quoted
 * fields that contain a doubled quote.
 */
#include "wire/ss_csv.h"
#include "securestreams.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static int csv_fail(char *err, size_t errlen, const char *what, size_t col)
{
    if (err && errlen)
        snprintf(err, errlen, "%s at column %zu", what, col);
    return SS_ECSV;
}

/* The general case: line holds at least one '"'. cb NULL: count only. */
static int scan_quoted(const char *s, size_t n, char sep, ss_csv_field_fn cb,
                       void *arg, ss_buf *scratch, char *err, size_t errlen)
{
    int idx = 0;
    size_t i = 0;
    for (;;) {
        const char *f;
        size_t flen;
        if (i < n && s[i] == '"') {
            size_t open = i;
            size_t seg = ++i; /* start of the bytes not yet copied */
            int copied = 0;
            if (cb && scratch)
                ss_buf_reset(scratch);
            for (;;) {
                const char *q = memchr(s + i, '"', n - i);
                if (!q)
                    return csv_fail(err, errlen,
                                    "unterminated quote starting", open + 1);
                size_t k = (size_t)(q - s);
                if (k + 1 < n && s[k + 1] == '"') { /* "" */
                    if (cb) {
                        if (!scratch)
                            return SS_EINVAL;
                        if (ss_buf_append(scratch, s + seg, k + 1 - seg))
                            return SS_ENOMEM;
                    }
                    copied = 1;
                    i = seg = k + 2;
                    continue;
                }
                if (copied && cb) {
                    if (ss_buf_append(scratch, s + seg, k - seg))
                        return SS_ENOMEM;
                    f = scratch->data;
                    flen = scratch->len;
                } else {
                    f = s + open + 1;
                    flen = k - open - 1;
                }
                i = k + 1;
                break;
            }
            if (i < n && s[i] != sep)
                return csv_fail(err, errlen,
                                "character after closing quote", i + 1);
        } else {
            size_t start = i;
            while (i < n && s[i] != sep) {
                if (s[i] == '"')
                    return csv_fail(err, errlen,
                                    "quote inside unquoted field", i + 1);
                i++;
            }
            f = s + start;
            flen = i - start;
        }
        if (cb) {
            int rc = cb(f, flen, idx, arg);
            if (rc)
                return rc;
        }
        idx++;
        if (i >= n)
            return idx;
        i++; /* the separator; a field (maybe empty) follows */
    }
}

#define ONES 0x0101010101010101ull
#define LOW7 0x7f7f7f7f7f7f7f7full

/* The high bit of each byte of w equal to the byte b (b * ONES), exactly
 * (no borrow between bytes). */
static inline uint64_t bytes_eq(uint64_t w, uint64_t b)
{
    uint64_t x = w ^ b;
    return ~(((x & LOW7) + LOW7) | x | LOW7);
}

/* The number of bytes of s[0..n) equal to sep, eight at a time. */
static size_t count_byte(const char *s, size_t n, char sep)
{
    const uint64_t seps = (unsigned char)sep * ONES;
    size_t i = 0, cnt = 0;
    for (; n - i >= 8; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        cnt += (size_t)(((bytes_eq(w, seps) >> 7) * ONES) >> 56);
    }
    for (; i < n; i++)
        cnt += s[i] == sep;
    return cnt;
}

static int scan(const char *s, size_t n, char sep, ss_csv_field_fn cb,
                void *arg, ss_buf *scratch, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (sep == '"' || sep == '\r' || sep == '\n') {
        if (err && errlen)
            snprintf(err, errlen, "invalid separator");
        return SS_EINVAL;
    }
    if (n && s[n - 1] == '\r')
        n--;
    if (n >= INT_MAX) {
        if (err && errlen)
            snprintf(err, errlen, "line too long (%zu bytes)", n);
        return SS_ECSV;
    }
    if (n && memchr(s, '"', n))
        return scan_quoted(s, n, sep, cb, arg, scratch, err, errlen);
    /* no quotes: fields are exactly the pieces between separators (the
     * source counts the fields of every line: one pass, no memchr per
     * field; n < INT_MAX, so the count fits) */
    if (!cb)
        return (int)count_byte(s, n, sep) + 1;
    int idx = 0;
    const char *p = s, *end = s + n;
    for (;;) {
        const char *q = p < end ? memchr(p, sep, (size_t)(end - p)) : NULL;
        const char *fe = q ? q : end;
        if (cb) {
            int rc = cb(p, (size_t)(fe - p), idx, arg);
            if (rc)
                return rc;
        }
        idx++;
        if (!q)
            return idx;
        p = q + 1;
    }
}

/* See ss_csv.h. */
int ss_csv_split_sep(const char *line, size_t n, char sep,
                     ss_csv_field_fn cb, void *arg, ss_buf *scratch,
                     char *err, size_t errlen)
{
    if (!cb) {
        if (err && errlen)
            snprintf(err, errlen, "no field callback");
        return SS_EINVAL;
    }
    return scan(line, n, sep, cb, arg, scratch, err, errlen);
}

/* See ss_csv.h. */
int ss_csv_split(const char *line, size_t n, ss_csv_field_fn cb, void *arg,
                 ss_buf *scratch, char *err, size_t errlen)
{
    return ss_csv_split_sep(line, n, ',', cb, arg, scratch, err, errlen);
}

/* See ss_csv.h. */
int ss_csv_count_sep(const char *line, size_t n, char sep, char *err,
                     size_t errlen)
{
    return scan(line, n, sep, NULL, NULL, NULL, err, errlen);
}

/* See ss_csv.h. */
int ss_csv_count(const char *line, size_t n, char *err, size_t errlen)
{
    return scan(line, n, ',', NULL, NULL, NULL, err, errlen);
}

/* ------------------------------------------------------------------ */
/* cursors                                                             */

/* See ss_csv.h. */
void ss_csv_cursor_init(ss_csv_cursor *c, const char *line, size_t n,
                        char sep)
{
    if (n && line[n - 1] == '\r')
        n--;
    c->s = line;
    c->n = n;
    c->pos = 0;
    c->sep = sep;
    c->done = 0;
}

/* The quoted field whose opening quote is at s[i]: sets its bytes and
 * doubled quotes, returns the index just past it (at the separator or
 * the end on a valid line). */
static size_t quoted_field(const char *s, size_t n, size_t i, char sep,
                           const char **f, size_t *len, size_t *dq)
{
    size_t start = ++i, d = 0;
    for (;;) {
        const char *q = i < n ? memchr(s + i, '"', n - i) : NULL;
        if (!q) { /* unterminated: not on a checked line */
            i = n;
            *len = n - start;
            break;
        }
        size_t k = (size_t)(q - s);
        if (k + 1 < n && s[k + 1] == '"') {
            d++;
            i = k + 2;
            continue;
        }
        *len = k - start;
        i = k + 1;
        break;
    }
    *f = s + start;
    *dq = d;
    while (i < n && s[i] != sep) /* nothing on a checked line */
        i++;
    return i;
}

/* See ss_csv.h. */
int ss_csv_cursor_next(ss_csv_cursor *c, const char **f, size_t *len,
                       size_t *dq)
{
    if (c->done)
        return 0;
    const char *s = c->s;
    size_t n = c->n, i = c->pos;
    char sep = c->sep;
    if (i < n && s[i] == '"') {
        i = quoted_field(s, n, i, sep, f, len, dq);
    } else {
        size_t start = i;
        while (i < n && s[i] != sep)
            i++;
        *f = s + start;
        *len = i - start;
        *dq = 0;
    }
    if (i >= n)
        c->done = 1;
    else
        c->pos = i + 1;
    return 1;
}


/* See ss_csv.h. */
size_t ss_csv_cursor_skip(ss_csv_cursor *c, size_t k)
{
    const char *s = c->s;
    size_t n = c->n, i = c->pos, first = c->pos, left = k;
    char sep = c->sep;
    const uint64_t seps = (unsigned char)sep * ONES, quotes = '"' * ONES;
    if (c->done)
        return 0;
#if defined(__SSE2__)
    const __m128i vsep = _mm_set1_epi8(sep), vquote = _mm_set1_epi8('"');
#endif
    while (left) {
#if defined(__SSE2__)
        /* sixteen bytes at a time while they hold no quote: each
         * separator ends one field */
        while (n - i >= 16) {
            __m128i w = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
            if (_mm_movemask_epi8(_mm_cmpeq_epi8(w, vquote)))
                break;
            unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(w, vsep));
            while (m) {
                if (--left == 0) {
                    c->pos = i + (size_t)__builtin_ctz(m) + 1;
                    return k;
                }
                m &= m - 1;
            }
            i += 16;
        }
#endif
        /* eight bytes at a time while they hold no quote and fewer
         * separators than fields to skip */
        while (n - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (bytes_eq(w, quotes))
                break;
            uint64_t m = bytes_eq(w, seps);
            size_t cnt = (size_t)(((m >> 7) * ONES) >> 56);
            if (cnt >= left) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                while (--left) /* the left-th separator of the word */
                    m &= m - 1;
                c->pos = i + (size_t)__builtin_ctzll(m) / 8 + 1;
                return k;
#else
                break;
#endif
            }
            left -= cnt;
            i += 8;
        }
        /* then byte by byte up to the next separator */
        for (;;) {
            if (i >= n) { /* the end closes the last field */
                c->done = 1;
                return k - left + 1;
            }
            char ch = s[i];
            if (ch == sep)
                break;
            if (ch == '"' && (i == first || s[i - 1] == sep)) {
                const char *f;
                size_t len, dq;
                i = quoted_field(s, n, i, sep, &f, &len, &dq);
            } else {
                i++;
            }
        }
        i++;
        left--;
    }
    c->pos = i;
    return k;
}

/* See ss_csv.h. */
size_t ss_csv_unescape(char *dst, const char *f, size_t len)
{
    char *q = dst;
    for (size_t i = 0; i < len; i++) {
        *q++ = f[i];
        if (f[i] == '"' && i + 1 < len && f[i + 1] == '"')
            i++;
    }
    return (size_t)(q - dst);
}

/* See ss_csv.h. */
int ss_csv_put_field(ss_buf *b, const char *s, size_t n, char sep)
{
    int quote = 0;
    size_t quotes = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == sep || c == '\r' || c == '\n')
            quote = 1;
        else if (c == '"')
            quote = 1, quotes++;
    }
    if (!quote)
        return ss_buf_append(b, s, n);
    if (n > SIZE_MAX / 2 - 2 || ss_buf_grow(b, n + quotes + 2))
        return SS_ENOMEM;
    char *q = b->data + b->len;
    *q++ = '"';
    for (size_t i = 0; i < n; i++) {
        *q++ = s[i];
        if (s[i] == '"')
            *q++ = '"';
    }
    *q++ = '"';
    b->len = (size_t)(q - b->data);
    b->data[b->len] = '\0';
    return 0;
}
