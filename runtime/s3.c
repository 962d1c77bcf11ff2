/*
 * s3: the S3 client on the loop (see s3.h for the contract).
 *
 * Layers, bottom up:
 *   - pure helpers (endpoint, encoding, errors, retry policy, part sizes);
 *   - the client: one curl multi handle whose sockets and timer are loop
 *     watchers (CURLMOPT_SOCKETFUNCTION / TIMERFUNCTION ->
 *     curl_multi_socket_action);
 *   - calls: one signed HTTP exchange each, retried with backoff while
 *     its body can be sent again, reporting to an internal continuation;
 *   - ops: what the caller holds. Most are one call; a put is a small
 *     state machine (single PUT, or create / parts / complete, with the
 *     multipart upload aborted on any failure).
 *
 * Callbacks into the caller never run from inside the function the caller
 * called into (start, resume, cancel): headers and results are delivered
 * from the loop. Read and write callbacks do run inside curl's callbacks,
 * so they must not start or cancel operations (s3.h says so).
 */
#include "s3.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "s3xml.h"
#include "sigv4.h"

/* ---- pure helpers -------------------------------------------------------------- */

static const char *const op_names[S3_OP_COUNT] = {
    "head_bucket",        "create_bucket",   "put_object",   "create_multipart", "upload_part",
    "complete_multipart", "abort_multipart", "list_parts",   "get_object",       "head_object",
    "delete_object",      "list_objects",    "list_uploads",
};

const char *s3_op_name(int op)
{
    return op >= 0 && op < S3_OP_COUNT ? op_names[op] : "unknown";
}

const char *s3_kind_name(int kind)
{
    switch (kind) {
    case S3E_STORE: return "store";
    case S3E_NETWORK: return "network";
    case S3E_TIMEOUT: return "timeout";
    case S3E_PROTOCOL: return "protocol";
    case S3E_CLIENT: return "client";
    case S3E_DIGEST: return "digest_mismatch";
    case S3E_TOO_LARGE: return "too_large";
    case S3E_INVALID: return "invalid";
    default: return "none";
    }
}

__attribute__((format(printf, 4, 5))) static void set_err(s3_error *e, int kind, const char *code,
                                                          const char *fmt, ...)
{
    va_list ap;
    e->kind = kind;
    e->status = 0;
    e->retryable = kind == S3E_NETWORK || kind == S3E_TIMEOUT;
    snprintf(e->code, sizeof e->code, "%s", code);
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

int s3_endpoint_parse(const char *url, s3_endpoint *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *rest;
    if (!strncasecmp(url, "https://", 8)) {
        out->https = 1;
        rest = url + 8;
    } else if (!strncasecmp(url, "http://", 7)) {
        rest = url + 7;
    } else {
        snprintf(err, errlen, "S3_ENDPOINT: expected http://host[:port] or https://host[:port]");
        return -1;
    }
    size_t n = strlen(rest);
    if (n > 0 && rest[n - 1] == '/')
        n--;
    const char *host = rest, *port = NULL;
    size_t hlen;
    if (n > 0 && rest[0] == '[') {
        const char *close = memchr(rest, ']', n);
        if (!close)
            goto bad;
        hlen = (size_t)(close - rest) + 1;
        if (hlen < n) {
            if (close[1] != ':')
                goto bad;
            port = close + 2;
        }
    } else {
        const char *colon = memchr(rest, ':', n);
        hlen = colon ? (size_t)(colon - rest) : n;
        if (colon)
            port = colon + 1;
    }
    if (hlen == 0 || hlen >= sizeof out->host)
        goto bad;
    for (size_t i = 0; i < hlen; i++) {
        unsigned char c = (unsigned char)host[i];
        if (c <= ' ' || c >= 0x7f || strchr("/?#@%\\\"", c))
            goto bad;
    }
    memcpy(out->host, host, hlen);
    unsigned def = out->https ? 443 : 80;
    out->port = def;
    if (port) {
        size_t plen = n - (size_t)(port - rest);
        unsigned v = 0;
        if (plen == 0 || plen > 5)
            goto bad;
        for (size_t i = 0; i < plen; i++) {
            if (port[i] < '0' || port[i] > '9')
                goto bad;
            v = v * 10 + (unsigned)(port[i] - '0');
        }
        if (v == 0 || v > 65535)
            goto bad;
        out->port = v;
    }
    if (out->port == def)
        snprintf(out->authority, sizeof out->authority, "%s", out->host);
    else
        snprintf(out->authority, sizeof out->authority, "%s:%u", out->host, out->port);
    snprintf(out->base, sizeof out->base, "%s://%s", out->https ? "https" : "http", out->authority);
    return 0;
bad:
    snprintf(err, errlen, "S3_ENDPOINT: expected scheme://host[:port] with nothing after it");
    return -1;
}

void s3_uri_encode(strbuf *sb, const char *s, size_t len, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) {
            strbuf_add(sb, &s[i], 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            strbuf_add(sb, e, 3);
        }
    }
}

int s3_check_key(const char *key, size_t len, s3_error *err)
{
    if (len == 0 || len > S3_MAX_KEY) {
        set_err(err, S3E_INVALID, "invalid_key", "object keys are 1 to %d bytes", S3_MAX_KEY);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c < 0x20 || c == 0x7f) {
            set_err(err, S3E_INVALID, "invalid_key", "object keys hold no control bytes");
            return -1;
        }
    }
    return 0;
}

/* Copies text into out (n bytes), truncated, control bytes as '?'. */
static void copy_clean(char *out, size_t n, const char *text)
{
    size_t i = 0;
    for (; text && text[i] && i + 1 < n; i++) {
        unsigned char c = (unsigned char)text[i];
        out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    out[i] = '\0';
}

int s3_parse_error(const char *body, size_t len, s3_error *err)
{
    if (len == 0 || len > S3_MAX_ERROR_BODY)
        return 0;
    s3xml doc;
    char xerr[128];
    if (s3xml_parse(&doc, body, len, xerr, sizeof xerr) < 0)
        return 0;
    int found = 0;
    if (s3xml_is(&doc, 0, "Error")) {
        const char *code = s3xml_child_text(&doc, 0, "Code");
        if (code && code[0]) {
            copy_clean(err->code, sizeof err->code, code);
            const char *msg = s3xml_child_text(&doc, 0, "Message");
            if (msg && msg[0])
                copy_clean(err->message, sizeof err->message, msg);
            else
                snprintf(err->message, sizeof err->message, "the store answered %s", err->code);
            found = 1;
        }
    }
    s3xml_dispose(&doc);
    return found;
}

int s3_retryable_status(unsigned status, const char *code)
{
    static const char *const codes[] = {
        "SlowDown",      "Throttling",         "ThrottlingException", "RequestTimeout",
        "InternalError", "ServiceUnavailable", "RequestLimitExceeded"};
    if (code)
        for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
            if (!strcmp(code, codes[i]))
                return 1;
    return status == 0 || status == 429 || status == 500 || status == 502 || status == 503 ||
           status == 504;
}

unsigned s3_backoff_ms(unsigned attempt, unsigned base_ms, unsigned max_ms, uint32_t rnd)
{
    uint64_t cap = base_ms;
    for (unsigned i = 1; i < attempt && cap < max_ms; i++)
        cap *= 2;
    if (cap > max_ms)
        cap = max_ms;
    return (unsigned)(rnd % (cap + 1));
}

uint64_t s3_part_size_for(uint64_t length, uint64_t part_size)
{
    const uint64_t mib = 1024ULL * 1024, max_object = 5ULL * 1024 * 1024 * 1024 * 1024;
    if (length > max_object)
        return 0;
    if (part_size < S3_MIN_PART)
        part_size = S3_MIN_PART;
    /* each part costs a round trip during which nothing moves: at most
     * S3_TARGET_PARTS of them, in whole MiB, no larger than S3 allows */
    uint64_t fewer = (length + S3_TARGET_PARTS - 1) / S3_TARGET_PARTS;
    fewer = (fewer + mib - 1) / mib * mib;
    if (fewer > part_size)
        part_size = fewer < S3_MAX_PART ? fewer : S3_MAX_PART;
    if ((length + part_size - 1) / part_size > S3_MAX_PARTS) {
        part_size = (length + S3_MAX_PARTS - 1) / S3_MAX_PARTS;
        part_size = (part_size + mib - 1) / mib * mib;
    }
    return part_size;
}

static int parse_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *p = s;
    *out = v;
    return 0;
}

int s3_parse_content_range(const char *v, uint64_t *first, uint64_t *last, uint64_t *size)
{
    if (strncasecmp(v, "bytes ", 6) != 0)
        return -1;
    const char *p = v + 6;
    if (parse_u64(&p, first) < 0 || *p++ != '-' || parse_u64(&p, last) < 0 || *p++ != '/' ||
        parse_u64(&p, size) < 0 || *p != '\0' || *first > *last || *last >= *size)
        return -1;
    return 0;
}

static void hex32(const unsigned char d[32], char out[65])
{
    util_hex(d, 32, out);
}

/* ---- metrics ------------------------------------------------------------------ */

#define NSTATUS 600
static const double lat_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                    1,     2.5,  5,     10,   30,  60};
#define NLAT (sizeof lat_bounds / sizeof lat_bounds[0])

static atomic_ullong m_calls[S3_OP_COUNT][NSTATUS]; /* [op][status], 0: no answer */
static atomic_ullong m_lat[S3_OP_COUNT][NLAT];
static atomic_ullong m_lat_count[S3_OP_COUNT];
static atomic_ullong m_lat_sum_us[S3_OP_COUNT];
static atomic_ullong m_bytes_out, m_bytes_in, m_retries;
static atomic_long m_in_flight;

#define MAX_CLIENTS 256
static s3_client *clients[MAX_CLIENTS];
static pthread_mutex_t clients_mu = PTHREAD_MUTEX_INITIALIZER;

