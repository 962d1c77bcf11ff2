"""Pipelined statements (GLASGOW_DB_PIPELINE_DEPTH) through db.query, end to end.

One worker with a pool of one connection, four statements deep, so that
concurrent requests' statements queue on that one connection (each its own
Sync). Checked: concurrent requests are answered with their own results,
and a failing statement fails only its own request; a request that ends
while its statement is in flight or queued (client gone, request deadline)
leaves the connection usable (the same backend serves the next request; the
old pool closed it); a connection lost under several queued statements
answers each of their requests 503, retryable, and the pool reconnects; a
transaction gets the connection once the pipeline drains; SIGTERM answers
the statements queued before it; with the depth set to 1 nothing is
pipelined, and a bad depth stops start-up.
"""
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import case, is_, main, ok, wait_until  # noqa: E402
import dbharness as dbh  # noqa: E402

dbh.skip_without_pg()

ROUTES = r'''
local db = require "glasgow.db"
local function one(sql, ...)
    return 200, db.call(sql, ...)[1]
end
return {
    {
        method = "GET", path = "/t/pid",
        handler = function() return one("SELECT pg_backend_pid() AS pid") end,
    },
    {
        method = "GET", path = "/t/div",
        query = { type = "object", properties = { d = { type = "integer" } }, required = { "d" } },
        handler = function(req) return one("SELECT 100 / $1::int AS q", req.query.d) end,
    },
    {
        method = "GET", path = "/t/nap",
        -- tag: a statement text of its own per test case (a statement that
        -- was slow on a connection has nothing queued behind it for a while)
        query = { type = "object", required = { "s", "tag" },
                  properties = { s = { type = "number" }, tag = { type = "integer" } } },
        handler = function(req)
            return one("SELECT pg_sleep($1::float8) IS NULL AS slept, pg_backend_pid() AS pid"
                       .. " -- " .. req.query.tag, req.query.s)
        end,
    },
    {
        method = "GET", path = "/t/tx",
        handler = function()
            return 200, db.transaction(function(tx)
                return { x = tx.call("SELECT txid_current() AS x")[1].x,
                         pid = tx.call("SELECT pg_backend_pid() AS pid")[1].pid }
            end)
        end,
    },
}
'''

ENV = {"GLASGOW_WORKERS": "1", "GLASGOW_DB_POOL_SIZE": "1", "GLASGOW_DB_PIPELINE_DEPTH": "4",
       "GLASGOW_REQUEST_TIMEOUT_MS": "1500"}


def get(fx, path, timeout=10.0):
    return fx.server.get(path, timeout=timeout)


def pid(fx):
    r = get(fx, "/t/pid")
    body = r.json_or_none() or {}
    return body.get("pid")


def pipelined(fx):
    return fx.server.metrics().get("glasgow_db_pipelined_total", 0)


def open_socks(fx, n):
    return [socket.create_connection(("127.0.0.1", fx.server.port), timeout=5) for _ in range(n)]


