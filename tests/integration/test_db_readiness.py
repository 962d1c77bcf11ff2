"""Readiness follows a PostgreSQL that answers, not one whose sockets are open.

Every process of a private PostgreSQL (its own cluster, started here with
.ci/pg, so that freezing it disturbs no other test) is stopped with
SIGSTOP: the connections stay open but nothing answers. /readyz must turn
503 within a bound set by GLASGOW_DB_HEALTH_INTERVAL_MS and
GLASGOW_DB_HEALTH_TIMEOUT_MS, stay 503 while the freeze lasts, answer at
once throughout (the admin thread never waits on the database), and turn
200 again soon after SIGCONT, when requests succeed again. /readyz itself
adds no database load: an idle pool sends one cheap probe per interval
however often it is asked.
"""
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import SLOW, case, diag, is_, main, ok, slow, wait_until  # noqa: E402
import dbharness as dbh  # noqa: E402

T_PING = r'''-- Test-only route for tests/integration/test_db_readiness.py.
local db = require "glasgow.db"
return {
    {
        method = "GET", path = "/t/ping",
        handler = function()
            return 200, { one = db.call("SELECT 1 AS one")[1].one }
        end,
    },
}
'''


class PrivatePg:
    """A throwaway PostgreSQL cluster of this file's own, and a way to freeze it."""

    def __enter__(self):
        self.dir = harness.mkdtemp("glasgow-ready-pg-")
        for _ in range(5):
            self.port = str(dbh.pick_pg_port())
            p = dbh.pg_script("start", self.dir, self.port, env={"PG_THROWAWAY": "1"})
            if p.returncode == 0:
                break
        if p.returncode != 0:
            raise RuntimeError("cannot start a private PostgreSQL: %s" % p.stderr)
        self.url = dbh.pg_script("url", self.dir, self.port).stdout.strip()
        self.frozen = []
        diag("private PostgreSQL on 127.0.0.1:%s (%s)" % (self.port, self.dir))
        return self

    def pids(self):
        """The postmaster and every process it started."""
        data = dbh.pg_script("where", self.dir).stdout.strip() + "/data"
        with open(os.path.join(data, "postmaster.pid")) as f:
            master = int(f.readline())
        out = [master]
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % entry) as f:
                    stat = f.read()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == master:
                out.append(int(entry))
        return out

    def freeze(self):
        """SIGSTOPs the postmaster first (so it starts nothing new), then its children."""
        pids = self.pids()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        self.frozen = pids
        return pids

    def thaw(self):
        for pid in self.frozen:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.frozen = []

    def __exit__(self, *exc):
        self.thaw()
        dbh.pg_script("stop", self.dir)
        return False


def server(pg, **env):
    e = {k: str(v) for k, v in env.items()}
    e.setdefault("GLASGOW_WORKERS", "2")
    return dbh.DbServer(pg.url, env=e, extra_routes={"t_ready.lua": T_PING})


def readyz(s):
    """(status or exception name, seconds taken)."""
    t0 = time.monotonic()
    try:
        return s.admin("/readyz", timeout=slow(3)).status, time.monotonic() - t0
    except Exception as e:  # noqa: BLE001 - a timeout is a result here
        return type(e).__name__, time.monotonic() - t0


def ping(s, timeout=10):
    try:
        return s.get("/t/ping", timeout=timeout).status
    except Exception as e:  # noqa: BLE001
        return type(e).__name__


