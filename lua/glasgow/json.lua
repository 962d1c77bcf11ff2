-- glasgow.json: the JSON codec every route uses, configured with the
-- server's limits.
--
-- decode() never raises: malformed or too deeply nested input is a client
-- error, returned as nil, message. encode() raises on values JSON cannot
-- hold (functions, NaN, sparse arrays): that is a bug in the caller.
local cjson_safe = require "cjson.safe"
local cjson = require "cjson"
local core = require "glasgow.core"

local _M = {}

local find, type, pairs = string.find, type, pairs
local huge = math.huge

-- Returns false when v holds an infinite number anywhere.
local function finite(v, depth)
    local t = type(v)
    if t == "number" then
        return v ~= huge and v ~= -huge
    elseif t == "table" and depth < 1000 then
        for _, x in pairs(v) do
            if not finite(x, depth + 1) then
                return false
            end
        end
    end
    return true
end

local depth = (core.limits and core.limits.max_json_depth) or 64

local decoder = cjson_safe.new()
decoder.decode_max_depth(depth)
decoder.decode_invalid_numbers(false)

local encoder = cjson.new()
encoder.encode_invalid_numbers(false)
encoder.encode_max_depth(1000)
encoder.encode_sparse_array(false, 2, 10)

-- The value that stands for JSON null on both sides.
_M.null = cjson.null

-- Decodes text; returns value or nil, message.
function _M.decode(text)
    if type(text) ~= "string" then
        error("bad argument #1 to 'decode' (string expected, got " .. type(text) .. ")", 2)
    end
    local value, err = decoder.decode(text)
    if value == nil and err then
        return nil, err
    end
    -- cjson turns 1e999 into infinity, which JSON cannot hold; look for it
    -- only when the text has a three-digit exponent, so the common case pays nothing
    if find(text, "[eE][+-]?%d%d%d") and not finite(value, 0) then
        return nil, "number out of range"
    end
    return value
end

-- Encodes value; raises when it cannot be represented.
function _M.encode(value)
    return encoder.encode(value)
end

_M.max_depth = depth

return _M
