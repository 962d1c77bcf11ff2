"""The file routes against a real PostgreSQL, for everything that does not
need the object store (its binding lands separately; round trips, ranges
with bodies and the fault tests come with it).

Here: bad names are 4xx on every method and store nothing; uploads are
checked (content type against the bucket, size, digest headers,
If-None-Match / If-Match) before any byte is stored; without a store the
upload and the body of a download answer 503; listings page through
committed rows only (prefix, cursor, Link) and are owner-scoped; HEAD,
304, 412 and 416 are answered from the metadata alone with the documented
headers (ETag from the SHA-256, Last-Modified, Content-Disposition with
filename*, nosniff, Accept-Ranges); signed URLs: made for one existing
file, refused when tampered with, expired, or pointed at another file,
and 503 on a server without a signing key; with GLASGOW_PUBLIC_URL the
url is absolute (its path prefix kept) and path still relative, without
it both are the path; a bad GLASGOW_PUBLIC_URL stops start-up naming it.
"""
import hashlib
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import GLASGOW_BIN, HOST, case, free_port, is_, main, ok, spawn  # noqa: E402
import dbharness as dbh  # noqa: E402
from dbharness import Api, DbServer, error_of, new_user  # noqa: E402

dbh.skip_without_pg()

SIGNING_KEY = secrets.token_hex(32)
HTTP_DATE = re.compile(r"^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$")


def q(name):
    """A name as it goes into a path: every byte but unreserved and '/' escaped."""
    return urllib.parse.quote(name, safe="/~")


def new_bucket(api, **extra):
    body = {"name": "f-" + secrets.token_hex(5)}
    body.update(extra)
    r = api.post("/v1/buckets", body)
    if r.status != 201:
        raise AssertionError("creating a bucket answered %s %r" % (r.status, r.body))
    return r.json()


def add_file(fx, bucket, name, data=b"hello", status="committed", ctype="text/plain"):
    """A files row as a finished upload leaves it; returns its hex SHA-256."""
    sha = hashlib.sha256(data).hexdigest()
    lit = "'" + name.replace("'", "''") + "'"
    fx.db.sql("INSERT INTO files (bucket_id, name, storage_key, size, content_type, sha256, etag, "
              "status) VALUES ('%s', %s, '%s/' || gen_random_uuid(), %d, '%s', "
              "decode('%s', 'hex'), '\"x\"', '%s')"
              % (bucket["id"], lit, bucket["id"], len(data), ctype, sha, status))
    return sha


def count_files(fx):
    return int(fx.db.sql("SELECT count(*) FROM files"))


BAD_NAMES = [
    ("..", "'..' segment"), ("a/../b", "'..' segment"), ("../x", "'..' segment"),
    ("a/..", "'..' segment"), (".", "only of dots"), ("...", "only of dots"),
    ("a/./b", "only of dots"), ("a//b", "empty segment"), ("/a", "start with '/'"),
    ("a/", "end with '/'"), ("a\rb", "control"), ("a\nb", "control"), ("a\tb", "control"),
    ("x" * 1025, "1024"), ("\u00e9" * 513, "1024"),
]
RAW_BAD = [("%FF", "UTF-8"), ("a%C0%AFb", "UTF-8"), ("%ED%A0%80", "UTF-8"),
           ("a%C2%85b", "control")]


@case
def bad_names_are_400_everywhere(fx):
    u = new_user(fx.admin)
    b = new_bucket(u["api"])
    base = "/v1/buckets/%s/files/" % b["name"]
    before = count_files(fx)
    cases = [(q(n), why) for n, why in BAD_NAMES] + RAW_BAD
    for path, why in cases:
        for method in ["PUT", "GET", "DELETE"]:
            r = u["api"].call(method, base + path, b"" if method == "PUT" else None,
                              headers={"Content-Type": "text/plain"} if method == "PUT" else None)
            label = "%s %s" % (method, path[:40])
            if r.status == 400 and error_of(r)[0] == "validation_failed":
                msg = error_of(r)[1] or ""
                ok(why.lower() in msg.lower() or "characters" in msg,
                   "%s is 400 and says why: %s" % (label, msg))
            else:
                ok(False, "%s is 400 validation_failed" % label, r.status, r.body[:200])
    # NUL never reaches a route: the runtime refuses an encoded NUL in any path
    r = u["api"].call("PUT", base + "a%00b", b"", headers={"Content-Type": "text/plain"})
    is_(r.status, 400, "an encoded NUL is 400", r.body)
    r = u["api"].get("/v1/buckets/%s/files/" % b["name"])
    is_(r.status, 404, "files/ (no name at all) is no route", r.body)
    r = u["api"].post("/v1/buckets/%s/signed-urls" % b["name"], {"name": "a/../b"})
    is_(r.status, 400, "signed-urls with a bad name is 400", r.body)
    is_(((r.json_or_none() or {}).get("error") or {}).get("details", {}).get("field"), "body.name",
        "  naming body.name")
    is_(count_files(fx), before, "nothing was stored")


