"""GET /docs in a real browser: Debian's Chromium driven by npm puppeteer-core
(tests/docs/browser.mjs), against the real server and the test PostgreSQL.

The page must list every operation of /openapi.json, show no Content-Security-
Policy violation and ask nothing of another origin; authorize with a real
bearer token through its "Authorize" dialog; run GET /v1/users/{id} with
"Try it out" -> "Execute" and show the 200 and the user it read; and, after a
route file is added, list the new route on the next load (it follows reloads).
A copy of the page with an inline script and style must show both blocked and
reported, so that "no violation" is a check that can fail.

Needs the test PostgreSQL (tests/run-all starts it: see dbharness.py), the
docs build (make docs) and tests/docs/node_modules (.ci/deps).
"""
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import dbharness  # noqa: E402
import harness  # noqa: E402
from harness import case, diag, is_, ok, slow  # noqa: E402

BROWSER = os.path.join(HERE, "browser.mjs")
DOCS_DIR = os.path.join(harness.REPO, "build", "docs")
NEW_ROUTE = """return {
    { method = "GET", path = "/v1/docs-probe/:n", summary = "Added while serving",
      handler = function() return 200, { ok = true } end },
}
"""

dbharness.skip_without_pg()


def operations(doc):
    ops = []
    for path, item in doc["paths"].items():
        for method in item:
            ops.append("%s %s" % (method.upper(), path))
    return sorted(ops)


def browse(base, *args):
    """Runs browser.mjs; returns its JSON report (or {"error": ...})."""
    try:
        p = subprocess.run(["node", BROWSER, base] + list(args), capture_output=True, text=True,
                           timeout=slow(120), cwd=HERE)
    except subprocess.TimeoutExpired:
        return {"error": "browser.mjs did not finish in %d s" % slow(120)}
    if p.returncode != 0 or not p.stdout.strip():
        return {"error": "browser.mjs exited %d: %s" % (p.returncode, p.stderr[-2000:])}
    return json.loads(p.stdout.strip().splitlines()[-1])


class Fixture:
    """A migrated database, a server on a copy of routes/ (so a case can add a
    file), a user of role "user" and its token."""

    def __enter__(self):
        self.db = dbharness.TestDB("docs").__enter__()
        try:
            self.server = harness.Server(
                files=dbharness.routes_with({}),
                env={"DATABASE_URL": self.db.url, "GLASGOW_ACCESS_LOG": "false",
                     "GLASGOW_DOCS_DIR": DOCS_DIR}).__enter__()
            self.base = "http://%s:%d" % (harness.HOST, self.server.port)
            anon = dbharness.Api(self.server)
            tok, r = anon.login(dbharness.ADMIN_EMAIL, dbharness.ADMIN_PASSWORD)
            if not tok:
                raise RuntimeError("admin login answered %s" % r.status)
            self.user = dbharness.new_user(anon.with_token(tok), name="Ada Docs")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        if getattr(self, "server", None) is not None:
            self.server.__exit__(None, None, None)
        self.db.__exit__(None, None, None)
        return False


@case(timeout=int(slow(200)))
def page_lists_authorizes_and_executes(fx):
    doc = fx.server.get("/openapi.json").json()
    want = operations(doc)
    ok(len(want) >= 20, "the document has the repository's %d operations" % len(want))
    u = fx.user
    got = browse(fx.base, u["token"], u["id"])
    ok("error" not in got, "the browser run completed", got.get("error"), json.dumps(got)[:3000])
    is_(got.get("page_status"), 200, "GET /docs answered 200 in the browser")
    is_(sorted(got.get("operations", [])), want, "the page lists every operation of the document")
    ok(got.get("spec_requests", 0) >= 1, "the page fetched /openapi.json")
    is_(got.get("csp_violations"), [], "no Content-Security-Policy violation (script-src and "
        "style-src 'self', no inline)")
    is_(got.get("foreign_requests"), [], "the page asked nothing of another origin")
    is_(got.get("console_errors"), [], "no error in the browser console")
    ok(got.get("authorized") is True, "the Authorize dialog accepted the bearer token")
    is_(got.get("call_status"), "200", "Execute on GET /v1/users/{id} shows 200 in the page")
    body = got.get("call_body") or ""
    ok(u["id"] in body and u["email"] in body,
       "the page shows the user the call read", body[:500])
    curl = got.get("call_curl") or ""
    ok(("Authorization: Bearer " + u["token"]) in curl,
       "the call carried the token as an Authorization header", curl[:500])
    ok(u["token"] not in (got.get("call_url") or ""), "the token is not in the request URL",
       got.get("call_url"))


@case(timeout=int(slow(150)))
def page_follows_reloads(fx):
    harness.write_files(fx.server.routes_dir, {"docs_probe.lua": NEW_ROUTE})
    seen = harness.wait_until(
        lambda: "/v1/docs-probe/{n}" in fx.server.get("/openapi.json").json()["paths"],
        slow(15))
    ok(seen, "the document shows the added route after the reload")
    got = browse(fx.base)
    ok("error" not in got, "the browser run completed", got.get("error"))
    ok("GET /v1/docs-probe/{n}" in got.get("operations", []),
       "the page, loaded again, lists the added route", got.get("operations"))
    diag("operations listed after the reload: %d" % len(got.get("operations", [])))


@case(timeout=int(slow(120)))
def csp_violations_are_seen(fx):
    # the same page with an inline script and an inline style: the browser
    # must block both and the run must report them, or "no violation" above
    # would prove nothing
    tampered = harness.mkdtemp("glasgow-docs-tampered-")
    for name in os.listdir(DOCS_DIR):
        shutil.copy(os.path.join(DOCS_DIR, name), tampered)
    with open(os.path.join(DOCS_DIR, "index.html")) as f:
        html = f.read()
    html = html.replace("</body>", '<script>document.title = "inline ran";</script>'
                        '<p style="color: red">inline style</p></body>')
    with open(os.path.join(tampered, "index.html"), "w") as f:
        f.write(html)
    with harness.Server(env={"GLASGOW_DOCS_DIR": tampered}) as srv:
        got = browse("http://%s:%d" % (harness.HOST, srv.port))
    v = got.get("csp_violations") or []
    ok(any(x.startswith("script-src") for x in v), "an inline script is blocked and reported", v,
       got.get("error"))
    ok(any(x.startswith("style-src") for x in v), "an inline style is blocked and reported", v)
    ok(len(got.get("operations", [])) >= 20, "the page itself still works", got.get("error"))


if __name__ == "__main__":
    harness.main(fixture=Fixture())
