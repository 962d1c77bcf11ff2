-- The one error contract: glasgow.errors' metatable and body, and the err
-- that glasgow.db, glasgow.s3 and glasgow.password return.
require "core_stub"
package.preload["glasgow.pg"] = function()
    return {}
end
package.preload["glasgow.s3core"] = function()
    return {}
end

-- A stand-in for the OpenSSL bindings, enough for glasgow.password: hex for
-- base64url, a keyed checksum for scrypt whose answer a test can replace.
local scrypt_fails -- nil: derive; else the error string scrypt returns
local random_fails -- likewise for random
package.preload["glasgow.crypto"] = function()
    local function hex(s)
        return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
    end
    local function unhex(s)
        if #s % 2 == 1 or s:find("[^0-9a-f]") then
            return nil, "bad"
        end
        return (s:gsub("..", function(h) return string.char(tonumber(h, 16)) end))
    end
    local function digest(s, n)
        local out, h = {}, 5381
        for i = 1, n do
            for j = 1, #s do
                h = (h * 33 + s:byte(j) + i) % 4294967296
            end
            out[i] = string.char(h % 256)
        end
        return table.concat(out)
    end
    return {
        base64url = hex,
        base64url_decode = unhex,
        sha256 = function(s) return digest(s, 32) end,
        random = function(n)
            if random_fails then
                return nil, random_fails
            end
            return string.rep("r", n)
        end,
        equal = function(a, b) return a == b end,
        scrypt = function(password, salt, n, r, p, dklen)
            if scrypt_fails then
                return nil, scrypt_fails
            end
            return digest(password .. "|" .. salt .. "|" .. n .. r .. p, dklen)
        end,
    }
end

local errors = require "glasgow.errors"
local db = require "glasgow.db"
local s3 = require "glasgow.s3"
local password = require "glasgow.password"
local json = require "glasgow.json"

-- The contract's common part, for an err of any module.
local function assert_contract(e)
    assert.is_true(errors.is(e))
    assert.equal(getmetatable(errors.new(400, "x")), getmetatable(e))
    assert.is_string(e.kind)
    assert.is_string(e.message)
    if e.status ~= nil then
        assert.is_number(e.status)
        assert.is_true(e.status >= 400 and e.status <= 599)
    end
    if e.retryable then
        assert.is_true(e.retryable)
        assert.is_string(e.headers["Retry-After"])
    else
        assert.is_nil(e.retryable)
    end
    assert.is_string(tostring(e))
    assert.truthy(tostring(e):find(e.message, 1, true))
end

describe("glasgow.errors", function()
    it("new makes an http error with the one metatable", function()
        local e = errors.new(404, "not_found", "no such user")
        assert_contract(e)
        assert.equal("http", e.kind)
        assert.equal(404, e.status)
        assert.equal("404 not_found: no such user", tostring(e))
    end)

    it("raise throws the error object itself", function()
        local ok, e = pcall(errors.raise, 429, "slow_down", "wait", nil, { ["Retry-After"] = "3" })
        assert.is_false(ok)
        assert.is_true(errors.is(e))
        assert.equal("3", e.headers["Retry-After"])
    end)

    it("make adds Retry-After to a retryable error and drops a false retryable", function()
        local e = errors.make({ kind = "busy", message = "m", status = 503, code = "unavailable",
                                retryable = true })
        assert_contract(e)
        assert.equal("1", e.headers["Retry-After"])
        local f = errors.make({ kind = "k", message = "m", retryable = false })
        assert.is_nil(f.retryable)
        assert.is_nil(f.headers)
        local g = errors.make({ kind = "k", message = "m", retryable = true,
                                headers = { ["Retry-After"] = "7" } })
        assert.equal("7", g.headers["Retry-After"])
    end)

    it("misuse raises", function()
        assert.has_error(function() errors.new(200, "ok") end)
        assert.has_error(function() errors.new(404) end)
        assert.has_error(function() errors.make({ message = "no kind" }) end)
        assert.has_error(function() errors.make({ kind = "k" }) end)
        assert.has_error(function() errors.make({ kind = "k", message = "m", status = 99 }) end)
        assert.has_error(function() errors.make(errors.new(400, "x")) end)
        assert.has_error(function() errors.body(nil, "m") end)
    end)

    it("is is false for look-alikes", function()
        assert.is_false(errors.is({ status = 400, code = "x", message = "m" }))
        assert.is_false(errors.is("400 x"))
        assert.is_false(errors.is(nil))
    end)

    it("body writes the members in the C side's order", function()
        assert.equal('{"error":{"code":"not_found","message":"no such user",'
                     .. '"details":null,"request_id":"r-1"}}',
                     errors.body("not_found", "no such user", nil, "r-1"))
        assert.equal('{"error":{"code":"c","message":"m","details":null,"request_id":null}}',
                     errors.body("c", "m"))
    end)

    it("body escapes and keeps details", function()
        local text = errors.body("validation_failed", 'say "hi"\n', { field = "body.name" }, "id")
        local v = json.decode(text)
        assert.equal('say "hi"\n', v.error.message)
        assert.equal("body.name", v.error.details.field)
        assert.equal("id", v.error.request_id)
        assert.truthy(text:find('^{"error":{"code":"validation_failed","message":'))
    end)
end)

