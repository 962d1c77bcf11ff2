/*
 * Unit tests for s3 and s3xml: the pure parts (endpoint, key encoding,
 * XML errors, retry policy, part sizes), then the client against a real
 * S3 server (Ceph RGW) named by GLASGOW_TEST_S3_* (tests/run-all starts
 * one). Without it the store tests fail: they are part of the suite.
 */
#include "s3.h"
#include "s3xml.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "util.h"

/* ---- pure parts -------------------------------------------------------------------- */

static void test_endpoint(void)
{
    s3_endpoint e;
    char err[200];
    is_int(s3_endpoint_parse("http://127.0.0.1:7480", &e, err, sizeof err), 0,
           "endpoint: host:port");
    is_str(e.authority, "127.0.0.1:7480", "endpoint: authority keeps a non-default port");
    is_str(e.base, "http://127.0.0.1:7480", "endpoint: base URL");
    is_int(s3_endpoint_parse("https://s3.example.com/", &e, err, sizeof err), 0,
           "endpoint: https, slash");
    is_str(e.authority, "s3.example.com", "endpoint: default port left out of Host");
    ok(e.https && e.port == 443, "endpoint: https port 443");
    is_int(s3_endpoint_parse("http://s3.example.com:80", &e, err, sizeof err), 0, "endpoint: :80");
    is_str(e.authority, "s3.example.com", "endpoint: explicit default port left out of Host");
    is_int(s3_endpoint_parse("http://[::1]:9000", &e, err, sizeof err), 0, "endpoint: IPv6");
    is_str(e.authority, "[::1]:9000", "endpoint: IPv6 authority");
    const char *bad[] = {"ftp://x",         "http://",       "http://host/path",
                         "http://u:p@host", "http://host:0", "http://host:65536",
                         "http://host:12a", "host:80",       "http://host?x",
                         "http://[::1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        is_int(s3_endpoint_parse(bad[i], &e, err, sizeof err), -1, "endpoint refused: %s", bad[i]);
    ok(strstr(err, "S3_ENDPOINT") != NULL, "endpoint: the message names the variable");
}

static void test_encoding(void)
{
    strbuf sb;
    strbuf_init(&sb);
    const struct {
        const char *in;
        int slash;
        const char *want;
    } cases[] = {
        {"a/b c", 1, "a/b%20c"},         {"a/b c", 0, "a%2Fb%20c"},
        {"x+y=z&w", 1, "x%2By%3Dz%26w"}, {"~._-AZaz09", 1, "~._-AZaz09"},
        {"caf\xc3\xa9", 1, "caf%C3%A9"}, {"a//b/../c", 1, "a//b/../c"},
        {"100%?#", 1, "100%25%3F%23"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        strbuf_reset(&sb);
        s3_uri_encode(&sb, cases[i].in, strlen(cases[i].in), cases[i].slash);
        is_str(sb.buf, cases[i].want, "uri encode %s (slash %d)", cases[i].want, cases[i].slash);
    }
    strbuf_dispose(&sb);

    s3_error e;
    char key[S3_MAX_KEY + 2];
    memset(key, 'k', sizeof key);
    is_int(s3_check_key(key, S3_MAX_KEY, &e), 0, "a key of %d bytes is fine", S3_MAX_KEY);
    is_int(s3_check_key(key, S3_MAX_KEY + 1, &e), -1, "a key over %d bytes is refused", S3_MAX_KEY);
    is_int(s3_check_key("", 0, &e), -1, "an empty key is refused");
    is_int(s3_check_key("a\nb", 3, &e), -1, "a key with LF is refused");
    is_int(e.kind, S3E_INVALID, "... as invalid");
}

static void test_errors(void)
{
    s3_error e;
    const char *doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                      "<Error><Code>NoSuchKey</Code><Message>The key &lt;a&gt; &amp; &#x263A; "
                      "does not exist</Message><Key>a</Key><RequestId>x</RequestId></Error>";
    memset(&e, 0, sizeof e);
    is_int(s3_parse_error(doc, strlen(doc), &e), 1, "error document parsed");
    is_str(e.code, "NoSuchKey", "Code");
    is_str(e.message, "The key <a> & \xe2\x98\xba does not exist", "Message with entities");

    const char *complete_err =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\n<Error>\n  <Code>InternalError</Code>\n"
        "  <Message>We encountered an internal error. Please try again.</Message>\n</Error>";
    memset(&e, 0, sizeof e);
    is_int(s3_parse_error(complete_err, strlen(complete_err), &e), 1,
           "the 200-with-<Error> answer of CompleteMultipartUpload is an error");
    is_str(e.code, "InternalError", "... its Code");
    ok(s3_retryable_status(500, e.code), "... and InternalError is retryable");

    const char *ns = "<s3:Error xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\" a='1'>"
                     "<s3:Code><![CDATA[SlowDown]]></s3:Code><!-- c --></s3:Error>";
    memset(&e, 0, sizeof e);
    is_int(s3_parse_error(ns, strlen(ns), &e), 1, "namespaced error with CDATA");
    is_str(e.code, "SlowDown", "... Code from CDATA");
    is_str(e.message, "the store answered SlowDown", "... a missing Message says the code");

    const char *ctl = "<Error><Code>Bad&#10;Code</Code><Message>a\tb</Message></Error>";
    memset(&e, 0, sizeof e);
    is_int(s3_parse_error(ctl, strlen(ctl), &e), 1, "control bytes in an error");
    is_str(e.code, "Bad?Code", "... are replaced");
    is_str(e.message, "a?b", "... in the message too");

    const char *not_errors[] = {
        "",
        "<CompleteMultipartUploadResult><ETag>\"x\"</ETag></CompleteMultipartUploadResult>",
        "<Error><Message>no code</Message></Error>",
        "<Error><Code>A</Code>",
        "<Error><Code>A</Cod></Error>",
        "<!DOCTYPE x [<!ENTITY e \"boom\">]><Error><Code>&e;</Code></Error>",
        "<Error><Code>&unknown;</Code></Error>",
        "<Error><Code>&#0;</Code></Error>",
        "<Error><Code>&#xD800;</Code></Error>",
        "<Error><Code>A</Code></Error><Error/>",
        "text<Error><Code>A</Code></Error>",
        "<Error><Code a=b>A</Code></Error>",
        "not xml at all",
    };
    for (size_t i = 0; i < sizeof not_errors / sizeof not_errors[0]; i++) {
        memset(&e, 0, sizeof e);
        ok(s3_parse_error(not_errors[i], strlen(not_errors[i]), &e) == 0 && e.code[0] == '\0',
           "not an error document: %.40s", not_errors[i]);
    }

    /* deep nesting and long texts are bounded */
    strbuf sb;
    strbuf_init(&sb);
    for (int i = 0; i < S3XML_MAX_DEPTH + 1; i++)
        strbuf_adds(&sb, "<a>");
    for (int i = 0; i < S3XML_MAX_DEPTH + 1; i++)
        strbuf_adds(&sb, "</a>");
    s3xml d;
    char err[160];
    is_int(s3xml_parse(&d, sb.buf, sb.len, err, sizeof err), -1, "nesting past %d is refused",
           S3XML_MAX_DEPTH);
    ok(strstr(err, "deeper") != NULL, "... with a message (%s)", err);
    strbuf_reset(&sb);
    strbuf_adds(&sb, "<Error><Code>");
    for (int i = 0; i < 200; i++)
        strbuf_adds(&sb, "LongCode");
    strbuf_adds(&sb, "</Code></Error>");
    memset(&e, 0, sizeof e);
    is_int(s3_parse_error(sb.buf, sb.len, &e), 1, "a long Code parses");
    is_int((long long)strlen(e.code), (long long)sizeof e.code - 1, "... truncated to the record");
    strbuf_dispose(&sb);

    /* a listing */
    const char *list = "<ListBucketResult><Name>b</Name><IsTruncated>true</IsTruncated>"
                       "<Contents><Key>k1</Key><Size>3</Size></Contents>"
                       "<Contents><Key>k2</Key><Size>5</Size></Contents>"
                       "<NextContinuationToken>tok</NextContinuationToken></ListBucketResult>";
    is_int(s3xml_parse(&d, list, strlen(list), err, sizeof err), 0, "a listing parses");
    int c1 = s3xml_child(&d, 0, "Contents");
    int c2 = s3xml_next(&d, c1, "Contents");
    is_str(s3xml_child_text(&d, c1, "Key"), "k1", "first Contents");
    is_str(s3xml_child_text(&d, c2, "Size"), "5", "second Contents");
    is_int(s3xml_next(&d, c2, "Contents"), -1, "no third Contents");
    is_str(s3xml_child_text(&d, 0, "NextContinuationToken"), "tok", "token");
    is_str(d.nodes[0].text, "", "an element with children has no text");
    s3xml_dispose(&d);
}

static void test_policy(void)
{
    ok(s3_retryable_status(0, ""), "no answer is retryable");
    ok(s3_retryable_status(500, "InternalError"), "500 is retryable");
    ok(s3_retryable_status(503, "SlowDown"), "503 SlowDown is retryable");
    ok(s3_retryable_status(400, "RequestTimeout"), "400 RequestTimeout is retryable");
    ok(s3_retryable_status(429, ""), "429 is retryable");
    ok(!s3_retryable_status(404, "NoSuchKey"), "404 is not");
    ok(!s3_retryable_status(403, "SignatureDoesNotMatch"), "403 is not");
    ok(!s3_retryable_status(400, "EntityTooSmall"), "400 EntityTooSmall is not");

    is_int(s3_backoff_ms(1, 100, 2000, 0xffffffffu) <= 100, 1, "retry 1 waits at most the base");
    unsigned worst = 0;
    for (uint32_t r = 0; r < 5000; r += 7)
        if (s3_backoff_ms(3, 100, 2000, r * 2654435761u) > worst)
            worst = s3_backoff_ms(3, 100, 2000, r * 2654435761u);
    ok(worst <= 400 && worst > 300, "retry 3 waits up to base * 4 (%u)", worst);
    ok(s3_backoff_ms(30, 100, 2000, 0xffffffffu) <= 2000, "the wait is capped");
    is_int(s3_backoff_ms(5, 100, 2000, 0), 0, "full jitter starts at 0");

    const uint64_t mib = 1024 * 1024;
    is_int(s3_part_size_for(100 * mib, 8 * mib), 8 * mib, "part size as configured");
    is_int(s3_part_size_for(100 * mib, 1 * mib), 5 * mib, "part size at least 5 MiB");
    uint64_t big = 1024ULL * 1024 * mib; /* 1 TiB */
    uint64_t ps = s3_part_size_for(big, 8 * mib);
    ok((big + ps - 1) / ps <= S3_MAX_PARTS && ps % mib == 0,
       "1 TiB fits in 10000 parts of whole MiB (%llu)", (unsigned long long)ps);
    is_int(s3_part_size_for(5ULL * 1024 * 1024 * mib + 1, 8 * mib), 0, "over 5 TiB: no part size");
    is_int(s3_part_size_for(512 * mib, 8 * mib), 8 * mib, "64 parts: as configured");
    is_int(s3_part_size_for(512 * mib + 1, 8 * mib), 9 * mib,
           "more than 64 parts: grown to the next whole MiB");
    is_int(s3_part_size_for(6ULL * 1024 * mib, 8 * mib), 96 * mib, "6 GiB: 64 parts of 96 MiB");
    is_int(s3_part_size_for(5ULL * 1024 * 1024 * mib, 8 * mib), S3_MAX_PART,
           "5 TiB: parts of 5 GiB, the most S3 allows");

    uint64_t f, l, s;
    is_int(s3_parse_content_range("bytes 0-9/100", &f, &l, &s), 0, "Content-Range parsed");
    ok(f == 0 && l == 9 && s == 100, "... its numbers");
    is_int(s3_parse_content_range("bytes 9-0/100", &f, &l, &s), -1, "reversed range refused");
    is_int(s3_parse_content_range("bytes 0-100/100", &f, &l, &s), -1, "past the size refused");
    is_int(s3_parse_content_range("bytes */100", &f, &l, &s), -1, "unsatisfied form refused");
    is_str(s3_op_name(S3_OP_GET_OBJECT), "get_object", "op names");
    is_str(s3_kind_name(S3E_DIGEST), "digest_mismatch", "kind names");
}

/* ---- against the store ----------------------------------------------------------------- */

static loop *lp;
static char *access_key, *secret_key;

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char buf[512];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    return xstrdup(buf);
}

/* NAME's value, or the contents of the file NAME_FILE names (as .ci/rgw env gives). */
static char *secret_of(const char *name)
{
    const char *v = getenv(name);
    if (v && v[0])
        return xstrdup(v);
    char file[128];
    snprintf(file, sizeof file, "%s_FILE", name);
    const char *path = getenv(file);
    return path ? read_file(path) : NULL;
}

static int store_config(s3_config *c)
{
    const char *ep = getenv("GLASGOW_TEST_S3_ENDPOINT");
    char err[200];
    memset(c, 0, sizeof *c);
    if (!ep || s3_endpoint_parse(ep, &c->endpoint, err, sizeof err) < 0)
        return -1;
    access_key = secret_of("GLASGOW_TEST_S3_ACCESS_KEY_ID");
    secret_key = secret_of("GLASGOW_TEST_S3_SECRET_ACCESS_KEY");
    if (!access_key || !secret_key)
        return -1;
    const char *region = getenv("GLASGOW_TEST_S3_REGION");
    const char *bucket = getenv("GLASGOW_TEST_S3_BUCKET");
    c->region = region ? region : "us-east-1";
    c->bucket = bucket ? bucket : "glasgow";
    c->access_key = access_key;
    c->secret_key = secret_key;
    c->connect_timeout_ms = 2000;
    c->request_timeout_ms = 10000;
    c->low_speed_bytes = 1;
    c->low_speed_time_s = 10;
    c->attempts = 3;
    c->backoff_base_ms = 20;
    c->backoff_max_ms = 100;
    c->multipart_threshold = 5 * 1024 * 1024;
    c->part_size = 5 * 1024 * 1024;
    c->health_interval_ms = 500;
    c->health_timeout_ms = 2000;
    return 0;
}

/* One operation's outcome. */
typedef struct outcome {
    int done;
    int failed;
    s3_error err;
    s3_result res;
    char upload_id[256];
    char etag[128];
    char sha256[65];
    size_t nentries;
    char keys[16][64];
    char token[512];
    int truncated;
    s3_object_info info;
    int headers;
} outcome;

static void on_done(void *arg, const s3_result *res, const s3_error *err)
{
    outcome *o = arg;
    o->done = 1;
    if (err) {
        o->failed = 1;
        o->err = *err;
        return;
    }
    o->res = *res;
    o->res.entries = NULL;
    snprintf(o->upload_id, sizeof o->upload_id, "%s", res->upload_id);
    snprintf(o->etag, sizeof o->etag, "%s", res->etag);
    snprintf(o->sha256, sizeof o->sha256, "%s", res->sha256);
    o->nentries = res->nentries;
    for (size_t i = 0; i < res->nentries && i < 16; i++)
        snprintf(o->keys[i], sizeof o->keys[i], "%s", res->entries[i].key);
    snprintf(o->token, sizeof o->token, "%s", res->next_token ? res->next_token : "");
    o->truncated = res->truncated;
    o->info = res->info;
}

static int wait_for(outcome *o, unsigned ms)
{
    uint64_t until = loop_clock_ms() + ms;
    while (!o->done && loop_clock_ms() < until)
        loop_run_once(lp, 50);
    return o->done;
}

/* A deterministic body source: bytes i -> (i * 131 + seed) & 0xff, pausing
 * every few calls (resumed by a timer, as a client's bytes would be). */
typedef struct source {
    uint64_t length, pos;
    unsigned seed;
    unsigned calls;
    s3_op *op;
    loop_timer t;
    EVP_MD_CTX *md;
    int fail_at_end;
} source;

static void source_resume(loop *l, loop_timer *t)
{
    (void)l;
    source *s = t->data;
    s3_op_resume(s->op);
}

static ssize_t source_read(void *arg, char *buf, size_t max)
{
    source *s = arg;
    if (++s->calls % 7 == 0) {
        loop_timer_start(lp, &s->t, 1);
        return S3_PAUSE;
    }
    if (s->pos == s->length)
        return s->fail_at_end ? S3_ABORT : 0;
    size_t n = max;
    if (n > s->length - s->pos)
        n = (size_t)(s->length - s->pos);
    if (n > 100000)
        n = 100000 - s->calls % 1000;
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)(((s->pos + i) * 131 + s->seed) & 0xff);
    s->pos += n;
    return (ssize_t)n;
}

