/*
 * Fuzz target: sigv4 canonicalisation (runtime/sigv4.c).
 *
 * The input is a request, one record per line: the first line is the path
 * (any bytes); then "q NAME=VALUE" query pairs, "h NAME:VALUE" headers,
 * "m METHOD", "t TOKEN" (session token), "T TIME", "P HASH" (payload hash),
 * "k SECRET" and "x SECONDS" (presign with that lifetime instead of
 * signing). Anything may be malformed or over a limit.
 *
 * Invariants: the signer either refuses with a message and an empty result
 * or succeeds; signing the same request again gives the same texts and
 * signature; reversing or rotating the query pairs changes nothing, nor
 * does reversing headers whose names are all distinct; the canonical
 * request starts with the method and the path as given and ends with the
 * payload hash, and (when signing with headers) its query line equals one
 * built by an independent encoder; the signature is 64 lowercase hex.
 */
#include "fuzz.h"
#include "sigv4.h"
#include "util.h"

#include <string.h>
#include <strings.h>

enum { MAX_RECORDS = 256 };

/* The canonical query line written the obvious way, for comparison. */
static void ref_encode(strbuf *sb, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            (c != 0 && strchr("-._~", c) != NULL))
            strbuf_add(sb, &s[i], 1);
        else
            strbuf_addf(sb, "%%%02X", c);
    }
}

typedef struct ref_pair {
    char *text; /* "NAME=VALUE", encoded */
    char *name;
    char *value;
} ref_pair;

