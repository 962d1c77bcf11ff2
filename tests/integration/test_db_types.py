"""PostgreSQL values through glasgow.db and back out as JSON, via test-only
routes added next to the repository's routes.

The mapping under test (DESIGN.md section 4, runtime/lua_db.c): bool ->
boolean; int2/int4/float -> number; int8 -> number when it fits a double
exactly (|v| <= 2^53), else a decimal string; numeric -> exact string;
json/jsonb decoded (with {} and [] kept apart); NULL -> null; arrays ->
arrays (empty ones too); timestamptz -> RFC 3339 with Z. Also: parameters
travel as bound values, a NUL byte in a parameter is a 400, SQL errors map
to 400/500 without leaking internals, and /metrics carries the db families.
"""
import datetime
import json
import os
import re
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import case, is_, is_error_shape, main, ok, parse_metrics, split_series  # noqa: E402
import dbharness as dbh  # noqa: E402

dbh.skip_without_pg()

T_TYPES = r'''-- Test-only routes for tests/integration/test_db_types.py.
local db = require "glasgow.db"
local unpack = unpack

return {
    {
        method = "POST", path = "/t/q",
        body = { type = "object", required = { "sql" } },
        handler = function(req)
            local p = req.body.params or {}
            local rows = db.call(req.body.sql, unpack(p, 1, #p))
            return 200, { rows = rows }
        end,
    },
    {
        method = "POST", path = "/t/json",
        body = { type = "object", required = { "v" } },
        handler = function(req)
            local rows = db.call("INSERT INTO t_json (v) VALUES ($1) " ..
                                 "RETURNING id, v, v::text AS text", req.body.v)
            return 201, rows[1]
        end,
    },
    {
        method = "GET", path = "/t/json/:id",
        handler = function(req)
            local rows = db.call("SELECT id, v, v::text AS text FROM t_json WHERE id = $1::int",
                                 req.params.id)
            return 200, rows[1]
        end,
    },
    {
        method = "GET", path = "/t/sleep",
        handler = function(req)
            db.call("SELECT pg_sleep($1::float8)", req.query.s or "0.5")
            return 200, { slept = true }
        end,
    },
}
'''

RFC3339Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")


class Fixture(dbh.DbFixture):
    def __enter__(self):
        super().__enter__()
        try:
            self.db.sql("CREATE TABLE t_json (id serial PRIMARY KEY, v jsonb NOT NULL)")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self


def q(fx, sql, *params):
    """Runs sql through /t/q; returns (response, first row or None)."""
    r = fx.anon.post("/t/q", {"sql": sql, "params": list(params)})
    rows = (r.json_or_none() or {}).get("rows") if r.status == 200 else None
    return r, (rows[0] if rows else None)


def check(fx, desc, sql, params, want, exact_type=True):
    r, row = q(fx, sql, *params)
    if r.status != 200 or not isinstance(row, dict):
        ok(False, desc, "status %s" % r.status, r.body[:400])
        return r, None
    got = row.get("v", KeyError)
    good = got == want and (not exact_type or type(got) is type(want))
    ok(good, desc, "     got: %r (%s)" % (got, type(got).__name__),
       "expected: %r (%s)" % (want, type(want).__name__), "body: %r" % r.body[:300])
    return r, got


@case
def integers(fx):
    check(fx, "int8 2^53+1 (from a parameter) is the string \"9007199254740993\"",
          "SELECT $1::int8 AS v", ["9007199254740993"], "9007199254740993")
    check(fx, "int8 -(2^53+1) is a string", "SELECT $1::int8 AS v", ["-9007199254740993"],
          "-9007199254740993")
    check(fx, "int8 max is a string", "SELECT 9223372036854775807::int8 AS v", [],
          "9223372036854775807")
    check(fx, "int8 min is a string", "SELECT (-9223372036854775807 - 1)::int8 AS v", [],
          "-9223372036854775808")
    r, _ = check(fx, "int8 2^53 is the number 9007199254740992",
                 "SELECT 9007199254740992::int8 AS v", [], 9007199254740992)
    ok(b'"v":9007199254740992' in r.body.replace(b" ", b""), "... written out with every "
       "digit (not as 9.007199254741e+15)", r.body)
    r, _ = check(fx, "int8 -2^53 is a number", "SELECT -9007199254740992::int8 AS v", [],
                 -9007199254740992)
    check(fx, "int8 2^53 - 1 from a JSON number parameter is a number",
          "SELECT $1::int8 AS v", [9007199254740991], 9007199254740991)
    check(fx, "a JSON number parameter 2^53 - 1 reaches PostgreSQL exactly",
          "SELECT ($1::int8)::text AS v", [9007199254740991], "9007199254740991")
    check(fx, "a small int8 is a number", "SELECT 42::int8 AS v", [], 42)
    check(fx, "count(*) (int8) is a number", "SELECT count(*) AS v FROM generate_series(1, 3)",
          [], 3)
    check(fx, "int4 max is a number", "SELECT 2147483647 AS v", [], 2147483647)
    check(fx, "int2 min is a number", "SELECT (-32768)::int2 AS v", [], -32768)
    check(fx, "an integer parameter arrives as an integer", "SELECT $1::int4 + 1 AS v", [41], 42)
    r, _ = q(fx, "SELECT $1::int4 AS v", "abc")
    ok(r.status == 400 and is_error_shape(r.body, "invalid_input"),
       "a non-integer text for int4 is 400 invalid_input", r.status, r.body)
    r, _ = q(fx, "SELECT $1::int4 AS v", 1.5)
    ok(r.status == 400 and is_error_shape(r.body), "1.5 for an int4 parameter is 400",
       r.status, r.body)


