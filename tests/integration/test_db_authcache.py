"""The per-worker token cache (runtime/lua_authcache.c) against a real PostgreSQL.

A server with 2 workers and a long maximum age (so that only invalidation,
never the age, can make these pass). Every case first pins keep-alive
connections to each worker (a connection stays on the worker that accepted
it; which one that is shows in the per-worker metrics) and makes sure each
worker has the token cached (its hit counter grows). Then the change is
made, and the very next request on every worker must be refused: logout, a
deleted user, an admin demoted through the API, a password change (made
through this process: refused at once), an admin demoted and a token
revoked in psql (once every worker has processed the notification, which
travels asynchronously). With listeners in another database (so no
notification reaches them), API revocations are still refused at once on
every worker, by the in-process log alone. With the listener connections killed
(pg_terminate_backend) right before a psql revocation, the revoked token is
never accepted, and the cache works again once the listeners are back.
A notification that reaches a busy worker after a request is applied before that
request runs (the listener's socket is a priority watcher of the loop). Listeners open
at a worker's first token check; a disabled notify trigger
or an unreachable listener leaves the cache bypassed; a `glasgow run`
script checks the stale-answer guard (race (a)): an invalidation applied
between ticket() and put() keeps the answer out; GLASGOW_AUTH_CACHE_TTL_S=0
turns the cache off; dead tokens deleted (as gc does) notify nobody.
"""
import contextlib
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import case, diag, is_, main, ok, wait_until  # noqa: E402
import dbharness as dbh  # noqa: E402
from dbharness import new_user, sql_literal, token_hash_hex  # noqa: E402

dbh.skip_without_pg()

WORKERS = 2
APP_NAME = "glasgow auth listener"
ENV = {"GLASGOW_WORKERS": str(WORKERS), "GLASGOW_AUTH_CACHE_TTL_S": "600"}


def per_worker(srv, name):
    """{worker label: value} of one per-worker series."""
    out = {}
    for key, v in srv.metrics().items():
        n, lab = harness.split_series(key)
        if n == name and "worker" in lab:
            out[lab["worker"]] = v
    return out


def lookups(srv):
    """{worker: hits + misses + bypasses}: how many token lookups each worker made."""
    total = {}
    for name in ("glasgow_auth_cache_hits_total", "glasgow_auth_cache_misses_total",
                 "glasgow_auth_cache_bypasses_total"):
        for w, v in per_worker(srv, name).items():
            total[w] = total.get(w, 0) + v
    return total


def listeners_up(srv):
    up = per_worker(srv, "glasgow_auth_cache_listener_up")
    return len(up) == WORKERS and all(v == 1 for v in up.values())


def wait_listeners(srv, timeout=15):
    ok(wait_until(lambda: listeners_up(srv), timeout), "every worker's listener is up",
       repr(per_worker(srv, "glasgow_auth_cache_listener_up")))


class Pinned:
    """One keep-alive connection per worker, found by watching which worker's lookup
    count moves after a request on a fresh connection."""

    def __init__(self, srv, token, path):
        self.srv = srv
        self.token = token
        self.path = path
        self.conns = {}
        spare = []
        for _ in range(60):
            if len(self.conns) == WORKERS:
                break
            c = srv.client(timeout=10)
            before = lookups(srv)
            r = self.get(c)
            if r.status != 200:
                raise AssertionError("pinning: %s answered %s %r" % (path, r.status, r.body[:200]))
            after = lookups(srv)
            moved = [w for w in after if after[w] != before.get(w, 0)]
            if len(moved) == 1 and moved[0] not in self.conns:
                self.conns[moved[0]] = c
            else:
                spare.append(c)  # kept open, so the next connection is a new one
        for c in spare:
            c.close()
        if len(self.conns) != WORKERS:
            raise AssertionError("could not reach every worker: %r" % sorted(self.conns))
        # a worker opens its listener at its first token check
        if not wait_until(lambda: listeners_up(srv), 15):
            raise AssertionError("listeners not up: %r" %
                                 per_worker(srv, "glasgow_auth_cache_listener_up"))

    def get(self, c, token=None):
        return c.request("GET", self.path, headers={
            "Authorization": "Bearer " + (token or self.token)})

    def warm(self):
        """Each worker answers the token from its cache (its hit counter grows)."""
        for w, c in sorted(self.conns.items()):
            before = per_worker(self.srv, "glasgow_auth_cache_hits_total").get(w, 0)
            r1, r2 = self.get(c), self.get(c)
            after = per_worker(self.srv, "glasgow_auth_cache_hits_total").get(w, 0)
            if r1.status != 200 or r2.status != 200 or after < before + 1:
                ok(False, "worker %s caches the token" % w,
                   "statuses %s %s, hits %s -> %s" % (r1.status, r2.status, before, after))
                return False
        return True

    def statuses(self, token=None):
        """{worker: status} of one request on each worker's connection."""
        return {w: self.get(c, token).status for w, c in sorted(self.conns.items())}

    def close(self):
        for c in self.conns.values():
            c.close()


