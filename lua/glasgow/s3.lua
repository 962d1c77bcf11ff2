-- glasgow.s3: the object store for route handlers.
--
--   local s3 = require "glasgow.s3"
--   local r, err = s3.put(key, body_or_req, { content_type =, max_bytes =, sha256 = })
--   local obj, err = s3.get(key, { range = { first, last } })
--   local sent, err = obj:pipe(req, 200, headers)
--   local data, err = s3.read(key, { range = { first, last }, max = bytes })
--   s3.head(key), s3.delete(key), s3.list{...}, s3.list_uploads{...},
--   s3.abort_upload(key, upload_id)
--   s3.must.put(...) and so on: the same functions, raising err instead.
--
-- Keys are object keys in the one store bucket (S3_BUCKET). Every function
-- waits (the handler's coroutine yields; the worker serves others) and
-- returns its result or nil, err. An err is a glasgow.errors object {kind,
-- code, status, message, retryable, store_status, public_message}:
--   kind   "store" (the store refused: code is S3's Code, e.g. NoSuchKey),
--          "unavailable" (unreachable, too slow, 5xx or throttling after
--          the retries: retryable), "client" (the request's own body or
--          connection failed: code "closed", "timeout", "too_large",
--          "aborted"), "digest_mismatch", "invalid", "protocol"
--   status the HTTP status the error maps to when raised (404 for a missing
--          key, 416 for a bad range, 503 + Retry-After when retryable, 500
--          for what the client cannot fix, e.g. a wrong store secret)
-- The message may name store internals: it is logged, never sent; the
-- client reads public_message.
local core = require "glasgow.s3core"
local json = require "glasgow.json"
local errors = require "glasgow.errors"

local error, type, setmetatable, tostring, ipairs = error, type, setmetatable, tostring, ipairs

local _M = {}

local PUBLIC = {
    [404] = "the object does not exist",
    [413] = "the body is too large",
    [416] = "the requested range is not satisfiable",
    [408] = "the body did not arrive in time",
    [503] = "the object store is unavailable, retry shortly",
}

local NOT_FOUND = { NoSuchKey = true, NoSuchUpload = true, NoSuchBucket = true }

-- Builds the error object for the values glasgow.s3core returns.
local function make_error(kind, code, store_status, message, retryable)
    local e = { source = "s3", kind = tostring(kind), code = code,
                message = message ~= nil and tostring(message) or tostring(code),
                retryable = retryable or nil,
                store_status = store_status ~= 0 and store_status or nil }
    if kind == "store" then
        if NOT_FOUND[code] then
            e.status = 404
        elseif code == "InvalidRange" then
            e.status = 416
        elseif retryable then
            e.status = 503
        else
            e.status = 500 -- credentials, bucket or a request the client cannot fix
        end
    elseif kind == "network" or kind == "timeout" then
        e.kind, e.code, e.status = "unavailable", kind, 503
    elseif kind == "client" or kind == "too_large" then
        e.kind = "client"
        if kind == "too_large" then
            e.code = "too_large"
        end
        e.status = e.code == "too_large" and 413 or e.code == "timeout" and 408
            or e.code == "aborted" and 503 or 400
    elseif kind == "digest_mismatch" then
        e.status = 400
    elseif kind == "invalid" then
        e.status = 400
    else
        e.status = 500
    end
    if e.status == 503 then
        e.retryable = true
    end
    e.public_message = PUBLIC[e.status]
        or (kind == "digest_mismatch" and "the body does not match its digest")
        or (e.status == 400 and "the request cannot be stored") or "internal error"
    return errors.make(e)
end
_M.make_error = make_error

-- Turns core's (nil, kind, code, status, message, retryable) into nil, err.
local function result(v, ...)
    if v == nil then
        return nil, make_error(...)
    end
    return v, ...
end

local function range_of(opts, fname)
    if opts == nil then
        return nil, nil
    end
    if type(opts) ~= "table" then
        error("bad argument #2 to '" .. fname .. "' (table expected, got " .. type(opts) .. ")", 3)
    end
    local r = opts.range
    if r == nil then
        return nil, nil
    end
    if type(r) ~= "table" or type(r[1]) ~= "number" or (r[2] ~= nil and type(r[2]) ~= "number") then
        error("bad argument #2 to '" .. fname .. "' (range must be {first, last})", 3)
    end
    return r[1], r[2]
end

-- Stores body (a string, or the request whose streamed body flows through
-- C) under key. Returns {size, sha256, etag} or nil, err; on failure
-- nothing is left under key.
function _M.put(key, body, opts)
    opts = opts or {}
    if type(opts) ~= "table" then
        error("bad argument #3 to 'put' (table expected, got " .. type(opts) .. ")", 2)
    end
    if type(body) == "string" then
        return result(core.put(key, body, opts.content_type, opts.max_bytes, opts.sha256))
    elseif type(body) == "table" then
        return result(core.put_stream(key, opts.content_type, opts.max_bytes, opts.sha256))
    end
    error("bad argument #2 to 'put' (string or request expected, got " .. type(body) .. ")", 2)
end

local obj_mt = {}
obj_mt.__index = obj_mt

-- Starts the streamed response (status, headers) with the object's bytes
-- as its body; returns the bytes sent or nil, err (a store failure midway
-- cuts the connection: the client never sees a complete-looking body).
function obj_mt:pipe(req, status, headers)
    return result(core.pipe(self.handle, req, status or self.status, headers))
end

-- Stops the transfer without sending anything (also done when the request
-- ends, or when the object is garbage).
function obj_mt:close()
    core.close(self.handle)
end

-- Starts reading key (opts.range = {first, last}, last optional); returns,
-- once the store has answered with headers, an object with status, size
-- (the whole object), length (this answer's body), first and last (a
-- range), etag, last_modified and content_type, and the methods pipe and
-- close. nil, err for a missing key (code NoSuchKey, status 404) or a bad
-- range (416).
local function get_result(h, info, ...)
    if h == nil then
        return nil, make_error(info, ...)
    end
    info.handle = h
    return setmetatable(info, obj_mt)
end

function _M.get(key, opts)
    local first, last = range_of(opts, "get")
    return get_result(core.get(key, first, last))
end

-- Reads a whole small object (at most opts.max or GLASGOW_S3_READ_MAX_BYTES
-- bytes, else a too_large error) into a string.
function _M.read(key, opts)
    local first, last = range_of(opts, "read")
    return result(core.read(key, first, last, opts and opts.max))
end

-- Returns {size, etag, last_modified, content_type} or nil, err.
function _M.head(key)
    return result(core.head(key))
end

-- Deletes key; true also when it was already absent.
function _M.delete(key)
    return result(core.delete(key))
end

-- Lists objects: opts {prefix, continuation, max_keys}; returns
-- {objects = {{key, size, etag, last_modified}, ...}, truncated,
-- continuation} (pass continuation back for the next page).
-- Lists encode as JSON arrays even when empty.
local function with_array(field, r, ...)
    if r ~= nil then
        setmetatable(r[field], json.array_mt)
        return r
    end
    return result(r, ...)
end

function _M.list(opts)
    opts = opts or {}
    return with_array("objects", core.list(opts.prefix, opts.continuation, opts.max_keys))
end

-- Lists multipart uploads in progress (for glasgow gc): opts {prefix,
-- key_marker, upload_id_marker, max_uploads}; returns {uploads = {{key,
-- upload_id, initiated}, ...}, truncated, key_marker, upload_id_marker}.
function _M.list_uploads(opts)
    opts = opts or {}
    return with_array("uploads", core.list_uploads(opts.prefix, opts.key_marker,
                                                   opts.upload_id_marker, opts.max_uploads))
end

-- Aborts a multipart upload; true also when it is already gone.
function _M.abort_upload(key, upload_id)
    return result(core.abort_upload(key, upload_id))
end

-- The store bucket: whether it answers, and creating it.
function _M.head_bucket()
    return result(core.head_bucket())
end

function _M.create_bucket()
    return result(core.create_bucket())
end

-- True when an object store is configured for this process.
function _M.configured()
    return core.configured()
end

-- The raising variant: s3.must.put(...) returns what s3.put returns, or
-- raises err (which answers its status when a handler lets it through).
_M.must = {}
for _, name in ipairs({ "put", "get", "read", "head", "delete", "list", "list_uploads",
                        "abort_upload", "head_bucket", "create_bucket" }) do
    local f = _M[name]
    _M.must[name] = function(...)
        local v, err = f(...)
        if v == nil then
            error(err, 0)
        end
        return v
    end
end

return _M
