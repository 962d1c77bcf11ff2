"""Hot reload of the routes bundle.

The Kubernetes cases reproduce the kubelet's ConfigMap update exactly (see
harness.KubeDir): a new timestamped directory, a "..data_tmp" symlink
renamed over "..data", top-level symlinks added and removed. Most servers
here run with a long GLASGOW_RELOAD_INTERVAL_MS so that only the
directory watch can explain a change seen within PICKUP seconds (2 s, 8 s
under SAN).
"""
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (REPO_ROUTES, Client, KubeDir, Server, case, diag, is_,  # noqa: E402
                     join_all, main, mkdtemp, ok, run_glasgow, slow, start_threads,
                     wait_until, write_files)

WATCH_ONLY = {"GLASGOW_RELOAD_INTERVAL_MS": "600000", "GLASGOW_RELOAD_DEBOUNCE_MS": "50"}
# How long a change may take to be served: far more than a reload takes
# (tens of ms), far less than the 600 s re-hash interval of WATCH_ONLY.
PICKUP = slow(2.0)

HELLO = '''return {
    {
        method = "GET",
        path = "/hello",
        handler = function()
            return 200, { message = "hello" }
        end,
    },
}
'''


def v_files(n):
    """A route /v answering its own file's version and its helper module's version,
    and /v/slow doing the same after waiting ?ms= milliseconds."""
    return {
        "v.lua": '''local glasgow = require "glasgow"
local helper = require "routes._helper"
local FILE_VERSION = %d
return {
    {
        method = "GET",
        path = "/v",
        handler = function()
            return 200, { file = FILE_VERSION, helper = helper.version }
        end,
    },
    {
        method = "GET",
        path = "/v/slow",
        query = {
            type = "object",
            properties = { ms = { type = "integer", minimum = 0, maximum = 10000 } },
            required = { "ms" },
        },
        handler = function(req)
            glasgow.sleep(req.query.ms)
            return 200, { file = FILE_VERSION, helper = helper.version }
        end,
    },
}
''' % n,
        "_helper.lua": "return { version = %d }\n" % n,
        "hello.lua": HELLO,
    }


def version(s):
    r = s.get("/v", timeout=3)
    if r.status != 200:
        return ("status", r.status)
    j = r.json_or_none() or {}
    return j.get("file"), j.get("helper")


def wait_version(s, n, timeout=PICKUP):
    t0 = time.monotonic()
    got = wait_until(lambda: version(s) == (n, n), timeout, 0.02)
    return got, time.monotonic() - t0


def generation(s):
    """(number, hash) of glasgow_routes_generation."""
    for line in s.admin("/metrics").body.decode().splitlines():
        m = re.match(r'^glasgow_routes_generation\{hash="([^"]*)"\} (\d+)', line)
        if m:
            return int(m.group(2)), m.group(1)
    return None, None


def reloads(s, result):
    return s.metric("glasgow_routes_reloads_total", result=result)


@case(timeout=30)
def kubelet_swap_changes_answer():
    tmp = mkdtemp(prefix="glasgow-kube-")
    kd = KubeDir(os.path.join(tmp, "routes"), v_files(1))
    entries = sorted(os.listdir(kd.path))
    ok("..data" in entries and any(e.startswith("..20") for e in entries) and
       os.path.islink(os.path.join(kd.path, "v.lua")), "routes dir has the kubelet layout", entries)
    with Server(routes_dir=kd.path, env=WATCH_ONLY) as s:
        is_(version(s), (1, 1), "generation 1 serves version 1")
        gen1, hash1 = generation(s)
        kd.update(v_files(2))
        got, dt = wait_version(s, 2)
        ok(got, "after the ..data swap, /v answers version 2 within %.0f s (%.2f s)" % (PICKUP, dt),
           "still %r" % (version(s),))
        # the gauge is set just after the workers get the new generation: allow it a moment
        wait_until(lambda: generation(s)[0] == (gen1 or 0) + 1, slow(1.0))
        gen2, hash2 = generation(s)
        is_(gen2, (gen1 or 0) + 1, "generation gauge advanced by one")
        ok(hash2 and hash2 != hash1, "generation hash label changed")
        ok(wait_until(lambda: reloads(s, "success") >= 1, slow(1.0)),
           "reloads_total{result=success} counted it")
        ok(os.path.exists(os.path.join(kd.path, kd.current)) and
           len([e for e in os.listdir(kd.path) if e.startswith("..20")]) == 1,
           "the old timestamped directory is gone, as the kubelet leaves it")
        kd.update(v_files(3))
        got, dt = wait_version(s, 3)
        ok(got, "a second swap is picked up too (%.2f s)" % dt)
        is_(s.get("/hello").status, 200, "other routes still served")


