--[[
glasgow.schema: a validator for the subset of JSON Schema (2020-12, as used
by OpenAPI 3.1 schema objects) that route declarations may use, so the same
tables can be checked at load time, enforced per request and emitted into
openapi.json unchanged.

Supported keywords: type, enum, minLength, maxLength, format, minimum,
maximum, exclusiveMinimum, exclusiveMaximum, minItems, maxItems, items,
properties, required, additionalProperties (boolean only, default true),
description, example, default. Anything else is a declaration error, so a
typo cannot silently disable a check. "nullable" is not supported: declare
type = { "string", "null" } instead. "default" is documentation only; it is
never injected into the value.

Value model (what glasgow.json decodes, and how glasgow.json.encode
would write a value):
  - JSON null is json.null;
  - a table marked json.array_mt (every decoded array, json.array()) is an
    array if its keys are exactly 1..n, and never an object, even empty;
  - a table marked json.object_mt (every decoded object, json.object()) is
    an object if its keys are all strings, and never an array, even empty;
  - an unmarked table (one built in Lua, as examples and defaults are) is
    an array if its keys are exactly 1..n, an object if they are all
    strings; with no keys it is an object, as encode writes it ({}): an
    empty array example or default is json.array();
  - an integer is a finite number with no fractional part and a magnitude
    below 2^53 (so every accepted integer is exact);
  - a number is any finite number (NaN and infinities never validate);
  - every string must be valid UTF-8 and lengths count code points.
So "[]" sent where an object is declared, or "{}" where an array is, is
refused like any other type mismatch.

Errors: a bad declaration raises "schema: <what> at <path>"; a value that
does not match returns nil, { field = ..., reason = ... }. The field is the
caller's `where` followed by a path: ".name" for object members whose names
are plain ([%w_-], at most 64 bytes), '["na.me"]' for any other name (bytes
outside printable ASCII escaped as \xNN, truncated to 64 bytes) and "[i]"
for array elements, where i is the 0-based JSON index, as a client counts.
The field is therefore always printable ASCII and safe to echo.

Checked schemas are cached and must not be mutated afterwards.
]]

local json = require "glasgow.json"
local jsonc = require "glasgow.jsonc"

local _M = {}

local null = json.null
local ARRAY_MT, OBJECT_MT = json.array_mt, json.object_mt
local type, pairs, ipairs = type, pairs, ipairs
local tostring, tonumber, error, pcall = tostring, tonumber, error, pcall
local setmetatable, getmetatable = setmetatable, getmetatable
local floor, huge = math.floor, math.huge
local byte, find, format, match, sub, gsub =
    string.byte, string.find, string.format, string.match, string.sub,
    string.gsub
local concat, sort = table.concat, table.sort

-- Largest magnitude accepted as an integer: 2^53 - 1, like JavaScript's
-- Number.MAX_SAFE_INTEGER, so decimal strings never round into range.
local MAX_SAFE = 9007199254740991

local KEYWORDS = {
    type = true, enum = true,
    minLength = true, maxLength = true, format = true,
    minimum = true, maximum = true,
    exclusiveMinimum = true, exclusiveMaximum = true,
    minItems = true, maxItems = true, items = true,
    properties = true, required = true, additionalProperties = true,
    description = true, example = true, default = true,
}

local TYPE_NAMES = {
    string = "a string", integer = "an integer", number = "a number",
    boolean = "a boolean", object = "an object", array = "an array",
    null = "null",
}

-- Types a query or path parameter may be coerced to.
local SCALAR_TYPES = {
    string = true, integer = true, number = true, boolean = true, null = true,
}

-- Per-schema data computed by check: sorted names, type set, messages.
-- Keys are weak so declarations can be collected with their routes.
local compiled = setmetatable({}, { __mode = "k" })

-- Object schemas already accepted by check_object_of_strings.
local param_checked = setmetatable({}, { __mode = "k" })

-- Field paths ("params.id") of declared names, per compiled object schema
-- and base: validate_object_of_strings runs on every request of a route
-- with params or query, and the path only names the field in an error.
local field_paths = setmetatable({}, { __mode = "k" })

--[[ Helpers ]]

local function is_integer(v)
    return v == floor(v) and v >= -MAX_SAFE and v <= MAX_SAFE
end

local function is_finite(v)
    return v - v == 0
end