static void observe(int op, unsigned status, uint64_t us)
{
    if (status >= NSTATUS)
        status = 0;
    atomic_fetch_add_explicit(&m_calls[op][status], 1, memory_order_relaxed);
    double s = (double)us / 1e6;
    for (size_t b = 0; b < NLAT; b++)
        if (s <= lat_bounds[b])
            atomic_fetch_add_explicit(&m_lat[op][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m_lat_count[op], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m_lat_sum_us[op], us, memory_order_relaxed);
}

static void collect(strbuf *out)
{
    int any = 0, up = 1;
    pthread_mutex_lock(&clients_mu);
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (clients[i]) {
            any = 1;
            up &= s3_client_up(clients[i]);
        }
    pthread_mutex_unlock(&clients_mu);
    if (!any)
        return;
    strbuf_adds(out, "# HELP glasgow_s3_requests_total Calls to the object store by operation "
                     "and HTTP status (\"error\": no answer), retries included.\n"
                     "# TYPE glasgow_s3_requests_total counter\n");
    for (int op = 0; op < S3_OP_COUNT; op++)
        for (unsigned st = 0; st < NSTATUS; st++) {
            unsigned long long n = atomic_load_explicit(&m_calls[op][st], memory_order_relaxed);
            if (!n)
                continue;
            char sts[16];
            if (st)
                snprintf(sts, sizeof sts, "%u", st);
            else
                snprintf(sts, sizeof sts, "error");
            strbuf_addf(out, "glasgow_s3_requests_total{op=\"%s\",status=\"%s\"} %llu\n",
                        op_names[op], sts, n);
        }
    strbuf_adds(out, "# HELP glasgow_s3_request_duration_seconds Calls to the object store, "
                     "first byte sent to last byte received (streamed bodies included).\n"
                     "# TYPE glasgow_s3_request_duration_seconds histogram\n");
    for (int op = 0; op < S3_OP_COUNT; op++) {
        unsigned long long count = atomic_load(&m_lat_count[op]);
        if (!count)
            continue;
        for (size_t b = 0; b < NLAT; b++)
            strbuf_addf(
                out, "glasgow_s3_request_duration_seconds_bucket{op=\"%s\",le=\"%g\"} %llu\n",
                op_names[op], lat_bounds[b], (unsigned long long)atomic_load(&m_lat[op][b]));
        strbuf_addf(out,
                    "glasgow_s3_request_duration_seconds_bucket{op=\"%s\",le=\"+Inf\"} %llu\n"
                    "glasgow_s3_request_duration_seconds_sum{op=\"%s\"} %.6f\n"
                    "glasgow_s3_request_duration_seconds_count{op=\"%s\"} %llu\n",
                    op_names[op], count, op_names[op], (double)atomic_load(&m_lat_sum_us[op]) / 1e6,
                    op_names[op], count);
    }
    strbuf_addf(out,
                "# HELP glasgow_s3_bytes_sent_total Body bytes sent to the object store.\n"
                "# TYPE glasgow_s3_bytes_sent_total counter\nglasgow_s3_bytes_sent_total %llu\n"
                "# HELP glasgow_s3_bytes_received_total Body bytes received from the object "
                "store.\n"
                "# TYPE glasgow_s3_bytes_received_total counter\n"
                "glasgow_s3_bytes_received_total %llu\n"
                "# HELP glasgow_s3_transfers_in_flight Calls to the object store in progress.\n"
                "# TYPE glasgow_s3_transfers_in_flight gauge\nglasgow_s3_transfers_in_flight %ld\n"
                "# HELP glasgow_s3_retries_total Calls retried after a retryable failure.\n"
                "# TYPE glasgow_s3_retries_total counter\nglasgow_s3_retries_total %llu\n"
                "# HELP glasgow_s3_up 1 when every worker's last probe of the store succeeded.\n"
                "# TYPE glasgow_s3_up gauge\nglasgow_s3_up %d\n",
                (unsigned long long)atomic_load(&m_bytes_out),
                (unsigned long long)atomic_load(&m_bytes_in), (long)atomic_load(&m_in_flight),
                (unsigned long long)atomic_load(&m_retries), up);
}

void s3_metrics_init(void)
{
    metrics_add_collector(collect);
}

void s3_global_init(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        die("curl_global_init failed");
}

/* ---- structures --------------------------------------------------------------- */

typedef struct s3_call s3_call;

enum { BODY_NONE, BODY_MEM, BODY_STREAM };
/* S3_RECV_BUFFER (s3.h): curl's receive buffer for downloads, the most
 * one recv gets (curl's default is 16 KiB; write callbacks get at most 16
 * KiB at a time whatever its size) */
/* curl's upload buffer for streamed bodies: the most one read callback is
 * asked for, so the largest send (curl's default is 64 KiB); see SRC_BATCH
 * in lua_s3.c */
#define S3_SEND_BUFFER 262144
/* memory bodies up to this are bounded by request_timeout_ms, larger ones by the low-speed limit */
#define S3_TIMED_BODY_MAX ((size_t)8 * 1024 * 1024)
#define MAX_QUERY 6

struct s3_call {
    s3_client *c;
    s3_call *prev, *next; /* the client's calls */
    s3_op *op;            /* NULL for a background call (an abort after a failure) */
    const char *method;
    char *key; /* NULL for bucket calls */
    sigv4_pair query[MAX_QUERY];
    size_t nquery;
    char *content_type;
    const char *mem;
    size_t mem_len, mem_off;
    uint64_t length; /* stream bodies */
    uint64_t sent;
    size_t resp_max;
    void (*finish)(s3_call *call, const s3_error *err); /* the continuation */
    int linked;                                         /* in the client's list */
    int kind;                                           /* S3_OP_* */
    int body;                                           /* BODY_* */
    int touched;         /* the stream was read from: the call cannot be replayed */
    int stream_response; /* 2xx bodies go to the op's write callback */
    char payload_hash[65];
    char range[64];

    /* per attempt */
    CURL *easy;
    struct curl_slist *headers;
    strbuf resp;
    uint64_t t0_us;
    loop_timer retry_timer;
    s3_object_info info;
    s3_error err; /* set by a callback that failed the transfer */
    unsigned status;
    unsigned attempt;
    int headers_done;
    int resp_overflow;
    int send_paused, recv_paused;
    int counted; /* in m_in_flight */
    char errbuf[CURL_ERROR_SIZE];
};

typedef struct s3_sock {
    loop_io io;
    s3_client *c;
    curl_socket_t fd;
} s3_sock;

struct s3_client {
    loop *lp;
    CURLM *multi;
    loop_timer timer;
    s3_config cfg;
    char *strs[5];
    s3_call *calls;
    atomic_int up;
    int down_logged;
    uint64_t last_answer_ms;
    loop_timer probe_timer;
    s3_op *probe;
    int create_tried;
    int slot;
};

enum { PUT_SINGLE = 1, PUT_CREATE, PUT_PART, PUT_COMPLETE, PUT_FILL, PUT_DONE };

struct s3_op {
    s3_client *c;
    int kind;
    s3_done_fn done;
    void *arg;
    s3_headers_fn on_headers;
    s3_write_fn write;
    s3_read_fn read;
    void *read_arg;
    s3_call *call; /* the call in progress */
    char *key;
    loop_timer event_timer; /* delivers headers, results and early errors from the loop */
    int cancelled;
    int busy; /* inside a callback to the caller: cancel defers the free */
    int headers_pending;
    int headers_delivered;
    int resume_pending;
    int finished; /* the result waits in res/err for the event timer */
    s3_result res;
    s3_error err;
    int failed;
    /* response bodies held back by the caller's write callback */
    char *pending;
    size_t pending_len, pending_off, pending_cap;
    /* put */
    int phase;
    int64_t length; /* -1: unknown */
    uint64_t max_bytes;
    char expect[65];
    EVP_MD_CTX *sha;
    uint64_t total; /* bytes read from the source */
    char *content_type;
    const char *data;
    size_t data_len;
    size_t data_off; /* memory bodies in parts: bytes handed to parts so far */
    uint64_t part_size;
    char *upload_id;
    s3_part *parts;
    size_t nparts, parts_cap;
    uint64_t part_len; /* the part being sent */
    char *buf;         /* unknown length: one part */
    size_t buf_len;
    int src_eof;
    int waiting_read;
    strbuf xml; /* the complete request's body */
    s3xml doc;  /* a parsed list answer, alive during done */
};

static void call_start(s3_call *call);
static void call_free(s3_call *call);
static void op_fail(s3_op *op, const s3_error *err);
static void op_free(s3_op *op);
static void put_next(s3_op *op);
static void put_fill(s3_op *op);

/* ---- client and curl glue ------------------------------------------------------ */

static void check_done(s3_client *c);

static void on_sock_io(loop *lp, loop_io *io, uint32_t events)
{
    (void)lp;
    s3_sock *sk = io->data;
    s3_client *c = sk->c;
    curl_socket_t fd = sk->fd; /* sk may be freed inside socket_action */
    int flags = 0;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP))
        flags |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        flags |= CURL_CSELECT_OUT;
    if (events & EPOLLERR)
        flags |= CURL_CSELECT_ERR;
    int running;
    curl_multi_socket_action(c->multi, fd, flags, &running);
    check_done(c);
}

static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)e;
    s3_client *c = userp;
    s3_sock *sk = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sk) {
            loop_io_del(c->lp, &sk->io);
            free(sk);
        }
        return 0;
    }
    uint32_t ev = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
    if (!sk) {
        sk = xcalloc(1, sizeof *sk);
        sk->c = c;
        sk->fd = s;
        if (loop_io_add(c->lp, &sk->io, s, ev, on_sock_io, sk) < 0) {
            log_msg(LOG_ERROR, NULL, "s3: cannot watch socket %d: %s", (int)s, strerror(errno));
            free(sk);
            return -1;
        }
        curl_multi_assign(c->multi, s, sk);
    } else if (loop_io_mod(c->lp, &sk->io, ev) < 0) {
        log_msg(LOG_ERROR, NULL, "s3: cannot watch socket %d: %s", (int)s, strerror(errno));
        return -1;
    }
    return 0;
}

