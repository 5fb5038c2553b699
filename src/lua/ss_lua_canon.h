/*
 * ss_lua_canon.h - canonical MessagePack of plain Lua data: the encoding
 * of operator state in a checkpoint (ss_stage_snapshot).
 *
 * Unlike the event codec (ss_lua_msgpack.h), whose map order is the
 * order lua_next happens to walk a table, this one writes the same bytes
 * for the same data every time, and it refuses what a checkpoint cannot
 * carry instead of sending it:
 *
 *   nil, false, true       nil, false, true
 *   integer                int (smallest encoding), stays an integer
 *   float                  float64 (also 1.0, NaN, infinities): stays a float
 *   string                 str when valid UTF-8, else bin
 *   table, keys 1..n       array of n values (n >= 1)
 *   any other table        map, keys sorted: false, true, then numbers in
 *                          numeric order, then strings in byte order
 *                          (shorter first on a common prefix)
 *
 * Refused, with the path of the value from the root (e.g. "a function
 * value (at state.acc.cb)"): functions, userdata, light userdata,
 * threads, a table used as a key, a table with a metatable (its methods
 * would be lost), a table that contains itself (a cycle), nesting deeper
 * than SS_MP_MAX_DEPTH (the decoder's limit). A table reached twice
 * without a cycle (shared) is written twice: after decoding the two
 * places hold two equal tables, not one.
 *
 * Decoding is the event decoder's (ss_mp_decode_lua), which gives back
 * integers as integers and floats as floats.
 */
#ifndef SS_LUA_CANON_H
#define SS_LUA_CANON_H

#include "core/ss_buf.h"

#include "lua/ss_lua_api.h"
#include <stddef.h>

/*
 * Appends the value at idx of L to b as canonical MessagePack. root names
 * the value in messages (borrowed for the call). Returns 0, or SS_EENCODE
 * with err (if errlen > 0) saying what and where ("a function value (at
 * reduce.acc.cb)"), or SS_ENOMEM; on failure b->len is restored. Leaves
 * the Lua stack as it found it on success; may raise a Lua memory error
 * (it pushes keys): call it in protected mode when L has a memory cap.
 */
int ss_lua_canon_encode(lua_State *L, int idx, ss_buf *b, const char *root,
                        char *err, size_t errlen);

#endif
