"""What a hostile-client probe found answered wrongly at the HTTP layer, over raw sockets.

Each case failed before its fix (README, "Hostile-client tests"):

- a malformed request line (one token, a leading space, a tab between its
  parts, too many empty lines before it) was closed without any answer by
  libmicrohttpd; .ci/patches/libmicrohttpd/0011 answers 400 with the JSON
  error body and X-Request-ID, then closes; up to 8 empty lines before the
  request line are ignored (RFC 9112 2.2).
- with "Expect: 100-continue", a request the app refuses whatever its body
  (a Content-Type that is not JSON on a JSON route: 415; no Authorization
  on a route declared auth = "bearer": 401) got "100 Continue" first, so
  the client sent a body only to have it refused; runtime/httpd.c
  (check_expect) now answers those at once, like 404, 405 and 413.
- an encoded slash (%2F) in a path was a '/' for the router; the router now
  matches the path as sent, segment by segment, and decodes each parameter
  after (runtime/router.c, router_path_of_target).

Run by hand as any integration file:
GLASGOW_BIN=build/glasgow python3 tests/integration/test_hostile_http.py
"""
import json
import os
import re
import socket
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


# ---- 2. Expect: 100-continue: a final answer instead of 100 when the headers decide -------------

E = b"Expect: 100-continue\r\n"
JSON = b"Content-Type: application/json\r\n"
BODY5 = b"Content-Length: 5\r\n"


def no_continue(s, name, data, status, code):
    """Sends headers that announce a body and wait for 100; the final answer must come
    instead of a 100 Continue, without the body ever being sent."""
    r = refused(s, name, data, status, code)
    ok(not r.raw.startswith(b"HTTP/1.1 100"), "%s: no 100 Continue before it" % name, r.raw[:80])
    return r


@case
def expect_refused_on_the_headers(s):
    put = b"PUT /v1/greetings/bob HTTP/1.1\r\n" + H + E
    no_continue(s, "Expect, no route", b"POST /nope HTTP/1.1\r\n" + H + E + JSON + BODY5 + b"\r\n",
                404, "not_found")
    no_continue(s, "Expect, a method the path does not take",
                b"POST /hello HTTP/1.1\r\n" + H + E + BODY5 + b"\r\n", 405, "method_not_allowed")
    no_continue(s, "Expect, a Content-Length over the route's limit",
                put + JSON + b"Content-Length: 99999999\r\n\r\n", 413, "body_too_large")
    no_continue(s, "Expect, text/plain on a JSON route",
                put + b"Content-Type: text/plain\r\n" + BODY5 + b"\r\n", 415,
                "unsupported_media_type")
    no_continue(s, "Expect, no Content-Type on a JSON route", put + BODY5 + b"\r\n", 415,
                "unsupported_media_type")
    r = no_continue(s, "Expect, no Authorization on a bearer route",
                    b"PATCH /v1/buckets/b1 HTTP/1.1\r\n" + H + E + JSON + BODY5 + b"\r\n", 401,
                    "unauthenticated")
    is_(r.header("www-authenticate"), 'Bearer realm="glasgow"', "  with the bearer challenge")
    still_serving(s, "the refusals on Expect")


def recv_until(c, got, marker):
    """Reads from socket c onto got until marker is in it or the peer closes."""
    while marker not in got:
        more = c.recv(4096)
        if not more:
            break
        got += more
    return got


@case
def expect_continue_when_the_body_matters(s):
    """Where the answer depends on the body (or on the app), 100 Continue still comes first."""
    for name, data in (
        ("JSON on a JSON route", b"PUT /v1/greetings/bob HTTP/1.1\r\n" + H + E + JSON + BODY5),
        ("a JSON type with a parameter the app checks",
         b"PUT /v1/greetings/bob HTTP/1.1\r\n" + H + E +
         b"Content-Type: application/json; charset=latin1\r\n" + BODY5),
        ("a bearer route with an Authorization field",
         b"PATCH /v1/buckets/b1 HTTP/1.1\r\n" + H + E + JSON + BODY5 +
         b"Authorization: Bearer x\r\n"),
    ):
        r = s.raw(data + b"\r\n", timeout=1.0)
        ok(r.raw.startswith(b"HTTP/1.1 100"), "Expect, %s: 100 Continue" % name, r.raw[:80])
    # the whole exchange still works: 100, then the body, then the answer
    body = b'{"greeting":"hi"}'
    with socket.create_connection(("127.0.0.1", s.port), timeout=5.0) as c:
        c.sendall(b"PUT /v1/greetings/bob HTTP/1.1\r\n" + H + E + JSON +
                  b"Content-Length: %d\r\n\r\n" % len(body))
        got = recv_until(c, b"", b"\r\n\r\n")
        ok(got.startswith(b"HTTP/1.1 100"), "Expect, a good request: 100 Continue", got[:80])
        c.sendall(body)
        got = recv_until(c, got, b'"text"')
        ok(b"HTTP/1.1 200" in got and b"hi, bob!" in got, "  then the body, then 200", got[-200:])

# ---- 3. %2F is part of its segment, not a separator ----------------------------------------------

def greet(s, target):
    body = b'{"greeting":"hi"}'
    r = s.raw(b"PUT " + target + b" HTTP/1.1\r\n" + H + JSON +
              b"Content-Length: %d\r\n\r\n" % len(body) + body, timeout=5.0)
    try:
        return r.status, json.loads(r.body)
    except ValueError:
        return r.status, r.body


@case
def encoded_slash_stays_in_its_segment(s):
    is_(greet(s, b"/v1/greetings/a%2Fb"), (200, {"name": "a/b", "text": "hi, a/b!"}),
        "/v1/greetings/a%2Fb routes to /v1/greetings/:name with name \"a/b\"")
    is_(greet(s, b"/v1/greetings/a%2fb%20c"), (200, {"name": "a/b c", "text": "hi, a/b c!"}),
        "a lower-case %2f too, and the other escapes of the value are decoded")
    is_(greet(s, b"/v1/greetings/a%252Fb"), (200, {"name": "a%2Fb", "text": "hi, a%2Fb!"}),
        "%25 decodes once: %252F is the text %2F")
    st, body = greet(s, b"/v1/greetings/a/b")
    is_(st, 404, "an unencoded slash still separates segments", body)
    st, body = greet(s, b"/v1/%67reetings/bob")
    is_(st, 200, "an escape of another character still matches a literal segment", body)
    r = s.raw(b"GET /hello%2F HTTP/1.1\r\n" + H + b"\r\n", timeout=5.0)
    ok(r.status == 404 and is_error_shape(r.body, "not_found"),
       "/hello%2F is not /hello/ split in two: 404", r)


if __name__ == "__main__":
    main(Server())
