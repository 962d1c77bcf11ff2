"""glasgow.s3 against a real S3 server (Ceph RGW), through a small route bundle.

The store comes from GLASGOW_TEST_S3_* (tests/run-all starts one; without it
every case fails). Round trips of 0 B, 1 B, 5 MiB - 1, 5 MiB + 1 and 64 MiB
compared by SHA-256, with the multipart threshold and part size at 5 MiB so
that the larger ones go in parts (the metrics show the part uploads);
ranges, head, delete, listing with continuation, the raising variant; a
digest that does not match stores nothing; a wrong secret is a clear error
and /readyz 503, not a crash; a private store stopped midway gives 503 with
retryable = true and /readyz 503, and both recover when it is back.
"""
import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import s3harness  # noqa: E402
from harness import case, diag, is_, main, ok, wait_until  # noqa: E402

MIB = 1024 * 1024

ROUTES = r'''-- Test-only routes for tests/integration/test_s3.py.
local s3 = require "glasgow.s3"

local function fail(err)
    return err.status, { kind = err.kind, code = err.code, status = err.status,
                         retryable = err.retryable or false, message = err.message },
           err.headers
end

local function range_of(q)
    if q.first then
        return { range = { tonumber(q.first), q.last and tonumber(q.last) } }
    end
end

return {
    {
        method = "PUT", path = "/t/obj/*key", max_body = 80 * 1024 * 1024,
        handler = function(req)
            local r, err = s3.put(req.params.key, req.body or "",
                                  { content_type = req.headers["content-type"],
                                    sha256 = req.query.sha256 })
            if not r then
                return fail(err)
            end
            return 200, r
        end,
    },
    {
        method = "GET", path = "/t/obj/*key",
        handler = function(req)
            local data, err = s3.read(req.params.key, range_of(req.query))
            if not data then
                return fail(err)
            end
            return 200, data, { ["Content-Type"] = "application/octet-stream" }
        end,
    },
    {
        method = "GET", path = "/t/head/*key",
        handler = function(req)
            local h, err = s3.head(req.params.key)
            if not h then
                return fail(err)
            end
            return 200, h
        end,
    },
    {
        method = "DELETE", path = "/t/obj/*key",
        handler = function(req)
            local done, err = s3.delete(req.params.key)
            if not done then
                return fail(err)
            end
            return 200, { deleted = true }
        end,
    },
    {
        method = "GET", path = "/t/list",
        handler = function(req)
            local q = req.query
            local r, err = s3.list { prefix = q.prefix, continuation = q.continuation,
                                     max_keys = q.max_keys and tonumber(q.max_keys) }
            if not r then
                return fail(err)
            end
            local keys = {}
            for i, o in ipairs(r.objects) do
                keys[i] = o.key
            end
            return 200, { keys = keys, truncated = r.truncated, continuation = r.continuation }
        end,
    },
    {
        method = "PUT", path = "/t/stream/*key", body = "stream", max_body = 2 * 1024 * 1024 * 1024,
        handler = function(req)
            local r, err = s3.put(req.params.key, req,
                                  { content_type = req.headers["content-type"],
                                    sha256 = req.query.sha256,
                                    max_bytes = req.query.max and tonumber(req.query.max) })
            if not r then
                return fail(err)
            end
            return 200, r
        end,
    },
    {
        method = "GET", path = "/t/stream/*key",
        handler = function(req)
            local obj, err = s3.get(req.params.key, range_of(req.query))
            if not obj then
                return fail(err)
            end
            local headers = { ["X-Object-Size"] = tostring(obj.size) }
            if obj.status == 206 then
                headers["Content-Range"] = "bytes " .. obj.first .. "-" .. obj.last .. "/" .. obj.size
            end
            obj:pipe(req, obj.status, headers)
        end,
    },
    {
        method = "GET", path = "/t/must/*key",
        handler = function(req)
            return 200, s3.must.head(req.params.key)
        end,
    },
}
'''


