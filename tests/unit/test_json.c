/*
 * JSON codec: table-driven Lua snippets through decode/encode, edge cases of
 * numbers, strings, nesting and marks. "--bench" instead times the codec
 * against lua-cjson on a typical 1 KiB API object.
 */
#include "lua_json.h"
#include "tap.h"

#include <lauxlib.h>
#include <lualib.h>

/* Helpers for the cases, as globals of the test state:
 *   rt(s)   decode then encode, or "ERR: message"
 *   derr(s) decode's error message, or "no error"
 *   eerr(v) encode's error message, or "no error: result"
 *   enc(v)  encode(v) */
/* clang-format off */
static const char prelude[] =
    "json = ...\n"
    "local ok, c = pcall(require, 'cjson')\n"
    "cjson = ok and c or nil\n"
    "function rt(s)\n"
    "    local v, err = json.decode(s)\n"
    "    if err then return 'ERR: ' .. err end\n"
    "    return json.encode(v)\n"
    "end\n"
    "function derr(s, depth)\n"
    "    local v, err = json.decode(s, depth)\n"
    "    if v ~= nil then return 'no error' end\n"
    "    return err\n"
    "end\n"
    "function eerr(v, depth)\n"
    "    local ok, err = pcall(json.encode, v, depth)\n"
    "    if ok then return 'no error: ' .. err end\n"
    "    return err\n"
    "end\n"
    "function enc(v) return json.encode(v) end\n"
    "function nest(n)\n"
    "    local t = {}\n"
    "    local c = t\n"
    "    for _ = 1, n do c[1] = {} c = c[1] end\n"
    "    return t\n"
    "end\n"
    /* random documents, and an independent encoder for them (ASCII only) */
    "function gen(depth)\n"
    "    local r = math.random(depth > 0 and 6 or 4)\n"
    "    if r == 1 then return math.random(-1000, 1000) end\n"
    "    if r == 2 then return string.char(math.random(97, 122)):rep(math.random(0, 5)) end\n"
    "    if r == 3 then return math.random(2) == 1 end\n"
    "    if r == 4 then return math.random(-1e6, 1e6) / 64 end\n"
    "    local t = {}\n"
    "    if r == 5 then\n"
    "        for i = 1, math.random(0, 4) do t[i] = gen(depth - 1) end\n"
    "        return json.array(t)\n"
    "    end\n"
    "    for _ = 1, math.random(0, 20) do\n"
    "        local k = ''\n"
    "        for _ = 1, math.random(1, 3) do k = k .. string.char(math.random(65, 90)) end\n"
    "        t[k] = gen(depth - 1)\n"
    "    end\n"
    "    return t\n"
    "end\n"
    "function ref(v)\n"
    "    if type(v) == 'number' then\n"
    "        return v == math.floor(v) and ('%d'):format(v) or ('%.17g'):format(v)\n"
    "    elseif type(v) == 'string' then\n"
    "        return '\"' .. v .. '\"'\n"
    "    elseif type(v) ~= 'table' then\n"
    "        return tostring(v)\n"
    "    end\n"
    "    local out = {}\n"
    "    if json.is_array(v) then\n"
    "        for i = 1, #v do out[i] = ref(v[i]) end\n"
    "        return '[' .. table.concat(out, ',') .. ']'\n"
    "    end\n"
    "    local keys = {}\n"
    "    for k in pairs(v) do keys[#keys + 1] = k end\n"
    "    table.sort(keys)\n"
    "    for i, k in ipairs(keys) do out[i] = '\"' .. k .. '\":' .. ref(v[k]) end\n"
    "    return '{' .. table.concat(out, ',') .. '}'\n"
    "end\n";
/* clang-format on */

/* Each snippet is a Lua expression (or a chunk with its own `return`)
 * whose tostring() must equal want. */
