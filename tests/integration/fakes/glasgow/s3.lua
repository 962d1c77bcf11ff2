-- A FAKE of the glasgow.s3 binding, for tests only: objects are files in
-- the directory GLASGOW_FAKE_S3_DIR. It follows the binding's Lua contract
-- (lua/glasgow/s3.lua: put / get / head / delete / list / list_uploads /
-- abort_upload, errors as glasgow.errors objects {kind, code, status,
-- message, retryable}),
-- reading and writing bodies through req.body_stream and req:respond, so
-- that the file routes and `glasgow gc` can be tested against the real
-- PostgreSQL and the real streamed bodies before the binding lands. It is
-- not an S3 server and tests nothing about S3.
--
-- Faults: a file GLASGOW_FAKE_S3_DIR/.fail holding operation names
-- ("put", "get", "delete", "list") makes those fail as a store outage;
-- .delay_ms holds a delay every put waits (to widen race windows).
local glasgow = require "glasgow"
local crypto = require "glasgow.crypto"
local errors = require "glasgow.errors"

-- An err as glasgow.s3 makes it: the one error metatable (glasgow.errors).
local function fault(fields)
    fields.source = "s3"
    fields.message = fields.message or fields.code or fields.kind
    return errors.make(fields)
end

local _M = {}

local DIR = os.getenv("GLASGOW_FAKE_S3_DIR")

local function path(key)
    return DIR .. "/" .. key:gsub("/", "~")
end

local function read(p)
    local f = io.open(p, "rb")
    if not f then
        return nil
    end
    local s = f:read("*a")
    f:close()
    return s
end

local function failing(op)
    local s = read(DIR .. "/.fail") or ""
    if s:find(op, 1, true) then
        return nil, fault({ kind = "unavailable", code = "network", status = 503,
                            message = "fake store outage", retryable = true })
    end
    return true
end

local function missing()
    return nil, fault({ kind = "store", code = "NoSuchKey", status = 404, message = "no such key" })
end

function _M.configured()
    return DIR ~= nil
end

function _M.put(key, req, opts)
    local delay = tonumber(read(DIR .. "/.delay_ms") or "")
    if delay then
        glasgow.sleep(delay)
    end
    local ok, err = failing("put")
    if not ok then
        return nil, err
    end
    local body
    if type(req) == "string" then
        body = req
    elseif req.body_stream then
        -- the request's streamed body, read as the binding's C sink would
        local parts, n = {}, 0
        while true do
            local chunk, rerr = req.body_stream:read(65536)
            if not chunk then
                if rerr then
                    -- rerr: a glasgow.errors object of the stream; the
                    -- binding reports its kind as the code, as here
                    return nil, fault({ kind = "client", code = rerr.kind, status = rerr.status })
                end
                break
            end
            n = n + #chunk
            if opts.max_bytes and n > opts.max_bytes then
                return nil, fault({ kind = "client", code = "too_large", status = 413 })
            end
            parts[#parts + 1] = chunk
        end
        body = table.concat(parts)
    else
        body = req.body or ""
    end
    if opts.max_bytes and #body > opts.max_bytes then
        return nil, fault({ kind = "client", code = "too_large", status = 413 })
    end
    local sha = crypto.hex(crypto.sha256(body))
    if opts.sha256 and opts.sha256 ~= sha then
        return nil, fault({ kind = "digest_mismatch", status = 400 })
    end
    local f = assert(io.open(path(key), "wb"))
    f:write(body)
    f:close()
    return { size = #body, sha256 = sha, etag = '"' .. sha:sub(1, 32) .. '"' }
end

function _M.head(key)
    local ok, err = failing("get")
    if not ok then
        return nil, err
    end
    local s = read(path(key))
    if not s then
        return missing()
    end
    return { size = #s }
end

function _M.get(key, opts)
    local ok, err = failing("get")
    if not ok then
        return nil, err
    end
    local s = read(path(key))
    if not s then
        return missing()
    end
    local first, last = 0, #s - 1
    if opts and opts.range then
        first, last = opts.range[1], opts.range[2]
    end
    local part = s:sub(first + 1, last + 1)
    return {
        status = opts and opts.range and 206 or 200, size = #s, length = #part,
        -- answers the request with the bytes, as the binding does
        pipe = function(_, req, status, headers)
            local w = req:respond(status, headers, #part)
            local written, werr = w:write(part)
            if not written then
                return nil, fault({ kind = "client", code = werr.kind })
            end
            w:close()
            return #part
        end,
    }
end

function _M.delete(key)
    local ok, err = failing("delete")
    if not ok then
        return nil, err
    end
    os.remove(path(key))
    return true
end

-- Every object; last_modified is what the file's name says it is when it
-- ends in "@<epoch>" (tests age objects that way), else now.
function _M.list(opts)
    local ok, err = failing("list")
    if not ok then
        return nil, err
    end
    local core = require "glasgow.core"
    local names = assert(core.listdir(DIR))
    local keys = {}
    for _, n in ipairs(names) do
        if n:sub(1, 1) ~= "." then
            local age = tonumber(read(DIR .. "/.age~" .. n) or "") or 0
            keys[#keys + 1] = { key = n:gsub("~", "/"), size = 0,
                                last_modified = os.time() - age }
        end
    end
    table.sort(keys, function(a, b) return a.key < b.key end)
    local from = opts and tonumber(opts.continuation) or 1
    local max = opts and opts.max_keys or 1000
    local page = {}
    for i = from, math.min(#keys, from + max - 1) do
        page[#page + 1] = keys[i]
    end
    local more = from + max <= #keys
    return { objects = page, truncated = more, continuation = more and tostring(from + max) or nil }
end

-- Unfinished multipart uploads: lines "KEY UPLOAD_ID AGE_SECONDS" in
-- GLASGOW_FAKE_S3_DIR/.uploads; aborting one removes its line.
local function uploads()
    local out = {}
    for line in (read(DIR .. "/.uploads") or ""):gmatch("[^\n]+") do
        local key, id, age = line:match("^(%S+) (%S+) (%d+)$")
        if key then
            out[#out + 1] = { key = key, upload_id = id, initiated = os.time() - tonumber(age) }
        end
    end
    return out
end

function _M.list_uploads()
    local ok, err = failing("list")
    if not ok then
        return nil, err
    end
    return { uploads = uploads(), truncated = false }
end

function _M.abort_upload(key, upload_id)
    local keep = {}
    for _, u in ipairs(uploads()) do
        if not (u.key == key and u.upload_id == upload_id) then
            keep[#keep + 1] = u.key .. " " .. u.upload_id .. " " .. (os.time() - u.initiated)
        end
    end
    local f = assert(io.open(DIR .. "/.uploads", "wb"))
    f:write(table.concat(keep, "\n"), "\n")
    f:close()
    return true
end

return _M
