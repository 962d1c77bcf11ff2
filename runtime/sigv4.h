/*
 * sigv4: AWS Signature Version 4 for S3-style requests, as a pure function
 * of a request description and a time (no I/O, no clock, no Lua).
 *
 * It produces the canonical request, the string to sign, the signature and
 * the Authorization header of a header-signed request; the query parameters
 * of a presigned URL (payload UNSIGNED-PAYLOAD); and the chunk signatures of
 * an aws-chunked upload (STREAMING-AWS4-HMAC-SHA256-PAYLOAD), each chaining
 * from the previous one and seeded by the request's own signature.
 *
 * Canonicalisation follows S3's rules:
 *   - path is used exactly as given: the caller has URI-encoded it already;
 *     it is neither normalised (no "." or ".." folding, "//" stays) nor
 *     encoded again.
 *   - query pairs are given decoded; the signer encodes names and values
 *     (every byte but A-Z a-z 0-9 - . _ ~ as %XX, uppercase hex, so a space
 *     is %20), sorts by encoded name then encoded value, and writes an empty
 *     value as "name=" (so "?uploads" signs as "uploads=").
 *   - headers are given in request order; names are lower-cased, values
 *     lose leading and trailing spaces and tabs and have each inner run of
 *     them collapsed to one space; a name given several times is signed
 *     once, with its values joined by "," in request order; the list is
 *     sorted by name. Every header given is signed, plus x-amz-date (and
 *     x-amz-security-token with a session token), which the signer adds.
 *
 * Every input is bounded by the limits below; anything longer, malformed or
 * missing is refused with a message, never truncated.
 */
#ifndef GLASGOW_SIGV4_H
#define GLASGOW_SIGV4_H

#include <stddef.h>

enum {
    SIGV4_MAX_METHOD = 16,          /* bytes of the method, an HTTP token */
    SIGV4_MAX_PATH = 4096,          /* bytes of the encoded path */
    SIGV4_MAX_QUERY = 64,           /* query pairs */
    SIGV4_MAX_QUERY_BYTES = 8192,   /* names and values together, decoded */
    SIGV4_MAX_HEADERS = 64,         /* header pairs, repeats counted */
    SIGV4_MAX_HEADER_BYTES = 16384, /* names and values together */
    SIGV4_MAX_FIELD = 128,          /* region, service, access key, secret key */
    SIGV4_MAX_TOKEN = 4096,         /* session token */
    SIGV4_MAX_PAYLOAD_HASH = 64,    /* hex digest or a token like UNSIGNED-PAYLOAD */
    SIGV4_MAX_EXPIRES = 604800,     /* presigned URL lifetime, seconds (7 days) */
    SIGV4_TIME_LEN = 16,            /* YYYYMMDDTHHMMSSZ */
    SIGV4_SIG_LEN = 64,             /* hex signature */
    /* date/region/service/aws4_request */
    SIGV4_SCOPE_MAX = 8 + 1 + SIGV4_MAX_FIELD + 1 + SIGV4_MAX_FIELD + 1 + 12,
    /* "HEX;chunk-signature=SIG\r\n" for any size_t length */
    SIGV4_CHUNK_HEADER_MAX = 16 + 17 + SIGV4_SIG_LEN + 2 + 1,
};

/* The payload hash of a presigned URL and of an aws-chunked upload's seed. */
#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define SIGV4_STREAMING_PAYLOAD "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
/* Hex SHA-256 of the empty string: the payload hash of a request without a body. */
#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* One name and value; lengths are explicit, so any byte may appear. */
typedef struct sigv4_pair {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} sigv4_pair;

/*
 * What is signed. The strings are NUL-terminated except where a length is
 * given; the signer keeps no pointer into any of them after it returns.
 *   method        an HTTP token, e.g. "PUT"
 *   path          the encoded path, starting with "/", printable ASCII
 *                 without space, "?" or "#"
 *   query         nquery decoded pairs in any order (NULL when nquery is 0)
 *   headers       nheaders pairs in request order; names are HTTP tokens,
 *                 values may hold any byte but controls other than tab; a
 *                 "host" header is required, and x-amz-date and
 *                 x-amz-security-token are refused (the signer adds them)
 *   payload_hash  64 lowercase hex digits, or a token of A-Z, 0-9 and "-"
 *                 (UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD);
 *                 ignored by sigv4_presign, which signs UNSIGNED-PAYLOAD
 *   region, service, access_key, secret_key
 *                 non-empty; region and service of A-Z a-z 0-9 . _ -, the
 *                 access key printable ASCII without space, "/" or ",", the
 *                 secret any bytes but NUL
 *   session_token NULL or "" for none, else printable ASCII without space
 *   time          the signing time, "YYYYMMDDTHHMMSSZ" (UTC), a real date
 */
