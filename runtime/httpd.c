/*
 * httpd: libmicrohttpd driven from a worker's own epoll loop (worker.c).
 *
 * Request life cycle (see DESIGN.md section 2 for the libmicrohttpd rules
 * it follows): the first access-handler call only records the request and
 * checks the limits that the headers decide; body calls append to a
 * bounded buffer; the last call runs the handler synchronously. If the
 * handler yields, the connection is suspended and resumed when the
 * coroutine completes; the response is queued on the call that follows.
 */
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"

/* The parser fixes we rely on (README.md) exist from 1.0.1 on, with our
 * patches: never build against Debian 12's 0.9.75 header by mistake. */
#if MHD_VERSION < 0x01000100
#error "libmicrohttpd 1.0.1 or later is required: run .ci/build-mhd"
#endif
#include "metrics.h"
#include "tls.h"
#include "util.h"

#define IP_SLOTS 4096
#define SWEEP_MS 250
#define LOG_FLUSH_MS 200
#define LOG_FLUSH_BYTES 32768
#define DRAIN_MAX (8u << 20)

/* Connections per client address, shared by every worker; hashed slots
 * (a collision only makes the limit stricter for the two addresses). */
static atomic_uint ip_conns[IP_SLOTS];

typedef struct conn_state conn_state;
typedef struct hreq hreq;

struct httpd {
    unsigned index;
    const config *cfg;
    int listen_fd;
    int tls;
    loop *lp;
    struct MHD_Daemon *daemon;
    loop_io mhd_io;
    loop_timer sweep_timer;
    loop_timer flush_timer;
    int need_run;
    lhost_gen *gen; /* the generation new requests are routed on */
    metrics_worker *metrics;
    strbuf logbuf;
    uint64_t rng[2];
    conn_state *conns; /* every open connection, for the header timeout */
    hreq *reqs;        /* every request in flight, for the shutdown deadline */
    atomic_long in_flight;
    int draining; /* httpd_quiesce was called: accept nothing more */
};

/* One TCP connection (MHD socket context). */
struct conn_state {
    httpd *srv;
    int fd;
    unsigned ip_slot;
    int in_request;    /* headers of the current request are complete */
    int bad_escape;    /* the unescape callback saw malformed %-encoding or a NUL in the
                        * current request; check_headers consumes and clears it */
    uint64_t phase_ms; /* when the wait for the next header block began */
    uint64_t allow_ms; /* how long that wait may last */
    conn_state *prev, *next;
};

struct hreq {
    request r;
    httpd *srv;
    struct MHD_Connection *conn;
    conn_state *cs;
    lhost_gen *gen; /* generation the request was routed on */
    struct MHD_Response *resp;
    unsigned status;     /* status queued or to queue */
    unsigned err_status; /* a framing or limit error found in C */
    int err_close;       /* that error leaves the framing in doubt: close after the answer */
    const char *err_code;
    char err_msg[160];
    int suspended;
    int ran;
    int has_body;      /* Content-Length > 0 or Transfer-Encoding */
    int body_done;     /* the whole body arrived (the last access-handler call came) */
    loop_io hangup_io; /* the client socket, watched while suspended */
    int hangup_watched;
    hreq *prev, *next; /* the worker's requests in flight */
    loop_timer deadline;
    uint64_t bytes_in;
    uint64_t bytes_out;
    const char *route; /* template, valid while gen is referenced */
};

/* ---- small helpers ------------------------------------------------------------ */

static uint64_t rng_next(httpd *srv)
{
    /* xorshift128+: request ids need uniqueness, not secrecy */
    uint64_t s1 = srv->rng[0];
    const uint64_t s0 = srv->rng[1];
    srv->rng[0] = s0;
    s1 ^= s1 << 23;
    srv->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return srv->rng[1] + s0;
}

static int valid_request_id(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':'))
            return 0;
        if (n >= 64)
            return 0;
    }
    return n > 0;
}

