/*
 * test_json.c - the Lua `json` module (src/lua/ss_lua_json.c): encoding
 * of every type and the documented choices (sequences -> arrays, {} ->
 * {}, sorted keys, 1.0 stays 1.0), RFC 8259 decoding (escapes, surrogate
 * pairs, numbers at the int64 edges, json.null in containers), every
 * error with its path or byte offset, depth limits and cycles.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lua/ss_lua.h"
#include "securestreams.h"

#include "lua/ss_lua_api.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lua_State *json_state(void)
{
    lua_State *L = luaL_newstate();
    assert_non_null(L);
    luaL_openlibs(L);
    luaL_requiref(L, "json", luaopen_ss_json, 1);
    lua_pop(L, 1);
    return L;
}

/* Runs a chunk that must return true. */
static void lua_ok(lua_State *L, const char *code)
{
    if (luaL_dostring(L, code) != LUA_OK)
        fail_msg("lua error: %s\nin: %s", lua_tostring(L, -1), code);
    if (!lua_toboolean(L, -1))
        fail_msg("lua check failed: %s", code);
    lua_settop(L, 0);
}

/* json.encode(<expr>) must give want exactly. */
static void expect_enc(lua_State *L, const char *expr, const char *want)
{
    char code[2048];
    snprintf(code, sizeof code, "return json.encode(%s)", expr);
    if (luaL_dostring(L, code) != LUA_OK)
        fail_msg("%s: error %s", expr, lua_tostring(L, -1));
    size_t n;
    const char *got = lua_tolstring(L, -1, &n);
    if (!got || n != strlen(want) || memcmp(got, want, n) != 0)
        fail_msg("json.encode(%s) = '%s', want '%s'", expr,
                 got ? got : "(null)", want);
    lua_settop(L, 0);
}

/* Running code must raise an error containing want. */
static void expect_err(lua_State *L, const char *code, const char *want)
{
    if (luaL_dostring(L, code) == LUA_OK)
        fail_msg("no error from: %s", code);
    const char *msg = lua_tostring(L, -1);
    if (!msg || !strstr(msg, want))
        fail_msg("%s: error '%s', want '%s'", code, msg ? msg : "(null)",
                 want);
    lua_settop(L, 0);
}

/* json.decode(text) must raise exactly "json.decode: want". text may hold
 * NUL bytes (len). */
static void expect_dec_err(lua_State *L, const char *text, size_t len,
                           const char *want)
{
    lua_getglobal(L, "json");
    lua_getfield(L, -1, "decode");
    lua_pushlstring(L, text, len);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK)
        fail_msg("json.decode('%s') did not fail", text);
    const char *msg = lua_tostring(L, -1);
    char full[256];
    snprintf(full, sizeof full, "json.decode: %s", want);
    if (!msg || strcmp(msg, full) != 0)
        fail_msg("json.decode('%s'): '%s', want '%s'", text,
                 msg ? msg : "(null)", full);
    lua_settop(L, 0);
}

#define DEC_ERR(L, text, want) expect_dec_err(L, text, sizeof text - 1, want)

/* ------------------------------------------------------------------ */
/* encode                                                              */

