"""Keep-alive requests that arrive while the previous one on their connection waits.

A handler that waits (glasgow.sleep here; a database query in practice)
suspends its connection in libmicrohttpd. With our patches 0006 and 0007
the suspended socket stays in libmicrohttpd's edge-triggered epoll set
and the resume keeps the readiness recorded meanwhile, instead of marking
it ready and reading again: a request that arrives during the wait must
still be read and answered after the first, never left until the idle
timeout. Each case bounds the wait far below that timeout.
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import HOST, Server, case, is_, main, ms, ok, slow, wait_until  # noqa: E402

SLEEP_MS = int(ms(300))


def get(path, request_id):
    return ("GET %s HTTP/1.1\r\nHost: x\r\nX-Request-ID: %s\r\n\r\n" % (path, request_id)).encode()


def read_responses(sock, n, timeout):
    """Reads n responses (Content-Length framed) from sock; returns [(status, request id)]
    and whatever came first of a timeout or a close as the reason for fewer."""
    deadline = time.monotonic() + timeout
    buf = b""
    out = []
    while len(out) < n:
        head_end = buf.find(b"\r\n\r\n")
        if head_end >= 0:
            head = buf[:head_end].decode("latin-1").split("\r\n")
            fields = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
            length = int(fields.get("content-length", "0"))
            if len(buf) >= head_end + 4 + length:
                out.append((int(head[0].split()[1]), fields.get("x-request-id")))
                buf = buf[head_end + 4 + length:]
                continue
        left = deadline - time.monotonic()
        if left <= 0:
            return out, "timeout"
        sock.settimeout(left)
        try:
            got = sock.recv(65536)
        except socket.timeout:
            return out, "timeout"
        if not got:
            return out, "closed"
        buf += got
    return out, None


@case(timeout=60)
def request_sent_during_the_wait():
    """The second request is written while the first one's handler waits."""
    with Server(env={"GLASGOW_WORKERS": "1"}) as s:
        with socket.create_connection((HOST, s.port), timeout=5) as c:
            c.sendall(get("/v1/sleep?ms=%d" % SLEEP_MS, "ka-wait-1"))
            ok(wait_until(lambda: s.metric("http_requests_in_flight") >= 1, slow(2.0), 0.01),
               "the sleeping request is in flight")
            time.sleep(SLEEP_MS / 3e3)  # within the sleep: its connection is suspended
            c.sendall(get("/hello", "ka-wait-2"))
            got, why = read_responses(c, 2, slow(3.0))
            is_(got, [(200, "ka-wait-1"), (200, "ka-wait-2")],
                "both are answered, in order, well before the idle timeout", why)
            c.sendall(get("/hello", "ka-wait-3"))
            got, why = read_responses(c, 1, slow(3.0))
            is_(got, [(200, "ka-wait-3")], "and the connection goes on serving", why)


@case(timeout=60)
def requests_pipelined_behind_a_wait():
    """Both requests come in one write: the second is read after the first's wait."""
    with Server(env={"GLASGOW_WORKERS": "1"}) as s:
        with socket.create_connection((HOST, s.port), timeout=5) as c:
            c.sendall(get("/v1/sleep?ms=%d" % SLEEP_MS, "ka-pipe-1") + get("/hello", "ka-pipe-2"))
            got, why = read_responses(c, 2, slow(3.0))
            is_(got, [(200, "ka-pipe-1"), (200, "ka-pipe-2")], "both are answered, in order", why)


@case(timeout=60)
def waits_one_after_another():
    """Several waiting requests in turn on one connection, each written after the last
    answer: every resume finds the next request's bytes."""
    with Server(env={"GLASGOW_WORKERS": "1"}) as s:
        with socket.create_connection((HOST, s.port), timeout=5) as c:
            statuses = []
            for i in range(5):
                c.sendall(get("/v1/sleep?ms=20", "ka-turn-%d" % i))
                got, why = read_responses(c, 1, slow(3.0))
                statuses.append(got[0][0] if got else why)
            is_(statuses, [200] * 5, "five waits in turn on one connection")


if __name__ == "__main__":
    main()