@case(timeout=30)
def in_flight_request_finishes_on_its_generation():
    tmp = mkdtemp(prefix="glasgow-kube-")
    kd = KubeDir(os.path.join(tmp, "routes"), v_files(1))
    with Server(routes_dir=kd.path, env=WATCH_ONLY) as s:
        out = {}

        # the slow request outlasts the reload by seconds
        wait_ms = int(1000 * (PICKUP + 1.0))  # at most 10000: the route's schema

        def slow_request():
            r = s.get("/v/slow?ms=%d" % wait_ms, timeout=wait_ms / 1e3 + slow(5))
            j = r.json_or_none() or {}
            out["slow"] = (r.status, j.get("file"), j.get("helper"))
        ts = start_threads([slow_request])
        ok(wait_until(lambda: s.metric("http_requests_in_flight") >= 1, slow(5.0), 0.02),
           "the slow request is in flight before the swap")
        kd.update(v_files(2))
        got, dt = wait_version(s, 2)
        ok(got and "slow" not in out, "new requests see version 2 while the slow one is still "
           "waiting (%.2f s)" % dt, out)
        join_all(ts, wait_ms / 1e3 + slow(5))
        is_(out.get("slow"), (200, 1, 1), "the request in flight during the swap finished on "
            "generation 1 (file and helper)")
        r = s.get("/v/slow?ms=10")
        j = r.json_or_none() or {}
        is_((r.status, j.get("file"), j.get("helper")), (200, 2, 2),
            "a new slow request runs on generation 2")
        ok(s.alive(), "server alive after the old generation was released")


@case(timeout=60)
def swaps_under_load_are_atomic():
    tmp = mkdtemp(prefix="glasgow-kube-")
    kd = KubeDir(os.path.join(tmp, "routes"), v_files(0))
    n_swaps = 20
    with Server(routes_dir=kd.path, env=WATCH_ONLY) as s:
        is_(version(s), (0, 0), "serving version 0 before the swaps")
        stop = threading.Event()
        lock = threading.Lock()
        stats = {"ok": 0, "failed": [], "mixed": [], "backwards": [], "seen": set()}

        def load(idx):
            c = Client(s.port, timeout=5)
            last = -1
            try:
                while not stop.is_set():
                    try:
                        r = c.get("/v")
                    except Exception as e:  # noqa: BLE001
                        with lock:
                            stats["failed"].append("conn %d: %r" % (idx, e))
                        c.close()
                        c = Client(s.port, timeout=5)
                        continue
                    j = r.json_or_none() or {}
                    with lock:
                        if not 200 <= r.status < 300:
                            stats["failed"].append("conn %d: status %s %r" % (idx, r.status,
                                                                              r.body[:120]))
                            continue
                        f, h = j.get("file"), j.get("helper")
                        stats["ok"] += 1
                        stats["seen"].add(f)
                        if f != h:
                            stats["mixed"].append((f, h))
                        if isinstance(f, int):
                            if f < last:
                                stats["backwards"].append((idx, last, f))
                            last = f
            finally:
                c.close()

        threads = start_threads([lambda i=i: load(i) for i in range(4)])
        ok(wait_until(lambda: stats["ok"] >= 20, slow(5.0), 0.02), "the load runs before the "
           "swaps", stats["ok"])
        t0 = time.monotonic()
        for n in range(1, n_swaps + 1):
            kd.update(v_files(n))
            time.sleep(slow(0.15))  # a swap every 150 ms: each should get published
        swap_time = time.monotonic() - t0
        final, dt = wait_version(s, n_swaps, PICKUP + slow(1.0))
        time.sleep(0.3)
        stop.set()
        join_all(threads, slow(10))
        diag("%d swaps in %.2f s; %d requests; versions seen: %s" %
             (n_swaps, swap_time, stats["ok"], sorted(stats["seen"])))
        ok(stats["ok"] > 200, "the load generator made requests throughout", stats["ok"])
        is_(stats["failed"][:5], [], "no failed or non-2xx request during %d swaps" % n_swaps)
        is_(stats["mixed"][:5], [], "every response came wholly from one generation "
            "(file version == helper version)")
        is_(stats["backwards"][:5], [], "no connection saw an older generation after a newer one")
        ok(len(stats["seen"]) >= 5, "the load saw at least 5 different generations",
           sorted(stats["seen"]))
        ok(final, "the final version %d is served at the end (%.2f s after the last swap)" %
           (n_swaps, dt))
        wait_until(lambda: (generation(s)[0] or 0) >= 5, slow(1.0))
        gen, _ = generation(s)
        ok(gen is not None and gen >= 5, "generation gauge advanced (now %s)" % gen)
        is_(reloads(s, "failure"), 0.0, "no reload failed while swapping valid bundles")
        is_(s.metric("http_requests_in_flight"), 0.0, "nothing left in flight")


