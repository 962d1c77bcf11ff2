-- The buckets resource: /v1/buckets and /v1/buckets/:bucket.
--
-- A bucket is named by S3's rules, unique across the service (a name
-- someone else holds answers 409, as S3's BucketAlreadyExists does), and
-- owned by its creator. A user sees and changes only its own buckets
-- (someone else's answers 404, like a missing one); admins see all.
-- Deleting a bucket that still holds files (or uploads in progress)
-- answers 409.
local glasgow = require "glasgow"
local db = require "glasgow.db"
local names = require "glasgow.names"
local auth = require "routes._auth"
local buckets = require "routes._buckets"

local fail = glasgow.fail
local error, ipairs, unpack = error, ipairs, unpack
local json = glasgow.json

local MAX_LIMIT = 100
local COLUMNS = buckets.COLUMNS

local BUCKET = {
    type = "object",
    properties = {
        id = { type = "string", format = "uuid" },
        name = { type = "string" },
        owner_id = { type = "string", format = "uuid" },
        max_file_bytes = { type = { "integer", "null" } },
        allowed_content_types = { type = { "array", "null" }, items = { type = "string" } },
        created_at = { type = "string", format = "date-time" },
        updated_at = { type = "string", format = "date-time" },
    },
}

local PARAMS = {
    type = "object",
    properties = { bucket = { type = "string", minLength = 1, maxLength = 63 } },
    required = { "bucket" },
}

local MAX_FILE_BYTES = { type = { "integer", "null" }, minimum = 0,
                         maximum = buckets.MAX_FILE_BYTES }
local CONTENT_TYPES = { type = { "array", "null" }, maxItems = 64,
                        items = { type = "string", minLength = 3, maxLength = 255 } }

local function invalid(field, reason)
    fail(400, "validation_failed", field .. ": " .. reason, { field = field, reason = reason })
end

-- The allowed list as stored: lower-cased media types or ranges, or
-- db.null for "anything" (null or an empty list).
local function content_types(list)
    if list == nil or list == json.null or #list == 0 then
        return db.null
    end
    local out = {}
    for i, t in ipairs(list) do
        local lt = t:lower()
        if not (lt == "*/*" or lt:match("^[!#$%%&'*+%-.^_`|~%w]+/%*$")
                or lt:match("^[!#$%%&'*+%-.^_`|~%w]+/[!#$%%&'*+%-.^_`|~%w]+$"))
            or lt:match("^%*/[^*]") then
            invalid("body.allowed_content_types[" .. (i - 1) .. "]",
                    "must be a media type (image/png) or range (image/*, */*)")
        end
        out[i] = lt
    end
    return out
end

-- SQL for a text[] parameter sent as JSON (or NULL).
local TEXT_ARRAY = "(SELECT array_agg(x ORDER BY n) FROM jsonb_array_elements_text(%s::jsonb) " ..
                   "WITH ORDINALITY AS t(x, n))"

local function create(req)
    local caller = auth.authenticate(req)
    local b = req.body
    local ok, reason = names.bucket(b.name)
    if not ok then
        invalid("body.name", reason)
    end
    local max = b.max_file_bytes
    if max == nil then
        max = db.null
    end
    local rows, err = db.query("INSERT INTO buckets (name, owner_id, max_file_bytes, " ..
                               "allowed_content_types) VALUES ($1, $2, $3, " ..
                               TEXT_ARRAY:format("$4") .. ") RETURNING " .. COLUMNS,
                               b.name, caller.id, max, content_types(b.allowed_content_types))
    if not rows then
        if err.sqlstate == "23505" then
            fail(409, "conflict", "a bucket with this name already exists", { field = "body.name" })
        end
        error(err, 0)
    end
    return 201, rows[1], { Location = "/v1/buckets/" .. rows[1].name }
end

local function list(req)
    local caller = auth.authenticate(req)
    local limit = req.query.limit or 20
    local after = req.query.cursor and buckets.from_cursor(req.query.cursor, 63) or ""
    local rows
    if caller.role == "admin" then
        rows = db.call("SELECT " .. COLUMNS .. " FROM buckets WHERE name > $1 ORDER BY name LIMIT $2",
                       after, limit + 1)
    else
        rows = db.call("SELECT " .. COLUMNS .. " FROM buckets WHERE owner_id = $1 AND name > $2 " ..
                       "ORDER BY name LIMIT $3", caller.id, after, limit + 1)
    end
    local body, headers = buckets.page(req, rows, limit, function(r) return r.name end)
    return 200, body, headers
end

local function get(req)
    local caller = auth.authenticate(req)
    return 200, buckets.find(caller, req.params.bucket)
end

local function update(req)
    local caller = auth.authenticate(req)
    local bucket = buckets.find(caller, req.params.bucket)
    local b = req.body
    if next(b) == nil then
        invalid("body", "give at least one field to change")
    end
    local sets, args, n = {}, {}, 0
    local function set(col, v, expr)
        n = n + 1
        args[n] = v
        sets[#sets + 1] = col .. " = " .. (expr or "%s"):format("$" .. n)
    end
    if b.max_file_bytes ~= nil then
        set("max_file_bytes", b.max_file_bytes)
    end
    if b.allowed_content_types ~= nil then
        set("allowed_content_types", content_types(b.allowed_content_types), TEXT_ARRAY)
    end
    n = n + 1
    args[n] = bucket.id
    local rows = db.call("UPDATE buckets SET " .. table.concat(sets, ", ") ..
                         ", updated_at = now() WHERE id = $" .. n .. " RETURNING " .. COLUMNS,
                         unpack(args, 1, n))
    if not rows[1] then
        fail(404, "not_found", "no such bucket")
    end
    return 200, rows[1]
end

local function delete(req)
    local caller = auth.authenticate(req)
    local bucket = buckets.find(caller, req.params.bucket)
    -- files refer to their bucket with ON DELETE RESTRICT: a file that
    -- arrives between a check and the delete still stops it
    local rows, err = db.query("DELETE FROM buckets WHERE id = $1", bucket.id)
    if not rows then
        if err.sqlstate == "23503" then
            fail(409, "bucket_not_empty", "the bucket still holds files; delete them first")
        end
        error(err, 0)
    end
    return 204
end

return {
    {
        method = "POST", path = "/v1/buckets", handler = create, tags = { "buckets" },
        summary = "Create a bucket",
        description = "The name follows S3's rules and is unique across the service.",
        body = {
            type = "object",
            properties = {
                name = { type = "string", minLength = 1, maxLength = 255 },
                max_file_bytes = MAX_FILE_BYTES,
                allowed_content_types = CONTENT_TYPES,
            },
            required = { "name" },
            additionalProperties = false,
        },
        auth = "bearer",
        responses = { [201] = { description = "Created", schema = BUCKET },
                      [409] = { description = "A bucket with this name already exists." } },
    },
    {
        method = "GET", path = "/v1/buckets", handler = list, tags = { "buckets" },
        summary = "List buckets by name (admins see all, users their own)", auth = "bearer",
        query = {
            type = "object",
            properties = {
                limit = { type = "integer", minimum = 1, maximum = MAX_LIMIT },
                cursor = { type = "string", minLength = 1, maxLength = 200 },
            },
            additionalProperties = false,
        },
        responses = { [200] = { description = "A page of buckets", schema = {
            type = "object",
            properties = { items = { type = "array", items = BUCKET },
                           limit = { type = "integer" },
                           next_cursor = { type = { "string", "null" } } },
        } } },
    },
    {
        method = "GET", path = "/v1/buckets/:bucket", handler = get, params = PARAMS,
        tags = { "buckets" }, summary = "Read a bucket", auth = "bearer",
        responses = { [200] = { description = "The bucket", schema = BUCKET } },
    },
    {
        method = "PATCH", path = "/v1/buckets/:bucket", handler = update, params = PARAMS,
        tags = { "buckets" }, summary = "Change a bucket's limits (null clears one)",
        auth = "bearer",
        body = {
            type = "object",
            properties = { max_file_bytes = MAX_FILE_BYTES, allowed_content_types = CONTENT_TYPES },
            additionalProperties = false,
        },
        responses = { [200] = { description = "The changed bucket", schema = BUCKET } },
    },
    {
        method = "DELETE", path = "/v1/buckets/:bucket", handler = delete, params = PARAMS,
        tags = { "buckets" }, summary = "Delete an empty bucket", auth = "bearer",
        responses = { [204] = { description = "Deleted" },
                      [409] = { description = "The bucket still holds files." } },
    },
}
