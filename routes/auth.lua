-- POST /v1/auth/token and POST /v1/auth/logout.
local auth = require "routes._auth"

return {
    {
        method = "POST",
        path = "/v1/auth/token",
        summary = "Exchange an email and a password for a bearer token",
        tags = { "auth" },
        body = {
            type = "object",
            properties = {
                email = { type = "string", minLength = 3, maxLength = 254 },
                password = { type = "string", minLength = 1, maxLength = 1024 },
            },
            required = { "email", "password" },
            additionalProperties = false,
        },
        max_body = 4096,
        responses = { [200] = { description = "A token", schema = {
            type = "object",
            properties = {
                access_token = { type = "string" },
                token_type = { type = "string", enum = { "Bearer" } },
                expires_in = { type = "integer" },
            },
        } } },
        handler = function(req)
            return 200, auth.login(req.body.email, req.body.password, req.client),
                   { ["Cache-Control"] = "no-store" }
        end,
    },
    {
        method = "POST",
        path = "/v1/auth/logout",
        summary = "Revoke the token this request carries",
        tags = { "auth" },
        handler = function(req)
            auth.logout(auth.authenticate(req))
            return 204
        end,
    },
}
