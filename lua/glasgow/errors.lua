-- glasgow.errors: error objects that carry an HTTP status.
--
-- A handler raises one (glasgow.fail) to answer with that status and the
-- standard body {"error":{"code","message","details","request_id"}}.
-- Anything else raised becomes a 500 whose details are only logged.
local _M = {}

local mt = {}
mt.__index = mt
mt.__tostring = function(e)
    return string.format("%d %s: %s", e.status, e.code, e.message)
end

-- Returns a new error object; status is an HTTP status (400..599).
function _M.new(status, code, message, details)
    if type(status) ~= "number" or status < 400 or status > 599 or status % 1 ~= 0 then
        error("bad argument #1 to 'new' (HTTP error status expected)", 2)
    end
    if type(code) ~= "string" then
        error("bad argument #2 to 'new' (string expected)", 2)
    end
    return setmetatable({
        status = status,
        code = code,
        message = message or code,
        details = details,
    }, mt)
end

-- Raises a new error object (never returns).
function _M.raise(status, code, message, details, headers)
    local e = _M.new(status, code, message, details)
    e.headers = headers
    error(e, 0)
end

-- Returns true when e is an error object made here.
function _M.is(e)
    return getmetatable(e) == mt
end

return _M
