-- Files in buckets: upload, download (ranges, conditionals), listing,
-- deletion, and signed download URLs.
--
-- A file is addressed by its bucket and its name (1..1024 bytes of UTF-8,
-- '/'-separated segments, see glasgow.names). The bytes live in the object
-- store under a key the server makes; the name is metadata only, returned
-- in Content-Disposition. Scoping follows the bucket: its owner and admins.
-- The consistency steps are in routes/_files.lua.
local glasgow = require "glasgow"
local db = require "glasgow.db"
local http = require "glasgow.http"
local names = require "glasgow.names"
local range = require "glasgow.range"
local urlsign = require "glasgow.urlsign"
local auth = require "routes._auth"
local buckets = require "routes._buckets"
local files = require "routes._files"

local fail = glasgow.fail
local floor, format = math.floor, string.format
local ipairs, pcall, tonumber, tostring, type = ipairs, pcall, tonumber, tostring, type

local MAX_LIMIT = 1000
local MAX_SIGNED_TTL = 7 * 86400 -- S3's limit for presigned URLs
local HAS_STORE = pcall(require, "glasgow.s3")

local FILE = {
    type = "object",
    properties = {
        id = { type = "string", format = "uuid" },
        name = { type = "string" },
        size = { type = "integer" },
        content_type = { type = "string" },
        sha256 = { type = "string" },
        etag = { type = "string" },
        created_at = { type = "string", format = "date-time" },
        updated_at = { type = "string", format = "date-time" },
    },
}

local BUCKET_PARAM = { type = "string", minLength = 1, maxLength = 63 }
-- maxLength counts characters; names.file checks the 1024-byte limit
local NAME_PARAM = { type = "string", minLength = 1, maxLength = names.MAX_FILE_NAME_BYTES }
local FILE_PARAMS = {
    type = "object",
    properties = { bucket = BUCKET_PARAM, name = NAME_PARAM },
    required = { "bucket", "name" },
}

-- Percent-encodes every byte of s but unreserved characters and '/'.
local function url_encode(s)
    return (s:gsub("[^%w%-%._~/]", function(c)
        return format("%%%02X", c:byte())
    end))
end

local function invalid(field, reason)
    fail(400, "validation_failed", field .. ": " .. reason, { field = field, reason = reason })
end

local function file_name(name, field)
    local ok, reason = names.file(name)
    if not ok then
        invalid(field or "params.name", reason)
    end
    return name
end

-- The Content-Type stored for an upload: the header as sent when it is a
-- plain printable value, its media type otherwise; octet-stream when none.
local function upload_type(req, bucket)
    local ct = http.field(req.headers, "content-type")
    local media = "application/octet-stream"
    if ct ~= nil then
        media = http.media_type(ct)
        if not media then
            fail(400, "validation_failed", "headers.content-type: is not a media type",
                 { field = "headers.content-type", reason = "is not a media type" })
        end
    end
    if not http.type_allowed(media, bucket.allowed_content_types) then
        fail(415, "unsupported_media_type", "this bucket does not accept " .. media,
             { allowed = bucket.allowed_content_types })
    end
    if ct ~= nil and #ct <= 255 and ct:find("^[ -~]+$") then
        return (ct:gsub("^%s+", ""):gsub("%s+$", ""))
    end
    return media
end

local function upload(req)
    local caller = auth.authenticate(req)
    local name = file_name(req.params.name)
    local bucket = buckets.find(caller, req.params.bucket)
    local content_type = upload_type(req, bucket)
    local max = buckets.max_bytes(bucket)
    local declared = tonumber(http.field(req.headers, "content-length"))
    if declared and declared > max then
        fail(413, "too_large", format("the file is larger than this bucket accepts (%d bytes)",
                                      max))
    end
    local digest, why = http.content_digest(req.headers)
    if digest == false then
        fail(400, "validation_failed", "headers: " .. why, { field = "headers", reason = why })
    end
    local row, replaced = files.upload(req, bucket, name, {
        content_type = content_type, max_bytes = max, sha256 = digest, owner_id = caller.id,
        headers = req.headers,
    })
    local v = files.validators(row)
    return replaced and 200 or 201, files.public(row), {
        ETag = v.etag,
        Location = "/v1/buckets/" .. bucket.name .. "/files/" .. url_encode(name),
    }
