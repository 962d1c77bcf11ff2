"""The users resource against a real PostgreSQL: /v1/users and /v1/users/:id.

Creation (201 + Location, 409 on duplicates including case and space
variants and a race of simultaneous creates), reading, changing and
deleting, listing (limit, offset, order, filters, count, Link), bad input
of every kind (400, never 500), SQL in values stored literally, the
authorization matrix (admin, user, anonymous, open sign-up), and that no
response ever carries a password or a password hash.
"""
import os
import re
import secrets
import sys
import threading
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import case, diag, is_, is_error_shape, main, ok, raw  # noqa: E402
import dbharness as dbh  # noqa: E402
from dbharness import Api, DbServer, error_of, new_user, remember_secret  # noqa: E402

dbh.skip_without_pg()

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
RFC3339Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
USER_KEYS = {"id", "email", "name", "role", "created_at", "updated_at"}
MISSING = "00000000-0000-4000-8000-000000000000"


def pw():
    p = "pw-" + secrets.token_hex(8)
    remember_secret(p)
    return p


def email(tag="u"):
    return "%s-%s@example.com" % (tag, secrets.token_hex(5))


def count_users(fx):
    return int(fx.db.sql("SELECT count(*) FROM users"))


@case
def create_and_read(fx):
    e = email("Create")
    r = fx.admin.post("/v1/users", {"email": "  " + e.upper() + " ", "name": "Ada Lovelace",
                                    "password": pw()})
    is_(r.status, 201, "admin POST /v1/users is 201", r.body)
    u = r.json_or_none() or {}
    is_(set(u), USER_KEYS, "the created user has exactly id, email, name, role, created_at, "
        "updated_at")
    ok(UUID.match(str(u.get("id"))), "id is a lower-case UUID", u.get("id"))
    is_(u.get("email"), e.lower(), "the email is stored trimmed and lower-cased")
    is_(u.get("role"), "user", "the role defaults to user")
    is_(u.get("name"), "Ada Lovelace", "name as sent")
    ok(RFC3339Z.match(str(u.get("created_at"))), "created_at is RFC 3339 with Z",
       u.get("created_at"))
    ok(RFC3339Z.match(str(u.get("updated_at"))), "updated_at is RFC 3339 with Z",
       u.get("updated_at"))
    is_(r.header("location"), "/v1/users/%s" % u.get("id"), "Location names the new user")
    ok((r.header("content-type") or "").startswith("application/json"), "201 is JSON")
    g = fx.admin.get(r.header("location") or "/none")
    is_(g.status, 200, "GET of the Location is 200", g.body)
    is_(g.json_or_none(), u, "GET returns what POST returned")

    r = fx.admin.post("/v1/users", {"email": email("adm"), "name": "Second admin",
                                    "password": pw(), "role": "admin"})
    is_(r.status, 201, "an admin can create an admin", r.body)
    is_((r.json_or_none() or {}).get("role"), "admin", "the new user's role is admin")
    r = fx.admin.post("/v1/users", {"email": email("rol"), "name": "Explicit user",
                                    "password": pw(), "role": "user"})
    is_(r.status, 201, "an admin can create a user with an explicit role user", r.body)


