"""End-to-end test of the container image (make e2e; README, "Container image").

Runs the image that `make image` built, as a cluster would: podman with the
host's network, a read-only root filesystem, a tmpfs on /tmp, the fixed
unprivileged user, every capability dropped, and the secrets as files
mounted read-only and named by *_FILE variables (never a secret in the
environment). Against the real PostgreSQL that tests/run-all starts, it:

- runs `glasgow migrate` from the image (twice: the second finds nothing to do),
- serves, and checks /livez and /readyz on the admin port,
- does a CRUD round trip through the API as the bootstrap admin and as a user,
- swaps the mounted routes directory the way the kubelet updates a ConfigMap
  volume (a new timestamped directory, "..data" renamed over) and sees the
  new route served by the same process, then a changed version of it,
- stops the container with `podman stop` and checks that tini handed SIGTERM
  to glasgow, which drained and exited 0 well within the grace period,
- then runs the image as a Kubernetes Deployment with `podman kube play`.

Runs as root (as CI does): podman here is rootful, and the secret files are
given to the image's user as a Secret volume with fsGroup would be.

Run alone: make image, then SUITES=e2e bash tests/run-all (it starts the
PostgreSQL). GLASGOW_E2E_IMAGE names another image.
"""
import json
import re
import os
import secrets
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import dbharness  # noqa: E402
import harness  # noqa: E402
from dbharness import ADMIN_EMAIL, ADMIN_PASSWORD, Api, TestDB  # noqa: E402
from harness import REPO, KubeDir, case, diag, free_port, is_, ok, wait_until  # noqa: E402

IMAGE = os.environ.get("GLASGOW_E2E_IMAGE", "ghcr.io/glasgow-api/glasgow:dev")
UID = "10001"
SECRETS_IN = "/run/secrets/glasgow"   # where the secret files appear in the container
ROUTES_IN = "/srv/glasgow/routes"     # the image's routes directory (the ConfigMap mount)
STOP_GRACE_S = 30                     # podman stop's timeout, above glasgow's 20 s drain
os.environ.setdefault("CONTAINERS_CONF", os.path.join(REPO, ".ci", "containers.conf"))

E2E_ROUTE = """-- GET /e2e: added by the e2e test through a ConfigMap-style update;
-- GET /e2e/spin: a loop the JIT compiles, which only a LuaJIT built with
-- LUAJIT_ENABLE_CHECKHOOK (.ci/build-luajit, run by the Dockerfile) can stop
local function spin() local n = 0 while true do n = n + 1 end end
return {
    {
        method = "GET",
        path = "/e2e",
        handler = function()
            return 200, { version = %d }
        end,
    },
    { method = "GET", path = "/e2e/spin", handler = spin },
}
"""


