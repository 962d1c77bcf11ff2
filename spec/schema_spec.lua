-- Specs for lua/glasgow/schema.lua. Most cases are tables of
-- { label, schema, input, expected field, expected reason }.

local json = require "glasgow.json"
local schema = require "glasgow.schema"

local null = json.null
local decode = json.decode
local array, object = json.array, json.object

local USER = {
    type = "object",
    required = { "email", "name" },
    additionalProperties = false,
    properties = {
        email = { type = "string", format = "email", maxLength = 254 },
        name = { type = "string", minLength = 1, maxLength = 100 },
        age = { type = "integer", minimum = 0, maximum = 150 },
        role = { type = "string", enum = { "admin", "member" } },
        tags = {
            type = "array", maxItems = 3,
            items = { type = "string", minLength = 1 },
        },
        manager = { type = { "string", "null" }, format = "uuid" },
    },
}

-- Builds a description of a case for test names.
local function label(case)
    return case[1]
end

describe("glasgow.schema", function()
    describe("check", function()
        local valid = {
            { "empty schema", {} },
            { "string with all string keywords",
              { type = "string", minLength = 0, maxLength = 10, format = "date",
                description = "d", example = "2024-02-29", default = "2000-01-01" } },
            { "type array", { type = { "integer", "null" } } },
            { "enum of mixed scalars", { enum = { "a", 1, true, null } } },
            { "numeric bounds", { type = "number", minimum = -1.5, maximum = 2,
                                  exclusiveMinimum = -2, exclusiveMaximum = 3 } },
            { "array", { type = "array", minItems = 0, maxItems = 5,
                         items = { type = "string" } } },
            { "object with empty properties", { type = "object", properties = {} } },
            { "required without properties", { type = "object", required = { "a" } } },
            { "closed object", { type = "object", additionalProperties = false,
                                 properties = { a = {} }, required = { "a" } } },
            { "empty required", { type = "object", required = {} } },
            { "object example", { type = "object", properties = { n = { type = "integer" } },
                                  example = { n = 3 } } },
            { "array example, empty", { type = "array", example = array() } },
            { "object example, empty", { type = "object", example = {} } },
            { "array or object example, empty", { type = { "array", "object" }, default = {} } },
            { "null default", { type = { "string", "null" }, default = null } },
            { "all four formats",
              { type = "object", properties = {
                  a = { format = "uuid" }, b = { format = "email" },
                  c = { format = "date-time" }, d = { format = "date" } } } },
            { "a realistic body", USER },
        }
        for _, case in ipairs(valid) do
            it("accepts " .. label(case), function()
                assert.is_true(schema.check(case[2], "body"))
            end)
        end

        local invalid = {
            { "unknown keyword", { type = "object", properties = { name = { maxlen = 3 } } },
              'schema: unknown keyword "maxlen" at body.properties.name' },
            { "nullable", { type = "string", nullable = true },
              'schema: unknown keyword "nullable" at body' },
            { "$ref", { ["$ref"] = "#/x" }, 'unknown keyword "$ref"' },
            { "non-string keyword", { "string" }, "keyword must be a string" },
            { "schema not a table", { type = "object", properties = { a = "string" } },
              "schema must be a table, got string at body.properties.a" },
            { "unknown type", { type = "text" }, 'unknown type "text"' },
            { "empty type array", { type = {} }, "type must not be empty" },
            { "duplicate type", { type = { "string", "string" } }, 'duplicate type "string"' },
            { "type array with junk", { type = { "string", 1 } }, "unknown type 1" },
            { "type as a map", { type = { a = "string" } }, "type must be an array" },
            { "type as a number", { type = 3 }, "type must be a string or an array" },
            { "empty enum", { enum = {} }, "enum must not be empty" },
            { "enum of tables", { enum = { {} } }, "enum values must be" },
            { "enum with NaN", { enum = { 0 / 0 } }, "enum values must be" },
            { "enum as a string", { enum = "a" }, "enum must be an array" },
            { "negative minLength", { minLength = -1 }, "minLength must be a non-negative integer" },
            { "fractional maxLength", { maxLength = 1.5 }, "maxLength must be a non-negative integer" },
            { "string maxItems", { maxItems = "3" }, "maxItems must be a non-negative integer" },
            { "huge minItems", { minItems = 2 ^ 60 }, "minItems must be a non-negative integer" },
            { "NaN minimum", { minimum = 0 / 0 }, "minimum must be a finite number" },
            { "infinite maximum", { maximum = math.huge }, "maximum must be a finite number" },
            { "boolean exclusiveMinimum", { exclusiveMinimum = true },
              "exclusiveMinimum must be a finite number" },
            { "unknown format", { format = "ipv4" }, 'unknown format "ipv4"' },
            { "non-string description", { description = 1 }, "description must be a string" },
            { "schema additionalProperties",
              { type = "object", additionalProperties = { type = "string" } },
              "additionalProperties must be a boolean" },
            { "tuple items", { type = "array", items = { { type = "string" } } },
              "keyword must be a string, got 1 at body.items" },
            { "numeric property name", { type = "object", properties = { [1] = {} } },
              "property names must be strings" },
            { "required not an array", { type = "object", required = "a" },
              "required must be an array" },
            { "required with a number", { type = "object", required = { 1 } },
              "required must contain only strings" },
            { "duplicate required", { type = "object", required = { "a", "a" } },
              'duplicate required name "a"' },
            { "unsatisfiable required",
              { type = "object", additionalProperties = false,
                properties = { email = {} }, required = { "emial" } },
              'required name "emial" is not a declared property' },
            { "example of the wrong type", { type = "integer", example = "3" },
              "example does not match the schema: example must be an integer" },
            { "default violating a nested rule",
              { type = "object", properties = { n = { type = "integer", minimum = 1 } },
                default = { n = 0 } },
              "default does not match the schema: default.n must be at least 1" },
            { "example that is a function", { example = print }, "example must be a JSON value" },
            -- glasgow.json.encode writes an unmarked {} as an object
            { "empty array example not marked", { type = "array", example = {} },
              "example does not match the schema: example must be an array" },
            { "empty array default marked as an object", { type = "array", default = object() },
              "default does not match the schema: default must be an array" },
            { "empty object example marked as an array", { type = "object", example = array() },
              "example does not match the schema: example must be an object" },
            { "nested empty array default not marked",
              { type = "object", properties = { tags = { type = "array" } }, default = { tags = {} } },
              "default does not match the schema: default.tags must be an array" },
            { "nested bad keyword in items",
              { type = "array", items = { type = "object", properties = { x = { min = 1 } } } },
              'unknown keyword "min" at body.items.properties.x' },
            { "odd property names are quoted in paths",
              { type = "object", properties = { ["a.b"] = { typo = 1 } } },
              'unknown keyword "typo" at body.properties["a.b"]' },
        }
        for _, case in ipairs(invalid) do
            it("rejects " .. label(case), function()
                local ok, err = pcall(schema.check, case[2], "body")
                assert.is_false(ok)
                assert.is_string(err)
                assert.truthy(err:find(case[3], 1, true),
                    "expected '" .. case[3] .. "' in '" .. err .. "'")
                assert.truthy(err:find("^schema: "), err)
            end)
        end

        it("uses root as the default path", function()
            local ok, err = pcall(schema.check, { maxlen = 1 })
            assert.is_false(ok)
            assert.equal('schema: unknown keyword "maxlen" at root', err)
        end)

        it("reports the first unknown keyword in sorted order", function()
            for _ = 1, 20 do
                local ok, err = pcall(schema.check, { zz = 1, bb = 1, mm = 1, type = "string" }, "b")
                assert.is_false(ok)
                assert.equal('schema: unknown keyword "bb" at b', err)
            end
        end)

        describe("cycles", function()
            it("detects a schema that contains itself through properties", function()
                local s = { type = "object", properties = {} }
                s.properties.child = s
                local ok, err = pcall(schema.check, s, "body")
                assert.is_false(ok)
                assert.equal("schema: cyclic schema at body.properties.child", err)
            end)

            it("detects a schema that contains itself through items", function()
                local s = { type = "array" }
                s.items = s
                local ok, err = pcall(schema.check, s, "body")
                assert.is_false(ok)
                assert.equal("schema: cyclic schema at body.items", err)
            end)

            it("detects an indirect cycle", function()
                local a = { type = "object", properties = {} }
                local b = { type = "array" }
                a.properties.list = b
                b.items = a
                local ok, err = pcall(schema.check, a, "body")
                assert.is_false(ok)
                assert.equal("schema: cyclic schema at body.properties.list.items", err)
            end)

            it("detects a cycle through properties used as a schema", function()
                local props = {}
                local s = { type = "object", properties = props }
                props.again = s
                assert.has_error(function() schema.check(s) end)
            end)

            it("accepts a subschema shared by several properties", function()
                local id = { type = "string", format = "uuid" }
                local s = { type = "object", properties = { a = id, b = id,
                    list = { type = "array", items = id } } }
                assert.is_true(schema.check(s))
                assert.is_truthy(schema.validate(s, { a = "00000000-0000-0000-0000-000000000000" }))
            end)

            it("refuses to validate against a cyclic schema", function()
                local s = { type = "array" }
                s.items = s
                assert.has_error(function() schema.validate(s, {}) end)
            end)
        end)
    end)

    describe("validate", function()
        -- { label, schema, value, field (nil when valid), reason }
        local cases = {
            -- types
            { "string", { type = "string" }, "x" },
            { "empty string", { type = "string" }, "" },
            { "number for string", { type = "string" }, 1, "body", "must be a string" },
            { "null for string", { type = "string" }, null, "body", "must be a string" },
            { "table for string", { type = "string" }, {}, "body", "must be a string" },
            { "boolean", { type = "boolean" }, false },
            { "string for boolean", { type = "boolean" }, "true", "body", "must be a boolean" },
            { "null", { type = "null" }, null },
            { "false for null", { type = "null" }, false, "body", "must be null" },
            { "integer", { type = "integer" }, 42 },
            { "negative integer", { type = "integer" }, -7 },
            { "integral float", { type = "integer" }, 3.0 },
            { "fraction for integer", { type = "integer" }, 1.5, "body", "must be an integer" },
            { "NaN for integer", { type = "integer" }, 0 / 0, "body", "must be an integer" },
            { "inf for integer", { type = "integer" }, math.huge, "body", "must be an integer" },
            { "largest safe integer", { type = "integer" }, 2 ^ 53 - 1 },
            { "smallest safe integer", { type = "integer" }, -(2 ^ 53 - 1) },
            { "2^53 for integer", { type = "integer" }, 2 ^ 53, "body", "is out of range" },
            { "1e20 for integer", { type = "integer" }, 1e20, "body", "is out of range" },
            { "-1e300 for integer", { type = "integer" }, -1e300, "body", "is out of range" },
            { "string for integer", { type = "integer" }, "1", "body", "must be an integer" },
            { "number", { type = "number" }, 1.25 },
            { "integer is a number", { type = "number" }, 3 },
            { "NaN for number", { type = "number" }, 0 / 0, "body", "must be a number" },
            { "inf for number", { type = "number" }, -math.huge, "body", "must be a number" },
            { "object", { type = "object" }, { a = 1 } },
            { "empty table as object", { type = "object" }, {} },
            { "empty object as object", { type = "object" }, object() },
            { "empty array for object", { type = "object" }, array(), "body", "must be an object" },
            { "array for object", { type = "object" }, { 1, 2 }, "body", "must be an object" },
            { "array", { type = "array" }, { 1, 2 } },
            { "marked array", { type = "array" }, array({ 1, 2 }) },
            { "empty array as array", { type = "array" }, array() },
            { "empty table for array", { type = "array" }, {}, "body", "must be an array" },
            { "empty object for array", { type = "array" }, object(), "body", "must be an array" },
            { "object marked as an array", { type = "array" }, array({ a = 1 }),
              "body", "must be an array" },
            { "array marked as an object", { type = "object" }, object({ 1 }),
              "body", "must be an object" },
            { "empty array for array or object", { type = { "array", "object" } }, array() },
            { "empty object for array or object", { type = { "array", "object" } }, object() },
            { "empty object for array or null", { type = { "array", "null" } }, object(),
              "body", "must be an array or null" },
            { "object for array", { type = "array" }, { a = 1 }, "body", "must be an array" },
            { "sparse table for array", { type = "array" }, { [1] = 1, [3] = 3 },
              "body", "must be an array" },
            { "zero index for array", { type = "array" }, { [0] = 1 }, "body", "must be an array" },
            { "mixed table for object", { type = "object" }, { 1, a = 2 },
              "body", "must be an object" },
            { "numeric keys for object", { type = "object" }, { [2] = 1 },
              "body", "must be an object" },
            { "type array accepts null", { type = { "string", "null" } }, null },
            { "type array accepts string", { type = { "string", "null" } }, "x" },
            { "type array rejects number", { type = { "string", "null" } }, 1,
              "body", "must be a string or null" },
            { "three types", { type = { "string", "integer", "null" } }, true,
              "body", "must be a string, an integer or null" },
            { "function for anything", {}, print, "body", "must be a json value" },
            { "NaN for anything", {}, 0 / 0, "body", "must be a json value" },
            { "mixed table for anything", {}, { 1, a = 1 }, "body", "must be a json value" },
            { "nil at the root", { type = "string" }, nil, "body", "is required" },

            -- strings
            { "minLength", { type = "string", minLength = 2 }, "a",
              "body", "must be at least 2 characters" },
            { "minLength 1 and empty", { type = "string", minLength = 1 }, "",
              "body", "must be at least 1 character" },
            { "maxLength", { type = "string", maxLength = 3 }, "abcd",
              "body", "must be at most 3 characters" },
            { "maxLength counts code points", { type = "string", maxLength = 3 }, "h\195\169\195\169" },
            { "maxLength with 4-byte chars", { type = "string", maxLength = 1 },
              "\240\159\152\128" },
            { "maxLength exceeded with 4-byte chars", { type = "string", maxLength = 1 },
              "\240\159\152\128\240\159\152\128", "body", "must be at most 1 character" },
            { "invalid utf-8", { type = "string" }, "\255", "body", "must be valid utf-8" },
            { "truncated utf-8", { type = "string", maxLength = 10 }, "ab\195",
              "body", "must be valid utf-8" },
            { "overlong utf-8", { type = "string" }, "\192\175", "body", "must be valid utf-8" },
            { "overlong 3-byte", { type = "string" }, "\224\128\175", "body", "must be valid utf-8" },
            { "utf-8 surrogate", { type = "string" }, "\237\160\128", "body", "must be valid utf-8" },
            { "beyond U+10FFFF", { type = "string" }, "\244\144\128\128",
              "body", "must be valid utf-8" },
            { "invalid utf-8 without type", {}, "\128", "body", "must be valid utf-8" },
            { "invalid utf-8 checked before enum", { enum = { "a" } }, "\128",
              "body", "must be valid utf-8" },
            { "NUL is valid utf-8", { type = "string" }, "a\0b" },
            { "length keywords ignore numbers", { minLength = 5 }, 1 },

            -- enum
            { "enum hit", { enum = { "a", "b" } }, "b" },
            { "enum miss", { enum = { "a", "b" } }, "c", "body", "must be one of: a, b" },
            { "enum is case-sensitive", { enum = { "a", "b" } }, "A", "body", "must be one of: a, b" },
            { "enum with numbers", { enum = { 1, 2.5, null, true } }, 3,
              "body", "must be one of: 1, 2.5, null, true" },
            { "enum with null hit", { enum = { 1, null } }, null },
            { "enum does not coerce", { enum = { 1 } }, "1", "body", "must be one of: 1" },
            { "enum never matches a table", { enum = { "a" } }, {}, "body", "must be one of: a" },

            -- numbers
            { "minimum inclusive", { type = "number", minimum = 1 }, 1 },
            { "minimum", { type = "number", minimum = 1 }, 0.5, "body", "must be at least 1" },
            { "maximum inclusive", { type = "integer", maximum = 10 }, 10 },
            { "maximum", { type = "integer", maximum = 10 }, 11, "body", "must be at most 10" },
            { "exclusiveMinimum", { type = "number", exclusiveMinimum = 0 }, 0,
              "body", "must be greater than 0" },
            { "exclusiveMaximum", { type = "number", exclusiveMaximum = 1.5 }, 1.5,
              "body", "must be less than 1.5" },
            { "fractional bound text", { type = "number", minimum = 0.1 }, 0,
              "body", "must be at least 0.1" },
            { "huge number against maximum", { type = "number", maximum = 1e6 }, 1e308,
              "body", "must be at most 1000000" },

            -- arrays
            { "minItems", { type = "array", minItems = 1 }, array(), "body", "must have at least 1 item" },
            { "maxItems", { type = "array", maxItems = 2 }, { 1, 2, 3 },
              "body", "must have at most 2 items" },
            { "items", { type = "array", items = { type = "integer" } }, { 1, 2, "x" },
              "body[2]", "must be an integer" },
            { "items in nested arrays",
              { type = "array", items = { type = "array", items = { type = "string" } } },
              { { "a" }, { "b", 3 } }, "body[1][1]", "must be a string" },
            { "array keywords on empty array without type", { minItems = 1 }, array(),
              "body", "must have at least 1 item" },
            { "array keywords do not apply to an empty object", { minItems = 1 }, object() },
            { "array keywords do not apply to objects", { minItems = 1 }, { a = 1 } },
            { "array keywords skipped for empty table typed object",
              { type = "object", minItems = 1 }, {} },

            -- objects
            { "unknown field allowed by default", { type = "object", properties = { a = {} } },
              { b = 1 } },
            { "required missing", { type = "object", required = { "a" } }, {},
              "body.a", "is required" },
            { "required present as null", { type = "object", required = { "a" } }, { a = null } },
            { "null is not a string", { type = "object", properties = { a = { type = "string" } } },
              { a = null }, "body.a", "must be a string" },
            { "unknown field",
              { type = "object", additionalProperties = false, properties = { a = {} } },
              { a = 1, b = 2 }, "body.b", "unknown field" },
            { "unknown field with an odd name",
              { type = "object", additionalProperties = false },
              { ["x\1\"y"] = 1 }, 'body["x\\x01\\x22y"]', "unknown field" },
            { "unknown field with invalid utf-8 name",
              { type = "object", additionalProperties = false },
              { ["\255\254"] = 1 }, 'body["\\xff\\xfe"]', "unknown field" },
            { "unknown field with a huge name",
              { type = "object", additionalProperties = false },
              { [string.rep("a", 1000)] = 1 },
              'body["' .. string.rep("a", 64) .. '..."]', "unknown field" },
            { "dotted name is quoted",
              { type = "object", properties = { ["a.b"] = { type = "string" } } },
              { ["a.b"] = 1 }, 'body["a.b"]', "must be a string" },
            { "empty name is quoted",
              { type = "object", properties = { [""] = { type = "string" } } },
              { [""] = 1 }, 'body[""]', "must be a string" },
            { "object keywords apply to empty table without type", { required = { "a" } }, {},
              "body.a", "is required" },
            { "object keywords do not apply to an empty array", { required = { "a" } }, array() },
            { "object keywords do not apply to arrays", { required = { "a" } }, { 1 } },
            { "nested objects",
              { type = "object", properties = { a = { type = "object",
                  properties = { b = { type = "array", items = { type = "object",
                      required = { "c" } } } } } } },
              { a = { b = { { c = 1 }, {} } } }, "body.a.b[1].c", "is required" },
        }
        for _, case in ipairs(cases) do
            it((case[4] and "rejects " or "accepts ") .. label(case), function()
                local value, err = schema.validate(case[2], case[3], "body")
                if case[4] then
                    assert.is_nil(value)
                    assert.same({ field = case[4], reason = case[5] }, err)
                else
                    assert.is_nil(err)
                    assert.equal(case[3], value)
                end
            end)
        end

        -- JSON documents through glasgow.json.decode, as the runtime sees them.
        local json_cases = {
            { "a valid user", '{"email":"a@example.com","name":"Ann","age":30,' ..
              '"tags":["x","y"],"manager":null}' },
            { "a valid user with a manager",
              '{"email":"a@example.com","name":"Ann","manager":"123e4567-e89b-12d3-a456-426614174000"}' },
            { "missing email", '{"name":"Ann"}', "body.email", "is required" },
            { "missing name", '{"email":"a@example.com"}', "body.name", "is required" },
            { "empty object", "{}", "body.email", "is required" },
            { "empty array", "[]", "body", "must be an object" },
            { "array body", '["a"]', "body", "must be an object" },
            { "string body", '"x"', "body", "must be an object" },
            { "null body", "null", "body", "must be an object" },
            { "empty name", '{"email":"a@example.com","name":""}',
              "body.name", "must be at least 1 character" },
            { "long name", '{"email":"a@example.com","name":"' .. string.rep("n", 101) .. '"}',
              "body.name", "must be at most 100 characters" },
            { "bad email", '{"email":"not-an-email","name":"Ann"}',
              "body.email", "is not a valid email" },
            { "email as number", '{"email":5,"name":"Ann"}', "body.email", "must be a string" },
            { "unknown field", '{"email":"a@example.com","name":"Ann","admin":true}',
              "body.admin", "unknown field" },
            { "age as string", '{"email":"a@example.com","name":"Ann","age":"30"}',
              "body.age", "must be an integer" },
            { "age fraction", '{"email":"a@example.com","name":"Ann","age":30.5}',
              "body.age", "must be an integer" },
            { "age exponent form is an integer", '{"email":"a@example.com","name":"Ann","age":1e2}' },
            { "age negative", '{"email":"a@example.com","name":"Ann","age":-1}',
              "body.age", "must be at least 0" },
            { "age huge", '{"email":"a@example.com","name":"Ann","age":99999999999999999999}',
              "body.age", "is out of range" },
            { "role not in enum", '{"email":"a@example.com","name":"Ann","role":"root"}',
              "body.role", "must be one of: admin, member" },
            { "too many tags", '{"email":"a@example.com","name":"Ann","tags":["a","b","c","d"]}',
              "body.tags", "must have at most 3 items" },
            { "empty tag", '{"email":"a@example.com","name":"Ann","tags":["a","","c"]}',
              "body.tags[1]", "must be at least 1 character" },
            { "tag not a string", '{"email":"a@example.com","name":"Ann","tags":["a","b",3]}',
              "body.tags[2]", "must be a string" },
            { "tags as object", '{"email":"a@example.com","name":"Ann","tags":{"a":1}}',
              "body.tags", "must be an array" },
            { "tags as empty object", '{"email":"a@example.com","name":"Ann","tags":{}}',
              "body.tags", "must be an array" },
            { "tags as empty array", '{"email":"a@example.com","name":"Ann","tags":[]}' },
            { "bad manager uuid", '{"email":"a@example.com","name":"Ann","manager":"nope"}',
              "body.manager", "is not a valid uuid" },
            { "manager wrong type", '{"email":"a@example.com","name":"Ann","manager":1}',
              "body.manager", "must be a string or null" },
            { "first violation in sorted order",
              '{"zzz":1,"age":"x","email":1,"name":2,"aaa":1}', "body.aaa", "unknown field" },
            { "sorted order among known fields",
              '{"tags":1,"role":1,"name":1,"email":"a@example.com","age":"x"}',
              "body.age", "must be an integer" },
            { "missing and wrong reported in name order", '{"name":1}', "body.email", "is required" },
            { "missing field sorted before an unknown one", '{"zzz":1,"name":"Ann"}',
              "body.email", "is required" },
            { "unknown field between declared ones",
              '{"email":"a@example.com","mmm":1,"name":2}', "body.mmm", "unknown field" },
            { "declared violation before an unknown one",
              '{"email":"a@example.com","mmm":1,"age":"x","name":"Ann"}',
              "body.age", "must be an integer" },
        }
        for _, case in ipairs(json_cases) do
            it((case[3] and "rejects JSON " or "accepts JSON ") .. label(case), function()
                local doc = decode(case[2])
                local value, err = schema.validate(USER, doc, "body")
                if case[3] then
                    assert.is_nil(value)
                    assert.same({ field = case[3], reason = case[4] }, err)
                else
                    assert.is_nil(err)
                    assert.equal(doc, value)
                end
            end)
        end

        -- What cjson let through to the validator, glasgow.json refuses first
        -- (the route answers 400 invalid_json).
        for _, text in ipairs({ '{"age":NaN}', '{"age":Infinity}', '{"age":0x10}',
                                '{"name":"\255"}', '{"age":1e999}' }) do
            it("never sees " .. text .. ": the decoder refuses it", function()
                local v, err = decode(text)
                assert.is_nil(v)
                assert.truthy(err:find(" at byte %d+$"), err)
            end)
        end

        it("reports the same violation regardless of insertion order", function()
            local keys = { "m", "b", "z", "a", "q", "c" }
            for round = 1, 30 do
                local t = {}
                for i = 1, #keys do
                    local k = keys[(i + round) % #keys + 1]
                    t[k] = 1
                end
                local _, err = schema.validate({ type = "object", additionalProperties = false }, t, "q")
                assert.same({ field = "q.a", reason = "unknown field" }, err)
            end
        end)

        it("returns the value itself, false included", function()
            local v, err = schema.validate({ type = "boolean" }, false, "b")
            assert.is_false(v)
            assert.is_nil(err)
            local t = { a = 1 }
            assert.equal(t, schema.validate({ type = "object" }, t))
        end)

        it("does not inject defaults", function()
            local s = { type = "object", properties = { n = { type = "integer", default = 5 } } }
            local t = {}
            assert.same({}, schema.validate(s, t))
            assert.is_nil(t.n)
        end)

        it("defaults where to value", function()
            local _, err = schema.validate({ type = "object", required = { "a" } }, {})
            assert.same({ field = "value.a", reason = "is required" }, err)
        end)

        it("checks an unchecked schema and raises on a bad one", function()
            local ok, err = pcall(schema.validate, { type = "strin" }, "x", "body")
            assert.is_false(ok)
            assert.truthy(err:find('schema: unknown type "strin" at body', 1, true))
        end)

        it("raises on misuse", function()
            assert.has_error(function() schema.validate(nil, 1) end)
            assert.has_error(function() schema.validate("string", 1) end)
            assert.has_error(function() schema.validate({}, 1, 5) end)
        end)

        it("handles an object with very many unknown fields", function()
            local t = { email = "a@example.com", name = "Ann" }
            for i = 1, 200000 do
                t["k" .. i] = i
            end
            t["j"] = 1
            local _, err = schema.validate(USER, t, "body")
            assert.same({ field = "body.j", reason = "unknown field" }, err)
        end)

        it("handles a long array and a long string", function()
            local list = {}
            for i = 1, 10000 do
                list[i] = i
            end
            assert.equal(list, schema.validate({ type = "array", items = { type = "integer" } }, list))
            local s = string.rep("\226\130\172", 100000)
            local _, err = schema.validate({ type = "string", maxLength = 99999 }, s, "b")
            assert.same({ field = "b", reason = "must be at most 99999 characters" }, err)
        end)

        it("handles deeply nested values allowed by the decoder", function()
            local text = string.rep("[", 900) .. string.rep("]", 900)
            local v = require("glasgow.jsonc").decode(text, 1000)
            assert.equal(v, schema.validate({}, v))
            local _, err = schema.validate({ type = "array", items = { type = "string" } }, v, "b")
            assert.same({ field = "b[0]", reason = "must be a string" }, err)
        end)
    end)

    describe("arrays and objects, as glasgow.json decodes them", function()
        local S = {
            type = "object", additionalProperties = false,
            properties = {
                tags = { type = "array", items = { type = "string" } },
                meta = { type = "object", properties = {
                    labels = { type = "array", items = { type = "object" } } } },
                grid = { type = "array", items = { type = "array", items = { type = "integer" } } },
                any = {},
                maybe = { type = { "array", "null" } },
            },
        }
        -- { JSON text, field, reason } (no field: valid)
        local cases = {
            { "{}" },
            { "[]", "body", "must be an object" },
            { '{"tags":[]}' },
            { '{"tags":{}}', "body.tags", "must be an array" },
            { '{"meta":{}}' },
            { '{"meta":[]}', "body.meta", "must be an object" },
            { '{"meta":{"labels":[{}]}}' },
            { '{"meta":{"labels":[[]]}}', "body.meta.labels[0]", "must be an object" },
            { '{"meta":{"labels":{}}}', "body.meta.labels", "must be an array" },
            { '{"grid":[[],[1]]}' },
            { '{"grid":[[],{}]}', "body.grid[1]", "must be an array" },
            { '{"grid":{}}', "body.grid", "must be an array" },
            { '{"any":{}}' },
            { '{"any":[]}' },
            { '{"maybe":null}' },
            { '{"maybe":[]}' },
            { '{"maybe":{}}', "body.maybe", "must be an array or null" },
        }
        for _, case in ipairs(cases) do
            it((case[2] and "rejects " or "accepts ") .. case[1], function()
                local doc = assert(decode(case[1]))
                local value, err = schema.validate(S, doc, "body")
                if case[2] then
                    assert.is_nil(value)
                    assert.same({ field = case[2], reason = case[3] }, err)
                else
                    assert.is_nil(err)
                    -- what was accepted as an array goes back out as one
                    assert.equal(case[1], json.encode(value))
                end
            end)
        end

        it("uses the marks of the glasgow.json in use", function()
            assert.equal(json.array_mt, getmetatable(decode("[]")))
            assert.equal(json.object_mt, getmetatable(decode("{}")))
            assert.is_nil(schema.validate({ type = "array" }, decode("{}")))
            assert.is_nil(schema.validate({ type = "object" }, decode("[]")))
        end)
    end)

    describe("formats", function()
        local cases = {
            uuid = {
                valid = { "123e4567-e89b-12d3-a456-426614174000",
                          "00000000-0000-0000-0000-000000000000",
                          "ABCDEF01-2345-6789-ABCD-EF0123456789",
                          "aBcDeF01-2345-6789-AbCd-ef0123456789" },
                invalid = { "", "123e4567e89b12d3a456426614174000",
                            "123e4567-e89b-12d3-a456-4266141740", -- 34
                            "123e4567e-89b-12d3-a456-426614174000", -- hyphen moved
                            "123e456-7e89b-12d3-a456-426614174000",
                            "123e4567-e89b-12d3-a4564-26614174000",
                            "123e4567-e89b-12d3-a456-426614174-00",
                            "123e4567-e89b-12d3a-456-426614174000",
                            "123e4567xe89b-12d3-a456-426614174000", -- not a hyphen
                            "123e4567-e89b-12d3-a456_426614174000",
                            "123e4567-e89b-12d3-a456-42661417400g", -- non-hex
                            "123e4567-e89b-12d3-a456-42661417400G",
                            "123e4567-e89b-12d3-a456-42661417400:",
                            "123e4567-e89b-12d3-a456-42661417400@",
                            "123e4567-e89b-12d3-a456-42661417400`",
                            "123e4567-e89b-12d3-a456-42661417400/",
                            "123e4567-e89b-12d3-a456-42661417400\0",
                            "123e4567-e89b-12d3-a456-42661417400\255",
                            "------------------------------------",
                            "123e4567-e89b-12d3-a456-4266141740\195\169",
                            "123e4567-e89b-12d3-a456-42661417400",
                            "123e4567-e89b-12d3-a456-4266141740000",
                            "g23e4567-e89b-12d3-a456-426614174000",
                            "{123e4567-e89b-12d3-a456-426614174000}",
                            " 123e4567-e89b-12d3-a456-426614174000",
                            "123e4567-e89b-12d3-a456-426614174000\n" },
            },
            email = {
                valid = { "a@example.com", "first.last+tag@sub.example.co.uk",
                          "x_y-z@a-b.io", "o'brien@example.ie" },
                invalid = { "", "a", "@example.com", "a@", "a@b", "a@@example.com",
                            "a b@example.com", ".a@example.com", "a.@example.com",
                            "a..b@example.com", "a@-example.com", "a@example-.com",
                            "a@example..com", "a@.example.com", "a@example.com.",
                            "a@exa_mple.com", "\"a\"@example.com",
                            string.rep("a", 65) .. "@example.com",
                            "a@" .. string.rep("b", 64) .. ".com",
                            "a@" .. string.rep("b.", 130) .. "com",
                            "j\195\169@example.com", "a@example.com\n" },
            },
            ["date-time"] = {
                valid = { "2024-01-31T23:59:59Z", "2024-02-29T00:00:00z",
                          "2024-01-01t12:30:00+01:00", "2024-01-01T12:30:00.123456-05:30",
                          "1990-12-31T23:59:60Z", "1990-12-31T15:59:60-08:00" },
                invalid = { "", "2024-01-31", "2024-01-31T23:59:59", "2024-01-31 23:59:59Z",
                            "2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z",
                            "2024-00-01T00:00:00Z", "2024-04-31T00:00:00Z",
                            "2024-01-01T24:00:00Z", "2024-01-01T00:60:00Z",
                            "2024-01-01T00:00:61Z", "2024-01-01T12:00:60Z",
                            "2024-01-01T00:00:00+24:00", "2024-01-01T00:00:00+01:60",
                            "2024-01-01T00:00:00+0100", "2024-01-01T00:00:00.Z",
                            "24-01-01T00:00:00Z", "2024-1-01T00:00:00Z",
                            "2024-01-01T00:00:00Z ", "\2242024-01-01T00:00:00Z",
                            "0000-01-01T00:00:00Z" },
            },
            date = {
                valid = { "2024-02-29", "2000-02-29", "1999-12-31", "0001-01-01" },
                invalid = { "", "1900-02-29", "2023-02-29", "2024-02-30", "2024-06-31",
                            "2024-00-10", "2024-01-00", "2024-1-1", "20240101",
                            "2024-01-01T00:00:00Z", " 2024-01-01", "2024/01/01", "0000-01-01" },
            },
        }
        for name, set in pairs(cases) do
            local s = { type = "string", format = name }
            for _, v in ipairs(set.valid) do
                it("accepts " .. name .. " " .. v, function()
                    assert.equal(v, schema.validate(s, v, "f"))
                end)
            end
            for _, v in ipairs(set.invalid) do
                it(("rejects %s %q"):format(name, v), function()
                    local value, err = schema.validate(s, v, "f")
                    assert.is_nil(value)
                    assert.equal("f", err.field)
                    assert.truthy(err.reason == "is not a valid " .. name
                        or err.reason == "must be valid utf-8", err.reason)
                end)
            end
        end

        it("accepts the same uuids as the pattern it replaced", function()
            -- every one-byte change of a valid uuid, at every position
            local hexes = ("%x"):rep(8) .. "%-" .. ("%x"):rep(4) .. "%-" .. ("%x"):rep(4)
                .. "%-" .. ("%x"):rep(4) .. "%-" .. ("%x"):rep(12)
            local pattern = "^" .. hexes .. "$"
            local s = { type = "string", format = "uuid" }
            local base = "0123abcd-ABCD-4567-89ef-0123456789AB"
            local checked = 0
            for i = 1, #base do
                for c = 0, 255 do
                    local v = base:sub(1, i - 1) .. string.char(c) .. base:sub(i + 1)
                    local want = v:find(pattern) ~= nil
                    local got = schema.validate(s, v, "f") ~= nil
                    if want ~= got then
                        error(("%q: pattern %s, check %s"):format(v, tostring(want), tostring(got)))
                    end
                    checked = checked + 1
                end
            end
            assert.equal(36 * 256, checked)
        end)

        it("ignores format for non-strings", function()
            assert.equal(5, schema.validate({ format = "uuid" }, 5))
        end)
    end)

    describe("coerce", function()
        -- { label, schema, string, expected value or nil, field, reason }
        local cases = {
            { "integer", { type = "integer" }, "42", 42 },
            { "negative integer", { type = "integer" }, "-42", -42 },
            { "zero", { type = "integer" }, "0", 0 },
            { "minus zero", { type = "integer" }, "-0", 0 },
            { "leading zeros", { type = "integer" }, "007", 7 },
            { "largest safe integer", { type = "integer" }, "9007199254740991", 2 ^ 53 - 1 },
            { "2^53", { type = "integer" }, "9007199254740992", nil, "p", "is out of range" },
            { "2^53 + 1", { type = "integer" }, "9007199254740993", nil, "p", "is out of range" },
            { "overflow", { type = "integer" }, "99999999999999999999", nil, "p", "is out of range" },
            { "negative overflow", { type = "integer" }, "-99999999999999999999",
              nil, "p", "is out of range" },
            { "very long digits", { type = "integer" }, string.rep("9", 5000),
              nil, "p", "is out of range" },
            { "exponent for integer", { type = "integer" }, "1e3", nil, "p", "must be an integer" },
            { "fraction for integer", { type = "integer" }, "1.0", nil, "p", "must be an integer" },
            { "leading space", { type = "integer" }, " 12", nil, "p", "must be an integer" },
            { "trailing space", { type = "integer" }, "12 ", nil, "p", "must be an integer" },
            { "trailing newline", { type = "integer" }, "12\n", nil, "p", "must be an integer" },
            { "plus sign", { type = "integer" }, "+12", nil, "p", "must be an integer" },
            { "hex", { type = "integer" }, "0x10", nil, "p", "must be an integer" },
            { "empty for integer", { type = "integer" }, "", nil, "p", "must be an integer" },
            { "minus alone", { type = "integer" }, "-", nil, "p", "must be an integer" },
            { "embedded NUL", { type = "integer" }, "1\0", nil, "p", "must be an integer" },
            { "fullwidth digits", { type = "integer" }, "\239\188\145", nil, "p", "must be an integer" },
            { "integer bounds", { type = "integer", minimum = 1, maximum = 100 }, "101",
              nil, "p", "must be at most 100" },
            { "integer enum", { type = "integer", enum = { 1, 2 } }, "2", 2 },
            { "integer enum miss", { type = "integer", enum = { 1, 2 } }, "3",
              nil, "p", "must be one of: 1, 2" },
            { "number", { type = "number" }, "1.5", 1.5 },
            { "number integer", { type = "number" }, "-3", -3 },
            { "number exponent", { type = "number" }, "1e3", 1000 },
            { "number signed exponent", { type = "number" }, "2.5E-1", 0.25 },
            { "number overflow to inf", { type = "number" }, "1e999", nil, "p", "is out of range" },
            { "number big but finite", { type = "number" }, "99999999999999999999", 1e20 },
            -- found by fuzz_schema: LuaJIT's tonumber is nil for these, and coerce raised
            { "number exponent beyond 32 bits", { type = "number" }, "1e4090071992547409910",
              nil, "p", "is out of range" },
            { "number negative exponent beyond 32 bits", { type = "number" }, "-2.5e-4294967296",
              0 },
            { "zero with an exponent beyond 32 bits", { type = "number" }, "0.0e99999999999", 0 },
            { "number inf", { type = "number" }, "inf", nil, "p", "must be a number" },
            { "number Infinity", { type = "number" }, "Infinity", nil, "p", "must be a number" },
            { "number nan", { type = "number" }, "nan", nil, "p", "must be a number" },
            { "number hex", { type = "number" }, "0x1p4", nil, "p", "must be a number" },
            { "number leading dot", { type = "number" }, ".5", nil, "p", "must be a number" },
            { "number trailing dot", { type = "number" }, "5.", nil, "p", "must be a number" },
            { "number plus", { type = "number" }, "+5", nil, "p", "must be a number" },
            { "number space", { type = "number" }, " 5", nil, "p", "must be a number" },
            { "number empty exponent", { type = "number" }, "5e", nil, "p", "must be a number" },
            { "number exclusiveMinimum", { type = "number", exclusiveMinimum = 0 }, "0",
              nil, "p", "must be greater than 0" },
            { "boolean true", { type = "boolean" }, "true", true },
            { "boolean false", { type = "boolean" }, "false", false },
            { "boolean 1", { type = "boolean" }, "1", nil, "p", "must be a boolean" },
            { "boolean TRUE", { type = "boolean" }, "TRUE", nil, "p", "must be a boolean" },
            { "boolean empty", { type = "boolean" }, "", nil, "p", "must be a boolean" },
            { "string unchanged", { type = "string" }, " 12 ", " 12 " },
            { "empty string", { type = "string" }, "", "" },
            { "string minLength", { type = "string", minLength = 1 }, "",
              nil, "p", "must be at least 1 character" },
            { "string uuid", { type = "string", format = "uuid" }, "nope",
              nil, "p", "is not a valid uuid" },
            { "string invalid utf-8", { type = "string" }, "\255", nil, "p", "must be valid utf-8" },
            { "untyped stays a string", {}, "12", "12" },
            { "integer or string prefers integer", { type = { "string", "integer" } }, "12", 12 },
            { "integer or string falls back", { type = { "string", "integer" } }, "1.5", "1.5" },
            { "integer or number overflow is a number", { type = { "integer", "number" } },
              "99999999999999999999", 1e20 },
            { "integer or number fraction", { type = { "integer", "number" } }, "1.5", 1.5 },
            { "boolean or integer", { type = { "integer", "boolean" } }, "true", true },
            { "integer or null never yields null", { type = { "integer", "null" } }, "null",
              nil, "p", "must be an integer or null" },
        }
        for _, case in ipairs(cases) do
            it((case[5] and "rejects " or "coerces ") .. label(case), function()
                local value, err = schema.coerce(case[2], case[3], "p")
                if case[5] then
                    assert.is_nil(value)
                    assert.same({ field = case[5], reason = case[6] }, err)
                else
                    assert.is_nil(err)
                    assert.equal(case[4], value)
                    assert.equal(type(case[4]), type(value))
                end
            end)
        end

        it("returns a positive zero for -0", function()
            local v = schema.coerce({ type = "integer" }, "-0", "p")
            assert.equal("0", tostring(v))
        end)

        it("raises on misuse", function()
            assert.has_error(function() schema.coerce({ type = "integer" }, 12, "p") end)
            assert.has_error(function() schema.coerce({ type = "integer" }, nil, "p") end)
            assert.has_error(function() schema.coerce(nil, "1", "p") end)
            assert.has_error(function() schema.coerce({ type = "integr" }, "1", "p") end)
        end)
    end)

    describe("validate_object_of_strings", function()
        local QUERY = {
            type = "object",
            additionalProperties = false,
            required = { "id" },
            properties = {
                id = { type = "string", format = "uuid" },
                limit = { type = "integer", minimum = 1, maximum = 100 },
                offset = { type = "integer", minimum = 0 },
                verbose = { type = "boolean" },
                ratio = { type = "number" },
                sort = { type = "string", enum = { "asc", "desc" } },
            },
        }
        local ID = "123e4567-e89b-12d3-a456-426614174000"

        -- { label, input, expected output or nil, field, reason }
        local cases = {
            { "all present", { id = ID, limit = "10", offset = "0", verbose = "true",
                               ratio = "0.5", sort = "asc" },
              { id = ID, limit = 10, offset = 0, verbose = true, ratio = 0.5, sort = "asc" } },
            { "only required", { id = ID }, { id = ID } },
            { "false survives", { id = ID, verbose = "false" }, { id = ID, verbose = false } },
            { "missing required", {}, nil, "query.id", "is required" },
            { "nil table", nil, nil, "query.id", "is required" },
            { "unknown key", { id = ID, page = "2" }, nil, "query.page", "unknown field" },
            { "unknown key sorted before a bad one", { id = ID, limit = "x", aaa = "1" },
              nil, "query.aaa", "unknown field" },
            { "bad integer", { id = ID, limit = "ten" }, nil, "query.limit", "must be an integer" },
            { "integer with spaces", { id = ID, limit = " 12" }, nil, "query.limit",
              "must be an integer" },
            { "integer overflow", { id = ID, offset = "99999999999999999999" }, nil,
              "query.offset", "is out of range" },
            { "integer exponent", { id = ID, limit = "1e3" }, nil, "query.limit",
              "must be an integer" },
            { "out of bounds", { id = ID, limit = "0" }, nil, "query.limit", "must be at least 1" },
            { "bad boolean", { id = ID, verbose = "yes" }, nil, "query.verbose",
              "must be a boolean" },
            { "bad enum", { id = ID, sort = "up" }, nil, "query.sort",
              "must be one of: asc, desc" },
            { "empty required string", { id = "" }, nil, "query.id", "is not a valid uuid" },
            { "repeated key as a table", { id = ID, limit = { "1", "2" } }, nil, "query.limit",
              "must be a single value" },
            { "flag without value as true", { id = ID, verbose = true }, nil, "query.verbose",
              "must be a single value" },
            { "hostile key", { id = ID, ["\255\n"] = "x" }, nil, 'query["\\xff\\x0a"]',
              "unknown field" },
        }
        for _, case in ipairs(cases) do
            it((case[4] and "rejects " or "accepts ") .. label(case), function()
                local out, err = schema.validate_object_of_strings(QUERY, case[2], "query")
                if case[4] then
                    assert.is_nil(out)
                    assert.same({ field = case[4], reason = case[5] }, err)
                else
                    assert.is_nil(err)
                    assert.same(case[3], out)
                end
            end)
        end

        it("returns a new table", function()
            local input = { id = ID }
            local out = schema.validate_object_of_strings(QUERY, input, "query")
            assert.are_not.equal(input, out)
        end)

        it("copies unknown keys when additionalProperties is not false", function()
            local open = { type = "object", properties = { n = { type = "integer" } } }
            local out = schema.validate_object_of_strings(open, { n = "1", x = "y" }, "q")
            assert.same({ n = 1, x = "y" }, out)
        end)

        it("accepts path params", function()
            local params = { type = "object", required = { "id" },
                             properties = { id = { type = "integer", minimum = 1 } } }
            assert.same({ id = 7 }, schema.validate_object_of_strings(params, { id = "7" }, "params"))
            local _, err = schema.validate_object_of_strings(params, { id = "-7" }, "params")
            assert.same({ field = "params.id", reason = "must be at least 1" }, err)
        end)

        local bad_declarations = {
            { "not an object schema", { type = "string" }, 'type must be "object"' },
            { "untyped", { properties = {} }, 'type must be "object"' },
            { "array property", { type = "object", properties = { a = { type = "array" } } },
              'type "array" cannot be read from a string at query.properties.a' },
            { "object property", { type = "object",
                                   properties = { a = { type = { "string", "object" } } } },
              'type "object" cannot be read from a string' },
            { "null-only property", { type = "object", properties = { a = { type = "null" } } },
              "type null cannot be read from a string" },
            { "bad keyword", { type = "object", properties = { a = { typ = "string" } } },
              'unknown keyword "typ"' },
        }
        for _, case in ipairs(bad_declarations) do
            it("raises for " .. label(case), function()
                local ok, err = pcall(schema.validate_object_of_strings, case[2], {}, "query")
                assert.is_false(ok)
                assert.truthy(err:find(case[3], 1, true), err)
                ok, err = pcall(schema.check_object_of_strings, case[2], "query")
                assert.is_false(ok)
                assert.truthy(err:find(case[3], 1, true), err)
            end)
        end

        it("names the same field on every call, per base", function()
            local spec = { type = "object", required = { "id" },
                           additionalProperties = false,
                           properties = { id = { type = "integer" },
                                          ["odd name"] = { type = "integer" } } }
            for _ = 1, 3 do
                local _, err = schema.validate_object_of_strings(spec, { id = "x" }, "params")
                assert.same({ field = "params.id", reason = "must be an integer" }, err)
                _, err = schema.validate_object_of_strings(spec, { id = "1", ["odd name"] = "y" },
                                                           "query")
                assert.same({ field = 'query["odd name"]', reason = "must be an integer" }, err)
                _, err = schema.validate_object_of_strings(spec, { id = "1", zz = "1" }, "query")
                assert.same({ field = "query.zz", reason = "unknown field" }, err)
                _, err = schema.validate_object_of_strings(spec, {}, "params")
                assert.same({ field = "params.id", reason = "is required" }, err)
            end
        end)

        it("checks declared and undeclared keys in sorted order", function()
            local spec = { type = "object", properties = { b = { type = "integer" },
                                                           d = { type = "integer" } } }
            local _, err = schema.validate_object_of_strings(spec, { d = "x", b = "y", a = "1" },
                                                             "q")
            assert.same("q.b", err.field)
            local out = schema.validate_object_of_strings(spec, { d = "4", c = "z", a = "1" }, "q")
            assert.same({ a = "1", c = "z", d = 4 }, out)
        end)

        it("raises on misuse", function()
            assert.has_error(function() schema.validate_object_of_strings(QUERY, "id=1") end)
            assert.has_error(function() schema.validate_object_of_strings(QUERY, { [1] = "x" }) end)
            assert.has_error(function() schema.validate_object_of_strings(nil, {}) end)
        end)
    end)

    describe("utf8_length", function()
        local cases = {
            { "", 0 }, { "abc", 3 }, { "h\195\169", 2 }, { "\226\130\172", 1 },
            { "\240\159\152\128", 1 }, { "\244\143\191\191", 1 }, { "\239\191\191", 1 },
            { "\128", nil }, { "\193\191", nil }, { "\195", nil }, { "\226\130", nil },
            { "\237\191\191", nil }, { "\240\143\191\191", nil }, { "\245\128\128\128", nil },
            { "\248\136\128\128\128", nil }, { "a\195(", nil },
        }
        for i, case in ipairs(cases) do
            it("case " .. i, function()
                assert.equal(case[2], schema.utf8_length(case[1]))
            end)
        end

        it("raises for non-strings", function()
            assert.has_error(function() schema.utf8_length(1) end)
        end)

        -- The check moved from Lua to C (glasgow.jsonc): the Lua loop it
        -- replaced is the reference, on every string of one or two bytes
        -- and on every lead byte of a longer sequence with continuation
        -- bytes at and around their limits.
        local function reference(s)
            local n, i, len = 0, 1, #s
            while i <= len do
                local c = s:byte(i)
                local need, lo, hi
                if c < 0x80 then
                    need, lo, hi = 0, 0x80, 0xBF
                elseif c >= 0xC2 and c <= 0xDF then
                    need, lo, hi = 1, 0x80, 0xBF
                elseif c >= 0xE0 and c <= 0xEF then
                    need = 2
                    lo = c == 0xE0 and 0xA0 or 0x80
                    hi = c == 0xED and 0x9F or 0xBF
                elseif c >= 0xF0 and c <= 0xF4 then
                    need = 3
                    lo = c == 0xF0 and 0x90 or 0x80
                    hi = c == 0xF4 and 0x8F or 0xBF
                else
                    return nil
                end
                if i + need > len then
                    return nil
                end
                for k = 1, need do
                    local b = s:byte(i + k)
                    local l, h = 0x80, 0xBF
                    if k == 1 then
                        l, h = lo, hi
                    end
                    if b < l or b > h then
                        return nil
                    end
                end
                i = i + need + 1
                n = n + 1
            end
            return n
        end

        it("agrees with the Lua reference on every 1- and 2-byte string", function()
            local char = string.char
            local bad = 0
            for a = 0, 255 do
                if schema.utf8_length(char(a)) ~= reference(char(a)) then
                    bad = bad + 1
                end
                for b = 0, 255 do
                    local s = char(a, b)
                    if schema.utf8_length(s) ~= reference(s) then
                        bad = bad + 1
                    end
                end
            end
            assert.equal(0, bad)
        end)

        it("agrees with the Lua reference on longer sequences at their limits", function()
            local char = string.char
            local edges = { 0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF }
            local bad, tried = 0, 0
            for lead = 0xE0, 0xFF do
                for _, b2 in ipairs(edges) do
                    for _, b3 in ipairs(edges) do
                        for _, s in ipairs({ char(lead, b2, b3), char(lead, b2, b3, 0x80),
                                             char(lead, b2, b3, 0xBF), char(lead, b2, b3, 0xC0),
                                             "x" .. char(lead, b2, b3) .. "y" }) do
                            tried = tried + 1
                            if schema.utf8_length(s) ~= reference(s) then
                                bad = bad + 1
                            end
                        end
                    end
                end
            end
            assert.is_true(tried > 10000)
            assert.equal(0, bad)
        end)
    end)

    -- maxLength and minLength are JSON Schema's: they count code points, not
    -- bytes and not user-perceived characters. Whatever stores or hashes a
    -- string must therefore accept up to 4 bytes per counted character.
    describe("length semantics", function()
        local widths = {
            { "1-byte", "a" }, { "2-byte", "\195\169" }, { "3-byte", "\226\130\172" },
            { "4-byte", "\240\159\152\128" },
        }
        for _, w in ipairs(widths) do
            local name, ch = w[1], w[2]
            it("maxLength = 600 admits 600 " .. name .. " characters, " .. 600 * #ch .. " bytes",
               function()
                local s = string.rep(ch, 600)
                assert.equal(s, schema.validate({ type = "string", maxLength = 600 }, s))
                assert.equal(600 * #ch, #s)
            end)
            it("maxLength = 600 refuses 601 " .. name .. " characters", function()
                local _, err = schema.validate({ type = "string", maxLength = 600 },
                                               string.rep(ch, 601), "body.password")
                assert.same({ field = "body.password", reason = "must be at most 600 characters" },
                            err)
            end)
            it("minLength = 8 counts 8 " .. name .. " characters, not bytes", function()
                local s = string.rep(ch, 8)
                assert.equal(s, schema.validate({ type = "string", minLength = 8 }, s))
                local _, err = schema.validate({ type = "string", minLength = 8 },
                                               string.rep(ch, 7), "p")
                assert.same({ field = "p", reason = "must be at least 8 characters" }, err)
            end)
        end

        it("counts a combining sequence as its code points", function()
            local e_acute = "e\204\129" -- e + U+0301: one glyph, two code points
            assert.equal(2, schema.utf8_length(e_acute))
            local _, err = schema.validate({ type = "string", maxLength = 1 }, e_acute, "n")
            assert.same({ field = "n", reason = "must be at most 1 character" }, err)
        end)

        it("never admits more than 4 bytes per counted character", function()
            local max = string.rep("\244\143\191\191", 1024) -- U+10FFFF, the widest
            assert.equal(max, schema.validate({ type = "string", maxLength = 1024 }, max))
            assert.equal(4 * 1024, #max)
        end)

        it("counts the same through the query and params coercion", function()
            local q = { type = "object", properties = { s = { type = "string", maxLength = 2 } } }
            assert.same({ s = "\195\169\195\169" },
                        schema.validate_object_of_strings(q, { s = "\195\169\195\169" }, "query"))
            local _, err = schema.validate_object_of_strings(q, { s = "\195\169\195\169\195\169" },
                                                             "query")
            assert.same({ field = "query.s", reason = "must be at most 2 characters" }, err)
        end)
    end)
end)
