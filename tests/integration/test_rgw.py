"""The local S3 server (.ci/rgw, Ceph's RADOS Gateway) is a real S3 store.

Talks to the store that tests/run-all started (GLASGOW_TEST_S3_*), with the
independent signer in s3harness.py, to prove what the object storage builds on:
- authentication is enforced: a wrong signature, an unknown key, an unsigned
  request and a payload that does not match its declared hash are refused;
- objects round-trip, with ranges, HEAD and DELETE;
- multipart uploads complete, refuse a small part that is not the last
  (EntityTooSmall) and abort;
- ListObjectsV2 pages with continuation tokens;
- aws-chunked uploads are verified chunk by chunk.
Cases named "RGW differs" pin down where this RGW (Ceph 16.2) answers
differently from AWS S3; README.md, "The local S3 server (Ceph RGW)", lists
them and what the client does about each. If one of them fails after an
upgrade, RGW changed: update the README.
"""
import base64
import hashlib
import hmac
import http.client
import os
import secrets
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import case, diag, is_, main, ok  # noqa: E402
import s3harness as s3h  # noqa: E402

STORE = s3h.store_or_fail()
MIB = 1024 * 1024


def key(name):
    """A key of its own for each case, so that cases never see each other's objects."""
    return "test-rgw/%s/%s" % (secrets.token_hex(4), name)


@case
def signatures_are_checked(st):
    k = key("auth")
    is_(st.put(k, b"x").status, 200, "a correctly signed PUT is accepted")
    r = st.request("GET", k, secret_key=st.secret_key[:-1] + ("A" if st.secret_key[-1] != "A" else "B"))
    is_((r.status, r.error_code()), (403, "SignatureDoesNotMatch"),
        "a request signed with the wrong secret: 403 SignatureDoesNotMatch", r)
    r = st.request("PUT", k, body=b"y", secret_key="wrong")
    is_((r.status, r.error_code()), (403, "SignatureDoesNotMatch"),
        "... also for a PUT, which stores nothing", r)
    is_(st.get(k).body, b"x", "... the object is unchanged")
    good = st.access_key
    st.access_key = "AKIA" + secrets.token_hex(8).upper()
    try:
        r = st.request("GET", k)
    finally:
        st.access_key = good
    is_((r.status, r.error_code()), (403, "InvalidAccessKeyId"),
        "an unknown access key: 403 InvalidAccessKeyId", r)
    r = st.request("GET", k, sign_it=False)
    is_((r.status, r.error_code()), (403, "AccessDenied"),
        "an unsigned GET of a private object: 403 AccessDenied", r)
    r = st.request("PUT", key("anon"), body=b"z", sign_it=False)
    is_((r.status, r.error_code()), (403, "AccessDenied"), "an unsigned PUT: 403 AccessDenied", r)
    r = st.request("GET", bucket=st.bucket, query=[("list-type", "2")], sign_it=False)
    is_(r.status, 403, "an unsigned listing of the store bucket: 403", r)
    r = st.request("PUT", key("hash"), body=b"one body",
                   payload_hash=hashlib.sha256(b"another body").hexdigest())
    is_((r.status, r.error_code()), (400, "XAmzContentSHA256Mismatch"),
        "a body that does not match its signed x-amz-content-sha256: 400 XAmzContentSHA256Mismatch", r)
    r = st.request("PUT", key("md5"), body=b"body", headers={"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg=="})
    is_((r.status, r.error_code()), (400, "BadDigest"), "a wrong Content-MD5: 400 BadDigest", r)
    st.delete(k)
    is_(st.list_keys(prefix=k.rsplit("/", 1)[0]), [], "refused PUTs stored nothing")


@case
def region_in_the_scope(st):
    good = st.region
    st.region = "eu-west-3"
    try:
        r = st.request("GET", bucket=st.bucket, query=[("list-type", "2"), ("max-keys", "1")])
    finally:
        st.region = good
    diag("a request signed for region eu-west-3 answers %d %s" % (r.status, r.error_code()))
    is_(r.status, 200, "RGW differs: a signature for any region is accepted "
        "(AWS: 400 AuthorizationHeaderMalformed)", r)


