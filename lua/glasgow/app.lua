-- glasgow.app: route declarations and the request runner.
--
-- One instance lives in each generation's Lua state. The C host calls
-- declare(file, routes) for every route file, finalize() once to get the
-- routing table, then handle(id, req) for every request, inside the
-- request's coroutine. handle() always returns status, body (a string) and
-- the headers: a table, or in the common case a string that is the
-- Content-Type alone (the host adds it without walking a table); it never
-- raises.
local core = require "glasgow.core"
local errors = require "glasgow.errors"
local json = require "glasgow.json"
local schema = require "glasgow.schema"
local openapi = require "glasgow.openapi"
local docs = require "glasgow.docs"

local type, pairs, ipairs, tostring, xpcall, rawget = type, pairs, ipairs, tostring, xpcall, rawget
local format, find, lower = string.format, string.find, string.lower
local traceback = debug.traceback

local _M = {}

local routes = {}      -- declarations in id order; each { decl, where, ... }
local openapi_text     -- the encoded document, built once per generation
local default_max_body = (core.limits and core.limits.max_body_bytes) or 1048576

local METHODS = { GET = true, HEAD = true, POST = true, PUT = true, PATCH = true,
                  DELETE = true, OPTIONS = true }
local ROUTE_KEYS = { method = true, path = true, handler = true, summary = true,
                     description = true, tags = true, params = true, query = true,
                     body = true, responses = true, max_body = true, auth = true }

local function where_of(file, decl)
    if type(decl.handler) == "function" then
        local info = debug.getinfo(decl.handler, "S")
        if info and info.linedefined and info.linedefined > 0 then
            return file .. ":" .. info.linedefined
        end
    end
    return file .. ":1"
end

