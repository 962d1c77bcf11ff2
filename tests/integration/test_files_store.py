"""Files end to end with the real object store (Ceph RGW) and PostgreSQL.

Needs a build with the glasgow.s3 binding and the test store
(GLASGOW_TEST_S3_*, started by tests/run-all); without the binding the
file is skipped. Uploads of 0 B, 1 B and a few MiB compared by SHA-256,
downloads whole and by range, HEAD, overwrite (the old object is gone from
the store), concurrent uploads of one name (one committed row, every other
object removed), a digest mismatch (nothing stored), deletes (the store
is empty again), signed URLs; and `glasgow gc` on what a crash leaves: a
stale pending row with its object, an object without a row, an unfinished
multipart upload, while a committed file and keys that are not ours stay.
"""
import concurrent.futures
import hashlib
import os
import secrets
import subprocess
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import case, is_, main, ok  # noqa: E402
import dbharness as dbh  # noqa: E402
from dbharness import new_user  # noqa: E402
import s3harness as s3h  # noqa: E402


s3h.skip_without_binding()
dbh.skip_without_pg()
STORE = s3h.store_or_fail()
# a store bucket of this file's own: gc judges every object in it
BUCKET = "files-store-" + secrets.token_hex(4)
ENV = dict(STORE.runtime_env(bucket=BUCKET))
ENV["GLASGOW_URL_SIGNING_KEY"] = secrets.token_hex(32)
ENV["GLASGOW_REQUEST_TIMEOUT_MS"] = "20000"
MIB = 1024 * 1024


def keys(prefix):
    return sorted(STORE.list_keys(BUCKET, prefix=prefix))


def committed_keys(fx, bucket_id):
    out = fx.db.sql("SELECT storage_key FROM files WHERE bucket_id = '%s' AND status = 'committed'"
                    % bucket_id)
    return sorted(x for x in out.splitlines() if x)


def put(api, bucket, name, data, **headers):
    h = {"Content-Type": "application/octet-stream"}
    h.update(headers)
    return api.call("PUT", "/v1/buckets/%s/files/%s" % (bucket["name"], name), data, headers=h,
                    timeout=60)


def new_bucket(u):
    return u["api"].post("/v1/buckets", {"name": "st-" + secrets.token_hex(5)}).json()


def get(api, path, **kw):
    """A GET that fails its check instead of the whole case when no answer comes."""
    try:
        return api.get(path, timeout=10, **kw)
    except OSError as e:
        return harness.Response(0, {}, ("no answer: %s" % e).encode())


@case(timeout=180)
def round_trips(fx):
    u = new_user(fx.admin)
    b = new_bucket(u)
    sizes = [0, 1, 5 * MIB - 1, 5 * MIB + 1]
    datas = {}
    for size in sizes:
        data = datas[size] = os.urandom(size)
        r = put(u["api"], b, "f%d" % size, data)
        is_(r.status, 201, "PUT %d bytes is 201" % size, r.body[:200])
        is_((r.json_or_none() or {}).get("sha256"), hashlib.sha256(data).hexdigest(),
            "  the SHA-256 matches")
        r = u["api"].call("HEAD", "/v1/buckets/%s/files/f%d" % (b["name"], size))
        is_(r.header("content-length"), str(size), "  HEAD has its length")
    is_(keys(b["id"] + "/"), committed_keys(fx, b["id"]), "the store holds exactly the rows' objects")
    for size in sizes:
        data = datas[size]
        r = get(u["api"], "/v1/buckets/%s/files/f%d" % (b["name"], size))
        is_((r.status, hashlib.sha256(r.body).hexdigest()), (200, hashlib.sha256(data).hexdigest()),
            "GET of %d bytes returns the same bytes" % size, r.body[:200])
        if size > 10:
            r = get(u["api"], "/v1/buckets/%s/files/f%d" % (b["name"], size),
                    headers={"Range": "bytes=-10"})
            is_((r.status, r.body), (206, data[-10:]), "  a suffix range is its last 10 bytes")
            is_(r.header("content-range"), "bytes %d-%d/%d" % (size - 10, size - 1, size),
                "  with Content-Range")


