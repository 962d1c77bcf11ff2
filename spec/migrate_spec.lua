-- glasgow migrate's bootstrap admin when the password cannot be hashed:
-- the run fails, says why, and creates no user (glasgow.pg, the migrations
-- directory and glasgow.password stubbed).
require "core_stub"
local core = require "glasgow.core"
core.listdir = function() return {} end -- no migration files

local executed = {}
package.preload["glasgow.pg"] = function()
    return {
        acquire = function() return {} end,
        release = function() end,
        exec = function(_, sql, ...)
            executed[#executed + 1] = { sql = sql, n = select("#", ...), ... }
            return { sql = sql }
        end,
        rows = function() return {}, 0 end, -- no admin yet, nothing applied
    }
end
package.preload["glasgow.crypto"] = function()
    return { hex = function(s) return s end, sha256 = function(s) return s end }
end

local errors = require "glasgow.errors"
local migrate = require "glasgow.migrate"

local hash_result -- what the stubbed glasgow.password.hash returns
package.loaded["glasgow.password"] = {
    MAX_LENGTH = 1024,
    hash = function() return hash_result[1], hash_result[2] end,
}

describe("glasgow migrate's bootstrap admin", function()
    local pw_file = os.tmpname()
    local real_getenv, real_stderr, real_stdout = os.getenv, io.stderr, io.stdout
    local err_text

    before_each(function()
        local f = assert(io.open(pw_file, "wb"))
        f:write("a good bootstrap password\n")
        f:close()
        for i = #executed, 1, -1 do
            executed[i] = nil
        end
        err_text = {}
        local env = {
            GLASGOW_BOOTSTRAP_ADMIN_EMAIL = "Admin@Example.org",
            GLASGOW_BOOTSTRAP_ADMIN_PASSWORD_FILE = pw_file,
            GLASGOW_MIGRATIONS_DIR = "/nonexistent",
        }
        os.getenv = function(name) return env[name] end -- luacheck: ignore 122
        io.stderr = { write = function(_, ...) -- luacheck: ignore 122
            for _, s in ipairs({ ... }) do
                err_text[#err_text + 1] = s
            end
        end }
        io.stdout = { write = function() end } -- luacheck: ignore 122
    end)

    after_each(function()
        os.getenv, io.stderr, io.stdout = real_getenv, real_stderr, real_stdout -- luacheck: ignore 122
    end)

    teardown(function()
        os.remove(pw_file)
    end)

    local function inserted_user()
        for _, e in ipairs(executed) do
            if e.sql:find("INSERT INTO users", 1, true) then
                return e
            end
        end
    end

    it("fails, says why and writes no user when the hash fails", function()
        hash_result = { nil, errors.make({ source = "password", kind = "crypto", status = 500,
                                           code = "internal",
                                           message = "password hashing failed: malloc failure" }) }
        local status = migrate.main()
        assert.equal(1, status)
        local text = table.concat(err_text)
        assert.truthy(text:find("cannot hash the password", 1, true), text)
        assert.truthy(text:find("malloc failure", 1, true), text)
        assert.is_nil(inserted_user())
    end)

    it("creates the admin with the hash when it succeeds", function()
        hash_result = { "scrypt$ln=4,r=1,p=1$c2FsdA$a2V5" }
        assert.equal(0, migrate.main())
        local ins = inserted_user()
        assert.is_table(ins)
        assert.equal("admin@example.org", ins[1])
        assert.equal("scrypt$ln=4,r=1,p=1$c2FsdA$a2V5", ins[3])
    end)
end)