@case
def create_bad_input(fx):
    before = count_users(fx)
    good = {"email": email("bad"), "name": "N", "password": pw()}

    def with_(**kw):
        b = dict(good)
        for k, v in kw.items():
            if v is KeyError:
                b.pop(k, None)
            else:
                b[k] = v
        return b

    cases = [
        ("invalid JSON", b'{"email": "a@b.co", "name": ', None, "invalid_json"),
        ("JSON with a trailing comma", b'{"email": "a@b.co",}', None, "invalid_json"),
        ("an empty body", b"", None, None),
        ("a JSON array body", [], None, "validation_failed"),
        ("a JSON null body", b"null", None, "validation_failed"),
        ("a JSON string body", b'"x"', None, "validation_failed"),
        ("email as a number", with_(email=5), "body.email", "validation_failed"),
        ("email as null", with_(email=None), "body.email", "validation_failed"),
        ("email as an array", with_(email=["a@b.co"]), "body.email", "validation_failed"),
        ("name as a number", with_(name=42), "body.name", "validation_failed"),
        ("name as an object", with_(name={"x": 1}), "body.name", "validation_failed"),
        ("name as true", with_(name=True), "body.name", "validation_failed"),
        ("password as a number", with_(password=12345678), "body.password", "validation_failed"),
        ("role as a number", with_(role=1), "body.role", "validation_failed"),
        ("an unknown role", with_(role="superuser"), "body.role", "validation_failed"),
        ("role in the wrong case", with_(role="Admin"), "body.role", "validation_failed"),
        ("missing email", with_(email=KeyError), "body.email", "validation_failed"),
        ("missing name", with_(name=KeyError), "body.name", "validation_failed"),
        ("missing password", with_(password=KeyError), "body.password", "validation_failed"),
        ("an empty email", with_(email=""), "body.email", "validation_failed"),
        ("an empty name", with_(name=""), "body.name", "validation_failed"),
        ("an empty password", with_(password=""), "body.password", "validation_failed"),
        ("a 7-byte password", with_(password="1234567"), "body.password", "validation_failed"),
        ("a 1025-byte password", with_(password="p" * 1025), "body.password",
         "validation_failed"),
        ("a 201-character name", with_(name="n" * 201), "body.name", "validation_failed"),
        ("a 301-character email", with_(email="a" * 289 + "@example.com"), "body.email",
         "validation_failed"),
        ("a 255-character email", with_(email="a" * 243 + "@example.com"), "body.email",
         "validation_failed"),
        ("unknown field id", with_(id=MISSING), "body.id", "validation_failed"),
        ("unknown field created_at", with_(created_at="2020-01-01T00:00:00Z"),
         "body.created_at", "validation_failed"),
        ("unknown field updated_at", with_(updated_at="2020-01-01T00:00:00Z"),
         "body.updated_at", "validation_failed"),
        ("unknown field password_hash", with_(password_hash="scrypt$x"), "body.password_hash",
         "validation_failed"),
        ("unknown field is_admin", with_(is_admin=True), "body.is_admin", "validation_failed"),
        ("a NUL byte in the name", with_(name="a\u0000b"), None, None),
        ("a NUL byte in the email", with_(email="a\u0000b@example.com"), None, None),
    ]
    for addr in ["plainaddress", "a@b", "@example.com", "a@", "a b@example.com",
                 "a@@example.com", "a@example..com", "a..b@example.com", "a@example.com,b@x.co",
                 "<a@example.com>", "a@exam ple.com", "a@.com"]:
        cases.append(("invalid email %r" % addr, with_(email=addr), "body.email",
                      "validation_failed"))
    for desc, body, field, code in cases:
        r = fx.admin.post("/v1/users", body)
        is_(r.status, 400, "POST /v1/users with %s is 400" % desc, r.body)
        ok(is_error_shape(r.body, code), "... error shape%s" % (" with code " + code if code
                                                                  else ""), r.body)
        if field:
            det = ((r.json_or_none() or {}).get("error") or {}).get("details") or {}
            is_(det.get("field") if isinstance(det, dict) else None, field,
                "... details.field names %s" % field)
    r = fx.admin.post("/v1/users", b"email=a@b.co", headers={"Content-Type":
                                                             "application/x-www-form-urlencoded"})
    is_(r.status, 415, "a form-encoded body is 415", r.body)
    r = fx.admin.post("/v1/users", good, headers={"Content-Type": "text/plain"})
    is_(r.status, 415, "a JSON body sent as text/plain is 415", r.body)
    is_(count_users(fx), before, "none of the bad requests created a user")


@case
def sql_in_values_is_stored_literally(fx):
    name = "x'); DROP TABLE users;--"
    r = fx.admin.post("/v1/users", {"email": email("sqli"), "name": name, "password": pw()})
    is_(r.status, 201, "a name holding SQL is accepted", r.body)
    uid = (r.json_or_none() or {}).get("id")
    is_((r.json_or_none() or {}).get("name"), name, "it comes back literally")
    is_(fx.db.sql("SELECT name FROM users WHERE id = '%s'" % uid), name,
        "it is stored literally")
    is_(fx.db.sql("SELECT to_regclass('public.users') IS NOT NULL"), "t",
        "the users table still exists")
    for name in ["Robert'); DELETE FROM auth_tokens; --", "$1", "\\x00", "' OR '1'='1",
                 "%s%s%n", "{{7*7}}"]:
        r = fx.admin.patch("/v1/users/%s" % uid, {"name": name})
        is_(r.status, 200, "PATCH name %r is 200" % name, r.body)
        is_(fx.db.sql("SELECT name = %s FROM users WHERE id = '%s'" % (dbh.sql_literal(name),
                                                                      uid)), "t",
            "... stored literally")
    ok(int(fx.db.sql("SELECT count(*) FROM auth_tokens")) > 0, "auth_tokens were not emptied")
    q = urllib.parse.quote("' OR 1=1 --")
    r = fx.admin.get("/v1/users?email=%s" % q)
    is_(r.status, 200, "SQL in the email filter is just a value (200)", r.body)
    is_(len((r.json_or_none() or {}).get("items", [None])), 0, "... matching nothing")
    for order in ["email; DROP TABLE users", "email DESC", "password_hash", "1", "(select 1)",
                  "created_at,id", ""]:
        r = fx.admin.get("/v1/users?order=%s" % urllib.parse.quote(order))
        is_(r.status, 400, "order=%r is 400" % order, r.body)
        ok(is_error_shape(r.body, "validation_failed"), "... validation_failed", r.body)


