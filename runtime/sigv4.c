/*
 * sigv4: AWS Signature Version 4 (see sigv4.h for the contract).
 *
 * Every input is validated against its limit before anything is allocated,
 * so the sizes of the texts built below are bounded by the limits in
 * sigv4.h. The texts are built in strbufs (allocation failure aborts);
 * hashing and HMAC come from OpenSSL.
 */
#include "sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char algorithm[] = "AWS4-HMAC-SHA256";
static const char hexdigits[] = "0123456789ABCDEF";

/* Fills err with a formatted message and returns -1. */
__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
                                                      ...)
{
    va_list ap;
    if (errlen == 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static void sha256(const void *data, size_t len, unsigned char out[32])
{
    if (!EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL))
        die("sigv4: SHA-256 failed");
}

static void hmac(const void *key, size_t keylen, const void *data, size_t len,
                 unsigned char out[32])
{
    unsigned int outlen = 32;
    if (!HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &outlen) || outlen != 32)
        die("sigv4: HMAC-SHA256 failed");
}

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* RFC 9110 tchar. */
static int is_tchar(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int is_token(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!is_tchar((unsigned char)s[i]))
            return 0;
    return 1;
}

/* Case-insensitive equality of s[0..len) with the NUL-terminated lower-case
 * ASCII string lc. */
static int eq_lower(const char *s, size_t len, const char *lc)
{
    if (strlen(lc) != len)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (c != (unsigned char)lc[i])
            return 0;
    }
    return 1;
}

/* Appends the URI encoding of s[0..len): unreserved bytes as they are, every
 * other byte as %XX. */
static void add_encoded(strbuf *sb, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c)) {
            strbuf_add(sb, &s[i], 1);
        } else {
            char esc[3] = {'%', hexdigits[c >> 4], hexdigits[c & 15]};
            strbuf_add(sb, esc, 3);
        }
    }
}

static void hex_lower(const unsigned char *in, size_t n, char *out)
{
    util_hex(in, n, out);
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

static int check_time(const char *t, char *err, size_t errlen)
{
    if (!t)
        return fail(err, errlen, "time: missing");
    size_t len = strnlen(t, SIGV4_TIME_LEN + 1);
    int shape = len == SIGV4_TIME_LEN && t[8] == 'T' && t[15] == 'Z';
    for (size_t i = 0; shape && i < 15; i++)
        if (i != 8 && !(t[i] >= '0' && t[i] <= '9'))
            shape = 0;
    if (!shape)
        return fail(err, errlen, "time: YYYYMMDDTHHMMSSZ expected");
#define NUM2(p) ((t[p] - '0') * 10 + (t[(p) + 1] - '0'))
    int y = NUM2(0) * 100 + NUM2(2), mo = NUM2(4), d = NUM2(6);
    int h = NUM2(9), mi = NUM2(11), s = NUM2(13);
#undef NUM2
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59)
        return fail(err, errlen, "time: not a valid UTC date and time");
    return 0;
}

/* A NUL-terminated field of 1..max bytes whose bytes all pass ok. */
static int check_field(const char *what, const char *s, size_t max, int (*ok)(unsigned char),
                       char *err, size_t errlen)
{
    if (!s || !*s)
        return fail(err, errlen, "%s: missing", what);
    size_t len = strnlen(s, max + 1);
    if (len > max)
        return fail(err, errlen, "%s: longer than %zu bytes", what, max);
    for (size_t i = 0; i < len; i++)
        if (!ok((unsigned char)s[i]))
            return fail(err, errlen, "%s: invalid byte 0x%02x", what, (unsigned char)s[i]);
    return 0;
}

