"""The local S3 server that `make run` and the tests start (.ci/rgw).

- A kept store (what `make run` starts, BlueStore on a file) keeps its objects
  and keys across a stop and a start; its keys are in files of mode 600 and
  `.ci/rgw env` prints their paths, never the keys.
- A start survives a stale previous run: daemons killed with SIGKILL, pid files
  naming other processes, the monitor's port taken by someone else.
- A start with another port moves the running gateway there.
- A start refuses a gateway port another process holds, at once and clearly.
- A throwaway store (RGW_THROWAWAY=1, MemStore) starts over when its OSD stopped.
- destroy leaves no daemon and no directory.
- RGW_TLS_PORT adds HTTPS with a CA of the store's own, which clients verify.
- As root, a normal user (nobody) can run one of its own: the daemons run as
  the caller, root included.
Each store here is its own small cluster on free ports; boot times and the
daemons' memory are printed as diagnostics.
"""
import errno
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import case, diag, is_, main, ok  # noqa: E402
import s3harness as s3h  # noqa: E402

DAEMONS = ("mon.a", "osd.0", "client.rgw")


def rgw(*args, env=None, timeout=180):
    e = dict(os.environ)
    e.pop("RGW_THROWAWAY", None)
    e.update(env or {})
    return subprocess.run(["bash", s3h.RGW_SCRIPT] + [str(a) for a in args], env=e,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)


def start(d, port, env=None):
    t0 = time.monotonic()
    p = rgw("start", d, port, env=env)
    return p, time.monotonic() - t0


def store(d, port, env=None):
    lines = dict(line.split("=", 1) for line in rgw("env", d, port, env=env).stdout.splitlines())
    return s3h.Store.from_env({"GLASGOW_TEST_" + k: v for k, v in lines.items()})


def pids(d):
    """The running daemons of the cluster in d, by pid file: {name: pid}."""
    out = {}
    for n in DAEMONS:
        try:
            with open(os.path.join(d, "run", n + ".pid")) as f:
                pid = int(f.read().strip())
            with open("/proc/%d/stat" % pid) as f:
                if f.read().rsplit(") ", 1)[1][0] != "Z":
                    out[n] = pid
        except (OSError, ValueError):
            pass
    return out


def procs_of(d):
    """Every process whose command line names d's ceph.conf."""
    conf = os.path.join(os.path.realpath(d), "ceph.conf")
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                args = f.read().split(b"\0")
            with open("/proc/%s/stat" % p) as f:
                zombie = f.read().rsplit(") ", 1)[1][0] == "Z"
        except OSError:
            continue
        if not zombie and conf.encode() in args:
            found.append(int(p))
    return found


def rss_mib(pid_map):
    total = 0
    for pid in pid_map.values():
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