@case
def unicode_names(fx):
    for name in ["Zoë 😀 漢字テスト", "é" * 200, "😀" * 200, "\u200b zero width",
                 "עברית"]:
        r = fx.admin.post("/v1/users", {"email": email("uni"), "name": name, "password": pw()})
        is_(r.status, 201, "a name of %d characters (%r...) is 201" % (len(name), name[:12]),
            r.body)
        u = r.json_or_none() or {}
        is_(u.get("name"), name, "... and comes back identical")
        if u.get("id"):
            g = fx.admin.get("/v1/users/%s" % u["id"])
            is_((g.json_or_none() or {}).get("name"), name, "... also through GET")
            is_(fx.db.sql("SELECT length(name) FROM users WHERE id = '%s'" % u["id"]),
                str(len(name)), "... stored as %d characters" % len(name))
    r = fx.admin.post("/v1/users", {"email": email("uni"), "name": "é" * 201, "password": pw()})
    is_(r.status, 400, "a name of 201 two-byte characters is 400", r.body)


@case
def duplicate_emails(fx):
    e = email("dup")
    r = fx.admin.post("/v1/users", {"email": e, "name": "First", "password": pw()})
    is_(r.status, 201, "first create is 201", r.body)
    for variant in [e, e.upper(), "  " + e + "  ", " " + e.capitalize(), "\t" + e + "\n"]:
        r = fx.admin.post("/v1/users", {"email": variant, "name": "Again", "password": pw()})
        is_(r.status, 409, "creating %r again is 409" % variant, r.body)
        ok(is_error_shape(r.body, "conflict"), "... error code conflict", r.body)
    is_(fx.db.sql("SELECT count(*) FROM users WHERE lower(email) = %s" % dbh.sql_literal(e)),
        "1", "one row holds the email")
    other = fx.admin.post("/v1/users", {"email": email("dup2"), "name": "Other",
                                        "password": pw()}).json_or_none() or {}
    r = fx.admin.patch("/v1/users/%s" % other.get("id"), {"email": " " + e.upper()})
    is_(r.status, 409, "PATCH another user's email to a case/space variant is 409", r.body)
    ok(is_error_shape(r.body, "conflict"), "... error code conflict", r.body)


