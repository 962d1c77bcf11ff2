/*
 * range: the Range request header (see range.h for the semantics).
 */
#include "range.h"

#include <strings.h>

typedef struct spec {
    int suffix;     /* "-N" */
    int has_last;   /* "F-L" rather than "F-" */
    uint64_t first; /* F, or N for a suffix */
    uint64_t last;  /* L */
} spec;

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Reads 1+ digits at *p (before end), saturating at UINT64_MAX. Returns
 * 0 and advances *p, or -1 when there is no digit. */
static int read_number(const char **p, const char *end, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (s == end || *s < '0' || *s > '9')
        return -1;
    while (s < end && *s >= '0' && *s <= '9') {
        unsigned d = (unsigned)(*s - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
        s++;
    }
    *p = s;
    *out = v;
    return 0;
}

/* Parses one range-spec spanning exactly [s, end). Returns 0 or -1. */
static int parse_spec(const char *s, const char *end, spec *out)
{
    out->suffix = 0;
    out->has_last = 0;
    if (s < end && *s == '-') {
        s++;
        out->suffix = 1;
        if (read_number(&s, end, &out->first) < 0)
            return -1;
        return s == end ? 0 : -1;
    }
    if (read_number(&s, end, &out->first) < 0 || s == end || *s != '-')
        return -1;
    s++;
    if (s == end)
        return 0;
    out->has_last = 1;
    if (read_number(&s, end, &out->last) < 0 || s != end)
        return -1;
    /* RFC 9110 14.1.1: last-pos below first-pos is an invalid spec */
    return out->last >= out->first ? 0 : -1;
}

int range_parse(const char *h, size_t len, uint64_t size, uint64_t *first, uint64_t *last)
{
    static const char unit[] = "bytes=";
    const size_t ulen = sizeof unit - 1;
    if (!h || len > RANGE_MAX_HEADER || len <= ulen || strncasecmp(h, unit, ulen) != 0)
        return RANGE_NONE;
    const char *p = h + ulen;
    const char *end = h + len;
    spec one = {0, 0, 0, 0};
    int count = 0;
    while (p < end) {
        /* one list element: OWS element OWS, up to a comma or the end */
        while (p < end && is_ows(*p))
            p++;
        const char *e = p;
        while (e < end && *e != ',')
            e++;
        const char *t = e;
        while (t > p && is_ows(t[-1]))
            t--;
        if (t > p) {
            spec s;
            if (parse_spec(p, t, &s) < 0)
                return RANGE_NONE;
            if (++count == 1)
                one = s;
        }
        p = e < end ? e + 1 : e;
    }
    if (count != 1)
        return RANGE_NONE;
    if (one.suffix) {
        if (one.first == 0)
            return RANGE_UNSATISFIABLE;
        if (size == 0)
            return RANGE_NONE;
        *first = one.first >= size ? 0 : size - one.first;
        *last = size - 1;
        return RANGE_PARTIAL;
    }
    if (one.first >= size)
        return RANGE_UNSATISFIABLE;
    *first = one.first;
    *last = !one.has_last || one.last >= size ? size - 1 : one.last;
    return RANGE_PARTIAL;
}
