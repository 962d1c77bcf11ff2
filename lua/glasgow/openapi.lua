--[[
glasgow.openapi: builds an OpenAPI 3.1.0 document from route declarations
and encodes it as deterministic JSON.

A route declaration is
    { method = "GET", path = "/v1/users/:id", handler = function,
      summary = "...", description = "...", tags = { ... },
      params = <object schema>, query = <object schema>, body = <schema>,
      responses = { [200] = { description = "...", schema = <schema> } } }
where only method, path and handler are mandatory; other fields are
ignored. Declarations are misuse-checked: a bad route raises
"openapi: <what>" (schema errors keep the "schema: ..." form of
glasgow.schema.check). The document holds copies of the schemas, so it can
be changed without touching the routes.
]]

local cjson = require "cjson"
local schema = require "glasgow.schema"

local _M = {}

local null = cjson.null
local type, pairs, ipairs, tostring, tonumber, error =
    type, pairs, ipairs, tostring, tonumber, error
local floor, huge = math.floor, math.huge
local find, format, gsub, lower, upper, sub =
    string.find, string.format, string.gsub, string.lower,
    string.upper, string.sub
local concat, sort = table.concat, table.sort

local METHODS = {
    GET = true, PUT = true, POST = true, DELETE = true, PATCH = true,
    HEAD = true, OPTIONS = true, TRACE = true,
}