static unsigned ip_slot(const struct sockaddr *sa)
{
    const unsigned char *p;
    size_t n;
    if (sa->sa_family == AF_INET6) {
        p = (const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
        n = 16;
    } else {
        p = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
        n = 4;
    }
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h % IP_SLOTS;
}

static void client_text(const struct sockaddr *sa, char *out, size_t n)
{
    if (!sa) {
        snprintf(out, n, "-");
        return;
    }
    if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)n);
    else if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)n);
    else
        snprintf(out, n, "-");
}

int httpd_listen(const config_addr *addr, const char *var, char *err, size_t errlen)
{
    int fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0) {
        snprintf(err, errlen, "%s: socket: %s", var, strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)&addr->ss, addr->len) < 0 || listen(fd, 1024) < 0) {
        snprintf(err, errlen, "%s: cannot listen on %s: %s", var, addr->text, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- access log and metrics --------------------------------------------------- */

static void flush_log(httpd *srv)
{
    if (srv->logbuf.len) {
        log_write(srv->logbuf.buf, srv->logbuf.len);
        strbuf_reset(&srv->logbuf);
    }
}

static void on_flush_timer(loop *lp, loop_timer *t)
{
    httpd *srv = t->data;
    flush_log(srv);
    loop_timer_start(lp, t, LOG_FLUSH_MS);
}

static void record(hreq *h)
{
    httpd *srv = h->srv;
    uint64_t us = loop_clock_us() - h->r.started_us;
    metrics_observe(srv->metrics, h->r.method, h->route, h->status, (double)us / 1e6);
    atomic_fetch_add_explicit(&metrics.bytes_in, h->bytes_in, memory_order_relaxed);
    atomic_fetch_add_explicit(&metrics.bytes_out, h->bytes_out, memory_order_relaxed);
    if (!srv->cfg->access_log)
        return;
    log_access_rec rec = {
        .request_id = h->r.request_id,
        .method = h->r.method,
        .route = h->route,
        .path = h->r.path ? h->r.path : "",
        .status = h->status,
        .duration_us = us,
        .bytes_in = h->bytes_in,
        .bytes_out = h->bytes_out,
        .client = h->r.client,
    };
    log_access_format(&srv->logbuf, &rec);
    if (srv->logbuf.len > LOG_FLUSH_BYTES)
        flush_log(srv);
}

/* ---- responses ---------------------------------------------------------------- */

/* Sets *arg when a response header is Content-Length. */
static void find_length(void *arg, const char *name, const char *value)
{
    (void)value;
    if (!strcasecmp(name, MHD_HTTP_HEADER_CONTENT_LENGTH))
        *(int *)arg = 1;
}

static void add_header(void *arg, const char *name, const char *value)
{
    MHD_add_response_header(arg, name, value);
}

static void finish_response(hreq *h, struct MHD_Response *resp, unsigned status, size_t body_len)
{
    MHD_add_response_header(resp, MHD_HTTP_HEADER_DATE, util_http_date());
    MHD_add_response_header(resp, "X-Request-ID", h->r.request_id);
    if (h->srv->draining)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    h->resp = resp;
    h->status = status;
    h->bytes_out = body_len;
}

static void make_error_response(hreq *h, unsigned status, const char *code, const char *msg,
                                const char *allow)
{
    strbuf sb;
    strbuf_init(&sb);
    lhost_error_body(&sb, code, msg, h->r.request_id);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sb.len, sb.buf, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        die("out of memory creating a response");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (h->err_close && !h->srv->draining)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    finish_response(h, resp, status, sb.len);
    strbuf_dispose(&sb);
}

/* A suspended connection is invisible to libmicrohttpd, so a client that
 * leaves would go unnoticed until the handler finished: watch the socket
 * for the peer's hang-up meanwhile and abort the request (releasing its
 * database connection, cancelling its wait) when it comes. */
static void on_hangup(loop *lp, loop_io *io, uint32_t events)
{
    hreq *h = io->data;
    (void)lp;
    (void)events;
    if (h->r.running)
        lhost_abort(&h->r, 499, "client_closed", "the client closed the connection");
}

static void watch_hangup(hreq *h)
{
    int fd = h->cs ? h->cs->fd : -1;
    if (fd >= 0 && loop_io_add(h->srv->lp, &h->hangup_io, fd, EPOLLRDHUP, on_hangup, h) == 0)
        h->hangup_watched = 1;
}

static void unwatch_hangup(hreq *h)
{
    if (h->hangup_watched) {
        loop_io_del(h->srv->lp, &h->hangup_io);
        h->hangup_watched = 0;
    }
}

/* lhost calls this when the handler finished (or was aborted). */
static void on_complete(request *r)
{
    hreq *h = r->owner;
    lhost_response res;
    lhost_result(r, &res);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(res.body_len, (void *)res.body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        die("out of memory creating a response");
    if (res.body_len == 0 && !strcmp(r->method, "HEAD")) {
        /* a HEAD answer that states its length (a file's size, known
         * without fetching the file) keeps it: libmicrohttpd would
         * otherwise send the empty buffer's 0 */
        int has_length = 0;
        lhost_result_headers(r, find_length, &has_length);
        if (has_length)
            MHD_set_response_options(resp, MHD_RF_HEAD_ONLY_RESPONSE, MHD_RO_END);
    }
    lhost_result_headers(r, add_header, resp);
    finish_response(h, resp, res.status, res.body_len);
    if (h->suspended) {
        loop_timer_stop(h->srv->lp, &h->deadline);
        unwatch_hangup(h);
        h->suspended = 0;
        MHD_resume_connection(h->conn);
        h->srv->need_run = 1;
    }
}

static enum MHD_Result queue(hreq *h)
{
    enum MHD_Result ret = MHD_queue_response(h->conn, h->status, h->resp);
    MHD_destroy_response(h->resp);
    h->resp = NULL;
    return ret;
}

static void on_deadline(loop *lp, loop_timer *t)
{
    hreq *h = t->data;
    char msg[96];
    (void)lp;
    snprintf(msg, sizeof msg, "the request did not finish within %u ms",
             h->srv->cfg->request_timeout_ms);
    lhost_abort(&h->r, 504, "deadline_exceeded", msg);
}

/* ---- request parsing checks ----------------------------------------------------- */

typedef struct header_scan {
    unsigned count;
    size_t bytes;
    unsigned content_lengths;
    const char *content_length;
    int cl_conflict;
    int has_te;
    int te_not_chunked;
    int bad_char;
    unsigned hosts;
    const char *request_id;
} header_scan;

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    header_scan *s = cls;
    (void)kind;
    s->count++;
    s->bytes += key_size + value_size + 4;
    /* libmicrohttpd keeps the real lengths: a shorter C string means a NUL */
    if (strlen(key) != key_size)
        s->bad_char = 1;
    if (!value)
        return MHD_YES;
    if (strlen(value) != value_size)
        s->bad_char = 1;
    for (const char *p = value; *p; p++)
        if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
            s->bad_char = 1;
    if (!strcasecmp(key, "Content-Length")) {
        if (s->content_lengths++ && strcmp(s->content_length, value) != 0)
            s->cl_conflict = 1;
        s->content_length = value;
    } else if (!strcasecmp(key, "Transfer-Encoding")) {
        s->has_te = 1;
        if (strcasecmp(value, "chunked") != 0)
            s->te_not_chunked = 1;
    } else if (!strcasecmp(key, "X-Request-ID")) {
        s->request_id = value;
    } else if (!strcasecmp(key, "Host")) {
        s->hosts++;
    }
    return MHD_YES;
}

static enum MHD_Result sum_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    size_t *n = cls;
    (void)kind;
    *n += strlen(key) + (value ? strlen(value) : 0) + 2;
    return MHD_YES;
}

static void set_error(hreq *h, unsigned status, const char *code, const char *msg)
{
    if (h->err_status)
        return;
    h->err_status = status;
    h->err_code = code;
    snprintf(h->err_msg, sizeof h->err_msg, "%s", msg);
}

/* Checks what the header block alone decides; sets h->err_* on a violation.
 * libmicrohttpd (discipline level 1) already refused malformed lines, a
 * missing Host and a malformed Content-Length; what it lets through and we
 * refuse here: two Host fields (RFC 9112 3.2: 400), a transfer coding on an
 * HTTP/1.0 request (RFC 9112 6.1: faulty framing, 400 and close), and the
 * configured limits. */
static void check_headers(hreq *h, const char *url, const char *version)
{
    const config *cfg = h->srv->cfg;
    header_scan s;
    memset(&s, 0, sizeof s);
    MHD_get_connection_values_n(h->conn, MHD_HEADER_KIND, scan_header, &s);
    h->has_body = s.has_te || (s.content_length && strcmp(s.content_length, "0") != 0);

    if (s.request_id && valid_request_id(s.request_id))
        snprintf(h->r.request_id, sizeof h->r.request_id, "%s", s.request_id);
    else {
        uint64_t id[2] = {rng_next(h->srv), rng_next(h->srv)};
        util_hex((const unsigned char *)id, sizeof id, h->r.request_id);
    }

    size_t line = strlen(url) + strlen(h->r.method) + 12;
    MHD_get_connection_values(h->conn, MHD_GET_ARGUMENT_KIND, sum_query, &line);
    if (line > cfg->max_request_line)
        set_error(h, 414, "uri_too_long", "the request line is longer than the limit");
    if (s.count > cfg->max_headers)
        set_error(h, 431, "too_many_headers", "the request has more header fields than allowed");
    if (s.bytes > cfg->max_header_bytes)
        set_error(h, 431, "headers_too_large", "the request header block is larger than allowed");
    if (s.bad_char)
        set_error(h, 400, "bad_header", "a header value contains a control character");
    if (s.hosts > 1)
        set_error(h, 400, "bad_host", "more than one Host header field");
    if (s.has_te && s.content_lengths)
        set_error(h, 400, "bad_framing", "Content-Length and Transfer-Encoding together");
    if (s.has_te && version && strcmp(version, MHD_HTTP_VERSION_1_0) == 0)
        set_error(h, 400, "bad_framing", "Transfer-Encoding in a request older than HTTP/1.1");
    if (s.te_not_chunked)
        set_error(h, 501, "not_implemented", "the only transfer coding accepted is chunked");
    if (s.cl_conflict)
        set_error(h, 400, "bad_framing", "conflicting Content-Length values");
    if (s.content_length) {
        uint64_t cl;
        if (config_parse_uint(s.content_length, 0, UINT64_MAX, 0, &cl) < 0)
            set_error(h, 400, "bad_framing", "Content-Length is not a non-negative integer");
    }
    if (h->cs && h->cs->bad_escape) {
        set_error(h, 400, "bad_path", "malformed percent-encoding in the request target");
        h->cs->bad_escape = 0; /* the next request on this connection starts clean */
    }
    if (url[0] != '/')
        set_error(h, 400, "bad_path", "the request target must be an absolute path");

    /* the client and a proxy in front may disagree on where this request ends */
    h->err_close = h->err_status == 400 &&
                   (!strcmp(h->err_code, "bad_host") || !strcmp(h->err_code, "bad_framing"));
    if (h->err_status)
        return;
    lhost_match(h->gen, &h->r);
    if (h->r.route_status == ROUTER_FOUND && s.content_length) {
        uint64_t cl = strtoull(s.content_length, NULL, 10);
        if (cl > h->r.body_limit)
            set_error(h, 413, "body_too_large",
                      h->r.body_limit ? "the body is larger than this route accepts"
                                      : "this route takes no request body");
    }
}

/* request.h callbacks: iterate MHD's header and query values */
typedef struct pair_iter {
    request_pair_fn fn;
    void *arg;
} pair_iter;

static enum MHD_Result pair_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    pair_iter *it = cls;
    (void)kind;
    it->fn(it->arg, key, value);
    return MHD_YES;
}

