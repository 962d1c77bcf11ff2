-- glasgow.migrate: `glasgow migrate [DIR]`.
--
-- Applies the numbered SQL files of DIR (default ./migrations, or
-- GLASGOW_MIGRATIONS_DIR), named NNN_description.sql, in order, each in
-- its own transaction, and records them in glasgow_migrations with a
-- SHA-256 of the file. A session advisory lock serialises concurrent runs
-- (several pods' PreSync hooks): the second waits, then finds nothing to
-- do. A file whose recorded checksum changed, a recorded file that is
-- gone, or a new file numbered below the last applied one stops the run
-- before anything is applied. Afterwards the bootstrap admin is created
-- when GLASGOW_BOOTSTRAP_ADMIN_EMAIL and ..._PASSWORD_FILE are set and no
-- admin exists yet.
local pg = require "glasgow.pg"
local db = require "glasgow.db"
local core = require "glasgow.core"
local crypto = require "glasgow.crypto"

local _M = {}

-- 64-bit advisory lock key: the first 8 bytes of md5("glasgow.migrate")
local LOCK_SQL = "SELECT pg_advisory_lock(('x' || substr(md5('glasgow.migrate'), 1, 16))::bit(64)::bigint)"

local function say(fmt, ...)
    io.stdout:write(string.format(fmt, ...), "\n")
end

local function fail(fmt, ...)
    io.stderr:write("glasgow migrate: ", string.format(fmt, ...), "\n")
    return 1
end

local function read_file(path)
    local f, err = io.open(path, "rb")
    if not f then
        return nil, err
    end
    local text = f:read("*a")
    f:close()
    return text
end

-- Lists DIR's migrations as { version, name, file, sql, checksum } in order.
local function list(dir)
    local names, err = core.listdir(dir)
    if not names then
        return nil, err
    end
    local out, seen = {}, {}
    for _, name in ipairs(names) do
        if name:sub(-4) == ".sql" then
            local num, desc = name:match("^(%d+)_([%w_%-]+)%.sql$")
            if not num then
                return nil, name .. ": migration files are named NNN_description.sql"
            end
            local version = tonumber(num)
            if seen[version] then
                return nil, string.format("%s and %s share version %d", seen[version], name, version)
            end
            seen[version] = name
            local sql, rerr = read_file(dir .. "/" .. name)
            if not sql then
                return nil, rerr
            end
            out[#out + 1] = { version = version, name = desc, file = name, sql = sql,
                              checksum = crypto.hex(crypto.sha256(sql)) }
        end
    end
    table.sort(out, function(a, b) return a.version < b.version end)
    return out
end

local function exec(conn, sql, ...)
    local res, kind, state, msg = pg.exec(conn, sql, ...)
    if res == nil then
        return nil, db.make_error(kind, state, msg)
    end
    return pg.rows(res)
end

local function script(conn, sql)
    local res, kind, state, msg = pg.exec_script(conn, sql)
    if res == nil then
        return nil, db.make_error(kind, state, msg)
    end
    return pg.rows(res)
end

-- Creates the first admin from the bootstrap Secret; never touches an
-- existing user. Returns true, or nil, message.
local function bootstrap_admin(conn)
    local email = os.getenv("GLASGOW_BOOTSTRAP_ADMIN_EMAIL")
    local pw_file = os.getenv("GLASGOW_BOOTSTRAP_ADMIN_PASSWORD_FILE")
    if not email or email == "" then
        return true
    end
    if not pw_file or pw_file == "" then
        return nil, "GLASGOW_BOOTSTRAP_ADMIN_EMAIL is set but GLASGOW_BOOTSTRAP_ADMIN_PASSWORD_FILE is not"
    end
    local rows, err = exec(conn, "SELECT 1 FROM users WHERE role = 'admin' LIMIT 1")
    if not rows then
        return nil, tostring(err)
    end
    if #rows > 0 then
        say("bootstrap admin: an admin exists, nothing to do")
        return true
    end
    local password, rerr = read_file(pw_file)
    if not password then
        return nil, "GLASGOW_BOOTSTRAP_ADMIN_PASSWORD_FILE: " .. tostring(rerr)
    end
    password = password:gsub("\r?\n$", "")
    -- the same rules as the API's password schema, in characters, so the
    -- admin can log in with what the file holds
    local pwlib = require "glasgow.password"
    local chars = require("glasgow.schema").utf8_length(password)
    if not chars or chars < 8 or chars > pwlib.MAX_LENGTH then
        return nil, "GLASGOW_BOOTSTRAP_ADMIN_PASSWORD_FILE: the password must be valid UTF-8 " ..
                    "of 8 to " .. pwlib.MAX_LENGTH .. " characters"
    end
    local norm = email:gsub("^%s+", ""):gsub("%s+$", ""):lower()
    local hash, herr = pwlib.hash(password)
    if not hash then
        return nil, "bootstrap admin: cannot hash the password: " .. tostring(herr)
    end
    local ins, ierr = exec(conn, [[
        INSERT INTO users (email, name, role, password_hash) VALUES ($1, $2, 'admin', $3)
        ON CONFLICT ((lower(email))) DO NOTHING RETURNING id]], norm, "Administrator", hash)
    if not ins then
        return nil, tostring(ierr)
    end
    if #ins == 0 then
        say("bootstrap admin: %s exists as a non-admin user; left unchanged", norm)
    else
        say("bootstrap admin: created %s", norm)
    end
    return true
end

local function run(conn, dir)
    local files, err = list(dir)
    if not files then
        return fail("%s", err)
    end
    local ok, lerr = exec(conn, "SET statement_timeout = 0")
    if ok then
        ok, lerr = exec(conn, LOCK_SQL)
    end
    if not ok then
        return fail("cannot take the migration lock: %s", tostring(lerr))
    end
    ok, lerr = exec(conn, [[
        CREATE TABLE IF NOT EXISTS glasgow_migrations (
            version integer PRIMARY KEY,
            name text NOT NULL,
            checksum text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now())]])
    if not ok then
        return fail("%s", tostring(lerr))
    end
    local applied, aerr = exec(conn,
        "SELECT version, name, checksum FROM glasgow_migrations ORDER BY version")
    if not applied then
        return fail("%s", tostring(aerr))
    end
    local by_version, last = {}, 0
    for _, f in ipairs(files) do
        by_version[f.version] = f
    end
    local done = {}
    for _, row in ipairs(applied) do
        local f = by_version[row.version]
        if not f then
            return fail("migration %d (%s) was applied but its file is missing from %s",
                        row.version, row.name, dir)
        end
        if f.checksum ~= row.checksum then
            return fail("%s was changed after it was applied (checksum %s, recorded %s); "
                        .. "add a new migration instead", f.file, f.checksum:sub(1, 12),
                        row.checksum:sub(1, 12))
        end
        done[row.version] = true
        if row.version > last then
            last = row.version
        end
    end
    local pending = {}
    for _, f in ipairs(files) do
        if not done[f.version] then
            if f.version < last then
                return fail("%s is numbered below the last applied migration (%d)", f.file, last)
            end
            pending[#pending + 1] = f
        end
    end
    for _, f in ipairs(pending) do
        local t0 = core.monotonic_ms()
        local r, e = exec(conn, "BEGIN")
        if r then
            r, e = script(conn, f.sql)
        end
        if r then
            r, e = exec(conn, "INSERT INTO glasgow_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                        f.version, f.name, f.checksum)
        end
        if r then
            r, e = exec(conn, "COMMIT")
        end
        if not r then
            exec(conn, "ROLLBACK")
            return fail("%s failed, nothing of it was applied: %s", f.file, tostring(e))
        end
        say("applied %s (%d ms)", f.file, core.monotonic_ms() - t0)
    end
    if #pending == 0 then
        say("up to date (%d migrations applied)", #applied)
    end
    local bok, berr = bootstrap_admin(conn)
    if not bok then
        return fail("%s", berr)
    end
    return 0
end

function _M.main(dir)
    dir = dir or os.getenv("GLASGOW_MIGRATIONS_DIR") or "migrations"
    local conn, kind, state, msg = pg.acquire()
    if conn == nil then
        return fail("cannot connect: %s", tostring(db.make_error(kind, state, msg)))
    end
    local status = run(conn, dir)
    pg.release(conn)
    return status
end

return _M