@case(timeout=240)
def kept_store_survives_restarts():
    d = os.path.join(harness.mkdtemp("glasgow-rgw-"), "rgw")
    port = harness.free_port()
    try:
        p, took = start(d, port)
        ok(p.returncode == 0, ".ci/rgw start initialises a kept store", p.stderr)
        diag("first start (mkfs of the monitor and a BlueStore OSD) took %.1f s" % took)
        with open(os.path.join(d, "ceph.conf")) as f:
            ok("osd objectstore = bluestore" in f.read(), "... on BlueStore")
        ok(os.path.getsize(os.path.join(d, "osd", "block")) > 0, "... in the file DIR/osd/block")
        for name in ("access-key", "secret-key"):
            mode = stat.S_IMODE(os.stat(os.path.join(d, name)).st_mode)
            is_(oct(mode), oct(0o600), "DIR/%s has mode 600" % name)
        is_(oct(stat.S_IMODE(os.stat(os.path.join(d, "keys")).st_mode)), oct(0o700),
            "the cephx keyrings are in a directory of mode 700")
        env = rgw("env", d, port).stdout
        st = store(d, port)
        ok(st.access_key and st.secret_key, "the keys can be read from the files env names")
        ok(st.secret_key not in env and st.access_key not in env, "env prints no key", env)
        ok(st.secret_key not in p.stdout + p.stderr, "start prints no key")
        is_(sorted(line.split("=")[0] for line in env.splitlines()),
            ["S3_ACCESS_KEY_ID_FILE", "S3_BUCKET", "S3_ENDPOINT", "S3_REGION",
             "S3_SECRET_ACCESS_KEY_FILE"], "env prints the runtime's S3_* settings")
        is_(rgw("where", d).stdout.strip(), os.path.realpath(d), "where prints the directory")
        is_(st.put("kept", b"survives restarts").status, 200, "PUT an object")
        running = pids(d)
        is_(sorted(running), sorted(DAEMONS), "three daemons run")
        diag("RSS of monitor + OSD + gateway after a PUT: %.0f MiB" % rss_mib(running))

        p, took = start(d, port)
        ok(p.returncode == 0 and pids(d) == running,
           "a second start while it runs changes nothing", p.stderr)
        diag("start of a running store took %.1f s" % took)
        port2 = harness.free_port()
        p, took = start(d, port2)
        ok(p.returncode == 0 and store(d, port2).get("kept").status == 200,
           "a start with another port moves the gateway there", p.stderr)
        diag("moving the gateway took %.1f s" % took)
        p, took = start(d, port)
        ok(p.returncode == 0, "... and back", p.stderr)
        running = pids(d)

        t0 = time.monotonic()
        p = rgw("stop", d)
        ok(p.returncode == 0 and not procs_of(d), "stop stops every daemon", p.stderr)
        diag("stop took %.1f s" % (time.monotonic() - t0))
        p, took = start(d, port)
        ok(p.returncode == 0, "start again", p.stderr)
        diag("restart of a kept store took %.1f s" % took)
        st2 = store(d, port)
        is_((st2.access_key, st2.secret_key), (st.access_key, st.secret_key), "... same keys")
        is_(st2.get("kept").body, b"survives restarts", "... the object is still there")

        # a crash: every daemon killed, pid files left behind naming processes that are not
        # its daemons (reused pids)
        for pid in pids(d).values():
            os.kill(pid, signal.SIGKILL)
        harness.wait_until(lambda: not procs_of(d), 10)
        for n in DAEMONS:
            with open(os.path.join(d, "run", n + ".pid"), "w") as f:
                f.write("%d\n" % os.getpid())
        # and the monitor's port taken by another process
        conf = open(os.path.join(d, "ceph.conf")).read()
        mon_port = int(conf.split("mon host = [v2:127.0.0.1:", 1)[1].split("]", 1)[0])
        squatter = take_port(mon_port)
        try:
            p, took = start(d, port)
        finally:
            if squatter:
                squatter.close()
        ok(p.returncode == 0, "start after SIGKILL, with stale pid files and the monitor's port "
           "taken", p.stderr)
        ok("moving the monitor" in p.stderr, "... the monitor moved to another port", p.stderr)
        diag("recovery start took %.1f s" % took)
        is_(store(d, port).get("kept").body, b"survives restarts", "... the object is still there")
        ok(os.getpid() not in pids(d).values(), "... and the pid files name the new daemons")
    finally:
        t0 = time.monotonic()
        p = rgw("destroy", d)
        diag("destroy took %.1f s" % (time.monotonic() - t0))
    ok(p.returncode == 0 and not os.path.exists(d) and not procs_of(d),
       "destroy leaves no directory and no daemon", p.stderr)


def take_port(port):
    """Listens on 127.0.0.1:port, for a test that needs the port taken. The
    monitor's port is an ephemeral one, so another program may hold it already
    (an outgoing connection, sockets of the killed daemons still closing): then
    it is taken without us, which is what the test needs, and None is returned."""
    deadline = time.monotonic() + 5
    while True:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
            return s
        except OSError as e:
            s.close()
            if e.errno != errno.EADDRINUSE:
                raise
            if time.monotonic() > deadline:
                diag("127.0.0.1:%d is held by another program already" % port)
                return None
            time.sleep(0.1)


@case(timeout=120)
def busy_gateway_port():
    d = os.path.join(harness.mkdtemp("glasgow-rgw-"), "rgw")
    sq = socket.socket()
    sq.bind(("127.0.0.1", 0))
    sq.listen()
    port = sq.getsockname()[1]
    try:
        t0 = time.monotonic()
        p = rgw("start", d, port, env={"RGW_THROWAWAY": "1"})
        took = time.monotonic() - t0
    finally:
        sq.close()
        rgw("destroy", d)
    ok(p.returncode != 0 and ("127.0.0.1:%d is in use" % port) in p.stderr,
       "start refuses a gateway port another process holds", p.returncode, p.stderr)
    ok(took < 5, "... at once (%.1f s)" % took)


