#!/usr/bin/env bash
# bench/checkhook.sh - what LUAJIT_ENABLE_CHECKHOOK costs while no hook is
# armed. Runs the same Lua workloads under Debian's luajit (built without the
# option), under a minimal runner linked with the LuaJIT we build with it
# (.deps/luajit), and under `glasgow run` (that LuaJIT plus glasgow's state:
# library, capped allocator, coroutine runner), taking turns so that CPU
# drift hits all alike, and prints time ratios to Debian's per workload and
# their medians.
#
#   bench/checkhook.sh             ROUNDS=5 bench/checkhook.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
GLASGOW_BIN=${GLASGOW_BIN:-build/glasgow}
command -v luajit >/dev/null || { echo "needs Debian's luajit (package luajit2)" >&2; exit 1; }
[ -x "$GLASGOW_BIN" ] || make -s all
deps=${GLASGOW_DEPS:-.deps}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# the minimal runner: a fresh state, the standard libraries, arg[1], the file
cat >"$work/run.c" <<'C'
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
int main(int argc, char **argv)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    lua_newtable(L);
    lua_pushstring(L, argc > 2 ? argv[2] : "");
    lua_rawseti(L, -2, 1);
    lua_setglobal(L, "arg");
    if (luaL_dofile(L, argv[1]) != 0)
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
    lua_close(L);
    return 0;
}
C
cc -O2 -o "$work/run" "$work/run.c" -I"$deps/luajit/include/luajit-2.1" \
    "$deps/luajit/lib/libluajit-5.1.a" -ldl -lm
# Each workload prints its own CPU seconds; a loop-heavy mix, since the
# option adds a check to every compiled loop iteration.
cat >"$work/w.lua" <<'LUA'
local which = arg[1]
local t0 = os.clock()
if which == "sum" then
    local x = 0
    for i = 1, 4e8 do x = x + i end
    assert(x > 0)
elseif which == "while" then
    local i, x = 0, 0
    while i < 3e8 do i = i + 1; x = x + i % 7 end
    assert(x > 0)
elseif which == "tables" then
    local n = 0
    for _ = 1, 600 do
        local t = {}
        for i = 1, 1e5 do t[i] = i * 2 end
        for _, v in ipairs(t) do n = n + v end
    end
    assert(n > 0)
elseif which == "strings" then
    local parts = {}
    for r = 1, 150 do
        for i = 1, 2e4 do parts[i] = tostring(i * r) end
        assert(#table.concat(parts, ",") > 0)
    end
end
io.write(string.format("%.4f\n", os.clock() - t0))
LUA

median() { python3 -c 'import statistics,sys; print("%.3f" % statistics.median(map(float, sys.argv[1:])))' "$@"; }
ratio() { python3 -c 'import statistics,sys; a=list(map(float,sys.argv[1].split())); b=list(map(float,sys.argv[2].split())); print("%.3f" % statistics.median([x/y for x,y in zip(a,b)]))' "$1" "$2"; }
hook_ratios=() glasgow_ratios=()
for w in sum while tables strings; do
    d_all=() h_all=() g_all=()
    for _ in $(seq 1 "$ROUNDS"); do
        d_all+=("$(luajit "$work/w.lua" "$w")")
        h_all+=("$("$work/run" "$work/w.lua" "$w")")
        g_all+=("$("$GLASGOW_BIN" run "$work/w.lua" "$w")")
    done
    rh=$(ratio "${h_all[*]}" "${d_all[*]}")
    rg=$(ratio "${g_all[*]}" "${d_all[*]}")
    printf '%-8s debian %s | checkhook %s | glasgow run %s  ->  checkhook/debian %s, glasgow/debian %s\n' \
        "$w" "$(median "${d_all[@]}")" "$(median "${h_all[@]}")" "$(median "${g_all[@]}")" "$rh" "$rg"
    hook_ratios+=("$rh") glasgow_ratios+=("$rg")
done
echo "median time ratio to Debian's LuaJIT (1.0 = no cost): LuaJIT with CHECKHOOK" \
    "$(median "${hook_ratios[@]}"), glasgow run $(median "${glasgow_ratios[@]}")"
