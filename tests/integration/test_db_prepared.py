"""Prepared statements: cached per connection once a statement runs twice.

pg_prepared_statements is per session, so the test route runs everything
inside one transaction (one connection) and reads the view there.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import case, is_, main, ok  # noqa: E402
import dbharness as dbh  # noqa: E402

dbh.skip_without_pg()

ROUTES = r'''
local db = require "glasgow.db"
return {
    {
        method = "GET", path = "/t/prepared",
        query = { type = "object", properties = { n = { type = "integer", minimum = 1 } } },
        handler = function(req)
            return 200, db.transaction(function(tx)
                local out = { values = {} }
                for i = 1, req.query.n or 3 do
                    local rows = tx.call("SELECT $1::int * 2 AS v", i)
                    out.values[i] = rows[1].v
                end
                out.prepared = tx.call(
                    "SELECT name FROM pg_prepared_statements WHERE statement = $1",
                    "SELECT $1::int * 2 AS v")
                return out
            end)
        end,
    },
    {
        method = "GET", path = "/t/bad-twice",
        handler = function()
            local a = select(2, db.query("SELEC 1"))
            local b = select(2, db.query("SELEC 1"))
            local c = select(2, db.query("SELEC 1"))
            return 200, { a = a.sqlstate, b = b.sqlstate, c = c.sqlstate }
        end,
    },
}
'''


@case
def once_is_not_prepared(fx):
    r = fx.anon.get("/t/prepared?n=1")
    is_(r.status, 200, "one run answers", r.body[:300])
    body = r.json_or_none() or {}
    is_(body.get("values"), [2], "the result is right")
    is_(body.get("prepared"), [], "a statement run once stays unnamed")


@case
def twice_is_prepared(fx):
    r = fx.anon.get("/t/prepared?n=5")
    body = r.json_or_none() or {}
    is_(body.get("values"), [2, 4, 6, 8, 10], "results stay right across prepare and reuse")
    is_(len(body.get("prepared") or []), 1, "the repeated statement is prepared once on the "
        "connection", body)


@case
def bad_sql_is_reported_every_time(fx):
    r = fx.anon.get("/t/bad-twice")
    is_(r.status, 200, "the route answers", r.body[:300])
    is_(r.json_or_none(), {"a": "42601", "b": "42601", "c": "42601"},
        "a syntax error is reported on the first run, on the prepare and afterwards")


@case
def users_still_work(fx):
    for i in range(4):
        r = fx.admin.get("/v1/users?limit=1")
        ok(r.status == 200, "repeated list %d answers 200 (prepared path)" % i, r.body[:200])


if __name__ == "__main__":
    main(dbh.DbFixture("prep", extra_routes={"t_prepared.lua": ROUTES}))