def notified(fx, srv, sql):
    """Runs sql in psql and waits until every worker has evicted something since (the
    trigger's notification reached it). A psql writer's change travels as a NOTIFY,
    asynchronously: "the very next request" is the next one after its arrival."""
    before = per_worker(srv, "glasgow_auth_cache_invalidations_total")
    t0 = time.monotonic()
    fx.db.sql(sql)
    done = wait_until(lambda: all(
        v > before.get(w, 0)
        for w, v in per_worker(srv, "glasgow_auth_cache_invalidations_total").items()), 10)
    ok(done, "every worker processed the notification")
    diag("notification processed by every worker %.1f ms after psql started" %
         ((time.monotonic() - t0) * 1000))


@contextlib.contextmanager
def warmed(srv, token, path):
    """A Pinned whose token every worker has cached, or None (the failure is reported);
    its connections are closed at the end."""
    p = Pinned(srv, token, path)
    try:
        yield p if p.warm() else None
    finally:
        p.close()


def refused_everywhere(p, what, want=401):
    got = p.statuses()
    ok(len(got) == WORKERS and all(s == want for s in got.values()),
       "%s: the very next request on every worker answers %d" % (what, want), repr(got))


@case
def lazy_listeners(fx):
    """No listener connection until a worker checks a token; then one per worker."""
    # the fixture logged in (no token check), so no worker has checked a token yet
    is_(listener_count(fx), "0", "no listener before the first token check")
    u = new_user(fx.admin)
    Pinned(fx.server, u["token"], "/v1/users/" + u["id"]).close()
    wait_listeners(fx.server)


@case
def logout(fx):
    u = new_user(fx.admin)
    with warmed(fx.server, u["token"], "/v1/users/" + u["id"]) as p:
        if not p:
            return
        r = u["api"].post("/v1/auth/logout")
        is_(r.status, 204, "logout answers 204")
        refused_everywhere(p, "after logout")


@case
def deleted_user(fx):
    u = new_user(fx.admin)
    with warmed(fx.server, u["token"], "/v1/users/" + u["id"]) as p:
        if not p:
            return
        is_(fx.admin.delete("/v1/users/" + u["id"]).status, 204, "the admin deletes the user")
        refused_everywhere(p, "after the user's deletion")


@contextlib.contextmanager
def pinned_admin(fx):
    """A second admin, pinned to every worker on a read of someone else's record (an admin
    reads it; a user gets 404), with its token cached everywhere (else p is None)."""
    a = new_user(fx.admin, role="admin")
    other = new_user(fx.admin)
    with warmed(fx.server, a["token"], "/v1/users/" + other["id"]) as p:
        yield a, p


@case
def demoted_admin_via_api(fx):
    with pinned_admin(fx) as (a, p):
        if not p:
            return
        r = fx.admin.patch("/v1/users/" + a["id"], {"role": "user"})
        is_(r.status, 200, "the admin demotes the other admin")
        refused_everywhere(p, "after a demotion through the API")


@case
def demoted_admin_via_psql(fx):
    with pinned_admin(fx) as (a, p):
        if not p:
            return
        notified(fx, fx.server,
                 "UPDATE users SET role = 'user' WHERE id = %s" % sql_literal(a["id"]))
        # the token still authenticates, as a user now: someone else's record is hidden
        refused_everywhere(p, "after a demotion in psql", want=404)
        p.path = "/v1/users/" + a["id"]
        own = p.statuses()
        ok(all(s == 200 for s in own.values()), "the demoted token still reads its own record",
           repr(own))


