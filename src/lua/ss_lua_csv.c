/*
 * ss_lua_csv.c - the `csv` module for stage scripts (docs/LUA.md, ## csv):
 *
 *   csv.parse(line [, sep])   -> a lazy row: a table whose fields are cut
 *                                out of the line when read; raises
 *                                "csv.parse: <reason> at column N" for a
 *                                malformed line
 *   csv.fields(line [, sep])  -> a plain array of the line's fields
 *                                (strings), errors as "csv.fields: ..."
 *   csv.encode(array [, sep]) -> one line (no newline), fields quoted
 *                                only when needed; fields are strings or
 *                                numbers, nil holes become empty fields;
 *                                a row is written as its fields
 *
 * sep is a one-byte string, ',' by default (not '"', CR or LF).
 *
 * A row is a real table holding only its line, under a private light
 * userdata key (&ss_csv_row_line, ss_lua_csv.h), with a metatable shared by
 * every row of one separator (uservalue 2 of the state maps sep ->
 * metatable; the ',' one is also upvalue 2 of the module's functions).
 * Making one costs a table, one hash node and setmetatable: no field
 * strings, no offsets. csv.parse still rejects a malformed line at once:
 * a line without '"' cannot be malformed (one memchr proves it), and one
 * with '"' goes through ss_csv_count_sep, which checks it storing
 * nothing.
 *
 * The metamethods (closures over the state and the separator):
 *   __index(row, i)     field i (an integer key, or a float with an
 *                       integer value), or nil past the last field and
 *                       for any other key. Nothing is cached in the row:
 *                       caching makes parse + the mapper's two reads 75%
 *                       dearer (each first read grows the row's hash
 *                       part), reading them twice 20% dearer, ipairs 35%
 *                       (bench/csv_bench.c, instructions per line);
 *   __len(row)          the number of fields;
 *   __newindex(row,i,v) i must be 1..#row: v goes into the row, where
 *                       reads, pairs and encoders find it first; v == nil
 *                       leaves the field as the line has it; any other
 *                       key is an error (a row has a fixed shape);
 *   __pairs(row)        1, row[1] ... n, row[n], in order;
 *   __name, __metatable "csv.row" (setmetatable on a row is refused).
 *
 * The state keeps one cursor (ss_csv_cursor) for the row read last, so
 * reading fields in increasing order costs one pass over the line, and
 * a lower index or another row starts over. csv.parse aims the cursor at
 * the row it makes (a mapper reads it next). A row is recognised by its
 * table's address alone: only csv.parse makes rows and it re-aims the
 * cursor at each, so no other row can have that address while the one
 * the cursor is for is alive. The line is held by the state (uservalue
 * 1) while the cursor points into it, so a row whose private key was
 * replaced by raw access reads stale fields at worst, never freed memory
 * (and is refused once the cursor has moved on).
 *
 * Encoders (ss_msgpack.c, ss_lua_json.c, csv.encode) find rows with
 * ss_csv_lua_row and walk the line with their own cursor, writing the
 * fields' bytes without making Lua strings. Raw access (rawget, rawlen,
 * next) sees the implementation, not the fields.
 *
 * csv.fields and csv.encode share one scratch buffer held by the state
 * userdata (freed by its __gc), so a Lua error thrown midway (e.g. out of
 * memory) leaks nothing.
 */
#include "lua/ss_lua.h"
#include "lua/ss_lua_csv.h"
#include "securestreams.h"
#include "wire/ss_csv.h"

#include "lua/ss_lua_api.h"
#include <limits.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* lazy rows                                                           */

const char ss_csv_row_line = 0;
const char ss_csv_row_sep = 0;

/* See ss_lua_csv.h. */
int ss_csv_lua_row(lua_State *L, int idx, const char **line, size_t *n,
                   char *sep)
{
    idx = lua_absindex(L, idx);
    if (!lua_getmetatable(L, idx))
        return 0;
    if (lua_rawgetp(L, -1, &ss_csv_row_sep) != LUA_TNUMBER) {
        lua_pop(L, 2);
        return 0;
    }
    *sep = (char)lua_tointeger(L, -1);
    lua_pop(L, 2);
    if (lua_rawgetp(L, idx, &ss_csv_row_line) != LUA_TSTRING) {
        lua_pop(L, 1);
        return SS_EINVAL;
    }
    /* the row holds the string: the pointer outlives the pop */
    *line = lua_tolstring(L, -1, n);
    lua_pop(L, 1);
    return 1;
}

#define CSV_STATE "ss.csv.state"
#define CSV_ROW "csv.row"
#define CSV_GUESS_MAX 256

