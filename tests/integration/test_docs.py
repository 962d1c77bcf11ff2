"""GET /docs and its files over HTTP (lua/glasgow/docs.lua): media types, the
Content-Security-Policy, nosniff, ETag and 304, HEAD, 404 for a name that is
not one of the page's files (path traversal included: nothing outside the
docs directory is ever read), 503 docs_unavailable when the files are not
installed, and the default directory of a checkout (build/docs).

Needs the docs build: make docs (make test does it).
"""
import gzip
import os
import shutil

import harness
from harness import REPO, Server, case, is_, ok

DOCS_DIR = os.path.join(REPO, "build", "docs")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")
TYPES = {
    "init.js": "text/javascript; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "LICENSE": "text/plain; charset=utf-8",
}
# Bytes of files outside build/docs that a traversal would reach.
SECRETS = [b"root:x:0:0", b"GLASGOW_DEPS", b"glasgow.app"]


def common_headers(r, name):
    is_(r.header("x-content-type-options"), "nosniff", "%s: nosniff" % name)
    is_(r.header("content-security-policy"), CSP, "%s: the strict CSP" % name)
    is_(r.header("cache-control"), "no-cache", "%s: Cache-Control: no-cache" % name)
    etag = r.header("etag") or ""
    ok(len(etag) == 34 and etag[0] == '"' and etag[-1] == '"', "%s: a strong ETag" % name, etag)


@case
def page_and_files():
    ok(os.path.exists(os.path.join(DOCS_DIR, "index.html")), "make docs built build/docs")
    with Server(env={"GLASGOW_DOCS_DIR": DOCS_DIR}) as srv:
        r = srv.get("/docs")
        is_(r.status, 200, "GET /docs answers 200")
        is_(r.header("content-type"), "text/html; charset=utf-8", "/docs is HTML")
        common_headers(r, "/docs")
        is_(r.header("referrer-policy"), "no-referrer", "/docs: Referrer-Policy: no-referrer")
        html = r.body.decode()
        with open(os.path.join(DOCS_DIR, "index.html")) as f:
            is_(html, f.read(), "/docs is build/docs/index.html")
        ok("'unsafe-inline'" not in CSP and "'unsafe-eval'" not in CSP,
           "the CSP allows no inline script or style and no eval")
        # every script is a file, no inline style: the CSP would block them
        ok(html.count("<script") == html.count("<script src=\"docs/") == 2,
           "the page's two scripts are files under docs/")
        ok("<style" not in html and "style=" not in html, "the page has no inline style")
        for name, ctype in sorted(TYPES.items()):
            r = srv.get("/docs/" + name)
            is_(r.status, 200, "GET /docs/%s answers 200" % name)
            is_(r.header("content-type"), ctype, "/docs/%s is %s" % (name, ctype))
            common_headers(r, "/docs/" + name)
            with open(os.path.join(DOCS_DIR, name), "rb") as f:
                ok(r.body == f.read(), "/docs/%s is the file's bytes" % name)
        h = srv.request("HEAD", "/docs/swagger-ui-bundle.js")
        is_(h.status, 200, "HEAD /docs/swagger-ui-bundle.js answers 200")
        is_(h.header("content-length"),
            str(os.path.getsize(os.path.join(DOCS_DIR, "swagger-ui-bundle.js"))),
            "HEAD gives the file's length")
        is_(h.body, b"", "HEAD sends no body")
        doc = srv.get("/openapi.json").json()
        ok(not any(p.startswith("/docs") for p in doc["paths"]),
           "/docs is not an operation of the API document")


@case
def conditional_requests():
    with Server(env={"GLASGOW_DOCS_DIR": DOCS_DIR}) as srv:
        r = srv.get("/docs/swagger-ui.css")
        etag = r.header("etag")
        for inm in [etag, "W/" + etag, '"other", ' + etag, "*"]:
            c = srv.get("/docs/swagger-ui.css", headers={"If-None-Match": inm})
            is_(c.status, 304, "If-None-Match: %s answers 304" % inm)
            is_(c.body, b"", "the 304 has no body")
            is_(c.header("etag"), etag, "the 304 repeats the ETag")
        c = srv.get("/docs/swagger-ui.css", headers={"If-None-Match": '"not-it"'})
        is_(c.status, 200, "another ETag gets the file (200)")
        other = srv.get("/docs/init.js").header("etag")
        ok(other != etag, "different files have different ETags")
        is_(srv.get("/docs").header("etag"), srv.get("/docs").header("etag"),
            "the ETag is stable across requests (and workers)")


