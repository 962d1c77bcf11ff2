"""What a hostile-client probe found answered wrongly at the HTTP layer, over raw sockets.

Each case failed before its fix (README, "Hostile-client tests"):

- a malformed request line (one token, a leading space, a tab between its
  parts, too many empty lines before it) was closed without any answer by
  libmicrohttpd; .ci/patches/libmicrohttpd/0011 answers 400 with the JSON
  error body and X-Request-ID, then closes; up to 8 empty lines before the
  request line are ignored (RFC 9112 2.2).

Run by hand as any integration file:
GLASGOW_BIN=build/glasgow python3 tests/integration/test_hostile_http.py
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, case, is_, is_error_shape, main, ok  # noqa: E402

H = b"Host: localhost\r\n"
HEX32 = re.compile(r"^[0-9a-f]{32}$")
HELLO = b"GET /hello HTTP/1.1\r\n" + H + b"\r\n"


def body_id(r):
    try:
        return json.loads(r.body)["error"]["request_id"]
    except (ValueError, KeyError, TypeError):
        return "(no JSON error body)"


def refused(s, name, data, status, code=None):
    """Sends data on a fresh connection; checks a whole `status` answer with the JSON error body,
    an X-Request-ID of 32 hex digits that the body names too, and, for a 400 from
    libmicrohttpd, the close."""
    r = s.raw(data, timeout=5.0)
    ok(r.outcome == "response" and r.status == status and is_error_shape(r.body, code),
       "%s: %d with the JSON error body" % (name, status), "got: %r" % (r,))
    rid = r.header("x-request-id")
    ok(rid and HEX32.match(rid) and body_id(r) == rid,
       "%s: X-Request-ID, the same as the body's request_id" % name, rid, body_id(r))
    return r


def still_serving(s, after):
    r = s.raw(HELLO, timeout=5.0)
    is_(r.status, 200, "the server still answers after %s" % after, r)


# ---- 1. malformed request lines: 400, not a bare close (patch 0011) -------------------------------

@case
def malformed_request_lines_get_400(s):
    for name, data in (
        ("a request line of one token", b"GARBAGE\r\n\r\n"),
        ("a request line of one standard method", b"GET\r\n\r\n"),
        ("a request line starting with a space", b" GET /hello HTTP/1.1\r\n" + H + b"\r\n"),
        ("tabs between the parts", b"GET\t/hello\tHTTP/1.1\r\n" + H + b"\r\n"),
        ("an unknown method and no version", b"FOO /hello\r\n" + H + b"\r\n"),
        ("a NUL after an unknown method", b"FOO /he\x00llo HTTP/1.1\r\n" + H + b"\r\n"),
        ("a bare LF before the request line", b"\nGET /hello HTTP/1.1\r\n" + H + b"\r\n"),
        ("9 empty lines before the request line", b"\r\n" * 9 + HELLO),
    ):
        r = refused(s, name, data, 400, "bad_request")
        is_(r.header("connection"), "close", "%s: and the connection closes" % name)
    still_serving(s, "the malformed request lines")


@case
def a_few_empty_lines_are_ignored(s):
    for n in (1, 2, 8):
        r = s.raw(b"\r\n" * n + HELLO, timeout=5.0)
        is_(r.status, 200, "%d empty line(s) before the request line are ignored" % n, r)
    # on a keep-alive connection too: the CRLF some clients add after a body
    c = s.client()
    try:
        is_(c.request("GET", "/hello").status, 200, "keep-alive: the first request")
        c.sock.sendall(b"\r\n\r\n")
        is_(c.request("GET", "/hello").status, 200,
            "keep-alive: the next request after two empty lines")
    finally:
        c.close()


if __name__ == "__main__":
    main(Server())
