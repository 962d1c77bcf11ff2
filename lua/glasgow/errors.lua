-- glasgow.errors: the one error contract of the Lua API, and the error body.
--
-- Every module reports a failure the same way. An operational failure (the
-- database is down, the object is missing, the hashing queue is full, the
-- password is too long) is returned as nil, err; misuse by the caller
-- (a wrong argument type, a bad option) raises a string, like Lua's own
-- "bad argument" errors. Every err is a table with this module's metatable
-- (errors.is tells) and these fields:
--
--   kind      string, what failed: "http" for one a handler raises with
--             glasgow.fail; glasgow.db, glasgow.s3 and glasgow.password
--             list their own kinds
--   message   string, what happened, for the log: it may name internals
--             (tables, hosts, OpenSSL's reason) and is never sent
--   status    the HTTP status the error answers when raised, where it maps
--             to one
--   code      the error body's code (glasgow.s3: the store's Code)
--   retryable true when the same call may succeed shortly; such an error
--             carries headers["Retry-After"]
--   public_message  what a client reads instead of message, when they differ
--   details   the error body's details (JSON), headers the response's
--   source    the module that made it ("db", "s3", "password"), for logs
--
-- An error object raised in a handler answers its status with the standard
-- body (errors.body); anything else raised becomes a 500 whose cause is only
-- logged.
local type, tostring, setmetatable, getmetatable, error = type, tostring, setmetatable,
    getmetatable, error
local concat = table.concat
local encode -- glasgow.json's, loaded when first needed (password hashing
             -- and the unit tests use this module without the codec)

local _M = {}

local mt = {}
mt.__index = mt
mt.__tostring = function(e)
    local parts = {}
    if e.source then
        parts[#parts + 1] = e.source .. ":"
    end
    if e.status then
        parts[#parts + 1] = tostring(e.status)
    end
    if e.kind ~= "http" then
        parts[#parts + 1] = tostring(e.kind)
    end
    local code = e.sqlstate or e.code
    if code ~= nil and code ~= e.kind then
        parts[#parts + 1] = tostring(code)
    end
    return concat(parts, " ") .. ": " .. tostring(e.message)
end

local function check_status(status, fname, arg)
    if type(status) ~= "number" or status < 400 or status > 599 or status % 1 ~= 0 then
        error("bad argument #" .. arg .. " to '" .. fname .. "' (HTTP error status expected)", 3)
    end
end

-- Returns a new error object of kind "http"; status is an HTTP status
-- (400..599), code a string, message (default: code) what the client reads.
function _M.new(status, code, message, details)
    check_status(status, "new", 1)
    if type(code) ~= "string" then
        error("bad argument #2 to 'new' (string expected)", 2)
    end
    return setmetatable({
        kind = "http",
        status = status,
        code = code,
        message = message or code,
        details = details,
    }, mt)
end

-- Raises a new error object of kind "http" (never returns).
function _M.raise(status, code, message, details, headers)
    local e = _M.new(status, code, message, details)
    e.headers = headers
    error(e, 0)
end

-- Returns fields, a table with at least kind and message (strings), as an
-- error object; status, when given, must be an HTTP error status. A
-- retryable error without a Retry-After header gets "Retry-After: 1". For
-- the modules that report operational failures; raises on a malformed table.
function _M.make(fields)
    if type(fields) ~= "table" or getmetatable(fields) ~= nil then
        error("bad argument #1 to 'make' (plain table expected)", 2)
    end
    if type(fields.kind) ~= "string" or type(fields.message) ~= "string" then
        error("bad argument #1 to 'make' (kind and message must be strings)", 2)
    end
    if fields.status ~= nil then
        check_status(fields.status, "make", 1)
    end
    if fields.retryable then
        fields.retryable = true
        local h = fields.headers
        if h == nil then
            fields.headers = { ["Retry-After"] = "1" }
        elseif h["Retry-After"] == nil then
            h["Retry-After"] = "1"
        end
    else
        fields.retryable = nil
    end
    return setmetatable(fields, mt)
end

-- Returns true when e is an error object made here.
function _M.is(e)
    return getmetatable(e) == mt
end

-- The one error metatable (for modules that check identity).
_M.mt = mt

-- Returns the standard error body as JSON text:
--   {"error":{"code":..,"message":..,"details":..,"request_id":..}}
-- with the members in this order, exactly as the C side writes it
-- (lhost_error_body): details and request_id are null when nil.
function _M.body(code, message, details, request_id)
    if type(code) ~= "string" or type(message) ~= "string" then
        error("bad argument to 'body' (code and message must be strings)", 2)
    end
    if encode == nil then
        encode = require("glasgow.json").encode
    end
    return concat({
        '{"error":{"code":', encode(code),
        ',"message":', encode(message),
        ',"details":', details == nil and "null" or encode(details),
        ',"request_id":', request_id == nil and "null" or encode(request_id),
        "}}",
    })
end

return _M
