"""Runaway Lua: handlers that never yield, allocate without bound or sit in
one long C call; route files whose top level never finishes. Each must be
stopped (or, where nothing inside the process can stop it, reported by
/livez and the process replaced) while the server keeps answering."""
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (GLASGOW_BIN, REPO, Server, case, diag, is_, join_all, main, ms,  # noqa: E402
                     ok, slow, start_threads, wait_until, write_files)

# The limits below are scaled by ms() (4x under SAN=1) and chosen so that what
# a case tells apart stays far apart on a loaded 2-core machine: a runaway
# stopped at a limit of a second or more against a legitimate handler of
# 50 ms, and elapsed-time bounds of the configured limits plus seconds of slack.

# How long /sleep sleeps: it must still be running when the stuck worker is
# detected (after the run limit and the stuck grace, ms(1000) together in
# stuck_in_c_is_reported_and_the_process_replaced) and end well inside the
# drain that follows.
SLEEP_MS = int(ms(1000)) + 2000

ROUTES = {
    "runaway.lua": r'''
local function spin() while true do end end
return {
    { method = "GET", path = "/spin", handler = function() spin() end },
    { method = "GET", path = "/spin-pcall", handler = function()
        -- swallows every error it can: the stop must get through anyway
        while true do pcall(spin) end
    end },
    { method = "GET", path = "/spin-coroutine", handler = function()
        local co = coroutine.wrap(function() local x = 0 while true do x = x + 1 end end)
        while true do pcall(co) end
    end },
    { method = "GET", path = "/spin-strings", handler = function()
        local n = 0
        while true do n = n + #string.rep("x", 10) end
    end },
    { method = "GET", path = "/alloc", handler = function()
        local t, i = {}, 0
        while true do i = i + 1; t[i] = string.rep("x", 4096) .. i end
    end },
    { method = "GET", path = "/alloc-pcall", handler = function()
        local keep = {}
        while true do
            pcall(function() while true do keep[#keep + 1] = string.rep("y", 8192) .. #keep end end)
        end
    end },
    { method = "GET", path = "/alloc-huge", handler = function()
        -- single allocations far past the cap, in a loop that swallows errors
        local n = 0
        while true do
            local ok = pcall(string.rep, "x", 2 ^ 29)
            if not ok then n = n + 1 end
        end
    end },
    { method = "GET", path = "/alloc-concat", handler = function()
        local s = "x"
        while true do s = s .. s end
    end },
    { method = "GET", path = "/c-stuck", handler = function()
        -- one C call that runs for hours: no hook can interrupt it
        return 200, { n = string.find(string.rep("a", 300000), ".-.-.-.-b") }
    end },
    { method = "GET", path = "/ok", handler = function() return 200, { ok = true } end },
    { method = "GET", path = "/sleep", handler = function()
        require("glasgow").sleep(SLEEP_MS)
        return 200, { slept = true }
    end },
    { method = "GET", path = "/work", handler = function()
        -- a legitimate 50 ms of computation stays under the run limit
        local t0, x = os.clock(), 0
        while os.clock() - t0 < 0.05 do x = x + 1 end
        return 200, { ok = true }
    end },
}
'''.replace("SLEEP_MS", str(SLEEP_MS))
}


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def terminate(s, timeout):
    """Sends SIGTERM; returns (exit status or None if still running, seconds)."""
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    try:
        rc = s.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        rc = None
    return rc, time.monotonic() - t0


def timed_get(s, path, timeout=10):
    t0 = time.monotonic()
    try:
        r = s.get(path, timeout=timeout)
        return r, time.monotonic() - t0
    except Exception as e:  # noqa: BLE001
        return e, time.monotonic() - t0