def store_env(env=None):
    """The runtime's S3_* settings for the test store (or env, a private store's), with
    small thresholds and quick probes."""
    if env is None:
        st = s3harness.Store.from_env()
        if st is None or not st.access_key or not st.secret_key:
            raise RuntimeError("no S3 server for the tests: GLASGOW_TEST_S3_ENDPOINT and its "
                               "keys are not set (tests/run-all starts Ceph RGW)")
        out = st.runtime_env()
    else:
        out = dict(env)
    out.update({
        "GLASGOW_S3_MULTIPART_THRESHOLD": "5m",
        "GLASGOW_S3_PART_SIZE": "5m",
        "GLASGOW_S3_READ_MAX_BYTES": "80m",
        "GLASGOW_S3_HEALTH_INTERVAL_MS": "300",
        "GLASGOW_S3_HEALTH_TIMEOUT_MS": "1000",
        "GLASGOW_S3_CONNECT_TIMEOUT_MS": "1000",
        "GLASGOW_S3_BACKOFF_BASE_MS": "20",
        "GLASGOW_S3_BACKOFF_MAX_MS": "100",
        "GLASGOW_LUA_MEMORY_LIMIT": "512m",
        "GLASGOW_REQUEST_TIMEOUT_MS": "60000",
    })
    return out


def server(env=None, **extra):
    e = store_env(env)
    e.update({k: str(v) for k, v in extra.items()})
    return harness.Server(files={"t_s3.lua": ROUTES}, env=e, start_timeout=15)


def put(s, key, data, query="", timeout=120, ctype="application/octet-stream"):
    return s.request("PUT", "/t/obj/" + urllib.parse.quote(key) + query, body=data,
                     headers={"Content-Type": ctype}, timeout=timeout)


def readyz(s):
    try:
        return s.admin("/readyz", timeout=3).status
    except Exception as e:  # noqa: BLE001 - a timeout is a result here
        return type(e).__name__


def prefix():
    return "it-%d-%s/" % (os.getpid(), os.urandom(3).hex())


@case(timeout=240)
def round_trips():
    with server() as s:
        ok(wait_until(lambda: readyz(s) == 200, 10), "/readyz is 200 with the store up")
        p = prefix()
        parts0 = s.metric("glasgow_s3_requests_total", op="upload_part", status="200")
        for size in (0, 1, 5 * MIB - 1, 5 * MIB + 1, 64 * MIB):
            data = os.urandom(size)
            want = hashlib.sha256(data).hexdigest()
            key = p + "size-%d" % size
            t0 = time.monotonic()
            r = put(s, key, data)
            took = time.monotonic() - t0
            body = r.json_or_none() or {}
            ok(r.status == 200 and body.get("size") == size and body.get("sha256") == want,
               "put %d bytes: size and SHA-256 as sent (%.2f s)" % (size, took), r)
            t0 = time.monotonic()
            g = s.request("GET", "/t/obj/" + key, timeout=120)
            took = time.monotonic() - t0
            ok(g.status == 200 and len(g.body) == size and hashlib.sha256(g.body).hexdigest() == want,
               "get %d bytes: the same SHA-256 (%.2f s)" % (size, took),
               "status %s, %d bytes" % (g.status, len(g.body)))
            s.request("DELETE", "/t/obj/" + key)
        parts = s.metric("glasgow_s3_requests_total", op="upload_part", status="200") - parts0
        # 5 MiB + 1 in 2 parts, 64 MiB in 13
        is_(parts, 15.0, "the bodies over 5 MiB went to the store in 5 MiB parts")
        ok(s.metric("glasgow_s3_requests_total", op="complete_multipart", status="200") >= 2,
           "... completed as multipart uploads")


