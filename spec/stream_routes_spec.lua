-- Raw-body routes (body = "stream") and binary responses: declared,
-- finalized for the C side, left unparsed, and documented in openapi.json.
require "core_stub"
local json = require "glasgow.json"

local function fresh(name)
    for _, m in ipairs({ "glasgow.app", "glasgow.openapi", "glasgow.errors" }) do
        package.loaded[m] = nil
    end
    return require(name)
end

local function upload()
    return 201, { ok = true }
end

local ROUTE = {
    method = "PUT", path = "/files/*name", handler = upload, body = "stream", max_body = 1000,
    params = { type = "object", properties = { name = { type = "string" } } },
    responses = { [200] = { description = "bytes", binary = true } },
}

describe("body = \"stream\"", function()
    it("is accepted and finalized as a streamed, non-JSON route", function()
        local app = fresh("glasgow.app")
        app.declare("f.lua", { ROUTE })
        local out = app.finalize()
        assert.is_false(out[1].json)
        assert.is_true(out[1].stream)
        assert.equal(1000, out[1].max_body)
    end)

    it("leaves the body alone: no Content-Type check, no JSON parsing", function()
        local app = fresh("glasgow.app")
        local seen
        app.declare("f.lua", { {
            method = "PUT", path = "/raw", body = "stream",
            handler = function(req)
                seen = req.body
                return 204
            end,
        } })
        app.finalize()
        local status = app.handle(1, { method = "PUT", path = "/raw", query = {}, params = {},
                                       headers = { ["content-type"] = "image/png" },
                                       body = "\137PNG not json" })
        assert.equal(204, status)
        assert.equal("\137PNG not json", seen)
    end)

    it("needs a method that takes a body", function()
        local app = fresh("glasgow.app")
        assert.has_error(function()
            app.declare("f.lua", { { method = "GET", path = "/x", handler = upload,
                                     body = "stream" } })
        end)
    end)

    it("other strings are still refused as a body schema", function()
        local app = fresh("glasgow.app")
        assert.has_error(function()
            app.declare("f.lua", { { method = "PUT", path = "/x", handler = upload,
                                     body = "streaming" } })
        end)
    end)

    it("appears in openapi.json as raw bytes in and out", function()
        local openapi = fresh("glasgow.openapi")
        local doc = json.decode(openapi.encode(openapi.document({ ROUTE })))
        local op = doc.paths["/files/{name}"].put
        local body = op.requestBody.content["application/octet-stream"]
        assert.same({ type = "string", format = "binary" }, body.schema)
        assert.same({ type = "string", format = "binary" },
                    op.responses["200"].content["application/octet-stream"].schema)
    end)
end)