def podman(*args, timeout=120, check=False):
    """Runs podman ARGS; returns CompletedProcess (text)."""
    p = subprocess.run(["podman"] + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError("podman %s: %d: %s" % (" ".join(args[:2]), p.returncode, p.stderr))
    return p


class Secrets:
    """The secrets of one deployment, as files in a directory mounted read-only, owned by
    the image's user (mode 0400), like a Kubernetes Secret volume with defaultMode 0400
    and fsGroup. The values never appear in an environment variable."""

    def __init__(self):
        self.dir = harness.mkdtemp("glasgow-e2e-secrets-")
        self.values = {}

    def add(self, name, value):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(value)
        os.chmod(path, 0o400)
        os.chown(path, int(UID), int(UID))
        self.values[name] = value
        return "%s/%s" % (SECRETS_IN, name)

    def mount(self):
        os.chmod(self.dir, 0o500)
        os.chown(self.dir, int(UID), int(UID))
        return ["-v", "%s:%s:ro" % (self.dir, SECRETS_IN)]


def service_env(db, sec):
    """The settings that connect the image to its services, for every container this test
    starts: (environment as -e arguments, mounts). The one place to add a service.

    The object store: when tests/run-all started one, it exported the runtime's S3_*
    settings as GLASGOW_TEST_S3_* (keys by file); they are passed on, each *_FILE as a
    file in the secrets volume."""
    env = {"DATABASE_URL_FILE": sec.add("database-url", db.url)}
    for k, v in sorted(os.environ.items()):
        if not k.startswith("GLASGOW_TEST_S3_") or k == "GLASGOW_TEST_S3_DIR":
            continue
        name = k[len("GLASGOW_TEST_"):]
        if name.endswith("_FILE"):
            with open(v) as f:
                v = sec.add(name[:-len("_FILE")].lower().replace("_", "-"), f.read())
        env[name] = v
    args = []
    for k, v in env.items():
        args += ["-e", "%s=%s" % (k, v)]
    return args, sec.mount()


def run_args(name=None):
    """podman run's hardening flags: those of the restricted Pod Security profile. A named
    container is kept after it exits (for its exit code and logs), an unnamed one not."""
    a = ["--network=host", "--read-only", "--read-only-tmpfs=false",
         "--tmpfs", "/tmp:rw,nosuid,nodev,noexec,size=16m,mode=1777",
         "--user", "%s:%s" % (UID, UID), "--cap-drop=all",
         "--security-opt=no-new-privileges", "--pull=never"]
    return a + (["--name", name] if name else ["--rm"])


class Container:
    """A glasgow container serving on loopback ports picked here (its name is set once
    known); serve() makes one that `podman run` starts."""

    def __init__(self, name=None):
        self.name = name
        self.port = free_port()
        self.admin_port = free_port()
        self.argv = None
        self.started = False

    @classmethod
    def serve(cls, db, sec, routes_dir):
        """`glasgow serve` from the image, detached, with the routes mounted read-only."""
        c = cls("glasgow-e2e-" + secrets.token_hex(4))
        env, mounts = service_env(db, sec)
        c.argv = (["run", "-d"] + run_args(c.name) + env + mounts +
                  ["-v", "%s:%s:ro" % (routes_dir, ROUTES_IN),
                   "-e", "GLASGOW_LISTEN=127.0.0.1:%d" % c.port,
                   "-e", "GLASGOW_ADMIN_LISTEN=127.0.0.1:%d" % c.admin_port,
                   "-e", "GLASGOW_RELOAD_INTERVAL_MS=1000",
                   "-e", "GLASGOW_LUA_RUN_LIMIT_MS=300",
                   IMAGE])
        return c

    def start(self):
        p = podman(*self.argv)
        self.started = p.returncode == 0
        return p

    def request(self, method, path, body=None, headers=None, timeout=10.0):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            headers = dict(headers or {}, **{"Content-Type": "application/json"})
        return harness.request(self.port, method, path, body, headers, timeout=timeout)

    def admin(self, path):
        return harness.request(self.admin_port, "GET", path, timeout=5.0)

    def inspect(self, fmt):
        return podman("inspect", "--format", fmt, self.name).stdout.strip()

    def logs(self):
        p = podman("logs", self.name)
        return p.stdout + p.stderr

    def exec(self, *args):
        """podman exec [OPTIONS] COMMAND... in the container."""
        opts = list(args[:2]) if args[0] == "--user" else []
        return podman("exec", *opts, self.name, *args[len(opts):], timeout=30)

    def remove(self):
        if self.started:
            podman("rm", "-f", "-t", "0", self.name, timeout=60)
            self.started = False


def kube_routes():
    """A ConfigMap-style volume holding the repository's routes, readable by anyone (the
    kubelet's default mode 0644)."""
    d = harness.mkdtemp("glasgow-e2e-routes-")
    os.chmod(d, 0o755)
    return KubeDir(d, dbharness.routes_with({}))


@case(timeout=60)
def image_metadata():
    p = podman("image", "inspect", IMAGE)
    if not ok(p.returncode == 0, "the image %s exists (make image builds it)" % IMAGE, p.stderr):
        return
    cfg = json.loads(p.stdout)[0]["Config"]
    labels = cfg.get("Labels") or {}
    is_(cfg.get("User"), "%s:%s" % (UID, UID), "it runs as the fixed user %s" % UID)
    is_(cfg.get("Entrypoint"), ["/usr/bin/tini", "--", "/usr/bin/glasgow"],
        "tini is PID 1 in front of glasgow")
    is_(cfg.get("Cmd"), ["serve"], "the default command is serve")
    ok(all(labels.get("org.opencontainers.image." + k, "unknown") != "unknown"
           for k in ("version", "revision", "created", "source")),
       "OCI labels carry the version, revision, creation time and source", labels)
    ok(not any("PASSWORD" in e or "DATABASE_URL=" in e for e in cfg.get("Env") or []),
       "no secret is set in the image's environment", cfg.get("Env"))
    p = podman("run", "--rm", "--pull=never", "--network=none", "--user", "0",
               "--entrypoint", "/bin/sh", IMAGE,
               "-c", "find / -xdev -type f -perm /6000; "
               "dpkg-query -W -f '${Package}\\n' | grep -E -- '-dev$|^(gcc|g\\+\\+|make|binutils)$'; "
               "find / -xdev \\( -name .git -o -name .data -o -name .deps -o -name build "
               "-o -path /src -o -path /deps \\) -print")
    is_(p.stdout, "", "no setuid/setgid file, no compiler or -dev package, nothing of the "
        "build tree or the checkout's local state in the image", p.stderr)


def main_case():
    """The whole life of a deployment, in order: each step needs the one before."""
    with TestDB("e2e", migrate=False) as db:
        sec = Secrets()
        admin_pw_file = sec.add("admin-password", ADMIN_PASSWORD + "\n")
        db_pw = db.url.rsplit("@", 1)[0].rsplit(":", 1)[1]
        env, mounts = service_env(db, sec)
        boot = ["-e", "GLASGOW_BOOTSTRAP_ADMIN_EMAIL=" + ADMIN_EMAIL,
                "-e", "GLASGOW_BOOTSTRAP_ADMIN_PASSWORD_FILE=" + admin_pw_file]
        argv = ["run"] + run_args() + env + mounts + boot + [IMAGE, "migrate"]
        t0 = time.monotonic()
        p = podman(*argv)
        if not is_(p.returncode, 0, "glasgow migrate runs from the image (%.1f s)" %
                   (time.monotonic() - t0), p.stdout, p.stderr):
            return
        ok(db.sql("SELECT count(*) FROM glasgow_migrations") ==
           str(len([f for f in os.listdir(os.path.join(REPO, "migrations"))
                    if f.endswith(".sql")])),
           "every migration baked into the image was applied")
        p = podman(*argv)
        is_(p.returncode, 0, "a second migrate (a re-run PreSync hook) succeeds", p.stderr)

        routes = kube_routes()
        c = Container.serve(db, sec, routes.path)
        try:
            serve(c, routes, db_pw)
        finally:
            if os.environ.get("GLASGOW_KEEP_TMP"):
                diag(c.logs())
            c.remove()
        kube_play(sec, routes)


def serve(c, routes, db_pw):
    p = c.start()
    if not is_(p.returncode, 0, "podman run starts glasgow serve", p.stderr):
        return
    ready = wait_until(lambda: c.admin("/readyz").status == 200, 30, 0.2)
    if not ok(ready, "/readyz answers 200 on the admin port", c.logs()):
        return
    is_(c.admin("/livez").status, 200, "/livez answers 200")
    s3 = os.environ.get("GLASGOW_TEST_S3_ENDPOINT")
    if s3:  # /readyz is 200 only once every configured service answers
        ok("s3 " + s3 in c.logs(), "it serves with the object store at %s" % s3, c.logs())
    pid0 = c.inspect("{{.State.Pid}}")

    r = c.exec("cat", "/proc/1/comm")
    is_(r.stdout.strip(), "tini", "PID 1 in the container is tini", r.stderr)
    r = c.exec("id", "-u")
    is_(r.stdout.strip(), UID, "the process runs as UID %s" % UID, r.stderr)
    r = c.exec("--user", "0", "touch", "/srv/glasgow/routes/x.lua")
    ok(r.returncode != 0 and "Read-only file system" in r.stderr,
       "the root filesystem is read-only, even to root", r.stderr)
    r = c.exec("sh", "-c", "echo x > /tmp/probe && rm /tmp/probe")
    is_(r.returncode, 0, "/tmp is writable", r.stderr)

    crud(Api(c))

    # The kubelet's ConfigMap update, twice: a new route appears, then changes.
    for version in (1, 2):
        files = dbharness.routes_with({"e2e.lua": E2E_ROUTE % version})
        routes.update(files)
        t0 = time.monotonic()
        got = wait_until(lambda: (lambda r: r.status == 200 and
                                  r.json_or_none() == {"version": version})(c.request("GET", "/e2e")),
                         20, 0.2)
        ok(got, "after ConfigMap update %d, GET /e2e answers version %d (%.1f s)" %
           (version, version, time.monotonic() - t0), c.logs()[-2000:])
    is_(c.inspect("{{.State.Pid}}"), pid0, "the routes were reloaded without a restart")
    r = c.request("GET", "/e2e/spin")
    ok(r.status == 504 and (r.json_or_none() or {}).get("error", {}).get("code") ==
       "handler_timeout", "a compiled endless loop is stopped at the run limit (504)", r)

    logs = c.logs()
    leaked = [s for s in (db_pw, ADMIN_PASSWORD) if s in logs]
    ok(not leaked, "no secret appears in the container's logs")
    env = c.inspect("{{json .Config.Env}}")
    ok(db_pw not in env and ADMIN_PASSWORD not in env,
       "no secret appears in the container's environment")

    t0 = time.monotonic()
    p = podman("stop", "-t", str(STOP_GRACE_S), c.name, timeout=STOP_GRACE_S + 30)
    took = time.monotonic() - t0
    ok(p.returncode == 0 and took < STOP_GRACE_S - 5,
       "podman stop ends it within the grace (%.1f s of %d)" % (took, STOP_GRACE_S), p.stderr)
    is_(c.inspect("{{.State.ExitCode}}"), "0", "glasgow exits 0 (not killed)")
    logs = c.logs()
    ok(re.search(r"SIGTERM received( from pid \d+)?: draining", logs) and '"stopped"' in logs,
       "tini forwarded SIGTERM: glasgow drained and logged that it stopped", logs[-2000:])


DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      hostNetwork: true
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: {uid}
        runAsGroup: {uid}
        seccompProfile: {{type: RuntimeDefault}}
      containers:
        - name: api
          image: {image}
          imagePullPolicy: Never
          env:
            - {{name: DATABASE_URL_FILE, value: {secrets_in}/database-url}}
            - {{name: GLASGOW_LISTEN, value: "127.0.0.1:{port}"}}
            - {{name: GLASGOW_ADMIN_LISTEN, value: "127.0.0.1:{admin_port}"}}
          securityContext:
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
            capabilities: {{drop: [ALL]}}
          volumeMounts:
            - {{name: secrets, mountPath: {secrets_in}, readOnly: true}}
            - {{name: routes, mountPath: {routes_in}, readOnly: true}}
            - {{name: tmp, mountPath: /tmp}}
      volumes:
        - {{name: secrets, hostPath: {{path: {secrets}, type: Directory}}}}
        - {{name: routes, hostPath: {{path: {routes}, type: Directory}}}}
        - {{name: tmp, emptyDir: {{}}}}
"""


def kube_play(sec, routes):
    """The bonus: `podman kube play` of a Deployment with the restricted securityContext the
    manifests use (probes left out: podman runs an httpGet probe with curl inside the image,
    which has none). Host paths stand in for the Secret and ConfigMap volumes."""
    name = "glasgow-e2e-kube-" + secrets.token_hex(3)
    c = Container()
    yaml = os.path.join(harness.mkdtemp("glasgow-e2e-kube-"), "deployment.yaml")
    with open(yaml, "w") as f:
        f.write(DEPLOYMENT.format(name=name, uid=UID, image=IMAGE, secrets_in=SECRETS_IN,
                                  routes_in=ROUTES_IN, secrets=sec.dir, routes=routes.path,
                                  port=c.port, admin_port=c.admin_port))
    p = podman("kube", "play", yaml, timeout=180)
    try:
        if not is_(p.returncode, 0, "podman kube play starts the Deployment", p.stderr):
            return
        names = podman("ps", "--format", "{{.Names}}", "--filter", "name=" + name).stdout.split()
        c.name = ([n for n in names if n.endswith("-api")] or ["?"])[0]
        ok(wait_until(lambda: c.admin("/readyz").status == 200, 30, 0.2),
           "the Deployment's pod becomes ready", c.logs()[-2000:])
        is_(c.request("GET", "/hello").status, 200, "it serves the API")
        is_(c.request("GET", "/docs").status, 200, "and the API docs page (/docs)")
        r = c.exec("id", "-u")
        is_(r.stdout.strip(), UID, "its container runs as UID %s" % UID, r.stderr)
        r = c.exec("--user", "0", "touch", "/usr/x")
        ok(r.returncode != 0 and "Read-only file system" in r.stderr,
           "readOnlyRootFilesystem is in force", r.stderr)
    finally:
        p = podman("kube", "down", yaml, timeout=120)
        is_(p.returncode, 0, "podman kube down removes it", p.stderr)


def crud(api):
    tok, r = api.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    if not ok(tok, "the bootstrap admin logs in", r):
        return
    admin = api.with_token(tok)
    email = "e2e-%s@example.com" % secrets.token_hex(4)
    pw = "pw-" + secrets.token_hex(8)
    r = admin.create_user(email, name="End To End", password=pw)
    if not is_(r.status, 201, "the admin creates a user", r):
        return
    uid = r.json()["id"]
    r = admin.get("/v1/users/" + uid)
    ok(r.status == 200 and r.json().get("email") == email, "the admin reads it back", r)
    utok, r = api.login(email, pw)
    ok(utok, "the new user logs in", r)
    r = api.with_token(utok).get("/v1/users/" + uid)
    ok(r.status == 200 and r.json().get("name") == "End To End", "the user reads itself", r)
    is_(admin.delete("/v1/users/" + uid).status, 204, "the admin deletes it")
    is_(admin.get("/v1/users/" + uid).status, 404, "it is gone")
    dbharness.assert_no_leaks()


@case(timeout=300)
def deployment_life():
    main_case()


if __name__ == "__main__":
    dbharness.skip_without_pg()
    if not shutil.which("podman"):
        print("not ok 1 - podman is not installed (bash .ci/deps --image)")
        print("1..1")
        sys.exit(1)
    harness.main()
