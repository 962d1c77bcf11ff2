-- Harness of fuzz_schema.c: returns the function run on each input, which
-- returns nil when every invariant held, else a message.
local json = ...
local DEPTH = 64 -- GLASGOW_MAX_JSON_DEPTH's default
-- schema.lua takes null and the array/object marks from glasgow.json, which
-- reads its depth limit from glasgow.core (the C runtime's; not here)
package.preload['glasgow.core'] = function() return { limits = { max_json_depth = DEPTH } } end
local schema = require 'glasgow.schema'
local decode, is_array = json.decode, json.is_array
local USER = { type = 'object', additionalProperties = false,
    required = { 'email', 'name', 'password' },
    properties = {
        email = { type = 'string', format = 'email', minLength = 3, maxLength = 300 },
        name = { type = 'string', minLength = 1, maxLength = 200 },
        password = { type = 'string', minLength = 8, maxLength = 1024 },
        role = { type = 'string', enum = { 'admin', 'user' } },
        id = { type = 'string', format = 'uuid' },
        born = { type = 'string', format = 'date' },
        created_at = { type = 'string', format = 'date-time' } } }
local FIXED = {
    USER,
    { type = 'array', minItems = 1, maxItems = 5, items = USER },
    { type = 'object', properties = {
        limit = { type = 'integer', minimum = 1, maximum = 100 },
        ratio = { type = 'number', exclusiveMinimum = 0, exclusiveMaximum = 1 },
        tags = { type = 'array', items = { type = { 'string', 'null' }, maxLength = 3 } },
        any = { description = 'anything' },
        flag = { type = 'boolean', default = false, example = true } } },
    { type = { 'integer', 'string', 'null', 'boolean', 'array', 'object' },
      enum = { 1, 'one', true, json.null } },
    {},
}
for i = 1, #FIXED do schema.check(FIXED[i]) end

-- A copy of v whose tables get their keys in reverse sorted order.
local function reordered(v)
    if type(v) ~= 'table' then return v end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b)
        if type(a) ~= type(b) then return type(a) > type(b) end
        return a > b
    end)
    local t = setmetatable({}, getmetatable(v))
    for i = 1, #keys do t[keys[i]] = reordered(v[keys[i]]) end
    return t
end

