/*
 * Fuzz target: the JSON encoder (runtime/lua_json.c) on Lua values that no
 * decoder would produce: sparse and mixed tables, number keys, marks,
 * cycles, deep nesting, NaN, any double, strings that are not UTF-8,
 * functions. The input is a program that builds the value; the invariants
 * are in fuzz_json_encode.lua: encode succeeds exactly when lua_json.h's
 * contract says it should, and what it writes decodes back to the value.
 */
#include "fuzzlua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static lua_State *L;
    if (!L)
        L = fuzzlua_open("fuzz_json_encode.lua");
    fuzzlua_run(L, data, size);
    return 0;
}