@case(timeout=60)
def busy_handlers_stop_at_the_run_limit():
    limit = int(ms(1000))
    env = {"GLASGOW_LUA_RUN_LIMIT_MS": str(limit), "GLASGOW_REQUEST_TIMEOUT_MS": "60000"}
    with Server(files=ROUTES, env=env) as s:
        for path in ("/spin", "/spin-pcall", "/spin-coroutine", "/spin-strings"):
            r, dt = timed_get(s, path, timeout=30)
            st = getattr(r, "status", r)
            is_(st, 504, "%s answers 504" % path)
            ok(dt < limit / 1e3 + slow(2.0), "%s stopped near the %d ms run limit, long before "
               "the 60 s request deadline (%.2f s)" % (path, limit, dt))
            body = r.json_or_none() if hasattr(r, "json_or_none") else None
            is_((body or {}).get("error", {}).get("code"), "handler_timeout",
                "%s: error code handler_timeout" % path)
        is_(s.metric("glasgow_lua_stopped_total", reason="run_limit"), 4,
            "glasgow_lua_stopped_total{reason=run_limit} counts the four")
        is_(s.get("/work").status, 200, "a handler that computes for 50 ms is not stopped")
        is_(s.get("/ok").status, 200, "the worker serves normally afterwards")
        is_(s.admin("/livez").status, 200, "/livez stays 200: nothing is stuck")
        logs = s.stdout()
        ok("runaway.lua:2: the handler ran too long without yielding" in logs,
           "the log names the file and line the handler was stopped at", logs[-1500:])


@case(timeout=60)
def request_deadline_stops_a_busy_handler():
    deadline = int(ms(500))
    env = {"GLASGOW_LUA_RUN_LIMIT_MS": "0", "GLASGOW_REQUEST_TIMEOUT_MS": str(deadline)}
    with Server(files=ROUTES, env=env) as s:
        r, dt = timed_get(s, "/spin", timeout=30)
        is_(getattr(r, "status", r), 504, "a never-yielding handler gets its 504")
        is_((r.json_or_none() or {}).get("error", {}).get("code"), "deadline_exceeded",
            "the code says the request deadline passed")
        ok(0.8 * deadline / 1e3 < dt < deadline / 1e3 + slow(2.0),
           "at the %d ms request deadline (%.2f s)" % (deadline, dt))
        is_(s.metric("glasgow_lua_stopped_total", reason="deadline"), 1,
            "glasgow_lua_stopped_total{reason=deadline} counts it")


@case(timeout=60)
def runaways_on_every_worker_do_not_stop_the_server():
    limit = int(ms(500))
    env = {"GLASGOW_LUA_RUN_LIMIT_MS": str(limit), "GLASGOW_WORKERS": "2"}
    with Server(files=ROUTES, env=env) as s:
        results = {}

        def hit(key, path):
            results[key] = timed_get(s, path, timeout=slow(10))

        threads = start_threads([lambda i=i: hit("spin%d" % i, "/spin") for i in range(4)])
        time.sleep(0.1)
        live = s.admin("/livez", timeout=slow(2))
        is_(live.status, 200, "/livez answers while every worker runs a runaway handler")
        r, dt = timed_get(s, "/ok", timeout=slow(10))
        is_(getattr(r, "status", r), 200, "a normal request is served once the runaways stop")
        # at most two rounds of two runaways are ahead of it
        ok(dt < 2 * limit / 1e3 + slow(2.0), "within a few run limits (%.2f s), not never" % dt)
        join_all(threads, slow(10))
        sts = sorted(getattr(v[0], "status", repr(v[0])) for v in results.values())
        is_(sts, [504] * 4, "all four runaway requests got 504")
        t0 = time.monotonic()
        sts = [s.get("/ok").status for _ in range(20)]
        is_(sts, [200] * 20, "20 requests afterwards all 200 (%.2f s)" % (time.monotonic() - t0))


