/*
 * Fuzz target: the schema validator (lua/glasgow/schema.lua) on documents
 * and declarations it has never seen.
 *
 * The input is decoded as JSON with the default depth limit, as a request
 * body is, and validated against a few fixed schemas like the routes'.
 * An input that is a two-element array [schema, document] also has its
 * first element checked as a declaration and, when it is one, the second
 * validated, coerced (a string) and read as parameters (an object) with
 * it. A declaration may only be refused with "schema: ..."; validation may
 * only return the value or nil and { field, reason } with a printable
 * field under the caller's prefix, the same for a copy of the document
 * built in another key order. Every short string in the input is also
 * checked against independent oracles of the date, date-time and uuid
 * formats (dates through os.time's calendar). Anything else, any other
 * Lua error included, aborts. The invariants are in fuzz_schema.lua.
 */
#include "fuzzlua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static lua_State *L;
    if (!L)
        L = fuzzlua_open("fuzz_schema.lua");
    fuzzlua_run(L, data, size);
    return 0;
}