def freeze_cycle(pg, s, hold, bound_down, bound_up, label):
    """Freezes pg for `hold` seconds; checks /readyz goes 503 within bound_down, stays 503,
    answers fast, and is 200 again within bound_up of the thaw with requests succeeding."""
    samples = []
    try:
        t0 = time.monotonic()
        pids = pg.freeze()
        diag("%s: froze %d PostgreSQL processes" % (label, len(pids)))
        t_down = None
        while time.monotonic() - t0 < hold:
            st, took = readyz(s)
            now = time.monotonic() - t0
            samples.append((now, st, took))
            if st == 503 and t_down is None:
                t_down = now
            time.sleep(0.1)
    finally:
        pg.thaw()
    t_thaw = time.monotonic()
    diag("%s: /readyz turned 503 %s s after the freeze" %
         (label, "%.2f" % t_down if t_down is not None else "never"))
    ok(t_down is not None and t_down <= bound_down,
       "%s: /readyz turns 503 within %.1f s of PostgreSQL freezing" % (label, bound_down),
       "first 503 at %r" % t_down, samples[:40])
    after = [st for t, st, _ in samples if t_down is not None and t > t_down]
    ok(after and all(st == 503 for st in after),
       "%s: ... and stays 503 while it is frozen (%d samples)" % (label, len(after)),
       sorted(set(map(str, after))))
    # /readyz reads atomics: it answers at once, where waiting on the frozen
    # database would take the whole freeze (or the 3 s client timeout)
    worst = max(took for _, _, took in samples)
    ok(worst < slow(1.0), "%s: /readyz answered every time within %.0f s during the freeze "
       "(slowest %.3f s)" % (label, slow(1.0), worst))
    up = wait_until(lambda: readyz(s)[0] == 200, bound_up, interval=0.05)
    t_up = time.monotonic() - t_thaw
    diag("%s: /readyz 200 again %.2f s after the thaw" % (label, t_up))
    ok(up, "%s: /readyz is 200 again within %.1f s of PostgreSQL resuming" % (label, bound_up))
    ok(wait_until(lambda: ping(s, timeout=5) == 200, 10, interval=0.1),
       "%s: a request that queries the database succeeds again" % label)
    res = [ping(s) for _ in range(10)]
    is_(res, [200] * 10, "%s: ... and the next 10 all succeed" % label)


@case(timeout=120)
def frozen_with_defaults(pg):
    with server(pg) as s:
        is_(ping(s), 200, "requests succeed with PostgreSQL up")
        ok(wait_until(lambda: readyz(s)[0] == 200, 5), "/readyz is 200 with PostgreSQL up")
        # an idle pool probes once per interval (1 s by default) however often /readyz asks
        p0 = s.metric("glasgow_db_health_probes_total")
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < 2.0:
            readyz(s)
            n += 1
        p1 = s.metric("glasgow_db_health_probes_total")
        took = time.monotonic() - t0
        diag("%d /readyz calls in %.1f s; the 2 workers sent %d probes" % (n, took, p1 - p0))
        ok(p1 > p0, "an idle pool sends health probes", p0, p1)
        ok(n >= 20 / SLOW and p1 - p0 <= 2 * (took / 1.0 + 1), "%d /readyz calls cost no database "
           "round trip: %d probes in %.1f s is the interval's rate" % (n, p1 - p0, took))

        # the original report: requests flowing, PostgreSQL frozen for 10 s
        log = []
        stop = threading.Event()

        def poll():
            while not stop.is_set():
                log.append(ping(s))
                time.sleep(0.05)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        try:
            # default interval 1 s + timeout 2 s: at most 3 s, plus slack for a busy machine
            freeze_cycle(pg, s, hold=10, bound_down=3.0 + slow(3.0), bound_up=3.0 + slow(2.0),
                         label="10 s freeze")
        finally:
            stop.set()
            poller.join(15)
        ok(set(map(str, log)) <= {"200", "503"}, "requests during the freeze and after answered "
           "200 or 503 (no 500, no hang)", sorted(set(map(str, log))))
        ok(s.metric("glasgow_db_health_timeouts_total") >= 1,
           "glasgow_db_health_timeouts_total counted the unanswered probe")
        msgs = [line.get("msg", "") for line in s.log_lines()]
        ok(any("did not answer" in m for m in msgs) and any("answers again" in m for m in msgs),
           "the log says when the database stopped and started answering",
           [m for m in msgs if "database" in m][:10])
        is_(s.admin("/livez").status, 200, "/livez stayed 200 (it never checks the database)")


@case(timeout=120)
def frozen_repeatedly_with_short_settings(pg):
    with server(pg, GLASGOW_DB_HEALTH_INTERVAL_MS=200, GLASGOW_DB_HEALTH_TIMEOUT_MS=500) as s:
        is_(ping(s), 200, "requests succeed with PostgreSQL up")
        ok(wait_until(lambda: readyz(s)[0] == 200, 5), "/readyz is 200 with PostgreSQL up")
        for i in range(3):
            # interval 0.2 s + timeout 0.5 s: at most 0.7 s, plus slack for a busy machine;
            # frozen for a second past that bound, so that "stays 503" has samples
            down = 0.7 + slow(2.0)
            freeze_cycle(pg, s, hold=max(3.0, down + 1.0), bound_down=down,
                         bound_up=0.7 + slow(2.3), label="freeze %d of 3" % (i + 1))


if __name__ == "__main__":
    main(PrivatePg())