static void source_sha(uint64_t length, unsigned seed, char out[65])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    char buf[65536];
    for (uint64_t pos = 0; pos < length;) {
        size_t n = sizeof buf;
        if (n > length - pos)
            n = (size_t)(length - pos);
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)(((pos + i) * 131 + seed) & 0xff);
        EVP_DigestUpdate(md, buf, n);
        pos += n;
    }
    unsigned char d[32];
    unsigned dl;
    EVP_DigestFinal_ex(md, d, &dl);
    EVP_MD_CTX_free(md);
    util_hex(d, 32, out);
}

/* A sink that hashes what it gets, taking partial writes and pausing; the
 * op's one argument, its outcome first (on_done reads it as an outcome). */
typedef struct sink {
    outcome o;
    EVP_MD_CTX *md;
    uint64_t got;
    unsigned calls;
    s3_op *op;
    loop_timer t;
    int headers;
    s3_object_info info;
    strbuf body;
    int keep;
} sink;

static void sink_resume(loop *l, loop_timer *t)
{
    (void)l;
    sink *k = t->data;
    s3_op_resume(k->op);
}

static ssize_t sink_write(void *arg, const char *buf, size_t len)
{
    sink *k = arg;
    k->calls++;
    if (k->calls % 5 == 0) {
        loop_timer_start(lp, &k->t, 1);
        return S3_PAUSE;
    }
    size_t n = k->calls % 3 == 0 && len > 1 ? len / 2 : len;
    EVP_DigestUpdate(k->md, buf, n);
    if (k->keep)
        strbuf_add(&k->body, buf, n);
    k->got += n;
    if (n < len)
        loop_timer_start(lp, &k->t, 0);
    return (ssize_t)n;
}

