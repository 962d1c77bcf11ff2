"""Shared helpers for Glasgow's integration tests.

Standard library only. Every test file imports this module, declares its
cases with @case, and calls main(). Output is TAP: "ok N - name" /
"not ok N - name" lines, "# ..." diagnostics, and the plan "1..N" printed
last, even when a case raises (the exception becomes a "not ok").

Everything is bounded in time: sockets have timeouts, waits have
deadlines, and each case runs under an alarm so a hang is reported as a
failure instead of stalling the suite. Servers listen on loopback ports
picked at run time and are always killed when their `with` block ends.

Run one file:   GLASGOW_BIN=build/glasgow python3 tests/integration/test_reload.py
Run some cases: ... test_reload.py check_command plain_directory_edits
Keep temp dirs (routes, server stdout/stderr) for a post-mortem: GLASGOW_KEEP_TMP=1
"""
import errno
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
GLASGOW_BIN = os.path.abspath(os.environ.get("GLASGOW_BIN", os.path.join(REPO, "build", "glasgow")))
REPO_ROUTES = os.path.join(REPO, "routes")
_BIN_EXISTED = os.path.exists(GLASGOW_BIN)
HOST = "127.0.0.1"

# Sanitizer builds (make test SAN=1: tests/run-all exports GLASGOW_TEST_SAN=1
# for a BUILD named *san*) run several times slower, and CI runs on 2 shared
# cores. Tests that configure short limits for speed scale them with ms(),
# and bounds on elapsed time with slow(), so that the behaviours a test tells
# apart (stopped at the limit / not stopped) stay separated by a wide margin.
SAN = os.environ.get("GLASGOW_TEST_SAN") == "1" or \
    os.path.basename(os.path.dirname(GLASGOW_BIN)).endswith("san")
SLOW = float(os.environ.get("GLASGOW_TEST_SLOW") or (4 if SAN else 1))


def slow(seconds):
    """A bound in seconds, scaled for slow builds (GLASGOW_TEST_SLOW, 4 under SAN)."""
    return seconds * SLOW


def ms(n):
    """n milliseconds scaled like slow(), as the string a GLASGOW_*_MS variable takes."""
    return str(int(n * SLOW))

# ---- TAP ---------------------------------------------------------------------------

_lock = threading.Lock()
_count = 0
_failed = 0
_cases = []


_planned = None


def plan(n):
    """Prints the plan "1..n" up front (optional: main() prints "1..N" at the end otherwise)."""
    global _planned
    _planned = n
    print("1..%d" % n, flush=True)


def ok(cond, name, *diags):
    """Records one test result; extra arguments are printed as diagnostics on failure."""
    global _count, _failed
    with _lock:
        _count += 1
        line = "%s %d - %s" % ("ok" if cond else "not ok", _count, name.replace("\n", " "))
        print(line, flush=True)
        if not cond:
            _failed += 1
            for d in diags:
                diag(d)
    return bool(cond)


def is_(got, want, name, *diags):
    """ok(got == want) with both values shown on failure."""
    return ok(got == want, name, "     got: %r" % (got,), "expected: %r" % (want,), *diags)


def diag(msg):
    for line in str(msg).splitlines() or [""]:
        print("# " + line, flush=True)


def case(fn=None, timeout=60):
    """Decorator: registers a test case; it runs under an alarm of `timeout` seconds."""
    def register(f):
        _cases.append((f, timeout))
        return f
    if fn is not None:
        return register(fn)
    return register


class CaseTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise CaseTimeout("case exceeded its time limit")


