"""The buckets resource against a real PostgreSQL: /v1/buckets and /v1/buckets/:bucket.

Creation (201 + Location, S3's naming rules with a precise 400 for each,
409 for a name anyone holds, limits validated), reading, changing and
deleting (409 while a file row is left, also when it arrives in a race),
keyset listing (limit, opaque cursor, Link, tampered cursors refused),
the ownership matrix (another user's bucket is 404 for every method,
admins see all), the SQL CHECK backing the rules, and the routes in
/openapi.json.
"""
import json
import os
import re
import secrets
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import case, is_, is_error_shape, main, ok  # noqa: E402
import dbharness as dbh  # noqa: E402
from dbharness import error_of, new_user  # noqa: E402

dbh.skip_without_pg()

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
KEYS = {"id", "name", "owner_id", "max_file_bytes", "allowed_content_types", "created_at",
        "updated_at"}


def bname(tag="b"):
    return "%s-%s" % (tag, secrets.token_hex(4))


def count_buckets(fx):
    return int(fx.db.sql("SELECT count(*) FROM buckets"))


def add_file_row(fx, bucket_id, status="committed"):
    """A files row as the upload route leaves it (no object: the store is not involved)."""
    fx.db.sql("INSERT INTO files (bucket_id, name, storage_key, size, content_type, sha256, "
              "status) VALUES ('%s', 'f-%s', '%s/' || gen_random_uuid(), 0, "
              "'application/octet-stream', sha256(''::bytea), '%s')"
              % (bucket_id, secrets.token_hex(4), bucket_id, status))


@case
def create_read_update_delete(fx):
    u = new_user(fx.admin)
    name = bname("crud")
    r = u["api"].post("/v1/buckets", {"name": name, "max_file_bytes": 1048576,
                                      "allowed_content_types": ["image/*", "Application/PDF"]})
    is_(r.status, 201, "POST /v1/buckets is 201", r.body)
    b = r.json_or_none() or {}
    is_(set(b), KEYS, "a bucket has exactly its documented fields")
    ok(UUID.match(str(b.get("id"))), "id is a UUID")
    is_(b.get("name"), name, "name as sent")
    is_(b.get("owner_id"), u["id"], "the caller owns it")
    is_(b.get("max_file_bytes"), 1048576, "max_file_bytes stored")
    is_(b.get("allowed_content_types"), ["image/*", "application/pdf"],
        "allowed types stored lower-cased, in order")
    is_(r.header("location"), "/v1/buckets/" + name, "Location names the bucket")
    g = u["api"].get("/v1/buckets/" + name)
    is_(g.status, 200, "GET is 200", g.body)
    is_(g.json_or_none(), b, "GET returns what POST returned")

    p = u["api"].patch("/v1/buckets/" + name, {"max_file_bytes": None,
                                               "allowed_content_types": ["text/plain"]})
    is_(p.status, 200, "PATCH is 200", p.body)
    pb = p.json_or_none() or {}
    is_(pb.get("max_file_bytes"), None, "null clears max_file_bytes")
    is_(pb.get("allowed_content_types"), ["text/plain"], "types replaced")
    ok(pb.get("updated_at", "") >= b.get("updated_at", "~"), "updated_at moves on")
    p = u["api"].patch("/v1/buckets/" + name, {"allowed_content_types": []})
    is_((p.json_or_none() or {}).get("allowed_content_types"), None,
        "an empty list means any type (stored as null)")
    p = u["api"].patch("/v1/buckets/" + name, {})
    is_(p.status, 400, "an empty PATCH is 400", p.body)
    p = u["api"].patch("/v1/buckets/" + name, {"name": "other-name"})
    is_(p.status, 400, "renaming is not offered (400)", p.body)

    d = u["api"].delete("/v1/buckets/" + name)
    is_(d.status, 204, "DELETE is 204", d.body)
    is_(u["api"].get("/v1/buckets/" + name).status, 404, "then GET is 404")
    is_(u["api"].delete("/v1/buckets/" + name).status, 404, "a second DELETE is 404")
    r = u["api"].post("/v1/buckets", {"name": name})
    is_(r.status, 201, "the name is free again", r.body)
    ok((r.json_or_none() or {}).get("id") != b.get("id"), "a new bucket gets a new id")
    is_((r.json_or_none() or {}).get("max_file_bytes"), None, "limits default to null")


