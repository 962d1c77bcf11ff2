"""HTTP basics against the repository's routes/: success paths, routing
errors, request ids, HEAD, the admin listener, the access log and start-up
configuration errors."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (GLASGOW_BIN, HOST, REPO_ROUTES, Server, case, free_port, is_,  # noqa: E402
                     is_error_shape, main, ok, raw, slow, spawn, wait_until)

HEX32 = re.compile(r"^[0-9a-f]{32}$")


@case
def hello(s):
    r = s.get("/hello")
    is_(r.status, 200, "GET /hello is 200")
    ok((r.header("content-type") or "").startswith("application/json"),
       "GET /hello has Content-Type application/json", r.header("content-type"))
    is_(r.json_or_none(), {"message": "hello"}, "GET /hello body")
    ok(HEX32.match(r.header("x-request-id") or ""), "a response without X-Request-ID gets a "
       "generated 32-hex id", r.header("x-request-id"))


@case
def greetings(s):
    r = s.request("PUT", "/v1/greetings/bob", {"greeting": "hi", "times": 2})
    is_(r.status, 200, "PUT /v1/greetings/bob is 200", r.body)
    is_(r.json_or_none(), {"name": "bob", "text": "hi hi, bob!"}, "greeting body")
    r = s.request("PUT", "/v1/greetings/al%20ice", {"greeting": "yo"})
    is_(r.status, 200, "percent-encoded path parameter, times defaulted", r.body)
    is_((r.json_or_none() or {}).get("name"), "al ice", "path parameter is percent-decoded")
    r = s.request("PUT", "/v1/greetings/bob", b'{"greeting":"hi"}',
                  {"Content-Type": "application/json; charset=utf-8"})
    is_(r.status, 200, "Content-Type with charset=utf-8 accepted", r.body)


@case
def not_found(s):
    r = s.get("/nope", {"X-Request-ID": "nf-1"})
    is_(r.status, 404, "unknown path is 404")
    ok(is_error_shape(r.body, "not_found"), "404 has the error shape with code not_found", r.body)
    is_(((r.json_or_none() or {}).get("error") or {}).get("request_id"), "nf-1",
        "404 error body carries the request id")
    ok((r.header("content-type") or "").startswith("application/json"),
       "404 Content-Type is JSON", r.header("content-type"))
    r = s.get("/hello/extra")
    is_(r.status, 404, "/hello/extra is 404")


@case
def method_not_allowed(s):
    r = s.request("POST", "/hello", b"")
    is_(r.status, 405, "POST /hello is 405")
    allow = r.header("allow") or ""
    ok("GET" in [m.strip() for m in allow.split(",")], "405 Allow lists GET", allow)
    ok(is_error_shape(r.body, "method_not_allowed"), "405 error shape", r.body)
    r = s.request("DELETE", "/v1/greetings/bob")
    is_(r.status, 405, "DELETE /v1/greetings/bob is 405")
    ok("PUT" in (r.header("allow") or ""), "Allow lists PUT", r.header("allow"))


@case
def unsupported_media_type(s):
    r = s.request("PUT", "/v1/greetings/bob", b'{"greeting":"hi"}', {"Content-Type": "text/plain"})
    is_(r.status, 415, "text/plain body on a JSON route is 415")
    ok(is_error_shape(r.body, "unsupported_media_type"), "415 error shape", r.body)
    r = s.request("PUT", "/v1/greetings/bob", b'{"greeting":"hi"}')
    is_(r.status, 415, "a body without Content-Type is 415", r.body)


@case
def openapi(s):
    r = s.get("/openapi.json")
    is_(r.status, 200, "GET /openapi.json is 200")
    doc = r.json_or_none() or {}
    ok(str(doc.get("openapi", "")).startswith("3."), "openapi version 3.x", doc.get("openapi"))
    paths = doc.get("paths") or {}
    for p in ("/hello", "/v1/greetings/{name}", "/v1/sleep"):
        ok(p in paths, "openapi.json lists %s" % p, sorted(paths))
    ok("put" in (paths.get("/v1/greetings/{name}") or {}), "greetings path has a put operation")


@case
def request_id(s):
    for rid in ("abc-123.X:y_z", "a" * 64):
        r = s.get("/hello", {"X-Request-ID": rid})
        is_(r.header("x-request-id"), rid, "well-formed X-Request-ID echoed (%d chars)" % len(rid))
    for bad in ("bad id", "a" * 65, "x/y", "ü"):
        r = s.get("/hello", {"X-Request-ID": bad.encode("utf-8").decode("latin-1")})
        got = r.header("x-request-id") or ""
        ok(r.status == 200 and HEX32.match(got), "malformed X-Request-ID %r replaced by a 32-hex "
           "id" % bad[:20], got)
    r = s.request("PUT", "/v1/greetings/bob", b"{", {"Content-Type": "application/json",
                                                     "X-Request-ID": "rid-err-7"})
    is_(((r.json_or_none() or {}).get("error") or {}).get("request_id"), "rid-err-7",
        "error body request_id matches X-Request-ID")


@case
def head(s):
    with s.client() as c:
        r = c.request("HEAD", "/hello")
        is_(r.status, 200, "HEAD /hello is 200")
        is_(r.body, b"", "HEAD has no body")
        ok((r.header("content-type") or "").startswith("application/json"),
           "HEAD has the GET Content-Type", r.header("content-type"))
        r2 = c.get("/hello")
        is_((r2.status, r2.body), (200, b'{"message":"hello"}'),
            "the connection is intact after HEAD (no stray body bytes)")
    # the same on the wire: a pipelined GET after HEAD must parse cleanly
    res = raw(s.port, b"HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n", head_request=True)
    is_(res.status, 200, "raw HEAD is 200")
    is_(res.raw.partition(b"\r\n\r\n")[2], b"", "raw HEAD: nothing after the header block")


@case
def public_listener_has_no_admin(s):
    for p in ("/metrics", "/livez", "/readyz"):
        r = s.get(p)
        is_(r.status, 404, "public %s is 404" % p)


@case
def admin(s):
    r = s.admin("/livez")
    is_(r.status, 200, "admin /livez is 200")
    r = s.admin("/readyz")
    is_(r.status, 200, "admin /readyz is 200")
    s.get("/hello")
    s.get("/nope")
    r = s.admin("/metrics")
    is_(r.status, 200, "admin /metrics is 200")
    ok((r.header("content-type") or "").startswith("text/plain"), "metrics are text/plain",
       r.header("content-type"))
    text = r.body.decode()
    m = s.metrics()
    ok(s.metric("http_requests_total", method="GET", route="/hello", status="200") >= 1,
       "http_requests_total counts GET /hello 200")
    ok(any(k.startswith("http_requests_total{") and 'status="404"' in k for k in m),
       "http_requests_total has a 404 series")
    ok(s.metric("http_request_duration_seconds_count", route="/hello") >= 1,
       "duration histogram count for /hello")
    ok('http_request_duration_seconds_bucket{route="/hello",le="+Inf"}' in text,
       "histogram has a +Inf bucket")
    les = [float(x) for x in re.findall(
        r'^http_request_duration_seconds_bucket\{route="/hello",le="([0-9.e+-]+)"\}', text, re.M)]
    counts = [int(x) for x in re.findall(
        r'^http_request_duration_seconds_bucket\{route="/hello",le="[0-9.e+-]+"\} (\d+)$',
        text, re.M)]
    ok(len(les) == 12 and les == sorted(les), "twelve finite buckets in ascending order")
    ok(counts == sorted(counts), "bucket counts are cumulative (never fall): %s" % counts)
    ok(counts and counts[-1] == s.metric("http_request_duration_seconds_count", route="/hello"),
       "the 10 s bucket holds every /hello request (none took longer)")
    for name in ("http_requests_in_flight", "glasgow_routes_generation",
                 "glasgow_routes_reloads_total", "http_header_timeouts_total"):
        ok(any(k.split("{")[0] == name for k in m), "metrics have %s" % name)
    ok(re.search(r'^glasgow_routes_generation\{hash="[0-9a-f]{64}"\} 1$', text, re.M),
       "generation gauge is 1 with the bundle hash")
    ok('glasgow_routes_reloads_total{result="failure"}' in text, "reload failure series present")
    r = s.admin("/nothing")
    is_(r.status, 404, "unknown admin path is 404")


@case
def access_log(s):
    r = s.request("PUT", "/v1/greetings/logme", {"greeting": "hi"}, {"X-Request-ID": "log-chk-1"})
    is_(r.status, 200, "request to be logged succeeded")

    def find():
        for rec in s.log_lines():
            if rec.get("msg") == "request" and rec.get("request_id") == "log-chk-1":
                return rec
        return None
    rec = wait_until(find, 3.0)
    ok(rec is not None, "an access log line with the request id appears within 3 s")
    rec = rec or {}
    for field in ("ts", "level", "msg", "request_id", "method", "route", "path", "status",
                  "duration_ms", "bytes_in", "bytes_out", "client"):
        ok(field in rec, "access log has %s" % field, rec)
    is_(rec.get("method"), "PUT", "access log method")
    is_(rec.get("route"), "/v1/greetings/:name", "access log route is the template")
    is_(rec.get("path"), "/v1/greetings/logme", "access log path")
    is_(rec.get("status"), 200, "access log status")
    is_(rec.get("bytes_in"), len(b'{"greeting": "hi"}'), "access log bytes_in")
    is_(rec.get("bytes_out"), len(r.body), "access log bytes_out")
    is_(rec.get("client"), HOST, "access log client")
    ok(isinstance(rec.get("duration_ms"), (int, float)), "duration_ms is a number")
    n = sum(1 for x in s.log_lines()
            if x.get("request_id") == "log-chk-1" and x.get("msg") == "request")
    is_(n, 1, "exactly one access line for the request")


def start_bad(env, timeout=None):
    """Starts `glasgow serve` with env; returns (exit code or None if still running after
    timeout, 5 s scaled by SLOW, stderr)."""
    if timeout is None:
        timeout = slow(5.0)
    e = {k: v for k, v in os.environ.items() if not k.startswith("GLASGOW_")}
    e.update({"GLASGOW_LISTEN": "%s:%d" % (HOST, free_port()),
              "GLASGOW_ADMIN_LISTEN": "%s:%d" % (HOST, free_port()),
              "GLASGOW_ROUTES_DIR": REPO_ROUTES})
    e.update(env)
    p = spawn([GLASGOW_BIN, "serve"], env=e, stdin=subprocess.DEVNULL,
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout)
        return p.returncode, err.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate(timeout=5)
        return None, ""


@case
def bad_config(s):
    cases = [
        {"GLASGOW_WORKERS": "abc"},
        {"GLASGOW_WORKERS": "-2"},
        {"GLASGOW_LISTEN": "nonsense"},
        {"GLASGOW_LISTEN": "127.0.0.1:99999"},
        {"GLASGOW_ADMIN_LISTEN": "localhost"},
        {"GLASGOW_MAX_BODY_BYTES": "-1"},
        {"GLASGOW_HEADER_TIMEOUT_MS": "10x"},
        {"GLASGOW_MAX_HEADERS": ""},
        {"GLASGOW_ACCESS_LOG": "maybe"},
        {"GLASGOW_LOG_LEVEL": "loud"},
        {"GLASGOW_TLS_CERT_FILE": "/nonexistent/cert.pem"},
    ]
    for env in cases:
        var = next(iter(env))
        rc, err = start_bad(env)
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        ok(rc == 1 and var in err and len(lines) == 1,
           "%s=%r: exit 1 with a one-line stderr naming it" % (var, env[var]),
           "exit %r, stderr %r" % (rc, err[:300]))


if __name__ == "__main__":
    main(Server())