@case
def gzip_for_clients_that_accept_it():
    with Server(env={"GLASGOW_DOCS_DIR": DOCS_DIR}) as srv:
        for name in ["swagger-ui-bundle.js", "swagger-ui.css"]:
            with open(os.path.join(DOCS_DIR, name), "rb") as f:
                want = f.read()
            plain = srv.get("/docs/" + name)
            z = srv.get("/docs/" + name, headers={"Accept-Encoding": "br, gzip;q=0.8"})
            is_(z.header("content-encoding"), "gzip", "%s: gzip when it is accepted" % name)
            ok(gzip.decompress(z.body) == want, "%s: the gzipped bytes are the file's" % name)
            ok(len(z.body) < len(want) // 2, "%s: gzipped is under half (%d of %d bytes)" %
               (name, len(z.body), len(want)))
            is_(z.header("vary"), "Accept-Encoding", "%s: Vary: Accept-Encoding" % name)
            is_(plain.header("vary"), "Accept-Encoding", "%s: also on the plain answer" % name)
            is_(plain.header("content-encoding"), None, "%s: plain without Accept-Encoding" % name)
            ok(plain.body == want, "%s: plain bytes" % name)
            ok(z.header("etag") != plain.header("etag"), "%s: each form has its own ETag" % name)
            c = srv.get("/docs/" + name, headers={"Accept-Encoding": "gzip",
                                                  "If-None-Match": z.header("etag")})
            is_(c.status, 304, "%s: the gzipped form's ETag revalidates" % name)
            for ae in ["gzip;q=0", "identity", "*;q=0", "br"]:
                r = srv.get("/docs/" + name, headers={"Accept-Encoding": ae})
                is_(r.header("content-encoding"), None, "%s: Accept-Encoding: %s gets it plain" %
                    (name, ae))
            r = srv.get("/docs/" + name, headers={"Accept-Encoding": "*"})
            is_(r.header("content-encoding"), "gzip", "%s: Accept-Encoding: * gets gzip" % name)
        r = srv.get("/docs/init.js", headers={"Accept-Encoding": "gzip"})
        is_(r.header("content-encoding"), None, "a small file is sent as it is")
        is_(srv.get("/docs/swagger-ui.css.gz").status, 404, "the .gz files are not names of their own")
    nogz = harness.mkdtemp("glasgow-docs-nogz-")
    shutil.copy(os.path.join(DOCS_DIR, "swagger-ui.css"), nogz)
    shutil.copy(os.path.join(DOCS_DIR, "index.html"), nogz)
    with Server(env={"GLASGOW_DOCS_DIR": nogz}) as srv:
        r = srv.get("/docs/swagger-ui.css", headers={"Accept-Encoding": "gzip"})
        ok(r.status == 200 and r.header("content-encoding") is None,
           "without the .gz file the plain file is sent (%s)" % r.status)