static void each_header(request *r, request_pair_fn fn, void *arg)
{
    hreq *h = r->owner;
    pair_iter it = {fn, arg};
    MHD_get_connection_values(h->conn, MHD_HEADER_KIND, pair_cb, &it);
}

static void each_query(request *r, request_pair_fn fn, void *arg)
{
    hreq *h = r->owner;
    pair_iter it = {fn, arg};
    MHD_get_connection_values(h->conn, MHD_GET_ARGUMENT_KIND, pair_cb, &it);
}

static hreq *hreq_create(httpd *srv, struct MHD_Connection *conn, const char *url,
                         const char *method)
{
    hreq *h = xcalloc(1, sizeof *h);
    h->srv = srv;
    h->conn = conn;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    h->cs = ci ? ci->socket_context : NULL;
    h->r.started_us = loop_clock_us();
    h->r.deadline_us = h->r.started_us + (uint64_t)srv->cfg->request_timeout_ms * 1000u;
    snprintf(h->r.method, sizeof h->r.method, "%s", method);
    h->r.path = xstrdup(url);
    strbuf_init(&h->r.body);
    strbuf_init(&h->r.err_body);
    h->r.owner = h;
    h->r.each_header = each_header;
    h->r.each_query = each_query;
    h->r.on_complete = on_complete;
    const union MHD_ConnectionInfo *ai =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    client_text(ai ? ai->client_addr : NULL, h->r.client, sizeof h->r.client);
    loop_timer_init(&h->deadline, on_deadline, h);
    h->gen = srv->gen;
    lhost_gen_ref(h->gen);
    if (strlen(method) >= sizeof h->r.method)
        set_error(h, 501, "not_implemented", "unknown method");
    return h;
}

