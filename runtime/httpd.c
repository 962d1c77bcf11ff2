/*
 * httpd: libmicrohttpd driven from a worker's own epoll loop (worker.c).
 *
 * Request life cycle (see DESIGN.md section 2 for the libmicrohttpd rules
 * it follows): the first access-handler call only records the request and
 * checks the limits that the headers decide; body calls append to a
 * bounded buffer; the last call runs the handler synchronously. If the
 * handler yields, the connection is suspended and resumed when the
 * coroutine completes; the response is queued on the call that follows.
 *
 * Streamed bodies (bodystream.h) change three things. A route declared
 * with body = "stream" runs its handler on the first call; body calls push
 * into the request's source and, when it is full, leave the rest in
 * libmicrohttpd's buffer and suspend (SUSP_BODY) until the handler reads.
 * A streamed response is a response from a callback that pulls from the
 * sink and suspends when it is empty (SUSP_SINK); libmicrohttpd accepts it
 * only once the whole request body is in, so it is queued on the last
 * call. Stream events (bytes taken or given, a notify armed, an end, an
 * error) only poke the request onto a ready list, processed after
 * MHD_run: resumes and notify callbacks never run inside libmicrohttpd or
 * inside a read or write. When the connection ends while a streamed
 * request's handler still runs, the request is detached: its streams fail
 * ("closed"), the handler runs on to its end (bounded by its deadline) and
 * the request is logged then.
 */
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bodystream.h"
#include "log.h"
#include "loop.h"

/* The parser fixes we rely on (README.md) exist from 1.0.1 on, with our
 * patches: never build against Debian 12's 0.9.75 header by mistake. */
#if MHD_VERSION < 0x01000100
#error "libmicrohttpd 1.0.1 or later is required: run .ci/build-mhd"
#endif
#include "metrics.h"
#include "netaddr.h"
#include "router.h"
#include "tls.h"
#include "util.h"

#define IP_SLOTS 4096
#define IP_SLOT_EXEMPT IP_SLOTS /* a trusted proxy's connection: not counted per address */
#define SWEEP_MS 250
#define LOG_FLUSH_MS 200
#define LOG_FLUSH_BYTES 32768
#define DRAIN_MAX (8u << 20)
#define EARLY_MAX 4096 /* largest answer send_early writes by hand */
/* a connection's memory pool beyond what its header phase may use */
#define BODY_READ_BYTES ((size_t)512 << 10)

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
    loop_timer hangup_timer; /* arms the hang-up watch of handlers still waiting */
    int need_run;
    lhost_gen *gen; /* the generation new requests are routed on */
    metrics_worker *metrics;
    strbuf logbuf;
    uint64_t rng[2];
    conn_state *conns; /* every open connection, for the header timeout */
    hreq *reqs;        /* every request in flight, for the shutdown deadline */
    hreq *ready;       /* requests whose streams changed (process_ready) */
    hreq *spare;       /* freed requests kept for the next ones (hreq_alloc) */
    unsigned nspare;
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
    char client[64];   /* the peer's address as text, formatted once per connection */
    char *route_path;  /* the current request's, from on_uri until hreq_create takes it */
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
    char peer[64];     /* the TCP peer when r.client came from X-Forwarded-For, else "" */

    /* streamed bodies */
    int64_t clen;                   /* declared Content-Length, -1 chunked */
    int streamed;                   /* body = "stream": the handler started on the headers */
    int susp_why;                   /* SUSP_* while suspended */
    body_source *source;            /* streamed routes */
    body_sink *sink;                /* once request_body_sink was called */
    struct MHD_Response *sink_resp; /* the sink's response until queued */
    unsigned sink_status;
    int sink_queued;
    int cut;               /* refuse further calls: libmicrohttpd closes the connection */
    int detached;          /* the connection ended while the handler ran */
    unsigned final_status; /* what the log says for a detached request */
    uint64_t drained;      /* body bytes discarded after the handler ended */
    int early_ready;       /* early holds the body of the buffered answer to a streamed
                            * request given before its body ended (send_early) */
    strbuf early;
    uint64_t rate_active_ms, rate_seen_ms; /* time spent waiting on the client */
    int in_ready;
    hreq *ready_next;
    loop_timer reap;
};

enum { SUSP_FINAL = 1, SUSP_BODY, SUSP_SINK };

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

static int trusted_peer(const httpd *srv, const struct sockaddr *sa)
{
    netaddr a;
    return srv->cfg->trusted_proxies.n && netaddr_from_sockaddr(sa, &a) == 0 &&
           netaddr_set_contains(&srv->cfg->trusted_proxies, &a);
}

/* The per-address counter a new connection from sa uses. */
static unsigned conn_slot(const httpd *srv, const struct sockaddr *sa)
{
    return trusted_peer(srv, sa) ? IP_SLOT_EXEMPT : ip_slot(sa);
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
        .peer = h->peer[0] ? h->peer : NULL,
    };
    log_access_format(&srv->logbuf, &rec);
    if (srv->logbuf.len > LOG_FLUSH_BYTES)
        flush_log(srv);
}

/* Declared (weak) by .ci/patches/libmicrohttpd/0010, which calls it just
 * before libmicrohttpd queues an error response of its own (malformed or
 * oversized request lines, header fields, Content-Length or chunk lines:
 * 400, 413, 414, 431, 505). Writes the request's id into request_id
 * (sent as X-Request-ID and in the body): the access handler's when it
 * already saw the request (on_completed then logs it, with this status),
 * else a fresh one made as check_headers makes one, logged here. A client's
 * X-Request-ID is not taken: the request was refused as malformed, and its
 * headers may not have been read. Other daemons (admin, tests) pass a NULL
 * closure and get nothing. */
void glasgow_mhd_error_response(void *notify_connection_cls, void *socket_context,
                                void *request_context, unsigned int status_code, char *request_id,
                                size_t request_id_size);

