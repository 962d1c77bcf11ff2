"""req.headers (and id, client, params, query) are built on first read.

The request table of an HTTP request has no headers field until a handler
reads req.headers: its metatable builds the table then, from the
request's header pairs (runtime/lhost.c, lwait_request_index), and
stores it in the request table. Most handlers never read it, and building
it interned every header name and value. These cases pin that the table
read is the one it was (names lower-cased, a repeated name an array, the
same table on every read, assignable), across a yield, beside req:respond,
and that a first read once the request has ended is a precise error
rather than another request's headers. The same holds for req.id,
req.client, req.params and req.query; a token in the URL is refused by
the runtime before any handler, since no query table exists to look in.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, case, is_, main, ok, raw  # noqa: E402

ROUTES = """
local glasgow = require("glasgow")
local saved_unread, saved_read, saved_fields
local runs = 0
local LAZY = { "id", "client", "params", "query", "headers" }

return {
    { method = "GET", path = "/h", handler = function(req)
        local raw_before = rawget(req, "headers") ~= nil
        local h = req.headers
        return 200, { raw_before = raw_before, raw_after = rawget(req, "headers") == h,
                      same = req.headers == h, a = h["x-a"], m = h["x-m"],
                      host = h.host, upper = h["X-A"] == nil, headers = h }
    end },
    { method = "GET", path = "/sleepy", handler = function(req)
        glasgow.sleep(5)
        return 200, { a = req.headers["x-a"] }
    end },
    { method = "GET", path = "/assign", handler = function(req)
        req.headers = { mine = "yes" }
        return 200, { mine = req.headers.mine, a = req.headers["x-a"] or "none" }
    end },
    { method = "GET", path = "/respond", handler = function(req)
        local w = req:respond(200, { ["Content-Type"] = "text/plain" })
        w:write(req.headers["x-a"] or "none")
        w:close()
    end },
    { method = "GET", path = "/stash/unread", handler = function(req)
        saved_unread = req
        return 200, { stashed = true }
    end },
    { method = "GET", path = "/stash/read", handler = function(req)
        saved_read = req
        return 200, { stashed = req.headers["x-a"] }
    end },
    { method = "GET", path = "/f/:name", handler = function(req)
        runs = runs + 1
        local raw = {}
        for _, k in ipairs(LAZY) do raw[#raw + 1] = rawget(req, k) ~= nil end
        local q = req.query
        return 200, { raw = raw, id = req.id, client = req.client, name = req.params.name,
                      q = q.q, same = req.query == q and rawget(req, "query") == q,
                      method = rawget(req, "method"), path = rawget(req, "path"),
                      route = rawget(req, "route"), runs = runs }
    end },
    { method = "GET", path = "/one", handler = function(req)
        local a, na = req:header("x-a")
        local m, nm = req:header("X-M")
        local z, nz = req:header("x-none")
        return 200, { a = a, na = na, m = m, nm = nm, z = z == nil, nz = nz,
                      built = rawget(req, "headers") ~= nil,
                      bad = select(2, pcall(req.header, req)) }
    end },
    { method = "GET", path = "/one-stash", handler = function(req)
        saved_fields = req
        return 200, {}
    end },
    { method = "GET", path = "/one-check", handler = function()
        local ok_read, err = pcall(saved_fields.header, saved_fields, "x-a")
        return 200, { failed = not ok_read, err = tostring(err) }
    end },
    { method = "GET", path = "/f-stash", handler = function(req)
        saved_fields = req
        return 200, { runs = runs }
    end },
    { method = "GET", path = "/f-check", handler = function()
        local out = {}
        for _, k in ipairs({ "id", "client", "params", "query" }) do
            local ok_read, err = pcall(function() return saved_fields[k] end)
            out[k] = ok_read and "read" or tostring(err)
        end
        return 200, out
    end },
    { method = "GET", path = "/stash/check", handler = function(req)
        local ok_read, got = pcall(function() return saved_read.headers["x-a"] end)
        local ok_unread, err = pcall(function() return saved_unread.headers end)
        return 200, { read = ok_read and got or "failed",
                      unread_failed = not ok_unread, err = tostring(err),
                      mine = req.headers["x-a"] }
    end },
}
"""


def body(res):
    return json.loads(res.body)


@case
def built_on_first_read(s):
    res = raw(s.port, b"GET /h HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nX-M: p\r\nx-m: q\r\n"
              b"Connection: close\r\n\r\n")
    is_(res.status, 200, "GET /h answers")
    b = body(res)
    is_(b["raw_before"], False, "no headers field before the first read")
    ok(b["raw_after"], "the first read stores the table in the request")
    ok(b["same"], "every read gives the same table")
    is_(b["a"], "1", "names are lower-cased")
    is_(b["m"], ["p", "q"], "a repeated name is an array in arrival order")
    is_(b["host"], "x", "Host is there")
    ok(b["upper"], "an upper-case name is not a key")
    is_(sorted(b["headers"]), ["connection", "host", "x-a", "x-m"], "exactly the sent names")


@case
def across_a_yield(s):
    res = s.get("/sleepy", headers={"X-A": "slept"})
    is_((res.status, body(res).get("a")), (200, "slept"), "read after a yield")


@case
def assignable(s):
    res = s.get("/assign", headers={"X-A": "1"})
    is_(body(res), {"mine": "yes", "a": "none"}, "an assigned headers field is kept")


@case
def beside_respond(s):
    res = s.get("/respond", headers={"X-A": "streamed"})
    is_((res.status, res.body), (200, b"streamed"), "req:respond and req.headers together")


@case
def after_the_request(s):
    is_(s.get("/stash/read", headers={"X-A": "first"}).status, 200, "stashed, read")
    is_(s.get("/stash/unread", headers={"X-A": "other"}).status, 200, "stashed, unread")
    res = s.get("/stash/check", headers={"X-A": "second"})
    is_(res.status, 200, "the later request answers")
    b = body(res)
    is_(b["read"], "first", "headers read during the request stay readable")
    ok(b["unread_failed"], "a first read after the request ended fails")
    ok("outside the request's own handler" in b["err"], "with a precise message: " + b["err"])
    is_(b["mine"], "second", "and the running request reads its own")


@case
def other_fields_on_first_read(s):
    res = s.get("/f/some%20one?q=1&q=2", headers={"X-Request-ID": "abc-123"})
    is_(res.status, 200, "GET /f/:name answers")
    b = body(res)
    is_(b["raw"], [False] * 5, "id, client, params, query, headers: none before a read")
    is_(b["id"], "abc-123", "req.id is the request id")
    is_(res.header("X-Request-ID"), "abc-123", "... the one sent back")
    ok(str(b["client"]).startswith("127.0.0.1"), "req.client is the peer: %s" % b["client"])
    is_(b["name"], "some one", "req.params, decoded")
    is_(b["q"], ["1", "2"], "req.query, a repeated name an array")
    ok(b["same"], "the query table is stored on first read")
    is_((b["method"], b["path"], b["route"]), ("GET", "/f/some one", "/f/:name"),
        "method, path and route are raw fields from the start")
    res = s.get("/f/x")
    b = body(res)
    ok(len(b["id"]) == 32 and res.header("X-Request-ID") == b["id"],
       "a made-up id, the same in the header and req.id")
    is_(b.get("q"), None, "no query: an empty table")


@case
def other_fields_after_the_request(s):
    is_(s.get("/f-stash").status, 200, "stashed, nothing read")
    b = body(s.get("/f-check"))
    for k in ("id", "client", "params", "query"):
        ok("req.%s: first read outside the request's own handler" % k in b[k],
           "req.%s read after its request fails precisely: %s" % (k, b[k]))


@case
def one_header_without_the_table(s):
    res = raw(s.port, b"GET /one HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-m: p\r\nX-m: q\r\n"
              b"Connection: close\r\n\r\n")
    is_(res.status, 200, "GET /one answers")
    b = body(res)
    is_((b["a"], b["na"]), ("1", 1), "req:header: the value and a count of 1")
    is_((b["m"], b["nm"]), ("p", 2), "a repeated name: the first value, a count of 2, "
        "whatever the case of the name asked or sent")
    is_((b["z"], b["nz"]), (True, 0), "no such field: nil and 0")
    is_(b["built"], False, "req.headers was not built")
    ok("bad argument #2" in str(b["bad"]), "no name: a precise error: %s" % b["bad"])
    is_(s.get("/one-stash").status, 200, "stashed")
    b = body(s.get("/one-check"))
    ok(b["failed"] and "req:header: first read outside the request's own handler" in b["err"],
       "req:header after the request ended fails precisely: %s" % b["err"])


@case
def token_in_the_url_refused_before_the_handler(s):
    before = body(s.get("/f-stash"))["runs"]
    for target in ("/f/x?access_token=secret", "/f/x?a=1&access_token=", "/h?access_token=t"):
        res = s.get(target)
        is_(res.status, 401, "%s: 401" % target)
        b = body(res).get("error", {})
        is_(b.get("code"), "invalid_request", "... code invalid_request")
        is_(b.get("request_id"), res.header("X-Request-ID"), "... with the request id")
        is_(res.header("WWW-Authenticate"),
            'Bearer realm="glasgow", error="invalid_request"', "... and the challenge")
        ok("secret" not in res.body.decode(), "... never echoing the token")
    is_(body(s.get("/f-stash"))["runs"], before, "no handler ran for them")
    is_(s.get("/nowhere?access_token=x").status, 404, "no route: still 404 first")
    is_(s.get("/f/x?access_tokens=1").status, 200, "another name is no token")


if __name__ == "__main__":
    # one worker: the stashed tables live in one Lua state
    main(Server(files={"h.lua": ROUTES}, env={"GLASGOW_WORKERS": "1"}))