end

-- Answers a download of row (GET or HEAD): conditionals, range, headers;
-- the body is piped from the store. Returns what the handler returns, or
-- nil when the object vanished (the caller reads the row again).
local function serve(req, row)
    local v = files.validators(row)
    local headers = {
        ["ETag"] = v.etag,
        ["Last-Modified"] = http.date(v.last_modified),
        ["Accept-Ranges"] = "bytes",
        ["Cache-Control"] = "private, no-cache",
        ["X-Content-Type-Options"] = "nosniff",
        -- should a browser render a download anyway, it runs nothing
        ["Content-Security-Policy"] = "default-src 'none'; sandbox",
    }
    local st = http.preconditions(req.headers, req.method, v)
    if st == 304 then
        return 304, nil, headers
    elseif st then
        fail(412, "precondition_failed", "the file does not match If-Match / If-Unmodified-Since")
    end
    headers["Content-Type"] = row.content_type
    headers["Content-Disposition"] = http.content_disposition(names.basename(row.name))
    local size = row.size
    if req.method == "HEAD" then
        headers["Content-Length"] = tostring(size)
        return 200, nil, headers
    end
    local status, opts = 200, nil
    local rh = req.headers.range
    if rh ~= nil and http.if_range(req.headers, v) then
        local kind, first, last = range.parse(rh, size)
        if kind == "unsatisfiable" then
            fail(416, "range_not_satisfiable", "the range is outside the file", { size = size },
                 { ["Content-Range"] = "bytes */" .. format("%d", size) })
        elseif kind == "partial" then
            status, opts = 206, { range = { first, last } }
            headers["Content-Range"] = format("bytes %d-%d/%d", first, last, size)
        end
    end
    local s3 = files.store()
    local obj, err = s3.get(row.storage_key, opts)
    if not obj then
        if type(err) == "table" and (err.code == "NoSuchKey" or err.status == 404) then
            return nil
        end
        files.store_error(err)
    end
    -- pipe streams the body and answers the request itself (what the
    -- handler returns afterwards is ignored), returning the bytes sent or
    -- nil, err: before the answer started an error can still be sent;
    -- midway the connection is cut, so a client never sees a
    -- complete-looking wrong body
    local sent, perr = obj:pipe(req, status, headers)
    if sent == nil and not req.responded then
        files.store_error(perr)
    end
    return status
end

-- Downloads name from bucket, reading the row again once when its object
-- was replaced or deleted between the two reads.
local function download_from(req, bucket, name)
    local last_key
    for _ = 1, 2 do
        local row = files.meta.current(bucket.id, name)
        if not row then
            fail(404, "not_found", "no such file")
        end
        if row.storage_key == last_key then
            break
        end
        last_key = row.storage_key
        local status, body, headers = serve(req, row)
        if status then
            return status, body, headers
        end
    end
    glasgow.log("error", "a committed file has no object", { bucket = bucket.id, name = name })
    fail(404, "not_found", "no such file")
end

local function download(req)
    local caller = auth.authenticate(req)
    local name = file_name(req.params.name)
    local bucket = buckets.find(caller, req.params.bucket)
    return download_from(req, bucket, name)
end

local function delete(req)
    local caller = auth.authenticate(req)
    local name = file_name(req.params.name)
    local bucket = buckets.find(caller, req.params.bucket)
    files.delete(bucket, name, req.headers)
    return 204
end

local function list(req)
    local caller = auth.authenticate(req)
    local bucket = buckets.find(caller, req.params.bucket)
    local q = req.query
    local limit = q.limit or 100
    local prefix = q.prefix or ""
    if prefix ~= "" and not names.check_text(prefix) then
        local _, reason = names.check_text(prefix)
        invalid("query.prefix", reason)
    end
    -- page from the cursor (exclusive), or from the prefix (inclusive)
    local after, inclusive = prefix, true
    if q.cursor then
        after, inclusive = buckets.from_cursor(q.cursor, names.MAX_FILE_NAME_BYTES), false
        if after < prefix then
            after, inclusive = prefix, true
        end
    end
    local upper = names.prefix_upper(prefix)
    -- name >= after (> for a cursor) AND name < upper: a range scan of the
    -- committed-name index
    local rows = db.call("SELECT " .. files.COLUMNS .. " FROM files WHERE bucket_id = $1 " ..
                         "AND status = 'committed' AND (name > $2 OR ($3 AND name = $2)) " ..
                         "AND ($4::text IS NULL OR name < $4) AND starts_with(name, $5) " ..
                         "ORDER BY name LIMIT $6",
                         bucket.id, after, inclusive, upper or db.null, prefix, limit + 1)
    local items = {}
    for i, r in ipairs(rows) do
        items[i] = files.public(r)
    end
    local extra = prefix ~= "" and ("&prefix=" .. url_encode(prefix):gsub("/", "%%2F")) or nil
    local body, headers = buckets.page(req, items, limit, function(r) return r.name end, extra)
    return 200, body, headers
