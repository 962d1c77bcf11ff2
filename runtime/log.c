#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int log_min_level = LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, level_names[i]))
            return i;
    return -1;
}

void log_set_level(int level)
{
    log_min_level = level;
}

int log_enabled(int level)
{
    return level >= log_min_level;
}

void log_write(const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, buf, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        buf += w;
        n -= (size_t)w;
    }
}

void log_msg(int level, const char *extra, const char *fmt, ...)
{
    char ts[40];
    char msg[2048];
    strbuf sb;
    va_list ap;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    util_timestamp(ts, sizeof ts);
    strbuf_init(&sb);
    strbuf_addf(&sb, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts, level_names[level]);
    strbuf_add_json_escaped(&sb, msg, strlen(msg));
    strbuf_adds(&sb, "\"");
    if (extra)
        strbuf_adds(&sb, extra);
    strbuf_adds(&sb, "}\n");
    log_write(sb.buf, sb.len);
    strbuf_dispose(&sb);
}

static void add_field(strbuf *sb, const char *name, const char *value)
{
    strbuf_addf(sb, ",\"%s\":", name);
    if (!value) {
        strbuf_adds(sb, "null");
        return;
    }
    strbuf_adds(sb, "\"");
    strbuf_add_json_escaped(sb, value, strlen(value));
    strbuf_adds(sb, "\"");
}

void log_access_format(strbuf *sb, const log_access_rec *rec)
{
    char ts[40];
    util_timestamp(ts, sizeof ts);
    strbuf_addf(sb, "{\"ts\":\"%s\",\"level\":\"info\",\"msg\":\"request\"", ts);
    add_field(sb, "request_id", rec->request_id);
    add_field(sb, "method", rec->method);
    add_field(sb, "route", rec->route);
    add_field(sb, "path", rec->path);
    strbuf_addf(sb, ",\"status\":%u,\"duration_ms\":%.3f,\"bytes_in\":%llu,\"bytes_out\":%llu",
                rec->status, rec->duration_ms, (unsigned long long)rec->bytes_in,
                (unsigned long long)rec->bytes_out);
    add_field(sb, "client", rec->client);
    strbuf_adds(sb, "}\n");
}