static void on_curl_timer(loop *lp, loop_timer *t)
{
    (void)lp;
    s3_client *c = t->data;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

static int on_timer_update(CURLM *m, long ms, void *userp)
{
    (void)m;
    s3_client *c = userp;
    if (ms < 0)
        loop_timer_stop(c->lp, &c->timer);
    else
        loop_timer_start(c->lp, &c->timer, (uint64_t)ms);
    return 0;
}

static void mark_up(s3_client *c)
{
    c->last_answer_ms = loop_clock_ms();
    if (atomic_load_explicit(&c->up, memory_order_relaxed))
        return;
    atomic_store(&c->up, 1);
    if (c->down_logged) {
        log_msg(LOG_INFO, NULL, "object store answers again");
        c->down_logged = 0;
    }
}

static void mark_down(s3_client *c, const s3_error *e)
{
    if (!atomic_load_explicit(&c->up, memory_order_relaxed) && c->down_logged)
        return;
    atomic_store(&c->up, 0);
    if (!c->down_logged) {
        log_msg(LOG_WARN, NULL, "object store unusable (%s: %s); not ready until it answers",
                e->code, e->message);
        c->down_logged = 1;
    }
}

/* ---- calls ----------------------------------------------------------------------- */

static s3_call *call_new(s3_client *c, s3_op *op, int kind, const char *method, const char *key)
{
    s3_call *call = xcalloc(1, sizeof *call);
    call->c = c;
    call->op = op;
    call->kind = kind;
    call->method = method;
    call->key = key ? xstrdup(key) : NULL;
    call->resp_max = S3_MAX_ERROR_BODY;
    strbuf_init(&call->resp);
    loop_timer_init(&call->retry_timer, NULL, call);
    snprintf(call->payload_hash, sizeof call->payload_hash, "%s", SIGV4_EMPTY_SHA256);
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    call->linked = 1;
    return call;
}

static void call_query(s3_call *call, const char *name, const char *value)
{
    if (call->nquery >= MAX_QUERY)
        die("s3: too many query parameters");
    sigv4_pair *p = &call->query[call->nquery++];
    p->name = xstrdup(name);
    p->name_len = strlen(name);
    p->value = xstrdup(value ? value : "");
    p->value_len = strlen(p->value);
}

/* Ends the current attempt's curl state (the call itself stays). */
static void attempt_end(s3_call *call)
{
    if (call->easy) {
        curl_multi_remove_handle(call->c->multi, call->easy);
        curl_easy_cleanup(call->easy);
        call->easy = NULL;
    }
    curl_slist_free_all(call->headers);
    call->headers = NULL;
    if (call->counted) {
        atomic_fetch_sub(&m_in_flight, 1);
        call->counted = 0;
    }
}

static void call_free(s3_call *call)
{
    s3_client *c = call->c;
    attempt_end(call);
    loop_timer_stop(c->lp, &call->retry_timer);
    if (call->linked) {
        if (call->prev)
            call->prev->next = call->next;
        else
            c->calls = call->next;
        if (call->next)
            call->next->prev = call->prev;
    }
    for (size_t i = 0; i < call->nquery; i++) {
        free((char *)call->query[i].name);
        free((char *)call->query[i].value);
    }
    if (call->op && call->op->call == call)
        call->op->call = NULL;
    free(call->key);
    free(call->content_type);
    strbuf_dispose(&call->resp);
    free(call);
}

/* Copies a header's value (after "Name:") without surrounding blanks. */
static void header_value(const char *line, size_t n, size_t name_len, char *out, size_t outlen)
{
    const char *v = line + name_len + 1;
    const char *end = line + n;
    if (v > end)
        v = end;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t len = (size_t)(end - v);
    if (len >= outlen)
        len = outlen - 1;
    memcpy(out, v, len);
    out[len] = '\0';
}

static int header_is(const char *line, size_t n, const char *name)
{
    size_t len = strlen(name);
    return n > len && line[len] == ':' && !strncasecmp(line, name, len);
}

static void on_event(loop *lp, loop_timer *t);

static size_t cb_header(char *line, size_t size, size_t nitems, void *ud)
{
    s3_call *call = ud;
    size_t n = size * nitems;
    if (n >= 5 && !memcmp(line, "HTTP/", 5)) {
        /* a new header block (after a 100 Continue) starts over */
        const char *sp = memchr(line, ' ', n);
        call->status = sp && sp + 4 <= line + n ? (unsigned)strtoul(sp + 1, NULL, 10) : 0;
        memset(&call->info, 0, sizeof call->info);
        call->headers_done = 0;
        return n;
    }
    if ((n == 2 && line[0] == '\r') || (n == 1 && line[0] == '\n')) {
        if (call->status < 200)
            return n;
        call->headers_done = 1;
        s3_object_info *in = &call->info;
        in->status = call->status;
        if (in->status == 200)
            in->size = in->length;
        s3_op *op = call->op;
        if (op && call->stream_response && call->status / 100 == 2 && !op->headers_delivered) {
            op->headers_pending = 1;
            loop_timer_start(call->c->lp, &op->event_timer, 0);
        }
        return n;
    }
    s3_object_info *in = &call->info;
    char v[300] = "";
    if (header_is(line, n, "Content-Length")) {
        header_value(line, n, 14, v, sizeof v);
        in->length = strtoull(v, NULL, 10);
    } else if (header_is(line, n, "Content-Range")) {
        header_value(line, n, 13, v, sizeof v);
        if (s3_parse_content_range(v, &in->first, &in->last, &in->size) < 0)
            in->size = 0;
    } else if (header_is(line, n, "ETag")) {
        header_value(line, n, 4, in->etag, sizeof in->etag);
    } else if (header_is(line, n, "Last-Modified")) {
        header_value(line, n, 13, in->last_modified, sizeof in->last_modified);
    } else if (header_is(line, n, "Content-Type")) {
        header_value(line, n, 12, in->content_type, sizeof in->content_type);
    }
    return n;
}

/* Offers held response bytes to the caller: 1 when all went, 0 when it
 * paused, -1 (e filled) when it failed. */
static int flush_pending(s3_op *op, s3_error *e)
{
    while (op->pending_off < op->pending_len) {
        ssize_t n =
            op->write(op->arg, op->pending + op->pending_off, op->pending_len - op->pending_off);
        if (n == S3_PAUSE || n == 0)
            return 0;
        if (n < 0 || (size_t)n > op->pending_len - op->pending_off) {
            set_err(e, S3E_CLIENT, "aborted", "the download's consumer failed");
            return -1;
        }
        op->pending_off += (size_t)n;
    }
    op->pending_off = op->pending_len = 0;
    return 1;
}

static size_t cb_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    s3_call *call = ud;
    size_t n = size * nmemb;
    s3_op *op = call->op;
    atomic_fetch_add_explicit(&m_bytes_in, n, memory_order_relaxed);
    if (!(call->stream_response && call->status / 100 == 2 && op)) {
        if (call->resp.len + n > call->resp_max) {
            call->resp_overflow = 1;
            if (call->status / 100 == 2)
                return 0;                        /* a listing past its bound: fail */
            n = call->resp_max - call->resp.len; /* an error body: its start is enough */
        }
        strbuf_add(&call->resp, ptr, n);
        return size * nmemb;
    }
    size_t taken = 0;
    if (op->headers_delivered && op->pending_len == 0 && !op->cancelled) {
        ssize_t w = op->write(op->arg, ptr, n);
        if (w == S3_ABORT || w < S3_ABORT || (w > 0 && (size_t)w > n)) {
            set_err(&call->err, S3E_CLIENT, "aborted", "the download's consumer failed");
            return 0;
        }
        if (w > 0)
            taken = (size_t)w;
        if (taken == n)
            return n;
    }
    /* hold the rest (at most one curl buffer) and stop receiving */
    size_t rest = n - taken;
    if (op->pending_len + rest > 4 * (size_t)S3_RECV_BUFFER) {
        set_err(&call->err, S3E_PROTOCOL, "overflow", "paused download kept receiving");
        return 0;
    }
    if (op->pending_len + rest > op->pending_cap) {
        /* grown, never shrunk: a buffer this size is mmapped by malloc, and
         * resizing it on every hold faults its pages in again each time */
        size_t cap = op->pending_len + rest;
        if (cap < S3_RECV_BUFFER)
            cap = S3_RECV_BUFFER;
        op->pending = xrealloc(op->pending, cap);
        op->pending_cap = cap;
    }
    memcpy(op->pending + op->pending_len, ptr + taken, rest);
    op->pending_len += rest;
    if (!call->recv_paused) {
        call->recv_paused = 1;
        curl_easy_pause(call->easy, CURLPAUSE_RECV);
    }
    return n;
}

static ssize_t op_stream_read(s3_op *op, s3_call *call, char *buf, size_t max);

static size_t cb_read(char *buf, size_t size, size_t nitems, void *ud)
{
    s3_call *call = ud;
    size_t max = size * nitems;
    if (call->body == BODY_MEM) {
        size_t n = call->mem_len - call->mem_off;
        if (n > max)
            n = max;
        memcpy(buf, call->mem + call->mem_off, n);
        call->mem_off += n;
        atomic_fetch_add_explicit(&m_bytes_out, n, memory_order_relaxed);
        return n;
    }
    if (call->body != BODY_STREAM || !call->op)
        return 0;
    uint64_t left = call->length - call->sent;
    if (left == 0)
        return 0;
    if (max > left)
        max = (size_t)left;
    call->touched = 1;
    ssize_t n = op_stream_read(call->op, call, buf, max);
    if (n == S3_PAUSE) {
        call->send_paused = 1;
        return CURL_READFUNC_PAUSE;
    }
    if (n <= 0)
        return CURL_READFUNC_ABORT; /* S3_ABORT: call->err says why */
    call->sent += (uint64_t)n;
    atomic_fetch_add_explicit(&m_bytes_out, (uint64_t)n, memory_order_relaxed);
    return (size_t)n;
}

static void utc_now(char out[SIGV4_TIME_LEN + 1])
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, SIGV4_TIME_LEN + 1, "%Y%m%dT%H%M%SZ", &tm);
}

static struct curl_slist *add_header(struct curl_slist *l, const char *name, const char *value)
{
    char line[1024];
    snprintf(line, sizeof line, "%s: %s", name, value);
    struct curl_slist *n = curl_slist_append(l, line);
    if (!n)
        die("s3: out of memory");
    return n;
}