static const struct {
    const char *lua;
    const char *want;
} cases[] = {
    /* past encode's first buffers on the C stack (1 KiB of output, 16
     * pending keys): the output and the key stack move into userdata, the
     * cached one when large enough, and the result is the same */
    {"#enc(('x'):rep(3000))", "3002"},
    {"return (function() local t = {} for i = 1, 40 do t[('k%02d'):format(i)] = ('v'):rep(i) end "
     "return enc(t) == ref(t) and #enc(t) end)()",
     "1181"},
    {"return (function() local t = {} for i = 1, 20 do t['a' .. i] = {b = {c = i}} end "
     "local s = enc(t) return s == ref(t) and s == enc(t) end)()",
     "true"},
    {"return (function() pcall(json.encode, {('y'):rep(5000), print}) "
     "return enc({('z'):rep(2000)}) == '[\"' .. ('z'):rep(2000) .. '\"]' end)()",
     "true"},
    /* empty containers keep their kind */
    {"rt('[]')", "[]"},
    {"rt('{}')", "{}"},
    {"rt(' [ ] ')", "[]"},
    {"rt('[[],{}]')", "[[],{}]"},
    {"rt('{\"a\":[],\"b\":{}}')", "{\"a\":[],\"b\":{}}"},
    {"rt('[1,\"two\",true,false,null]')", "[1,\"two\",true,false,null]"},
    {"rt('{\"a\":{\"b\":{\"c\":[1,[2,[3]]]}}}')", "{\"a\":{\"b\":{\"c\":[1,[2,[3]]]}}}"},
    {"rt('{\"a\":null}')", "{\"a\":null}"},
    {"rt('{\"\":1}')", "{\"\":1}"},
    {"rt('\"x\"')", "\"x\""},
    {"rt('true')", "true"},
    {"rt('false')", "false"},
    {"rt('null')", "null"},
    {"rt('42')", "42"},
    /* marks */
    {"json.is_array(json.decode('[]'))", "true"},
    {"json.is_array(json.decode('{}'))", "false"},
    {"json.is_array(5)", "false"},
    {"getmetatable(json.decode('{}')) == json.object_mt", "true"},
    {"getmetatable(json.decode('[1]')) == json.array_mt", "true"},
    {"json.decode('null') == json.null", "true"},
    {"json.decode('[null]')[1] == json.null", "true"},
    {"type(json.null) == 'userdata' and tostring(json.null)", "userdata: NULL"},
    {"enc(json.array())", "[]"},
    {"enc(json.object())", "{}"},
    {"enc(json.array({}))", "[]"},
    {"local t = {} return json.object(t) == t", "true"},
    {"select(2, pcall(json.array, 5))", "bad argument #1 to '?' (table expected, got number)"},
    {"local t = json.decode('[]') t[1] = 5 return enc(t)", "[5]"},
    /* unmarked tables */
    {"enc({})", "{}"},
    {"enc({1, 2, 3})", "[1,2,3]"},
    {"enc({a = 1})", "{\"a\":1}"},
    {"enc({[1] = 'x', [2] = nil})", "[\"x\"]"},
    {"enc({json.null, json.null})", "[null,null]"},
    {"eerr({[1] = 1, [3] = 3})", "cannot encode sparse array"},
    {"eerr({1, a = 2})", "cannot encode table mixing array and object keys"},
    {"eerr({[0] = 1})", "cannot encode table with number key 0"},
    {"eerr({[1.5] = 1})", "cannot encode table with number key 1.5"},
    {"eerr({[true] = 1})", "cannot encode table with boolean key"},
    {"eerr(json.array({a = 1}))", "cannot encode array with string key"},
    {"eerr(json.array({[2] = 1}))", "cannot encode sparse array"},
    {"enc(json.object({[1] = 'a', [10] = 'b', [2] = 'c'}))",
     "{\"1\":\"a\",\"10\":\"b\",\"2\":\"c\"}"},
    {"enc(json.object({[-3] = true}))", "{\"-3\":true}"},
    {"eerr(json.object({[1] = 'a', ['1'] = 'b'}))", "cannot encode object with duplicate key '1'"},
    {"eerr(json.object({[0.5] = 1}))", "cannot encode object key 0.5"},
    /* sorted keys */
    {"rt('{\"b\":1,\"a\":2}')", "{\"a\":2,\"b\":1}"},
    {"enc({b = {d = 1, c = 2}, a = {}})", "{\"a\":{},\"b\":{\"c\":2,\"d\":1}}"},
    {"enc({b = 1, B = 2, aa = 3, a = 4})", "{\"B\":2,\"a\":4,\"aa\":3,\"b\":1}"},
    {"local t, want = {}, {} for i = 30, 1, -1 do t[('k%02d'):format(i)] = i end "
     "for i = 1, 30 do want[#want + 1] = ('\"k%02d\":%d'):format(i, i) end "
     "return enc(t) == '{' .. table.concat(want, ',') .. '}'",
     "true"},
    {"enc(json.decode('{\"z\":{\"y\":1,\"x\":[{\"b\":0,\"a\":0}]}}'))",
     "{\"z\":{\"x\":[{\"a\":0,\"b\":0}],\"y\":1}}"},
    /* scalars and misuse */
    {"enc(nil)", "null"},
    {"enc(json.null)", "null"},
    {"enc(true)", "true"},
    {"eerr(print)", "cannot encode function"},
    {"eerr(coroutine.create(print))", "cannot encode thread"},
    {"eerr(io.stdout)", "cannot encode userdata"},
    {"eerr({f = print})", "cannot encode function"},
    {"select(2, pcall(json.encode))", "bad argument #1 to '?' (value expected)"},
    {"select(2, pcall(json.decode, 42))", "bad argument #1 to '?' (string expected, got number)"},
    {"select(2, pcall(json.decode, '[]', 1001))", "bad argument #2 to '?' (depth must be 0..1000)"},
    {"select(2, pcall(json.encode, {}, -1))", "bad argument #2 to '?' (depth must be 0..1000)"},
    /* strings */
    {"json.decode('\"\\\\u00e9\"') == '\\195\\169'", "true"},
    {"json.decode('\"\\\\ud83d\\\\ude00\"') == '\\240\\159\\152\\128'", "true"},
    {"json.decode('\"\\\\uD83D\\\\uDE00\"') == '\\240\\159\\152\\128'", "true"},
    {"rt('\"\\\\ud83d\\\\ude00\"') == '\"\\240\\159\\152\\128\"'", "true"},
    {"rt('{\"\\\\u00e9\":1}') == '{\"\\195\\169\":1}'", "true"},
    {"derr('\"\\\\ud83d\"')", "lone surrogate at byte 2"},
    {"derr('\"\\\\ude00\"')", "lone surrogate at byte 2"},
    {"derr('\"\\\\ud83d\\\\u0041\"')", "lone surrogate at byte 2"},
    {"derr('\"\\\\u12\"')", "invalid \\u escape at byte 2"},
    {"derr('\"\\\\u12g4\"')", "invalid \\u escape at byte 2"},
    {"derr('\"\\\\x\"')", "invalid escape at byte 2"},
    {"derr('\"a\\tb\"')", "control character in string at byte 3"},
    {"derr('{\"a\":1,\"a\":2}')", "duplicate key at byte 8"},
    {"derr('{\"a\":{\"b\":1,\"b\":null}}')", "duplicate key at byte 13"},
    {"derr('{\"a\":1,\"\\\\u0061\":2}')", "duplicate key at byte 8"},
    {"derr('[{\"a\":1},{\"a\":2}]')", "no error"},
    {"derr('\"a\\0b\"')", "control character in string at byte 3"},
    {"derr('\"\\255\"')", "invalid UTF-8 at byte 2"},
    {"derr('\"\\192\\128\"')", "invalid UTF-8 at byte 2"},
    {"derr('\"\\224\\128\\128\"')", "invalid UTF-8 at byte 2"},
    {"derr('\"\\237\\160\\128\"')", "invalid UTF-8 at byte 2"},
    {"derr('\"\\244\\144\\128\\128\"')", "invalid UTF-8 at byte 2"},
    {"derr('\"ab\\195\"')", "invalid UTF-8 at byte 4"},
    {"derr('\"abc')", "unterminated string at byte 1"},
    {"derr('\"abc\\\\')", "unterminated string at byte 1"},
    {"eerr('\\255')", "cannot encode string that is not valid UTF-8"},
    {"eerr('ab\\195')", "cannot encode string that is not valid UTF-8"},
    {"eerr('\\237\\160\\128')", "cannot encode string that is not valid UTF-8"},
    {"eerr({['\\255'] = 1})", "cannot encode string that is not valid UTF-8"},
    {"enc('\\0')", "\"\\u0000\""},
    {"rt('\"a\\\\u0000b\"')", "\"a\\u0000b\""},
    {"#json.decode('\"a\\\\u0000b\"')", "3"},
    {"json.decode(json.encode('x\\0y')) == 'x\\0y'", "true"},
    {"enc('\\226\\128\\168|\\226\\128\\169')", "\"\\u2028|\\u2029\""},
    {"enc('a/b')", "\"a/b\""},
    {"rt('\"\\\\/\"')", "\"/\""},
    {"enc('\"\\\\\\b\\f\\n\\r\\t\\1\\31\\127')", "\"\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\""},
    {"enc('h\\195\\169llo \\240\\159\\152\\128')", "\"h\xc3\xa9llo \xf0\x9f\x98\x80\""},
    {"enc({['a\"b'] = 1})", "{\"a\\\"b\":1}"},
    {"local s = ('a\"\\\\\\n\\195\\169'):rep(20000) return json.decode(enc(s)) == s", "true"},
    /* numbers */
    {"rt('0')", "0"},
    {"rt('-0')", "0"},
    {"1 / json.decode('-0')", "-inf"},
    {"enc(-0.0)", "0"},
    {"rt('1e308')", "1e+308"},
    {"rt('1e-308')", "1e-308"},
    {"json.decode(rt('5e-324')) == 5e-324", "true"},
    {"json.decode('5e-324') > 0", "true"},
    {"enc(0.1)", "0.1"},
    {"enc(123456789012345)", "123456789012345"},
    {"enc(2^53)", "9007199254740992"},
    {"rt('9007199254740993')", "9007199254740992"},
    {"enc(9007199254740993.0)", "9007199254740992"},
    {"enc(-1.5e-7)", "-1.5e-07"},
    {"enc(1e15)", "1000000000000000"},
    {"enc(1e300)", "1e+300"},
    {"enc(2^63 - 1024)", "9223372036854774784"},
    {"enc(-2^63)", "-9.223372036854776e+18"},
    {"enc(1/3)", "0.3333333333333333"},
    {"json.decode(enc(1/3)) == 1/3", "true"},
    {"json.decode(rt('12345678901234567890')) == 12345678901234567890", "true"},
    {"local ok = true for i = 1, 2000 do local x = math.random() * 10 ^ math.random(-300, 300) "
     "if json.decode(enc(x)) ~= x then ok = false end end return ok",
     "true"},
    {"rt('1E+2')", "100"},
    {"rt('1.5e-3')", "0.0015"},
    {"rt('-12.5')", "-12.5"},
    {"rt('1e-400')", "0"},
    {"derr('1e999')", "number out of range at byte 1"},
    {"derr('[-1e999]')", "number out of range at byte 2"},
    {"derr('1e400')", "number out of range at byte 1"},
    {"eerr(0/0)", "cannot encode NaN"},
    {"eerr(math.huge)", "cannot encode infinity"},
    {"eerr({-math.huge})", "cannot encode infinity"},
    {"derr('01')", "invalid number at byte 2"},
    {"derr('-01')", "invalid number at byte 3"},
    {"derr('1.')", "invalid number at byte 3"},
    {"derr('1.e5')", "invalid number at byte 3"},
    {"derr('.5')", "unexpected character '.' at byte 1"},
    {"derr('-')", "invalid number at byte 2"},
    {"derr('+1')", "unexpected character '+' at byte 1"},
    {"derr('1e')", "invalid number at byte 3"},
    {"derr('1e+')", "invalid number at byte 4"},
    {"derr('0x10')", "trailing garbage at byte 2"},
    {"derr('[0x10]')", "expected ',' or ']' at byte 3"},
    {"derr('NaN')", "unexpected character 'N' at byte 1"},
    {"derr('-Infinity')", "invalid number at byte 2"},
    {"derr('1' .. ('0'):rep(400))", "number out of range at byte 1"},
    {"json.decode('0.' .. ('0'):rep(400) .. '1')", "0"},
    /* structure and whitespace */
    {"rt(' \\t\\r\\n[ 1 , 2 ]\\n')", "[1,2]"},
    {"derr('\\f[]')", "unexpected byte 0x0C at byte 1"},
    {"derr('[1]\\v')", "trailing garbage at byte 4"},
    {"derr('[1] x')", "trailing garbage at byte 5"},
    {"derr('[1][2]')", "trailing garbage at byte 4"},
    {"derr('')", "unexpected end of input at byte 1"},
    {"derr('   ')", "unexpected end of input at byte 4"},
    {"derr('\\239\\187\\191{}')", "unexpected byte 0xEF at byte 1"},
    {"derr('[1,]')", "unexpected character ']' at byte 4"},
    {"derr('{\"a\":1,}')", "expected string key at byte 8"},
    {"derr('[1 2]')", "expected ',' or ']' at byte 4"},
    {"derr('{\"a\" 1}')", "expected ':' at byte 6"},
    {"derr('{\"a\":1 \"b\":2}')", "expected ',' or '}' at byte 8"},
    {"derr('{a:1}')", "expected string key at byte 2"},
    {"derr('[1')", "unexpected end of input at byte 3"},
    {"derr('{\"a\":')", "unexpected end of input at byte 6"},
    {"derr('// c\\n[]')", "unexpected character '/' at byte 1"},
    {"derr('[1]/*c*/')", "trailing garbage at byte 4"},
    {"derr('tru')", "unexpected end of input at byte 4"},
    {"derr('trux')", "unexpected character 'x' at byte 4"},
    {"derr('nul')", "unexpected end of input at byte 4"},
    {"derr(\"['a']\")", "unexpected character ''' at byte 2"},
    {"derr('[\\0]')", "unexpected byte 0x00 at byte 2"},
    {"local t = json.decode('{\"a\":[1,2],\"b\":{\"c\":\"d\"}}') return t.a[2] .. t.b.c", "2d"},
    /* depth */
    {"derr(('['):rep(10000) .. (']'):rep(10000))", "too deeply nested"},
    {"derr(('{\"a\":'):rep(10000) .. '1' .. ('}'):rep(10000))", "too deeply nested"},
    {"rt(('['):rep(64) .. (']'):rep(64)) == ('['):rep(64) .. (']'):rep(64)", "true"},
    {"derr(('['):rep(65) .. (']'):rep(65))", "too deeply nested"},
    {"derr(('['):rep(1000) .. (']'):rep(1000), 1000)", "no error"},
    {"derr('[[1]]', 1)", "too deeply nested"},
    {"json.decode('1', 0)", "1"},
    {"derr('[]', 0)", "too deeply nested"},
    {"eerr(nest(999)):sub(1, 10)", "no error: "},
    {"eerr(nest(1000))", "cannot encode table nested deeper than 1000"},
    {"eerr(nest(10000))", "cannot encode table nested deeper than 1000"},
    {"eerr({{}}, 1)", "cannot encode table nested deeper than 1"},
    {"local t = {} t.a = t return eerr(t)", "cannot encode cyclic table"},
    {"local t = {} t[1] = {t} return eerr(t)", "cannot encode cyclic table"},
    {"local s = {} return enc({s, s, {s}})", "[{},{},[{}]]"},
    /* larger documents */
    {"math.randomseed(42) for _ = 1, 2000 do local v = gen(4) local want = ref(v) "
     "if enc(v) ~= want then return enc(v) .. ' ~= ' .. want end "
     "if enc(json.decode(want)) ~= want then return 'round trip: ' .. want end end "
     "return 'same'",
     "same"},
    {"#enc(('x'):rep(3000000)) .. ' ' .. enc({1, {a = 'b'}})", "3000002 [1,{\"a\":\"b\"}]"},
    {"#json.decode('\"' .. ('\\\\n'):rep(1000000) .. '\"') .. json.decode('[\"\\\\t\"]')[1]",
     "1000000\t"},
    {"local t = {} for i = 1, 10000 do t[i] = i * 0.5 end "
     "local u = json.decode(enc(t)) return #u == 10000 and u[9999] == 4999.5",
     "true"},
    {"local t = {} for i = 1, 5000 do t['k' .. i] = {i, tostring(i)} end "
     "return enc(json.decode(enc(t))) == enc(t)",
     "true"},
};

