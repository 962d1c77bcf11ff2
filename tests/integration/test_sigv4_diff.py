"""glasgow.sigv4 against AWS's own signer (npm @smithy/signature-v4).

A few thousand deterministic pseudo-random S3 requests (object keys with
spaces, +, %, ?, #, ~, //, unicode and trailing slashes; repeated and empty
query parameters such as ?uploads; headers needing trimming, repeated
headers; session tokens; aws-chunked bodies) are signed by
tests/sigv4/glasgow_sign.lua through `glasgow run` and by
tests/sigv4/smithy_sign.js under node, each in one process, and compared:
header-signed requests by signature and Authorization, presigned URLs by
signature and query parameters, chunked bodies by every chunk signature.
One TAP line per kind of request, with the count compared; mismatches are
grouped and a few examples printed.

Seed: GLASGOW_SIGV4_SEED (default 1). node_modules comes from `.ci/deps`
(npm ci in tests/sigv4).
"""
import datetime
import json
import os
import random
import subprocess
import urllib.parse

from harness import REPO, case, diag, main, mkdtemp, ok, run_glasgow

SIGV4_DIR = os.path.join(REPO, "tests", "sigv4")
SEED = int(os.environ.get("GLASGOW_SIGV4_SEED", "1"))
N_SIGN = 3000
N_PRESIGN = 1000
N_CHUNKED = 200
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
STREAMING = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"

KEY_PARTS = ["a", "photo 1.jpg", "x+y", "100%", "what?", "#hash", "~tilde", "", "dir/", "//",
             "caf\u00e9", "\u65e5\u672c\u8a9e", "\U0001f600", "a b  c", "(x)!*'", "semi;colon",
             "eq=amp&", "..", ".", "back\\slash", "tab\tin", "quote\"", "<>", "[]", "^`{|}",
             "\u00a0nbsp", "trailing/"]
QUERY_NAMES = ["uploads", "uploadId", "partNumber", "prefix", "delimiter", "max-keys",
               "list-type", "continuation-token", "versionId", "acl", "a b", "\u00fc", "x+y",
               "k%", "", "response-content-disposition", "~", "Prefix"]
QUERY_VALUES = ["", "", "1", "2", "J", "a b", "x+y/z", "100%", "?#&=", "caf\u00e9", "\U0001f600",
                "attachment; filename=\"r\u00e9sum\u00e9.pdf\"", "  spaced  ", "~-._", "/",
                "line\nbreak"]
HEADER_NAMES = ["Content-Type", "content-md5", "Range", "x-amz-meta-owner", "X-Amz-Meta-Note",
                "x-amz-storage-class", "If-Match", "If-None-Match", "Content-Disposition",
                "x-amz-acl", "x-amz-copy-source", "Content-Length", "Content-Encoding",
                "x-amz-decoded-content-length", "X-Custom"]
HEADER_VALUES = ["text/plain", "  padded  ", "\tta b\t", "a  b   c", "bytes=0-9", "",
                 "   ", "\"etag-1\"", "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf",
                 "r\u00e9sum\u00e9", "REDUCED_REDUNDANCY", "/bucket/key%20with%20space",
                 "a \t b", "x,y", "12345"]
REGIONS = ["us-east-1", "eu-west-2", "default", "ap-southeast-1", "us-gov-west-1"]
METHODS = ["GET", "PUT", "POST", "DELETE", "HEAD"]
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def s3_encode_path(key):
    """S3's canonical URI of a key: every byte but unreserved and '/' as %XX."""
    return urllib.parse.quote(key.encode("utf-8"), safe="/-._~")


def rand_str(rng, alphabet, lo, hi):
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))


def gen_time(rng):
    t = datetime.datetime(2000, 1, 1) + datetime.timedelta(seconds=rng.randrange(38 * 365 * 86400))
    return t.strftime("%Y%m%dT%H%M%SZ")


def gen_key(rng):
    key = "".join(rng.choice(KEY_PARTS) for _ in range(rng.randint(0, 5)))
    if rng.random() < 0.2:
        key += "/"
    return key


def gen_query(rng, n_max):
    pairs = []
    for _ in range(rng.randint(0, n_max)):
        if pairs and rng.random() < 0.25:
            name = rng.choice(pairs)[0]  # a repeated name
        elif rng.random() < 0.15:
            name = rand_str(rng, "abcXYZ09-_.~ %+&=/\u00e9", 1, 8)
        else:
            name = rng.choice(QUERY_NAMES)
        value = rng.choice(QUERY_VALUES) if rng.random() < 0.8 else rand_str(
            rng, "ab Z09-_.~%+&=?#/\u00e9\u4e2d", 0, 12)
        pairs.append([name, value])
    if rng.random() < 0.1:
        pairs.append(["uploads", ""])
    return pairs