@case(timeout=90)
def simultaneous_creates(fx):
    rounds = 10
    results = []
    for i in range(rounds):
        e = email("race%d" % i)
        barrier = threading.Barrier(2, timeout=10)
        out = [None, None]

        def go(k, e=e, barrier=barrier, out=out):
            try:
                barrier.wait()
                out[k] = fx.admin.post("/v1/users", {"email": e if k == 0 else e.upper(),
                                                     "name": "Race %d" % k,
                                                     "password": "race-password-1"},
                                       timeout=20).status
            except Exception as ex:  # noqa: BLE001
                out[k] = repr(ex)

        ts = [threading.Thread(target=go, args=(k,), daemon=True) for k in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(25)
        rows = fx.db.sql("SELECT count(*) FROM users WHERE email = %s" % dbh.sql_literal(e))
        results.append((sorted(map(str, out)), rows))
    bad = [r for r in results if r != (["201", "409"], "1")]
    ok(not bad, "%d pairs of simultaneous creates of one email: each exactly one 201 and one "
       "409, one row" % rounds, "bad rounds: %r" % bad)


@case
def read_change_delete(fx):
    e = email("rcd")
    p1 = pw()
    u = fx.admin.create_user(e, "Original", p1).json_or_none() or {}
    uid = u.get("id")
    path = "/v1/users/%s" % uid
    r = fx.admin.get("/v1/users/%s" % MISSING)
    is_(r.status, 404, "GET of a missing id is 404", r.body)
    ok(is_error_shape(r.body, "not_found"), "... not_found", r.body)
    for bad in ["123", "not-a-uuid", "00000000-0000-0000-0000-00000000000g", uid + "0",
                uid[:-1], "' OR 1=1 --", "%00", "..", uid.replace("-", "")]:
        p = "/v1/users/%s" % urllib.parse.quote(bad, safe="")
        for method, body in [("GET", None), ("PATCH", {"name": "x"}), ("DELETE", None)]:
            r = fx.admin.call(method, p, body)
            ok(r.status == 400 and is_error_shape(r.body), "%s /v1/users/%r is 400 with the "
               "error shape" % (method, bad), r.status, r.body)
    r = fx.admin.patch(path, {"name": "Renamed"})
    is_(r.status, 200, "PATCH name is 200", r.body)
    after = r.json_or_none() or {}
    is_(after.get("name"), "Renamed", "... name changed")
    is_(after.get("created_at"), u.get("created_at"), "... created_at unchanged")
    ok(str(after.get("updated_at")) > str(u.get("updated_at")), "... updated_at moved forward",
       after.get("updated_at"), u.get("updated_at"))
    r = fx.admin.patch(path, {"email": e.upper()})
    is_((r.status, (r.json_or_none() or {}).get("email")), (200, e),
        "PATCH a user's email to a case variant of its own is 200 (not a conflict with itself)",
        r.body)
    e2 = email("rcd2")
    r = fx.admin.patch(path, {"email": "  " + e2.upper()})
    is_(r.status, 200, "PATCH email is 200", r.body)
    is_((r.json_or_none() or {}).get("email"), e2, "... normalised like on create")
    for desc, body, status in [
            ("an empty object", {}, 400),
            ("an unknown field", {"nickname": "x"}, 400),
            ("id", {"id": MISSING}, 400),
            ("created_at", {"created_at": "2020-01-01T00:00:00Z"}, 400),
            ("password_hash", {"password_hash": "scrypt$ln=1"}, 400),
            ("name null", {"name": None}, 400),
            ("name empty", {"name": ""}, 400),
            ("a 201-character name", {"name": "n" * 201}, 400),
            ("a 301-character email", {"email": "a" * 289 + "@example.com"}, 400),
            ("a 1025-byte password", {"password": "p" * 1025}, 400),
            ("name as a number", {"name": 1}, 400),
            ("an invalid email", {"email": "nope"}, 400),
            ("a short password", {"password": "short"}, 400),
            ("an unknown role", {"role": "root"}, 400),
            ("an array", [], 400),
            ("invalid JSON", b"{", 400),
            ("a NUL byte in the name", {"name": "a\u0000b"}, 400)]:
        r = fx.admin.patch(path, body)
        ok(r.status == status and is_error_shape(r.body), "PATCH with %s is %d with the error "
           "shape" % (desc, status), r.status, r.body)
    is_(fx.db.sql("SELECT name FROM users WHERE id = '%s'" % uid), "Renamed",
        "the bad PATCHes changed nothing")
    r = fx.admin.patch("/v1/users/%s" % MISSING, {"name": "x"})
    is_(r.status, 404, "PATCH of a missing id is 404", r.body)
    p2 = pw()
    r = fx.admin.patch(path, {"password": p2})
    is_(r.status, 200, "PATCH password is 200", r.body)
    tok, lr = fx.anon.login(e2, p2)
    ok(tok, "the new password logs in", lr.status, lr.body)
    tok, lr = fx.anon.login(e2, p1)
    is_(lr.status, 401, "the old password does not")
    r = fx.admin.patch(path, {"role": "admin"})
    is_((r.status, (r.json_or_none() or {}).get("role")), (200, "admin"),
        "an admin can change a role", r.body)
    r = fx.admin.delete(path)
    is_(r.status, 204, "DELETE is 204", r.body)
    is_(r.body, b"", "... with no body")
    is_(fx.admin.get(path).status, 404, "GET after DELETE is 404")
    is_(fx.admin.delete(path).status, 404, "DELETE again is 404")
    is_(fx.admin.patch(path, {"name": "ghost"}).status, 404, "PATCH after DELETE is 404")


@case
def upper_case_uuid(fx):
    me = new_user(fx.admin)
    up = "/v1/users/%s" % me["id"].upper()
    a = fx.admin.get(up)
    u = me["api"].get(up)
    diag("admin GET upper-case id: %s; owner: %s" % (a.status, u.status))
    is_(a.status, 200, "an admin reads a record by the upper-case spelling of its id", a.body)
    is_(u.status, 200, "a user reading its own record by the upper-case spelling of its id "
        "is answered like an admin (the same resource)", u.body)
    is_(((a.json_or_none() or {}).get("id"), (u.json_or_none() or {}).get("id")),
        (me["id"], me["id"]), "... both answers are that user, its id in the stored "
        "lower-case spelling")


@case
def listing(fx):
    tag = secrets.token_hex(3)
    made = []
    for i in range(5):
        r = fx.admin.create_user("list-%s-%d@example.com" % (tag, i), name="L %d" % (4 - i))
        made.append(r.json_or_none() or {})
    total = int(fx.db.sql("SELECT count(*) FROM users"))
    r = fx.admin.get("/v1/users?count=true&limit=2")
    is_(r.status, 200, "list with count=true is 200", r.body)
    b = r.json_or_none() or {}
    is_(b.get("total"), total, "total is the number of users")
    is_(r.header("x-total-count"), str(total), "X-Total-Count is the number of users")
    is_((b.get("limit"), b.get("offset")), (2, 0), "limit and offset are echoed")
    is_(len(b.get("items") or []), 2, "limit=2 gives two items")
    link = r.header("link") or ""
    ok('rel="next"' in link, "a first page has a Link rel=next", link)
    ok('rel="prev"' not in link, "a first page has no rel=prev", link)
    m = re.search(r'<([^>]+)>;\s*rel="next"', link)
    seen = [x.get("id") for x in b.get("items") or []]
    pages = 0
    while m and pages < 50:
        pages += 1
        r = fx.admin.get(m.group(1))
        if r.status != 200:
            ok(False, "following Link next is 200", r.status, r.body)
            break
        seen += [x.get("id") for x in (r.json_or_none() or {}).get("items") or []]
        m = re.search(r'<([^>]+)>;\s*rel="next"', r.header("link") or "")
        if pages == 1:
            ok('rel="prev"' in (r.header("link") or ""), "a second page has rel=prev",
               r.header("link"))
    is_(len(seen), total, "following Link next visits every user once")
    is_(len(set(seen)), total, "... without duplicates")
    is_(fx.admin.get("/v1/users?limit=100").status, 200, "limit=100 is allowed")

    r = fx.admin.get("/v1/users?order=email&email=%s" % urllib.parse.quote(
        " LIST-%s-3@Example.com " % tag))
    items = (r.json_or_none() or {}).get("items") or []
    is_([x.get("email") for x in items], ["list-%s-3@example.com" % tag],
        "the email filter is normalised like the stored emails")
    r = fx.admin.get("/v1/users?count=true&email=list-%s-3@example.com" % tag)
    is_(((r.json_or_none() or {}).get("total"), r.header("x-total-count")), (1, "1"),
        "count=true counts only what the filters keep")
    r = fx.admin.get("/v1/users?created_after=%s" % urllib.parse.quote(
        "2000-01-01T02:00:00+02:00"))
    is_(r.status, 200, "created_after with a numeric offset is accepted", r.body)
    r = fx.admin.get("/v1/users?order=-email&limit=100")
    emails = [x.get("email") for x in (r.json_or_none() or {}).get("items") or []]
    is_(emails, sorted(emails, reverse=True), "order=-email sorts by email descending")
    r = fx.admin.get("/v1/users?order=email&limit=100")
    emails = [x.get("email") for x in (r.json_or_none() or {}).get("items") or []]
    is_(emails, sorted(emails), "order=email sorts by email ascending")
    r = fx.admin.get("/v1/users?order=name&limit=100")
    names = [x.get("name") for x in (r.json_or_none() or {}).get("items") or []]
    is_(names, sorted(names), "order=name sorts by name")
    r = fx.admin.get("/v1/users?order=-created_at&limit=100")
    ts = [x.get("created_at") for x in (r.json_or_none() or {}).get("items") or []]
    is_(ts, sorted(ts, reverse=True), "order=-created_at sorts newest first")
    cut = made[2].get("created_at")
    r = fx.admin.get("/v1/users?limit=100&created_after=%s" % urllib.parse.quote(cut))
    got = {x.get("id") for x in (r.json_or_none() or {}).get("items") or []}
    ok({made[2]["id"], made[3]["id"], made[4]["id"]} <= got and made[1]["id"] not in got,
       "created_after keeps users created at or after the time", r.status, r.body[:300])
    r = fx.admin.get("/v1/users?limit=100&created_before=%s" % urllib.parse.quote(cut))
    got = {x.get("id") for x in (r.json_or_none() or {}).get("items") or []}
    ok(made[1]["id"] in got and made[2]["id"] not in got,
       "created_before keeps users created before the time", r.status, r.body[:300])
    r = fx.admin.get("/v1/users?offset=%d" % (total + 10))
    is_((r.status, (r.json_or_none() or {}).get("items")), (200, []),
        "an offset past the end gives an empty page")

    for q in ["limit=0", "limit=-1", "limit=101", "limit=abc", "limit=1.5", "limit=",
              "limit=99999999999999999999", "limit=1e2", "offset=-1", "offset=abc",
              "offset=99999999999999999999", "offset=1000001", "offset=1.5",
              "count=maybe", "created_after=yesterday", "created_before=2020-13-01T00:00:00Z",
              "nope=1", "email=", "limit=1&limit=2"]:
        r = fx.admin.get("/v1/users?" + q)
        ok(r.status == 400 and is_error_shape(r.body), "GET /v1/users?%s is 400 with the error "
           "shape" % q, r.status, r.body)


@case
def authorization_matrix(fx):
    a = new_user(fx.admin, name="User A")
    b = new_user(fx.admin, name="User B")
    A = a["api"]
    bpath = "/v1/users/%s" % b["id"]
    missing = A.get("/v1/users/%s" % MISSING)
    is_(missing.status, 404, "a user GETting a missing id is 404")
    for method, body in [("GET", None), ("PATCH", {"name": "hacked"}), ("DELETE", None)]:
        r = A.call(method, bpath, body)
        is_(r.status, 404, "user A %s on user B's record is 404" % method, r.body)
        is_(error_of(r), error_of(missing), "... exactly like a missing record")
    r = A.patch(bpath, {"role": "admin"})
    is_(r.status, 404, "user A changing user B's role is 404", r.body)
    is_(fx.db.sql("SELECT name || ' ' || role FROM users WHERE id = '%s'" % b["id"]),
        "User B user", "user B's record is untouched")
    r = A.get("/v1/users?count=true&limit=100")
    bd = r.json_or_none() or {}
    is_([x.get("id") for x in bd.get("items") or []], [a["id"]],
        "a user's listing holds only itself")
    is_((bd.get("total"), r.header("x-total-count")), (1, "1"), "... and counts only itself")
    r = A.get("/v1/users?email=%s" % urllib.parse.quote(b["email"]))
    is_((r.json_or_none() or {}).get("items"), [], "filtering by another user's email finds "
        "nothing")
    r = A.get("/v1/users/%s" % a["id"])
    is_(r.status, 200, "a user reads itself", r.body)
    r = A.patch("/v1/users/%s" % a["id"], {"name": "A renamed"})
    is_((r.status, (r.json_or_none() or {}).get("name")), (200, "A renamed"),
        "a user changes its own name", r.body)
    for role in ["admin", "user"]:
        r = A.patch("/v1/users/%s" % a["id"], {"role": role})
        is_(r.status, 403, "a user setting its own role to %s is 403" % role, r.body)
        ok(is_error_shape(r.body, "forbidden"), "... forbidden", r.body)
    is_(fx.db.sql("SELECT role FROM users WHERE id = '%s'" % a["id"]), "user",
        "user A is still a user")
    r = A.post("/v1/users", {"email": email("bya"), "name": "x", "password": pw()})
    is_(r.status, 403, "POST /v1/users with a user token is 403", r.body)
    ok(is_error_shape(r.body, "forbidden"), "... forbidden", r.body)
    r = A.post("/v1/users", {"email": email("bya"), "name": "x", "password": pw(),
                             "role": "admin"})
    is_(r.status, 403, "... also when asking for role admin", r.body)

    r = fx.anon.post("/v1/users", {"email": email("anon"), "name": "x", "password": pw()})
    is_(r.status, 401, "POST /v1/users without a token is 401 (sign-up closed)", r.body)
    ok(is_error_shape(r.body, "unauthenticated"), "... unauthenticated", r.body)
    ok((r.header("www-authenticate") or "").startswith("Bearer"), "... with WWW-Authenticate: "
       "Bearer", r.header("www-authenticate"))
    for method, path, body in [("GET", "/v1/users", None), ("GET", bpath, None),
                               ("PATCH", bpath, {"name": "x"}), ("DELETE", bpath, None)]:
        r = fx.anon.call(method, path, body)
        ok(r.status == 401 and is_error_shape(r.body) and r.header("www-authenticate"),
           "%s %s without a token is 401 with WWW-Authenticate" % (method, path), r.status,
           r.body)

    r = fx.admin.get(bpath)
    is_(r.status, 200, "the admin reads user B", r.body)
    r = fx.admin.get("/v1/users?limit=100&count=true")
    ok((r.json_or_none() or {}).get("total", 0) >= 3, "the admin's listing holds everyone",
       r.body[:200])
    r = fx.admin.patch(bpath, {"role": "admin"})
    is_(r.status, 200, "the admin promotes user B", r.body)
    r = b["api"].get("/v1/users?count=true")
    is_(r.status, 401, "user B's existing token ended with the role change", r.body)
    tok, _ = fx.anon.login(b["email"], b["password"])
    r = b["api"].get("/v1/users?count=true", token=tok)
    ok((r.json_or_none() or {}).get("total", 0) >= 3, "user B, logged in again, lists everyone",
       r.body[:200])
    r = fx.admin.patch(bpath, {"role": "user"})
    is_(b["api"].get(bpath, token=tok).status, 401, "the demotion ends B's admin session")
    tok, _ = fx.anon.login(b["email"], b["password"])
    r = b["api"].get("/v1/users/%s" % a["id"], token=tok)
    is_(r.status, 404, "after demotion user B no longer reads user A", r.body)
    r = A.delete("/v1/users/%s" % a["id"])
    is_(r.status, 204, "a user deletes itself", r.body)
    r = A.get("/v1/users/%s" % a["id"])
    is_(r.status, 401, "the deleted user's token no longer authenticates", r.body)
    r = fx.admin.delete(bpath)
    is_(r.status, 204, "the admin deletes user B", r.body)


@case
def token_in_query_string(fx):
    me = new_user(fx.admin)
    tok = me["token"]
    for method, path in [("GET", "/v1/users/%s?access_token=%s" % (me["id"], tok)),
                         ("GET", "/v1/users?access_token=%s" % tok),
                         ("GET", "/v1/users?limit=5&access_token=%s" % tok),
                         ("PATCH", "/v1/users/%s?access_token=%s" % (me["id"], tok)),
                         ("DELETE", "/v1/users/%s?access_token=%s" % (MISSING, tok))]:
        body = {"name": "q"} if method == "PATCH" else None
        r = fx.anon.call(method, path, body)
        is_(r.status, 401, "%s %s (token in the URL, no header) is 401" %
            (method, path.replace(tok, "TOKEN")), r.body)
        r = me["api"].call(method, path, body)
        is_(r.status, 401, "... also with a valid Authorization header", r.body)
    is_(fx.db.sql("SELECT name FROM users WHERE id = '%s'" % me["id"]), "Someone",
        "nothing was changed through a URL token")


@case
def signup(fx):
    with DbServer(fx.db, env={"GLASGOW_ALLOW_SIGNUP": "true"}) as s:
        api = Api(s)
        e = email("signup")
        p = pw()
        r = api.post("/v1/users", {"email": e, "name": "Self made", "password": p})
        is_(r.status, 201, "with sign-up open, POST /v1/users without a token is 201", r.body)
        is_((r.json_or_none() or {}).get("role"), "user", "... as role user")
        ok(r.header("location"), "... with a Location")
        r = api.post("/v1/users", {"email": email("signup"), "name": "x", "password": pw(),
                                   "role": "user"})
        is_(r.status, 201, "... asking for role user explicitly is 201", r.body)
        r = api.post("/v1/users", {"email": email("signup"), "name": "x", "password": pw(),
                                   "role": "admin"})
        is_(r.status, 403, "... asking for role admin is 403", r.body)
        ok(is_error_shape(r.body, "forbidden"), "... forbidden", r.body)
        r = api.post("/v1/users", {"email": e.upper(), "name": "x", "password": pw()})
        is_(r.status, 409, "... a duplicate is 409", r.body)
        r = api.post("/v1/users", {"email": "not-an-email", "name": "x", "password": pw()})
        is_(r.status, 400, "... an invalid email is 400", r.body)
        tok, lr = api.login(e, p)
        ok(tok, "the signed-up user logs in", lr.status, lr.body)
        r = api.with_token(tok).get("/v1/users?count=true")
        is_((r.json_or_none() or {}).get("total"), 1, "... and sees only itself")
        is_(fx.db.sql("SELECT count(*) FROM users WHERE role = 'admin' AND email LIKE "
                      "'signup-%'"), "0", "sign-up created no admin")
    r = fx.anon.post("/v1/users", {"email": email("closed"), "name": "x", "password": pw()})
    is_(r.status, 401, "with sign-up closed (the default) the same request is 401", r.body)


@case
def two_authorization_headers(fx):
    me = new_user(fx.admin)
    req = ("GET /v1/users/%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
           "Authorization: Bearer %s\r\nConnection: close\r\n\r\n" %
           (me["id"], me["token"], me["token"])).encode()
    r = raw(fx.server.port, req)
    is_(r.status, 401, "two Authorization headers are 401", r)
    ok(is_error_shape(r.body), "... with the error shape", r.body)


# Words of PostgreSQL's own error texts; none may reach a client.
PG_WORDS = ["violates", "null value", "column", "constraint", "relation", "syntax",
            "parameter $", "UTF8", "0x00", "42P02", "23502", "23514", "22P02", "23505", "ERROR"]


def no_pg_text(r, what):
    text = r.body.decode("utf-8", "replace")
    found = [w for w in PG_WORDS if w in text]
    ok(not found, "%s: no PostgreSQL text in the body" % what, found, text[:300])


def row_of(fx, uid):
    return fx.db.sql("SELECT name || '|' || password_hash FROM users WHERE id = '%s'" % uid)


@case
def multibyte_passwords(fx):
    e = email("mb")
    p1 = pw()
    uid = (fx.admin.create_user(e, "Mb", p1).json_or_none() or {}).get("id")
    path = "/v1/users/%s" % uid
    before = row_of(fx, uid)

    # 600 two-byte characters: 600 characters for the schema, 1,200 bytes for
    # the hasher. It used to fail to hash, shift the SQL parameters and store
    # "Zed" as the password hash.
    p600 = "\u00e9" * 600
    remember_secret(p600)
    r = fx.admin.patch(path, {"name": "Zed", "password": p600})
    is_(r.status, 200, "PATCH name + a 600 x 'é' password is 200 (the hasher takes what the "
        "schema admits)", r.body)
    name, _, stored = row_of(fx, uid).partition("|")
    is_(name, "Zed", "... the name is Zed")
    ok(stored.startswith("scrypt$ln="), "... password_hash holds an scrypt hash, not the name",
       stored[:20])
    tok, lr = fx.anon.login(e, p600)
    ok(tok, "... and the new password logs in", lr.status, lr.body)
    _, lr = fx.anon.login(e, p1)
    is_(lr.status, 401, "... the old one does not")

    r = fx.admin.patch(path, {"password": "\u00e9" * 601})
    is_(r.status, 200, "PATCH a 601 x 'é' password alone is 200 (was 500, 42P02)", r.body)
    no_pg_text(r, "PATCH password alone")

    p_max = "\U0001F600" * 1024  # 1024 characters, 4096 bytes: the largest allowed
    remember_secret(p_max)
    r = fx.admin.patch(path, {"password": p_max})
    is_(r.status, 200, "PATCH a 1024 x U+1F600 password (4096 bytes, sent as JSON escapes) is "
        "200, not 413", r.body)
    tok, lr = fx.anon.login(e, p_max)
    ok(tok, "... and it logs in", lr.status, lr.body)

    before = row_of(fx, uid)
    for desc, body in [("name + a 1025 x 'é' password", {"name": "Nope", "password": "\u00e9" * 1025}),
                       ("a 1025 x U+1F600 password", {"password": "\U0001F600" * 1025}),
                       ("a 1025-character ASCII password", {"password": "p" * 1025})]:
        r = fx.admin.patch(path, body)
        ok(r.status == 400 and is_error_shape(r.body, "validation_failed"),
           "PATCH %s is 400 validation_failed" % desc, r.status, r.body)
        det = ((r.json_or_none() or {}).get("error") or {}).get("details") or {}
        is_(det.get("field"), "body.password", "... naming body.password")
        no_pg_text(r, "PATCH " + desc)
    is_(row_of(fx, uid), before, "the refused PATCHes changed nothing in the row")

    n = count_users(fx)
    e2 = email("mb2")
    r = fx.admin.post("/v1/users", {"email": e2, "name": "Mb2", "password": p600})
    is_(r.status, 201, "POST /v1/users with a 600 x 'é' password is 201 (was 400 quoting "
        "PostgreSQL)", r.body)
    tok, lr = fx.anon.login(e2, p600)
    ok(tok, "... and it logs in", lr.status, lr.body)
    r = fx.admin.post("/v1/users", {"email": email("mb3"), "name": "Mb3",
                                    "password": "\u00e9" * 1025})
    ok(r.status == 400 and is_error_shape(r.body, "validation_failed"),
       "POST with a 1025 x 'é' password is 400 validation_failed", r.status, r.body)
    no_pg_text(r, "POST with a 1025 x 'é' password")
    is_(count_users(fx), n + 1, "only the valid POST created a user")

    r = fx.admin.patch(path, {"name": "a\u0000b"})
    ok(r.status == 400 and is_error_shape(r.body, "validation_failed"),
       "PATCH a name holding NUL is 400 validation_failed", r.status, r.body)
    no_pg_text(r, "a NUL in the name")


@case
def database_errors_carry_our_message(fx):
    for kind, status, code in [("not_null", 400, "invalid_input"),
                               ("check", 400, "invalid_input"),
                               ("text", 400, "invalid_input"),
                               ("unique", 409, "conflict"),
                               ("params", 500, "internal")]:
        r = fx.admin.post("/t/dberror", {"kind": kind})
        ok(r.status == status and is_error_shape(r.body, code),
           "a %s error from PostgreSQL answers %d %s" % (kind, status, code), r.status, r.body)
        no_pg_text(r, "a %s error" % kind)


@case
def no_secrets_in_responses(fx):
    # Every response of this file went through dbharness.check_response.
    r = fx.admin.get("/v1/users?limit=100")
    body = r.body.decode()
    ok("scrypt$" not in body and "password" not in body,
       "a full listing holds no hash and no password field")
    dbh.assert_no_leaks()


# A test-only route that lets PostgreSQL refuse a statement in each way the
# error mapping knows, and raises the error as a handler would.
T_DBERROR = r'''
local db = require "glasgow.db"
local SQL = {
    not_null = "INSERT INTO users (email, name, password_hash) VALUES ('x@example.com', 'x', NULL)",
    check = "INSERT INTO users (email, name, password_hash) VALUES ('X@example.com', 'x', 'h')",
    text = "SELECT 'nope'::uuid",
    unique = "INSERT INTO users (email, name, password_hash) SELECT email, name, password_hash " ..
             "FROM users LIMIT 1",
    params = "SELECT $0::int",
}
return {
    {
        method = "POST", path = "/t/dberror",
        body = { type = "object", required = { "kind" } },
        handler = function(req)
            db.call(SQL[req.body.kind])
            return 200, {}
        end,
    },
}
'''

if __name__ == "__main__":
    main(dbh.DbFixture("users", extra_routes={"t_dberror.lua": T_DBERROR}))
