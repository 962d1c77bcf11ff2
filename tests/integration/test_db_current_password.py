"""PATCH /v1/users/:id with a new password needs the current one, against a real PostgreSQL.

A user (an admin too) changing its own password sends current_password:
without it 400 validation_failed naming body.current_password, wrong 403
invalid_current_password, and neither changes anything (the old password
still logs in, no session ends, other fields in the same request are not
written). Right, the change goes through. Multibyte passwords follow the
existing rules: the schema counts characters (1024 at most), the hasher
bytes. An admin setting another user's password needs no current one.
current_password without password is refused. Wrong guesses count against
the user's password changes, so they meet the same 429. A check that
cannot be made (the hashing queue full) answers the queue's 503 with
Retry-After, never 403, and changes nothing.
"""
import base64
import os
import secrets
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import case, is_, is_error_shape, main, ok  # noqa: E402
import dbharness as dbh  # noqa: E402
from dbharness import new_user, remember_secret  # noqa: E402

dbh.skip_without_pg()


def pw(tag="pw"):
    p = "%s-%s" % (tag, secrets.token_hex(8))
    remember_secret(p)
    return p


def details(r):
    return ((r.json_or_none() or {}).get("error") or {}).get("details") or {}


def row(fx, uid):
    return fx.db.sql("SELECT name || '|' || password_hash || '|' || updated_at FROM users "
                     "WHERE id = '%s'" % uid)


def live_tokens(fx, uid):
    return fx.db.sql("SELECT count(*) FROM auth_tokens WHERE user_id = '%s' AND "
                     "revoked_at IS NULL" % uid)


def refused_changes_nothing(fx, u, before, tokens, what):
    is_(row(fx, u["id"]), before, "%s: the row is unchanged" % what)
    is_(live_tokens(fx, u["id"]), tokens, "%s: no session ended" % what)
    tok, r = fx.anon.login(u["email"], u["password"])
    ok(tok, "%s: the old password still logs in" % what, r.status, r.body)


@case
def own_password_needs_the_current_one(fx):
    u = new_user(fx.admin)
    path = "/v1/users/%s" % u["id"]
    t2, _ = fx.anon.login(u["email"], u["password"])
    before, tokens = row(fx, u["id"]), live_tokens(fx, u["id"])
    new = pw("new")

    r = u["api"].patch(path, {"password": new, "name": "Not stored"})
    ok(r.status == 400 and is_error_shape(r.body, "validation_failed"),
       "without current_password: 400 validation_failed", r.status, r.body)
    is_(details(r).get("field"), "body.current_password", "... naming body.current_password")
    refused_changes_nothing(fx, u, before, live_tokens(fx, u["id"]), "missing current_password")
    tok, r = fx.anon.login(u["email"], new)
    is_(r.status, 401, "... and the new password does not log in")

    tokens = live_tokens(fx, u["id"])
    r = u["api"].patch(path, {"password": new, "name": "Not stored",
                              "current_password": "wrong-" + u["password"]})
    ok(r.status == 403 and is_error_shape(r.body, "invalid_current_password"),
       "a wrong current_password: 403 invalid_current_password", r.status, r.body)
    is_(details(r).get("field"), "body.current_password", "... naming body.current_password")
    ok(r.header("www-authenticate") is None, "... without WWW-Authenticate (the token is fine)",
       r.header("www-authenticate"))
    refused_changes_nothing(fx, u, before, live_tokens(fx, u["id"]), "wrong current_password")
    is_(u["api"].get(path).status, 200, "... the caller's token still works")
    tok, r = fx.anon.login(u["email"], new)
    is_(r.status, 401, "... and the new password does not log in")

    r = u["api"].patch(path, {"name": "Only a name", "current_password": u["password"]})
    ok(r.status == 400 and is_error_shape(r.body, "validation_failed"),
       "current_password without password: 400 validation_failed", r.status, r.body)
    is_(details(r).get("field"), "body.current_password", "... naming body.current_password")
    for desc, cur in [("an empty", ""), ("a number as", 12345678), ("null as", None)]:
        r = u["api"].patch(path, {"password": new, "current_password": cur})
        ok(r.status == 400 and is_error_shape(r.body, "validation_failed"),
           "%s current_password: 400 validation_failed" % desc, r.status, r.body)
    refused_changes_nothing(fx, u, before, live_tokens(fx, u["id"]), "bad current_password")

    r = u["api"].patch(path, {"password": new, "current_password": u["password"]})
    is_(r.status, 200, "the right current_password: 200", r.body)
    tok, r = fx.anon.login(u["email"], new)
    ok(tok, "... the new password logs in", r.status, r.body)
    _, r = fx.anon.login(u["email"], u["password"])
    is_(r.status, 401, "... the old one does not")
    is_(u["api"].get(path).status, 200, "... the session that made the change goes on")
    is_(fx.anon.get(path, token=t2).status, 401, "... another session of the user ends")


