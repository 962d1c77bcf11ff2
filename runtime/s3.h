/*
 * s3: an S3 client on a worker's event loop, through curl's multi
 * interface (never blocking the thread), signed with sigv4, knowing
 * nothing of HTTP requests or Lua.
 *
 * One s3_client per thread (one curl multi handle: its connections are
 * reused by every operation of the thread). Each operation returns an
 * s3_op handle at once and reports once, from the loop, through its done
 * callback; an operation is never completed from inside the call that
 * started it. s3_op_cancel stops one at once: no callback runs after it.
 *
 * Addressing is path-style (endpoint/bucket/key), every request carries
 * x-amz-content-sha256 and a Host header with the port when it is not the
 * scheme's default. Idempotent calls are retried with exponential backoff
 * and full jitter on network errors, 5xx, 429 and S3's throttling codes,
 * but only while their body can be sent again (from memory, or a stream of
 * which nothing has been read yet).
 *
 * Bodies move through caller callbacks that return a byte count, 0 at the
 * end (reads), S3_PAUSE (nothing now: call s3_op_resume when there is) or
 * S3_ABORT (fail the operation with an S3E_CLIENT error).
 */
#ifndef GLASGOW_S3_H
#define GLASGOW_S3_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "loop.h"
#include "util.h"

typedef struct s3_client s3_client;
typedef struct s3_op s3_op;

/* Returned by read and write callbacks besides a byte count. */
#define S3_PAUSE ((ssize_t)-1)
#define S3_ABORT ((ssize_t)-2)

/* Limits (bytes). */
enum {
    S3_MAX_KEY = 1024,                 /* object keys, as S3 allows */
    S3_MAX_ERROR_BODY = 64 * 1024,     /* an error answer read for its Code */
    S3_MAX_XML_BODY = 8 * 1024 * 1024, /* list answers (1000 keys of 1 KiB, with markup) */
    S3_MIN_PART = 5 * 1024 * 1024,     /* multipart parts but the last */
    S3_MAX_PARTS = 10000,
    S3_TARGET_PARTS = 64, /* known lengths: parts grow so a body takes at most this many */
};
#define S3_MAX_PART (5ULL * 1024 * 1024 * 1024) /* a part, and a single PUT */

/* Operations, for metrics labels (s3_op_name). */
enum {
    S3_OP_HEAD_BUCKET,
    S3_OP_CREATE_BUCKET,
    S3_OP_PUT_OBJECT,
    S3_OP_CREATE_MULTIPART,
    S3_OP_UPLOAD_PART,
    S3_OP_COMPLETE_MULTIPART,
    S3_OP_ABORT_MULTIPART,
    S3_OP_LIST_PARTS,
    S3_OP_GET_OBJECT,
    S3_OP_HEAD_OBJECT,
    S3_OP_DELETE_OBJECT,
    S3_OP_LIST_OBJECTS,
    S3_OP_LIST_UPLOADS,
    S3_OP_COUNT
};

/* Error kinds; stable lower-case names from s3_kind_name(). */
enum {
    S3E_NONE = 0,
    S3E_STORE,     /* the store answered an error: status, code (S3's Code), message */
    S3E_NETWORK,   /* cannot reach the store, or the connection broke */
    S3E_TIMEOUT,   /* the store was too slow (connect, total or low-speed limit) */
    S3E_PROTOCOL,  /* an answer that cannot be understood */
    S3E_CLIENT,    /* the body's source or sink failed (S3_ABORT); code says why */
    S3E_DIGEST,    /* the body's SHA-256 is not the expected one */
    S3E_TOO_LARGE, /* the body is past its limit */
    S3E_INVALID,   /* a bad argument (key too long, ...) */
};

/* A caller-owned error record; owns no heap memory. */
typedef struct s3_error {
    int kind;
    unsigned status; /* the store's HTTP status, 0 without an answer */
    char code[64];   /* S3's Code ("NoSuchKey"), or a short lower-case reason */
    char message[256];
    int retryable; /* worth trying again later: network, timeout, 5xx, throttling */
} s3_error;

/* The endpoint, parsed from S3_ENDPOINT. */
typedef struct s3_endpoint {
    int https;
    char host[256];      /* as written, brackets kept for IPv6 */
    unsigned port;       /* explicit or the scheme's default */
    char authority[300]; /* the Host header: host, ":port" unless default */
    char base[320];      /* scheme://authority, the URL prefix */
} s3_endpoint;

