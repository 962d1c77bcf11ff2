"""Helpers for the database integration tests (tests/integration/test_db_*.py).

Standard library only, on top of harness.py. Each test file gets its own
fresh database on the PostgreSQL that tests/run-all (or you) started, named
by GLASGOW_TEST_PG_DIR, GLASGOW_TEST_PG_PORT and GLASGOW_TEST_DATABASE_URL:

    bash .ci/pg start /tmp/pg 24871
    export GLASGOW_TEST_PG_DIR=/tmp/pg GLASGOW_TEST_PG_PORT=24871 \\
           GLASGOW_TEST_DATABASE_URL=$(bash .ci/pg url /tmp/pg 24871)
    GLASGOW_BIN=build/glasgow python3 tests/integration/test_db_users.py

Without those variables a file fails (one "not ok" and exit status 1):
tests/run-all always provides them, so a missing database is a broken
setup, never a reason to pass quietly.

What is here:
- psql(url, sql): runs SQL with the psql client (bounded in time).
- TestDB: a context manager that creates a database t_<prefix>_<random>,
  optionally migrates it (with a bootstrap admin) and drops it at the end.
- DbServer: harness.Server wired to a TestDB, optionally with extra route
  files copied next to the repository's routes.
- Api: a small client that remembers a bearer token, and records every
  response so a file can assert that no password or hash ever leaked.
- run_migrate(...): `glasgow migrate` as a subprocess.
"""
import base64
import hashlib
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import REPO, REPO_ROUTES, Server, diag, ok, run_glasgow  # noqa: E402

PG_URL = os.environ.get("GLASGOW_TEST_DATABASE_URL", "")
PG_DIR = os.environ.get("GLASGOW_TEST_PG_DIR", "")
PG_PORT = os.environ.get("GLASGOW_TEST_PG_PORT", "")
PG_SCRIPT = os.path.join(REPO, ".ci", "pg")
MIGRATIONS = os.path.join(REPO, "migrations")

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "admin-pass-" + secrets.token_hex(6)

# A server started here must see exactly the database we give it.
os.environ.pop("DATABASE_URL", None)
os.environ.pop("DATABASE_URL_FILE", None)


def skip_without_pg():
    """Fails the file at once when no test PostgreSQL is configured."""
    if not PG_URL:
        print("not ok 1 - GLASGOW_TEST_DATABASE_URL is not set (run tests/run-all, "
              "or start one with .ci/pg)", flush=True)
        print("1..1", flush=True)
        sys.exit(1)


def db_url(dbname, base=None):
    """The URL of database dbname on the same server as base (default: the test URL)."""
    u = urllib.parse.urlsplit(base or PG_URL)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + dbname, u.query, u.fragment))