@case(timeout=90)
def object_calls():
    with server() as s:
        p = prefix()
        r = put(s, p + "a b+c.txt", b"0123456789", ctype="text/plain")
        is_(r.status, 200, "put a key with a space and a plus")
        g = s.request("GET", "/t/obj/" + urllib.parse.quote(p + "a b+c.txt") + "?first=2&last=5")
        is_((g.status, g.body), (200, b"2345"), "a range reads bytes 2-5")
        g = s.request("GET", "/t/obj/" + urllib.parse.quote(p + "a b+c.txt") + "?first=7")
        is_((g.status, g.body), (200, b"789"), "an open range reads to the end")
        g = s.request("GET", "/t/obj/" + urllib.parse.quote(p + "a b+c.txt") + "?first=50")
        ok(g.status == 416 and (g.json_or_none() or {}).get("code") == "InvalidRange",
           "a range past the end is 416 InvalidRange", g)
        h = s.request("GET", "/t/head/" + urllib.parse.quote(p + "a b+c.txt"))
        hb = h.json_or_none() or {}
        ok(h.status == 200 and hb.get("size") == 10 and hb.get("content_type") == "text/plain"
           and hb.get("etag"), "head: size, content type, etag", h)
        for i in range(3):
            put(s, p + "list/%d" % i, b"x")
        keys, cont, pages = [], None, 0
        while True:
            q = "?prefix=" + urllib.parse.quote(p + "list/") + "&max_keys=2"
            if cont:
                q += "&continuation=" + urllib.parse.quote(cont)
            lr = s.request("GET", "/t/list" + q).json()
            keys += lr["keys"]
            pages += 1
            cont = lr.get("continuation")
            if not lr["truncated"] or pages > 5:
                break
        is_((keys, pages), ([p + "list/%d" % i for i in range(3)], 2),
            "list by 2 with continuation: 3 keys in 2 pages")
        d = s.request("DELETE", "/t/obj/" + urllib.parse.quote(p + "a b+c.txt"))
        is_(d.status, 200, "delete")
        d = s.request("DELETE", "/t/obj/" + urllib.parse.quote(p + "a b+c.txt"))
        is_(d.status, 200, "delete again: idempotent")
        h = s.request("GET", "/t/head/" + urllib.parse.quote(p + "a b+c.txt"))
        ok(h.status == 404 and (h.json_or_none() or {}).get("code") == "NoSuchKey",
           "head after delete: 404 NoSuchKey", h)
        m = s.request("GET", "/t/must/" + urllib.parse.quote(p + "gone"))
        err = (m.json_or_none() or {}).get("error") or {}
        ok(m.status == 404 and err.get("code") == "NoSuchKey" and "request_id" in err,
           "the raising variant answers 404 NoSuchKey in the standard error body", m)
        bad = put(s, p + "digest", b"abc", query="?sha256=" + "0" * 64)
        ok(bad.status == 400 and (bad.json_or_none() or {}).get("kind") == "digest_mismatch",
           "a body that does not match its sha256: 400 digest_mismatch", bad)
        is_(s.request("GET", "/t/head/" + urllib.parse.quote(p + "digest")).status, 404,
            "... and nothing is stored")
        for i in range(3):
            s.request("DELETE", "/t/obj/" + urllib.parse.quote(p + "list/%d" % i))
        text = s.admin("/metrics").body.decode()
        for name in ("glasgow_s3_requests_total{op=\"put_object\",status=\"200\"}",
                     "glasgow_s3_request_duration_seconds_bucket{op=\"get_object\"",
                     "glasgow_s3_bytes_sent_total", "glasgow_s3_bytes_received_total",
                     "glasgow_s3_transfers_in_flight", "glasgow_s3_up 1"):
            ok(name in text, "metrics show %s" % name)


@case(timeout=60)
def wrong_secret():
    e = store_env()
    e.pop("S3_SECRET_ACCESS_KEY_FILE", None)
    e["S3_SECRET_ACCESS_KEY"] = "not-the-secret"
    srv = harness.Server(files={"t_s3.lua": ROUTES}, env=e, start_timeout=15)
    with srv as s:
        r = put(s, prefix() + "x", b"data")
        body = r.json_or_none() or {}
        ok(r.status == 500 and body.get("kind") == "store"
           and body.get("code") == "SignatureDoesNotMatch" and body.get("retryable") is False,
           "a wrong secret: a store error SignatureDoesNotMatch, not retryable", r)
        ok(s.alive(), "... and the server is still up")
        ok(wait_until(lambda: readyz(s) == 503, 5), "/readyz is 503 with a store that refuses us")
        msgs = [line.get("msg", "") for line in s.log_lines()]
        ok(any("SignatureDoesNotMatch" in m or "AccessDenied" in m for m in msgs),
           "the log says why the store is unusable")
        ok("not-the-secret" not in s.stdout() + s.stderr(), "the secret is never logged")


def sput(s, key, body, query="", chunked=False, timeout=120):
    """A PUT to the streamed upload route; chunked sends it without a length."""
    c = http.client.HTTPConnection(harness.HOST, s.port, timeout=timeout)
    try:
        path = "/t/stream/" + urllib.parse.quote(key) + query
        if chunked:
            def gen():
                for i in range(0, len(body), 256 * 1024):
                    yield body[i:i + 256 * 1024]
            c.request("PUT", path, body=gen(), encode_chunked=True)
        else:
            c.request("PUT", path, body=body)
        r = c.getresponse()
        return harness.Response(r.status, harness._headers_of(r.getheaders()), r.read())
    finally:
        c.close()


