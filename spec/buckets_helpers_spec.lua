-- routes/_buckets.lua's pure parts: the GLASGOW_MAX_FILE_BYTES parser and
-- the upload limit of a bucket.
package.path = "./?.lua;" .. package.path
require "core_stub"
package.preload["glasgow.pg"] = function()
    return {}
end
package.preload["glasgow.crypto"] = function()
    return {}
end
local buckets = require "routes._buckets"

describe("routes._buckets", function()
    it("parses sizes with k, m, g, t suffixes", function()
        assert.equal(5, buckets.parse_size("5"))
        assert.equal(5 * 1024, buckets.parse_size("5k"))
        assert.equal(3 * 2 ^ 20, buckets.parse_size("3M"))
        assert.equal(2 ^ 30, buckets.parse_size("1g"))
        assert.equal(5 * 2 ^ 40, buckets.parse_size("5t"))
        assert.is_nil(buckets.parse_size(nil))
        assert.is_nil(buckets.parse_size(""))
    end)
    for _, bad in ipairs({ "5x", "-1", "1.5g", "g", " 5", "99999999t" }) do
        it("refuses " .. bad, function()
            assert.has_error(function() buckets.parse_size(bad) end)
        end)
    end
    it("a bucket's limit only lowers the server's", function()
        assert.equal(10, buckets.max_bytes({ max_file_bytes = 10 }))
        assert.equal(buckets.MAX_FILE_BYTES, buckets.max_bytes({ max_file_bytes = 2 ^ 53 }))
        assert.equal(buckets.MAX_FILE_BYTES, buckets.max_bytes({}))
        assert.equal(5 * 2 ^ 40, buckets.MAX_FILE_BYTES, "the default is 5 TiB")
    end)
end)
