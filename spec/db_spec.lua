-- glasgow.db's error mapping: what a client may read of a database error.
require "core_stub"
package.preload["glasgow.pg"] = function()
    return {}
end
local db = require "glasgow.db"

describe("glasgow.db errors", function()
    -- PostgreSQL's own texts name tables, columns, constraints and values.
    local cases = {
        { "23502", 400, "invalid_input",
          'null value in column "password_hash" of relation "users" violates not-null constraint' },
        { "23514", 400, "invalid_input",
          'new row for relation "users" violates check constraint "users_email_check"' },
        { "22P02", 400, "invalid_input", 'invalid input syntax for type uuid: "nope"' },
        { "22001", 400, "invalid_input", "value too long for type character varying(10)" },
        { "23505", 409, "conflict",
          'duplicate key value violates unique constraint "users_email_key"' },
        { "23503", 409, "conflict", 'insert or update on table "auth_tokens" violates foreign key' },
        { "42P02", 500, "internal", "there is no parameter $0" },
    }
    for _, c in ipairs(cases) do
        local state, status, code, text = c[1], c[2], c[3], c[4]
        it(state .. " answers " .. status .. " " .. code .. " with our own message", function()
            local e = db.make_error("sql", state, text)
            assert.equal(status, e.status)
            assert.equal(code, e.code)
            assert.is_string(e.public_message)
            assert.is_nil(e.public_message:find(text, 1, true))
            for _, word in ipairs({ "violates", "relation", "column", "constraint", "syntax",
                                    "parameter" }) do
                assert.is_nil(e.public_message:find(word, 1, true))
            end
            -- the cause stays available for the log
            assert.truthy(tostring(e):find(text, 1, true))
        end)
    end

    it("connection failures are 503 with Retry-After and no server text", function()
        local e = db.make_error("connection", "08006", "could not connect to server at 10.0.0.5")
        assert.equal(503, e.status)
        assert.equal("1", e.headers["Retry-After"])
        assert.is_nil(e.public_message:find("10.0.0.5", 1, true))
    end)
end)
