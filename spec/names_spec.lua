-- Bucket and file name rules (glasgow.names).
local names = require "glasgow.names"

describe("glasgow.names.bucket", function()
    for _, good in ipairs({ "abc", "photos-2026", "my.bucket.name", "a1b", "0ab",
                            string.rep("a", 63), "1.2.3.a", "xn-a", "a-s3alia" }) do
        it("accepts " .. good, function()
            assert.is_true(names.bucket(good))
        end)
    end
    local bad = {
        { "ab", "3 to 63" }, { string.rep("a", 64), "3 to 63" },
        { "Photos", "lowercase" }, { "my_bucket", "lowercase" }, { "a b c", "lowercase" },
        { "-abc", "start and end" }, { "abc-", "start and end" }, { ".abc", "start and end" },
        { "abc.", "start and end" }, { "a..b", "adjacent periods" },
        { "192.168.1.1", "IP address" }, { "xn--abc", "xn--" }, { "sthree-abc", "sthree-" },
        { "amzn-s3-demo-x", "amzn-s3-demo-" }, { "abc-s3alias", "-s3alias" },
        { "abc--ol-s3", "--ol-s3" }, { "abc.mrap", ".mrap" }, { "abc--x-s3", "--x-s3" },
        { "abc\0def", "lowercase" }, { "abc\ndef", "lowercase" }, { "ab\195\169", "lowercase" },
    }
    for _, c in ipairs(bad) do
        it("refuses " .. c[1]:gsub("%c", "?") .. " (" .. c[2] .. ")", function()
            local ok, reason = names.bucket(c[1])
            assert.is_nil(ok)
            assert.truthy(reason:find(c[2], 1, true), reason)
        end)
    end
    it("refuses a non-string", function()
        assert.is_nil(names.bucket(42))
    end)
end)

describe("glasgow.names.file", function()
    for _, good in ipairs({ "a", "a.txt", "reports/2026/q1.pdf", ".hidden", "a/.b", "a..b",
                            "...a", "a b", "caf\195\169.txt", "\240\159\152\128.png",
                            "back\\slash", string.rep("x", 1024), "a/b/c/d/e/f" }) do
        it("accepts " .. good:sub(1, 40), function()
            assert.is_true(names.file(good))
        end)
    end
    local bad = {
        { "", "empty" }, { "..", "'..' segment" }, { "a/../b", "'..' segment" },
        { "../a", "'..' segment" }, { "a/..", "'..' segment" }, { ".", "only of dots" },
        { "...", "only of dots" }, { "a/./b", "only of dots" }, { "a//b", "empty segment" },
        { "/a", "start with '/'" }, { "a/", "end with '/'" }, { "/", "start with '/'" },
        { "a\0b", "control" }, { "a\rb", "control" }, { "a\nb", "control" }, { "a\tb", "control" },
        { "a\127b", "control" }, { "a\194\133b", "control" }, -- U+0085 NEL
        { "\255", "UTF-8" }, { "\192\175", "UTF-8" },          -- overlong '/'
        { "\237\160\128", "UTF-8" },                            -- a surrogate
        { "\244\144\128\128", "UTF-8" },                        -- above U+10FFFF
        { "\195", "UTF-8" }, { "a\128", "UTF-8" },
        { string.rep("x", 1025), "1024 bytes" },
        { string.rep("\195\169", 513), "1024 bytes" },
    }
    for _, c in ipairs(bad) do
        it("refuses " .. c[1]:sub(1, 20):gsub("[%c\128-\255]", "?") .. " (" .. c[2] .. ")",
           function()
            local ok, reason = names.file(c[1])
            assert.is_nil(ok)
            assert.truthy(reason:find(c[2], 1, true), reason)
        end)
    end
end)

describe("glasgow.names helpers", function()
    it("basename is the last segment", function()
        assert.equal("q1.pdf", names.basename("reports/2026/q1.pdf"))
        assert.equal("a", names.basename("a"))
    end)
    it("prefix_upper bounds every string with the prefix", function()
        assert.equal("ac", names.prefix_upper("ab"))
        assert.equal("a0", names.prefix_upper("a/"))
        assert.equal("caf\195\170", names.prefix_upper("caf\195\169"))
        assert.equal("\238\128\128", names.prefix_upper("\237\159\191")) -- skips surrogates
        assert.equal("b", names.prefix_upper("a\244\143\191\191"))
        assert.is_nil(names.prefix_upper(""))
        assert.is_nil(names.prefix_upper("\244\143\191\191"))
        -- byte order: every extension of the prefix sorts below the bound
        for _, ext in ipairs({ "", "\0", "z", "\244\143\191\191\244\143\191\191" }) do
            assert.is_true(("ab" .. ext) < names.prefix_upper("ab"))
        end
    end)
end)
