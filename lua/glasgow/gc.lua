-- glasgow.gc: `glasgow gc [--min-age SECONDS] [--dry-run]`.
--
-- Removes what the server leaves behind by design or by accident, and
-- prints one JSON line per step (and per object it deletes), then a
-- summary line. Safe while the server runs and idempotent: every removal
-- is conditional on the state it found (a row is deleted only while it
-- still has the status it was found in; rows are claimed with
-- FOR UPDATE SKIP LOCKED), objects and uploads younger than --min-age
-- (default one day) are never touched, so uploads in flight are safe.
--
-- Database (always):
--   auth_tokens      expired or revoked tokens
--   auth_throttle    failure counts past GLASGOW_LOGIN_WINDOW_S
--   auth_devices     device cookies unused for GLASGOW_LOGIN_DEVICE_TTL_S
-- Object store (when glasgow.s3 is configured; skipped otherwise):
--   pending files    rows still pending after --min-age: claimed (status
--                    deleting, so the upload can no longer commit), then
--                    their objects and rows removed
--   deleting files   rows left deleting (a replaced or deleted file whose
--                    removal was interrupted), after a minute
--   orphan objects   objects under a '<uuid>/<uuid>' key with no row,
--                    older than --min-age (a crash between writing an
--                    object and recording or removing its row)
--   multipart        unfinished multipart uploads older than --min-age
local db = require "glasgow.db"
local json = require "glasgow.json"
local http = require "glasgow.http"

local core = require "glasgow.core"

local _M = {}

local BATCH = 500
local DELETING_GRACE_S = 60
local KEY_PATTERN = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x/" ..
                    "%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

local function emit(t)
    io.stdout:write(json.encode(t), "\n")
    io.stdout:flush()
end

local function limit(name, default)
    local l = core.limits
    return l and l[name] or default
end