static void hreq_destroy(hreq *h)
{
    if (h->resp)
        MHD_destroy_response(h->resp);
    loop_timer_stop(h->srv->lp, &h->deadline);
    unwatch_hangup(h);
    lhost_release(&h->r);
    free(h->r.path);
    strbuf_dispose(&h->r.body);
    strbuf_dispose(&h->r.err_body);
    lhost_gen_unref(h->gen);
    free(h);
}

/* ---- libmicrohttpd callbacks -------------------------------------------------- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req_cls)
{
    httpd *srv = cls;
    hreq *h = *req_cls;

    if (!h) {
        h = hreq_create(srv, conn, url, method);
        *req_cls = h;
        h->next = srv->reqs;
        if (srv->reqs)
            srv->reqs->prev = h;
        srv->reqs = h;
        atomic_fetch_add_explicit(&srv->in_flight, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&metrics.in_flight, 1, memory_order_relaxed);
        if (h->cs)
            h->cs->in_request = 1;
        check_headers(h, url, version);
        if (h->has_body && (h->err_status || h->r.route_status != ROUTER_FOUND)) {
            /* Decided from the headers, and a body follows: answer now.
             * libmicrohttpd then skips the body (no 100 Continue) and closes
             * the connection; it refuses a response queued mid-body. */
            if (h->err_status) {
                make_error_response(h, h->err_status, h->err_code, h->err_msg, NULL);
            } else {
                h->ran = 1;
                lhost_run(h->gen, &h->r); /* 404 and 405 never wait */
            }
            return queue(h);
        }
        /* otherwise queue on a later call: keep-alive survives (DESIGN.md 2) */
        return MHD_YES;
    }
    if (h->resp)
        return queue(h);
    if (h->suspended)
        return MHD_YES;

    if (*upload_size) {
        h->bytes_in += *upload_size;
        if (!h->err_status) {
            if (h->r.body.len + *upload_size > h->r.body_limit)
                set_error(h, 413, "body_too_large", "the body is larger than this route accepts");
            else
                strbuf_add(&h->r.body, upload, *upload_size);
        }
        *upload_size = 0;
        /* a chunked body over the limit is read and dropped so that the 413
         * can be sent at its end; past this much more, the connection goes */
        if (h->bytes_in > h->r.body_limit + DRAIN_MAX)
            return MHD_NO;
        return MHD_YES;
    }
    h->body_done = 1;

    if (h->err_status) {
        make_error_response(h, h->err_status, h->err_code, h->err_msg, NULL);
        return queue(h);
    }
    if (h->ran)
        return MHD_YES;
    h->ran = 1;
    if (lhost_run(h->gen, &h->r) == LHOST_DONE) {
        h->route = h->r.route_status == ROUTER_FOUND ? h->r.match.pattern : NULL;
        return queue(h);
    }
    h->route = h->r.route_status == ROUTER_FOUND ? h->r.match.pattern : NULL;
    h->suspended = 1;
    MHD_suspend_connection(conn);
    watch_hangup(h);
    loop_timer_start(srv->lp, &h->deadline, srv->cfg->request_timeout_ms);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    httpd *srv = cls;
    hreq *h = *req_cls;
    (void)conn;
    if (!h)
        return;
    *req_cls = NULL;
    if (h->r.running)
        lhost_abort(&h->r, 499, "client_closed", "the connection closed first");
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && h->status < 400)
        h->status = 499; /* the client did not get the whole response */
    record(h);
    if (h->cs) {
        h->cs->in_request = 0;
        h->cs->phase_ms = loop_clock_ms();
        h->cs->allow_ms = (uint64_t)srv->cfg->idle_timeout_ms + srv->cfg->header_timeout_ms;
    }
    if (h->prev)
        h->prev->next = h->next;
    else
        srv->reqs = h->next;
    if (h->next)
        h->next->prev = h->prev;
    atomic_fetch_sub_explicit(&srv->in_flight, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&metrics.in_flight, 1, memory_order_relaxed);
    hreq_destroy(h);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    httpd *srv = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_state *cs = xcalloc(1, sizeof *cs);
        /* libmicrohttpd 1.0 answers every query in the same union: read each
         * value before the next query overwrites it */
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        cs->fd = ci ? ci->connect_fd : -1;
        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        cs->ip_slot = ci ? ip_slot(ci->client_addr) : 0;
        cs->srv = srv;
        atomic_fetch_add(&ip_conns[cs->ip_slot], 1);
        cs->phase_ms = loop_clock_ms();
        cs->allow_ms = srv->cfg->header_timeout_ms;
        cs->next = srv->conns;
        if (srv->conns)
            srv->conns->prev = cs;
        srv->conns = cs;
        *socket_context = cs;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        conn_state *cs = *socket_context;
        if (!cs)
            return;
        atomic_fetch_sub(&ip_conns[cs->ip_slot], 1);
        if (cs->prev)
            cs->prev->next = cs->next;
        else
            srv->conns = cs->next;
        if (cs->next)
            cs->next->prev = cs->prev;
        free(cs);
        *socket_context = NULL;
    }
}