/* Cases that need lua-cjson (Debian's lua-cjson, on the default cpath). */
static const struct {
    const char *lua;
    const char *want;
} cjson_cases[] = {
    {"json.null == cjson.null", "true"},
    {"cjson.encode(json.decode('[1,null]'))", "[1,null]"},
    {"json.encode(cjson.decode('{\"a\":null}'))", "{\"a\":null}"},
};

static void run_case(lua_State *L, const char *lua, const char *want)
{
    char chunk[1024];
    int top = lua_gettop(L), n;
    if (strstr(lua, "return "))
        n = snprintf(chunk, sizeof chunk, "return tostring((function() %s end)())", lua);
    else
        n = snprintf(chunk, sizeof chunk, "return tostring(%s)", lua);
    if (n < 0 || (size_t)n >= sizeof chunk) {
        ok(0, "snippet too long: %s", lua);
    } else if (luaL_dostring(L, chunk) != 0) {
        ok(0, "%s", lua);
        printf("#   error: %s\n", lua_tostring(L, -1));
    } else {
        is_str(lua_tostring(L, -1), want, "%s", lua);
    }
    lua_settop(L, top);
}

static lua_State *new_state(void)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    if (luaL_loadstring(L, prelude) != 0) {
        fprintf(stderr, "prelude: %s\n", lua_tostring(L, -1));
        return NULL;
    }
    luaopen_glasgow_jsonc(L);
    if (lua_pcall(L, 1, 0, 0) != 0) {
        fprintf(stderr, "prelude: %s\n", lua_tostring(L, -1));
        return NULL;
    }
    return L;
}

