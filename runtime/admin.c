#include "admin.h"

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "lhost.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "service.h"
#include "util.h"
#include "watchdog.h"

/*
 * Connection budget. A probe must get through however many connections
 * someone holds open, so a full listener never refuses the newcomer:
 * past ADMIN_MAX_CONNS live connections, each new one evicts the longest
 * idle (one that is not being answered right now; in practice every one,
 * as answers never wait). An idle connection costs its client nothing to
 * lose (it reconnects), while a refused probe restarts the pod. Idle
 * connections also close after ADMIN_IDLE_TIMEOUT_S. ADMIN_HARD_LIMIT only
 * bounds descriptors while evicted connections finish closing.
 */
#define ADMIN_MAX_CONNS 16
#define ADMIN_HARD_LIMIT 256u
#define ADMIN_IDLE_TIMEOUT_S 2u

/* One admin connection; all of this lives on the admin thread only. */
typedef struct admin_conn {
    int fd;           /* -1 once evicted */
    int busy;         /* a request is being answered */
    uint64_t idle_ms; /* when it last became idle */
    struct admin_conn *prev, *next;
} admin_conn;

static struct MHD_Daemon *admin_daemon;
static admin_conn *conns;
static unsigned live; /* connections in the list not yet evicted */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             const char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Answers status with the standard error body (lhost_error_body); the
 * admin listener has no request ids. */
static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *code,
                                   const char *message)
{
    strbuf sb;
    strbuf_init(&sb);
    lhost_error_body(&sb, code, message, NULL);
    enum MHD_Result ret = reply(c, status, "application/json", sb.buf, sb.len);
    strbuf_dispose(&sb);
    return ret;
}

/* What the framing headers say (libmicrohttpd lets these through; the
 * public listener refuses them in httpd.c's check_headers as well). */
typedef struct framing {
    const char *content_length;
    int conflict; /* two Content-Length values that differ */
    int te;       /* a Transfer-Encoding field */
} framing;

static enum MHD_Result scan_framing(void *cls, enum MHD_ValueKind kind, const char *name,
                                    const char *value)
{
    framing *f = cls;
    (void)kind;
    if (!name || !value)
        return MHD_YES;
    if (!strcasecmp(name, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
        if (f->content_length && strcmp(f->content_length, value) != 0)
            f->conflict = 1;
        f->content_length = value;
    } else if (!strcasecmp(name, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        f->te = 1;
    }
    return MHD_YES;
}

static enum MHD_Result on_admin(void *cls, struct MHD_Connection *c, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_size, void **req_cls)
{
    static int marker;
    (void)cls;
    (void)version;
    (void)upload;
    if (*req_cls == NULL) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        if (ci && ci->socket_context)
            ((admin_conn *)ci->socket_context)->busy = 1;
        *req_cls = &marker; /* queue on the second call (DESIGN.md 2) */
        /* where this request ends is ambiguous: answer now, and the
         * connection closes rather than read what follows as a request */
        framing f = {NULL, 0, 0};
        MHD_get_connection_values(c, MHD_HEADER_KIND, scan_framing, &f);
        if (f.conflict || (f.te && f.content_length))
            return reply_error(c, 400, "bad_framing",
                               f.conflict ? "conflicting Content-Length values"
                                          : "Content-Length and Transfer-Encoding together");
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0; /* admin endpoints take no body */
        return MHD_YES;
    }
    static const char json[] = "application/json";
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply_error(c, 405, "method_not_allowed", "use GET");
    if (!strcmp(url, "/livez")) {
        /* a thread stuck where the watchdog cannot stop it: restart us */
        if (watchdog_stuck_count() > 0) {
            char what[512];
            strbuf sb;
            watchdog_describe_stuck(what, sizeof what);
            strbuf_init(&sb);
            strbuf_adds(&sb, "{\"status\":\"stuck\",\"detail\":\"");
            strbuf_add_json_escaped(&sb, what, strlen(what));
            strbuf_adds(&sb, "\"}");
            enum MHD_Result ret = reply(c, 503, json, sb.buf, sb.len);
            strbuf_dispose(&sb);
            return ret;
        }
        static const char b[] = "{\"status\":\"ok\"}";
        return reply(c, 200, json, b, sizeof b - 1);
    }
    if (!strcmp(url, "/readyz")) {
        if (atomic_load(&metrics.draining)) {
            static const char b[] = "{\"status\":\"draining\"}";
            return reply(c, 503, json, b, sizeof b - 1);
        }
        const char *not_ready = services_not_ready();
        if (not_ready) {
            char b[160];
            int n = snprintf(b, sizeof b, "{\"status\":\"%s\"}", not_ready);
            return reply(c, 503, json, b, n > 0 && (size_t)n < sizeof b ? (size_t)n : 0);
        }
        static const char b[] = "{\"status\":\"ready\"}";
        return reply(c, 200, json, b, sizeof b - 1);
    }
    if (!strcmp(url, "/metrics")) {
        strbuf sb;
        strbuf_init(&sb);
        metrics_render(&sb);
        enum MHD_Result ret =
            reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", sb.buf, sb.len);
        strbuf_dispose(&sb);
        return ret;
    }
    return reply_error(c, 404, "not_found", "admin endpoints are /livez, /readyz and /metrics");
}

static void on_admin_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                               enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)req_cls;
    (void)toe;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (ci && ci->socket_context) {
        admin_conn *ac = ci->socket_context;
        ac->busy = 0;
        ac->idle_ms = loop_clock_ms();
    }
}

static void on_admin_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                                enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fi =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        admin_conn *ac = xcalloc(1, sizeof *ac);
        ac->fd = fi ? fi->connect_fd : -1;
        ac->idle_ms = loop_clock_ms();
        ac->next = conns;
        if (conns)
            conns->prev = ac;
        conns = ac;
        live++;
        *socket_context = ac;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        admin_conn *ac = *socket_context;
        if (ac->fd >= 0)
            live--;
        if (ac->prev)
            ac->prev->next = ac->next;
        else
            conns = ac->next;
        if (ac->next)
            ac->next->prev = ac->prev;
        free(ac);
        *socket_context = NULL;
    }
}

/* Makes room for a new connection by shutting down the longest-idle one;
 * libmicrohttpd sees the shutdown and closes it on its next round. */
static enum MHD_Result on_admin_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
    (void)cls;
    (void)addr;
    (void)len;
    while (live >= ADMIN_MAX_CONNS) {
        admin_conn *victim = NULL;
        for (admin_conn *ac = conns; ac; ac = ac->next)
            if (ac->fd >= 0 && !ac->busy && (!victim || ac->idle_ms < victim->idle_ms))
                victim = ac;
        if (!victim)
            break; /* all are being answered: let it wait for the hard limit */
        shutdown(victim->fd, SHUT_RDWR);
        victim->fd = -1;
        live--;
    }
    return MHD_YES;
}

int admin_start(int fd)
{
    admin_daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, on_admin_accept, NULL, on_admin, NULL,
        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_TIMEOUT, ADMIN_IDLE_TIMEOUT_S,
        MHD_OPTION_CONNECTION_LIMIT, ADMIN_HARD_LIMIT, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)16384, MHD_OPTION_NOTIFY_CONNECTION, on_admin_connection, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, on_admin_completed, NULL, MHD_OPTION_CLIENT_DISCIPLINE_LVL, 1,
        MHD_OPTION_END);
    return admin_daemon ? 0 : -1;
}

void admin_stop(void)
{
    if (admin_daemon)
        MHD_stop_daemon(admin_daemon);
    admin_daemon = NULL;
}
