#!/usr/bin/env bash
# bench/checkhook.sh - what LUAJIT_ENABLE_CHECKHOOK costs while no hook is
# armed. Runs the same Lua workloads under Debian's luajit (built without the
# option) and under `glasgow run` (the LuaJIT we build with it), taking turns
# so that CPU drift hits both alike, and prints glasgow/debian time ratios
# per workload and their median. Glasgow's run also includes the watchdog's
# per-run bookkeeping, since `glasgow run` executes through the same runner.
#
#   bench/checkhook.sh             ROUNDS=5 bench/checkhook.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
GLASGOW_BIN=${GLASGOW_BIN:-build/glasgow}
command -v luajit >/dev/null || { echo "needs Debian's luajit (package luajit2)" >&2; exit 1; }
[ -x "$GLASGOW_BIN" ] || make -s all

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
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

ratios=()
for w in sum while tables strings; do
    g_all=() d_all=()
    for _ in $(seq 1 "$ROUNDS"); do
        d=$(luajit "$work/w.lua" "$w")
        g=$("$GLASGOW_BIN" run "$work/w.lua" "$w")
        d_all+=("$d") g_all+=("$g")
    done
    r=$(python3 -c 'import statistics,sys; g=list(map(float,sys.argv[1].split())); d=list(map(float,sys.argv[2].split())); print("%.3f" % statistics.median([a/b for a,b in zip(g,d)]))' "${g_all[*]}" "${d_all[*]}")
    printf '%-8s debian %s s   glasgow %s s   ratio %s\n' "$w" "${d_all[*]}" "${g_all[*]}" "$r"
    ratios+=("$r")
done
python3 -c 'import statistics,sys; print("median glasgow/debian time ratio: %.3f (1.0 = no cost)" % statistics.median(map(float, sys.argv[1:])))' "${ratios[@]}"
