-- Authentication for the API: opaque bearer tokens.
--
-- A token is 32 random bytes sent as base64url; only its SHA-256 is stored
-- (auth_tokens), with an expiry and a revocation time. We chose opaque
-- tokens over HS256 JWTs: logout revokes at once, there is no signing key
-- to rotate or leak, and no algorithm field to trust; the cost is one
-- indexed lookup per authenticated request, on a database every such
-- request uses anyway.
local glasgow = require "glasgow"
local db = require "glasgow.db"
local crypto = require "glasgow.crypto"
local password = require "glasgow.password"

local fail = glasgow.fail
local tostring, type = tostring, type

local _M = {}

_M.TOKEN_TTL_S = 3600
_M.MAX_FAILURES = 5   -- failed login attempts per client ...
_M.WINDOW_S = 60      -- ... within this many seconds, then 429

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

-- The token from "Authorization: Bearer <token>" as raw bytes, or raises 401.
local function bearer(req)
    if req.query.access_token ~= nil or req.query.token ~= nil then
        fail(401, "invalid_request", "send the token in the Authorization header, not the URL",
             nil, INVALID)
    end
    local h = req.headers.authorization
    if h == nil then
        fail(401, "unauthenticated", "this endpoint needs a bearer token", nil, CHALLENGE)
    end
    if type(h) ~= "string" then
        fail(401, "invalid_token", "send one Authorization header", nil, INVALID)
    end
    local token = h:match("^[Bb]earer ([%w_%-]+)$")
    local raw = token and #token == 43 and crypto.base64url_decode(token)
    if not raw or #raw ~= 32 then
        fail(401, "invalid_token", "the Authorization header is not a valid bearer token", nil,
             INVALID)
    end
    return raw
end

-- Returns the caller {id, email, name, role} or raises 401.
function _M.authenticate(req)
    local raw = bearer(req)
    local rows = db.call([[
        SELECT u.id, u.email, u.name, u.role
          FROM auth_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > now()]],
        bytea(crypto.sha256(raw)))
    if #rows == 0 then
        fail(401, "invalid_token", "the token is unknown, expired or revoked", nil, INVALID)
    end
    local user = rows[1]
    user.token_hash = bytea(crypto.sha256(raw))
    return user
end

-- Like authenticate, but returns nil when no Authorization header is sent.
function _M.optional(req)
    if req.headers.authorization == nil and req.query.access_token == nil
        and req.query.token == nil then
        return nil
    end
    return _M.authenticate(req)
end

-- Counts one login attempt for client and returns the seconds to wait when
-- the client is over the limit. Counting before the password is checked
-- (and atomically, in one upsert) means simultaneous guesses cannot slip
-- past the limit; a successful login clears the count.
local function attempt(client)
    local rows = db.call([[
        INSERT INTO login_throttle (client, failures, window_start) VALUES ($1, 1, now())
        ON CONFLICT (client) DO UPDATE SET
            failures = CASE WHEN login_throttle.window_start > now() - make_interval(secs => $2)
                            THEN login_throttle.failures + 1 ELSE 1 END,
            window_start = CASE WHEN login_throttle.window_start > now() - make_interval(secs => $2)
                                THEN login_throttle.window_start ELSE now() END
        RETURNING failures,
                  ceil(extract(epoch FROM window_start + make_interval(secs => $2) - now()))
                  AS retry_after]],
        client, _M.WINDOW_S)
    local row = rows[1]
    if row.failures > _M.MAX_FAILURES then
        return math.max(1, tonumber(row.retry_after) or _M.WINDOW_S)
    end
end

-- Exchanges email and password for a token; raises 401 or 429.
function _M.login(email, pw, client)
    local retry = attempt(client)
    if retry then
        fail(429, "too_many_attempts", "too many failed logins; try again later", nil,
             { ["Retry-After"] = tostring(retry) })
    end
    email = _M.normalize_email(email)
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
    if err then
        error(err, 0) -- not checked (queue full): 429 or 503, never "wrong password"
    end
    if not ok then
        fail(401, "invalid_credentials", "the email or the password is wrong", nil, CHALLENGE)
    end
    db.call("DELETE FROM login_throttle WHERE client = $1", client)
    local raw = crypto.random(32)
    db.call([[INSERT INTO auth_tokens (token_hash, user_id, expires_at)
              VALUES ($1, $2, now() + make_interval(secs => $3))]],
            bytea(crypto.sha256(raw)), user.id, _M.TOKEN_TTL_S)
    return { access_token = crypto.base64url(raw), token_type = "Bearer",
             expires_in = _M.TOKEN_TTL_S }
end

-- Revokes the token the request was authenticated with.
function _M.logout(user)
    db.call("UPDATE auth_tokens SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL",
            user.token_hash)
end

-- Raises 404 unless user may see the record id (itself, or everything as
-- admin): someone else's record looks exactly like a missing one.
function _M.check_access(user, id)
    if user.role ~= "admin" and user.id ~= id then
        fail(404, "not_found", "no such user")
    end
end

return _M
