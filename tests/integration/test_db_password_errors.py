"""The error contract where it meets the client, against a real PostgreSQL.

A login whose password check cannot be made (the scrypt job queue is full,
or the account already has its hash queued) answers 503 or 429 with the JSON
error body and Retry-After, never 401 and never 200 for a wrong password,
and it costs the account nothing in the login throttle. The server here runs
one scrypt thread with a queue of one job (GLASGOW_SCRYPT_QUEUE=1), and a
burst of simultaneous logins saturates it for real.

And one error body: the C side (a body over the route's limit, the admin
listener, libmicrohttpd's own answers) and the Lua side (no such route, a
refused password check) write
{"error":{"code","message","details","request_id"}} with the same members in
the same order.
"""
import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import case, diag, is_, is_error_shape, main, ok  # noqa: E402
import dbharness as dbh  # noqa: E402
from dbharness import login_from, new_user  # noqa: E402

dbh.skip_without_pg()

SCRYPT_ENV = {
    "GLASGOW_SCRYPT_THREADS": "1",
    "GLASGOW_SCRYPT_QUEUE": "1",
    "GLASGOW_SCRYPT_QUEUE_PER_USER": "1",
    # generous, so that only the hashing queue refuses anything here
    "GLASGOW_LOGIN_ACCOUNT_FAILURES": "1000",
    "GLASGOW_LOGIN_ADDRESS_FAILURES": "1000",
}

ERROR_KEYS = ["code", "message", "details", "request_id"]


def burst(server, logins):
    """Sends every (addr, email, password) of logins at once; returns the responses."""
    n = len(logins)
    barrier = threading.Barrier(n, timeout=20)
    out = [None] * n

    def one(i):
        try:
            barrier.wait()
            out[i] = login_from(server, *logins[i], timeout=30)
        except Exception as e:  # noqa: BLE001
            out[i] = e

    ts = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(40)
    return out


def member_order(body):
    """(top-level keys, error's keys) of a JSON error body, in the order written."""
    top = json.loads(body, object_pairs_hook=lambda pairs: pairs)
    keys = [k for k, _ in top]
    inner = dict(top).get("error") or []
    return keys, [k for k, _ in inner]


def refused_ok(r, status, code):
    return (getattr(r, "status", None) == status and is_error_shape(r.body, code)
            and (r.header("retry-after") or "").isdigit()
            and (r.header("content-type") or "").startswith("application/json")
            and member_order(r.body)[1] == ERROR_KEYS)


@case(timeout=240)
def login_with_the_hashing_queue_full(fx):
    users = [new_user(fx.admin) for _ in range(6)]
    refused_right = []   # users whose right password was refused unchecked
    seen = {"right": [], "wrong": [], "unknown": []}
    for rnd in range(4):
        fx.db.sql("DELETE FROM auth_throttle")
        logins, what = [], []
        for i, u in enumerate(users):
            logins.append(("127.0.%d.%d" % (rnd + 10, i + 1), u["email"], u["password"]))
            what.append(("right", u))
            logins.append(("127.0.%d.%d" % (rnd + 10, i + 101), u["email"], "wrong-" + u["password"]))
            what.append(("wrong", u))
        logins.append(("127.0.%d.200" % (rnd + 10), "nobody-%d@example.com" % rnd, "whatever-pw"))
        what.append(("unknown", None))
        out = burst(fx.server, logins)
        for (kind, u), r in zip(what, out):
            seen[kind].append(r)
            if kind == "right" and getattr(r, "status", None) in (429, 503):
                refused_right.append(u)
        statuses = [getattr(r, "status", repr(r)) for r in out]
        diag("round %d: %d simultaneous logins with one scrypt slot: %r" % (rnd, len(out), statuses))
        if sum(1 for s in statuses if s in (429, 503)) >= 3 and refused_right:
            break

    right = [getattr(r, "status", repr(r)) for r in seen["right"]]
    wrong = [getattr(r, "status", repr(r)) for r in seen["wrong"] + seen["unknown"]]
    ok(all(s in (200, 429, 503) for s in right),
       "a right password is 200, or 503/429 when it could not be checked: never 401", right)
    ok(all(s in (401, 429, 503) for s in wrong),
       "a wrong password or unknown email is 401, or 503/429 when it could not be checked: "
       "never 200", wrong)
    refused = [r for r in seen["right"] + seen["wrong"] + seen["unknown"]
               if getattr(r, "status", None) in (429, 503)]
    ok(any(r.status == 503 for r in refused),
       "the full hashing queue refuses some logins with 503", right, wrong)
    ok(all(refused_ok(r, 503, "unavailable") for r in refused if r.status == 503),
       "... each 503 is the JSON error 'unavailable' with Retry-After, members in order",
       [(r.status, r.headers, r.body) for r in refused if r.status == 503][:2])
    ok(all(refused_ok(r, 429, "too_many_requests") for r in refused if r.status == 429),
       "... a 429 (the account's own share is queued) is 'too_many_requests' with Retry-After",
       [(r.status, r.body) for r in refused if r.status == 429][:2])
    ok(all(b"scrypt" not in r.body and b"password hashing" not in r.body for r in refused),
       "... and says nothing of the hashing internals", [r.body for r in refused][:2])

    # Nothing is left behind: a user refused for a full queue logs in once it is free.
    ok(refused_right, "some right password was refused unchecked", right)
    if refused_right:
        u = refused_right[0]
        tok, r = fx.anon.login(u["email"], u["password"])
        ok(tok is not None, "a user refused for a full queue logs in right after", r.status, r.body)