end

-- The path a signed URL opens, percent-encoded for the URL (every byte
-- but unreserved characters and '/'), and as the router decodes it (what
-- is signed).
local function signed_path(bucket_id, name)
    return "/v1/download/" .. bucket_id .. "/" .. name,
           "/v1/download/" .. bucket_id .. "/" .. url_encode(name)
end

local function need_signing()
    if not urlsign.configured() then
        fail(503, "signing_unavailable",
             "signed URLs are not configured on this server (GLASGOW_URL_SIGNING_KEY)")
    end
end

local function sign_url(req)
    local caller = auth.authenticate(req)
    need_signing()
    local bucket = buckets.find(caller, req.params.bucket)
    local name = file_name(req.body.name, "body.name")
    if not files.meta.current(bucket.id, name) then
        fail(404, "not_found", "no such file")
    end
    local ttl = req.body.expires_in or 3600
    local expires = floor(glasgow.now()) + ttl
    local decoded, encoded = signed_path(bucket.id, name)
    local sig = urlsign.sign("GET", decoded, expires)
    if not sig then
        need_signing()
    end
    local path = encoded .. "?expires=" .. format("%d", expires) .. "&signature=" .. sig
    -- absolute when the server knows its public address (GLASGOW_PUBLIC_URL,
    -- which may carry a path prefix the proxy strips), else the path alone
    local base = urlsign.public_url()
    return 201, {
        url = base and base .. path or path,
        path = path,
        expires_at = os.date("!%Y-%m-%dT%H:%M:%SZ", expires),
    }
end

-- GET (and HEAD) of a signed URL: no token; the signature opens this one
-- file until it expires. Invalid or expired answers 403.
local function signed_download(req)
    need_signing()
    local q = req.query
    local name = req.params.name
    local decoded = signed_path(req.params.bucket_id:lower(), name)
    if not urlsign.verify("GET", decoded, q.expires, q.signature) then
        fail(403, "invalid_signature", "the URL's signature is not valid")
    end
    if q.expires < glasgow.now() then
        fail(403, "expired", "the URL has expired")
    end
    local bucket = db.call("SELECT id FROM buckets WHERE id = $1", req.params.bucket_id:lower())[1]
    if not bucket then
        fail(404, "not_found", "no such file")
    end
    return download_from(req, bucket, file_name(name))
end

local FILE_HEADERS_DOC = "ETag (strong, from the SHA-256), Last-Modified, Accept-Ranges, " ..
                         "Content-Disposition (RFC 6266), X-Content-Type-Options: nosniff"

