"""A hostile client against the real server (routes/, PostgreSQL, Ceph RGW).

Each case is an attack a probe found answered wrongly once (a 500, a
connection dropped, a pending row and object left behind, a limit
bypassed), kept as a regression test, plus a sweep of the attacks that
were already answered well, so that none of them regresses into a 500.
Every answer must be a precise 4xx with the JSON error body, within a
bounded time; after the faults the server is alive, no request logged a
runner failure, and no pending row or object without a committed row is
left (checked against the store's listing).

Run by hand as any integration file (tests/run-all sets the database and
store variables): GLASGOW_BIN=build/glasgow python3 tests/integration/test_hostile.py
"""
import hashlib
import json
import os
import secrets
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import case, is_, is_error_shape, main, ok  # noqa: E402
import dbharness as dbh  # noqa: E402
import s3harness as s3h  # noqa: E402


s3h.skip_without_binding()
dbh.skip_without_pg()
STORE = s3h.store_or_fail()
BUCKET = "hostile-" + secrets.token_hex(4)  # this file's own store bucket
ENV = dict(STORE.runtime_env(bucket=BUCKET))
ENV["GLASGOW_URL_SIGNING_KEY"] = secrets.token_hex(32)


def auth(fx):
    return "Authorization: Bearer %s\r\n" % fx.admin.token


def answered(r, status, code, what):
    """Checks that raw exchange r is a whole `status` answer with the error body `code`."""
    ok(r.outcome == "response" and r.status == status and is_error_shape(r.body, code),
       "%s: %d %s with the JSON error body" % (what, status, code),
       "got: %r" % (r,))


def new_bucket(fx, **fields):
    body = {"name": "hb-" + secrets.token_hex(5)}
    body.update(fields)
    r = fx.admin.post("/v1/buckets", body)
    if r.status != 201:
        raise AssertionError("creating a bucket answered %s %r" % (r.status, r.body[:300]))
    return r.json()


def rows(fx, bucket):
    """The (name, status) of every files row of bucket (a dict from the API)."""
    out = fx.db.sql("SELECT name || '|' || status FROM files WHERE bucket_id = '%s' ORDER BY name"
                    % bucket["id"])
    return [tuple(x.split("|")) for x in out.splitlines() if x]


def leftovers(fx, bucket):
    """Rows that are not committed, and store keys under the bucket without a committed row."""
    bad = [r for r in rows(fx, bucket) if r[1] != "committed"]
    committed = set(fx.db.sql("SELECT storage_key FROM files WHERE bucket_id = '%s' AND "
                              "status = 'committed'" % bucket["id"]).split())
    stray = [k for k in STORE.list_keys(BUCKET, prefix=bucket["id"] + "/") if k not in committed]
    return bad + stray


def runner_failures(fx):
    return [ln for ln in fx.server.stdout().splitlines() if "runner failed" in ln]


