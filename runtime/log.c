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
    strbuf_adds(sb, ",\"");
    strbuf_adds(sb, name);
    if (!value) {
        strbuf_adds(sb, "\":null");
        return;
    }
    strbuf_adds(sb, "\":\"");
    strbuf_add_json_escaped(sb, value, strlen(value));
    strbuf_adds(sb, "\"");
}

static void add_number(strbuf *sb, const char *name, uint64_t v)
{
    char num[24];
    size_t n = util_format_u64(num, v);
    strbuf_adds(sb, ",\"");
    strbuf_adds(sb, name);
    strbuf_adds(sb, "\":");
    strbuf_add(sb, num, n);
}

void log_access_format(strbuf *sb, const log_access_rec *rec)
{
    char ts[40];
    util_timestamp(ts, sizeof ts);
    strbuf_adds(sb, "{\"ts\":\"");
    strbuf_adds(sb, ts);
    strbuf_adds(sb, "\",\"level\":\"info\",\"msg\":\"request\"");
    add_field(sb, "request_id", rec->request_id);
    add_field(sb, "method", rec->method);
    add_field(sb, "route", rec->route);
    add_field(sb, "path", rec->path);
    add_number(sb, "status", rec->status);
    /* duration in ms with microsecond resolution, without printf */
    uint64_t us = rec->duration_us;
    char frac[4] = {(char)('0' + us / 100 % 10), (char)('0' + us / 10 % 10), (char)('0' + us % 10),
                    0};
    add_number(sb, "duration_ms", us / 1000);
    strbuf_adds(sb, ".");
    strbuf_add(sb, frac, 3);
    add_number(sb, "bytes_in", rec->bytes_in);
    add_number(sb, "bytes_out", rec->bytes_out);
    add_field(sb, "client", rec->client);
    if (rec->peer)
        add_field(sb, "peer", rec->peer);
    strbuf_adds(sb, "}\n");
}
