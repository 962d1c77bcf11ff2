"""Database faults against a real PostgreSQL, with test-only routes added
next to the repository's routes.

- PostgreSQL restarted (.ci/pg stop, then start on the same dir and port)
  while requests run: they fail fast with 503 + Retry-After, /readyz turns
  503, and everything recovers without restarting glasgow.
- Pool exhausted by slow queries: extra requests answer 503 within about a
  second while /hello on the same worker stays fast; the waiter cap;
  statement timeouts.
- A connection killed mid-transaction (pg_terminate_backend), or killed
  while idle, is never handed out again; a connection returned inside a
  transaction is rolled back.
- db.transaction commits, rolls back, and never reports a rolled-back
  transaction as committed.
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import case, diag, is_, is_error_shape, main, ms, ok, slow, wait_until  # noqa: E402
import dbharness as dbh  # noqa: E402
from dbharness import DbServer  # noqa: E402

dbh.skip_without_pg()

T_FAULTS = r'''-- Test-only routes for tests/integration/test_db_faults.py.
local glasgow = require "glasgow"
local db = require "glasgow.db"
local pg = require "glasgow.pg"

local null = glasgow.json.null

return {
    {
        method = "GET", path = "/t/ping",
        handler = function()
            return 200, { one = db.call("SELECT 1 AS one")[1].one }
        end,
    },
    {
        method = "GET", path = "/t/pid",
        handler = function()
            -- fresh: no transaction id is assigned, so this does not run inside a
            -- transaction someone left open (which assigned one)
            local row = db.call("SELECT pg_backend_pid() AS pid, " ..
                                "txid_current_if_assigned() IS NULL AS fresh")[1]
            return 200, row
        end,
    },
    {
        method = "GET", path = "/t/sleep",
        handler = function(req)
            db.call("SELECT pg_sleep($1::float8)", req.query.s or "1")
            return 200, { slept = true }
        end,
    },
    {
        -- Holds a transaction open, has its backend killed from another
        -- pooled connection, then uses it again.
        method = "GET", path = "/t/txkill",
        handler = function(req)
            local pid, kerr
            local res, err = db.transaction(function(tx)
                pid = tx.call("SELECT pg_backend_pid() AS pid")[1].pid
                db.call("SELECT pg_terminate_backend($1::int)", pid)
                for _ = 1, 40 do
                    local n = db.call("SELECT count(*) AS n FROM pg_stat_activity " ..
                                      "WHERE pid = $1::int", pid)[1].n
                    if n == 0 then
                        break
                    end
                    glasgow.sleep(25)
                end
                local rows, e = tx.query("SELECT 1 AS one")
                if rows then
                    return "survived"
                end
                kerr = e
                if req.query.raise then
                    error(e, 0)
                end
                return nil, e
            end)
            return 200, { pid = pid, result = res or null, kind = kerr and kerr.kind or null,
                          status = kerr and kerr.status or null,
                          err = err and tostring(err) or null }
        end,
    },
    {
        -- Leaves its connection inside a transaction that has a transaction
        -- id (or, with ?error=1, inside a failed transaction).
        method = "GET", path = "/t/leak",
        handler = function(req)
            local c = assert(pg.acquire())
            pg.rows(assert(pg.exec(c, "BEGIN")))
            pg.rows(assert(pg.exec(c, "SELECT txid_current()")))
            if req.query.error then
                local res = pg.exec(c, "SELECT 1/0")
                assert(res == nil, "1/0 failed")
            end
            pg.release(c)
            return 200, { begun = true }
        end,
    },
    {
        method = "GET", path = "/t/idle_in_tx",
        handler = function()
            local n = db.call([[SELECT count(*) AS n FROM pg_stat_activity
                                 WHERE datname = current_database() AND application_name = 'glasgow'
                                   AND state LIKE 'idle in transaction%']])[1].n
            return 200, { n = n }
        end,
    },
    {
        method = "POST", path = "/t/tx",
        body = { type = "object", required = { "mode", "k" } },
        handler = function(req)
            local mode, k = req.body.mode, req.body.k
            local res, err = db.transaction(function(tx)
                tx.call("INSERT INTO t_kv (k) VALUES ($1::int)", k)
                if mode == "raise" then
                    glasgow.fail(409, "raised_in_tx", "raised inside the transaction")
                elseif mode == "nil_err" then
                    return nil, "stopped"
                elseif mode == "swallow" then
                    tx.query("SELECT 1/0")
                end
                return "committed"
            end)
            return 200, { result = res or null, err = err and tostring(err) or null }
        end,
    },
}
'''


class Fixture:
    """A fresh database with the migrations and a t_kv table (no server: cases start theirs)."""

    def __enter__(self):
        self.db = dbh.TestDB("faults").__enter__()
        try:
            self.db.sql("CREATE TABLE t_kv (k int PRIMARY KEY)")
        except BaseException:
            self.db.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        if not dbh.pg_reachable():
            dbh.pg_ctl("start")
        self.db.__exit__(None, None, None)
        return False


DROPPED = "database closed an idle connection; dropping it"


def server(fx, **env):
    e = {k: str(v) for k, v in env.items()}
    return DbServer(fx.db, env=e, extra_routes={"t_faults.lua": T_FAULTS})


def timed_get(s, path, timeout=10.0, headers=None):
    t0 = time.monotonic()
    try:
        r = s.get(path, headers=headers, timeout=timeout)
        return r, time.monotonic() - t0
    except Exception as e:  # noqa: BLE001 - a timeout or reset is a result here
        return e, time.monotonic() - t0


def status_of(r):
    return getattr(r, "status", type(r).__name__)


def metric(s, name):
    try:
        return s.metric(name)
    except Exception:  # noqa: BLE001
        return None


@case(timeout=90)
def pool_exhaustion(fx):
    # The holders outlast the extra requests' wait by seconds; /hello must
    # come back in half the wait, which it could not if the worker blocked.
    wait = int(ms(1000))
    hold = wait / 1e3 + slow(1.5)
    with server(fx, GLASGOW_WORKERS=1, GLASGOW_DB_POOL_SIZE=2, GLASGOW_DB_WAIT_TIMEOUT_MS=wait,
                GLASGOW_DB_STATEMENT_TIMEOUT_MS=int(1000 * (hold + slow(2.0)))) as s:
        is_(status_of(timed_get(s, "/t/ping")[0]), 200, "the pool works")
        holders = []

        def hold_one():
            holders.append(timed_get(s, "/t/sleep?s=%.1f" % hold, timeout=hold + slow(5)))

        hts = [threading.Thread(target=hold_one, daemon=True) for _ in range(2)]
        for t in hts:
            t.start()
        full = wait_until(lambda: metric(s, "glasgow_db_pool_in_use") == 2, slow(3))
        ok(full, "two slow queries hold both connections (glasgow_db_pool_in_use 2)",
           metric(s, "glasgow_db_pool_in_use"))
        is_(metric(s, "glasgow_db_pool_connections"), 2.0,
            "glasgow_db_pool_connections is 2 (the maximum)")
        extra = []
        lock = threading.Lock()

        def more(path):
            r = timed_get(s, path, timeout=hold + slow(5))
            with lock:
                extra.append(r)

        ets = [threading.Thread(target=more, args=(p,), daemon=True)
               for p in ["/t/sleep?s=2", "/t/sleep?s=2", "/t/ping", "/t/pid"]]
        for t in ets:
            t.start()
        hello = []
        for _ in range(5):
            hello.append(timed_get(s, "/hello", timeout=5))
            time.sleep(0.05)
        for t in ets:
            t.join(hold + slow(5))
        is_(len(extra), 4, "the four extra requests were answered")
        for r, took in extra:
            ok(status_of(r) == 503 and took < wait / 1e3 + slow(0.7), "an extra request while "
               "the pool is busy answers 503 after the %d ms wait (%.2f s)" % (wait, took),
               status_of(r), took, getattr(r, "body", b"")[:200])
            if status_of(r) == 503:
                ok(is_error_shape(r.body, "unavailable"), "... with the error shape, code "
                   "unavailable", r.body)
                ok((r.header("retry-after") or "").isdigit(), "... and Retry-After",
                   r.header("retry-after"))
        for r, took in hello:
            ok(status_of(r) == 200 and took < wait / 2e3, "GET /hello on the same worker stays "
               "fast (%.0f ms)" % (took * 1000), status_of(r))
        for t in hts:
            t.join(hold + slow(5))
        for r, took in holders:
            ok(status_of(r) == 200, "the slow queries themselves complete (200 after %.1f s)" %
               took, status_of(r), getattr(r, "body", b"")[:200])
        ok((metric(s, "glasgow_db_pool_wait_timeouts_total") or 0) >= 4,
           "glasgow_db_pool_wait_timeouts_total counted the 503s",
           metric(s, "glasgow_db_pool_wait_timeouts_total"))
        ok(wait_until(lambda: metric(s, "glasgow_db_pool_waiting") == 0 and
                      metric(s, "glasgow_db_pool_in_use") == 0, slow(3)),
           "afterwards nothing waits and nothing is in use")
        r, took = timed_get(s, "/t/ping")
        is_(status_of(r), 200, "the pool serves again")


@case(timeout=60)
def waiter_cap_and_statement_timeout(fx):
    # The holder stays under the statement timeout, and holds the only
    # connection long enough for a waiter to queue and a third request to
    # be refused.
    stmt = int(ms(1000)) + 1000
    hold = 0.75 * stmt / 1e3
    with server(fx, GLASGOW_WORKERS=1, GLASGOW_DB_POOL_SIZE=1, GLASGOW_DB_MAX_WAITERS=1,
                GLASGOW_DB_WAIT_TIMEOUT_MS=ms(5000), GLASGOW_DB_STATEMENT_TIMEOUT_MS=stmt) as s:
        is_(status_of(timed_get(s, "/t/ping")[0]), 200, "the pool works")
        out = {}

        def run(name, path):
            out[name] = timed_get(s, path, timeout=slow(10))

        t1 = threading.Thread(target=run, args=("holder", "/t/sleep?s=%.2f" % hold), daemon=True)
        t1.start()
        ok(wait_until(lambda: metric(s, "glasgow_db_pool_in_use") == 1, slow(3)),
           "the holder has the only connection")
        t2 = threading.Thread(target=run, args=("waiter", "/t/ping"), daemon=True)
        t2.start()
        ok(wait_until(lambda: metric(s, "glasgow_db_pool_waiting") == 1, slow(3)),
           "a second request waits for it")
        r, took = timed_get(s, "/t/ping")
        ok(status_of(r) == 503 and took < slow(0.5), "with one waiter already queued (the cap), "
           "another request is 503 at once (%.0f ms)" % (took * 1000), status_of(r))
        t1.join(slow(10))
        t2.join(slow(10))
        is_(status_of(out.get("holder", (None,))[0]), 200, "the holder completes")
        is_(status_of(out.get("waiter", (None,))[0]), 200, "the queued waiter gets the connection")
        r, took = timed_get(s, "/t/sleep?s=%.1f" % (3 * stmt / 1e3), timeout=slow(10))
        ok(status_of(r) == 503 and took < stmt / 1e3 + slow(1.5), "a statement over "
           "GLASGOW_DB_STATEMENT_TIMEOUT_MS is cut off with 503 (%.2f s)" % took, status_of(r),
           getattr(r, "body", b"")[:200])
        gone = wait_until(lambda: fx.db.sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
            "query LIKE 'SELECT pg_sleep%' AND state = 'active'") == "0", slow(3))
        ok(gone, "... and the statement no longer runs on the server")
        r, took = timed_get(s, "/t/ping")
        is_(status_of(r), 200, "the next request succeeds")


@case(timeout=60)
def killed_connections_are_not_reused(fx):
    with server(fx, GLASGOW_WORKERS=1, GLASGOW_DB_POOL_SIZE=2,
                GLASGOW_DB_WAIT_TIMEOUT_MS=1000) as s:
        for raise_ in (False, True):
            path = "/t/txkill" + ("?raise=1" if raise_ else "")
            r, took = timed_get(s, path)
            body = getattr(r, "json_or_none", lambda: None)() or {}
            if raise_:
                ok(status_of(r) == 503 and is_error_shape(r.body, "unavailable"),
                   "a handler that raises the connection error answers 503 unavailable",
                   status_of(r), getattr(r, "body", b"")[:300])
                killed = None
            else:
                is_(status_of(r), 200, "the kill-mid-transaction route ran", getattr(r, "body",
                                                                                    b""))
                is_(body.get("kind"), "connection", "the statement after the kill fails with "
                    "kind connection", body)
                is_(body.get("status"), 503, "... which maps to 503", body)
                ok(body.get("result") is None and body.get("err"), "db.transaction returns "
                   "nil, err", body)
                killed = body.get("pid")
            pids = []
            bad = []
            for _ in range(10):
                r2, _t = timed_get(s, "/t/pid")
                if status_of(r2) != 200:
                    bad.append((status_of(r2), getattr(r2, "body", b"")[:200]))
                else:
                    b = r2.json_or_none() or {}
                    pids.append(b.get("pid"))
                    if b.get("fresh") is not True:
                        bad.append(("inside an old transaction", b))
            ok(not bad, "after a connection was killed mid-transaction (%s), the next 10 "
               "requests succeed" % ("raised" if raise_ else "returned"), bad)
            if killed is not None:
                ok(killed not in pids, "... and none runs on the killed backend %s" % killed,
                   pids)
        conns = metric(s, "glasgow_db_pool_connections")
        ok(conns is not None and conns <= 2, "the pool stays within its size", conns)

        before = {(timed_get(s, "/t/pid")[0].json_or_none() or {}).get("pid")}
        dropped0 = s.stdout().count(DROPPED)
        killed = fx.db.sql("SELECT string_agg(CASE WHEN pg_terminate_backend(pid) THEN "
                           "pid::text END, ',') FROM pg_stat_activity WHERE "
                           "datname = current_database() AND application_name = 'glasgow'")
        n = len(killed.split(",")) if killed else 0
        diag("killed %d idle glasgow backends from outside" % n)
        ok(n >= 1, "the test killed the pool's idle backends", killed)
        # Before the pool has seen the close, a request may be handed a
        # connection that turns out dead: it must answer 503 unavailable (never
        # 500, never hang).
        r, took = timed_get(s, "/t/pid")
        diag("a request right after the kill answered %s in %.3f s" % (status_of(r), took))
        ok(status_of(r) == 200 or (status_of(r) == 503 and is_error_shape(r.body, "unavailable")
                                   and (r.header("retry-after") or "").isdigit()),
           "a request right after the kill answers 200, or 503 unavailable with Retry-After",
           status_of(r), getattr(r, "body", b"")[:300])
        # Once the backends are gone and the pool has logged the drop of each
        # idle one (the request above, if it got 503, was handed one and
        # closed it; a connection busy with a health probe is closed without
        # the line: then the wait times out, and the check below holds all
        # the same):
        ok(wait_until(lambda: killed and fx.db.sql(
            "SELECT count(*) FROM pg_stat_activity WHERE pid IN (%s)" % killed) == "0",
            slow(5.0)), "the killed backends are gone")
        idle_killed = n - (1 if status_of(r) == 503 else 0)
        wait_until(lambda: s.stdout().count(DROPPED) >= dropped0 + idle_killed, slow(3.0))
        res = [timed_get(s, "/t/pid")[0] for _ in range(5)]
        is_([status_of(x) for x in res], [200] * 5, "connections killed while idle are dropped: "
            "once the pool has seen the close, the next requests all succeed")
        pids = {(x.json_or_none() or {}).get("pid") for x in res if status_of(x) == 200}
        ok(not (pids & before), "... on new backends", pids, before)


@case(timeout=60)
def transactions_left_open_are_rolled_back(fx):
    with server(fx, GLASGOW_WORKERS=1, GLASGOW_DB_POOL_SIZE=1) as s:
        for q, what in [("", "open"), ("?error=1", "failed")]:
            r, _t = timed_get(s, "/t/leak" + q)
            is_((status_of(r), (getattr(r, "json_or_none", lambda: None)() or {}).get("begun")),
                (200, True), "a handler returns its connection inside an %s transaction" % what,
                getattr(r, "body", b""))
            bad = []
            for _ in range(5):
                r, _t = timed_get(s, "/t/pid")
                b = r.json_or_none() if status_of(r) == 200 else None
                if not b or b.get("fresh") is not True:
                    bad.append((status_of(r), b))
            ok(not bad, "... the next requests on the same (only) connection succeed outside "
               "that transaction", bad)
            r, _t = timed_get(s, "/t/idle_in_tx")
            is_((status_of(r), (getattr(r, "json_or_none", lambda: None)() or {}).get("n")),
                (200, 0), "... no glasgow connection is left idle in transaction")


@case(timeout=60)
def transaction_outcomes(fx):
    with server(fx, GLASGOW_WORKERS=1) as s:
        def tx(mode, k):
            r = s.request("POST", "/t/tx", {"mode": mode, "k": k})
            present = fx.db.sql("SELECT count(*) FROM t_kv WHERE k = %d" % k) == "1"
            return r, (r.json_or_none() or {}), present

        r, b, present = tx("commit", 1)
        ok(r.status == 200 and b.get("result") == "committed" and present,
           "returning normally commits", r.status, b, present)
        r, b, present = tx("raise", 2)
        ok(r.status == 409 and is_error_shape(r.body, "raised_in_tx") and not present,
           "raising rolls back and the error propagates (409)", r.status, r.body, present)
        r, b, present = tx("nil_err", 3)
        ok(r.status == 200 and b.get("result") is None and b.get("err") == "stopped" and
           not present, "returning nil, err rolls back and returns nil, err", b, present)
        r, b, present = tx("swallow", 4)
        ok(present or b.get("result") != "committed",
           "a transaction whose statement failed (error ignored by the handler) is not "
           "reported as committed when PostgreSQL rolled it back", b, "row present: %s" % present)
        r, b, present = tx("commit", 1)
        ok(r.status == 409 and not b.get("result"), "a unique violation inside a transaction "
           "answers 409", r.status, r.body)


@case(timeout=120)
def postgres_restart(fx):
    if not (dbh.PG_DIR and dbh.PG_PORT):
        ok(False, "GLASGOW_TEST_PG_DIR and GLASGOW_TEST_PG_PORT are needed to restart "
           "PostgreSQL")
        return
    with server(fx, GLASGOW_WORKERS=2) as s:
        tok, lr = dbh.Api(s).login(dbh.ADMIN_EMAIL, dbh.ADMIN_PASSWORD)
        ok(tok, "admin login before the restart", lr.status, lr.body)
        auth = {"Authorization": "Bearer %s" % tok}
        for _ in range(4):
            is_(status_of(timed_get(s, "/t/ping")[0]), 200, "requests succeed before the "
                "restart")
        is_(s.admin("/readyz").status, 200, "/readyz is 200 with the database up")

        log = []
        stop = threading.Event()

        def poll():
            while not stop.is_set():
                r, took = timed_get(s, "/t/ping", timeout=10)
                log.append((time.monotonic(), status_of(r), took,
                            getattr(r, "header", lambda *_: None)("retry-after")))
                time.sleep(0.05)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        inflight = []
        slow_thread = threading.Thread(target=lambda: inflight.append(
            (timed_get(s, "/t/sleep?s=%.1f" % slow(4), timeout=slow(10)), time.monotonic())),
            daemon=True)
        slow_thread.start()
        # PostgreSQL stops while the statement runs
        ok(wait_until(lambda: fx.db.sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
            "query LIKE 'SELECT pg_sleep%' AND state = 'active'") == "1", slow(5)),
           "a slow statement is running")
        s2 = None
        try:
            t_stop = time.monotonic()
            p = dbh.pg_ctl("stop")
            ok(p.returncode == 0 and not dbh.pg_reachable(), "PostgreSQL stopped", p.stderr)
            t_stopped = time.monotonic()
            diag("pg stop took %.2f s" % (t_stopped - t_stop))
            slow_thread.join(slow(5))
            if inflight:
                (r, took), t_done = inflight[0]
                ok(status_of(r) == 503 and t_done - t_stopped < slow(2.0),
                   "a query in flight when PostgreSQL stops answers 503 at once (%.2f s after "
                   "the stop)" % (t_done - t_stopped), status_of(r),
                   getattr(r, "body", b"")[:300])
            else:
                ok(False, "a query in flight when PostgreSQL stops is answered within 5 s")
            down = []
            t_end = time.monotonic() + 2.0
            while time.monotonic() < t_end:
                down.append(timed_get(s, "/t/ping", timeout=10))
            ok(down and all(status_of(r) == 503 for r, _ in down),
               "while PostgreSQL is down every request answers 503",
               sorted(set(str(status_of(r)) for r, _ in down)))
            worst = max(t for _, t in down) if down else None
            ok(worst is not None and worst < slow(1.0), "... each fast (slowest %.3f s)" %
               (worst or -1))
            r = down[-1][0] if down else None
            ok(r is not None and status_of(r) == 503 and is_error_shape(r.body, "unavailable")
               and (r.header("retry-after") or "").isdigit(),
               "... with the error shape (unavailable) and Retry-After",
               getattr(r, "body", b"")[:300])
            r, took = timed_get(s, "/v1/users", headers=auth)
            ok(status_of(r) == 503 and took < slow(2.0), "an authenticated route is 503 (not 401) "
               "while the database is down", status_of(r), getattr(r, "body", b"")[:300])
            _, r = dbh.Api(s).login(dbh.ADMIN_EMAIL, dbh.ADMIN_PASSWORD)
            is_(r.status, 503, "a login is 503 (not 401) while the database is down", r.body)
            ready = wait_until(lambda: s.admin("/readyz", timeout=2).status == 503, 5)
            ok(ready, "/readyz turns 503 while the database is unreachable")
            is_(s.get("/hello").status, 200, "routes without the database keep working")
            s2 = server(fx, GLASGOW_WORKERS=1).__enter__()
            ok(s2.alive(), "a second glasgow starts while the database is down")
            r, took = timed_get(s2, "/t/ping")
            ok(status_of(r) == 503 and took < slow(2.0), "... answers 503 quickly (%.2f s)" % took,
               status_of(r), getattr(r, "body", b"")[:300])
            is_(s2.admin("/readyz").status, 503, "... and its /readyz is 503")
        finally:
            t_start = time.monotonic()
            p = dbh.pg_ctl("start")
            diag("pg start took %.2f s" % (time.monotonic() - t_start))
        ok(p.returncode == 0, "PostgreSQL started again on the same directory and port",
           p.stderr)
        t_up = time.monotonic()
        back = wait_until(lambda: status_of(timed_get(s, "/t/ping", timeout=5)[0]) == 200, 10,
                          interval=0.1)
        diag("glasgow answered 200 again %.2f s after PostgreSQL was up" %
             (time.monotonic() - t_up))
        ok(back, "requests succeed again within 10 s, without restarting glasgow")
        ok(s.alive(), "... it is the same glasgow process")
        try:
            ok(s2 is not None and
               wait_until(lambda: status_of(timed_get(s2, "/t/ping", timeout=5)[0]) == 200, 10,
                          interval=0.1),
               "the glasgow started while the database was down serves once it is up")
            ok(s2 is not None and
               wait_until(lambda: s2.admin("/readyz", timeout=2).status == 200, 5),
               "... and its /readyz turns 200")
        finally:
            if s2 is not None:
                s2.__exit__(None, None, None)
        good = [status_of(timed_get(s, "/t/ping")[0]) for _ in range(10)]
        is_(good, [200] * 10, "the next 10 requests all succeed (no dead connection reused)")
        conns = metric(s, "glasgow_db_pool_connections")
        ok(conns is not None and 1 <= conns <= 16, "glasgow_db_pool_connections is within "
           "workers x pool size after the restart", conns)
        r, _t = timed_get(s, "/v1/users?limit=1", headers=auth)
        is_(status_of(r), 200, "the token issued before the restart still works")
        ok(wait_until(lambda: s.admin("/readyz", timeout=2).status == 200, 5),
           "/readyz is 200 again")
        stop.set()
        poller.join(15)
        statuses = sorted(set(str(x[1]) for x in log))
        ok(set(statuses) <= {"200", "503"}, "during the whole restart every answer was 200 or "
           "503 (no 500, no hang)", statuses)
        slow_reqs = [x for x in log if x[2] >= slow(2.0)]
        ok(not slow_reqs, "no request took %.0f s or more" % slow(2.0), slow_reqs[:5])
        no_ra = [x for x in log if x[1] == 503 and not (x[3] or "").isdigit()]
        ok(not no_ra, "every 503 carried Retry-After", no_ra[:5])
        diag("background requests: %d, statuses %r" % (len(log), statuses))


if __name__ == "__main__":
    main(Fixture())