--[[
Returns is_array, is_object, count for a Lua table as a declaration list
(type, enum, required): the key set is exactly 1..n (count = n), or every
key is a string. An empty table is both.
]]
local function table_shape(t)
    local n, max = 0, 0
    local arr, obj = true, true
    for k in pairs(t) do
        n = n + 1
        if type(k) == "string" then
            arr = false
        else
            obj = false
            if type(k) ~= "number" or k < 1 or k ~= floor(k) then
                arr = false
            elseif k > max then
                max = k
            end
        end
        if not arr and not obj then
            return false, false, n
        end
    end
    if arr and max ~= n then
        arr = false
    end
    return arr, obj, n
end

--[[
Returns is_array, is_object, count for a table as a JSON value (see the
value model in the header): the metatable glasgow.json gives decoded
tables decides the kind, the keys only whether the table is well formed.
]]
local function value_shape(t)
    local arr, obj, n = table_shape(t)
    local mt = getmetatable(t)
    if mt == ARRAY_MT then
        return arr, false, n
    elseif mt == OBJECT_MT or n == 0 then
        return false, obj, n
    end
    return arr, obj, n
end

--[[
Returns the number of code points in s, or nil if s is not well-formed
UTF-8 (overlong forms, surrogates and values above U+10FFFF are rejected):
glasgow.jsonc's, the rules its decoder applies, in C (a string value is
checked on every request of a route with params).
]]
local utf8_length = jsonc.utf8_length

local function escape_byte(c)
    return format("\\x%02x", byte(c))
end

-- Appends an object member name to a field path (see the header comment).
local function key_path(base, key)
    if #key <= 64 and find(key, "^[%w_%-]+$") then
        return base .. "." .. key
    end
    local k, more = key, ""
    if #k > 64 then
        k, more = sub(k, 1, 64), "..."
    end
    k = gsub(k, '[%c"\\\128-\255]', escape_byte)
    return base .. '["' .. k .. more .. '"]'
end

local function index_path(base, i)
    return base .. "[" .. (i - 1) .. "]"
end

-- Formats a number for messages: integers without exponent or fraction.
local function number_text(n)
    if n == floor(n) and n > -1e15 and n < 1e15 then
        return format("%d", n)
    end
    local s = format("%.14g", n)
    if tonumber(s) ~= n then
        s = format("%.17g", n)
    end
    return s
end

local function scalar_text(v)
    if v == null then
        return "null"
    elseif type(v) == "number" then
        return number_text(v)
    end
    return tostring(v)
end

local function plural(n, word)
    if n == 1 then
        return number_text(n) .. " " .. word
    end
    return number_text(n) .. " " .. word .. "s"
end

local function fail(field, reason)
    return nil, { field = field, reason = reason }
end

--[[ Formats ]]

local function is_leap(y)
    return y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)
end

local MONTH_DAYS = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

-- Year 0000 is RFC 3339's 1 BC, but PostgreSQL has no year 0 and refuses
-- it: a value no column can hold is the field's error, not the database's.
local function valid_ymd(y, m, d)
    y, m, d = tonumber(y), tonumber(m), tonumber(d)
    if y < 1 or m < 1 or m > 12 or d < 1 then
        return false
    end
    local days = MONTH_DAYS[m]
    if m == 2 and is_leap(y) then
        days = 29
    end
    return d <= days
end