static void test_cases(lua_State *L)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(L, cases[i].lua, cases[i].want);
}

static void test_cjson(lua_State *L)
{
    size_t n = sizeof cjson_cases / sizeof cjson_cases[0];
    (void)luaL_dostring(L, "return cjson ~= nil");
    int have = lua_toboolean(L, -1);
    lua_pop(L, 1);
    for (size_t i = 0; i < n; i++) {
        if (have)
            run_case(L, cjson_cases[i].lua, cjson_cases[i].want);
        else
            ok(0, "lua-cjson (a dependency, see .ci/deps) is not installed: %s",
               cjson_cases[i].lua);
    }
}

/* The module table is the same however often it is opened, and an error
 * in the middle of encode() leaves the cached buffers usable. */
static void test_reuse(lua_State *L)
{
    run_case(L, "pcall(json.encode, {1, print}) and 'raised' or enc({1, {a = 2}})",
             "[1,{\"a\":2}]");
    run_case(L, "select(2, json.decode('[1,')) .. '|' .. enc(json.decode('[\"\\\\n\"]'))",
             "unexpected end of input at byte 4|[\"\\n\"]");
    int top = lua_gettop(L);
    luaopen_glasgow_jsonc(L);
    lua_getfield(L, -1, "null");
    ok(lua_islightuserdata(L, -1) && lua_touserdata(L, -1) == NULL, "null is NULL");
    lua_settop(L, top);
}