SYNTAX_ERROR = '''return {
    {
        method = "GET",
        path = "/v"
        handler = function() return 200, { file = 99 } end,
    },
}
'''

THROWS_AT_LOAD = '''local x = 1
error("route file refuses to load")
return {}
'''


def broken_bundle(kind):
    files = v_files(1)
    if kind == "syntax":
        files["v.lua"] = SYNTAX_ERROR
    elif kind == "throws":
        files["v.lua"] = THROWS_AT_LOAD
    elif kind == "helper":
        files["_helper.lua"] = "return { version = 99 \n"
    elif kind == "conflict":
        files["v.lua"] = v_files(99)["v.lua"]
        files["_helper.lua"] = "return { version = 99 }\n"
        files["w.lua"] = files["v.lua"]
    return files


@case(timeout=60)
def broken_bundles_keep_serving():
    tmp = mkdtemp(prefix="glasgow-kube-")
    kd = KubeDir(os.path.join(tmp, "routes"), v_files(1))
    with Server(routes_dir=kd.path, env=WATCH_ONLY) as s:
        is_(version(s), (1, 1), "serving version 1")
        gen0 = generation(s)
        fail0 = reloads(s, "failure")
        succ0 = reloads(s, "success")
        expected_where = {"syntax": r"v\.lua:5\b", "throws": r"v\.lua:2\b",
                          "helper": r"_helper\.lua:\d+", "conflict": r"[vw]\.lua"}
        for i, kind in enumerate(("syntax", "throws", "helper", "conflict")):
            kd.update(broken_bundle(kind))
            want = fail0 + i + 1
            got = wait_until(lambda: reloads(s, "failure") >= want, PICKUP + slow(1.0))
            ok(got, "%s: reloads_total{result=failure} rose to %d" % (kind, want),
               "failures: %s" % reloads(s, "failure"))
            is_(version(s), (1, 1), "%s: the old generation still serves /v" % kind)
            is_(s.get("/hello").status, 200, "%s: /hello still served" % kind)
            is_(generation(s), gen0, "%s: generation gauge and hash unchanged" % kind)

            def error_text():
                errors = [x for x in s.log_lines() if x.get("level") == "error" and
                          "reload" in str(x.get("msg", ""))]
                return " ".join(str(x) for x in errors)
            # logged before the metric moves; waited for all the same
            ok(wait_until(lambda: re.search(expected_where[kind], error_text()), slow(2.0)),
               "%s: the error log names %s" % (kind, expected_where[kind]), error_text()[-400:])
        is_(reloads(s, "success"), succ0, "no broken bundle counted as a success")
        # the same broken bundle is not retried as a new failure on every re-hash
        kd.update(v_files(2))
        got, dt = wait_version(s, 2)
        ok(got, "a good bundle after the broken ones is served within %.0f s (%.2f s)" %
           (PICKUP, dt))
        wait_until(lambda: generation(s)[0] == (gen0[0] or 0) + 1, slow(1.0))
        gen1 = generation(s)
        is_(gen1[0], (gen0[0] or 0) + 1, "generation advanced by exactly one")
        ok(gen1[1] != gen0[1], "generation hash changed")
        wait_until(lambda: reloads(s, "success") >= succ0 + 1, slow(1.0))
        is_(reloads(s, "success"), succ0 + 1, "reloads_total{result=success} +1")
        ok(s.alive(), "server alive")


@case(timeout=60)
def broken_bundle_counted_once():
    """The periodic re-hash must not count the same broken bundle again and again."""
    tmp = mkdtemp(prefix="glasgow-kube-")
    kd = KubeDir(os.path.join(tmp, "routes"), v_files(1))
    with Server(routes_dir=kd.path, env={"GLASGOW_RELOAD_INTERVAL_MS": "200"}) as s:
        kd.update(broken_bundle("syntax"))
        ok(wait_until(lambda: reloads(s, "failure") >= 1, PICKUP + slow(1.0)),
           "the broken bundle is refused")
        time.sleep(slow(1.0))  # five re-hash periods: a negative check, load only weakens it
        is_(reloads(s, "failure"), 1.0, "one broken bundle, one failure, across 5 re-hashes")
        is_(version(s), (1, 1), "old generation still serving")