@case(timeout=300)
def streamed_round_trips():
    with server() as s:
        p = prefix()
        st = s3harness.Store.from_env()
        parts0 = s.metric("glasgow_s3_requests_total", op="upload_part", status="200")
        for size, chunked in ((0, False), (1, False), (5 * MIB - 1, False), (5 * MIB + 1, False),
                              (64 * MIB, False), (5 * MIB - 1, True), (11 * MIB + 7, True)):
            data = os.urandom(size)
            want = hashlib.sha256(data).hexdigest()
            key = p + "s-%d-%s" % (size, "chunked" if chunked else "length")
            t0 = time.monotonic()
            r = sput(s, key, data, chunked=chunked)
            took = time.monotonic() - t0
            body = r.json_or_none() or {}
            ok(r.status == 200 and body.get("size") == size and body.get("sha256") == want,
               "streamed put of %d bytes%s: size and SHA-256 (%.2f s)"
               % (size, " chunked" if chunked else "", took), r)
            t0 = time.monotonic()
            g = s.request("GET", "/t/stream/" + key, timeout=120)
            took = time.monotonic() - t0
            ok(g.status == 200 and len(g.body) == size
               and hashlib.sha256(g.body).hexdigest() == want
               and g.header("content-length") == str(size),
               "piped get of %d bytes: the same SHA-256, Content-Length (%.2f s)" % (size, took),
               "status %s, %d bytes" % (g.status, len(g.body)))
            st.delete(key)
        parts = s.metric("glasgow_s3_requests_total", op="upload_part", status="200") - parts0
        # 5 MiB + 1: 2 parts; 64 MiB: 13; chunked 11 MiB + 7 in 5 MiB buffers: 3
        is_(parts, 18.0, "streamed bodies over 5 MiB went in parts, chunked ones one buffer each")
        data = os.urandom(100000)
        sput(s, p + "r", data)
        g = s.request("GET", "/t/stream/" + p + "r?first=10&last=99")
        ok(g.status == 206 and g.body == data[10:100]
           and g.header("content-range") == "bytes 10-99/100000",
           "a piped range: 206, the bytes, Content-Range", g)
        g = s.request("GET", "/t/stream/" + p + "missing")
        ok(g.status == 404 and (g.json_or_none() or {}).get("code") == "NoSuchKey",
           "get of a missing key: 404 before anything streams", g)
        r = sput(s, p + "bad", data, query="?sha256=" + "0" * 64)
        ok(r.status == 400 and (r.json_or_none() or {}).get("kind") == "digest_mismatch",
           "a streamed body that does not match its sha256: 400", r)
        r = sput(s, p + "big", os.urandom(6 * MIB), query="?sha256=" + "0" * 64)
        ok(r.status == 400, "... also in parts", r)
        r = sput(s, p + "max", data, query="?max=1000", chunked=True)
        ok(r.status == 413 and (r.json_or_none() or {}).get("code") == "too_large",
           "a chunked body past max_bytes: 413 too_large", r)
        st.delete(p + "r")
        ok(wait_until(lambda: not st.list_keys(prefix=p) and
                      not [u for u in st.list_uploads() if u[0].startswith(p)], 5),
           "nothing left in the store: no object, no multipart upload",
           st.list_keys(prefix=p), st.list_uploads())


@case(timeout=240)
def default_sizes():
    # the defaults: a known length up to 5 GiB is one PUT (72 MiB is past the
    # old 64 MiB threshold), streamed or from a string; an unknown length goes
    # in 8 MiB buffers
    e = store_env()
    del e["GLASGOW_S3_MULTIPART_THRESHOLD"], e["GLASGOW_S3_PART_SIZE"]
    with harness.Server(files={"t_s3.lua": ROUTES}, env=e, start_timeout=15) as s:
        p = prefix()
        st = s3harness.Store.from_env()
        for size, how, puts, parts, what in (
                (72 * MIB, "length", 1, 0, "72 MiB of known length: one PUT, no parts"),
                (72 * MIB, "string", 1, 0, "72 MiB from a string: one PUT, no parts"),
                (17 * MIB + 1, "chunked", 0, 3, "17 MiB + 1 chunked: three parts of up to 8 MiB")):
            key = p + "d-%d-%s" % (size, how)
            puts0 = s.metric("glasgow_s3_requests_total", op="put_object", status="200")
            parts0 = s.metric("glasgow_s3_requests_total", op="upload_part", status="200")
            data = os.urandom(size)
            if how == "string":
                r = put(s, key, data)
            else:
                r = sput(s, key, data, chunked=how == "chunked")
            body = r.json_or_none() or {}
            ok(r.status == 200 and body.get("size") == size
               and body.get("sha256") == hashlib.sha256(data).hexdigest(),
               "%s: size and SHA-256" % what, r)
            got = (s.metric("glasgow_s3_requests_total", op="put_object", status="200") - puts0,
                   s.metric("glasgow_s3_requests_total", op="upload_part", status="200") - parts0)
            is_(got, (float(puts), float(parts)), "... the store saw %d PUT and %d parts"
                % (puts, parts))
            h = st.head(key)
            ok(h.status == 200 and h.header("content-length") == str(size), "... stored whole",
               h.status)
            st.delete(key)


