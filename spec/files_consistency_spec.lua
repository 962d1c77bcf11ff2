-- UNIT-LEVEL FAKES: the consistency steps of routes/_files.lua (upload,
-- overwrite, delete and every failure path) run here against an in-memory
-- fake of the metadata statements and a fake object store that follows
-- the glasgow.s3 contract. They check the order of the steps and what is
-- left after each failure; the SQL itself and the real store are covered
-- by the integration tests (tests/integration/test_db_files.py now, the
-- store round trips once the glasgow.s3 binding lands).
package.path = "./?.lua;" .. package.path
require "core_stub"
package.preload["glasgow.pg"] = function()
    return {}
end
local errors = require "glasgow.errors"
local files = require "routes._files"
local sql_meta = files.meta

local HEX_A = string.rep("a", 64)
local HEX_B = string.rep("b", 64)

-- The fake metadata side: rows in a table, statements as functions with
-- the same contracts as routes/_files.lua's meta.
local function fake_meta()
    local m = { rows = {}, n = 0, clock = 1000 }
    local function copy(r)
        local c = {}
        for k, v in pairs(r) do
            c[k] = v
        end
        return c
    end
    local function stamp()
        m.clock = m.clock + 1
        return os.date("!%Y-%m-%dT%H:%M:%SZ", m.clock)
    end
    function m.current(bucket_id, name)
        for _, r in pairs(m.rows) do
            if r.bucket_id == bucket_id and r.name == name and r.status == "committed" then
                return copy(r)
            end
        end
    end
    function m.insert_pending(bucket_id, name, content_type, owner_id)
        m.n = m.n + 1
        local id = "row" .. m.n
        m.rows[id] = { id = id, bucket_id = bucket_id, name = name, content_type = content_type,
                       owner_id = owner_id, status = "pending",
                       storage_key = bucket_id .. "/key" .. m.n, updated_at = stamp() }
        return copy(m.rows[id])
    end
    function m.commit(id, bucket_id, name, result, check)
        if m.fail_commit then
            return nil, m.fail_commit
        end
        if m.before_commit then
            m.before_commit()
        end
        local cur = m.current(bucket_id, name)
        if not check(cur) then
            return nil, "precondition"
        end
        local row = m.rows[id]
        if not row or row.status ~= "pending" then
            return nil, "gone"
        end
        if cur then
            m.rows[cur.id].status = "deleting"
        end
        row.status, row.size, row.sha256, row.etag = "committed", result.size, result.sha256,
                                                      result.etag
        row.updated_at = stamp()
        return copy(row), cur or false
    end
    function m.delete_row(id, status)
        if m.fail_delete_row then
            error(m.fail_delete_row, 0)
        end
        if m.rows[id] and m.rows[id].status == status then
            m.rows[id] = nil
            return true
        end
        return false
    end
    function m.mark_deleting(bucket_id, name, check)
        local cur = m.current(bucket_id, name)
        if not cur then
            return nil, "missing"
        end
        if not check(cur) then
            return nil, "precondition"
        end
        m.rows[cur.id].status = "deleting"
        return cur
    end
    return m
end

