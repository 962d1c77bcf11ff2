"""Request framing at the edges, over raw sockets (issue 6, "The HTTP parser").

Every malformed request here must end in exactly one well-framed 4xx and a
closed connection: no second request smuggled behind it, no status line
twice, no worker left spinning. Valid edge cases (chunk extensions, a
request after a refused percent-escape on the same connection) must still
be served. Bodies that trickle in are cut by the minimum body rate, and the
admin listener answers probes however many idle connections it holds.
"""
import os
import re
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (HOST, Client, Server, case, diag, is_, is_error_shape, main,  # noqa: E402
                     mkdtemp, ok, request, slow, wait_until)

H = b"Host: localhost\r\n"
JSON_CT = b"Content-Type: application/json\r\n"
GREETING = b'{"greeting":"hi"}'  # 17 bytes; PUT /v1/greetings/:name takes it
STATUS_RE = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


def talk(port, data, timeout=None):
    """Sends data, then reads until the server closes or timeout passes (3 s,
    scaled by SLOW).

    Returns (all bytes read, closed?, seconds). A reset counts as closed.
    """
    if timeout is None:
        timeout = slow(3.0)
    t0 = time.monotonic()
    s = socket.create_connection((HOST, port), timeout=timeout)
    buf = b""
    closed = False
    try:
        try:
            s.sendall(data)
        except OSError:
            pass  # refused mid-send: read what came back
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                got = s.recv(65536)
            except socket.timeout:
                break
            except OSError:
                closed = True
                break
            if not got:
                closed = True
                break
            buf += got
    finally:
        s.close()
    return buf, closed, time.monotonic() - t0


def statuses(buf):
    return [int(m) for m in STATUS_RE.findall(buf)]


def refused(s, name, data, allowed=(400,)):
    """One status line, in allowed, then a close, with the JSON error shape (also
    when libmicrohttpd answers itself: .ci/patches/libmicrohttpd/0004)."""
    buf, closed, _ = talk(s.port, data)
    st = statuses(buf)
    is_(len(st), 1, "%s: exactly one status line" % name, "raw %r" % buf[:400])
    ok(st and st[0] in allowed, "%s: answered %s" % (name, " or ".join(map(str, allowed))),
       "statuses %r" % st)
    ok(closed, "%s: the connection is closed" % name)
    head, _, body = buf.partition(b"\r\n\r\n")
    ok(is_error_shape(body) and b"application/json" in head.lower(),
       "%s: the JSON error shape" % name, "body %r" % body[:200])
    return buf


def still_serving(s, name):
    ok(s.alive() and s.get("/hello", timeout=3).status == 200,
       "%s: the server still answers /hello" % name)


def put_greeting(extra, body=GREETING, version=b"HTTP/1.1"):
    return b"PUT /v1/greetings/bob " + version + b"\r\n" + H + JSON_CT + extra + b"\r\n" + body


# ---- header lines that would split the request ------------------------------------

SECOND = b"GET /hello HTTP/1.1\r\n" + H + b"\r\n"


@case
def colon_line_does_not_split(s):
    refused(s, "header line starting with ':'",
            b"GET /hello HTTP/1.1\r\n" + H + b": x\r\n" + SECOND)
    still_serving(s, "':' line")


@case
def nul_line_does_not_split(s):
    refused(s, "header line starting with NUL",
            b"GET /hello HTTP/1.1\r\n" + H + b"\x00: x\r\n" + SECOND)
    refused(s, "header line that is a NUL", b"GET /hello HTTP/1.1\r\n" + H + b"\x00\r\n" + SECOND)
    still_serving(s, "NUL line")


@case
def space_before_colon(s):
    # 0.9.75 renamed "X-Request-ID " to "X-Request-ID" and served the request
    refused(s, "'X-Request-ID : abc'",
            b"GET /hello HTTP/1.1\r\n" + H + b"X-Request-ID : abc\r\n\r\n" + SECOND)
    chunked = b"11\r\n" + GREETING + b"\r\n0\r\n\r\n"
    refused(s, "'Transfer-Encoding : chunked'",
            put_greeting(b"Transfer-Encoding : chunked\r\n", chunked) + SECOND)


