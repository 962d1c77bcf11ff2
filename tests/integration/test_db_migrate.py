"""`glasgow migrate` against a real PostgreSQL.

Three processes at once apply every migration exactly once (advisory
lock); a second run is a no-op; a changed, missing or out-of-order file
is refused with exit 1 before anything is applied; a failing migration
leaves nothing behind; the bootstrap admin is created once and never
overwrites an existing user; configuration errors and an unreachable
database fail with a clear message that does not reveal the password;
009 drops the retired login_throttle table from a database migrated up
to 007 (rows and all), and from one where it was already dropped.
"""
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import case, diag, free_port, is_, main, mkdtemp, ok  # noqa: E402
import dbharness as dbh  # noqa: E402
from dbharness import MIGRATIONS, TestDB, run_migrate, spawn_migrate  # noqa: E402

dbh.skip_without_pg()

FILES = sorted(f for f in os.listdir(MIGRATIONS) if f.endswith(".sql"))


def copy_migrations():
    d = os.path.join(mkdtemp("glasgow-mig-"), "migrations")
    shutil.copytree(MIGRATIONS, d)
    return d


def rows(db):
    return db.sql("SELECT version || ':' || name || ':' || checksum FROM glasgow_migrations "
                  "ORDER BY version").splitlines()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


@case(timeout=120)
def concurrent_runs_apply_once(_=None):
    # round 0 uses migrations/ as it is; rounds 1 and 2 add a file that takes
    # half a second, so the three runs surely overlap while one holds the lock
    slow = copy_migrations()
    write(os.path.join(slow, "990_slow.sql"),
          "CREATE TABLE slow_t (x int);\nSELECT pg_sleep(0.5);\nINSERT INTO slow_t VALUES (1);\n")
    for rnd in range(3):
        with TestDB("mig", migrate=False) as db:
            args = [slow] if rnd else []
            files = FILES + (["990_slow.sql"] if rnd else [])
            t0 = time.monotonic()
            procs = [spawn_migrate(db.url, args) for _ in range(3)]
            outs = []
            for p in procs:
                try:
                    out, err = p.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    out, err = p.communicate(timeout=5)
                outs.append((p.returncode, out, err))
            is_([o[0] for o in outs], [0, 0, 0], "round %d: three simultaneous migrate runs all "
                "exit 0" % rnd, *["stderr: " + o[2] for o in outs])
            diag("round %d: three runs took %.2f s" % (rnd, time.monotonic() - t0))
            applied = "".join(o[1] for o in outs)
            for f in files:
                is_(applied.count("applied " + f), 1, "round %d: %s applied by exactly one run" %
                    (rnd, f), applied)
            is_(db.sql("SELECT count(*) FROM glasgow_migrations"), str(len(files)),
                "round %d: glasgow_migrations has one row per file" % rnd)
            is_(db.sql("SELECT count(DISTINCT version) FROM glasgow_migrations"),
                str(len(files)), "round %d: no version recorded twice" % rnd)
            if rnd:
                is_(db.sql("SELECT count(*) FROM slow_t"), "1",
                    "round %d: the slow migration's insert ran once" % rnd)
            is_(db.sql("SELECT to_regclass('public.users') IS NOT NULL AND "
                       "to_regclass('public.auth_tokens') IS NOT NULL"), "t",
                "round %d: the tables exist" % rnd)


@case
def second_run_is_a_noop(_=None):
    with TestDB("mig", migrate=False) as db:
        p = run_migrate(db.url)
        is_(p.returncode, 0, "first run exits 0", p.stderr)
        before = db.sql("SELECT version || ' ' || applied_at FROM glasgow_migrations "
                        "ORDER BY version")
        tables = db.sql("SELECT count(*) FROM pg_class WHERE relkind = 'r' AND "
                        "relnamespace = 'public'::regnamespace")
        p = run_migrate(db.url)
        is_(p.returncode, 0, "second run exits 0", p.stderr)
        ok("up to date" in p.stdout and "applied " not in p.stdout,
           "second run says it is up to date and applies nothing", p.stdout)
        is_(db.sql("SELECT version || ' ' || applied_at FROM glasgow_migrations "
                   "ORDER BY version"), before, "second run leaves glasgow_migrations alone")
        is_(db.sql("SELECT count(*) FROM pg_class WHERE relkind = 'r' AND "
                   "relnamespace = 'public'::regnamespace"), tables, "... and the tables")
        d = copy_migrations()
        write(os.path.join(d, "900_extra.sql"), "CREATE TABLE extra_t (x int);\n")
        p = run_migrate(db.url, [d])
        is_(p.returncode, 0, "a new file in a migrations DIR argument is applied", p.stderr)
        ok("applied 900_extra.sql" in p.stdout, "... and reported", p.stdout)
        is_(db.sql("SELECT count(*) FROM glasgow_migrations"), str(len(FILES) + 1),
            "... and recorded")
        p = run_migrate(db.url, env={"GLASGOW_MIGRATIONS_DIR": d})
        is_(p.returncode, 0, "GLASGOW_MIGRATIONS_DIR names the directory too (no-op now)",
            p.stderr)


