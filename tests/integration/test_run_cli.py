"""glasgow run / version / usage: scripts get the same library and an event loop."""
import os
import time

from harness import case, main, ok, is_, mkdtemp, ms, run_glasgow, slow


def script(body):
    d = mkdtemp()
    path = os.path.join(d, "s.lua")
    with open(path, "w") as f:
        f.write(body)
    return path


@case
def exit_status_and_args():
    p = run_glasgow(["run", script("return tonumber(arg[1]) + #arg\n"), "40", "x"])
    is_(p.returncode, 42, "the script's integer return value is the exit status")
    p = run_glasgow(["run", script("print(arg[0] ~= nil, arg[1], arg[2])\n"), "a", "b c"])
    is_(p.returncode, 0, "no return value exits 0")
    is_(p.stdout.strip(), "true\ta\tb c", "arg holds the script path and the arguments")


@case
def sleep_uses_the_loop():
    # timers never fire early: at least the whole 300 ms (whole milliseconds
    # of the monotonic clock), and far less than a slow build's 2 s
    body = ("local g = require 'glasgow'\n"
            "local t0 = g.monotonic_ms()\n"
            "g.sleep(300)\n"
            "local dt = g.monotonic_ms() - t0\n"
            "print(dt >= 300 and dt < %d, dt)\n" % int(ms(2000)))
    t0 = time.monotonic()
    p = run_glasgow(["run", script(body)])
    is_(p.returncode, 0, "a sleeping script exits 0", p.stderr)
    is_(p.stdout.split("\t")[0].strip(), "true", "glasgow.sleep waited at least 300 ms, and not "
        "seconds", p.stdout)
    ok(time.monotonic() - t0 < slow(5), "and returned promptly")


@case
def errors_exit_1_with_location():
    p = run_glasgow(["run", script("local x = nil\nreturn x.field\n")])
    is_(p.returncode, 1, "a runtime error exits 1")
    ok("s.lua:2:" in p.stderr, "stderr names file:line", p.stderr)
    p = run_glasgow(["run", script("return {\n")])
    is_(p.returncode, 1, "a syntax error exits 1")
    ok("s.lua:" in p.stderr, "stderr names the file", p.stderr)
    p = run_glasgow(["run", "/nonexistent/x.lua"])
    is_(p.returncode, 1, "a missing file exits 1")


@case
def library_is_available():
    body = ("local json = require 'glasgow.json'\n"
            "local crypto = require 'glasgow.crypto'\n"
            "print(json.encode({a = json.null}), crypto.hex(crypto.sha256('abc')):sub(1, 8))\n")
    p = run_glasgow(["run", script(body)])
    is_(p.returncode, 0, "the framework modules load", p.stderr)
    is_(p.stdout.strip(), '{"a":null}\tba7816bf', "json and crypto work")


@case
def usage_and_version():
    p = run_glasgow(["version"])
    ok(p.returncode == 0 and p.stdout.startswith("glasgow "), "version prints and exits 0")
    p = run_glasgow(["frobnicate"])
    is_(p.returncode, 2, "an unknown command exits 2")
    ok("usage" in p.stderr, "and prints the usage")
    p = run_glasgow([])
    is_(p.returncode, 2, "no command exits 2")
    p = run_glasgow(["migrate"])
    is_(p.returncode, 1, "migrate without a database exits 1")
    ok("DATABASE_URL" in p.stderr, "naming DATABASE_URL", p.stderr)


if __name__ == "__main__":
    main()