static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    httpd *srv = cls;
    (void)addrlen;
    if (srv->draining)
        return MHD_NO;
    if (atomic_load(&ip_conns[ip_slot(addr)]) >= srv->cfg->max_conns_per_ip) {
        atomic_fetch_add_explicit(&metrics.connections_rejected, 1, memory_order_relaxed);
        return MHD_NO;
    }
    return MHD_YES;
}

/* Strict %-decoding in place; a malformed escape or an encoded NUL marks
 * the connection so the request is answered 400. */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    int bad;
    size_t n = util_percent_decode(s, &bad);
    (void)cls;
    if (bad) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        if (ci && ci->socket_context)
            ((conn_state *)ci->socket_context)->bad_escape = 1;
    }
    return n;
}

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    (void)cls;
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    log_msg(LOG_DEBUG, NULL, "libmicrohttpd: %s", msg);
}

/* ---- driven by the worker loop ------------------------------------------------------- */

static void on_mhd_ready(loop *lp, loop_io *io, uint32_t events)
{
    httpd *srv = io->data;
    (void)lp;
    (void)events;
    srv->need_run = 1;
}

/* Cuts a request whose body arrives too slowly. libmicrohttpd accepts no
 * response while a body is being received, so on a plain connection the
 * 408 is written on the socket here: nothing else is being written to it
 * (the request has no response yet), so the answer is well framed. On TLS
 * the connection is only closed. Either way the socket is shut down and
 * libmicrohttpd closes the connection on its next run. */