void glasgow_mhd_error_response(void *notify_connection_cls, void *socket_context,
                                void *request_context, unsigned int status_code, char *request_id,
                                size_t request_id_size)
{
    httpd *srv = notify_connection_cls;
    conn_state *cs = socket_context;
    hreq *h = request_context;
    if (!srv || !cs || cs->srv != srv)
        return;
    if (h) {
        snprintf(request_id, request_id_size, "%s", h->r.request_id);
        h->status = status_code;
        return;
    }
    char id[33]; /* 16 random bytes in hex, as check_headers makes them */
    uint64_t raw[2] = {rng_next(srv), rng_next(srv)};
    util_hex((const unsigned char *)raw, sizeof raw, id);
    snprintf(request_id, request_id_size, "%s", id);
    metrics_observe(srv->metrics, "-", NULL, status_code, 0.0);
    if (!srv->cfg->access_log)
        return;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char client[INET6_ADDRSTRLEN] = "-";
    memset(&ss, 0, sizeof ss);
    if (cs->fd >= 0 && getpeername(cs->fd, (struct sockaddr *)&ss, &len) == 0)
        client_text((const struct sockaddr *)&ss, client, sizeof client);
    log_access_rec rec = {.request_id = id, .status = status_code, .client = client};
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

static void standard_headers(hreq *h, struct MHD_Response *resp)
{
    MHD_add_response_header(resp, MHD_HTTP_HEADER_DATE, util_http_date());
    MHD_add_response_header(resp, "X-Request-ID", h->r.request_id);
    if (h->srv->draining)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
}

static void finish_response(hreq *h, struct MHD_Response *resp, unsigned status, size_t body_len)
{
    standard_headers(h, resp);
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
static void resume(hreq *h);
static void unwatch_hangup(hreq *h);
static void kick(hreq *h);

static void on_hangup(loop *lp, loop_io *io, uint32_t events)
{
    hreq *h = io->data;
    (void)lp;
    if (h->streamed || h->sink) {
        /* A peer that half-closed after sending its whole body has data
         * waiting: libmicrohttpd will read it, and the end, itself. */
        char c;
        if (!(events & (EPOLLHUP | EPOLLERR)) && h->susp_why == SUSP_BODY &&
            recv(io->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0) {
            unwatch_hangup(h);
            return;
        }
        /* let libmicrohttpd close it: the streams fail in on_completed */
        h->cut = 1;
        resume(h);
        return;
    }
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

/* A handler that waits (SUSP_FINAL) gets its hang-up watch only if it is
 * still waiting this long after it suspended: most waits (a query) end
 * sooner, and the watch costs two epoll_ctl calls per request. */
#define HANGUP_ARM_MS 20

static void suspend(hreq *h, int why)
{
    h->suspended = 1;
    h->susp_why = why;
    MHD_suspend_connection(h->conn);
    if (why != SUSP_FINAL)
        watch_hangup(h); /* a stream: at once (on_hangup tells its cases apart) */
    else if (!loop_timer_active(&h->srv->hangup_timer))
        loop_timer_start(h->srv->lp, &h->srv->hangup_timer, HANGUP_ARM_MS);
}

/* Watches the handlers that have been waiting since before the timer
 * started (and any that suspended since: they are watched a little early). */
static void on_hangup_timer(loop *lp, loop_timer *t)
{
    httpd *srv = t->data;
    (void)lp;
    for (hreq *h = srv->reqs; h; h = h->next)
        if (h->suspended && h->susp_why == SUSP_FINAL && !h->hangup_watched)
            watch_hangup(h);
}

static void resume(hreq *h)
{
    if (!h->suspended)
        return;
    unwatch_hangup(h);
    h->suspended = 0;
    h->susp_why = 0;
    MHD_resume_connection(h->conn);
    h->srv->need_run = 1;
}

/* A detached request's handler ended: log and free it from the loop (not
 * from inside lhost, which still uses r on the way out). */
static void schedule_reap(hreq *h)
{
    loop_timer_start(h->srv->lp, &h->reap, 0);
}

/* lhost calls this when the handler finished (or was aborted). */
static void on_complete(request *r)
{
    hreq *h = r->owner;
    lhost_response res;
    lhost_result(r, &res);
    loop_timer_stop(h->srv->lp, &h->deadline);
    if (h->sink) {
        if (!r->err_status && res.streamed) {
            body_sink_finish(h->sink); /* a no-op when the handler did */
        } else if (h->sink_resp && !h->detached) {
            /* nothing went out yet: answer the error instead */
            MHD_destroy_response(h->sink_resp);
            h->sink_resp = NULL;
            body_sink_set_error(h->sink, BODY_ERR_ABORTED);
            goto buffered;
        } else {
            body_sink_fail(h->sink);
            if (!h->detached)
                h->status = res.status; /* the log says why the body was cut */
        }
    }
    if (h->detached) {
        schedule_reap(h);
        return;
    }
    if (h->sink) {
        kick(h); /* a suspended stream goes on to its end or failure */
        return;
    }
buffered:
    if (h->detached) {
        schedule_reap(h);
        return;
    }
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
    if (h->streamed && !h->body_done && !h->srv->tls && res.body_len <= EARLY_MAX) {
        strbuf_add(&h->early, res.body, res.body_len);
        h->early_ready = 1;
    }
    /* the last call queues it; an unread body is drained first */
    resume(h);
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
    uint64_t now = loop_clock_us();
    if ((h->source && body_source_waiting(h->source)) || (h->sink && body_sink_waiting(h->sink))) {
        /* waiting on the client: the minimum rate and the idle timeout
         * govern that, not the deadline */
        h->r.deadline_us = now + h->r.deadline_period_us;
        loop_timer_start(lp, t, h->srv->cfg->request_timeout_ms);
        return;
    }
    if (h->r.deadline_us > now + 1000) { /* a streamed byte pushed it back */
        loop_timer_start(lp, t, (h->r.deadline_us - now) / 1000 + 1);
        return;
    }
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
    int bad_name;
    unsigned hosts;
    int bad_host;
    const char *request_id;
} header_scan;

/* Character classes, one table lookup per header byte (a bit test with two
 * range branches, and before that a strchr per byte, cost more per request
 * than any other check). Filled once by init_char_classes. */
enum {
    CC_TCHAR = 1,     /* RFC 9110 5.6.2 tchar: a field name's bytes */
    CC_CTL = 2,       /* not in a field value: controls but HTAB, and DEL */
    CC_REGNAME = 4,   /* RFC 3986 unreserved and sub-delims: a reg-name besides %XX */
    CC_HEX = 8,       /* HEXDIG */
    CC_IPLITERAL = 16 /* inside [...]: HEXDIG, ':' and '.' */
};
static unsigned char char_class[256];
static pthread_once_t char_class_once = PTHREAD_ONCE_INIT;

static void mark_chars(const char *chars, unsigned char bit)
{
    for (; *chars; chars++)
        char_class[(unsigned char)*chars] |= bit;
}

static void init_char_classes(void)
{
    static const char alnum[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    mark_chars(alnum, CC_TCHAR | CC_REGNAME);
    mark_chars("!#$%&'*+-.^_`|~", CC_TCHAR);
    mark_chars("-._~!$&'()*+,;=", CC_REGNAME);
    mark_chars("0123456789ABCDEFabcdef", CC_HEX | CC_IPLITERAL);
    mark_chars(":.", CC_IPLITERAL);
    for (int c = 0; c < 0x20; c++)
        if (c != '\t')
            char_class[c] |= CC_CTL;
    char_class[0x7f] |= CC_CTL;
}

static int is_hex(unsigned char c)
{
    return char_class[c] & CC_HEX;
}

/* A Host value is uri-host [ ":" port ] (RFC 9110 7.2, RFC 3986 3.2.2), or
 * empty: a reg-name of unreserved, sub-delims and %XX, or an IPv6 literal
 * in brackets (IPvFuture is refused); the port is digits. */
static int valid_host(const char *s)
{
    const char *p = s;
    if (*p == '[') {
        for (p++; *p && *p != ']'; p++)
            if (!(char_class[(unsigned char)*p] & CC_IPLITERAL))
                return 0;
        if (*p++ != ']')
            return 0;
    } else {
        while (*p && *p != ':') {
            if (*p == '%') {
                if (!is_hex((unsigned char)p[1]) || !is_hex((unsigned char)p[2]))
                    return 0;
                p += 3;
            } else if (char_class[(unsigned char)*p] & CC_REGNAME) {
                p++;
            } else {
                return 0;
            }
        }
    }
    if (*p == ':')
        for (p++; *p; p++)
            if (*p < '0' || *p > '9')
                return 0;
    return *p == '\0';
}

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    header_scan *s = cls;
    (void)kind;
    s->count++;
    s->bytes += key_size + value_size + 4;
    /* libmicrohttpd keeps the real lengths, so a NUL inside shows here: a
     * NUL is a bad character, otherwise a name that is no token (RFC 9110
     * 5.1) a bad name */
    unsigned all = CC_TCHAR;
    for (size_t i = 0; i < key_size; i++)
        all &= char_class[(unsigned char)key[i]];
    if (key_size == 0 || !all) {
        if (memchr(key, 0, key_size))
            s->bad_char = 1;
        else
            s->bad_name = 1;
    }
    if (!value)
        return MHD_YES;
    unsigned any = 0;
    for (size_t i = 0; i < value_size; i++)
        any |= char_class[(unsigned char)value[i]];
    if (any & CC_CTL) /* NUL included */
        s->bad_char = 1;
    /* the names compared by length first: most headers are none of these */
    if (key_size == 14 && !strcasecmp(key, "Content-Length")) {
        if (s->content_lengths++ && strcmp(s->content_length, value) != 0)
            s->cl_conflict = 1;
        s->content_length = value;
    } else if (key_size == 17 && !strcasecmp(key, "Transfer-Encoding")) {
        s->has_te = 1;
        if (strcasecmp(value, "chunked") != 0)
            s->te_not_chunked = 1;
    } else if (key_size == 12 && !strcasecmp(key, "X-Request-ID")) {
        s->request_id = value;
    } else if (key_size == 4 && !strcasecmp(key, "Host")) {
        s->hosts++;
        if (!valid_host(value))
            s->bad_host = 1;
    }
    return MHD_YES;
}

/* The query's share of the request line, and how many pairs it has. */
typedef struct query_sum {
    size_t line;
    unsigned pairs;
} query_sum;

static enum MHD_Result sum_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    query_sum *q = cls;
    (void)kind;
    q->line += strlen(key) + (value ? strlen(value) : 0) + 2;
    q->pairs++;
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

    query_sum q = {.line = strlen(url) + strlen(h->r.method) + 12, .pairs = 0};
    MHD_get_connection_values(h->conn, MHD_GET_ARGUMENT_KIND, sum_query, &q);
    h->r.nheaders = s.count;
    h->r.nquery = q.pairs;
    if (q.line > cfg->max_request_line)
        set_error(h, 414, "uri_too_long", "the request line is longer than the limit");
    if (s.count > cfg->max_headers)
        set_error(h, 431, "too_many_headers", "the request has more header fields than allowed");
    if (s.bytes > cfg->max_header_bytes)
        set_error(h, 431, "headers_too_large", "the request header block is larger than allowed");
    if (s.bad_char)
        set_error(h, 400, "bad_header", "a header value contains a control character");
    if (s.bad_name)
        set_error(h, 400, "bad_header", "a header name is not a token");
    if (s.hosts > 1)
        set_error(h, 400, "bad_host", "more than one Host header field");
    if (s.bad_host)
        set_error(h, 400, "bad_host", "the Host header is not a host name and port");
    if (s.has_te && s.content_lengths)
        set_error(h, 400, "bad_framing", "Content-Length and Transfer-Encoding together");
    if (s.has_te && version && strcmp(version, MHD_HTTP_VERSION_1_0) == 0)
        set_error(h, 400, "bad_framing", "Transfer-Encoding in a request older than HTTP/1.1");
    if (s.te_not_chunked)
        set_error(h, 501, "not_implemented", "the only transfer coding accepted is chunked");
    if (s.cl_conflict)
        set_error(h, 400, "bad_framing", "conflicting Content-Length values");
    h->clen = s.has_te ? -1 : 0;
    if (s.content_length) {
        uint64_t cl;
        if (config_parse_uint(s.content_length, 0, UINT64_MAX, 0, &cl) < 0)
            set_error(h, 400, "bad_framing", "Content-Length is not a non-negative integer");
        else
            h->clen = cl > INT64_MAX ? INT64_MAX : (int64_t)cl;
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

/* Whether a Content-Type value (the first field, NULL when none) may be JSON
 * for glasgow.app's check (is_json_type): its media type, before any ';' or
 * ',', names "json". A "no" here is a "no" there too; a "maybe" is left to
 * it, after the body. */
static int maybe_json_type(const char *ct)
{
    if (!ct)
        return 0;
    size_t n = strcspn(ct, ";,");
    for (size_t i = 0; i + 4 <= n; i++)
        if (!strncasecmp(ct + i, "json", 4))
            return 1;
    return 0;
}

/* A client that sent "Expect: 100-continue" waits for the go-ahead before
 * its body, and libmicrohttpd sends "100 Continue" when the first call of
 * the access handler returns without a response. check_headers already
 * refuses then what the headers decide (no route: 404, method: 405,
 * Content-Length over the route's limit: 413); this adds two refusals the
 * app makes only after the body: a Content-Type that cannot be JSON on a
 * route with a JSON body (415, glasgow.app), and no Authorization field on
 * a route declared auth = "bearer" (401, routes/_auth.lua's answer) unless
 * the query carries a token (the app answers that its own way). Only with
 * Expect: without it the body is already on its way, and reading it keeps
 * the connection open and the app's order of checks. */
static void check_expect(hreq *h)
{
    if (h->err_status || !h->has_body || h->r.route_status != ROUTER_FOUND)
        return;
    const char *expect = MHD_lookup_connection_value(h->conn, MHD_HEADER_KIND, "Expect");
    if (!expect || strcasecmp(expect, "100-continue") != 0)
        return;
    const char *content_type =
        MHD_lookup_connection_value(h->conn, MHD_HEADER_KIND, "Content-Type");
    if (h->r.wants_bearer &&
        !MHD_lookup_connection_value(h->conn, MHD_HEADER_KIND, "Authorization") &&
        !MHD_lookup_connection_value(h->conn, MHD_GET_ARGUMENT_KIND, "access_token") &&
        !MHD_lookup_connection_value(h->conn, MHD_GET_ARGUMENT_KIND, "token"))
        set_error(h, 401, "unauthenticated", "this endpoint needs a bearer token");
    else if (h->r.wants_json && !maybe_json_type(content_type))
        set_error(h, 415, "unsupported_media_type",
                  "the body must be JSON (Content-Type: application/json)");
}

/* ---- streamed bodies: the transport of bodystream.h ------------------------------ */

static void on_reap(loop *lp, loop_timer *t);

static void kick(hreq *h)
{
    if (h->in_ready)
        return;
    h->in_ready = 1;
    h->ready_next = h->srv->ready;
    h->srv->ready = h;
    h->srv->need_run = 1;
}

static void t_poke(void *owner)
{
    kick(owner);
}

static body_source *t_source(request *r)
{
    hreq *h = r->owner;
    return h->source;
}

/* The response callback of a streamed response (DESIGN.md section 5): it
 * returns 0 only together with a suspend, or libmicrohttpd spins. */
static ssize_t sink_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    hreq *h = cls;
    (void)pos;
    if (h->cut || !h->sink)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = body_sink_pull(h->sink, buf, max);
    if (n) {
        h->bytes_out += n;
        return (ssize_t)n;
    }
    int st = body_sink_state(h->sink);
    if (st < 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (st > 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    suspend(h, SUSP_SINK);
    return 0;
}

static body_sink *t_sink(request *r, unsigned status, int64_t content_length)
{
    hreq *h = r->owner;
    int head = !strcmp(r->method, "HEAD");
    h->sink = body_sink_create(r, h->r.streams, h, content_length, head);
    r->deadline_period_us = (uint64_t)h->srv->cfg->request_timeout_ms * 1000u;
    if (h->detached || h->cut || h->resp) {
        /* the client is gone, or an answer is already on its way */
        body_sink_set_error(h->sink, h->resp ? BODY_ERR_ABORTED : BODY_ERR_CLOSED);
        return h->sink;
    }
    struct MHD_Response *resp = MHD_create_response_from_callback(
        content_length >= 0 ? (uint64_t)content_length : MHD_SIZE_UNKNOWN, BODY_SINK_BLOCK,
        sink_reader, h, NULL);
    if (!resp)
        die("out of memory creating a response");
    const char *p = r->resp_headers.buf, *end = p + r->resp_headers.len;
    while (p && p < end) {
        const char *name = p, *value = p + strlen(p) + 1;
        MHD_add_response_header(resp, name, value);
        p = value + strlen(value) + 1;
    }
    standard_headers(h, resp);
    h->sink_resp = resp;
    h->sink_status = status;
    if (h->susp_why == SUSP_FINAL)
        resume(h); /* the last call queues it */
    return h->sink;
}

static const body_transport transport = {t_source, t_sink, t_poke};

static enum MHD_Result queue_sink(hreq *h)
{
    enum MHD_Result ret = MHD_queue_response(h->conn, h->sink_status, h->sink_resp);
    MHD_destroy_response(h->sink_resp);
    h->sink_resp = NULL;
    h->sink_queued = 1;
    h->status = h->sink_status;
    return ret;
}

/* Whether the handler is over (ran and returned, or was stopped). */
static int handler_done(const hreq *h)
{
    return h->ran && !h->r.running;
}

/* A failed streamed response: close the connection without completing it
 * (the close resets, dropping what the client has not taken yet). */
static void abandon(hreq *h)
{
    h->cut = 1;
    if (h->cs && h->cs->fd >= 0) {
        struct linger lg = {1, 0};
        setsockopt(h->cs->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        shutdown(h->cs->fd, SHUT_RDWR);
        h->cs->fd = -1;
    }
    h->srv->need_run = 1;
}

/* Whether a connection suspended for its stream can go on: the source has
 * room again (or nobody will read it), the sink has bytes or ended. */
static int can_move(const hreq *h)
{
    if (h->susp_why == SUSP_BODY)
        return body_source_buffered(h->source) < BODY_SRC_BYTES || body_source_done(h->source) ||
               handler_done(h);
    if (h->susp_why == SUSP_SINK)
        return body_sink_buffered(h->sink) > 0 || body_sink_state(h->sink) != 0;
    return 0;
}

/* Processes the requests whose streams changed: resumes what can move
 * again, then runs the notify callbacks that can make progress. */
static void process_ready(httpd *srv)
{
    hreq *h;
    while ((h = srv->ready) != NULL) {
        srv->ready = h->ready_next;
        h->in_ready = 0;
        if (h->suspended && can_move(h))
            resume(h);
        else if (!h->suspended && h->sink_queued && !h->detached && !h->cut &&
                 body_sink_state(h->sink) < 0)
            abandon(h); /* libmicrohttpd is busy writing: stop it there */
        /* either callback may end the handler; h stays until the loop reaps it */
        if (h->source)
            body_source_fire(h->source);
        if (h->sink)
            body_sink_fire(h->sink);
    }
}

static enum MHD_Result add_early_header(void *cls, enum MHD_ValueKind kind, const char *name,
                                        const char *value)
{
    (void)kind;
    if (strcasecmp(name, MHD_HTTP_HEADER_CONNECTION) != 0 &&
        strcasecmp(name, MHD_HTTP_HEADER_CONTENT_LENGTH) != 0)
        strbuf_addf(cls, "%s: %s\r\n", name, value);
    return MHD_YES;
}

/* libmicrohttpd sends an answer only before the body or after all of it.
 * When a streamed handler answered mid-body (the store failed, say) and
 * the rest is too large to drain, the connection is closed: write the
 * answer by hand first (a small buffered one, over plain HTTP), with
 * Connection: close, so that the client learns why. Best effort, like the
 * 408 of the minimum rate: the send buffer is empty. */
static void send_early(hreq *h)
{
    if (!h->early_ready || !h->resp || !h->cs || h->cs->fd < 0)
        return;
    const char *reason = MHD_get_reason_phrase_for(h->status);
    strbuf out;
    strbuf_init(&out);
    strbuf_addf(&out, "HTTP/1.1 %u %s\r\n", h->status, reason ? reason : "");
    MHD_get_response_headers(h->resp, add_early_header, &out);
    strbuf_addf(&out, "Connection: close\r\nContent-Length: %zu\r\n\r\n", h->early.len);
    strbuf_add(&out, h->early.buf, h->early.len);
    if (send(h->cs->fd, out.buf, out.len, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)out.len)
        shutdown(h->cs->fd, SHUT_WR);
    strbuf_dispose(&out);
}

/* A body call of a streamed route: into the source while it has room,
 * else leave the rest to libmicrohttpd and suspend until someone reads. */
static enum MHD_Result stream_body(hreq *h, const char *upload, size_t *upload_size)
{
    size_t n = *upload_size;
    if (handler_done(h) || body_source_done(h->source)) {
        /* nobody will read the rest: drain it so that the answer can go
         * out on this connection, up to a point; past it (or when the
         * declared rest is larger), answer by hand and close */
        h->bytes_in += n;
        h->drained += n;
        *upload_size = 0;
        int done = handler_done(h);
        if (h->drained > DRAIN_MAX ||
            (done && h->clen >= 0 && (uint64_t)h->clen > h->bytes_in + DRAIN_MAX)) {
            if (done)
                send_early(h);
            return MHD_NO;
        }
        return MHD_YES;
    }
    size_t k = body_source_push(h->source, upload, n);
    h->bytes_in += k;
    *upload_size = n - k;
    if (*upload_size)
        suspend(h, SUSP_BODY);
    return MHD_YES;
}

/* Starts the handler of a body = "stream" route on the headers. */
static void start_streamed(hreq *h)
{
    httpd *srv = h->srv;
    h->streamed = 1;
    h->source =
        body_source_create(&h->r, h->r.streams, h, h->has_body ? h->clen : 0, h->r.body_limit);
    if (!h->has_body)
        body_source_end(h->source);
    h->r.deadline_period_us = (uint64_t)srv->cfg->request_timeout_ms * 1000u;
    h->route = h->r.match.pattern;
    h->ran = 1;
    if (lhost_run(h->gen, &h->r) == LHOST_YIELDED)
        loop_timer_start(srv->lp, &h->deadline, srv->cfg->request_timeout_ms);
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

/* The X-Forwarded-For lines of a request, in order; n counts past the
 * array so that too many lines are seen as such. */
typedef struct xff_lines {
    const char *v[NETADDR_FORWARD_HEADERS + 1];
    size_t n;
} xff_lines;

static enum MHD_Result xff_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                              const char *value)
{
    xff_lines *l = cls;
    (void)kind;
    if (strcasecmp(key, "X-Forwarded-For") != 0)
        return MHD_YES;
    if (l->n < sizeof l->v / sizeof l->v[0])
        l->v[l->n] = value ? value : "";
    l->n++;
    return MHD_YES;
}

/* From a trusted proxy, the client is the address X-Forwarded-For names
 * (netaddr_forwarded); the peer's own text moves to h->peer for the access
 * log. Anything unreadable leaves the peer as the client. */
static void forwarded_client(hreq *h, const struct sockaddr *peer)
{
    if (!trusted_peer(h->srv, peer))
        return;
    xff_lines lines = {.n = 0};
    MHD_get_connection_values(h->conn, MHD_HEADER_KIND, xff_cb, &lines);
    const size_t cap = sizeof lines.v / sizeof lines.v[0];
    netaddr client;
    if (netaddr_forwarded(&h->srv->cfg->trusted_proxies, lines.v, lines.n < cap ? lines.n : cap,
                          &client) != 1)
        return;
    memcpy(h->peer, h->r.client, sizeof h->peer);
    netaddr_format(&client, h->r.client, sizeof h->r.client);
}

/* A request's state is about 1.5 KiB: above what glibc keeps in its
 * per-thread caches, so each malloc and free of one went through the
 * general allocator (and consolidated its fast bins) on every request. A
 * few freed ones are kept per worker instead. Sanitizer builds free them
 * at once, so that a use after free is still caught. */
#if defined(__SANITIZE_ADDRESS__)
#define HREQ_SPARE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HREQ_SPARE 0
#endif
#endif
#ifndef HREQ_SPARE
#define HREQ_SPARE 32
#endif

static hreq *hreq_alloc(httpd *srv)
{
    hreq *h = srv->spare;
    if (!h)
        return xcalloc(1, sizeof *h);
    srv->spare = h->next;
    srv->nspare--;
    memset(h, 0, sizeof *h);
    return h;
}

static void hreq_free(httpd *srv, hreq *h)
{
#if HREQ_SPARE == 0
    (void)srv;
#else
    if (srv->nspare < HREQ_SPARE) {
        h->next = srv->spare;
        srv->spare = h;
        srv->nspare++;
        return;
    }
#endif
    free(h);
}

static hreq *hreq_create(httpd *srv, struct MHD_Connection *conn, const char *url,
                         const char *method)
{
    hreq *h = hreq_alloc(srv);
    h->srv = srv;
    h->conn = conn;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    h->cs = ci ? ci->socket_context : NULL;
    h->r.started_us = loop_clock_us();
    h->rate_seen_ms = h->r.started_us / 1000;
    h->r.deadline_us = h->r.started_us + (uint64_t)srv->cfg->request_timeout_ms * 1000u;
    size_t method_len = strlen(method);
    memcpy(h->r.method, method,
           method_len < sizeof h->r.method ? method_len : sizeof h->r.method - 1);
    h->r.path = xstrdup(url);
    if (h->cs) {
        h->r.route_path = h->cs->route_path;
        h->cs->route_path = NULL;
    }
    strbuf_init(&h->r.body);
    strbuf_init(&h->r.err_body);
    h->r.owner = h;
    h->r.each_header = each_header;
    h->r.each_query = each_query;
    h->r.on_complete = on_complete;
    h->r.streams = &transport;
    loop_timer_init(&h->reap, on_reap, h);
    if (h->cs) {
        /* the peer's text is the connection's; only a trusted proxy's
         * requests (conn_slot exempts exactly those) name another client */
        _Static_assert(sizeof h->r.client == sizeof h->cs->client, "client text sizes");
        memcpy(h->r.client, h->cs->client, sizeof h->r.client);
        if (h->cs->ip_slot == IP_SLOT_EXEMPT) {
            const union MHD_ConnectionInfo *ai =
                MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
            forwarded_client(h, ai ? ai->client_addr : NULL);
        }
    } else {
        const union MHD_ConnectionInfo *ai =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        client_text(ai ? ai->client_addr : NULL, h->r.client, sizeof h->r.client);
        forwarded_client(h, ai ? ai->client_addr : NULL);
    }
    loop_timer_init(&h->deadline, on_deadline, h);
    h->gen = srv->gen;
    lhost_gen_ref(h->gen);
    if (method_len >= sizeof h->r.method)
        set_error(h, 501, "not_implemented", "unknown method");
    return h;
}

static void hreq_destroy(hreq *h)
{
    if (h->resp)
        MHD_destroy_response(h->resp);
    if (h->sink_resp)
        MHD_destroy_response(h->sink_resp);
    loop_timer_stop(h->srv->lp, &h->deadline);
    loop_timer_stop(h->srv->lp, &h->reap);
    unwatch_hangup(h);
    lhost_release(&h->r);
    if (h->in_ready) {
        hreq **pp = &h->srv->ready;
        while (*pp != h)
            pp = &(*pp)->ready_next;
        *pp = h->ready_next;
    }
    body_source_free(h->source);
    body_sink_free(h->sink);
    free(h->r.path);
    free(h->r.route_path);
    strbuf_dispose(&h->r.body);
    strbuf_dispose(&h->r.err_body);
    strbuf_dispose(&h->r.resp_headers);
    strbuf_dispose(&h->early);
    lhost_gen_unref(h->gen);
    hreq_free(h->srv, h);
}

/* Takes h off the worker's list of requests in flight, logs it and frees it. */
static void hreq_finish(hreq *h)
{
    httpd *srv = h->srv;
    record(h);
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

static void on_reap(loop *lp, loop_timer *t)
{
    hreq *h = t->data;
    (void)lp;
    if (h->r.running) /* not done after all (cannot happen): wait for it */
        return;
    h->status = h->final_status;
    hreq_finish(h);
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
        check_expect(h);
        if (h->has_body && (h->err_status || h->r.route_status != ROUTER_FOUND)) {
            /* Decided from the headers, and a body follows: answer now.
             * libmicrohttpd then skips the body (no 100 Continue) and closes
             * the connection; it refuses a response queued mid-body. */
            if (h->err_status) {
                make_error_response(h, h->err_status, h->err_code, h->err_msg, NULL);
                if (h->err_status == 401)
                    MHD_add_response_header(h->resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                            "Bearer realm=\"glasgow\"");
            } else {
                h->ran = 1;
                lhost_run(h->gen, &h->r); /* 404 and 405 never wait */
            }
            return queue(h);
        }
        if (h->r.body_stream && !h->err_status) {
            start_streamed(h);
            /* answered on the headers alone, before any of its body: like a
             * limit, answer now (libmicrohttpd then skips the body, sends no
             * 100 Continue, and closes) rather than drain the body first */
            if (h->has_body && handler_done(h) && (h->resp || h->sink_resp))
                return h->resp ? queue(h) : queue_sink(h);
        }
        /* otherwise queue on a later call: keep-alive survives (DESIGN.md 2) */
        return MHD_YES;
    }
    if (h->cut)
        return MHD_NO;
    if (h->suspended)
        return MHD_YES;
    if (*upload_size && h->streamed)
        return stream_body(h, upload, upload_size);
    if (h->resp)
        return queue(h);

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

    if (h->streamed) {
        body_source_end(h->source);
        if (h->sink_resp)
            return queue_sink(h);
        if (h->sink_queued || handler_done(h))
            return MHD_YES; /* cannot happen: queued, or on_complete set resp */
        suspend(h, SUSP_FINAL);
        return MHD_YES;
    }
    if (h->err_status) {
        make_error_response(h, h->err_status, h->err_code, h->err_msg, NULL);
        return queue(h);
    }
    if (h->ran) {
        /* a handler that waited, then started a streamed response: its
         * sink resumed the connection to be queued here */
        if (h->sink_resp)
            return queue_sink(h);
        return MHD_YES;
    }
    h->ran = 1;
    if (lhost_run(h->gen, &h->r) == LHOST_DONE) {
        h->route = h->r.route_status == ROUTER_FOUND ? h->r.match.pattern : NULL;
        if (h->sink_resp)
            return queue_sink(h);
        return queue(h);
    }
    h->route = h->r.route_status == ROUTER_FOUND ? h->r.match.pattern : NULL;
    loop_timer_start(srv->lp, &h->deadline, srv->cfg->request_timeout_ms);
    if (h->sink_resp)
        return queue_sink(h); /* a streamed response, started before the first yield */
    suspend(h, SUSP_FINAL);
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
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && h->status < 400)
        h->status = 499; /* the client did not get the whole response */
    if (h->cs) {
        h->cs->in_request = 0;
        h->cs->phase_ms = loop_clock_ms();
        h->cs->allow_ms = (uint64_t)srv->cfg->idle_timeout_ms + srv->cfg->header_timeout_ms;
    }
    if (h->streamed || h->sink) {
        const char *err = toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED   ? BODY_ERR_TIMEOUT
                          : toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN ? BODY_ERR_ABORTED
                                                                          : BODY_ERR_CLOSED;
        if (h->cut == 2)
            err = BODY_ERR_TIMEOUT; /* cut for the minimum rate */
        if (h->source)
            body_source_fail(h->source, err); /* a no-op once it ended */
        if (h->sink && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
            body_sink_set_error(h->sink, err);
        if (h->r.running) {
            /* the handler sees the failure and runs on to its end */
            h->detached = 1;
            h->final_status = h->status;
            h->conn = NULL;
            h->cs = NULL;
            h->suspended = 0;
            unwatch_hangup(h);
            kick(h);
            return;
        }
    }
    if (h->r.running)
        lhost_abort(&h->r, 499, "client_closed", "the connection closed first");
    hreq_finish(h);
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
        cs->ip_slot = ci ? conn_slot(srv, ci->client_addr) : 0;
        client_text(ci ? ci->client_addr : NULL, cs->client, sizeof cs->client);
        cs->srv = srv;
        if (cs->ip_slot != IP_SLOT_EXEMPT)
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
        if (cs->ip_slot != IP_SLOT_EXEMPT)
            atomic_fetch_sub(&ip_conns[cs->ip_slot], 1);
        if (cs->prev)
            cs->prev->next = cs->next;
        else
            srv->conns = cs->next;
        if (cs->next)
            cs->next->prev = cs->prev;
        free(cs->route_path);
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
    /* Decided before any header arrives: a trusted proxy carries many
     * clients on its connections, so it is not limited per address (its
     * own limits apply per client; README, trusted proxies). */
    if (!trusted_peer(srv, addr) &&
        atomic_load(&ip_conns[ip_slot(addr)]) >= srv->cfg->max_conns_per_ip) {
        atomic_fetch_add_explicit(&metrics.connections_rejected, 1, memory_order_relaxed);
        return MHD_NO;
    }
    return MHD_YES;
}

/* libmicrohttpd's view of the request target before it decodes it: keeps
 * the path as sent, for the router (an encoded '/' stays inside its
 * segment: router_path_of_target), in the connection's state until
 * hreq_create takes it. NULL there (a malformed escape: the request gets a
 * 400 anyway) routes on the decoded path. Returns no request context. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_state *cs = ci ? ci->socket_context : NULL;
    (void)cls;
    if (cs) {
        free(cs->route_path);
        cs->route_path = router_path_of_target(uri, strcspn(uri, "?"));
    }
    return NULL;
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
    /* a streamed response already started: no answer can be written */
    int answer = !h->sink_queued && !h->resp;
    uint64_t moved = answer ? h->bytes_in : h->bytes_in + h->bytes_out;
    snprintf(msg, sizeof msg, "the %s slower than %zu bytes/s (%llu bytes in %llu ms)",
             answer ? "request body arrived" : "response body was taken", srv->cfg->min_rate,
             (unsigned long long)moved, (unsigned long long)elapsed_ms);
    h->status = 408;
    if (h->streamed || h->sink) {
        h->cut = 2;
        if (h->source)
            body_source_fail(h->source, BODY_ERR_TIMEOUT);
        if (h->sink)
            body_sink_set_error(h->sink, BODY_ERR_TIMEOUT);
        resume(h);
    }
    if (!answer) {
        /* drop what the client has not taken: the close resets */
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    if (!srv->tls && answer) {
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

/* A streamed transfer: the same rule, counted over the time the server
 * waits on the client (bytes to read or to send, the connection not
 * suspended), sampled at each sweep; a client cut here fails the streams
 * with "timeout". */
static void check_stream_rate(hreq *h, uint64_t now_ms)
{
    const config *cfg = h->srv->cfg;
    if (h->detached || h->cut || !h->cs || h->cs->fd < 0)
        return;
    int receiving =
        h->has_body && !h->body_done && !handler_done(h) && !body_source_done(h->source);
    int sending = h->sink_queued && body_sink_state(h->sink) == 0;
    if (!h->suspended && (receiving || sending))
        h->rate_active_ms += now_ms - h->rate_seen_ms;
    h->rate_seen_ms = now_ms;
    uint64_t active = h->rate_active_ms;
    if (active <= cfg->min_rate_grace_ms)
        return;
    /* what the client took: the kernel's send queue can hold megabytes
     * the client never acknowledged */
    uint64_t moved = h->bytes_in + h->bytes_out;
    int unsent = 0;
    if (sending && ioctl(h->cs->fd, SIOCOUTQ, &unsent) == 0 && unsent > 0)
        moved -= (uint64_t)unsent < moved ? (uint64_t)unsent : moved;
    if (moved < (uint64_t)cfg->min_rate * (active - cfg->min_rate_grace_ms) / 1000)
        cut_slow_body(h, active);
}

/* A client that left mid-body, when libmicrohttpd had read its last bytes
 * and the end in one go and the last piece fitted in the stream (so nothing
 * was suspended, and no hang-up watched), leaves no event behind:
 * libmicrohttpd waits for data that cannot come, the handler for the rest
 * of the body. The socket says so, at its end and empty: cut the request
 * (the streams fail with "closed"). Returns whether it did. */
static int stream_client_gone(hreq *h)
{
    char c;
    if (h->detached || h->cut || !h->cs || h->cs->fd < 0 || h->suspended || !h->has_body ||
        h->body_done || handler_done(h) || body_source_done(h->source) ||
        recv(h->cs->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) != 0)
        return 0;
    h->cut = 1;
    body_source_fail(h->source, BODY_ERR_CLOSED);
    shutdown(h->cs->fd, SHUT_RDWR); /* libmicrohttpd closes it on its next run */
    h->cs->fd = -1;
    h->srv->need_run = 1;
    return 1;
}

/* A body must keep arriving at GLASGOW_MIN_RATE_BYTES_PER_S once the grace
 * period after its headers is over: by then at least rate x (elapsed - grace)
 * bytes must be in. A client trickling a byte a second, or one that stops
 * sending, would otherwise hold the connection (and its worker's slot) for
 * as long as it likes: each byte resets libmicrohttpd's idle timeout. */
static void check_body_rates(httpd *srv)
{
    const config *cfg = srv->cfg;
    uint64_t now_us = loop_clock_us();
    for (hreq *h = srv->reqs; h; h = h->next) {
        if (h->streamed || h->sink) {
            if (!stream_client_gone(h) && cfg->min_rate)
                check_stream_rate(h, now_us / 1000);
            continue;
        }
        if (!cfg->min_rate || !h->has_body || h->body_done || h->status || !h->cs || h->cs->fd < 0)
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
    pthread_once(&char_class_once, init_char_classes);
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
    /* A connection's pool: until its header block is in, a request may use
     * the header limits plus room for the response headers, no more
     * (MHD_OPTION_CONNECTION_HEADER_MEMORY_LIMIT, our patch 0005); then
     * its body's read buffer grows into BODY_READ_BYTES more (towards half
     * the pool), so that an upload arrives in pieces of up to about 264
     * KiB rather than 8 KiB (an event-loop turn and a recv each; on a
     * loaded machine each turn also waits for a CPU). The reply
     * gets the header part back only (patch 0015), so a small request
     * touches the pages it touched with a header-size pool. Such a pool is
     * mmapped: pages a request does not use are never touched, and a
     * body's are given back when the request ends. */
    size_t hdr_mem = cfg->max_header_bytes + cfg->max_request_line + 4096;
    long page = sysconf(_SC_PAGESIZE);
    if (page > 0)
        hdr_mem = (hdr_mem + (size_t)page - 1) / (size_t)page * (size_t)page;
    size_t mem = hdr_mem + BODY_READ_BYTES;
    /* the Date header comes from a per-second cache (finish_response), not
     * from a gmtime call per response inside libmicrohttpd */
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                     MHD_USE_SUPPRESS_DATE_NO_CLOCK;
    /* only this worker's thread calls libmicrohttpd for this daemon (it is
     * made before the thread starts): no inter-thread channel, and no lock
     * per request on the timeout list (our patch 0016) */
    flags |= MHD_USE_NO_THREAD_SAFETY;
    if (tls)
        flags |= MHD_USE_TLS;
    unsigned per_worker = cfg->max_connections / cfg->workers;
    /* one call for both: without TLS the option list ends before the
     * certificate options (libmicrohttpd stops reading at MHD_OPTION_END) */
    srv->daemon = MHD_start_daemon(
        flags, 0, on_accept, srv, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, srv,
        MHD_OPTION_LISTEN_SOCKET, srv->listen_fd, MHD_OPTION_CONNECTION_MEMORY_LIMIT, mem,
        MHD_OPTION_CONNECTION_HEADER_MEMORY_LIMIT, hdr_mem, MHD_OPTION_CONNECTION_LIMIT,
        per_worker ? per_worker : 1u, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)(cfg->idle_timeout_ms / 1000), MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv, MHD_OPTION_UNESCAPE_CALLBACK, unescape,
        srv, MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv, MHD_OPTION_CLIENT_DISCIPLINE_LVL, 1,
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
    loop_timer_init(&srv->hangup_timer, on_hangup_timer, srv);
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
    process_ready(srv);
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
        if (h->suspended || h->r.running)
            lhost_abort(&h->r, 503, "shutting_down", "the server is shutting down");
    process_ready(srv);
    for (hreq *h = srv->reqs; h; h = h->next)
        if (h->suspended) { /* a stream with nothing left to give */
            h->cut = 1;
            resume(h);
        }
    uint64_t flush_until = loop_clock_ms() + 200;
    while (loop_clock_ms() < flush_until) {
        MHD_run(srv->daemon);
        process_ready(srv);
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
    /* detached requests whose reap did not come yet */
    hreq *next;
    for (hreq *h = srv->reqs; h; h = next) {
        next = h->next;
        if (h->r.running)
            lhost_abort(&h->r, 503, "shutting_down", "the server is shutting down");
        if (h->detached)
            h->status = h->final_status;
        hreq_finish(h);
    }
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
    while (srv->spare) {
        hreq *h = srv->spare;
        srv->spare = h->next;
        free(h);
    }
    free(srv);
}