@case
def uploads_checked_before_storing(fx):
    u = new_user(fx.admin)
    b = new_bucket(u["api"], allowed_content_types=["image/*", "text/plain"], max_file_bytes=10)
    path = "/v1/buckets/%s/files/pic.png" % b["name"]
    before = count_files(fx)
    r = u["api"].call("PUT", path, b"", headers={"Content-Type": "application/pdf"})
    is_(r.status, 415, "a type the bucket does not allow is 415", r.body)
    ok("application/pdf" in (error_of(r)[1] or ""), "  naming it")
    r = u["api"].call("PUT", path, b"", headers={"Content-Type": "not a type"})
    is_(r.status, 400, "a malformed Content-Type is 400", r.body)
    r = u["api"].call("PUT", path, b"", headers={})
    is_(r.status, 415, "no Content-Type is octet-stream, not allowed here", r.body)
    r = u["api"].call("PUT", path, b"x" * 11, headers={"Content-Type": "image/png"})
    is_(r.status, 413, "a body over the bucket's limit is 413", r.body)
    r = u["api"].call("PUT", path, b"", headers={"Content-Type": "image/png",
                                                  "Content-Digest": "sha-256=:nope:"})
    is_(r.status, 400, "a malformed Content-Digest is 400", r.body)
    r = u["api"].call("PUT", path, b"", headers={"Content-Type": "image/png",
                                                  "x-checksum-sha256": "zz"})
    is_(r.status, 400, "a malformed x-checksum-sha256 is 400", r.body)
    add_file(fx, b, "pic.png", b"old", ctype="image/png")
    r = u["api"].call("PUT", path, b"", headers={"Content-Type": "image/png",
                                                  "If-None-Match": "*"})
    is_(r.status, 412, "If-None-Match: * over an existing file is 412", r.body)
    r = u["api"].call("PUT", path, b"", headers={"Content-Type": "image/png",
                                                  "If-Match": '"0000"'})
    is_(r.status, 412, "a stale If-Match is 412", r.body)
    is_(count_files(fx), before + 1, "nothing was stored by the refused uploads")
    r = u["api"].call("PUT", path, b"", headers={"Content-Type": "image/png"})
    is_(r.status, 503, "an acceptable upload without a store answers 503", r.body)
    is_(error_of(r)[0], "store_unavailable", "  store_unavailable")
    ok(r.header("retry-after"), "  with Retry-After")
    is_(count_files(fx), before + 1, "  and leaves no row")
    # another user's bucket is 404 whatever the upload
    v = new_user(fx.admin)
    r = v["api"].call("PUT", path, b"", headers={"Content-Type": "image/png"})
    is_(r.status, 404, "another user's bucket is 404", r.body)


