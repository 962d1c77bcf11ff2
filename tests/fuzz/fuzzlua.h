/*
 * fuzzlua: a Lua state for fuzz targets that drive Lua code.
 *
 * The state allocates through malloc, not LuaJIT's own allocator, so that
 * AddressSanitizer sees every Lua object and every buffer a C binding keeps
 * in a userdata (an overflow there is otherwise invisible). It has the
 * standard libraries, package.path on the source tree's lua/, and
 * glasgow.jsonc preloaded, as lhost's states do. The invariants are
 * written in Lua, in tests/fuzz/fuzz_<name>.lua beside the target.
 *
 * Under libFuzzer (FUZZ_LIBFUZZER) the JIT is off and a line hook feeds
 * Lua coverage to the fuzzer: each transition from one Lua line to the next
 * bumps a counter in libFuzzer's extra-counters section, as AFL counts
 * edges, so inputs that reach new branches of the Lua code under test are
 * kept. (LuaJIT calls no hooks inside compiled traces, hence the JIT off.)
 *
 * LuaJIT tags the pointers it keeps in values, so LeakSanitizer cannot see
 * that the state still references its objects: they are marked as ignored,
 * and leak checking covers only the C code's own allocations.
 */
#ifndef GLASGOW_FUZZLUA_H
#define GLASGOW_FUZZLUA_H

#include "fuzz.h"
#include "lua_json.h"

#include <lauxlib.h>
#include <luajit.h>
#include <lualib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define FUZZLUA_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZLUA_LSAN 1
#endif
#endif
#ifdef FUZZLUA_LSAN
#include <sanitizer/lsan_interface.h>
#endif

static void *fuzzlua_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    void *p = realloc(ptr, nsize);
#ifdef FUZZLUA_LSAN
    if (p)
        __lsan_ignore_object(p);
#endif
    return p;
}

#ifdef FUZZ_LIBFUZZER
#define FUZZLUA_COUNTERS 65536
__attribute__((
    used, section("__libfuzzer_extra_counters"))) static uint8_t fuzzlua_counters[FUZZLUA_COUNTERS];

static void fuzzlua_line_hook(lua_State *L, lua_Debug *ar)
{
    static uintptr_t prev;
    if (!lua_getinfo(L, "S", ar))
        return;
    uintptr_t here = (uintptr_t)ar->source * 31 + (uintptr_t)ar->currentline * 2654435761u;
    here ^= here >> 17;
    fuzzlua_counters[(here ^ prev) % FUZZLUA_COUNTERS]++;
    prev = here >> 1;
}
#endif

/*
 * Creates the state, runs tests/fuzz/<harness> (a Lua file) with the
 * glasgow.jsonc table as its argument, and returns the state with the
 * chunk's one result, a function, left on the stack at index 1. Aborts on
 * any error.
 */
static inline lua_State *fuzzlua_open(const char *harness)
{
    char path[4096];
    lua_State *L = lua_newstate(fuzzlua_alloc, NULL);
    fuzz_check(L, "cannot create a Lua state");
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_pushstring(L, FUZZ_SRC_DIR "/lua/?.lua;" FUZZ_SRC_DIR "/lua/?/init.lua");
    lua_setfield(L, -2, "path");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_glasgow_jsonc);
    lua_setfield(L, -2, "glasgow.jsonc");
    lua_pop(L, 2);

#ifdef FUZZ_LIBFUZZER
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    lua_sethook(L, fuzzlua_line_hook, LUA_MASKLINE, 0);
#endif
    snprintf(path, sizeof path, "%s/tests/fuzz/%s", FUZZ_SRC_DIR, harness);
    if (luaL_loadfile(L, path) != 0)
        fuzz_fail(__FILE__, __LINE__, "%s", lua_tostring(L, -1));
    lua_getglobal(L, "require");
    lua_pushliteral(L, "glasgow.jsonc");
    if (lua_pcall(L, 1, 1, 0) != 0 || lua_pcall(L, 1, 1, 0) != 0)
        fuzz_fail(__FILE__, __LINE__, "%s", lua_tostring(L, -1));
    fuzz_check(lua_gettop(L) == 1 && lua_isfunction(L, 1), "%s must return a function", path);
    return L;
}

/*
 * Calls the function at index 1 with the input as a string. It returns nil
 * when every invariant held, or a message; a message or a Lua error aborts.
 */
static inline void fuzzlua_run(lua_State *L, const uint8_t *data, size_t size)
{
    lua_pushvalue(L, 1);
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 1, 0) != 0)
        fuzz_fail(__FILE__, __LINE__, "Lua error: %.2000s", lua_tostring(L, -1));
    if (!lua_isnil(L, -1))
        fuzz_fail(__FILE__, __LINE__, "%.2000s", lua_tostring(L, -1));
    lua_settop(L, 1);
    /* Free what the input allocated, so that libFuzzer, which runs a leak
     * check after any input that malloc'd more than it freed, rarely has
     * to (a check costs more than a hundred runs). */
    lua_gc(L, LUA_GCCOLLECT, 0);
}

#endif