/* Builds, signs and sends one attempt. Failures to set it up end the call. */
static void call_start(s3_call *call)
{
    s3_client *c = call->c;
    const s3_config *cfg = &c->cfg;
    strbuf path, url;
    strbuf_init(&path);
    strbuf_init(&url);
    strbuf_adds(&path, "/");
    s3_uri_encode(&path, cfg->bucket, strlen(cfg->bucket), 0);
    if (call->key) {
        strbuf_adds(&path, "/");
        s3_uri_encode(&path, call->key, strlen(call->key), 1);
    }
    strbuf_adds(&url, cfg->endpoint.base);
    strbuf_add(&url, path.buf, path.len);
    for (size_t i = 0; i < call->nquery; i++) {
        strbuf_adds(&url, i ? "&" : "?");
        s3_uri_encode(&url, call->query[i].name, call->query[i].name_len, 0);
        strbuf_adds(&url, "=");
        s3_uri_encode(&url, call->query[i].value, call->query[i].value_len, 0);
    }

    sigv4_pair hs[4];
    size_t nh = 0;
    hs[nh++] = (sigv4_pair){"host", 4, cfg->endpoint.authority, strlen(cfg->endpoint.authority)};
    hs[nh++] =
        (sigv4_pair){"x-amz-content-sha256", 20, call->payload_hash, strlen(call->payload_hash)};
    if (call->content_type)
        hs[nh++] = (sigv4_pair){"content-type", 12, call->content_type, strlen(call->content_type)};
    if (call->range[0])
        hs[nh++] = (sigv4_pair){"range", 5, call->range, strlen(call->range)};
    char now[SIGV4_TIME_LEN + 1];
    utc_now(now);
    sigv4_request req = {.method = call->method,
                         .path = path.buf,
                         .path_len = path.len,
                         .query = call->query,
                         .nquery = call->nquery,
                         .headers = hs,
                         .nheaders = nh,
                         .payload_hash = call->payload_hash,
                         .region = cfg->region,
                         .service = "s3",
                         .access_key = cfg->access_key,
                         .secret_key = cfg->secret_key,
                         .time = now};
    sigv4_result sig;
    char serr[256];
    s3_error e;
    if (sigv4_sign(&req, &sig, serr, sizeof serr) < 0) {
        set_err(&e, S3E_INVALID, "signing", "cannot sign the request: %s", serr);
        e.retryable = 0;
        strbuf_dispose(&path);
        strbuf_dispose(&url);
        call->finish(call, &e);
        return;
    }
    struct curl_slist *h = NULL;
    h = add_header(h, "Host", cfg->endpoint.authority);
    h = add_header(h, "x-amz-content-sha256", call->payload_hash);
    h = add_header(h, "x-amz-date", sig.time);
    h = add_header(h, "Authorization", sig.authorization);
    if (call->content_type)
        h = add_header(h, "Content-Type", call->content_type);
    else if (!strcmp(call->method, "POST"))
        h = add_header(h, "Content-Type", "");
    if (call->range[0])
        h = add_header(h, "Range", call->range);
    h = curl_slist_append(h, "Expect:");
    h = curl_slist_append(h, "Accept:");
    sigv4_result_dispose(&sig);
    call->headers = h;

    CURL *e2 = curl_easy_init();
    if (!e2)
        die("s3: curl_easy_init failed");
    call->easy = e2;
    call->status = 0;
    call->headers_done = 0;
    strbuf_reset(&call->resp);
    call->resp_overflow = 0;
    memset(&call->info, 0, sizeof call->info);
    memset(&call->err, 0, sizeof call->err);
    call->send_paused = call->recv_paused = 0;
    call->mem_off = 0;
    call->sent = 0;
    call->errbuf[0] = '\0';
    curl_easy_setopt(e2, CURLOPT_URL, url.buf);
    curl_easy_setopt(e2, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(e2, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e2, CURLOPT_PRIVATE, call);
    curl_easy_setopt(e2, CURLOPT_ERRORBUFFER, call->errbuf);
    curl_easy_setopt(e2, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e2, CURLOPT_HEADERFUNCTION, cb_header);
    curl_easy_setopt(e2, CURLOPT_HEADERDATA, call);
    curl_easy_setopt(e2, CURLOPT_WRITEFUNCTION, cb_write);
    curl_easy_setopt(e2, CURLOPT_WRITEDATA, call);
    curl_easy_setopt(e2, CURLOPT_READFUNCTION, cb_read);
    curl_easy_setopt(e2, CURLOPT_READDATA, call);
    curl_easy_setopt(e2, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->connect_timeout_ms);
    curl_easy_setopt(e2, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e2, CURLOPT_TCP_NODELAY, 1L);
    if (cfg->endpoint.https) {
        curl_easy_setopt(e2, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(e2, CURLOPT_SSL_VERIFYHOST, 2L);
        if (cfg->ca_file)
            curl_easy_setopt(e2, CURLOPT_CAINFO, cfg->ca_file);
    }
    if (call->stream_response) /* downloads: fewer, larger writes (the size of a sink's buffer) */
        curl_easy_setopt(e2, CURLOPT_BUFFERSIZE, (long)S3_RECV_BUFFER);
    if (call->body == BODY_STREAM) /* uploads: fewer, larger sends */
        curl_easy_setopt(e2, CURLOPT_UPLOAD_BUFFERSIZE, (long)S3_SEND_BUFFER);
    /* a body too large to bound the whole exchange by (one PUT of a large
     * string) is bounded by its pace, like a streamed one */
    int streamed = call->body == BODY_STREAM || call->stream_response ||
                   (call->body == BODY_MEM && call->mem_len > S3_TIMED_BODY_MAX);
    if (streamed) {
        curl_easy_setopt(e2, CURLOPT_LOW_SPEED_LIMIT, (long)cfg->low_speed_bytes);
        curl_easy_setopt(e2, CURLOPT_LOW_SPEED_TIME, (long)cfg->low_speed_time_s);
    } else {
        curl_easy_setopt(e2, CURLOPT_TIMEOUT_MS, (long)cfg->request_timeout_ms);
    }
    uint64_t blen = call->body == BODY_MEM      ? call->mem_len
                    : call->body == BODY_STREAM ? call->length
                                                : 0;
    if (!strcmp(call->method, "HEAD")) {
        curl_easy_setopt(e2, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(call->method, "PUT")) {
        curl_easy_setopt(e2, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e2, CURLOPT_INFILESIZE_LARGE, (curl_off_t)blen);
    } else if (!strcmp(call->method, "POST")) {
        curl_easy_setopt(e2, CURLOPT_POST, 1L);
        curl_easy_setopt(e2, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
    } else if (strcmp(call->method, "GET") != 0) {
        curl_easy_setopt(e2, CURLOPT_CUSTOMREQUEST, call->method);
    }
    strbuf_dispose(&path);
    strbuf_dispose(&url);
    call->t0_us = loop_clock_us();
    atomic_fetch_add(&m_in_flight, 1);
    call->counted = 1;
    CURLMcode mc = curl_multi_add_handle(c->multi, e2);
    if (mc != CURLM_OK) {
        set_err(&e, S3E_NETWORK, "curl", "cannot start the transfer: %s", curl_multi_strerror(mc));
        attempt_end(call);
        call->finish(call, &e);
    }
}

static int replayable(const s3_call *call)
{
    if (call->body == BODY_STREAM && call->touched)
        return 0;
    if (call->stream_response && call->op &&
        (call->op->headers_delivered || call->op->headers_pending || call->op->pending_len))
        return 0;
    return 1;
}

static void on_retry(loop *lp, loop_timer *t)
{
    (void)lp;
    call_start(t->data);
}

/* Turns the end of an attempt into an error record, or none on success. */
static int attempt_error(s3_call *call, CURLcode rc, s3_error *e)
{
    memset(e, 0, sizeof *e);
    if (call->err.kind != S3E_NONE) {
        *e = call->err;
        return 1;
    }
    if (rc != CURLE_OK) {
        int timeout = rc == CURLE_OPERATION_TIMEDOUT;
        set_err(e, timeout ? S3E_TIMEOUT : S3E_NETWORK, timeout ? "timeout" : "network", "%s",
                call->errbuf[0] ? call->errbuf : curl_easy_strerror(rc));
        if (rc == CURLE_SSL_CACERT || rc == CURLE_PEER_FAILED_VERIFICATION ||
            rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT) {
            e->retryable = 0;
            snprintf(e->code, sizeof e->code, "tls");
        }
        if (call->resp_overflow) {
            set_err(e, S3E_PROTOCOL, "too_large", "the store's answer is over %zu bytes",
                    call->resp_max);
        }
        return 1;
    }
    unsigned st = call->status;
    int complete_error = call->kind == S3_OP_COMPLETE_MULTIPART && st == 200 &&
                         s3_parse_error(call->resp.buf, call->resp.len, e);
    if (st >= 200 && st < 300 && !complete_error)
        return 0;
    if (!complete_error && !s3_parse_error(call->resp.buf, call->resp.len, e)) {
        const char *code = st == 404   ? (call->key ? "NoSuchKey" : "NoSuchBucket")
                           : st == 403 ? "AccessDenied"
                           : st == 416 ? "InvalidRange"
                           : st >= 500 ? "ServiceUnavailable"
                                       : "HTTPError";
        snprintf(e->code, sizeof e->code, "%s", code);
        snprintf(e->message, sizeof e->message, "the store answered HTTP %u", st);
    }
    e->kind = S3E_STORE;
    e->status = st;
    e->retryable = s3_retryable_status(complete_error ? 500 : st, e->code) &&
                   !(complete_error && !strcmp(e->code, "EntityTooSmall"));
    /* RGW answers a completion of an aborted (or already completing)
     * upload with 500 InternalError "... already in progress": a retry
     * cannot succeed */
    if (call->kind == S3_OP_COMPLETE_MULTIPART && strstr(e->message, "already in progress"))
        e->retryable = 0;
    return 1;
}

static void call_finished(s3_call *call, CURLcode rc)
{
    s3_client *c = call->c;
    s3_error e;
    int failed = attempt_error(call, rc, &e);
    uint64_t us = loop_clock_us() - call->t0_us;
    observe(call->kind, rc == CURLE_OK ? call->status : 0, us);
    attempt_end(call);
    if (call->status >= 200 && call->status < 300 && !failed)
        mark_up(c);
    else if (failed && e.retryable &&
             (e.kind == S3E_NETWORK || e.kind == S3E_TIMEOUT || e.status >= 500))
        mark_down(c, &e);
    if (failed && e.retryable && call->attempt + 1 < c->cfg.attempts && replayable(call) &&
        !(call->op && call->op->cancelled)) {
        call->attempt++;
        atomic_fetch_add(&m_retries, 1);
        uint32_t rnd;
        util_random_bytes(&rnd, sizeof rnd);
        unsigned wait =
            s3_backoff_ms(call->attempt, c->cfg.backoff_base_ms, c->cfg.backoff_max_ms, rnd);
        log_msg(LOG_DEBUG, NULL, "s3: %s failed (%s %s), retry %u in %u ms", op_names[call->kind],
                s3_kind_name(e.kind), e.code, call->attempt, wait);
        call->retry_timer.cb = on_retry;
        loop_timer_start(c->lp, &call->retry_timer, wait);
        return;
    }
    call->finish(call, failed ? &e : NULL);
}

static void check_done(s3_client *c)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode rc = msg->data.result;
        s3_call *call = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&call);
        if (call)
            call_finished(call, rc);
    }
}

/* ---- ops: common ----------------------------------------------------------------- */

static s3_op *op_new(s3_client *c, int kind, const char *key, s3_done_fn done, void *arg)
{
    s3_op *op = xcalloc(1, sizeof *op);
    op->c = c;
    op->kind = kind;
    op->done = done;
    op->arg = arg;
    op->key = key ? xstrdup(key) : NULL;
    op->length = -1;
    loop_timer_init(&op->event_timer, on_event, op);
    strbuf_init(&op->xml);
    return op;
}

static void op_free(s3_op *op)
{
    if (op->call)
        call_free(op->call);
    loop_timer_stop(op->c->lp, &op->event_timer);
    if (op->sha)
        EVP_MD_CTX_free(op->sha);
    free(op->key);
    free(op->pending);
    free(op->content_type);
    free(op->upload_id);
    free(op->parts);
    free(op->buf);
    strbuf_dispose(&op->xml);
    s3xml_dispose(&op->doc);
    free(op->res.entries);
    free(op);
}

/* Reports the op's outcome (res or err) and frees it. */
static void op_finish(s3_op *op, const s3_error *err)
{
    if (op->call) {
        call_free(op->call);
        op->call = NULL;
    }
    if (!op->cancelled && op->done) {
        op->busy++;
        op->done(op->arg, err ? NULL : &op->res, err);
        op->busy--;
    }
    op_free(op);
}

/* Reports later, from the loop (for failures found while starting). */
static void op_finish_later(s3_op *op, const s3_error *err)
{
    op->finished = 1;
    op->failed = err != NULL;
    if (err)
        op->err = *err;
    loop_timer_start(op->c->lp, &op->event_timer, 0);
}

static void background_abort(s3_client *c, const char *key, const char *upload_id);

static void op_fail(s3_op *op, const s3_error *err)
{
    if (op->upload_id) {
        background_abort(op->c, op->key, op->upload_id);
        free(op->upload_id);
        op->upload_id = NULL;
    }
    op_finish(op, err);
}

static void on_event(loop *lp, loop_timer *t)
{
    (void)lp;
    s3_op *op = t->data;
    s3_call *call = op->call;
    if (op->headers_pending && call) {
        op->headers_pending = 0;
        op->headers_delivered = 1;
        op->busy++;
        op->on_headers(op->arg, &call->info);
        op->busy--;
        if (op->cancelled) {
            op_free(op);
            return;
        }
        op->resume_pending = 1; /* offer what arrived meanwhile */
    }
    if (op->finished && op->failed) {
        s3_error e = op->err;
        op_fail(op, &e);
        return;
    }
    if (op->resume_pending) {
        op->resume_pending = 0;
        if (op->waiting_read) {
            op->waiting_read = 0;
            put_fill(op);
            return;
        }
        if (op->headers_delivered && op->pending_off < op->pending_len) {
            s3_error e;
            memset(&e, 0, sizeof e);
            op->busy++;
            int r = flush_pending(op, &e);
            op->busy--;
            if (op->cancelled) {
                op_free(op);
                return;
            }
            if (r < 0) {
                op_fail(op, &e);
                return;
            }
            if (r == 0)
                return; /* the caller resumes again */
        }
        if (call && call->easy) {
            if (call->recv_paused && op->pending_len == 0) {
                call->recv_paused = 0;
                curl_easy_pause(call->easy, call->send_paused ? CURLPAUSE_SEND : CURLPAUSE_CONT);
            }
            if (call->easy && call->send_paused) {
                s3_client *c = op->c;
                call->send_paused = 0;
                curl_easy_pause(call->easy, call->recv_paused ? CURLPAUSE_RECV : CURLPAUSE_CONT);
                /* drive the upload now rather than on curl's next timer: a
                 * streamed body resumes once per source buffer (op may be
                 * gone after this) */
                int running;
                curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
                check_done(c);
            }
            return;
        }
    }
    if (op->finished && op->pending_len == 0)
        op_finish(op, NULL);
}

void s3_op_resume(s3_op *op)
{
    if (!op || op->cancelled)
        return;
    op->resume_pending = 1;
    loop_timer_start(op->c->lp, &op->event_timer, 0);
}

void s3_op_hold(s3_op *op)
{
    s3_call *call = op ? op->call : NULL;
    if (!call || !call->easy || call->recv_paused)
        return;
    call->recv_paused = 1;
    curl_easy_pause(call->easy, call->send_paused ? CURLPAUSE_ALL : CURLPAUSE_RECV);
}

void s3_op_cancel(s3_op *op)
{
    if (!op || op->cancelled)
        return;
    op->cancelled = 1;
    if (op->call) {
        call_free(op->call);
        op->call = NULL;
    }
    if (op->upload_id) {
        background_abort(op->c, op->key, op->upload_id);
        free(op->upload_id);
        op->upload_id = NULL;
    }
    if (!op->busy)
        op_free(op);
}

/* ---- simple ops ----------------------------------------------------------------- */

static int parse_list(s3_op *op, s3_call *call, s3_error *e)
{
    char xerr[160];
    if (s3xml_parse(&op->doc, call->resp.buf, call->resp.len, xerr, sizeof xerr) < 0) {
        set_err(e, S3E_PROTOCOL, "bad_xml", "the store's listing is not XML: %s", xerr);
        e->retryable = 0;
        return -1;
    }
    s3xml *d = &op->doc;
    s3_result *r = &op->res;
    const char *item = op->kind == S3_OP_LIST_OBJECTS   ? "Contents"
                       : op->kind == S3_OP_LIST_UPLOADS ? "Upload"
                                                        : "Part";
    size_t n = 0;
    for (int i = s3xml_child(d, 0, item); i >= 0; i = s3xml_next(d, i, item))
        n++;
    r->entries = xcalloc(n ? n : 1, sizeof *r->entries);
    for (int i = s3xml_child(d, 0, item); i >= 0; i = s3xml_next(d, i, item)) {
        s3_entry *en = &r->entries[r->nentries++];
        const char *v;
        en->key = s3xml_child_text(d, i, "Key");
        en->etag = s3xml_child_text(d, i, "ETag");
        en->upload_id = s3xml_child_text(d, i, "UploadId");
        en->last_modified =
            s3xml_child_text(d, i, op->kind == S3_OP_LIST_UPLOADS ? "Initiated" : "LastModified");
        if ((v = s3xml_child_text(d, i, "Size")))
            en->size = strtoull(v, NULL, 10);
        if ((v = s3xml_child_text(d, i, "PartNumber")))
            en->part_number = (unsigned)strtoul(v, NULL, 10);
        if (!en->key)
            en->key = op->key ? op->key : "";
    }
    const char *t = s3xml_child_text(d, 0, "IsTruncated");
    r->truncated = t && !strcmp(t, "true");
    r->next_token = s3xml_child_text(d, 0, "NextContinuationToken");
    r->next_key_marker = s3xml_child_text(d, 0, "NextKeyMarker");
    r->next_upload_marker = s3xml_child_text(d, 0, "NextUploadIdMarker");
    const char *pm = s3xml_child_text(d, 0, "NextPartNumberMarker");
    r->next_part_marker = pm ? (unsigned)strtoul(pm, NULL, 10) : 0;
    return 0;
}

/* The UploadId of a CreateMultipartUpload answer into out (n bytes).
 * Returns 0, or -1 with e filled. */
static int answer_upload_id(const s3_call *call, char *out, size_t n, s3_error *e)
{
    s3xml d;
    char xerr[160];
    int rc = -1;
    if (s3xml_parse(&d, call->resp.buf, call->resp.len, xerr, sizeof xerr) == 0) {
        const char *id = s3xml_child_text(&d, 0, "UploadId");
        if (id && id[0] && strlen(id) < n) {
            snprintf(out, n, "%s", id);
            rc = 0;
        }
        s3xml_dispose(&d);
    }
    if (rc < 0)
        set_err(e, S3E_PROTOCOL, "bad_xml", "no UploadId in the store's answer");
    return rc;
}

/* The ETag of a CompleteMultipartUpload answer, when it has one, into out. */
static void answer_etag(const s3_call *call, char *out, size_t n)
{
    s3xml d;
    char xerr[160];
    if (s3xml_parse(&d, call->resp.buf, call->resp.len, xerr, sizeof xerr) == 0) {
        const char *et = s3xml_child_text(&d, 0, "ETag");
        if (et && et[0])
            copy_clean(out, n, et);
        s3xml_dispose(&d);
    }
}

static void simple_finish(s3_call *call, const s3_error *err)
{
    s3_op *op = call->op;
    s3_error e;
    if (!op) { /* a background abort */
        if (err && !(err->kind == S3E_STORE && err->status == 404))
            log_msg(LOG_WARN, NULL,
                    "s3: aborting a multipart upload failed (%s %s); glasgow gc "
                    "will remove it",
                    s3_kind_name(err->kind), err->code);
        call_free(call);
        return;
    }
    if (err && err->kind == S3E_STORE && err->status == 404 &&
        (op->kind == S3_OP_DELETE_OBJECT || op->kind == S3_OP_ABORT_MULTIPART)) {
        op->res.missing = 1;
        err = NULL; /* already gone: what was asked holds */
    }
    if (err) {
        op_finish(op, err);
        return;
    }
    op->res.info = call->info;
    snprintf(op->res.etag, sizeof op->res.etag, "%s", call->info.etag);
    switch (op->kind) {
    case S3_OP_CREATE_MULTIPART:
        if (answer_upload_id(call, op->res.upload_id, sizeof op->res.upload_id, &e) < 0) {
            op_finish(op, &e);
            return;
        }
        break;
    case S3_OP_COMPLETE_MULTIPART: answer_etag(call, op->res.etag, sizeof op->res.etag); break;
    case S3_OP_LIST_OBJECTS:
    case S3_OP_LIST_UPLOADS:
    case S3_OP_LIST_PARTS:
        if (parse_list(op, call, &e) < 0) {
            op_finish(op, &e);
            return;
        }
        break;
    default: break;
    }
    op_finish(op, NULL);
}

static int check_key(const char *key, s3_error *err)
{
    return s3_check_key(key, strlen(key), err);
}

/* Starts op's one call (made by the caller) at once. */
static s3_op *run_simple(s3_op *op, s3_call *call)
{
    call->finish = simple_finish;
    op->call = call;
    call_start(call);
    return op;
}

s3_op *s3_head_bucket(s3_client *c, s3_done_fn done, void *arg, s3_error *err)
{
    (void)err;
    s3_op *op = op_new(c, S3_OP_HEAD_BUCKET, NULL, done, arg);
    return run_simple(op, call_new(c, op, S3_OP_HEAD_BUCKET, "HEAD", NULL));
}

s3_op *s3_create_bucket(s3_client *c, s3_done_fn done, void *arg, s3_error *err)
{
    (void)err;
    s3_op *op = op_new(c, S3_OP_CREATE_BUCKET, NULL, done, arg);
    s3_call *call = call_new(c, op, S3_OP_CREATE_BUCKET, "PUT", NULL);
    call->body = BODY_MEM;
    call->mem = "";
    return run_simple(op, call);
}

s3_op *s3_head_object(s3_client *c, const char *key, s3_done_fn done, void *arg, s3_error *err)
{
    if (check_key(key, err) < 0)
        return NULL;
    s3_op *op = op_new(c, S3_OP_HEAD_OBJECT, key, done, arg);
    return run_simple(op, call_new(c, op, S3_OP_HEAD_OBJECT, "HEAD", key));
}

s3_op *s3_delete_object(s3_client *c, const char *key, s3_done_fn done, void *arg, s3_error *err)
{
    if (check_key(key, err) < 0)
        return NULL;
    s3_op *op = op_new(c, S3_OP_DELETE_OBJECT, key, done, arg);
    return run_simple(op, call_new(c, op, S3_OP_DELETE_OBJECT, "DELETE", key));
}

static void query_uint(s3_call *call, const char *name, unsigned v)
{
    char b[16];
    snprintf(b, sizeof b, "%u", v);
    call_query(call, name, b);
}

s3_op *s3_list_objects(s3_client *c, const char *prefix, const char *continuation,
                       unsigned max_keys, s3_done_fn done, void *arg, s3_error *err)
{
    if ((prefix && strlen(prefix) > S3_MAX_KEY) || (continuation && strlen(continuation) > 4096)) {
        set_err(err, S3E_INVALID, "invalid", "prefix or continuation token too long");
        return NULL;
    }
    s3_op *op = op_new(c, S3_OP_LIST_OBJECTS, NULL, done, arg);
    s3_call *call = call_new(c, op, S3_OP_LIST_OBJECTS, "GET", NULL);
    call->resp_max = S3_MAX_XML_BODY;
    call_query(call, "list-type", "2");
    if (prefix && prefix[0])
        call_query(call, "prefix", prefix);
    if (continuation && continuation[0])
        call_query(call, "continuation-token", continuation);
    if (max_keys)
        query_uint(call, "max-keys", max_keys);
    return run_simple(op, call);
}

s3_op *s3_list_uploads(s3_client *c, const char *prefix, const char *key_marker,
                       const char *upload_id_marker, unsigned max_uploads, s3_done_fn done,
                       void *arg, s3_error *err)
{
    if ((prefix && strlen(prefix) > S3_MAX_KEY) ||
        (key_marker && strlen(key_marker) > S3_MAX_KEY) ||
        (upload_id_marker && strlen(upload_id_marker) > 1024)) {
        set_err(err, S3E_INVALID, "invalid", "prefix or marker too long");
        return NULL;
    }
    s3_op *op = op_new(c, S3_OP_LIST_UPLOADS, NULL, done, arg);
    s3_call *call = call_new(c, op, S3_OP_LIST_UPLOADS, "GET", NULL);
    call->resp_max = S3_MAX_XML_BODY;
    call_query(call, "uploads", "");
    if (prefix && prefix[0])
        call_query(call, "prefix", prefix);
    if (key_marker && key_marker[0])
        call_query(call, "key-marker", key_marker);
    if (upload_id_marker && upload_id_marker[0])
        call_query(call, "upload-id-marker", upload_id_marker);
    if (max_uploads)
        query_uint(call, "max-uploads", max_uploads);
    return run_simple(op, call);
}

static int check_upload_id(const char *id, s3_error *err)
{
    size_t n = strlen(id);
    if (n == 0 || n > 1024) {
        set_err(err, S3E_INVALID, "invalid", "bad upload id");
        return -1;
    }
    return 0;
}

static s3_call *create_multipart_call(s3_client *c, s3_op *op, const char *key,
                                      const char *content_type)
{
    s3_call *call = call_new(c, op, S3_OP_CREATE_MULTIPART, "POST", key);
    call_query(call, "uploads", "");
    call->body = BODY_MEM;
    call->mem = "";
    call->content_type = xstrdup(content_type ? content_type : "application/octet-stream");
    return call;
}

s3_op *s3_create_multipart(s3_client *c, const char *key, const char *content_type, s3_done_fn done,
                           void *arg, s3_error *err)
{
    if (check_key(key, err) < 0)
        return NULL;
    s3_op *op = op_new(c, S3_OP_CREATE_MULTIPART, key, done, arg);
    return run_simple(op, create_multipart_call(c, op, key, content_type));
}

static s3_call *abort_call(s3_client *c, s3_op *op, const char *key, const char *upload_id)
{
    s3_call *call = call_new(c, op, S3_OP_ABORT_MULTIPART, "DELETE", key);
    call_query(call, "uploadId", upload_id);
    call->finish = simple_finish;
    return call;
}

static void background_abort(s3_client *c, const char *key, const char *upload_id)
{
    call_start(abort_call(c, NULL, key, upload_id));
}

s3_op *s3_abort_multipart(s3_client *c, const char *key, const char *upload_id, s3_done_fn done,
                          void *arg, s3_error *err)
{
    if (check_key(key, err) < 0 || check_upload_id(upload_id, err) < 0)
        return NULL;
    s3_op *op = op_new(c, S3_OP_ABORT_MULTIPART, key, done, arg);
    return run_simple(op, abort_call(c, op, key, upload_id));
}

s3_op *s3_list_parts(s3_client *c, const char *key, const char *upload_id, unsigned part_marker,
                     s3_done_fn done, void *arg, s3_error *err)
{
    if (check_key(key, err) < 0 || check_upload_id(upload_id, err) < 0)
        return NULL;
    s3_op *op = op_new(c, S3_OP_LIST_PARTS, key, done, arg);
    s3_call *call = call_new(c, op, S3_OP_LIST_PARTS, "GET", key);
    call->resp_max = S3_MAX_XML_BODY;
    call_query(call, "uploadId", upload_id);
    if (part_marker)
        query_uint(call, "part-number-marker", part_marker);
    return run_simple(op, call);
}

static void build_complete_xml(strbuf *x, const s3_part *parts, size_t n)
{
    strbuf_reset(x);
    strbuf_adds(x, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    for (size_t i = 0; i < n; i++) {
        strbuf_addf(x, "<Part><PartNumber>%u</PartNumber><ETag>", parts[i].number);
        for (const char *p = parts[i].etag; *p; p++) {
            if (*p == '&')
                strbuf_adds(x, "&amp;");
            else if (*p == '<')
                strbuf_adds(x, "&lt;");
            else if (*p == '>')
                strbuf_adds(x, "&gt;");
            else if (*p == '"')
                strbuf_adds(x, "&quot;");
            else
                strbuf_add(x, p, 1);
        }
        strbuf_adds(x, "</ETag></Part>");
    }
    strbuf_adds(x, "</CompleteMultipartUpload>");
}

static void sha_hex_of(const void *data, size_t len, char out[65])
{
    unsigned char d[32];
    if (!EVP_Digest(data, len, d, NULL, EVP_sha256(), NULL))
        die("s3: SHA-256 failed");
    hex32(d, out);
}

static s3_call *complete_call(s3_client *c, s3_op *op, const char *key, const char *upload_id,
                              const s3_part *parts, size_t n)
{
    s3_call *call = call_new(c, op, S3_OP_COMPLETE_MULTIPART, "POST", key);
    call_query(call, "uploadId", upload_id);
    build_complete_xml(&op->xml, parts, n);
    call->body = BODY_MEM;
    call->mem = op->xml.buf;
    call->mem_len = op->xml.len;
    call->content_type = xstrdup("application/xml");
    sha_hex_of(op->xml.buf, op->xml.len, call->payload_hash);
    return call;
}

s3_op *s3_complete_multipart(s3_client *c, const char *key, const char *upload_id,
                             const s3_part *parts, size_t nparts, s3_done_fn done, void *arg,
                             s3_error *err)
{
    if (check_key(key, err) < 0 || check_upload_id(upload_id, err) < 0)
        return NULL;
    if (nparts == 0 || nparts > S3_MAX_PARTS) {
        set_err(err, S3E_INVALID, "invalid", "1 to %d parts", S3_MAX_PARTS);
        return NULL;
    }
    s3_op *op = op_new(c, S3_OP_COMPLETE_MULTIPART, key, done, arg);
    return run_simple(op, complete_call(c, op, key, upload_id, parts, nparts));
}

/* ---- streamed bodies -------------------------------------------------------------- */

static void sha_init(s3_op *op)
{
    op->sha = EVP_MD_CTX_new();
    if (!op->sha || !EVP_DigestInit_ex(op->sha, EVP_sha256(), NULL))
        die("s3: SHA-256 init failed");
}

static void sha_update(s3_op *op, const void *p, size_t n)
{
    if (!EVP_DigestUpdate(op->sha, p, n))
        die("s3: SHA-256 failed");
}

static void sha_final(s3_op *op)
{
    unsigned char d[32];
    unsigned int dl = 32;
    if (!EVP_DigestFinal_ex(op->sha, d, &dl))
        die("s3: SHA-256 failed");
    hex32(d, op->res.sha256);
}

/* The expected digest, if any, against the one just finalised. */
static int digest_ok(s3_op *op, s3_error *e)
{
    if (!op->expect[0] || !strcmp(op->expect, op->res.sha256))
        return 1;
    set_err(e, S3E_DIGEST, "digest_mismatch", "the body's SHA-256 is %s, not the expected %s",
            op->res.sha256, op->expect);
    return 0;
}

/* A streamed call reads its body through here: counted, hashed, checked
 * against the length and the expected digest before the last byte goes. */
static ssize_t op_stream_read(s3_op *op, s3_call *call, char *buf, size_t max)
{
    if (op->kind == S3_OP_UPLOAD_PART && !op->sha)
        sha_init(op);
    ssize_t n = op->read(op->read_arg, buf, max);
    if (n == S3_PAUSE)
        return S3_PAUSE;
    if (n == 0) {
        set_err(&call->err, S3E_CLIENT, "short_body",
                "the body ended after %" PRIu64 " of %" PRIu64 " bytes", op->total,
                op->kind == S3_OP_UPLOAD_PART ? call->length : (uint64_t)op->length);
        call->err.retryable = 0;
        return S3_ABORT;
    }
    if (n < 0 || (size_t)n > max) {
        set_err(&call->err, S3E_CLIENT, "aborted", "the body's source failed");
        call->err.retryable = 0;
        return S3_ABORT;
    }
    sha_update(op, buf, (size_t)n);
    op->total += (uint64_t)n;
    int last = op->kind == S3_OP_UPLOAD_PART ? call->sent + (uint64_t)n == call->length
                                             : op->total == (uint64_t)op->length;
    if (last) {
        sha_final(op);
        if (op->kind != S3_OP_UPLOAD_PART && !digest_ok(op, &call->err))
            return S3_ABORT; /* the store never sees the whole body */
    }
    return n;
}

s3_op *s3_upload_part(s3_client *c, const char *key, const char *upload_id, unsigned part_number,
                      const char *data, uint64_t length, s3_read_fn read, void *read_arg,
                      s3_done_fn done, void *arg, s3_error *err)
{
    if (check_key(key, err) < 0 || check_upload_id(upload_id, err) < 0)
        return NULL;
    if (part_number < 1 || part_number > S3_MAX_PARTS || (!data && !read) || length > S3_MAX_PART) {
        set_err(err, S3E_INVALID, "invalid", "bad part number, body or length");
        return NULL;
    }
    s3_op *op = op_new(c, S3_OP_UPLOAD_PART, key, done, arg);
    s3_call *call = call_new(c, op, S3_OP_UPLOAD_PART, "PUT", key);
    query_uint(call, "partNumber", part_number);
    call_query(call, "uploadId", upload_id);
    if (data) {
        call->body = BODY_MEM;
        call->mem = data;
        call->mem_len = (size_t)length;
        sha_hex_of(data, (size_t)length, call->payload_hash);
        snprintf(op->res.sha256, sizeof op->res.sha256, "%s", call->payload_hash);
    } else {
        op->read = read;
        op->read_arg = read_arg;
        call->body = BODY_STREAM;
        call->length = length;
        snprintf(call->payload_hash, sizeof call->payload_hash, "%s", SIGV4_UNSIGNED_PAYLOAD);
        if (length == 0) {
            sha_init(op);
            sha_final(op);
        }
    }
    return run_simple(op, call);
}

/* ---- put --------------------------------------------------------------------------- */

static void put_call_done(s3_call *call, const s3_error *err);

/* Starts the call for the put's current phase. */
static void put_send(s3_op *op, s3_call *call)
{
    call->finish = put_call_done;
    op->call = call;
    call_start(call);
}

static s3_call *put_object_call(s3_op *op)
{
    s3_call *call = call_new(op->c, op, S3_OP_PUT_OBJECT, "PUT", op->key);
    call->content_type = xstrdup(op->content_type);
    return call;
}

static s3_call *part_call(s3_op *op, unsigned number)
{
    s3_call *call = call_new(op->c, op, S3_OP_UPLOAD_PART, "PUT", op->key);
    query_uint(call, "partNumber", number);
    call_query(call, "uploadId", op->upload_id);
    return call;
}

static void add_part(s3_op *op, const char *etag)
{
    if (op->nparts == op->parts_cap) {
        op->parts_cap = op->parts_cap ? op->parts_cap * 2 : 16;
        op->parts = xrealloc(op->parts, op->parts_cap * sizeof *op->parts);
    }
    s3_part *p = &op->parts[op->nparts];
    p->number = (unsigned)op->nparts + 1;
    snprintf(p->etag, sizeof p->etag, "%s", etag);
    op->nparts++;
}

/* Sends the buffered part (unknown length) or the next streamed one. */
static void put_send_part(s3_op *op)
{
    s3_call *call = part_call(op, (unsigned)op->nparts + 1);
    if (op->data) {
        size_t left = op->data_len - op->data_off;
        call->body = BODY_MEM;
        call->mem = op->data + op->data_off;
        call->mem_len = left < op->part_size ? left : (size_t)op->part_size;
        op->data_off += call->mem_len;
        sha_hex_of(call->mem, call->mem_len, call->payload_hash);
    } else if (op->length < 0) {
        call->body = BODY_MEM;
        call->mem = op->buf;
        call->mem_len = op->buf_len;
        sha_hex_of(op->buf, op->buf_len, call->payload_hash);
    } else {
        uint64_t left = (uint64_t)op->length - op->total;
        call->body = BODY_STREAM;
        call->length = left < op->part_size ? left : op->part_size;
        snprintf(call->payload_hash, sizeof call->payload_hash, "%s", SIGV4_UNSIGNED_PAYLOAD);
    }
    op->phase = PUT_PART;
    put_send(op, call);
}

static void put_complete(s3_op *op)
{
    op->phase = PUT_COMPLETE;
    s3_call *call = complete_call(op->c, op, op->key, op->upload_id, op->parts, op->nparts);
    put_send(op, call);
}

static void put_call_done(s3_call *call, const s3_error *err)
{
    s3_op *op = call->op;
    s3_error e;
    if (err) {
        s3_error copy = *err;
        op_fail(op, &copy);
        return;
    }
    switch (op->phase) {
    case PUT_SINGLE:
        snprintf(op->res.etag, sizeof op->res.etag, "%s", call->info.etag);
        op->res.size = op->total;
        free(op->upload_id);
        op->upload_id = NULL;
        op_finish(op, NULL);
        return;
    case PUT_CREATE: {
        char id[1025];
        if (answer_upload_id(call, id, sizeof id, &e) < 0) {
            op_fail(op, &e);
            return;
        }
        op->upload_id = xstrdup(id);
        call_free(call);
        put_send_part(op);
        return;
    }
    case PUT_PART:
        add_part(op, call->info.etag);
        call_free(call);
        if (op->length < 0) {
            op->buf_len = 0;
            if (op->src_eof) {
                put_complete(op);
            } else {
                op->phase = PUT_FILL;
                put_fill(op);
            }
        } else if (op->data ? op->data_off < op->data_len : op->total < (uint64_t)op->length) {
            put_send_part(op);
        } else {
            put_complete(op);
        }
        return;
    case PUT_COMPLETE: {
        answer_etag(call, op->res.etag, sizeof op->res.etag);
        op->res.size = op->total;
        free(op->upload_id); /* complete: nothing to abort any more */
        op->upload_id = NULL;
        op_finish(op, NULL);
        return;
    }
    default: op_fail(op, NULL); return;
    }
}

/* Unknown length: reads the source into the part buffer, then sends it. */
static void put_fill(s3_op *op)
{
    s3_error e;
    while (op->buf_len < op->part_size && !op->src_eof) {
        ssize_t n =
            op->read(op->read_arg, op->buf + op->buf_len, (size_t)op->part_size - op->buf_len);
        if (n == S3_PAUSE) {
            op->waiting_read = 1;
            return; /* s3_op_resume continues */
        }
        if (n == 0) {
            op->src_eof = 1;
            break;
        }
        if (n < 0 || (uint64_t)n > op->part_size - op->buf_len) {
            set_err(&e, S3E_CLIENT, "aborted", "the body's source failed");
            e.retryable = 0;
            op_fail(op, &e);
            return;
        }
        sha_update(op, op->buf + op->buf_len, (size_t)n);
        op->buf_len += (size_t)n;
        op->total += (uint64_t)n;
        if (op->max_bytes && op->total > op->max_bytes) {
            set_err(&e, S3E_TOO_LARGE, "too_large", "the body is over %" PRIu64 " bytes",
                    op->max_bytes);
            e.retryable = 0;
            op_fail(op, &e);
            return;
        }
    }
    if (op->src_eof) {
        sha_final(op);
        if (!digest_ok(op, &e)) {
            op_fail(op, &e);
            return;
        }
    }
    if (op->src_eof && op->nparts == 0 && !op->upload_id) {
        /* the whole body fits in one part: one signed, replayable PUT */
        s3_call *call = put_object_call(op);
        call->body = BODY_MEM;
        call->mem = op->buf;
        call->mem_len = op->buf_len;
        snprintf(call->payload_hash, sizeof call->payload_hash, "%s", op->res.sha256);
        op->phase = PUT_SINGLE;
        put_send(op, call);
        return;
    }
    if (!op->upload_id) {
        op->phase = PUT_CREATE;
        put_send(op, create_multipart_call(op->c, op, op->key, op->content_type));
        return;
    }
    if (op->buf_len == 0 && op->src_eof) {
        put_complete(op); /* the body ended exactly at a part boundary */
        return;
    }
    put_send_part(op);
}

static void put_next(s3_op *op)
{
    if (op->data && op->data_len > op->c->cfg.multipart_threshold) {
        /* from memory in signed, replayable parts */
        op->total = op->data_len;
        op->phase = PUT_CREATE;
        put_send(op, create_multipart_call(op->c, op, op->key, op->content_type));
    } else if (op->data) {
        s3_call *call = put_object_call(op);
        call->body = BODY_MEM;
        call->mem = op->data;
        call->mem_len = op->data_len;
        snprintf(call->payload_hash, sizeof call->payload_hash, "%s", op->res.sha256);
        op->total = op->data_len;
        op->phase = PUT_SINGLE;
        put_send(op, call);
    } else if (op->length < 0) {
        op->buf = xmalloc((size_t)op->part_size);
        op->phase = PUT_FILL;
        /* the first fill runs from the loop: a body already here whole may
         * fail at once (too large, wrong digest), and the caller must hold
         * its op, its coroutine yielded, before it is told */
        op->waiting_read = 1;
        s3_op_resume(op);
    } else if ((uint64_t)op->length <= op->c->cfg.multipart_threshold) {
        s3_call *call = put_object_call(op);
        call->body = BODY_STREAM;
        call->length = (uint64_t)op->length;
        snprintf(call->payload_hash, sizeof call->payload_hash, "%s", SIGV4_UNSIGNED_PAYLOAD);
        op->phase = PUT_SINGLE;
        if (op->length == 0) {
            sha_final(op);
            s3_error e;
            if (!digest_ok(op, &e)) {
                call_free(call);
                op_finish_later(op, &e);
                return;
            }
        }
        put_send(op, call);
    } else {
        op->phase = PUT_CREATE;
        put_send(op, create_multipart_call(op->c, op, op->key, op->content_type));
    }
}

static int is_hex64(const char *s)
{
    if (strlen(s) != 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    return 1;
}

s3_op *s3_put(s3_client *c, const char *key, const s3_put_opts *o, s3_done_fn done, void *arg,
              s3_error *err)
{
    if (check_key(key, err) < 0)
        return NULL;
    if (o->sha256 && !is_hex64(o->sha256)) {
        set_err(err, S3E_INVALID, "invalid", "sha256 must be 64 lowercase hex digits");
        return NULL;
    }
    if (!o->data && !o->read) {
        set_err(err, S3E_INVALID, "invalid", "a put needs data or a read callback");
        return NULL;
    }
    const char *ct = o->content_type ? o->content_type : "application/octet-stream";
    if (strlen(ct) > 255 || strpbrk(ct, "\r\n")) {
        set_err(err, S3E_INVALID, "invalid", "bad content type");
        return NULL;
    }
    s3_op *op = op_new(c, S3_OP_PUT_OBJECT, key, done, arg);
    op->content_type = xstrdup(ct);
    op->max_bytes = o->max_bytes;
    if (o->sha256)
        snprintf(op->expect, sizeof op->expect, "%s", o->sha256);
    op->data = o->data;
    op->data_len = o->len;
    op->read = o->read;
    op->read_arg = o->read_arg;
    op->length = o->data ? (int64_t)o->len : o->length < 0 ? -1 : o->length;
    op->part_size = c->cfg.part_size;
    s3_error e;
    if (op->length >= 0) {
        op->part_size = s3_part_size_for((uint64_t)op->length, c->cfg.part_size);
        if (!op->part_size) {
            set_err(&e, S3E_TOO_LARGE, "too_large", "S3 objects are at most 5 TiB");
            op_finish_later(op, &e);
            return op;
        }
    }
    if (op->max_bytes && op->length >= 0 && (uint64_t)op->length > op->max_bytes) {
        set_err(&e, S3E_TOO_LARGE, "too_large", "the body is over %" PRIu64 " bytes",
                op->max_bytes);
        op_finish_later(op, &e);
        return op;
    }
    sha_init(op);
    if (op->data) {
        sha_update(op, op->data, op->data_len);
        sha_final(op);
        if (!digest_ok(op, &e)) {
            op_finish_later(op, &e);
            return op;
        }
    }
    put_next(op);
    return op;
}

/* ---- get ------------------------------------------------------------------------------- */

static void get_finish(s3_call *call, const s3_error *err)
{
    s3_op *op = call->op;
    if (err) {
        op_finish(op, err);
        return;
    }
    op->res.info = call->info;
    if (op->headers_delivered && op->pending_len == 0) {
        op_finish(op, NULL);
        return;
    }
    /* curl has the whole body, but the headers (an empty body) or the
     * last bytes have not reached the caller yet: they go first */
    op->finished = 1;
    op->failed = 0;
    if (!op->headers_delivered)
        op->headers_pending = 1;
    loop_timer_start(op->c->lp, &op->event_timer, 0);
}

s3_op *s3_get(s3_client *c, const char *key, const s3_range *range, s3_headers_fn on_headers,
              s3_write_fn write, s3_done_fn done, void *arg, s3_error *err)
{
    if (check_key(key, err) < 0)
        return NULL;
    if (range && range->first > range->last) {
        set_err(err, S3E_INVALID, "invalid", "range first is past last");
        return NULL;
    }
    s3_op *op = op_new(c, S3_OP_GET_OBJECT, key, done, arg);
    op->on_headers = on_headers;
    op->write = write;
    s3_call *call = call_new(c, op, S3_OP_GET_OBJECT, "GET", key);
    call->stream_response = 1;
    if (range) {
        if (range->last == UINT64_MAX)
            snprintf(call->range, sizeof call->range, "bytes=%" PRIu64 "-", range->first);
        else
            snprintf(call->range, sizeof call->range, "bytes=%" PRIu64 "-%" PRIu64, range->first,
                     range->last);
    }
    call->finish = get_finish;
    op->call = call;
    call_start(call);
    return op;
}

/* ---- the client ------------------------------------------------------------------------ */

static void probe_done(void *arg, const s3_result *res, const s3_error *err);

static void created_done(void *arg, const s3_result *res, const s3_error *err)
{
    s3_client *c = arg;
    (void)res;
    c->probe = NULL;
    if (err) {
        log_msg(LOG_ERROR, NULL, "s3: cannot create bucket %s: %s %s", c->cfg.bucket, err->code,
                err->message);
        mark_down(c, err);
        loop_timer_start(c->lp, &c->probe_timer, c->cfg.health_interval_ms);
        return;
    }
    log_msg(LOG_INFO, NULL, "s3: created bucket %s", c->cfg.bucket);
    loop_timer_start(c->lp, &c->probe_timer, 0);
}

static void probe_done(void *arg, const s3_result *res, const s3_error *err)
{
    s3_client *c = arg;
    (void)res;
    c->probe = NULL;
    if (err && err->kind == S3E_STORE && err->status == 404 && c->cfg.create_bucket &&
        !c->create_tried) {
        s3_error e;
        c->create_tried = 1;
        c->probe = s3_create_bucket(c, created_done, c, &e);
        return;
    }
    if (err)
        mark_down(c, err);
    else
        mark_up(c);
    loop_timer_start(c->lp, &c->probe_timer, c->cfg.health_interval_ms);
}

static void on_probe_timer(loop *lp, loop_timer *t)
{
    s3_client *c = t->data;
    uint64_t now = loop_clock_ms();
    if (c->probe) {
        /* the probe is overdue: the store is not answering */
        s3_error e;
        set_err(&e, S3E_TIMEOUT, "timeout", "the health probe got no answer within %u ms",
                c->cfg.health_timeout_ms);
        mark_down(c, &e);
        loop_timer_start(lp, t, c->cfg.health_interval_ms);
        return;
    }
    if (atomic_load(&c->up) && now - c->last_answer_ms < c->cfg.health_interval_ms) {
        loop_timer_start(lp, t, c->cfg.health_interval_ms - (now - c->last_answer_ms));
        return;
    }
    s3_error e;
    c->probe = s3_head_bucket(c, probe_done, c, &e);
    loop_timer_start(lp, t, c->cfg.health_timeout_ms);
}

s3_client *s3_client_create(loop *lp, const s3_config *cfg)
{
    s3_client *c = xcalloc(1, sizeof *c);
    c->lp = lp;
    c->cfg = *cfg;
    const char **fields[] = {&c->cfg.region, &c->cfg.access_key, &c->cfg.secret_key, &c->cfg.bucket,
                             &c->cfg.ca_file};
    for (size_t i = 0; i < 5; i++)
        if (*fields[i])
            *fields[i] = c->strs[i] = xstrdup(*fields[i]);
    if (c->cfg.attempts == 0)
        c->cfg.attempts = 1;
    if (c->cfg.part_size < S3_MIN_PART)
        c->cfg.part_size = S3_MIN_PART;
    if (!c->cfg.health_interval_ms)
        c->cfg.health_interval_ms = 2000;
    if (!c->cfg.health_timeout_ms)
        c->cfg.health_timeout_ms = 2000;
    c->multi = curl_multi_init();
    if (!c->multi)
        die("s3: curl_multi_init failed");
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer_update);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS,
                      (long)(cfg->max_connections ? cfg->max_connections : 16));
    loop_timer_init(&c->timer, on_curl_timer, c);
    loop_timer_init(&c->probe_timer, on_probe_timer, c);
    c->slot = -1;
    pthread_mutex_lock(&clients_mu);
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (!clients[i]) {
            clients[i] = c;
            c->slot = i;
            break;
        }
    pthread_mutex_unlock(&clients_mu);
    loop_timer_start(lp, &c->probe_timer, 0);
    return c;
}

int s3_client_up(const s3_client *c)
{
    return atomic_load(&c->up);
}

int s3_all_up(void)
{
    int up = 1;
    pthread_mutex_lock(&clients_mu);
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (clients[i] && !atomic_load(&clients[i]->up))
            up = 0;
    pthread_mutex_unlock(&clients_mu);
    return up;
}

void s3_client_destroy(s3_client *c, unsigned wait_ms)
{
    if (!c)
        return;
    pthread_mutex_lock(&clients_mu);
    if (c->slot >= 0)
        clients[c->slot] = NULL;
    pthread_mutex_unlock(&clients_mu);
    loop_timer_stop(c->lp, &c->probe_timer);
    if (c->probe) {
        s3_op_cancel(c->probe);
        c->probe = NULL;
    }
    /* ops still running belong to callers that are gone (threads stop
     * after their requests): no callback runs for them any more */
    for (s3_call *call = c->calls; call; call = call->next)
        if (call->op) {
            call->op->cancelled = 1;
        }
    uint64_t until = loop_clock_ms() + wait_ms;
    for (;;) {
        int background = 0;
        for (s3_call *call = c->calls; call; call = call->next)
            if (!call->op)
                background = 1;
        if (!background || loop_clock_ms() >= until)
            break;
        loop_run_once(c->lp, 20);
    }
    while (c->calls) {
        s3_call *call = c->calls;
        c->calls = call->next;
        call->linked = 0;
        s3_op *op = call->op;
        if (op)
            op->call = NULL;
        call_free(call);
        if (op)
            op_free(op);
    }
    loop_timer_stop(c->lp, &c->timer);
    curl_multi_cleanup(c->multi);
    for (size_t i = 0; i < 5; i++)
        free(c->strs[i]);
    free(c);
}