@case
def metadata_answers(fx):
    u = new_user(fx.admin)
    b = new_bucket(u["api"])
    name = "docs/caf\u00e9 \"r\u00e9sum\u00e9\".txt"
    sha = add_file(fx, b, name, b"0123456789" * 10)
    path = "/v1/buckets/%s/files/%s" % (b["name"], q(name))
    r = u["api"].call("HEAD", path)
    is_(r.status, 200, "HEAD is 200 from the metadata", r.body)
    etag = r.header("etag")
    is_(etag, '"%s"' % sha, "ETag is the quoted SHA-256")
    ok(HTTP_DATE.match(r.header("last-modified") or ""), "Last-Modified is an HTTP date",
       r.header("last-modified"))
    is_(r.header("accept-ranges"), "bytes", "Accept-Ranges: bytes")
    is_(r.header("x-content-type-options"), "nosniff", "nosniff")
    is_(r.header("content-security-policy"), "default-src 'none'; sandbox",
        "a sandboxing Content-Security-Policy")
    is_(r.header("content-type"), "text/plain", "the stored Content-Type")
    cd = r.header("content-disposition") or ""
    ok(cd.startswith('attachment; filename="caf_ _r_sum__.txt"'), "an ASCII fallback", cd)
    ok("filename*=UTF-8''caf%C3%A9%20%22r%C3%A9sum%C3%A9%22.txt" in cd, "filename* exact", cd)
    is_(r.body, b"", "HEAD has no body")
    is_(r.header("content-length"), "100", "  and the file's Content-Length")

    for h, label in [({"If-None-Match": etag}, "its ETag"), ({"If-None-Match": "*"}, "*"),
                     ({"If-None-Match": "W/" + etag}, "the weak form"),
                     ({"If-None-Match": '"x", ' + etag}, "a list holding it"),
                     ({"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}, "a later date")]:
        r = u["api"].get(path, headers=h)
        is_(r.status, 304, "GET with If-None-Match / If-Modified-Since %s is 304" % label, r.body)
        is_(r.header("etag"), etag, "  with the ETag")
        is_(r.body, b"", "  and no body")
    r = u["api"].get(path, headers={"If-Match": '"stale"'})
    is_(r.status, 412, "a stale If-Match is 412", r.body)
    r = u["api"].get(path, headers={"If-Match": "W/" + etag})
    is_(r.status, 412, "If-Match compares strongly: a weak tag is 412", r.body)
    r = u["api"].get(path, headers={"If-Unmodified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"})
    is_(r.status, 412, "If-Unmodified-Since before the commit is 412", r.body)
    r = u["api"].get(path, headers={"Range": "bytes=100-"})
    is_(r.status, 416, "a range past the end is 416", r.body)
    is_(r.header("content-range"), "bytes */100", "  with Content-Range: bytes */100")
    empty = add_file(fx, b, "empty", b"")
    r = u["api"].get("/v1/buckets/%s/files/empty" % b["name"], headers={"Range": "bytes=0-0"})
    is_(r.status, 416, "bytes=0-0 on a 0-byte file is 416", r.body)
    is_(r.header("content-range"), "bytes */0", "  with Content-Range: bytes */0")
    ok(empty, "the empty file has a digest")
    r = u["api"].get(path)
    is_(r.status, 503, "the body itself needs the store: 503 without one", r.body)
    # rows that are not committed are invisible
    add_file(fx, b, "pending.txt", status="pending")
    add_file(fx, b, "deleting.txt", status="deleting")
    for n in ["pending.txt", "deleting.txt", "missing.txt"]:
        r = u["api"].call("HEAD", "/v1/buckets/%s/files/%s" % (b["name"], n))
        is_(r.status, 404, "HEAD of a %s row is 404" % n.split(".")[0])
    v = new_user(fx.admin)
    is_(v["api"].call("HEAD", path).status, 404, "another user's file is 404")
    is_(fx.admin.call("HEAD", path).status, 200, "an admin reads it")


@case
def listing(fx):
    u = new_user(fx.admin)
    b = new_bucket(u["api"])
    names = ["a.txt", "dir/one", "dir/sub/two", "dir/three", "dis", "z\u00e9", "zz", "di"]
    for n in names:
        add_file(fx, b, n)
    add_file(fx, b, "dir/pending", status="pending")
    add_file(fx, b, "dir/deleting", status="deleting")
    base = "/v1/buckets/%s/files" % b["name"]

    def all_pages(query, limit):
        seen, cursor = [], None
        for _ in range(20):
            r = u["api"].get(base + "?limit=%d%s%s" % (limit, query,
                                                       "&cursor=" + cursor if cursor else ""))
            if r.status != 200:
                return None, r
            body = r.json()
            seen += [x["name"] for x in body["items"]]
            cursor = body.get("next_cursor")
            if not cursor:
                return seen, r
        return seen, None

    want = sorted(n.encode() for n in names)
    got, r = all_pages("", 3)
    is_([g.encode() for g in got or []], want, "every committed file once, in byte order", r)
    got, _ = all_pages("&prefix=dir/", 2)
    is_(got, ["dir/one", "dir/sub/two", "dir/three"], "prefix dir/ (pages of 2)")
    got, _ = all_pages("&prefix=di", 100)
    is_(got, ["di", "dir/one", "dir/sub/two", "dir/three", "dis"], "prefix di")
    got, _ = all_pages("&prefix=" + q("z\u00e9"), 100)
    is_(got, ["z\u00e9"], "a non-ASCII prefix")
    got, _ = all_pages("&prefix=nothing", 100)
    is_(got, [], "a prefix nothing has")
    r = u["api"].get(base + "?limit=2&prefix=dir/")
    link = r.header("link") or ""
    ok("prefix=dir%2F" in link and 'rel="next"' in link, "Link keeps the prefix", link)
    item = (r.json_or_none() or {}).get("items", [{}])[0]
    is_(set(item), {"id", "name", "size", "content_type", "sha256", "etag", "created_at",
                    "updated_at"}, "an item's fields (no storage key)")
    for bad in ["limit=0", "limit=1001", "cursor=!!", "prefix=%FF", "other=1"]:
        is_(u["api"].get(base + "?" + bad).status, 400, bad + " is 400")
    v = new_user(fx.admin)
    is_(v["api"].get(base).status, 404, "another user's listing is 404")
    is_(fx.admin.get(base).status, 200, "an admin lists it")


@case
def signed_urls(fx):
    u = new_user(fx.admin)
    b = new_bucket(u["api"])
    name = "reports/q1 \u00e9.pdf"
    add_file(fx, b, name, b"%PDF", ctype="application/pdf")
    add_file(fx, b, "other.txt")
    surl = "/v1/buckets/%s/signed-urls" % b["name"]
    r = u["api"].post(surl, {"name": name, "expires_in": 60})
    is_(r.status, 201, "POST signed-urls is 201", r.body)
    body = r.json_or_none() or {}
    url = body.get("url", "")
    ok(url.startswith("/v1/download/%s/reports/q1%%20%%C3%%A9.pdf?expires=" % b["id"]),
       "the URL names the bucket id and the encoded name", url)
    is_(body.get("path"), url, "without GLASGOW_PUBLIC_URL, path and url are the same path")
    ok(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", body.get("expires_at", "")),
       "expires_at is RFC 3339")
    r = fx.anon.call("HEAD", url, token="")
    is_(r.status, 200, "HEAD of the signed URL without a token is 200", r.body)
    is_(r.header("content-type"), "application/pdf", "  the file's type")
    ok("filename*=UTF-8''q1%20%C3%A9.pdf" in (r.header("content-disposition") or ""),
       "  its name")
    r = fx.anon.call("GET", url, token="")
    is_(r.status, 503, "GET reaches the store (503 without one)", r.body)

    path, query = url.split("?", 1)
    params = dict(urllib.parse.parse_qsl(query))
    sig, exp = params["signature"], params["expires"]
    flipped = sig[:-1] + ("A" if sig[-1] != "A" else "B")
    tampered = [
        ("another signature", "%s?expires=%s&signature=%s" % (path, exp, flipped)),
        ("a later expiry", "%s?expires=%d&signature=%s" % (path, int(exp) + 1, sig)),
        ("another file", "/v1/download/%s/other.txt?expires=%s&signature=%s" % (b["id"], exp, sig)),
        ("another bucket id", "%s?expires=%s&signature=%s"
         % (path.replace(b["id"], "00000000-0000-4000-8000-000000000000"), exp, sig)),
        ("no signature", "%s?expires=%s" % (path, exp)),
    ]
    for label, turl in tampered:
        r = fx.anon.call("HEAD", turl, token="")
        ok(r.status in (400, 403), "%s is refused (%d)" % (label, r.status))
    r = fx.anon.call("GET", "%s?expires=%s&signature=%s" % (path, exp, flipped), token="")
    is_(error_of(r)[0], "invalid_signature", "a tampered signature says invalid_signature")

    r = u["api"].post(surl, {"name": "other.txt", "expires_in": 1})
    short = (r.json_or_none() or {}).get("url", "")
    time.sleep(2.1)
    r = fx.anon.call("HEAD", short, token="")
    is_(r.status, 403, "an expired URL is 403", r.body)
    r = fx.anon.call("GET", short, token="")
    is_(error_of(r)[0], "expired", "  code expired")

    for body, want in [({"name": "missing.txt"}, 404), ({"name": name, "expires_in": 0}, 400),
                       ({"name": name, "expires_in": 7 * 86400 + 1}, 400), ({}, 400)]:
        is_(u["api"].post(surl, body).status, want, "signed-urls %r is %d" % (body, want))
    v = new_user(fx.admin)
    is_(v["api"].post(surl, {"name": name}).status, 404, "another user cannot sign A's files")
    is_(fx.anon.post(surl, {"name": name}, token="").status, 401, "signing needs a token")

    # a server without a signing key: 503 on both routes
    with DbServer(fx.db) as s2:
        api2 = Api(s2, u["token"])
        r = api2.post(surl, {"name": name})
        is_(r.status, 503, "without a key, signed-urls is 503", r.body)
        is_(error_of(r)[0], "signing_unavailable", "  signing_unavailable")
        is_(Api(s2).call("HEAD", url, token="").status, 503, "  and so is a signed download")


@case
def signed_urls_with_public_url(fx):
    u = new_user(fx.admin)
    b = new_bucket(u["api"])
    name = "a b/\u00e9.txt"
    add_file(fx, b, name)
    surl = "/v1/buckets/%s/signed-urls" % b["name"]
    # the proxy in front would strip /store; the server only prefixes it
    env = {"GLASGOW_URL_SIGNING_KEY": SIGNING_KEY,
           "GLASGOW_PUBLIC_URL": "HTTPS://Files.Example.COM:8443/store/"}
    with DbServer(fx.db, env=env) as s2:
        r = Api(s2, u["token"]).post(surl, {"name": name})
        is_(r.status, 201, "with GLASGOW_PUBLIC_URL, POST signed-urls is 201", r.body)
        body = r.json_or_none() or {}
        path, url = body.get("path", ""), body.get("url", "")
        ok(path.startswith("/v1/download/%s/a%%20b/%%C3%%A9.txt?expires=" % b["id"]),
           "path is the relative path as before", path)
        is_(url, "https://files.example.com:8443/store" + path,
            "url is the normalised public URL (lower-cased, no trailing /) + path")
        r = Api(s2).call("HEAD", path, token="")
        is_(r.status, 200, "the path opens the file without a token", r.body)
        parsed = urllib.parse.urlsplit(url)
        is_((parsed.scheme, parsed.hostname, parsed.port), ("https", "files.example.com", 8443),
            "url parses as an absolute URL of that host")
        ok(parsed.path.startswith("/store/v1/download/"), "... under the path prefix",
           parsed.path)


@case
def bad_public_url_stops_startup(fx):
    for bad, why in [("api.example.com", "http:// or https://"),
                     ("ftp://api.example.com", "http:// or https://"),
                     ("https://user:secret@api.example.com", "user information"),
                     ("https://api.example.com/?x=1", "query"),
                     ("https://api.example.com/#f", "fragment"),
                     ("https://api.example.com:70000", "port"),
                     ("https://api.example.com/a/../b", ".."),
                     ("https://", "no host")]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GLASGOW_")}
        env.update({"GLASGOW_LISTEN": "%s:%d" % (HOST, free_port()),
                    "GLASGOW_ADMIN_LISTEN": "%s:%d" % (HOST, free_port()),
                    "DATABASE_URL": fx.db.url, "GLASGOW_PUBLIC_URL": bad})
        p = spawn([GLASGOW_BIN, "serve"], env=env, stdin=subprocess.DEVNULL, stdout=-1, stderr=-1)
        try:
            _, err = p.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            err = b"(still running)"
        err = err.decode("utf-8", "replace")
        ok(p.returncode not in (0, None) and "GLASGOW_PUBLIC_URL" in err and why in err,
           "GLASGOW_PUBLIC_URL=%s stops start-up naming the variable and the rule (%s)"
           % (bad, why), p.returncode, err[-400:])
        ok("secret" not in err, "... without printing a password it holds", err[-400:])


@case
def openapi_documents_files(fx):
    doc = fx.anon.get("/openapi.json", token="").json_or_none() or {}
    paths = doc.get("paths", {})
    up = paths.get("/v1/buckets/{bucket}/files/{name}", {})
    ok({"put", "get", "delete"} <= set(up), "PUT, GET, DELETE of a file are documented")
    content = (up.get("put", {}).get("requestBody") or {}).get("content", {})
    ok("application/octet-stream" in content, "the upload body is raw bytes", content)
    resp = up.get("get", {}).get("responses", {}).get("200", {}).get("content", {})
    ok("application/octet-stream" in resp, "the download is binary", resp)
    ok("/v1/download/{bucket_id}/{name}" in paths, "the signed download path is documented")


if __name__ == "__main__":
    main(dbh.DbFixture("files", env={"GLASGOW_URL_SIGNING_KEY": SIGNING_KEY}))
