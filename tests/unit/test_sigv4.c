/* sigv4 against the examples published in the Amazon S3 API reference
 * ("Signature Calculations for the Authorization Header", "Query String
 * Authentication" and "Transferring Payload in Multiple Chunks"), all with
 * the documentation's example credentials and 20130524T000000Z, and the
 * canonicalisation edge cases its contract names. */
#include <stdlib.h>
#include <string.h>

#include "sigv4.h"
#include "tap.h"

#define AK "AKIAIOSFODNN7EXAMPLE"
#define SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define T0 "20130524T000000Z"
#define HOST "examplebucket.s3.amazonaws.com"

#define P(n, v)                                                                                    \
    {                                                                                              \
        n, sizeof(n) - 1, v, sizeof(v) - 1                                                         \
    }
#define COUNT(a) (sizeof(a) / sizeof *(a))

static sigv4_request base(const char *method, const char *path, const sigv4_pair *q, size_t nq,
                          const sigv4_pair *h, size_t nh, const char *payload_hash)
{
    sigv4_request r = {
        .method = method,
        .path = path,
        .path_len = strlen(path),
        .query = q,
        .nquery = nq,
        .headers = h,
        .nheaders = nh,
        .payload_hash = payload_hash,
        .region = "us-east-1",
        .service = "s3",
        .access_key = AK,
        .secret_key = SK,
        .session_token = NULL,
        .time = T0,
    };
    return r;
}

/* Signs r and checks the signature and the canonical request, each when
 * given (NULL only checks that signing succeeds). */
static void sign_is(const sigv4_request *r, const char *canonical, const char *sig,
                    const char *what)
{
    sigv4_result res;
    char err[200] = "";
    int rc = sigv4_sign(r, &res, err, sizeof err);
    if (!ok(rc == 0, "%s: signs", what))
        printf("#   %s\n", err);
    if (rc == 0) {
        if (canonical)
            is_str(res.canonical_request, canonical, "%s: canonical request", what);
        if (sig)
            is_str(res.signature, sig, "%s: signature", what);
    }
    sigv4_result_dispose(&res);
}

static void test_get_object(void)
{
    const sigv4_pair h[] = {P("Host", HOST), P("Range", "bytes=0-9"),
                            P("x-amz-content-sha256", SIGV4_EMPTY_SHA256)};
    sigv4_request r = base("GET", "/test.txt", NULL, 0, h, COUNT(h), SIGV4_EMPTY_SHA256);
    sigv4_result res;
    char err[200] = "";
    is_int(sigv4_sign(&r, &res, err, sizeof err), 0, "GET object: signs");
    is_str(res.canonical_request,
           "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
           "x-amz-content-sha256:" SIGV4_EMPTY_SHA256 "\nx-amz-date:" T0 "\n\n"
           "host;range;x-amz-content-sha256;x-amz-date\n" SIGV4_EMPTY_SHA256,
           "GET object: canonical request");
    is_str(res.string_to_sign,
           "AWS4-HMAC-SHA256\n" T0 "\n20130524/us-east-1/s3/aws4_request\n"
           "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
           "GET object: string to sign");
    is_str(res.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
           "GET object: signature");
    is_str(res.authorization,
           "AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/s3/aws4_request, "
           "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
           "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
           "GET object: Authorization");
    sigv4_result_dispose(&res);
    ok(res.canonical_request == NULL && res.signing_key[0] == 0, "dispose empties the result");
    sigv4_result_dispose(&res);
}