def psql(url, sql, timeout=20, check=True):
    """Runs sql (one or more statements) with psql; returns stdout (unaligned, tuples only).

    Raises RuntimeError when psql fails and check is true.
    """
    p = subprocess.run(["psql", url, "-qtAX", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError("psql failed (%d): %s\nSQL: %s" % (p.returncode, p.stderr.strip(), sql))
    return p.stdout.strip()


def sql_literal(s):
    return "'" + s.replace("'", "''") + "'"


def run_migrate(url=None, args=(), env=None, timeout=30, url_file=None):
    """Runs `glasgow migrate ARGS` against url; returns CompletedProcess (text)."""
    e = {}
    if url is not None:
        e["DATABASE_URL"] = url
    if url_file is not None:
        e["DATABASE_URL_FILE"] = url_file
    e.update(env or {})
    return run_glasgow(["migrate"] + list(args), env=e, timeout=timeout)


def spawn_migrate(url, args=(), env=None):
    """Starts `glasgow migrate` without waiting; returns the Popen (stdout/stderr piped, text)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("GLASGOW_")}
    e["DATABASE_URL"] = url
    e.update(env or {})
    return harness.spawn([harness.GLASGOW_BIN, "migrate"] + list(args), env=e,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=REPO)


class TestDB:
    """A fresh database for one test file (or one case): created on enter, dropped on exit.

    migrate: run `glasgow migrate` on it; bootstrap: also create the admin
    ADMIN_EMAIL / ADMIN_PASSWORD through the bootstrap variables.
    """

    def __init__(self, prefix, migrate=True, bootstrap=True):
        self.name = "t_%s_%s" % (prefix, secrets.token_hex(4))
        self.migrate = migrate
        self.bootstrap = bootstrap
        self.url = db_url(self.name)
        self.created = False

    def __enter__(self):
        psql(PG_URL, "CREATE DATABASE %s" % self.name)
        self.created = True
        try:
            if self.migrate:
                env = {}
                if self.bootstrap:
                    pw_file = os.path.join(harness.mkdtemp("glasgow-db-"), "admin-password")
                    with open(pw_file, "w") as f:
                        f.write(ADMIN_PASSWORD + "\n")
                    env = {"GLASGOW_BOOTSTRAP_ADMIN_EMAIL": ADMIN_EMAIL,
                           "GLASGOW_BOOTSTRAP_ADMIN_PASSWORD_FILE": pw_file}
                p = run_migrate(self.url, env=env)
                if p.returncode != 0:
                    raise RuntimeError("glasgow migrate failed (%d): %s %s" %
                                       (p.returncode, p.stdout, p.stderr))
        except BaseException:
            self.drop()
            raise
        return self

    def sql(self, sql, timeout=20, check=True):
        return psql(self.url, sql, timeout=timeout, check=check)

    def drop(self):
        if not self.created:
            return
        for _ in range(3):
            try:
                psql(PG_URL, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.name, timeout=20)
                self.created = False
                return
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                diag("dropping %s: %s" % (self.name, e))
                time.sleep(1)

    def __exit__(self, *exc):
        self.drop()
        return False


def routes_with(extra):
    """The repository's routes/*.lua plus extra {name: text}, as Server(files=...) wants them."""
    files = {}
    for name in sorted(os.listdir(REPO_ROUTES)):
        if name.endswith(".lua"):
            with open(os.path.join(REPO_ROUTES, name)) as f:
                files[name] = f.read()
    files.update(extra or {})
    return files


def DbServer(db, env=None, extra_routes=None, **kw):
    """A harness.Server connected to db (a TestDB or a URL), with GLASGOW_* overrides in env."""
    e = {"DATABASE_URL": db if isinstance(db, str) else db.url, "GLASGOW_ACCESS_LOG": "false"}
    e.update(env or {})
    if extra_routes:
        return Server(files=routes_with(extra_routes), env=e, **kw)
    return Server(env=e, **kw)


# ---- the API ------------------------------------------------------------------------------

# Every response an Api saw, checked for secrets at the end of a file.
_seen = {"responses": 0, "leaks": []}
_secrets = set([ADMIN_PASSWORD])

_PW_KEY = re.compile(r'"[^"]*password[^"]*"\s*:', re.I)


def remember_secret(pw):
    """A plaintext password the tests sent: no response may ever contain it."""
    if len(pw) >= 8:
        _secrets.add(pw)


def check_response(method, path, r):
    """Records r if its body holds a password hash, a password-like JSON key, a plaintext
    password the tests used, or (in a 2xx body) the word "password" at all."""
    _seen["responses"] += 1
    try:
        text = r.body.decode("utf-8", "replace")
    except AttributeError:
        return
    why = []
    if "scrypt$" in text:
        why.append("contains scrypt$")
    if _PW_KEY.search(text):
        why.append("has a password key")
    if 200 <= r.status < 300 and "password" in text.lower():
        why.append("2xx body mentions password")
    for s in _secrets:
        if s in text:
            why.append("contains a plaintext password")
    if why:
        _seen["leaks"].append("%s %s -> %s (%s): %s" % (method, path, r.status, ", ".join(why),
                                                        text[:300]))


def assert_no_leaks():
    ok(_seen["responses"] > 0 and not _seen["leaks"],
       "none of the %d responses held a password, a hash or a password field" % _seen["responses"],
       *_seen["leaks"][:10])


class Api:
    """Talks to a server's public API; token is sent as "Authorization: Bearer TOKEN"."""

    def __init__(self, server, token=None, timeout=10.0):
        self.server = server
        self.token = token
        self.timeout = timeout

    def with_token(self, token):
        return Api(self.server, token, self.timeout)

    def call(self, method, path, body=None, token=None, headers=None, timeout=None):
        """One request on a fresh connection. token: overrides the Api's ("" sends none);
        a str or bytes body is sent as is, as application/json unless headers say otherwise."""
        h = dict(headers or {})
        tok = token if token is not None else self.token
        if tok and "Authorization" not in h:
            h["Authorization"] = "Bearer " + tok
        if isinstance(body, (str, bytes)) and "Content-Type" not in h:
            h["Content-Type"] = "application/json"
        r = self.server.request(method, path, body, h, timeout=timeout or self.timeout)
        check_response(method, path, r)
        return r

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.call("PATCH", path, body, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)

    def login(self, email, password):
        """Returns (token or None, response)."""
        r = self.call("POST", "/v1/auth/token", {"email": email, "password": password}, token="")
        tok = (r.json_or_none() or {}).get("access_token") if r.status == 200 else None
        return tok, r

    def create_user(self, email, name="Someone", password=None, role=None, token=None):
        """POST /v1/users; returns the response."""
        body = {"email": email, "name": name, "password": password or "pw-" + secrets.token_hex(8)}
        remember_secret(body["password"])
        if role is not None:
            body["role"] = role
        return self.call("POST", "/v1/users", body, token=token)


def login_from(server, addr, email, password, timeout=10):
    """POST /v1/auth/token from source address addr (any 127.x.y.z is this host), on a
    fresh connection; returns the Response (checked for secrets like an Api's)."""
    import http.client
    import json
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout,
                                   source_address=(addr, 0))
    try:
        c.request("POST", "/v1/auth/token", json.dumps({"email": email, "password": password}),
                  {"Content-Type": "application/json"})
        r = c.getresponse()
        resp = harness.Response(r.status, harness._headers_of(r.getheaders()), r.read(),
                                r.reason)
    finally:
        c.close()
    check_response("POST", "/v1/auth/token", resp)
    return resp


def new_user(admin, role="user", name="Someone"):
    """Creates a user through admin (an Api with an admin token) and logs in as it.

    Returns dict(id, email, password, token, api)."""
    email = "u-%s@example.com" % secrets.token_hex(5)
    pw = "pw-" + secrets.token_hex(8)
    r = admin.create_user(email, name=name, password=pw, role=role)
    if r.status != 201:
        raise AssertionError("creating %s answered %s %r" % (email, r.status, r.body[:300]))
    uid = r.json()["id"]
    tok, lr = admin.login(email, pw)
    if not tok:
        raise AssertionError("login as %s answered %s %r" % (email, lr.status, lr.body[:300]))
    return {"id": uid, "email": email, "password": pw, "token": tok, "api": admin.with_token(tok)}


def error_of(r):
    """(code, message) of an error response, or (None, None)."""
    e = (r.json_or_none() or {}).get("error") if isinstance(r.json_or_none(), dict) else None
    if not isinstance(e, dict):
        return None, None
    return e.get("code"), e.get("message")


def token_hash_hex(token):
    """The hex SHA-256 of a base64url token, as auth_tokens.token_hash stores it."""
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    return hashlib.sha256(raw).hexdigest()


def new_raw_token():
    """A well-formed random token (43 base64url characters) and its hash hex."""
    raw = secrets.token_bytes(32)
    tok = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return tok, hashlib.sha256(raw).hexdigest()


def metrics_text(server):
    r = server.admin("/metrics")
    return r.body.decode("utf-8", "replace") if r.status == 200 else ""


def pg_ctl(action, timeout=60):
    """`.ci/pg stop|start` on the test server's directory and port; returns CompletedProcess."""
    args = ["bash", PG_SCRIPT, action, PG_DIR] + ([PG_PORT] if action == "start" else [])
    return subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)


