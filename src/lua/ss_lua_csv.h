/*
 * ss_lua_csv.h - the `csv` Lua module's lazy rows, as C code sees them.
 *
 * Lazy rows: csv.parse (src/lua/ss_lua_csv.c) returns a Lua table that
 * holds only its line, under the light userdata key &ss_csv_row_line,
 * and whose metatable (shared by every row of one separator) holds the
 * separator as an integer under &ss_csv_row_sep. Encoders that want a
 * row as the array of its fields use ss_csv_lua_row and a cursor; a
 * field that was assigned (or cached) in the table itself, row[i] ~=
 * nil by raw access, wins over the line's text.
 */
#ifndef SS_LUA_CSV_H
#define SS_LUA_CSV_H

#include "lua/ss_lua_api.h"
#include <stddef.h>

extern const char ss_csv_row_line;
extern const char ss_csv_row_sep;

/* 1 if the value at idx is a lazy row (line and n: its line, valid while
 * the row is alive and its private key untouched; sep: its separator),
 * 0 if it is anything else, SS_EINVAL if it has the row metatable but
 * no line (raw access replaced it). Raw access only; the stack is left
 * as found. */
int ss_csv_lua_row(lua_State *L, int idx, const char **line, size_t *n,
                   char *sep);

#endif