static int cmp_ref(const void *a, const void *b)
{
    const ref_pair *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

static char *ref_query(const sigv4_pair *q, size_t n)
{
    ref_pair *p = xcalloc(n ? n : 1, sizeof *p);
    for (size_t i = 0; i < n; i++) {
        strbuf a, b;
        strbuf_init(&a);
        strbuf_init(&b);
        ref_encode(&a, q[i].name, q[i].name_len);
        ref_encode(&b, q[i].value, q[i].value_len);
        p[i].name = xstrdup(a.buf ? a.buf : "");
        p[i].value = xstrdup(b.buf ? b.buf : "");
        strbuf_dispose(&a);
        strbuf_dispose(&b);
    }
    qsort(p, n, sizeof *p, cmp_ref);
    strbuf out;
    strbuf_init(&out);
    for (size_t i = 0; i < n; i++) {
        strbuf_addf(&out, "%s%s=%s", i ? "&" : "", p[i].name, p[i].value);
        free(p[i].name);
        free(p[i].value);
    }
    free(p);
    return out.buf ? out.buf : xstrdup("");
}

/* Signs or presigns; on failure checks the refusal contract. */
static int run(const sigv4_request *r, long expires, sigv4_result *out)
{
    char err[256] = "";
    int rc = expires ? sigv4_presign(r, expires, out, err, sizeof err)
                     : sigv4_sign(r, out, err, sizeof err);
    fuzz_check(rc == 0 || rc == -1, "rc %d", rc);
    if (rc < 0) {
        fuzz_check(err[0] != '\0' && strlen(err) < sizeof err, "refused without a message");
        fuzz_check(out->canonical_request == NULL && out->authorization == NULL &&
                       out->query == NULL,
                   "refused with a result");
    }
    return rc;
}

static void same(const sigv4_result *a, const sigv4_result *b, const char *what)
{
    fuzz_check(strcmp(a->canonical_request, b->canonical_request) == 0,
               "%s changed the canonical request", what);
    fuzz_check(strcmp(a->string_to_sign, b->string_to_sign) == 0, "%s changed the string to sign",
               what);
    fuzz_check(strcmp(a->signature, b->signature) == 0, "%s changed the signature", what);
    fuzz_check((a->authorization == NULL) == (b->authorization == NULL) &&
                   (!a->authorization || strcmp(a->authorization, b->authorization) == 0),
               "%s changed the Authorization", what);
    fuzz_check((a->query == NULL) == (b->query == NULL) &&
                   (!a->query || strcmp(a->query, b->query) == 0),
               "%s changed the presigned query", what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = xmalloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';

    sigv4_pair *q = xcalloc(MAX_RECORDS, sizeof *q);
    sigv4_pair *h = xcalloc(MAX_RECORDS, sizeof *h);
    sigv4_request r = {
        .method = "GET",
        .payload_hash = SIGV4_UNSIGNED_PAYLOAD,
        .region = "us-east-1",
        .service = "s3",
        .access_key = "AKIAIOSFODNN7EXAMPLE",
        .secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        .time = "20130524T000000Z",
        .query = q,
        .headers = h,
    };
    long expires = 0;

    /* Lines; the first is the path. Records keep pointers into buf, whose
     * newlines become NULs (so single-field records are C strings). */
    char *p = buf, *end = buf + size;
    for (int line = 0; p <= end && line < MAX_RECORDS; line++) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        p[len] = '\0';
        if (line == 0) {
            r.path = p;
            r.path_len = len;
        } else if (len >= 2 && p[1] == ' ') {
            char *v = p + 2;
            size_t vlen = len - 2;
            char *sep;
            switch (p[0]) {
            case 'q':
                sep = memchr(v, '=', vlen);
                q[r.nquery].name = v;
                q[r.nquery].name_len = sep ? (size_t)(sep - v) : vlen;
                q[r.nquery].value = sep ? sep + 1 : "";
                q[r.nquery].value_len = sep ? vlen - (size_t)(sep - v) - 1 : 0;
                r.nquery++;
                break;
            case 'h':
                sep = memchr(v, ':', vlen);
                h[r.nheaders].name = v;
                h[r.nheaders].name_len = sep ? (size_t)(sep - v) : vlen;
                h[r.nheaders].value = sep ? sep + 1 : "";
                h[r.nheaders].value_len = sep ? vlen - (size_t)(sep - v) - 1 : 0;
                r.nheaders++;
                break;
            case 'm': r.method = v; break;
            case 't': r.session_token = v; break;
            case 'T': r.time = v; break;
            case 'P': r.payload_hash = v; break;
            case 'k': r.secret_key = v; break;
            case 'x': expires = strtol(v, NULL, 10); break;
            default: break;
            }
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    if (!r.path) {
        r.path = "";
        r.path_len = 0;
    }

    sigv4_result a, b;
    if (run(&r, expires, &a) == 0) {
        fuzz_check(strlen(a.signature) == SIGV4_SIG_LEN &&
                       strspn(a.signature, "0123456789abcdef") == SIGV4_SIG_LEN,
                   "signature is not 64 lowercase hex");
        size_t mlen = strlen(r.method);
        fuzz_check(strncmp(a.canonical_request, r.method, mlen) == 0 &&
                       a.canonical_request[mlen] == '\n' &&
                       memcmp(a.canonical_request + mlen + 1, r.path, r.path_len) == 0 &&
                       a.canonical_request[mlen + 1 + r.path_len] == '\n',
                   "the canonical request does not start with the method and path");
        const char *ph = expires ? SIGV4_UNSIGNED_PAYLOAD : r.payload_hash;
        size_t clen = strlen(a.canonical_request), plen = strlen(ph);
        fuzz_check(clen > plen && strcmp(a.canonical_request + clen - plen, ph) == 0 &&
                       a.canonical_request[clen - plen - 1] == '\n',
                   "the canonical request does not end with the payload hash");
        if (!expires) {
            char *want = ref_query(q, r.nquery);
            const char *line = a.canonical_request + mlen + 1 + r.path_len + 1;
            size_t wlen = strlen(want);
            fuzz_check(strncmp(line, want, wlen) == 0 && line[wlen] == '\n',
                       "the query line differs from the reference: want \"%s\"", want);
            free(want);
        }

        fuzz_check(run(&r, expires, &b) == 0, "signing again failed");
        same(&a, &b, "signing again");
        sigv4_result_dispose(&b);

        if (r.nquery > 1) {
            sigv4_pair *perm = xcalloc(r.nquery, sizeof *perm);
            sigv4_request r2 = r;
            r2.query = perm;
            for (size_t i = 0; i < r.nquery; i++)
                perm[i] = q[r.nquery - 1 - i];
            fuzz_check(run(&r2, expires, &b) == 0, "reversed query refused");
            same(&a, &b, "reversing the query");
            sigv4_result_dispose(&b);
            for (size_t i = 0; i < r.nquery; i++)
                perm[i] = q[(i + 1) % r.nquery];
            fuzz_check(run(&r2, expires, &b) == 0, "rotated query refused");
            same(&a, &b, "rotating the query");
            sigv4_result_dispose(&b);
            free(perm);
        }

        int distinct = 1;
        for (size_t i = 0; i < r.nheaders && distinct; i++)
            for (size_t j = i + 1; j < r.nheaders && distinct; j++)
                if (h[i].name_len == h[j].name_len &&
                    strncasecmp(h[i].name, h[j].name, h[i].name_len) == 0)
                    distinct = 0;
        if (distinct && r.nheaders > 1) {
            sigv4_pair *perm = xcalloc(r.nheaders, sizeof *perm);
            sigv4_request r2 = r;
            r2.headers = perm;
            for (size_t i = 0; i < r.nheaders; i++)
                perm[i] = h[r.nheaders - 1 - i];
            fuzz_check(run(&r2, expires, &b) == 0, "reversed headers refused");
            same(&a, &b, "reversing distinct headers");
            sigv4_result_dispose(&b);
            free(perm);
        }
    }
    sigv4_result_dispose(&a);
    free(h);
    free(q);
    free(buf);
    return 0;
}