@case(timeout=120)
def throwaway_store_starts_over():
    d = os.path.join(harness.mkdtemp("glasgow-rgw-"), "rgw")
    port = harness.free_port()
    try:
        p, took = start(d, port, env={"RGW_THROWAWAY": "1"})
        ok(p.returncode == 0, "RGW_THROWAWAY=1 start", p.stderr)
        diag("first start of a throwaway store took %.1f s" % took)
        with open(os.path.join(d, "ceph.conf")) as f:
            ok("osd objectstore = memstore" in f.read(), "... on MemStore")
        st = store(d, port)
        is_(st.put("gone", b"x").status, 200, "PUT an object")
        rgw("stop", d)
        p, took = start(d, port)
        ok(p.returncode == 0, "start after stop (RGW_THROWAWAY no longer set)", p.stderr)
        diag("second start took %.1f s" % took)
        with open(os.path.join(d, "ceph.conf")) as f:
            ok("osd objectstore = memstore" in f.read(), "... still a throwaway store")
        st2 = store(d, port)
        ok(st2.access_key != st.access_key, "... a new cluster with new keys")
        is_(st2.get("gone").status, 404, "... empty")
        is_(st2.request("HEAD").status, 200, "... with its store bucket")
    finally:
        rgw("destroy", d)
    ok(not procs_of(d), "destroy stops it")


@case(timeout=120)
def https_with_its_own_ca():
    d = os.path.join(harness.mkdtemp("glasgow-rgw-"), "rgw")
    port, tls_port = harness.free_port(), harness.free_port()
    tls = {"RGW_TLS_PORT": str(tls_port), "RGW_THROWAWAY": "1"}
    try:
        p, took = start(d, port, env=tls)
        ok(p.returncode == 0, "start with RGW_TLS_PORT", p.stderr)
        diag("start with HTTPS took %.1f s" % took)
        env = rgw("env", d, port, env=tls).stdout
        ok("S3_ENDPOINT=https://localhost:%d\n" % tls_port in env and
           "S3_CA_FILE=%s\n" % os.path.join(os.path.realpath(d), "tls", "ca.pem") in env,
           "env prints the https endpoint and S3_CA_FILE", env)
        st = store(d, port, env=tls)
        is_(st.put("tls", b"over https").status, 200, "a signed PUT over HTTPS, the certificate "
            "verified against DIR's CA")
        is_(st.get("tls").body, b"over https", "... and a GET")
        st.host = "127.0.0.1"
        is_(st.get("tls").status, 200, "... also by IP address (the certificate names 127.0.0.1)")
        st.ca_file = ""
        try:
            st.get("tls")
            ok(False, "without DIR's CA the certificate is refused")
        except ssl.SSLError as e:
            ok("CERTIFICATE_VERIFY_FAILED" in str(e), "without DIR's CA the certificate is refused",
               e)
        is_(oct(stat.S_IMODE(os.stat(os.path.join(d, "tls", "ca.key")).st_mode)), oct(0o600),
            "the CA's key has mode 600")
        p, _ = start(d, port, env={"RGW_THROWAWAY": "1"})
        ok(p.returncode == 0, "a start without RGW_TLS_PORT", p.stderr)
        ok(not harness.wait_until(lambda: socket.create_connection(("127.0.0.1", tls_port), 1), 0.5),
           "... closes the HTTPS port")
    finally:
        rgw("destroy", d)


@case(timeout=120)
def as_a_normal_user():
    if os.geteuid() != 0:
        ok(True, "as a normal user # SKIP not root: every other case here already runs as one")
        return
    import pwd
    nobody = pwd.getpwnam("nobody")
    top = harness.mkdtemp("glasgow-rgw-")
    os.chown(top, nobody.pw_uid, nobody.pw_gid)
    d = os.path.join(top, "rgw")
    port = harness.free_port()

    def as_nobody(*args):
        return subprocess.run(["runuser", "-u", "nobody", "--", "env", "RGW_THROWAWAY=1", "bash",
                               s3h.RGW_SCRIPT] + [str(a) for a in args], cwd="/",
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    try:
        p = as_nobody("start", d, port)
        ok(p.returncode == 0, "start as the user nobody", p.stderr)
        owners = {os.stat("/proc/%d" % pid).st_uid for pid in pids(d).values()}
        is_(owners, {nobody.pw_uid}, "... its three daemons run as nobody")
        is_(store(d, port).put("k", b"v").status, 200, "... and serve S3")
    finally:
        p = as_nobody("destroy", d)
    ok(p.returncode == 0 and not procs_of(d) and not os.path.exists(d), "destroy as nobody",
       p.stderr)


if __name__ == "__main__":
    main()
