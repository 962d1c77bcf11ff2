-- Files: the steps that keep metadata rows and stored objects consistent
-- (DESIGN.md section 5), shared by the file routes and tested on their own.
--
--   upload:   insert a pending row with a fresh storage key -> s3.put the
--             body -> in one transaction mark it committed and the
--             committed row it replaces (if any) deleting -> delete the
--             old object, then its row.
--             Any failure before the commit deletes the new object and
--             the pending row; whatever a crash leaves is pending or
--             deleting, which clients never see and `glasgow gc` removes.
--   delete:   mark the committed row deleting -> delete the object -> the row.
--   download: read the committed row, then the object under its key; if
--             the object is gone (replaced or deleted meanwhile), read the
--             row again once.
--
-- Clients only ever see committed rows, and a committed row's object is
-- complete: it was written and verified before the row was committed, and
-- it is deleted only after the row stopped being committed.
--
-- _M.s3 and _M.meta are the two sides; specs replace them with fakes.
local glasgow = require "glasgow"
local db = require "glasgow.db"
local http = require "glasgow.http"

local fail = glasgow.fail
local error, pcall, tostring, type = error, pcall, tostring, type

local _M = {}

local COLUMNS = "id, bucket_id, name, storage_key, size, content_type, " ..
                "encode(sha256, 'hex') AS sha256, etag, status, owner_id, created_at, updated_at"
_M.COLUMNS = COLUMNS

-- The object store: glasgow.s3 once its binding is there and configured.
function _M.store()
    if _M.s3 then
        return _M.s3
    end
    local ok, s3 = pcall(require, "glasgow.s3")
    if not ok or (type(s3.configured) == "function" and not s3.configured()) then
        fail(503, "store_unavailable", "object storage is not configured on this server", nil,
             { ["Retry-After"] = "30" })
    end
    return s3
end

-- The metadata side: one function per statement or transaction, so that
-- the steps above read as steps. Each raises database errors (mapped to
-- HTTP) unless it says otherwise.
local meta = {}
_M.meta = meta -- what the steps below use; specs put a fake here

-- The committed row of name in bucket_id, or nil.
function meta.current(bucket_id, name)
    return db.call("SELECT " .. COLUMNS .. " FROM files WHERE bucket_id = $1 AND name = $2 " ..
                   "AND status = 'committed'", bucket_id, name)[1]
end

-- Inserts a pending row under a new storage key '<bucket id>/<uuid>'.
function meta.insert_pending(bucket_id, name, content_type, owner_id)
    return db.call("INSERT INTO files (bucket_id, name, storage_key, content_type, owner_id) " ..
                   "VALUES ($1, $2, $5::text || '/' || gen_random_uuid(), $3, $4) RETURNING " ..
                   COLUMNS, bucket_id, name, content_type, owner_id, bucket_id)[1]
end

-- Commits pending row id as name's content, after check(current) (the
-- committed row it would replace, or nil) allowed it. Returns the new row
-- and the replaced one (now deleting) or false; or nil and "precondition"
-- (check refused), "gone" (the row is no longer pending: gc claimed it)
-- or a database error. Commits of one name are serialised by a
-- transaction-scoped advisory lock on (bucket, name), so each sees the one
-- before it and replaces it: the last commit wins, as with a PUT that
-- arrives later. Should the unique index still refuse one (a writer that
-- skipped the lock), it is tried again.
function meta.commit(id, bucket_id, name, result, check)
    local err
    for _ = 1, 3 do
        local row, old
        row, old = db.transaction(function(tx)
            tx.call("SELECT pg_advisory_xact_lock(hashtextextended($1::text || '/' || $2, 0))",
                    bucket_id, name)
            local cur = tx.call("SELECT " .. COLUMNS .. " FROM files WHERE bucket_id = $1 " ..
                                "AND name = $2 AND status = 'committed' FOR UPDATE",
                                bucket_id, name)[1]
            if not check(cur) then
                return nil, "precondition"
            end
            if cur then
                tx.call("UPDATE files SET status = 'deleting', updated_at = now() WHERE id = $1",
                        cur.id)
            end
            local rows, e = tx.query("UPDATE files SET status = 'committed', size = $2, " ..
                                     "sha256 = decode($3, 'hex'), etag = $4, updated_at = now() " ..
                                     "WHERE id = $1 AND status = 'pending' RETURNING " .. COLUMNS,
                                     id, result.size, result.sha256, result.etag or db.null)
            if not rows then
                return nil, e
            end
            if not rows[1] then
                return nil, "gone"
            end
            return rows[1], cur or false
        end)
        if row then
            return row, old
        end
        err = old
        if not (type(err) == "table" and err.sqlstate == "23505") then
            return nil, err
        end
    end
    return nil, err
end

-- Deletes row id if it still has status; true when it did.
function meta.delete_row(id, status)
    local _, n = db.call("DELETE FROM files WHERE id = $1 AND status = $2", id, status)
    return n == 1
end

-- Marks name's committed row deleting once check(row) allows it. Returns
-- the row, or nil and "missing" / "precondition".
function meta.mark_deleting(bucket_id, name, check)
    local row, why = db.transaction(function(tx)
        local cur = tx.call("SELECT " .. COLUMNS .. " FROM files WHERE bucket_id = $1 " ..
                            "AND name = $2 AND status = 'committed' FOR UPDATE",
                            bucket_id, name)[1]
        if not cur then
            return nil, "missing"
        end
        if not check(cur) then
            return nil, "precondition"
        end
        tx.call("UPDATE files SET status = 'deleting', updated_at = now() WHERE id = $1", cur.id)
        return cur
    end)
    return row, why
end

