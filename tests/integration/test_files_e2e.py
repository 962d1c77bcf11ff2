"""Files end to end through the real routes, PostgreSQL and the real store
(Ceph RGW), for what test_files_store.py leaves out: the 1 GiB round
trips (Content-Length and chunked, SHA-256 both ways) with glasgow's peak
RSS sampled from /proc; faults, each ending with no committed row without
its object and nothing left after `glasgow gc` (client hang-up mid-upload
and mid-download, the store stopped mid-upload, PostgreSQL stopped once
the object is written, glasgow SIGKILLed mid-upload, a routes reload
during 8 transfers); ownership and signed URLs against stored bytes;
ranges and conditionals on stored files.

The store-stopping and PostgreSQL-stopping cases stop the shared test
servers (GLASGOW_TEST_S3_DIR, GLASGOW_TEST_PG_DIR) and start them again
before they end, waiting until they answer.
"""
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import case, diag, is_, is_error_shape, main, ok, slow, wait_until  # noqa: E402
import dbharness as dbh  # noqa: E402
from dbharness import new_user  # noqa: E402
import s3harness as s3h  # noqa: E402


s3h.skip_without_binding()
dbh.skip_without_pg()
STORE = s3h.store_or_fail()
BUCKET = "files-e2e-" + secrets.token_hex(4)  # this file's own: gc judges all of it
ENV = dict(STORE.runtime_env(bucket=BUCKET))
ENV["GLASGOW_URL_SIGNING_KEY"] = secrets.token_hex(32)
ENV["GLASGOW_REQUEST_TIMEOUT_MS"] = harness.ms(300000)
ENV["GLASGOW_WORKERS"] = "4"
MIB = 1024 * 1024
GIB = 1024 * MIB
BLOCK = MIB
# ASan's shadow memory and its quarantine of freed blocks (256 MiB) fill a sanitizer
# build's RSS: there the bound only shows that no file is ever held whole
RSS_LIMIT = 512 * MIB if harness.SAN else 64 * MIB

# a route whose answer says which version of the routes is loaded
VERSION_ROUTE = """return {{ {{ method = "GET", path = "/v1/e2e-version",
    handler = function() return 200, {{ version = {v} }} end }} }}
"""


# ---- bodies and transfers --------------------------------------------------------------

_BASE = os.urandom(BLOCK)


def blocks(size):
    """size bytes of pseudo-random data as 1 MiB blocks (each a fresh counter over a random
    block, so no two blocks are alike), never more than one block in memory."""
    i = 0
    left = size
    while left > 0:
        n = min(BLOCK, left)
        yield (i.to_bytes(8, "big") + _BASE[8:])[:n]
        i += 1
        left -= n


def sha_of(size):
    h = hashlib.sha256()
    for b in blocks(size):
        h.update(b)
    return h.hexdigest()


def fpath(bucket, name):
    return "/v1/buckets/%s/files/%s" % (bucket["name"], urllib.parse.quote(name, safe="/"))


