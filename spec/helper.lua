-- Loaded by busted before every spec file (.busted, "helper").
--
-- The specs run on the runtime's own JSON codec: glasgow.jsonc is
-- runtime/lua_json.c built as a Lua C module into $(BUILD)/lua/ (`make
-- test-spec` builds it; .busted and tests/run-all put that directory first
-- on package.cpath). glasgow.core, which only the C runtime provides,
-- is the stand-in in spec/core_stub.lua.
require "core_stub"

local path = package.searchpath("glasgow.jsonc", package.cpath)
if not path then
    error("glasgow.jsonc (runtime/lua_json.c as a Lua module) is not built: run `make test-spec`,"
          .. " or `make build/lua/glasgow/jsonc.so` before busted (package.cpath is "
          .. package.cpath .. ")", 0)
end
