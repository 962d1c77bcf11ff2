"""Authentication against a real PostgreSQL: POST /v1/auth/token, POST
/v1/auth/logout and the bearer-token check every protected route makes.

Good and bad logins (identical answers for an unknown email and a wrong
password), bad bodies, tampered, expired (inserted with psql), revoked and
deleted-user tokens, tokens in the query string, missing or garbled
Authorization headers; the throttle per account and per address (429 with a
growing Retry-After, never reset by a success, capped, alike for unknown
emails), including a burst of simultaneous guesses; and the bounded hashing
queue (abandoned password changes do not delay a login).
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
from harness import case, diag, is_, is_error_shape, main, ok, slow  # noqa: E402
import dbharness as dbh  # noqa: E402
from dbharness import ADMIN_EMAIL, ADMIN_PASSWORD, error_of, login_from, new_user  # noqa: E402

dbh.skip_without_pg()

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")


# The login delay the fixture's server (and the throttle cases' own servers)
# use: long enough that a whole sequence of attempts stays inside it however
# slowly a loaded machine or a sanitizer build derives keys (with the default
# 1 s, the sixth attempt of a sequence could come after the delay had passed
# and be checked instead of refused). Tests never sleep it out: pass_delay()
# moves the recorded failures back in time instead.
BASE_DELAY_S = 60
THROTTLE_ENV = {"GLASGOW_LOGIN_BASE_DELAY_S": str(BASE_DELAY_S)}


def reset_throttle(fx):
    fx.db.sql("DELETE FROM auth_throttle")


def pass_delay(fx, seconds=301):
    """Makes every pending login delay (at most GLASGOW_LOGIN_MAX_DELAY_S, 300 by default)
    pass at once, as if `seconds` had gone by, without forgetting the failures (the
    window is 900 s)."""
    fx.db.sql("UPDATE auth_throttle SET last_failure = last_failure - make_interval(secs => %d), "
              "prev_failure = prev_failure - make_interval(secs => %d)" % (seconds, seconds))


def delay_is(ra, want):
    """Retry-After ra is the delay want, less the little time gone since the failure that
    set it (under a second normally; a few on a loaded machine)."""
    return ra is not None and want - 10 < ra <= want


def retry_after(r):
    v = r.header("retry-after") or ""
    return int(v) if v.isdigit() else None


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
    is_(r.status, 429, "the sixth failure for the account is 429", r.body)
    ok(is_error_shape(r.body, "too_many_attempts"), "... too_many_attempts", r.body)
    ok(delay_is(retry_after(r), BASE_DELAY_S), "... Retry-After: %d (the first delay)" %
       BASE_DELAY_S, r.header("retry-after"))
    _, r = fx.anon.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    is_(r.status, 429, "the right password is 429 too while the account waits", r.body)
    _, r = fx.anon.login("someone-else@example.com", "whatever")
    is_(r.status, 401, "another account from the same address is not slowed (its own count, "
        "and the address is under its 20)", r.body)
    pass_delay(fx)
    tok, r = fx.anon.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    ok(tok, "after Retry-After the right password logs in", r.status, r.body)
    _, r = fx.anon.login(ADMIN_EMAIL, "wrong-password")
    is_(r.status, 401, "a wrong password after the wait is checked (401)", r.body)
    _, r = fx.anon.login(ADMIN_EMAIL, "wrong-password")
    ok(r.status == 429 and delay_is(retry_after(r), 2 * BASE_DELAY_S), "... the next one is 429 "
       "with a doubled delay (Retry-After: %d): a success did not reset the account's failures"
       % (2 * BASE_DELAY_S),
       r.status, r.header("retry-after"))
    reset_throttle(fx)


@case(timeout=60)
def token_lifetime_from_the_environment(fx):
    reset_throttle(fx)
    with dbh.DbServer(fx.db, env={"GLASGOW_TOKEN_TTL_S": "120"}) as s:
        tok, r = dbh.Api(s).login(ADMIN_EMAIL, ADMIN_PASSWORD)
        is_((r.json_or_none() or {}).get("expires_in"), 120,
            "GLASGOW_TOKEN_TTL_S=120: expires_in is 120", r.body)
        left = fx.db.sql("SELECT extract(epoch FROM expires_at - now())::int FROM auth_tokens "
                         "WHERE token_hash = '\\x%s'" % dbh.token_hash_hex(tok or ""))
        ok(left.isdigit() and 100 <= int(left) <= 120, "... and the stored expiry is two minutes "
           "away", left)
    p = dbh.run_migrate(fx.db.url, env={"GLASGOW_TOKEN_TTL_S": "forever"})
    ok(p.returncode != 0 and "GLASGOW_TOKEN_TTL_S" in p.stderr, "a malformed value stops "
       "start-up naming the variable", p.returncode, p.stderr)


@case(timeout=60)
def growing_delay_is_capped(fx):
    reset_throttle(fx)
    env = {"GLASGOW_LOGIN_ACCOUNT_FAILURES": "2", "GLASGOW_LOGIN_BASE_DELAY_S": "30",
           "GLASGOW_LOGIN_MAX_DELAY_S": "60"}
    with dbh.DbServer(fx.db, env=env) as s:
        anon = dbh.Api(s)
        u = new_user(fx.admin)
        seen = []
        for _ in range(5):
            _, r = anon.login(u["email"], "wrong")
            if r.status == 429:
                seen.append(retry_after(r))
                pass_delay(fx, 61)
                _, r = anon.login(u["email"], "wrong")
            seen.append(r.status)
        diag("five rounds of a wrong password, waiting out each 429: %r" % seen)
        delays = seen[2::2]
        ok(seen[:2] == [401] * 2 and seen[3::2] == [401] * 3 and len(delays) == 3 and
           delay_is(delays[0], 30) and delay_is(delays[1], 60) and delay_is(delays[2], 60),
           "delays grow 30, 60 and stop at GLASGOW_LOGIN_MAX_DELAY_S=60; no answer is a lockout",
           seen)
        _, r = anon.login(u["email"], u["password"])
        if r.status == 429:
            pass_delay(fx, 61)
        tok, r = anon.login(u["email"], u["password"])
        ok(tok, "the owner logs in once the (capped) delay has passed", r.status, r.body)
    reset_throttle(fx)


@case(timeout=60)
def own_account_does_not_reset_the_count(fx):
    # The attacker owns one account and logs into it between guesses of
    # another's password, from one address. Each success used to clear the
    # address's count: 16 guesses went unthrottled.
    reset_throttle(fx)
    mine = new_user(fx.admin)
    victim = new_user(fx.admin)
    reset_throttle(fx)
    out = []
    for i in range(16):
        _, r = fx.anon.login(victim["email"], "guess-%d" % i)
        out.append(r.status)
        tok, r = fx.anon.login(mine["email"], mine["password"])
        if not tok and r.status != 429:
            out.append("own login %s" % r.status)
    diag("16 guesses at another account, each followed by a login to one's own: %r" % out)
    is_(out[:5], [401] * 5, "the first five guesses are checked (401)")
    is_(out[5:], [429] * 11, "the other eleven are 429 (all within the first %d s delay): "
        "logging into one's own account does not reset the count" % BASE_DELAY_S)

    reset_throttle(fx)
    # Many accounts, one guess each, from one address, with own logins between.
    env = dict(THROTTLE_ENV, GLASGOW_LOGIN_ADDRESS_FAILURES="6")
    with dbh.DbServer(fx.db, env=env) as s:
        anon = dbh.Api(s)
        out = []
        for i in range(10):
            _, r = anon.login("target-%d-%s@example.com" % (i, secrets.token_hex(3)), "guess")
            out.append(r.status)
            anon.login(mine["email"], mine["password"])
        diag("10 accounts, one guess each, from one address (6 free): %r" % out)
        ok(out[:6] == [401] * 6 and out[6:] == [429] * 4, "one address trying many accounts is "
           "slowed after GLASGOW_LOGIN_ADDRESS_FAILURES failures, own logins or not", out)
    reset_throttle(fx)


@case(timeout=60)
def many_addresses_one_account(fx):
    reset_throttle(fx)
    victim = new_user(fx.admin)
    out = []
    for i in range(12):
        r = login_from(fx.server, "127.0.0.%d" % (10 + i), victim["email"], "guess-%d" % i)
        out.append(r.status)
    diag("12 addresses, one guess each at one account: %r" % out)
    ok(out[:5] == [401] * 5 and out[5:] == [429] * 7, "many addresses trying one account are "
       "slowed after the account's 5 free failures", out)
    r = login_from(fx.server, "127.0.0.99", victim["email"], victim["password"])
    is_(r.status, 429, "... the right password from a new address waits too (the delay is per "
        "account)", r.body)
    pass_delay(fx)
    r = login_from(fx.server, "127.0.0.99", victim["email"], victim["password"])
    is_(r.status, 200, "... and gets in once it has passed: no lockout", r.body)
    reset_throttle(fx)


def device_login(api, email, password, cookie=None):
    h = {"Cookie": cookie} if cookie else None
    r = api.call("POST", "/v1/auth/token", {"email": email, "password": password}, token="",
                 headers=h)
    return r


def device_cookie_of(r):
    for v in r.headers.get("set-cookie", []):
        if v.startswith("glasgow_device="):
            return v.split(";", 1)[0]
    return None


@case(timeout=60)
def device_cookie_keeps_the_owner_in(fx):
    reset_throttle(fx)
    victim = new_user(fx.admin)
    mine = new_user(fx.admin)
    r = device_login(fx.anon, victim["email"], victim["password"])
    cookie = device_cookie_of(r)
    sc = " ".join(r.headers.get("set-cookie", []))
    ok(r.status == 200 and cookie and "HttpOnly" in sc and "Secure" in sc and
       "SameSite=Strict" in sc and "Path=/v1/auth/token" in sc,
       "a successful login sets an HttpOnly, Secure, SameSite=Strict device cookie for the "
       "token route", r.status, sc)
    my_cookie = device_cookie_of(device_login(fx.anon, mine["email"], mine["password"]))
    reset_throttle(fx)

    out = [login_from(fx.server, "127.0.0.%d" % (40 + i), victim["email"], "guess-%d" % i).status
           for i in range(8)]
    ok(out[-1] == 429, "guesses from elsewhere slow the account down", out)
    r = device_login(fx.anon, victim["email"], victim["password"])
    is_(r.status, 429, "the owner without the cookie waits like everyone", r.body)
    r = device_login(fx.anon, victim["email"], victim["password"], cookie)
    is_(r.status, 200, "the owner with the device cookie gets in at once", r.body)
    is_(device_cookie_of(r), cookie, "... and keeps the same device cookie")
    r = device_login(fx.anon, victim["email"], victim["password"], my_cookie)
    is_(r.status, 429, "another account's device cookie does not help", r.body)
    r = device_login(fx.anon, victim["email"], victim["password"],
                     "glasgow_device=" + dbh.new_raw_token()[0])
    is_(r.status, 429, "nor does a made-up one", r.body)

    out = [device_login(fx.anon, victim["email"], "stolen-%d" % i, cookie).status
           for i in range(7)]
    ok(out[:5] == [401] * 5 and out[5:] == [429] * 2, "a device guessing is slowed after the "
       "account's free failures, like anyone (a stolen cookie is no free pass)", out)

    reset_throttle(fx)
    p2 = "after-change-" + secrets.token_hex(4)
    dbh.remember_secret(p2)
    r = fx.admin.patch("/v1/users/%s" % victim["id"], {"password": p2})
    is_(r.status, 200, "the password changes", r.body)
    for i in range(6):
        login_from(fx.server, "127.0.0.%d" % (60 + i), victim["email"], "guess-%d" % i)
    r = device_login(fx.anon, victim["email"], p2, cookie)
    is_(r.status, 429, "a password change ends the user's device cookies", r.body)
    reset_throttle(fx)


@case(timeout=60)
def unknown_and_known_emails_throttled_alike(fx):
    reset_throttle(fx)
    known = new_user(fx.admin)
    unknown = "nobody-%s@example.com" % secrets.token_hex(4)
    runs = {}
    for label, e in [("known", known["email"]), ("unknown", unknown)]:
        seq, times = [], []
        for i in range(7):
            t0 = time.monotonic()
            _, r = fx.anon.login(e, "wrong-%d" % i)
            times.append(time.monotonic() - t0)
            seq.append((r.status, error_of(r), retry_after(r), sorted(r.headers)))
        runs[label] = (seq, times)
    # Retry-After counts down from the failure that set the delay, so on a slow
    # machine the two runs may see it a second or so apart: compared to 5 s.
    strip = [[(st, err, ra if ra is None else 5 * round(ra / 5)) for st, err, ra, _ in runs[k][0]]
             for k in ("known", "unknown")]
    is_(strip[0], strip[1], "a known and an unknown email get the same answers, attempt by "
        "attempt (401 x5, then 429 with the same Retry-After)")
    is_([st for st, *_ in strip[0]], [401] * 5 + [429] * 2, "... 401 x5, then 429")
    is_([h for *_, h in runs["known"][0]], [h for *_, h in runs["unknown"][0]],
        "... with the same header names")
    tk, tu = runs["known"][1], runs["unknown"][1]
    diag("checked attempts: known %.0f ms, unknown %.0f ms; refused: known %.0f ms, unknown "
         "%.0f ms" % (1e3 * sum(tk[:5]) / 5, 1e3 * sum(tu[:5]) / 5, 1e3 * sum(tk[5:]) / 2,
                      1e3 * sum(tu[5:]) / 2))
    ok(sum(tu[:5]) > 0.3 * sum(tk[:5]), "... and cost about the same time (both derive a key)",
       tk, tu)
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


@case(timeout=90)
def simultaneous_right_and_wrong_logins(fx):
    # Successes take their count back while other attempts count theirs, on
    # the same two rows: no deadlock, no 500, whatever the interleaving.
    reset_throttle(fx)
    u = new_user(fx.admin)
    out = []
    lock = threading.Lock()
    for rnd in range(3):
        n = 12
        barrier = threading.Barrier(n, timeout=10)

        def go(i):
            try:
                barrier.wait()
                pw = u["password"] if i % 2 == 0 else "wrong-%d" % i
                _, r = fx.anon.login(u["email"], pw)
                st = r.status
            except Exception as e:  # noqa: BLE001
                st = repr(e)
            with lock:
                out.append(st)

        ts = [threading.Thread(target=go, args=(i,), daemon=True) for i in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        reset_throttle(fx)
    diag("3 rounds of 12 simultaneous logins, half right, half wrong: %r" % sorted(map(str, out)))
    ok(len(out) == 36 and all(st in (200, 401, 429) for st in out),
       "every one is answered 200, 401 or 429 (no 500)", out)


@case(timeout=60)
def sessions_end_on_password_and_role_change(fx):
    reset_throttle(fx)
    u = new_user(fx.admin)
    path = "/v1/users/%s" % u["id"]
    t1 = u["token"]
    t2, _ = fx.anon.login(u["email"], u["password"])
    t3, _ = fx.anon.login(u["email"], u["password"])
    ok(t2 and t3, "three sessions of one user")
    r = fx.anon.patch(path, {"name": "Renamed"}, token=t1)
    is_(r.status, 200, "a name change is 200", r.body)
    ok(all(fx.anon.get(path, token=t).status == 200 for t in (t1, t2, t3)),
       "... and ends no session")

    p2 = "changed-" + secrets.token_hex(6)
    dbh.remember_secret(p2)
    r = fx.anon.patch(path, {"password": p2, "current_password": u["password"]}, token=t1)
    is_(r.status, 200, "the user changes its own password with session 1", r.body)
    is_(fx.anon.get(path, token=t1).status, 200, "... session 1, which made the change, goes on")
    is_401(fx.anon.get(path, token=t2), "... session 2 after the change", "invalid_token")
    is_401(fx.anon.get(path, token=t3), "... session 3 after the change", "invalid_token")
    is_(fx.db.sql("SELECT count(*) FROM auth_tokens WHERE user_id = '%s' AND revoked_at IS NULL"
                  % u["id"]), "1", "... one unrevoked token left")

    t4, _ = fx.anon.login(u["email"], p2)
    p3 = "changed-" + secrets.token_hex(6)
    dbh.remember_secret(p3)
    r = fx.admin.patch(path, {"password": p3})
    is_(r.status, 200, "an admin sets the user's password", r.body)
    is_401(fx.anon.get(path, token=t1), "the user's session 1 after an admin's change",
           "invalid_token")
    is_401(fx.anon.get(path, token=t4), "a session opened with the previous password",
           "invalid_token")
    is_(fx.admin.get(path).status, 200, "... the admin's own session goes on")
    tok, r = fx.anon.login(u["email"], p3)
    ok(tok, "the new password logs in", r.status, r.body)

    r = fx.admin.patch(path, {"role": "user"})
    is_(r.status, 200, "an admin sets the role the user already has", r.body)
    is_(fx.anon.get(path, token=tok).status, 200, "... which ends no session")
    r = fx.admin.patch(path, {"role": "admin"})
    is_(r.status, 200, "an admin makes the user an admin", r.body)
    is_401(fx.anon.get(path, token=tok), "the user's session after its role changed",
           "invalid_token")
    tok, r = fx.anon.login(u["email"], p3)
    r = fx.admin.patch(path, {"role": "user"})
    is_401(fx.anon.get(path, token=tok), "... and again after it changed back", "invalid_token")

    r = fx.admin.patch(path, {"password": "x"})
    is_(r.status, 400, "a refused change (a 1-character password) is 400", r.body)
    tok, _ = fx.anon.login(u["email"], p3)
    r = fx.admin.patch(path, {"email": ADMIN_EMAIL, "password": "another-pw-9"})
    is_(r.status, 409, "a change that conflicts (another user's email) is 409", r.body)
    is_(fx.anon.get(path, token=tok).status, 200, "... and ends no session (rolled back)")
    tok2, _ = fx.anon.login(u["email"], p3)
    ok(tok2, "... and left the password as it was")


@case(timeout=60)
def password_changes_are_rate_limited(fx):
    reset_throttle(fx)
    u = new_user(fx.admin)
    other = new_user(fx.admin)
    path = "/v1/users/%s" % u["id"]
    statuses, last = [], u["password"]
    for i in range(5):
        p = "limited-%d-%s" % (i, secrets.token_hex(4))
        dbh.remember_secret(p)
        r = u["api"].patch(path, {"password": p, "current_password": last})
        statuses.append(r.status)
        if r.status == 200:
            last = p
    is_(statuses, [200] * 5, "five password changes in an hour are 200")
    r = u["api"].patch(path, {"password": "one-too-many-1", "name": "Not stored",
                              "current_password": last})
    is_(r.status, 429, "the sixth is 429", r.body)
    ok(is_error_shape(r.body, "too_many_password_changes"), "... too_many_password_changes",
       r.body)
    ok(3500 <= (retry_after(r) or 0) <= 3600, "... Retry-After is the rest of the hour",
       r.header("retry-after"))
    r = fx.admin.patch(path, {"password": "one-too-many-2"})
    is_(r.status, 429, "... also when an admin asks: the limit is the user's", r.body)
    is_(fx.db.sql("SELECT name FROM users WHERE id = '%s'" % u["id"]), "Someone",
        "... and a refused change writes nothing")
    tok, r = fx.anon.login(u["email"], last)
    ok(tok, "the fifth password still logs in", r.status, r.body)
    r = other["api"].patch("/v1/users/%s" % other["id"], {"password": "other-users-pw",
                                                          "current_password": other["password"]})
    is_(r.status, 200, "another user's change is not affected", r.body)
    r = u["api"].patch(path, {"name": "Still changeable"})
    is_(r.status, 200, "changes without a password are not limited", r.body)

    # A window long enough that the second change surely falls in it (the
    # first one's hashing may take a second on a loaded machine); the test
    # moves the window back in the database instead of waiting for it.
    with dbh.DbServer(fx.db, env={"GLASGOW_PASSWORD_CHANGES": "1",
                                  "GLASGOW_PASSWORD_CHANGE_WINDOW_S": "60"}) as s:
        v = new_user(fx.admin)
        api = dbh.Api(s, v["token"])
        vpath = "/v1/users/%s" % v["id"]
        a = api.patch(vpath, {"password": "window-pw-1", "current_password": v["password"]}).status
        b = api.patch(vpath, {"password": "window-pw-2", "current_password": "window-pw-1"}).status
        fx.db.sql("UPDATE password_change_limit SET window_start = window_start - "
                  "interval '61 seconds' WHERE user_id = '%s'" % v["id"])
        c = api.patch(vpath, {"password": "window-pw-3", "current_password": "window-pw-1"}).status
        is_((a, b, c), (200, 429, 200), "with 1 change per minute: 200, 429, then 200 once the "
            "window has passed")


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
    """(token, response, seconds). One connection reset is retried (and said):
    seen once under a fully loaded machine, never reproduced; the time counts
    both tries, so a slow login still shows."""
    t0 = time.monotonic()
    try:
        tok, r = api.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    except ConnectionResetError as e:
        diag("admin login: %r after %.0f ms; retrying once" % (e, (time.monotonic() - t0) * 1e3))
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
        # Hashing 100 abandoned changes first would take about 100 logins' time;
        # the bound is far below that and far above one login, even on a slow build.
        limit = max(slow(2.0), 10 * base)

        u = new_user(fx.admin)
        abandon(s, [("PATCH", "/v1/users/%s" % u["id"],
                     {"password": "abandoned-pw-1", "current_password": u["password"]},
                     u["token"])] * 100)
        tok, r, dt = timed_admin_login(anon)
        diag("admin login right after 100 abandoned password changes of one user: %.0f ms"
             % (dt * 1e3))
        ok(tok and dt < limit, "after 100 abandoned password changes an admin login still takes "
           "under %.1f s" % limit, "%.2f s" % dt, r.status)

        users = [new_user(fx.admin) for _ in range(20)]
        abandon(s, [("PATCH", "/v1/users/%s" % v["id"],
                     {"password": "abandoned-pw-2", "current_password": v["password"]},
                     v["token"]) for v in users] * 5)
        tok, r, dt = timed_admin_login(anon)
        diag("admin login right after 5 abandoned password changes of each of 20 users: "
             "%.0f ms" % (dt * 1e3))
        ok(tok and dt < limit, "after 100 abandoned password changes by 20 users an admin login "
           "still takes under %.1f s" % limit, "%.2f s" % dt, r.status)



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
                                   {"name": "Name %d" % i, "password": "queue-pw-%d" % i,
                                    "current_password": u["password"]})
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
        # 403 or 409: the check of current_password came after another change
        # had replaced it (the check is one hash too, and waits its turn)
        ok(all(st in (200, 429, 403, 409) for st in statuses) and statuses.count(429) >= 1,
           "each is 200 or 429 (or 403/409 once another one changed the password), and some "
           "are 429", statuses)
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
    main(dbh.DbFixture("auth", env=THROTTLE_ENV))