/* Whether __index stores what it cut in the row (rawset). Off: rows stay
 * one hash node and a second read of a field cuts it again. On, the
 * mapper's two reads cost two rehashes of the row. Kept to measure both
 * (bench/csv_bench.c says how). */
#ifndef SS_CSV_ROW_CACHE
#define SS_CSV_ROW_CACHE 0
#endif

typedef struct csv_state {
    ss_buf scratch;
    int guess; /* field count of the last line csv.fields split */
    /* lazy rows: the cursor of the last row read (see row_focus) */
    const void *row;   /* NULL, or the row the cursor is for */
    const char *line;  /* its line, held as uservalue 1 */
    size_t len;
    char sep;
    ss_csv_cursor cur;
    lua_Integer next;  /* index of the field cur returns next */
    lua_Integer count; /* fields of line, 0 until known */
} csv_state;

static int state_gc(lua_State *L)
{
    csv_state *cs = luaL_checkudata(L, 1, CSV_STATE);
    ss_buf_release(&cs->scratch);
    return 0;
}

static char opt_sep(lua_State *L, int arg)
{
    if (lua_isnoneornil(L, arg))
        return ',';
    size_t n;
    const char *s = luaL_checklstring(L, arg, &n);
    if (n != 1 || s[0] == '"' || s[0] == '\r' || s[0] == '\n')
        luaL_argerror(L, arg, "separator must be one byte, not '\"', "
                              "CR or LF");
    return s[0];
}

/* ------------------------------------------------------------------ */
/* lazy rows                                                           */

#define ROW_STATE() \
    ((csv_state *)lua_touserdata(L, lua_upvalueindex(1)))
#define ROW_SEP() ((char)lua_tointeger(L, lua_upvalueindex(2)))

/* Pushes a field the cursor returned, "" unescaped. */
static void push_field_text(lua_State *L, const char *f, size_t len,
                            size_t dq)
{
    if (!dq) {
        lua_pushlstring(L, f, len);
        return;
    }
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, len - dq);
    luaL_pushresultsize(&b, ss_csv_unescape(p, f, len));
}

/* Points the state's cursor at the start of row (a table pointer) and
 * its line; the line must be at the top of the stack, and is popped:
 * the state holds it (uservalue 1) while its cursor points into it. */
static void row_aim(lua_State *L, csv_state *cs, int st, const void *row,
                    const char *s, size_t n, char sep)
{
    lua_setiuservalue(L, st, 1);
    cs->row = row;
    cs->line = s;
    cs->len = n;
    cs->sep = sep;
    cs->count = 0;
    ss_csv_cursor_init(&cs->cur, s, n, sep);
    cs->next = 1;
}

/* Makes the state's cursor that of the row at index 1. Only csv.parse
 * makes rows, and it aims the cursor at each new one: so while a row is
 * alive, no other row can have its address, and a row whose address
 * matches is the one the cursor is for. (The line is held by the state
 * rather than read again from the row: a row whose private key was
 * replaced by raw access gets the fields of its first line, never a
 * dangling pointer.) */
static void row_focus(lua_State *L, csv_state *cs)
{
    const void *row = lua_topointer(L, 1);
    if (row == cs->row)
        return;
    if (lua_rawgetp(L, 1, &ss_csv_row_line) != LUA_TSTRING)
        luaL_error(L, "damaged csv row: its line was replaced");
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    row_aim(L, cs, lua_upvalueindex(1), row, s, n, ROW_SEP());
}

/* Number of fields of the row at index 1. */
static lua_Integer row_count(lua_State *L, csv_state *cs)
{
    row_focus(L, cs);
    if (!cs->count) {
        ss_csv_cursor c;
        ss_csv_cursor_init(&c, cs->line, cs->len, cs->sep);
        cs->count = (lua_Integer)ss_csv_cursor_skip(&c, SIZE_MAX);
    }
    return cs->count;
}

/* Pushes field i >= 1 of the row at index 1 (from its line, ignoring
 * what the row holds) and returns 1, or returns 0 past the last field. */
static int row_cut(lua_State *L, csv_state *cs, lua_Integer i)
{
    row_focus(L, cs);
    if (i < cs->next) {
        ss_csv_cursor_init(&cs->cur, cs->line, cs->len, cs->sep);
        cs->next = 1;
    }
    if (cs->count && i > cs->count)
        return 0;
    cs->next += (lua_Integer)ss_csv_cursor_skip(&cs->cur,
                                                (size_t)(i - cs->next));
    const char *f;
    size_t len, dq;
    if (cs->next != i || !ss_csv_cursor_next(&cs->cur, &f, &len, &dq)) {
        cs->count = cs->next - 1;
        return 0;
    }
    cs->next++;
    push_field_text(L, f, len, dq);
    return 1;
}

