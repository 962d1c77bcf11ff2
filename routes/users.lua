-- The users resource: /v1/users and /v1/users/:id.
--
-- Who may do what: an admin everything; a user reads, changes and deletes
-- only its own record (someone else's answers 404, exactly like a missing
-- one) and its listing holds only itself. Creating users is for admins,
-- and for anyone (as role "user") when GLASGOW_ALLOW_SIGNUP=true.
local glasgow = require "glasgow"
local db = require "glasgow.db"
local password = require "glasgow.password"
local auth = require "routes._auth"

local fail = glasgow.fail
local concat, tostring, error, unpack = table.concat, tostring, error, unpack

local ALLOW_SIGNUP = os.getenv("GLASGOW_ALLOW_SIGNUP") == "true"
local MAX_LIMIT = 100
local COLUMNS = "id, email, name, role, created_at, updated_at"
-- built once: a concatenation in the handler would make (and hash) the
-- statement's text again on every request
local SELECT_ONE = "SELECT " .. COLUMNS .. " FROM users WHERE id = $1"

-- order=... values and the fixed SQL each stands for; nothing from the
-- request is ever spliced into SQL.
local ORDER = {
    created_at = "created_at ASC, id ASC",
    ["-created_at"] = "created_at DESC, id DESC",
    email = "email ASC",
    ["-email"] = "email DESC",
    name = "name ASC, id ASC",
    ["-name"] = "name DESC, id DESC",
}
local ORDER_NAMES = {}
for k in pairs(ORDER) do
    ORDER_NAMES[#ORDER_NAMES + 1] = k
end
table.sort(ORDER_NAMES)

local ID = {
    type = "object",
    properties = { id = { type = "string", format = "uuid" } },
    required = { "id" },
    additionalProperties = false,
}

local USER = {
    type = "object",
    properties = {
        id = { type = "string", format = "uuid" },
        email = { type = "string", format = "email" },
        name = { type = "string" },
        role = { type = "string", enum = { "admin", "user" } },
        created_at = { type = "string", format = "date-time" },
        updated_at = { type = "string", format = "date-time" },
    },
}

-- Limits agree with the table: the users.name CHECK counts characters,
-- like maxLength; emails are ASCII once clean_email accepts them, so the
-- byte check there and the column's character check are the same.
local NAME = { type = "string", minLength = 1, maxLength = 200 }
local PASSWORD = { type = "string", minLength = 8, maxLength = password.MAX_LENGTH }
-- The password being replaced, checked against the stored hash: no
-- minimum (a password set under older rules must still be accepted as
-- proof), the same maximum as a new one (every stored one fits).
local CURRENT_PASSWORD = {
    type = "string", minLength = 1, maxLength = password.MAX_LENGTH,
    description = "The password being replaced. Required when users change their own " ..
                  "password (admins too); not needed, and ignored, when an admin sets " ..
                  "another user's.",
}
local ROLE = { type = "string", enum = { "admin", "user" } }
local EMAIL = { type = "string", minLength = 3, maxLength = 300 }

-- The largest body the schemas admit: every field at its maximum length,
-- each character sent as a JSON escape (a surrogate pair is 12 bytes for
-- one character), with room for keys and spaces. A body the schema would
-- accept is never refused with 413.
local MAX_BODY = 12 * (EMAIL.maxLength + NAME.maxLength + PASSWORD.maxLength +
                       CURRENT_PASSWORD.maxLength) + 1024

-- Emails are trimmed and lower-cased before they are checked and stored,
-- so " Ada@Example.com" and "ada@example.com" are the same account.
local function clean_email(email)
    local e = auth.normalize_email(email)
    if not e:match("^[%w%.%%%+%-_]+@[%w%-]+%.[%w%.%-]+$") or #e > 254 or e:find("%.%.") then
        fail(400, "validation_failed", "body.email: is not a valid email address",
             { field = "body.email", reason = "is not a valid email address" })
    end
    return e
end

-- PostgreSQL refuses NUL in text; say so about the field rather than
-- letting the database answer.
local function clean_name(name)
    if name:find("%z") then
        fail(400, "validation_failed", "body.name: must not contain NUL characters",
             { field = "body.name", reason = "must not contain NUL characters" })
    end
    return name
end

-- The stored form of a new password, or raises: a hash that could not be
-- made (the hashing queue is full: 429 or 503 with Retry-After) stops the
-- request before anything is written. owner is whom the hashing queue
-- counts the work against: the caller, or the new account on sign-up.
local function hash_password(pw, owner)
    local hash, err = password.hash(pw, owner)
    if not hash then
        error(err, 0)
    end
    return hash
end

-- A field error: 400 validation_failed naming field, like the schema's.
local function invalid(field, reason)
    fail(400, "validation_failed", field .. ": " .. reason, { field = field, reason = reason })
end

-- Checks current (body.current_password) against user id's stored hash
-- and returns that hash, or raises: 403 invalid_current_password when it
-- does not match, 404 when the user is gone, and the hasher's own error
-- (429 or 503 with Retry-After, 500) when no comparison could be made,
-- which is never taken for a wrong password. owner is whom the hashing
-- queue counts the work against.
local function check_current_password(id, current, owner)
    local row = db.call("SELECT password_hash FROM users WHERE id = $1", id)[1]
    if not row then
        fail(404, "not_found", "no such user")
    end
    local ok, err = password.verify(current, row.password_hash, owner)
    if ok == nil then
        error(err, 0)
    end
    if ok ~= true then
        fail(403, "invalid_current_password", "body.current_password: is not the current password",
             { field = "body.current_password", reason = "is not the current password" })
    end
    return row.password_hash
end

local function one(rows)
    local row = rows[1]
    if not row then
        fail(404, "not_found", "no such user")
    end
    return row
end

local function unique_email(err)
    if err.sqlstate == "23505" then
        fail(409, "conflict", "a user with this email already exists", { field = "body.email" })
    end
    error(err, 0)
end

local function create(req)
    local caller = auth.optional(req)
    local b = req.body
    local role = "user"
    if caller and caller.role == "admin" then
        role = b.role or "user"
    elseif b.role ~= nil and b.role ~= "user" then
        fail(403, "forbidden", "only an admin may create admins")
    elseif caller or not ALLOW_SIGNUP then
        if not caller then
            fail(401, "unauthenticated", "creating users needs an admin token", nil,
                 { ["WWW-Authenticate"] = 'Bearer realm="glasgow"' })
        end
        fail(403, "forbidden", "only an admin may create users")
    end
    local email = clean_email(b.email)
    local name = clean_name(b.name)
    local hash = hash_password(b.password, caller and "user:" .. caller.id or "signup:" .. email)
    local rows, err = db.query("INSERT INTO users (email, name, role, password_hash) " ..
                               "VALUES ($1, $2, $3, $4) RETURNING " .. COLUMNS,
                               email, name, role, hash)
    if not rows then
        unique_email(err)
    end
    local user = rows[1]
    return 201, user, { Location = "/v1/users/" .. user.id }
end

-- Appends a Link header value for one page.
local function link(req, rel, offset, limit)
    local q = { "limit=" .. limit, "offset=" .. offset }
    for _, k in ipairs({ "order", "email", "created_after", "created_before", "count" }) do
        local v = req.query[k]
        if v ~= nil then
            q[#q + 1] = k .. "=" .. tostring(v):gsub("[^%w%-%._~]", function(c)
                return string.format("%%%02X", c:byte())
            end)
        end
    end
    return "<" .. req.path .. "?" .. concat(q, "&") .. ">; rel=\"" .. rel .. "\""
end

local function list(req)
    local caller = auth.authenticate(req)
    local q = req.query
    local limit, offset = q.limit or 20, q.offset or 0
    -- args is filled through an explicit count, never #args, so no value
    -- can shift the numbering of the next ones
    local where, args, nargs = {}, {}, 0
    local function arg(v)
        assert(v ~= nil, "a nil SQL parameter")
        nargs = nargs + 1
        args[nargs] = v
        return "$" .. nargs
    end
    if caller.role ~= "admin" then
        where[#where + 1] = "id = " .. arg(caller.id)
    end
    if q.email then
        where[#where + 1] = "email = " .. arg(auth.normalize_email(q.email))
    end
    if q.created_after then
        where[#where + 1] = "created_at >= " .. arg(q.created_after)
    end
    if q.created_before then
        where[#where + 1] = "created_at < " .. arg(q.created_before)
    end
    local cond = #where > 0 and (" WHERE " .. concat(where, " AND ")) or ""
    local order = ORDER[q.order or "created_at"]
    local nfilter = nargs
    local page = " LIMIT " .. arg(limit) .. " OFFSET " .. arg(offset)
    local rows = db.call("SELECT " .. COLUMNS .. " FROM users" .. cond .. " ORDER BY " .. order ..
                         page, unpack(args, 1, nargs))
    local body = { items = rows, limit = limit, offset = offset }
    local headers = {}
    local links = {}
    if q.count then
        local c = db.call("SELECT count(*) AS n FROM users" .. cond, unpack(args, 1, nfilter))
        body.total = c[1].n
        headers["X-Total-Count"] = tostring(body.total)
        if offset + limit < body.total then
            links[#links + 1] = link(req, "next", offset + limit, limit)
        end
    elseif #rows == limit then
        links[#links + 1] = link(req, "next", offset + limit, limit)
    end
    if offset > 0 then
        links[#links + 1] = link(req, "prev", math.max(0, offset - limit), limit)
    end
    if #links > 0 then
        headers.Link = concat(links, ", ")
    end
    return 200, body, headers
end

-- UUIDs compare case-insensitively; the table stores them lower-case.
local function user_id(req)
    return req.params.id:lower()
end

local function get(req)
    local caller = auth.authenticate(req)
    local id = req.params.id -- PostgreSQL reads a uuid in either case
    auth.check_access(caller, id)
    return 200, one(db.call(SELECT_ONE, id))
end

local function update(req)
    local caller = auth.authenticate(req)
    local id = user_id(req)
    auth.check_access(caller, id)
    local b = req.body
    if next(b) == nil then
        fail(400, "validation_failed", "body: give at least one field to change",
             { field = "body", reason = "is empty" })
    end
    if b.role ~= nil and caller.role ~= "admin" then
        fail(403, "forbidden", "only an admin may change roles")
    end
    -- Whoever changes their own password proves they know the current one,
    -- so a stolen token alone cannot take the account over; an admin
    -- setting someone else's needs only the admin's token.
    local self_change = b.password ~= nil and caller.id == id
    if b.current_password ~= nil and b.password == nil then
        invalid("body.current_password", "is only accepted with body.password")
    end
    if self_change and b.current_password == nil then
        invalid("body.current_password", "is required to change your own password")
    end
    -- Every value is computed (and every check made) before the statement
    -- is built; set() numbers parameters with its own count, so a missing
    -- value raises instead of shifting the ones after it.
    local sets, args, nargs = {}, {}, 0
    local function set(col, v)
        assert(v ~= nil, "a nil SQL parameter")
        nargs = nargs + 1
        args[nargs] = v
        sets[#sets + 1] = col .. " = $" .. nargs
    end
    if b.email ~= nil then
        set("email", clean_email(b.email))
    end
    if b.name ~= nil then
        set("name", clean_name(b.name))
    end
    if b.role ~= nil then
        set("role", b.role)
    end
    local checked_hash -- the hash current_password was checked against
    if b.password ~= nil then
        -- counted first: a wrong current password is one of the user's
        -- GLASGOW_PASSWORD_CHANGES, so guessing it through a stolen token
        -- is as slow as changing the password
        auth.count_password_change(id)
        if self_change then
            checked_hash = check_current_password(id, b.current_password, "user:" .. caller.id)
        end
        set("password_hash", hash_password(b.password, "user:" .. caller.id))
    end
    nargs = nargs + 1
    args[nargs] = id
    local sql = "UPDATE users SET " .. concat(sets, ", ") .. ", updated_at = now()" ..
                " WHERE id = $" .. nargs .. " RETURNING " .. COLUMNS
    local rows, err = db.transaction(function(tx)
        local old = tx.call("SELECT role, password_hash FROM users WHERE id = $1 FOR UPDATE",
                            id)[1]
        if not old then
            return {}
        end
        if checked_hash and old.password_hash ~= checked_hash then
            -- another change landed between the check and this statement:
            -- the password just proved is no longer the current one
            fail(409, "conflict", "the password changed while this request ran; " ..
                 "retry with the current password", { field = "body.current_password" })
        end
        local r, e = tx.query(sql, unpack(args, 1, nargs))
        if not r then
            return nil, e
        end
        if b.password ~= nil or (b.role ~= nil and b.role ~= old.role) then
            auth.end_sessions(tx, id, caller)
        end
        return r
    end)
    if not rows then
        unique_email(err)
    end
    auth.forget_user(id) -- committed; cached tokens of id may hold its old role or email
    return 200, one(rows)
end

local function delete(req)
    local caller = auth.authenticate(req)
    req.params.id = user_id(req)
    auth.check_access(caller, req.params.id)
    local rows, affected = db.query("DELETE FROM users WHERE id = $1", req.params.id)
    if not rows then
        if affected.sqlstate == "23503" then
            -- files keep their bucket (and so its owner) until they are deleted
            fail(409, "user_has_files", "the user still has files; delete them first")
        end
        error(affected, 0)
    end
    if affected == 0 then
        fail(404, "not_found", "no such user")
    end
    auth.forget_user(req.params.id) -- committed: its tokens are gone
    return 204
end

return {
    {
        method = "POST", path = "/v1/users", handler = create, tags = { "users" },
        summary = "Create a user (admins; anyone when sign-up is open)",
        body = {
            type = "object",
            properties = { email = EMAIL, name = NAME, password = PASSWORD, role = ROLE },
            required = { "email", "name", "password" },
            additionalProperties = false,
        },
        max_body = MAX_BODY, auth = "optional",
        responses = {
            [201] = { description = "Created", schema = USER },
            [401] = { description = "No token while sign-up is closed, or a token that is " ..
                                   "malformed, unknown, expired or revoked." },
            [403] = { description = "Only an admin may create users (with sign-up open, " ..
                                   "anyone may create a user of role \"user\")." },
            [409] = { description = "A user with this email already exists." },
            [429] = { description = "Too many password hashes queued for this caller; retry." },
            [503] = { description = "The database is unavailable or the password hashing " ..
                                   "queue is full; retry." },
        },
    },
    {
        method = "GET", path = "/v1/users", handler = list, tags = { "users" }, auth = "bearer",
        summary = "List users (admins see all, users see themselves)",
        query = {
            type = "object",
            properties = {
                limit = { type = "integer", minimum = 1, maximum = MAX_LIMIT },
                offset = { type = "integer", minimum = 0, maximum = 1000000 },
                order = { type = "string", enum = ORDER_NAMES },
                email = { type = "string", minLength = 1, maxLength = 300 },
                created_after = { type = "string", format = "date-time" },
                created_before = { type = "string", format = "date-time" },
                count = { type = "boolean" },
            },
            additionalProperties = false,
        },
        responses = { [200] = { description = "A page of users", schema = {
            type = "object",
            properties = { items = { type = "array", items = USER }, limit = { type = "integer" },
                           offset = { type = "integer" }, total = { type = "integer" } },
        } } },
    },
    {
        method = "GET", path = "/v1/users/:id", handler = get, params = ID, tags = { "users" },
        auth = "bearer",
        summary = "Read a user", responses = { [200] = { description = "The user", schema = USER } },
    },
    {
        method = "PATCH", path = "/v1/users/:id", handler = update, params = ID, tags = { "users" },
        summary = "Change a user's email, name, password or (admins) role",
        description = "Changing one's own password needs current_password (400 " ..
                      "validation_failed without it, 403 invalid_current_password when it " ..
                      "is wrong); an admin setting another user's password does not.",
        body = {
            type = "object",
            properties = { email = EMAIL, name = NAME, password = PASSWORD, role = ROLE,
                           current_password = CURRENT_PASSWORD },
            additionalProperties = false,
        },
        max_body = MAX_BODY, auth = "bearer",
        responses = {
            [200] = { description = "The changed user", schema = USER },
            [403] = { description = "Only an admin may change roles." },
            [409] = { description = "A user with this email already exists." },
            [429] = { description = "Too many password changes in the window " ..
                                   "(GLASGOW_PASSWORD_CHANGES), or too many password hashes " ..
                                   "queued; retry after Retry-After." },
            [503] = { description = "The database is unavailable or the password hashing " ..
                                   "queue is full; retry." },
        },
    },
    {
        method = "DELETE", path = "/v1/users/:id", handler = delete, params = ID, tags = { "users" },
        summary = "Delete a user", auth = "bearer",
        responses = { [204] = { description = "Deleted" },
                      [409] = { description = "The user still has files; delete them first." } },
    },
}
