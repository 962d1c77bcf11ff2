-- Examples of a path parameter, a validated JSON body, a query string and
-- a handler that waits without blocking its worker.
local glasgow = require "glasgow"

return {
    {
        method = "PUT",
        path = "/v1/greetings/:name",
        summary = "Compose a greeting for a name",
        params = {
            type = "object",
            properties = { name = { type = "string", minLength = 1, maxLength = 64 } },
            required = { "name" },
            additionalProperties = false,
        },
        body = {
            type = "object",
            properties = {
                greeting = { type = "string", minLength = 1, maxLength = 100 },
                times = { type = "integer", minimum = 1, maximum = 10 },
            },
            required = { "greeting" },
            additionalProperties = false,
        },
        -- the name is not looked up: the derived 404 cannot happen
        responses = { [200] = { description = "The greeting" }, [404] = false },
        handler = function(req)
            local times = req.body.times or 1
            local parts = {}
            for i = 1, times do
                parts[i] = req.body.greeting
            end
            return 200, { name = req.params.name, text = table.concat(parts, " ") .. ", " ..
                                                         req.params.name .. "!" }
        end,
    },
    {
        method = "GET",
        path = "/v1/sleep",
        summary = "Answer after waiting ms milliseconds (non-blocking)",
        query = {
            type = "object",
            properties = { ms = { type = "integer", minimum = 0, maximum = 60000 } },
            required = { "ms" },
            additionalProperties = false,
        },
        handler = function(req)
            local t0 = glasgow.monotonic_ms()
            glasgow.sleep(req.query.ms)
            return 200, { slept_ms = glasgow.monotonic_ms() - t0 }
        end,
    },
}