@case
def object_round_trip(st):
    k = key("round trip/ü ~+%.bin")
    data = os.urandom(100_000)
    r = st.put(k, data, headers={"Content-Type": "application/x-test"})
    is_(r.status, 200, "PUT 100000 random bytes", r)
    etag = r.header("etag")
    is_(etag, '"%s"' % hashlib.md5(data).hexdigest(), "... ETag is the quoted MD5 of the body")
    r = st.head(k)
    is_((r.status, r.header("content-length"), r.header("etag"), r.header("content-type")),
        (200, "100000", etag, "application/x-test"), "HEAD: size, ETag, Content-Type", r)
    r = st.get(k)
    ok(r.status == 200 and r.body == data, "GET returns the same bytes", r.status, len(r.body))
    for rng, want, cr in (("bytes=0-0", data[:1], "bytes 0-0/100000"),
                          ("bytes=-10", data[-10:], "bytes 99990-99999/100000"),
                          ("bytes=99000-", data[99000:], "bytes 99000-99999/100000"),
                          ("bytes=99990-200000", data[99990:], "bytes 99990-99999/100000")):
        r = st.get(k, headers={"Range": rng})
        ok(r.status == 206 and r.body == want and r.header("content-range") == cr,
           "Range %s: 206, %s" % (rng, cr), r)
    r = st.get(k, headers={"Range": "bytes=100000-"})
    is_((r.status, r.error_code()), (416, "InvalidRange"), "a range past the end: 416 InvalidRange", r)
    r = st.get(k, headers={"If-None-Match": etag})
    is_(r.status, 304, "If-None-Match with the ETag: 304", r)
    r = st.get(k, headers={"If-Match": '"0123"'})
    is_(r.status, 412, "If-Match with another ETag: 412", r)
    is_(st.put(k + ".empty", b"").status, 200, "PUT of 0 bytes")
    r = st.get(k + ".empty")
    ok(r.status == 200 and r.body == b"", "GET of 0 bytes", r)
    is_(st.delete(k).status, 204, "DELETE: 204")
    is_(st.delete(k + ".empty").status, 204, "DELETE of the empty object: 204")
    r = st.get(k)
    is_((r.status, r.error_code()), (404, "NoSuchKey"), "GET after DELETE: 404 NoSuchKey", r)
    is_(st.delete(k).status, 204, "DELETE of a missing key: 204, as S3")
    r = st.get(k, bucket="no-such-bucket-" + secrets.token_hex(4))
    is_((r.status, r.error_code()), (404, "NoSuchBucket"), "GET in a missing bucket: 404 NoSuchBucket", r)


@case(timeout=120)
def multipart_upload(st):
    k = key("multipart")
    small = os.urandom(1024)
    big = os.urandom(5 * MIB)
    up = st.create_upload(k)
    ok(bool(up), "CreateMultipartUpload returns an upload id")
    ok((k, up) in st.list_uploads(), "... listed by ListMultipartUploads")
    r1 = st.upload_part(k, up, 1, small)
    r2 = st.upload_part(k, up, 2, small)
    is_((r1.status, r2.status), (200, 200), "two parts of 1 KiB are accepted one by one")
    r = st.complete_upload(k, up, [(1, r1.header("etag")), (2, r2.header("etag"))])
    is_((r.status, r.error_code()), (400, "EntityTooSmall"),
        "completing with a 1 KiB part that is not the last: 400 EntityTooSmall", r)
    is_(st.head(k).status, 404, "... and no object appears")
    r1 = st.upload_part(k, up, 1, big)
    is_(r1.status, 200, "part 1 replaced by 5 MiB")
    r = st.complete_upload(k, up, [(1, r1.header("etag")), (2, r2.header("etag"))])
    is_(r.status, 200, "completing 5 MiB + 1 KiB (the small part last): 200", r)
    is_(r.xml().tag, s3h.S3_NS + "CompleteMultipartUploadResult", "... with a result, not an <Error>", r)
    want = '"%s-2"' % hashlib.md5(hashlib.md5(big).digest() + hashlib.md5(small).digest()).hexdigest()
    etag_in_result = r.xml().findtext(s3h.S3_NS + "ETag")
    diag("CompleteMultipartUploadResult ETag: %r" % etag_in_result)
    ok(etag_in_result in ("", None), "RGW differs: the result's <ETag> is empty (AWS: the object's ETag)",
       etag_in_result)
    h = st.head(k)
    is_((h.header("etag"), h.header("content-length")), (want, str(5 * MIB + 1024)),
        "HEAD: the multipart ETag (MD5 of the part MD5s, -2) and the full size", h)
    g = st.get(k)
    ok(g.body == big + small, "GET returns part 1 then part 2", len(g.body))
    g = st.get(k, headers={"Range": "bytes=%d-%d" % (5 * MIB - 2, 5 * MIB + 1)})
    is_(g.body, big[-2:] + small[:2], "a range across the part boundary")
    ok((k, up) not in st.list_uploads(), "the completed upload is no longer listed")

    k2 = key("aborted")
    up2 = st.create_upload(k2)
    is_(st.upload_part(k2, up2, 1, big).status, 200, "a second upload gets a 5 MiB part")
    r = st.abort_upload(k2, up2)
    is_(r.status, 204, "AbortMultipartUpload: 204", r)
    ok((k2, up2) not in st.list_uploads(), "... no longer listed")
    is_(st.head(k2).status, 404, "... and no object")
    r = st.request("GET", k2, query=[("uploadId", up2)])
    diag("ListParts on the aborted upload: %d %s" % (r.status, r.error_code()))
    is_((r.status, r.error_code()), (404, "NoSuchKey"),
        "RGW differs: ListParts on an aborted upload answers 404 NoSuchKey (AWS: NoSuchUpload)", r)
    r = st.upload_part(k2, up2, 2, small)
    diag("UploadPart on the aborted upload: %d %s" % (r.status, r.error_code()))
    is_((r.status, r.error_code()), (404, "NoSuchUpload"), "UploadPart on an aborted upload: 404 NoSuchUpload", r)
    r = st.complete_upload(k2, up2, [(1, '"00"')])
    diag("CompleteMultipartUpload on the aborted upload: %d %s" % (r.status, r.error_code()))
    is_((r.status, r.error_code()), (500, "InternalError"),
        "RGW differs: CompleteMultipartUpload on an aborted upload answers 500 InternalError "
        "(AWS: 404 NoSuchUpload)", r)
    r = st.abort_upload(k2, up2)
    diag("a second abort: %d %s" % (r.status, r.error_code()))
    is_((r.status, r.error_code()), (404, "NoSuchUpload"), "a second abort: 404 NoSuchUpload", r)
    st.delete(k)
    is_(st.list_keys(prefix=k.rsplit("/", 1)[0]), [], "nothing left under the case's prefix")