/* The key at k as a field index >= 1, or 0. */
static lua_Integer key_index(lua_State *L, int k)
{
    if (lua_type(L, k) != LUA_TNUMBER)
        return 0;
    int isint;
    lua_Integer i = lua_tointegerx(L, k, &isint);
    return isint && i >= 1 ? i : 0;
}

static int row_index(lua_State *L)
{
    lua_Integer i = key_index(L, 2);
    if (!i || !row_cut(L, ROW_STATE(), i))
        return 0;
#if SS_CSV_ROW_CACHE
    lua_pushvalue(L, -1);
    lua_rawseti(L, 1, i);
#endif
    return 1;
}

static int row_len(lua_State *L)
{
    lua_pushinteger(L, row_count(L, ROW_STATE()));
    return 1;
}

static int row_newindex(lua_State *L)
{
    lua_Integer count = row_count(L, ROW_STATE());
    lua_Integer i = key_index(L, 2);
    if (!i || i > count)
        return luaL_error(L, "csv row: cannot set field %s: a row has "
                             "fields 1.." SS_LUA_FMT_INT " only (csv.fields "
                             "returns a plain table)",
                          luaL_tolstring(L, 2, NULL), SS_LUA_ARG_INT(count));
    if (lua_isnil(L, 3))
        return 0;
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 0;
}

/* The __pairs iterator: (row, i) -> i + 1, row[i + 1]. */
static int row_next(lua_State *L)
{
    lua_Integer k = luaL_checkinteger(L, 2);
    if (k < 0 || k >= LUA_MAXINTEGER)
        return 0;
    lua_Integer i = k + 1;
    lua_settop(L, 1);
    lua_pushinteger(L, i);
    if (lua_rawgeti(L, 1, i) != LUA_TNIL)
        return 2;
    lua_pop(L, 1);
    if (!row_cut(L, ROW_STATE(), i))
        return 0;
    return 2;
}

static int row_pairs(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushvalue(L, lua_upvalueindex(3));
    lua_pushvalue(L, 1);
    lua_pushinteger(L, 0);
    return 3;
}

/* Pushes a new row metatable for sep; st is the state's index. */
static void new_row_mt(lua_State *L, int st, char sep)
{
    static const luaL_Reg mms[] = {{"__index", row_index},
                                   {"__len", row_len},
                                   {"__newindex", row_newindex},
                                   {NULL, NULL}};
    lua_createtable(L, 0, 8);
    lua_pushvalue(L, st);
    lua_pushinteger(L, (unsigned char)sep);
    luaL_setfuncs(L, mms, 2);
    lua_pushvalue(L, st);
    lua_pushinteger(L, (unsigned char)sep);
    lua_pushvalue(L, st);
    lua_pushinteger(L, (unsigned char)sep);
    lua_pushcclosure(L, row_next, 2);
    lua_pushcclosure(L, row_pairs, 3);
    lua_setfield(L, -2, "__pairs");
    lua_pushliteral(L, CSV_ROW);
    lua_setfield(L, -2, "__name");
    lua_pushliteral(L, CSV_ROW);
    lua_setfield(L, -2, "__metatable");
    lua_pushinteger(L, (unsigned char)sep);
    lua_rawsetp(L, -2, &ss_csv_row_sep);
}

/* Pushes the row metatable for sep. */
static void push_row_mt(lua_State *L, char sep)
{
    if (sep == ',') {
        lua_pushvalue(L, lua_upvalueindex(2));
        return;
    }
    lua_getiuservalue(L, lua_upvalueindex(1), 2);
    if (lua_rawgeti(L, -1, (unsigned char)sep) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_pushvalue(L, lua_upvalueindex(1));
        new_row_mt(L, lua_gettop(L), sep);
        lua_remove(L, -2);
        lua_pushvalue(L, -1);
        lua_rawseti(L, -3, (unsigned char)sep);
    }
    lua_remove(L, -2);
}

static int fields_as(lua_State *L, const char *who);

static int csv_parse(lua_State *L)
{
#ifdef SS_LUAJIT
    /* LuaJIT (Lua 5.1 semantics) ignores __len and __pairs on tables and
     * its ipairs reads raw: a lazy row would have #row == 0 and iterate
     * as empty. A plain table keeps the meaning. */
    return fields_as(L, "csv.parse");
#endif
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    char sep = opt_sep(L, 2);
    /* only a line with a quote can be malformed */
    int count = 0;
    if (n >= INT_MAX || (n && memchr(s, '"', n))) {
        char err[128];
        count = ss_csv_count_sep(s, n, sep, err, sizeof err);
        if (count < 0)
            return luaL_error(L, "csv.parse: %s", err);
    }
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, 1); /* the string, if a number was given */
    lua_rawsetp(L, -2, &ss_csv_row_line);
    push_row_mt(L, sep);
    lua_setmetatable(L, -2);
    /* a mapper reads the row it just made: aim the cursor at it */
    csv_state *cs = lua_touserdata(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    row_aim(L, cs, lua_upvalueindex(1), lua_topointer(L, -2), s, n, sep);
    cs->count = count; /* known when checked, else 0 */
    return 1;
}