typedef struct s3_config {
    s3_endpoint endpoint;
    const char *region;
    const char *access_key;
    const char *secret_key;
    const char *bucket;
    const char *ca_file;          /* NULL: the system's CAs */
    unsigned connect_timeout_ms;  /* TCP and TLS handshake */
    unsigned request_timeout_ms;  /* whole exchange of a call without a streamed body */
    unsigned low_speed_bytes;     /* a streamed transfer slower than this ... */
    unsigned low_speed_time_s;    /* ... for this long fails with S3E_TIMEOUT */
    unsigned attempts;            /* tries of a retryable call, first included */
    unsigned backoff_base_ms;     /* first retry waits up to this (full jitter) ... */
    unsigned backoff_max_ms;      /* ... doubling up to this */
    uint64_t multipart_threshold; /* known-length bodies above this go multipart */
    uint64_t part_size;           /* multipart part size (>= S3_MIN_PART) */
    unsigned max_connections;     /* idle connections kept per thread */
    unsigned health_interval_ms;  /* HEAD bucket after this long without an answer */
    unsigned health_timeout_ms;   /* a probe slower than this marks the store down */
    int create_bucket;            /* a probe that finds no bucket creates it */
} s3_config;

/* What a HEAD or GET answered about the object. */
typedef struct s3_object_info {
    unsigned status; /* 200, or 206 for a range */
    uint64_t size;   /* the whole object's size */
    uint64_t length; /* bytes of this answer's body */
    uint64_t first;  /* the range served (first..last) when status is 206 */
    uint64_t last;
    char etag[128];         /* as S3 sent it, quotes included */
    char last_modified[64]; /* HTTP date as sent */
    char content_type[256];
} s3_object_info;

/* One entry of a listing; the strings are valid during the callback only. */
typedef struct s3_entry {
    const char *key;
    uint64_t size;
    const char *etag;
    const char *last_modified; /* objects: LastModified; uploads: Initiated */
    const char *upload_id;     /* uploads */
    unsigned part_number;      /* parts */
} s3_entry;

/* A finished operation's result; valid during the done callback only. */
typedef struct s3_result {
    s3_object_info info; /* head, get */
    uint64_t size;       /* put: bytes stored */
    char sha256[65];     /* put, upload part: hex SHA-256 of the bytes sent */
    char etag[128];      /* put, upload part, complete */
    char upload_id[256]; /* create multipart */
    s3_entry *entries;   /* lists */
    size_t nentries;
    int truncated;                  /* lists: more to come */
    const char *next_token;         /* list objects: NextContinuationToken */
    const char *next_key_marker;    /* list uploads */
    const char *next_upload_marker; /* list uploads */
    unsigned next_part_marker;      /* list parts */
    int missing;                    /* delete: the key was already absent (204 either way on S3) */
} s3_result;

/* Called once when an operation ends: err NULL and res set on success. */
typedef void (*s3_done_fn)(void *arg, const s3_result *res, const s3_error *err);

/* Upload source: copies up to max bytes into buf; returns the count, 0 at
 * the end, S3_PAUSE or S3_ABORT. */
typedef ssize_t (*s3_read_fn)(void *arg, char *buf, size_t max);

/* Download sink: takes up to len bytes; returns the count taken (possibly
 * less than len: the rest is offered again after s3_op_resume), S3_PAUSE
 * (none taken) or S3_ABORT. */
typedef ssize_t (*s3_write_fn)(void *arg, const char *buf, size_t len);

/* A get's headers arrived (status 200 or 206); the body follows through
 * the write callback. */
typedef void (*s3_headers_fn)(void *arg, const s3_object_info *info);

/* ---- pure helpers (exposed for tests) ------------------------------------------ */

/* Parses "http[s]://host[:port][/]" into out. Returns 0, or -1 with a
 * message in err (anything else: a path, userinfo, query, bad port). */
int s3_endpoint_parse(const char *url, s3_endpoint *out, char *err, size_t errlen);

/* Appends s[0..len) URI-encoded as S3 paths are: every byte but A-Z a-z
 * 0-9 - . _ ~ as %XX (uppercase), and '/' kept when keep_slash. */
