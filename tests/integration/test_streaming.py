"""Streamed request and response bodies (body = "stream", req.body_stream,
req:respond): large bodies byte for byte, Content-Length and chunked, HEAD,
limits, back-pressure with bounded memory, client hang-ups both ways, the
minimum rate, the deadline of a transfer that keeps moving, SIGTERM and a
reload during transfers.

The routes keep what they receive in files of a temporary directory, so an
upload and the download of the same file make an echo through both
directions (libmicrohttpd cannot answer a request before its body is in,
so a single request cannot echo 64 MiB without holding it). Each handler
writes what its stream reported into <tag>.result, for the test to read.
"""
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (HOST, Server, case, diag, is_, is_error_shape, join_all, main,  # noqa: E402
                     mkdtemp, ok, slow, start_threads, wait_until, write_files)

MiB = 1 << 20

ROUTES = r'''
local core = require "glasgow.core"
local errors = require "glasgow.errors"
local DIR = os.getenv("STREAM_TEST_DIR")
local NAME = { type = "object", properties = { name = { type = "string" } } }

local function note(tag, text)
    if tag then
        local f = assert(io.open(DIR .. "/" .. tag .. ".result", "w"))
        f:write(text)
        f:close()
    end
end

-- deterministic content: byte i is (i * 7 + 3) % 256, made 64 KiB at a time
local BLOCK = {}
for i = 0, 65535 do BLOCK[#BLOCK + 1] = string.char((i * 7 + 3) % 256) end
BLOCK = table.concat(BLOCK)

return {
    { method = "PUT", path = "/up/:name", body = "stream", max_body = 128 * 1048576,
      params = NAME,
      handler = function(req)
        local f = assert(io.open(DIR .. "/" .. req.params.name, "wb"))
        local n, delay = 0, tonumber(req.query.delay_ms)
        local max = tonumber(req.query.max)
        while true do
            local c, err = req.body_stream:read(max)
            if not c then
                f:close()
                if err then
                    note(req.query.tag, err.kind)
                    return err.status, { error = err.kind, bytes = n }
                end
                break
            end
            n = n + #c
            f:write(c)
            if delay then core.sleep(delay) end
        end
        note(req.query.tag, "ok " .. n)
        return 201, { bytes = n, length = req.body_stream:length(),
                      consumed = req.body_stream:consumed() }
      end },

    { method = "GET", path = "/down/:name", params = NAME,
      handler = function(req)
        local f = io.open(DIR .. "/" .. req.params.name, "rb")
        if not f then return 404, { error = "no such file" } end
        local size = f:seek("end")
        f:seek("set", 0)
        local w = req:respond(200, { ["X-Size"] = size },
                              (not req.query.chunked) and size or nil)
        while true do
            local c = f:read(65536)
            if not c then break end
            local ok, err = w:write(c)
            if not ok then
                f:close()
                note(req.query.tag, err.kind)
                return
            end
        end
        f:close()
        note(req.query.tag, "ok")
        -- returning normally ends the body; no w:close() needed
      end },

    -- n bytes of BLOCK content, optionally with a pause between blocks
    { method = "GET", path = "/gen", handler = function(req)
        local n = tonumber(req.query.n)
        local delay = tonumber(req.query.delay_ms)
        local w = req:respond(200, { ["Content-Type"] = "application/x-test" },
                              (not req.query.chunked) and n or nil)
        local left = n
        while left > 0 do
            local c = left >= #BLOCK and BLOCK or BLOCK:sub(1, left)
            local ok, err = w:write(c)
            if not ok then
                note(req.query.tag, err.kind)
                return
            end
            left = left - #c
            if delay then core.sleep(delay) end
        end
        note(req.query.tag, "ok")
        assert(w:close())
      end },

    { method = "PUT", path = "/small", body = "stream", max_body = 1000, handler = function(req)
        local n = 0
        while true do
            local c, err = req.body_stream:read(100)
            if not c then
                if err then
                    note(req.query.tag, err.kind)
                    -- err is a glasgow.errors object: its status and code
                    return err.status, { error = err.kind, code = err.code,
                                         is_error = errors.is(err), source = err.source,
                                         message = err.message, text = tostring(err) }
                end
                return 200, { bytes = n }
            end
            n = n + #c
        end
      end },

    -- answers without reading its body: the rest is drained, keep-alive survives
    { method = "PUT", path = "/ignore", body = "stream", max_body = 16 * 1048576,
      handler = function() return 202, { ignored = true } end },

    -- reads a little, then answers: the rest of the body is drained
    { method = "PUT", path = "/partial", body = "stream", max_body = 16 * 1048576,
      handler = function(req)
        local c = assert(req.body_stream:read(1000))
        core.sleep(50) -- meanwhile the source fills and the connection is suspended
        return 200, { first = #c }
      end },

    -- raises after part of the body went out: the client sees a cut body
    { method = "GET", path = "/boom", handler = function(req)
        local w = req:respond(200, nil, 1000000)
        for _ = 1, 4 do assert(w:write(BLOCK)) end
        core.sleep(10)
        error("boom")
      end },
    -- raises before anything went out: the usual 500
    { method = "GET", path = "/boom-early", handler = function(req)
        req:respond(200, nil, 10)
        error("boom")
      end },
    -- starts a response and then stops writing: the deadline cuts it
    { method = "GET", path = "/stall", handler = function(req)
        local w = req:respond(200)
        assert(w:write("first bytes"))
        core.sleep(60000)
      end },
    -- misuse raises; the messages come back as the body
    { method = "GET", path = "/misuse", handler = function(req)
        local _, e1 = pcall(req.respond, req, 200, { ["Bad Name"] = "x" })
        local _, e2 = pcall(req.respond, req, 99)
        local w = req:respond(200, { ["Content-Type"] = "text/plain" })
        local _, e3 = pcall(req.respond, req, 200)
        local co = coroutine.wrap(function() return pcall(w.write, w, "x") end)
        local _, e4 = co()
        assert(w:write(table.concat({ tostring(e1), tostring(e2), tostring(e3), tostring(e4) },
                                    "\n")))
        assert(w:close())
        local _, e5 = pcall(w.write, w, "more")
        note(req.query.tag, tostring(e5))
      end },
    { method = "GET", path = "/hello", handler = function() return 200, { hello = true } end },
    -- n bytes in one write on a chunked response: libmicrohttpd cuts the
    -- chunks to the connection's write buffer
    { method = "GET", path = "/one", handler = function(req)
        local w = req:respond(200, { ["Content-Type"] = "application/x-test" })
        assert(w:write(string.rep("z", tonumber(req.query.n))))
        assert(w:close())
      end },
    -- a buffered body (not streamed), for the pipelining case
    { method = "POST", path = "/len", max_body = 1048576, handler = function(req)
        return 200, { n = #req.body }
    end },
}
'''