def pg_script(*args, env=None, timeout=90):
    """`bash .ci/pg ARGS` with env added to the environment; returns CompletedProcess (text)."""
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(["bash", PG_SCRIPT] + list(args), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, env=e)


def pick_pg_port():
    """A loopback port that was free a moment ago, below the ephemeral range (as
    tests/run-all picks its own), so no client socket in TIME_WAIT holds it."""
    import random
    import socket
    for _ in range(50):
        port = 20000 + random.randrange(10000)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port between 20000 and 30000")


def pg_reachable():
    try:
        return psql(PG_URL, "SELECT 1", timeout=5) == "1"
    except (RuntimeError, subprocess.TimeoutExpired):
        return False


class DbFixture:
    """For main(fixture=...): a fresh migrated TestDB, a server on it and an admin token.

    Attributes: db (TestDB), server (harness.Server), anon (Api without a
    token), admin (Api with the bootstrap admin's token), admin_id.
    """

    def __init__(self, prefix, env=None, extra_routes=None):
        self.prefix = prefix
        self.env = env
        self.extra_routes = extra_routes
        self.db = None
        self.server = None

    def __enter__(self):
        self.db = TestDB(self.prefix).__enter__()
        try:
            self.server = DbServer(self.db, env=self.env,
                                   extra_routes=self.extra_routes).__enter__()
            self.anon = Api(self.server)
            tok, r = self.anon.login(ADMIN_EMAIL, ADMIN_PASSWORD)
            if not tok:
                raise RuntimeError("admin login answered %s %r" % (r.status, r.body[:300]))
            self.admin = Api(self.server, tok)
            self.admin_id = self.db.sql("SELECT id FROM users WHERE email = %s" %
                                        sql_literal(ADMIN_EMAIL))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        try:
            if self.server is not None:
                self.server.__exit__(None, None, None)
        finally:
            if self.db is not None:
                self.db.__exit__(None, None, None)
        return False