@case
def obs_fold(s):
    refused(s, "obs-folded header", b"GET /hello HTTP/1.1\r\n" + H + b"X-A: a\r\n b\r\n\r\n")
    refused(s, "obs-folded Transfer-Encoding",
            put_greeting(b"Transfer-Encoding:\r\n chunked\r\n",
                         b"11\r\n" + GREETING + b"\r\n0\r\n\r\n"))


# ---- Content-Length and Host -----------------------------------------------------------

@case
def bad_content_lengths(s):
    for value in (b"-5", b"+17", b"17, 17", b"99999999999999999999999", b"0x11", b"17 17"):
        refused(s, "Content-Length: %s" % value.decode(),
                put_greeting(b"Content-Length: " + value + b"\r\n") + SECOND, allowed=(400, 413))
    still_serving(s, "bad Content-Length")


@case
def missing_host(s):
    refused(s, "no Host", b"GET /hello HTTP/1.1\r\n\r\n" + SECOND)


@case
def two_hosts(s):
    refused(s, "two Host fields", b"GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" + SECOND)
    refused(s, "two identical Host fields",
            b"GET /hello HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n" + SECOND)


@case
def bare_cr_in_target(s):
    refused(s, "bare CR in the target", b"GET /hel\rlo HTTP/1.1\r\n" + H + b"\r\n" + SECOND)
    refused(s, "NUL in the target", b"GET /hel\x00lo HTTP/1.1\r\n" + H + b"\r\n" + SECOND)


# ---- transfer codings -------------------------------------------------------------------

@case
def http10_chunked(s):
    refused(s, "HTTP/1.0 with Transfer-Encoding: chunked",
            put_greeting(b"Transfer-Encoding: chunked\r\n",
                         b"11\r\n" + GREETING + b"\r\n0\r\n\r\n", version=b"HTTP/1.0"))


@case
def chunk_extensions_accepted(s):
    body = (b"5;a=b\r\n" + GREETING[:5] + b"\r\n" + b"c;name=\"quoted\";x\r\n" + GREETING[5:] +
            b"\r\n0;last\r\n\r\n")
    data = put_greeting(b"Transfer-Encoding: chunked\r\n", body) + SECOND
    buf, _, _ = talk(s.port, data, timeout=2)
    is_(statuses(buf), [200, 200], "chunk extensions: the request and the next one answer 200",
        "raw %r" % buf[:400])
    ok(b'"text":"hi, bob!"' in buf, "chunk extensions: the body arrived whole")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@case
def long_chunk_extension_costs_nothing(s):
    pid = s.proc.pid
    head = put_greeting(b"Transfer-Encoding: chunked\r\n", b"")
    before = cpu_seconds(pid)
    t0 = time.monotonic()
    # send in pieces, and stop when the server answers: it refuses long before the end,
    # and bytes sent after its close would make the kernel reset the connection
    conn = socket.create_connection((HOST, s.port), timeout=3)
    data = head + b"5;" + b"a" * 100000
    buf = b""
    conn.setblocking(False)
    pos = 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            got = conn.recv(65536)
            if not got:
                break
            buf += got
            continue
        except BlockingIOError:
            pass
        except OSError:
            break
        if pos < len(data):
            try:
                pos += conn.send(data[pos:pos + 4096])
            except BlockingIOError:
                pass
            except OSError:
                pass
        time.sleep(0.001)
    conn.close()
    diag("sent %d of %d bytes before the answer" % (pos, len(data)))
    # the client is gone: a spinning worker would burn this whole window
    window = slow(2.0)
    time.sleep(window)
    spent = cpu_seconds(pid) - before
    elapsed = time.monotonic() - t0
    st = statuses(buf)
    is_(len(st), 1, "100 KB chunk extension: exactly one status line", "raw %r" % buf[:300])
    ok(st and st[0] in (400, 413), "100 KB chunk extension: refused with 400 or 413",
       "statuses %r" % st)
    # a spinning worker would use about the whole window; refusing costs
    # next to nothing (0.3 s is a sanitizer build's generous share of 2 s)
    ok(spent < 0.15 * window, "100 KB chunk extension: the server used %.2f s of CPU in %.1f s"
       % (spent, elapsed))
    # the same window with a normal request, for comparison
    before = cpu_seconds(pid)
    s.get("/hello")
    time.sleep(2.0)
    diag("a normal request and 2 s idle: %.2f s of CPU" % (cpu_seconds(pid) - before))
    still_serving(s, "long chunk extension")