static void cut_slow_body(hreq *h, uint64_t elapsed_ms)
{
    httpd *srv = h->srv;
    int fd = h->cs->fd;
    char msg[160];
    snprintf(msg, sizeof msg,
             "the request body arrived slower than %zu bytes/s (%llu bytes in %llu ms)",
             srv->cfg->min_rate, (unsigned long long)h->bytes_in, (unsigned long long)elapsed_ms);
    h->status = 408;
    if (!srv->tls) {
        strbuf body, out;
        strbuf_init(&body);
        strbuf_init(&out);
        lhost_error_body(&body, "body_too_slow", msg, h->r.request_id);
        strbuf_addf(&out,
                    "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                    "Content-Type: application/json\r\nDate: %s\r\nX-Request-ID: %s\r\n"
                    "Content-Length: %zu\r\n\r\n",
                    util_http_date(), h->r.request_id, body.len);
        strbuf_add(&out, body.buf, body.len);
        /* best effort: the send buffer is empty, a short write only loses the answer */
        if (send(fd, out.buf, out.len, MSG_NOSIGNAL | MSG_DONTWAIT) > 0)
            h->bytes_out = body.len;
        strbuf_dispose(&body);
        strbuf_dispose(&out);
    }
    shutdown(fd, SHUT_RDWR);
    h->cs->fd = -1;
    srv->need_run = 1;
    atomic_fetch_add_explicit(&metrics.slow_bodies, 1, memory_order_relaxed);
    log_msg(LOG_WARN, NULL, "request %s from %s cut: %s", h->r.request_id, h->r.client, msg);
}