@case
def numeric_and_float(fx):
    big = "12345678901234567890.123456789012345678"
    check(fx, "numeric is an exact string", "SELECT $1::numeric AS v", [big], big)
    check(fx, "numeric 0.1 + 0.2 is \"0.3\"", "SELECT 0.1::numeric + 0.2::numeric AS v", [],
          "0.3")
    check(fx, "numeric keeps its scale (1.50)", "SELECT 1.50::numeric(5,2) AS v", [], "1.50")
    check(fx, "numeric NaN is the string NaN", "SELECT 'NaN'::numeric AS v", [], "NaN")
    check(fx, "a small numeric is still a string", "SELECT 3::numeric AS v", [], "3")
    check(fx, "float8 0.1 + 0.2 keeps every bit (0.30000000000000004)",
          "SELECT 0.1::float8 + 0.2::float8 AS v", [], 0.30000000000000004)
    check(fx, "float8 1e300", "SELECT 1e300::float8 AS v", [], 1e300)
    check(fx, "float8 from a parameter round-trips", "SELECT $1::float8 AS v",
          [2.718281828459045], 2.718281828459045)
    check(fx, "a float parameter reaches PostgreSQL exactly",
          "SELECT ($1::float8)::text AS v", [2.718281828459045], "2.718281828459045")
    check(fx, "float4 1.5", "SELECT 1.5::float4 AS v", [], 1.5)
    for special in ["NaN", "Infinity", "-Infinity"]:
        r, row = q(fx, "SELECT '%s'::float8 AS v" % special)
        ok(r.status == 200 and isinstance(row, dict) and row.get("v") in (special, None),
           "float8 %s is answered (200, as a string or null), never invalid JSON" % special,
           r.status, r.body)


@case
def booleans_and_nulls(fx):
    check(fx, "true", "SELECT true AS v", [], True)
    check(fx, "false", "SELECT false AS v", [], False)
    check(fx, "a boolean parameter", "SELECT $1::bool AS v", [True], True)
    for t in ["text", "int8", "numeric", "jsonb", "int4[]", "timestamptz", "bool"]:
        r, row = q(fx, "SELECT NULL::%s AS v" % t)
        ok(r.status == 200 and isinstance(row, dict) and "v" in row and row["v"] is None,
           "NULL::%s is JSON null (and the key is present)" % t, r.body)
    check(fx, "a JSON null parameter is SQL NULL", "SELECT $1::text IS NULL AS v", [None], True)
    check(fx, "a null among parameters keeps the others in place",
          "SELECT ($1::text IS NULL) AND $2::text = 'b' AS v", [None, "b"], True)


