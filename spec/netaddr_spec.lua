local netaddr = require "glasgow.netaddr"

describe("glasgow.netaddr.client_key", function()
    local cases = {
        { "203.0.113.7", "203.0.113.7" },
        { "127.0.0.1", "127.0.0.1" },
        { "::ffff:203.0.113.7", "203.0.113.7" },
        { "::FFFF:10.0.0.1", "10.0.0.1" },
        { "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64" },
        { "2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64" },
        { "2001:db8::1", "2001:db8:0:0::/64" },
        { "2001:db8:0:0:1::", "2001:db8:0:0::/64" },
        { "2001:db8:a:b::", "2001:db8:a:b::/64" },
        { "fe80::1:2:3:4", "fe80:0:0:0::/64" },
        { "::1", "0:0:0:0::/64" },
        { "::", "0:0:0:0::/64" },
        { "-", "-" },
        { "not:an:address", "not:an:address" },
        { "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8:9" },
        { "1::2::3", "1::2::3" },
    }
    for _, c in ipairs(cases) do
        it(c[1] .. " -> " .. c[2], function()
            assert.equal(c[2], netaddr.client_key(c[1]))
        end)
    end

    it("puts two addresses of one /64 under one key and another /64 under another", function()
        assert.equal(netaddr.client_key("2001:db8:5:6:a::1"), netaddr.client_key("2001:db8:5:6:b::2"))
        assert.not_equal(netaddr.client_key("2001:db8:5:6::1"), netaddr.client_key("2001:db8:5:7::1"))
    end)
end)