@case
def names_follow_s3_rules(fx):
    u = new_user(fx.admin)
    before = count_buckets(fx)
    bad = [
        ("ab", "3 to 63"), ("a" * 64, "3 to 63"), ("Upper-case", "lowercase"),
        ("under_score", "lowercase"), ("-leading", "start and end"), ("trailing-", "start and end"),
        ("dot..dot", "adjacent periods"), ("192.168.10.1", "IP address"), ("xn--punycode", "xn--"),
        ("name-s3alias", "-s3alias"), ("name--ol-s3", "--ol-s3"), ("sthree-x", "sthree-"),
        ("caf\u00e9-bucket", "lowercase"), ("new\nline", "lowercase"),
    ]
    for name, reason in bad:
        r = u["api"].post("/v1/buckets", {"name": name})
        is_(r.status, 400, "%r is refused with 400" % name, r.body)
        e = (r.json_or_none() or {}).get("error") or {}
        is_(e.get("code"), "validation_failed", "  code validation_failed")
        ok(reason in (e.get("message") or ""), "  the message says why: %s" % e.get("message"))
        is_((e.get("details") or {}).get("field"), "body.name", "  details.field is body.name")
    for name in ["abc", "a.b.c", "1-2-3", "x" * 63]:
        nm = name if len(name) == 63 else name + "-" + secrets.token_hex(3)
        r = u["api"].post("/v1/buckets", {"name": nm})
        is_(r.status, 201, "%r is accepted" % nm, r.body)
    is_(count_buckets(fx), before + 4, "nothing stored for the refused names")
    # the CHECK backs the routes: a writer that skips them is refused too
    for bad_name in ["Bad-Name", "a..b", "10.0.0.1", "xn--abc", "ab"]:
        try:
            fx.db.sql("INSERT INTO buckets (name, owner_id) VALUES ('%s', '%s')"
                      % (bad_name, u["id"]))
            refused = False
        except RuntimeError as e:
            refused = "check constraint" in str(e)
        ok(refused, "the CHECK refuses %r in SQL too" % bad_name)


@case
def bad_bodies(fx):
    u = new_user(fx.admin)
    cases = [
        ({}, "body.name"),
        ({"name": 42}, "body.name"),
        ({"name": bname(), "max_file_bytes": -1}, "body.max_file_bytes"),
        ({"name": bname(), "max_file_bytes": 1.5}, "body.max_file_bytes"),
        ({"name": bname(), "max_file_bytes": "10"}, "body.max_file_bytes"),
        ({"name": bname(), "allowed_content_types": "image/png"}, "body.allowed_content_types"),
        ({"name": bname(), "allowed_content_types": ["image"]}, "body.allowed_content_types[0]"),
        ({"name": bname(), "allowed_content_types": ["text/plain", "*/png"]},
         "body.allowed_content_types[1]"),
        ({"name": bname(), "allowed_content_types": ["a/b"] * 65}, "body.allowed_content_types"),
        ({"name": bname(), "owner_id": u["id"]}, "body.owner_id"),
        ({"name": bname(), "id": "00000000-0000-4000-8000-000000000000"}, "body.id"),
    ]
    before = count_buckets(fx)
    for body, field in cases:
        r = u["api"].post("/v1/buckets", body)
        is_(r.status, 400, "%s is 400" % json.dumps(body)[:80], r.body)
        is_(((r.json_or_none() or {}).get("error") or {}).get("details", {}).get("field"), field,
            "  names %s" % field)
    r = u["api"].post("/v1/buckets", "not json")
    is_(r.status, 400, "malformed JSON is 400")
    r = u["api"].call("POST", "/v1/buckets", b'{"name":"abc"}',
                      headers={"Content-Type": "text/plain"})
    is_(r.status, 415, "a non-JSON body is 415")
    is_(count_buckets(fx), before, "nothing was stored")