-- The fake store: objects by key; put reads req.body and checks the
-- limit and the announced digest as the binding does.
local function fake_s3()
    local s = { objects = {}, calls = {} }
    function s.put(key, req, opts)
        s.calls[#s.calls + 1] = "put " .. key
        if s.put_error then
            if s.put_error.partial then
                s.objects[key] = "partial" -- a store that kept a part before failing
            end
            return nil, s.put_error
        end
        if #req.body > opts.max_bytes then
            return nil, { kind = "client", code = "too_large" }
        end
        if opts.sha256 and opts.sha256 ~= req.sha256 then
            return nil, { kind = "client", code = "digest_mismatch" }
        end
        s.objects[key] = req.body
        return { size = s.lie_size or #req.body, sha256 = req.sha256, etag = '"md5"' }
    end
    function s.delete(key)
        s.calls[#s.calls + 1] = "delete " .. key
        if s.delete_error then
            return nil, s.delete_error
        end
        s.objects[key] = nil
        return true
    end
    return s
end

local BUCKET = { id = "b1" }

local function setup()
    local m, s = fake_meta(), fake_s3()
    files.meta, files.s3 = m, s
    return m, s
end

local function upload(body, sha, opts)
    opts = opts or {}
    local req = { body = body, sha256 = sha or HEX_A }
    return pcall(files.upload, req, BUCKET, opts.name or "a.txt", {
        content_type = "text/plain", max_bytes = opts.max_bytes or 100,
        sha256 = opts.announce, owner_id = "u1", headers = opts.headers or {},
    })
end

-- Every committed row has its complete object; returns counts by status
-- and the number of objects without a row.
local function check_invariants(m, s)
    local by_status, keys = { pending = 0, committed = 0, deleting = 0 }, {}
    for _, r in pairs(m.rows) do
        by_status[r.status] = by_status[r.status] + 1
        keys[r.storage_key] = true
        if r.status == "committed" then
            assert.is_string(s.objects[r.storage_key], "a committed row without its object")
        end
    end
    local orphans = 0
    for k in pairs(s.objects) do
        if not keys[k] then
            orphans = orphans + 1
        end
    end
    return by_status, orphans
end

local function status_of(err)
    assert.is_true(errors.is(err), tostring(err))
    return err.status, err.code
end

describe("files upload (unit-level fakes)", function()
    local m, s
    before_each(function()
        m, s = setup()
    end)
    after_each(function()
        files.meta, files.s3 = sql_meta, nil
    end)

    it("writes the object before the row is committed", function()
        local ok, row, replaced = upload("hello")
        assert.is_true(ok, tostring(row))
        assert.equal("committed", row.status)
        assert.is_false(replaced)
        assert.equal("hello", s.objects[row.storage_key])
        assert.equal(5, row.size)
        assert.equal(HEX_A, row.sha256)
        local st, orphans = check_invariants(m, s)
        assert.same({ pending = 0, committed = 1, deleting = 0 }, st)
        assert.equal(0, orphans)
        assert.truthy(row.storage_key:find("^b1/"), "the key is server-made, under the bucket")
        assert.is_nil(row.storage_key:find("a.txt", 1, true), "never derived from the name")
    end)

    it("an overwrite swaps rows and removes the old object and row", function()
        local _, first = upload("one")
        local ok, second, replaced = upload("two", HEX_B)
        assert.is_true(ok, tostring(second))
        assert.is_true(replaced)
        assert.are_not.equal(first.storage_key, second.storage_key)
        assert.is_nil(s.objects[first.storage_key], "old object deleted")
        assert.is_nil(m.rows[first.id], "old row deleted")
        local st, orphans = check_invariants(m, s)
        assert.same({ pending = 0, committed = 1, deleting = 0 }, st)
        assert.equal(0, orphans)
        -- the old object goes only after the commit
        assert.equal("put " .. second.storage_key, s.calls[#s.calls - 1])
        assert.equal("delete " .. first.storage_key, s.calls[#s.calls])
    end)

    local client_errors = {
        { "closed", 499 }, { "timeout", 408 }, { "too_large", 413 }, { "aborted", 503 },
        { "weird", 400 },
    }
    for _, c in ipairs(client_errors) do
        it("a client failure (" .. c[1] .. ") answers " .. c[2] .. " and leaves nothing", function()
            s.put_error = { kind = "client", code = c[1], partial = true }
            local ok, err = upload("x")
            assert.is_false(ok)
            assert.equal(c[2], (status_of(err)))
            local st, orphans = check_invariants(m, s)
            assert.same({ pending = 0, committed = 0, deleting = 0 }, st)
            assert.equal(0, orphans)
        end)
    end

    it("a store failure answers 503 with Retry-After and leaves nothing", function()
        s.put_error = { kind = "store", code = "InternalError", status = 500, retryable = true }
        local ok, err = upload("x")
        assert.is_false(ok)
        assert.equal(503, (status_of(err)))
        assert.equal("1", err.headers["Retry-After"])
        local st = check_invariants(m, s)
        assert.same({ pending = 0, committed = 0, deleting = 0 }, st)
    end)

    it("an unreachable store (kind unavailable) answers 503 and leaves nothing", function()
        s.put_error = { kind = "unavailable", code = "network", status = 503, retryable = true }
        local ok, err = upload("x")
        assert.is_false(ok)
        assert.equal(503, (status_of(err)))
        assert.same({ pending = 0, committed = 0, deleting = 0 }, (check_invariants(m, s)))
    end)

    it("a store error nobody can fix (credentials) is raised as is: a logged 500", function()
        local e = { kind = "store", code = "AccessDenied", status = 500 }
        s.put_error = e
        local ok, err = upload("x")
        assert.is_false(ok)
        assert.equal(e, err)
        assert.same({ pending = 0, committed = 0, deleting = 0 }, (check_invariants(m, s)))
    end)

    it("a digest mismatch is 400 and leaves nothing", function()
        local ok, err = upload("x", HEX_A, { announce = string.rep("\187", 32) })
        assert.is_false(ok)
        local status, code = status_of(err)
        assert.equal(400, status)
        assert.equal("digest_mismatch", code)
        assert.same({ pending = 0, committed = 0, deleting = 0 }, (check_invariants(m, s)))
    end)

    it("a matching announced digest passes", function()
        local ok, row = upload("x", HEX_B, { announce = string.rep("\187", 32) })
        assert.is_true(ok, tostring(row))
    end)

    it("a result over the limit (a binding that did not stop) is refused", function()
        s.lie_size = 1000
        local ok, err = upload("x")
        assert.is_false(ok)
        assert.equal(413, (status_of(err)))
        local st, orphans = check_invariants(m, s)
        assert.same({ pending = 0, committed = 0, deleting = 0 }, st)
        assert.equal(0, orphans)
    end)

    it("a failed commit (database down) removes the object and the row", function()
        m.fail_commit = setmetatable({ kind = "connection", status = 503, code = "unavailable" },
                                     { __tostring = function() return "connection error" end })
        local ok, err = upload("x")
        assert.is_false(ok)
        assert.equal(m.fail_commit, err)
        local st, orphans = check_invariants(m, s)
        assert.same({ pending = 0, committed = 0, deleting = 0 }, st)
        assert.equal(0, orphans)
    end)

    it("when the store cannot delete, the pending row stays for gc", function()
        m.fail_commit = "boom"
        s.delete_error = { kind = "store", code = "InternalError" }
        local ok = upload("x")
        assert.is_false(ok)
        local st, orphans = check_invariants(m, s)
        assert.same({ pending = 1, committed = 0, deleting = 0 }, st)
        assert.equal(0, orphans, "the object is still findable through its row")
    end)

    it("when the database cannot delete the row, the object is gone and the row pending", function()
        m.fail_commit = "boom"
        m.fail_delete_row = "connection lost"
        local ok = upload("x")
        assert.is_false(ok)
        local st, orphans = check_invariants(m, s)
        assert.same({ pending = 1, committed = 0, deleting = 0 }, st)
        assert.equal(0, orphans)
    end)

    it("when the old object cannot be deleted, its row stays deleting and the new one serves",
       function()
        upload("one")
        s.delete_error = { kind = "store", code = "SlowDown" }
        local ok, row = upload("two")
        assert.is_true(ok, tostring(row))
        local st = check_invariants(m, s)
        assert.same({ pending = 0, committed = 1, deleting = 1 }, st)
        assert.equal("two", s.objects[m.current("b1", "a.txt").storage_key])
    end)

    it("If-None-Match: * refuses to overwrite, before anything is written", function()
        upload("one")
        local calls = #s.calls
        local ok, err = upload("two", HEX_B, { headers = { ["if-none-match"] = "*" } })
        assert.is_false(ok)
        assert.equal(412, (status_of(err)))
        assert.equal(calls, #s.calls, "no store call")
        assert.same({ pending = 0, committed = 1, deleting = 0 }, (check_invariants(m, s)))
    end)

    it("If-None-Match: * creates when nothing is there", function()
        local ok, row = upload("one", HEX_A, { headers = { ["if-none-match"] = "*" } })
        assert.is_true(ok, tostring(row))
    end)

    it("If-None-Match: * loses a race at commit time: 412 and its object removed", function()
        m.before_commit = function()
            m.before_commit = nil
            -- another upload of the same name commits while ours streams
            local other = m.insert_pending("b1", "a.txt", "text/plain", "u2")
            s.objects[other.storage_key] = "theirs"
            m.rows[other.id].status, m.rows[other.id].size, m.rows[other.id].sha256 =
                "committed", 6, HEX_B
        end
        local ok, err = upload("ours", HEX_A, { headers = { ["if-none-match"] = "*" } })
        assert.is_false(ok)
        assert.equal(412, (status_of(err)))
        local st, orphans = check_invariants(m, s)
        assert.same({ pending = 0, committed = 1, deleting = 0 }, st)
        assert.equal(0, orphans)
        assert.equal("theirs", s.objects[m.current("b1", "a.txt").storage_key])
    end)

    it("If-Match replaces only the version named", function()
        local _, first = upload("one")
        local etag = '"' .. first.sha256 .. '"'
        local ok, err = upload("two", HEX_B, { headers = { ["if-match"] = '"' .. HEX_B .. '"' } })
        assert.is_false(ok)
        assert.equal(412, (status_of(err)))
        ok, err = upload("two", HEX_B, { headers = { ["if-match"] = etag } })
        assert.is_true(ok, tostring(err))
        -- now the tag named is stale
        ok, err = upload("three", HEX_A, { headers = { ["if-match"] = etag } })
        assert.is_false(ok)
        assert.equal(412, (status_of(err)))
        ok, err = upload("x", HEX_A, { name = "new.txt", headers = { ["if-match"] = "*" } })
        assert.is_false(ok)
        assert.equal(412, (status_of(err)), "If-Match: * needs an existing file")
        assert.same({ pending = 0, committed = 1, deleting = 0 }, (check_invariants(m, s)))
    end)

    it("a pending row gc claimed makes the commit fail with 503 and nothing left", function()
        m.before_commit = function()
            for _, r in pairs(m.rows) do
                if r.status == "pending" then
                    r.status = "deleting" -- gc's claim
                end
            end
        end
        local ok, err = upload("x")
        assert.is_false(ok)
        assert.equal(503, (status_of(err)))
        -- the row is gc's now (deleting); the upload removed the object it wrote
        local st, orphans = check_invariants(m, s)
        assert.equal(0, st.committed)
        assert.equal(0, orphans)
    end)

    it("without a store the upload answers 503 before writing a row", function()
        files.s3 = nil
        local ok, err = upload("x")
        assert.is_false(ok)
        local status, code = status_of(err)
        assert.equal(503, status)
        assert.equal("store_unavailable", code)
        assert.is_nil(next(m.rows))
    end)
end)

describe("files delete (unit-level fakes)", function()
    local m, s
    before_each(function()
        m, s = setup()
    end)
    after_each(function()
        files.meta, files.s3 = sql_meta, nil
    end)

    it("marks deleting, deletes the object, then the row", function()
        local _, row = upload("one")
        files.delete(BUCKET, "a.txt", {})
        assert.is_nil(m.rows[row.id])
        assert.is_nil(s.objects[row.storage_key])
    end)

    it("a missing file is 404", function()
        local ok, err = pcall(files.delete, BUCKET, "nope", {})
        assert.is_false(ok)
        assert.equal(404, (status_of(err)))
    end)

    it("a stale If-Match is 412 and deletes nothing", function()
        local _, row = upload("one")
        local ok, err = pcall(files.delete, BUCKET, "a.txt", { ["if-match"] = '"stale"' })
        assert.is_false(ok)
        assert.equal(412, (status_of(err)))
        assert.equal("committed", m.rows[row.id].status)
        assert.equal("one", s.objects[row.storage_key])
    end)

    it("a store failure leaves the row deleting (invisible) for gc", function()
        local _, row = upload("one")
        s.delete_error = { kind = "store", code = "InternalError" }
        files.delete(BUCKET, "a.txt", {})
        assert.equal("deleting", m.rows[row.id].status)
        assert.is_nil(m.current("b1", "a.txt"), "clients no longer see it")
    end)
end)