@case
def arrays(fx):
    check(fx, "an empty int[] is []", "SELECT '{}'::int[] AS v", [], [])
    check(fx, "an empty text[] is []", "SELECT '{}'::text[] AS v", [], [])
    check(fx, "int[] with a NULL", "SELECT ARRAY[1, 2, NULL]::int[] AS v", [], [1, 2, None])
    check(fx, "text[] with commas, quotes, backslashes, NULL and the word NULL",
          "SELECT ARRAY['a,b', 'c\"d', NULL, 'NULL', '', ' x ', 'e\\f', '{}']::text[] AS v", [],
          ["a,b", 'c"d', None, "NULL", "", " x ", "e\\f", "{}"])
    check(fx, "int8[] keeps big values as strings",
          "SELECT ARRAY[1, 9007199254740993]::int8[] AS v", [], [1, "9007199254740993"])
    check(fx, "bool[]", "SELECT ARRAY[true, false] AS v", [], [True, False])
    check(fx, "timestamptz[] elements are RFC 3339 with Z",
          "SELECT ARRAY['2024-01-01 00:00:00+00'::timestamptz] AS v", [],
          ["2024-01-01T00:00:00Z"])
    check(fx, "an empty array from array_agg over nothing is null (SQL NULL)",
          "SELECT array_agg(x) AS v FROM generate_series(1, 0) x", [], None, exact_type=False)
    r, row = q(fx, "SELECT ARRAY[[1, 2], [3, 4]] AS v")
    ok(r.status == 200 and isinstance(row, dict) and row.get("v") in ([[1, 2], [3, 4]],
                                                                       "{{1,2},{3,4}}"),
       "a two-dimensional array is answered (nested, or as PostgreSQL's text)", r.body)
    check(fx, "an array parameter arrives as JSON (usable as jsonb)",
          "SELECT jsonb_array_length($1::jsonb) AS v", [[1, 2, 3]], 3)


@case
def json_values(fx):
    check(fx, "jsonb {} is {}", "SELECT '{}'::jsonb AS v", [], {})
    check(fx, "jsonb [] is []", "SELECT '[]'::jsonb AS v", [], [])
    check(fx, "json [] is []", "SELECT '[]'::json AS v", [], [])
    check(fx, "nested empties stay apart", "SELECT '{\"a\": [], \"b\": {}}'::jsonb AS v", [],
          {"a": [], "b": {}})
    check(fx, "json array with mixed values", "SELECT '[1, \"x\", null, true]'::json AS v", [],
          [1, "x", None, True])
    check(fx, "a jsonb string", "SELECT '\"str\"'::jsonb AS v", [], "str")
    check(fx, "a jsonb number", "SELECT '2.5'::jsonb AS v", [], 2.5)
    check(fx, "jsonb from a text parameter '[]' reads back as []",
          "SELECT $1::jsonb AS v", ["[]"], [])
    check(fx, "an empty array parameter is sent as [] (jsonb_typeof = array)",
          "SELECT jsonb_typeof($1::jsonb) AS v", [[]], "array")
    check(fx, "an empty object parameter is sent as {} (jsonb_typeof = object)",
          "SELECT jsonb_typeof($1::jsonb) AS v", [{}], "object")

    ids = {}
    for desc, v in [("{}", {}), ("[]", []), ("{\"a\":[],\"b\":{}}", {"a": [], "b": {}}),
                    ("[[], {}]", [[], {}]), ("unicode", {"k": "😀 漢字"})]:
        r = fx.anon.post("/t/json", {"v": v})
        body = r.json_or_none() or {}
        is_(r.status, 201, "insert %s into a jsonb column through a parameter" % desc, r.body)
        stored = fx.db.sql("SELECT v::text FROM t_json WHERE id = %d" % int(body.get("id") or 0)) \
            if body.get("id") else None
        want_text = json.dumps(v, ensure_ascii=False)
        is_(stored and json.loads(stored), v, "... PostgreSQL holds %s" % desc, stored,
            want_text)
        is_(body.get("v"), v, "... RETURNING reads it back as %s" % desc)
        ids[desc] = body.get("id")
    for desc, v in [("{}", {}), ("[]", [])]:
        if ids.get(desc):
            r = fx.anon.get("/t/json/%s" % ids[desc])
            is_((r.json_or_none() or {}).get("v"), v, "GET reads %s back as %s" % (desc, desc),
                r.body)