@case
def arrays_and_objects_kept_apart(fx):
    """An empty JSON object is not an empty array, nor the reverse (glasgow.json marks them,
    glasgow.schema reads the marks): each is refused where the other is declared."""
    u = new_user(fx.admin)
    name = bname("kinds")
    before = count_buckets(fx)

    def refused(r, field, reason, what):
        is_(r.status, 400, what + " is 400", r.body)
        is_(r.header("content-type"), "application/json", "  with a JSON body")
        ok(is_error_shape(r.body, "validation_failed"), "  code validation_failed", r.body)
        d = ((r.json_or_none() or {}).get("error") or {}).get("details") or {}
        is_((d.get("field"), d.get("reason")), (field, reason), "  names %s: %s" % (field, reason))

    body = '{"name":"%s","allowed_content_types":{}}' % name
    refused(u["api"].post("/v1/buckets", body), "body.allowed_content_types",
            "must be an array or null", "{} for the array allowed_content_types")
    refused(u["api"].post("/v1/buckets", "[]"), "body", "must be an object", "[] as the body")
    is_(count_buckets(fx), before, "nothing was stored")

    r = u["api"].post("/v1/buckets", '{"name":"%s","allowed_content_types":[]}' % name)
    is_(r.status, 201, "[] for allowed_content_types is accepted", r.body)
    p = u["api"].patch("/v1/buckets/" + name, '{"allowed_content_types":["text/plain"]}')
    is_(p.status, 200, "PATCH with a list is 200", p.body)
    refused(u["api"].patch("/v1/buckets/" + name, '{"allowed_content_types":{}}'),
            "body.allowed_content_types", "must be an array or null",
            "PATCH with {} for allowed_content_types")
    refused(u["api"].patch("/v1/buckets/" + name, "[]"), "body", "must be an object",
            "PATCH with [] as the body")
    g = u["api"].get("/v1/buckets/" + name)
    is_((g.json_or_none() or {}).get("allowed_content_types"), ["text/plain"],
        "the refused PATCHes changed nothing")


@case
def names_are_unique_across_owners(fx):
    a, b = new_user(fx.admin), new_user(fx.admin)
    name = bname("uniq")
    is_(a["api"].post("/v1/buckets", {"name": name}).status, 201, "A creates it")
    r = b["api"].post("/v1/buckets", {"name": name})
    is_(r.status, 409, "B gets 409 for the same name", r.body)
    is_(error_of(r)[0], "conflict", "  code conflict")
    is_(a["api"].post("/v1/buckets", {"name": name}).status, 409, "A too, a second time")


@case
def ownership(fx):
    a, b = new_user(fx.admin), new_user(fx.admin)
    name = bname("own")
    r = a["api"].post("/v1/buckets", {"name": name})
    bid = (r.json_or_none() or {}).get("id")
    for method, body in [("GET", None), ("PATCH", {"max_file_bytes": 1}), ("DELETE", None)]:
        r = b["api"].call(method, "/v1/buckets/" + name, body)
        is_(r.status, 404, "B's %s of A's bucket is 404" % method, r.body)
        is_(error_of(r)[0], "not_found", "  like a missing one")
        missing = b["api"].call(method, "/v1/buckets/" + bname("missing"), body)
        is_(error_of(missing), error_of(r), "  and says the same as for a missing one")
    is_(a["api"].get("/v1/buckets/" + name).json_or_none().get("max_file_bytes"), None,
        "B's PATCH changed nothing")
    lst = b["api"].get("/v1/buckets?limit=100").json_or_none() or {}
    ok(name not in [x["name"] for x in lst.get("items", [])], "B's listing does not show it")
    # admins see and manage everyone's
    is_(fx.admin.get("/v1/buckets/" + name).status, 200, "an admin reads A's bucket")
    r = fx.admin.patch("/v1/buckets/" + name, {"max_file_bytes": 5})
    is_(r.status, 200, "an admin changes it", r.body)
    is_((r.json_or_none() or {}).get("owner_id"), a["id"], "  the owner stays A")
    for method in ["GET", "DELETE"]:
        is_(fx.anon.call(method, "/v1/buckets/" + name, token="").status, 401,
            "anonymous %s is 401" % method)
    is_(fx.anon.post("/v1/buckets", {"name": bname()}, token="").status, 401,
        "anonymous POST is 401")
    is_(fx.admin.delete("/v1/buckets/" + name).status, 204, "an admin deletes it")
    is_(int(fx.db.sql("SELECT count(*) FROM buckets WHERE id = '%s'" % bid)), 0, "it is gone")