void s3_uri_encode(strbuf *sb, const char *s, size_t len, int keep_slash);

/* Checks an object key: 1..S3_MAX_KEY bytes, no NUL and no control
 * bytes. Returns 0, or -1 with err filled (S3E_INVALID). */
int s3_check_key(const char *key, size_t len, s3_error *err);

/*
 * Parses an S3 error document (<Error><Code/><Message/></Error>, XML
 * declaration and namespaces allowed) of at most S3_MAX_ERROR_BODY bytes.
 * Returns 1 and fills err->code and err->message (truncated to fit,
 * control bytes replaced by '?') when body is one, else 0 (err untouched).
 */
int s3_parse_error(const char *body, size_t len, s3_error *err);

/* Non-zero when a call that ended with this HTTP status (0: none) and S3
 * code ("" when none) is worth retrying. */
int s3_retryable_status(unsigned status, const char *code);

/* The wait before retry number attempt (1 for the first retry): uniform in
 * [0, min(max_ms, base_ms * 2^(attempt-1))], from rnd (any 32 bits). */
unsigned s3_backoff_ms(unsigned attempt, unsigned base_ms, unsigned max_ms, uint32_t rnd);

/* The size of every part but the last for a body of length bytes: the
 * configured part size (at least S3_MIN_PART), grown in whole MiB so that
 * the body takes at most S3_TARGET_PARTS parts, but no larger than
 * S3_MAX_PART (then it fits in S3_MAX_PARTS parts). Returns 0 when length
 * exceeds S3's 5 TiB object. */
uint64_t s3_part_size_for(uint64_t length, uint64_t part_size);

/* Parses a Content-Range "bytes first-last/size". Returns 0 or -1. */
int s3_parse_content_range(const char *v, uint64_t *first, uint64_t *last, uint64_t *size);

/* Stable names: s3_op_name(S3_OP_GET_OBJECT) is "get_object". */
const char *s3_op_name(int op);
const char *s3_kind_name(int kind);

/* ---- the client ---------------------------------------------------------------- */

/* Initialises curl for the process; once, before any thread starts. */
void s3_global_init(void);

/* Creates a client on lp with cfg (strings copied). It sends a HEAD bucket
 * probe at once and then whenever health_interval_ms passes without an
 * answer from the store. Aborts on allocation failure. */
s3_client *s3_client_create(loop *lp, const s3_config *cfg);

/* Stops every operation (no callbacks run), waits up to wait_ms on the
 * loop for the multipart aborts already sent to finish, then frees c. */
void s3_client_destroy(s3_client *c, unsigned wait_ms);

/* Non-zero when the client's store answered its last probe (or a call
 * since) with success. Any thread (an atomic). */
int s3_client_up(const s3_client *c);

/* Non-zero when every live client is up (readiness); any thread. */
int s3_all_up(void);

/* Registers the S3 metrics collector; once per process. */
void s3_metrics_init(void);

/* ---- operations -----------------------------------------------------------------
 * Each returns the op, or NULL with err filled when the request is refused
 * at once (bad key, bad argument); done is then never called. Keys are
 * object keys in the configured bucket. */

s3_op *s3_head_bucket(s3_client *c, s3_done_fn done, void *arg, s3_error *err);
s3_op *s3_create_bucket(s3_client *c, s3_done_fn done, void *arg, s3_error *err);
s3_op *s3_head_object(s3_client *c, const char *key, s3_done_fn done, void *arg, s3_error *err);

/* Deletes key; succeeds when it is absent too (res->missing is not known
 * on S3 and stays 0). */
s3_op *s3_delete_object(s3_client *c, const char *key, s3_done_fn done, void *arg, s3_error *err);

/* Lists objects (v2): prefix and continuation may be NULL, max_keys 0 for
 * S3's default (1000). */
s3_op *s3_list_objects(s3_client *c, const char *prefix, const char *continuation,
                       unsigned max_keys, s3_done_fn done, void *arg, s3_error *err);

/* Lists multipart uploads in progress; markers from the previous page. */
s3_op *s3_list_uploads(s3_client *c, const char *prefix, const char *key_marker,
                       const char *upload_id_marker, unsigned max_uploads, s3_done_fn done,
                       void *arg, s3_error *err);

s3_op *s3_create_multipart(s3_client *c, const char *key, const char *content_type, s3_done_fn done,
                           void *arg, s3_error *err);