@case
def multibyte_current_passwords(fx):
    # 600 two-byte characters (1,200 bytes) and the longest password there is,
    # 1024 four-byte characters (4,096 bytes, sent as JSON escapes)
    for desc, old in [("600 x 'é'", "\u00e9" * 600), ("1024 x U+1F600", "\U0001F600" * 1024)]:
        remember_secret(old)
        u = new_user(fx.admin)
        path = "/v1/users/%s" % u["id"]
        r = fx.admin.patch(path, {"password": old})
        is_(r.status, 200, "an admin sets a %s password" % desc, r.body)
        tok, r = fx.anon.login(u["email"], old)
        ok(tok, "... which logs in", r.status, r.body)
        api = fx.admin.with_token(tok)
        u["password"] = old
        before, tokens = row(fx, u["id"]), live_tokens(fx, u["id"])
        # one character off: same length in characters, different bytes
        r = api.patch(path, {"password": pw(), "current_password": old[:-1] + "e"})
        is_(r.status, 403, "%s minus its last character plus 'e' is 403" % desc, r.body)
        r = api.patch(path, {"password": pw(), "current_password": old[:-1]})
        is_(r.status, 403, "%s without its last character is 403" % desc, r.body)
        refused_changes_nothing(fx, u, before, tokens, "wrong %s" % desc)
        new = "\u00e9" * 1024  # 1024 characters, 2048 bytes
        remember_secret(new)
        r = api.patch(path, {"password": new, "current_password": old})
        is_(r.status, 200, "the right %s current_password is 200" % desc, r.body)
        tok, r = fx.anon.login(u["email"], new)
        ok(tok, "... and the 1024 x 'é' new password logs in", r.status, r.body)

    u = new_user(fx.admin)
    path = "/v1/users/%s" % u["id"]
    before = row(fx, u["id"])
    for desc, cur in [("1025 x 'é'", "\u00e9" * 1025), ("1025 x U+1F600", "\U0001F600" * 1025),
                      ("1025 ASCII characters", "p" * 1025)]:
        r = u["api"].patch(path, {"password": pw(), "current_password": cur})
        ok(r.status == 400 and is_error_shape(r.body, "validation_failed"),
           "a %s current_password (over 1024 characters) is 400 validation_failed" % desc,
           r.status, r.body)
        is_(details(r).get("field"), "body.current_password", "... naming body.current_password")
    is_(row(fx, u["id"]), before, "... and changes nothing")


@case
def admins(fx):
    u = new_user(fx.admin)
    path = "/v1/users/%s" % u["id"]
    p = pw()
    r = fx.admin.patch(path, {"password": p})
    is_(r.status, 200, "an admin sets another user's password without current_password", r.body)
    tok, r = fx.anon.login(u["email"], p)
    ok(tok, "... which logs in", r.status, r.body)
    p2 = pw()
    r = fx.admin.patch(path, {"password": p2, "current_password": "anything at all"})
    is_(r.status, 200, "... and a current_password sent along is ignored", r.body)
    tok, r = fx.anon.login(u["email"], p2)
    ok(tok, "... the new password logs in", r.status, r.body)

    a = new_user(fx.admin, role="admin")
    apath = "/v1/users/%s" % a["id"]
    before, tokens = row(fx, a["id"]), live_tokens(fx, a["id"])
    r = a["api"].patch(apath, {"password": pw()})
    is_((r.status, details(r).get("field")), (400, "body.current_password"),
        "an admin changing its own password needs current_password too", r.body)
    r = a["api"].patch(apath, {"password": pw(), "current_password": "wrong-" + a["password"]})
    is_((r.status, (r.json_or_none() or {}).get("error", {}).get("code")),
        (403, "invalid_current_password"), "... and a wrong one is 403", r.body)
    refused_changes_nothing(fx, a, before, tokens, "an admin's own, refused")
    p3 = pw()
    r = a["api"].patch(apath, {"password": p3, "current_password": a["password"]})
    is_(r.status, 200, "... the right one is 200", r.body)
    tok, r = fx.anon.login(a["email"], p3)
    ok(tok, "... and the new password logs in", r.status, r.body)


