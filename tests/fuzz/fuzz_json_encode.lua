-- Harness of fuzz_json_encode.c: returns the function run on each input, which
-- returns nil when every invariant held, else a message.
--
-- The input is a program for a small stack machine that builds a Lua value
-- (see OPS below). encode() must succeed exactly when the value is one the
-- contract in lua_json.h says JSON can hold (checked by `representable`);
-- when it succeeds, the text must decode to a value that corresponds to the
-- original, re-encode to the same bytes, and match the encoding of a copy
-- built in another key order.
local json = ...
local ffi = require 'ffi'
-- glasgow.schema loads glasgow.json, which reads glasgow.core's limits (the
-- C runtime's; not here)
package.preload['glasgow.core'] = function() return { limits = {} } end
local utf8_length = require('glasgow.schema').utf8_length

local encode, decode, null = json.encode, json.decode, json.null
local array_mt, object_mt = json.array_mt, json.object_mt
local huge, floor = math.huge, math.floor
local MAX_DEPTH = 1000 -- LUA_JSON_ENCODE_DEPTH
local TWO63 = 2 ^ 63

local NUMBERS = { 0, -0, 1, -1, 0.1, 0.5, 1.5, -2.5, 1e15, 1e16, 1e21, 1e-7, 123456.789,
    2 ^ 31, 2 ^ 31 - 1, 2 ^ 32, 2 ^ 53, 2 ^ 53 + 2, 2 ^ 63, -2 ^ 63, 2 ^ 64, 1e308,
    1.7976931348623157e308, 5e-324, 2.2250738585072014e-308, 0 / 0, huge, -huge,
    0.1 + 0.2, 1 / 3, 100, 1e-4, 9.999999999999999e14 }

local double_bits = ffi.typeof('union { uint8_t b[8]; double d; }')

local function is_index(k)
    return k >= 1 and k <= 2147483647 and k == floor(k)
end

local function is_i64(k)
    return k > -TWO63 and k < TWO63 and k == floor(k)
end

-- The encoder's contract: true if v can be encoded.
local function representable(v, depth, path)
    local tv = type(v)
    if v == nil or v == null or tv == 'boolean' then
        return true
    elseif tv == 'number' then
        return v == v and v ~= huge and v ~= -huge
    elseif tv == 'string' then
        return utf8_length(v) ~= nil
    elseif tv ~= 'table' or path[v] or depth >= MAX_DEPTH then
        return false
    end
    local mt = getmetatable(v)
    local nidx, max, nstr, names = 0, 0, 0, {}
    path[v] = true
    for k, x in pairs(v) do
        if type(k) == 'string' then
            if mt == array_mt or utf8_length(k) == nil or names[k] then return false end
            names[k] = true
            nstr = nstr + 1
        elseif type(k) == 'number' and mt == object_mt then
            local name = is_i64(k) and string.format('%d', k)
            if not name or names[name] then return false end
            names[name] = true
        elseif type(k) == 'number' and is_index(k) then
            nidx = nidx + 1
            if k > max then max = k end
        else
            return false
        end
        if not representable(x, depth + 1, path) then return false end
    end
    path[v] = nil
    return (nidx == 0 or nstr == 0) and max == nidx
end

-- Whether w, decoded from encode(v), is what v should have become.
local function corresponds(v, w)
    if v == nil or v == null then return w == null end
    if type(v) ~= 'table' then return v == w end
    if type(w) ~= 'table' then return false end
    local n = 0
    if json.is_array(w) then
        for k, x in pairs(v) do
            n = n + 1
            if not corresponds(x, w[k]) then return false end
        end
        return n == #w
    end
    for k, x in pairs(v) do
        n = n + 1
        local name = type(k) == 'number' and string.format('%d', k) or k
        if not corresponds(x, w[name]) then return false end
    end
    for _ in pairs(w) do n = n - 1 end
    return n == 0
end