/* Uploads one part from memory (data must live until done; retried) or,
 * when data is NULL, from read with exactly length bytes (not retried once
 * read has been called). res->etag and res->sha256 describe the part. */
s3_op *s3_upload_part(s3_client *c, const char *key, const char *upload_id, unsigned part_number,
                      const char *data, uint64_t length, s3_read_fn read, void *read_arg,
                      s3_done_fn done, void *arg, s3_error *err);

typedef struct s3_part {
    unsigned number;
    char etag[128];
} s3_part;

/* Completes an upload with its parts in ascending order; a 200 answer
 * holding <Error> is an error. */
s3_op *s3_complete_multipart(s3_client *c, const char *key, const char *upload_id,
                             const s3_part *parts, size_t nparts, s3_done_fn done, void *arg,
                             s3_error *err);

/* Aborts an upload; succeeds when it is already gone (NoSuchUpload). */
s3_op *s3_abort_multipart(s3_client *c, const char *key, const char *upload_id, s3_done_fn done,
                          void *arg, s3_error *err);

/* Lists an upload's parts from after part_marker (0: the first). */
s3_op *s3_list_parts(s3_client *c, const char *key, const char *upload_id, unsigned part_marker,
                     s3_done_fn done, void *arg, s3_error *err);

/*
 * Stores an object. The body comes from data (len bytes, living until
 * done) or, when data is NULL, from read: length bytes when length >= 0,
 * or until read returns 0 when length is -1. Known lengths up to the
 * multipart threshold go in one PUT, longer ones in parts (streamed at
 * known sizes, or signed slices of data); an unknown length buffers one
 * part at a time (one PUT when the body fits in it). Calls whose body is
 * in memory are signed with its SHA-256 and retried; streamed ones are
 * sent UNSIGNED-PAYLOAD and retried only when nothing was read yet. The SHA-256 of the bytes is
 * computed as they pass; with sha256 (64 hex digits) set, a different body fails with S3E_DIGEST
 * before S3 keeps it. max_bytes (0: none) bounds the body (S3E_TOO_LARGE).
 * On a failure nothing is left under key: a multipart upload is aborted,
 * and a wrong body never completes. The one exception is a last call
 * (PUT or CompleteMultipartUpload) whose answer is lost after the store
 * acted on it: the object may then exist. Keys are never reused by the
 * routes, and glasgow gc removes objects without metadata.
 */
typedef struct s3_put_opts {
    const char *content_type; /* NULL: application/octet-stream */
    const char *data;
    size_t len;
    s3_read_fn read;
    void *read_arg;
    int64_t length;
    uint64_t max_bytes;
    const char *sha256;
} s3_put_opts;

s3_op *s3_put(s3_client *c, const char *key, const s3_put_opts *o, s3_done_fn done, void *arg,
              s3_error *err);

/*
 * Reads an object, or bytes first..last of it when range is set (last
 * UINT64_MAX: to the end). on_headers runs when the headers are in (a
 * missing key or a bad range end the op with an error instead); the body
 * then goes to write, with back-pressure (S3_PAUSE, s3_op_resume); done
 * ends it. Retried only until on_headers has run.
 */
typedef struct s3_range {
    uint64_t first;
    uint64_t last;
} s3_range;

s3_op *s3_get(s3_client *c, const char *key, const s3_range *range, s3_headers_fn on_headers,
              s3_write_fn write, s3_done_fn done, void *arg, s3_error *err);

/* Continues an op whose read or write callback returned S3_PAUSE, or that
 * was held; a no-op otherwise. Never runs callbacks from inside this call. */
void s3_op_resume(s3_op *op);

/* Called by a download's write callback that took every byte offered but
 * has little room left: receive no more from the store until s3_op_resume.
 * Bytes curl has already received may still be offered. A sink that pauses
 * before it runs out of room never has bytes held back for it (a copy);
 * S3_RECV_BUFFER is the most one receive brings. */
void s3_op_hold(s3_op *op);
#define S3_RECV_BUFFER ((size_t)262144)

/* Stops op at once and frees it: no callback runs afterwards. An upload in
 * progress is aborted in the background (nothing is left in the store
 * unless the process ends first; glasgow gc removes those). */
void s3_op_cancel(s3_op *op);

#endif