@case
def list_objects_v2_continuation(st):
    prefix = key("list") + "/"
    names = sorted(prefix + n for n in ("a", "b", "c/1", "c/2", "d d", "e+", "f~"))
    for n in names:
        st.put(n, n.encode())
    st.put(prefix[:-1] + "-outside", b"")
    pages, token, got = 0, None, []
    while True:
        keys, token, r = st.list_page(prefix=prefix, max_keys=3, token=token)
        pages += 1
        ok(len(keys) <= 3, "page %d holds at most max-keys=3 keys" % pages, keys)
        got += keys
        if not token:
            break
        if pages > 5:
            break
    is_(pages, 3, "7 keys in pages of 3: 3 pages")
    is_(got, names, "every key once, in order, only under the prefix")
    is_(r.xml().findtext(s3h.S3_NS + "IsTruncated"), "false", "the last page is not truncated")
    keys, _, r = st.list_page(prefix=prefix, token="not-a-token")
    diag("a made-up continuation token: %d, %d keys" % (r.status, len(keys)))
    is_(r.status, 200, "RGW differs: a made-up continuation token is taken as a start key "
        "(AWS: 400 InvalidArgument)", r)
    r = st.request("GET", bucket=st.bucket, query=[("list-type", "2"), ("prefix", prefix),
                                                   ("delimiter", "/")])
    ok(r.status == 200 and [p.findtext(s3h.S3_NS + "Prefix")
                            for p in r.xml().findall(s3h.S3_NS + "CommonPrefixes")] == [prefix + "c/"],
       "delimiter / groups c/1 and c/2 under one common prefix", r)
    for n in names + [prefix[:-1] + "-outside"]:
        st.delete(n)
    is_(st.list_keys(prefix=prefix), [], "deleted: the listing is empty")


# ---- aws-chunked (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) ---------------------------------------

def chunked_put(st, k, data, chunk, corrupt_chunk=None, trailer=False):
    """A PUT with an aws-chunked body signed chunk by chunk (as the S3 documentation's example);
    corrupt_chunk=N flips one byte of chunk N after signing; trailer=True sends an unsigned
    payload with an x-amz-checksum-crc32 trailer instead (STREAMING-UNSIGNED-PAYLOAD-TRAILER)."""
    chunks = [data[i:i + chunk] for i in range(0, len(data), chunk)] + [b""]
    path = "/" + s3h.uri_encode(st.bucket, True) + "/" + s3h.uri_encode(k, True)
    if trailer:
        mode = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
        body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) if c else b"0\r\n" for c in chunks)
        crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
        body += b"x-amz-checksum-crc32:%s\r\n\r\n" % crc.encode()
    else:
        mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    hdrs = {"Host": st.host_header(), "Content-Encoding": "aws-chunked",
            "x-amz-content-sha256": mode, "x-amz-decoded-content-length": str(len(data))}
    if trailer:
        hdrs["x-amz-trailer"] = "x-amz-checksum-crc32"
    auth = s3h.sign("PUT", path, [], dict(hdrs), mode, st.region, st.access_key, st.secret_key)
    if not trailer:
        amz_date = auth["X-Amz-Date"]
        scope = "%s/%s/s3/aws4_request" % (amz_date[:8], st.region)
        kd = s3h.signing_key(st.secret_key, amz_date[:8], st.region)
        prev = auth["Authorization"].rsplit("Signature=", 1)[1]
        body = b""
        for i, c in enumerate(chunks):
            sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev,
                             s3h.EMPTY_SHA256, hashlib.sha256(c).hexdigest()])
            prev = hmac.new(kd, sts.encode(), hashlib.sha256).hexdigest()
            if corrupt_chunk == i:
                c = bytes([c[0] ^ 1]) + c[1:]
            body += b"%x;chunk-signature=%s\r\n%s\r\n" % (len(c), prev.encode(), c)
    hdrs.update(auth)
    conn = http.client.HTTPConnection(st.host, st.port, timeout=30)
    try:
        conn.putrequest("PUT", path, skip_host=True, skip_accept_encoding=True)
        for n, v in hdrs.items():
            conn.putheader(n, v)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        return s3h.S3Response(r.status, {n.lower(): v for n, v in r.getheaders()}, r.read())
    finally:
        conn.close()


