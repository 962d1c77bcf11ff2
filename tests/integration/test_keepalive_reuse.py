"""Nothing of a request reaches the next one on the same keep-alive connection.

libmicrohttpd keeps a connection's memory pool from one request to the
next: the request line, headers and body are read into it and the response
header is written into it. Our patch 0012 makes the reset between two
requests zero only what the first request wrote, rather than the whole
pool (.ci/patches/libmicrohttpd/0012-pool-zero-what-was-written.patch;
tests/unit/test_mhd_pool.c checks the pool itself). Here a long request
full of a marker (in its target, a header, its body; body of declared
length or chunked) is followed on the same connection by short ones
(sequential and pipelined; answered by the route, by the router's 404, by
libmicrohttpd's own 400), and no answer after the first may carry the
marker, while the first echoes it (so that the route would show a leak).
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import HOST, Server, case, is_, main, ok, slow  # noqa: E402

ECHO = """
local function echo(req)
    return 200, { path = req.path, query = req.query, headers = req.headers,
                  body = req.body or "" }
end
return {
    { method = "GET", path = "/echo", handler = echo },
    { method = "POST", path = "/echo", max_body = 65536, handler = echo },
}
"""

MARK = b"LEAKME"


def long_request(chunked=False):
    target = b"/echo?q=" + MARK * 300  # 1800 bytes
    body = MARK * 1000  # 6000 bytes
    head = b"POST " + target + b" HTTP/1.1\r\nHost: x\r\nX-Fill: " + MARK * 500 + b"\r\n"
    if chunked:
        half = len(body) // 2
        framed = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:half], body[half:]))
        return head + b"Transfer-Encoding: chunked\r\n\r\n" + framed + b"0\r\n\r\n"
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


SHORT = b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"
NOT_FOUND = b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"
MALFORMED = b"GET /echo HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n"


def read_responses(sock, n, timeout):
    """Reads up to n Content-Length framed responses; returns [(status, raw bytes)]."""
    deadline = time.monotonic() + timeout
    buf = b""
    out = []
    while len(out) < n:
        head_end = buf.find(b"\r\n\r\n")
        if head_end >= 0:
            lines = buf[:head_end].split(b"\r\n")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            end = head_end + 4 + length
            if len(buf) >= end:
                out.append((int(lines[0].split()[1]), buf[:end]))
                buf = buf[end:]
                continue
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            got = sock.recv(65536)
        except (socket.timeout, OSError):
            break
        if not got:
            break
        buf += got
    return out


def exchange(port, first, *then, pipelined=False):
    """Sends first, then each of then, on one connection (all in one write when
    pipelined); returns the responses read."""
    s = socket.create_connection((HOST, port), timeout=slow(5.0))
    try:
        if pipelined:
            s.sendall(first + b"".join(then))
            return read_responses(s, 1 + len(then), slow(5.0))
        s.sendall(first)
        out = read_responses(s, 1, slow(5.0))
        for req in then:
            s.sendall(req)
            out += read_responses(s, 1, slow(5.0))
        return out
    finally:
        s.close()


def check(name, got, statuses):
    is_([st for st, _ in got], statuses, "%s: the answers" % name)
    ok(got and MARK in got[0][1], "%s: the first answer echoes the marker" % name)
    for i, (st, raw) in enumerate(got[1:], 2):
        ok(MARK not in raw, "%s: answer %d (%d) holds nothing of the first request" % (name, i, st),
           "raw %r" % raw[:300])


@case
def sequential(s):
    check("sequential", exchange(s.port, long_request(), SHORT, NOT_FOUND, SHORT),
          [200, 200, 404, 200])


@case
def pipelined(s):
    check("pipelined", exchange(s.port, long_request(), SHORT, NOT_FOUND, SHORT, pipelined=True),
          [200, 200, 404, 200])


@case
def chunked_body_first(s):
    check("chunked", exchange(s.port, long_request(chunked=True), SHORT, SHORT), [200, 200, 200])


@case
def libmicrohttpd_error_after(s):
    # libmicrohttpd answers the malformed header line itself, in the same pool
    check("own 400", exchange(s.port, long_request(), MALFORMED), [200, 400])


@case
def many_rounds(s):
    # long and short in turn: each short one comes after a long one
    sock = socket.create_connection((HOST, s.port), timeout=slow(5.0))
    leaks = 0
    answered = 0
    try:
        for _ in range(20):
            sock.sendall(long_request())
            got = read_responses(sock, 1, slow(5.0))
            sock.sendall(SHORT)
            got += read_responses(sock, 1, slow(5.0))
            answered += len(got)
            leaks += sum(MARK in raw for _, raw in got[1:])
    finally:
        sock.close()
    is_(answered, 40, "20 long and 20 short requests answered on one connection")
    is_(leaks, 0, "no short answer holds the marker")


if __name__ == "__main__":
    main(Server(files={"echo.lua": ECHO}))
