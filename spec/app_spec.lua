local stub = require "core_stub"

-- app keeps its routes in module state: load a fresh copy per test
local function fresh_app()
    for _, name in ipairs({ "glasgow.app", "glasgow.json", "glasgow.errors" }) do
        package.loaded[name] = nil
    end
    return require "glasgow.app"
end

local function ok_handler()
    return 200, { ok = true }
end

describe("glasgow.app declare", function()
    it("accepts a minimal route and finalize adds openapi.json and the docs page", function()
        local app = fresh_app()
        app.declare("a.lua", { { method = "GET", path = "/a", handler = ok_handler } })
        local out = app.finalize()
        assert.are.equal(4, #out)
        assert.are.equal("/a", out[1].path)
        assert.are.equal("/openapi.json", out[2].path)
        assert.are.equal("/docs", out[3].path)
        assert.are.equal("/docs/:name", out[4].path)
        assert.are.equal(0, out[1].max_body)
    end)

    it("accepts auth and puts it in the document's security", function()
        local app = fresh_app()
        app.declare("a.lua", { { method = "GET", path = "/a", handler = ok_handler,
                                 auth = "bearer" } })
        app.finalize()
        local _, body = app.handle(2, { method = "GET", path = "/openapi.json", query = {},
                                        headers = {}, params = {}, id = "r" })
        assert.truthy(body:find('"security":[{"bearerAuth":[]}]', 1, true), body)
    end)

    local bad = {
        { "not a table", 42, "must return a table" },
        { "map instead of array", { x = {} }, "array of routes" },
        { "unknown method", { { method = "FETCH", path = "/a", handler = ok_handler } }, "method" },
        { "relative path", { { method = "GET", path = "a", handler = ok_handler } }, "path" },
        { "missing handler", { { method = "GET", path = "/a" } }, "handler" },
        { "typo field", { { method = "GET", path = "/a", handler = ok_handler, hanlder = 1 } },
          "unknown field" },
        { "negative max_body", { { method = "POST", path = "/a", handler = ok_handler,
                                   max_body = -1 } }, "max_body" },
        { "param without schema", { { method = "GET", path = "/a/:id", handler = ok_handler,
                                      params = { type = "object", properties = {} } } },
          "has no schema" },
        { "an unknown auth", { { method = "GET", path = "/a", handler = ok_handler,
                                 auth = "admin" } }, 'auth must be "bearer"' },
        { "a streamed body on GET", { { method = "GET", path = "/a", handler = ok_handler,
                                        body = "stream" } }, "takes a body" },
        { "a body string other than stream", { { method = "PUT", path = "/a",
                                                 handler = ok_handler, body = "raw" } },
          'schema or "stream"' },
    }
    for _, case in ipairs(bad) do
        it("rejects " .. case[1] .. " with file:line", function()
            local app = fresh_app()
            local okk, err = pcall(app.declare, "r.lua", case[2])
            assert.is_false(okk)
            assert.truthy(err:find("^r%.lua:%d+"), err)
            assert.truthy(err:find(case[3], 1, true), err)
        end)
    end

    it("tells the host which routes declare auth = \"bearer\"", function()
        local app = fresh_app()
        app.declare("a.lua", { { method = "PUT", path = "/f", handler = ok_handler, auth = "bearer" },
                               { method = "PUT", path = "/g", handler = ok_handler,
                                 auth = "optional" },
                               { method = "PUT", path = "/h", handler = ok_handler } })
        local out = app.finalize()
        assert.is_true(out[1].bearer)
        assert.is_false(out[2].bearer)
        assert.is_false(out[3].bearer)
    end)

    it("declares a streamed body: stream flag, limit, no JSON, binary in OpenAPI", function()
        local app = fresh_app()
        app.declare("a.lua", { { method = "PUT", path = "/f", handler = ok_handler,
                                 body = "stream", max_body = 1000 },
                               { method = "POST", path = "/g", handler = ok_handler,
                                 body = "stream" } })
        local out = app.finalize()
        assert.is_true(out[1].stream)
        assert.is_false(out[1].json)
        assert.are.equal(1000, out[1].max_body)
        assert.is_true(out[2].max_body > 0)
        local _, text = app.routes()[3].decl.handler() -- GET /openapi.json
        local doc = require("glasgow.json").decode(text)
        local content = doc.paths["/f"].put.requestBody.content
        assert.are.same({ type = "string", format = "binary" },
                        content["application/octet-stream"].schema)
    end)

    it("reports conflicting routes with both places", function()
        local app = fresh_app()
        app.declare("a.lua", { { method = "GET", path = "/u/:id", handler = ok_handler,
                                 params = { type = "object", properties = { id = { type = "string" } } } } })
        app.declare("b.lua", { { method = "GET", path = "/u/:uid", handler = ok_handler,
                                 params = { type = "object", properties = { uid = { type = "string" } } } } })
        local okk, err = pcall(app.finalize)
        assert.is_false(okk)
        assert.truthy(err:find("^b%.lua:%d+"), err)
        assert.truthy(err:find("a.lua:", 1, true), err)
    end)
end)

describe("glasgow.app handle", function()
    local json = require "glasgow.json"

    local function setup(routes)
        local app = fresh_app()
        app.declare("t.lua", routes)
        app.finalize()
        return app
    end

    local function req(t)
        t.method = t.method or "GET"
        t.path = t.path or "/"
        t.id = "rid"
        t.params = t.params or {}
        t.query = t.query or {}
        t.headers = t.headers or {}
        return t
    end

    it("encodes table bodies as JSON", function()
        local app = setup({ { method = "GET", path = "/x", handler = ok_handler } })
        local status, body, headers = app.handle(1, req({ path = "/x" }))
        assert.are.equal(200, status)
        assert.are.same({ ok = true }, json.decode(body))
        -- the Content-Type alone comes back as a string, not a table
        assert.are.equal("application/json", headers)
    end)

    it("returns a string body's Content-Type as a string, other headers as a table", function()
        local app = setup({
            { method = "GET", path = "/t", handler = function() return 200, "hi" end },
            { method = "GET", path = "/h", handler = function() return 200, "hi", { ["X-A"] = "1" } end },
            { method = "GET", path = "/e", handler = function() return 204 end },
        })
        local _, body, headers = app.handle(1, req({ path = "/t" }))
        assert.are.equal("hi", body)
        assert.are.equal("text/plain; charset=utf-8", headers)
        _, _, headers = app.handle(2, req({ path = "/h" }))
        assert.are.same({ ["X-A"] = "1", ["Content-Type"] = "text/plain; charset=utf-8" }, headers)
        local status
        status, body, headers = app.handle(3, req({ path = "/e" }))
        assert.are.equal(204, status)
        assert.are.equal("", body)
        assert.are.same({}, headers)
    end)

    it("ignores what a handler returns after a streamed response, but not an error", function()
        local app = setup({
            { method = "GET", path = "/s", handler = function(r)
                r.responded = true -- what req:respond sets
                return "anything"
            end },
            { method = "GET", path = "/e", handler = function(r)
                r.responded = true
                error("midway")
            end },
        })
        local status, body, headers, streamed = app.handle(1, req({ path = "/s" }))
        assert.are.equal(200, status)
        assert.are.equal("", body)
        assert.are.same({}, headers)
        assert.is_true(streamed)
        local s2, _, _, streamed2 = app.handle(2, req({ path = "/e" }))
        assert.are.equal(500, s2)
        assert.is_nil(streamed2)
    end)

    it("answers 404 and 405 in the error shape", function()
        local app = setup({})
        local status, body = app.handle(0, req({ path = "/nope" }))
        assert.are.equal(404, status)
        local e = json.decode(body).error
        assert.are.equal("not_found", e.code)
        assert.are.equal("rid", e.request_id)
        local s2, _, h2 = app.handle(-1, req({ method = "POST", path = "/x", allow = "GET, HEAD" }))
        assert.are.equal(405, s2)
        assert.are.equal("GET, HEAD", h2.Allow)
    end)

    it("hides unexpected errors behind a 500 and logs them", function()
        local app = setup({ { method = "GET", path = "/x",
                              handler = function() error("db password=hunter2") end } })
        local status, body = app.handle(1, req({ path = "/x" }))
        assert.are.equal(500, status)
        assert.falsy(body:find("hunter2", 1, true))
        assert.truthy(stub.logged[#stub.logged].extra:find("hunter2", 1, true))
    end)

    it("validates query parameters", function()
        local app = setup({ {
            method = "GET", path = "/x",
            handler = function(r) return 200, { n = r.query.n } end,
            query = { type = "object", properties = { n = { type = "integer", maximum = 5 } },
                      additionalProperties = false },
        } })
        local s1, b1 = app.handle(1, req({ path = "/x", query = { n = "3" } }))
        assert.are.equal(200, s1)
        assert.are.equal(3, json.decode(b1).n)
        local s2, b2 = app.handle(1, req({ path = "/x", query = { n = "9" } }))
        assert.are.equal(400, s2)
        assert.are.equal("query.n", json.decode(b2).error.details.field)
        local s3 = app.handle(1, req({ path = "/x", query = { m = "1" } }))
        assert.are.equal(400, s3)
    end)

    it("refuses {} for an array and [] for an object in a JSON body", function()
        local app = setup({ {
            method = "POST", path = "/x",
            handler = function(r) return 200, r.body end,
            body = { type = "object", additionalProperties = false,
                     properties = { tags = { type = "array", items = { type = "string" } },
                                    meta = { type = "object" } } },
        } })
        local function post(text)
            return app.handle(1, req({ method = "POST", path = "/x", body = text,
                                       headers = { ["content-type"] = "application/json" } }))
        end
        for _, case in ipairs({
            { '{"tags":{}}', "body.tags", "must be an array" },
            { '{"meta":[]}', "body.meta", "must be an object" },
            { "[]", "body", "must be an object" },
        }) do
            local status, body, headers = post(case[1])
            assert.are.equal(400, status, case[1])
            assert.are.equal("application/json", headers["Content-Type"])
            local e = json.decode(body).error
            assert.are.equal("validation_failed", e.code)
            assert.are.same({ field = case[2], reason = case[3] }, e.details)
        end
        local status, body = post('{"meta":{},"tags":[]}')
        assert.are.equal(200, status)
        assert.are.equal('{"meta":{},"tags":[]}', body)
    end)
end)

describe("glasgow.json", function()
    local json = require "glasgow.json"
    it("refuses nesting deeper than the limit", function()
        local v, err = json.decode(string.rep("[", 17) .. string.rep("]", 17))
        assert.is_nil(v)
        assert.truthy(err)
        assert.truthy(json.decode(string.rep("[", 16) .. string.rep("]", 16)))
    end)
    it("refuses numbers that overflow to infinity", function()
        local v, err = json.decode('{"a":[1e999]}')
        assert.is_nil(v)
        assert.are.equal("number out of range at byte 7", err)
    end)
    it("keeps null as a sentinel", function()
        local v = json.decode('{"a":null}')
        assert.are.equal(json.null, v.a)
        assert.are.equal('{"a":null}', json.encode(v))
    end)
    it("raises on misuse", function()
        assert.has_error(function() json.decode(nil) end)
    end)
end)
