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
#include <stdio.h>
#include <string.h>

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
    /* no quotes: fields are exactly the pieces between separators */
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