local function path_params(path)
    local names = {}
    for name in path:gmatch("/[:*]([%w_]+)") do
        names[#names + 1] = name
    end
    return names
end

local function check_route(file, index, decl)
    if type(decl) ~= "table" then
        error(format("%s:1: route %d: expected a table, got %s", file, index, type(decl)), 0)
    end
    local where = where_of(file, decl)
    local function fail(msg)
        error(format("%s: route %d (%s %s): %s", where, index, tostring(decl.method),
                     tostring(decl.path), msg), 0)
    end
    for k in pairs(decl) do
        if not ROUTE_KEYS[k] then
            fail(format("unknown field %q", tostring(k)))
        end
    end
    if type(decl.method) ~= "string" or not METHODS[decl.method] then
        fail("method must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
    end
    if type(decl.path) ~= "string" or decl.path:sub(1, 1) ~= "/" then
        fail("path must be a string starting with '/'")
    end
    if type(decl.handler) ~= "function" then
        fail("handler must be a function")
    end
    if decl.max_body ~= nil and (type(decl.max_body) ~= "number" or decl.max_body < 0
                                 or decl.max_body % 1 ~= 0) then
        fail("max_body must be a non-negative integer")
    end
    if decl.auth ~= nil and decl.auth ~= "bearer" and decl.auth ~= "optional"
        and decl.auth ~= "none" then
        fail('auth must be "bearer", "optional" or "none"')
    end
    if decl.body == "stream" then
        if decl.method == "GET" or decl.method == "HEAD" then
            fail('body = "stream" needs a method that takes a body')
        end
    elseif type(decl.body) == "string" then
        fail('body must be a schema or "stream"')
    end
    for _, part in ipairs({ "params", "query", "body" }) do
        if decl[part] ~= nil and decl[part] ~= "stream" then
            local checker = part == "body" and schema.check or schema.check_object_of_strings
            local ok, err = pcall(checker, decl[part], part)
            if not ok then
                fail(tostring(err))
            end
        end
    end
    for _, part in ipairs({ "params", "query" }) do
        local s = decl[part]
        if s ~= nil and type(s.properties) ~= "table" then
            fail(part .. " must be an object schema with properties")
        end
    end
    if decl.params then
        for _, name in ipairs(path_params(decl.path)) do
            if not decl.params.properties[name] then
                fail(format("path parameter %q has no schema in params", name))
            end
        end
    end
    return where
end

-- Adds the routes a file returned. Raises "file:line: message" on a bad one.
function _M.declare(file, list)
    if type(list) ~= "table" then
        error(format("%s:1: a route file must return a table of routes, got %s", file,
                     type(list)), 0)
    end
    local n = #list
    for k in pairs(list) do
        if type(k) ~= "number" or k < 1 or k > n or k % 1 ~= 0 then
            error(format("%s:1: the returned table must be an array of routes", file), 0)
        end
    end
    for i = 1, n do
        local decl = list[i]
        local where = check_route(file, i, decl)
        routes[#routes + 1] = { decl = decl, where = where, file = file }
    end
end

local function serve_openapi()
    return 200, openapi_text, { ["Content-Type"] = "application/json" }
end

-- Freezes the route set: adds GET /openapi.json and GET /docs (glasgow.docs)
-- and returns the routing table the C side builds its router from.
function _M.finalize()
    local decls, seen = {}, {}
    for i, r in ipairs(routes) do
        local d = r.decl
        -- same method and shape (parameter names aside) is a conflict; the C
        -- router would refuse it too, but here both places are known
        local shape = d.method .. " " .. d.path:gsub("/:[%w_]+", "/:"):gsub("/%*[%w_]+$", "/*")
        local other = seen[shape]
        if other then
            error(format("%s: %s %s conflicts with %s %s (declared at %s)", r.where, d.method,
                         d.path, other.decl.method, other.decl.path, other.where), 0)
        end
        seen[shape] = r
        decls[i] = d
    end
    openapi_text = openapi.encode(openapi.document(decls, {
        title = "Glasgow API", version = "1",
        -- the repository grants no licence: say so (README, "API docs page")
        license = { name = "Proprietary", identifier = "LicenseRef-Proprietary" },
    }))
    routes[#routes + 1] = {
        decl = { method = "GET", path = "/openapi.json", handler = serve_openapi },
        where = "glasgow.app:openapi",
        builtin = true,
    }
    -- the interactive page for it (glasgow.docs)
    routes[#routes + 1] = {
        decl = { method = "GET", path = "/docs", handler = docs.page },
        where = "glasgow.app:docs",
        builtin = true,
    }
    routes[#routes + 1] = {
        decl = { method = "GET", path = "/docs/:name", handler = docs.asset },
        where = "glasgow.app:docs",
        builtin = true,
    }
    local out = {}
    for i, r in ipairs(routes) do
        out[i] = {
            method = r.decl.method,
            path = r.decl.path,
            where = r.where,
            max_body = r.decl.max_body or (r.decl.body and default_max_body or 0),
            json = type(r.decl.body) == "table",
            stream = r.decl.body == "stream",
            bearer = r.decl.auth == "bearer",
        }
    end
    return out
end

-- Returns the declarations (for tests and tools).
function _M.routes()
    return routes
end

local error_body = errors.body

local NO_HEADERS = {}
-- handle()'s third result when the Content-Type is the only header
local JSON_TYPE = "application/json"
local TEXT_TYPE = "text/plain; charset=utf-8"

local function is_json_type(ct)
    if type(ct) ~= "string" then
        return false
    end
    ct = lower(ct)
    local mime = ct:match("^%s*([^;%s]+)")
    if mime ~= "application/json" and not (mime and find(mime, "^application/[%w%.%-]+%+json$")) then
        return false
    end
    local charset = ct:match(";%s*charset%s*=%s*\"?([%w%-_]+)")
    return charset == nil or charset == "utf-8"
end

local function validation_error(err)
    errors.raise(400, "validation_failed", err.field .. ": " .. err.reason,
                 { field = err.field, reason = err.reason })
end

local function check_headers(headers)
    for name, value in pairs(headers) do
        if type(name) ~= "string" or not find(name, "^[!#$%%&'*+%-.^_`|~%w]+$") then
            error("response header name is not a token: " .. tostring(name), 0)
        end
        if type(value) ~= "string" and type(value) ~= "number" then
            error("response header " .. name .. " must be a string", 0)
        end
        value = tostring(value)
        if find(value, "[%z\r\n]") then
            error("response header " .. name .. " contains CR, LF or NUL", 0)
        end
        headers[name] = value
    end
end

-- Request text as an error message may quote it: as is when it is UTF-8
-- (the body is JSON), else with every byte above 0x7F as %XX.
local function quotable(s)
    if schema.utf8_length(s) then
        return s
    end
    return (s:gsub("[\128-\255]", function(c) return format("%%%02X", c:byte()) end))
end

-- Runs route id for req; returns status, body string, headers.
local function run(id, req)
    if id == 0 then
        errors.raise(404, "not_found", "no route for " .. quotable(req.method .. " " .. req.path))
    elseif id == -1 then
        errors.raise(405, "method_not_allowed", quotable(req.method) .. " is not allowed here", nil,
                     { Allow = req.allow })
    end
    -- a token in the URL (?access_token=) was refused by the runtime
    -- (lhost_run) before this handler ran: req.query is built on first read
    local r = routes[id]
    local decl = r.decl
    if decl.params then
        local v, err = schema.validate_object_of_strings(decl.params, req.params, "params")
        if not v then
            validation_error(err)
        end
        req.params = v
    end
    if decl.query then
        local v, err = schema.validate_object_of_strings(decl.query, req.query, "query")
        if not v then
            validation_error(err)
        end
        req.query = v
    end
    if decl.body == "stream" then -- luacheck: ignore 542
        -- req.body_stream reads it (glasgow.core's lua_stream)
    elseif decl.body then
        if not is_json_type(req.headers["content-type"]) then
            errors.raise(415, "unsupported_media_type",
                         "the body must be JSON (Content-Type: application/json)")
        end
        local raw = req.body
        if raw == nil or raw == "" then
            errors.raise(400, "body_required", "a JSON body is required")
        end
        local value, err = json.decode(raw)
        if value == nil then
            errors.raise(400, "invalid_json", "the body is not valid JSON: " .. tostring(err))
        end
        local v, verr = schema.validate(decl.body, value, "body")
        if v == nil then
            validation_error(verr)
        end
        req.body = v
        req.raw_body = raw
    end

    local status, body, headers = decl.handler(req)
    -- rawget: req:respond() stores the flag in the table itself, and a
    -- plain read of a missing field would call the request's __index
    if rawget(req, "responded") then
        -- req:respond() started a streamed response: what the handler
        -- returns is ignored, and the fourth value tells the host so
        return 200, "", NO_HEADERS, true
    end
    if type(status) ~= "number" or status < 100 or status > 599 or status % 1 ~= 0 then
        error(format("%s: handler returned status %s", r.where, tostring(status)), 0)
    end
    local bt = type(body)
    if headers == nil then
        -- the common case: shared header tables the C side only reads
        if bt == "table" then
            return status, json.encode(body), JSON_TYPE
        elseif bt == "string" then
            return status, body, TEXT_TYPE
        elseif body == nil then
            return status, "", NO_HEADERS
        end
        headers = {}
    elseif type(headers) ~= "table" then
        error(format("%s: handler returned headers of type %s", r.where, type(headers)), 0)
    end
    if bt == "table" then
        body = json.encode(body)
        if headers["Content-Type"] == nil then
            headers["Content-Type"] = "application/json"
        end
    elseif bt == "string" then
        if headers["Content-Type"] == nil then
            headers["Content-Type"] = "text/plain; charset=utf-8"
        end
    elseif body == nil then
        body = ""
    else
        error(format("%s: handler returned a body of type %s", r.where, bt), 0)
    end
    check_headers(headers)
    return status, body, headers
end

local function on_error(err)
    if type(err) == "table" and type(err.status) == "number" and err.code then
        -- an error object (glasgow.errors) that maps to HTTP, or a table
        -- shaped like one
        return err
    end
    return { unexpected = true, message = traceback(tostring(err), 2) }
end

-- Entry point from C; never raises. A fourth result, true, says that the
-- handler returned normally after starting a streamed response.
function _M.handle(id, req)
    local ok, status, body, headers, streamed = xpcall(run, on_error, id, req)
    if ok then
        return status, body, headers, streamed
    end
    local e = status
    if not e.unexpected and e.status == 500 then
        -- an operational error that is nobody's fault we can name: log its
        -- cause, answer without it
        e = { unexpected = true, message = tostring(e) }
    end
    if e.unexpected then
        core.log("error", "handler failed", json.encode({ route = req.route, error = e.message }))
        return 500, error_body("internal", "internal error", nil, req.id), JSON_TYPE
    end
    local h = { ["Content-Type"] = "application/json" }
    if e.headers then
        for k, v in pairs(e.headers) do
            h[k] = v
        end
    end
    local code = e.code
    if type(code) ~= "string" then
        code = tostring(code)
    end
    local message = e.public_message or e.message or code
    return e.status, error_body(code, tostring(message), e.details, req.id), h
end

return _M