typedef struct sigv4_request {
    const char *method;
    const char *path;
    size_t path_len;
    const sigv4_pair *query;
    size_t nquery;
    const sigv4_pair *headers;
    size_t nheaders;
    const char *payload_hash;
    const char *region;
    const char *service;
    const char *access_key;
    const char *secret_key;
    const char *session_token;
    const char *time;
} sigv4_request;

/*
 * A signature and the texts it was computed from. Filled by sigv4_sign or
 * sigv4_presign, released with sigv4_result_dispose. The strings are
 * NUL-terminated and owned by the result.
 */
typedef struct sigv4_result {
    char *canonical_request;
    char *string_to_sign;
    char *signed_headers; /* "host;x-amz-date" */
    /* sigv4_sign: the Authorization header value; sigv4_presign: NULL. */
    char *authorization;
    /* sigv4_presign: the encoded query string to send, every caller pair
     * plus the X-Amz-* parameters and X-Amz-Signature last; sigv4_sign: NULL. */
    char *query;
    char signature[SIGV4_SIG_LEN + 1];
    char time[SIGV4_TIME_LEN + 1];
    char scope[SIGV4_SCOPE_MAX + 1];
    /* The derived key (secret material, wiped by dispose): chunk signing
     * continues from it without the secret. */
    unsigned char signing_key[32];
} sigv4_result;

/*
 * Signs req for an Authorization header: fills out (whose previous contents
 * are ignored) and returns 0, or returns -1 with a one-line message in err
 * (errlen bytes) and out empty (safe to dispose). The caller sends the
 * headers it passed plus "X-Amz-Date: <time>" and, with a session token,
 * "X-Amz-Security-Token: <token>", and "Authorization: <out->authorization>".
 * For an aws-chunked upload, pass SIGV4_STREAMING_PAYLOAD as payload_hash:
 * out->signature is then the seed of sigv4_chunk_init.
 */
int sigv4_sign(const sigv4_request *req, sigv4_result *out, char *err, size_t errlen);

/*
 * Signs req as a presigned URL valid for expires seconds (1..7 days), with
 * the payload UNSIGNED-PAYLOAD: adds X-Amz-Algorithm, X-Amz-Credential,
 * X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders (and X-Amz-Security-Token
 * with a session token) to the query, which must not already hold any of
 * them or X-Amz-Signature (compared ignoring case). Returns 0 with the URL's
 * query string in out->query, or -1 as sigv4_sign does.
 */
int sigv4_presign(const sigv4_request *req, long expires, sigv4_result *out, char *err,
                  size_t errlen);

/* Frees what out owns and wipes its key; out is empty afterwards. Safe on an
 * empty or already disposed result. */
void sigv4_result_dispose(sigv4_result *out);

/*
 * The chained signatures of an aws-chunked body. Each chunk's signature
 * covers the previous signature (the seed for the first chunk) and the
 * chunk's SHA-256; the body ends with an empty chunk, signed the same way.
 */
typedef struct sigv4_chunk {
    unsigned char signing_key[32];
    char time[SIGV4_TIME_LEN + 1];
    char scope[SIGV4_SCOPE_MAX + 1];
    char previous[SIGV4_SIG_LEN + 1];
} sigv4_chunk;

/* Starts the chain from a result of sigv4_sign whose payload hash was
 * SIGV4_STREAMING_PAYLOAD (the key, time, scope and seed are copied). */
void sigv4_chunk_init(sigv4_chunk *c, const sigv4_result *seed);

/* Signs the next chunk, data[0..len), into sig (hex, NUL-terminated) and
 * makes it the previous signature. len 0 is the final chunk. */
void sigv4_chunk_sign(sigv4_chunk *c, const void *data, size_t len, char sig[SIGV4_SIG_LEN + 1]);

/* The same for a chunk whose SHA-256 the caller computed while streaming it. */
void sigv4_chunk_sign_hash(sigv4_chunk *c, const unsigned char sha256[32],
                           char sig[SIGV4_SIG_LEN + 1]);

/* Writes the line that precedes a chunk in the body, "HEXLEN;chunk-signature=
 * SIG\r\n", into out (at least SIGV4_CHUNK_HEADER_MAX bytes); returns its
 * length. The chunk's data then follows, and "\r\n" after it. */
size_t sigv4_chunk_header(size_t len, const char sig[SIGV4_SIG_LEN + 1], char *out);

/* Wipes the chain's key. */
void sigv4_chunk_dispose(sigv4_chunk *c);

/*
 * Derives the signing key, HMAC chain "AWS4"+secret, date, region, service,
 * "aws4_request", into key. For callers (the Lua binding) that sign a chunk
 * without a sigv4_result; the arguments are validated as in sigv4_request.
 * Returns 0, or -1 with a message in err.
 */
int sigv4_signing_key(const char *secret_key, const char *time, const char *region,
                      const char *service, unsigned char key[32], char *scope, char *err,
                      size_t errlen);

#endif