static int ok_scope_part(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

static int ok_access_key(unsigned char c)
{
    return c > ' ' && c < 0x7f && c != '/' && c != ',';
}

static int ok_any(unsigned char c)
{
    return c != 0;
}

static int ok_visible(unsigned char c)
{
    return c > ' ' && c < 0x7f;
}

static int check_scope_inputs(const char *secret_key, const char *time, const char *region,
                              const char *service, char *err, size_t errlen)
{
    if (check_time(time, err, errlen) < 0 ||
        check_field("region", region, SIGV4_MAX_FIELD, ok_scope_part, err, errlen) < 0 ||
        check_field("service", service, SIGV4_MAX_FIELD, ok_scope_part, err, errlen) < 0 ||
        check_field("secret_key", secret_key, SIGV4_MAX_FIELD, ok_any, err, errlen) < 0)
        return -1;
    return 0;
}

int sigv4_signing_key(const char *secret_key, const char *time, const char *region,
                      const char *service, unsigned char key[32], char *scope, char *err,
                      size_t errlen)
{
    if (check_scope_inputs(secret_key, time, region, service, err, errlen) < 0)
        return -1;
    char k0[4 + SIGV4_MAX_FIELD + 1];
    int k0len = snprintf(k0, sizeof k0, "AWS4%s", secret_key);
    hmac(k0, (size_t)k0len, time, 8, key);
    OPENSSL_cleanse(k0, sizeof k0);
    hmac(key, 32, region, strlen(region), key);
    hmac(key, 32, service, strlen(service), key);
    hmac(key, 32, "aws4_request", 12, key);
    snprintf(scope, SIGV4_SCOPE_MAX + 1, "%.8s/%s/%s/aws4_request", time, region, service);
    return 0;
}

static int check_payload_hash(const char *h, char *err, size_t errlen)
{
    if (!h || !*h)
        return fail(err, errlen, "payload_hash: missing");
    size_t len = strnlen(h, SIGV4_MAX_PAYLOAD_HASH + 1);
    if (len > SIGV4_MAX_PAYLOAD_HASH)
        return fail(err, errlen, "payload_hash: longer than %d bytes", SIGV4_MAX_PAYLOAD_HASH);
    int hex = len == 64, token = 1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)h[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            hex = 0;
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
            token = 0;
    }
    if (!hex && !token)
        return fail(err, errlen,
                    "payload_hash: hex SHA-256 or a token like UNSIGNED-PAYLOAD "
                    "expected");
    return 0;
}