@case(timeout=40)
def deleting_a_route_file():
    tmp = mkdtemp(prefix="glasgow-kube-")
    files = v_files(1)
    files["extra.lua"] = HELLO.replace('"/hello"', '"/extra"')
    kd = KubeDir(os.path.join(tmp, "routes"), files)
    with Server(routes_dir=kd.path, env=WATCH_ONLY) as s:
        is_(s.get("/extra").status, 200, "/extra served while extra.lua exists")
        del files["extra.lua"]
        kd.update(files)
        ok(not os.path.lexists(os.path.join(kd.path, "extra.lua")),
           "the top-level extra.lua symlink was removed")
        got = wait_until(lambda: s.get("/extra").status == 404, PICKUP, 0.02)
        ok(got, "after the key is deleted, /extra is 404 within %.0f s" % PICKUP)
        is_(version(s), (1, 1), "/v unaffected")
        files["added.lua"] = HELLO.replace('"/hello"', '"/added"')
        kd.update(files)
        got = wait_until(lambda: s.get("/added").status == 200, PICKUP, 0.02)
        ok(got, "a new key adds its route within %.0f s" % PICKUP)


@case(timeout=40)
def plain_directory_edits():
    files = v_files(1)
    files["extra.lua"] = HELLO.replace('"/hello"', '"/extra"')
    with Server(files=files, env=WATCH_ONLY) as s:
        d = s.routes_dir
        is_(version(s), (1, 1), "serving version 1 from a plain directory")
        # edit in place, the way an editor without atomic save does it
        for name, text in v_files(2).items():
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        got, dt = wait_version(s, 2)
        ok(got, "an in-place edit is picked up within %.0f s (%.2f s)" % (PICKUP, dt), version(s))
        os.unlink(os.path.join(d, "extra.lua"))
        got = wait_until(lambda: s.get("/extra").status == 404, PICKUP, 0.02)
        ok(got, "deleting extra.lua removes /extra within %.0f s" % PICKUP)
        write_files(d, {"added.lua": HELLO.replace('"/hello"', '"/added"')})
        got = wait_until(lambda: s.get("/added").status == 200, PICKUP, 0.02)
        ok(got, "a new file adds its route within %.0f s" % PICKUP)
        r = s.get("/openapi.json")
        paths = (r.json_or_none() or {}).get("paths") or {}
        ok("/added" in paths and "/extra" not in paths, "openapi.json follows the reload",
           sorted(paths))


@case(timeout=40)
def periodic_rehash_catches_unwatched_change():
    """A change inotify cannot see (a file under a symlinked directory) is found by the re-hash."""
    tmp = mkdtemp(prefix="glasgow-rehash-")
    real = os.path.join(tmp, "real")
    write_files(real, v_files(1))
    link = os.path.join(tmp, "routes")
    os.symlink(real, link)
    with Server(routes_dir=link, env={"GLASGOW_RELOAD_INTERVAL_MS": "300"}) as s:
        is_(version(s), (1, 1), "serving version 1")
        write_files(real, v_files(2))
        got, dt = wait_version(s, 2, PICKUP + slow(1.0))
        ok(got, "picked up within %.0f s with a 300 ms re-hash interval (%.2f s)" %
           (PICKUP + slow(1.0), dt))


@case(timeout=40)
def check_command():
    tmp = mkdtemp(prefix="glasgow-check-")
    good = os.path.join(tmp, "good")
    write_files(good, v_files(1))
    r = run_glasgow(["check", good])
    is_(r.returncode, 0, "glasgow check exits 0 on a good dir", r.stderr)
    ok(r.stdout.startswith("ok:"), "and prints ok: ...", r.stdout)

    kube = KubeDir(os.path.join(tmp, "kube"), v_files(1))
    r = run_glasgow(["check", kube.path])
    is_(r.returncode, 0, "glasgow check exits 0 on a kubelet-style dir", r.stderr)

    r = run_glasgow(["check", REPO_ROUTES])
    is_(r.returncode, 0, "glasgow check exits 0 on the repository's routes/", r.stderr)

    # the parser reports the syntax error on line 5, where it meets the token it did not expect
    for kind, name, line in (("syntax", "v.lua", 5), ("throws", "v.lua", 2)):
        d = os.path.join(tmp, kind)
        write_files(d, broken_bundle(kind))
        r = run_glasgow(["check", d])
        out = r.stdout + r.stderr
        is_(r.returncode, 1, "glasgow check exits 1 on %s" % kind, out)
        ok(re.search(r"\b%s:%d\b" % (re.escape(name), line), out),
           "its output names %s:%d" % (name, line), out)

    d = os.path.join(tmp, "badroute")
    files = v_files(1)
    files["v.lua"] = files["v.lua"].replace('method = "GET"', 'method = "FETCH"')
    write_files(d, files)
    r = run_glasgow(["check", d])
    is_(r.returncode, 1, "glasgow check exits 1 on an invalid route declaration",
        r.stdout + r.stderr)
    ok(re.search(r"\bv\.lua:\d+", r.stdout + r.stderr), "and names v.lua:LINE",
       r.stdout + r.stderr)

    r = run_glasgow(["check", os.path.join(tmp, "does-not-exist")])
    is_(r.returncode, 1, "glasgow check exits 1 on a missing dir", r.stdout + r.stderr)


if __name__ == "__main__":
    main()
