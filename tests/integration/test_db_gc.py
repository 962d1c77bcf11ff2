"""`glasgow gc` against a real PostgreSQL: the database steps.

Expired and revoked tokens go, valid ones stay; throttle rows past the
login window and device cookies past their lifetime go, recent ones
stay; the retired login_throttle table is gone after migrate (009) and
gc neither needs nor mentions it; the output is one
JSON line per step and a summary; a second run deletes nothing
(idempotent); --dry-run counts without deleting; bad arguments exit 2;
without an object store the file steps are skipped, said so, and no file
row is touched; it runs while a server serves the same database, whose
logins keep working. The store steps (stale pending rows and their
objects, objects without rows, multipart uploads) are tested once the
glasgow.s3 binding lands.
"""
import json
import os
import secrets
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import case, is_, main, ok  # noqa: E402
import dbharness as dbh  # noqa: E402
from dbharness import new_user  # noqa: E402

dbh.skip_without_pg()


def gc(fx, *args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("GLASGOW_")}
    e["DATABASE_URL"] = fx.db.url
    e.update(env or {})
    p = subprocess.run([harness.GLASGOW_BIN, "gc"] + list(args), env=e, cwd=dbh.REPO,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=60)
    lines = []
    for line in p.stdout.splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            lines.append({"unparsed": line})
    return p, lines


def step(lines, name):
    for x in lines:
        if x.get("step") == name:
            return x
    return {}


def summary(lines):
    for x in lines:
        if "summary" in x:
            return x["summary"]
    return {}


def n(fx, sql):
    return int(fx.db.sql(sql))


def seed(fx, uid):
    """Rows of each kind, old and recent; returns what should survive."""
    tok = "decode(md5(random()::text) || md5(random()::text), 'hex')"
    fx.db.sql(
        "INSERT INTO auth_tokens (token_hash, user_id, expires_at, revoked_at) VALUES "
        "(%s, '%s', now() - interval '1 minute', NULL),"
        "(%s, '%s', now() + interval '1 hour', now()),"
        "(%s, '%s', now() + interval '1 hour', NULL);" % (tok, uid, tok, uid, tok, uid)
        + "INSERT INTO auth_throttle (key, failures, last_failure) VALUES "
        "('account:old-%s', 3, now() - interval '2 hours'),"
        "('account:new-%s', 3, now());" % (secrets.token_hex(3), secrets.token_hex(3))
        + "INSERT INTO auth_devices (token_hash, user_id, last_login) VALUES "
        "(%s, '%s', now() - interval '40 days'), (%s, '%s', now());" % (tok, uid, tok, uid))