@case(timeout=120)
def hangups():
    with server() as s:
        p = prefix()
        st = s3harness.Store.from_env()
        big = os.urandom(64 * MIB)
        is_(put(s, p + "big", big).status, 200, "a 64 MiB object to download")
        # the client goes away mid-upload: the store transfer stops, nothing is left
        sock = socket.create_connection((harness.HOST, s.port))
        sock.sendall(("PUT /t/stream/%shangup HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n"
                      % (p, 64 * MIB)).encode())
        sock.sendall(big[:12 * MIB])
        ok(wait_until(lambda: s.metric("glasgow_s3_transfers_in_flight") >= 1, 5),
           "a streamed upload is in flight (a part going to the store)")
        time.sleep(0.3)
        sock.close()
        ok(wait_until(lambda: s.metric("glasgow_s3_transfers_in_flight") == 0, 5),
           "client gone mid-upload: no store transfer left in flight")
        ok(wait_until(lambda: not [u for u in st.list_uploads() if u[0] == p + "hangup"], 5),
           "... its multipart upload aborted", st.list_uploads())
        is_(st.head(p + "hangup").status, 404, "... and no object")
        # the client goes away mid-download
        sock = socket.create_connection((harness.HOST, s.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(("GET /t/stream/%sbig HTTP/1.1\r\nHost: t\r\n\r\n" % p).encode())
        got = 0
        while got < 2 * MIB:
            got += len(sock.recv(65536))
        ok(s.metric("glasgow_s3_transfers_in_flight") >= 1,
           "a download in flight, paused by the slow client")
        t0 = time.monotonic()
        sock.close()
        ok(wait_until(lambda: s.metric("glasgow_s3_transfers_in_flight") == 0, 3),
           "client gone mid-download: the store transfer stops at once (%.2f s)"
           % (time.monotonic() - t0))
        g = s.request("GET", "/t/stream/" + p + "big", timeout=60)
        ok(g.status == 200 and g.body == big, "the next download is whole")
        st.delete(p + "big")


@case(timeout=180)
def concurrent_transfers():
    with server() as s:
        p = prefix()
        st = s3harness.Store.from_env()
        bodies = [os.urandom(12 * MIB + i) for i in range(8)]
        results = {}

        def one(i):
            key = p + "c%d" % i
            r = sput(s, key, bodies[i], chunked=bool(i % 2))
            g = s.request("GET", "/t/stream/" + key, timeout=120)
            results[i] = (r.status, g.status, g.body == bodies[i])

        threads = harness.start_threads([lambda i=i: one(i) for i in range(8)])
        harness.join_all(threads, 150)
        is_(sorted(results.items()), [(i, (200, 200, True)) for i in range(8)],
            "8 concurrent streamed uploads and downloads on 2 workers: every byte back")
        ok(wait_until(lambda: s.metric("glasgow_s3_transfers_in_flight") == 0, 5),
           "nothing left in flight")
        for i in range(8):
            st.delete(p + "c%d" % i)


class PrivateStore:
    """A throwaway RGW of this file's own, which a case may stop and start."""

    def __enter__(self):
        self.dir = harness.mkdtemp("glasgow-s3-")
        self.port = harness.free_port()
        self.start()
        env = subprocess.run(["bash", os.path.join(harness.REPO, ".ci/rgw"), "env", self.dir,
                              str(self.port)], capture_output=True, text=True, check=True).stdout
        self.env = dict(line.split("=", 1) for line in env.splitlines() if "=" in line)
        return self

    def start(self):
        p = subprocess.run(["bash", os.path.join(harness.REPO, ".ci/rgw"), "start", self.dir,
                            str(self.port)], capture_output=True, text=True,
                           env=dict(os.environ, RGW_THROWAWAY="1"), timeout=120)
        if p.returncode != 0:
            raise RuntimeError("cannot start a private RGW: %s" % p.stderr[-1000:])

    def stop_gateway(self):
        """Stops radosgw only (the cluster, its user and objects stay; start brings it
        back): the whole cluster of a MemStore would start over with new keys."""
        with open(os.path.join(self.dir, "run", "client.rgw.pid")) as f:
            pid = int(f.read().strip())
        os.kill(pid, signal.SIGTERM)
        if not wait_until(lambda: not os.path.exists("/proc/%d" % pid), 20):
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not os.path.exists("/proc/%d" % pid), 10)

    def __exit__(self, *exc):
        subprocess.run(["bash", os.path.join(harness.REPO, ".ci/rgw"), "destroy", self.dir],
                       capture_output=True, timeout=120)
        return False


@case(timeout=240)
def store_down():
    store_env()  # the shared store's settings must be there, like every case
    with PrivateStore() as st:
        with server(env=st.env) as s:
            ok(wait_until(lambda: readyz(s) == 200, 10), "/readyz 200 with the private store up")
            is_(put(s, "down/x", b"before").status, 200, "a put works before the store stops")
            t0 = time.monotonic()
            st.stop_gateway()
            diag("store stopped in %.1f s" % (time.monotonic() - t0))
            r = put(s, "down/y", b"during", timeout=30)
            body = r.json_or_none() or {}
            ok(r.status == 503 and body.get("retryable") is True and r.header("Retry-After"),
               "a put while the store is down: 503, retryable, Retry-After", r)
            g = s.request("GET", "/t/obj/down/x", timeout=30)
            ok(g.status == 503 and (g.json_or_none() or {}).get("kind") == "unavailable",
               "a read while the store is down: 503 unavailable", g)
            ok(wait_until(lambda: readyz(s) == 503, 5), "/readyz turns 503")
            ok(s.metric("glasgow_s3_requests_total", status="error") > 0,
               "failed calls counted with status=\"error\"")
            ok(s.metric("glasgow_s3_retries_total") > 0, "... after retries")
            st.start()
            ok(wait_until(lambda: readyz(s) == 200, 20), "/readyz is 200 again once it is back",
               s.stdout()[-1500:])
            # the store stops in the middle of a streamed upload: 503 to the client
            outcome = {}

            def upload():
                sock = socket.create_connection((harness.HOST, s.port), timeout=30)

                def read_answer():
                    # read while sending, as a client must: the server answers
                    # early and closes once it has drained a bounded amount
                    res = b""
                    try:
                        while b"\r\n\r\n" not in res:
                            got = sock.recv(65536)
                            if not got:
                                break
                            res += got
                    except OSError:
                        pass
                    outcome["response"] = res

                reader = threading.Thread(target=read_answer, daemon=True)
                try:
                    sock.sendall(b"PUT /t/stream/down/mid HTTP/1.1\r\nHost: t\r\n"
                                 b"Content-Length: %d\r\n\r\n" % (16 * MIB))
                    reader.start()
                    sent = 0
                    chunk = os.urandom(MIB)
                    while sent < 16 * MIB and "response" not in outcome:
                        sock.sendall(chunk)
                        sent += MIB
                        if sent == 12 * MIB:
                            outcome["midway"] = True
                            wait_until(lambda: outcome.get("stopped"), 30)
                except OSError:
                    pass  # the server answered and closed before taking it all
                reader.join(30)
                sock.close()

            th = threading.Thread(target=upload, daemon=True)
            th.start()
            wait_until(lambda: outcome.get("midway"), 30)
            time.sleep(0.3)
            st.stop_gateway()
            outcome["stopped"] = True
            th.join(60)
            head = outcome.get("response", b"").split(b"\r\n", 1)[0]
            ok(head.startswith(b"HTTP/1.1 503"),
               "the store stopping mid-upload answers the client 503", head)
            st.start()
            ok(wait_until(lambda: readyz(s) == 200, 20), "/readyz 200 again",
               s.stdout()[-1500:])
            r = put(s, "down/z", b"after")
            is_(r.status, 200, "and a put works again", r)


if __name__ == "__main__":
    main()
