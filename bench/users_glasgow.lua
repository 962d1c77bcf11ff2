-- Bench-only routes for bench/users.sh. The script copies this file into a
-- temporary GLASGOW_ROUTES_DIR (next to copies of routes/*.lua, so the real
-- GET /v1/users/:id is served too); it is never part of routes/.
--
--   GET  /bench/users/:id  the single-row SELECT of GET /v1/users/:id, without
--                          the bearer-token lookup that route does first
--   POST /bench/users      the INSERT ... RETURNING of POST /v1/users, without
--                          scrypt (a fixed dummy password_hash) and without auth
--
-- The nginx+LuaDBI and FastAPI peers run the same two statements.
local glasgow = require "glasgow"
local db = require "glasgow.db"

local COLUMNS = "id, email, name, role, created_at, updated_at"
local SELECT = "SELECT " .. COLUMNS .. " FROM users WHERE id = $1"
local INSERT = "INSERT INTO users (email, name, password_hash) " ..
    "VALUES ($1, $2, 'bench-dummy-hash') RETURNING " .. COLUMNS

return {
    {
        method = "GET", path = "/bench/users/:id", tags = { "bench" },
        summary = "Benchmark: read one user (no auth)",
        params = {
            type = "object",
            properties = { id = { type = "string", format = "uuid" } },
            required = { "id" },
            additionalProperties = false,
        },
        handler = function(req)
            local row = db.call(SELECT, req.params.id)[1]
            if not row then
                glasgow.fail(404, "not_found", "no such user")
            end
            return 200, row
        end,
    },
    {
        method = "POST", path = "/bench/users", tags = { "bench" },
        summary = "Benchmark: insert one user (no auth, no password hashing)",
        body = {
            type = "object",
            properties = {
                email = { type = "string", minLength = 3, maxLength = 254 },
                name = { type = "string", minLength = 1, maxLength = 200 },
            },
            required = { "email", "name" },
            additionalProperties = false,
        },
        max_body = 8192,
        handler = function(req)
            local rows, err = db.query(INSERT, req.body.email, req.body.name)
            if not rows then
                error(err, 0) -- 23505 answers 409, like POST /v1/users
            end
            return 201, rows[1]
        end,
    },
}
