-- glasgow.json: the JSON codec every route uses, configured with the
-- server's limits.
--
-- It is glasgow.jsonc (runtime/lua_json.c) everywhere: preloaded by the
-- runtime into every Lua state, and built as a loadable module
-- ($(BUILD)/lua/glasgow/jsonc.so, `make test-spec`) for the busted specs,
-- so the specs test the codec production runs. Strict RFC 8259; arrays and
-- objects keep their kind through a round trip (decoded tables carry
-- json.array_mt or json.object_mt; json.array() and json.object() mark
-- tables a handler builds); integers print exactly; object keys in sorted
-- order. An unmarked empty table encodes as {}.
--
-- decode() never raises: malformed or too deeply nested input is a client
-- error, returned as nil, message. encode() raises on values JSON cannot
-- hold (functions, NaN, sparse arrays, invalid UTF-8): a bug in the caller.
local core = require "glasgow.core"
local c = require "glasgow.jsonc"

local _M = {}

local depth = (core.limits and core.limits.max_json_depth) or 64
local c_decode, c_encode = c.decode, c.encode
local type, error = type, error

-- Decodes text; returns value or nil, message.
function _M.decode(text)
    if type(text) ~= "string" then
        error("bad argument #1 to 'decode' (string expected, got " .. type(text) .. ")", 2)
    end
    return c_decode(text, depth)
end

-- Encodes value; raises when it cannot be represented.
function _M.encode(value)
    return c_encode(value)
end

_M.null = c.null
_M.array_mt = c.array_mt
_M.object_mt = c.object_mt
_M.array = c.array
_M.object = c.object
_M.is_array = c.is_array
_M.max_depth = depth

return _M