@case
def text_and_unicode(fx):
    for s in ["Zoë 😀 漢字テスト", "😀" * 50, "e\u0301 combining", "line\u2028sep",
              "O'Reilly \\ \"quoted\" %s $1", "tab\tnew\nline", "\x7f\x01"]:
        r, row = q(fx, "SELECT $1::text AS v, length($1::text) AS n, octet_length($1::text) AS b",
                   s)
        ok(r.status == 200 and isinstance(row, dict) and row.get("v") == s,
           "text %r round-trips" % s[:20], r.body[:300])
        if isinstance(row, dict):
            is_((row.get("n"), row.get("b")), (len(s), len(s.encode())),
                "... PostgreSQL sees %d characters, %d bytes" % (len(s), len(s.encode())))
    for desc, params in [("a NUL byte in a text parameter", ["a\u0000b"]),
                         ("a NUL byte alone", ["\u0000"]),
                         ("a NUL byte in the second parameter", ["ok", "x\u0000"])]:
        sql = "SELECT " + ", ".join("$%d::text AS c%d" % (i + 1, i) for i in range(len(params)))
        r = fx.anon.post("/t/q", {"sql": sql, "params": params})
        ok(r.status == 400 and is_error_shape(r.body), "%s is 400 (not 500)" % desc, r.status,
           r.body)
    r = fx.anon.post("/t/q", {"sql": "SELECT $1::jsonb AS v", "params": [{"k": "a\u0000b"}]})
    ok(r.status == 400 and is_error_shape(r.body), "a NUL inside a JSON parameter is 400",
       r.status, r.body)
    r = fx.anon.post("/t/json", {"v": {"k": "a\u0000b"}})
    ok(r.status == 400 and is_error_shape(r.body), "a NUL inside a jsonb value is 400", r.status,
       r.body)
    r = fx.anon.post("/t/q", {"sql": "SELECT convert_from('\\xff'::bytea, 'UTF8') AS v"})
    ok(r.status == 400 and is_error_shape(r.body), "invalid UTF-8 made inside PostgreSQL is a "
       "400 data exception", r.status, r.body)


@case
def times_and_misc(fx):
    check(fx, "timestamptz with an offset becomes UTC with Z",
          "SELECT '2024-02-29 12:34:56.789+02'::timestamptz AS v", [], "2024-02-29T10:34:56.789Z")
    check(fx, "timestamptz without fraction", "SELECT '2024-01-01 00:00:00+00'::timestamptz AS v",
          [], "2024-01-01T00:00:00Z")
    check(fx, "timestamptz with microseconds",
          "SELECT '2024-01-01 00:00:00.123456+00'::timestamptz AS v", [],
          "2024-01-01T00:00:00.123456Z")
    check(fx, "a timestamptz parameter in RFC 3339 round-trips",
          "SELECT $1::timestamptz AS v", ["2024-02-29T10:34:56.789Z"], "2024-02-29T10:34:56.789Z")
    check(fx, "a timestamptz parameter with an offset",
          "SELECT $1::timestamptz AS v", ["2024-02-29T12:34:56+02:00"], "2024-02-29T10:34:56Z")
    r, row = q(fx, "SELECT now() AS v")
    v = (row or {}).get("v")
    ok(isinstance(v, str) and RFC3339Z.match(v), "now() is RFC 3339 with Z", v)
    if isinstance(v, str) and RFC3339Z.match(v):
        t = datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
        now = datetime.datetime.now(datetime.timezone.utc)
        ok(abs((now - t).total_seconds()) < 60, "... and it is now (UTC)", v)
    check(fx, "timestamp (without time zone) has a T and no Z",
          "SELECT '2024-02-29 12:34:56'::timestamp AS v", [], "2024-02-29T12:34:56")
    check(fx, "date", "SELECT '2024-02-29'::date AS v", [], "2024-02-29")
    r, row = q(fx, "SELECT gen_random_uuid() AS v")
    ok(re.match(r"^[0-9a-f-]{36}$", str((row or {}).get("v"))), "uuid is a string",
       (row or {}).get("v"))
    check(fx, "bytea in hex text", "SELECT '\\x0001ff'::bytea AS v", [], "\\x0001ff")


@case
def sql_errors(fx):
    r, _ = q(fx, "SELECT 1/0 AS v")
    ok(r.status == 400 and is_error_shape(r.body, "invalid_input"), "division by zero (22012) "
       "is 400 invalid_input", r.status, r.body)
    r, _ = q(fx, "SELECT * FROM no_such_table_xyz")
    ok(r.status == 500 and is_error_shape(r.body, "internal"), "an undefined table is 500 "
       "internal", r.status, r.body)
    ok(b"no_such_table_xyz" not in r.body, "... without the SQL error in the body", r.body)
    r, _ = q(fx, "SELECT $1::text AS v")
    ok(r.status == 500 and is_error_shape(r.body, "internal"), "a statement given fewer "
       "parameters than it uses (08P01 from a healthy connection) is a 500 programming error, "
       "not a 503 'retry shortly'", r.status, r.body)
    r, _ = q(fx, "SELECT 1 AS v; SELECT 2 AS v")
    ok(r.status in (400, 500) and is_error_shape(r.body), "two statements in one query are "
       "refused (extended protocol)", r.status, r.body)
    r, row = q(fx, "SELECT 1 AS v")
    is_((r.status, (row or {}).get("v")), (200, 1), "the connection still works afterwards")