/* Takes everything, but pauses once for 2.5 s after the first 64 KiB. */
static ssize_t slow_write(void *arg, const char *buf, size_t len)
{
    sink *k = arg;
    if (k->got >= 65536 && !k->calls) {
        k->calls = 1;
        loop_timer_start(lp, &k->t, 2500);
        return S3_PAUSE;
    }
    EVP_DigestUpdate(k->md, buf, len);
    k->got += len;
    return (ssize_t)len;
}

static void sink_headers(void *arg, const s3_object_info *info)
{
    sink *k = arg;
    k->headers++;
    k->info = *info;
}

static void sink_init(sink *k, int keep)
{
    memset(k, 0, sizeof *k);
    k->md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(k->md, EVP_sha256(), NULL);
    loop_timer_init(&k->t, sink_resume, k);
    strbuf_init(&k->body);
    k->keep = keep;
}

static void sink_hex(sink *k, char out[65])
{
    unsigned char d[32];
    unsigned dl;
    EVP_DigestFinal_ex(k->md, d, &dl);
    EVP_MD_CTX_free(k->md);
    util_hex(d, 32, out);
    strbuf_dispose(&k->body);
}

static void put_stream(s3_client *c, const char *key, int64_t length, unsigned seed,
                       const char *expect, outcome *o)
{
    source s;
    memset(&s, 0, sizeof s);
    s.length = length < 0 ? 11 * 1024 * 1024 + 7 : (uint64_t)length;
    s.seed = seed;
    loop_timer_init(&s.t, source_resume, &s);
    s3_put_opts po = {.read = source_read, .read_arg = &s, .length = length, .sha256 = expect};
    memset(o, 0, sizeof *o);
    s3_error err;
    s.op = s3_put(c, key, &po, on_done, o, &err);
    ok(s.op != NULL, "put %s started", key);
    if (!s.op)
        return;
    wait_for(o, 60000);
    loop_timer_stop(lp, &s.t);
}

