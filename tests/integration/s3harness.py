"""Helpers for the tests that need the S3 store (tests/integration/test_rgw.py, and
every test of the object storage).

Standard library only, on top of harness.py. The store is the throwaway Ceph
RADOS Gateway that tests/run-all starts with .ci/rgw, named by:

    GLASGOW_TEST_S3_ENDPOINT            http://127.0.0.1:PORT
    GLASGOW_TEST_S3_REGION              the region requests are signed for
    GLASGOW_TEST_S3_ACCESS_KEY_ID[_FILE]
    GLASGOW_TEST_S3_SECRET_ACCESS_KEY[_FILE]
    GLASGOW_TEST_S3_BUCKET              the store bucket (created by .ci/rgw)
    GLASGOW_TEST_S3_DIR                 the cluster's directory (for .ci/rgw stop/start)
    GLASGOW_TEST_S3_CA_FILE             the CA of an https endpoint (RGW_TLS_PORT, .ci/rgw)

To run one file by hand:

    bash .ci/rgw start /tmp/s3 17480 && eval "$(bash tests/integration/s3harness.py env /tmp/s3 17480)"
    GLASGOW_BIN=build/glasgow python3 tests/integration/test_rgw.py

Without those variables a file fails (one "not ok" and exit status 1), as for
the database: tests/run-all always provides them.

What is here:
- Store.from_env(): the settings, and runtime_env() for a glasgow server (the
  S3_* variables it reads, keys by file path).
- sign(...): an AWS Signature Version 4 signer written here with hashlib and
  hmac, independent of the runtime's C signer, for raw requests from Python.
- Store.request(method, key, ...): one signed request, answered as an
  S3Response (status, headers, body; .error_code() parses an S3 XML error).
- Store.put/get/head/delete, list_keys (ListObjectsV2, every page),
  list_uploads (ListMultipartUploads), and empty() which deletes every object
  and aborts every multipart upload in a bucket: call it between tests, and
  assert with list_keys() that nothing was left behind.
"""
import datetime
import hashlib
import hmac
import http.client
import os
import ssl
import sys
import urllib.parse
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import REPO  # noqa: E402

RGW_SCRIPT = os.path.join(REPO, ".ci", "rgw")
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


# ---- SigV4 ---------------------------------------------------------------------------------

def uri_encode(s, keep_slash):
    """S3's URI encoding: every byte but A-Z a-z 0-9 - _ . ~ (and / when keep_slash) as %XX."""
    safe = "-_.~" + ("/" if keep_slash else "")
    return urllib.parse.quote(s, safe=safe)


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret_key, day, region, service="s3"):
    """The SigV4 signing key for a day (YYYYMMDD), region and service."""
    return _hmac(_hmac(_hmac(_hmac(("AWS4" + secret_key).encode(), day), region), service),
                 "aws4_request")


def sign(method, path, query, headers, payload_hash, region, access_key, secret_key,
         amz_date=None, service="s3"):
    """Signs one request (AWS Signature Version 4, header-signed).

    path: already URI-encoded, used as given (S3: no normalisation).
    query: a list of (name, value) pairs, not encoded.
    headers: a dict of the headers to sign (names any case; host included).
    payload_hash: hex SHA-256 of the body, or "UNSIGNED-PAYLOAD".
    Returns a dict of the headers to add: Authorization and X-Amz-Date.
    """
    amz_date = amz_date or datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    hs = {k.lower(): " ".join(str(v).strip().split()) for k, v in headers.items()}
    hs["x-amz-date"] = amz_date
    names = sorted(hs)
    canonical_query = "&".join(
        "%s=%s" % kv for kv in sorted((uri_encode(k, False), uri_encode(v, False)) for k, v in query))
    canonical = "\n".join([
        method, path, canonical_query,
        "".join("%s:%s\n" % (n, hs[n]) for n in names),
        ";".join(names), payload_hash])
    scope = "%s/%s/%s/aws4_request" % (day, region, service)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    signature = hmac.new(signing_key(secret_key, day, region, service), to_sign.encode(),
                         hashlib.sha256).hexdigest()
    return {
        "Authorization": "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
                         % (access_key, scope, ";".join(names), signature),
        "X-Amz-Date": amz_date,
    }