# ---- percent-escapes and keep-alive ------------------------------------------------------

@case
def bad_escape_does_not_poison(s):
    with Client(s.port, timeout=3) as c:
        r = c.get("/hello%zz")
        is_(r.status, 400, "bad percent-escape: 400")
        ok(is_error_shape(r.body, "bad_path"), "bad percent-escape: our JSON error", r.body)
        statuses_after = [c.get("/hello").status for _ in range(3)]
        is_(statuses_after, [200, 200, 200],
            "the next requests on the same connection are served")
        r = c.get("/hello%00")
        is_(r.status, 400, "encoded NUL: 400")
        is_(c.get("/hello").status, 200, "and the connection is still clean after it")


# ---- the minimum body rate ---------------------------------------------------------------

def trickle(port, head, total, gap, timeout):
    """Sends head, then one body byte every gap seconds (total at most) until the
    server answers or closes. Returns (bytes read, closed?, seconds, bytes sent)."""
    t0 = time.monotonic()
    conn = socket.create_connection((HOST, port), timeout=timeout)
    conn.sendall(head)
    sent = 0
    buf = b""
    closed = False
    conn.settimeout(gap)
    while time.monotonic() - t0 < timeout:
        if sent < total:
            try:
                conn.sendall(b" ")
                sent += 1
            except OSError:
                closed = True
        try:
            got = conn.recv(65536)
            if not got:
                closed = True
                break
            buf += got
        except socket.timeout:
            continue
        except OSError:
            closed = True
            break
    conn.close()
    return buf, closed, time.monotonic() - t0, sent


RATE_ENV = {"GLASGOW_MIN_RATE_BYTES_PER_S": "1000", "GLASGOW_MIN_RATE_GRACE_MS": "500"}
# the grace, a sweep, and slack for a slow build; a body never cut would
# run to the client's timeout, seconds later
CUT_BOUND = 0.5 + slow(2.5)


