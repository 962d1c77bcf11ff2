-- What the bucket and file routes share: finding a bucket the caller may
-- use, the public form of a bucket, keyset cursors and the size limit.
--
-- Scoping: a user sees only its own buckets (and their files); someone
-- else's bucket answers 404, exactly like a missing one. Admins see all.
local glasgow = require "glasgow"
local db = require "glasgow.db"
local crypto = require "glasgow.crypto"
local names = require "glasgow.names"

local fail = glasgow.fail
local tonumber, type = tonumber, type

local _M = {}

_M.COLUMNS = "id, name, owner_id, max_file_bytes, allowed_content_types, created_at, updated_at"

-- GLASGOW_MAX_FILE_BYTES: the largest upload of any bucket (a bucket's
-- max_file_bytes may only lower it). Default 5 TiB, S3's object limit.
local function parse_size(text)
    if text == nil or text == "" then
        return nil
    end
    local digits, unit = text:match("^(%d+)([kKmMgGtT]?)$")
    local n = tonumber(digits)
    if not n then
        error("GLASGOW_MAX_FILE_BYTES: expected a size such as 5368709120 or 5g", 0)
    end
    local mult = ({ [""] = 1, k = 2 ^ 10, m = 2 ^ 20, g = 2 ^ 30, t = 2 ^ 40 })[unit:lower()]
    n = n * mult
    if n > 2 ^ 53 then
        error("GLASGOW_MAX_FILE_BYTES: at most 2^53 bytes", 0)
    end
    return n
end
_M.parse_size = parse_size
_M.MAX_FILE_BYTES = parse_size(os.getenv("GLASGOW_MAX_FILE_BYTES")) or 5 * 2 ^ 40

-- The bucket called name if caller may use it, else raises 404.
-- lock = "FOR SHARE" keeps it from being deleted until the transaction ends.
function _M.find(caller, name, q)
    q = q or db
    local ok = type(name) == "string" and names.bucket(name)
    if ok then
        local rows
        if caller.role == "admin" then
            rows = q.call("SELECT " .. _M.COLUMNS .. " FROM buckets WHERE name = $1", name)
        else
            rows = q.call("SELECT " .. _M.COLUMNS .. " FROM buckets WHERE name = $1 AND owner_id = $2",
                          name, caller.id)
        end
        if rows[1] then
            return rows[1]
        end
    end
    fail(404, "not_found", "no such bucket")
end

-- The upload limit of bucket b: its own, or the server's, whichever is lower.
function _M.max_bytes(b)
    local own = b.max_file_bytes
    if type(own) == "number" and own < _M.MAX_FILE_BYTES then
        return own
    end
    return _M.MAX_FILE_BYTES
end

-- Keyset cursors: opaque to clients, the last key of the previous page.
function _M.cursor(key)
    return crypto.base64url(key)
end

-- The key in a cursor, or raises 400 naming query.cursor.
function _M.from_cursor(text, max_bytes)
    local key = type(text) == "string" and crypto.base64url_decode(text)
    if not key or #key == 0 or #key > max_bytes or not names.check_text(key) then
        fail(400, "validation_failed", "query.cursor: is not a cursor this API returned",
             { field = "query.cursor", reason = "is not a cursor this API returned" })
    end
    return key
end

-- A page of a keyset listing: rows (limit + 1 were fetched) and the
-- Link header for the next one.
function _M.page(req, rows, limit, key_of, extra)
    local more = #rows > limit
    if more then
        rows[#rows] = nil
    end
    local body = { items = rows, limit = limit, next_cursor = glasgow.json.null }
    local headers = {}
    if more then
        body.next_cursor = _M.cursor(key_of(rows[#rows]))
        local q = "limit=" .. limit .. "&cursor=" .. body.next_cursor
        if extra then
            q = q .. extra
        end
        headers.Link = "<" .. req.path .. "?" .. q .. '>; rel="next"'
    end
    return body, headers
end

return _M