static void get_check(s3_client *c, const char *key, uint64_t length, unsigned seed,
                      const char *label)
{
    sink k;
    sink_init(&k, 0);
    s3_error err;
    k.op = s3_get(c, key, NULL, sink_headers, sink_write, on_done, &k, &err);
    wait_for(&k.o, 60000);
    loop_timer_stop(lp, &k.t);
    char got[65], want[65];
    sink_hex(&k, got);
    source_sha(length, seed, want);
    ok(k.o.done && !k.o.failed && k.headers == 1 && k.got == length && !strcmp(got, want),
       "%s: read back %llu bytes with the same SHA-256 through pauses and partial writes", label,
       (unsigned long long)k.got);
}

static int upload_exists(s3_client *c, const char *key)
{
    outcome o;
    memset(&o, 0, sizeof o);
    s3_error err;
    s3_list_uploads(c, key, NULL, NULL, 0, on_done, &o, &err);
    wait_for(&o, 10000);
    for (size_t i = 0; i < o.nentries && i < 16; i++)
        if (!strcmp(o.keys[i], key))
            return 1;
    return 0;
}

static int head_status(s3_client *c, const char *key)
{
    outcome o;
    memset(&o, 0, sizeof o);
    s3_error err;
    s3_head_object(c, key, on_done, &o, &err);
    wait_for(&o, 10000);
    return o.failed ? (int)o.err.status : 200;
}

