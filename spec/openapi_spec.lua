-- Specs for lua/glasgow/openapi.lua.

local json = require "glasgow.json"
local openapi = require "glasgow.openapi"
local schema = require "glasgow.schema"

local null = json.null

local function handler() end

local ERROR_CONTENT = { ["application/json"] = { schema = { ["$ref"] = "#/components/schemas/Error" } } }

local ERROR_RESPONSE = {
    description = "Any other error (500 for a fault of the server).",
    content = ERROR_CONTENT,
}

local RETRY_AFTER = { ["Retry-After"] = { description = "Seconds to wait before retrying, when known.",
                                          schema = { type = "integer", minimum = 1 } } }

-- The status keys of an operation's responses, sorted.
local function statuses(op)
    local keys = {}
    for k in pairs(op.responses) do
        keys[#keys + 1] = k
    end
    table.sort(keys)
    return keys
end

local USER = {
    type = "object",
    required = { "id", "email" },
    properties = {
        id = { type = "string", format = "uuid" },
        email = { type = "string", format = "email" },
        tags = { type = "array", items = { type = "string" } },
    },
}

local function routes()
    return {
        {
            method = "GET", path = "/v1/users/:id", handler = handler,
            summary = "Fetch a user", description = "Returns one user.",
            tags = { "users" },
            params = { type = "object", required = { "id" },
                       properties = { id = { type = "string", format = "uuid",
                                             description = "User id" } } },
            responses = { [200] = { description = "The user", schema = USER },
                          [404] = {} },
        },
        {
            method = "POST", path = "/v1/users", handler = handler,
            body = { type = "object", required = { "email" }, additionalProperties = false,
                     properties = { email = { type = "string", format = "email" } } },
            responses = { [201] = { schema = USER } },
        },
        {
            method = "GET", path = "/v1/users", handler = handler,
            query = { type = "object", required = { "limit" }, additionalProperties = false,
                      properties = {
                          limit = { type = "integer", minimum = 1, description = "Page size" },
                          after = { type = "string" },
                      } },
        },
        { method = "DELETE", path = "/v1/users/:id", handler = handler },
        { method = "get", path = "/files/*key", handler = handler },
    }
end

describe("glasgow.openapi", function()
    describe("document", function()
        local doc
        before_each(function()
            doc = openapi.document(routes(), { title = "Test", version = "1.2.3" })
        end)

        it("has the top-level fields", function()
            assert.equal("3.1.0", doc.openapi)
            assert.same({ title = "Test", version = "1.2.3" }, doc.info)
            assert.is_table(doc.components.schemas.Error)
        end)

        it("defaults info", function()
            local d = openapi.document({})
            assert.same({ title = "Glasgow API", version = "0" }, d.info)
            assert.same({}, d.paths)
        end)

        it("keeps info.description", function()
            local d = openapi.document({}, { description = "About" })
            assert.equal("About", d.info.description)
        end)

        it("converts path templates", function()
            local keys = {}
            for k in pairs(doc.paths) do
                keys[#keys + 1] = k
            end
            table.sort(keys)
            assert.same({ "/files/{key}", "/v1/users", "/v1/users/{id}" }, keys)
            assert.is_table(doc.paths["/v1/users/{id}"].get)
            assert.is_table(doc.paths["/v1/users/{id}"].delete)
            assert.is_table(doc.paths["/v1/users"].get)
            assert.is_table(doc.paths["/v1/users"].post)
        end)

        it("lowercases methods", function()
            assert.is_table(doc.paths["/files/{key}"].get)
        end)

        it("builds operationIds", function()
            assert.equal("get_v1_users__id", doc.paths["/v1/users/{id}"].get.operationId)
            assert.equal("delete_v1_users__id", doc.paths["/v1/users/{id}"].delete.operationId)
            assert.equal("post_v1_users", doc.paths["/v1/users"].post.operationId)
            assert.equal("get_files__key", doc.paths["/files/{key}"].get.operationId)
        end)

        it("copies summary, description and tags", function()
            local op = doc.paths["/v1/users/{id}"].get
            assert.equal("Fetch a user", op.summary)
            assert.equal("Returns one user.", op.description)
            assert.same({ "users" }, op.tags)
            assert.is_nil(doc.paths["/v1/users"].post.summary)
        end)

        it("declares path parameters from params", function()
            assert.same({
                { name = "id", ["in"] = "path", required = true, description = "User id",
                  schema = { type = "string", format = "uuid", description = "User id" } },
            }, doc.paths["/v1/users/{id}"].get.parameters)
        end)

        it("declares undeclared path parameters as strings", function()
            assert.same({
                { name = "id", ["in"] = "path", required = true, schema = { type = "string" } },
            }, doc.paths["/v1/users/{id}"].delete.parameters)
        end)

        it("declares wildcard parameters", function()
            local p = doc.paths["/files/{key}"].get.parameters[1]
            assert.equal("key", p.name)
            assert.equal("path", p["in"])
            assert.is_true(p.required)
            assert.truthy(p.description:find("/", 1, true))
        end)

        it("declares query parameters in name order", function()
            assert.same({
                { name = "after", ["in"] = "query", required = false,
                  schema = { type = "string" } },
                { name = "limit", ["in"] = "query", required = true, description = "Page size",
                  schema = { type = "integer", minimum = 1, description = "Page size" } },
            }, doc.paths["/v1/users"].get.parameters)
        end)

        it("omits parameters when there are none", function()
            assert.is_nil(doc.paths["/v1/users"].post.parameters)
        end)

        it("turns body into a required JSON requestBody", function()
            local rb = doc.paths["/v1/users"].post.requestBody
            assert.is_true(rb.required)
            assert.same(routes()[2].body, rb.content["application/json"].schema)
            assert.is_nil(doc.paths["/v1/users"].get.requestBody)
        end)

        it("uses string status keys and adds the errors and the error default", function()
            assert.same({
                ["200"] = { description = "The user",
                            content = { ["application/json"] = { schema = USER } } },
                ["400"] = { description = "The request is malformed, or a path parameter does " ..
                                          "not validate (error.details names the field and the " ..
                                          "reason).",
                            content = ERROR_CONTENT },
                ["404"] = { description = "Not Found", content = ERROR_CONTENT },
                ["503"] = { description = "The server is shutting down; retry.",
                            headers = RETRY_AFTER, content = ERROR_CONTENT },
                default = ERROR_RESPONSE,
            }, doc.paths["/v1/users/{id}"].get.responses)
        end)

        it("names responses without a description by their reason phrase", function()
            assert.equal("Created", doc.paths["/v1/users"].post.responses["201"].description)
        end)

        it("defaults responses to 200 OK", function()
            local res = doc.paths["/v1/users"].get.responses
            assert.same({ description = "OK" }, res["200"])
            assert.same({ "200", "400", "503", "default" }, statuses(doc.paths["/v1/users"].get))
            assert.equal("The request is malformed, or the query string does not validate " ..
                         "(error.details names the field and the reason).", res["400"].description)
        end)

        it("describes the error envelope", function()
            local e = doc.components.schemas.Error
            assert.is_true(schema.check(e))
            local body = { error = { code = "not_found", message = "no such user",
                                     details = { id = "x" }, request_id = "r1" } }
            assert.equal(body, schema.validate(e, body))
            assert.equal("string", e.properties.error.properties.request_id.type)
            assert.is_table(e.properties.error.properties.details)
            assert.is_nil(e.properties.error.properties.details.type)
        end)

        it("copies schemas instead of sharing them", function()
            local r = routes()
            local d = openapi.document(r)
            local s = d.paths["/v1/users"].post.requestBody.content["application/json"].schema
            assert.are_not.equal(r[2].body, s)
            s.properties.email.type = "integer"
            assert.equal("string", r[2].body.properties.email.type)
        end)

        it("accepts string status keys and ranges", function()
            local d = openapi.document({ { method = "GET", path = "/", handler = handler,
                responses = { ["204"] = {}, ["4XX"] = { description = "Client error" } } } })
            local res = d.paths["/"].get.responses
            assert.equal("No Content", res["204"].description)
            assert.equal("Client error", res["4XX"].description)
        end)

        it("accepts routes given as a map", function()
            local d = openapi.document({ ping = { method = "GET", path = "/ping", handler = handler } })
            assert.equal("get_ping", d.paths["/ping"].get.operationId)
        end)

        it("disambiguates colliding operationIds deterministically", function()
            local function build(order)
                local r = {
                    { method = "GET", path = "/a-b", handler = handler },
                    { method = "GET", path = "/a_b", handler = handler },
                    { method = "GET", path = "/a.b", handler = handler },
                }
                local list = {}
                for i, n in ipairs(order) do
                    list[i] = r[n]
                end
                local d = openapi.document(list)
                return { d.paths["/a-b"].get.operationId, d.paths["/a.b"].get.operationId,
                         d.paths["/a_b"].get.operationId }
            end
            local expected = { "get_a_b", "get_a_b_2", "get_a_b_3" }
            assert.same(expected, build({ 1, 2, 3 }))
            assert.same(expected, build({ 3, 2, 1 }))
            assert.same(expected, build({ 2, 3, 1 }))
        end)

        local bad = {
            { "routes not a table", "x", "bad argument #1" },
            { "info not a table", {}, "bad argument #2", "x" },
            { "info title not a string", {}, "info.title must be a string", { title = 1 } },
            { "route not a table", { 1 }, "route 1 must be a table" },
            { "missing method", { { path = "/", handler = handler } }, "bad method" },
            { "unknown method", { { method = "FETCH", path = "/", handler = handler } },
              "bad method FETCH" },
            { "missing path", { { method = "GET", handler = handler } }, "path must be a string" },
            { "relative path", { { method = "GET", path = "x", handler = handler } },
              "path must be a string" },
            { "missing handler", { { method = "GET", path = "/" } },
              "GET /: handler must be a function" },
            { "bad param name", { { method = "GET", path = "/:", handler = handler } },
              "bad parameter segment" },
            { "param name with dash", { { method = "GET", path = "/:a-b", handler = handler } },
              "bad parameter segment" },
            { "wildcard not last", { { method = "GET", path = "/*a/b", handler = handler } },
              "must be the last segment" },
            { "duplicate param", { { method = "GET", path = "/:a/:a", handler = handler } },
              'duplicate parameter "a"' },
            { "braces in path", { { method = "GET", path = "/{a}", handler = handler } },
              "bad path segment" },
            { "duplicate route", { { method = "GET", path = "/u/:id", handler = handler },
                                   { method = "get", path = "/u/:id", handler = handler } },
              "duplicate route GET /u/{id}" },
            { "duplicate template", { { method = "GET", path = "/u/:id", handler = handler },
                                      { method = "GET", path = "/u/:uid", handler = handler } },
              "duplicate route" },
            { "params not in path",
              { { method = "GET", path = "/u/:id", handler = handler,
                  params = { type = "object", properties = { uid = { type = "string" } } } } },
              'params declares "uid", which is not in the path' },
            { "params not an object schema",
              { { method = "GET", path = "/u/:id", handler = handler, params = { type = "string" } } },
              'type must be "object"' },
            { "query with an array property",
              { { method = "GET", path = "/", handler = handler,
                  query = { type = "object", properties = { a = { type = "array" } } } } },
              "cannot be read from a string" },
            { "body with an unknown keyword",
              { { method = "POST", path = "/", handler = handler, body = { type = "object", foo = 1 } } },
              'schema: unknown keyword "foo" at POST / body' },
            { "cyclic body",
              (function()
                  local s = { type = "array" }
                  s.items = s
                  return { { method = "POST", path = "/", handler = handler, body = s } }
              end)(),
              "cyclic schema" },
            { "bad status", { { method = "GET", path = "/", handler = handler,
                                responses = { [700] = {} } } }, "bad response status 700" },
            { "fractional status", { { method = "GET", path = "/", handler = handler,
                                       responses = { [200.5] = {} } } }, "bad response status" },
            { "default status reserved", { { method = "GET", path = "/", handler = handler,
                                             responses = { default = {} } } },
              "default response is reserved" },
            { "status declared twice", { { method = "GET", path = "/", handler = handler,
                                           responses = { [200] = {}, ["200"] = {} } } },
              "declared twice" },
            { "unknown response field", { { method = "GET", path = "/", handler = handler,
                                            responses = { [200] = { body = {} } } } },
              "unknown field body" },
            { "bad response schema", { { method = "GET", path = "/", handler = handler,
                                         responses = { [200] = { schema = { typ = 1 } } } } },
              'unknown keyword "typ" at GET / response 200' },
            { "tags not strings", { { method = "GET", path = "/", handler = handler, tags = { 1 } } },
              "tags must be an array of strings" },
            { "summary not a string", { { method = "GET", path = "/", handler = handler,
                                          summary = {} } }, "summary must be a string" },
            { "unknown auth", { { method = "GET", path = "/", handler = handler, auth = "admin" } },
              'GET /: auth must be "bearer", "optional" or "none", got admin' },
            { "auth not a string", { { method = "GET", path = "/", handler = handler, auth = true } },
              "auth must be" },
            { "license without a name", {}, "info.license must be a table with a name",
              { license = { url = "https://example.com" } } },
            { "license url not a string", {}, "info.license.url must be a string",
              { license = { name = "MIT", url = 1 } } },
        }
        for _, case in ipairs(bad) do
            it("raises for " .. case[1], function()
                local ok, err = pcall(openapi.document, case[2], case[4])
                assert.is_false(ok)
                assert.truthy(tostring(err):find(case[3], 1, true),
                    "expected '" .. case[3] .. "' in '" .. tostring(err) .. "'")
            end)
        end

        it("ignores route fields it does not know", function()
            local d = openapi.document({ { method = "GET", path = "/", handler = handler,
                                           timeout = 5, max_body = 10 } })
            assert.is_table(d.paths["/"].get)
        end)
    end)

    describe("security, servers and errors", function()
        local function op_of(route, method, path)
            route.handler = route.handler or handler
            local d = openapi.document({ route })
            return d.paths[path][method], d
        end

        it("declares the bearer scheme, relative servers and the licence given", function()
            local d = openapi.document({}, { license = { name = "MIT", identifier = "MIT" } })
            assert.same({ bearerAuth = { type = "http", scheme = "bearer",
                                         description = d.components.securitySchemes.bearerAuth
                                             .description } },
                d.components.securitySchemes)
            assert.truthy(d.components.securitySchemes.bearerAuth.description:find("Bearer", 1, true))
            assert.same({ { url = "/", description = "This server" } }, d.servers)
            assert.same({ name = "MIT", identifier = "MIT" }, d.info.license)
        end)

        it("gives each operation its security from auth", function()
            assert.same({ { bearerAuth = {} } },
                op_of({ method = "GET", path = "/a", auth = "bearer" }, "get", "/a").security)
            assert.same({ { bearerAuth = {} }, {} },
                op_of({ method = "GET", path = "/a", auth = "optional" }, "get", "/a").security)
            assert.same({}, op_of({ method = "GET", path = "/a", auth = "none" }, "get", "/a").security)
            assert.same({}, op_of({ method = "GET", path = "/a" }, "get", "/a").security)
        end)

        it("encodes security requirements as arrays of scopes", function()
            local t = openapi.encode(openapi.document({
                { method = "GET", path = "/a", handler = handler, auth = "optional" },
                { method = "GET", path = "/b", handler = handler },
            }))
            assert.truthy(t:find('"security":[{"bearerAuth":[]},{}]', 1, true), t)
            assert.truthy(t:find('"security":[]', 1, true), t)
        end)

        it("lists only 400 and 503 for a public route without parameters or body", function()
            local op = op_of({ method = "GET", path = "/hello" }, "get", "/hello")
            assert.same({ "200", "400", "503", "default" }, statuses(op))
            assert.equal("The request is malformed.", op.responses["400"].description)
            assert.same(RETRY_AFTER, op.responses["503"].headers)
        end)

        it("adds 401 with its challenge header when a token is taken", function()
            local op = op_of({ method = "GET", path = "/me", auth = "bearer" }, "get", "/me")
            assert.same({ "200", "400", "401", "503", "default" }, statuses(op))
            assert.same(ERROR_CONTENT, op.responses["401"].content)
            assert.is_table(op.responses["401"].headers["WWW-Authenticate"])
            assert.truthy(op.responses["503"].description:find("database", 1, true))
            local opt = op_of({ method = "GET", path = "/me", auth = "optional" }, "get", "/me")
            assert.truthy(opt.responses["401"].description:find("was sent", 1, true))
        end)

        it("adds 404 only when the path names something", function()
            local op = op_of({ method = "DELETE", path = "/u/:id" }, "delete", "/u/{id}")
            assert.same({ "200", "400", "404", "503", "default" }, statuses(op))
        end)

        it("adds 413 and 415 for a JSON body, 413 alone for a stream", function()
            local body = { type = "object" }
            local op = op_of({ method = "POST", path = "/u", body = body }, "post", "/u")
            assert.same({ "200", "400", "413", "415", "503", "default" }, statuses(op))
            assert.truthy(op.responses["400"].description:find("the JSON body", 1, true))
            local put = op_of({ method = "PUT", path = "/f", body = "stream" }, "put", "/f")
            assert.same({ "200", "400", "413", "503", "default" }, statuses(put))
        end)

        it("gives declared errors the Error envelope and lets them override the derived text",
            function()
                local op = op_of({ method = "POST", path = "/u/:id", auth = "bearer",
                                   body = { type = "object" },
                                   responses = { [201] = {},
                                                 [409] = { description = "Taken." },
                                                 [429] = {},
                                                 [404] = { description = "No such user." } } },
                                 "post", "/u/{id}")
                assert.same({ "201", "400", "401", "404", "409", "413", "415", "429", "503",
                              "default" }, statuses(op))
                assert.same({ description = "Taken.", content = ERROR_CONTENT }, op.responses["409"])
                assert.equal("No such user.", op.responses["404"].description)
                assert.same({ description = "Too Many Requests", headers = RETRY_AFTER,
                              content = ERROR_CONTENT }, op.responses["429"])
                assert.same({ description = "Created" }, op.responses["201"])
            end)

        it("leaves out a derived error declared false", function()
            local op = op_of({ method = "PUT", path = "/g/:name", body = { type = "object" },
                               responses = { [200] = {}, [404] = false } }, "put", "/g/{name}")
            assert.same({ "200", "400", "413", "415", "503", "default" }, statuses(op))
            local ok, err = pcall(op_of, { method = "GET", path = "/g", responses = { [409] = false } },
                                  "get", "/g")
            assert.is_false(ok)
            assert.truthy(tostring(err):find("409 is not one", 1, true), tostring(err))
        end)

        it("keeps a declared error's own schema", function()
            local s = { type = "object", properties = { why = { type = "string" } } }
            local op = op_of({ method = "GET", path = "/x",
                               responses = { [422] = { schema = s } } }, "get", "/x")
            assert.same({ ["application/json"] = { schema = s } }, op.responses["422"].content)
        end)
    end)

    describe("encode", function()
        local encode = openapi.encode

        local cases = {
            { "empty document", {}, "{}" },
            { "sorted keys", { openapi = "3.1.0", info = { version = "0", title = "T" } },
              '{"info":{"title":"T","version":"0"},"openapi":"3.1.0"}' },
            { "empty paths is an object", { paths = {} }, '{"paths":{}}' },
            { "empty tags is an array", { tags = {} }, '{"tags":[]}' },
            { "empty parameters is an array",
              { paths = { ["/"] = { get = { parameters = {}, responses = {} } } } },
              '{"paths":{"/":{"get":{"parameters":[],"responses":{}}}}}' },
            { "empty schema is an object",
              { components = { schemas = { Any = {} } } },
              '{"components":{"schemas":{"Any":{}}}}' },
            { "empty properties and required",
              { components = { schemas = { S = { type = "object", properties = {}, required = {} } } } },
              '{"components":{"schemas":{"S":{"properties":{},"required":[],"type":"object"}}}}' },
            { "property named like array fields",
              { components = { schemas = { S = { properties = { required = {}, tags = {},
                                                                 enum = {} } } } } },
              '{"components":{"schemas":{"S":{"properties":{"enum":{},"required":{},"tags":{}}}}}}' },
            { "empty example of an array schema",
              { components = { schemas = { S = { type = "array", example = {}, default = {} } } } },
              '{"components":{"schemas":{"S":{"default":[],"example":[],"type":"array"}}}}' },
            { "empty example of an object schema",
              { components = { schemas = { S = { type = "object", example = {} } } } },
              '{"components":{"schemas":{"S":{"example":{},"type":"object"}}}}' },
            { "empty example of an array-or-null schema",
              { components = { schemas = { S = { type = { "array", "null" }, example = {} } } } },
              '{"components":{"schemas":{"S":{"example":[],"type":["array","null"]}}}}' },
            { "nested items schema",
              { components = { schemas = { S = { type = "array", items = {} } } } },
              '{"components":{"schemas":{"S":{"items":{},"type":"array"}}}}' },
            { "enum with null and numbers",
              { components = { schemas = { S = { enum = { "a", 1, 2.5, null, false } } } } },
              '{"components":{"schemas":{"S":{"enum":["a",1,2.5,null,false]}}}}' },
            { "response content",
              { paths = { ["/"] = { get = { responses = { ["200"] = {
                  description = "OK", content = { ["application/json"] = { schema = {} } } } } } } } },
              '{"paths":{"/":{"get":{"responses":{"200":{"content":{"application/json":' ..
              '{"schema":{}}},"description":"OK"}}}}}}' },
            { "string escapes", { info = { title = "q\"b\\s/\n\r\t\b\f\1\31\127" } },
              '{"info":{"title":"q\\"b\\\\s/\\n\\r\\t\\b\\f\\u0001\\u001f\127"}}' },
            { "NUL byte", { info = { title = "a\0b" } }, '{"info":{"title":"a\\u0000b"}}' },
            { "unicode passes through", { info = { title = "h\195\169 \240\159\152\128" } },
              '{"info":{"title":"h\195\169 \240\159\152\128"}}' },
            { "line separators are escaped", { info = { title = "a\226\128\168b\226\128\169" } },
              '{"info":{"title":"a\\u2028b\\u2029"}}' },
            { "escaped keys", { info = { ["a\"b"] = 1 } }, '{"info":{"a\\"b":1}}' },
            -- glasgow.json's forms: integers below 2^63 in full, else the
            -- shortest of %.15g, %.16g, %.17g that reads back
            { "numbers", { info = { a = 1, b = -2, c = 0.5, d = 1e20, e = 2 ^ 53, f = -0.0,
                                    g = 0.1, h = 1 / 3, i = 1e-7, j = 123456789012345678 } },
              '{"info":{"a":1,"b":-2,"c":0.5,"d":1e+20,"e":9007199254740992,"f":0,' ..
              '"g":0.1,"h":0.3333333333333333,"i":1e-07,"j":123456789012345680}}' },
            { "booleans", { info = { t = true, f = false } }, '{"info":{"f":false,"t":true}}' },
            { "generic arrays and objects", { info = { x = { 1, { a = { 2 } }, {} } } },
              '{"info":{"x":[1,{"a":[2]},{}]}}' },
        }
        for _, case in ipairs(cases) do
            it("encodes " .. case[1], function()
                local text = encode(case[2])
                assert.equal(case[3], text)
                assert(json.decode(text))
            end)
        end

        local bad = {
            { "NaN", { info = { x = 0 / 0 } }, "non-finite number at $.info.x" },
            { "infinity", { info = { x = math.huge } }, "non-finite number" },
            { "function", { info = { x = print } }, "a function at $.info.x" },
            { "invalid utf-8", { info = { x = "\255" } }, "invalid utf-8 at $.info.x" },
            { "invalid utf-8 key", { info = { ["\255"] = 1 } }, "invalid utf-8 at $.info" },
            { "mixed table", { info = { x = { 1, a = 2 } } }, "neither an array nor an object" },
            { "sparse array", { info = { x = { [1] = 1, [3] = 3 } } }, "neither an array" },
            { "numeric key in an object field", { paths = { [1] = {} } }, "a table with key 1" },
            { "object where an array is expected", { tags = { a = 1 } }, "where an array is expected" },
            { "cycle",
              (function()
                  local t = {}
                  t.self = t
                  return { info = t }
              end)(),
              "a cyclic table at $.info.self" },
        }
        for _, case in ipairs(bad) do
            it("raises for " .. case[1], function()
                local ok, err = pcall(encode, case[2])
                assert.is_false(ok)
                assert.truthy(tostring(err):find(case[3], 1, true),
                    "expected '" .. case[3] .. "' in '" .. tostring(err) .. "'")
            end)
        end

        it("raises on misuse", function()
            assert.has_error(function() encode(nil) end)
            assert.has_error(function() encode("x") end)
        end)

        it("allows a table shared by several fields", function()
            local s = { type = "string" }
            local text = encode({ components = { schemas = { A = s, B = s } } })
            assert.equal('{"components":{"schemas":{"A":{"type":"string"},"B":{"type":"string"}}}}', text)
        end)

        describe("of a full document", function()
            local doc, text

            before_each(function()
                doc = openapi.document(routes(), { title = "Test", version = "1" })
                text = encode(doc)
            end)

            it("round-trips through glasgow.json", function()
                local back = assert(json.decode(text))
                assert.equal("3.1.0", back.openapi)
                assert.equal("get_v1_users__id", back.paths["/v1/users/{id}"].get.operationId)
                assert.equal("#/components/schemas/Error",
                    back.paths["/v1/users"].post.responses.default.content["application/json"]
                        .schema["$ref"])
            end)

            it("is byte-for-byte deterministic", function()
                for _ = 1, 10 do
                    local r = routes()
                    -- Reverse the order of the routes to vary construction.
                    local rev = {}
                    for i = #r, 1, -1 do
                        rev[#rev + 1] = r[i]
                    end
                    assert.equal(text, encode(openapi.document(rev, { title = "Test", version = "1" })))
                end
            end)

            it("puts paths and methods in sorted order", function()
                local a = text:find('"/files/{key}"', 1, true)
                local b = text:find('"/v1/users"', 1, true)
                local c = text:find('"/v1/users/{id}"', 1, true)
                assert.truthy(a < b and b < c)
                local del = text:find('"delete"', c, true)
                local get = text:find('"get"', c, true)
                assert.truthy(del < get)
            end)

            it("writes status keys as strings and required arrays as arrays", function()
                assert.truthy(text:find('"responses":{"200":', 1, true))
                assert.truthy(text:find('"required":["id","email"]', 1, true))
                assert.truthy(text:find('"parameters":[{', 1, true))
                assert.truthy(text:find('"tags":["users"]', 1, true))
            end)

            it("writes the untyped details schema as an empty object", function()
                local d = assert(json.decode(text)).components.schemas.Error.properties.error.properties
                assert.equal("Optional structured details; shape depends on the code.",
                    d.details.description)
                assert.truthy(text:find('"details":{"description":', 1, true))
            end)

            it("writes an empty schema as {}", function()
                local d = openapi.document({ { method = "POST", path = "/", handler = handler,
                                               body = {} } })
                local t = encode(d)
                assert.truthy(t:find('"application/json":{"schema":{}}', 1, true), t)
            end)

            it("does not modify the document", function()
                local before = encode(doc)
                encode(doc)
                assert.equal(before, encode(doc))
                assert.same(openapi.document(routes(), { title = "Test", version = "1" }), doc)
            end)
        end)
    end)
end)
