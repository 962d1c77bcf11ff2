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

-- n random bytes (1..1024) from OpenSSL's generator, or nil, err (an error
-- object of kind "crypto", status 500) when it fails; raises for a bad n.
-- The one random-bytes binding is glasgow.crypto.random, loaded when first
-- used (the specs run without it).
function _M.random_bytes(n)
    local bytes, why = require("glasgow.crypto").random(n)
    if bytes == nil then
        return nil, errors.make({ source = "crypto", kind = "crypto", status = 500,
                                  code = "internal", message = tostring(why) })
    end
    return bytes
end

-- Logs msg at level with optional fields (a table encoded as JSON members).
function _M.log(level, msg, fields)
    if fields ~= nil then
        return core.log(level, msg, json.encode(fields))
    end
    return core.log(level, msg)
end

return _M
