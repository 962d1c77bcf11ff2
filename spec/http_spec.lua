-- HTTP semantics of the file routes (glasgow.http): dates, conditional
-- requests (RFC 9110 13.2.2), If-Range, Content-Disposition (RFC 6266),
-- Content-Digest (RFC 9530) and media types.
local http = require "glasgow.http"

describe("glasgow.http dates", function()
    it("formats IMF-fixdate", function()
        assert.equal("Sun, 06 Nov 1994 08:49:37 GMT", http.date(784111777))
        assert.equal("Thu, 01 Jan 1970 00:00:00 GMT", http.date(0))
        assert.equal("Tue, 29 Feb 2000 23:59:59 GMT", http.date(951868799))
    end)
    it("parses the three formats of RFC 9110 5.6.7", function()
        assert.equal(784111777, http.parse_date("Sun, 06 Nov 1994 08:49:37 GMT"))
        assert.equal(784111777, http.parse_date("Sunday, 06-Nov-94 08:49:37 GMT"))
        assert.equal(784111777, http.parse_date("Sun Nov  6 08:49:37 1994"))
    end)
    for _, bad in ipairs({ "", "yesterday", "Sun, 06 Nov 1994 08:49:37 UTC",
                           "Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT",
                           "Sun, 06 Nov 1994 25:49:37 GMT", string.rep("x", 100) }) do
        it("refuses " .. bad:sub(1, 30), function()
            assert.is_nil(http.parse_date(bad))
        end)
    end
    it("round-trips every day of a few years", function()
        for t = 946684800, 946684800 + 3 * 366 * 86400, 86400 + 3661 do
            assert.equal(t, http.parse_date(http.date(t)))
        end
    end)
    it("parses RFC 3339 as PostgreSQL prints it", function()
        assert.equal(784111777, http.parse_rfc3339("1994-11-06T08:49:37Z"))
        assert.equal(784111777, http.parse_rfc3339("1994-11-06T08:49:37.123456Z"))
        assert.equal(784111777, http.parse_rfc3339("1994-11-06T09:49:37+01:00"))
        assert.is_nil(http.parse_rfc3339("1994-11-06"))
        assert.is_nil(http.parse_rfc3339("1994-13-06T08:49:37Z"))
    end)
end)

describe("glasgow.http preconditions", function()
    local cur = { etag = '"abc"', last_modified = 1000 }
    local before = http.date(999)
    local at = http.date(1000)
    local cases = {
        -- headers, method, current, expected
        { {}, "GET", cur, nil },
        { { ["if-none-match"] = '"abc"' }, "GET", cur, 304 },
        { { ["if-none-match"] = '"abc"' }, "HEAD", cur, 304 },
        { { ["if-none-match"] = 'W/"abc"' }, "GET", cur, 304 },     -- weak comparison
        { { ["if-none-match"] = '"x", "abc"' }, "GET", cur, 304 },
        { { ["if-none-match"] = { '"x"', '"abc"' } }, "GET", cur, 304 }, -- repeated field
        { { ["if-none-match"] = '"x"' }, "GET", cur, nil },
        { { ["if-none-match"] = "*" }, "GET", cur, 304 },
        { { ["if-none-match"] = "*" }, "GET", nil, nil },
        { { ["if-none-match"] = "*" }, "PUT", cur, 412 },
        { { ["if-none-match"] = "*" }, "PUT", nil, nil },
        { { ["if-none-match"] = '"abc"' }, "PUT", cur, 412 },
        { { ["if-none-match"] = "abc" }, "GET", cur, nil },           -- malformed: no match
        { { ["if-match"] = '"abc"' }, "GET", cur, nil },
        { { ["if-match"] = '"old"' }, "GET", cur, 412 },
        { { ["if-match"] = 'W/"abc"' }, "GET", cur, 412 },           -- strong comparison
        { { ["if-match"] = "*" }, "PUT", cur, nil },
        { { ["if-match"] = "*" }, "PUT", nil, 412 },
        { { ["if-match"] = '"abc"' }, "PUT", nil, 412 },
        { { ["if-match"] = "garbage" }, "GET", cur, 412 },
        -- If-Match takes precedence over If-Unmodified-Since
        { { ["if-match"] = '"abc"', ["if-unmodified-since"] = before }, "GET", cur, nil },
        { { ["if-unmodified-since"] = before }, "GET", cur, 412 },
        { { ["if-unmodified-since"] = at }, "GET", cur, nil },
        { { ["if-unmodified-since"] = "not a date" }, "GET", cur, nil },
        { { ["if-modified-since"] = at }, "GET", cur, 304 },
        { { ["if-modified-since"] = before }, "GET", cur, nil },
        { { ["if-modified-since"] = at }, "PUT", cur, nil },
        { { ["if-modified-since"] = "garbage" }, "GET", cur, nil },
        -- If-None-Match takes precedence over If-Modified-Since
        { { ["if-none-match"] = '"x"', ["if-modified-since"] = at }, "GET", cur, nil },
        -- If-Match is evaluated before If-None-Match
        { { ["if-match"] = '"old"', ["if-none-match"] = '"abc"' }, "GET", cur, 412 },
    }
    for i, c in ipairs(cases) do
        it("case " .. i, function()
            assert.equal(c[4], http.preconditions(c[1], c[2], c[3]))
        end)
    end
end)

