"""The repository's secrets: secrets/, .sops.yaml and the git history.

- .sops.yaml has one creation rule per environment with encrypted_regex
  ^(data|stringData)$; the dev recipient is the committed dev key's, the
  prod recipient is another one.
- secrets/ holds exactly the expected Secrets (one per file, named after
  the file, namespace glasgow, the keys the manifests read) and the
  labelled dev key, nothing else; when the deploy tree's KSOPS generators
  are present, they list exactly these files.
- Every Secret passes `sops_tool.py check` (SOPS-encrypted, recipients and
  rule as .sops.yaml gives its path, nothing under data/stringData in
  plaintext); the dev ones decrypt with the dev key and their MAC verifies;
  the prod ones do not open with it.
- No private key other than the dev key anywhere in the tree, and no
  plaintext secret in the history: every commit's added lines are scanned
  for PEM private keys, age secret keys, cloud access keys, passwords in
  URLs and in YAML, and every version of every file ever under secrets/
  must be encrypted. The scanners are themselves tested on planted secrets.
"""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, os.path.join(REPO, ".ci"))
from harness import case, diag, is_, main, mkdtemp, ok  # noqa: E402
import sops_tool as st  # noqa: E402

TOOL = os.path.join(REPO, ".ci", "sops_tool.py")
DEV_KEY = os.path.join(REPO, "secrets", "dev", "age-dev.key")
CONFIG = os.path.join(REPO, ".sops.yaml")
REGEX = "^(data|stringData)$"

# What deploy/ reads from each Secret (stringData keys), per environment.
EXPECTED = {
    "glasgow-db": ["username", "password", "DATABASE_URL", "DATABASE_URL_DIRECT"],
    "glasgow-s3": ["S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"],
    "glasgow-url-signing": ["GLASGOW_URL_SIGNING_KEY"],
    "glasgow-bootstrap-admin": ["password"],
    "minio-root": ["MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"],
}
EXPECTED_PROD = dict(EXPECTED, **{"cnpg-backup-s3": ["ACCESS_KEY_ID", "ACCESS_SECRET_KEY"]})
ENVS = {"dev": EXPECTED, "prod": EXPECTED_PROD}


def tool(*args):
    e = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_AGE_")}
    e["XDG_CONFIG_HOME"] = "/nonexistent"
    return subprocess.run([sys.executable, TOOL] + list(args), capture_output=True, text=True,
                          timeout=60, cwd=REPO, env=e)


def git(*args):
    return subprocess.run(["git", "-C", REPO] + list(args), capture_output=True, timeout=120)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def secret_key_of(path):
    lines = [ln for ln in read(path).splitlines() if ln.startswith("AGE-SECRET-KEY-")]
    return lines[0] if len(lines) == 1 else None


def public_of(path):
    p = subprocess.run(["age-keygen", "-y", path], capture_output=True, text=True, timeout=30)
    return p.stdout.strip() if p.returncode == 0 else None


def rules():
    conf = st.load_yaml(read(CONFIG))
    return conf.get("creation_rules") or []


@case
def sops_config():
    rs = rules()
    is_(len(rs), 2, ".sops.yaml has two creation rules")
    by_env = {}
    for env in ENVS:
        target = "secrets/%s/x.yaml" % env
        try:
            recips, rule, mac_only = st.creation_rule(CONFIG, os.path.join(REPO, target))
        except st.SopsError as e:
            ok(False, "a rule matches %s" % target, str(e))
            continue
        by_env[env] = recips
        is_(rule, {"encrypted_regex": REGEX}, "%s: encrypted_regex %s" % (env, REGEX))
        ok(not mac_only, "%s: the MAC covers every value" % env)
        ok(recips and all(st.AGE_RECIPIENT_RE.match(r) for r in recips),
           "%s: age recipients %s" % (env, recips))
    for stray in ["secrets/dev/age-dev.key", "secrets/staging/x.yaml", "secrets/dev/sub/x.yaml",
                  "deploy/x.yaml"]:
        try:
            st.creation_rule(CONFIG, os.path.join(REPO, stray))
            ok(False, "no rule for %s" % stray)
        except st.SopsError:
            ok(True, "no rule for %s" % stray)
    dev_pub = public_of(DEV_KEY)
    is_(by_env.get("dev"), [dev_pub], "the dev rule's recipient is the committed dev key")
    ok(dev_pub and dev_pub not in by_env.get("prod", []),
       "the dev key is not a prod recipient (prod does not open with a public key)")