@case(timeout=90)
def memory_cap_stops_unbounded_allocation():
    env = {"GLASGOW_LUA_MEMORY_LIMIT": "48m", "GLASGOW_WORKERS": "1"}
    with Server(files=ROUTES, env=env) as s:
        base = rss_kb(s.proc.pid)
        for path in ("/alloc", "/alloc-pcall", "/alloc-huge", "/alloc-concat", "/alloc"):
            r, dt = timed_get(s, path, timeout=20)
            is_(getattr(r, "status", r), 500, "%s is stopped by the memory cap with 500" % path)
            is_((r.json_or_none() or {}).get("error", {}).get("code"), "internal",
                "%s: the usual internal error body" % path)
            peak = rss_kb(s.proc.pid)
            diag("%s: %.2f s, RSS %d KiB -> %d KiB" % (path, dt, base, peak))
            ok(peak - base < 200 * 1024,
               "%s: the process grew by %d MiB, not gigabytes" % (path, (peak - base) // 1024))
            is_(s.get("/ok").status, 200, "the same state serves the next request after %s" % path)
        is_(s.metric("glasgow_lua_stopped_total", reason="memory"), 5,
            "glasgow_lua_stopped_total{reason=memory} counts the five")
        ok("the Lua memory limit (50331648 bytes) was reached" in s.stdout(), "the log says the memory limit was reached")
        is_(s.admin("/livez").status, 200, "/livez 200")


@case(timeout=60)
def stuck_in_c_is_reported_and_the_process_replaced():
    # /sleep is still running when the stuck worker is detected (run + grace),
    # so that /livez is 503 while the healthy worker drains; the drain (the
    # shutdown grace) outlasts it by seconds.
    run, grace = int(ms(300)), int(ms(700))
    drain = SLEEP_MS + 3000
    env = {"GLASGOW_LUA_RUN_LIMIT_MS": str(run), "GLASGOW_STUCK_GRACE_MS": str(grace),
           "GLASGOW_SHUTDOWN_GRACE_MS": str(drain), "GLASGOW_WORKERS": "2"}
    wait = slow(8) + drain / 1e3
    with Server(files=ROUTES, env=env) as s:
        t0 = time.monotonic()
        res = {}
        th = start_threads([lambda: res.setdefault("c", timed_get(s, "/c-stuck", timeout=wait))])
        # connections a worker accepted just before it got stuck stay with it:
        # give it time to take this one (nothing observable says it has)
        time.sleep(slow(0.3))
        # the other worker keeps serving until the drain starts, and drains
        is_(s.get("/ok", timeout=slow(2)).status, 200, "the other worker serves while one is stuck")
        th += start_threads([lambda: res.setdefault("sleep", timed_get(s, "/sleep",
                                                                       timeout=wait))])
        statuses = []

        def livez():
            try:
                r = s.admin("/livez", timeout=0.5)
                statuses.append((r.status, r.json_or_none()))
                return r.status == 503
            except OSError as e:
                statuses.append(repr(e))
                return False
        seen = wait_until(livez, (run + grace) / 1e3 + slow(3.0), 0.05)
        dt = time.monotonic() - t0
        ok(seen, "/livez turns 503 for the stuck worker (after %.2f s)" % dt, statuses[-3:])
        if seen:
            try:
                stuck = s.metric("glasgow_stuck_threads")
            except OSError as e:
                stuck = repr(e)
            is_(stuck, 1, "glasgow_stuck_threads says 1")
            body = statuses[-1][1] or {}
            is_(body.get("status"), "stuck", "/livez says stuck")
            ok("/c-stuck" in body.get("detail", ""), "and names the request's route",
               body)
        bound = (run + grace + drain) / 1e3 + slow(2.0)
        try:
            rc = s.proc.wait(timeout=bound + 2)
        except subprocess.TimeoutExpired:
            rc = None
        dt = time.monotonic() - t0
        is_(rc, 70, "the process exits 70 for its orchestrator to restart it")
        ok(rc is not None and dt < bound, "within deadline + stuck grace + shutdown grace + "
           "slack (%.2f s < %.1f s)" % (dt, bound))
        join_all(th, slow(5))
        is_(getattr(res.get("sleep", (None,))[0], "status", None), 200,
            "the request in flight on the healthy worker finished during the drain")
        ok("is stuck" in s.stdout(), "the log says which thread is stuck and why")


@case(timeout=60)
def sigterm_stops_busy_handlers_within_the_grace():
    grace = int(ms(500))
    env = {"GLASGOW_LUA_RUN_LIMIT_MS": "0", "GLASGOW_REQUEST_TIMEOUT_MS": "60000",
           "GLASGOW_SHUTDOWN_GRACE_MS": str(grace), "GLASGOW_WORKERS": "2"}
    with Server(files=ROUTES, env=env) as s:
        res = []
        th = start_threads([lambda: res.append(timed_get(s, "/spin", timeout=slow(10)))] * 2)
        time.sleep(slow(0.3))  # for both workers to be in the handlers (nothing says so)
        rc, dt = terminate(s, slow(8))
        is_(rc, 0, "SIGTERM with two never-yielding handlers exits 0", s.stderr()[-500:])
        ok(rc is not None and dt < grace / 1e3 + slow(2.0),
           "within the %d ms grace plus flushing (%.2f s)" % (grace, dt))
        join_all(th, slow(5))
        sts = sorted(getattr(r, "status", "error") for r, _ in res)
        is_(sts, [503, 503], "the stopped requests were answered 503 shutting_down")


@case(timeout=60)
def sigterm_exits_even_when_stuck_in_c():
    grace = int(ms(500))
    env = {"GLASGOW_REQUEST_TIMEOUT_MS": "60000", "GLASGOW_STUCK_GRACE_MS": "60000",
           "GLASGOW_SHUTDOWN_GRACE_MS": str(grace), "GLASGOW_WORKERS": "2"}
    with Server(files=ROUTES, env=env) as s:
        th = start_threads([lambda: timed_get(s, "/c-stuck", timeout=slow(8))])
        time.sleep(slow(0.3))  # for a worker to be in the C call (nothing says so)
        rc, dt = terminate(s, slow(10))
        is_(rc, 70, "SIGTERM with a worker stuck in C exits, with status 70")
        ok(rc is not None and dt < grace / 1e3 + 0.5 + slow(1.5),
           "within the grace plus 500 ms to call it stuck (%.2f s)" % dt)
        join_all(th, slow(5))


LOOPING_TOP = "local x = 0\nwhile true do x = x + 1 end\nreturn {}\n"
C_STUCK_TOP = 'local n = string.find(string.rep("a", 300000), ".-.-.-.-b")\nreturn {}\n'
ALLOC_TOP = "local t = {}\nwhile true do t[#t + 1] = string.rep('z', 65536) .. #t end\nreturn {}\n"
GOOD = 'return { { method = "GET", path = "/v", handler = function() return 200, { v = %d } end } }\n'


@case(timeout=90)
def reload_refuses_bundles_that_never_finish_loading():
    env = {"GLASGOW_ROUTES_LOAD_TIMEOUT_MS": ms(400), "GLASGOW_LUA_MEMORY_LIMIT": "32m"}
    with Server(files={"v.lua": GOOD % 1}, env=env) as s:
        is_(s.get("/v").json()["v"], 1, "generation 1 serves")
        for name, text, want in (("loop.lua", LOOPING_TOP, "loop.lua:2: loading did not finish"),
                                 ("alloc.lua", ALLOC_TOP, "the Lua memory limit was reached")):
            before = s.metric("glasgow_routes_reloads_total", result="failure") or 0
            t0 = time.monotonic()
            write_files(s.routes_dir, {name: text})
            failed = wait_until(lambda: (s.metric("glasgow_routes_reloads_total",
                                                  result="failure") or 0) > before, slow(8.0))
            ok(failed, "%s: the reload is refused (%.2f s)" % (name, time.monotonic() - t0))
            ok(want in s.stdout(), "%s: the log names it: %r" % (name, want), s.stdout()[-800:])
            is_(s.get("/v").json()["v"], 1, "%s: the old generation keeps serving" % name)
            os.remove(os.path.join(s.routes_dir, name))
        write_files(s.routes_dir, {"v.lua": GOOD % 2})
        ok(wait_until(lambda: s.get("/v").json().get("v") == 2, slow(8.0)),
           "a later good bundle is published")
        is_(s.admin("/livez").status, 200, "/livez 200 throughout")


@case(timeout=60)
def reload_stuck_in_c_keeps_serving():
    load, grace, drain = int(ms(300)), int(ms(500)), int(ms(500))
    env = {"GLASGOW_ROUTES_LOAD_TIMEOUT_MS": str(load), "GLASGOW_STUCK_GRACE_MS": str(grace),
           "GLASGOW_SHUTDOWN_GRACE_MS": str(drain)}
    with Server(files={"v.lua": GOOD % 1}, env=env) as s:
        write_files(s.routes_dir, {"stuck.lua": C_STUCK_TOP})
        logged = wait_until(lambda: "routes reload is stuck loading stuck.lua" in s.stdout(),
                            slow(8.0))
        ok(logged, "the log says the reload is stuck, naming the file", s.stdout()[-600:])
        is_(s.get("/v").json()["v"], 1, "the serving generation keeps serving")
        is_(s.admin("/livez").status, 200, "/livez stays 200: a restart would load the same "
            "bundle and stick at start-up")
        ok(s.metric("glasgow_routes_reloads_total", result="failure") >= 1,
           "the stuck reload counts as a failed reload")
        rc, dt = terminate(s, slow(8))
        is_(rc, 70, "SIGTERM exits, with status 70 since the reload thread is left behind")
        ok(rc is not None and dt < (drain + grace) / 1e3 + slow(4.0),
           "within the grace plus the join slack (%.2f s)" % dt)


@case(timeout=60)
def startup_stuck_in_c_exits():
    d = tempfile.mkdtemp(prefix="glasgow-stuck-")
    write_files(d, {"stuck.lua": C_STUCK_TOP})
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLASGOW_")}
    load, grace = int(ms(300)), int(ms(500))
    env.update({"GLASGOW_ROUTES_DIR": d, "GLASGOW_ROUTES_LOAD_TIMEOUT_MS": str(load),
                "GLASGOW_STUCK_GRACE_MS": str(grace), "GLASGOW_LISTEN": "127.0.0.1:0",
                "GLASGOW_ADMIN_LISTEN": "127.0.0.1:0"})
    t0 = time.monotonic()
    p = subprocess.run([GLASGOW_BIN, "serve"], env=env, cwd=REPO, capture_output=True,
                       text=True, timeout=30)
    dt = time.monotonic() - t0
    is_(p.returncode, 70, "a start-up stuck in one C call exits 70")
    ok(dt < (load + grace) / 1e3 + slow(3.0),
       "after the load timeout and the stuck grace (%.2f s)" % dt)
    ok("stuck loading stuck.lua" in p.stdout + p.stderr, "naming the file",
       (p.stdout + p.stderr)[-500:])


def run_check(files, env):
    d = tempfile.mkdtemp(prefix="glasgow-check-")
    write_files(d, files)
    full = {k: v for k, v in os.environ.items() if not k.startswith("GLASGOW_")}
    full.update(env)
    t0 = time.monotonic()
    p = subprocess.run([GLASGOW_BIN, "check", d], env=full, cwd=REPO, capture_output=True,
                       text=True, timeout=30)
    return p.returncode, p.stdout + p.stderr, time.monotonic() - t0


@case(timeout=90)
def check_refuses_bundles_that_never_finish_loading():
    load, grace = int(ms(300)), int(ms(500))
    env = {"GLASGOW_ROUTES_LOAD_TIMEOUT_MS": str(load), "GLASGOW_STUCK_GRACE_MS": str(grace),
           "GLASGOW_LUA_MEMORY_LIMIT": "32m"}
    rc, out, dt = run_check({"loop.lua": LOOPING_TOP}, env)
    is_(rc, 1, "glasgow check exits 1 on a top level that loops forever")
    ok("loop.lua:2: loading did not finish within %d ms" % load in out, "naming file and line",
       out)
    ok(dt < load / 1e3 + slow(2.7), "promptly (%.2f s)" % dt)
    rc, out, dt = run_check({"stuck.lua": C_STUCK_TOP}, env)
    is_(rc, 1, "glasgow check exits 1 on a top level stuck in one C call")
    ok("stuck.lua" in out and "did not finish" in out, "naming the file", out)
    ok(dt < (load + grace) / 1e3 + slow(3.2),
       "after the load timeout and the stuck grace (%.2f s)" % dt)
    rc, out, dt = run_check({"alloc.lua": ALLOC_TOP}, env)
    is_(rc, 1, "glasgow check exits 1 on a top level that allocates without bound")
    ok("alloc.lua:2: the Lua memory limit was reached" in out, "naming file and line", out)
    rc, out, dt = run_check({"v.lua": GOOD % 1}, env)
    is_(rc, 0, "a good bundle still checks ok", out)


if __name__ == "__main__":
    main()