@case
def password_change(fx):
    u = new_user(fx.admin)
    tok2, r = fx.anon.login(u["email"], u["password"])
    ok(tok2, "a second session", r.status)
    with warmed(fx.server, tok2, "/v1/users/" + u["id"]) as p:
        if not p:
            return
        new_pw = "new-pw-" + u["password"]
        dbh.remember_secret(new_pw)
        r = u["api"].patch("/v1/users/" + u["id"], {"password": new_pw, "current_password": u["password"]})
        is_(r.status, 200, "the user changes its password with its first token")
        refused_everywhere(p, "the other session after a password change")
        kept = p.statuses(u["token"])
        ok(all(s == 200 for s in kept.values()), "the token that made the change still works",
           repr(kept))


@case
def revoked_in_psql(fx):
    u = new_user(fx.admin)
    with warmed(fx.server, u["token"], "/v1/users/" + u["id"]) as p:
        if not p:
            return
        notified(fx, fx.server, "UPDATE auth_tokens SET revoked_at = now() "
                 "WHERE token_hash = '\\x%s'" % token_hash_hex(u["token"]))
        refused_everywhere(p, "after a revocation in psql")


def terminate_listeners_and_revoke(fx, token):
    """Kills every listener backend of this database (waiting until each is gone), then
    revokes token, in one psql call: no notification of the revocation can reach the
    server's workers through a listener."""
    return fx.db.sql(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
        "WHERE application_name = %s AND datname = current_database(); "
        "UPDATE auth_tokens SET revoked_at = now() WHERE token_hash = '\\x%s'" %
        (sql_literal(APP_NAME), token_hash_hex(token)))


@case(timeout=90)
def listener_lost(fx):
    srv = fx.server
    wait_listeners(srv)
    u = new_user(fx.admin)
    with warmed(srv, u["token"], "/v1/users/" + u["id"]) as p:
        if not p:
            return
        losses = sum(per_worker(srv, "glasgow_auth_cache_listener_losses_total").values())
        killed = terminate_listeners_and_revoke(fx, u["token"])
        is_(killed.strip(), str(WORKERS), "one listener backend per worker was terminated")
        refused_everywhere(p, "a token revoked while the listeners were down")
        ok(wait_until(lambda: sum(per_worker(srv, "glasgow_auth_cache_listener_losses_total")
                                  .values()) >= losses + WORKERS, 10),
           "every worker counted its listener's loss")
        wait_listeners(srv)
        # the cache works again: a fresh token is cached on every worker, and a psql
        # revocation reaches every worker through the new listeners
        u2 = new_user(fx.admin)
        p2 = Pinned(srv, u2["token"], "/v1/users/" + u2["id"])
        try:
            ok(p2.warm(), "after the listeners came back, every worker caches again")
            notified(fx, srv, "UPDATE auth_tokens SET revoked_at = now() "
                     "WHERE token_hash = '\\x%s'" % token_hash_hex(u2["token"]))
            refused_everywhere(p2, "a psql revocation after the reconnect")
        finally:
            p2.close()


@case(timeout=90)
def listener_killed_repeatedly(fx):
    """Kill the listeners and revoke, several times in a row, with requests on every worker
    in between: the revoked token is never accepted, whatever the listener's state."""
    srv = fx.server
    accepted = []
    for i in range(5):
        wait_listeners(srv)
        u = new_user(fx.admin)
        p = Pinned(srv, u["token"], "/v1/users/" + u["id"])
        try:
            p.warm()
            terminate_listeners_and_revoke(fx, u["token"])
            for _ in range(3):
                got = p.statuses()
                accepted += [(i, w) for w, s in got.items() if s != 401]
        finally:
            p.close()
    ok(not accepted, "a token revoked while the listeners died was never accepted",
       repr(accepted))


