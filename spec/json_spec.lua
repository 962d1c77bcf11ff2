-- glasgow.json in the specs is the runtime's codec, runtime/lua_json.c
-- built as the Lua module glasgow.jsonc (make test-spec), not a stand-in:
-- these behaviours are its own (lua-cjson 2.1.0 has none of them).
local json = require "glasgow.json"

describe("glasgow.json under busted", function()
    it("is glasgow.jsonc loaded from the build tree", function()
        local path = package.searchpath("glasgow.jsonc", package.cpath)
        assert.truthy(path and path:find("/lua/glasgow/jsonc%.so$"), path)
        assert.equal(require("glasgow.jsonc").array_mt, json.array_mt)
        assert.equal(require("glasgow.jsonc").object_mt, json.object_mt)
    end)

    it("keeps an empty array and an empty object apart", function()
        local a, o = json.decode("[]"), json.decode("{}")
        assert.equal(json.array_mt, getmetatable(a))
        assert.equal(json.object_mt, getmetatable(o))
        assert.equal("[]", json.encode(a))
        assert.equal("{}", json.encode(o))
        assert.equal('{"a":[],"b":{}}', json.encode(json.decode('{"b":{},"a":[]}')))
        assert.equal("[]", json.encode(json.array()))
        assert.equal("{}", json.encode({}))
        assert.is_true(json.is_array(a))
        assert.is_false(json.is_array(o))
    end)

    it("sorts object keys and prints integers exactly", function()
        assert.equal('{"a":1,"b":2,"c":3}', json.encode({ c = 3, a = 1, b = 2 }))
        -- lua-cjson writes 2^53 as 9.007199254741e+15
        assert.equal("9007199254740992", json.encode(2 ^ 53))
        assert.equal("-4611686018427387904", json.encode(-2 ^ 62))
        assert.equal("[0.1,1.5,1e+300]", json.encode({ 0.1, 1.5, 1e300 }))
    end)

    it("names the byte where decoding failed", function()
        local cases = {
            { "[1,]", "unexpected character ']' at byte 4" },
            { '{"a":1e999}', "number out of range at byte 6" },
            { "NaN", "unexpected character 'N' at byte 1" },
            { "[0x10]", "expected ',' or ']' at byte 3" },
            { '"\255"', "invalid UTF-8 at byte 2" },
            { "[1] x", "trailing garbage at byte 5" },
        }
        for _, case in ipairs(cases) do
            local v, err = json.decode(case[1])
            assert.is_nil(v, case[1])
            assert.truthy(err:find(case[2], 1, true), case[1] .. ": " .. tostring(err))
        end
    end)

    it("refuses values JSON cannot hold when encoding", function()
        assert.has_error(function() json.encode({ 1, nil, 3 }) end, "cannot encode sparse array")
        assert.has_error(function() json.encode({ 1, a = 2 }) end,
                         "cannot encode table mixing array and object keys")
        assert.has_error(function() json.encode(0 / 0) end)
        assert.has_error(function() json.encode("\255") end)
    end)

    it("decodes nesting up to the server's limit (core_stub: 16)", function()
        assert.equal(16, json.max_depth)
        assert.truthy(json.decode(string.rep("[", 16) .. string.rep("]", 16)))
        local v, err = json.decode(string.rep("[", 17) .. string.rep("]", 17))
        assert.is_nil(v)
        assert.equal("too deeply nested", err)
    end)
end)