@case
def aws_chunked_uploads(st):
    k = key("chunked")
    data = os.urandom(200_000)
    r = chunked_put(st, k, data, 65536)
    is_(r.status, 200, "an aws-chunked PUT (64 KiB chunks, each signed) is accepted", r)
    g = st.get(k)
    ok(g.body == data, "... stored decoded: the object is the payload without chunk framing",
       len(g.body))
    r = chunked_put(st, k, os.urandom(200_000), 65536, corrupt_chunk=1)
    is_((r.status, r.error_code()), (403, "SignatureDoesNotMatch"),
        "a chunk altered after signing: 403 SignatureDoesNotMatch", r)
    ok(st.get(k).body == data, "... the object keeps its previous content")
    r = chunked_put(st, k + "-trailer", data, 65536, trailer=True)
    diag("aws-chunked with an x-amz-checksum-crc32 trailer: %d %s" % (r.status, r.error_code()))
    is_((r.status, r.error_code()), (400, "XAmzContentSHA256Mismatch"),
        "RGW differs: aws-chunked uploads with checksum trailers are refused "
        "(400 XAmzContentSHA256Mismatch)", r)
    is_(st.head(k + "-trailer").status, 404, "... and store nothing")
    st.delete(k)


@case
def checksum_headers_on_a_plain_put(st):
    k = key("checksum")
    wrong = base64.b64encode(hashlib.sha256(b"something else").digest()).decode()
    r = st.put(k, b"payload", headers={"x-amz-checksum-sha256": wrong})
    diag("PUT with a wrong x-amz-checksum-sha256: %d %s" % (r.status, r.error_code()))
    is_(r.status, 200, "RGW differs: a wrong x-amz-checksum-sha256 on a plain PUT is not checked "
        "(AWS: 400 BadDigest)", r)
    st.delete(k)


@case
def conditional_put(st):
    k = key("if-none-match")
    is_(st.put(k, b"first").status, 200, "PUT the first version")
    r = st.put(k, b"second", headers={"If-None-Match": "*"})
    diag("PUT with If-None-Match: * over an existing key: %d %s" % (r.status, r.error_code()))
    is_((r.status, r.error_code()), (412, "PreconditionFailed"),
        "PUT with If-None-Match: * over an existing key: 412 PreconditionFailed", r)
    is_(st.get(k).body, b"first", "... the object keeps its first version")
    k2 = key("if-none-match-new")
    is_(st.put(k2, b"new", headers={"If-None-Match": "*"}).status, 200,
        "PUT with If-None-Match: * of a new key: 200")
    st.delete(k2)
    st.delete(k)


@case
def harness_empties_a_bucket(st):
    bucket = "glasgow-test-" + secrets.token_hex(4)
    is_(st.create_bucket(bucket).status, 200, "create a bucket of the case's own")
    for i in range(5):
        st.put("k%d" % i, b"x", bucket=bucket)
    ups = sorted(("pending/%d" % i, st.create_upload("pending/%d" % i, bucket=bucket))
                 for i in range(3))
    st.upload_part("pending/0", ups[0][1], 1, b"y", bucket=bucket)
    is_((len(st.list_keys(bucket, page=2)), sorted(st.list_uploads(bucket, page=2))), (5, ups),
        "5 objects and 3 uploads in progress, listed in pages of 2")
    st.empty(bucket)
    is_((st.list_keys(bucket), st.list_uploads(bucket)), ([], []),
        "s3harness's empty() leaves neither objects nor uploads")
    is_(st.request("DELETE", bucket=bucket).status, 204, "... so the bucket can be deleted")
    r = st.request("HEAD", bucket=bucket)
    is_(r.status, 404, "... and is gone")


def with_store():
    class Fixture:
        def __enter__(self):
            return STORE

        def __exit__(self, *exc):
            return False
    return Fixture()


if __name__ == "__main__":
    main(with_store())