return {
    {
        method = "PUT", path = "/v1/buckets/:bucket/files/*name", handler = upload,
        params = FILE_PARAMS, body = "stream", tags = { "files" },
        -- until the object store binding is built in, refuse bodies
        -- rather than buffer them
        max_body = HAS_STORE and buckets.MAX_FILE_BYTES or 0,
        summary = "Upload a file (the raw body), creating or replacing it",
        description = "Content-Type is checked against the bucket; Content-Digest: sha-256=:…: " ..
                      "or x-checksum-sha256 is verified; If-None-Match: * refuses to " ..
                      "overwrite and If-Match replaces only the version named (412 otherwise).",
        auth = "bearer",
        responses = { [201] = { description = "Created", schema = FILE },
                      [200] = { description = "Replaced", schema = FILE },
                      [408] = { description = "The body arrived too slowly." },
                      [412] = { description = "If-Match / If-None-Match does not hold." },
                      [415] = { description = "The bucket does not accept this Content-Type." },
                      [503] = { description = "The object store or the database is unavailable; retry." } },
    },
    {
        method = "GET", path = "/v1/buckets/:bucket/files/*name", handler = download,
        params = FILE_PARAMS, tags = { "files" },
        summary = "Download a file (also HEAD); Range, If-None-Match, If-Match, If-Modified-Since",
        description = FILE_HEADERS_DOC .. ". One byte range is served (206); several ranges " ..
                      "or an invalid Range send the whole file; 416 carries Content-Range.",
        auth = "bearer",
        responses = { [200] = { description = "The file", binary = true },
                      [206] = { description = "Part of the file", binary = true },
                      [304] = { description = "Not modified" },
                      [412] = { description = "If-Match / If-Unmodified-Since does not hold." },
                      [416] = { description = "The range is outside the file." },
                      [503] = { description = "The object store or the database is unavailable; retry." } },
    },
    {
        method = "DELETE", path = "/v1/buckets/:bucket/files/*name", handler = delete,
        params = FILE_PARAMS, tags = { "files" }, summary = "Delete a file (If-Match honoured)",
        auth = "bearer",
        responses = { [204] = { description = "Deleted" },
                      [412] = { description = "If-Match does not hold." },
                      [503] = { description = "The object store or the database is unavailable; retry." } },
    },
    {
        method = "GET", path = "/v1/buckets/:bucket/files", handler = list, tags = { "files" },
        auth = "bearer",
        params = { type = "object", properties = { bucket = BUCKET_PARAM },
                   required = { "bucket" } },
        query = {
            type = "object",
            properties = {
                prefix = { type = "string", maxLength = names.MAX_FILE_NAME_BYTES },
                limit = { type = "integer", minimum = 1, maximum = MAX_LIMIT },
                cursor = { type = "string", minLength = 1, maxLength = 1400 },
            },
            additionalProperties = false,
        },
        summary = "List a bucket's files by name (keyset pages)",
        responses = { [200] = { description = "A page of files", schema = {
            type = "object",
            properties = { items = { type = "array", items = FILE }, limit = { type = "integer" },
                           next_cursor = { type = { "string", "null" } } },
        } } },
    },
    {
        method = "POST", path = "/v1/buckets/:bucket/signed-urls", handler = sign_url,
        tags = { "files" }, auth = "bearer",
        params = { type = "object", properties = { bucket = BUCKET_PARAM },
                   required = { "bucket" } },
        body = {
            type = "object",
            properties = {
                name = NAME_PARAM,
                expires_in = { type = "integer", minimum = 1, maximum = MAX_SIGNED_TTL },
            },
            required = { "name" },
            additionalProperties = false,
        },
        summary = "Make a time-limited download URL for one file",
        description = "The URL opens that file, and nothing else, without a token until " ..
                      "expires_at (at most 7 days). url is absolute when the server has " ..
                      "GLASGOW_PUBLIC_URL, else the same as path, which is always relative " ..
                      "to the API's base.",
        responses = { [201] = { description = "The URL", schema = {
            type = "object",
            properties = { url = { type = "string" }, path = { type = "string" },
                           expires_at = { type = "string", format = "date-time" } },
        } }, [503] = { description = "Signed URLs are not configured on this server, or the " ..
                                    "database is unavailable." } },
    },
    {
        method = "GET", path = "/v1/download/:bucket_id/*name", handler = signed_download,
        tags = { "files" },
        params = { type = "object",
                   properties = { bucket_id = { type = "string", format = "uuid" },
                                  name = NAME_PARAM },
                   required = { "bucket_id", "name" } },
        query = {
            type = "object",
            properties = { expires = { type = "integer", minimum = 0, maximum = 2 ^ 53 },
                           signature = { type = "string", minLength = 1, maxLength = 100 } },
            required = { "expires", "signature" },
            additionalProperties = false,
        },
        summary = "Download through a signed URL (no token; also HEAD)",
        description = FILE_HEADERS_DOC .. "; the same Range and conditional handling.",
        responses = { [200] = { description = "The file", binary = true },
                      [206] = { description = "Part of the file", binary = true },
                      [403] = { description = "The signature is not valid, or the URL expired." },
                      [412] = { description = "A precondition header does not hold." },
                      [416] = { description = "The range is outside the file." },
                      [503] = { description = "The object store or the database is unavailable; retry." } },
    },
}