/* A source whose whole body is there at once (a chunked request body that
 * arrived whole): every read returns what is left. */
typedef struct whole_source {
    const char *data;
    size_t len, pos;
} whole_source;

static ssize_t whole_read(void *arg, char *buf, size_t max)
{
    whole_source *w = arg;
    size_t n = w->len - w->pos < max ? w->len - w->pos : max;
    memcpy(buf, w->data + w->pos, n);
    w->pos += n;
    return (ssize_t)n;
}

/* An unknown-length put refused at its first read (over max_bytes, or not
 * the digest announced) reports from the loop, never inside s3_put: the
 * caller must hold the op (and a Lua caller must have yielded) first. */
static void put_refused_at_once(s3_client *c, const char *key, uint64_t max, const char *sha,
                                int want, const char *label)
{
    whole_source w = {"twelve bytes", 12, 0};
    s3_put_opts po = {
        .read = whole_read, .read_arg = &w, .length = -1, .max_bytes = max, .sha256 = sha};
    outcome o;
    memset(&o, 0, sizeof o);
    s3_error err;
    ok(s3_put(c, key, &po, on_done, &o, &err) != NULL, "%s: started", label);
    ok(!o.done, "%s: not reported inside the call", label);
    wait_for(&o, 10000);
    ok(o.done && o.failed && o.err.kind == want, "%s: then fails (%s)", label, o.err.message);
}

