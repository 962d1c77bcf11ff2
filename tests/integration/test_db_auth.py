"""Authentication against a real PostgreSQL: POST /v1/auth/token, POST
/v1/auth/logout and the bearer-token check every protected route makes.

Good and bad logins (identical answers for an unknown email and a wrong
password), bad bodies, tampered, expired (inserted with psql), revoked and
deleted-user tokens, tokens in the query string, missing or garbled
Authorization headers, and the per-client throttle (5 failures in 60 s ->
429 with Retry-After), including a burst of simultaneous guesses.
"""
import json
import os
import re
import secrets
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import case, diag, is_, is_error_shape, main, ok  # noqa: E402
import dbharness as dbh  # noqa: E402
from dbharness import ADMIN_EMAIL, ADMIN_PASSWORD, error_of, new_user  # noqa: E402

dbh.skip_without_pg()

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def reset_throttle(fx):
    fx.db.sql("DELETE FROM login_throttle")


def is_401(r, name, code=None):
    ok(r.status == 401 and is_error_shape(r.body, code) and
       (r.header("www-authenticate") or "").startswith("Bearer"),
       "%s: 401%s with WWW-Authenticate: Bearer" % (name, " " + code if code else ""),
       r.status, r.header("www-authenticate"), r.body)


@case
def login_success(fx):
    reset_throttle(fx)
    for variant in [ADMIN_EMAIL, ADMIN_EMAIL.upper(), "  %s\t" % ADMIN_EMAIL]:
        tok, r = fx.anon.login(variant, ADMIN_PASSWORD)
        is_(r.status, 200, "login as %r is 200" % variant, r.body)
        b = r.json_or_none() or {}
        is_(sorted(b), ["access_token", "expires_in", "token_type"],
            "... the body has access_token, token_type, expires_in")
        is_(b.get("token_type"), "Bearer", "... token_type is Bearer")
        ok(isinstance(b.get("expires_in"), int) and b["expires_in"] > 0,
           "... expires_in is a positive integer", b.get("expires_in"))
        ok(TOKEN_RE.match(str(b.get("access_token"))), "... the token is 43 base64url chars",
           b.get("access_token"))
        ok("no-store" in (r.header("cache-control") or ""), "... Cache-Control: no-store",
           r.header("cache-control"))
        if tok:
            r2 = fx.anon.get("/v1/users/%s" % fx.admin_id, token=tok)
            is_(r2.status, 200, "... the token authenticates", r2.body)
            h = dbh.token_hash_hex(tok)
            is_(fx.db.sql("SELECT count(*) FROM auth_tokens WHERE token_hash = '\\x%s' AND "
                          "expires_at > now() + interval '10 minutes'" % h), "1",
                "... only its SHA-256 is stored, with an expiry in the future")
            is_(fx.db.sql("SELECT count(*) FROM auth_tokens WHERE position(%s in "
                          "encode(token_hash, 'escape')) > 0" % dbh.sql_literal(tok)), "0",
                "... the token itself is not stored")
    t1, _ = fx.anon.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    t2, _ = fx.anon.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    ok(t1 and t2 and t1 != t2, "two logins give two different tokens")


@case
def login_bad_input(fx):
    reset_throttle(fx)
    for desc, body, headers, status in [
            ("invalid JSON", b'{"email":', None, 400),
            ("an empty body", b"", None, 400),
            ("an array", [], None, 400),
            ("missing password", {"email": ADMIN_EMAIL}, None, 400),
            ("missing email", {"password": ADMIN_PASSWORD}, None, 400),
            ("an empty password", {"email": ADMIN_EMAIL, "password": ""}, None, 400),
            ("an empty email", {"email": "", "password": "x"}, None, 400),
            ("a 255-character email", {"email": "a" * 243 + "@example.com", "password": "x"},
             None, 400),
            ("a 1025-byte password", {"email": ADMIN_EMAIL, "password": "p" * 1025}, None, 400),
            ("email as a number", {"email": 1, "password": "x"}, None, 400),
            ("password as a number", {"email": ADMIN_EMAIL, "password": 12345678}, None, 400),
            ("password as null", {"email": ADMIN_EMAIL, "password": None}, None, 400),
            ("an unknown field", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD,
                                  "scope": "admin"}, None, 400),
            ("a form body", b"email=a&password=b", {"Content-Type":
                                                    "application/x-www-form-urlencoded"}, 415)]:
        r = fx.anon.call("POST", "/v1/auth/token", body, headers=headers)
        ok(r.status == status and is_error_shape(r.body), "POST /v1/auth/token with %s is %d "
           "with the error shape" % (desc, status), r.status, r.body)
        ok("access_token" not in r.body.decode("utf-8", "replace"), "... and gives no token")
    r = fx.anon.get("/v1/auth/token")
    is_(r.status, 405, "GET /v1/auth/token is 405")