local function valid_date(s)
    local y, m, d = match(s, "^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
    return y ~= nil and valid_ymd(y, m, d)
end

-- RFC 3339 date-time (section 5.6); "T" and "Z" may be lowercase. A leap
-- second is accepted only where one can occur: at 23:59:60 UTC.
local function valid_date_time(s)
    local y, mo, d, h, mi, se, rest = match(s,
        "^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt](%d%d):(%d%d):(%d%d)(.*)$")
    if not y or not valid_ymd(y, mo, d) then
        return false
    end
    h, mi, se = tonumber(h), tonumber(mi), tonumber(se)
    if h > 23 or mi > 59 or se > 60 then
        return false
    end
    local frac_end = match(rest, "^%.%d+()")
    if frac_end then
        rest = sub(rest, frac_end)
    end
    local offset
    if rest == "Z" or rest == "z" then
        offset = 0
    else
        local sign, oh, om = match(rest, "^([+-])(%d%d):(%d%d)$")
        if not sign then
            return false
        end
        oh, om = tonumber(oh), tonumber(om)
        if oh > 23 or om > 59 then
            return false
        end
        offset = oh * 60 + om
        if sign == "-" then
            offset = -offset
        end
    end
    if se == 60 and (h * 60 + mi - offset) % 1440 ~= 23 * 60 + 59 then
        return false
    end
    return true
end

-- 8-4-4-4-12 hex digits of either case joined by hyphens, checked in C
-- (runtime/lua_json.c): a path parameter of many routes goes through it on
-- every request, and a Lua pattern of 36 classes cost ten times as much.
local valid_uuid = jsonc.is_uuid

-- Pragmatic addr-spec: an ASCII dot-atom local part (no quoted strings, no
-- comments), "@", and a domain of at least two DNS labels.
local function valid_email(s)
    if #s > 254 then
        return false
    end
    local loc, domain = match(s, "^([^@]+)@([^@]+)$")
    if not loc or #loc > 64 then
        return false
    end
    if not find(loc, "^[%w!#$%%&'*+/=?^_`{|}~%.%-]+$")
        or find(loc, "^%.") or find(loc, "%.$") or find(loc, "%.%.") then
        return false
    end
    if #domain > 253 or find(domain, "^%.") or find(domain, "%.$") then
        return false
    end
    local labels = 0
    for label in (domain .. "."):gmatch("([^.]*)%.") do
        if #label < 1 or #label > 63 or not find(label, "^%w[%w%-]*$")
            or find(label, "%-$") then
            return false
        end
        labels = labels + 1
    end
    return labels >= 2
end

local FORMATS = {
    uuid = valid_uuid,
    email = valid_email,
    ["date-time"] = valid_date_time,
    date = valid_date,
}

--[[ Validation ]]

local validate_node

local function type_ok(types, v, tv, is_arr, is_obj)
    if v == null then
        return types.null
    elseif tv == "boolean" then
        return types.boolean
    elseif tv == "string" then
        return types.string
    elseif tv == "number" then
        return (types.number and is_finite(v))
            or (types.integer and is_integer(v))
    elseif tv == "table" then
        return (types.array and is_arr) or (types.object and is_obj)
    end
    return false
end

local function validate_string(s, v, len, field)
    if s.minLength and len < s.minLength then
        return fail(field, "must be at least " .. plural(s.minLength, "character"))
    end
    if s.maxLength and len > s.maxLength then
        return fail(field, "must be at most " .. plural(s.maxLength, "character"))
    end
    if s.format and not FORMATS[s.format](v) then
        return fail(field, "is not a valid " .. s.format)
    end
    return true
end

local function validate_number(s, v, field)
    if s.minimum and v < s.minimum then
        return fail(field, "must be at least " .. number_text(s.minimum))
    end
    if s.maximum and v > s.maximum then
        return fail(field, "must be at most " .. number_text(s.maximum))
    end
    if s.exclusiveMinimum and v <= s.exclusiveMinimum then
        return fail(field, "must be greater than " .. number_text(s.exclusiveMinimum))
    end
    if s.exclusiveMaximum and v >= s.exclusiveMaximum then
        return fail(field, "must be less than " .. number_text(s.exclusiveMaximum))
    end
    return true
end

local function validate_array(s, v, count, field)
    if s.minItems and count < s.minItems then
        return fail(field, "must have at least " .. plural(s.minItems, "item"))
    end
    if s.maxItems and count > s.maxItems then
        return fail(field, "must have at most " .. plural(s.maxItems, "item"))
    end
    local items = s.items
    if items then
        for i = 1, count do
            local ok, err = validate_node(items, v[i], index_path(field, i))
            if not ok then
                return nil, err
            end
        end
    end
    return true
end

--[[
Visits member names in sorted order (declared properties and required
names; with additionalProperties false, also the value's own names), so the
first violation reported does not depend on table iteration order. Every
undeclared name of a closed object is a violation, so only the smallest
one matters: finding it is linear, where sorting hostile input would not be.
]]
local function validate_object(s, c, v, field)
    local props = s.properties
    local names = c.names
    local min_extra
    if s.additionalProperties == false then
        for k in pairs(v) do
            if not (props and props[k]) and (min_extra == nil or k < min_extra) then
                min_extra = k
            end
        end
    end
    local required = c.required
    for i = 1, #names do
        local name = names[i]
        if min_extra and min_extra < name then
            break
        end
        local pv = v[name]
        if pv == nil then
            if required[name] then
                return fail(key_path(field, name), "is required")
            end
        elseif props and props[name] then
            local ok, err = validate_node(props[name], pv, key_path(field, name))
            if not ok then
                return nil, err
            end
        end
    end
    if min_extra then
        return fail(key_path(field, min_extra), "unknown field")
    end
    return true
end

-- Returns true, or nil and an error record. s must have been checked.
validate_node = function(s, v, field)
    local c = compiled[s]
    if v == nil then
        return fail(field, "is required")
    end
    local tv = type(v)
    local is_arr, is_obj, count = false, false, 0
    if tv == "table" then
        is_arr, is_obj, count = value_shape(v)
    end
    local types = c.types
    if types then
        if not type_ok(types, v, tv, is_arr, is_obj) then
            if types.integer and tv == "number" and is_finite(v)
                and v == floor(v) then
                return fail(field, "is out of range")
            end
            return fail(field, c.type_reason)
        end
    elseif not (v == null or tv == "boolean" or tv == "string"
        or (tv == "number" and is_finite(v)) or is_arr or is_obj) then
        return fail(field, "must be a json value")
    end
    local len
    if tv == "string" then
        len = utf8_length(v)
        if not len then
            return fail(field, "must be valid utf-8")
        end
    end
    local enum = s.enum
    if enum then
        local found = false
        for i = 1, #enum do
            if enum[i] == v then
                found = true
                break
            end
        end
        if not found then
            return fail(field, c.enum_reason)
        end
    end
    if tv == "string" then
        return validate_string(s, v, len, field)
    elseif tv == "number" then
        return validate_number(s, v, field)
    elseif tv == "table" then
        if is_arr and c.apply_array then
            local ok, err = validate_array(s, v, count, field)
            if not ok then
                return nil, err
            end
        end
        if is_obj and c.apply_object then
            return validate_object(s, c, v, field)
        end
    end
    return true
end

--[[ Declaration checking ]]

local function decl_error(path, fmt, ...)
    error("schema: " .. format(fmt, ...) .. " at " .. path, 0)
end

local function describe(v)
    if type(v) == "string" then
        return format("%q", v)
    end
    return tostring(v)
end

-- Raises unless v is a strict array (keys 1..n); returns n.
local function check_array(v, path, what)
    if type(v) ~= "table" then
        decl_error(path, "%s must be an array", what)
    end
    local arr, _, n = table_shape(v)
    if not arr then
        decl_error(path, "%s must be an array", what)
    end
    return n
end

local function check_count(s, k, path)
    local v = s[k]
    if type(v) ~= "number" or not is_integer(v) or v < 0 then
        decl_error(path, "%s must be a non-negative integer", k)
    end
end

local function check_bound(s, k, path)
    local v = s[k]
    if type(v) ~= "number" or not is_finite(v) then
        decl_error(path, "%s must be a finite number", k)
    end
end

local function is_scalar(v)
    local tv = type(v)
    return v == null or tv == "string" or tv == "boolean"
        or (tv == "number" and is_finite(v))
end

-- True if v (an example or default) is made only of JSON values.
local function is_json_value(v, stack)
    if is_scalar(v) then
        return type(v) ~= "string" or utf8_length(v) ~= nil
    end
    if type(v) ~= "table" or stack[v] then
        return false
    end
    local arr, obj = value_shape(v)
    if not arr and not obj then
        return false
    end
    stack[v] = true
    for _, e in pairs(v) do
        if not is_json_value(e, stack) then
            return false
        end
    end
    stack[v] = nil
    return true
end

local function sorted_keys(t)
    local keys = {}
    for k in pairs(t) do
        keys[#keys + 1] = k
    end
    sort(keys)
    return keys
end

local function type_reason(list)
    local words = {}
    for i = 1, #list do
        words[i] = TYPE_NAMES[list[i]]
    end
    if #words == 1 then
        return "must be " .. words[1]
    end
    return "must be " .. concat(words, ", ", 1, #words - 1) .. " or " .. words[#words]
end

local check_node

local function check_type(s, path, c)
    local t = s.type
    local list
    if type(t) == "string" then
        list = { t }
    elseif type(t) == "table" then
        local n = check_array(t, path, "type")
        if n == 0 then
            decl_error(path, "type must not be empty")
        end
        list = t
    else
        decl_error(path, "type must be a string or an array of strings")
    end
    local set = {}
    for i = 1, #list do
        local name = list[i]
        if type(name) ~= "string" or not TYPE_NAMES[name] then
            decl_error(path, "unknown type %s", describe(name))
        end
        if set[name] then
            decl_error(path, "duplicate type %q", name)
        end
        set[name] = true
    end
    c.types = set
    c.type_reason = type_reason(list)
    c.apply_array = set.array
    c.apply_object = set.object
end

local function check_enum(s, path, c)
    local n = check_array(s.enum, path, "enum")
    if n == 0 then
        decl_error(path, "enum must not be empty")
    end
    local words = {}
    for i = 1, n do
        local e = s.enum[i]
        if not is_scalar(e) then
            decl_error(path, "enum values must be strings, numbers, booleans or null")
        end
        words[i] = scalar_text(e)
    end
    c.enum_reason = "must be one of: " .. concat(words, ", ")
end

local function check_properties(s, path, stack)
    local props = s.properties
    if type(props) ~= "table" then
        decl_error(path, "properties must be a table")
    end
    for k in pairs(props) do
        if type(k) ~= "string" then
            decl_error(path, "property names must be strings, got %s", describe(k))
        end
    end
    local names = sorted_keys(props)
    for i = 1, #names do
        check_node(props[names[i]], key_path(path .. ".properties", names[i]), stack)
    end
    return names
end

local function check_required(s, path)
    local n = check_array(s.required, path, "required")
    local set = {}
    for i = 1, n do
        local name = s.required[i]
        if type(name) ~= "string" then
            decl_error(path, "required must contain only strings")
        end
        if set[name] then
            decl_error(path, "duplicate required name %q", name)
        end
        if s.additionalProperties == false
            and not (s.properties and s.properties[name]) then
            decl_error(path, "required name %q is not a declared property "
                .. "and additionalProperties is false", name)
        end
        set[name] = true
    end
    return set
end

-- Checks the keywords of one schema table; children recurse via check_node.
local function check_keywords(s, path, stack)
    for k in pairs(s) do
        if type(k) ~= "string" then
            decl_error(path, "keyword must be a string, got %s", describe(k))
        end
    end
    local keys = sorted_keys(s)
    for i = 1, #keys do
        if not KEYWORDS[keys[i]] then
            decl_error(path, "unknown keyword %q", keys[i])
        end
    end

    local c = { apply_array = true, apply_object = true, required = {}, names = {} }
    if s.type ~= nil then
        check_type(s, path, c)
    end
    if s.enum ~= nil then
        check_enum(s, path, c)
    end
    for _, k in ipairs({ "minLength", "maxLength", "minItems", "maxItems" }) do
        if s[k] ~= nil then
            check_count(s, k, path)
        end
    end
    for _, k in ipairs({ "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum" }) do
        if s[k] ~= nil then
            check_bound(s, k, path)
        end
    end
    if s.format ~= nil and (type(s.format) ~= "string" or not FORMATS[s.format]) then
        decl_error(path, "unknown format %s", describe(s.format))
    end
    if s.description ~= nil and type(s.description) ~= "string" then
        decl_error(path, "description must be a string")
    end
    if s.additionalProperties ~= nil and type(s.additionalProperties) ~= "boolean" then
        decl_error(path, "additionalProperties must be a boolean")
    end
    if s.items ~= nil then
        check_node(s.items, path .. ".items", stack)
    end
    local names = {}
    if s.properties ~= nil then
        names = check_properties(s, path, stack)
    end
    if s.required ~= nil then
        c.required = check_required(s, path)
        local seen = {}
        for i = 1, #names do
            seen[names[i]] = true
        end
        for name in pairs(c.required) do
            if not seen[name] then
                names[#names + 1] = name
            end
        end
        sort(names)
    end
    c.names = names
    return c
end

-- Examples and defaults must be JSON and must satisfy their own schema.
local function check_examples(s, path)
    for _, k in ipairs({ "default", "example" }) do
        local v = s[k]
        if v ~= nil then
            if not is_json_value(v, {}) then
                decl_error(path, "%s must be a JSON value", k)
            end
            local ok, err = validate_node(s, v, k)
            if not ok then
                decl_error(path, "%s does not match the schema: %s %s", k, err.field, err.reason)
            end
        end
    end
end

check_node = function(s, path, stack)
    if type(s) ~= "table" then
        decl_error(path, "schema must be a table, got %s", type(s))
    end
    if compiled[s] then
        return
    end
    if stack[s] then
        decl_error(path, "cyclic schema")
    end
    stack[s] = true
    local c = check_keywords(s, path, stack)
    stack[s] = nil
    compiled[s] = c
    local ok, err = pcall(check_examples, s, path)
    if not ok then
        compiled[s] = nil
        error(err, 0)
    end
end

-- Raises a lauxlib-style argument error blaming the caller `level` frames up
-- from the public function (1 = its direct caller).
local function arg_error(n, fname, expected, got, level)
    error(format("bad argument #%d to '%s' (%s expected, got %s)",
        n, fname, expected, type(got)), 2 + (level or 1))
end

local function ensure_checked(spec, where, fname)
    if type(spec) ~= "table" then
        arg_error(1, fname, "table", spec, 2)
    end
    if where ~= nil and type(where) ~= "string" then
        arg_error(3, fname, "string", where, 2)
    end
    if not compiled[spec] then
        check_node(spec, where or "root", {})
    end
end

-- True if str is a JSON number literal: no "+", hex, inf, nan or spaces.
local function is_decimal(str)
    local int, rest = match(str, "^%-?(%d+)(.*)$")
    if not int then
        return false
    end
    rest = gsub(rest, "^%.%d+", "", 1)
    return rest == "" or find(rest, "^[eE][+-]?%d+$") ~= nil
end

-- The value of a string is_decimal accepted. LuaJIT's tonumber returns nil
-- when the exponent does not fit 32 bits ("1e4294967296"): such a number
-- is zero when its digits are or its exponent is negative, else too large.
local function decimal_value(str)
    local n = tonumber(str)
    if n then
        return n
    end
    local digits, sign = match(str, "^%-?([%d.]+)[eE]([+-]?)")
    if sign == "-" or not find(digits, "[1-9]") then
        return 0
    end
    return huge
end

-- Parses a parameter string as the first declared type it fits (boolean,
-- integer, number, then string). Returns value or nil, reason.
local function coerce_string(c, str)
    local types = c.types
    if not types then
        return str
    end
    local reason = c.type_reason
    if types.boolean then
        if str == "true" then
            return true
        elseif str == "false" then
            return false
        end
    end
    if types.integer and find(str, "^%-?%d+$") then
        local n = tonumber(str)
        if n >= -MAX_SAFE and n <= MAX_SAFE then
            return n + 0
        end
        reason = "is out of range"
    end
    if types.number and is_decimal(str) then
        local n = decimal_value(str)
        if is_finite(n) then
            return n + 0
        end
        reason = "is out of range"
    end
    if types.string then
        return str
    end
    return nil, reason
end

--[[ Public API ]]

--[[
schema.check(spec [, where]) -> true
Checks a declaration: known keywords only, well-typed keyword values, no
cycles, examples and defaults that satisfy their schema. Raises
"schema: <what> at <path>" otherwise; path starts at `where` (default
"root"). Successful results are cached per table.
]]
function _M.check(spec, where)
    if where ~= nil and type(where) ~= "string" then
        arg_error(2, "check", "string", where)
    end
    check_node(spec, where or "root", {})
    return true
end

--[[
schema.validate(spec, value [, where]) -> value | nil, err
Validates a decoded JSON value. err = { field = where .. path, reason = ... }
describes the first violation in a deterministic order; where defaults to
"value". A valid value may be false, so test err, not the first result.
Raises if spec is not a valid declaration.
]]
function _M.validate(spec, value, where)
    ensure_checked(spec, where, "validate")
    local ok, err = validate_node(spec, value, where or "value")
    if not ok then
        return nil, err
    end
    return value
end

-- coerce for a checked spec and a string: the value, or nil and the error.
local function coerce_checked(spec, str, where)
    local v, reason = coerce_string(compiled[spec], str)
    if v == nil then
        return fail(where, reason)
    end
    local ok, err = validate_node(spec, v, where)
    if not ok then
        return nil, err
    end
    return v
end

--[[
schema.coerce(spec, str [, where]) -> value | nil, err
Converts a path or query string to the declared scalar type, then
validates it. integer: ^-?%d+$ with magnitude below 2^53; number: a JSON
number literal (no hex, inf, nan, leading "+" or "."); boolean: "true" or
"false"; string and untyped: unchanged. With a type array the first of
boolean, integer, number, string that parses wins. Raises if str is not a
string or spec is not a valid declaration.
]]
function _M.coerce(spec, str, where)
    ensure_checked(spec, where, "coerce")
    if type(str) ~= "string" then
        arg_error(2, "coerce", "string", str)
    end
    return coerce_checked(spec, str, where or "value")
end

--[[
schema.check_object_of_strings(spec [, where]) -> true
Checks a params/query declaration: a valid object schema whose properties
all have scalar types (or no type), so every value can come from a string.
Raises "schema: <what> at <path>" otherwise.
]]
function _M.check_object_of_strings(spec, where)
    if where ~= nil and type(where) ~= "string" then
        arg_error(2, "check_object_of_strings", "string", where)
    end
    where = where or "root"
    check_node(spec, where, {})
    if param_checked[spec] then
        return true
    end
    if spec.type ~= "object" then
        decl_error(where, 'type must be "object"')
    end
    local props = spec.properties or {}
    local names = sorted_keys(props)
    for i = 1, #names do
        local t = props[names[i]].type
        local path = key_path(where .. ".properties", names[i])
        if type(t) == "string" then
            t = { t }
        end
        if t then
            local usable = false
            for j = 1, #t do
                if not SCALAR_TYPES[t[j]] then
                    decl_error(path, "type %q cannot be read from a string", t[j])
                end
                usable = usable or t[j] ~= "null"
            end
            if not usable then
                decl_error(path, "type null cannot be read from a string")
            end
        end
    end
    param_checked[spec] = true
    return true
end

--[[
schema.validate_object_of_strings(spec, tbl [, where]) -> new table | nil, err
Coerces each present member of tbl (name -> string; nil means {}) with its
property schema, reports missing required members and, when
additionalProperties is false, unknown ones; members without a property
schema are copied unchanged otherwise. Checks members in sorted name
order. A member that is not a string (e.g. a repeated query key the parser
turned into a table) fails with "must be a single value". Raises on a bad
declaration or if tbl is not a table with string keys.
]]
function _M.validate_object_of_strings(spec, tbl, where)
    if type(spec) ~= "table" then
        arg_error(1, "validate_object_of_strings", "table", spec)
    end
    if tbl ~= nil and type(tbl) ~= "table" then
        arg_error(2, "validate_object_of_strings", "table", tbl)
    end
    if where ~= nil and type(where) ~= "string" then
        arg_error(3, "validate_object_of_strings", "string", where)
    end
    if not param_checked[spec] then
        _M.check_object_of_strings(spec, where)
    end
    where = where or "value"
    tbl = tbl or {}
    local c = compiled[spec]
    local props = spec.properties or {}
    local required = c.required
    -- The names to check, in sorted order: the declared ones (c.names is
    -- sorted), and any others tbl has, sorted in with them.
    local names = c.names
    local extra = false
    for k in pairs(tbl) do
        if type(k) ~= "string" then
            error("bad argument #2 to 'validate_object_of_strings' (keys must be strings)", 2)
        end
        if props[k] == nil and not required[k] then
            extra = true
        end
    end
    if extra then
        local all, seen = {}, {}
        for i = 1, #names do
            all[i] = names[i]
            seen[names[i]] = true
        end
        for k in pairs(tbl) do
            if not seen[k] then
                all[#all + 1] = k
            end
        end
        sort(all)
        names = all
    end
    local paths = field_paths[c]
    if not paths then
        paths = {}
        field_paths[c] = paths
    end
    local known = paths[where]
    if not known then
        known = {}
        paths[where] = known
    end
    local out = {}
    local closed = spec.additionalProperties == false
    for i = 1, #names do
        local name = names[i]
        local v = tbl[name]
        local p = props[name]
        local field = known[name]
        if not field then
            field = key_path(where, name)
            if p ~= nil or required[name] then
                known[name] = field
            end
        end
        if v == nil then
            if required[name] then
                return fail(field, "is required")
            end
        elseif p then
            if type(v) ~= "string" then
                return fail(field, "must be a single value")
            end
            -- _M.coerce without its argument checks: p was checked with spec
            local cv, err = coerce_checked(p, v, field)
            if cv == nil then
                return nil, err
            end
            out[name] = cv
        elseif closed then
            return fail(field, "unknown field")
        else
            out[name] = v
        end
    end
    return out
end

--[[
schema.utf8_length(s) -> n | nil
Number of code points in s, or nil if s is not well-formed UTF-8.
]]
function _M.utf8_length(s)
    if type(s) ~= "string" then
        arg_error(1, "utf8_length", "string", s)
    end
    return utf8_length(s)
end

return _M
