-- glasgow.password: scrypt password hashes as self-describing strings.
--
--   scrypt$ln=15,r=8,p=1$<salt>$<key>
--
-- N = 2^ln, r and p are the scrypt parameters the key was derived with;
-- salt (16 random bytes) and key (32 bytes) are base64url without padding.
-- The parameters travel with the hash, so raising _M.params later leaves
-- old hashes verifiable, and needs_rehash tells when to replace one.
--
-- Passwords are bytes, compared as scrypt sees them: as with every scrypt or
-- PBKDF2-HMAC, trailing NUL bytes of a password up to 64 bytes long do not
-- change the key (HMAC pads short keys with zeros).
--
-- The error contract is glasgow.errors': a failure to hash or to check is
-- returned as nil, err (raised as is, err answers its status), misuse (a
-- password that is not a string) raises. err.source is "password" and
-- err.kind one of:
--   too_long    400  the password is over MAX_BYTES bytes (hash only)
--   busy        429  this owner (user, account) already has its share of
--                    hashes queued: retryable, Retry-After
--   overloaded  503  the hashing queue is full: retryable, Retry-After
--   crypto      500  OpenSSL failed (the cause is logged, not shown)
-- verify answers true or false only when it could compare: a caller must
-- never take nil, err for a wrong password (a login answers err's status,
-- not 401).
local crypto = require "glasgow.crypto"
local errors = require "glasgow.errors"

local type = type
local tonumber, tostring = tonumber, tostring
local error = error
local format = string.format
local match = string.match
-- Inside a request, glasgow.core.scrypt runs the derivation on a job thread
-- so the worker keeps serving; without the runtime (unit tests) the
-- synchronous crypto.scrypt does the same computation.
local has_core, core = pcall(require, "glasgow.core")
local scrypt = has_core and core.scrypt or crypto.scrypt
local equal = crypto.equal
local random = crypto.random
local b64 = crypto.base64url
local b64_decode = crypto.base64url_decode

local _M = {}

-- The cost of new hashes: N = 2^15, r = 8, p = 1 needs 32 MiB per hash.
-- Tests lower ln for speed; a change makes needs_rehash true for old hashes.
_M.params = { ln = 15, r = 8, p = 1 }

local SALT_LEN = 16
local KEY_LEN = 32