-- A copy of v whose tables get their keys in reverse order (cycles kept).
local function reordered(v, seen)
    if type(v) ~= 'table' then return v end
    if seen[v] then return seen[v] end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b)
        if type(a) ~= type(b) then return type(a) > type(b) end
        return a > b
    end)
    local t = setmetatable({}, getmetatable(v))
    seen[v] = t
    for i = 1, #keys do rawset(t, keys[i], reordered(v[keys[i]], seen)) end
    return t
end

-- Runs the program in s; returns the value it built.
local function build(s)
    local stack, pos, len = {}, 1, #s
    local nest_budget = MAX_DEPTH + 100
    local function byte()
        local b = s:byte(pos) or 0
        pos = pos + 1
        return b
    end
    local function top_table()
        local t = stack[#stack]
        return type(t) == 'table' and t or nil
    end
    local OPS = {
        function() -- a double from the next 8 bytes
            local u, mantissa = double_bits(), 0
            for i = 0, 7 do u.b[i] = byte() end
            for i = 0, 5 do mantissa = mantissa + u.b[i] end
            mantissa = mantissa + u.b[6] % 16
            if u.b[7] % 128 == 127 and u.b[6] >= 240 and mantissa > 0 then
                -- a NaN: LuaJIT keeps other values in NaN payloads, so only its own NaN is safe
                stack[#stack + 1] = 0 / 0
            else
                stack[#stack + 1] = tonumber(u.d)
            end
        end,
        function() stack[#stack + 1] = byte() - 128 end,
        function() stack[#stack + 1] = NUMBERS[byte() % #NUMBERS + 1] end,
        function() -- a string of the next n bytes
            local n = byte() % 32
            stack[#stack + 1] = s:sub(pos, pos + n - 1)
            pos = pos + n
        end,
        function() stack[#stack + 1] = true end,
        function() stack[#stack + 1] = false end,
        function() stack[#stack + 1] = null end,
        function() stack[#stack + 1] = {} end,
        function() stack[#stack + 1] = json.array() end,
        function() stack[#stack + 1] = json.object() end,
        function() -- t[k] = v, popping v and k
            local v, k = table.remove(stack), table.remove(stack)
            local t = top_table()
            if t and k ~= nil and k == k then rawset(t, k, v) end
        end,
        function() -- t[#t + 1] = v, popping v
            local v = table.remove(stack)
            local t = top_table()
            if t and v ~= nil then rawset(t, #t + 1, v) end
        end,
        function() -- t[k] = t: a cycle
            local t = top_table()
            if t then rawset(t, byte() % 4 + 1, t) end
        end,
        function() stack[#stack + 1] = print end,
        function() stack[#stack + 1] = stack[#stack] end,
        function() -- nest the top into a new table, n times (1100 in all at most)
            for _ = 1, math.min(byte(), nest_budget) do
                stack[#stack] = { stack[#stack] }
                nest_budget = nest_budget - 1
            end
        end,
    }
    while pos <= len and #stack < 1000 do
        OPS[byte() % #OPS + 1]()
    end
    return stack[1]
end

return function(s)
    local v = build(s)
    local ok, out = pcall(encode, v)
    local want = representable(v, 0, {})
    if not ok then
        if type(out) ~= 'string' then return 'encode raised a non-string' end
        if want then return 'encode refused a representable value: ' .. out end
        return nil
    end
    if not want then return 'encode accepted a value it should refuse: ' .. out end
    local w, err = decode(out, MAX_DEPTH)
    if w == nil and out ~= 'null' then return 'the encoding does not decode: ' .. err .. ': ' .. out end
    if out == 'null' then w = null end
    if not corresponds(v, w) then return 'the decoded value differs: ' .. out end
    if encode(w) ~= out then return 'not canonical: ' .. out .. ' then ' .. encode(w) end
    local out2 = encode(reordered(v, {}))
    if out2 ~= out then return 'depends on key order: ' .. out .. ' vs ' .. out2 end
    return nil
end