@case
def unknown_names_and_traversal():
    with Server(env={"GLASGOW_DOCS_DIR": DOCS_DIR}) as srv:
        r = srv.get("/docs/nope.js")
        is_(r.status, 404, "an unknown file answers 404")
        is_((r.json_or_none() or {}).get("error", {}).get("code"), "not_found",
            "with the JSON error not_found")
        is_(r.header("content-type"), "application/json", "as application/json")
        is_(srv.get("/docs/index.html").status, 404,
            "the page itself is only at /docs, not /docs/index.html")
        is_(srv.request("POST", "/docs", "{}").status, 405, "POST /docs answers 405")
        attempts = [
            "/docs/..%2F..%2FMakefile", "/docs/%2e%2e/%2e%2e/Makefile",
            "/docs/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd", "/docs/....//....//etc/passwd",
            "/docs/%2Fetc%2Fpasswd", "/docs/..%5c..%5cMakefile", "/docs/init.js%00.css",
            "/docs/init.js/..", "/docs/swagger-ui.css/../../lua/glasgow/app.lua",
            "/docs/.%2e/.%2e/lua/glasgow/app.lua", "/docs//etc/passwd", "/docs/%252e%252e%252fMakefile",
        ]
        for path in attempts:
            res = srv.raw(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
            ok(res.status in (400, 404), "GET %s answers 400 or 404 (got %s)" % (path, res.status))
            ok(not any(s in res.body for s in SECRETS), "GET %s leaks no file" % path,
               res.body[:200])
            ok(res.header("content-type") == "application/json",
               "GET %s answers a JSON error" % path)
        r = srv.raw(b"GET /docs/../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        ok(r.status in (400, 404) and b"root:" not in r.body,
           "a raw ../ in the target reads nothing (%s)" % r.status)


@case
def missing_files_answer_503():
    empty = harness.mkdtemp("glasgow-docs-empty-")
    with Server(env={"GLASGOW_DOCS_DIR": empty}) as srv:
        for path in ["/docs", "/docs/init.js"]:
            r = srv.get(path)
            is_(r.status, 503, "%s without the files answers 503" % path)
            is_((r.json_or_none() or {}).get("error", {}).get("code"), "docs_unavailable",
                "%s: the JSON error docs_unavailable" % path)
            ok(empty.encode() not in r.body, "%s: the message does not name the directory" % path)
        is_(srv.get("/docs/nope").status, 404, "an unknown name is still 404")
        is_(srv.get("/hello").status, 200, "the API is unaffected")
        logged = harness.wait_until(lambda: b"docs page is not installed" in
                                    open(srv.stdout_path, "rb").read() +
                                    open(srv.stderr_path, "rb").read(), 5)
        ok(logged, "the server logged why")
    partial = harness.mkdtemp("glasgow-docs-partial-")
    shutil.copy(os.path.join(DOCS_DIR, "index.html"), partial)
    with Server(env={"GLASGOW_DOCS_DIR": partial}) as srv:
        is_(srv.get("/docs").status, 200, "with only index.html the page answers 200")
        is_(srv.get("/docs/swagger-ui.css").status, 503, "and a missing file 503")


def sample(schema):
    """A value for a path or query parameter that its schema accepts."""
    if schema.get("format") == "uuid":
        return "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
    if schema.get("enum"):
        return str(schema["enum"][0])
    if schema.get("type") in ("integer", "number"):
        return str(schema.get("minimum", 1))
    if schema.get("type") == "boolean":
        return "true"
    return "abc"


@case
def the_document_does_not_lie():
    # every operation without a body, called without a token (and without a
    # database): an operation that requires the bearer scheme answers 401
    # with its challenge, and any answer is one the operation documents
    with Server() as srv:
        doc = srv.get("/openapi.json").json()
        checked = 0
        for template, item in sorted(doc["paths"].items()):
            for method, op in sorted(item.items()):
                if "requestBody" in op:
                    continue
                path, query = template, []
                for p in op.get("parameters", []):
                    if p["in"] == "path":
                        path = path.replace("{%s}" % p["name"], sample(p["schema"]))
                    elif p.get("required"):
                        query.append("%s=%s" % (p["name"], sample(p["schema"])))
                if query:
                    path += "?" + "&".join(query)
                r = srv.request(method.upper(), path)
                name = "%s %s" % (method.upper(), template)
                if op["security"] == [{"bearerAuth": []}]:
                    is_(r.status, 401, "%s without a token answers 401" % name)
                    ok((r.header("www-authenticate") or "").startswith("Bearer"),
                       "%s: with a Bearer challenge" % name)
                ok(str(r.status) in op["responses"],
                   "%s answers %s, which it documents" % (name, r.status), sorted(op["responses"]))
                checked += 1
        ok(checked >= 10, "%d operations checked" % checked)


@case
def default_directory_of_a_checkout():
    # no GLASGOW_DOCS_DIR: build/docs beside lua/ (the harness passes no GLASGOW_* of ours)
    with Server() as srv:
        r = srv.get("/docs")
        is_(r.status, 200, "without GLASGOW_DOCS_DIR the checkout's build/docs is found")
        is_(srv.get("/docs/init.js").status, 200, "and its files")


if __name__ == "__main__":
    harness.main()
