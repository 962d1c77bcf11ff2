"""A streamed response started after the handler waited.

A GET handler that yields first (a database query, a store request, a
sleep) and only then calls req:respond, as every file download does, used
to hang: the connection was resumed for the response but the response was
never queued. Here: with a Content-Length, chunked, for HEAD, for a route
with a streamed request body, and the connection stays usable after.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import case, is_, main  # noqa: E402

ROUTES = r'''
local glasgow = require "glasgow"
local function late(req, length)
    glasgow.sleep(20)
    local w = req:respond(200, { ["X-Late"] = "yes", ["Content-Type"] = "text/plain" }, length)
    w:write("hello ")
    glasgow.sleep(5)
    w:write("world")
    w:close()
end
return {
    { method = "GET", path = "/late/length", handler = function(req) late(req, 11) end },
    { method = "GET", path = "/late/chunked", handler = function(req) late(req) end },
    { method = "PUT", path = "/late/echo", body = "stream", max_body = 1000,
      handler = function(req)
          local got = {}
          while true do
              local c = req.body_stream:read()
              if not c then break end
              got[#got + 1] = c
          end
          glasgow.sleep(10)
          local body = table.concat(got)
          local w = req:respond(200, {}, #body)
          w:write(body)
      end },
}
'''


class Fixture:
    def __enter__(self):
        self.server = harness.Server(files={"late.lua": ROUTES}).__enter__()
        return self.server

    def __exit__(self, *exc):
        return self.server.__exit__(*exc)


@case
def respond_after_waiting(s):
    with s.client(timeout=5) as c:
        r = c.get("/late/length")
        is_((r.status, r.body), (200, b"hello world"), "with a Content-Length")
        is_(r.header("content-length"), "11", "  which is sent")
        is_(r.header("x-late"), "yes", "  with the handler's headers")
        r = c.get("/late/chunked")
        is_((r.status, r.body), (200, b"hello world"), "chunked, on the same connection")
        r = c.request("HEAD", "/late/length")
        is_((r.status, r.body, r.header("content-length")), (200, b"", "11"),
            "HEAD: the headers, no body")
        r = c.request("PUT", "/late/echo", b"streamed in",
                      headers={"Content-Type": "application/octet-stream"})
        is_((r.status, r.body), (200, b"streamed in"), "a streamed-body route answering late")
        r = c.get("/late/length")
        is_(r.status, 200, "the connection is still usable")


if __name__ == "__main__":
    main(Fixture())