def series(text):
    out = {}
    for key, v in parse_metrics(text).items():
        out[key] = v
    return out


def metric(m, name, **labels):
    total, found = 0.0, False
    for key, v in m.items():
        n, lab = split_series(key)
        if n == name and all(lab.get(k) == str(w) for k, w in labels.items()):
            total += v
            found = True
    return total if found else None


@case
def metrics(fx):
    text0 = dbh.metrics_text(fx.server)
    m0 = series(text0)
    for fam, typ in [("glasgow_db_pool_connections", "gauge"), ("glasgow_db_pool_in_use", "gauge"),
                     ("glasgow_db_pool_waiting", "gauge"),
                     ("glasgow_db_pool_wait_timeouts_total", "counter"),
                     ("glasgow_db_query_duration_seconds", "histogram"),
                     ("glasgow_db_errors_total", "counter")]:
        ok(re.search(r"(?m)^# TYPE %s %s$" % (fam, typ), text0), "/metrics declares %s as a "
           "%s" % (fam, typ))
    n = 25
    for i in range(n):
        q(fx, "SELECT $1::int AS v", i)
    q(fx, "SELECT 1/0")
    q(fx, "SELECT * FROM no_such_table_xyz")
    m1 = series(dbh.metrics_text(fx.server))
    c0 = metric(m0, "glasgow_db_query_duration_seconds_count") or 0
    c1 = metric(m1, "glasgow_db_query_duration_seconds_count") or 0
    ok(c1 - c0 >= n + 2, "the query histogram counted at least the %d statements run" % (n + 2),
       c0, c1)
    inf = metric(m1, "glasgow_db_query_duration_seconds_bucket", le="+Inf")
    is_(inf, c1, "the +Inf bucket equals the count")
    buckets = []
    for key, v in m1.items():
        name, lab = split_series(key)
        if name == "glasgow_db_query_duration_seconds_bucket" and lab.get("le") != "+Inf":
            buckets.append((float(lab["le"]), v))
    buckets.sort()
    ok(len(buckets) >= 5 and all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])) and
       (not buckets or buckets[-1][1] <= c1), "buckets are cumulative and at most the count",
       buckets)
    s0 = metric(m0, "glasgow_db_query_duration_seconds_sum") or 0
    s1 = metric(m1, "glasgow_db_query_duration_seconds_sum") or 0
    ok(s1 > s0 and s1 < c1 * 5, "the sum grew and is plausible (%.4f s over %d)" % (s1, c1))
    for cls in ["22", "42"]:
        e0 = metric(m0, "glasgow_db_errors_total", **{"class": cls}) or 0
        e1 = metric(m1, "glasgow_db_errors_total", **{"class": cls}) or 0
        ok(e1 - e0 >= 1, "glasgow_db_errors_total{class=\"%s\"} counted the error" % cls, e0, e1)
    conns = metric(m1, "glasgow_db_pool_connections")
    ok(conns is not None and 1 <= conns <= 2 * 8, "glasgow_db_pool_connections is between 1 "
       "and workers x pool size", conns)
    is_(metric(m1, "glasgow_db_pool_in_use"), 0.0, "nothing is in use at rest")
    is_(metric(m1, "glasgow_db_pool_waiting"), 0.0, "nobody waits at rest")
    is_(metric(m1, "glasgow_db_pool_wait_timeouts_total"), 0.0, "no wait timed out")

    # the query outlasts the wait for the gauge (which normally sees it in
    # milliseconds) and stays under the 5 s default statement timeout
    look, hold = 3.0, 4.0
    holder = threading.Thread(target=lambda: fx.anon.get("/t/sleep?s=%.1f" % hold,
                                                         timeout=hold + 10), daemon=True)
    holder.start()
    seen = dbh.harness.wait_until(
        lambda: (metric(series(dbh.metrics_text(fx.server)), "glasgow_db_pool_in_use") or 0) >= 1,
        look)
    ok(seen, "glasgow_db_pool_in_use shows a connection held by a running query")
    holder.join(hold + 10)
    ok(dbh.harness.wait_until(lambda: metric(series(dbh.metrics_text(fx.server)),
                                             "glasgow_db_pool_in_use") == 0, look),
       "... and it returns to 0 afterwards")


if __name__ == "__main__":
    main(Fixture("types", extra_routes={"t_types.lua": T_TYPES}))
