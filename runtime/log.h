/*
 * log: structured JSON lines on stdout, one object per line.
 *
 * Messages are written with a single write(2) each, so lines from several
 * threads never interleave. Access lines are batched per worker by the
 * caller (log_access_format + log_write) to keep a write(2) off every request.
 */
#ifndef GLASGOW_LOG_H
#define GLASGOW_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* Returns the level named by s, or -1. */
int log_level_parse(const char *s);

/* Sets the minimum level printed (process-wide). */
void log_set_level(int level);

/* Returns non-zero when a message at level would be printed. */
int log_enabled(int level);

/*
 * Prints {"ts":..,"level":..,"msg":..} plus extra, which must be either NULL
 * or a sequence of already-encoded JSON members starting with a comma
 * (",\"file\":\"x\""). msg is escaped here.
 */
void log_msg(int level, const char *extra, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One finished request, as the access log records it. */
typedef struct log_access_rec {
    const char *request_id;
    const char *method;
    const char *route; /* template, or NULL when no route matched */
    const char *path;
    unsigned status;
    uint64_t duration_us;
    uint64_t bytes_in;
    uint64_t bytes_out;
    const char *client;
    const char *peer; /* the TCP peer when client came from X-Forwarded-For, else NULL */
} log_access_rec;

/* Appends the access line for rec (with its newline) to sb. */
void log_access_format(strbuf *sb, const log_access_rec *rec);

/* Writes n bytes to stdout, retrying short writes; errors are ignored. */
void log_write(const char *buf, size_t n);

#endif
