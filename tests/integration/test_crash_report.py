"""A crash leaves its cause in the log: on a fatal signal the server writes
one line naming the signal and its call stack to stderr, then dies of that
signal (sanitizer builds leave it to the sanitizer's own report)."""
import os
import re
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SAN, Server, case, is_, main, ok, slow  # noqa: E402


def crash(sig):
    with Server() as s:
        is_(s.get("/hello").status, 200, "the server answers before the signal")
        os.kill(s.proc.pid, sig)
        try:
            s.proc.wait(timeout=slow(10))
        except Exception:
            pass
        rc = s.proc.poll()
        err = s.stderr()
    return rc, err


@case
def segv_prints_signal_and_stack():
    rc, err = crash(signal.SIGSEGV)
    if SAN:
        ok("AddressSanitizer" in err and "SEGV" in err,
           "sanitizer build: the sanitizer reports the SEGV", err[-400:])
        return
    is_(rc, -signal.SIGSEGV, "the process dies of the signal (so a core dump can follow)")
    ok("glasgow: fatal signal 11\n" in err, "one line names the signal", err[-400:])
    frames = re.findall(r"glasgow\(\+0x[0-9a-f]+\)", err)
    ok(len(frames) >= 2, "with the binary's frames as offsets addr2line resolves",
       err[-600:])


@case
def abort_prints_signal_and_stack():
    rc, err = crash(signal.SIGABRT)
    if SAN:
        ok(rc is not None and rc != 0, "sanitizer build: the process ends", rc)
        return
    is_(rc, -signal.SIGABRT, "SIGABRT: the process dies of it")
    ok("glasgow: fatal signal 6\n" in err, "one line names it", err[-400:])
    ok(re.search(r"glasgow\(\+0x[0-9a-f]+\)", err) is not None, "with a stack", err[-400:])


if __name__ == "__main__":
    main()