@case
def guesses_count_as_changes(fx):
    u = new_user(fx.admin)
    path = "/v1/users/%s" % u["id"]
    statuses = [u["api"].patch(path, {"password": pw(), "current_password": "guess-%d" % i}).status
                for i in range(5)]
    is_(statuses, [403] * 5, "five wrong guesses are 403")
    r = u["api"].patch(path, {"password": pw(), "current_password": u["password"]})
    ok(r.status == 429 and is_error_shape(r.body, "too_many_password_changes"),
       "then even the right current password meets 429 too_many_password_changes: a stolen "
       "token allows GLASGOW_PASSWORD_CHANGES guesses per window", r.status, r.body)
    tok, r = fx.anon.login(u["email"], u["password"])
    ok(tok, "... and the password is still the old one", r.status, r.body)


def b64(n):
    return base64.urlsafe_b64encode(secrets.token_bytes(n)).rstrip(b"=").decode()


@case(timeout=60)
def unchecked_is_not_wrong(fx):
    # One hash at a time in the whole process; a login for `slow`, whose stored
    # hash has costly parameters (N*r = 2^20, the most verify accepts), holds
    # that place for a while, so the check of b's current password cannot run.
    slow, b = new_user(fx.admin), new_user(fx.admin)
    fx.db.sql("UPDATE users SET password_hash = 'scrypt$ln=17,r=8,p=1$%s$%s' WHERE id = '%s'"
              % (b64(16), b64(32), slow["id"]))
    env = {"GLASGOW_SCRYPT_QUEUE": "1", "GLASGOW_SCRYPT_QUEUE_PER_USER": "1"}
    with dbh.DbServer(fx.db, env=env) as s:
        t0 = time.monotonic()
        dbh.Api(s).login(slow["email"], "whatever-it-is")
        took_ms = (time.monotonic() - t0) * 1e3
        ok(took_ms > 200, "a login against the costly hash takes a while (%.0f ms)" % took_ms)
        before = row(fx, b["id"])
        out = {}
        t = threading.Thread(target=lambda: out.update(
            r=dbh.Api(s).login(slow["email"], "whatever-it-is")), daemon=True)
        t.start()
        time.sleep(min(0.1, took_ms / 4000))  # well inside the login that holds the queue
        r = dbh.Api(s, b["token"]).patch("/v1/users/%s" % b["id"],
                                         {"password": pw(), "current_password": b["password"]})
        t.join(30)
        ok(r.status == 503 and is_error_shape(r.body, "unavailable"),
           "the right current_password that could not be checked (queue full) is 503 "
           "unavailable, not 403", r.status, r.body)
        ok((r.header("retry-after") or "").isdigit(), "... with Retry-After", r.headers)
        is_(row(fx, b["id"]), before, "... and changes nothing")
        r = dbh.Api(s, b["token"]).patch("/v1/users/%s" % b["id"],
                                         {"password": pw(), "current_password": b["password"]})
        is_(r.status, 200, "once the queue is free the same change is 200", r.body)


@case
def documented(fx):
    doc = fx.anon.get("/openapi.json").json_or_none() or {}
    op = ((doc.get("paths") or {}).get("/v1/users/{id}") or {}).get("patch") or {}
    schema = (((op.get("requestBody") or {}).get("content") or {}).get("application/json")
              or {}).get("schema") or {}
    cur = (schema.get("properties") or {}).get("current_password")
    ok(isinstance(cur, dict) and cur.get("type") == "string" and cur.get("maxLength") == 1024,
       "/openapi.json shows current_password on PATCH /v1/users/{id}", cur)
    ok("current_password" in (cur or {}).get("description", "") or
       "own password" in (cur or {}).get("description", ""),
       "... with a description of when it is needed", cur)
    ok("current_password" in op.get("description", ""), "... and the operation says so",
       op.get("description"))


if __name__ == "__main__":
    main(dbh.DbFixture("curpw"))