@case
def unknown_email_and_wrong_password_look_the_same(fx):
    reset_throttle(fx)
    t0 = time.monotonic()
    _, unknown = fx.anon.login("nobody-%s@example.com" % secrets.token_hex(4), ADMIN_PASSWORD)
    t_unknown = time.monotonic() - t0
    t0 = time.monotonic()
    _, wrong = fx.anon.login(ADMIN_EMAIL, ADMIN_PASSWORD + "x")
    t_wrong = time.monotonic() - t0
    is_401(unknown, "an unknown email", "invalid_credentials")
    is_401(wrong, "a wrong password", "invalid_credentials")
    is_(error_of(unknown), error_of(wrong), "unknown email and wrong password: same code and "
        "message")
    ue = (unknown.json_or_none() or {}).get("error", {})
    we = (wrong.json_or_none() or {}).get("error", {})
    is_(ue.get("details"), we.get("details"), "... same details")
    is_(unknown.header("www-authenticate"), wrong.header("www-authenticate"),
        "... same WWW-Authenticate")
    is_(sorted(unknown.headers), sorted(wrong.headers), "... same header names")
    diag("unknown email took %.0f ms, wrong password %.0f ms" % (t_unknown * 1e3, t_wrong * 1e3))
    ok(t_unknown > 0.3 * t_wrong, "an unknown email costs about as much time as a wrong "
       "password (both derive a key)", "%.3f s vs %.3f s" % (t_unknown, t_wrong))
    tok, r = fx.anon.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    ok(tok, "the right password still logs in", r.status, r.body)