@case(timeout=60)
def trickling_body_is_cut(_):
    with Server(env=RATE_ENV) as s:
        head = b"PUT /v1/greetings/bob HTTP/1.1\r\n" + H + JSON_CT + b"Content-Length: 200\r\n\r\n"
        buf, closed, secs, sent = trickle(s.port, head, 200, 0.1, timeout=CUT_BOUND + 5)
        st = statuses(buf)
        is_(st, [408], "a body at 10 bytes/s is answered 408 once", "raw %r" % buf[:400])
        ok(closed, "and the connection is closed")
        ok(secs < CUT_BOUND, "within the grace period and a sweep (%.1f s, %d bytes sent)" %
           (secs, sent))
        body = buf.partition(b"\r\n\r\n")[2]
        ok(is_error_shape(body, "body_too_slow"), "with our JSON error", "body %r" % body[:200])

        # a client that sends part of the body and then nothing more
        buf, closed, secs = talk(s.port, head + b'{"greet', timeout=CUT_BOUND + 5)
        is_(statuses(buf), [408], "a stalled body is answered 408", "raw %r" % buf[:300])
        ok(closed and secs < CUT_BOUND, "and closed within %.1f s" % secs)

        # a chunked body that trickles
        head_c = (b"PUT /v1/greetings/bob HTTP/1.1\r\n" + H + JSON_CT +
                  b"Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\n")
        buf, closed, secs = talk(s.port, head_c, timeout=CUT_BOUND + 5)
        is_(statuses(buf), [408], "a stalled chunked body is answered 408", "raw %r" % buf[:300])
        ok(closed and secs < CUT_BOUND, "and closed within %.1f s" % secs)

        # a body at a normal speed is not affected, nor is a slow handler without a body
        r = s.request("PUT", "/v1/greetings/bob", {"greeting": "hi"})
        is_(r.status, 200, "a normal body is served")

        def cuts():
            return [ln for ln in s.log_lines() if "body arrived slower" in ln.get("msg", "")]
        wait_until(lambda: len(cuts()) >= 3, slow(2.0))
        cut = cuts()
        is_(len(cut), 3, "each cut is logged", s.stdout()[-1500:])
        is_(s.metric("http_slow_bodies_total"), 3.0, "and counted in http_slow_bodies_total")


@case(timeout=60)
def trickling_body_over_tls_is_closed(_):
    tmp = mkdtemp("glasgow-framing-tls-")
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", key, "-out", cert], capture_output=True, text=True, timeout=30)
    ok(r.returncode == 0, "a test certificate", r.stderr)
    with Server(env=RATE_ENV, tls=(cert, key)) as s:
        ctx = ssl.create_default_context(cafile=cert)
        t0 = time.monotonic()
        conn = ctx.wrap_socket(socket.create_connection((HOST, s.port), timeout=CUT_BOUND + 5),
                               server_hostname="localhost")
        conn.sendall(b"PUT /v1/greetings/bob HTTP/1.1\r\n" + H + JSON_CT +
                     b"Content-Length: 200\r\n\r\n{")
        got = b"?"
        try:
            got = conn.recv(65536)
        except (OSError, ssl.SSLError) as e:
            got = b""
            diag("recv: %s" % e)
        secs = time.monotonic() - t0
        conn.close()
        is_(got, b"", "a stalled body over TLS: the connection is closed without an answer")
        ok(secs < CUT_BOUND, "within %.1f s" % secs)
        still_serving_tls = s.get("/hello", tls=ctx).status
        is_(still_serving_tls, 200, "the TLS listener still serves")


# ---- the admin listener --------------------------------------------------------------------

@case(timeout=60)
def admin_probe_beats_idle_connections(s):
    idle = []
    try:
        for _ in range(120):
            try:
                idle.append(socket.create_connection((HOST, s.admin_port), timeout=2))
            except OSError:
                break
        ok(len(idle) >= 100, "opened %d idle connections to the admin port" % len(idle))
        time.sleep(0.3)  # let the listener accept them all
        for path in ("/livez", "/metrics", "/livez"):
            t0 = time.monotonic()
            try:
                r = request(s.admin_port, "GET", path, timeout=slow(3.0))
                status = r.status
            except OSError as e:
                status = "%s: %s" % (type(e).__name__, e)
            secs = time.monotonic() - t0
            is_(status, 200, "%s answers behind %d idle connections" % (path, len(idle)))
            ok(secs < slow(1.0), "%s within %.0f s (%.3f s)" % (path, slow(1.0), secs))
        # slow-header clients holding connections are evicted just the same
        for c in idle[:20]:
            try:
                c.sendall(b"GET /livez HTTP/1.1\r\n")
            except OSError:
                pass
        r = request(s.admin_port, "GET", "/readyz", timeout=slow(3.0))
        ok(r.status in (200, 503), "/readyz answers too (%s)" % r.status)
    finally:
        for c in idle:
            c.close()
    still_serving(s, "admin flood")


if __name__ == "__main__":
    main(Server())