-- A password is at most MAX_LENGTH characters (the route schemas say so,
-- and JSON Schema's maxLength counts code points) and the hasher takes up
-- to MAX_BYTES bytes: four times as many, the longest UTF-8 encoding of a
-- code point, so every password a schema admits can be hashed. Length
-- costs scrypt nothing (PBKDF2 hashes an HMAC key longer than 64 bytes
-- once), so a generous limit is safe.
_M.MAX_LENGTH = 1024
_M.MAX_BYTES = 4 * _M.MAX_LENGTH
local MAX_PASSWORD = _M.MAX_BYTES

-- Bounds on parameters and sizes accepted from a stored string, so that a
-- tampered row can neither make crypto.scrypt raise nor make a login cost
-- much more than a normal one: N*r at most 2^20 (128 MiB, four times the
-- default) and N*r*p at most 2^21 (eight times the default work).
local MAX_LN = 20
local MAX_RP = 16
local MAX_NR = 2 ^ 20
local MAX_NRP = 2 ^ 21
local MIN_BYTES, MAX_BYTES = 16, 64 -- salt and key lengths
local MAX_STORED = 256

local function is_int(x, lo, hi)
    return type(x) == "number" and x % 1 == 0 and x >= lo and x <= hi
end

-- True when scrypt with N = 2^ln, r, p is within the bounds above (and the
-- RFC 7914 rule N < 2^(16r), which only binds for r = 1).
local function params_ok(ln, r, p)
    if not (is_int(ln, 1, MAX_LN) and is_int(r, 1, MAX_RP) and is_int(p, 1, MAX_RP)) then
        return false
    end
    return ln < 16 * r and 2 ^ ln * r <= MAX_NR and 2 ^ ln * r * p <= MAX_NRP
end

-- Returns ln, r, p, salt, key from a stored string, or nil when it is not
-- exactly of the form hash() writes or its parameters are out of bounds.
local function parse(stored)
    if type(stored) ~= "string" or #stored > MAX_STORED then
        return nil
    end
    local ln, r, p, salt, key =
        match(stored, "^scrypt%$ln=([1-9]%d?),r=([1-9]%d?),p=([1-9]%d?)%$([^$]+)%$([^$]+)$")
    if not ln then
        return nil
    end
    ln, r, p = tonumber(ln), tonumber(r), tonumber(p)
    if not params_ok(ln, r, p) then
        return nil
    end
    salt, key = b64_decode(salt), b64_decode(key)
    if not salt or not key or #salt < MIN_BYTES or #salt > MAX_BYTES
        or #key < MIN_BYTES or #key > MAX_BYTES then
        return nil
    end
    return ln, r, p, salt, key
end

local function failure(kind, status, code, message, retryable)
    return errors.make({ source = "password", kind = kind, status = status, code = code,
                         message = message, retryable = retryable })
end

-- The error object for a failed derivation (what scrypt returned).
local function scrypt_failure(err)
    if err == "busy" then
        return failure("busy", 429, "too_many_requests",
                       "too many password checks for this account at once; retry shortly", true)
    elseif err == "overloaded" then
        return failure("overloaded", 503, "unavailable",
                       "the server is busy checking passwords; retry shortly", true)
    end
    return failure("crypto", 500, "internal", "password hashing failed: " .. tostring(err))
end

local function check_password(password, fname)
    if type(password) ~= "string" then
        error(format("bad argument #1 to '%s' (string expected, got %s)", fname, type(password)), 3)
    end
end

-- Returns the stored form of a new hash of password with a fresh salt and
-- _M.params, or nil, err (an error object, above): too_long beyond MAX_BYTES
-- bytes, busy or overloaded when the hashing queue refuses the job for
-- owner (a string naming who the hash is for; optional), crypto when OpenSSL fails. Raises when
-- password is not a string or _M.params is out of the bounds verify accepts
-- (such a hash could never be verified).
function _M.hash(password, owner)
    check_password(password, "hash")
    if #password > MAX_PASSWORD then
        return nil, failure("too_long", 400, "validation_failed", "password too long")
    end
    local params = _M.params
    local ln, r, p = params.ln, params.r, params.p
    if not params_ok(ln, r, p) then
        error("glasgow.password: params out of bounds", 2)
    end
    local salt, err = random(SALT_LEN)
    if not salt then
        return nil, scrypt_failure(err)
    end
    local derived
    derived, err = scrypt(password, salt, 2 ^ ln, r, p, KEY_LEN, owner)
    if not derived then
        return nil, scrypt_failure(err)
    end
    return format("scrypt$ln=%d,r=%d,p=%d$%s$%s", ln, r, p, b64(salt), b64(derived))
end

-- Returns true when password matches stored, false when it does not: a
-- wrong password, a password over MAX_BYTES bytes, or a stored value that is
-- not a well-formed hash within bounds (never raises for bad stored data).
-- Returns nil, err (an error object) when the check could not be made: the
-- queue refused it (busy, overloaded; owner as for hash) or OpenSSL failed;
-- a caller must answer err, never take it for a wrong password. The key
-- comparison is constant-time. Raises when password is not a string.
function _M.verify(password, stored, owner)
    check_password(password, "verify")
    if #password > MAX_PASSWORD then
        return false
    end
    local ln, r, p, salt, stored_key = parse(stored)
    if not ln then
        return false
    end
    local derived, err = scrypt(password, salt, 2 ^ ln, r, p, #stored_key, owner)
    if not derived then
        return nil, scrypt_failure(err)
    end
    return equal(derived, stored_key)
end

-- A well-formed hash that no password is expected to match.
local DUMMY_SALT = b64("glasgow.password")
local DUMMY_KEY = b64(crypto.sha256("glasgow.password dummy key"))

-- Returns false after the same work as verify against a hash made with
-- _M.params, so that a login for an unknown account costs as much as one
-- with a wrong password and meets the same queue (nil, err exactly when
-- verify would give it). Raises when password is not a string.
function _M.dummy_verify(password, owner)
    check_password(password, "dummy_verify")
    local params = _M.params
    local dummy = format("scrypt$ln=%s,r=%s,p=%s$%s$%s", params.ln, params.r, params.p,
        DUMMY_SALT, DUMMY_KEY)
    local ok, err = _M.verify(password, dummy, owner)
    if ok == nil then
        return nil, err
    end
    return false
end

-- Returns true when stored should be replaced by a new hash (at the next
-- successful login): its parameters, salt or key length differ from what
-- hash() makes now, or it is not a well-formed hash at all.
function _M.needs_rehash(stored)
    local ln, r, p, salt, key = parse(stored)
    if not ln then
        return true
    end
    local params = _M.params
    return ln ~= params.ln or r ~= params.r or p ~= params.p
        or #salt ~= SALT_LEN or #key ~= KEY_LEN
end

return _M
