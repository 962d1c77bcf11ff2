-- Harness of fuzz_json.c: returns the function run on each input, which
-- returns nil when every invariant held, else a message.
local json = ...
local decode, encode = json.decode, json.encode
local DEPTH = 64 -- LUA_JSON_DECODE_DEPTH, GLASGOW_MAX_JSON_DEPTH's default
local MAX_DEPTH = 1000 -- LUA_JSON_MAX_DEPTH
local function same(a, b)
    if type(a) ~= type(b) then return false end
    if type(a) ~= 'table' then return a == b end
    if getmetatable(a) ~= getmetatable(b) then return false end
    for k, v in pairs(a) do
        if not same(v, b[k]) then return false end
    end
    for k in pairs(b) do
        if a[k] == nil then return false end
    end
    return true
end
local function round_trip(text, depth)
    local v, err = decode(text, depth)
    if v == nil then
        if type(err) ~= 'string' then return 'decode failed without a message' end
        if err == 'too deeply nested' then
            -- the largest limit GLASGOW_MAX_JSON_DEPTH allows
            return depth < MAX_DEPTH and round_trip(text, MAX_DEPTH) or nil
        end
        local at = tonumber(err:match(' at byte (%d+)$'))
        if not at or at < 1 or at > #text + 1 then
            return 'decode message names no byte of the input: ' .. err
        end
        return nil
    end
    if err ~= nil then return 'decode returned a value and a message' end
    local ok, out = pcall(encode, v)
    if not ok then return 'encode refused a decoded value: ' .. tostring(out) end
    local v2, err2 = decode(out, depth)
    if v2 == nil then return 'its encoding does not decode: ' .. err2 .. ': ' .. out end
    if not same(v, v2) then return 'the round trip changed the value: ' .. out end
    local out2 = encode(v2)
    if out2 ~= out then return 'encoding not canonical: ' .. out .. ' then ' .. out2 end
    return nil
end

return function(text)
    return round_trip(text, DEPTH)
end
