-- glasgow: the API route files use.
--
--   local glasgow = require "glasgow"
--   glasgow.sleep(ms)                 yields to the event loop
--   glasgow.fail(status, code, msg)   answers with an error body
--   glasgow.json.encode / decode / null
--   glasgow.log(level, msg, fields)
local core = require "glasgow.core"
local errors = require "glasgow.errors"
local json = require "glasgow.json"

local _M = {
    json = json,
    errors = errors,
    sleep = core.sleep,
    now = core.now,
    monotonic_ms = core.monotonic_ms,
    request_id = core.request_id,
    fail = errors.raise,
}

-- n random bytes (1..1024) from OpenSSL's generator, or nil, err: the one
-- random-bytes binding is glasgow.crypto.random, loaded when first used.
function _M.random_bytes(n)
    return require("glasgow.crypto").random(n)
end

-- Logs msg at level with optional fields (a table encoded as JSON members).
function _M.log(level, msg, fields)
    if fields ~= nil then
        return core.log(level, msg, json.encode(fields))
    end
    return core.log(level, msg)
end

return _M