def gen_headers(rng, host, presign):
    headers = [["Host" if rng.random() < 0.5 else "host", host]]
    names = [n for n in HEADER_NAMES if not (presign and n.lower().startswith("x-amz-"))]
    for _ in range(rng.randint(0, 5)):
        if len(headers) > 1 and rng.random() < 0.2:
            name = rng.choice(headers[1:])[0]
            name = name.upper() if rng.random() < 0.5 else name  # repeated, any case
        else:
            name = rng.choice(names)
        headers.append([name, rng.choice(HEADER_VALUES)])
    rng.shuffle(headers)
    return headers


def gen_case(rng, i, kind):
    host = rng.choice(["examplebucket.s3.amazonaws.com", "127.0.0.1:7480", "s3.amazonaws.com",
                       "[::1]:9000"])
    bucket = rng.choice(["examplebucket", "b", "my.bucket-1"])
    path = "/" + bucket if rng.random() < 0.1 else "/" + bucket + "/" + s3_encode_path(gen_key(rng))
    c = {
        "id": i,
        "kind": kind,
        "method": rng.choice(METHODS),
        "path": path,
        "query": gen_query(rng, 5),
        "headers": gen_headers(rng, host, kind == "presign"),
        "region": rng.choice(REGIONS),
        "service": "s3" if rng.random() < 0.9 else rng.choice(["execute-api", "sts"]),
        "access_key": rand_str(rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16, 20),
        "secret_key": rand_str(rng, B64 + (" " if rng.random() < 0.1 else ""), 30, 40),
        "session_token": rand_str(rng, B64 + "=", 20, 200) if rng.random() < 0.3 else None,
        "time": gen_time(rng),
    }
    if kind == "presign":
        c["expires"] = rng.choice([1, 60, 900, 3600, 86400, 604800])
        c["payload_hash"] = "UNSIGNED-PAYLOAD"
        return c
    if kind == "chunked":
        c["kind"] = "sign"
        c["method"] = "PUT"
        c["payload_hash"] = STREAMING
        sizes = [rng.choice([1, 8192, 65536, rng.randint(1, 70000)]) for _ in range(rng.randint(1, 3))]
        c["chunks"] = [[s, rng.choice("aZ0-")] for s in sizes] + [[0, "a"]]
        c["headers"].append(["x-amz-content-sha256", STREAMING])
        c["headers"].append(["Content-Encoding", "aws-chunked"])
        return c
    r = rng.random()
    if r < 0.15:
        # No x-amz-content-sha256 header: smithy signs the empty body's hash.
        c["payload_hash"] = EMPTY_SHA256
    else:
        ph = rng.choice([EMPTY_SHA256, "UNSIGNED-PAYLOAD", "%064x" % rng.getrandbits(256)])
        c["payload_hash"] = ph
        c["headers"].append(["x-amz-content-sha256", ph])
        rng.shuffle(c["headers"])
    return c


def gen_cases():
    rng = random.Random(SEED)
    cases = []
    for kind, n in (("sign", N_SIGN), ("presign", N_PRESIGN), ("chunked", N_CHUNKED)):
        for _ in range(n):
            cases.append(gen_case(rng, len(cases), kind))
    return cases