# ---- the store -----------------------------------------------------------------------------

class S3Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> value
        self.body = body

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def xml(self):
        return ET.fromstring(self.body)

    def error_code(self):
        """The <Code> of an S3 XML error body, or None."""
        try:
            root = self.xml()
        except ET.ParseError:
            return None
        if root.tag != "Error":
            return None
        return root.findtext("Code")

    def __repr__(self):
        return "<S3Response %d %r %r>" % (self.status, self.headers, self.body[:300])


def _read_secret(env, name):
    """The value of env[name], or the contents of the file env[name + "_FILE"]."""
    if env.get(name):
        return env[name]
    path = env.get(name + "_FILE")
    if path:
        with open(path) as f:
            return f.read().strip()
    return ""


class Store:
    """One S3 endpoint with one set of credentials."""

    def __init__(self, endpoint, region, access_key, secret_key, bucket, directory="",
                 access_key_file="", secret_key_file="", ca_file=""):
        u = urllib.parse.urlsplit(endpoint)
        self.endpoint = endpoint
        self.host = u.hostname
        self.port = u.port or (443 if u.scheme == "https" else 80)
        self.https = u.scheme == "https"
        self.region = region
        self.access_key = access_key
        self.secret_key = secret_key
        self.bucket = bucket
        self.dir = directory
        self.access_key_file = access_key_file
        self.secret_key_file = secret_key_file
        self.ca_file = ca_file

    @classmethod
    def from_env(cls, env=None):
        """The test store from GLASGOW_TEST_S3_*; None when they are not set."""
        env = os.environ if env is None else env
        p = "GLASGOW_TEST_S3_"
        if not env.get(p + "ENDPOINT"):
            return None
        return cls(env[p + "ENDPOINT"], env.get(p + "REGION", "us-east-1"),
                   _read_secret(env, p + "ACCESS_KEY_ID"),
                   _read_secret(env, p + "SECRET_ACCESS_KEY"),
                   env.get(p + "BUCKET", "glasgow"), env.get(p + "DIR", ""),
                   env.get(p + "ACCESS_KEY_ID_FILE", ""), env.get(p + "SECRET_ACCESS_KEY_FILE", ""),
                   env.get(p + "CA_FILE", ""))

    def runtime_env(self, bucket=None):
        """The S3_* variables a glasgow server reads to use this store (keys by file when
        the store's files are known)."""
        env = {"S3_ENDPOINT": self.endpoint, "S3_REGION": self.region,
               "S3_BUCKET": bucket or self.bucket}
        if self.access_key_file and self.secret_key_file:
            env["S3_ACCESS_KEY_ID_FILE"] = self.access_key_file
            env["S3_SECRET_ACCESS_KEY_FILE"] = self.secret_key_file
        else:
            env["S3_ACCESS_KEY_ID"] = self.access_key
            env["S3_SECRET_ACCESS_KEY"] = self.secret_key
        if self.ca_file:
            env["S3_CA_FILE"] = self.ca_file
        return env

    def host_header(self):
        default = 443 if self.https else 80
        return self.host if self.port == default else "%s:%d" % (self.host, self.port)

    def request(self, method, key="", bucket=None, query=(), headers=None, body=b"",
                payload_hash=None, sign_it=True, secret_key=None, timeout=30):
        """Sends one path-style request to /bucket/key (key="" for the bucket itself; bucket=""
        with key="" for the service) and returns an S3Response.

        query: (name, value) pairs (value "" for a bare ?uploads). payload_hash defaults to the
        SHA-256 of body. sign_it=False sends it unsigned; secret_key signs with another secret.
        """
        bucket = self.bucket if bucket is None else bucket
        path = "/"
        if bucket:
            path += uri_encode(bucket, True)
            if key:
                path += "/" + uri_encode(key, True)
        hdrs = {"Host": self.host_header()}
        hdrs.update(headers or {})
        if payload_hash is None:
            payload_hash = hashlib.sha256(body).hexdigest()
        if sign_it:
            hdrs["x-amz-content-sha256"] = payload_hash
            signed = {k: v for k, v in hdrs.items()
                      if k.lower() in ("host", "content-md5", "content-type", "range")
                      or k.lower().startswith("x-amz-")}
            hdrs.update(sign(method, path, list(query), signed, payload_hash, self.region,
                             self.access_key, secret_key or self.secret_key))
        target = path
        if query:
            target += "?" + "&".join(uri_encode(k, False) + ("=" + uri_encode(v, False) if v != "" else "")
                                     for k, v in query)
        if self.https:
            ctx = ssl.create_default_context(cafile=self.ca_file or None)
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=ctx)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for k, v in hdrs.items():
                conn.putheader(k, v)
            if body or method in ("PUT", "POST"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body if body else None)
            r = conn.getresponse()
            data = r.read()
            return S3Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        finally:
            conn.close()

    # -- objects

    def put(self, key, body, bucket=None, headers=None):
        return self.request("PUT", key, bucket=bucket, body=body, headers=headers)

    def get(self, key, bucket=None, headers=None):
        return self.request("GET", key, bucket=bucket, headers=headers)

    def head(self, key, bucket=None):
        return self.request("HEAD", key, bucket=bucket)

    def delete(self, key, bucket=None):
        return self.request("DELETE", key, bucket=bucket)

    def list_page(self, bucket=None, prefix="", max_keys=1000, token=None):
        """One ListObjectsV2 page: (keys, next continuation token or None, S3Response)."""
        q = [("list-type", "2"), ("max-keys", str(max_keys))]
        if prefix:
            q.append(("prefix", prefix))
        if token:
            q.append(("continuation-token", token))
        r = self.request("GET", bucket=bucket, query=q)
        if r.status != 200:
            raise RuntimeError("ListObjectsV2 failed: %r" % (r,))
        root = r.xml()
        keys = [c.findtext(S3_NS + "Key") for c in root.findall(S3_NS + "Contents")]
        truncated = root.findtext(S3_NS + "IsTruncated") == "true"
        return keys, (root.findtext(S3_NS + "NextContinuationToken") if truncated else None), r

    def list_keys(self, bucket=None, prefix="", page=1000):
        """Every key in the bucket (under prefix), following continuation tokens."""
        out, token = [], None
        while True:
            keys, token, _ = self.list_page(bucket, prefix, page, token)
            out += keys
            if not token:
                return out

    def list_uploads(self, bucket=None, page=1000):
        """The multipart uploads in progress: a list of (key, upload id), every page."""
        out, marker = [], None
        while True:
            q = [("uploads", ""), ("max-uploads", str(page))]
            if marker:
                q += [("key-marker", marker[0]), ("upload-id-marker", marker[1])]
            r = self.request("GET", bucket=bucket, query=q)
            if r.status != 200:
                raise RuntimeError("ListMultipartUploads failed: %r" % (r,))
            root = r.xml()
            out += [(u.findtext(S3_NS + "Key"), u.findtext(S3_NS + "UploadId"))
                    for u in root.findall(S3_NS + "Upload")]
            if root.findtext(S3_NS + "IsTruncated") != "true":
                return out
            marker = (root.findtext(S3_NS + "NextKeyMarker"), root.findtext(S3_NS + "NextUploadIdMarker"))

    def empty(self, bucket=None):
        """Deletes every object and aborts every multipart upload in the bucket."""
        for key, upload in self.list_uploads(bucket):
            self.request("DELETE", key, bucket=bucket, query=[("uploadId", upload)])
        for key in self.list_keys(bucket):
            r = self.delete(key, bucket=bucket)
            if r.status not in (204, 404):
                raise RuntimeError("DELETE %s failed: %r" % (key, r))

    # -- buckets

    def create_bucket(self, bucket):
        return self.request("PUT", bucket=bucket)

    def delete_bucket(self, bucket):
        self.empty(bucket)
        return self.request("DELETE", bucket=bucket)

    # -- multipart

    def create_upload(self, key, bucket=None):
        """CreateMultipartUpload; returns the upload id."""
        r = self.request("POST", key, bucket=bucket, query=[("uploads", "")])
        if r.status != 200:
            raise RuntimeError("CreateMultipartUpload failed: %r" % (r,))
        return r.xml().findtext(S3_NS + "UploadId")

    def upload_part(self, key, upload, number, body, bucket=None):
        return self.request("PUT", key, bucket=bucket, body=body,
                            query=[("partNumber", str(number)), ("uploadId", upload)])

    def complete_upload(self, key, upload, etags, bucket=None):
        """CompleteMultipartUpload with parts [(number, etag)...]."""
        xml = "<CompleteMultipartUpload>%s</CompleteMultipartUpload>" % "".join(
            "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>" % p for p in etags)
        return self.request("POST", key, bucket=bucket, body=xml.encode(),
                            query=[("uploadId", upload)])

    def abort_upload(self, key, upload, bucket=None):
        return self.request("DELETE", key, bucket=bucket, query=[("uploadId", upload)])