describe("glasgow.db errors", function()
    it("carry the contract and keep their fields", function()
        local e = db.make_error("sql", "23505", "duplicate key value")
        assert_contract(e)
        assert.equal("db", e.source)
        assert.equal("sql", e.kind)
        assert.equal("23505", e.sqlstate)
        assert.equal(409, e.status)
        assert.equal("conflict", e.code)
        assert.is_string(e.public_message)
        assert.truthy(tostring(e):find("23505", 1, true))
    end)

    it("retryable ones carry Retry-After", function()
        for _, kind in ipairs({ "connection", "timeout", "pool_timeout", "pool_full" }) do
            local e = db.make_error(kind, "", "down")
            assert_contract(e)
            assert.equal(503, e.status)
            assert.is_true(e.retryable)
            assert.equal("1", e.headers["Retry-After"])
            assert.is_nil(e.sqlstate)
        end
    end)
end)

describe("glasgow.s3 errors", function()
    it("share the metatable with glasgow.db's", function()
        local a = s3.make_error("store", "NoSuchKey", 404, "no such key", false)
        local b = db.make_error("invalid", "", "bad parameter")
        assert_contract(a)
        assert_contract(b)
        assert.equal(getmetatable(a), getmetatable(b))
        assert.equal("s3", a.source)
        assert.equal(404, a.status)
        assert.is_nil(a.retryable)
    end)

    it("retryable ones carry Retry-After", function()
        local e = s3.make_error("network", "network", 0, "connection refused", true)
        assert_contract(e)
        assert.equal("unavailable", e.kind)
        assert.is_true(e.retryable)
        assert.equal("1", e.headers["Retry-After"])
    end)
end)

describe("glasgow.password", function()
    before_each(function()
        scrypt_fails = nil
        password.params = { ln = 4, r = 1, p = 1 }
    end)

    it("verify answers true or false when it could compare", function()
        local h = assert(password.hash("secret"))
        assert.is_true(password.verify("secret", h))
        assert.is_false(password.verify("Secret", h))
        assert.is_false(password.verify("secret", "not a hash"))
        assert.is_false(password.dummy_verify("secret"))
        -- nothing after false: a caller testing the second value sees none
        assert.equal(1, select("#", password.verify("Secret", h)))
    end)

    for _, c in ipairs({
        { "overloaded", "overloaded", 503, "unavailable", true },
        { "busy", "busy", 429, "too_many_requests", true },
        { "scrypt failed: malloc failure", "crypto", 500, "internal", nil },
    }) do
        it("a derivation failing with " .. c[1] .. " is nil, a " .. c[2] .. " error", function()
            local h = assert(password.hash("secret"))
            scrypt_fails = c[1]
            for _, call in ipairs({
                function() return password.verify("secret", h, "account:a") end,
                function() return password.verify("wrong", h, "account:a") end,
                function() return password.dummy_verify("secret", "account:a") end,
                function() return password.hash("new secret", "user:1") end,
            }) do
                local v, e = call()
                assert.is_nil(v)
                assert_contract(e)
                assert.equal("password", e.source)
                assert.equal(c[2], e.kind)
                assert.equal(c[3], e.status)
                assert.equal(c[4], e.code)
                assert.equal(c[5], e.retryable)
            end
        end)
    end

    it("too long a password: hash gives a 400 error, verify false", function()
        local v, e = password.hash(string.rep("a", password.MAX_BYTES + 1))
        assert.is_nil(v)
        assert_contract(e)
        assert.equal("too_long", e.kind)
        assert.equal(400, e.status)
        assert.is_false(password.verify(string.rep("a", password.MAX_BYTES + 1), "x"))
    end)

    it("misuse raises", function()
        assert.has_error(function() password.verify(nil, "x") end)
        assert.has_error(function() password.hash({}) end)
        assert.has_error(function() password.dummy_verify(1) end)
    end)
end)

describe("glasgow.random_bytes", function()
    local glasgow = require "glasgow"

    after_each(function()
        random_fails = nil
    end)

    it("is glasgow.crypto.random", function()
        assert.equal("rrrr", glasgow.random_bytes(4))
    end)

    it("answers nil, a crypto error when the generator fails", function()
        random_fails = "random failed: entropy source failure"
        local v, e = glasgow.random_bytes(4)
        assert.is_nil(v)
        assert_contract(e)
        assert.equal("crypto", e.kind)
        assert.equal(500, e.status)
        assert.truthy(e.message:find("entropy", 1, true))
    end)
end)