-- What the conditional-request rules compare: the strong ETag from the
-- SHA-256 and the commit time.
function _M.validators(row)
    if not row then
        return nil
    end
    return { etag = http.etag(row.sha256), last_modified = http.parse_rfc3339(row.updated_at) or 0 }
end

-- The public form of a row.
function _M.public(row)
    return {
        id = row.id,
        name = row.name,
        size = row.size,
        content_type = row.content_type,
        sha256 = row.sha256,
        etag = http.etag(row.sha256),
        created_at = row.created_at,
        updated_at = row.updated_at,
    }
end

local function log_leftover(what, row, err)
    glasgow.log("warn", what .. "; glasgow gc will remove it",
                { file = row.id, key = row.storage_key, error = tostring(err) })
end

-- Removes the object of row, then the row if it still has status. Never
-- raises: what it cannot remove stays for gc, and is logged.
local function remove(s3, row, status)
    local ok, res, err = pcall(s3.delete, row.storage_key)
    if not ok or not res then
        log_leftover("an object could not be deleted", row, ok and err or res)
        return false
    end
    local dok, derr = pcall(_M.meta.delete_row, row.id, status)
    if not dok then
        log_leftover("a " .. status .. " row could not be deleted", row, derr)
        return false
    end
    return true
end
_M.remove = remove

-- Raises the HTTP answer to a store failure (glasgow.s3's err: kind
-- "unavailable" or a retryable "store" error is 503 with Retry-After;
-- anything else the client cannot fix is raised as is, a logged 500).
function _M.store_error(err)
    if type(err) == "table" and (err.kind == "unavailable" or err.retryable
                                 or err.status == 503) then
        fail(503, "store_unavailable", "the object store is unavailable, retry shortly", nil,
             { ["Retry-After"] = "1" })
    end
    error(err, 0)
end

-- The HTTP answer to an s3.put failure: the client's fault (its body)
-- is a 4xx, the store's a 503.
local function put_error(err)
    local kind = type(err) == "table" and err.kind
    local code = type(err) == "table" and err.code
    if kind == "digest_mismatch" or code == "digest_mismatch" then
        fail(400, "digest_mismatch", "the body does not match the SHA-256 the request announced")
    end
    if kind == "client" or kind == "too_large" then
        if code == "too_large" or kind == "too_large" then
            fail(413, "too_large", "the file is larger than this bucket accepts")
        elseif code == "timeout" then
            fail(408, "request_timeout", "the body arrived too slowly")
        elseif code == "closed" then
            fail(499, "client_closed", "the client went away during the upload")
        elseif code == "aborted" then
            fail(503, "aborted", "the request ended before the upload did (deadline or " ..
                 "shutdown); retry", nil, { ["Retry-After"] = "1" })
        end
        fail(400, "bad_body", "the request body could not be read: " .. tostring(code))
    end
    _M.store_error(err)
end

-- Runs the upload of req's body as name in bucket. opts: content_type
-- (stored), max_bytes, sha256 (raw bytes the client announced, or nil),
-- owner_id, headers (for If-Match / If-None-Match). Returns the committed
-- row and whether it replaced another; raises the HTTP error otherwise,
-- having removed what it wrote.
function _M.upload(req, bucket, name, opts)
    local m = _M.meta
    local function allowed(cur)
        return http.preconditions(opts.headers, "PUT", _M.validators(cur)) == nil
    end
    if not allowed(m.current(bucket.id, name)) then
        fail(412, "precondition_failed", "the file's current state does not match If-Match / " ..
             "If-None-Match")
    end
    local s3 = _M.store()
    local row = m.insert_pending(bucket.id, name, opts.content_type, opts.owner_id)
    local want = opts.sha256 and http.hex(opts.sha256) or nil
    local ok, res, err = pcall(s3.put, row.storage_key, req, {
        content_type = opts.content_type, max_bytes = opts.max_bytes, sha256 = want,
    })
    if not ok or not res then
        remove(s3, row, "pending")
        put_error(ok and err or res)
    end
    -- the binding checks these while streaming; checked again here so that
    -- no committed row can ever disagree with its limits
    if type(res.size) ~= "number" or res.size > opts.max_bytes then
        remove(s3, row, "pending")
        fail(413, "too_large", "the file is larger than this bucket accepts")
    end
    if type(res.sha256) ~= "string" or #res.sha256 ~= 64 or (want and res.sha256:lower() ~= want) then
        remove(s3, row, "pending")
        fail(400, "digest_mismatch", "the body does not match the SHA-256 the request announced")
    end
    local file, old = m.commit(row.id, bucket.id, name,
                                  { size = res.size, sha256 = res.sha256:lower(), etag = res.etag },
                                  allowed)
    if not file then
        remove(s3, row, "pending")
        if old == "precondition" then
            fail(412, "precondition_failed", "the file changed during the upload")
        elseif old == "gone" then
            fail(503, "upload_expired", "the upload took too long and was cleaned up; retry", nil,
                 { ["Retry-After"] = "1" })
        end
        error(old, 0)
    end
    if old then
        remove(s3, old, "deleting")
    end
    return file, old and true or false
end

-- Deletes name in bucket once the conditional headers allow it. Raises
-- 404 or 412; the object goes before the row.
function _M.delete(bucket, name, headers)
    local s3, m = _M.store(), _M.meta
    local row, why = m.mark_deleting(bucket.id, name, function(cur)
        return http.preconditions(headers, "DELETE", _M.validators(cur)) == nil
    end)
    if not row then
        if why == "missing" then
            fail(404, "not_found", "no such file")
        elseif why == "precondition" then
            fail(412, "precondition_failed", "the file does not match If-Match")
        end
        error(why, 0)
    end
    remove(s3, row, "deleting")
end

return _M