@case(timeout=120)
def in_process_revocations_need_no_notification(fx):
    """The listeners LISTEN in another database (notifications are per database), so no
    notification of the fixture database reaches them: revocations made through the API
    must still be refused at once on every worker, by the in-process log alone."""
    with dbh.TestDB("authcache_other") as other:
        env = dict(ENV, GLASGOW_AUTH_LISTEN_URL=other.url)
        with dbh.DbServer(fx.db, env=env) as srv:
            u = new_user(fx.admin)
            with warmed(srv, u["token"], "/v1/users/" + u["id"]) as p:
                if not p:
                    return
                # the setup isolates: a psql revocation is not announced to these listeners
                v = new_user(fx.admin)
                pv = Pinned(srv, v["token"], "/v1/users/" + v["id"])
                try:
                    pv.warm()
                    fx.db.sql("UPDATE auth_tokens SET revoked_at = now() "
                              "WHERE token_hash = '\\x%s'" % token_hash_hex(v["token"]))
                    time.sleep(0.3)
                    got = pv.statuses()
                    ok(all(st == 200 for st in got.values()),
                       "setup: a psql revocation does not reach listeners of another database",
                       repr(got))
                finally:
                    pv.close()
                r = dbh.Api(srv, u["token"]).post("/v1/auth/logout")
                is_(r.status, 204, "logout through this server")
                refused_everywhere(p, "logout without any notification")
            a = new_user(fx.admin, role="admin")
            other_user = new_user(fx.admin)
            with warmed(srv, a["token"], "/v1/users/" + other_user["id"]) as p:
                if not p:
                    return
                r = dbh.Api(srv, fx.admin.token).patch("/v1/users/" + a["id"], {"role": "user"})
                is_(r.status, 200, "a demotion through this server")
                refused_everywhere(p, "a demotion without any notification")


@case(timeout=90)
def no_triggers_no_cache(fx):
    """With a notify trigger disabled, a (re)connected listener never counts as up: every
    check goes to the database, so a psql change the trigger would have announced is
    still seen at once. Re-enabled, the cache comes back."""
    srv = fx.server
    wait_listeners(srv)
    fx.db.sql("ALTER TABLE users DISABLE TRIGGER users_notify_update")
    try:
        killed = fx.db.sql("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) "
                           "FROM pg_stat_activity WHERE application_name = %s "
                           "AND datname = current_database()" % sql_literal(APP_NAME))
        is_(killed.strip(), str(WORKERS), "the listeners were terminated")
        ok(wait_until(lambda: "notify triggers" in srv.stdout() + srv.stderr(), 10),
           "the reconnect says the triggers are missing")
        a = new_user(fx.admin, role="admin")
        other = new_user(fx.admin)
        conns = [srv.client(timeout=10) for _ in range(8)]
        try:
            path = "/v1/users/" + other["id"]
            h = {"Authorization": "Bearer " + a["token"]}
            first = [c.request("GET", path, headers=h).status for c in conns]
            hits = srv.metric("glasgow_auth_cache_hits_total")
            fx.db.sql("UPDATE users SET role = 'user' WHERE id = %s" % sql_literal(a["id"]))
            after = [c.request("GET", path, headers=h).status for c in conns]
            ok(first == [200] * 8 and after == [404] * 8,
               "without the trigger, a demotion in psql is seen at once on every connection",
               repr(first), repr(after))
            is_(srv.metric("glasgow_auth_cache_hits_total"), hits, "no hit meanwhile")
            is_(srv.metric("glasgow_auth_cache_listener_up"), 0, "the listeners stay down")
        finally:
            for c in conns:
                c.close()
    finally:
        fx.db.sql("ALTER TABLE users ENABLE TRIGGER users_notify_update")
    wait_listeners(srv)  # within the 5 s backoff cap


