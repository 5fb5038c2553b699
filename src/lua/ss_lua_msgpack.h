/*
 * ss_lua_msgpack.h - MessagePack for Lua values: the event codec of the
 * hot path (every event of a DATA batch is one MessagePack value). The
 * byte-level half (writers, skip/validate, to_json) is wire/ss_msgpack.h.
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
 *   a lazy CSV row (csv.parse; ss_lua_csv.h) -> array of its fields, read
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
#ifndef SS_LUA_MSGPACK_H
#define SS_LUA_MSGPACK_H

#include "core/ss_buf.h"
#include "wire/ss_msgpack.h"

#include "lua/ss_lua_api.h"
#include <stddef.h>

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

#endif