def main(fixture=None):
    """Runs every registered case (or those named in argv); prints the plan at the end.

    fixture: an optional context manager (e.g. a Server) entered once; each
    case is then called with it as its argument.
    """
    global _failed
    only = set(sys.argv[1:])
    signal.signal(signal.SIGALRM, _on_alarm)
    t_all = time.monotonic()
    fx = None
    try:
        if fixture is not None:
            try:
                fx = fixture.__enter__()
            except Exception as e:  # noqa: BLE001
                ok(False, "fixture: raised %s: %s" % (type(e).__name__, e), traceback.format_exc())
                return
        for fn, timeout in _cases:
            if only and fn.__name__ not in only:
                continue
            diag("case %s" % fn.__name__)
            t0 = time.monotonic()
            signal.alarm(timeout)
            try:
                fn(fx) if fixture is not None else fn()
            except BaseException as e:  # noqa: BLE001 - a crash is a failed test, not a dead suite
                signal.alarm(0)
                ok(False, "%s: raised %s: %s" % (fn.__name__, type(e).__name__, e),
                   traceback.format_exc())
                if isinstance(e, KeyboardInterrupt):
                    break
            finally:
                signal.alarm(0)
            diag("case %s took %.1f s" % (fn.__name__, time.monotonic() - t0))
    finally:
        if fx is not None:
            try:
                fixture.__exit__(None, None, None)
            except Exception as e:  # noqa: BLE001
                ok(False, "fixture teardown: raised %s: %s" % (type(e).__name__, e))
        for proc in list(_live_procs):  # a server a case left behind (e.g. alarm in __exit__)
            if proc.poll() is None:
                proc.kill()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        if not os.environ.get("GLASGOW_KEEP_TMP"):
            for d in _tmpdirs:
                shutil.rmtree(d, ignore_errors=True)
        diag("total %.1f s" % (time.monotonic() - t_all))
        if _planned is None:
            print("1..%d" % _count, flush=True)
        elif _planned != _count:
            diag("planned %d tests but ran %d" % (_planned, _count))
            _failed += 1
        sys.stdout.flush()
        os._exit(1 if _failed else 0)  # daemon threads still blocked in sockets must not delay exit


_tmpdirs = []
_live_procs = set()


def mkdtemp(prefix="glasgow-it-"):
    """A temporary directory removed when main() ends (kept if GLASGOW_KEEP_TMP is set)."""
    d = tempfile.mkdtemp(prefix=prefix)
    _tmpdirs.append(d)
    return d


# ---- ports, waiting --------------------------------------------------------------------

def free_port():
    """A loopback port that was free a moment ago."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_until(pred, timeout, interval=0.05):
    """Polls pred() until it returns a true value or timeout seconds pass; returns the last
    value (exceptions count as "not yet")."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            v = pred()
        except Exception:  # noqa: BLE001 - "not yet" for the poller
            v = None
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


# ---- HTTP clients ------------------------------------------------------------------------

class Response:
    """A parsed HTTP response: status, lower-cased headers (dict of lists), body bytes."""

    def __init__(self, status, headers, body, reason=""):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def header(self, name, default=None):
        v = self.headers.get(name.lower())
        return v[0] if v else default

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def json_or_none(self):
        try:
            return self.json()
        except (ValueError, UnicodeDecodeError):
            return None

    def __repr__(self):
        return "<Response %s %r %r>" % (self.status, self.headers, self.body[:200])


def _headers_of(msg_headers):
    out = {}
    for k, v in msg_headers:
        out.setdefault(k.lower(), []).append(v)
    return out


class Client:
    """A keep-alive HTTP/1.1 client on one connection (http.client); tls: an SSLContext."""

    def __init__(self, port, timeout=5.0, tls=None, host=HOST, server_hostname=None):
        if tls is not None:
            self.conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=tls)
            if server_hostname:
                self.conn.host = server_hostname
        else:
            self.conn = http.client.HTTPConnection(host, port, timeout=timeout)

    def request(self, method, path, body=None, headers=None):
        h = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        self.conn.request(method, path, body=body, headers=h)
        r = self.conn.getresponse()
        data = r.read()
        return Response(r.status, _headers_of(r.getheaders()), data, r.reason)

    def get(self, path, headers=None):
        return self.request("GET", path, headers=headers)

    @property
    def sock(self):
        return self.conn.sock

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def request(port, method, path, body=None, headers=None, timeout=5.0, tls=None):
    """One request on a fresh connection."""
    with Client(port, timeout=timeout, tls=tls) as c:
        return c.request(method, path, body, headers)