STALE_SCRIPT = r"""
local ac = require "glasgow.authcache"
local db = require "glasgow.db"
local crypto = require "glasgow.crypto"
local out = {}
local function check(cond, name) out[#out + 1] = (cond and "ok " or "not ok ") .. name end
for _ = 1, 300 do                      -- the listener connects while the loop runs
    if ac.ticket() then break end
    db.call("SELECT pg_sleep(0.01)")
end
check(ac.enabled(), "enabled")
local h = crypto.sha256("token-a")
local t = ac.ticket()
check(t ~= nil, "a ticket once the listener is up")
check(ac.put(t, h, 60, "id-a", "a@example.com", "A", "user") == true, "stored")
check(ac.get(h) == "id-a", "hit")
-- an invalidation in this process between ticket and put: not stored
t = ac.ticket()
ac.forget_user("someone-else")
check(ac.put(t, crypto.sha256("token-b"), 60, "id-b", "b", "B", "user") == false,
      "stale after a local revocation")
check(ac.get(crypto.sha256("token-b")) == nil, "nothing cached for it")
-- a notification (any writer) processed between ticket and put: not stored
t = ac.ticket()
db.call("SELECT pg_notify('glasgow_auth', 'u:nobody')")
local seen = false
for _ = 1, 200 do                      -- until the listener has read it
    if ac.ticket() ~= t then seen = true break end
    db.call("SELECT pg_sleep(0.005)")
end
check(seen, "the notification advanced the generation")
check(ac.put(t, crypto.sha256("token-c"), 60, "id-c", "c", "C", "user") == false,
      "stale after a notification")
-- targeted notifications
db.call("SELECT pg_notify('glasgow_auth', 't:' || $1)", crypto.hex(h))
for _ = 1, 200 do
    if ac.get(h) == nil then break end
    db.call("SELECT pg_sleep(0.005)")
end
check(ac.get(h) == nil, "a token notification evicts it")
t = ac.ticket()
check(ac.put(t, h, 60, "id-a", "a", "A", "user"), "stored again")
check(ac.put(ac.ticket(), crypto.sha256("x"), 0, "id-x", "x", "X", "user") == false,
      "an expired token is not stored")
ac.forget_token(h)
check(ac.get(h) == nil, "forget_token evicts at once")
-- check(): the Authorization value read, the token hashed and looked up in one call
local tok = crypto.random(32)
local key = crypto.sha256(tok)
check(ac.check("Bearer " .. crypto.base64url(tok)) == key, "check returns the token's SHA-256")
check(select("#", ac.check("Bearer " .. crypto.base64url(tok))) == 1, "a miss: the hash alone")
check(ac.put(ac.ticket(), key, 60, "id-k", "k@x", "K", "admin"), "stored under check's key")
local k2, id2, email2, name2, role2 = ac.check("bearer " .. crypto.base64url(tok))
check(k2 == key and id2 == "id-k" and email2 == "k@x" and name2 == "K" and role2 == "admin",
      "a hit: the hash and the cached fields")
check(ac.check("Bearer " .. crypto.base64url(tok) .. "A") == nil, "a malformed value is nil")
check(ac.check("Basic " .. crypto.base64url(tok)) == nil, "another scheme is nil")
check(not pcall(ac.get, "short"), "a hash of the wrong length raises")
io.write(table.concat(out, "\n"), "\n")
"""


@case
def stale_answers_are_not_stored(fx):
    script = os.path.join(harness.mkdtemp(), "stale.lua")
    with open(script, "w") as f:
        f.write(STALE_SCRIPT)
    env = {"DATABASE_URL": fx.db.url, "GLASGOW_AUTH_CACHE_TTL_S": "60"}
    p = harness.run_glasgow(["run", script], env=env, timeout=60)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith(("ok ", "not ok "))]
    ok(p.returncode == 0 and len(lines) >= 19 and all(ln.startswith("ok ") for ln in lines),
       "glasgow run: the ticket guards put()", p.stdout[-2000:], p.stderr[-2000:])


SPIN_ROUTE = r"""
local glasgow = require "glasgow"
local auth = require "routes._auth"
return {
    {
        method = "GET", path = "/test/late/:ms",
        params = { type = "object", properties = { ms = { type = "string" } }, required = { "ms" } },
        handler = function(req)
            glasgow.sleep(tonumber(req.params.ms)) -- resumed by a timer, then checks the token
            return 200, { id = auth.authenticate(req).id }
        end,
    },
    {
        method = "GET", path = "/test/spin/:ms",
        params = { type = "object", properties = { ms = { type = "string" } }, required = { "ms" } },
        handler = function(req)
            local ms = tonumber(req.params.ms)
            -- resumed by a timer, the spin runs inside the loop's iteration, after it
            -- read its events: what arrives meanwhile is read by libmicrohttpd or handled
            -- by timers before the loop reads its sockets again
            glasgow.sleep(1)
            glasgow.log("info", "spin started")
            local deadline = glasgow.monotonic_ms() + ms
            while glasgow.monotonic_ms() < deadline do end -- holds the worker's loop
            return 200, { spun = ms }
        end,
    },
}
"""