describe("glasgow.http if_range", function()
    local cur = { etag = '"abc"', last_modified = 1000 }
    it("honours the Range without If-Range or when it matches", function()
        assert.is_true(http.if_range({}, cur))
        assert.is_true(http.if_range({ ["if-range"] = '"abc"' }, cur))
        assert.is_true(http.if_range({ ["if-range"] = http.date(1000) }, cur))
    end)
    it("sends the whole file otherwise", function()
        assert.is_false(http.if_range({ ["if-range"] = '"old"' }, cur))
        assert.is_false(http.if_range({ ["if-range"] = 'W/"abc"' }, cur))
        assert.is_false(http.if_range({ ["if-range"] = http.date(2000) }, cur))
        assert.is_false(http.if_range({ ["if-range"] = "garbage" }, cur))
    end)
end)

describe("glasgow.http content_disposition", function()
    it("plain ASCII needs no filename*", function()
        assert.equal('attachment; filename="report.pdf"', http.content_disposition("report.pdf"))
    end)
    it("non-ASCII gets filename* and a fallback with one _ per character", function()
        assert.equal("attachment; filename=\"caf_.txt\"; filename*=UTF-8''caf%C3%A9.txt",
                     http.content_disposition("caf\195\169.txt"))
        assert.equal("attachment; filename=\"_.png\"; filename*=UTF-8''%F0%9F%98%80.png",
                     http.content_disposition("\240\159\152\128.png"))
    end)
    it("quotes, backslashes, percent and controls cannot break out", function()
        local v = http.content_disposition('a"; filename=evil.exe\\%41\r\nX: y')
        assert.is_nil(v:find("[\r\n]"))
        local fallback = v:match('^attachment; filename="([^"]*)"; filename%*=')
        assert.equal("a_; filename=evil.exe__41__X: y", fallback)
        assert.truthy(v:find("filename*=UTF-8''a%22%3B%20filename%3Devil.exe%5C%2541%0D%0AX%3A%20y",
                             1, true))
    end)
end)

describe("glasgow.http content_digest", function()
    local raw = string.rep("\1", 32)
    local b64 = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
    it("reads Content-Digest sha-256", function()
        assert.equal(raw, http.content_digest({ ["content-digest"] = "sha-256=:" .. b64 .. ":" }))
        assert.equal(raw, http.content_digest({
            ["content-digest"] = "sha-512=:AAAA:, sha-256=:" .. b64 .. ":" }))
    end)
    it("reads x-checksum-sha256 as base64 or hex", function()
        assert.equal(raw, http.content_digest({ ["x-checksum-sha256"] = b64 }))
        assert.equal(raw, http.content_digest({ ["x-checksum-sha256"] = string.rep("01", 32) }))
    end)
    it("is nil when none is sent", function()
        assert.is_nil(http.content_digest({}))
        assert.is_nil(http.content_digest({ ["content-digest"] = "sha-512=:AAAA:" }))
    end)
    for _, bad in ipairs({
        { ["content-digest"] = "sha-256=" .. b64 },
        { ["content-digest"] = "sha-256=:AQID:" },
        { ["content-digest"] = "sha-256=:!!!!:" },
        { ["content-digest"] = "garbage" },
        { ["x-checksum-sha256"] = "zz" },
        { ["x-checksum-sha256"] = string.rep("g", 64) },
        { ["content-digest"] = "sha-256=:" .. b64 .. ":", ["x-checksum-sha256"] = string.rep("02", 32) },
    }) do
        it("refuses a malformed digest", function()
            local d, reason = http.content_digest(bad)
            assert.is_false(d)
            assert.is_string(reason)
        end)
    end
    it("decodes base64 strictly", function()
        assert.equal("foobar", http.base64_decode("Zm9vYmFy"))
        assert.equal("fo", http.base64_decode("Zm8="))
        assert.equal("f", http.base64_decode("Zg=="))
        assert.is_nil(http.base64_decode("Zg="))
        assert.is_nil(http.base64_decode("Zg==Zg=="))
        assert.is_nil(http.base64_decode("Z=g="))
    end)
end)

describe("glasgow.http media types", function()
    it("normalises", function()
        assert.equal("text/html", http.media_type("Text/HTML; charset=utf-8"))
        assert.equal("application/vnd.api+json", http.media_type("application/vnd.api+json"))
        assert.is_nil(http.media_type("text"))
        assert.is_nil(http.media_type("text/"))
        assert.is_nil(http.media_type("te xt/html"))
        assert.is_nil(http.media_type(nil))
    end)
    it("is the whole value: a list or junk after it is not a media type", function()
        assert.equal("image/png", http.media_type(" image/png; a=b ;c=\"d;, \\\"e\";; "))
        assert.equal("image/png", http.media_type("image/png;"))
        assert.is_nil(http.media_type("image/png, text/html"))
        assert.is_nil(http.media_type("image/png text/html"))
        assert.is_nil(http.media_type("image/png; a"))
        assert.is_nil(http.media_type("image/png; a="))
        assert.is_nil(http.media_type("image/png; a=\"b"))
        assert.is_nil(http.media_type("image/png; a=\"b\" c"))
    end)
    it("matches the allowed list and ranges", function()
        assert.is_true(http.type_allowed("image/png", nil))
        assert.is_true(http.type_allowed("image/png", {}))
        assert.is_true(http.type_allowed("image/png", { "image/png" }))
        assert.is_true(http.type_allowed("image/png", { "text/plain", "image/*" }))
        assert.is_true(http.type_allowed("image/png", { "*/*" }))
        assert.is_true(http.type_allowed("image/png", { "Image/PNG" }))
        assert.is_false(http.type_allowed("image/png", { "text/*" }))
        assert.is_false(http.type_allowed("text/html", { "text/plain" }))
    end)
end)