class Upload:
    """A PUT whose body is streamed from blocks(size) on a raw socket by a thread.

    chunked: Transfer-Encoding: chunked instead of Content-Length. pause_at:
    after that many bytes the sender waits for .resume (an Event). hang_up_at:
    after that many bytes the socket is closed (an abrupt client). .result()
    reads the answer (a harness.RawResult; outcome "response" when one came).
    """

    def __init__(self, port, token, path, size, chunked=False, pause_at=None, hang_up_at=None,
                 ctype="application/octet-stream", sleep_per_block=0.0):
        self.size, self.chunked = size, chunked
        self.pause_at, self.hang_up_at = pause_at, hang_up_at
        self.sleep_per_block = sleep_per_block
        self.paused = threading.Event()
        self.resume = threading.Event()
        self.sent = 0
        self.send_error = None
        self.sha = hashlib.sha256()
        self.sock = socket.create_connection((harness.HOST, port), timeout=slow(120))
        head = ["PUT %s HTTP/1.1" % path, "Host: %s:%d" % (harness.HOST, port),
                "Authorization: Bearer " + token, "Content-Type: " + ctype]
        head.append("Transfer-Encoding: chunked" if chunked else "Content-Length: %d" % size)
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        self.thread = threading.Thread(target=self._send, daemon=True)
        self.thread.start()

    def _send(self):
        try:
            for b in blocks(self.size):
                if self.pause_at is not None and self.sent >= self.pause_at and \
                        not self.resume.is_set():
                    self.paused.set()
                    self.resume.wait(slow(120))
                if self.hang_up_at is not None and self.sent >= self.hang_up_at:
                    self.sock.shutdown(socket.SHUT_RDWR)
                    self.sock.close()
                    return
                self.sha.update(b)
                if self.chunked:
                    self.sock.sendall(b"%x\r\n" % len(b) + b + b"\r\n")
                else:
                    self.sock.sendall(b)
                self.sent += len(b)
                if self.sleep_per_block:
                    time.sleep(self.sleep_per_block)
            if self.chunked:
                self.sock.sendall(b"0\r\n\r\n")
        except OSError as e:
            self.send_error = e

    def result(self, timeout=None):
        res = harness.read_response(self.sock, timeout or slow(120))
        self.thread.join(slow(30))
        try:
            self.sock.close()
        except OSError:
            pass
        return res


def download(port, token, path, stop_after=None, sleep_per_block=0.0, headers=None):
    """GETs path on a fresh connection, hashing the body as it comes (1 MiB reads).

    Returns (status, hex SHA-256, bytes read). stop_after: close after that many bytes.
    """
    import http.client
    conn = http.client.HTTPConnection(harness.HOST, port, timeout=slow(120))
    try:
        h = {"Authorization": "Bearer " + token}
        h.update(headers or {})
        conn.request("GET", path, headers=h)
        r = conn.getresponse()
        sha, n = hashlib.sha256(), 0
        while True:
            b = r.read(BLOCK)
            if not b:
                break
            sha.update(b)
            n += len(b)
            if stop_after is not None and n >= stop_after:
                conn.sock.shutdown(socket.SHUT_RDWR)
                break
            if sleep_per_block:
                time.sleep(sleep_per_block)
        return r.status, sha.hexdigest(), n
    finally:
        conn.close()