local REASONS = {
    [200] = "OK", [201] = "Created", [202] = "Accepted", [204] = "No Content",
    [206] = "Partial Content", [301] = "Moved Permanently", [302] = "Found",
    [303] = "See Other", [304] = "Not Modified", [307] = "Temporary Redirect",
    [308] = "Permanent Redirect", [400] = "Bad Request",
    [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
    [405] = "Method Not Allowed", [409] = "Conflict", [410] = "Gone",
    [412] = "Precondition Failed", [413] = "Content Too Large",
    [415] = "Unsupported Media Type", [416] = "Range Not Satisfiable",
    [422] = "Unprocessable Content", [429] = "Too Many Requests",
    [500] = "Internal Server Error", [502] = "Bad Gateway",
    [503] = "Service Unavailable", [504] = "Gateway Timeout",
}

local ERROR_REF = "#/components/schemas/Error"

local function misuse(fmt, ...)
    error("openapi: " .. format(fmt, ...), 0)
end

-- Deep copy of a checked (hence acyclic) schema or JSON value.
local function copy(v)
    if type(v) ~= "table" then
        return v
    end
    local t = {}
    for k, e in pairs(v) do
        t[k] = copy(e)
    end
    return t
end

local function sorted_keys(t)
    local keys = {}
    for k in pairs(t) do
        keys[#keys + 1] = k
    end
    sort(keys)
    return keys
end

-- The envelope every error response uses; shared via components.
local function error_schema()
    return {
        type = "object",
        required = { "error" },
        properties = {
            error = {
                type = "object",
                required = { "code", "message" },
                properties = {
                    code = {
                        type = "string",
                        description = "Stable machine-readable error code.",
                    },
                    message = {
                        type = "string",
                        description = "Human-readable explanation.",
                    },
                    details = {
                        description = "Optional structured details; shape depends on the code.",
                    },
                    request_id = {
                        type = "string",
                        description = "Identifier of the request, for correlation with logs.",
                    },
                },
            },
        },
    }
end

local function json_content(s)
    return { ["application/json"] = { schema = s } }
end

--[[
Converts a router path to an OpenAPI template: ":name" and a final "*name"
segment become "{name}". Returns the template, the parameter names in path
order and a set of names bound by a wildcard.
]]
local function convert_path(path, label)
    local segs, start = {}, 1
    while true do
        local s, e = find(path, "/", start, true)
        if not s then
            segs[#segs + 1] = sub(path, start)
            break
        end
        segs[#segs + 1] = sub(path, start, s - 1)
        start = e + 1
    end
    local names, seen, wild = {}, {}, {}
    for i, seg in ipairs(segs) do
        local c = sub(seg, 1, 1)
        if c == ":" or c == "*" then
            local name = sub(seg, 2)
            if not find(name, "^[%a_][%w_]*$") then
                misuse("%s: bad parameter segment %q", label, seg)
            end
            if c == "*" then
                if i ~= #segs then
                    misuse("%s: wildcard %q must be the last segment", label, seg)
                end
                wild[name] = true
            end
            if seen[name] then
                misuse("%s: duplicate parameter %q", label, name)
            end
            seen[name] = true
            names[#names + 1] = name
            segs[i] = "{" .. name .. "}"
        elseif find(seg, "[{}]") then
            misuse("%s: bad path segment %q", label, seg)
        end
    end
    return concat(segs, "/"), names, wild
end

local function parameters(route, label, names, wild)
    local list = {}
    local props = {}
    if route.params ~= nil then
        schema.check_object_of_strings(route.params, label .. " params")
        props = route.params.properties or {}
        local in_path = {}
        for _, name in ipairs(names) do
            in_path[name] = true
        end
        for _, name in ipairs(sorted_keys(props)) do
            if not in_path[name] then
                misuse("%s: params declares %q, which is not in the path", label, name)
            end
        end
    end
    for _, name in ipairs(names) do
        local s = props[name]
        local p = {
            name = name,
            ["in"] = "path",
            required = true,
            schema = s and copy(s) or { type = "string" },
        }
        if s and s.description then
            p.description = s.description
        elseif wild[name] then
            p.description = "The rest of the path; may contain \"/\"."
        end
        list[#list + 1] = p
    end
    if route.query ~= nil then
        schema.check_object_of_strings(route.query, label .. " query")
        local qprops = route.query.properties or {}
        local required = {}
        for _, name in ipairs(route.query.required or {}) do
            required[name] = true
        end
        for _, name in ipairs(sorted_keys(qprops)) do
            local s = qprops[name]
            list[#list + 1] = {
                name = name,
                ["in"] = "query",
                required = required[name] == true,
                description = s.description,
                schema = copy(s),
            }
        end
    end
    if #list == 0 then
        return nil
    end
    return list
end

local function status_key(k, label)
    if type(k) == "number" then
        if k ~= floor(k) or k < 100 or k > 599 then
            misuse("%s: bad response status %s", label, tostring(k))
        end
        return format("%d", k), k
    end
    if type(k) == "string" then
        if find(k, "^[1-5]%d%d$") then
            return k, tonumber(k)
        elseif find(k, "^[1-5]XX$") then
            return k
        end
        if k == "default" then
            misuse("%s: the default response is reserved for the error envelope", label)
        end
    end
    misuse("%s: bad response status %s", label, tostring(k))
end

local function responses(route, label)
    local out = {}
    local declared = route.responses
    if declared == nil then
        out["200"] = { description = "OK" }
    else
        if type(declared) ~= "table" then
            misuse("%s: responses must be a table", label)
        end
        for k, r in pairs(declared) do
            local key, code = status_key(k, label)
            local rlabel = label .. " response " .. key
            if out[key] then
                misuse("%s: declared twice", rlabel)
            end
            if type(r) ~= "table" then
                misuse("%s: must be a table", rlabel)
            end
            for f in pairs(r) do
                if f ~= "description" and f ~= "schema" and f ~= "binary" then
                    misuse("%s: unknown field %s", rlabel, tostring(f))
                end
            end
            if r.description ~= nil and type(r.description) ~= "string" then
                misuse("%s: description must be a string", rlabel)
            end
            local resp = {
                description = r.description or REASONS[code] or "Response",
            }
            if r.schema ~= nil then
                schema.check(r.schema, rlabel)
                resp.content = json_content(copy(r.schema))
            elseif r.binary then
                -- raw bytes (a file download), as a streamed request body is
                resp.content = { ["application/octet-stream"] = { schema = { type = "string",
                                                                             format = "binary" } } }
            end
            out[key] = resp
        end
    end
    out.default = {
        description = "Error",
        content = json_content({ ["$ref"] = ERROR_REF }),
    }
    return out
end

local function check_string(route, k, label)
    local v = route[k]
    if v ~= nil and type(v) ~= "string" then
        misuse("%s: %s must be a string", label, k)
    end
    return v
end

-- Validates one declaration; returns method (lowercase), template, operation.
local function operation(route, index)
    if type(route) ~= "table" then
        misuse("route %s must be a table", tostring(index))
    end
    local method, path = route.method, route.path
    if type(method) ~= "string" or not METHODS[upper(method)] then
        misuse("route %s: bad method %s", tostring(index), tostring(method))
    end
    method = upper(method)
    if type(path) ~= "string" or sub(path, 1, 1) ~= "/" then
        misuse("route %s: path must be a string starting with \"/\"", tostring(index))
    end
    local label = method .. " " .. path
    if type(route.handler) ~= "function" then
        misuse("%s: handler must be a function", label)
    end
    local template, names, wild = convert_path(path, label)
    local op = {
        summary = check_string(route, "summary", label),
        description = check_string(route, "description", label),
        parameters = parameters(route, label, names, wild),
        responses = responses(route, label),
    }
    if route.tags ~= nil then
        if type(route.tags) ~= "table" then
            misuse("%s: tags must be an array of strings", label)
        end
        local tags = {}
        for i = 1, #route.tags do
            if type(route.tags[i]) ~= "string" then
                misuse("%s: tags must be an array of strings", label)
            end
            tags[i] = route.tags[i]
        end
        op.tags = tags
    end
    if route.body == "stream" then
        op.requestBody = {
            required = true,
            content = { ["application/octet-stream"] = { schema = { type = "string",
                                                                    format = "binary" } } },
        }
    elseif route.body ~= nil then
        schema.check(route.body, label .. " body")
        op.requestBody = {
            required = true,
            content = json_content(copy(route.body)),
        }
    end
    local id = gsub(lower(method) .. path, "[^%w]", "_")
    return lower(method), template, op, id
end

--[[
openapi.document(routes [, info]) -> document table
routes is an array (or any table) of route declarations; info is
{ title = "Glasgow API", version = "0", description = nil }. Raises on a
bad declaration or on two routes with the same method and template.
operationIds that collide after mangling get "_2", "_3", ... in order of
template then method.
]]
function _M.document(routes, info)
    if type(routes) ~= "table" then
        error("bad argument #1 to 'document' (table expected, got " .. type(routes) .. ")", 2)
    end
    if info ~= nil and type(info) ~= "table" then
        error("bad argument #2 to 'document' (table expected, got " .. type(info) .. ")", 2)
    end
    info = info or {}
    local doc_info = { title = "Glasgow API", version = "0" }
    for _, k in ipairs({ "title", "version", "description" }) do
        if info[k] ~= nil then
            if type(info[k]) ~= "string" then
                misuse("info.%s must be a string", k)
            end
            doc_info[k] = info[k]
        end
    end

    local ops = {}
    for index, route in pairs(routes) do
        local method, template, op, id = operation(route, index)
        ops[#ops + 1] = { method = method, template = template, op = op, id = id }
    end
    sort(ops, function(a, b)
        if a.template ~= b.template then
            return a.template < b.template
        end
        return a.method < b.method
    end)

    -- Templates that differ only in parameter names match the same requests.
    local paths, ids, shapes = {}, {}, {}
    for _, o in ipairs(ops) do
        local shape = o.method .. " " .. gsub(o.template, "{[^}]*}", "{}")
        if shapes[shape] then
            misuse("duplicate route %s %s (also %s)", upper(o.method), o.template, shapes[shape])
        end
        shapes[shape] = o.template
        local item = paths[o.template]
        if not item then
            item = {}
            paths[o.template] = item
        end
        local id, n = o.id, 1
        while ids[id] do
            n = n + 1
            id = o.id .. "_" .. n
        end
        ids[id] = true
        o.op.operationId = id
        item[o.method] = o.op
    end

    return {
        openapi = "3.1.0",
        info = doc_info,
        paths = paths,
        components = { schemas = { Error = error_schema() } },
    }
end

--[[ Deterministic JSON encoding ]]

--[[
How each known field encodes, so empty tables come out as {} or [] as
OpenAPI expects. A kind is { fields = { name = kind } } (an object whose
other members are "any"), { map = kind } (an object of kind values) or
{ array = kind }. "any" guesses from the shape: keys 1..n make an array,
string keys an object, and an empty table is {} unless the enclosing
schema says its type is "array" (for example and default).
]]
local KINDS = {}
KINDS.any = "any"
KINDS.object = { fields = {} }
KINDS.array_any = { array = "any" }
KINDS.schema = {
    fields = {
        properties = "schemas", items = "schema",
        required = "array_any", enum = "array_any",
    },
    examples = true,
}
KINDS.schemas = { map = "schema" }
KINDS.media = { fields = { schema = "schema" } }
KINDS.content = { map = "media" }
KINDS.response = { fields = { content = "content", headers = "object", links = "object" } }
KINDS.responses = { map = "response" }
KINDS.request_body = { fields = { content = "content" } }
KINDS.parameter = { fields = { schema = "schema" } }
KINDS.parameters = { array = "parameter" }
KINDS.operation = {
    fields = {
        tags = "array_any", parameters = "parameters",
        requestBody = "request_body", responses = "responses",
        security = "array_any", servers = "array_any",
    },
}
KINDS.path_item = {
    fields = {
        get = "operation", put = "operation", post = "operation",
        delete = "operation", options = "operation", head = "operation",
        patch = "operation", trace = "operation",
        parameters = "parameters", servers = "array_any",
    },
}
KINDS.paths = { map = "path_item" }
KINDS.components = { fields = { schemas = "schemas" } }
KINDS.document = {
    fields = {
        info = "object", paths = "paths", components = "components",
        tags = "array_any", servers = "array_any", security = "array_any",
    },
}

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b",
    ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
for i = 0, 31 do
    local c = string.char(i)
    ESCAPES[c] = ESCAPES[c] or format("\\u%04x", i)
end
local LINE_SEPARATORS = { ["\226\128\168"] = "\\u2028", ["\226\128\169"] = "\\u2029" }

local function encode_error(path, fmt, ...)
    error("openapi: cannot encode " .. format(fmt, ...) .. " at " .. path, 0)
end

local function encode_string(s, path)
    if not schema.utf8_length(s) then
        encode_error(path, "invalid utf-8")
    end
    s = gsub(s, '[%z\1-\31"\\]', ESCAPES)
    s = gsub(s, "\226\128[\168\169]", LINE_SEPARATORS)
    return '"' .. s .. '"'
end

local function encode_number(n, path)
    if n ~= n or n == huge or n == -huge then
        encode_error(path, "non-finite number")
    end
    if n == floor(n) and n > -1e15 and n < 1e15 then
        return format("%d", n)
    end
    local s = format("%.14g", n)
    if tonumber(s) ~= n then
        s = format("%.17g", n)
    end
    return s
end

-- Returns is_array, is_object, count (as glasgow.schema defines them).
local function shape(t)
    local n, max, arr, obj = 0, 0, true, true
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
    end
    return arr and max == n, obj, n
end

-- "array" if an empty example/default of this schema should be [].
local function empty_hint(s)
    local t = s.type
    if t == "array" then
        return "array"
    end
    if type(t) == "table" then
        local has_array, has_object = false, false
        for i = 1, #t do
            has_array = has_array or t[i] == "array"
            has_object = has_object or t[i] == "object"
        end
        if has_array and not has_object then
            return "array"
        end
    end
    return "object"
end

local encode_value

local function key_label(path, k)
    return path .. "." .. k
end

local function encode_object(t, kind, path, buf, stack)
    for k in pairs(t) do
        if type(k) ~= "string" then
            encode_error(path, "a table with key %s", tostring(k))
        end
    end
    local keys = sorted_keys(t)
    buf[#buf + 1] = "{"
    for i, k in ipairs(keys) do
        if i > 1 then
            buf[#buf + 1] = ","
        end
        buf[#buf + 1] = encode_string(k, path)
        buf[#buf + 1] = ":"
        local child, hint = "any", "object"
        if kind.map then
            child = kind.map
        elseif kind.fields and kind.fields[k] then
            child = kind.fields[k]
        elseif kind.examples and (k == "example" or k == "default") then
            hint = empty_hint(t)
        end
        encode_value(t[k], child, key_label(path, k), buf, stack, hint)
    end
    buf[#buf + 1] = "}"
end

local function encode_array(t, n, item_kind, path, buf, stack)
    buf[#buf + 1] = "["
    for i = 1, n do
        if i > 1 then
            buf[#buf + 1] = ","
        end
        encode_value(t[i], item_kind, path .. "[" .. (i - 1) .. "]", buf, stack, "object")
    end
    buf[#buf + 1] = "]"
end

encode_value = function(v, kind_name, path, buf, stack, hint)
    local tv = type(v)
    if v == null then
        buf[#buf + 1] = "null"
    elseif tv == "boolean" then
        buf[#buf + 1] = v and "true" or "false"
    elseif tv == "number" then
        buf[#buf + 1] = encode_number(v, path)
    elseif tv == "string" then
        buf[#buf + 1] = encode_string(v, path)
    elseif tv == "table" then
        if stack[v] then
            encode_error(path, "a cyclic table")
        end
        stack[v] = true
        local kind = KINDS[kind_name]
        local arr, obj, n = shape(v)
        if kind == "any" then
            if n == 0 then
                buf[#buf + 1] = hint == "array" and "[]" or "{}"
            elseif arr then
                encode_array(v, n, "any", path, buf, stack)
            elseif obj then
                encode_object(v, KINDS.object, path, buf, stack)
            else
                encode_error(path, "a table that is neither an array nor an object")
            end
        elseif kind.array then
            if not arr then
                encode_error(path, "a non-array table where an array is expected")
            end
            encode_array(v, n, kind.array, path, buf, stack)
        else
            encode_object(v, kind, path, buf, stack)
        end
        stack[v] = nil
    else
        encode_error(path, "a %s", tv)
    end
end

--[[
openapi.encode(doc) -> string
Compact JSON for a document built by openapi.document (or any table of the
same shape): object keys sorted bytewise, known array fields always [],
known object fields always {}, strings escaped per RFC 8259 (plus U+2028
and U+2029). The same document always gives the same bytes. Raises on
values JSON cannot hold: functions, cycles, NaN or infinities, invalid
UTF-8, tables mixing array and object keys.
]]
function _M.encode(doc)
    if type(doc) ~= "table" then
        error("bad argument #1 to 'encode' (table expected, got " .. type(doc) .. ")", 2)
    end
    local buf = {}
    encode_value(doc, "document", "$", buf, {}, "object")
    return concat(buf)
end

-- The $ref every operation's default response points at.
_M.ERROR_REF = ERROR_REF

return _M
