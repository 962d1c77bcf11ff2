-- nginx + lua-nginx-module peer for bench/users.sh, on Debian's LuaDBI
-- (lua-dbi-postgresql). LuaDBI calls libpq synchronously, so a worker does
-- nothing else while its query runs: each nginx worker serves one request
-- at a time against the database. One connection per worker, opened on the
-- first request and kept in this module (modules are loaded once per worker),
-- with both statements prepared on it (PQprepare / PQexecPrepared).
--
-- The database URL comes from the DATABASE_URL environment variable (the
-- nginx config lists it with "env DATABASE_URL;"); libpq accepts a URL as the
-- dbname argument of PQsetdbLogin.
-- luacheck: globals ngx
local DBI = require "DBI"
local cjson = require "cjson"

local ngx = ngx
local type, tostring = type, tostring

local COLUMNS = "id, email, name, role, created_at, updated_at"
local SELECT = "SELECT " .. COLUMNS .. " FROM users WHERE id = ?"
local INSERT = "INSERT INTO users (email, name, password_hash) " ..
    "VALUES (?, ?, 'bench-dummy-hash') RETURNING " .. COLUMNS

local _M = {}

local conn, select_stmt, insert_stmt -- per worker

local function disconnect()
    if conn then
        pcall(conn.close, conn)
    end
    conn, select_stmt, insert_stmt = nil, nil, nil
end

local function connect()
    if conn then
        return true
    end
    local c, err = DBI.Connect("PostgreSQL", os.getenv("DATABASE_URL"))
    if not c then
        return nil, err
    end
    c:autocommit(true) -- LuaDBI would otherwise wrap every statement in BEGIN
    local s1, e1 = c:prepare(SELECT)
    local s2, e2 = c:prepare(INSERT)
    if not s1 or not s2 then
        c:close()
        return nil, e1 or e2
    end
    conn, select_stmt, insert_stmt = c, s1, s2
    return true
end

_M.connect = connect

local function send(status, body)
    ngx.status = status
    ngx.header.content_type = "application/json"
    ngx.print(cjson.encode(body))
end

local function fail(status, code, message)
    send(status, { error = { code = code, message = message } })
end

-- A failed statement: drop the connection if it is gone, answer the error.
local function db_error(err)
    err = tostring(err)
    if not conn:ping() then
        disconnect()
        ngx.log(ngx.ERR, "database connection lost: ", err)
        return fail(503, "unavailable", "the database is unavailable")
    end
    if err:find("duplicate key", 1, true) then
        return fail(409, "conflict", "a user with this email already exists")
    end
    ngx.log(ngx.ERR, "query failed: ", err)
    return fail(500, "internal", "internal error")
end

-- GET /bench/users/<uuid> (the location's regex checked the uuid's shape)
function _M.get(id)
    local method = ngx.req.get_method()
    if method ~= "GET" and method ~= "HEAD" then
        ngx.header.allow = "GET, HEAD"
        return fail(405, "method_not_allowed", "use GET")
    end
    local ok, err = connect()
    if not ok then
        ngx.log(ngx.ERR, "connect failed: ", tostring(err))
        return fail(503, "unavailable", "the database is unavailable")
    end
    ok, err = select_stmt:execute(id)
    if not ok then
        return db_error(err)
    end
    local row = select_stmt:fetch(true)
    if not row then
        return fail(404, "not_found", "no such user")
    end
    send(200, row)
end

-- POST /bench/users {"email": "...", "name": "..."}
function _M.create()
    if ngx.req.get_method() ~= "POST" then
        ngx.header.allow = "POST"
        return fail(405, "method_not_allowed", "use POST")
    end
    ngx.req.read_body()
    local raw = ngx.req.get_body_data()
    local okj, b = pcall(cjson.decode, raw or "")
    if not okj or type(b) ~= "table" then
        return fail(400, "invalid_json", "the body is not JSON")
    end
    if type(b.email) ~= "string" or #b.email < 3 or #b.email > 254
        or type(b.name) ~= "string" or #b.name < 1 or #b.name > 200 then
        return fail(400, "validation_failed", "email and name must be strings")
    end
    local ok, err = connect()
    if not ok then
        ngx.log(ngx.ERR, "connect failed: ", tostring(err))
        return fail(503, "unavailable", "the database is unavailable")
    end
    ok, err = insert_stmt:execute(b.email, b.name)
    if not ok then
        return db_error(err)
    end
    local row = insert_stmt:fetch(true)
    if not row then
        return fail(500, "internal", "INSERT returned no row")
    end
    send(201, row)
end

return _M