class RawResult:
    """What a raw exchange produced.

    outcome: "response" (a whole response was read), "closed" (the server
    closed before a whole response), "reset" (connection reset or refused),
    or "timeout". status/headers/body are set when a status line arrived.
    """

    def __init__(self):
        self.outcome = None
        self.status = None
        self.headers = {}
        self.body = b""
        self.raw = b""
        self.elapsed = 0.0
        self.interim = []

    def header(self, name, default=None):
        v = self.headers.get(name.lower())
        return v[0] if v else default

    def json_or_none(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None

    def __iter__(self):
        """Unpacks as (status, headers, body); status is None when no response came."""
        return iter((self.status, self.headers, self.body))

    def __repr__(self):
        return "<RawResult %s status=%s body=%r raw=%r>" % (self.outcome, self.status,
                                                             self.body[:200], self.raw[:300])


def _parse_head(buf):
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", lines[0])
    status = int(m.group(1)) if m else None
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(b":")
        headers.setdefault(k.strip().lower().decode("latin-1"), []).append(
            v.strip().decode("latin-1"))
    return status, headers, rest


def _dechunk(data):
    """Returns the decoded body if data holds a whole chunked body, else None."""
    out = b""
    pos = 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(data[pos:eol].split(b";")[0].strip() or b"0", 16)
        pos = eol + 2
        if size == 0:
            return out if data.find(b"\r\n", pos) >= 0 else None
        if len(data) < pos + size + 2:
            return None
        out += data[pos:pos + size]
        pos += size + 2


def _complete(res, buf, head_request):
    """Fills res from buf and says whether buf holds a whole response."""
    res.interim = []
    while True:
        if b"\r\n\r\n" not in buf:
            return False
        res.status, res.headers, rest = _parse_head(buf)
        if res.status is None or res.status >= 200 or res.status == 101:
            break
        res.interim.append(res.status)  # 100 Continue and the like: the answer follows
        buf = rest
    if head_request or res.status in (101, 204, 304):
        res.body = b""
        return True
    cl = res.header("content-length")
    if cl is not None and cl.isdigit():
        res.body = rest[:int(cl)]
        return len(rest) >= int(cl)
    if "chunked" in (res.header("transfer-encoding") or "").lower():
        body = _dechunk(rest)
        if body is None:
            res.body = rest
            return False
        res.body = body
        return True
    res.body = rest
    return False  # delimited by close


def _read_into(res, s, deadline, head_request=False):
    """Reads from socket s until a whole response (res.outcome "response"), the peer's close
    or reset, or the deadline; fills res and returns the bytes read."""
    buf = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            res.outcome = "timeout"
            return buf
        s.settimeout(left)
        try:
            got = s.recv(65536)
        except socket.timeout:
            res.outcome = "timeout"
            return buf
        except (ConnectionResetError, ssl.SSLError, OSError):
            res.outcome = "reset"
            return buf
        if not got:
            res.outcome = "closed"
            return buf
        buf += got
        if _complete(res, buf, head_request):
            res.outcome = "response"
            return buf


def read_response(s, timeout):
    """Reads one response from an open socket s (a RawResult, as raw() returns)."""
    res = RawResult()
    t0 = time.monotonic()
    res.raw = _read_into(res, s, t0 + timeout)
    res.elapsed = time.monotonic() - t0
    return res


def raw(port, data, timeout=5.0, head_request=False, chunks=None, chunk_delay=0.0,
        tls=None, host=HOST):
    """Sends raw bytes on a fresh connection and reads one response.

    data: bytes sent at once (or None); chunks: an optional list of byte
    strings sent one by one with chunk_delay seconds between them.
    Returns a RawResult; never raises for network outcomes.
    """
    res = RawResult()
    t0 = time.monotonic()
    deadline = t0 + timeout
    buf = b""
    try:
        s = socket.create_connection((host, port), timeout=timeout)
    except (ConnectionError, socket.timeout, OSError) as e:
        res.outcome = "reset"
        res.error = e
        return res
    try:
        if tls is not None:
            s = tls.wrap_socket(s, server_hostname="localhost")
        try:
            if data:
                s.sendall(data)
            for c in chunks or []:
                if chunk_delay:
                    time.sleep(chunk_delay)
                s.sendall(c)
        except (BrokenPipeError, ConnectionResetError, socket.timeout, ssl.SSLError, OSError):
            pass  # the server may answer and close before reading everything: read what it sent
        buf = _read_into(res, s, deadline, head_request)
        if res.outcome != "response":
            _complete(res, buf, head_request)
            if res.outcome == "closed" and res.status is not None and \
                    res.header("content-length") is None and \
                    "chunked" not in (res.header("transfer-encoding") or ""):
                res.outcome = "response"  # close-delimited body
    finally:
        try:
            s.close()
        except OSError:
            pass
    res.raw = buf
    res.elapsed = time.monotonic() - t0
    return res


# ---- the server under test -----------------------------------------------------------

DEFAULT_ENV = {
    "GLASGOW_WORKERS": "2",
    "GLASGOW_RELOAD_DEBOUNCE_MS": "50",
    "GLASGOW_RELOAD_INTERVAL_MS": "500",
    "GLASGOW_SHUTDOWN_GRACE_MS": "3000",
    "GLASGOW_LOG_LEVEL": "info",
}


def write_files(directory, files):
    """Writes {name: text} into directory (creating it)."""
    os.makedirs(directory, exist_ok=True)
    for name, text in files.items():
        path = os.path.join(directory, name)
        tmp = path + ".tmp~"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)


