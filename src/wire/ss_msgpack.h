/*
 * ss_msgpack.h - MessagePack for Lua values: the event codec of the hot
 * path (every event of a DATA batch is one MessagePack value).
 *
 * Lua -> MessagePack:
 *   nil -> nil; boolean -> false/true; integer -> the smallest int
 *   encoding (non-negative values use the uint family, as msgpack-c does);
 *   float -> float64 (NaN and infinities included); string -> str when it
 *   is valid UTF-8, bin otherwise; a table whose keys are exactly 1..n
 *   (n >= 1) -> array of n values; any other table -> map (the empty table
 *   is the empty map), keys encoded like values; function, userdata,
 *   light userdata and thread -> error. Tables nest at most SS_MP_MAX_DEPTH
 *   deep (the outermost table is depth 1), which also stops cycles.
 *   Metamethods are never called (raw access only), with one exception:
 *   a lazy CSV row (csv.parse; ss_csv.h) -> array of its fields, read
 *   from its line as row[i] would be.
 *
 * MessagePack -> Lua:
 *   nil, booleans; every int -> integer, except a uint64 above INT64_MAX
 *   -> float; float32/float64 -> float; str and bin -> string (str bytes
 *   are not checked for UTF-8); array -> table 1..n (nil elements leave
 *   holes); map -> table (a nil value leaves the key out, a later
 *   duplicate key wins); a nil or NaN map key, any ext type, the byte 0xc1
 *   and nesting deeper than SS_MP_MAX_DEPTH -> error.
 *
 * ss_mp_skip / ss_mp_validate accept exactly what ss_mp_decode_lua
 * accepts, without a Lua state.
 */
#ifndef SS_MSGPACK_H
#define SS_MSGPACK_H

#include "core/ss_buf.h"

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#define SS_MP_MAX_DEPTH 32

/*
 * Appends the Lua value at idx of L as one MessagePack value to b. Leaves
 * the Lua stack as it found it and never raises a Lua error. On failure
 * b->len is restored, the return is SS_EENCODE (or SS_ENOMEM when b or
 * the Lua stack cannot grow) and err (if errlen > 0) gets a reason naming
 * the value by its path from the root "event", e.g. "cannot send a
 * function value (at event.cb)" or "cyclic or too deeply nested table
 * (depth > 32, at event.next.next...)".
 */
int ss_mp_encode_lua(lua_State *L, int idx, ss_buf *b, char *err,
                     size_t errlen);

/* Same as ss_mp_encode_lua, with root as the name of the value in
 * messages (e.g. "value", "state"). root is borrowed for the call. */
int ss_mp_encode_lua_as(lua_State *L, int idx, ss_buf *b, const char *root,
                        char *err, size_t errlen);

/*
 * Decodes the value at p[*off..n), pushes it onto L and advances *off
 * past it. Returns 0, or SS_EDECODE with nothing pushed, *off unchanged
 * and a reason naming the byte offset in p in err ("truncated str32 at
 * offset 17", "invalid type byte 0xc1 at offset 4"). Never reads p[n] or
 * beyond. Returns SS_ENOMEM when the Lua stack cannot grow. Like any
 * lua_push*, it raises a Lua memory error if L's allocator refuses
 * memory: call it in protected mode when L has a memory cap.
 */
int ss_mp_decode_lua(lua_State *L, const char *p, size_t n, size_t *off,
                     char *err, size_t errlen);

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