@case
def tampered_and_garbled_tokens(fx):
    reset_throttle(fx)
    tok, _ = fx.anon.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    path = "/v1/users/%s" % fx.admin_id
    is_(fx.anon.get(path, token=tok).status, 200, "the untouched token works")
    flip = tok[:20] + ("A" if tok[20] != "A" else "B") + tok[21:]
    last = tok[:-1] + ("A" if tok[-1] != "A" else "B")
    fresh, _ = dbh.new_raw_token()
    for desc, value in [
            ("a token with one character changed", "Bearer " + flip),
            ("a token with its last character changed", "Bearer " + last),
            ("a well-formed random token", "Bearer " + fresh),
            ("a truncated token (42 chars)", "Bearer " + tok[:-1]),
            ("a 44-character token", "Bearer " + tok + "A"),
            ("a padded token", "Bearer " + tok + "="),
            ("a token with a '+' (base64, not base64url)", "Bearer " + tok[:10] + "+" + tok[11:]),
            ("a token with a '.'", "Bearer " + tok[:10] + "." + tok[11:]),
            ("'Bearer' alone", "Bearer"),
            ("'Bearer ' with no token", "Bearer "),
            ("two spaces after Bearer", "Bearer  " + tok),
            ("a tab after Bearer", "Bearer\t" + tok),
            ("the token without a scheme", tok),
            ("Basic x", "Basic x"),
            ("Basic credentials", "Basic YWRtaW46cGFzc3dvcmQ="),
            ("a trailing word", "Bearer " + tok + " extra"),
            ("a JWT-looking value", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."),
            ("an empty value", ""),
            ("44 x's", "Bearer " + "x" * 44)]:
        r = fx.anon.get(path, headers={"Authorization": value})
        is_401(r, "Authorization: %s" % desc)
    r = fx.anon.get(path)
    is_401(r, "no Authorization header", "unauthenticated")


@case
def token_in_query_string(fx):
    reset_throttle(fx)
    tok, _ = fx.anon.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    for method, path in [("GET", "/v1/users/%s?access_token=%s" % (fx.admin_id, tok)),
                         ("GET", "/v1/users/%s?token=%s" % (fx.admin_id, tok)),
                         ("POST", "/v1/auth/logout?access_token=%s" % tok)]:
        r = fx.anon.call(method, path)
        is_401(r, "%s %s" % (method, path.replace(tok, "TOKEN")))
    r = fx.anon.get("/v1/users/%s" % fx.admin_id, token=tok)
    is_(r.status, 200, "the token was not revoked by the URL logout attempt", r.body)


@case
def expired_and_deleted_user_tokens(fx):
    expired, eh = dbh.new_raw_token()
    valid, vh = dbh.new_raw_token()
    just, jh = dbh.new_raw_token()
    fx.db.sql("INSERT INTO auth_tokens (token_hash, user_id, expires_at) VALUES "
              "('\\x%s', '%s', now() - interval '1 minute'), "
              "('\\x%s', '%s', now() + interval '1 hour'), "
              "('\\x%s', '%s', now() + interval '1 second')" %
              (eh, fx.admin_id, vh, fx.admin_id, jh, fx.admin_id))
    path = "/v1/users/%s" % fx.admin_id
    r = fx.anon.get(path, token=valid)
    is_(r.status, 200, "a token inserted with an expiry in the future works (control)", r.body)
    r = fx.anon.get(path, token=expired)
    is_401(r, "an expired token", "invalid_token")
    r = fx.anon.post("/v1/auth/logout", token=expired)
    is_401(r, "logout with an expired token", "invalid_token")
    time.sleep(1.2)
    r = fx.anon.get(path, token=just)
    is_401(r, "a token that expired a moment ago", "invalid_token")

    u = new_user(fx.admin)
    is_(u["api"].get("/v1/users/%s" % u["id"]).status, 200, "a new user's token works")
    is_(fx.admin.delete("/v1/users/%s" % u["id"]).status, 204, "the admin deletes the user")
    r = u["api"].get("/v1/users/%s" % u["id"])
    is_401(r, "the token of a deleted user", "invalid_token")
    is_(fx.db.sql("SELECT count(*) FROM auth_tokens WHERE user_id = '%s'" % u["id"]), "0",
        "deleting a user deletes its tokens")


@case
def logout_revokes(fx):
    reset_throttle(fx)
    t1, _ = fx.anon.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    t2, _ = fx.anon.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    path = "/v1/users/%s" % fx.admin_id
    r = fx.anon.post("/v1/auth/logout", token=t1)
    is_(r.status, 204, "logout is 204", r.body)
    is_(r.body, b"", "... with no body")
    is_(fx.db.sql("SELECT revoked_at IS NOT NULL FROM auth_tokens WHERE token_hash = '\\x%s'" %
                  dbh.token_hash_hex(t1)), "t", "... the token is marked revoked")
    is_401(fx.anon.get(path, token=t1), "a revoked token", "invalid_token")
    is_401(fx.anon.post("/v1/auth/logout", token=t1), "logout with a revoked token",
           "invalid_token")
    is_(fx.anon.get(path, token=t2).status, 200, "another token of the same user still works")
    is_401(fx.anon.post("/v1/auth/logout"), "logout without a token", "unauthenticated")
    is_(fx.anon.get("/v1/auth/logout", token=t2).status, 405, "GET /v1/auth/logout is 405")
    is_(fx.anon.get(path, token=t2).status, 200, "... and did not revoke anything")


@case
def throttle(fx):
    reset_throttle(fx)
    statuses = []
    for _ in range(5):
        _, r = fx.anon.login(ADMIN_EMAIL, "wrong-password")
        statuses.append(r.status)
    is_(statuses, [401] * 5, "five wrong passwords are 401 each")
    _, r = fx.anon.login(ADMIN_EMAIL, "wrong-password")
    is_(r.status, 429, "the sixth failure within a minute is 429", r.body)
    ok(is_error_shape(r.body, "too_many_attempts"), "... too_many_attempts", r.body)
    ra = r.header("retry-after") or ""
    ok(ra.isdigit() and 1 <= int(ra) <= 60, "... Retry-After is 1..60 seconds", ra)
    _, r = fx.anon.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    is_(r.status, 429, "the right password is 429 too while throttled", r.body)
    _, r = fx.anon.login("someone-else@example.com", "whatever")
    is_(r.status, 429, "the throttle is per client, whatever the email", r.body)
    reset_throttle(fx)
    tok, r = fx.anon.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    ok(tok, "after the window is cleared the right password logs in", r.status, r.body)
    for _ in range(4):
        fx.anon.login(ADMIN_EMAIL, "wrong-password")
    tok, r = fx.anon.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    ok(tok, "four failures do not lock out", r.status, r.body)
    _, r = fx.anon.login(ADMIN_EMAIL, "wrong-password")
    is_(r.status, 401, "a successful login resets the count", r.body)
    reset_throttle(fx)


@case(timeout=60)
def throttle_burst(fx):
    reset_throttle(fx)
    n = 12
    barrier = threading.Barrier(n, timeout=10)
    out = []
    lock = threading.Lock()

    def guess(i):
        try:
            barrier.wait()
            _, r = fx.anon.login(ADMIN_EMAIL, "burst-guess-%d" % i)
            st = r.status
        except Exception as e:  # noqa: BLE001
            st = repr(e)
        with lock:
            out.append(st)

    ts = [threading.Thread(target=guess, args=(i,), daemon=True) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    diag("statuses of %d simultaneous wrong logins: %r" % (n, sorted(map(str, out))))
    is_(len(out), n, "all %d simultaneous guesses were answered" % n)
    ok(all(s in (401, 429) for s in out), "... each with 401 or 429", out)
    ok(out.count(401) <= 5, "at most 5 of %d simultaneous wrong passwords are checked (the "
       "rest 429)" % n, "401s: %d" % out.count(401))
    reset_throttle(fx)


def abandon(server, requests, linger=0.5):
    """Sends each (method, path, body, token) on its own connection, waits linger
    seconds (so the server has read them all and their handlers wait), then hangs
    up on all of them without reading an answer."""
    socks = []
    try:
        for method, path, body, token in requests:
            data = json.dumps(body).encode()
            req = ("%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" %
                   (method, path, token, len(data))).encode() + data
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            socks.append(s)
            s.sendall(req)
        time.sleep(linger)
    finally:
        for s in socks:
            s.close()


def timed_admin_login(api):
    t0 = time.monotonic()
    tok, r = api.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    return tok, r, time.monotonic() - t0


@case(timeout=120)
def abandoned_password_changes(fx):
    reset_throttle(fx)
    # A generous change limit, so that the hashing queue is what is tested here.
    with dbh.DbServer(fx.db, env={"GLASGOW_PASSWORD_CHANGES": "100000"}) as s:
        anon = dbh.Api(s)
        tok, r, base = timed_admin_login(anon)
        ok(tok, "admin login on a fresh server", r.status, r.body)
        diag("an idle admin login takes %.0f ms" % (base * 1e3))

        u = new_user(fx.admin)
        abandon(s, [("PATCH", "/v1/users/%s" % u["id"], {"password": "abandoned-pw-1"},
                     u["token"])] * 100)
        tok, r, dt = timed_admin_login(anon)
        diag("admin login right after 100 abandoned password changes of one user: %.0f ms"
             % (dt * 1e3))
        ok(tok and dt < 2.0, "after 100 abandoned password changes an admin login still takes "
           "under 2 s", "%.2f s" % dt, r.status)

        users = [new_user(fx.admin) for _ in range(20)]
        abandon(s, [("PATCH", "/v1/users/%s" % v["id"], {"password": "abandoned-pw-2"},
                     v["token"]) for v in users] * 5)
        tok, r, dt = timed_admin_login(anon)
        diag("admin login right after 5 abandoned password changes of each of 20 users: "
             "%.0f ms" % (dt * 1e3))
        ok(tok and dt < 2.0, "after 100 abandoned password changes by 20 users an admin login "
           "still takes under 2 s", "%.2f s" % dt, r.status)



@case(timeout=60)
def hashing_queue_full(fx):
    reset_throttle(fx)
    with dbh.DbServer(fx.db, env={"GLASGOW_PASSWORD_CHANGES": "100000",
                                  "GLASGOW_SCRYPT_QUEUE_PER_USER": "1"}) as s:
        u = new_user(fx.admin)
        api = dbh.Api(s, u["token"], timeout=30)
        n = 6
        barrier = threading.Barrier(n, timeout=10)
        out = [None] * n

        def change(i):
            try:
                barrier.wait()
                out[i] = api.patch("/v1/users/%s" % u["id"],
                                   {"name": "Name %d" % i, "password": "queue-pw-%d" % i})
            except Exception as e:  # noqa: BLE001
                out[i] = e

        ts = [threading.Thread(target=change, args=(i,), daemon=True) for i in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        statuses = [getattr(r, "status", repr(r)) for r in out]
        diag("%d simultaneous password changes of one user, one hash at a time: %r"
             % (n, statuses))
        ok(all(st in (200, 429) for st in statuses) and statuses.count(429) >= 1,
           "each is 200 or 429, and some are 429", statuses)
        busy = [r for r in out if getattr(r, "status", None) == 429]
        ok(all(is_error_shape(r.body, "too_many_requests") and
               (r.header("retry-after") or "").isdigit() for r in busy),
           "... 429 too_many_requests with Retry-After", [r.body for r in busy][:2])
        done = [i for i, r in enumerate(out) if getattr(r, "status", None) == 200]
        name = fx.db.sql("SELECT name FROM users WHERE id = '%s'" % u["id"])
        ok(name in ["Name %d" % i for i in done], "the stored name is one a 200 answered: a "
           "refused hash wrote nothing", name, done)


@case
def no_secrets_in_responses(fx):
    dbh.assert_no_leaks()


if __name__ == "__main__":
    main(dbh.DbFixture("auth"))