class BucketDbFixture:
    """For main(fixture=...): dbharness.DbFixture (a fresh database, a server on it, an
    admin) with the store bucket `bucket` created first and emptied and deleted last."""

    def __init__(self, store, bucket, prefix, env=None, extra_routes=None):
        import dbharness
        self.store, self.bucket = store, bucket
        self.inner = dbharness.DbFixture(prefix, env=env, extra_routes=extra_routes)

    def __enter__(self):
        r = self.store.create_bucket(self.bucket)
        if r.status != 200:
            raise RuntimeError("creating the store bucket: %r" % (r,))
        return self.inner.__enter__()

    def __exit__(self, *exc):
        try:
            return self.inner.__exit__(*exc)
        finally:
            self.store.delete_bucket(self.bucket)


def skip_without_binding():
    """Skips the whole file (a TAP plan of 0) when the binary has no glasgow.s3 binding."""
    import subprocess
    import harness
    p = harness.spawn([harness.GLASGOW_BIN, "run", "/dev/stdin"], stdin=subprocess.PIPE,
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.communicate("return pcall(require, 'glasgow.s3') and 0 or 3\n", timeout=30)
    if p.returncode != 0:
        print("1..0 # SKIP the glasgow.s3 binding is not built in", flush=True)
        sys.exit(0)


def store_or_fail():
    """The test store; fails the file at once when none is configured."""
    s = Store.from_env()
    if s is None or not s.access_key or not s.secret_key:
        print("not ok 1 - GLASGOW_TEST_S3_ENDPOINT and its keys are not set (run tests/run-all, "
              "or start a store with .ci/rgw)", flush=True)
        print("1..1", flush=True)
        sys.exit(1)
    return s


def _print_env(directory, port, bucket="glasgow"):
    """Prints shell exports of GLASGOW_TEST_S3_* for a store started with .ci/rgw (from what
    `.ci/rgw env` prints, keys by file)."""
    import subprocess
    out = subprocess.run(["bash", RGW_SCRIPT, "env", directory, str(port), bucket],
                         check=True, stdout=subprocess.PIPE, text=True, timeout=30).stdout
    for line in out.splitlines():
        name, _, value = line.partition("=")
        print("export GLASGOW_TEST_%s=%s" % (name, value))
    print("export GLASGOW_TEST_S3_DIR=%s" % os.path.realpath(directory))


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "env":
        _print_env(*sys.argv[2:5])
    else:
        sys.exit("usage: s3harness.py env DIR PORT [BUCKET]")
