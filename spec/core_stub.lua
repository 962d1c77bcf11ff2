-- Stands in for the C module glasgow.core when specs run under plain LuaJIT.
local logged = {}
package.preload["glasgow.core"] = function()
    return {
        limits = { max_json_depth = 16, max_body_bytes = 4096 },
        log = function(level, msg, extra)
            logged[#logged + 1] = { level = level, msg = msg, extra = extra }
        end,
        sleep = function() error("sleep: not in a request", 2) end,
        now = os.time,
        monotonic_ms = function() return os.clock() * 1000 end,
        request_id = function() return "spec" end,
    }
end
return { logged = logged }
