"""X-Request-ID on the errors answered before (or without) a handler, over raw sockets.

libmicrohttpd refuses some requests itself (malformed header lines, a
missing Host, a bad Content-Length, a request line or header block over its
buffer, an unsupported HTTP version, a bad chunk line or a chunk extension
over the limit): .ci/patches/libmicrohttpd/0010 lets runtime/httpd.c name
each of them. Every such answer must carry an X-Request-ID made like any
other (32 hex digits, distinct), the same id as the body's
error.request_id, and an access log line with that id and status. An
error found in the middle of a body the access handler already saw keeps
that request's id (the client's own X-Request-ID, when it sent a valid
one). Errors runtime/httpd.c finds in the headers (its limits) are checked
too, for comparison.
"""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, case, diag, is_, is_error_shape, main, ok, wait_until  # noqa: E402

H = b"Host: localhost\r\n"
HEX32 = re.compile(r"^[0-9a-f]{32}$")

# (name, raw request, expected status, who answers)
EARLY = [
    ("a header line without a colon",
     b"GET /hello HTTP/1.1\r\n" + H + b"no colon here\r\n\r\n", 400),
    ("HTTP/1.1 without Host", b"GET /hello HTTP/1.1\r\n\r\n", 400),
    ("a malformed Content-Length",
     b"POST /hello HTTP/1.1\r\n" + H + b"Content-Length: 12abc\r\n\r\n", 400),
    ("a NUL in the request line", b"GET /he\x00llo HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("a request line over libmicrohttpd's buffer",
     b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414),
    ("a header block over libmicrohttpd's buffer",
     b"GET /hello HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * 200000 + b"\r\n\r\n", 431),
    ("HTTP/2.0 in the request line", b"GET /hello HTTP/2.0\r\n" + H + b"\r\n", 505),
]


def body_id(r):
    try:
        return json.loads(r.body)["error"]["request_id"]
    except (ValueError, KeyError, TypeError):
        return "(no JSON error body)"


def access_line(s, rid):
    """The access log line of request id rid (waits for the 200 ms flush)."""
    found = []

    def look():
        found[:] = [x for x in s.log_lines() if x.get("msg") == "request" and
                    x.get("request_id") == rid]
        return found
    wait_until(look, timeout=3.0)
    return found[0] if found else None


def named(s, name, data, status, want_id=None):
    """Sends data; checks status, X-Request-ID, body id and access line. Returns the id."""
    r = s.raw(data, timeout=5.0)
    is_(r.status, status, "%s: %d" % (name, status), r.body[:200])
    rid = r.header("x-request-id")
    if want_id is None:
        ok(rid and HEX32.match(rid), "%s: X-Request-ID of 32 hex digits" % name, rid, r.headers)
    else:
        is_(rid, want_id, "%s: X-Request-ID is the request's own" % name, r.headers)
    ok(is_error_shape(r.body), "%s: the JSON error shape" % name, r.body[:200])
    is_(body_id(r), rid, "%s: error.request_id is the same id" % name)
    line = access_line(s, rid) if rid else None
    ok(line is not None, "%s: an access log line with that request_id" % name, rid)
    if line:
        is_(line.get("status"), status, "%s: ... and status %d" % (name, status), line)
        is_(line.get("client"), "127.0.0.1", "%s: ... and the client address" % name, line)
    return rid


@case
def libmicrohttpd_refusals_are_named(s):
    ids = []
    for name, data, status in EARLY:
        ids.append(named(s, name, data, status))
    ids = [i for i in ids if i]
    is_(len(set(ids)), len(ids), "every refusal has its own id")
    # a client's id is not taken from a request refused as malformed
    r = s.raw(b"GET /hello HTTP/1.1\r\n" + H + b"X-Request-ID: mine-1\r\nno colon\r\n\r\n")
    ok(r.status == 400 and HEX32.match(r.header("x-request-id") or ""),
       "a malformed request's own X-Request-ID is not echoed: a fresh one instead",
       r.status, r.headers)
    ok(s.alive() and s.get("/hello").status == 200, "the server still answers")


@case
def errors_mid_body_keep_the_request_id(s):
    put = (b"PUT /v1/greetings/bob HTTP/1.1\r\n" + H + b"Content-Type: application/json\r\n"
           b"Transfer-Encoding: chunked\r\n")
    # libmicrohttpd finds these after the access handler has seen the headers
    rid = named(s, "a malformed chunk size", put + b"\r\nzz\r\n", 400)
    diag("mid-body 400 named %s" % rid)
    named(s, "a malformed chunk size, with the client's X-Request-ID",
          put + b"X-Request-ID: client-id-42\r\n\r\nzz\r\n", 400, want_id="client-id-42")
    named(s, "a chunk extension over the limit (patch 0003)",
          put + b"X-Request-ID: client-id-43\r\n\r\n5;" + b"e" * 20000 + b"\r\nhello\r\n", 413,
          want_id="client-id-43")


@case
def runtime_refusals_still_named(s):
    # decided by runtime/httpd.c from the headers (the configured limits)
    named(s, "a request line over GLASGOW_MAX_REQUEST_LINE",
          b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414)
    named(s, "too many header fields",
          b"GET /hello HTTP/1.1\r\n" + H + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) +
          b"\r\n", 431)


@case
def counted_in_metrics(s):
    before = s.metric("http_requests_total", status="400")
    s.raw(b"GET /hello HTTP/1.1\r\n" + H + b"no colon here\r\n\r\n")
    time.sleep(0.1)
    after = s.metric("http_requests_total", status="400")
    ok(after >= before + 1, "a refusal by libmicrohttpd is counted in the request metrics",
       before, after)


if __name__ == "__main__":
    main(Server(env={"GLASGOW_ACCESS_LOG": "true"}))