def pattern(n):
    block = bytes((i * 7 + 3) % 256 for i in range(65536))
    return (block * (n // 65536 + 1))[:n]


def sha(b):
    return hashlib.sha256(b).hexdigest()


def file_sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for c in iter(lambda: f.read(MiB), b""):
            h.update(c)
    return h.hexdigest()


def result(d, tag, timeout=5):
    path = os.path.join(d, tag + ".result")
    wait_until(lambda: os.path.exists(path) and os.path.getsize(path) > 0, slow(timeout))
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Fixture:
    def __init__(self, env=None):
        self.dir = mkdtemp("glasgow-stream-data-")
        e = {"STREAM_TEST_DIR": self.dir}
        e.update(env or {})
        self.server = Server(files={"stream.lua": ROUTES}, env=e)

    def __enter__(self):
        self.server.__enter__()
        return self

    def __exit__(self, *exc):
        return self.server.__exit__(*exc)


def log_for(s, path, timeout=5, where=None):
    """The first access log line for path (and where(line), if given)."""
    def find():
        for ln in s.log_lines():
            if ln.get("msg") == "request" and ln.get("path") == path and \
                    (where is None or where(ln)):
                return ln
        return None
    return wait_until(find, slow(timeout))


def put(port, path, body, headers=None, chunked=False, timeout=60):
    c = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        if chunked:
            def gen():
                for i in range(0, len(body), 256 * 1024):
                    yield body[i:i + 256 * 1024]
            c.request("PUT", path, body=gen(), headers=headers or {}, encode_chunked=True)
        else:
            c.request("PUT", path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read(), dict((k.lower(), v) for k, v in r.getheaders())
    finally:
        c.close()


def get(port, path, method="GET", timeout=60):
    c = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, r.read(), dict((k.lower(), v) for k, v in r.getheaders())
    finally:
        c.close()


# ---- items: round trips, framing, HEAD, limits ------------------------------------------

@case(timeout=120)
def round_trip_64mib(fx):
    s, d = fx.server, fx.dir
    body = os.urandom(64 * MiB)
    want = sha(body)
    t0 = time.monotonic()
    st, data, _ = put(s.port, "/up/big?tag=big", body)
    up = time.monotonic() - t0
    is_(st, 201, "64 MiB upload with Content-Length: 201", data[:200])
    ok(file_sha(os.path.join(d, "big")) == want, "what the handler read is the body, byte for byte")
    is_(result(d, "big"), "ok %d" % len(body), "the handler read every byte, then the end")
    t0 = time.monotonic()
    st, data, h = get(s.port, "/down/big")
    down = time.monotonic() - t0
    is_(st, 200, "download: 200")
    is_(h.get("content-length"), str(len(body)), "with the Content-Length given to respond")
    ok(sha(data) == want, "and the same bytes (SHA-256)")
    is_(h.get("content-type"), "application/octet-stream", "default Content-Type")
    is_(h.get("x-size"), str(len(body)), "and the handler's own header")
    ok(h.get("x-request-id"), "X-Request-ID is set on streamed responses too")
    st, data, h = get(s.port, "/down/big?chunked=1")
    is_(h.get("transfer-encoding"), "chunked", "without a length: chunked")
    ok(st == 200 and sha(data) == want, "chunked download: the same bytes")
    diag("64 MiB: upload %.2f s (%.0f MB/s), download %.2f s (%.0f MB/s)" %
         (up, 64 * 1.048576 / up, down, 64 * 1.048576 / down))
    ln = log_for(s, "/up/big")
    ok(ln and ln["bytes_in"] == len(body) and ln["status"] == 201,
       "the access log counts the streamed bytes in", ln)
    ln = log_for(s, "/down/big")
    ok(ln and ln["bytes_out"] == len(body) and ln["status"] == 200,
       "and out", ln)


@case(timeout=120)
def chunked_upload(fx):
    s, d = fx.server, fx.dir
    body = os.urandom(20 * MiB + 12345)
    st, data, _ = put(s.port, "/up/ch?tag=ch", body, chunked=True)
    is_(st, 201, "chunked upload: 201", data[:200])
    ok(file_sha(os.path.join(d, "ch")) == sha(body), "the handler read the body byte for byte")
    ok(b'"length":' not in data, "length() is nil for a chunked body")
    # small reads: read(max) never returns more than max
    body = os.urandom(300000)
    st, data, _ = put(s.port, "/up/small-reads?tag=sr&max=1000", body)
    ok(st == 201 and file_sha(os.path.join(d, "small-reads")) == sha(body),
       "reads of at most 1000 bytes put it back together")


@case(timeout=60)
def head_and_empty(fx):
    s, d = fx.server, fx.dir
    with open(os.path.join(d, "h"), "wb") as f:
        f.write(b"x" * 123456)
    st, data, h = get(s.port, "/down/h", method="HEAD")
    is_(st, 200, "HEAD on a streamed route: 200")
    is_(h.get("content-length"), "123456", "with the Content-Length of the GET")
    is_(data, b"", "and no body")
    ln = log_for(s, "/down/h")
    ok(ln and ln["method"] == "HEAD" and ln["status"] == 200, "logged 200", ln)
    st, data, _ = put(s.port, "/up/empty?tag=empty", b"")
    ok(st == 201 and b'"bytes":0' in data, "an empty streamed body: read gives the end at once",
       data)
    st, data, h = get(s.port, "/gen?n=0")
    ok(st == 200 and data == b"" and h.get("content-length") == "0", "an empty streamed response")
    st, data, _ = get(s.port, "/gen?n=100000&chunked=1")
    ok(st == 200 and data == pattern(100000), "a generated chunked response")


@case(timeout=60)
def limits(fx):
    s, d = fx.server, fx.dir
    t0 = time.monotonic()
    r = s.raw(b"PUT /small HTTP/1.1\r\nHost: t\r\nContent-Length: 2000\r\n\r\n",
              timeout=slow(5))
    is_(r.status, 413, "Content-Length over the route's limit: 413 before any byte is read")
    ok(is_error_shape(r.body, "body_too_large"), "with our JSON error", r.body[:200])
    ok(time.monotonic() - t0 < slow(2), "at once (the client would wait %.0f s for a body)" %
       slow(5))
    st, data, _ = put(s.port, "/small?tag=lim", b"y" * 5000, chunked=True)
    is_(st, 413, "a chunked body that grows past the limit: the handler answers 413")
    is_(result(d, "lim"), "too_large", "after read() returned nil and an err of kind too_large")
    j = json.loads(data or b"{}")
    ok(j.get("is_error") is True and j.get("source") == "stream",
       "the err is a glasgow.errors object from the stream", data[:300])
    ok(j.get("code") == "body_too_large" and j.get("message") == "the body is larger than allowed",
       "with the code and message of the early 413", data[:300])
    is_(j.get("text"), "stream: 413 too_large body_too_large: the body is larger than allowed",
        "tostring(err) names source, status, kind, code and message")
    st, data, _ = put(s.port, "/small", b"y" * 1000, chunked=True)
    ok(st == 200 and b'"bytes":1000' in data, "exactly the limit is fine")


def pipelined(port, data, want, timeout=10.0):
    """Sends data at once on a fresh connection; returns the statuses of up
    to want responses read back, and everything read."""
    c = socket.create_connection((HOST, port), timeout=timeout)
    buf = b""
    try:
        c.sendall(data)
        deadline = time.monotonic() + timeout
        while buf.count(b"HTTP/1.1 ") < want and time.monotonic() < deadline:
            chunk = c.recv(65536)
            if not chunk:
                break
            buf += chunk
    except OSError:
        pass
    finally:
        c.close()
    return [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", buf)], buf


@case(timeout=60)
def pipelined_after_a_large_body(fx):
    """libmicrohttpd reads a body in pieces of up to about 136 KiB (patch
    0005), so the bytes of the requests pipelined after it can arrive with
    it and be kept for the next request: it must still have room for its
    header block (the header phase's part of the pool alone would not)."""
    s = fx.server
    fields = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 50) for i in range(60))
    for n in (300000, 100000, 1000):
        first = (b"POST /len HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % n + b"x" * n)
        then = b"GET /hello HTTP/1.1\r\nHost: t\r\n" + fields + b"\r\n"
        statuses, data = pipelined(s.port, first + then * 20, 21)
        is_(statuses, [200] * 21, "a %d-byte body, then 20 pipelined GETs with 3.4 KiB of header "
            "fields each: all answered 200" % n)
        ok(b'{"n":%d}' % n in data, "the body arrived whole", data[:300])


def read_response(f):
    """One HTTP/1.1 response from the file f: status, headers (lower-case
    names), body, and the sizes of its chunks when it is chunked."""
    status = int(f.readline().split()[1])
    headers = {}
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        k, v = line.decode().split(":", 1)
        headers[k.strip().lower()] = v.strip()
    sizes, body = [], b""
    if headers.get("transfer-encoding") == "chunked":
        while True:
            n = int(f.readline().split(b";")[0], 16)
            body += f.read(n)
            f.readline()
            if n == 0:
                break
            sizes.append(n)
    else:
        body = f.read(int(headers.get("content-length", "0")))
    return status, headers, body, sizes


@case(timeout=60)
def reply_buffer_after_a_large_body(fx):
    """A connection's pool has room for a large body's read buffer (patch
    0005), but a reply gets only the header phase's part of it (patch 0015):
    libmicrohttpd's write buffer takes all the pool it may, and a large one
    cost every small request a madvise and page faults. A chunked reply
    shows the write buffer's size: each chunk is at most what fits in it,
    here under the 16 KiB header part, on a fresh connection and after a 1
    MiB upload on the same keep-alive connection."""
    s = fx.server
    n = 300000
    c = socket.create_connection((HOST, s.port), timeout=20)
    f = c.makefile("rb")
    try:
        get_one = b"GET /one?n=%d HTTP/1.1\r\nHost: t\r\n\r\n" % n
        c.sendall(get_one)
        st, h, body, fresh = read_response(f)
        ok(st == 200 and body == b"z" * n, "a chunked reply on a fresh connection arrives whole")
        ok(fresh and max(fresh) <= 16384, "in chunks of at most 16 KiB (the write buffer)",
           "largest %s of %d" % (max(fresh or [0]), len(fresh)))
        up = os.urandom(MiB)
        c.sendall(b"PUT /up/wb HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(up) + up)
        st, h, body, _ = read_response(f)
        is_(st, 201, "then a 1 MiB upload on the same connection: 201", body[:200])
        c.sendall(get_one)
        st, h, body, after = read_response(f)
        ok(st == 200 and body == b"z" * n, "then the same reply on the same connection arrives whole")
        ok(after and max(after) <= 16384,
           "in chunks of at most 16 KiB still: the body's room is not the reply's",
           "largest %s of %d" % (max(after or [0]), len(after)))
        c.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        st, h, body, _ = read_response(f)
        ok(st == 200 and body == b'{"hello":true}', "and a small request after it is answered",
           body)
    finally:
        f.close()
        c.close()
    ok(file_sha(os.path.join(fx.dir, "wb")) == sha(up), "the upload arrived byte for byte")


@case(timeout=60)
def early_answers(fx):
    s = fx.server
    # answered on the headers alone: at once, without waiting for the body, then closed
    r = s.raw(b"PUT /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n"
              b"Expect: 100-continue\r\n\r\n", timeout=5)
    ok(r.status == 202 and r.interim == [],
       "a handler that answers without reading or waiting: its answer, no 100 Continue", r)
    ok(r.header("connection") == "close", "and the connection closes (the body is unread)")
    c = http.client.HTTPConnection(HOST, s.port, timeout=10)
    c.request("GET", "/hello")
    r = c.getresponse()
    r.read()
    sock0 = c.sock
    c.request("PUT", "/partial", body=b"p" * (4 * MiB))
    r = c.getresponse()
    data = r.read()
    ok(r.status == 200 and b'"first":1000' in data,
       "a handler that read part of the body and answered later: its answer", data[:200])
    for i in range(2):
        c.request("GET", "/gen?n=300000")
        r = c.getresponse()
        data = r.read()
        ok(r.status == 200 and data == pattern(300000),
           "streamed response %d on the same keep-alive connection" % (i + 1))
    ok(c.sock is sock0 and sock0 is not None,
       "all on one connection: the unread rest of that body was drained")
    c.close()
    # answered mid-body with more left than is worth draining: the answer still goes out,
    # written before the connection closes (libmicrohttpd would hold it for the whole body)
    r = s.raw(b"PUT /partial HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % (16 * MiB),
              chunks=[b"p" * MiB] * 16, timeout=slow(10))
    ok(r.status == 200 and b'"first":1000' in r.body,
       "an answer given with 16 MiB of body still to come reaches the client", r)
    is_(r.header("connection"), "close", "  with Connection: close")
    # raising after the response started: a truncated body, never a complete-looking one
    c = http.client.HTTPConnection(HOST, s.port, timeout=10)
    c.request("GET", "/boom")
    r = c.getresponse()
    is_(r.status, 200, "a response that fails midway starts normally")
    try:
        data = r.read()
        ok(False, "the client notices the cut", len(data))
    except http.client.IncompleteRead as e:
        ok(len(e.partial) < 1000000, "the client notices the cut (%d bytes)" % len(e.partial))
    c.close()
    st, data, _ = get(s.port, "/boom-early")
    is_(st, 500, "raising before any byte went out: the usual 500")
    ok(is_error_shape(data, "internal"), "with our JSON error", data[:200])


@case(timeout=30)
def misuse_raises(fx):
    s, d = fx.server, fx.dir
    st, data, _ = get(s.port, "/misuse?tag=misuse")
    is_(st, 200, "misuse: the response still works")
    lines = data.decode().split("\n")
    ok(len(lines) == 4 and "bad response header Bad Name" in lines[0],
       "a header name that is not a token raises", lines)
    ok(len(lines) == 4 and "HTTP status" in lines[1], "a bad status raises", lines)
    ok(len(lines) == 4 and "already started" in lines[2], "a second respond raises", lines)
    ok(len(lines) == 4 and "nested coroutine" in lines[3],
       "waiting from a nested coroutine raises", lines)
    ok("already closed" in (result(d, "misuse") or ""), "a write after close raises",
       result(d, "misuse"))


# ---- back-pressure and hang-ups -------------------------------------------------------------

@case(timeout=120)
def backpressure_bounds_memory(fx):
    s, d = fx.server, fx.dir
    pid = s.proc.pid
    base = rss_kib(pid)
    size = 48 * MiB
    body = os.urandom(size)
    peak = [base]
    done = threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], rss_kib(pid))
            time.sleep(0.02)
    t = threading.Thread(target=watch, daemon=True)
    t.start()
    t0 = time.monotonic()
    # the handler sleeps 4 ms per 64 KiB read: about 16 MB/s, far below what the client sends
    st, data, _ = put(s.port, "/up/slow?tag=slow&delay_ms=4", body, timeout=120)
    secs = time.monotonic() - t0
    done.set()
    t.join()
    is_(st, 201, "a slowly read 48 MiB upload completes")
    ok(file_sha(os.path.join(d, "slow")) == sha(body), "byte for byte")
    growth = (peak[0] - base) / 1024
    diag("slow reader: %.1f s, RSS %d KiB before, %d KiB at the peak (+%.1f MiB)" %
         (secs, base, peak[0], growth))
    ok(secs > 2, "the client was held back to the reader's pace (%.1f s)" % secs)
    ok(growth < 16, "the server's memory stayed bounded (+%.1f MiB for a 48 MiB body)" % growth)


def hangup_upload(s, d, tag):
    sock = socket.create_connection((HOST, s.port))
    sock.sendall(("PUT /up/hang?tag=%s&delay_ms=20 HTTP/1.1\r\nHost: t\r\n"
                  "Content-Length: %d\r\n\r\n" % (tag, 64 * MiB)).encode())
    sock.sendall(os.urandom(4 * MiB))
    time.sleep(0.3)
    sock.close()


@case(timeout=60)
def hangup_mid_upload(fx):
    s, d = fx.server, fx.dir
    hangup_upload(s, d, "hu")
    is_(result(d, "hu"), "closed", "client gone mid-upload: the handler's read returns \"closed\"")
    ln = log_for(s, "/up/hang")
    ok(ln and ln["status"] == 499, "logged 499", ln)
    ok(wait_until(lambda: s.metric("http_requests_in_flight") == 0, slow(5)),
       "nothing left in flight")


@case(timeout=60)
def hangup_mid_download(fx):
    s, d = fx.server, fx.dir
    sock = socket.create_connection((HOST, s.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.sendall(b"GET /gen?n=1073741824&tag=hd HTTP/1.1\r\nHost: t\r\n\r\n")
    got = 0
    while got < 2 * MiB:
        got += len(sock.recv(65536))
    t0 = time.monotonic()
    sock.close()
    is_(result(d, "hd"), "closed", "client gone mid-download: the handler's write returns \"closed\"")
    ok(time.monotonic() - t0 < 2, "at once (%.2f s)" % (time.monotonic() - t0))
    ln = log_for(s, "/gen", where=lambda ln: ln["bytes_out"] >= 2 * MiB)
    ok(ln and ln["status"] == 499, "logged 499", ln)
    ok(ln and 0 < ln["bytes_out"] < 1073741824, "with the bytes that went out", ln)
    ok(wait_until(lambda: s.metric("http_requests_in_flight") == 0, slow(5)),
       "nothing left in flight")
    # the server is fine afterwards
    st, data, _ = get(s.port, "/gen?n=1000000")
    ok(st == 200 and data == pattern(1000000), "the next download is whole")


# ---- timing: minimum rate, deadline, run limit ----------------------------------------------

TIMED_ENV = {
    "GLASGOW_MIN_RATE_BYTES_PER_S": "20000",
    "GLASGOW_MIN_RATE_GRACE_MS": "500",
    "GLASGOW_REQUEST_TIMEOUT_MS": "1000",
    "GLASGOW_LUA_RUN_LIMIT_MS": "200",
}


def timed_server():
    d = mkdtemp("glasgow-stream-data-")
    env = dict(TIMED_ENV, STREAM_TEST_DIR=d)
    return Server(files={"stream.lua": ROUTES}, env=env), d


@case(timeout=90)
def min_rate_and_deadline(_fx):
    srv, d = timed_server()
    with srv as s:
        # an upload that trickles (10 bytes every 0.1 s) is cut
        sock = socket.create_connection((HOST, s.port))
        sock.sendall(b"PUT /up/trickle?tag=trickle HTTP/1.1\r\nHost: t\r\n"
                     b"Content-Length: 100000\r\n\r\n")
        t0 = time.monotonic()
        buf = b""
        sock.settimeout(0.1)
        while time.monotonic() - t0 < 6:
            try:
                sock.sendall(b"x" * 10)
                got = sock.recv(4096)
                if not got:
                    break
                buf += got
            except socket.timeout:
                continue
            except OSError:
                break
        secs = time.monotonic() - t0
        sock.close()
        ok(buf.startswith(b"HTTP/1.1 408"), "a trickling upload is answered 408", buf[:200])
        ok(secs < 3, "soon after the grace period (%.1f s)" % secs)
        is_(result(d, "trickle"), "timeout", "the handler's read returned \"timeout\"")
        ln = log_for(s, "/up/trickle")
        ok(ln and ln["status"] == 408, "logged 408", ln)

        # a download the client takes at a trickle is cut too
        sock = socket.create_connection((HOST, s.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /gen?n=67108864&tag=slowdown HTTP/1.1\r\nHost: t\r\n\r\n")
        t0 = time.monotonic()
        got, closed = 0, False
        sock.settimeout(0.2)
        while time.monotonic() - t0 < 12:
            try:
                c = sock.recv(1000)
            except socket.timeout:
                continue
            except OSError:
                closed = True
                break
            if not c:
                closed = True
                break
            got += len(c)
            time.sleep(0.1)
        secs = time.monotonic() - t0
        sock.close()
        ok(closed and secs < 8, "a download read at a trickle is cut (%.1f s, %d bytes)" %
           (secs, got))
        is_(result(d, "slowdown"), "timeout", "the handler's write returned \"timeout\"")

        # a slow handler is not the client's fault: 1000 bytes every 100 ms (10 kB/s,
        # half the minimum rate) for 3 s, while the client could send at once
        body = os.urandom(30000)
        t0 = time.monotonic()
        st, data, _ = put(s.port, "/up/slowhandler?tag=sh&max=1000&delay_ms=100", body)
        secs = time.monotonic() - t0
        is_(st, 201, "a handler reading below the minimum rate is not cut (%.1f s)" % secs)
        ok(file_sha(os.path.join(d, "slowhandler")) == sha(body), "and gets every byte")

        # transfers that keep moving outlive the 1 s deadline and the 200 ms run limit
        t0 = time.monotonic()
        st, data, _ = get(s.port, "/gen?n=%d&delay_ms=40" % (60 * 65536))
        secs = time.monotonic() - t0
        ok(st == 200 and data == pattern(60 * 65536),
           "a 2.4 s download that keeps moving is not cut by the 1 s deadline (%.1f s)" % secs)
        body = os.urandom(4 * MiB)
        t0 = time.monotonic()
        st, data, _ = put(s.port, "/up/long?tag=long&delay_ms=40", body)
        secs = time.monotonic() - t0
        ok(st == 201 and secs > 1.5,
           "nor an upload read for %.1f s" % secs)
        ok(file_sha(os.path.join(d, "long")) == sha(body), "which arrives whole")

        # a handler that starts a response and stops moving bytes is cut by the deadline
        c = http.client.HTTPConnection(HOST, s.port, timeout=10)
        t0 = time.monotonic()
        c.request("GET", "/stall")
        r = c.getresponse()
        is_(r.status, 200, "a stalled response had started")
        try:
            r.read()
            ok(False, "its body is cut")
        except (http.client.IncompleteRead, OSError):
            ok(True, "its body is cut")
        secs = time.monotonic() - t0
        ok(1 <= secs < 4, "by the deadline (%.1f s)" % secs)
        c.close()
        ln = log_for(s, "/stall")
        ok(ln and ln["status"] == 504, "logged 504", ln)
        ok(wait_until(lambda: s.metric("http_requests_in_flight") == 0, slow(5)),
           "nothing left in flight")


# ---- SIGTERM and reload during transfers --------------------------------------------------

@case(timeout=90)
def sigterm_lets_transfers_finish(_fx):
    d = mkdtemp("glasgow-stream-data-")
    srv = Server(files={"stream.lua": ROUTES},
                 env={"STREAM_TEST_DIR": d, "GLASGOW_SHUTDOWN_GRACE_MS": "8000"})
    with srv as s:
        up_body = os.urandom(3 * MiB)
        out = {}

        def download():
            out["down"] = get(s.port, "/gen?n=%d&delay_ms=20" % (80 * 65536), timeout=30)

        def upload():
            out["up"] = put(s.port, "/up/term?tag=term&delay_ms=30", up_body, timeout=30)
        ts = start_threads([download, upload])
        time.sleep(0.5)
        t0 = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        ok(join_all(ts, 30), "both transfers end")
        code = s.proc.wait(timeout=15)
        secs = time.monotonic() - t0
        st, data, _ = out.get("down", (None, b"", {}))
        ok(st == 200 and data == pattern(80 * 65536),
           "a download in flight at SIGTERM finishes whole")
        st, data, _ = out.get("up", (None, b"", {}))
        is_(st, 201, "an upload in flight at SIGTERM finishes", data[:200])
        ok(file_sha(os.path.join(d, "term")) == sha(up_body), "whole")
        is_(code, 0, "then the server exits 0 (%.1f s after SIGTERM)" % secs)
        ok(secs < 8, "within the grace period")


@case(timeout=60)
def sigterm_cuts_transfers_past_the_grace(_fx):
    d = mkdtemp("glasgow-stream-data-")
    srv = Server(files={"stream.lua": ROUTES},
                 env={"STREAM_TEST_DIR": d, "GLASGOW_SHUTDOWN_GRACE_MS": "1000"})
    with srv as s:
        out = {}

        def download():
            try:
                out["down"] = get(s.port, "/gen?n=%d&delay_ms=50" % (200 * 65536), timeout=30)
            except (http.client.HTTPException, OSError) as e:
                out["down"] = e

        def upload():
            try:
                out["up"] = put(s.port, "/up/cut?tag=cut&delay_ms=50", os.urandom(16 * MiB),
                                timeout=30)
            except (http.client.HTTPException, OSError) as e:
                out["up"] = e
        ts = start_threads([download, upload])
        time.sleep(0.5)
        t0 = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        code = s.proc.wait(timeout=15)
        secs = time.monotonic() - t0
        ok(join_all(ts, 10), "both clients are released")
        is_(code, 0, "transfers longer than the grace: the server still exits 0")
        ok(secs < 3, "soon after the 1 s grace (%.1f s)" % secs)
        ok(isinstance(out.get("down"), Exception), "the download is cut, not completed",
           repr(out.get("down"))[:200])
        up = out.get("up")
        ok(isinstance(up, Exception) or (up and up[0] >= 500),
           "the upload is cut or refused", repr(up)[:200])
        for path in ("/gen", "/up/cut"):
            ln = log_for(s, path)
            ok(ln and ln["status"] == 503, "%s is logged 503 (stopped at the end of the grace)"
               % path, ln)


@case(timeout=120)
def reload_during_transfers(_fx):
    d = mkdtemp("glasgow-stream-data-")
    srv = Server(files={"stream.lua": ROUTES}, env={"STREAM_TEST_DIR": d})
    with srv as s:
        bodies = [os.urandom(2 * MiB + i) for i in range(4)]
        out = {}

        def up(i):
            def f():
                out["up%d" % i] = put(s.port, "/up/rl%d?delay_ms=25" % i, bodies[i], timeout=60)
            return f

        def down(i):
            def f():
                out["down%d" % i] = get(s.port, "/gen?n=%d&delay_ms=25" % ((40 + i) * 65536),
                                        timeout=60)
            return f
        ts = start_threads([up(i) for i in range(4)] + [down(i) for i in range(4)])
        time.sleep(0.4)
        write_files(os.path.join(s.tmp, "routes"), {
            "stream.lua": ROUTES.replace('"/hello"', '"/hello2"')})
        reloaded = wait_until(lambda: s.get("/hello2").status == 200, slow(10))
        ok(reloaded, "the routes reloaded while the transfers ran")
        ok(any(t.is_alive() for t in ts), "with transfers still in flight")
        ok(join_all(ts, 60), "all 8 transfers end")
        fails = []
        for i in range(4):
            st, data, _ = out.get("up%d" % i, (None, b"", {}))
            if st != 201 or file_sha(os.path.join(d, "rl%d" % i)) != sha(bodies[i]):
                fails.append("up%d: %s %r" % (i, st, data[:100]))
            st, data, _ = out.get("down%d" % i, (None, b"", {}))
            if st != 200 or data != pattern((40 + i) * 65536):
                fails.append("down%d: %s, %d bytes" % (i, st, len(data)))
        ok(not fails, "none failed: each kept its generation", fails)
        is_(s.get("/hello").status, 404, "new requests get the new routes")


if __name__ == "__main__":
    main(Fixture())
