"""Process and connection life cycle: graceful SIGTERM drain, the header
timeout (slowloris), idle keep-alive, and the per-IP connection limit."""
import os
import select
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (HOST, Client, Server, case, diag, is_, join_all, main, ms, ok,  # noqa: E402
                     slow, start_threads, wait_until)


@case(timeout=60)
def sigterm_drains_in_flight_requests():
    n = 20
    # The sleeps outlast the checks made during the drain (readyz, a new
    # connection) by seconds; the grace outlasts the sleeps.
    sleep_ms = int(ms(1500)) + 2000
    grace_ms = sleep_ms + int(ms(3000))
    with Server(env={"GLASGOW_SHUTDOWN_GRACE_MS": str(grace_ms)}) as s:
        results = [None] * n

        def sleeper(i):
            t0 = time.monotonic()
            try:
                with Client(s.port, timeout=sleep_ms / 1e3 + slow(8)) as c:
                    r = c.get("/v1/sleep?ms=%d" % sleep_ms)
                    results[i] = (r.status, time.monotonic() - t0, r.header("connection"))
            except Exception as e:  # noqa: BLE001
                results[i] = ("error %r" % e, time.monotonic() - t0, None)

        threads = start_threads([lambda i=i: sleeper(i) for i in range(n)])
        accepted = wait_until(lambda: s.metric("http_requests_in_flight") >= n, slow(3.0), 0.02)
        ok(accepted, "all %d sleeps in flight before SIGTERM" % n,
           s.metric("http_requests_in_flight"))
        time.sleep(0.1)
        t_term = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)

        # readyz must turn 503 while the sleeps are still running
        ready = []
        deadline = time.monotonic() + slow(1.0)
        while time.monotonic() < deadline:
            try:
                ready.append(s.admin("/readyz", timeout=slow(0.5)).status)
            except OSError as e:
                ready.append(repr(e))
            if ready[-1] == 503:
                break
            time.sleep(0.02)
        is_(ready[-1] if ready else None, 503, "/readyz answers 503 during the drain",
            "readyz answers seen: %r" % ready[:10])
        live = None
        try:
            live = s.admin("/livez", timeout=slow(0.5)).status
        except OSError as e:
            live = repr(e)
        is_(live, 200, "/livez still 200 during the drain")

        # a new connection during the drain is not served (refused, reset or closed promptly)
        t0 = time.monotonic()
        outcome = None
        prompt = slow(0.5)
        try:
            c = socket.create_connection((HOST, s.port), timeout=prompt)
            c.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            c.settimeout(prompt)
            data = c.recv(4096)
            outcome = "served %r" % data[:40] if data else "closed"
            c.close()
        except ConnectionRefusedError:
            outcome = "refused"
        except (ConnectionResetError, BrokenPipeError):
            outcome = "reset"
        except socket.timeout:
            outcome = "hung"
        dt = time.monotonic() - t0
        ok(outcome in ("refused", "reset", "closed") and dt < prompt,
           "a new connection during the drain is refused or closed promptly, not left hanging",
           "outcome %s after %.2f s" % (outcome, dt))

        join_all(threads, sleep_ms / 1e3 + slow(5))
        is_([r[0] if r else None for r in results], [200] * n,
            "every one of the %d in-flight requests completed with 200" % n)
        bound = sleep_ms / 1e3 + slow(2.0)
        try:
            rc = s.proc.wait(timeout=bound + 2)
        except Exception:  # noqa: BLE001
            rc = None
        t_exit = time.monotonic() - t_term
        is_(rc, 0, "the process exits 0 after the drain")
        ok(rc is not None and t_exit < bound, "and within %.1f s of SIGTERM, once the %d ms "
           "sleeps are done, not at the end of the grace (%.2f s)" % (bound, sleep_ms, t_exit))
        out = s.stdout()
        ok("SIGTERM" in out and "stopped" in out, "the log records the drain and the stop")
        # a server that ends unasked in a test run says who stopped it
        ok("SIGTERM received from pid %d: draining" % os.getpid() in out,
           "the drain line names the sender's pid (%d)" % os.getpid())
        lines = [x for x in s.log_lines() if x.get("msg") == "request" and
                 x.get("route") == "/v1/sleep"]
        is_(len(lines), n, "an access log line for each drained request was flushed before exit")