@case
def delete_refuses_non_empty(fx):
    u = new_user(fx.admin)
    name = bname("full")
    bid = u["api"].post("/v1/buckets", {"name": name}).json()["id"]
    for status in ["committed", "pending", "deleting"]:
        add_file_row(fx, bid, status)
        r = u["api"].delete("/v1/buckets/" + name)
        is_(r.status, 409, "DELETE with a %s file row is 409" % status, r.body)
        is_(error_of(r)[0], "bucket_not_empty", "  code bucket_not_empty")
        fx.db.sql("DELETE FROM files WHERE bucket_id = '%s'" % bid)
    is_(u["api"].delete("/v1/buckets/" + name).status, 204, "empty again: 204")
    # a user who still has files cannot be deleted; empty buckets go with the user
    v = new_user(fx.admin)
    b1 = v["api"].post("/v1/buckets", {"name": bname("v1")}).json()["id"]
    v["api"].post("/v1/buckets", {"name": bname("v2")})
    add_file_row(fx, b1)
    r = fx.admin.delete("/v1/users/" + v["id"])
    is_(r.status, 409, "deleting a user who has files is 409", r.body)
    is_(error_of(r)[0], "user_has_files", "  code user_has_files")
    fx.db.sql("DELETE FROM files WHERE bucket_id = '%s'" % b1)
    is_(fx.admin.delete("/v1/users/" + v["id"]).status, 204, "without files the user goes")
    is_(int(fx.db.sql("SELECT count(*) FROM buckets WHERE owner_id = '%s'" % v["id"])), 0,
        "  and its empty buckets with it")


@case
def keyset_listing(fx):
    u = new_user(fx.admin)
    prefix = "ks-" + secrets.token_hex(3)
    made = sorted("%s-%02d" % (prefix, i) for i in range(7))
    for n in made:
        is_(u["api"].post("/v1/buckets", {"name": n}).status, 201, "create " + n)
    seen, cursor, pages = [], None, 0
    while True:
        path = "/v1/buckets?limit=3" + ("&cursor=" + cursor if cursor else "")
        r = u["api"].get(path)
        is_(r.status, 200, "page %d is 200" % pages, r.body)
        body = r.json_or_none() or {}
        seen += [x["name"] for x in body.get("items", [])]
        pages += 1
        cursor = body.get("next_cursor")
        if cursor:
            link = r.header("link") or ""
            ok(("cursor=" + cursor) in link and 'rel="next"' in link, "  Link points to the next")
        else:
            ok(r.header("link") is None, "  the last page has no Link")
            break
        if pages > 5:
            break
    is_(seen, made, "the pages hold every bucket once, in name order")
    is_(pages, 3, "7 buckets in pages of 3 is 3 pages")
    admin_names = []
    cursor = None
    for _ in range(50):
        r = fx.admin.get("/v1/buckets?limit=100" + ("&cursor=" + cursor if cursor else ""))
        body = r.json_or_none() or {}
        admin_names += [x["name"] for x in body.get("items", [])]
        cursor = body.get("next_cursor")
        if not cursor:
            break
    ok(set(made) <= set(admin_names), "an admin's listing holds them too")
    is_(admin_names, sorted(admin_names), "  in byte order")
    for bad in ["!!!", "A", "_w", "w" * 100, "AA", "gICA"]:  # "gICA" decodes to invalid UTF-8
        r = u["api"].get("/v1/buckets?cursor=" + urllib.parse.quote(bad))
        is_(r.status, 400, "cursor %r is 400" % bad, r.body)
    for q in ["limit=0", "limit=101", "limit=x", "other=1"]:
        is_(u["api"].get("/v1/buckets?" + q).status, 400, q + " is 400")
    r = u["api"].get("/v1/buckets")
    is_((r.json_or_none() or {}).get("limit"), 20, "limit defaults to 20")


@case
def openapi_lists_the_routes(fx):
    doc = fx.anon.get("/openapi.json", token="").json_or_none() or {}
    paths = doc.get("paths", {})
    ok("post" in paths.get("/v1/buckets", {}) and "get" in paths.get("/v1/buckets", {}),
       "POST and GET /v1/buckets are documented")
    ok(set(paths.get("/v1/buckets/{bucket}", {})) >= {"get", "patch", "delete"},
       "GET, PATCH and DELETE /v1/buckets/{bucket} are documented")


if __name__ == "__main__":
    main(dbh.DbFixture("buckets"))
