-- POST /v1/auth/token and POST /v1/auth/logout.
local glasgow = require "glasgow"
local auth = require "routes._auth"
local password = require "glasgow.password"

local EMAIL = { type = "string", minLength = 3, maxLength = 254 }
local PASSWORD = { type = "string", minLength = 1, maxLength = password.MAX_LENGTH }

return {
    {
        method = "POST",
        path = "/v1/auth/token",
        summary = "Exchange an email and a password for a bearer token",
        tags = { "auth" },
        body = {
            type = "object",
            properties = { email = EMAIL, password = PASSWORD },
            required = { "email", "password" },
            additionalProperties = false,
        },
        -- every character of both fields as a 12-byte JSON escape, and room
        -- for the keys: a body the schema admits is never refused with 413
        max_body = 12 * (EMAIL.maxLength + PASSWORD.maxLength) + 1024,
        responses = {
            [200] = { description = "A token", schema = {
                type = "object",
                properties = {
                    access_token = { type = "string" },
                    token_type = { type = "string", enum = { "Bearer" } },
                    expires_in = { type = "integer" },
                },
            } },
            [401] = { description = "The email or the password is wrong." },
            [429] = { description = "Too many failed logins for this account or address, or " ..
                                   "too many password checks queued; retry after Retry-After." },
            [503] = { description = "The database is unavailable or the password hashing " ..
                                   "queue is full; retry." },
        },
        handler = function(req)
            -- PostgreSQL refuses NUL in text: say which field, before the
            -- throttle's statement would answer a vague 400
            if req.body.email:find("%z") then
                glasgow.fail(400, "validation_failed", "body.email: must not contain NUL characters",
                             { field = "body.email", reason = "must not contain NUL characters" })
            end
            local body, headers = auth.login(req, req.body.email, req.body.password)
            return 200, body, headers
        end,
    },
    {
        method = "POST",
        path = "/v1/auth/logout",
        summary = "Revoke the token this request carries",
        tags = { "auth" },
        auth = "bearer",
        responses = { [204] = { description = "Revoked" } },
        handler = function(req)
            auth.logout(auth.authenticate(req))
            return 204
        end,
    },
}