@case(timeout=30)
def sigterm_grace_period_is_bounded():
    grace = int(ms(500))
    handler_ms = int(ms(5000))  # ten graces
    with Server(env={"GLASGOW_SHUTDOWN_GRACE_MS": str(grace)}) as s:
        idle = Client(s.port, timeout=5)
        is_(idle.get("/hello").status, 200, "an idle keep-alive connection is open")
        results = []

        def sleeper():
            try:
                results.append(s.get("/v1/sleep?ms=%d" % handler_ms,
                                     timeout=handler_ms / 1e3 + 3).status)
            except Exception as e:  # noqa: BLE001
                results.append(type(e).__name__)
        threads = start_threads([sleeper] * 3)
        ok(wait_until(lambda: s.metric("http_requests_in_flight") >= 3, slow(3.0), 0.02),
           "three long handlers in flight")
        t0 = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        bound = grace / 1e3 + slow(1.0)
        try:
            rc = s.proc.wait(timeout=bound + 3)
        except Exception:  # noqa: BLE001
            rc = None
        dt = time.monotonic() - t0
        is_(rc, 0, "exit status 0 when the grace period cuts requests off",
            "stderr: " + s.stderr()[-600:])
        ok(rc is not None and dt < bound, "exit within %.1f s with GLASGOW_SHUTDOWN_GRACE_MS=%d "
           "(%.2f s), despite %d ms handlers and an idle keep-alive connection" %
           (bound, grace, dt, handler_ms))
        join_all(threads, slow(5))
        ok(len(results) == 3 and 200 not in results,
           "the cut-off requests did not get a 200", results)
        diag("cut-off requests saw: %r" % results)
        idle.close()


def slow_client(port, step, payload, max_time):
    """Sends payload one byte every `step` seconds; returns (outcome, seconds, bytes received)."""
    s = socket.create_connection((HOST, port), timeout=2)
    t0 = time.monotonic()
    got = b""
    outcome = "timeout"
    try:
        for i in range(10 ** 6):
            if time.monotonic() - t0 > max_time:
                break
            if i < len(payload):
                try:
                    s.sendall(payload[i:i + 1])
                except (BrokenPipeError, ConnectionResetError):
                    outcome = "reset"
                    break
            r, _, _ = select.select([s], [], [], step)
            if r:
                try:
                    chunk = s.recv(4096)
                except ConnectionResetError:
                    outcome = "reset"
                    break
                if not chunk:
                    outcome = "closed"
                    break
                got += chunk
    finally:
        s.close()
    return outcome, time.monotonic() - t0, got


@case(timeout=40)
def slowloris_is_disconnected():
    env = {"GLASGOW_HEADER_TIMEOUT_MS": "1000"}
    with Server(env=env) as s:
        before = s.metric("http_header_timeouts_total")
        payload = b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
        normal = []
        stop = threading.Event()

        def normal_client():
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    st = s.get("/hello", timeout=slow(2)).status
                except Exception as e:  # noqa: BLE001
                    st = repr(e)
                normal.append((st, time.monotonic() - t0))
                time.sleep(0.1)

        nt = start_threads([normal_client])
        res = {}

        # the header timeout stays 1 s; what a slow build stretches is the
        # server's reaction to it
        bound = 1.0 + slow(1.5)

        def run_slow(key, step, data):
            res[key] = slow_client(s.port, step, data, bound + 3.5)

        ts = start_threads([lambda: run_slow("one byte / 250 ms", 0.25, payload),
                            lambda: run_slow("one byte / 200 ms", 0.2, payload),
                            lambda: run_slow("silent after connect", 0.25, b""),
                            lambda: run_slow("partial request line", 0.3, b"GET /hel")])
        join_all(ts, bound + 8)
        stop.set()
        join_all(nt, 5)
        for key, (outcome, dt, got) in sorted(res.items()):
            ok(outcome in ("closed", "reset") and dt <= bound,
               "slowloris (%s) disconnected within %.1f s" % (key, bound),
               "outcome %s after %.2f s" % (outcome, dt))
            diag("%s: %s after %.2f s, received %r" % (key, outcome, dt, got[:60]))
            if got:
                ok(got.startswith(b"HTTP/1.1 408"), "%s: anything sent before closing is a 408" %
                   key, got[:80])
        ok(normal and all(st == 200 for st, _ in normal),
           "a normal client got /hello 200 throughout (%d requests)" % len(normal),
           [x for x in normal if x[0] != 200][:5])
        ok(all(dt < slow(0.5) for _, dt in normal), "each normal /hello under %d ms" %
           (slow(0.5) * 1000), max((dt for _, dt in normal), default=None))
        after = wait_until(lambda: s.metric("http_header_timeouts_total") >= before + 4, slow(2.0))
        ok(after, "http_header_timeouts_total increased by the 4 slow clients",
           "before %s, after %s" % (before, s.metric("http_header_timeouts_total")))
        is_(s.get("/hello").status, 200, "/hello still 200 afterwards")


