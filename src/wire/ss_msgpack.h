/*
 * ss_msgpack.h - MessagePack at the byte level: the writers a producer of
 * events uses (put_*), the checks a consumer of untrusted batches uses
 * (skip/validate, get_str), and MessagePack -> JSON text for reject logs.
 * No Lua here: the event codec for Lua values (what each type becomes) is
 * lua/ss_lua_msgpack.h, built on the same header parser, so that
 * ss_mp_skip / ss_mp_validate accept exactly what ss_mp_decode_lua
 * accepts.
 *
 * Hand-written instead of msgpack-c because it is the hot path; see
 * docs/PERFORMANCE.md for the figures (bench/mp_bench).
 */
#ifndef SS_MSGPACK_H
#define SS_MSGPACK_H

#include "core/ss_buf.h"

#include <stddef.h>
#include <stdint.h>

#define SS_MP_MAX_DEPTH 32

/* Checks and skips one value at p[*off..n): returns 0 and advances *off,
 * or SS_EDECODE with *off unchanged. Never reads past n. */
int ss_mp_skip(const char *p, size_t n, size_t *off);

/* ss_mp_skip with the reason ss_mp_decode_lua would give written into
 * err (if errlen > 0). */
int ss_mp_validate(const char *p, size_t n, size_t *off, char *err,
                   size_t errlen);

/* Appends a str header and the n bytes at s (not checked for UTF-8; the
 * decoder does not care). Returns 0, SS_ETOOBIG (n > UINT32_MAX) or
 * SS_ENOMEM; b is unchanged on failure. */
int ss_mp_put_str(ss_buf *b, const char *s, size_t n);

/* Appends a bin header and the n bytes at s. Same returns. */
int ss_mp_put_bin(ss_buf *b, const char *s, size_t n);

/* Appends nil, a boolean, an integer (smallest encoding), a float64, or an
 * array/map header announcing count elements/pairs. 0 or SS_ENOMEM (b
 * unchanged). */
int ss_mp_put_nil(ss_buf *b);
int ss_mp_put_bool(ss_buf *b, int v);
int ss_mp_put_int(ss_buf *b, int64_t v);
int ss_mp_put_uint(ss_buf *b, uint64_t v);
int ss_mp_put_double(ss_buf *b, double v);
int ss_mp_put_array(ss_buf *b, uint32_t count);
int ss_mp_put_map(ss_buf *b, uint32_t count);

/* Reads a str or bin value at p[*off..n) without a Lua state: sets *s to
 * its bytes (borrowed from p, not NUL-terminated) and *len, advances
 * *off. Returns 0 or SS_EDECODE (not a str/bin, or truncated; *off
 * unchanged). */
int ss_mp_get_str(const char *p, size_t n, size_t *off, const char **s,
                  size_t *len);

/*
 * Appends the value at p[*off..n) to out as compact JSON text (for reject
 * logs and printing) and advances *off. Strings and bins become JSON
 * strings: control characters are escaped, bytes that are not valid UTF-8
 * are written as \u00XX (their Latin-1 reading); floats use the shortest
 * of %.15g/%.16g/%.17g that reads back exactly, NaN and infinities become
 * null; map keys that are not strings become the string of their JSON
 * text ({1:2} -> {"1":2}), cut to 128 bytes + "..." (keys nested in
 * keys would otherwise grow exponentially through escaping). Returns 0,
 * SS_EDECODE (what ss_mp_skip rejects, except that nil/NaN keys are
 * printed) or SS_ENOMEM; on failure out->len and *off are restored.
 */
int ss_mp_to_json(const char *p, size_t n, size_t *off, ss_buf *out);

/* Writes a finite double into buf as the shortest of %.15g/%.16g/%.17g
 * that strtod reads back exactly, with '.' as decimal point whatever the
 * locale, and ".0" appended when it would otherwise read as an integer.
 * Returns the length (NUL-terminated), or 0 if size is too small (32
 * always suffices). */
size_t ss_mp_fmt_double(char *buf, size_t size, double v);

#endif
