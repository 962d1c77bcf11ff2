-- glasgow.json: the JSON codec every route uses, configured with the
-- server's limits.
--
-- In the runtime this is glasgow.jsonc (runtime/lua_json.c): strict RFC 8259,
-- arrays and objects keep their kind through a round trip (json.array_mt,
-- json.object_mt), integers print exactly, object keys in sorted order.
-- Under plain LuaJIT (the busted specs) lua-cjson stands in.
--
-- decode() never raises: malformed or too deeply nested input is a client
-- error, returned as nil, message. encode() raises on values JSON cannot
-- hold (functions, NaN, sparse arrays, invalid UTF-8): a bug in the caller.
local core = require "glasgow.core"

local _M = {}

local depth = (core.limits and core.limits.max_json_depth) or 64
local has_c, c = pcall(require, "glasgow.jsonc")

if has_c then
    local c_decode, c_encode = c.decode, c.encode

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
else
    local cjson_safe = require "cjson.safe"
    local cjson = require "cjson"
    local decoder = cjson_safe.new()
    decoder.decode_max_depth(depth)
    decoder.decode_invalid_numbers(false)
    local encoder = cjson.new()
    encoder.encode_invalid_numbers(false)
    encoder.encode_sparse_array(false, 2, 10)
    local find, huge = string.find, math.huge

    local function finite(v, d)
        if type(v) == "number" then
            return v ~= huge and v ~= -huge
        elseif type(v) == "table" and d < 1000 then
            for _, x in pairs(v) do
                if not finite(x, d + 1) then
                    return false
                end
            end
        end
        return true
    end

    function _M.decode(text)
        if type(text) ~= "string" then
            error("bad argument #1 to 'decode' (string expected, got " .. type(text) .. ")", 2)
        end
        local value, err = decoder.decode(text)
        if value == nil and err then
            return nil, err
        end
        if find(text, "[eE][+-]?%d%d%d") and not finite(value, 0) then
            return nil, "number out of range"
        end
        return value
    end

    function _M.encode(value)
        return encoder.encode(value)
    end

    _M.null = cjson.null
    _M.array = function(t) return t or {} end
    _M.object = function(t) return t or {} end
end

_M.max_depth = depth

return _M