/* A body must keep arriving at GLASGOW_MIN_RATE_BYTES_PER_S once the grace
 * period after its headers is over: by then at least rate x (elapsed - grace)
 * bytes must be in. A client trickling a byte a second, or one that stops
 * sending, would otherwise hold the connection (and its worker's slot) for
 * as long as it likes: each byte resets libmicrohttpd's idle timeout. */
static void check_body_rates(httpd *srv)
{
    const config *cfg = srv->cfg;
    if (!cfg->min_rate)
        return;
    uint64_t now_us = loop_clock_us();
    for (hreq *h = srv->reqs; h; h = h->next) {
        if (!h->has_body || h->body_done || h->status || !h->cs || h->cs->fd < 0)
            continue;
        uint64_t ms = (now_us - h->r.started_us) / 1000;
        if (ms <= cfg->min_rate_grace_ms)
            continue;
        if (h->bytes_in < (uint64_t)cfg->min_rate * (ms - cfg->min_rate_grace_ms) / 1000)
            cut_slow_body(h, ms);
    }
}

/* Closes connections that have not sent a whole header block in time
 * (slowloris); libmicrohttpd's own timeout only sees idleness. */
static void on_sweep(loop *lp, loop_timer *t)
{
    httpd *srv = t->data;
    uint64_t now = loop_now(lp);
    check_body_rates(srv);
    for (conn_state *cs = srv->conns; cs; cs = cs->next) {
        if (cs->in_request || cs->fd < 0)
            continue;
        if (now - cs->phase_ms > cs->allow_ms) {
            shutdown(cs->fd, SHUT_RDWR);
            cs->fd = -1;
            srv->need_run = 1;
            atomic_fetch_add_explicit(&metrics.header_timeouts, 1, memory_order_relaxed);
        }
    }
    loop_timer_start(lp, t, SWEEP_MS);
}

