"""The file routes and `glasgow gc` end to end against the real PostgreSQL,
with a FAKE object store (tests/integration/fakes/glasgow/s3.lua: files in
a directory, behind the glasgow.s3 Lua contract) standing in for the
binding that lands separately. What this proves is the metadata side of
the consistency pattern through the real SQL: commits, overwrites that
retire the old row and object, concurrent uploads of one name (one row
committed, every other object removed), deletes, failures that leave no
committed row without its object (a store outage, a client hanging up
mid-upload, PostgreSQL stopped while the object is written, glasgow
killed mid-upload), and gc removing what failures leave.
The same scenarios run against the real store (RGW) once the binding is
in; nothing here says anything about S3 itself.
"""
import concurrent.futures
import hashlib
import os
import secrets
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import case, is_, main, ok  # noqa: E402
import dbharness as dbh  # noqa: E402
from dbharness import error_of, new_user  # noqa: E402

dbh.skip_without_pg()

HERE = os.path.dirname(os.path.abspath(__file__))
STORE = harness.mkdtemp("glasgow-fake-s3-")
LUA = os.path.join(dbh.REPO, "lua")
LUA_PATH = ";".join([os.path.join(HERE, "fakes", "?.lua"), LUA + "/?.lua", LUA + "/?/init.lua",
                     "/usr/share/lua/5.1/?.lua", "/usr/share/lua/5.1/?/init.lua"])
ENV = {"GLASGOW_LUA_PATH": LUA_PATH, "GLASGOW_FAKE_S3_DIR": STORE,
       "GLASGOW_URL_SIGNING_KEY": secrets.token_hex(32)}


def objects():
    return sorted(n.replace("~", "/") for n in os.listdir(STORE) if not n.startswith("."))


def set_fault(ops=""):
    with open(os.path.join(STORE, ".fail"), "w") as f:
        f.write(ops)


def set_delay(ms):
    p = os.path.join(STORE, ".delay_ms")
    if ms:
        with open(p, "w") as f:
            f.write(str(ms))
    elif os.path.exists(p):
        os.remove(p)


def rows(fx, bucket_id):
    out = fx.db.sql("SELECT status, storage_key FROM files WHERE bucket_id = '%s' ORDER BY 1"
                    % bucket_id)
    return [tuple(line.split("|")) for line in out.splitlines() if line]


def consistent(fx, label):
    """No committed row without its object; no object without a row."""
    keys = dict((k, s) for s, k in (tuple(x.split("|")) for x in
                fx.db.sql("SELECT status, storage_key FROM files").splitlines() if x))
    objs = set(objects())
    missing = [k for k, s in keys.items() if s == "committed" and k not in objs]
    orphans = [o for o in objs if o not in keys]
    ok(not missing, "%s: every committed row has its object" % label, missing)
    return orphans


def put(api, bucket, name, data, **headers):
    h = {"Content-Type": "text/plain"}
    h.update(headers)
    return api.call("PUT", "/v1/buckets/%s/files/%s" % (bucket["name"], name), data, headers=h)