class RssSampler:
    """Samples VmRSS of pid every ~50 ms in a thread; .peak in bytes."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = 0
        self.samples = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                with open("/proc/%d/status" % self.pid) as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            self.peak = max(self.peak, int(line.split()[1]) * 1024)
                            self.samples += 1
                            break
            except OSError:
                return
            self.stop.wait(0.05)

    def done(self):
        self.stop.set()
        self.thread.join(5)
        return self.peak


# ---- state checks ---------------------------------------------------------------------

def rows(fx, where="TRUE"):
    out = fx.db.sql("SELECT status || ' ' || storage_key FROM files WHERE " + where)
    return [tuple(x.split(" ", 1)) for x in out.splitlines() if x]


def committed_have_objects(fx, label):
    """No committed row without its object: every committed key is in the store bucket."""
    keys = set(STORE.list_keys(BUCKET))
    missing = [k for s, k in rows(fx, "status = 'committed'") if k not in keys]
    is_(missing, [], label + ": every committed row has its object")


def gc_leaves_nothing(fx, label):
    """Runs `glasgow gc --min-age 0` (rows left deleting backdated past gc's one-minute
    grace) and asserts nothing is left: no pending or deleting row, no object without a
    committed row, no multipart upload."""
    fx.db.sql("UPDATE files SET updated_at = now() - interval '1 hour' "
              "WHERE status <> 'committed'")
    e = {k: v for k, v in os.environ.items() if not k.startswith("GLASGOW_")}
    e.update(ENV)
    e["DATABASE_URL"] = fx.db.url
    p = subprocess.run([harness.GLASGOW_BIN, "gc", "--min-age", "0"], env=e, cwd=dbh.REPO,
                       capture_output=True, text=True, timeout=slow(120))
    is_(p.returncode, 0, label + ": glasgow gc --min-age 0 runs", p.stderr[-2000:])
    is_(rows(fx, "status <> 'committed'"), [], label + ": after gc no pending or deleting row")
    committed = sorted(k for _, k in rows(fx, "status = 'committed'"))
    is_(sorted(STORE.list_keys(BUCKET)), committed,
        label + ": after gc the store holds exactly the committed rows' objects")
    is_(STORE.list_uploads(BUCKET), [], label + ": after gc no multipart upload is left")


def new_bucket(u):
    r = u["api"].post("/v1/buckets", {"name": "e2e-" + secrets.token_hex(5)})
    if r.status != 201:
        raise AssertionError("creating a bucket answered %s %r" % (r.status, r.body))
    return r.json()


def user_and_bucket(fx):
    u = new_user(fx.admin)
    return u, new_bucket(u)


def configured(value, var, what):
    """False (and a failed check) when var, the directory of what, is not set."""
    return ok(bool(value), "%s names %s's directory (tests/run-all sets it)" % (var, what))


def put_small(u, b, name, data):
    return u["api"].call("PUT", fpath(b, name), data, timeout=slow(60),
                         headers={"Content-Type": "application/octet-stream"})


def put_big(fx, u, b, name, size, **kw):
    """Streams a size-byte upload; returns (RawResult, hex SHA-256 of what was sent)."""
    up = Upload(fx.server.port, u["token"], fpath(b, name), size, **kw)
    res = up.result()
    return res, up.sha.hexdigest()


def wait_pending(fx, bucket, timeout):
    return wait_until(lambda: rows(fx, "bucket_id = '%s' AND status = 'pending'" % bucket["id"]),
                      timeout)


# ---- cases -----------------------------------------------------------------------------

@case(timeout=int(slow(600)))
def one_gib_round_trips_in_bounded_memory(fx):
    u, b = user_and_bucket(fx)
    want = sha_of(GIB)
    rss = RssSampler(fx.server.proc.pid)
    t0 = time.monotonic()
    for chunked in (False, True):
        how = "chunked" if chunked else "with Content-Length"
        name = "big-chunked" if chunked else "big-length"
        t = time.monotonic()
        res, sent = put_big(fx, u, b, name, GIB, chunked=chunked)
        up_s = time.monotonic() - t
        is_(res.status, 201, "1 GiB upload %s is 201" % how, res.body[:300])
        is_((res.json_or_none() or {}).get("sha256"), want, "  the server's SHA-256 matches")
        t = time.monotonic()
        st, got, n = download(fx.server.port, u["token"], fpath(b, name))
        down_s = time.monotonic() - t
        is_((st, n, got), (200, GIB, want), "  the download of it is the same 1 GiB by SHA-256")
        diag("1 GiB %s: upload %.1f s (%.0f MB/s), download %.1f s (%.0f MB/s)"
             % (how, up_s, GIB / up_s / 1e6, down_s, GIB / down_s / 1e6))
    peak = rss.done()
    diag("glasgow peak VmRSS over both round trips: %.1f MiB (%d samples, %.0f s)"
         % (peak / MIB, rss.samples, time.monotonic() - t0))
    ok(rss.samples > 20 and 0 < peak < RSS_LIMIT,
       "glasgow's RSS stayed under %d MiB during the 1 GiB transfers (peak %.1f MiB)"
       % (RSS_LIMIT // MIB, peak / MIB))
    committed_have_objects(fx, "1 GiB")
    for name in ("big-length", "big-chunked"):
        is_(u["api"].delete(fpath(b, name)).status, 204, "DELETE " + name)
    gc_leaves_nothing(fx, "1 GiB")


@case(timeout=int(slow(180)))
def client_hangs_up(fx):
    u, b = user_and_bucket(fx)
    # a store transfer is under way when the client goes (one streamed PUT with a
    # Content-Length, a multipart upload when chunked); glasgow must notice at once, not when the starved store transfer hits its low-speed
    # limit (30 s), or never (a chunked body)
    for chunked in (False, True):
        how = "chunked" if chunked else "with Content-Length"
        up = Upload(fx.server.port, u["token"], fpath(b, "gone"), 200 * MIB, chunked=chunked,
                    hang_up_at=40 * MIB)
        up.thread.join(slow(60))
        ok(not up.thread.is_alive(), "the client hung up after 40 MiB of 200 (%s)" % how)
        t = time.monotonic()
        ok(wait_until(lambda: not rows(fx, "bucket_id = '%s'" % b["id"]), slow(10)),
           "  the upload's pending row is removed by the route", rows(fx))
        diag("  removed %.1f s after the hang-up" % (time.monotonic() - t))
        ok(wait_until(lambda: not STORE.list_keys(BUCKET, prefix=b["id"] + "/"), slow(10)),
           "  and nothing of it is in the store")
    committed_have_objects(fx, "upload hang-up")
    gc_leaves_nothing(fx, "upload hang-up")
    # mid-download
    size = 48 * MIB
    res, sha = put_big(fx, u, b, "keep", size)
    is_(res.status, 201, "a 48 MiB file is stored", res.body[:300])
    for _ in range(3):
        st, _, n = download(fx.server.port, u["token"], fpath(b, "keep"), stop_after=2 * MIB)
        ok(st == 200 and n < size, "a download read for 2 MiB and then hung up on")
    st, got, n = download(fx.server.port, u["token"], fpath(b, "keep"))
    is_((st, n, got), (200, size, sha), "the file still downloads whole afterwards")
    ok(fx.server.alive(), "glasgow is still running")
    committed_have_objects(fx, "download hang-up")
    is_(u["api"].delete(fpath(b, "keep")).status, 204, "DELETE keep")
    gc_leaves_nothing(fx, "download hang-up")


def recovers(fx, u, b, what, label):
    """Once what is back, uploads work again; then the consistency checks and gc."""
    ok(wait_until(lambda: put_small(u, b, "after", b"x").status == 201, slow(30), 0.5),
       "glasgow uploads again once %s is back" % what)
    committed_have_objects(fx, label)
    is_(u["api"].delete(fpath(b, "after")).status, 204, "DELETE after")
    gc_leaves_nothing(fx, label)


def store_port():
    return urllib.parse.urlsplit(STORE.endpoint).port


def store_answers():
    try:
        return STORE.list_page(BUCKET, max_keys=1)[2].status == 200
    except Exception:  # noqa: BLE001 - "not yet"
        return False


def rgw(action, timeout):
    args = ["bash", s3h.RGW_SCRIPT, action, STORE.dir] + \
        ([str(store_port())] if action == "start" else [])
    return subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, cwd=dbh.REPO)


@case(timeout=int(slow(300)))
def store_stopped_mid_upload(fx):
    if not configured(STORE.dir, "GLASGOW_TEST_S3_DIR", "the store"):
        return
    u, b = user_and_bucket(fx)
    up = Upload(fx.server.port, u["token"], fpath(b, "cut"), 200 * MIB, pause_at=40 * MIB)
    ok(up.paused.wait(slow(60)), "40 MiB of a 200 MiB upload are on their way")
    try:
        t = time.monotonic()
        p = rgw("stop", slow(120))
        is_(p.returncode, 0, "the store is stopped (.ci/rgw stop)", p.stderr[-1000:])
        diag("stopping the store took %.1f s" % (time.monotonic() - t))
        up.resume.set()
        res = up.result(slow(120))
        is_(res.status, 503, "the client gets 503", res, "sent %d, send error %r"
            % (up.sent, up.send_error))
        ok(is_error_shape(res.body, "store_unavailable"), "  with a JSON error body",
           res.body[:300])
        is_((res.header("retry-after"), res.header("connection")), ("1", "close"),
            "  Retry-After: 1, and the connection closes (160 MiB of body were still to come)")
        is_(rows(fx, "bucket_id = '%s' AND status = 'committed'" % b["id"]), [],
            "  and no row is committed")
    finally:
        t = time.monotonic()
        p = rgw("start", slow(180))
        ok(p.returncode == 0 and wait_until(store_answers, slow(60), 0.5),
           "the store is started again and answers", p.stderr[-1000:])
        diag("restarting the store took %.1f s" % (time.monotonic() - t))
    recovers(fx, u, b, "the store", "store stopped")


def pg_answers():
    return dbh.pg_reachable()


@case(timeout=int(slow(300)))
def postgres_stopped_once_the_object_is_written(fx):
    if not configured(dbh.PG_DIR, "GLASGOW_TEST_PG_DIR", "PostgreSQL"):
        return
    u, b = user_and_bucket(fx)
    # under the multipart threshold: one PUT, whose object exists once the body ends
    size = 48 * MIB
    up = Upload(fx.server.port, u["token"], fpath(b, "nodb"), size, pause_at=size - BLOCK)
    ok(up.paused.wait(slow(60)), "all but the last MiB of the upload are sent")
    ok(wait_pending(fx, b, slow(10)), "  its pending row exists")
    try:
        p = dbh.pg_ctl("stop", timeout=slow(60))
        is_(p.returncode, 0, "PostgreSQL is stopped", p.stderr[-1000:])
        up.resume.set()
        res = up.result(slow(120))
        ok(res.status is not None and res.status >= 500, "the client gets an error (%s)"
           % res.status, res.raw[:300])
        ok(is_error_shape(res.body), "  with a JSON error body", res.body[:300])
    finally:
        p = dbh.pg_ctl("start", timeout=slow(60))
        ok(p.returncode == 0 and wait_until(pg_answers, slow(30), 0.2),
           "PostgreSQL is started again", p.stderr[-1000:])
    is_(rows(fx, "bucket_id = '%s' AND status = 'committed'" % b["id"]), [],
        "no row was committed")
    recovers(fx, u, b, "PostgreSQL", "PostgreSQL stopped")


@case(timeout=int(slow(240)))
def sigkill_mid_upload(fx):
    u, b = user_and_bucket(fx)
    # A known length goes as one PUT by default; a lower threshold makes this
    # one a multipart upload, the case that leaves something for gc to abort.
    env = dict(ENV, GLASGOW_S3_MULTIPART_THRESHOLD="16m")
    with dbh.DbServer(fx.db, env=env) as s:
        up = Upload(s.port, u["token"], fpath(b, "killed"), 200 * MIB, pause_at=80 * MIB)
        ok(up.paused.wait(slow(60)), "80 MiB of a 200 MiB upload are sent (multipart under way)")
        ok(wait_until(lambda: STORE.list_uploads(BUCKET), slow(20)),
           "  a multipart upload is open in the store")
        s.proc.send_signal(signal.SIGKILL)
        s.proc.wait(10)
        is_(s.proc.returncode, -signal.SIGKILL, "glasgow is killed with SIGKILL")
        up.resume.set()
        res = up.result(slow(20))
        ok(res.status is None, "the client gets no answer (%s)" % res.outcome)
    is_([st for st, _ in rows(fx, "bucket_id = '%s'" % b["id"])], ["pending"],
        "the upload's row is left pending")
    with dbh.DbServer(fx.db, env=env) as s:
        api = dbh.Api(s, u["token"])
        r = api.call("PUT", fpath(b, "after"), b"after a crash", timeout=slow(30),
                     headers={"Content-Type": "text/plain"})
        is_(r.status, 201, "glasgow restarted uploads", r.body[:300])
        r = api.get(fpath(b, "killed"))
        is_(r.status, 404, "the killed upload is not a file", r.body[:300])
        committed_have_objects(fx, "SIGKILL")
        is_(api.delete(fpath(b, "after")).status, 204, "DELETE after")
    gc_leaves_nothing(fx, "SIGKILL")


@case(timeout=int(slow(240)))
def reload_during_eight_transfers(fx):
    u, b = user_and_bucket(fx)
    size = 24 * MIB
    shas = {}
    for i in range(4):
        res, shas["d%d" % i] = put_big(fx, u, b, "d%d" % i, size)
        is_(res.status, 201, "stored d%d (24 MiB) to download" % i, res.body[:300])
    results = {}

    def up(i):
        # about 2.5 s each: the reload lands in the middle
        x = Upload(fx.server.port, u["token"], fpath(b, "u%d" % i), size, chunked=i % 2 == 1,
                   sleep_per_block=0.1)
        r = x.result()
        results["u%d" % i] = (r.status, (r.json_or_none() or {}).get("sha256"), x.sha.hexdigest())

    def down(i):
        st, got, n = download(fx.server.port, u["token"], fpath(b, "d%d" % i), sleep_per_block=0.1)
        results["d%d" % i] = (st, got, shas["d%d" % i] if n == size else "short: %d" % n)

    started = [lambda i=i: up(i) for i in range(4)] + [lambda i=i: down(i) for i in range(4)]
    threads = harness.start_threads(started)
    time.sleep(0.8)
    harness.write_files(fx.server.routes_dir, {"e2e_version.lua": VERSION_ROUTE.format(v=2)})
    reloaded = wait_until(lambda: fx.anon.get("/v1/e2e-version").json().get("version") == 2,
                          slow(10))
    busy = sum(t.is_alive() for t in threads)
    ok(reloaded, "the routes were reloaded")
    ok(busy >= 6, "  while the transfers ran (%d of 8 still running)" % busy)
    ok(harness.join_all(threads, slow(120)), "the 8 transfers ended")
    for k in sorted(results):
        st, got, want = results[k]
        ok(st in (200, 201) and got == want, "%s %s succeeded with the right SHA-256"
           % ("upload" if k[0] == "u" else "download", k), results[k])
    is_(len(results), 8, "all 8 reported")
    committed_have_objects(fx, "reload")
    for i in range(4):
        for n in ("u%d" % i, "d%d" % i):
            u["api"].delete(fpath(b, n))
    gc_leaves_nothing(fx, "reload")


@case(timeout=int(slow(120)))
def ownership_and_signed_urls_on_stored_files(fx):
    a, v = new_user(fx.admin), new_user(fx.admin)
    b = new_bucket(v)
    data = os.urandom(4096)
    is_(put_small(v, b, "secret.bin", data).status, 201, "B stores a file")
    is_(put_small(v, b, "other.bin", b"other").status, 201, "and another")
    p = fpath(b, "secret.bin")
    for method, path, body in [("GET", "/v1/buckets/%s/files" % b["name"], None),
                               ("GET", p, None), ("HEAD", p, None),
                               ("PUT", p, b"overwritten"), ("DELETE", p, None),
                               ("DELETE", "/v1/buckets/" + b["name"], None),
                               ("POST", "/v1/buckets/%s/signed-urls" % b["name"],
                                json.dumps({"name": "secret.bin"}))]:
        h = {"Content-Type": "application/octet-stream"} if method == "PUT" else None
        r = a["api"].call(method, path, body, headers=h)
        is_(r.status, 404, "A: %s %s of B's is 404" % (method, path.split(b["name"])[-1] or "/"),
            r.body[:200])
        ok(data not in r.body, "  and holds none of B's bytes")
    r = v["api"].get(p)
    is_((r.status, r.body), (200, data), "B's file is unchanged")
    committed_have_objects(fx, "ownership")
    r = v["api"].post("/v1/buckets/%s/signed-urls" % b["name"], {"name": "secret.bin"})
    url = (r.json_or_none() or {}).get("url", "")
    r = fx.anon.get(url, token="")
    is_((r.status, r.body), (200, data), "B's signed URL serves the stored bytes")
    other = url.replace("/secret.bin?", "/other.bin?")
    tampered = url[:-2] + ("AA" if not url.endswith("AA") else "BB")
    later = url.replace("expires=", "expires=9")
    for u2, why in [(other, "for another file"), (tampered, "with a tampered signature"),
                    (later, "with a changed expiry")]:
        r = fx.anon.get(u2, token="")
        is_(r.status, 403, "a signed URL %s is 403" % why, r.body[:200])
        ok(data not in r.body and b"other" != r.body, "  and serves nothing")
    r = v["api"].post("/v1/buckets/%s/signed-urls" % b["name"],
                      {"name": "secret.bin", "expires_in": 1})
    short = (r.json_or_none() or {}).get("url", "")
    time.sleep(2.1)
    r = fx.anon.get(short, token="")
    is_((r.status, dbh.error_of(r)[0]), (403, "expired"), "an expired signed URL is 403 expired")
    for n in ("secret.bin", "other.bin"):
        v["api"].delete(fpath(b, n))


@case(timeout=int(slow(120)))
def ranges_and_conditionals_on_stored_files(fx):
    u, b = user_and_bucket(fx)
    data = os.urandom(100)
    is_(put_small(u, b, "r", data).status, 201, "a 100-byte file is stored")
    is_(put_small(u, b, "z", b"").status, 201, "a 0-byte file is stored")
    p = fpath(b, "r")

    def get(path, **h):
        return u["api"].get(path, headers=h, timeout=slow(20))
    for rng, want in [("bytes=0-0", (206, data[0:1], "bytes 0-0/100")),
                      ("bytes=-10", (206, data[90:], "bytes 90-99/100")),
                      ("bytes=10-", (206, data[10:], "bytes 10-99/100")),
                      ("bytes=95-1000", (206, data[95:], "bytes 95-99/100")),
                      ("bytes=-1000", (206, data, "bytes 0-99/100")),
                      ("bytes=5-2", (200, data, None)), ("bytes=abc", (200, data, None)),
                      ("bytes=0-1,5-6", (200, data, None)), ("items=0-1", (200, data, None)),
                      ("bytes=100-", (416, None, "bytes */100"))]:
        r = get(p, Range=rng)
        body = r.body if want[1] is not None else None
        is_((r.status, body, r.header("content-range")), want, "Range %s" % rng)
    for rng, want in [("bytes=0-0", (416, "bytes */0")), ("bytes=-10", (200, None)),
                      ("bytes=0-", (416, "bytes */0"))]:
        r = get(fpath(b, "z"), Range=rng)
        is_((r.status, r.header("content-range")), want,
            "Range %s of the 0-byte file is %d" % (rng, want[0]), r.body[:200])
        if r.status == 200:
            is_(r.body, b"", "  with the empty body")
    etag = get(p).header("etag")
    is_(etag, '"%s"' % hashlib.sha256(data).hexdigest(), "the ETag is the quoted SHA-256")
    for h, label in [(etag, "its ETag"), ("*", "*"), ("W/" + etag, "its weak form")]:
        r = get(p, **{"If-None-Match": h})
        is_((r.status, r.body), (304, b""), "If-None-Match %s is 304 with no body" % label)
    r = get(p, **{"If-None-Match": '"other"'})
    is_((r.status, r.body), (200, data), "If-None-Match with another tag sends the file")
    r = get(p, **{"If-Match": etag, "Range": "bytes=0-0"})
    is_((r.status, r.body), (206, data[:1]), "If-Match with the ETag serves the range")
    old = etag
    is_(put_small(u, b, "r", b"new").status, 200, "the file is overwritten")
    r = get(p, **{"If-Match": old})
    is_(r.status, 412, "a stale If-Match is 412", r.body[:200])
    r = u["api"].call("PUT", p, b"newer", headers={"Content-Type": "text/plain", "If-Match": old})
    is_(r.status, 412, "an upload with a stale If-Match is 412", r.body[:200])
    is_(get(p).body, b"new", "  and changed nothing")
    committed_have_objects(fx, "ranges")
    for n in ("r", "z"):
        u["api"].delete(fpath(b, n))
    gc_leaves_nothing(fx, "ranges")


if __name__ == "__main__":
    main(s3h.BucketDbFixture(STORE, BUCKET, "fe2e", env=ENV,
                             extra_routes={"e2e_version.lua": VERSION_ROUTE.format(v=1)}))
