#include "admin.h"

#include <microhttpd.h>
#include <stdatomic.h>
#include <string.h>

#include "log.h"
#include "lua_db.h"
#include "metrics.h"
#include "pgpool.h"
#include "util.h"
#include "watchdog.h"

static struct MHD_Daemon *admin_daemon;

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

static enum MHD_Result on_admin(void *cls, struct MHD_Connection *c, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_size, void **req_cls)
{
    static int marker;
    (void)cls;
    (void)version;
    (void)upload;
    if (*req_cls == NULL) {
        *req_cls = &marker; /* queue on the second call (DESIGN.md 2) */
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0; /* admin endpoints take no body */
        return MHD_YES;
    }
    static const char json[] = "application/json";
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        static const char b[] =
            "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"use GET\","
            "\"details\":null}}";
        return reply(c, 405, json, b, sizeof b - 1);
    }
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
        if (lua_db_enabled() && !pgpool_all_up()) {
            static const char b[] = "{\"status\":\"database unreachable\"}";
            return reply(c, 503, json, b, sizeof b - 1);
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
    static const char b[] = "{\"error\":{\"code\":\"not_found\",\"message\":\"admin endpoints are "
                            "/livez, /readyz and /metrics\",\"details\":null}}";
    return reply(c, 404, json, b, sizeof b - 1);
}

int admin_start(int fd)
{
    admin_daemon =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, on_admin,
                         NULL, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
                         MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                         (size_t)32768, MHD_OPTION_END);
    return admin_daemon ? 0 : -1;
}

void admin_stop(void)
{
    if (admin_daemon)
        MHD_stop_daemon(admin_daemon);
    admin_daemon = NULL;
}
