-- Authentication for the API: opaque bearer tokens.
--
-- A token is 32 random bytes sent as base64url; only its SHA-256 is stored
-- (auth_tokens), with an expiry and a revocation time. We chose opaque
-- tokens over HS256 JWTs: logout revokes at once, there is no signing key
-- to rotate or leak, and no algorithm field to trust. The lookup's answer
-- is cached per worker (glasgow.authcache, runtime/lua_authcache.c) for at
-- most GLASGOW_AUTH_CACHE_TTL_S, and evicted at once when a token or its
-- user changes: through PostgreSQL notifications sent by triggers
-- (migrations/008_auth_notify.sql) for any writer, and synchronously in
-- this process by forget_token/forget_user below, called after a
-- revocation commits and before its response is sent.
local glasgow = require "glasgow"
local db = require "glasgow.db"
local crypto = require "glasgow.crypto"
local password = require "glasgow.password"
local netaddr = require "glasgow.netaddr"
local authcache = require "glasgow.authcache"

local limits = require("glasgow.core").limits

local fail = glasgow.fail
local tostring, tonumber, type, error, ipairs = tostring, tonumber, type, error, ipairs
local ceil, max = math.ceil, math.max

local _M = {}

-- A setting from the environment (GLASGOW_TOKEN_TTL_S, GLASGOW_LOGIN_*, ...),
-- read when used: the runtime sets every one at start-up.
local function limit(name)
    local v = limits and limits[name]
    if v == nil then
        error("glasgow.core.limits." .. name .. " is not set", 2)
    end
    return v
end

local CHALLENGE = { ["WWW-Authenticate"] = 'Bearer realm="glasgow"' }
local INVALID = { ["WWW-Authenticate"] = 'Bearer realm="glasgow", error="invalid_token"' }

-- Normalises an email the way the users table stores it.
function _M.normalize_email(email)
    return (email:gsub("^%s+", ""):gsub("%s+$", ""):lower())
end

-- bytea parameter in PostgreSQL's hex input format.
local function bytea(raw)
    return "\\x" .. crypto.hex(raw)
end

-- The Authorization header's value, or raises 401 when the request has
-- none, has several, or carries a token in the URL.
local function authorization(req)
    local query = req.query
    if query.access_token ~= nil or query.token ~= nil then
        fail(401, "invalid_request", "send the token in the Authorization header, not the URL",
             nil, INVALID)
    end
    -- req:header reads the one field without building req.headers (every
    -- name and value the client sent) on every authenticated request
    local h, n = req:header("authorization")
    if h == nil then
        fail(401, "unauthenticated", "this endpoint needs a bearer token", nil, CHALLENGE)
    end
    if n > 1 then
        fail(401, "invalid_token", "send one Authorization header", nil, INVALID)
    end
    return h
end

local check = authcache.check

-- Returns the caller {id, email, name, role, token_hash} or raises 401;
-- token_hash is the token's SHA-256 (32 raw bytes; bytea() makes it a
-- parameter). authcache.check reads "Bearer <token>" (43 base64url
-- characters for 32 bytes), hashes the token and looks it up in one C call.
-- A token the worker's cache holds costs no query; otherwise the answer
-- is stored unless an invalidation came while the query ran (the ticket).
function _M.authenticate(req)
    local h, id, email, name, role = check(authorization(req))
    if not h then
        fail(401, "invalid_token", "the Authorization header is not a valid bearer token", nil,
             INVALID)
    end
    if id then
        return { id = id, email = email, name = name, role = role, token_hash = h }
    end
    local ticket = authcache.ticket()
    local rows = db.call([[
        SELECT u.id, u.email, u.name, u.role,
               extract(epoch FROM t.expires_at - now())::float8 AS ttl
          FROM auth_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > now()]],
        bytea(h))
    if #rows == 0 then
        fail(401, "invalid_token", "the token is unknown, expired or revoked", nil, INVALID)
    end
    local user = rows[1]
    authcache.put(ticket, h, user.ttl, user.id, user.email, user.name, user.role)
    user.ttl = nil
    user.token_hash = h
    return user
