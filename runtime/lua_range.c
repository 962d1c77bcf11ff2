/*
 * lua_range: require "glasgow.range" (see lua_range.h).
 */
#include "lua_range.h"

#include <lauxlib.h>

#include "range.h"

/* Largest size a Lua number holds exactly. */
#define MAX_EXACT 9007199254740992.0

static int range_lparse(lua_State *L)
{
    lua_Number n = luaL_checknumber(L, 2);
    if (!(n >= 0 && n <= MAX_EXACT) || n != (lua_Number)(uint64_t)n)
        return luaL_argerror(L, 2, "integer in 0..2^53 expected");
    uint64_t size = (uint64_t)n;
    size_t len = 0;
    const char *h = lua_type(L, 1) == LUA_TSTRING ? lua_tolstring(L, 1, &len) : NULL;
    uint64_t first = 0, last = 0;
    switch (range_parse(h, len, size, &first, &last)) {
    case RANGE_PARTIAL:
        lua_pushliteral(L, "partial");
        lua_pushnumber(L, (lua_Number)first);
        lua_pushnumber(L, (lua_Number)last);
        return 3;
    case RANGE_UNSATISFIABLE: lua_pushliteral(L, "unsatisfiable"); return 1;
    default: lua_pushliteral(L, "none"); return 1;
    }
}

int luaopen_glasgow_range(lua_State *L)
{
    static const luaL_Reg fns[] = {{"parse", range_lparse}, {NULL, NULL}};
    lua_createtable(L, 0, 1);
    luaL_register(L, NULL, fns);
    return 1;
}
