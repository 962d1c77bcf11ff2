-- glasgow.db: PostgreSQL for route handlers.
--
--   local db = require "glasgow.db"
--   local rows, affected = db.query("SELECT ... WHERE id = $1", id)  -- nil, err on failure
--   local rows = db.call(sql, ...)        -- the same, but raises err (mapped to HTTP)
--   db.transaction(function(tx) tx.call(sql, ...) ... return value end)
--
-- Parameters are always bound ($1, $2, ...), never interpolated. nil and
-- db.null are SQL NULL; tables are sent as JSON (for json/jsonb columns).
-- An err is a glasgow.errors object {kind, message, sqlstate, status, code,
-- retryable, public_message}: kind is "sql", "connection", "timeout",
-- "pool_timeout", "pool_full" or "invalid"; status is the HTTP status the
-- error maps to.
local pg = require "glasgow.pg"
local json = require "glasgow.json"
local errors = require "glasgow.errors"

local error, type, select, pcall, tostring = error, type, select, pcall, tostring
local sub = string.sub
local unpack = unpack

local function pack(...)
    return { n = select("#", ...), ... }
end

local _M = { null = json.null }

-- SQLSTATEs that are the client's fault, and what they answer.
local BY_STATE = {
    ["23505"] = { 409, "conflict" },        -- unique_violation
    ["23503"] = { 409, "conflict" },        -- foreign_key_violation
    ["23502"] = { 400, "invalid_input" },   -- not_null_violation
    ["23514"] = { 400, "invalid_input" },   -- check_violation
    ["22P02"] = { 400, "invalid_input" },   -- invalid_text_representation
    ["22021"] = { 400, "invalid_input" },   -- character_not_in_repertoire (NUL)
}

-- The message a client gets for each code; never the server's own text.
local PUBLIC_MESSAGE = {
    conflict = "the request conflicts with data that already exists",
    invalid_input = "a value in the request is not acceptable",
    internal = "internal error",
    unavailable = "the database is unavailable, retry shortly",
}

-- Builds the error object for (kind, sqlstate, message) from glasgow.pg.
local function make_error(kind, sqlstate, message)
    local e = { source = "db", kind = kind, sqlstate = sqlstate ~= "" and sqlstate or nil,
                message = message ~= nil and tostring(message) or kind }
    if kind == "sql" then
        local m = BY_STATE[sqlstate]
        if m then
            e.status, e.code = m[1], m[2]
        elseif sub(sqlstate, 1, 2) == "22" then
            e.status, e.code = 400, "invalid_input" -- data exceptions
        else
            e.status, e.code = 500, "internal"
        end
    elseif kind == "invalid" then
        e.status, e.code = 400, "invalid_input"
    else -- connection, timeout, pool_timeout, pool_full
        e.status, e.code, e.retryable = 503, "unavailable", true
    end
    -- What the client reads is always ours: PostgreSQL's text names tables,
    -- columns, constraints and values, and is only logged. A route that can
    -- say more (which field, which rule) catches the error and fails itself.
    e.public_message = PUBLIC_MESSAGE[e.code]
    return errors.make(e)
end
_M.make_error = make_error

-- Returns rows, affected, command tag; or nil, err.
local function run(conn, sql, ...)
    if type(sql) ~= "string" then
        error("bad argument #1 to 'query' (string expected, got " .. type(sql) .. ")", 3)
    end
    local res, kind, state, msg = pg.exec(conn, sql, ...)
    if res == nil then
        return nil, make_error(kind, state, msg)
    end
    return pg.rows(res)
end

-- How each statement text may share a connection (pg.share_class), cached;
-- bounded, since SQL built at run time would otherwise grow it forever.
local SHARE, nshare = {}, 0
local SHARE_MAX = 512

-- Runs one statement on a pooled connection; returns rows, affected or nil, err.
-- Plain reads and writes go to the pool, which may queue them behind other
-- requests' statements on a busy connection (GLASGOW_DB_PIPELINE_DEPTH);
-- anything else (SET, BEGIN, DDL, ...) gets a connection of its own.
function _M.query(sql, ...)
    local cls = SHARE[sql]
    if cls == nil then
        if type(sql) ~= "string" then
            error("bad argument #1 to 'query' (string expected, got " .. type(sql) .. ")", 2)
        end
        cls = pg.share_class(sql)
        if nshare >= SHARE_MAX then
            SHARE, nshare = {}, 0
        end
        SHARE[sql], nshare = cls, nshare + 1
    end
    if cls ~= 0 then
        local res, kind, state, msg = pg.query(cls, sql, ...)
        if res == nil then
            return nil, make_error(kind, state, msg)
        end
        local rows, affected = pg.rows(res)
        return rows, affected
    end
    local conn, kind, state, msg = pg.acquire()
    if conn == nil then
        return nil, make_error(kind, state, msg)
    end
    local rows, affected = run(conn, sql, ...)
    pg.release(conn)
    return rows, affected
end


-- Like query, but raises the error object (the request answers its status).
function _M.call(sql, ...)
    local rows, affected = _M.query(sql, ...)
    if rows == nil then
        error(affected, 0)
    end
    return rows, affected
end

-- Runs fn(tx) inside BEGIN/COMMIT on one connection. tx.query and tx.call
-- work like db.query and db.call. Commits when fn returns normally (its
-- results are returned); rolls back when fn raises (the error propagates)
-- or returns nil, err (returned as is). A failed COMMIT returns nil, err.
function _M.transaction(fn)
    if type(fn) ~= "function" then
        error("bad argument #1 to 'transaction' (function expected)", 2)
    end
    local conn, kind, state, msg = pg.acquire()
    if conn == nil then
        return nil, make_error(kind, state, msg)
    end
    local ok_begin, berr = run(conn, "BEGIN")
    if ok_begin == nil then
        pg.release(conn)
        return nil, berr
    end
    local tx = {}
    function tx.query(sql, ...)
        return run(conn, sql, ...)
    end
    function tx.call(sql, ...)
        local rows, affected = run(conn, sql, ...)
        if rows == nil then
            error(affected, 0)
        end
        return rows, affected
    end
    local results = pack(pcall(fn, tx))
    if not results[1] then
        run(conn, "ROLLBACK")
        pg.release(conn)
        error(results[2], 0)
    end
    if results[2] == nil and results[3] ~= nil then
        run(conn, "ROLLBACK")
        pg.release(conn)
        return nil, results[3]
    end
    local committed, cerr, tag = run(conn, "COMMIT")
    pg.release(conn)
    if committed == nil then
        return nil, cerr
    end
    if tag ~= "COMMIT" then
        -- a statement failed and fn ignored the error: PostgreSQL answers
        -- COMMIT with ROLLBACK, and nothing was written
        return nil, make_error("sql", "25P02",
                               "the transaction was rolled back: a statement in it failed")
    end
    return unpack(results, 2, results.n)
end

-- True when a database is configured for this process.
function _M.configured()
    return pg.configured()
end

-- Pool statistics of this worker: size, in_use, waiting, up.
function _M.stats()
    return pg.stats()
end

return _M