end

-- Tells every worker of this process to stop trusting what it cached for
-- user id. Call it after a change to the user (deletion, role, password,
-- email, name) has committed and before the response is sent: earlier, a
-- concurrent lookup could cache the row as it was before the commit.
-- Other processes learn it from the database's notification.
function _M.forget_user(id)
    authcache.forget_user(id)
end

-- Like authenticate, but returns nil when no Authorization header is sent.
function _M.optional(req)
    if req:header("authorization") == nil and req.query.access_token == nil
        and req.query.token == nil then
        return nil
    end
    return _M.authenticate(req)
end

-- Login throttling (migrations/003_auth_throttle.sql). Every attempt is
-- counted as a failure for its account and its address *before* the
-- password is checked, in one atomic upsert, so simultaneous guesses cannot
-- slip past the count; an attempt that turns out right (or that could not
-- be checked) takes back only its own count. Past the free failures each
-- further one doubles the delay before the next attempt; an attempt within
-- the delay answers 429 with Retry-After, is not counted and checks no
-- password. Nothing is ever locked: the delay is capped, and the failures
-- are forgotten after a quiet window. The account (or device) row comes
-- first: every statement here locks it before the address row.
local ATTEMPT = [[
    INSERT INTO auth_throttle AS t (key, failures, last_failure)
    VALUES ($1, 1, now()), ($2, 1, now())
    ON CONFLICT (key) DO UPDATE SET
        failures = CASE
            WHEN auth_throttle_wait(t.failures, t.last_failure,
                                    CASE WHEN t.key = $1 THEN $3::int ELSE $4::int END,
                                    $5::float8, $6::float8, $7::float8) > 0 THEN t.failures
            WHEN t.last_failure < now() - make_interval(secs => $7::float8) THEN 1
            ELSE t.failures + 1 END,
        last_failure = CASE
            WHEN auth_throttle_wait(t.failures, t.last_failure,
                                    CASE WHEN t.key = $1 THEN $3::int ELSE $4::int END,
                                    $5::float8, $6::float8, $7::float8) > 0 THEN t.last_failure
            ELSE now() END,
        prev_failure = CASE
            WHEN auth_throttle_wait(t.failures, t.last_failure,
                                    CASE WHEN t.key = $1 THEN $3::int ELSE $4::int END,
                                    $5::float8, $6::float8, $7::float8) > 0 THEN t.prev_failure
            ELSE t.last_failure END
    RETURNING key, last_failure = now() AS counted, now() AS at,
              auth_throttle_wait(failures, last_failure,
                                 CASE WHEN key = $1 THEN $3::int ELSE $4::int END,
                                 $5::float8, $6::float8, $7::float8) AS wait]]

-- Takes back the attempt counted at time at for each key given (a success,
-- or a check that could not be made): its count, and its time unless a
-- later attempt has set another. Failures others made stay. The rows are
-- locked in the order ATTEMPT inserts them in (the account or device row,
-- then the address row), so the two statements can never deadlock.
local function forget(at, account, address)
    db.call([[WITH locked AS (SELECT key FROM auth_throttle WHERE key = $2 OR key = $3
                              ORDER BY key = $3, key FOR UPDATE)
              UPDATE auth_throttle t
                 SET failures = greatest(t.failures - 1, 0),
                     last_failure = CASE WHEN t.last_failure = $1::timestamptz
                                         THEN coalesce(t.prev_failure, t.last_failure)
                                         ELSE t.last_failure END
                FROM locked WHERE t.key = locked.key]], at, account or db.null,
            address or db.null)
end

-- Counts one login attempt for account and address and returns the time it
-- was counted at (for forget), or raises 429 when either must still wait
-- (then nothing is counted).
local function attempt(account, address)
    local rows = db.call(ATTEMPT, account, address, limit("login_account_failures"),
                         limit("login_address_failures"), limit("login_base_delay_s"),
                         limit("login_max_delay_s"), limit("login_window_s"))
    local retry, counted, at = 0, {}, nil
    for _, row in ipairs(rows) do
        at = row.at
        if row.counted then
            counted[row.key] = true
        else
            retry = max(retry, ceil(tonumber(row.wait) or 1))
        end
    end
    if retry > 0 then
        forget(at, counted[account] and account, counted[address] and address)
        fail(429, "too_many_attempts", "too many failed logins; try again later", nil,
             { ["Retry-After"] = tostring(max(1, retry)) })
    end
    return at