/* Timing, not TAP: ops/s for encode and decode of a typical API object,
 * with this codec and with lua-cjson. */
static const char bench[] =
    "local n = tonumber((...)) or 200000\n"
    "local cjson = require 'cjson'\n"
    "local doc = {\n"
    "    id = 'b3c1f0e2-5d4a-4c7b-9e8f-1a2b3c4d5e6f', type = 'order', status = 'shipped',\n"
    "    created_at = '2024-05-17T09:31:02.123Z', updated_at = '2024-05-18T14:02:47.900Z',\n"
    "    total = 1234.56, currency = 'EUR', paid = true, coupon = json.null,\n"
    "    customer = { id = 48213, name = 'Ada Lovelace', email = 'ada@example.org',\n"
    "        address = { street = '12 St James\\'s Square', city = 'London', zip = 'SW1Y 4JH',\n"
    "                    country = 'GB' } },\n"
    "    items = {},\n"
    "    links = { self = '/v1/orders/b3c1f0e2', customer = '/v1/customers/48213' },\n"
    "    tags = { 'priority', 'gift', 'eu' },\n"
    "    notes = 'Leave at the door. Ring twice \\226\\128\\148 the bell is \"quiet\".',\n"
    "}\n"
    "for i = 1, 6 do\n"
    "    doc.items[i] = { sku = ('SKU-%05d'):format(i * 7919), name = 'Widget ' .. i,\n"
    "        qty = i, unit_price = 19.99 + i, discount = i % 2 == 0 and 0.1 or 0 }\n"
    "end\n"
    "local text = cjson.encode(doc)\n"
    /* best of 5 rounds, the two codecs taking turns, so load drift hits both */
    "local function time(f1, a1, f2, a2)\n"
    "    local best1, best2, m = 0, 0, n / 5\n"
    "    for _ = 1, m / 10 do f1(a1) f2(a2) end\n"
    "    for _ = 1, 5 do\n"
    "        local t0 = os.clock()\n"
    "        for _ = 1, m do f1(a1) end\n"
    "        local t1 = os.clock()\n"
    "        for _ = 1, m do f2(a2) end\n"
    "        local t2 = os.clock()\n"
    "        best1 = math.max(best1, m / (t1 - t0))\n"
    "        best2 = math.max(best2, m / (t2 - t1))\n"
    "    end\n"
    "    return best1, best2\n"
    "end\n"
    "local ours_doc = json.decode(text)\n"
    "assert(json.encode(json.decode(json.encode(ours_doc))) == json.encode(ours_doc))\n"
    "print(('document: %d bytes, %d iterations'):format(#text, n))\n"
    "local rows = {\n"
    "    { 'encode', time(json.encode, doc, cjson.encode, doc) },\n"
    "    { 'encode of decoded (marked) tables', time(json.encode, ours_doc, cjson.encode, doc) },\n"
    "    { 'decode', time(json.decode, text, cjson.decode, text) },\n"
    "}\n"
    "print(('%-36s %14s %14s %8s'):format('', 'glasgow ops/s', 'cjson ops/s', 'ratio'))\n"
    "for _, r in ipairs(rows) do\n"
    "    print(('%-36s %14.0f %14.0f %7.2fx'):format(r[1], r[2], r[3], r[2] / r[3]))\n"
    "end\n";

static int run_bench(lua_State *L, const char *iterations)
{
    if (luaL_loadstring(L, bench) != 0 ||
        (lua_pushstring(L, iterations), lua_pcall(L, 1, 0, 0) != 0)) {
        fprintf(stderr, "bench: %s\n", lua_tostring(L, -1));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    lua_State *L = new_state();
    if (!L)
        return 1;
    if (argc > 1 && strcmp(argv[1], "--bench") == 0) {
        int rc = run_bench(L, argc > 2 ? argv[2] : "200000");
        lua_close(L);
        return rc;
    }
    test_cases(L);
    test_cjson(L);
    test_reuse(L);
    lua_close(L);
    return done_testing();
}