static void test_store(void)
{
    s3_config cfg;
    if (store_config(&cfg) < 0) {
        ok(0, "the store tests need GLASGOW_TEST_S3_ENDPOINT and its keys, "
              "GLASGOW_TEST_S3_ACCESS_KEY_ID[_FILE] and GLASGOW_TEST_S3_SECRET_ACCESS_KEY[_FILE] "
              "(tests/run-all starts Ceph RGW)");
        return;
    }
    s3_global_init();
    lp = loop_create();
    s3_client *c = s3_client_create(lp, &cfg);
    uint64_t until = loop_clock_ms() + 10000;
    while (!s3_client_up(c) && loop_clock_ms() < until)
        loop_run_once(lp, 50);
    ok(s3_client_up(c), "the client's probe finds the bucket: up");
    ok(s3_all_up(), "every client is up");

    char prefix[64], key[128];
    uint32_t rnd;
    util_random_bytes(&rnd, sizeof rnd);
    snprintf(prefix, sizeof prefix, "unit-%08x/", rnd);
    s3_error err;
    outcome o;

    /* memory body */
    snprintf(key, sizeof key, "%ssmall file.txt", prefix);
    memset(&o, 0, sizeof o);
    s3_put_opts po = {.data = "hello, store", .len = 12, .content_type = "text/plain"};
    ok(s3_put(c, key, &po, on_done, &o, &err) != NULL, "put from memory started");
    ok(!o.done, "... and does not complete inside the call");
    wait_for(&o, 10000);
    ok(o.done && !o.failed && o.res.size == 12, "put from memory: 12 bytes (%s)", o.err.message);
    {
        unsigned char d[32];
        char hex[65];
        EVP_Digest("hello, store", 12, d, NULL, EVP_sha256(), NULL);
        util_hex(d, 32, hex);
        is_str(o.sha256, hex, "put from memory: SHA-256 reported");
    }
    memset(&o, 0, sizeof o);
    s3_head_object(c, key, on_done, &o, &err);
    wait_for(&o, 10000);
    ok(!o.failed && o.info.size == 12 && !strcmp(o.info.content_type, "text/plain"),
       "head: size and content type");
    sink k;
    sink_init(&k, 1);
    s3_range rg = {7, 10};
    k.op = s3_get(c, key, &rg, sink_headers, sink_write, on_done, &k, &err);
    wait_for(&k.o, 10000);
    loop_timer_stop(lp, &k.t);
    ok(!k.o.failed && k.info.status == 206 && k.info.size == 12 && k.info.first == 7 &&
           k.info.last == 10 && k.body.len == 4 && !memcmp(k.body.buf, "stor", 4),
       "ranged get: 206, bytes 7-10 of 12");
    char tmp[65];
    sink_hex(&k, tmp);

    snprintf(key, sizeof key, "%srefused", prefix);
    put_refused_at_once(c, key, 10, NULL, S3E_TOO_LARGE, "12 bytes at once into 10");
    put_refused_at_once(c, key, 0,
                        "0000000000000000000000000000000000000000000000000000000000000000",
                        S3E_DIGEST, "12 bytes at once, another digest");
    is_int(head_status(c, key), 404, "... and no object is left");

    /* errors */
    snprintf(key, sizeof key, "%smissing", prefix);
    sink_init(&k, 0);
    k.op = s3_get(c, key, NULL, sink_headers, sink_write, on_done, &k, &err);
    wait_for(&k.o, 10000);
    ok(k.o.failed && k.o.err.kind == S3E_STORE && k.o.err.status == 404 &&
           !strcmp(k.o.err.code, "NoSuchKey") && !k.o.err.retryable && k.headers == 0,
       "get of a missing key: NoSuchKey 404, no headers delivered");
    sink_hex(&k, tmp);
    memset(&o, 0, sizeof o);
    s3_delete_object(c, key, on_done, &o, &err);
    wait_for(&o, 10000);
    ok(o.done && !o.failed, "delete of a missing key succeeds");

    /* streamed single PUT with a known length and the right digest */
    char want[65];
    source_sha(1000003, 1, want);
    snprintf(key, sizeof key, "%ssingle", prefix);
    put_stream(c, key, 1000003, 1, want, &o);
    ok(o.done && !o.failed && o.res.size == 1000003 && !strcmp(o.sha256, want),
       "streamed single put: size and SHA-256 (%s)", o.err.message);
    get_check(c, key, 1000003, 1, "streamed single put");

    /* the wrong digest: nothing is stored */
    snprintf(key, sizeof key, "%sbad-digest", prefix);
    put_stream(c, key, 1000003, 2, want, &o);
    ok(o.failed && o.err.kind == S3E_DIGEST, "streamed put with a wrong digest fails");
    is_int(head_status(c, key), 404, "... and leaves no object");

    /* multipart: 5 MiB - 1 single, 5 MiB + 1 in two parts */
    snprintf(key, sizeof key, "%sfive-minus", prefix);
    put_stream(c, key, 5 * 1024 * 1024 - 1, 3, NULL, &o);
    ok(!o.failed, "5 MiB - 1 stored (%s)", o.err.message);
    get_check(c, key, 5 * 1024 * 1024 - 1, 3, "5 MiB - 1");
    snprintf(key, sizeof key, "%sfive-plus", prefix);
    put_stream(c, key, 5 * 1024 * 1024 + 1, 4, NULL, &o);
    ok(!o.failed && o.res.size == 5 * 1024 * 1024 + 1, "5 MiB + 1 stored in parts (%s)",
       o.err.message);
    get_check(c, key, 5 * 1024 * 1024 + 1, 4, "5 MiB + 1");

    /* unknown length: one part buffered at a time */
    snprintf(key, sizeof key, "%schunked", prefix);
    put_stream(c, key, -1, 5, NULL, &o);
    ok(!o.failed && o.res.size == 11 * 1024 * 1024 + 7, "unknown length stored (%s)",
       o.err.message);
    get_check(c, key, 11 * 1024 * 1024 + 7, 5, "unknown length");

    /* memory over the threshold: signed parts */
    snprintf(key, sizeof key, "%smemory-parts", prefix);
    {
        size_t len = 6 * 1024 * 1024 + 3;
        char *mem = xmalloc(len);
        for (size_t i = 0; i < len; i++)
            mem[i] = (char)((i * 131 + 7) & 0xff);
        s3_put_opts pm = {.data = mem, .len = len};
        memset(&o, 0, sizeof o);
        s3_put(c, key, &pm, on_done, &o, &err);
        wait_for(&o, 60000);
        ok(!o.failed && o.res.size == len, "memory over the threshold stored in parts (%s)",
           o.err.message);
        get_check(c, key, len, 7, "memory in parts");
        free(mem);
        memset(&o, 0, sizeof o);
        s3_delete_object(c, key, on_done, &o, &err);
        wait_for(&o, 10000);
    }

    /* a multipart put with the wrong digest is aborted */
    snprintf(key, sizeof key, "%smulti-bad", prefix);
    put_stream(c, key, 6 * 1024 * 1024, 6, want, &o);
    ok(o.failed && o.err.kind == S3E_DIGEST, "multipart put with a wrong digest fails");
    for (int i = 0; i < 20 && upload_exists(c, key); i++)
        loop_run_once(lp, 50);
    ok(!upload_exists(c, key) && head_status(c, key) == 404,
       "... its upload is aborted and no object is left");

    /* listing with continuation */
    memset(&o, 0, sizeof o);
    char token[512] = "";
    size_t total = 0;
    int pages = 0;
    do {
        memset(&o, 0, sizeof o);
        s3_list_objects(c, prefix, token[0] ? token : NULL, 2, on_done, &o, &err);
        wait_for(&o, 10000);
        total += o.nentries;
        pages++;
        snprintf(token, sizeof token, "%s", o.token);
    } while (!o.failed && o.truncated && pages < 10);
    ok(!o.failed && total == 5 && pages == 3, "list v2 by 2: 5 keys in 3 pages (%zu in %d)", total,
       pages);

    /* the multipart calls themselves */
    snprintf(key, sizeof key, "%sexplicit", prefix);
    memset(&o, 0, sizeof o);
    s3_create_multipart(c, key, "text/plain", on_done, &o, &err);
    wait_for(&o, 10000);
    ok(!o.failed && o.upload_id[0], "create multipart: an upload id");
    char upload[256];
    snprintf(upload, sizeof upload, "%s", o.upload_id);
    s3_part parts[2];
    memset(&o, 0, sizeof o);
    s3_upload_part(c, key, upload, 1, "tiny", 4, NULL, NULL, on_done, &o, &err);
    wait_for(&o, 10000);
    ok(!o.failed && o.etag[0], "upload part 1");
    parts[0].number = 1;
    snprintf(parts[0].etag, sizeof parts[0].etag, "%s", o.etag);
    memset(&o, 0, sizeof o);
    s3_upload_part(c, key, upload, 2, "end", 3, NULL, NULL, on_done, &o, &err);
    wait_for(&o, 10000);
    parts[1].number = 2;
    snprintf(parts[1].etag, sizeof parts[1].etag, "%s", o.etag);
    memset(&o, 0, sizeof o);
    s3_list_parts(c, key, upload, 0, on_done, &o, &err);
    wait_for(&o, 10000);
    ok(!o.failed && o.nentries == 2, "list parts: 2");
    memset(&o, 0, sizeof o);
    s3_complete_multipart(c, key, upload, parts, 2, on_done, &o, &err);
    wait_for(&o, 10000);
    ok(o.failed && o.err.kind == S3E_STORE && !strcmp(o.err.code, "EntityTooSmall") &&
           !o.err.retryable,
       "complete with a 4-byte first part: EntityTooSmall, not retried (%s)", o.err.code);
    memset(&o, 0, sizeof o);
    s3_abort_multipart(c, key, upload, on_done, &o, &err);
    wait_for(&o, 10000);
    ok(!o.failed, "abort the upload");
    memset(&o, 0, sizeof o);
    s3_abort_multipart(c, key, upload, on_done, &o, &err);
    wait_for(&o, 10000);
    ok(!o.failed, "abort it again: already gone is fine");

    /* cancel mid-download: no callback, the client goes on */
    snprintf(key, sizeof key, "%sfive-plus", prefix);
    sink_init(&k, 0);
    k.op = s3_get(c, key, NULL, sink_headers, sink_write, on_done, &k, &err);
    until = loop_clock_ms() + 10000;
    while (k.got < 100000 && loop_clock_ms() < until)
        loop_run_once(lp, 20);
    s3_op_cancel(k.op);
    loop_timer_stop(lp, &k.t);
    for (int i = 0; i < 10; i++)
        loop_run_once(lp, 10);
    ok(!k.o.done && k.got >= 100000 && k.got < 5 * 1024 * 1024,
       "a get cancelled midway reports nothing more (%llu bytes)", (unsigned long long)k.got);
    sink_hex(&k, tmp);
    is_int(head_status(c, key), 200, "the client still works after a cancel");

    /* a download paused for a slow client outlives the low-speed limit */
    {
        s3_config slow = cfg;
        slow.low_speed_time_s = 1;
        s3_client *c2 = s3_client_create(lp, &slow);
        snprintf(key, sizeof key, "%sfive-plus", prefix);
        sink_init(&k, 0);
        k.op = s3_get(c2, key, NULL, sink_headers, slow_write, on_done, &k, &err);
        wait_for(&k.o, 30000);
        loop_timer_stop(lp, &k.t);
        ok(!k.o.failed && k.got == 5 * 1024 * 1024 + 1,
           "a get paused 2.5 s by its consumer survives a 1 s low-speed limit (%s)",
           k.o.err.message);
        sink_hex(&k, tmp);
        s3_client_destroy(c2, 0);
    }

    /* a put whose source fails midway leaves nothing */
    snprintf(key, sizeof key, "%ssource-fails", prefix);
    {
        source s;
        memset(&s, 0, sizeof s);
        s.length = 6 * 1024 * 1024;
        s.fail_at_end = 1;
        loop_timer_init(&s.t, source_resume, &s);
        s3_put_opts p2 = {.read = source_read, .read_arg = &s, .length = -1};
        memset(&o, 0, sizeof o);
        s.op = s3_put(c, key, &p2, on_done, &o, &err);
        wait_for(&o, 30000);
        loop_timer_stop(lp, &s.t);
        ok(o.failed && o.err.kind == S3E_CLIENT, "a source that fails fails the put");
        for (int i = 0; i < 20 && upload_exists(c, key); i++)
            loop_run_once(lp, 50);
        ok(!upload_exists(c, key) && head_status(c, key) == 404,
           "... and its multipart upload is aborted");
    }

    /* cleanup */
    const char *names[] = {"small file.txt", "single", "five-minus", "five-plus", "chunked"};
    for (size_t i = 0; i < 5; i++) {
        snprintf(key, sizeof key, "%s%s", prefix, names[i]);
        memset(&o, 0, sizeof o);
        s3_delete_object(c, key, on_done, &o, &err);
        wait_for(&o, 10000);
    }
    memset(&o, 0, sizeof o);
    s3_list_objects(c, prefix, NULL, 0, on_done, &o, &err);
    wait_for(&o, 10000);
    is_int(o.nentries, 0, "every test object deleted");
    s3_client_destroy(c, 1000);

    /* a missing bucket: not ready; with create_bucket, made by the probe */
    {
        char bucket[64];
        snprintf(bucket, sizeof bucket, "glasgow-unit-%08x", rnd);
        s3_config nb = cfg;
        nb.bucket = bucket;
        s3_client *c2 = s3_client_create(lp, &nb);
        for (int i = 0; i < 20; i++)
            loop_run_once(lp, 20);
        ok(!s3_client_up(c2), "a client whose bucket does not exist is not up");
        s3_client_destroy(c2, 0);
        nb.create_bucket = 1;
        c2 = s3_client_create(lp, &nb);
        until = loop_clock_ms() + 10000;
        while (!s3_client_up(c2) && loop_clock_ms() < until)
            loop_run_once(lp, 20);
        ok(s3_client_up(c2), "with create_bucket, its probe creates the bucket and it is up");
        s3_client_destroy(c2, 0);
    }

    /* a wrong secret: a clear error, not retried */
    s3_config bad = cfg;
    bad.secret_key = "wrong-secret";
    c = s3_client_create(lp, &bad);
    memset(&o, 0, sizeof o);
    s3_put_opts p3 = {.data = "x", .len = 1};
    s3_put(c, "unit-bad-secret", &p3, on_done, &o, &err);
    wait_for(&o, 10000);
    ok(o.failed && o.err.kind == S3E_STORE && o.err.status == 403 &&
           !strcmp(o.err.code, "SignatureDoesNotMatch") && !o.err.retryable,
       "a wrong secret: 403 SignatureDoesNotMatch, not retryable (%s %u)", o.err.code,
       o.err.status);
    for (int i = 0; i < 20; i++)
        loop_run_once(lp, 20);
    ok(!s3_client_up(c), "... and that client is not up");
    s3_client_destroy(c, 0);

    /* nothing listening: network errors, retried, then reported */
    s3_config dead = cfg;
    char err2[100];
    s3_endpoint_parse("http://127.0.0.1:9", &dead.endpoint, err2, sizeof err2);
    c = s3_client_create(lp, &dead);
    memset(&o, 0, sizeof o);
    uint64_t t0 = loop_clock_ms();
    s3_head_object(c, "x", on_done, &o, &err);
    wait_for(&o, 10000);
    ok(o.failed && o.err.kind == S3E_NETWORK && o.err.retryable,
       "a store that is down: a retryable network error after %llu ms (%s)",
       (unsigned long long)(loop_clock_ms() - t0), o.err.message);
    s3_client_destroy(c, 0);
    loop_destroy(lp);
}

int main(void)
{
    test_endpoint();
    test_encoding();
    test_errors();
    test_policy();
    test_store();
    free(access_key);
    free(secret_key);
    return done_testing();
}