/* Checks everything but the payload hash. */
static int check_request(const sigv4_request *r, char *err, size_t errlen)
{
    size_t mlen = r->method ? strnlen(r->method, SIGV4_MAX_METHOD + 1) : 0;
    if (mlen > SIGV4_MAX_METHOD || !is_token(r->method, mlen))
        return fail(err, errlen, "method: an HTTP token of at most %d bytes expected",
                    SIGV4_MAX_METHOD);
    if (!r->path || r->path_len == 0 || r->path[0] != '/')
        return fail(err, errlen, "path: must start with /");
    if (r->path_len > SIGV4_MAX_PATH)
        return fail(err, errlen, "path: longer than %d bytes", SIGV4_MAX_PATH);
    for (size_t i = 0; i < r->path_len; i++) {
        unsigned char c = (unsigned char)r->path[i];
        if (c <= ' ' || c >= 0x7f || c == '?' || c == '#')
            return fail(err, errlen, "path: byte 0x%02x must be encoded", c);
    }

    if (r->nquery > SIGV4_MAX_QUERY)
        return fail(err, errlen, "query: more than %d pairs", SIGV4_MAX_QUERY);
    if (r->nquery && !r->query)
        return fail(err, errlen, "query: missing");
    size_t total = 0;
    for (size_t i = 0; i < r->nquery; i++) {
        const sigv4_pair *p = &r->query[i];
        if ((p->name_len && !p->name) || (p->value_len && !p->value))
            return fail(err, errlen, "query: pair %zu is missing a name or value", i + 1);
        if (p->name_len > SIGV4_MAX_QUERY_BYTES || p->value_len > SIGV4_MAX_QUERY_BYTES ||
            (total += p->name_len + p->value_len) > SIGV4_MAX_QUERY_BYTES)
            return fail(err, errlen, "query: more than %d bytes", SIGV4_MAX_QUERY_BYTES);
    }

    if (r->nheaders > SIGV4_MAX_HEADERS)
        return fail(err, errlen, "headers: more than %d pairs", SIGV4_MAX_HEADERS);
    if (r->nheaders && !r->headers)
        return fail(err, errlen, "headers: missing");
    int host = 0;
    total = 0;
    for (size_t i = 0; i < r->nheaders; i++) {
        const sigv4_pair *p = &r->headers[i];
        if (!p->name || (p->value_len && !p->value))
            return fail(err, errlen, "headers: pair %zu is missing a name or value", i + 1);
        if (p->name_len > SIGV4_MAX_HEADER_BYTES || p->value_len > SIGV4_MAX_HEADER_BYTES ||
            (total += p->name_len + p->value_len) > SIGV4_MAX_HEADER_BYTES)
            return fail(err, errlen, "headers: more than %d bytes", SIGV4_MAX_HEADER_BYTES);
        if (!is_token(p->name, p->name_len))
            return fail(err, errlen, "headers: name %zu is not an HTTP token", i + 1);
        for (size_t j = 0; j < p->value_len; j++) {
            unsigned char c = (unsigned char)p->value[j];
            if ((c < ' ' && c != '\t') || c == 0x7f)
                return fail(err, errlen, "headers: value %zu holds control byte 0x%02x", i + 1, c);
        }
        if (eq_lower(p->name, p->name_len, "x-amz-date") ||
            eq_lower(p->name, p->name_len, "x-amz-security-token"))
            return fail(err, errlen, "headers: %.*s is added by the signer", (int)p->name_len,
                        p->name);
        if (eq_lower(p->name, p->name_len, "host"))
            host = 1;
    }
    if (!host)
        return fail(err, errlen, "headers: host is required");

    if (check_field("access_key", r->access_key, SIGV4_MAX_FIELD, ok_access_key, err, errlen) < 0)
        return -1;
    if (r->session_token && *r->session_token &&
        check_field("session_token", r->session_token, SIGV4_MAX_TOKEN, ok_visible, err, errlen) <
            0)
        return -1;
    return check_scope_inputs(r->secret_key, r->time, r->region, r->service, err, errlen);
}

/* A query pair after encoding, for sorting. */
typedef struct enc_pair {
    char *name;
    char *value;
} enc_pair;