@case
def dev_key_labelled():
    text = read(DEV_KEY)
    ok(text.startswith("# DEV ONLY"), "secrets/dev/age-dev.key says DEV ONLY on its first line")
    ok("never be a recipient of a prod secret" in text, "... and what it must not be used for")
    ok(secret_key_of(DEV_KEY), "it holds exactly one age secret key")


def secret_files():
    out = []
    for root, dirs, files in os.walk(os.path.join(REPO, "secrets")):
        dirs.sort()
        for f in sorted(files):
            out.append(os.path.relpath(os.path.join(root, f), REPO))
    return out


@case
def inventory():
    want = {"secrets/dev/age-dev.key"}
    for env, names in ENVS.items():
        want |= {"secrets/%s/%s.yaml" % (env, n) for n in names}
    is_(sorted(secret_files()), sorted(want), "secrets/ holds exactly the expected files")
    for env in ENVS:
        gen = os.path.join(REPO, "deploy", "overlays", env, "secrets", "ksops.yaml")
        if not os.path.exists(gen):
            print("ok - # SKIP %s's KSOPS generator (deploy/overlays/%s/secrets/ksops.yaml) is "
                  "not in this tree" % (env, env), flush=True)
            continue
        files = st.load_yaml(read(gen)).get("files") or []
        listed = sorted(os.path.normpath(os.path.join(os.path.dirname(gen), f))
                        for f in files)
        have = sorted(os.path.join(REPO, "secrets", env, n + ".yaml") for n in ENVS[env])
        is_(listed, have, "%s: the KSOPS generator lists exactly secrets/%s/*.yaml" % (env, env))


@case
def every_secret_encrypted():
    for env, names in ENVS.items():
        for name, keys in names.items():
            rel = "secrets/%s/%s.yaml" % (env, name)
            path = os.path.join(REPO, rel)
            if not os.path.exists(path):
                ok(False, "%s exists" % rel)
                continue
            p = tool("check", rel)
            is_(p.returncode, 0, "%s: SOPS-encrypted for %s's recipients, nothing in plaintext "
                "under data/stringData" % (rel, env), p.stderr)
            try:
                tree, meta = st.split_file(read(path))
            except st.SopsError as e:
                ok(False, "%s parses" % rel, str(e))
                continue
            ok(tree.get("apiVersion") == "v1" and tree.get("kind") == "Secret",
               "%s: a v1 Secret" % rel, tree.get("apiVersion"), tree.get("kind"))
            md = tree.get("metadata") or {}
            ok(md.get("name") == name and md.get("namespace") == "glasgow",
               "%s: named %s in namespace glasgow" % (rel, name), md)
            is_(sorted(tree.get("stringData") or {}), sorted(keys),
                "%s: stringData has the keys the manifests read" % rel)
            ok(not tree.get("data"), "%s: no data section (stringData only)" % rel)
            is_(set(tree) - {"apiVersion", "kind", "metadata", "type", "stringData"}, set(),
                "%s: nothing else at the top" % rel)


@case
def dev_secrets_decrypt_and_verify():
    files = ["secrets/dev/%s.yaml" % n for n in EXPECTED]
    p = tool("verify", "--key", DEV_KEY, *files)
    is_(p.returncode, 0, "every dev Secret decrypts with the dev key and its MAC verifies",
        p.stderr)
    values = {}
    for f in files:
        try:
            plain, _, _ = st.open_text(read(os.path.join(REPO, f)), DEV_KEY)
        except st.SopsError as e:
            ok(False, "%s opens" % f, str(e))
            continue
        values[os.path.basename(f)[:-5]] = plain["stringData"]
        sd = plain["stringData"]
        ok(all(isinstance(v, str) and v and "REPLACE-ME" not in v for v in sd.values()),
           "%s: every value set (no placeholder)" % f)
    db = values.get("glasgow-db", {})
    pw = db.get("password", "")
    ok(len(pw) >= 24, "glasgow-db: a long random password")
    for k, host in [("DATABASE_URL", "glasgow-pg-rw"), ("DATABASE_URL_DIRECT", "glasgow-pg-rw")]:
        want = "postgresql://glasgow:%s@%s.glasgow.svc:5432/glasgow?sslmode=require" % (pw, host)
        ok(db.get(k) == want, "glasgow-db: %s uses that password and host %s" % (k, host))
    is_(db.get("username"), "glasgow", "glasgow-db: the owner role CloudNativePG creates")
    import base64
    key = values.get("glasgow-url-signing", {}).get("GLASGOW_URL_SIGNING_KEY", "")
    try:
        n = len(base64.b64decode(key, validate=True))
    except ValueError:
        n = 0
    is_(n, 32, "the URL-signing key is 32 random bytes in base64")