/* ------------------------------------------------------------------ */
/* plain tables                                                        */

static int push_field(const char *f, size_t len, int index, void *arg)
{
    lua_State *L = arg;
    lua_pushlstring(L, f, len);
    lua_rawseti(L, -2, (lua_Integer)index + 1);
    return 0;
}

/* A plain table of the line's fields; errors name who. */
static int fields_as(lua_State *L, const char *who)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    char sep = opt_sep(L, 2);
    csv_state *cs = lua_touserdata(L, lua_upvalueindex(1));
    char err[128];
    lua_createtable(L, cs->guess, 0);
    int r = ss_csv_split_sep(s, n, sep, push_field, L, &cs->scratch, err,
                             sizeof err);
    if (cs->scratch.cap > 65536)
        ss_buf_release(&cs->scratch);
    if (r < 0) {
        if (r == SS_ENOMEM)
            return luaL_error(L, "%s: out of memory", who);
        return luaL_error(L, "%s: %s", who, err);
    }
    cs->guess = r < CSV_GUESS_MAX ? r : CSV_GUESS_MAX;
    return 1;
}

static int csv_fields(lua_State *L) { return fields_as(L, "csv.fields"); }

static int csv_encode(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    char sep = opt_sep(L, 2);
    csv_state *cs = lua_touserdata(L, lua_upvalueindex(1));
    ss_buf *b = &cs->scratch;
    ss_buf_reset(b);
    const char *line;
    size_t ln;
    char rsep;
    int row = ss_csv_lua_row(L, 1, &line, &ln, &rsep);
    if (row < 0)
        return luaL_error(L, "csv.encode: damaged csv row: its line was "
                             "replaced");
    ss_csv_cursor c;
    lua_Unsigned len = LUA_MAXINTEGER;
    if (row)
        ss_csv_cursor_init(&c, line, ln, rsep);
    else
        len = lua_rawlen(L, 1);
    int rc = 0;
    for (lua_Unsigned i = 1; i <= len && rc == 0; i++) {
        const char *f = NULL;
        size_t fl = 0, dq = 0;
        if (row && !ss_csv_cursor_next(&c, &f, &fl, &dq))
            break;
        if (i > 1)
            rc = ss_buf_append(b, &sep, 1);
        int t = lua_rawgeti(L, 1, (lua_Integer)i);
        if (t == LUA_TNIL && row && dq) { /* the line's text, unescaped */
            lua_pop(L, 1);
            push_field_text(L, f, fl, dq);
            t = LUA_TSTRING;
        }
        if (t == LUA_TSTRING || t == LUA_TNUMBER) {
            f = lua_tolstring(L, -1, &fl);
            if (!rc)
                rc = ss_csv_put_field(b, f, fl, sep);
        } else if (t == LUA_TNIL && row) { /* the line's text */
            if (!rc)
                rc = ss_csv_put_field(b, f, fl, sep);
        } else if (t != LUA_TNIL) {
            ss_buf_reset(b);
            return luaL_error(L, "csv.encode: field %d is a %s (strings "
                                 "and numbers only)",
                              (int)i, lua_typename(L, t));
        }
        lua_pop(L, 1);
    }
    if (rc) {
        ss_buf_release(b);
        return luaL_error(L, "csv.encode: out of memory");
    }
    lua_pushlstring(L, b->data ? b->data : "", b->len);
    if (b->cap > 65536)
        ss_buf_release(b);
    return 1;
}

/* See ss_lua.h. */
int luaopen_ss_csv(lua_State *L)
{
    static const luaL_Reg fns[] = {{"parse", csv_parse},
                                   {"fields", csv_fields},
                                   {"encode", csv_encode},
                                   {NULL, NULL}};
    luaL_newlibtable(L, fns);
    csv_state *cs = lua_newuserdatauv(L, sizeof *cs, 2);
    memset(cs, 0, sizeof *cs);
    ss_buf_init(&cs->scratch);
    cs->guess = 8;
    if (luaL_newmetatable(L, CSV_STATE)) {
        lua_pushcfunction(L, state_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
    }
    lua_setmetatable(L, -2);
    int st = lua_gettop(L);
    new_row_mt(L, st, ',');
    lua_createtable(L, 0, 1); /* sep -> row metatable */
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, ',');
    lua_setiuservalue(L, st, 2);
    luaL_setfuncs(L, fns, 2);
    return 1;
}