class RawConn:
    """One keep-alive connection on which a request can be sent before its answer is
    read (harness.Client reads each answer at once)."""

    def __init__(self, srv):
        self.sock = socket.create_connection((harness.HOST, srv.port), timeout=30)
        self.buf = b""

    def send(self, path, headers=None):
        lines = ["GET %s HTTP/1.1" % path, "Host: test"]
        lines += ["%s: %s" % kv for kv in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def status(self):
        """Reads one whole answer (headers, then Content-Length bytes); its status."""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                return "closed: %r" % self.buf[:200]
            self.buf += chunk
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            rest += chunk
        self.buf = rest[length:]
        return int(head.split(b" ", 2)[1])

    def get(self, path, headers=None):
        self.send(path, headers)
        return self.status()

    def close(self):
        self.sock.close()


def notified_while_busy(fx, srv, how):
    """One worker is held by a handler that spins; a request with a cached token is
    sent (how: "pipelined" behind the spin on its connection, on "another connection"
    kept alive, or "after a sleep": a request that checks the token when a timer
    resumes it, before the loop reads its sockets again), then the token is revoked in
    psql, so its NOTIFY reaches the socket after the request. Once the worker is free
    the request must be refused."""
    pipelined = how == "pipelined"
    u = new_user(fx.admin)
    path = "/v1/users/" + u["id"]
    auth = {"Authorization": "Bearer " + u["token"]}
    conn, spin = RawConn(srv), RawConn(srv)
    try:
        firsts = [conn.get(path, auth)]
        ok(wait_until(lambda: srv.metric("glasgow_auth_cache_listener_up") == 1, 15),
           "the listener is up")
        firsts += [conn.get(path, auth) for _ in range(2)]
        is_(spin.get("/test/spin/0"), 200, "the spin route answers")
        hits = srv.metric("glasgow_auth_cache_hits_total")
        bypasses = srv.metric("glasgow_auth_cache_bypasses_total")
        ok(firsts == [200] * 3 and hits >= 1, "the token is cached", repr(firsts), hits)
        started = srv.stdout().count("spin started")
        if pipelined:
            conn.send("/test/spin/2000")
            conn.send(path, auth)
        elif how == "after a sleep":
            conn.send("/test/late/500", auth)  # its timer is due while the worker spins
            spin.send("/test/spin/2000")
        else:
            spin.send("/test/spin/2000")
        ok(wait_until(lambda: srv.stdout().count("spin started") > started, 10),
           "the worker is busy")
        t0 = time.monotonic()
        if how == "another connection":
            conn.send(path, auth)
        fx.db.sql("UPDATE auth_tokens SET revoked_at = now() WHERE token_hash = '\\x%s'" %
                  token_hash_hex(u["token"]))
        took = time.monotonic() - t0
        ok(took < 1.2, "%s: the revocation committed while the worker was still busy" % how,
           "%.2f s" % took)
        is_((conn if pipelined else spin).status(), 200, "the spinning handler finished")
        is_(conn.status(), 401, "%s: the request that was waiting is refused" % how)
        is_(srv.metric("glasgow_auth_cache_hits_total"), hits, "no hit for the revoked token")
        is_(srv.metric("glasgow_auth_cache_bypasses_total"), bypasses,
            "nor a bypass: the cache was consulted and the entry was gone")
    finally:
        conn.close()
        spin.close()


@case(timeout=90)
def notification_overtakes_waiting_request(fx):
    """No system call per lookup, and still no request overtakes a notification that
    arrived before it by 1 ms or more: the listener's socket is a priority watcher of
    the loop (runtime/loop.c), and a lookup in a batch that has run longer than that
    reads the socket itself (pglisten_sync)."""
    # no ping while the worker spins: a ping left unanswered past its timeout would take
    # the listener down and bypass the cache, and the request would be refused for that
    env = dict(ENV, GLASGOW_WORKERS="1", GLASGOW_LUA_RUN_LIMIT_MS="20000",
               GLASGOW_DB_HEALTH_INTERVAL_MS="60000", GLASGOW_DB_HEALTH_TIMEOUT_MS="60000")
    with dbh.DbServer(fx.db, env=env, extra_routes={"spin.lua": SPIN_ROUTE}) as srv:
        for how in ("after a sleep", "pipelined", "another connection"):
            notified_while_busy(fx, srv, how)
        is_(srv.metric("glasgow_auth_cache_listener_losses_total"), 0,
            "the listener stayed up throughout")


def listener_count(fx):
    return fx.db.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                     "AND datname = current_database()" % sql_literal(APP_NAME)).strip()


