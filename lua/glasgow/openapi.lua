--[[
glasgow.openapi: builds an OpenAPI 3.1.0 document from route declarations
and encodes it with glasgow.json.

A route declaration is
    { method = "GET", path = "/v1/users/:id", handler = function,
      summary = "...", description = "...", tags = { ... },
      auth = "bearer" | "optional" | "none",
      params = <object schema>, query = <object schema>, body = <schema>,
      responses = { [200] = { description = "...", schema = <schema> },
                    [409] = { description = "..." } } }
where only method, path and handler are mandatory; other fields are
ignored. auth (default "none") gives the operation's security: the bearer
scheme of components.securitySchemes, required or optional, or none.
Every operation lists the error responses its declaration makes possible
(see derived_errors) plus those it declares; an error status declared
without a schema gets the shared Error envelope, and one declared false is
left out. Declarations are
misuse-checked: a bad route raises "openapi: <what>" (schema errors keep
the "schema: ..." form of glasgow.schema.check). The document holds copies
of the schemas, so it can be changed without touching the routes.
]]

local json = require "glasgow.json"
local schema = require "glasgow.schema"

local _M = {}

local null = json.null
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
    [405] = "Method Not Allowed", [408] = "Request Timeout", [409] = "Conflict", [410] = "Gone",
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

-- The name of the bearer scheme in components.securitySchemes.
local BEARER = "bearerAuth"

-- What a route's auth field may say: "bearer" (a token is required),
-- "optional" (a token changes what the call may do) or "none" (public, the
-- default).
local AUTH = { bearer = true, optional = true, none = true }

-- Headers an error response carries, by status.
local function error_headers(code)
    if code == 401 then
        return { ["WWW-Authenticate"] = {
            description = "The bearer challenge (RFC 6750), with error=\"invalid_token\" " ..
                          "when a token was sent but not accepted.",
            schema = { type = "string" } } }
    elseif code == 429 or code == 503 then
        return { ["Retry-After"] = {
            description = "Seconds to wait before retrying, when known.",
            schema = { type = "integer", minimum = 1 } } }
    end
    return nil
end

local function error_response(code, description)
    return {
        description = description,
        headers = error_headers(code),
        content = json_content({ ["$ref"] = ERROR_REF }),
    }
end