@case
def removes_what_is_stale_and_keeps_the_rest(fx):
    u = new_user(fx.admin)
    seed(fx, u["id"])
    tokens = n(fx, "SELECT count(*) FROM auth_tokens")
    stale_tokens = n(fx, "SELECT count(*) FROM auth_tokens WHERE expires_at < now() "
                         "OR revoked_at IS NOT NULL")
    ok(stale_tokens >= 2, "seeded stale tokens (%d)" % stale_tokens)
    # a bucket with a pending row: without a store gc must leave it alone
    bid = fx.db.sql("INSERT INTO buckets (name, owner_id) VALUES ('gc-%s', '%s') RETURNING id"
                    % (secrets.token_hex(4), u["id"])).splitlines()[0]
    fx.db.sql("INSERT INTO files (bucket_id, name, storage_key, content_type, updated_at) "
              "VALUES ('%s', 'p', '%s/' || gen_random_uuid(), 'text/plain', "
              "now() - interval '3 days')" % (bid, bid))

    p, lines = gc(fx, "--dry-run")
    is_(p.returncode, 0, "--dry-run exits 0", p.stderr)
    is_(step(lines, "auth_tokens").get("would_delete"), stale_tokens,
        "--dry-run counts the stale tokens")
    is_(n(fx, "SELECT count(*) FROM auth_tokens"), tokens, "  and deletes nothing")

    p, lines = gc(fx)
    is_(p.returncode, 0, "gc exits 0", p.stderr)
    ok(all("unparsed" not in x for x in lines), "every output line is JSON", p.stdout)
    is_(step(lines, "auth_tokens").get("deleted"), stale_tokens, "the stale tokens are deleted")
    is_(n(fx, "SELECT count(*) FROM auth_tokens WHERE expires_at < now() "
              "OR revoked_at IS NOT NULL"), 0, "  none is left")
    is_(n(fx, "SELECT count(*) FROM auth_tokens"), tokens - stale_tokens, "  the valid ones stay")
    is_(step(lines, "auth_throttle").get("deleted"), 1, "the old throttle row is deleted")
    is_(n(fx, "SELECT count(*) FROM auth_throttle WHERE key LIKE 'account:new-%'"), 1,
        "  a recent one stays")
    is_(step(lines, "auth_devices").get("deleted"), 1, "the unused device is deleted")
    is_(n(fx, "SELECT count(*) FROM auth_devices WHERE last_login < now() - interval '30 days'"),
        0, "  none that old is left")
    ok(n(fx, "SELECT count(*) FROM auth_devices") >= 1, "  the recent ones stay")
    is_(step(lines, "login_throttle"), {}, "gc has no login_throttle step any more")
    is_(fx.db.sql("SELECT to_regclass('login_throttle') IS NULL"), "t",
        "  the table is gone after migrate (009_drop_login_throttle.sql)")
    ok("skipped" in step(lines, "store"), "without a store the file steps are skipped",
       step(lines, "store"))
    is_(n(fx, "SELECT count(*) FROM files WHERE status = 'pending'"), 1,
        "  and the pending row is left alone")
    s = summary(lines)
    is_(s.get("store"), "skipped", "the summary says so")
    is_(s.get("min_age_s"), 86400, "the default age is a day")

    p, lines = gc(fx)
    is_(p.returncode, 0, "a second run exits 0")
    for name in ["auth_tokens", "auth_throttle", "auth_devices"]:
        is_(step(lines, name).get("deleted"), 0, "  and deletes no %s" % name)


@case
def arguments(fx):
    for args in [["--bogus"], ["--min-age"], ["--min-age", "-1"], ["--min-age", "x"],
                 ["--min-age=99999999999"]]:
        p, _ = gc(fx, *args)
        is_(p.returncode, 2, "%s exits 2" % " ".join(args))
        ok("usage" in p.stderr, "  with the usage", p.stderr)
    p, lines = gc(fx, "--min-age=60", "--dry-run")
    is_(p.returncode, 0, "--min-age=60 --dry-run runs", p.stderr)
    is_(summary(lines).get("min_age_s"), 60, "  with that age")
    p, _ = gc(fx, env={"DATABASE_URL": ""})
    ok(p.returncode != 0, "no database is an error", p.stderr)


@case
def while_serving(fx):
    # the fixture's server keeps answering logins while gc deletes tokens
    users = [new_user(fx.admin) for _ in range(3)]
    for x in users:
        fx.db.sql("UPDATE auth_tokens SET revoked_at = now() WHERE user_id = '%s'" % x["id"])
    p, lines = gc(fx)
    is_(p.returncode, 0, "gc runs beside the server", p.stderr)
    ok(step(lines, "auth_tokens").get("deleted", 0) >= 3, "the revoked tokens are gone")
    r = fx.admin.get("/v1/users?limit=1")
    is_(r.status, 200, "the admin's token still works", r.body)
    tok, r = fx.anon.login(users[0]["email"], users[0]["password"])
    ok(tok, "a new login works", r.status)
    r = fx.anon.get("/v1/users?limit=1", token=users[0]["token"])
    is_(r.status, 401, "a revoked (now deleted) token stays refused", r.body)


if __name__ == "__main__":
    main(dbh.DbFixture("gc"))