@case
def ttl_zero_turns_it_off(fx):
    before = listener_count(fx)
    with dbh.DbServer(fx.db, env={"GLASGOW_WORKERS": "1", "GLASGOW_AUTH_CACHE_TTL_S": "0"}) as s:
        api = dbh.Api(s, fx.admin.token)
        codes = [api.get("/v1/users/" + fx.admin_id).status for _ in range(3)]
        ok(codes == [200, 200, 200], "authenticated reads work without the cache", repr(codes))
        m = s.metrics()
        ok(not any(k.startswith("glasgow_auth_cache_hits_total{") for k in m),
           "no worker cache exists")
        is_(listener_count(fx), before, "no listener connection is opened for it")
        ok("authcache off" in s.stdout() + s.stderr(), "the start-up line says it is off")


@case
def listener_unreachable_bypasses(fx):
    """GLASGOW_AUTH_LISTEN_URL names where the listener goes; one that never answers
    leaves the cache bypassed: every check asks the database, none is stored."""
    dead_pw = "s3cret-pw"
    dead = dbh.db_url(fx.db.name, "postgresql://nobody:%s@127.0.0.1:%d/x" %
                      (dead_pw, harness.free_port()))
    env = {"GLASGOW_WORKERS": "1", "GLASGOW_AUTH_LISTEN_URL": dead}
    with dbh.DbServer(fx.db, env=env) as s:
        api = dbh.Api(s, fx.admin.token)
        codes = [api.get("/v1/users/" + fx.admin_id).status for _ in range(4)]
        ok(codes == [200] * 4, "authenticated reads work with the listener down", repr(codes))
        is_(s.metric("glasgow_auth_cache_hits_total"), 0, "no hit")
        is_(s.metric("glasgow_auth_cache_stores_total"), 0, "nothing stored")
        ok(s.metric("glasgow_auth_cache_bypasses_total") >= 4, "every check bypassed the cache")
        is_(s.metric("glasgow_auth_cache_listener_up"), 0, "the listener is reported down")
        logs = s.stdout() + s.stderr()
        ok("LISTEN glasgow_auth on postgresql://nobody:***@" in logs,
           "the start-up line names it, with the password masked")
        ok(dead_pw not in logs, "the listener URL's password is never logged")


@case
def bad_settings_stop_start_up(fx):
    for env, name in (({"GLASGOW_AUTH_CACHE_TTL_S": "ten"}, "GLASGOW_AUTH_CACHE_TTL_S"),
                      ({"GLASGOW_AUTH_CACHE_TTL_S": "3601"}, "GLASGOW_AUTH_CACHE_TTL_S"),
                      ({"GLASGOW_AUTH_CACHE_SIZE": "0"}, "GLASGOW_AUTH_CACHE_SIZE"),
                      ({"GLASGOW_AUTH_LISTEN_URL": fx.db.url,
                        "GLASGOW_AUTH_LISTEN_URL_FILE": "/dev/null"}, "GLASGOW_AUTH_LISTEN_URL")):
        e = dict(env, DATABASE_URL=fx.db.url)
        p = harness.run_glasgow(["check", harness.REPO_ROUTES], env=e)
        ok(p.returncode != 0 and name in p.stderr,
           "a bad %s stops start-up, naming it" % "+".join(sorted(env)), p.stderr[-500:])


@case
def migration_triggers_exist(fx):
    n = fx.db.sql("SELECT count(*) FROM pg_trigger WHERE tgname LIKE '%notify%' "
                  "AND NOT tgisinternal")
    is_(n.strip(), "6", "six notify triggers on users and auth_tokens")
    # gc deleting dead tokens sends nothing (no cache can hold them)
    out = subprocess.run(
        ["psql", fx.db.url, "-qtAX", "-v", "ON_ERROR_STOP=1"],
        input="LISTEN glasgow_auth;\n"
              "INSERT INTO auth_tokens (token_hash, user_id, expires_at) "
              "SELECT sha256('dead-token'::bytea), id, now() - interval '1 hour' FROM users "
              "LIMIT 1;\n"
              "DELETE FROM auth_tokens WHERE token_hash = sha256('dead-token'::bytea);\n"
              "SELECT 'done';\n",
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=20)
    ok("done" in out.stdout and "notification" not in out.stdout.lower(),
       "deleting an expired token notifies nobody", out.stdout[-500:])


if __name__ == "__main__":
    main(dbh.DbFixture("authcache", env=ENV))
