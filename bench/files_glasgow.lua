-- Bench-only routes for bench/files.sh. The script copies this file into a
-- temporary GLASGOW_ROUTES_DIR next to copies of routes/*.lua (so /hello is
-- served too); it is never part of routes/.
--
--   PUT /bench/files/:name  streams the request body into the store under
--                           bench/:name (s3.put with req: the bytes go
--                           through C, never through Lua)
--   GET /bench/files/:name  streams bench/:name from the store to the client
--                           (s3.get, then obj:pipe)
--
-- No auth and no database: only the data path is measured. The FastAPI peer
-- (bench/files_fastapi.py) does the same two things with boto3.
local s3 = require "glasgow.s3"

local NAME = {
    type = "object",
    properties = { name = { type = "string", minLength = 1, maxLength = 64 } },
    required = { "name" },
    additionalProperties = false,
}

local function fail(err)
    return err.status or 500, { error = err.kind, code = err.code }, err.headers
end

return {
    {
        method = "PUT", path = "/bench/files/:name", tags = { "bench" },
        summary = "Benchmark: stream the body into the store (no auth)",
        params = NAME, body = "stream", max_body = 1024 * 1024 * 1024,
        handler = function(req)
            local r, err = s3.put("bench/" .. req.params.name, req,
                                  { content_type = "application/octet-stream" })
            if not r then
                return fail(err)
            end
            return 200, { size = r.size, sha256 = r.sha256 }
        end,
    },
    {
        method = "GET", path = "/bench/files/:name", tags = { "bench" },
        summary = "Benchmark: stream an object from the store (no auth)",
        params = NAME,
        handler = function(req)
            local obj, err = s3.get("bench/" .. req.params.name)
            if not obj then
                return fail(err)
            end
            obj:pipe(req, 200, { ["Content-Type"] = "application/octet-stream" })
        end,
    },
}