@case
def prod_secrets_closed_to_dev_key():
    files = ["secrets/prod/%s.yaml" % n for n in EXPECTED_PROD]
    for f in files:
        p = tool("verify", "--key", DEV_KEY, f)
        is_(p.returncode, 128, "%s does not open with the dev key" % f, p.stderr)


@case
def policy_catches_mistakes():
    d = mkdtemp("glasgow-secrets-")
    os.makedirs(os.path.join(d, "secrets", "dev"))
    os.makedirs(os.path.join(d, "secrets", "prod"))
    with open(os.path.join(d, ".sops.yaml"), "w") as f:
        f.write(read(CONFIG))
    dev = read(os.path.join(REPO, "secrets", "dev", "glasgow-db.yaml"))
    prod = read(os.path.join(REPO, "secrets", "prod", "glasgow-db.yaml"))
    tree = st.load_yaml(dev)
    tree["stringData"]["password"] = "hunter2hunter2"
    cases = [
        ("a prod file copied under secrets/dev", "dev", prod, "recipients"),
        ("a dev file copied under secrets/prod", "prod", dev, "recipients"),
        ("a value left in plaintext", "dev", st.dump_yaml(tree), "in plaintext"),
        ("a plaintext Secret", "dev", "apiVersion: v1\nkind: Secret\nstringData:\n  a: b\n",
         "not SOPS-encrypted"),
        ("another encryption rule", "dev", dev.replace("encrypted_regex: ^(data|stringData)$",
                                                      "encrypted_regex: ^data$"), "rule"),
    ]
    for what, env, text, word in cases:
        path = os.path.join(d, "secrets", env, "x.yaml")
        with open(path, "w") as f:
            f.write(text)
        problems = st.check_text(text, os.path.join(d, ".sops.yaml"), path)
        ok(problems and any(word in p for p in problems), "check refuses %s" % what, problems)


@case
def no_private_key_in_tree():
    p = git("grep", "-I", "-l", "-E", "AGE-SECRET-KEY-1|PRIVATE KEY", "HEAD", "--")
    hits = []
    for ln in p.stdout.decode("utf-8", "replace").splitlines():
        path = ln.split(":", 1)[1]
        text = git("show", "HEAD:" + path).stdout.decode("utf-8", "replace")
        if PEM_PRIVATE.search(text):
            hits.append((path, "a PEM private key"))
        for _ in AGE_SECRET.findall(text):
            hits.append((path, "an age secret key"))
    is_(hits, [("secrets/dev/age-dev.key", "an age secret key")],
        "the only private key in the committed tree is the dev key")


# ---- the history ----------------------------------------------------------------------------

PEM_PRIVATE = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
AGE_SECRET = re.compile(r"AGE-SECRET-KEY-1[0-9A-Z]{58}")
CLOUD_KEY = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
DOC_KEYS = {"AKIAIOSFODNN7EXAMPLE"}  # AWS's documented example key id
URL_CRED = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@\"']+:([^@\s/\"']+)@")
YAML_SECRET = re.compile(
    r"^\s*(?:-\s+)?[\"']?([A-Za-z0-9_.-]*(?:password|passwd|secret_access_key|access_secret_key|"
    r"signing_key|private_key|api_key|token))[\"']?\s*:\s*(.*?)\s*$", re.I)
PLACEHOLDER = re.compile(r"^(?:ENC\[AES256_GCM,|\$|<|\{\{|REPLACE-ME|\"\"$|''$|\||>|\[\]|\{\}|~$|"
                         r"null$)|%s|\$\{|\$\(", re.I)


def looks_secret(value):
    """A literal that could be a real credential: not a reference, an encrypted value, a
    placeholder or a NAME_IN_CAPITALS standing for one."""
    v = value.strip().strip("\"'")
    return (len(v) >= 8 and not PLACEHOLDER.search(value.strip()) and not re.search(r"\s", v)
            and not re.fullmatch(r"[A-Z][A-Z0-9_]*", v))