@case
def request_text_that_is_not_utf8(fx):
    """A 404 or 405 quotes the method and path; bytes that are not UTF-8 there made the
    JSON error body fail to encode, and the client got a 500."""
    for target in (b"/nope\xff\xfe", b"/nope%FF", b"/v1/nope%C0%AF"):
        r = fx.server.raw(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        answered(r, 404, "not_found", "GET %r" % target)
        msg = ((r.json_or_none() or {}).get("error") or {}).get("message", "")
        ok("%FF" in msg or "%C0%AF" in msg, "  the message names the path, bytes as %XX", msg)
    r = fx.server.raw(b"POST /nope%FF HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
    answered(r, 404, "not_found", "POST with a body to a path that is not UTF-8")
    r = fx.server.raw(b"G\xffT /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    answered(r, 405, "method_not_allowed", "a method that is not UTF-8")
    is_(runner_failures(fx), [], "no request failed in the runner")


@case
def chunked_upload_refused_before_the_store(fx):
    """A chunked upload whose whole body is already there when the handler starts, and
    which is refused at once (over the bucket's limit, or not the announced digest):
    the store client reported the failure before the handler had yielded, the
    coroutine could not be resumed (500), and the pending row stayed behind."""
    b = new_bucket(fx, max_file_bytes=10)
    path = "/v1/buckets/%s/files/" % b["name"]
    head = "PUT %s%%s HTTP/1.1\r\nHost: x\r\n%sTransfer-Encoding: chunked\r\n" % (path, auth(fx))
    one = (head % "one") + "\r\nc\r\naaaaaaaaaaaa\r\n0\r\n\r\n"
    answered(fx.server.raw(one.encode()), 413, "too_large", "12 bytes in one chunk into 10")
    two = (head % "two") + "\r\n5\r\naaaaa\r\n7\r\nbbbbbbb\r\n0\r\n\r\n"
    answered(fx.server.raw(two.encode()), 413, "too_large", "12 bytes in two chunks into 10")
    wrong = hashlib.sha256(b"something else").hexdigest()
    dig = (head % "digest") + "x-checksum-sha256: %s\r\n\r\n5\r\nhello\r\n0\r\n\r\n" % wrong
    answered(fx.server.raw(dig.encode()), 400, "digest_mismatch", "a chunked body, wrong digest")
    good = (head % "good") + "\r\n5\r\nhello\r\n0\r\n\r\n"
    r = fx.server.raw(good.encode())
    is_(r.status, 201, "a chunked body within the limit is stored", r)
    ok(harness.wait_until(lambda: not leftovers(fx, b), harness.slow(5)),
       "no pending row and no object is left behind", leftovers(fx, b))
    is_(rows(fx, b), [("good", "committed")], "only the good upload has a row")
    is_(runner_failures(fx), [], "no request failed in the runner")


@case
def content_type_lists_are_not_a_media_type(fx):
    """Two Content-Type fields arrive joined ("image/png, text/html"); the media type
    was read from the front, so the upload passed an image/png-only bucket and was
    stored and served with that whole value, which a browser reads as text/html."""
    b = new_bucket(fx, allowed_content_types=["image/png"])
    path = "/v1/buckets/%s/files/" % b["name"]

    def put(name, ct_lines):
        data = "PUT %s%s HTTP/1.1\r\nHost: x\r\n%s%sContent-Length: 1\r\n\r\nx" % (
            path, name, auth(fx), ct_lines)
        return fx.server.raw(data.encode())

    answered(put("two.png", "Content-Type: image/png\r\nContent-Type: text/html\r\n"), 400,
             "validation_failed", "two Content-Type fields")
    answered(put("list.png", "Content-Type: image/png, text/html\r\n"), 400,
             "validation_failed", "a list as the Content-Type")
    answered(put("junk.png", "Content-Type: image/png junk\r\n"), 400, "validation_failed",
             "junk after the media type")
    answered(put("param.png", "Content-Type: image/png; name\r\n"), 400, "validation_failed",
             "a parameter without a value")
    r = put("ok.png", 'Content-Type: image/png; q="a, b"\r\n')
    is_(r.status, 201, "a quoted parameter holding a comma is a media type", r)
    is_(rows(fx, b), [("ok.png", "committed")], "nothing else was stored")


@case
def json_duplicate_member_names(fx):
    """{"role":"user","role":"admin"}: the last one won here, while a proxy or validator
    in front may read the first. A name given twice is refused, at any depth."""
    email = "dup-%s@example.com" % secrets.token_hex(4)
    body = ('{"email":"%s","name":"x","password":"pw-%s","role":"user","role":"admin"}'
            % (email, secrets.token_hex(6)))
    r = fx.admin.post("/v1/users", body)
    is_(r.status, 400, "a duplicate member name is 400", r.body[:300])
    ok(is_error_shape(r.body, "invalid_json"), "  invalid_json", r.body[:300])
    is_(fx.db.sql("SELECT count(*) FROM users WHERE email = '%s'" % email), "0",
        "  and no user was created")
    b = new_bucket(fx)
    r = fx.admin.patch("/v1/buckets/" + b["name"], '{"max_file_bytes":5,"max_file_bytes":null}')
    ok(r.status == 400 and is_error_shape(r.body, "invalid_json"), "PATCH with a name twice: 400",
       r.body[:300])
    r = fx.admin.post("/v1/buckets/%s/signed-urls" % b["name"], '{"name":"a","x":{"k":1,"k":2}}')
    ok(r.status == 400 and is_error_shape(r.body, "invalid_json"), "a nested name twice: 400",
       r.body[:300])
    r = fx.admin.post("/v1/auth/token", '{"email":"a@b.co","password":"x","password":"y"}',
                      token="")
    ok(r.status == 400 and is_error_shape(r.body, "invalid_json"), "a login with it twice: 400",
       r.body[:300])


@case
def admin_listener_framing(fx):
    """The admin listener answered a request with two different Content-Length values
    (or Content-Length with Transfer-Encoding); where such a request ends is
    ambiguous, so it is refused and the connection closed, as on the public one."""
    r = harness.raw(fx.server.admin_port, b"GET /livez HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab")
    answered(r, 400, "bad_framing", "admin: conflicting Content-Length")
    is_(r.header("connection"), "close", "  and the connection closes")
    r = harness.raw(fx.server.admin_port, b"GET /livez HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    ok(r.status == 400 and is_error_shape(r.body), "admin: Content-Length with chunked is 400", r)
    r = harness.raw(fx.server.admin_port, b"GET /livez HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Length: 0\r\nContent-Length: 0\r\n\r\n")
    is_(r.status, 200, "admin: the same Content-Length twice still answers", r)


@case
def host_values_and_header_names(fx):
    """A Host value that is not host[:port] (RFC 9112 3.2: a MUST for 400), and a header
    name that is not a token (control bytes, separators, bytes above 0x7F), were
    answered as if they were fine."""
    for host in (b"a b", b"x:abc", b"user@x", b"x/y", b"[zz]", b"[::1", b"a%4", b"\xc3\xa9"):
        r = fx.server.raw(b"GET /hello HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        answered(r, 400, "bad_host", "Host: %r" % host)
    for host in (b"x", b"x:80", b"x:", b"127.0.0.1:8080", b"[::1]:80", b"", b"a%41b"):
        r = fx.server.raw(b"GET /hello HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        is_(r.status, 200, "Host: %r is served" % host, r)
    for name in (b"X\x01A", b"X(A)", b"X{A}", b"X\xffA", b"X\"A"):
        r = fx.server.raw(b"GET /hello HTTP/1.1\r\nHost: x\r\n" + name + b": 1\r\n\r\n")
        answered(r, 400, "bad_header", "a header named %r" % name)
    r = fx.server.raw(b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Ok_'!#$%&*+.^`|~9: 1\r\n\r\n")
    is_(r.status, 200, "a name of every token character is served", r)


@case
def login_email_with_nul(fx):
    """A login email holding \\u0000 reached the throttle's statement, and PostgreSQL's
    refusal answered a vague 400 invalid_input; it is the field's fault, and said so."""
    before = fx.db.sql("SELECT count(*) FROM auth_throttle")
    r = fx.anon.post("/v1/auth/token", '{"email":"a\\u0000@example.com","password":"whatever1"}')
    is_(r.status, 400, "a NUL in the login email is 400", r.body[:300])
    ok(is_error_shape(r.body, "validation_failed") and
       (r.json_or_none() or {}).get("error", {}).get("details", {}).get("field") == "body.email",
       "  validation_failed naming body.email", r.body[:300])
    is_(fx.db.sql("SELECT count(*) FROM auth_throttle"), before, "  and counts no attempt")


@case
def a_date_no_column_holds(fx):
    """created_after=0000-01-01T00:00:00Z is RFC 3339 (1 BC), but PostgreSQL has no
    year 0: the statement failed and the client read a vague 400 invalid_input."""
    r = fx.admin.get("/v1/users?created_after=0000-01-01T00:00:00Z")
    ok(r.status == 400 and is_error_shape(r.body, "validation_failed") and
       (r.json_or_none() or {}).get("error", {}).get("details", {}).get("field") ==
       "query.created_after", "year 0000 is 400 validation_failed naming the field",
       r.body[:300])
    r = fx.admin.get("/v1/users?created_after=0001-01-01T00:00:00Z")
    is_(r.status, 200, "year 0001 is served", r.body[:300])


# (name, request bytes, status, error code or None for any): attacks that were answered
# well when the probe ran; a 500, a hang or a dropped connection here is a regression.
@case
def encoded_slash_in_a_bucket_name(fx):
    """%2F was a '/' for the router: /v1/buckets/B%2Ffiles listed bucket B's files. Now it
    is one segment, the bucket name "B/files", which no bucket can have."""
    b = new_bucket(fx)
    r = fx.server.raw(("GET /v1/buckets/%s%%2Ffiles HTTP/1.1\r\nHost: x\r\n%s\r\n"
                       % (b["name"], auth(fx))).encode())
    ok(r.outcome == "response" and r.status in (400, 404) and is_error_shape(r.body),
       "GET /v1/buckets/<name>%2Ffiles: 400 or 404, not the bucket's files", "got: %r" % (r,))
    r = fx.server.raw(("GET /v1/buckets/%s/files HTTP/1.1\r\nHost: x\r\n%s\r\n"
                       % (b["name"], auth(fx))).encode())
    is_(r.status, 200, "GET /v1/buckets/<name>/files still lists them", r)


def sweep_requests(fx):
    a = auth(fx)
    tok = "POST /v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"

    def login(body):
        return tok + "Content-Length: %d\r\n\r\n%s" % (len(body.encode("latin-1")), body)
    return [
        ("conflicting Content-Length", tok + "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}x",
         400, "bad_framing"),
        ("Content-Length with chunked", tok + "Content-Length: 5\r\nTransfer-Encoding: chunked"
         "\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 400, None),
        ("gzip, chunked", tok + "Transfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
         400, None),
        ("chunk size overflow", tok + "Transfer-Encoding: chunked\r\n\r\n10000000000000002\r\n"
         "{}\r\n0\r\n\r\n", 413, None),
        ("huge chunk extension", tok + "Transfer-Encoding: chunked\r\n\r\n2;" + "a" * 100000 +
         "\r\n{}\r\n0\r\n\r\n", 413, None),
        ("chunked in HTTP/1.0", tok.replace("HTTP/1.1", "HTTP/1.0") +
         "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 400, "bad_framing"),
        ("bare LF", "GET /hello HTTP/1.1\nHost: x\n\n", 400, None),
        ("obs-fold", "GET /hello HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400, None),
        ("NUL in a header", "GET /hello HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400, None),
        ("absolute-form target", "GET http://x/hello HTTP/1.1\r\nHost: x\r\n\r\n", 400,
         "bad_path"),
        ("asterisk target", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_path"),
        ("CONNECT", "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", 400, "bad_path"),
        ("two Host fields", "GET /hello HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400,
         "bad_host"),
        ("huge request line", "GET /hello?" + "a" * 10000 + " HTTP/1.1\r\nHost: x\r\n\r\n", 414,
         None),
        ("many headers", "GET /hello HTTP/1.1\r\nHost: x\r\n" +
         "".join("X-%d: a\r\n" % i for i in range(200)) + "\r\n", 431, None),
        ("percent-encoded NUL", "GET /hel%00lo HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_path"),
        ("bad percent-encoding", "GET /v1/users?email=%G1 HTTP/1.1\r\nHost: x\r\n" + a + "\r\n",
         400, "bad_path"),
        ("a query name that is not UTF-8", "GET /v1/users?%FF=1 HTTP/1.1\r\nHost: x\r\n" + a +
         "\r\n", 400, "validation_failed"),
        ("a repeated query parameter", "GET /v1/users?limit=1&limit=2 HTTP/1.1\r\nHost: x\r\n" +
         a + "\r\n", 400, "validation_failed"),
        ("a huge limit", "GET /v1/users?limit=99999999999999999999999 HTTP/1.1\r\nHost: x\r\n" +
         a + "\r\n", 400, "validation_failed"),
        ("a forged bucket cursor", "GET /v1/buckets?cursor=_w HTTP/1.1\r\nHost: x\r\n" + a +
         "\r\n", 400, "validation_failed"),
        ("deep JSON nesting", login('{"a":' * 70 + "1" + "}" * 70), 400, "invalid_json"),
        ("a JSON number too large", login('{"email":"a@b.co","password":1e999999}'), 400,
         "invalid_json"),
        ("a lone surrogate escape", login('{"email":"\\ud800@b.co","password":"x"}'), 400,
         "invalid_json"),
        ("a BOM before the JSON", login("\xef\xbb\xbf{}"), 400, "invalid_json"),
        ("trailing garbage after the JSON", login("{}xyz"), 400, "invalid_json"),
        ("another charset", "POST /v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: "
         "application/json; charset=latin1\r\nContent-Length: 2\r\n\r\n{}", 415, None),
        ("a bearer token one character short", "GET /v1/users HTTP/1.1\r\nHost: x\r\n"
         "Authorization: Bearer " + fx.admin.token[:42] + "\r\n\r\n", 401, "invalid_token"),
        ("a very long bearer token", "GET /v1/users HTTP/1.1\r\nHost: x\r\n"
         "Authorization: Bearer " + "a" * 7000 + "\r\n\r\n", 401, "invalid_token"),
        ("a token in the URL", "GET /v1/users?access_token=x HTTP/1.1\r\nHost: x\r\n\r\n", 401,
         "invalid_request"),
        ("a file name with ..", "GET /v1/buckets/b-x/files/a/../b HTTP/1.1\r\nHost: x\r\n" + a +
         "\r\n", 400, "validation_failed"),
        ("an overlong UTF-8 file name", "GET /v1/buckets/b-x/files/a%C0%AF HTTP/1.1\r\n"
         "Host: x\r\n" + a + "\r\n", 400, "validation_failed"),
        ("a file name of 1025 bytes", "GET /v1/buckets/b-x/files/" + "%C3%A9" * 512 + "a "
         "HTTP/1.1\r\nHost: x\r\n" + a + "\r\n", 400, "validation_failed"),
        ("a signed URL past 2^53", "GET /v1/download/00000000-0000-0000-0000-000000000000/a?"
         "expires=9007199254740993&signature=a HTTP/1.1\r\nHost: x\r\n\r\n", 400,
         "validation_failed"),
        ("a tampered signed URL", "GET /v1/download/00000000-0000-0000-0000-000000000000/a?"
         "expires=99999999999&signature=abc HTTP/1.1\r\nHost: x\r\n\r\n", 403,
         "invalid_signature"),
    ]


@case(timeout=120)
def sweep_of_attacks_answered_well(fx):
    for name, data, status, code in sweep_requests(fx):
        r = fx.server.raw(data.encode("latin-1"), timeout=harness.slow(5))
        ok(r.outcome == "response" and r.status == status and is_error_shape(r.body, code),
           "%s: %d%s with the JSON error body" % (name, status, " " + code if code else ""),
           "got: %r" % (r,))
    ok(fx.server.alive(), "the server is alive after the sweep")
    is_(fx.server.admin("/livez").status, 200, "and answers /livez")
    is_(runner_failures(fx), [], "no request failed in the runner")
    err = fx.server.stderr()
    ok("AddressSanitizer" not in err and "runtime error:" not in err,
       "no sanitizer report (make test SAN=1)", err[-2000:])


if __name__ == "__main__":
    main(s3h.BucketDbFixture(STORE, BUCKET, "hostile", env=ENV))