@case
def changed_missing_or_out_of_order_files_are_refused(_=None):
    with TestDB("mig", migrate=False) as db:
        d = copy_migrations()
        p = run_migrate(db.url, [d])
        is_(p.returncode, 0, "migrate a copy of migrations/", p.stderr)
        before = rows(db)
        first = os.path.join(d, FILES[0])
        with open(first) as f:
            orig = f.read()
        write(first, orig + "\n-- an innocent-looking comment\n")
        write(os.path.join(d, "950_new.sql"), "CREATE TABLE should_not_exist (x int);\n")
        p = run_migrate(db.url, [d])
        is_(p.returncode, 1, "a changed applied file: exit 1", p.stdout, p.stderr)
        ok(FILES[0] in p.stderr and "changed" in p.stderr, "... the message names the file and "
           "says it changed", p.stderr)
        is_(rows(db), before, "... glasgow_migrations unchanged")
        is_(db.sql("SELECT to_regclass('public.should_not_exist') IS NULL"), "t",
            "... and the pending new file was not applied")
        write(first, orig)
        os.remove(os.path.join(d, "950_new.sql"))

        missing = os.path.join(d, FILES[-1])
        keep = open(missing).read()
        os.remove(missing)
        p = run_migrate(db.url, [d])
        is_(p.returncode, 1, "an applied file that is missing: exit 1", p.stdout, p.stderr)
        ok("missing" in p.stderr, "... says it is missing", p.stderr)
        write(missing, keep)

        write(os.path.join(d, "000_early.sql"), "CREATE TABLE too_early (x int);\n")
        p = run_migrate(db.url, [d])
        is_(p.returncode, 1, "a new file numbered below the last applied one: exit 1",
            p.stdout, p.stderr)
        is_(db.sql("SELECT to_regclass('public.too_early') IS NULL"), "t", "... not applied")
        os.remove(os.path.join(d, "000_early.sql"))

        write(os.path.join(d, "960_bad_name!.sql"), "SELECT 1;\n")
        p = run_migrate(db.url, [d])
        is_(p.returncode, 1, "a badly named .sql file: exit 1", p.stdout, p.stderr)
        os.remove(os.path.join(d, "960_bad_name!.sql"))
        p = run_migrate(db.url, [d])
        is_(p.returncode, 0, "restored, the directory migrates again (no-op)", p.stderr)
        is_(rows(db), before, "nothing was recorded by the refused runs")


@case
def failing_migration_leaves_nothing(_=None):
    with TestDB("mig", migrate=False) as db:
        d = copy_migrations()
        write(os.path.join(d, "970_half.sql"),
              "CREATE TABLE half_done (x int);\nINSERT INTO half_done VALUES (1);\n"
              "SELECT * FROM no_such_table;\n")
        p = run_migrate(db.url, [d])
        is_(p.returncode, 1, "a failing migration: exit 1", p.stdout, p.stderr)
        ok("970_half.sql" in p.stderr, "... the message names the file", p.stderr)
        is_(db.sql("SELECT to_regclass('public.half_done') IS NULL"), "t",
            "... none of its statements stayed")
        is_(db.sql("SELECT count(*) FROM glasgow_migrations WHERE version = 970"), "0",
            "... it is not recorded")
        is_(db.sql("SELECT count(*) FROM glasgow_migrations"), str(len(FILES)),
            "... the earlier files were applied and recorded")
        write(os.path.join(d, "970_half.sql"), "CREATE TABLE half_done (x int);\n")
        p = run_migrate(db.url, [d])
        is_(p.returncode, 0, "fixed, it applies", p.stderr)