def run_signers(cases):
    d = mkdtemp()
    path = os.path.join(d, "cases.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for c in cases:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")
    p = run_glasgow(["run", os.path.join(SIGV4_DIR, "glasgow_sign.lua"), path], timeout=120)
    if not ok(p.returncode == 0, "glasgow run signs every generated request", p.stderr[-2000:]):
        return None, None
    ours = [json.loads(line) for line in p.stdout.splitlines() if line]
    n = subprocess.run(["node", os.path.join(SIGV4_DIR, "smithy_sign.js"), path], cwd=SIGV4_DIR,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    if not ok(n.returncode == 0, "smithy signs every generated request", n.stderr[-2000:]):
        return None, None
    theirs = [json.loads(line) for line in n.stdout.splitlines() if line]
    return ours, theirs


def compare(kind, cases, ours, theirs, fields):
    """One TAP line for the cases of one kind; mismatches grouped by field."""
    mismatches = {}
    for c in cases:
        a, b = ours[c["id"]], theirs[c["id"]]
        for field, get_a, get_b in fields:
            if get_a(a) != get_b(b):
                mismatches.setdefault(field, []).append((c, get_a(a), get_b(b)))
    ok(not mismatches, "%s: %d requests sign the same as smithy" % (kind, len(cases)))
    for field, items in sorted(mismatches.items()):
        diag("%d mismatches in %s; first ones:" % (len(items), field))
        for c, a, b in items[:3]:
            diag("  case %s" % json.dumps(c, ensure_ascii=False)[:600])
            diag("  ours:   %r" % (a,))
            diag("  smithy: %r" % (b,))


@case(timeout=600)
def differential():
    if not ok(os.path.isdir(os.path.join(SIGV4_DIR, "node_modules", "@smithy", "signature-v4")),
              "@smithy/signature-v4 is installed (.ci/deps runs npm ci in tests/sigv4)"):
        return
    cases = gen_cases()
    ours, theirs = run_signers(cases)
    if ours is None:
        return
    if not ok(len(ours) == len(cases) == len(theirs)
              and all(o["id"] == t["id"] == c["id"] for o, t, c in zip(ours, theirs, cases)),
              "both signers answer every request, in order"):
        return

    def pairs_of_query(q):
        return sorted(urllib.parse.parse_qsl(q, keep_blank_values=True, strict_parsing=False,
                                             encoding="utf-8"))

    sign = [c for c in cases if c["kind"] == "sign" and "chunks" not in c]
    presign = [c for c in cases if c["kind"] == "presign"]
    chunked = [c for c in cases if "chunks" in c]
    compare("header-signed", sign, ours, theirs, [
        ("signature", lambda r: r["signature"], lambda r: r["signature"]),
        ("authorization", lambda r: r["authorization"], lambda r: r["authorization"]),
    ])
    compare("presigned", presign, ours, theirs, [
        ("signature", lambda r: r["signature"], lambda r: r["signature"]),
        ("query parameters", lambda r: pairs_of_query(r["query"]),
         lambda r: sorted((k, v) for k, v in r["params"])),
    ])
    compare("aws-chunked", chunked, ours, theirs, [
        ("seed signature", lambda r: r["signature"], lambda r: r["signature"]),
        ("chunk signatures", lambda r: r["chunks"], lambda r: r["chunks"]),
    ])
    n_chunks = sum(len(c["chunks"]) for c in chunked)
    diag("compared %d requests (%d header-signed, %d presigned, %d aws-chunked with %d chunks),"
         " seed %d" % (len(cases), len(sign), len(presign), len(chunked), n_chunks, SEED))


BINDING = r'''
local sigv4 = require "glasgow.sigv4"
local base = {
    method = "GET", path = "/test.txt", region = "us-east-1", service = "s3",
    access_key = "AKIAIOSFODNN7EXAMPLE", secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    time = "20130524T000000Z",
    payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    headers = { { "Host", "examplebucket.s3.amazonaws.com" }, { "Range", "bytes=0-9" },
                { "x-amz-content-sha256",
                  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" } },
}
local function with(t)
    local r = {}
    for k, v in pairs(base) do r[k] = v end
    for k, v in pairs(t) do r[k] = v end
    return r
end
local r = sigv4.sign(base)
print("sig", r.signature)
print("hdr", r.headers[1][1], r.headers[1][2], #r.headers)
local t = sigv4.sign(with { session_token = "tok" })
print("tok", t.headers[2][1], t.headers[2][2], t.signed_headers)
local p = sigv4.presign(with { headers = { { "Host", "examplebucket.s3.amazonaws.com" } }, expires = 86400 })
print("pre", p.signature, p.params[#p.params][1], p.url:sub(1, 26))
for _, bad in ipairs {
    { "sign", 1 },
    { "sign", with { time = "2013-05-24" } },
    { "sign", with { method = 7 } },
    { "sign", with { query = { "a" } } },
    { "sign", with { headers = { { "x-amz-date", "x" }, { "host", "h" } } } },
    { "presign", with { expires = 0 } },
    { "chunk_signature", { previous = "x" } },
} do
    local ok_, err = pcall(sigv4[bad[1]], bad[2])
    print("bad", ok_, (tostring(err):match("bad argument #1") ~= nil))
end
'''


@case
def binding():
    d = mkdtemp()
    path = os.path.join(d, "b.lua")
    with open(path, "w") as f:
        f.write(BINDING)
    p = run_glasgow(["run", path])
    ok(p.returncode == 0, "the binding script runs", p.stderr)
    lines = [line.split("\t") for line in p.stdout.splitlines()]
    by = {}
    for line in lines:
        by.setdefault(line[0], []).append(line[1:])
    ok(by.get("sig") == [["f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"]],
       "sign: the S3 GET object example's signature", p.stdout)
    ok(by.get("hdr") == [["X-Amz-Date", "20130524T000000Z", "1"]],
       "sign: headers lists X-Amz-Date alone without a token", p.stdout)
    ok(by.get("tok") == [["X-Amz-Security-Token", "tok",
                          "host;range;x-amz-content-sha256;x-amz-date;x-amz-security-token"]],
       "sign: a session token is added and signed", p.stdout)
    ok(by.get("pre") == [["aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
                          "X-Amz-Signature", "/test.txt?X-Amz-Algorithm="]],
       "presign: the S3 presigned URL example", p.stdout)
    ok(by.get("bad") == [["false", "true"]] * 7, "misuse raises bad argument", p.stdout)


if __name__ == "__main__":
    main()