static int cmp_enc_pair(const void *a, const void *b)
{
    const enc_pair *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

/* Appends the canonical query string of pairs (n of them, n <= SIGV4_MAX_QUERY
 * + the presign extras) to sb. */
static void add_canonical_query(strbuf *sb, const sigv4_pair *const *pairs, size_t n)
{
    enc_pair *enc = xcalloc(n ? n : 1, sizeof *enc);
    for (size_t i = 0; i < n; i++) {
        strbuf t;
        strbuf_init(&t);
        add_encoded(&t, pairs[i]->name, pairs[i]->name_len);
        strbuf_add(&t, "", 0);
        enc[i].name = t.buf ? t.buf : xstrdup("");
        strbuf_init(&t);
        add_encoded(&t, pairs[i]->value, pairs[i]->value_len);
        strbuf_add(&t, "", 0);
        enc[i].value = t.buf ? t.buf : xstrdup("");
    }
    qsort(enc, n, sizeof *enc, cmp_enc_pair);
    for (size_t i = 0; i < n; i++) {
        if (i)
            strbuf_add(sb, "&", 1);
        strbuf_adds(sb, enc[i].name);
        strbuf_add(sb, "=", 1);
        strbuf_adds(sb, enc[i].value);
        free(enc[i].name);
        free(enc[i].value);
    }
    free(enc);
}

/* A header with its lower-cased name, for sorting; index keeps request
 * order among repeats. */
typedef struct hdr {
    char *name;
    size_t index;
    const char *value;
    size_t value_len;
} hdr;

static int cmp_hdr(const void *a, const void *b)
{
    const hdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Appends value with leading and trailing blanks removed and inner runs of
 * blanks (space, tab) collapsed to one space. */
static void add_trimmed(strbuf *sb, const char *v, size_t len)
{
    size_t i = 0;
    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    while (i < len && (v[i] == ' ' || v[i] == '\t'))
        i++;
    while (i < len) {
        size_t start = i;
        while (i < len && v[i] != ' ' && v[i] != '\t')
            i++;
        strbuf_add(sb, v + start, i - start);
        if (i < len) {
            strbuf_add(sb, " ", 1);
            while (i < len && (v[i] == ' ' || v[i] == '\t'))
                i++;
        }
    }
}

/* Appends the canonical header block (each "name:value\n") to canon and the
 * signed header list to names: the request's headers plus extra (lower-case
 * names, values already canonical), n_extra of them. */
static void add_canonical_headers(strbuf *canon, strbuf *names, const sigv4_request *r,
                                  const sigv4_pair *extra, size_t n_extra)
{
    size_t n = r->nheaders + n_extra;
    hdr *h = xcalloc(n ? n : 1, sizeof *h);
    for (size_t i = 0; i < n; i++) {
        const sigv4_pair *p = i < r->nheaders ? &r->headers[i] : &extra[i - r->nheaders];
        h[i].name = xstrndup(p->name, p->name_len);
        for (char *c = h[i].name; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        h[i].index = i;
        h[i].value = p->value;
        h[i].value_len = p->value_len;
    }
    qsort(h, n, sizeof *h, cmp_hdr);
    for (size_t i = 0; i < n; i++) {
        int first = i == 0 || strcmp(h[i].name, h[i - 1].name) != 0;
        if (first) {
            if (i)
                strbuf_add(canon, "\n", 1);
            strbuf_adds(canon, h[i].name);
            strbuf_add(canon, ":", 1);
            if (names->len)
                strbuf_add(names, ";", 1);
            strbuf_adds(names, h[i].name);
        } else {
            strbuf_add(canon, ",", 1);
        }
        add_trimmed(canon, h[i].value, h[i].value_len);
    }
    if (n)
        strbuf_add(canon, "\n", 1);
    for (size_t i = 0; i < n; i++)
        free(h[i].name);
    free(h);
}

static char *take(strbuf *sb)
{
    char *s = sb->buf ? sb->buf : xstrdup("");
    strbuf_init(sb);
    return s;
}

static void pair_of(sigv4_pair *p, const char *name, const char *value)
{
    p->name = name;
    p->name_len = strlen(name);
    p->value = value;
    p->value_len = strlen(value);
}

/* The part both ways of signing share: extra_query and extra_headers are
 * what the signer adds. Fills out's texts and signature; returns 0. */
static void sign_common(const sigv4_request *r, const char *payload_hash,
                        const sigv4_pair *extra_query, size_t n_extra_query,
                        const sigv4_pair *extra_headers, size_t n_extra_headers, sigv4_result *out)
{
    strbuf canon, names;
    strbuf_init(&canon);
    strbuf_init(&names);

    strbuf_adds(&canon, r->method);
    strbuf_add(&canon, "\n", 1);
    strbuf_add(&canon, r->path, r->path_len);
    strbuf_add(&canon, "\n", 1);
    size_t nq = r->nquery + n_extra_query;
    const sigv4_pair **q = xcalloc(nq ? nq : 1, sizeof *q);
    for (size_t i = 0; i < nq; i++)
        q[i] = i < r->nquery ? &r->query[i] : &extra_query[i - r->nquery];
    add_canonical_query(&canon, q, nq);
    free(q);
    strbuf_add(&canon, "\n", 1);

    /* The signed header list is known before the query of a presigned URL
     * is complete: compute it first. */
    strbuf hdrs;
    strbuf_init(&hdrs);
    add_canonical_headers(&hdrs, &names, r, extra_headers, n_extra_headers);
    strbuf_add(&canon, hdrs.buf ? hdrs.buf : "", hdrs.len);
    strbuf_dispose(&hdrs);
    strbuf_add(&canon, "\n", 1);
    strbuf_add(&canon, names.buf, names.len);
    strbuf_add(&canon, "\n", 1);
    strbuf_adds(&canon, payload_hash);

    unsigned char digest[32];
    char hex[65];
    sha256(canon.buf, canon.len, digest);
    hex_lower(digest, 32, hex);
    strbuf sts;
    strbuf_init(&sts);
    strbuf_addf(&sts, "%s\n%s\n%s\n%s", algorithm, r->time, out->scope, hex);
    hmac(out->signing_key, 32, sts.buf, sts.len, digest);
    hex_lower(digest, 32, out->signature);

    out->canonical_request = take(&canon);
    out->string_to_sign = take(&sts);
    out->signed_headers = take(&names);
}

static void result_init(sigv4_result *out)
{
    memset(out, 0, sizeof *out);
}

/* Validates r and derives the key and scope into out. */
static int begin(const sigv4_request *r, sigv4_result *out, char *err, size_t errlen)
{
    result_init(out);
    if (!r)
        return fail(err, errlen, "request: missing");
    if (check_request(r, err, errlen) < 0)
        return -1;
    if (sigv4_signing_key(r->secret_key, r->time, r->region, r->service, out->signing_key,
                          out->scope, err, errlen) < 0)
        return -1;
    memcpy(out->time, r->time, SIGV4_TIME_LEN + 1);
    return 0;
}

static int has_token(const sigv4_request *r)
{
    return r->session_token && *r->session_token;
}

int sigv4_sign(const sigv4_request *r, sigv4_result *out, char *err, size_t errlen)
{
    if (begin(r, out, err, errlen) < 0)
        return -1;
    if (check_payload_hash(r->payload_hash, err, errlen) < 0) {
        sigv4_result_dispose(out);
        return -1;
    }
    sigv4_pair extra[2];
    size_t n_extra = 0;
    pair_of(&extra[n_extra++], "x-amz-date", r->time);
    if (has_token(r))
        pair_of(&extra[n_extra++], "x-amz-security-token", r->session_token);
    sign_common(r, r->payload_hash, NULL, 0, extra, n_extra, out);

    strbuf auth;
    strbuf_init(&auth);
    strbuf_addf(&auth, "%s Credential=%s/%s, SignedHeaders=%s, Signature=%s", algorithm,
                r->access_key, out->scope, out->signed_headers, out->signature);
    out->authorization = take(&auth);
    return 0;
}

int sigv4_presign(const sigv4_request *r, long expires, sigv4_result *out, char *err, size_t errlen)
{
    static const char *const reserved[] = {
        "x-amz-algorithm",     "x-amz-credential", "x-amz-date",           "x-amz-expires",
        "x-amz-signedheaders", "x-amz-signature",  "x-amz-security-token",
    };
    if (begin(r, out, err, errlen) < 0)
        return -1;
    if (expires < 1 || expires > SIGV4_MAX_EXPIRES) {
        sigv4_result_dispose(out);
        return fail(err, errlen, "expires: 1..%d seconds expected", SIGV4_MAX_EXPIRES);
    }
    for (size_t i = 0; i < r->nquery; i++)
        for (size_t j = 0; j < sizeof reserved / sizeof *reserved; j++)
            if (eq_lower(r->query[i].name, r->query[i].name_len, reserved[j])) {
                sigv4_result_dispose(out);
                return fail(err, errlen, "query: %s is added by the signer", reserved[j]);
            }

    /* The signed header list goes into the query, so compute it first. */
    strbuf canon, names;
    strbuf_init(&canon);
    strbuf_init(&names);
    add_canonical_headers(&canon, &names, r, NULL, 0);
    strbuf_dispose(&canon);

    char credential[SIGV4_MAX_FIELD + 1 + SIGV4_SCOPE_MAX + 1];
    char expires_s[24];
    snprintf(credential, sizeof credential, "%s/%s", r->access_key, out->scope);
    snprintf(expires_s, sizeof expires_s, "%ld", expires);
    sigv4_pair extra[6];
    size_t n = 0;
    pair_of(&extra[n++], "X-Amz-Algorithm", algorithm);
    pair_of(&extra[n++], "X-Amz-Credential", credential);
    pair_of(&extra[n++], "X-Amz-Date", r->time);
    pair_of(&extra[n++], "X-Amz-Expires", expires_s);
    pair_of(&extra[n++], "X-Amz-SignedHeaders", names.buf);
    if (has_token(r))
        pair_of(&extra[n++], "X-Amz-Security-Token", r->session_token);
    sign_common(r, SIGV4_UNSIGNED_PAYLOAD, extra, n, NULL, 0, out);
    strbuf_dispose(&names);

    /* The query to send is the canonical one (line 3 of the canonical
     * request) plus the signature. */
    const char *q = strchr(out->canonical_request, '\n') + 1;
    q = strchr(q, '\n') + 1;
    const char *end = strchr(q, '\n');
    strbuf query;
    strbuf_init(&query);
    strbuf_add(&query, q, (size_t)(end - q));
    strbuf_addf(&query, "&X-Amz-Signature=%s", out->signature);
    out->query = take(&query);
    return 0;
}

void sigv4_result_dispose(sigv4_result *out)
{
    free(out->canonical_request);
    free(out->string_to_sign);
    free(out->signed_headers);
    free(out->authorization);
    free(out->query);
    OPENSSL_cleanse(out->signing_key, sizeof out->signing_key);
    result_init(out);
}

void sigv4_chunk_init(sigv4_chunk *c, const sigv4_result *seed)
{
    memcpy(c->signing_key, seed->signing_key, sizeof c->signing_key);
    memcpy(c->time, seed->time, sizeof c->time);
    memcpy(c->scope, seed->scope, sizeof c->scope);
    memcpy(c->previous, seed->signature, sizeof c->previous);
}

void sigv4_chunk_sign_hash(sigv4_chunk *c, const unsigned char digest[32],
                           char sig[SIGV4_SIG_LEN + 1])
{
    char hex[65];
    unsigned char mac[32];
    strbuf sts;
    strbuf_init(&sts);
    hex_lower(digest, 32, hex);
    strbuf_addf(&sts, "AWS4-HMAC-SHA256-PAYLOAD\n%s\n%s\n%s\n%s\n%s", c->time, c->scope,
                c->previous, SIGV4_EMPTY_SHA256, hex);
    hmac(c->signing_key, 32, sts.buf, sts.len, mac);
    strbuf_dispose(&sts);
    hex_lower(mac, 32, sig);
    memcpy(c->previous, sig, SIGV4_SIG_LEN + 1);
}

void sigv4_chunk_sign(sigv4_chunk *c, const void *data, size_t len, char sig[SIGV4_SIG_LEN + 1])
{
    unsigned char digest[32];
    sha256(len ? data : "", len, digest);
    sigv4_chunk_sign_hash(c, digest, sig);
}

size_t sigv4_chunk_header(size_t len, const char sig[SIGV4_SIG_LEN + 1], char *out)
{
    int n = snprintf(out, SIGV4_CHUNK_HEADER_MAX, "%zx;chunk-signature=%.64s\r\n", len, sig);
    return n < 0 ? 0 : (size_t)n;
}

void sigv4_chunk_dispose(sigv4_chunk *c)
{
    OPENSSL_cleanse(c, sizeof *c);
}