@case
def bootstrap_admin(_=None):
    tmp = mkdtemp("glasgow-boot-")
    pw1, pw2 = os.path.join(tmp, "pw1"), os.path.join(tmp, "pw2")
    write(pw1, "first-password-1\n")
    write(pw2, "second-password-2\n")
    with TestDB("boot", migrate=False) as db:
        env = {"GLASGOW_BOOTSTRAP_ADMIN_EMAIL": " Boot@Example.com ",
               "GLASGOW_BOOTSTRAP_ADMIN_PASSWORD_FILE": pw1}
        p = run_migrate(db.url, env=env)
        is_(p.returncode, 0, "migrate with a bootstrap admin exits 0", p.stderr)
        is_(db.sql("SELECT email || ' ' || role FROM users"), "boot@example.com admin",
            "the bootstrap admin is created (email normalised)")
        hash1 = db.sql("SELECT password_hash FROM users")
        ok(hash1.startswith("scrypt$") and "first-password" not in hash1,
           "its password is stored as an scrypt hash")
        ok("first-password" not in p.stdout + p.stderr, "migrate does not print the password")
        p = run_migrate(db.url, env={"GLASGOW_BOOTSTRAP_ADMIN_EMAIL": "boot@example.com",
                                     "GLASGOW_BOOTSTRAP_ADMIN_PASSWORD_FILE": pw2})
        is_(p.returncode, 0, "a second run with another password exits 0", p.stderr)
        is_(db.sql("SELECT count(*) || ' ' || min(password_hash) FROM users"), "1 " + hash1,
            "... still one user, with the first password")
        p = run_migrate(db.url, env={"GLASGOW_BOOTSTRAP_ADMIN_EMAIL": "other@example.com",
                                     "GLASGOW_BOOTSTRAP_ADMIN_PASSWORD_FILE": pw2})
        is_(p.returncode, 0, "a run naming another email exits 0", p.stderr)
        is_(db.sql("SELECT count(*) FROM users"), "1", "... and creates no second admin")
        with dbh.DbServer(db) as s:
            api = dbh.Api(s)
            tok, r = api.login("boot@example.com", "first-password-1")
            ok(tok, "the bootstrap admin logs in with the first password", r.status, r.body)
            tok2, r = api.login("boot@example.com", "second-password-2")
            is_(r.status, 401, "... not with the second")
            if tok:
                r = api.with_token(tok).get("/v1/users?count=true")
                is_((r.json_or_none() or {}).get("total"), 1, "... and it is an admin (lists "
                    "all)")

    with TestDB("boot", migrate=False) as db:
        p = run_migrate(db.url)
        is_(p.returncode, 0, "migrate without a bootstrap admin", p.stderr)
        db.sql("INSERT INTO users (email, name, role, password_hash) VALUES "
               "('boot@example.com', 'Existing', 'user', 'not-a-real-hash')")
        p = run_migrate(db.url, env={"GLASGOW_BOOTSTRAP_ADMIN_EMAIL": "  BOOT@example.com",
                                     "GLASGOW_BOOTSTRAP_ADMIN_PASSWORD_FILE": pw1})
        is_(p.returncode, 0, "bootstrap naming an existing non-admin user exits 0",
            p.stdout, p.stderr)
        is_(db.sql("SELECT count(*) || ' ' || min(name) || ' ' || min(role) || ' ' || "
                   "min(password_hash) FROM users"), "1 Existing user not-a-real-hash",
            "... the existing user is left exactly as it was")

    with TestDB("boot", migrate=False) as db:
        p = run_migrate(db.url, env={"GLASGOW_BOOTSTRAP_ADMIN_EMAIL": "boot@example.com"})
        is_(p.returncode, 1, "a bootstrap email without a password file: exit 1", p.stderr)
        ok("GLASGOW_BOOTSTRAP_ADMIN_PASSWORD_FILE" in p.stderr, "... naming the variable",
           p.stderr)
        p = run_migrate(db.url, env={"GLASGOW_BOOTSTRAP_ADMIN_EMAIL": "boot@example.com",
                                     "GLASGOW_BOOTSTRAP_ADMIN_PASSWORD_FILE":
                                         os.path.join(tmp, "nope")})
        is_(p.returncode, 1, "a missing password file: exit 1", p.stderr)
        short = os.path.join(tmp, "short")
        write(short, "short\n")
        p = run_migrate(db.url, env={"GLASGOW_BOOTSTRAP_ADMIN_EMAIL": "boot@example.com",
                                     "GLASGOW_BOOTSTRAP_ADMIN_PASSWORD_FILE": short})
        is_(p.returncode, 1, "a password under 8 characters: exit 1", p.stderr)
        for desc, text in [("4 two-byte characters (8 bytes)", "\u00e9" * 4),
                           ("1025 characters (more than the login route accepts)",
                            "\u00e9" * 1025),
                           ("bytes that are not UTF-8", "\udcff" * 10)]:
            f = os.path.join(tmp, "pw")
            with open(f, "w", encoding="utf-8", errors="surrogateescape") as fh:
                fh.write(text + "\n")
            p = run_migrate(db.url, env={"GLASGOW_BOOTSTRAP_ADMIN_EMAIL": "boot@example.com",
                                         "GLASGOW_BOOTSTRAP_ADMIN_PASSWORD_FILE": f})
            ok(p.returncode == 1 and "characters" in p.stderr, "a password of %s: exit 1 with "
               "the rule in characters" % desc, p.returncode, p.stderr)
        is_(db.sql("SELECT count(*) FROM users"), "0", "no user was created by those runs")