local function bad_error(err, where)
    if type(err) ~= 'table' or type(err.field) ~= 'string'
        or type(err.reason) ~= 'string' or err.reason == '' then
        return 'malformed error record'
    end
    if err.field:sub(1, #where) ~= where then
        return 'field ' .. err.field .. ' is not under ' .. where
    end
    if err.field:find('[^\32-\126]') then
        return 'field is not printable ASCII: ' .. err.field
    end
end

-- Validates v and a reordered copy; returns a message if anything is wrong.
local function validate(spec, v, where)
    local ok, r, err = pcall(schema.validate, spec, v, where)
    if not ok then return 'validate raised: ' .. tostring(r) end
    if err == nil then
        if not rawequal(r, v) then return 'validate returned another value' end
    else
        if r ~= nil then return 'validate returned a value and an error' end
        local m = bad_error(err, where)
        if m then return m end
    end
    local ok2, r2, err2 = pcall(schema.validate, spec, reordered(v), where)
    if not ok2 then return 'validate raised on the copy: ' .. tostring(r2) end
    if (err == nil) ~= (err2 == nil)
        or (err and (err.field ~= err2.field or err.reason ~= err2.reason)) then
        return 'the verdict depends on key order: '
            .. (err and err.field .. ' ' .. err.reason or 'valid') .. ' vs '
            .. (err2 and err2.field .. ' ' .. err2.reason or 'valid')
    end
end

local function declaration_error(ok, e)
    if not ok and (type(e) ~= 'string' or not e:find('^schema: ')) then
        return 'a declaration was refused with ' .. tostring(e)
    end
end

-- Independent oracles for the formats: dates through os.time's calendar.
local function real_date(y, m, d)
    y, m, d = tonumber(y), tonumber(m), tonumber(d)
    -- year 0000 is refused as schema.lua does: PostgreSQL has no year 0
    if y < 1 or m < 1 or m > 12 or d < 1 or d > 31 then return false end
    local t = os.date('*t', os.time({ year = y, month = m, day = d, hour = 12 }))
    return t.year == y and t.month == m and t.day == d
end

local ORACLES = {
    date = function(s)
        local y, m, d = s:match('^(%d%d%d%d)%-(%d%d)%-(%d%d)$')
        return y ~= nil and real_date(y, m, d)
    end,
    ['date-time'] = function(s)
        local y, mo, d, h, mi, se, frac, zone = s:match(
            '^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt](%d%d):(%d%d):(%d%d)(%.?%d*)(.*)$')
        if not y or not (frac == '' or frac:find('^%.%d+$')) or not real_date(y, mo, d) then
            return false
        end
        h, mi, se = tonumber(h), tonumber(mi), tonumber(se)
        local offset
        if zone == 'Z' or zone == 'z' then
            offset = 0
        else
            local sign, oh, om = zone:match('^([+-])(%d%d):(%d%d)$')
            if not sign or tonumber(oh) > 23 or tonumber(om) > 59 then return false end
            offset = (tonumber(oh) * 60 + tonumber(om)) * (sign == '-' and -1 or 1)
        end
        if h > 23 or mi > 59 or se > 60 then return false end
        -- a leap second is inserted at the end of a UTC day only
        return se < 60 or (h * 60 + mi - offset) % 1440 == 1439
    end,
    uuid = function(s)
        return #s == 36 and s:gsub('%x', ''):gsub('^%-%-%-%-$', '') == ''
            and s:sub(9, 9) .. s:sub(14, 14) .. s:sub(19, 19) .. s:sub(24, 24) == '----'
    end,
}
local FORMAT_SCHEMAS = {}
for name in pairs(ORACLES) do
    FORMAT_SCHEMAS[name] = { type = 'string', format = name }
end

-- Checks every string in v (member names too) against the format oracles.
local function check_formats(v)
    if type(v) == 'table' then
        for k, x in pairs(v) do
            local m = check_formats(k) or check_formats(x)
            if m then return m end
        end
    elseif type(v) == 'string' and #v <= 64 then
        for name, oracle in pairs(ORACLES) do
            local ok = schema.validate(FORMAT_SCHEMAS[name], v) ~= nil
            if ok ~= oracle(v) then
                return string.format('format %s: %q is %s', name, v, ok and 'accepted' or 'refused')
            end
        end
    end
end

-- The kind the schema sees is the kind the codec decoded, at every level:
-- an empty [] is never an object, an empty {} never an array.
local ARRAY, OBJECT = { type = 'array' }, { type = 'object' }
local function check_kinds(v)
    if type(v) ~= 'table' then return nil end
    local want_array = is_array(v)
    if want_array == (getmetatable(v) == json.object_mt) then
        return 'a decoded table is marked neither array nor object'
    end
    if (schema.validate(ARRAY, v) ~= nil) ~= want_array
        or (schema.validate(OBJECT, v) ~= nil) == want_array then
        return 'schema reads a decoded ' .. (want_array and 'array' or 'object')
            .. ' of ' .. tostring(#v) .. ' items as the other kind'
    end
    for _, x in pairs(v) do
        local m = check_kinds(x)
        if m then return m end
    end
end

return function(text)
    local v = decode(text, DEPTH)
    if v == nil then return nil end
    local fm = check_formats(v) or check_kinds(v)
    if fm then return fm end
    for i = 1, #FIXED do
        local m = validate(FIXED[i], v, 'body')
        if m then return 'fixed schema ' .. i .. ': ' .. m end
    end
    if not (is_array(v) and #v == 2) then return nil end
    local spec, doc = v[1], v[2]
    local ok, e = pcall(schema.check, spec)
    if not ok then return declaration_error(ok, e) end
    local m = validate(spec, doc, 'value')
    if m then return m end
    if type(doc) == 'string' then
        local okc, r, err = pcall(schema.coerce, spec, doc, 'query.x')
        if not okc then return 'coerce raised: ' .. tostring(r) end
        if r == nil then m = bad_error(err, 'query.x') if m then return m end end
    end
    ok, e = pcall(schema.check_object_of_strings, spec, 'query')
    if not ok then return declaration_error(ok, e) end
    if type(doc) == 'table' and not is_array(doc) then
        local oko, r, err = pcall(schema.validate_object_of_strings, spec, doc, 'query')
        if not oko then return 'validate_object_of_strings raised: ' .. tostring(r) end
        if r == nil then return bad_error(err, 'query') end
        if type(r) ~= 'table' then return 'validate_object_of_strings returned no table' end
    end
    return nil
end
