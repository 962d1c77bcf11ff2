/*
 * mhd_headers: a libmicrohttpd response's headers as one string, for the
 * unit tests of our libmicrohttpd patches (test_mhd_response.c,
 * test_mhd_fast.c): "name=value;" for each, in the response's order.
 */
#ifndef GLASGOW_TEST_MHD_HEADERS_H
#define GLASGOW_TEST_MHD_HEADERS_H

#include <microhttpd.h>
#include <stdio.h>
#include <string.h>

typedef struct seen {
    char text[4096];
    int n; /* how many headers */
} seen;

static enum MHD_Result seen_collect(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    seen *s = cls;
    size_t len = strlen(s->text);
    (void)kind;
    snprintf(s->text + len, sizeof s->text - len, "%s=%s;", key, value);
    s->n++;
    return MHD_YES;
}

/* The headers of r, into s (also returned as a string). */
static const char *headers_of(struct MHD_Response *r, seen *s)
{
    memset(s, 0, sizeof *s);
    MHD_get_response_headers(r, seen_collect, s);
    return s->text;
}

#endif