@case
def overwrite_race_digest_delete(fx):
    u = new_user(fx.admin)
    b = new_bucket(u)
    put(u["api"], b, "a", b"one")
    first = committed_keys(fx, b["id"])
    r = put(u["api"], b, "a", b"two")
    is_(r.status, 200, "an overwrite is 200", r.body)
    ok(first[0] not in keys(b["id"] + "/"), "the old object is gone from the store")
    bodies = [os.urandom(256 * 1024) for _ in range(6)]
    with concurrent.futures.ThreadPoolExecutor(6) as ex:
        res = list(ex.map(lambda d: put(u["api"], b, "race", d), bodies))
    ok(all(r.status in (200, 201) for r in res), "six concurrent uploads of one name succeed",
       [r.status for r in res])
    is_(keys(b["id"] + "/"), committed_keys(fx, b["id"]),
        "one object per committed row: every loser's object was removed")
    digest = "sha-256=:" + __import__("base64").b64encode(hashlib.sha256(b"x").digest()).decode()
    r = put(u["api"], b, "d", b"y", **{"Content-Digest": digest + ":"})
    is_(r.status, 400, "a digest mismatch is 400", r.body)
    is_(keys(b["id"] + "/"), committed_keys(fx, b["id"]), "  and stores nothing")
    r = u["api"].post("/v1/buckets/%s/signed-urls" % b["name"], {"name": "a"})
    url = (r.json_or_none() or {}).get("url", "")
    r = get(fx.anon, url, token="")
    is_((r.status, r.body), (200, b"two"), "a signed URL downloads without a token")
    for n in ["a", "race"]:
        is_(u["api"].delete("/v1/buckets/%s/files/%s" % (b["name"], n)).status, 204,
            "DELETE " + n)
    is_(keys(b["id"] + "/"), [], "the store is empty again")
    is_(u["api"].delete("/v1/buckets/" + b["name"]).status, 204, "and so is the bucket")


@case
def gc_cleans_the_store(fx):
    uid = fx.admin_id
    bid = fx.db.sql("INSERT INTO buckets (name, owner_id) VALUES ('gc-%s', '%s') RETURNING id"
                    % (secrets.token_hex(4), uid)).splitlines()[0]
    pending, orphan, kept = ["%s/%s" % (bid, uuid.uuid4()) for _ in range(3)]
    foreign = "not-glasgow/%s" % secrets.token_hex(4)
    for k in [pending, orphan, kept, foreign]:
        is_(STORE.put(k, b"data", bucket=BUCKET).status, 200, "store " + k)
    fx.db.sql("INSERT INTO files (bucket_id, name, storage_key, content_type, updated_at) "
              "VALUES ('%s', 'p', '%s', 'text/plain', now() - interval '2 days')"
              % (bid, pending))
    fx.db.sql("INSERT INTO files (bucket_id, name, storage_key, size, sha256, content_type, "
              "status) VALUES ('%s', 'k', '%s', 4, sha256('data'), 'text/plain', 'committed')"
              % (bid, kept))
    upload = STORE.create_upload("%s/%s" % (bid, uuid.uuid4()), bucket=BUCKET)
    e = {k: v for k, v in os.environ.items() if not k.startswith("GLASGOW_")}
    e.update(ENV)
    e["DATABASE_URL"] = fx.db.url

    def gc(*args):
        return subprocess.run([harness.GLASGOW_BIN, "gc"] + list(args), env=e, cwd=dbh.REPO,
                              capture_output=True, text=True, timeout=120)
    p = gc()
    is_(p.returncode, 0, "gc with the default age (a day) runs", p.stderr)
    ok('"reason":"stale_pending"' in p.stdout, "  it removes the two-day-old pending row",
       p.stdout)
    ok(pending not in keys(bid + "/"), "  and its object")
    ok(orphan in keys(bid + "/") and upload not in p.stdout,
       "  and spares a young object without a row and a young upload")
    p = gc("--min-age", "0")
    is_(p.returncode, 0, "gc --min-age 0 runs", p.stderr)
    ok('"reason":"orphan"' in p.stdout, "  it removes the object without a row", p.stdout)
    ok(upload in p.stdout, "  and aborts the multipart upload")
    is_(keys(bid + "/"), [kept], "only the committed file's object is left")
    ok(foreign in STORE.list_keys(BUCKET, prefix="not-glasgow/"), "a key that is not ours stays")
    is_(fx.db.sql("SELECT storage_key FROM files WHERE bucket_id = '%s'" % bid), kept,
        "only the committed row is left")
    p = gc("--min-age", "0")
    ok('"action"' not in p.stdout, "a second run does nothing", p.stdout)
    fx.db.sql("DELETE FROM files WHERE bucket_id = '%s'" % bid)


if __name__ == "__main__":
    main(s3h.BucketDbFixture(STORE, BUCKET, "store", env=ENV))
