"""/openapi.json passes `redocly lint` (npm @redocly/cli, its recommended
rules) with no error and no warning.

The document linted is the one a real server serves with the repository's
routes/, fetched over HTTP. A second run on a copy with a known fault (no
securitySchemes while operations ask for the bearer scheme) must report an
error, so a lint that stopped checking would not pass unnoticed.

Needs tests/docs/node_modules (.ci/deps installs it, exactly as locked).
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import harness  # noqa: E402
from harness import case, diag, is_, ok, slow  # noqa: E402

REDOCLY = os.path.join(HERE, "node_modules", ".bin", "redocly")


def lint(doc, name):
    """Runs redocly lint (recommended rules, JSON report) on doc; returns
    (totals, problems, stderr)."""
    path = os.path.join(harness.mkdtemp("glasgow-lint-"), name)
    with open(path, "w") as f:
        json.dump(doc, f)
    env = dict(os.environ, REDOCLY_TELEMETRY="off", REDOCLY_SUPPRESS_UPDATE_NOTICE="true",
               NO_COLOR="1")
    p = subprocess.run([REDOCLY, "lint", "--extends=recommended", "--format=json", path],
                       capture_output=True, text=True, timeout=slow(120), cwd=HERE, env=env)
    try:
        report = json.loads(p.stdout[p.stdout.index("{"):])
    except ValueError:
        return None, [], "exit %d: %s %s" % (p.returncode, p.stdout[-1000:], p.stderr[-2000:])
    problems = ["%s %s: %s at %s" % (x.get("severity"), x.get("ruleId"), x.get("message"),
                                     ",".join(l.get("pointer", "") for l in x.get("location", [])))
                for x in report.get("problems", [])]
    return report.get("totals", {}), problems, p.stderr


def served_document():
    with harness.Server() as srv:
        r = srv.get("/openapi.json")
        return r.status, r.json_or_none()


@case(timeout=int(slow(200)))
def served_document_is_clean():
    ok(os.path.exists(REDOCLY), "redocly is installed in tests/docs/node_modules (.ci/deps)")
    status, doc = served_document()
    is_(status, 200, "GET /openapi.json answers 200")
    ok(isinstance(doc, dict) and len(doc.get("paths", {})) >= 10,
       "the document has the repository's routes")
    totals, problems, err = lint(doc, "openapi.json")
    ok(totals is not None, "redocly lint wrote a JSON report", err)
    totals = totals or {}
    diag("redocly lint: %s" % json.dumps(totals))
    is_(totals.get("errors"), 0, "redocly lint (recommended): 0 errors", *problems[:20])
    is_(totals.get("warnings"), 0, "redocly lint (recommended): 0 warnings", *problems[:20])

    broken = json.loads(json.dumps(doc))
    del broken["components"]["securitySchemes"]
    btotals, bproblems, berr = lint(broken, "broken.json")
    ok(btotals is not None and btotals.get("errors", 0) > 0 and
       any("security-defined" in p for p in bproblems),
       "the same lint reports the error when securitySchemes is removed", berr, *bproblems[:5])


if __name__ == "__main__":
    harness.main()