end

-- Removes rows whose failures are forgotten anyway, and devices unused for
-- their lifetime, now and then (about one login in 64), so that guessed
-- emails do not pile up.
local function sweep()
    if crypto.random(1):byte() < 4 then
        db.call("DELETE FROM auth_throttle WHERE last_failure < now() - make_interval(secs => $1)",
                limit("login_window_s"))
        db.call("DELETE FROM auth_devices WHERE last_login < now() - make_interval(secs => $1)",
                limit("login_device_ttl_s"))
    end
end

local DEVICE_COOKIE = "glasgow_device"

-- The raw device token in the request's Cookie header(s), or nil.
local function device_cookie(req)
    local h = req.headers.cookie
    if type(h) == "table" then
        h = table.concat(h, "; ")
    end
    if type(h) ~= "string" then
        return nil
    end
    local v = (";" .. h):match(";%s*" .. DEVICE_COOKIE .. "=([%w_%-]+)")
    local raw = v and #v == 43 and crypto.base64url_decode(v)
    return raw and #raw == 32 and raw or nil
end

-- The throttle key of the device token raw when it was set by a successful
-- login to the account email within GLASGOW_LOGIN_DEVICE_TTL_S, else nil.
-- A login that presents one is counted per device instead of per account:
-- the owner, on a device they logged in from before, is not slowed by
-- guesses made elsewhere (and a stolen cookie still only allows the free
-- failures of an account, then the growing delay).
local function device_key(raw, email)
    local ttl = limit("login_device_ttl_s")
    if not raw or ttl == 0 then
        return nil
    end
    local h = crypto.sha256(raw)
    local rows = db.call([[SELECT 1 AS ok FROM auth_devices d JOIN users u ON u.id = d.user_id
                            WHERE d.token_hash = $1 AND u.email = $2
                              AND d.last_login > now() - make_interval(secs => $3)]],
                         bytea(h), email, ttl)
    return rows[1] and "device:" .. crypto.hex(h) or nil
end

-- After a successful login of user id: refreshes the device that was
-- presented, or makes a new one. Returns the Set-Cookie value, or nil when
-- device cookies are off.
local function remember_device(raw, known, id)
    local ttl = limit("login_device_ttl_s")
    if ttl == 0 then
        return nil
    end
    if not known then
        raw = crypto.random(32)
        db.call("INSERT INTO auth_devices (token_hash, user_id) VALUES ($1, $2)",
                bytea(crypto.sha256(raw)), id)
    else
        db.call("UPDATE auth_devices SET last_login = now() WHERE token_hash = $1",
                bytea(crypto.sha256(raw)))
    end
    return DEVICE_COOKIE .. "=" .. crypto.base64url(raw) .. "; Max-Age=" .. ttl ..
           "; Path=/v1/auth/token; HttpOnly; Secure; SameSite=Strict"
end