static void test_put_object(void)
{
    const char *hash = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
    const sigv4_pair h[] = {P("Host", HOST), P("Date", "Fri, 24 May 2013 00:00:00 GMT"),
                            P("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                            P("x-amz-content-sha256",
                              "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")};
    sigv4_request r = base("PUT", "/test%24file.text", NULL, 0, h, COUNT(h), hash);
    sign_is(&r,
            "PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 GMT\n"
            "host:examplebucket.s3.amazonaws.com\nx-amz-content-sha256:44ce7dd67c959e0d3524ffac"
            "1771dfbba87d2b6b4b4e99e42034a8b803f8b072\nx-amz-date:20130524T000000Z\n"
            "x-amz-storage-class:REDUCED_REDUNDANCY\n\n"
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd", "PUT object");
}

static void test_get_lifecycle(void)
{
    const sigv4_pair q[] = {P("lifecycle", "")};
    const sigv4_pair h[] = {P("Host", HOST), P("x-amz-content-sha256", SIGV4_EMPTY_SHA256)};
    sigv4_request r = base("GET", "/", q, 1, h, COUNT(h), SIGV4_EMPTY_SHA256);
    sign_is(&r,
            "GET\n/\nlifecycle=\nhost:examplebucket.s3.amazonaws.com\n"
            "x-amz-content-sha256:" SIGV4_EMPTY_SHA256 "\nx-amz-date:" T0 "\n\n"
            "host;x-amz-content-sha256;x-amz-date\n" SIGV4_EMPTY_SHA256,
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
            "GET bucket lifecycle");
}

static void test_list_objects(void)
{
    /* Given out of order: the signer sorts. */
    const sigv4_pair q[] = {P("prefix", "J"), P("max-keys", "2")};
    const sigv4_pair h[] = {P("Host", HOST), P("x-amz-content-sha256", SIGV4_EMPTY_SHA256)};
    sigv4_request r = base("GET", "/", q, 2, h, COUNT(h), SIGV4_EMPTY_SHA256);
    sign_is(&r,
            "GET\n/\nmax-keys=2&prefix=J\nhost:examplebucket.s3.amazonaws.com\n"
            "x-amz-content-sha256:" SIGV4_EMPTY_SHA256 "\nx-amz-date:" T0 "\n\n"
            "host;x-amz-content-sha256;x-amz-date\n" SIGV4_EMPTY_SHA256,
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
            "GET bucket (list objects)");
}

static void test_presign(void)
{
    const sigv4_pair h[] = {P("Host", HOST)};
    sigv4_request r = base("GET", "/test.txt", NULL, 0, h, 1, NULL);
    sigv4_result res;
    char err[200] = "";
    is_int(sigv4_presign(&r, 86400, &res, err, sizeof err), 0, "presign: signs (%s)", err);
    is_str(res.canonical_request,
           "GET\n/test.txt\nX-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE"
           "%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&"
           "X-Amz-Expires=86400&X-Amz-SignedHeaders=host\nhost:examplebucket.s3.amazonaws.com\n\n"
           "host\nUNSIGNED-PAYLOAD",
           "presign: canonical request");
    is_str(res.signature, "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
           "presign: signature");
    is_str(res.query,
           "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2F"
           "us-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&"
           "X-Amz-SignedHeaders=host&X-Amz-Signature="
           "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
           "presign: query string");
    ok(res.authorization == NULL, "presign: no Authorization");
    sigv4_result_dispose(&res);

    const sigv4_pair q[] = {P("x-amz-signature", "x")};
    r.query = q;
    r.nquery = 1;
    is_int(sigv4_presign(&r, 60, &res, err, sizeof err), -1, "presign: refuses X-Amz-Signature");
    r.nquery = 0;
    is_int(sigv4_presign(&r, 0, &res, err, sizeof err), -1, "presign: refuses expires 0");
    is_int(sigv4_presign(&r, 604801, &res, err, sizeof err), -1,
           "presign: refuses expires over 7 days");
    r.session_token = "tok/en+=";
    is_int(sigv4_presign(&r, 60, &res, err, sizeof err), 0, "presign: with a session token");
    ok(strstr(res.query, "&X-Amz-Security-Token=tok%2Fen%2B%3D&") != NULL,
       "presign: the token is a signed query parameter");
    sigv4_result_dispose(&res);
}

static void test_chunked(void)
{
    const sigv4_pair h[] = {
        P("Host", "s3.amazonaws.com"),        P("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        P("Content-Encoding", "aws-chunked"), P("x-amz-decoded-content-length", "66560"),
        P("Content-Length", "66824"),         P("x-amz-content-sha256", SIGV4_STREAMING_PAYLOAD)};
    sigv4_request r = base("PUT", "/examplebucket/chunkObject.txt", NULL, 0, h, COUNT(h),
                           SIGV4_STREAMING_PAYLOAD);
    sigv4_result res;
    char err[200] = "";
    is_int(sigv4_sign(&r, &res, err, sizeof err), 0, "chunked: seed signs (%s)", err);
    is_str(res.canonical_request,
           "PUT\n/examplebucket/chunkObject.txt\n\ncontent-encoding:aws-chunked\n"
           "content-length:66824\nhost:s3.amazonaws.com\n"
           "x-amz-content-sha256:STREAMING-AWS4-HMAC-SHA256-PAYLOAD\nx-amz-date:20130524T000000Z\n"
           "x-amz-decoded-content-length:66560\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n"
           "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
           "x-amz-decoded-content-length;x-amz-storage-class\nSTREAMING-AWS4-HMAC-SHA256-PAYLOAD",
           "chunked: seed canonical request");
    is_str(res.signature, "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
           "chunked: seed signature");

    static const char *const want[] = {
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
    };
    const size_t sizes[] = {65536, 1024, 0};
    char *data = malloc(65536);
    memset(data, 'a', 65536);
    sigv4_chunk c;
    sigv4_chunk_init(&c, &res);
    size_t body = 0;
    for (size_t i = 0; i < 3; i++) {
        char sig[SIGV4_SIG_LEN + 1], line[SIGV4_CHUNK_HEADER_MAX];
        sigv4_chunk_sign(&c, data, sizes[i], sig);
        is_str(sig, want[i], "chunked: signature of chunk %zu (%zu bytes)", i + 1, sizes[i]);
        body += sigv4_chunk_header(sizes[i], sig, line) + sizes[i] + 2;
        if (i == 0)
            is_str(line,
                   "10000;chunk-signature="
                   "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade"
                   "35a65485a288648\r\n",
                   "chunked: first chunk line");
    }
    is_int(body, 66824, "chunked: the framed body is Content-Length bytes");
    sigv4_chunk_dispose(&c);
    free(data);
    sigv4_result_dispose(&res);
}

/* The canonical request of a minimal GET with these query pairs and headers. */
static int canonical(const sigv4_pair *q, size_t nq, const sigv4_pair *h, size_t nh,
                     const char *token, char *out, size_t outlen)
{
    sigv4_request r = base("GET", "/k", q, nq, h, nh, SIGV4_UNSIGNED_PAYLOAD);
    r.session_token = token;
    sigv4_result res;
    char err[200];
    if (sigv4_sign(&r, &res, err, sizeof err) < 0) {
        snprintf(out, outlen, "error: %s", err);
        return -1;
    }
    snprintf(out, outlen, "%s", res.canonical_request);
    sigv4_result_dispose(&res);
    return 0;
}

static void test_edges(void)
{
    char got[2048];
    const sigv4_pair host[] = {P("host", "h")};

    const sigv4_pair q1[] = {P("uploads", ""),   P("b", "2"),        P("b", "1"),
                             P("a b", "x+y/z~"), P("e", "\xc3\xa9"), P("A", "")};
    canonical(q1, COUNT(q1), host, 1, NULL, got, sizeof got);
    is_str(got,
           "GET\n/k\nA=&a%20b=x%2By%2Fz~&b=1&b=2&e=%C3%A9&uploads=\nhost:h\nx-amz-date:" T0
           "\n\nhost;x-amz-date\nUNSIGNED-PAYLOAD",
           "query: encoded, sorted by name then value, empty values as name=");

    const sigv4_pair q2[] = {P("%", "?#&="), P("", "v")};
    canonical(q2, COUNT(q2), host, 1, NULL, got, sizeof got);
    is_str(got,
           "GET\n/k\n=v&%25=%3F%23%26%3D\nhost:h\nx-amz-date:" T0
           "\n\nhost;x-amz-date\nUNSIGNED-PAYLOAD",
           "query: reserved bytes encoded, an empty name sorts first");

    const sigv4_pair h1[] = {P("X-Multi", " a  b "), P("HOST", "h"),        P("x-multi", "\tc\t"),
                             P("X-Empty", "   "),    P("x-tabs", "p \t q"), P("X-Multi", "")};
    canonical(NULL, 0, h1, COUNT(h1), "tok", got, sizeof got);
    is_str(got,
           "GET\n/k\n\nhost:h\nx-amz-date:" T0 "\nx-amz-security-token:tok\nx-empty:\n"
           "x-multi:a b,c,\nx-tabs:p q\n\nhost;x-amz-date;x-amz-security-token;x-empty;"
           "x-multi;x-tabs\nUNSIGNED-PAYLOAD",
           "headers: lower-cased, trimmed, collapsed, repeats joined in order, token added");
}

/* Each request must be refused with a message containing want. */
static void refused(const sigv4_request *r, const char *want, const char *what)
{
    sigv4_result res;
    char err[200] = "";
    int rc = sigv4_sign(r, &res, err, sizeof err);
    ok(rc == -1 && strstr(err, want) && res.canonical_request == NULL, "refuses %s", what);
    if (rc != -1 || !strstr(err, want))
        printf("#   rc %d, err \"%s\", want \"%s\"\n", rc, err, want);
    sigv4_result_dispose(&res);
}

static void test_refusals(void)
{
    const sigv4_pair host[] = {P("host", "h")};
    sigv4_request ok_req = base("GET", "/k", NULL, 0, host, 1, SIGV4_EMPTY_SHA256), r;
    static const char *const bad_times[] = {
        "20130524T000000",   "20130524 000000Z",
        "2013052AT000000Z",  "20131324T000000Z",
        "20130230T000000Z",  "20130524T240000Z",
        "20130524T006000Z",  "20130524T000060Z",
        "20130524T000000ZZ", "",
    };
    for (size_t i = 0; i < COUNT(bad_times); i++) {
        r = ok_req;
        r.time = bad_times[i];
        char what[64];
        snprintf(what, sizeof what, "time \"%s\"", bad_times[i]);
        refused(&r, "time:", what);
    }
    r = ok_req;
    r.time = "20120229T235959Z";
    sign_is(&r, NULL, NULL, "a leap day");

    r = ok_req;
    r.headers = NULL;
    r.nheaders = 0;
    refused(&r, "host is required", "a request without host");
    const sigv4_pair date[] = {P("host", "h"), P("X-Amz-Date", T0)};
    r.headers = date;
    r.nheaders = 2;
    refused(&r, "added by the signer", "a caller's x-amz-date");
    const sigv4_pair ctl[] = {P("host", "h\r\nx: y")};
    r.headers = ctl;
    r.nheaders = 1;
    refused(&r, "control byte", "CR LF in a header value");
    const sigv4_pair sp[] = {P("ho st", "h")};
    r.headers = sp;
    refused(&r, "not an HTTP token", "a space in a header name");

    r = ok_req;
    r.path = "/a b";
    r.path_len = 4;
    refused(&r, "must be encoded", "a raw space in the path");
    r.path = "k";
    r.path_len = 1;
    refused(&r, "must start with /", "a relative path");
    char *long_path = malloc(SIGV4_MAX_PATH + 2);
    memset(long_path, 'a', SIGV4_MAX_PATH + 1);
    long_path[0] = '/';
    r.path = long_path;
    r.path_len = SIGV4_MAX_PATH + 1;
    refused(&r, "longer than", "a path over the limit");
    r.path_len = SIGV4_MAX_PATH;
    sign_is(&r, NULL, NULL, "a path at the limit");
    free(long_path);

    r = ok_req;
    r.payload_hash = "UNSIGNED PAYLOAD";
    refused(&r, "payload_hash", "a payload hash with a space");
    r.payload_hash = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855x";
    refused(&r, "payload_hash", "a payload hash over 64 bytes");
    r = ok_req;
    r.access_key = "AK/IA";
    refused(&r, "access_key", "a / in the access key");
    r = ok_req;
    r.region = "us east";
    refused(&r, "region", "a space in the region");
    r = ok_req;
    r.session_token = "to ken";
    refused(&r, "session_token", "a space in the session token");
    r = ok_req;
    r.method = "GET /";
    refused(&r, "method", "a method that is not a token");

    sigv4_pair many[SIGV4_MAX_QUERY + 1];
    for (size_t i = 0; i < COUNT(many); i++)
        many[i] = (sigv4_pair)P("a", "b");
    r = ok_req;
    r.query = many;
    r.nquery = SIGV4_MAX_QUERY + 1;
    refused(&r, "more than", "too many query pairs");
    r.nquery = SIGV4_MAX_QUERY;
    sign_is(&r, NULL, NULL, "the most query pairs");
}

int main(void)
{
    test_get_object();
    test_put_object();
    test_get_lifecycle();
    test_list_objects();
    test_presign();
    test_chunked();
    test_edges();
    test_refusals();
    return done_testing();
}