-- Runs a DELETE of at most BATCH rows chosen by select_sql (which must
-- return the table's key as k) until none is left; returns the count.
local function delete_batches(tbl, key, select_sql, dry, ...)
    if dry then
        local rows = db.call("SELECT count(*) AS n FROM (" .. select_sql .. ") s", ...)
        return rows[1].n
    end
    local total = 0
    while true do
        local _, n = db.call("DELETE FROM " .. tbl .. " WHERE " .. key .. " IN (" .. select_sql ..
                             " LIMIT " .. BATCH .. " FOR UPDATE SKIP LOCKED)", ...)
        total = total + n
        if n < BATCH then
            return total
        end
    end
end

function _M.database(dry)
    local out = {}
    out.auth_tokens = delete_batches("auth_tokens", "token_hash",
        "SELECT token_hash FROM auth_tokens WHERE expires_at < now() OR revoked_at IS NOT NULL", dry)
    out.auth_throttle = delete_batches("auth_throttle", "key",
        "SELECT key FROM auth_throttle WHERE last_failure < now() - make_interval(secs => $1)", dry,
        limit("login_window_s", 900))
    local ttl = limit("login_device_ttl_s", 2592000)
    out.auth_devices = delete_batches("auth_devices", "token_hash",
        "SELECT token_hash FROM auth_devices WHERE last_login < now() - make_interval(secs => $1)",
        dry, ttl)
    for _, step in ipairs({ "auth_tokens", "auth_throttle", "auth_devices" }) do
        emit({ step = step, [dry and "would_delete" or "deleted"] = out[step] })
    end
    return out
end

-- The object store, or nil and why not.
local function store()
    local ok, s3 = pcall(require, "glasgow.s3")
    if not ok then
        return nil, "the glasgow.s3 binding is not built in"
    end
    if type(s3.configured) == "function" and not s3.configured() then
        return nil, "object storage is not configured (S3_ENDPOINT)"
    end
    return s3
end

-- Removes the objects of deleting rows, then the rows; returns counts.
local function finish_deleting(s3, rows, stats, reason)
    for _, r in ipairs(rows) do
        local ok, err = s3.delete(r.storage_key)
        if ok then
            local _, n = db.call("DELETE FROM files WHERE id = $1 AND status = 'deleting'", r.id)
            stats.rows = stats.rows + n
            stats.objects = stats.objects + 1
            emit({ action = "delete_file", reason = reason, file = r.id, key = r.storage_key })
        else
            stats.errors = stats.errors + 1
            emit({ action = "delete_file", reason = reason, file = r.id, key = r.storage_key,
                   error = tostring(err and (err.message or err.code) or err) })
        end
    end
end

function _M.files(s3, min_age, dry)
    local stats = { rows = 0, objects = 0, errors = 0 }
    local pending = db.call("SELECT count(*) AS n FROM files WHERE status = 'pending' " ..
                            "AND updated_at < now() - make_interval(secs => $1)", min_age)[1].n
    local deleting = db.call("SELECT count(*) AS n FROM files WHERE status = 'deleting' " ..
                             "AND updated_at < now() - make_interval(secs => $1)",
                             DELETING_GRACE_S)[1].n
    if dry then
        emit({ step = "files", would_delete_pending = pending, would_delete_deleting = deleting })
        return stats
    end
    -- stale pending rows: claimed first, so that an upload still running
    -- can no longer commit (its commit needs status pending)
    while true do
        local claimed = db.call([[
            UPDATE files SET status = 'deleting', updated_at = now()
             WHERE id IN (SELECT id FROM files WHERE status = 'pending'
                            AND updated_at < now() - make_interval(secs => $1)
                          LIMIT $2 FOR UPDATE SKIP LOCKED)
            RETURNING id, storage_key]], min_age, BATCH)
        finish_deleting(s3, claimed, stats, "stale_pending")
        if #claimed < BATCH then
            break
        end
    end
    local seen_errors = stats.errors
    while true do
        local rows = db.call("SELECT id, storage_key FROM files WHERE status = 'deleting' " ..
                             "AND updated_at < now() - make_interval(secs => $1) " ..
                             "ORDER BY updated_at LIMIT $2", DELETING_GRACE_S, BATCH)
        finish_deleting(s3, rows, stats, "left_deleting")
        -- stop when done, or when this round could not delete anything
        if #rows < BATCH or stats.errors > seen_errors then
            break
        end
        seen_errors = stats.errors
    end
    emit({ step = "files", deleted_rows = stats.rows, deleted_objects = stats.objects,
           errors = stats.errors })
    return stats
end

local function age_of(last_modified, now)
    local t = type(last_modified) == "number" and last_modified or
              http.parse_rfc3339(last_modified) or http.parse_date(last_modified)
    return t and now - t or nil
end

function _M.orphans(s3, min_age, dry)
    local stats = { listed = 0, deleted = 0, errors = 0 }
    local now = os.time()
    local continuation
    repeat
        local page, err = s3.list({ continuation = continuation, max_keys = 1000 })
        if not page then
            stats.errors = stats.errors + 1
            emit({ step = "orphans", error = tostring(err and (err.message or err.code) or err) })
            break
        end
        local old, keys = {}, {}
        for _, o in ipairs(page.objects or {}) do
            stats.listed = stats.listed + 1
            local age = age_of(o.last_modified, now)
            if o.key:find(KEY_PATTERN) and age and age >= min_age then
                old[#old + 1] = o.key
                keys[o.key] = true
            end
        end
        if #old > 0 then
            local rows = db.call("SELECT storage_key FROM files WHERE storage_key IN " ..
                                 "(SELECT jsonb_array_elements_text($1::jsonb))", old)
            for _, r in ipairs(rows) do
                keys[r.storage_key] = nil
            end
            for _, key in ipairs(old) do
                if keys[key] then
                    if dry then
                        stats.deleted = stats.deleted + 1
                        emit({ action = "would_delete_object", reason = "orphan", key = key })
                    else
                        local ok, derr = s3.delete(key)
                        if ok then
                            stats.deleted = stats.deleted + 1
                            emit({ action = "delete_object", reason = "orphan", key = key })
                        else
                            stats.errors = stats.errors + 1
                            emit({ action = "delete_object", reason = "orphan", key = key,
                                   error = tostring(derr and (derr.message or derr.code) or derr) })
                        end
                    end
                end
            end
        end
        continuation = page.truncated and page.continuation or nil
    until not continuation
    emit({ step = "orphans", listed = stats.listed, [dry and "would_delete" or "deleted"] =
           stats.deleted, errors = stats.errors })
    return stats
end

function _M.uploads(s3, min_age, dry)
    local stats = { listed = 0, aborted = 0, errors = 0 }
    if type(s3.list_uploads) ~= "function" then
        emit({ step = "multipart", skipped = "the binding cannot list uploads" })
        return stats
    end
    local now = os.time()
    local markers = {}
    repeat
        local page, err = s3.list_uploads(markers)
        if not page then
            stats.errors = stats.errors + 1
            emit({ step = "multipart", error = tostring(err and (err.message or err.code) or err) })
            break
        end
        for _, u in ipairs(page.uploads or {}) do
            stats.listed = stats.listed + 1
            local age = age_of(u.initiated, now)
            if age and age >= min_age then
                if dry then
                    stats.aborted = stats.aborted + 1
                else
                    local ok, aerr = s3.abort_upload(u.key, u.upload_id)
                    if ok then
                        stats.aborted = stats.aborted + 1
                        emit({ action = "abort_upload", key = u.key, upload_id = u.upload_id })
                    else
                        stats.errors = stats.errors + 1
                        emit({ action = "abort_upload", key = u.key, upload_id = u.upload_id,
                               error = tostring(aerr and (aerr.message or aerr.code) or aerr) })
                    end
                end
            end
        end
        markers = page.truncated and page.key_marker and
                  { key_marker = page.key_marker, upload_id_marker = page.upload_id_marker } or nil
    until not markers
    emit({ step = "multipart", listed = stats.listed, [dry and "would_abort" or "aborted"] =
           stats.aborted, errors = stats.errors })
    return stats
end

local USAGE = "usage: glasgow gc [--min-age SECONDS] [--dry-run]"

-- Entry point: returns the exit status (0 done, 1 a step failed, 2 usage).
function _M.main(...)
    local args = { ... }
    local min_age, dry = 86400, false
    local i = 1
    while i <= #args do
        local a = args[i]
        if a == "--dry-run" then
            dry = true
        elseif a == "--min-age" or a:match("^%-%-min%-age=") then
            local v = a:match("^%-%-min%-age=(.*)$")
            if not v then
                i = i + 1
                v = args[i]
            end
            min_age = v and v:match("^%d+$") and tonumber(v)
            if not min_age or min_age > 10 * 365 * 86400 then
                io.stderr:write("glasgow gc: --min-age takes seconds (0 to ten years)\n", USAGE,
                                "\n")
                return 2
            end
        else
            io.stderr:write("glasgow gc: unknown argument ", a, "\n", USAGE, "\n")
            return 2
        end
        i = i + 1
    end
    local ok, err = pcall(function()
        local summary = { dry_run = dry, min_age_s = min_age, errors = 0 }
        summary.database = _M.database(dry)
        local s3, why = store()
        if not s3 then
            emit({ step = "store", skipped = why })
            summary.store = "skipped"
        else
            local f = _M.files(s3, min_age, dry)
            local o = _M.orphans(s3, min_age, dry)
            local u = _M.uploads(s3, min_age, dry)
            summary.files, summary.orphans, summary.multipart = f, o, u
            summary.errors = f.errors + o.errors + u.errors
        end
        emit({ summary = summary })
        return summary.errors
    end)
    if not ok then
        io.stderr:write("glasgow gc: ", tostring(err), "\n")
        return 1
    end
    return err > 0 and 1 or 0
end

return _M