-- Exchanges email and password for a token; returns the token body and the
-- response headers, or raises 401, 429 or 503. An unknown email and a wrong
-- password take the same steps, cost the same derivation and get the same
-- answer.
function _M.login(req, email, pw)
    email = _M.normalize_email(email)
    local raw_device = device_cookie(req)
    local device = device_key(raw_device, email)
    -- an IPv6 client is counted by its /64, which one host usually holds whole
    local account = device or "account:" .. email
    local address = "address:" .. netaddr.client_key(req.client)
    local at = attempt(account, address)
    local rows = db.call("SELECT id, password_hash FROM users WHERE email = $1", email)
    local user = rows[1]
    -- the hashing queue counts the work against the account asked for, known
    -- or not, so one account's guesses cannot crowd out other logins
    local owner = "account:" .. email
    local ok, err
    if user then
        ok, err = password.verify(pw, user.password_hash, owner)
    else
        ok, err = password.dummy_verify(pw, owner) -- the same work, so timing tells nothing
    end
    if ok == nil then
        -- not checked (queue full, OpenSSL failed): not a failure of the
        -- caller's, and never "wrong password": answer err's own status
        -- (429 or 503 with Retry-After, 500)
        forget(at, account, address)
        error(err, 0)
    end
    if ok ~= true then
        fail(401, "invalid_credentials", "the email or the password is wrong", nil, CHALLENGE)
    end
    forget(at, account, address)
    sweep()
    local ttl = limit("token_ttl_s")
    local raw = crypto.random(32)
    db.call([[INSERT INTO auth_tokens (token_hash, user_id, expires_at)
              VALUES ($1, $2, now() + make_interval(secs => $3))]],
            bytea(crypto.sha256(raw)), user.id, ttl)
    local headers = { ["Cache-Control"] = "no-store" }
    headers["Set-Cookie"] = remember_device(raw_device, device ~= nil, user.id)
    return { access_token = crypto.base64url(raw), token_type = "Bearer", expires_in = ttl },
           headers
end

-- Revokes the token the request was authenticated with.
function _M.logout(user)
    db.call("UPDATE auth_tokens SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL",
            bytea(user.token_hash))
    authcache.forget_token(user.token_hash) -- committed: see forget_user
end

-- Counts one password change of user id, or raises 429 with Retry-After
-- when the user has had its GLASGOW_PASSWORD_CHANGES in the current window,
-- or 404 when there is no such user. Counted before the new password is
-- hashed, so that over the limit a request costs no hashing.
function _M.count_password_change(id)
    local rows = db.call([[
        INSERT INTO password_change_limit AS t (user_id, changes, window_start)
        SELECT id, 1, now() FROM users WHERE id = $1
        ON CONFLICT (user_id) DO UPDATE SET
            changes = CASE WHEN t.window_start > now() - make_interval(secs => $2::float8)
                           THEN t.changes + 1 ELSE 1 END,
            window_start = CASE WHEN t.window_start > now() - make_interval(secs => $2::float8)
                                THEN t.window_start ELSE now() END
        RETURNING changes,
                  ceil(extract(epoch FROM window_start + make_interval(secs => $2::float8) - now()))
                  AS retry_after]], id, limit("password_change_window_s"))
    local row = rows[1]
    if not row then
        fail(404, "not_found", "no such user")
    end
    if row.changes > limit("password_changes") then
        fail(429, "too_many_password_changes", "too many password changes; try again later", nil,
             { ["Retry-After"] = tostring(max(1, tonumber(row.retry_after) or 1)) })
    end
end

-- Ends the sessions of user id (revokes its tokens) inside transaction tx,
-- after its password or role changed. The token the change was made with
-- survives when its owner made the change: the caller has just proved to
-- hold it, and ending it would only log out the person who reacted (a
-- user who changes a password because another session looks stolen keeps
-- the session they did it from, and every other one ends). When an admin
-- changes someone else, every token of that user ends. The user's device
-- cookies end too: a device that logged in with the old password must not
-- be spared the account's login delay. The caller calls forget_user(id)
-- once tx has committed.
function _M.end_sessions(tx, id, caller)
    local keep = caller.id == id and bytea(caller.token_hash) or db.null
    tx.call([[UPDATE auth_tokens SET revoked_at = now()
               WHERE user_id = $1 AND revoked_at IS NULL
                 AND ($2::bytea IS NULL OR token_hash <> $2::bytea)]], id, keep)
    tx.call("DELETE FROM auth_devices WHERE user_id = $1", id)
end

-- Raises 404 unless user may see the record id (itself, or everything as
-- admin): someone else's record looks exactly like a missing one. id may
-- be in either case (a uuid path parameter); only a non-admin's check
-- needs it lower-cased.
function _M.check_access(user, id)
    if user.role ~= "admin" and user.id ~= id:lower() then
        fail(404, "not_found", "no such user")
    end
end

return _M
