-- glasgow.s3's error mapping and argument handling, with glasgow.s3core stubbed.
require "core_stub"
local calls = {}
package.preload["glasgow.s3core"] = function()
    local core = {}
    -- each stub records its arguments and answers what the test queued
    local answers = {}
    core.answer = function(...)
        answers[#answers + 1] = { n = select("#", ...), ... }
    end
    local function stub(name)
        return function(...)
            calls[#calls + 1] = { name = name, n = select("#", ...), ... }
            local a = table.remove(answers, 1) or { n = 1, true }
            return unpack(a, 1, a.n)
        end
    end
    for _, name in ipairs({ "put", "put_stream", "get", "pipe", "close", "read", "head", "delete",
                            "list", "list_uploads", "abort_upload", "head_bucket",
                            "create_bucket", "configured" }) do
        core[name] = stub(name)
    end
    return core
end
local core = require "glasgow.s3core"
local s3 = require "glasgow.s3"

describe("glasgow.s3 errors", function()
    local cases = {
        -- kind, code, store status, retryable -> err.kind, err.code, err.status
        { "store", "NoSuchKey", 404, false, "store", "NoSuchKey", 404 },
        { "store", "NoSuchUpload", 404, false, "store", "NoSuchUpload", 404 },
        { "store", "InvalidRange", 416, false, "store", "InvalidRange", 416 },
        { "store", "SlowDown", 503, true, "store", "SlowDown", 503 },
        { "store", "SignatureDoesNotMatch", 403, false, "store", "SignatureDoesNotMatch", 500 },
        { "network", "network", 0, true, "unavailable", "network", 503 },
        { "timeout", "timeout", 0, true, "unavailable", "timeout", 503 },
        { "client", "closed", 0, false, "client", "closed", 400 },
        { "client", "timeout", 0, false, "client", "timeout", 408 },
        { "client", "too_large", 0, false, "client", "too_large", 413 },
        { "too_large", "too_large", 0, false, "client", "too_large", 413 },
        { "digest_mismatch", "digest_mismatch", 0, false, "digest_mismatch", "digest_mismatch",
          400 },
        { "protocol", "bad_xml", 0, false, "protocol", "bad_xml", 500 },
    }
    for _, c in ipairs(cases) do
        it(c[1] .. " " .. c[2] .. " maps to " .. c[7], function()
            local e = s3.make_error(c[1], c[2], c[3], "the store's own text", c[4])
            assert.equal(c[5], e.kind)
            assert.equal(c[6], e.code)
            assert.equal(c[7], e.status)
            assert.is_string(e.public_message)
            assert.is_nil(e.public_message:find("store's own", 1, true))
            if c[7] == 503 then
                assert.is_true(e.retryable)
                assert.equal("1", e.headers["Retry-After"])
            end
            assert.matches(c[2], tostring(e), 1, true)
        end)
    end
end)

describe("glasgow.s3 calls", function()
    before_each(function()
        for i = #calls, 1, -1 do
            calls[i] = nil
        end
    end)

    it("put passes a string body and the options through", function()
        core.answer({ size = 3, sha256 = "x", etag = "e" })
        local r = s3.put("k", "abc", { content_type = "text/plain", max_bytes = 10, sha256 = "h" })
        assert.equal(3, r.size)
        assert.same({ "k", "abc", "text/plain", 10, "h" }, { unpack(calls[1], 1, 5) })
        assert.equal("put", calls[1].name)
    end)

    it("put with the request streams it", function()
        core.answer({ size = 0 })
        s3.put("k", { method = "PUT" }, {})
        assert.equal("put_stream", calls[1].name)
    end)

    it("put refuses other bodies", function()
        assert.has_error(function() s3.put("k", 42) end,
                         "bad argument #2 to 'put' (string or request expected, got number)")
    end)

    it("failures become error objects", function()
        core.answer(nil, "store", "NoSuchKey", 404, "missing", false)
        local v, err = s3.head("k")
        assert.is_nil(v)
        assert.equal(404, err.status)
        assert.equal("NoSuchKey", err.code)
    end)

    it("get returns an object with the answer's fields and methods", function()
        core.answer("handle", { status = 206, size = 10, length = 2, first = 3, last = 4 })
        local obj = s3.get("k", { range = { 3, 4 } })
        assert.same({ "k", 3, 4 }, { unpack(calls[1], 1, 3) })
        assert.equal(206, obj.status)
        assert.equal(2, obj.length)
        core.answer(2)
        assert.equal(2, obj:pipe({}, 206, {}))
        assert.equal("handle", calls[2][1])
        obj:close()
        assert.equal("close", calls[3].name)
    end)

    it("get refuses a malformed range", function()
        assert.has_error(function() s3.get("k", { range = "0-1" }) end)
    end)

    it("lists are arrays even when empty", function()
        core.answer({ objects = {}, truncated = false })
        local r = s3.list { prefix = "p/", max_keys = 5 }
        assert.same({ "p/", nil, 5 }, { calls[1][1], calls[1][2], calls[1][3] })
        assert.equal(require("glasgow.json").array_mt, getmetatable(r.objects))
    end)

    it("must raises the error object", function()
        core.answer(nil, "network", "network", 0, "refused", true)
        local ok, err = pcall(s3.must.delete, "k")
        assert.is_false(ok)
        assert.equal(503, err.status)
        assert.equal("unavailable", err.kind)
        core.answer(true)
        assert.is_true(s3.must.delete("k"))
    end)
end)