--[[
The errors a route's declaration makes possible, as { [status] = text }:
400 always (a malformed request; and what is validated before the
handler runs), 401 when it takes a token, 404 when its path names
something, 413 when it takes a body, 415 when that body is JSON, 503
always (a server shutting down; a database that cannot answer the token
lookup). What only the handler knows (403, 409, 429, ...) the route
declares in responses; one of these it cannot give it declares false
([404] = false: a path parameter that names nothing to look up).
]]
local function derived_errors(route, names, auth)
    local checked = {}
    if route.params ~= nil then
        checked[#checked + 1] = "a path parameter"
    end
    if route.query ~= nil then
        checked[#checked + 1] = "the query string"
    end
    if type(route.body) == "table" then
        checked[#checked + 1] = "the JSON body"
    end
    local bad = "The request is malformed"
    if #checked > 0 then
        bad = bad .. ", or " .. concat(checked, " or ") ..
              " does not validate (error.details names the field and the reason)"
    end
    local out = { [400] = bad .. "." }
    if auth == "bearer" then
        out[401] = "The bearer token is missing, malformed, unknown, expired or revoked."
    elseif auth == "optional" then
        out[401] = "A bearer token was sent and is malformed, unknown, expired or revoked."
    end
    if #names > 0 then
        out[404] = "Nothing at this path: what it names does not exist, or the caller may " ..
                   "not see it."
    end
    if route.body ~= nil then
        out[413] = "The body is larger than this operation accepts."
    end
    if type(route.body) == "table" then
        out[415] = "The body is not JSON (send Content-Type: application/json)."
    end
    if auth ~= "none" then
        out[503] = "The server is shutting down, or the database is unavailable; retry."
    else
        out[503] = "The server is shutting down; retry."
    end
    return out
end

local function responses(route, label, derived)
    local out, removed = {}, {}
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
            if out[key] or removed[key] then
                misuse("%s: declared twice", rlabel)
            end
            if r == false then
                -- a derived error this route cannot give
                if not (code and derived[code]) then
                    misuse("%s: false removes a derived error, and %s is not one", rlabel, key)
                end
                removed[key] = true
                goto continue
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
            local description = r.description or REASONS[code] or "Response"
            local resp
            if r.schema ~= nil then
                schema.check(r.schema, rlabel)
                resp = { description = description, content = json_content(copy(r.schema)) }
            elseif r.binary then
                -- raw bytes (a file download), as a streamed request body is
                resp = { description = description,
                         content = { ["application/octet-stream"] = {
                             schema = { type = "string", format = "binary" } } } }
            elseif code and code >= 400 then
                -- an error the handler gives: the shared envelope
                resp = error_response(code, description)
            else
                resp = { description = description }
            end
            out[key] = resp
            ::continue::
        end
    end
    for code, text in pairs(derived) do
        local key = format("%d", code)
        if out[key] == nil and not removed[key] then
            out[key] = error_response(code, text)
        end
    end
    out.default = {
        description = "Any other error (500 for a fault of the server).",
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
    local auth = route.auth
    if auth == nil then
        auth = "none"
    elseif not AUTH[auth] then
        misuse("%s: auth must be \"bearer\", \"optional\" or \"none\", got %s", label,
               tostring(auth))
    end
    local op = {
        summary = check_string(route, "summary", label),
        description = check_string(route, "description", label),
        parameters = parameters(route, label, names, wild),
        responses = responses(route, label, derived_errors(route, names, auth)),
    }
    if auth == "bearer" then
        op.security = { { [BEARER] = {} } }
    elseif auth == "optional" then
        op.security = { { [BEARER] = {} }, {} }
    else
        op.security = {}
    end
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
{ title = "Glasgow API", version = "0", description = nil, license = nil }
(license: { name = ..., identifier = SPDX or url = ... }). Raises on a
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
    if info.license ~= nil then
        local l = info.license
        if type(l) ~= "table" or type(l.name) ~= "string" then
            misuse("info.license must be a table with a name")
        end
        doc_info.license = { name = l.name }
        for _, k in ipairs({ "identifier", "url" }) do
            if l[k] ~= nil and type(l[k]) ~= "string" then
                misuse("info.license.%s must be a string", k)
            end
            doc_info.license[k] = l[k]
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
        -- relative: the API is where the document is, whatever name and
        -- port (or proxy) it was reached through
        servers = { { url = "/", description = "This server" } },
        paths = paths,
        components = {
            schemas = { Error = error_schema() },
            securitySchemes = {
                [BEARER] = {
                    type = "http",
                    scheme = "bearer",
                    description = "An opaque token from POST /v1/auth/token, sent as " ..
                                  "\"Authorization: Bearer <token>\". Never in the URL: " ..
                                  "a query parameter access_token is refused with 401 " ..
                                  "on every route.",
                },
            },
        },
    }
end

--[[ Encoding: glasgow.json, with every table marked ]]

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
KINDS.array_object = { array = "object" }
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
KINDS.header = { fields = { schema = "schema" } }
KINDS.headers = { map = "header" }
KINDS.response = { fields = { content = "content", headers = "headers", links = "object" } }
KINDS.responses = { map = "response" }
KINDS.request_body = { fields = { content = "content" } }
KINDS.parameter = { fields = { schema = "schema" } }
KINDS.parameters = { array = "parameter" }
-- a security requirement: scheme name -> array of scopes
KINDS.requirement = { map = "array_any" }
KINDS.security = { array = "requirement" }
KINDS.operation = {
    fields = {
        tags = "array_any", parameters = "parameters",
        requestBody = "request_body", responses = "responses",
        security = "security", servers = "array_object",
    },
}
KINDS.path_item = {
    fields = {
        get = "operation", put = "operation", post = "operation",
        delete = "operation", options = "operation", head = "operation",
        patch = "operation", trace = "operation",
        parameters = "parameters", servers = "array_object",
    },
}
KINDS.paths = { map = "path_item" }
KINDS.components = {
    fields = { schemas = "schemas", responses = "responses", securitySchemes = "object_map" },
}
KINDS.object_map = { map = "object" }
KINDS.document = {
    fields = {
        info = "object", paths = "paths", components = "components",
        tags = "array_object", servers = "array_object", security = "security",
    },
}

local function encode_error(path, fmt, ...)
    error("openapi: cannot encode " .. format(fmt, ...) .. " at " .. path, 0)
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

local mark_value

local function mark_object(t, kind, path, stack)
    local out = json.object({})
    for k, v in pairs(t) do
        if type(k) ~= "string" then
            encode_error(path, "a table with key %s", tostring(k))
        end
        if not schema.utf8_length(k) then
            encode_error(path, "invalid utf-8")
        end
        local child, hint = "any", "object"
        if kind.map then
            child = kind.map
        elseif kind.fields and kind.fields[k] then
            child = kind.fields[k]
        elseif kind.examples and (k == "example" or k == "default") then
            hint = empty_hint(t)
        end
        out[k] = mark_value(v, child, path .. "." .. k, stack, hint)
    end
    return out
end

local function mark_array(t, n, item_kind, path, stack)
    local out = json.array({})
    for i = 1, n do
        out[i] = mark_value(t[i], item_kind, path .. "[" .. (i - 1) .. "]", stack, "object")
    end
    return out
end

-- A copy of v in which every table carries glasgow.json's array or object
-- mark; raises "openapi: cannot encode ... at $.path" on what JSON cannot
-- hold, naming where it is.
mark_value = function(v, kind_name, path, stack, hint)
    local tv = type(v)
    if v == null or tv == "boolean" then
        return v
    elseif tv == "number" then
        if v ~= v or v == huge or v == -huge then
            encode_error(path, "non-finite number")
        end
        return v
    elseif tv == "string" then
        if not schema.utf8_length(v) then
            encode_error(path, "invalid utf-8")
        end
        return v
    elseif tv ~= "table" then
        encode_error(path, "a %s", tv)
    end
    if stack[v] then
        encode_error(path, "a cyclic table")
    end
    stack[v] = true
    local kind = KINDS[kind_name]
    local arr, obj, n = shape(v)
    local out
    if kind == "any" then
        if n == 0 then
            out = hint == "array" and json.array({}) or json.object({})
        elseif arr then
            out = mark_array(v, n, "any", path, stack)
        elseif obj then
            out = mark_object(v, KINDS.object, path, stack)
        else
            encode_error(path, "a table that is neither an array nor an object")
        end
    elseif kind.array then
        if not arr then
            encode_error(path, "a non-array table where an array is expected")
        end
        out = mark_array(v, n, kind.array, path, stack)
    else
        out = mark_object(v, kind, path, stack)
    end
    stack[v] = nil
    return out
end

--[[
openapi.encode(doc) -> string
Compact JSON for a document built by openapi.document (or any table of the
same shape), written by glasgow.json: object keys sorted bytewise, known
array fields always [], known object fields always {}. The same document
always gives the same bytes. Raises "openapi: cannot encode ... at $.path"
on values JSON cannot hold: functions, cycles, NaN or infinities, invalid
UTF-8, tables mixing array and object keys. The document is not changed.
]]
function _M.encode(doc)
    if type(doc) ~= "table" then
        error("bad argument #1 to 'encode' (table expected, got " .. type(doc) .. ")", 2)
    end
    return json.encode(mark_value(doc, "document", "$", {}, "object"))
end

-- The $ref every operation's default response points at.
_M.ERROR_REF = ERROR_REF

return _M
