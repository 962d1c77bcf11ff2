-- glasgow.netaddr: client addresses as rate-limit keys.
--
--   netaddr.client_key("203.0.113.7")          -> "203.0.113.7"
--   netaddr.client_key("::ffff:203.0.113.7")   -> "203.0.113.7"
--   netaddr.client_key("2001:db8:1:2:3:4:5:6") -> "2001:db8:1:2::/64"
--
-- One IPv6 host usually holds a whole /64 (SLAAC, privacy addresses), so
-- counting per IPv6 address would give one client 2^64 fresh counters:
-- IPv6 addresses are keyed by their /64, IPv4 ones (and IPv4-mapped IPv6)
-- by the address. Input is what inet_ntop prints (the runtime's req.client);
-- anything else is returned unchanged.
local find, match, lower, format = string.find, string.match, string.lower, string.format
local gmatch, tonumber = string.gmatch, tonumber

local _M = {}

-- The 8 groups of an IPv6 address as numbers, or nil when s is not one.
local function groups(s)
    local head, tail = match(s, "^(.-)::(.*)$")
    local parts = {}
    local function add(list)
        if list == "" then
            return true
        end
        for g in gmatch(list .. ":", "([^:]*):") do
            if not match(g, "^%x%x?%x?%x?$") then
                return false
            end
            parts[#parts + 1] = tonumber(g, 16)
        end
        return true
    end
    if head then
        local before = {}
        if not add(head) then
            return nil
        end
        for i = 1, #parts do
            before[i] = parts[i]
        end
        parts = {}
        if not add(tail) then
            return nil
        end
        local after = parts
        if #before + #after > 7 then
            return nil
        end
        parts = before
        for _ = 1, 8 - #before - #after do
            parts[#parts + 1] = 0
        end
        for i = 1, #after do
            parts[#parts + 1] = after[i]
        end
    elseif not add(s) or #parts ~= 8 then
        return nil
    end
    return parts
end

-- The key under which client's requests are counted.
function _M.client_key(client)
    if type(client) ~= "string" or not find(client, ":", 1, true) then
        return client
    end
    local v4 = match(lower(client), "^::ffff:(%d+%.%d+%.%d+%.%d+)$")
    if v4 then
        return v4
    end
    local g = groups(client)
    if not g then
        return client
    end
    return format("%x:%x:%x:%x::/64", g[1], g[2], g[3], g[4])
end

return _M