def gc(fx, *args):
    e = {k: v for k, v in os.environ.items() if not k.startswith("GLASGOW_")}
    e.update(ENV)
    e["DATABASE_URL"] = fx.db.url
    return subprocess.run([harness.GLASGOW_BIN, "gc"] + list(args), env=e, cwd=dbh.REPO,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


def new_bucket(u):
    return u["api"].post("/v1/buckets", {"name": "fs-" + secrets.token_hex(5)}).json()


@case
def upload_download_overwrite_delete(fx):
    set_fault()
    u = new_user(fx.admin)
    b = new_bucket(u)
    data = b"0123456789" * 10
    r = put(u["api"], b, "dir/a.txt", data)
    is_(r.status, 201, "a new file is 201", r.body)
    f = r.json_or_none() or {}
    is_(f.get("size"), 100, "size")
    is_(f.get("sha256"), hashlib.sha256(data).hexdigest(), "sha256")
    is_(r.header("etag"), '"%s"' % f.get("sha256"), "ETag header")
    is_(r.header("location"), "/v1/buckets/%s/files/dir/a.txt" % b["name"], "Location")
    r = put(u["api"], b, "caf%C3%A9%20%3F.txt", b"x")
    is_(r.header("location"), "/v1/buckets/%s/files/caf%%C3%%A9%%20%%3F.txt" % b["name"],
        "a Location with the name percent-encoded")
    is_(u["api"].delete(r.header("location") or "/x").status, 204, "  which addresses it")
    is_(rows(fx, b["id"]), [("committed", rows(fx, b["id"])[0][1])], "one committed row")
    r = u["api"].get("/v1/buckets/%s/files/dir/a.txt" % b["name"])
    is_((r.status, r.body), (200, data), "GET returns the bytes")
    r = u["api"].get("/v1/buckets/%s/files/dir/a.txt" % b["name"],
                     headers={"Range": "bytes=-10"})
    is_((r.status, r.body), (206, data[-10:]), "a suffix range is 206 with the last 10 bytes")
    is_(r.header("content-range"), "bytes 90-99/100", "  Content-Range")
    r = u["api"].get("/v1/buckets/%s/files/dir/a.txt" % b["name"],
                     headers={"Range": "bytes=0-0,5-9"})
    is_((r.status, r.body), (200, data), "several ranges: the whole file")
    r = u["api"].get("/v1/buckets/%s/files/dir/a.txt" % b["name"],
                     headers={"Range": "bytes=5-", "If-Range": '"stale"'})
    is_(r.status, 200, "a stale If-Range sends the whole file")
    old_key = rows(fx, b["id"])[0][1]

    r = put(u["api"], b, "dir/a.txt", b"new", **{"If-Match": f["etag"]})
    is_(r.status, 200, "an If-Match overwrite is 200", r.body)
    is_(rows(fx, b["id"])[0][0], "committed", "one committed row after the overwrite")
    is_(len(rows(fx, b["id"])), 1, "  and the old row is gone")
    ok(old_key not in objects(), "  and so is the old object")
    r = put(u["api"], b, "dir/a.txt", b"x", **{"If-Match": f["etag"]})
    is_(r.status, 412, "the old ETag no longer matches", r.body)
    r = put(u["api"], b, "dir/a.txt", b"x", **{"If-None-Match": "*"})
    is_(r.status, 412, "If-None-Match: * refuses to overwrite", r.body)
    digest = "sha-256=:" + __import__("base64").b64encode(hashlib.sha256(b"abc").digest()).decode() + ":"
    r = put(u["api"], b, "d.txt", b"abc", **{"Content-Digest": digest})
    is_(r.status, 201, "a matching Content-Digest is accepted", r.body)
    r = put(u["api"], b, "e.txt", b"abd", **{"Content-Digest": digest})
    is_(r.status, 400, "a mismatching one is 400", r.body)
    is_(error_of(r)[0], "digest_mismatch", "  digest_mismatch")
    is_(consistent(fx, "after the uploads"), [], "no object without a row")

    r = put(u["api"], b, "empty", b"")
    is_(r.status, 201, "a 0-byte file uploads", r.body)
    is_((r.json_or_none() or {}).get("sha256"), hashlib.sha256(b"").hexdigest(), "  its digest")
    ep = "/v1/buckets/%s/files/empty" % b["name"]
    r = u["api"].get(ep)
    is_((r.status, r.body), (200, b""), "  and downloads empty")
    r = u["api"].get(ep, headers={"Range": "bytes=0-0"})
    is_((r.status, r.header("content-range")), (416, "bytes */0"), "  bytes=0-0 is 416 */0")
    r = u["api"].get(ep, headers={"Range": "bytes=-5"})
    is_((r.status, r.body), (200, b""), "  a suffix range is the whole (empty) file")
    is_(u["api"].delete(ep).status, 204, "  and deletes")

    r = u["api"].delete("/v1/buckets/%s/files/dir/a.txt" % b["name"])
    is_(r.status, 204, "DELETE is 204", r.body)
    is_(u["api"].get("/v1/buckets/%s/files/dir/a.txt" % b["name"]).status, 404, "then GET is 404")
    is_(u["api"].delete("/v1/buckets/%s/files/d.txt" % b["name"]).status, 204, "delete d.txt")
    is_(rows(fx, b["id"]), [], "no rows left")
    is_(consistent(fx, "after the deletes"), [], "no objects left")
    is_(u["api"].delete("/v1/buckets/" + b["name"]).status, 204, "the empty bucket goes")


@case
def signed_url_downloads(fx):
    set_fault()
    u = new_user(fx.admin)
    b = new_bucket(u)
    put(u["api"], b, "s.bin", b"signed bytes")
    r = u["api"].post("/v1/buckets/%s/signed-urls" % b["name"], {"name": "s.bin"})
    url = (r.json_or_none() or {}).get("url", "")
    r = fx.anon.call("GET", url, token="")
    is_((r.status, r.body), (200, b"signed bytes"), "a signed URL downloads without a token")
    r = fx.anon.call("GET", url, token="", headers={"Range": "bytes=0-5"})
    is_((r.status, r.body), (206, b"signed"), "  with ranges too")


@case
def concurrent_uploads_of_one_name(fx):
    set_fault()
    set_delay(200)
    try:
        u = new_user(fx.admin)
        b = new_bucket(u)
        bodies = [("body-%d" % i).encode() * 10 for i in range(8)]
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            res = list(ex.map(lambda d: put(u["api"], b, "race.txt", d), bodies))
        statuses = sorted(r.status for r in res)
        ok(all(s in (200, 201) for s in statuses), "every upload succeeds (last wins)", statuses)
        is_(statuses.count(201), 1, "  exactly one created it")
        rs = rows(fx, b["id"])
        is_([s for s, _ in rs], ["committed"], "one committed row remains")
        r = u["api"].get("/v1/buckets/%s/files/race.txt" % b["name"])
        ok(r.body in bodies, "it serves one of the bodies whole")
        is_(objects().count(rs[0][1]), 1, "its object is there")
        is_(consistent(fx, "after the race"), [], "every other object was removed")
        set_delay(0)
        # with If-None-Match: * exactly one wins, the others are 412
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            set_delay(200)
            res = list(ex.map(lambda d: put(u["api"], b, "once.txt", d, **{"If-None-Match": "*"}),
                              bodies))
        statuses = sorted(r.status for r in res)
        is_(statuses.count(201), 1, "If-None-Match: * races: one 201", statuses)
        is_(statuses.count(412), 7, "  and seven 412")
        is_(consistent(fx, "after the If-None-Match race"), [], "  the losers' objects removed")
    finally:
        set_delay(0)


@case
def client_hangs_up_mid_upload(fx):
    set_fault()
    u = new_user(fx.admin)
    b = new_bucket(u)
    import socket
    sock = socket.create_connection((harness.HOST, fx.server.port), timeout=5)
    head = ("PUT /v1/buckets/%s/files/cut.bin HTTP/1.1\r\nHost: x\r\n"
            "Authorization: Bearer %s\r\nContent-Type: application/octet-stream\r\n"
            "Content-Length: 1048576\r\n\r\n" % (b["name"], u["token"])).encode()
    sock.sendall(head + b"x" * 300000)
    time.sleep(0.3)
    sock.close()
    ok(harness.wait_until(lambda: not fx.db.sql(
        "SELECT 1 FROM files WHERE bucket_id = '%s' AND status = 'pending'" % b["id"]), 5),
       "the upload's pending row goes when the client hangs up")
    is_(rows(fx, b["id"]), [], "no row is left")
    is_(consistent(fx, "after the hang-up"), [], "no object is left")
    r = u["api"].get("/v1/buckets/%s/files/cut.bin" % b["name"])
    is_(r.status, 404, "the file does not exist")


@case(timeout=120)
def database_stops_after_the_object_is_written(fx):
    set_fault()
    u = new_user(fx.admin)
    b = new_bucket(u)
    set_delay(1500)  # the put waits, then writes the object
    result = []
    t = threading.Thread(target=lambda: result.append(
        put(u["api"], b, "pgdown.bin", b"payload")), daemon=True)
    try:
        t.start()
        ok(harness.wait_until(lambda: fx.db.sql(
            "SELECT 1 FROM files WHERE bucket_id = '%s' AND status = 'pending'" % b["id"]), 5),
           "the upload inserted its pending row")
        p = dbh.pg_ctl("stop")
        ok(p.returncode == 0, "PostgreSQL stopped while the object is written", p.stderr)
        t.join(15)
    finally:
        set_delay(0)
        p = dbh.pg_ctl("start")
    ok(p.returncode == 0, "PostgreSQL started again", p.stderr)
    r = result[0] if result else None
    is_(r.status if r else None, 503, "the upload answers 503 (its commit could not run)",
        r.body[:200] if r else "")
    ok(harness.wait_until(dbh.pg_reachable, 15), "the database answers again")
    # The server's pool still holds connections the restart closed; each
    # one costs a request a 503 until the pool has replaced them all. Wait
    # for that here so that the next case starts against a healthy server.
    ok(harness.wait_until(lambda: fx.admin.get("/v1/buckets?limit=1").status == 200, 15),
       "the server reads from the database again")
    ok(not fx.db.sql("SELECT 1 FROM files WHERE bucket_id = '%s' AND status = 'committed'"
                     % b["id"]), "no committed row")
    is_(consistent(fx, "after the outage"), [], "and the object was removed")
    g = gc(fx, "--min-age", "0")
    is_(g.returncode, 0, "gc runs", g.stderr)
    is_(rows(fx, b["id"]), [], "after gc no row is left either")
    is_(consistent(fx, "after gc"), [], "nor an object")


@case(timeout=90)
def killed_mid_upload(fx):
    set_fault()
    u = new_user(fx.admin)
    b = new_bucket(u)
    set_delay(3000)
    try:
        with dbh.DbServer(fx.db, env=ENV) as s2:
            api2 = dbh.Api(s2, u["token"])
            t = threading.Thread(target=lambda: put(api2, b, "killed.bin", b"never"),
                                 daemon=True)
            t.start()
            ok(harness.wait_until(lambda: fx.db.sql(
                "SELECT 1 FROM files WHERE bucket_id = '%s' AND status = 'pending'"
                % b["id"]), 5), "the upload inserted its pending row")
            s2.proc.kill()  # SIGKILL: no cleanup runs
            s2.proc.wait(timeout=5)
            t.join(10)
    finally:
        set_delay(0)
    is_([st for st, _ in rows(fx, b["id"])], ["pending"], "a SIGKILL leaves the pending row")
    r = u["api"].get("/v1/buckets/%s/files/killed.bin" % b["name"])
    is_(r.status, 404, "which no client sees (the serving glasgow answers 404)")
    g = gc(fx, "--min-age", "0")
    is_(g.returncode, 0, "gc runs", g.stderr)
    is_(rows(fx, b["id"]), [], "gc removes the pending row")
    is_(consistent(fx, "after gc"), [], "and leaves no object")


@case
def failures_leave_nothing_visible_and_gc_cleans(fx):
    set_fault()
    u = new_user(fx.admin)
    b = new_bucket(u)
    put(u["api"], b, "keep.txt", b"keep")
    set_fault("put")
    r = put(u["api"], b, "f.txt", b"fails")
    is_(r.status, 503, "a store outage during the upload is 503", r.body)
    ok(r.header("retry-after"), "  with Retry-After")
    set_fault()
    is_([s for s, _ in rows(fx, b["id"])], ["committed"], "no row is left for the failed upload")

    # the object is written, then the old object cannot be deleted: the
    # new file serves, the old row waits in 'deleting' for gc
    set_fault("delete")
    r = put(u["api"], b, "keep.txt", b"keep v2")
    is_(r.status, 200, "an overwrite whose old object cannot be deleted still succeeds", r.body)
    set_fault()
    is_(sorted(s for s, _ in rows(fx, b["id"])), ["committed", "deleting"],
        "the replaced row waits as deleting")
    r = u["api"].get("/v1/buckets/%s/files/keep.txt" % b["name"])
    is_(r.body, b"keep v2", "the new version serves")

    # what a crash leaves: an old pending row with its object, and an old
    # object without a row
    fx.db.sql("INSERT INTO files (bucket_id, name, storage_key, content_type, updated_at) "
              "VALUES ('%s', 'crashed', '%s/11111111-1111-4111-8111-111111111111', 'text/plain', "
              "now() - interval '2 days')" % (b["id"], b["id"]))
    for key in ["%s/11111111-1111-4111-8111-111111111111" % b["id"],
                "%s/22222222-2222-4222-8222-222222222222" % b["id"],
                "%s/33333333-3333-4333-8333-333333333333" % b["id"]]:
        with open(os.path.join(STORE, key.replace("/", "~")), "w") as f:
            f.write("left over")
    # the orphan is old; the third object is young (an upload in flight)
    with open(os.path.join(STORE, ".age~%s~22222222-2222-4222-8222-222222222222" % b["id"]),
              "w") as f:
        f.write("200000")
    fx.db.sql("UPDATE files SET updated_at = now() - interval '5 minutes' "
              "WHERE status = 'deleting'")
    with open(os.path.join(STORE, ".uploads"), "w") as f:
        f.write("%s/44444444-4444-4444-8444-444444444444 old-upload 200000\n"
                "%s/55555555-5555-4555-8555-555555555555 young-upload 10\n" % (b["id"], b["id"]))
    p = gc(fx)
    is_(p.returncode, 0, "gc exits 0", p.stderr)
    ok('"reason":"stale_pending"' in p.stdout, "gc removed the stale pending row", p.stdout)
    ok('"reason":"left_deleting"' in p.stdout, "gc finished the deleting row")
    ok('"reason":"orphan"' in p.stdout, "gc deleted the orphan object")
    ok('"upload_id":"old-upload"' in p.stdout, "gc aborted the stale multipart upload")
    with open(os.path.join(STORE, ".uploads")) as f:
        left = f.read()
    ok("young-upload" in left and "old-upload" not in left, "  and spared the young one", left)
    is_([s for s, _ in rows(fx, b["id"])], ["committed"], "only the committed row remains")
    orphans = consistent(fx, "after gc")
    is_(orphans, ["%s/33333333-3333-4333-8333-333333333333" % b["id"]],
        "only the young object (an upload in flight) is left")
    p2 = gc(fx)
    ok('"action"' not in p2.stdout, "a second gc does nothing", p2.stdout)
    os.remove(os.path.join(STORE, "%s~33333333-3333-4333-8333-333333333333" % b["id"]))
    p = gc(fx, "--min-age", "0")
    is_(p.returncode, 0, "gc --min-age 0 runs")
    is_(consistent(fx, "at the end"), [], "nothing left over")


if __name__ == "__main__":
    main(dbh.DbFixture("fakestore", env=ENV))
