/*
 * ss_buf.h - growable byte buffer, embedded by value (init/release).
 *
 * Invariant: data is NULL when cap is 0; otherwise data[len] is always a
 * valid byte (the buffer keeps one spare byte for a terminating NUL).
 */
#ifndef SS_BUF_H
#define SS_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct ss_buf {
    char *data;
    size_t len;
    size_t cap;
} ss_buf;

#define SS_BUF_INIT {NULL, 0, 0}

/* Sets b to empty without allocating. Can't fail. */
void ss_buf_init(ss_buf *b);
/* Frees b's memory and leaves it empty and reusable. Safe twice. */
void ss_buf_release(ss_buf *b);
/* Makes room for extra more bytes (plus the spare NUL byte). Returns 0 or
 * SS_ENOMEM, in which case b is unchanged. */
int ss_buf_grow(ss_buf *b, size_t extra);
/* Appends n bytes. Returns 0 or SS_ENOMEM (b unchanged). */
int ss_buf_append(ss_buf *b, const void *p, size_t n);
/* Appends a formatted string. Returns 0 or SS_ENOMEM. */
int ss_buf_printf(ss_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends s[0..n) as a JSON string literal, quotes included: '"' and '\'
 * are escaped, \n \r \t \b \f get their short escapes and the other
 * control bytes \u00XX; valid UTF-8 (DEL included) is kept as it is, and
 * each byte of an invalid UTF-8 sequence becomes \u00XX (its Latin-1
 * reading). The result is always valid JSON, and the bytes can be
 * recovered: a \u0080..\u00ff in the output only ever stands for one such
 * byte, since valid characters are never escaped. Returns 0, or SS_ENOMEM
 * with b unchanged. */
int ss_buf_json_str(ss_buf *b, const char *s, size_t n);
/* Transfers ownership of the bytes to the caller (NUL-terminated, never
 * NULL unless out of memory) and leaves b empty. */
char *ss_buf_detach(ss_buf *b, size_t *len);

static inline void ss_buf_reset(ss_buf *b) { b->len = 0; }

/* Appends without a capacity check: caller has called ss_buf_grow. */
static inline void ss_buf_put(ss_buf *b, const void *p, size_t n)
{
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

#endif