class ServerError(Exception):
    pass


def spawn(argv, **kw):
    """subprocess.Popen, retried for up to 10 s while the binary is being relinked
    (EACCES/ETXTBSY/ENOENT from a concurrent `make`)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return subprocess.Popen(argv, **kw)
        except OSError as e:
            relinking = e.errno in (errno.EACCES, errno.ETXTBSY) or \
                (e.errno == errno.ENOENT and _BIN_EXISTED)
            if not relinking or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class Server:
    """Runs `glasgow serve` for the length of a `with` block.

    files: {name: text} written into a fresh temporary routes dir; or
    routes_dir: an existing directory (default: the repository's routes/).
    env: overrides on top of DEFAULT_ENV. tls: (cert_file, key_file).
    """

    def __init__(self, files=None, routes_dir=None, env=None, tls=None, start_timeout=10.0,
                 wait_ready=True):
        self.files = files
        self.routes_dir = routes_dir
        self.env_overrides = dict(env or {})
        self.tls_files = tls
        self.start_timeout = start_timeout
        self.wait_ready = wait_ready
        self.proc = None
        self.tmp = None
        self.port = None
        self.admin_port = None

    # -- start / stop --

    def __enter__(self):
        self.tmp = tempfile.mkdtemp(prefix="glasgow-it-")
        if self.files is not None:
            self.routes_dir = os.path.join(self.tmp, "routes")
            write_files(self.routes_dir, self.files)
        elif self.routes_dir is None:
            self.routes_dir = REPO_ROUTES
        for attempt in range(3):  # a port picked free may be taken before we bind it
            try:
                self._start()
                return self
            except BaseException as e:
                self._kill()
                if not (isinstance(e, ServerError) and "cannot listen" in str(e)) or attempt == 2:
                    self._cleanup()
                    raise

    def _start(self):
        self.port = free_port()
        self.admin_port = free_port()
        while self.admin_port == self.port:
            self.admin_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GLASGOW_")}
        env.update(DEFAULT_ENV)
        env["GLASGOW_LISTEN"] = "%s:%d" % (HOST, self.port)
        env["GLASGOW_ADMIN_LISTEN"] = "%s:%d" % (HOST, self.admin_port)
        env["GLASGOW_ROUTES_DIR"] = self.routes_dir
        if self.tls_files:
            env["GLASGOW_TLS_CERT_FILE"], env["GLASGOW_TLS_KEY_FILE"] = self.tls_files
        env.update(self.env_overrides)
        self.stdout_path = os.path.join(self.tmp, "stdout.log")
        self.stderr_path = os.path.join(self.tmp, "stderr.log")
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = spawn([GLASGOW_BIN, "serve"], env=env, stdin=subprocess.DEVNULL,
                          stdout=self._out, stderr=self._err, cwd=REPO)
        _live_procs.add(self.proc)
        if not self.wait_ready:
            return
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError("glasgow exited with %s before answering /livez: %s" %
                                  (self.proc.returncode, self.stderr().strip()[-2000:]))
            try:
                if self.admin("/livez", timeout=0.5).status == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.05)
        raise ServerError("glasgow did not answer /livez within %.0f s: %s" %
                          (self.start_timeout, self.stderr().strip()[-2000:]))

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc:
            _live_procs.discard(self.proc)
        for f in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if f:
                f.close()

    def _cleanup(self):
        if self.tmp and not os.environ.get("GLASGOW_KEEP_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __exit__(self, exc_type, exc, tb):
        try:
            self._kill()
            if exc_type is not None and self.proc is not None:
                diag("server stderr (tail): " + self.stderr()[-1500:])
        finally:
            self._cleanup()
        return False

    # -- talking to it --

    def client(self, timeout=5.0, tls=None):
        return Client(self.port, timeout=timeout, tls=tls)

    def request(self, method, path, body=None, headers=None, timeout=5.0, tls=None):
        try:
            return request(self.port, method, path, body, headers, timeout, tls)
        except ConnectionRefusedError:
            self.report_death()
            raise

    def report_death(self):
        """When the server process has ended unasked, says how (exit status
        or signal) and shows the end of its stderr, once: the cases after
        it then fail on a refused connection with the cause in the log."""
        if self.proc is None or self.proc.poll() is None or getattr(self, "_death_told", False):
            return
        self._death_told = True
        rc = self.proc.returncode
        how = "killed by signal %d" % -rc if rc < 0 else "exited with status %d" % rc
        diag("server %s; stderr (tail): %s" % (how, self.stderr()[-3000:]))

    def get(self, path, headers=None, timeout=5.0, tls=None):
        return self.request("GET", path, None, headers, timeout, tls)

    def raw(self, data, timeout=5.0, **kw):
        return raw(self.port, data, timeout, **kw)

    def admin(self, path, timeout=5.0):
        return request(self.admin_port, "GET", path, timeout=timeout)

    def metrics(self):
        """Parsed /metrics: {'name{labels}': float}."""
        r = self.admin("/metrics")
        if r.status != 200:
            raise AssertionError("/metrics answered %s" % r.status)
        return parse_metrics(r.body.decode())

    def metric(self, name, **labels):
        """Sum of the samples of `name` whose labels include `labels` (0 if none)."""
        total = 0.0
        for key, v in self.metrics().items():
            n, lab = split_series(key)
            if n == name and all(lab.get(k) == str(want) for k, want in labels.items()):
                total += v
        return total

    def stdout(self):
        with open(self.stdout_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_lines(self):
        """The JSON log lines on stdout (lines that do not parse are skipped)."""
        out = []
        for line in self.stdout().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


_series_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)$')
_label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _series_re.match(line)
        if m:
            try:
                out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
            except ValueError:
                pass
    return out


def split_series(key):
    name, _, rest = key.partition("{")
    return name, dict(_label_re.findall(rest))


def run_glasgow(args, env=None, timeout=15):
    """Runs the binary with args; returns CompletedProcess (text)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("GLASGOW_")}
    e.update(env or {})
    p = spawn([GLASGOW_BIN] + list(args), env=e, stdin=subprocess.DEVNULL,
              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate(timeout=5)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def is_error_shape(body, code=None):
    """True if body (bytes or dict) is {"error": {"code", "message", ..., "request_id"}}."""
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return False
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return False
    e = body["error"]
    if not isinstance(e.get("code"), str) or not isinstance(e.get("message"), str):
        return False
    if "request_id" not in e:
        return False
    return code is None or e["code"] == code


def start_threads(fns):
    ts = [threading.Thread(target=f, daemon=True) for f in fns]
    for t in ts:
        t.start()
    return ts


def join_all(threads, timeout):
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return all(not t.is_alive() for t in threads)


# ---- kubelet-style ConfigMap directory -------------------------------------------------

class KubeDir:
    """A directory laid out and updated exactly like a kubelet ConfigMap volume.

    dir/..2026_11_28_01_02_03.123456789/  the files (a fresh dir per update)
    dir/..data -> ..2026_...              swapped by renaming ..data_tmp over it
    dir/name.lua -> ..data/name.lua       one symlink per key
    """

    def __init__(self, path, files):
        self.path = path
        os.makedirs(path, exist_ok=True)
        self.current = None
        self.names = set()
        self.update(files)

    def _new_ts_dir(self):
        # the kubelet's os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
        prefix = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
        d = tempfile.mkdtemp(prefix=prefix, dir=self.path)
        os.chmod(d, 0o755)
        return os.path.basename(d)

    def update(self, files):
        ts = self._new_ts_dir()
        for name, text in files.items():
            with open(os.path.join(self.path, ts, name), "w") as f:
                f.write(text)
            os.chmod(os.path.join(self.path, ts, name), 0o644)
        tmp_link = os.path.join(self.path, "..data_tmp")
        if os.path.lexists(tmp_link):
            os.unlink(tmp_link)
        os.symlink(ts, tmp_link)
        os.rename(tmp_link, os.path.join(self.path, "..data"))
        new_names = set(files)
        for name in sorted(new_names - self.names):
            link = os.path.join(self.path, name)
            if not os.path.lexists(link):
                os.symlink(os.path.join("..data", name), link)
        for name in sorted(self.names - new_names):
            link = os.path.join(self.path, name)
            if os.path.lexists(link):
                os.unlink(link)
        if self.current:
            shutil.rmtree(os.path.join(self.path, self.current), ignore_errors=True)
        self.current = ts
        self.names = new_names