@case(timeout=30)
def idle_keepalive_connection_survives():
    # The header timeout (1 s) covers a request being sent, not an idle keep-alive
    # connection between requests; that one is governed by the idle timeout.
    with Server(env={"GLASGOW_HEADER_TIMEOUT_MS": "1000", "GLASGOW_IDLE_TIMEOUT_MS": "5000"}) as s:
        with Client(s.port, timeout=5) as c:
            r1 = c.get("/hello")
            is_(r1.status, 200, "first request on a keep-alive connection")
            sock1 = c.sock
            time.sleep(1.6)
            r2 = c.get("/hello")
            is_(r2.status, 200, "second request after 1.6 s idle (> header timeout) works")
            ok(c.sock is sock1, "the second request used the same connection")


@case(timeout=30)
def idle_timeout_closes_connection():
    with Server(env={"GLASGOW_HEADER_TIMEOUT_MS": "1000", "GLASGOW_IDLE_TIMEOUT_MS": "1000"}) as s:
        c = socket.create_connection((HOST, s.port), timeout=5)
        c.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b'{"message":"hello"}' not in data:
            chunk = c.recv(4096)
            if not chunk:
                break
            data += chunk
        ok(b" 200 " in data, "first response 200")
        t0 = time.monotonic()
        c.settimeout(slow(5))
        try:
            rest = c.recv(4096)
            outcome = "closed" if not rest else "data %r" % rest[:40]
        except socket.timeout:
            outcome = "still open"
        except ConnectionResetError:
            outcome = "closed"
        dt = time.monotonic() - t0
        c.close()
        ok(outcome == "closed" and dt < slow(4.5),
           "an idle keep-alive connection is closed by the idle and header timeouts (%.2f s)" % dt,
           outcome)


@case(timeout=30)
def per_ip_connection_limit():
    with Server(env={"GLASGOW_MAX_CONNS_PER_IP": "5"}) as s:
        rejected0 = s.metric("http_connections_rejected_total")
        clients = [Client(s.port, timeout=3) for _ in range(5)]
        try:
            statuses = [c.get("/hello").status for c in clients]
            is_(statuses, [200] * 5, "5 concurrent keep-alive connections are served")
            res = s.raw(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", timeout=2)
            ok(res.status is None and res.outcome in ("closed", "reset"),
               "the 6th concurrent connection is refused or closed without an answer",
               "outcome %s, status %s" % (res.outcome, res.status))
            ok(s.metric("http_connections_rejected_total") >= rejected0 + 1,
               "http_connections_rejected_total counts it")
            statuses = [c.get("/hello").status for c in clients]
            is_(statuses, [200] * 5, "the 5 open connections keep working")
            clients[0].close()
            got = wait_until(lambda: s.get("/hello", timeout=slow(1)).status == 200, slow(2.0), 0.05)
            ok(got, "after one closes, a new connection is accepted again")
            admin = s.admin("/livez")
            is_(admin.status, 200, "the admin listener is not subject to the public per-IP limit")
        finally:
            for c in clients:
                c.close()


if __name__ == "__main__":
    main()
