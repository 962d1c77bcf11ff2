"""The local PostgreSQL that `make run` and the tests start (.ci/pg).

- As root with the directory inside a mode-700 parent (a checkout in
  /root, as on most servers and containers), the postgres user cannot
  reach it: .ci/pg must still start the server, with its files under
  /var/lib/glasgow-dev/<hash> owned by postgres, the password kept in the
  directory, and the parent's mode untouched. Skipped (and counted as a
  skip, not a pass) when not running as root.
- A kept cluster (what `make run` starts) runs with fsync on, and keeps its
  data across a stop and start; a throwaway one (PG_THROWAWAY=1, what
  tests/run-all starts) runs with fsync off, also after a restart.
"""
import os
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import case, diag, is_, main, ok  # noqa: E402
import dbharness as dbh  # noqa: E402


def start(d, env=None):
    """Starts a cluster in d on a free port; returns (port, CompletedProcess)."""
    for _ in range(5):
        port = str(dbh.pick_pg_port())
        p = dbh.pg_script("start", d, port, env=env)
        if p.returncode == 0 or "already in use" not in p.stderr:
            return port, p
    return port, p


def sql(d, port, query):
    url = dbh.pg_script("url", d, port).stdout.strip()
    return dbh.psql(url, query, timeout=20)


@case(timeout=120)
def kept_cluster_in_a_mode_700_home():
    if os.geteuid() != 0:
        ok(True, "a checkout the postgres user cannot reach # SKIP not running as root "
           "(PostgreSQL then runs as the caller, who always reaches its own directory)")
        return
    home = harness.mkdtemp("glasgow-home-")
    os.chmod(home, 0o700)
    d = os.path.join(home, "glasgow", ".data", "pg")
    try:
        port, p = start(d)
        ok(p.returncode == 0, ".ci/pg start succeeds for %s inside a mode-700 parent" % d,
           p.stdout, p.stderr)
        srv = dbh.pg_script("where", d).stdout.strip()
        diag("server files in %s" % srv)
        ok(srv.startswith("/var/lib/glasgow-dev/") and not srv.startswith(home),
           "... its files live under /var/lib/glasgow-dev/, where postgres can reach them", srv)
        st = os.stat(srv)
        ok(st.st_uid == os.stat("/var/lib/postgresql").st_uid and
           stat.S_IMODE(st.st_mode) == 0o700, "... in a directory postgres owns, mode 700",
           oct(st.st_mode), st.st_uid)
        with open(os.path.join(srv, "origin")) as f:
            is_(f.read().strip(), os.path.realpath(d), "... which names the directory it serves")
        is_(sql(d, port, "SELECT 1"), "1", "psql connects with the URL .ci/pg prints")
        pw = os.stat(os.path.join(d, "password"))
        ok(pw.st_uid == 0 and stat.S_IMODE(pw.st_mode) == 0o600,
           "the password stays in the directory, root's, mode 600", oct(pw.st_mode))
        is_(stat.S_IMODE(os.stat(home).st_mode), 0o700, "the parent is still mode 700")
        is_(sql(d, port, "SHOW fsync"), "on", "a kept cluster runs with fsync on")
        sql(d, port, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
        p = dbh.pg_script("stop", d)
        ok(p.returncode == 0 and not os.path.exists(os.path.join(srv, "data", "postmaster.pid")),
           ".ci/pg stop stops it", p.stderr)
        p = dbh.pg_script("start", d, port)
        ok(p.returncode == 0, "it starts again", p.stderr)
        is_(sql(d, port, "SELECT v FROM kept"), "42", "... with its data")
        is_(dbh.pg_script("where", d).stdout.strip(), srv, "... from the same place")
    finally:
        srv = dbh.pg_script("where", d).stdout.strip()
        p = dbh.pg_script("destroy", d)
        ok(p.returncode == 0 and not os.path.exists(d) and not os.path.exists(srv),
           ".ci/pg destroy removes the server's files and the directory", p.stderr)


@case(timeout=120)
def throwaway_cluster():
    d = harness.mkdtemp("glasgow-throwaway-")  # in /tmp, like the one tests/run-all starts
    try:
        port, p = start(d, env={"PG_THROWAWAY": "1"})
        ok(p.returncode == 0, "a throwaway cluster starts", p.stderr)
        is_(dbh.pg_script("where", d).stdout.strip(), os.path.realpath(d),
            "... in its own directory, which the server's user can reach")
        is_(sql(d, port, "SHOW fsync"), "off", "... with fsync off")
        dbh.pg_script("stop", d)
        p = dbh.pg_script("start", d, port)
        ok(p.returncode == 0, "it restarts without PG_THROWAWAY", p.stderr)
        is_(sql(d, port, "SHOW fsync"), "off", "... and still runs with fsync off")
    finally:
        dbh.pg_script("destroy", d)


if __name__ == "__main__":
    main()