httpd *httpd_create(unsigned index, const config *cfg, loop *lp, int listen_fd, int tls,
                    lhost_gen *gen, char *err, size_t errlen)
{
    httpd *srv = xcalloc(1, sizeof *srv);
    srv->index = index;
    srv->cfg = cfg;
    srv->tls = tls;
    srv->gen = gen;
    srv->lp = lp;
    strbuf_init(&srv->logbuf);
    util_random_bytes(srv->rng, sizeof srv->rng);
    srv->metrics = metrics_worker_create();
    metrics_worker_register(srv->metrics);
    srv->listen_fd = dup(listen_fd);
    if (srv->listen_fd < 0) {
        snprintf(err, errlen, "worker %u: dup: %s", index, strerror(errno));
        return NULL;
    }
    /* libmicrohttpd zeroes a connection's pool for every request: size it
     * to the header limits plus room for the response headers, no more */
    size_t mem = cfg->max_header_bytes + cfg->max_request_line + 4096;
    /* the Date header comes from a per-second cache (finish_response), not
     * from a gmtime call per response inside libmicrohttpd */
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                     MHD_USE_SUPPRESS_DATE_NO_CLOCK;
    if (tls)
        flags |= MHD_USE_TLS;
    unsigned per_worker = cfg->max_connections / cfg->workers;
    /* one call for both: without TLS the option list ends before the
     * certificate options (libmicrohttpd stops reading at MHD_OPTION_END) */
    srv->daemon = MHD_start_daemon(
        flags, 0, on_accept, srv, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, srv,
        MHD_OPTION_LISTEN_SOCKET, srv->listen_fd, MHD_OPTION_CONNECTION_MEMORY_LIMIT, mem,
        MHD_OPTION_CONNECTION_LIMIT, per_worker ? per_worker : 1u, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)(cfg->idle_timeout_ms / 1000), MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv, MHD_OPTION_UNESCAPE_CALLBACK, unescape,
        srv, MHD_OPTION_CLIENT_DISCIPLINE_LVL, 1,
        tls ? MHD_OPTION_HTTPS_CERT_CALLBACK : MHD_OPTION_END, tls_retrieve,
        MHD_OPTION_HTTPS_PRIORITIES, TLS_PRIORITIES, MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(err, errlen, "worker %u: libmicrohttpd refused to start", index);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    if (!di || loop_io_add(srv->lp, &srv->mhd_io, di->epoll_fd, EPOLLIN, on_mhd_ready, srv) < 0) {
        snprintf(err, errlen, "worker %u: cannot watch libmicrohttpd's epoll descriptor", index);
        return NULL;
    }
    loop_timer_init(&srv->sweep_timer, on_sweep, srv);
    loop_timer_start(srv->lp, &srv->sweep_timer, SWEEP_MS);
    loop_timer_init(&srv->flush_timer, on_flush_timer, srv);
    loop_timer_start(srv->lp, &srv->flush_timer, LOG_FLUSH_MS);
    return srv;
}

void httpd_use_gen(httpd *srv, lhost_gen *gen)
{
    lhost_gen *old = srv->gen;
    srv->gen = gen;
    lhost_gen_unref(old); /* closed when its last request ends */
}

void httpd_need_run(httpd *srv)
{
    srv->need_run = 1;
}

int64_t httpd_next_wait(httpd *srv)
{
    MHD_UNSIGNED_LONG_LONG to;
    int64_t wait = -1;
    if (MHD_get_timeout(srv->daemon, &to) == MHD_YES)
        wait = (int64_t)(to > 60000 ? 60000 : to);
    if (srv->need_run)
        wait = 0;
    return wait;
}

void httpd_run(httpd *srv)
{
    srv->need_run = 0;
    MHD_run(srv->daemon);
}

void httpd_quiesce(httpd *srv)
{
    srv->draining = 1;
    MHD_socket sock = MHD_quiesce_daemon(srv->daemon);
    if (sock != MHD_INVALID_SOCKET)
        close(sock);
}

void httpd_shutdown(httpd *srv)
{
    /* The grace period is over: answer what still waits (libmicrohttpd
     * refuses to stop with suspended connections), give the answers a
     * moment to go out, then stop. */
    for (hreq *h = srv->reqs; h; h = h->next)
        if (h->suspended)
            lhost_abort(&h->r, 503, "shutting_down", "the server is shutting down");
    uint64_t flush_until = loop_clock_ms() + 200;
    while (loop_clock_ms() < flush_until) {
        MHD_run(srv->daemon);
        int any = 0;
        for (hreq *h = srv->reqs; h; h = h->next)
            any |= h->suspended;
        if (!any && atomic_load(&srv->in_flight) == 0)
            break;
        loop_run_once(srv->lp, 10);
    }
    flush_log(srv);
    MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
}

void httpd_flush_log(httpd *srv)
{
    flush_log(srv);
}

long httpd_in_flight(const httpd *srv)
{
    return atomic_load(&((httpd *)srv)->in_flight);
}

void httpd_destroy(httpd *srv)
{
    if (!srv)
        return;
    lhost_gen_unref(srv->gen);
    strbuf_dispose(&srv->logbuf);
    free(srv);
}