def burst(fx, paths, hang_up=(), hang_up_after=0.15, timeout=10.0):
    """Sends GET for each path on its own connection, back to back (so that
    the statements reach the pool within a millisecond or two of each other);
    closes the connections whose index is in hang_up after hang_up_after s
    without reading; returns the other responses (None for those closed)."""
    socks = open_socks(fx, len(paths))
    for s, path in zip(socks, paths):
        s.sendall(("GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path).encode())
    if hang_up:
        time.sleep(hang_up_after)
        for i in hang_up:
            socks[i].close()
    out = []
    for i, s in enumerate(socks):
        if i in hang_up:
            out.append(None)
            continue
        out.append(harness.read_response(s, timeout))
        s.close()
    return out


def send_all(socks, paths):
    for sock, path in zip(socks, paths):
        sock.sendall(("GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path).encode())


def queue_up(fx, paths, need, settle=0.1, attempts=5):
    """Sends paths (the first a nap the others queue behind) on connections of
    their own, back to back; returns the open sockets once at least `need`
    statements went out behind another. The 20 ms window after the first
    statement can be missed on a loaded machine (or a sanitizer build): then
    the answers are read and it tries again (five times at most). Returns
    (socks, queued)."""
    for _ in range(attempts):
        before = pipelined(fx)
        socks = open_socks(fx, len(paths))
        send_all(socks, paths)
        time.sleep(settle)
        if pipelined(fx) >= before + need:
            return socks, True
        for sock in socks:
            harness.read_response(sock, 10)
            sock.close()
    return open_socks(fx, 0), False


def code_of(r):
    body = r.json_or_none() or {}
    return (body.get("error") or {}).get("code")


TAG = [0]


def nap(s):
    return "/t/nap?s=%s&tag=%d" % (s, TAG[0])


def warm(fx):
    """Runs each test statement a few times, so the connection knows them as fast."""
    TAG[0] += 1
    for _ in range(3):
        get(fx, nap(0))
        get(fx, "/t/div?d=1")
        get(fx, "/t/pid")


@case
def concurrent_statements_share_the_connection(fx):
    warm(fx)
    home = pid(fx)
    divisors = [1, 2, 0, 4, 5, 0, 10, 20]
    socks, queued = queue_up(fx, [nap(0.3)] + ["/t/div?d=%d" % d for d in divisors], 3)
    ok(queued, "statements were queued behind others")
    res = [harness.read_response(sock, 10) for sock in socks]
    for sock in socks:
        sock.close()
    if not res:
        return
    ok(res[0].status == 200 and (res[0].json_or_none() or {}).get("pid") == home,
       "the first statement runs on the pool's one backend", res[0].status, res[0].body[:200])
    for d, r in zip(divisors, res[1:]):
        if d == 0:
            ok(r.status == 400 and code_of(r) == "invalid_input",
               "d=0: the division by zero answers 400 invalid_input", r.status, r.body[:200])
        else:
            ok(r.status == 200 and (r.json_or_none() or {}).get("q") == 100 // d,
               "d=%d: its own quotient, untouched by the failures beside it" % d,
               r.status, r.body[:200])
    is_(pid(fx), home, "the same backend serves on")


@case
def client_gone_while_in_flight_keeps_the_connection(fx):
    warm(fx)
    home = pid(fx)
    burst(fx, [nap(0.6)], hang_up=(0,))
    time.sleep(0.8)  # the statement finishes on the server meanwhile
    is_(pid(fx), home, "after a client left during its statement, the same backend serves on")
    r = get(fx, "/t/div?d=4")
    is_((r.json_or_none() or {}).get("q"), 25, "... with the next request's own result")


@case
def client_gone_while_queued_keeps_the_connection(fx):
    warm(fx)
    home = pid(fx)
    socks, queued = queue_up(fx, [nap(0.5), "/t/div?d=50", "/t/div?d=25"], 2)
    ok(queued, "the two statements were queued behind the first")
    if not queued:
        return
    time.sleep(0.05)
    socks[1].close()  # its client leaves while its statement is queued
    a, c = harness.read_response(socks[0], 10), harness.read_response(socks[2], 10)
    socks[0].close()
    socks[2].close()
    ok(a.status == 200 and (a.json_or_none() or {}).get("pid") == home,
       "the statement in front is answered", a.status, a.body[:200])
    ok(c.status == 200 and (c.json_or_none() or {}).get("q") == 4,
       "the one queued behind the withdrawn one gets its own result", c.status, c.body[:200])
    is_(pid(fx), home, "the same backend serves on")


@case
def request_deadline_while_in_flight_keeps_the_connection(fx):
    warm(fx)
    home = pid(fx)
    r = get(fx, nap(1.8))
    is_(r.status, 504, "a statement that outlives the 1.5 s request deadline: 504", r.body[:200])
    time.sleep(0.6)
    is_(pid(fx), home, "the connection that carried it serves on (same backend)")


@case
def lost_connection_fails_each_queued_request(fx):
    warm(fx)
    home = pid(fx)
    socks, queued = queue_up(fx, [nap(2), "/t/div?d=2", "/t/div?d=5"], 2, settle=0.3)
    ok(queued, "two statements are queued behind the first")
    if not queued:
        return
    killed = fx.db.sql("SELECT pg_terminate_backend(%d)" % int(home))
    is_(killed, "t", "the backend was terminated from outside")
    for name, s in zip(["the running statement", "a queued one", "another queued one"], socks):
        r = harness.read_response(s, 10)
        s.close()
        ok(r.status == 503 and code_of(r) == "unavailable" and r.header("retry-after") == "1",
           "%s: 503 unavailable with Retry-After: 1" % name, r.status, r.body[:200])
    ok(wait_until(lambda: get(fx, "/t/div?d=10").status == 200, 10),
       "the pool reconnects and serves on")
    ok(pid(fx) != home, "... on a new backend")


@case
def transaction_waits_for_the_pipeline_to_drain(fx):
    warm(fx)
    res = burst(fx, [nap(0.3), "/t/div?d=1", "/t/div?d=2", "/t/tx", "/t/div?d=5"])
    ok(all(r.status == 200 for r in res), "statements and a transaction side by side all answer "
       "200", [r.status for r in res])
    tx = res[3].json_or_none() or {}
    ok(isinstance(tx.get("x"), (int, float)), "the transaction ran on the drained connection", tx)
    is_((res[4].json_or_none() or {}).get("q"), 20, "the statement after it is answered")
    ok(fx.server.metrics().get("glasgow_db_pool_in_use", -1) == 0,
       "no connection is left lent out")


@case
def depth_one_pipelines_nothing(fx):
    with dbh.DbServer(fx.db, env=dict(ENV, GLASGOW_DB_PIPELINE_DEPTH="1"),
                      extra_routes={"t_pipe.lua": ROUTES}) as s:
        for _ in range(3):
            s.get(nap(0))
            s.get("/t/div?d=1")
        old = fx.server
        fx.server = s
        try:
            res = burst(fx, [nap(0.2)] + ["/t/div?d=%d" % d for d in (1, 2, 4, 5)])
        finally:
            fx.server = old
        ok(all(r.status == 200 for r in res), "with depth 1 the statements are answered")
        is_(s.metrics().get("glasgow_db_pipelined_total", 0), 0, "... and none was pipelined")


@case
def drain_answers_queued_statements(fx):
    with dbh.DbServer(fx.db, env=ENV, extra_routes={"t_pipe.lua": ROUTES}) as s:
        old = fx.server
        fx.server = s
        try:
            warm(fx)
            socks, queued = queue_up(fx, [nap(0.5), "/t/div?d=2", "/t/div?d=5"], 2)
            ok(queued, "two statements are queued behind the first")
            if not queued:
                return
            s.proc.send_signal(signal.SIGTERM)
            res = [harness.read_response(sock, 10) for sock in socks]
            for sock in socks:
                sock.close()
            ok([r.status for r in res] == [200, 200, 200] and
               (res[1].json_or_none() or {}).get("q") == 50 and
               (res[2].json_or_none() or {}).get("q") == 20,
               "SIGTERM: the running and the queued statements are all answered",
               [r.status for r in res])
            try:
                rc = s.proc.wait(timeout=10)
            except Exception:  # noqa: BLE001 - reported below
                rc = None
            is_(rc, 0, "... and the server drains and exits 0")
        finally:
            fx.server = old


@case
def bad_depth_stops_start_up(fx):
    for bad in ("0", "33", "four"):
        p = harness.run_glasgow(["serve"], env={
            "DATABASE_URL": fx.db.url, "GLASGOW_DB_PIPELINE_DEPTH": bad,
            "GLASGOW_LISTEN": "127.0.0.1:%d" % harness.free_port(),
            "GLASGOW_ADMIN_LISTEN": "127.0.0.1:%d" % harness.free_port()})
        ok(p.returncode not in (0, None) and "GLASGOW_DB_PIPELINE_DEPTH" in p.stderr,
           "GLASGOW_DB_PIPELINE_DEPTH=%s stops start-up, naming the variable" % bad,
           p.returncode, p.stderr[-300:])


if __name__ == "__main__":
    main(dbh.DbFixture("pipe", env=ENV, extra_routes={"t_pipe.lua": ROUTES}))