def scan_patch(text, dev_secret):
    """Findings in `git log -p` output: (commit, file, what)."""
    findings = []
    commit, path = "?", "?"
    for ln in text.splitlines():
        if ln.startswith("commit "):
            commit = ln.split()[1][:12]
            continue
        if ln.startswith("+++ "):
            path = ln[6:] if ln.startswith("+++ b/") else ln[4:]
            continue
        if not ln.startswith("+"):
            continue
        added = ln[1:]
        if PEM_PRIVATE.search(added):
            findings.append((commit, path, "a PEM private key"))
        for k in AGE_SECRET.findall(added):
            if k != dev_secret:
                findings.append((commit, path, "an age secret key other than the dev key"))
        for k in CLOUD_KEY.findall(added):
            if k not in DOC_KEYS:
                findings.append((commit, path, "a cloud access key id %s..." % k[:8]))
        for pw in URL_CRED.findall(added):
            if looks_secret(pw) and not re.search(r"[%$<{]", pw):
                findings.append((commit, path, "a password in a URL"))
        if path.endswith((".yaml", ".yml")):
            m = YAML_SECRET.match(added)
            if m and looks_secret(m.group(2)):
                findings.append((commit, path, "a literal %s in YAML" % m.group(1)))
    return findings


@case
def scanner_finds_planted_secrets():
    dev = secret_key_of(DEV_KEY)
    other = "AGE-SECRET-KEY-1" + "Q" * 58
    pem = "-----BEGIN " + "RSA PRIVATE KEY-----"
    planted = "\n".join([
        "commit 0123456789abcdef", "+++ b/notes.txt",
        "+" + pem,
        "+" + other,
        "+" + dev,
        "+key id AKIA" + "ABCDEFGHIJKLMNOP",
        "+key id AKIAIOSFODNN7EXAMPLE",
        "+DATABASE_URL=postgresql://glasgow:" + "Zq8vN2pL4kT9xW3r" + "@db/app",
        "+DATABASE_URL=postgresql://glasgow:%s@db/app",
        "+url: postgresql://u:p@db/app",
        "+++ b/deploy/x.yaml",
        "+  MINIO_ROOT_PASSWORD: " + "s3cr3t-Passw0rd-123",
        "+  password: ENC[AES256_GCM,data:abc,iv:d,tag:e,type:str]",
        "+  password: REPLACE-ME-later",
        "+  password: ${{ secrets.DB_PASSWORD }}",
        "+  passwordSecret:",
        "+  key: password",
        " context line: password: notadded123",
    ])
    found = scan_patch(planted, dev)
    whats = sorted(w for _, _, w in found)
    is_(whats, sorted(["a PEM private key", "an age secret key other than the dev key",
                       "a cloud access key id AKIAABCD...", "a password in a URL",
                       "a literal MINIO_ROOT_PASSWORD in YAML"]),
        "each planted secret is found, the dev key, documented examples and placeholders are not",
        found)


@case(timeout=180)
def no_plaintext_secret_in_history():
    shallow = git("rev-parse", "--is-shallow-repository").stdout.decode().strip()
    if shallow == "true":
        diag("the clone is shallow: only the history it holds is scanned")
    p = git("log", "-p", "-U0", "--no-color", "--no-ext-diff", "--no-textconv", "HEAD")
    ok(p.returncode == 0, "git log -p runs", p.stderr.decode("utf-8", "replace")[-500:])
    text = p.stdout.decode("utf-8", "replace")
    found = scan_patch(text, secret_key_of(DEV_KEY))
    is_(found, [], "no private key, cloud key or literal password added in any commit (%d "
        "commits)" % text.count("\ncommit ") if text else "no history")

    # every version of every file ever under secrets/ is encrypted
    p = git("log", "--format=%H", "--name-only", "--diff-filter=AM", "HEAD", "--", "secrets/")
    versions, commit = [], None
    for ln in p.stdout.decode().splitlines():
        if re.fullmatch(r"[0-9a-f]{40}", ln):
            commit = ln
        elif ln.strip():
            versions.append((commit, ln))
    bad = []
    for commit, path in versions:
        if path == "secrets/dev/age-dev.key":
            continue
        blob = git("show", "%s:%s" % (commit, path))
        if blob.returncode != 0:
            bad.append((commit[:12], path, "unreadable"))
            continue
        try:
            tree, meta = st.split_file(blob.stdout.decode("utf-8"))
        except (st.SopsError, UnicodeDecodeError) as e:
            bad.append((commit[:12], path, str(e)[:80]))
            continue
        for sec in ("data", "stringData"):
            for k, v in (tree.get(sec) or {}).items():
                if not (isinstance(v, str) and (v == "" or st.ENC_RE.match(v))):
                    bad.append((commit[:12], path, "%s.%s in plaintext" % (sec, k)))
    ok(versions, "the history has versions of secrets/ to check (%d)" % len(versions))
    is_(bad, [], "every version of every file under secrets/ was encrypted when committed")


if __name__ == "__main__":
    main()