@case
def configuration_errors(_=None):
    p = run_migrate(None)
    ok(p.returncode != 0 and "DATABASE_URL" in p.stderr, "no DATABASE_URL: non-zero exit "
       "naming the variable", p.returncode, p.stderr)
    with TestDB("mig", migrate=False) as db:
        f = os.path.join(mkdtemp("glasgow-url-"), "url")
        write(f, db.url + "\n")
        p = run_migrate(None, url_file=f)
        is_(p.returncode, 0, "DATABASE_URL_FILE works", p.stdout, p.stderr)
        is_(db.sql("SELECT count(*) FROM glasgow_migrations"), str(len(FILES)),
            "... and migrated the database it names")
    secret = "wrong-pw-%d" % os.getpid()
    bad = dbh.PG_URL.replace(dbh.PG_URL.split("//", 1)[1].split("@", 1)[0],
                             "glasgow:" + secret)
    t0 = time.monotonic()
    p = run_migrate(bad, timeout=30)
    is_(p.returncode, 1, "a wrong password: exit 1", p.stdout, p.stderr)
    ok("cannot connect" in p.stderr, "... says it cannot connect", p.stderr)
    ok(secret not in p.stdout + p.stderr, "... without printing the password", p.stderr)
    port = free_port()
    t0 = time.monotonic()
    p = run_migrate("postgresql://glasgow:%s@127.0.0.1:%d/glasgow" % (secret, port), timeout=30)
    took = time.monotonic() - t0
    is_(p.returncode, 1, "nothing listening: exit 1", p.stdout, p.stderr)
    ok(secret not in p.stdout + p.stderr, "... without printing the password", p.stderr)
    ok(took < 10, "... within 10 s", "%.1f s" % took)
    diag("unreachable migrate took %.1f s" % took)


@case
def drop_login_throttle(_=None):
    old = copy_migrations()
    for f in os.listdir(old):
        if f.endswith(".sql") and int(f.split("_", 1)[0]) > 7:
            os.remove(os.path.join(old, f))
    ok("009_drop_login_throttle.sql" in FILES, "migrations/ holds 009_drop_login_throttle.sql")
    for desc, before in [("with rows", "INSERT INTO login_throttle (client, failures, "
                                        "window_start) VALUES ('10.0.0.1', 3, now())"),
                         ("dropped by hand", "DROP TABLE login_throttle")]:
        with TestDB("mig", migrate=False) as db:
            p = run_migrate(db.url, [old])
            is_(p.returncode, 0, "%s: migrating up to 007 exits 0" % desc, p.stderr)
            is_(db.sql("SELECT to_regclass('login_throttle') IS NOT NULL"), "t",
                "... and login_throttle exists then")
            db.sql(before)
            p = run_migrate(db.url)
            is_(p.returncode, 0, "%s: migrating to the end exits 0" % desc, p.stderr)
            ok("applied 009_drop_login_throttle.sql" in p.stdout, "... applying 009", p.stdout)
            is_(db.sql("SELECT to_regclass('login_throttle') IS NULL"), "t",
                "... and login_throttle is gone")
            is_(db.sql("SELECT count(*) FROM glasgow_migrations WHERE version = 9"), "1",
                "... recorded once")


if __name__ == "__main__":
    main()