static void test_encode_scalars(void **state)
{
    (void)state;
    lua_State *L = json_state();
    expect_enc(L, "nil", "null");
    expect_enc(L, "json.null", "null");
    expect_enc(L, "true", "true");
    expect_enc(L, "false", "false");
    expect_enc(L, "0", "0");
    expect_enc(L, "-5", "-5");
    expect_enc(L, "math.maxinteger", "9223372036854775807");
    expect_enc(L, "math.mininteger", "-9223372036854775808");
    expect_enc(L, "1.5", "1.5");
    expect_enc(L, "1.0", "1.0");
    expect_enc(L, "-0.0", "-0.0");
    expect_enc(L, "0.1", "0.1");
    expect_enc(L, "1/3", "0.3333333333333333");
    expect_enc(L, "0.1 + 0.2", "0.30000000000000004");
    expect_enc(L, "1e300", "1e+300");
    expect_enc(L, "2^63", "9.223372036854776e+18");
    expect_enc(L, "5e-324", "4.94065645841247e-324");
    expect_enc(L, "''", "\"\"");
    expect_enc(L, "'plain'", "\"plain\"");
    expect_enc(L, "'q\"b\\\\s/'", "\"q\\\"b\\\\s/\"");
    expect_enc(L, "'\\n\\r\\t\\b\\f'", "\"\\n\\r\\t\\b\\f\"");
    expect_enc(L, "'\\0\\1\\31\\127'", "\"\\u0000\\u0001\\u001f\x7f\"");
    expect_enc(L, "'\\u{e9}\\u{20ac}\\u{1F600}'",
               "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
    lua_close(L);
}

static void test_encode_tables(void **state)
{
    (void)state;
    lua_State *L = json_state();
    expect_enc(L, "{}", "{}");
    expect_enc(L, "{1, 2, 3}", "[1,2,3]");
    expect_enc(L, "{'a', {}, {{}}}", "[\"a\",{},[{}]]");
    expect_enc(L, "{b = 2, a = 1, c = {d = true}}",
               "{\"a\":1,\"b\":2,\"c\":{\"d\":true}}");
    expect_enc(L, "{[1] = 'x', [3] = 'y'}", "{\"1\":\"x\",\"3\":\"y\"}");
    expect_enc(L, "{1, 2, x = 1}", "{\"1\":1,\"2\":2,\"x\":1}");
    expect_enc(L, "{[10] = 1, [2] = 2, [-1] = 3}",
               "{\"-1\":3,\"10\":1,\"2\":2}");
    expect_enc(L, "{[1.5] = true}", "{\"1.5\":true}");
    expect_enc(L, "{[0] = 0}", "{\"0\":0}");
    expect_enc(L, "{1, json.null, 3}", "[1,null,3]");
    expect_enc(L, "{a = json.null}", "{\"a\":null}");
    expect_enc(L, "{['a\"b'] = 1}", "{\"a\\\"b\":1}");
    expect_enc(L, "{['\\u{e9}'] = 1, z = 2}", "{\"z\":2,\"\xc3\xa9\":1}");
    /* built backwards: still an array */
    expect_enc(L, "(function() local t = {} for i = 3, 1, -1 do t[i] = i "
                  "end return t end)()",
               "[1,2,3]");
    /* a shared subtable is not a cycle */
    expect_enc(L, "(function() local s = {1} return {s, s} end)()",
               "[[1],[1]]");
    /* metatables are ignored */
    expect_enc(L, "setmetatable({a = 1}, {__index = function() return 9 end,"
                  " __pairs = error, __len = function() return 5 end})",
               "{\"a\":1}");
    /* deterministic whatever the insertion order */
    lua_ok(L, "local a, b = {}, {} "
              "for i = 1, 50 do a['k' .. i] = i end "
              "for i = 50, 1, -1 do b['k' .. i] = i end "
              "a[7] = 'x' b[7] = 'x' "
              "return json.encode(a) == json.encode(b)");
    lua_close(L);
}

static void test_encode_errors(void **state)
{
    (void)state;
    lua_State *L = json_state();
    expect_err(L, "return json.encode(0/0)",
               "json.encode: cannot encode NaN or infinity (at value)");
    expect_err(L, "return json.encode({x = {1, 1/0}})",
               "json.encode: cannot encode NaN or infinity (at value.x[2])");
    expect_err(L, "return json.encode({-1/0})",
               "cannot encode NaN or infinity (at value[1])");
    expect_err(L, "return json.encode({cb = print})",
               "json.encode: cannot encode a function value (at value.cb)");
    expect_err(L, "return json.encode({['a b'] = {coroutine.create(print)}})",
               "cannot encode a thread value (at value[\"a b\"][1])");
    expect_err(L, "return json.encode(io.stdout)",
               "cannot encode a userdata value (at value)");
    expect_err(L, "return json.encode({[true] = 1})",
               "json.encode: cannot encode a boolean key (at value)");
    expect_err(L, "return json.encode({k = {[{}] = 1}})",
               "cannot encode a table key (at value.k)");
    expect_err(L, "return json.encode({[1] = 'a', ['1'] = 'b', x = 1})",
               "key \"1\" is both a number and a string (at value)");
    expect_err(L, "return json.encode('\\xff')",
               "json.encode: invalid UTF-8 in a string (at value)");
    expect_err(L, "return json.encode({s = 'ok\\xc3'})",
               "invalid UTF-8 in a string (at value.s)");
    expect_err(L, "return json.encode({['\\xff'] = 1})",
               "invalid UTF-8 in a key (at value)");
    expect_err(L, "local t = {} t.self = t return json.encode(t)",
               "json.encode: cyclic or too deeply nested table (depth > 32, "
               "at value.self.self.self");
    expect_err(L, "local t = {} t[1] = t return json.encode(t)",
               "(depth > 32, at value[1][1][1]");
    expect_err(L, "return json.encode()", "bad argument #1");
    /* depth: 32 nested tables encode, 33 do not */
    lua_ok(L, "local function nest(n) local t = {} "
              "for i = 2, n do t = {t} end return t end "
              "local s = json.encode(nest(32)) "
              "local ok, e = pcall(json.encode, nest(33)) "
              "return s == string.rep('[', 31) .. '{}' .. string.rep(']', 31)"
              " and not ok and e:find('depth > 32', 1, true) ~= nil");
    /* light userdata other than json.null */
    lua_pushcfunction(L, luaopen_ss_json);
    lua_call(L, 0, 1);
    lua_getfield(L, -1, "encode");
    lua_pushlightuserdata(L, L);
    assert_int_equal(lua_pcall(L, 1, 1, 0), LUA_ERRRUN);
    assert_non_null(strstr(lua_tostring(L, -1),
                           "cannot encode a light userdata value (at value)"));
    lua_settop(L, 0);
    /* after errors the module still works */
    expect_enc(L, "{1}", "[1]");
    lua_close(L);
}

/* ------------------------------------------------------------------ */
/* decode                                                              */

static void test_decode_values(void **state)
{
    (void)state;
    lua_State *L = json_state();
    lua_ok(L, "return json.decode('null') == nil and "
              "select('#', json.decode('null')) == 1");
    lua_ok(L, "return json.decode('true') == true and "
              "json.decode(' false ') == false");
    lua_ok(L, "return math.type(json.decode('0')) == 'integer' and "
              "json.decode('0') == 0");
    lua_ok(L, "return math.type(json.decode('-0')) == 'integer'");
    lua_ok(L, "local z = json.decode('-0.0') return math.type(z) == 'float' "
              "and 1/z == -1/0");
    lua_ok(L, "return json.decode('1.5') == 1.5 and "
              "math.type(json.decode('1.0')) == 'float'");
    lua_ok(L, "local v = json.decode('1e3') return math.type(v) == 'float' "
              "and v == 1000");
    lua_ok(L, "return json.decode('1E+3') == 1000 and "
              "json.decode('25e-2') == 0.25 and json.decode('-1.5e1') == -15");
    lua_ok(L, "return json.decode('9223372036854775807') == math.maxinteger "
              "and math.type(json.decode('9223372036854775807')) == "
              "'integer'");
    lua_ok(L, "return json.decode('-9223372036854775808') == math.mininteger"
              " and math.type(json.decode('-9223372036854775808')) == "
              "'integer'");
    lua_ok(L, "local v = json.decode('9223372036854775808') "
              "return math.type(v) == 'float' and v == 2^63");
    lua_ok(L, "local v = json.decode('-9223372036854775809') "
              "return math.type(v) == 'float' and v == -2^63");
    lua_ok(L, "return json.decode('12345678901234567890') == "
              "12345678901234567890.0");
    lua_ok(L, "return json.decode('1e400') == math.huge");
    lua_ok(L, "return json.decode('0.1') == 0.1 and "
              "json.decode('123456789.123456789') == 123456789.123456789");
    lua_ok(L, "local s = '1' .. string.rep('0', 400) .. '.5e-400' "
              "return json.decode(s) == 1.0");
    lua_ok(L, "return json.decode(' \\t\\r\\n[ 1 , 2 ]\\n ')[2] == 2");
    lua_close(L);
}

static void test_decode_strings(void **state)
{
    (void)state;
    lua_State *L = json_state();
    lua_ok(L, "return json.decode('\"\"') == ''");
    lua_ok(L, "return json.decode([[\"a\\\"b\\\\c\\/d\"]]) == 'a\"b\\\\c/d'");
    lua_ok(L, "return json.decode([[\"\\b\\f\\n\\r\\t\"]]) == '\\b\\f\\n\\r\\t'");
    lua_ok(L, "return json.decode([[\"\\u0041\\u00e9\\u00E9\\u20ac\"]]) == "
              "'A\\u{e9}\\u{e9}\\u{20ac}'");
    lua_ok(L, "return json.decode([[\"\\ud83d\\ude00\"]]) == '\\u{1F600}'");
    lua_ok(L, "return json.decode([[\"x\\uD834\\uDD1Ey\"]]) == "
              "'x\\u{1D11E}y'");
    lua_ok(L, "return json.decode([[\"a\\u0000b\"]]) == 'a\\0b'");
    lua_ok(L, "return json.decode([[\"\\u07ff\\u0800\\uffff\"]]) == "
              "'\\u{7ff}\\u{800}\\u{ffff}'");
    lua_ok(L, "return json.decode('\"\\u{e9}t\\u{e9} \\u{1F600}\"') == "
              "'\\u{e9}t\\u{e9} \\u{1F600}'");
    lua_ok(L, "local s = string.rep('x', 10000) "
              "return json.decode('\"' .. s .. '\\\\n\"') == s .. '\\n'");
    lua_close(L);
}

static void test_decode_containers(void **state)
{
    (void)state;
    lua_State *L = json_state();
    lua_ok(L, "local t = json.decode('[]') return type(t) == 'table' and "
              "next(t) == nil");
    lua_ok(L, "local t = json.decode('{}') return next(t) == nil");
    lua_ok(L, "local t = json.decode('[1, \"two\", [3], {\"four\": 4}]') "
              "return #t == 4 and t[2] == 'two' and t[3][1] == 3 and "
              "t[4].four == 4");
    lua_ok(L, "local t = json.decode('[1, null, 3]') "
              "return #t == 3 and t[2] == json.null and "
              "type(json.null) == 'userdata'");
    lua_ok(L, "local t = json.decode('{\"a\": null, \"b\": [null]}') "
              "return t.a == json.null and t.b[1] == json.null");
    lua_ok(L, "local t = json.decode('{\"a\": 1, \"a\": 2}') return t.a == 2");
    lua_ok(L, "local t = json.decode('{\"\": 1, \"1\": 2}') "
              "return t[''] == 1 and t['1'] == 2 and t[1] == nil");
    /* 32 nested containers decode */
    lua_ok(L, "local t = json.decode(string.rep('[', 32) .. string.rep(']', "
              "32)) for i = 1, 31 do t = t[1] end return next(t) == nil");
    lua_ok(L, "local s = string.rep('{\"a\":', 31) .. '{}' .. "
              "string.rep('}', 31) local t = json.decode(s) "
              "for i = 1, 31 do t = t.a end return next(t) == nil");
    /* round trips of canonical texts */
    lua_ok(L, "for _, s in ipairs{'[1,2,3]', '{\"a\":[true,false,null]}', "
              "'\"\\\\u0001\"', '[1.5,-2,\"x\"]', '{\"k\":{\"k\":{}}}', "
              "'[[],{}]', '0.30000000000000004', '[1,null,3]'} do "
              "local back = json.encode(json.decode(s)) "
              "if s == '[[],{}]' then s = '[{},{}]' end "
              "if back ~= s then error(s .. ' -> ' .. back) end "
              "end return true");
    lua_close(L);
}

static void test_decode_errors(void **state)
{
    (void)state;
    lua_State *L = json_state();
    DEC_ERR(L, "", "unexpected end of input (value expected) at offset 0");
    DEC_ERR(L, "   ", "unexpected end of input (value expected) at offset 3");
    DEC_ERR(L, "[1,2",
            "unexpected end of input (',' or ']' expected) at offset 4");
    DEC_ERR(L, "{\"a\":1,}",
            "unexpected '}' (string key expected) at offset 7");
    DEC_ERR(L, "[1,]", "unexpected ']' (value expected) at offset 3");
    DEC_ERR(L, "[1 2]", "unexpected '2' (',' or ']' expected) at offset 3");
    DEC_ERR(L, "{\"a\" 1}", "unexpected '1' (':' expected) at offset 5");
    DEC_ERR(L, "{1:2}", "unexpected '1' (string key expected) at offset 1");
    DEC_ERR(L, "{\"a\":1", "unexpected end of input (',' or '}' expected) "
                           "at offset 6");
    DEC_ERR(L, "01", "trailing characters at offset 1");
    DEC_ERR(L, "[] x", "trailing characters at offset 3");
    DEC_ERR(L, "1 2", "trailing characters at offset 2");
    DEC_ERR(L, "1.", "unexpected end of input (digit after '.' expected) at "
                     "offset 2");
    DEC_ERR(L, "1.e5", "unexpected 'e' (digit after '.' expected) at offset "
                       "2");
    DEC_ERR(L, "1e", "unexpected end of input (exponent digit expected) at "
                     "offset 2");
    DEC_ERR(L, "1e+", "unexpected end of input (exponent digit expected) at "
                      "offset 3");
    DEC_ERR(L, "-", "unexpected end of input (digit expected) at offset 1");
    DEC_ERR(L, "-a", "unexpected 'a' (digit expected) at offset 1");
    DEC_ERR(L, "+1", "unexpected '+' (value expected) at offset 0");
    DEC_ERR(L, ".5", "unexpected '.' (value expected) at offset 0");
    DEC_ERR(L, "tru", "unexpected 't' (value expected) at offset 0");
    DEC_ERR(L, "[nul]", "unexpected 'n' (value expected) at offset 1");
    DEC_ERR(L, "NaN", "unexpected 'N' (value expected) at offset 0");
    DEC_ERR(L, "Infinity", "unexpected 'I' (value expected) at offset 0");
    DEC_ERR(L, "'a'", "unexpected ''' (value expected) at offset 0");
    DEC_ERR(L, "\xef\xbb\xbf{}",
            "unexpected byte 0xef (value expected) at offset 0");
    DEC_ERR(L, "[\x01]", "unexpected byte 0x01 (value expected) at offset 1");
    DEC_ERR(L, "\"abc", "unterminated string starting at offset 0");
    DEC_ERR(L, "[\"a\\\"]", "unterminated string starting at offset 1");
    DEC_ERR(L, "\"a\\", "unterminated string starting at offset 0");
    DEC_ERR(L, "\"a\tb\"", "control character 0x09 in string at offset 2");
    DEC_ERR(L, "\"\\n\nb\"", "control character 0x0a in string at offset 3");
    DEC_ERR(L, "\"\\x\"", "invalid escape at offset 1");
    DEC_ERR(L, "\"\\u12x4\"", "bad hex digit in \\u escape at offset 5");
    DEC_ERR(L, "\"\\u12\"", "truncated \\u escape at offset 3");
    DEC_ERR(L, "\"\\u12", "truncated \\u escape at offset 3");
    DEC_ERR(L, "\"\\ud83d\"", "lone high surrogate \\ud83d at offset 1");
    DEC_ERR(L, "\"ab\\ude00\"", "lone low surrogate \\ude00 at offset 3");
    DEC_ERR(L, "\"\\ud83d\\u0041\"",
            "high surrogate \\ud83d not followed by a low one at offset 1");
    DEC_ERR(L, "\"\\ud83d\\n\"", "lone high surrogate \\ud83d at offset 1");
    DEC_ERR(L, "\"\xff\"", "invalid UTF-8 in string at offset 1");
    DEC_ERR(L, "\"ab\xc3\"", "invalid UTF-8 in string at offset 3");
    DEC_ERR(L, "\"\\n\xc0\x80\"", "invalid UTF-8 in string at offset 3");
    DEC_ERR(L, "\"\xed\xa0\x80\"", "invalid UTF-8 in string at offset 1");
    DEC_ERR(L, "{\"\xff\":1}", "invalid UTF-8 in string at offset 2");
    expect_dec_err(L, "[1,\0]", 5,
                   "unexpected byte 0x00 (value expected) at offset 3");
    expect_dec_err(L, "\"a\0\"", 4,
                   "control character 0x00 in string at offset 2");
    expect_err(L, "return json.decode({})", "bad argument #1");
    expect_err(L, "return json.decode()", "bad argument #1");
    /* depth: 33 nested containers are refused */
    lua_ok(L, "local ok, e = pcall(json.decode, string.rep('[', 33) .. "
              "string.rep(']', 33)) return not ok and e == "
              "'json.decode: nesting deeper than 32 at offset 32'");
    lua_ok(L, "local ok, e = pcall(json.decode, string.rep('{\"a\":', 33) .. "
              "'1' .. string.rep('}', 33)) return not ok and "
              "e:find('nesting deeper than 32 at offset 160', 1, true)");
    /* a very deep input fails cleanly, no C stack overflow */
    lua_ok(L, "return not pcall(json.decode, string.rep('[', 100000))");
    lua_close(L);
}

/* Decoding every prefix of a valid document fails cleanly. */
static void test_decode_prefixes(void **state)
{
    (void)state;
    lua_State *L = json_state();
    const char *doc = "{\"a\":[1,-2.5e3,true,false,null,\"x\\u00e9\\ud83d"
                      "\\ude00\\n\"],\"b\":{\"c\":{}},\"d\":\"\xc3\xa9\"}";
    size_t n = strlen(doc);
    lua_getglobal(L, "json");
    lua_getfield(L, -1, "decode");
    lua_pushlstring(L, doc, n);
    assert_int_equal(lua_pcall(L, 1, 1, 0), LUA_OK);
    assert_true(lua_istable(L, -1));
    lua_settop(L, 0);
    for (size_t k = 0; k < n; k++) {
        lua_getglobal(L, "json");
        lua_getfield(L, -1, "decode");
        lua_pushlstring(L, doc, k);
        int rc = lua_pcall(L, 1, 1, 0);
        if (rc != LUA_ERRRUN)
            fail_msg("prefix %zu decoded", k);
        assert_non_null(strstr(lua_tostring(L, -1), "json.decode: "));
        lua_settop(L, 0);
    }
    lua_close(L);
}

/* Random values: encode, decode, encode again gives the same text. */
static void test_random_round_trip(void **state)
{
    (void)state;
    lua_State *L = json_state();
    lua_ok(L,
           "math.randomseed(42) "
           "local function rstr() local t = {} "
           "  for i = 1, math.random(0, 12) do local r = math.random(1, 6) "
           "    t[#t + 1] = r == 1 and utf8.char(math.random(0, 0x10FFFF) & "
           "      0xD7FF) or r == 2 and string.char(math.random(0, 31)) or "
           "      r == 3 and '\"' or r == 4 and '\\\\' or "
           "      string.char(math.random(32, 126)) end "
           "  return table.concat(t) end "
           "local function gen(d) local k = math.random(1, d < 4 and 8 or 5) "
           "  if k == 1 then return math.random(0, 1) == 1 "
           "  elseif k == 2 then return math.random(math.mininteger, "
           "    math.maxinteger) "
           "  elseif k == 3 then return (math.random() - 0.5) * "
           "    10.0 ^ math.random(-300, 300) "
           "  elseif k <= 5 then return rstr() "
           "  elseif k == 6 then local t = {} "
           "    for i = 1, math.random(1, 6) do t[i] = gen(d + 1) end return t "
           "  else local t = {} for i = 1, math.random(0, 6) do "
           "    t[rstr()] = gen(d + 1) end return t end end "
           "local function eq(a, b) if type(a) ~= type(b) then return false end "
           "  if type(a) ~= 'table' then return a == b and "
           "    math.type(a) == math.type(b) end "
           "  for k, v in pairs(a) do if not eq(v, b[k]) then return false end "
           "  end for k in pairs(b) do if a[k] == nil then return false end "
           "  end return true end "
           "for i = 1, 3000 do local v = gen(0) local s = json.encode(v) "
           "  local back = json.decode(s) "
           "  if not eq(v, back) then error('differs: ' .. s) end "
           "  if json.encode(back) ~= s then error('unstable: ' .. s) end "
           "end return true");
    lua_close(L);
}

static void test_null_sentinel(void **state)
{
    (void)state;
    lua_State *L = json_state();
    lua_ok(L, "return type(json.null) == 'userdata' and "
              "json.null == json.null and json.encode(json.null) == 'null'");
    /* two loads of the module share the sentinel */
    lua_pushcfunction(L, luaopen_ss_json);
    lua_call(L, 0, 1);
    lua_getfield(L, -1, "null");
    lua_getglobal(L, "json");
    lua_getfield(L, -1, "null");
    assert_true(lua_rawequal(L, -1, -3));
    assert_int_equal(lua_type(L, -1), LUA_TLIGHTUSERDATA);
    lua_settop(L, 0);
    lua_close(L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_scalars),
        cmocka_unit_test(test_encode_tables),
        cmocka_unit_test(test_encode_errors),
        cmocka_unit_test(test_decode_values),
        cmocka_unit_test(test_decode_strings),
        cmocka_unit_test(test_decode_containers),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_decode_prefixes),
        cmocka_unit_test(test_random_round_trip),
        cmocka_unit_test(test_null_sentinel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
