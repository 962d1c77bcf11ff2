/*
 * Fuzz target: the JSON codec (runtime/lua_json.c), decode then encode.
 *
 * Any bytes are decoded with the default depth limit, as request bodies
 * are. A failure must be a message naming a byte inside the input (or
 * "too deeply nested"). Anything that decodes must encode without error,
 * decode again to an equal value (same kinds: arrays and objects keep
 * their marks), and encode again to the same bytes: the encoding is
 * canonical.
 */
#include "fuzzlua.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* clang-format off */
static const char harness[] =
    "local json = ...\n"
    "local decode, encode = json.decode, json.encode\n"
    "local DEPTH = " STR(LUA_JSON_DECODE_DEPTH) "\n"
    "local function same(a, b)\n"
    "    if type(a) ~= type(b) then return false end\n"
    "    if type(a) ~= 'table' then return a == b end\n"
    "    if getmetatable(a) ~= getmetatable(b) then return false end\n"
    "    for k, v in pairs(a) do\n"
    "        if not same(v, b[k]) then return false end\n"
    "    end\n"
    "    for k in pairs(b) do\n"
    "        if a[k] == nil then return false end\n"
    "    end\n"
    "    return true\n"
    "end\n"
    "return function(text)\n"
    "    local v, err = decode(text, DEPTH)\n"
    "    if v == nil then\n"
    "        if type(err) ~= 'string' then return 'decode failed without a message' end\n"
    "        if err == 'too deeply nested' then return nil end\n"
    "        local at = tonumber(err:match(' at byte (%d+)$'))\n"
    "        if not at or at < 1 or at > #text + 1 then\n"
    "            return 'decode message names no byte of the input: ' .. err\n"
    "        end\n"
    "        return nil\n"
    "    end\n"
    "    if err ~= nil then return 'decode returned a value and a message' end\n"
    "    local ok, out = pcall(encode, v)\n"
    "    if not ok then return 'encode refused a decoded value: ' .. tostring(out) end\n"
    "    local v2, err2 = decode(out, DEPTH)\n"
    "    if v2 == nil then return 'its encoding does not decode: ' .. err2 .. ': ' .. out end\n"
    "    if not same(v, v2) then return 'the round trip changed the value: ' .. out end\n"
    "    local out2 = encode(v2)\n"
    "    if out2 ~= out then return 'encoding not canonical: ' .. out .. ' then ' .. out2 end\n"
    "    return nil\n"
    "end\n";
/* clang-format on */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static lua_State *L;
    if (!L)
        L = fuzzlua_open("=fuzz_json", harness);
    fuzzlua_run(L, data, size);
    return 0;
}
