/*
 * Fuzz target: the JSON codec (runtime/lua_json.c), decode then encode.
 *
 * Any bytes are decoded with the default depth limit, as request bodies
 * are (and what is too deep for it, again with the largest limit). A
 * failure must be a message naming a byte inside the input (or "too
 * deeply nested"). Anything that decodes must encode without error,
 * decode again to an equal value (same kinds: arrays and objects keep
 * their marks), and encode again to the same bytes: the encoding is
 * canonical. The invariants are in fuzz_json.lua.
 */
#include "fuzzlua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static lua_State *L;
    if (!L)
        L = fuzzlua_open("fuzz_json.lua");
    fuzzlua_run(L, data, size);
    return 0;
}