@case(timeout=120)
def refused_check_is_not_counted(fx):
    # Every refused check takes back its own count: after bursts that are all refused
    # but one, the account's failures are at most the wrong passwords actually checked.
    u = new_user(fx.admin)
    fx.db.sql("DELETE FROM auth_throttle")
    logins = [("127.0.50.%d" % (i + 1), u["email"], "wrong-%d" % i) for i in range(6)]
    out = burst(fx.server, logins)
    statuses = [getattr(r, "status", repr(r)) for r in out]
    checked = statuses.count(401)
    fails = int(fx.db.sql("SELECT coalesce(max(failures), 0) FROM auth_throttle WHERE key = %s"
                          % dbh.sql_literal("account:" + u["email"])))
    diag("6 simultaneous wrong passwords for one account: %r, %d failures counted"
         % (statuses, fails))
    ok(all(s in (401, 429, 503) for s in statuses), "each is 401, 429 or 503", statuses)
    is_(fails, checked, "only the checked attempts count as failures")


@case
def one_error_body_from_c_and_lua(fx):
    s = fx.server
    lua_404 = s.request("GET", "/no/such/route")
    ok(lua_404.status == 404 and is_error_shape(lua_404.body, "not_found"),
       "Lua: no such route is a 404 error body", lua_404.status, lua_404.body)
    # decided from the headers alone: answered before any body is sent
    c_413 = s.raw(b"POST /v1/auth/token HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 400000\r\n\r\n")
    ok(c_413.status == 413 and is_error_shape(c_413.body),
       "C: a body over the route's limit is a 413 error body", c_413.status, c_413.body)
    adm = s.admin("/nothing-here")
    ok(adm.status == 404 and is_error_shape(adm.body, "not_found"),
       "admin listener: 404 error body with request_id", adm.status, adm.body)
    is_(json.loads(adm.body)["error"]["request_id"], None, "... whose request_id is null")
    # libmicrohttpd's own answers (.ci/patches/libmicrohttpd/0004) follow the same shape
    mhd = s.raw(b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
    ok(mhd.status == 400 and is_error_shape(mhd.body, "bad_request"),
       "libmicrohttpd: a malformed header line is a 400 error body", mhd.status, mhd.body)
    for name, r in (("Lua 404", lua_404), ("C 413", c_413), ("admin 404", adm),
                    ("libmicrohttpd 400", mhd)):
        is_(member_order(r.body), (["error"], ERROR_KEYS),
            "%s: members error.code, message, details, request_id in that order" % name,
            r.body)
    for name, r in (("Lua 404", lua_404), ("C 413", c_413)):
        rid = json.loads(r.body)["error"]["request_id"]
        ok(isinstance(rid, str) and rid and rid == (r.header("x-request-id") or rid),
           "%s: request_id is the request's id" % name, rid, r.headers)


@case
def no_secrets_in_responses(fx):
    dbh.assert_no_leaks()


if __name__ == "__main__":
    main(dbh.DbFixture("pwerr", env=SCRYPT_ENV))
