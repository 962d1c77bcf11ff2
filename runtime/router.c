#include "router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

enum { SEG_LITERAL = 0, SEG_PARAM = 1, SEG_WILDCARD = 2 };

typedef struct segment {
    int kind;
    const char *text; /* literal text or parameter name, into route->pattern */
    size_t len;
} segment;

typedef struct route {
    int id;
    char method[16];
    char *pattern;
    size_t nseg;
    segment seg[ROUTER_MAX_SEGMENTS];
} route;

/* The routes whose first segment is one literal, by that literal: a
 * request looks only at those of its own first segment, then at the rest. */
typedef struct first_bucket {
    const char *text; /* into a route's pattern; NULL for an empty slot */
    size_t len;
    size_t start; /* into router->by_first */
    size_t count;
} first_bucket;

struct router {
    route **routes; /* most specific first: literal-first routes lead */
    size_t len;
    size_t cap;
    size_t nliteral;       /* routes[0 .. nliteral) start with a literal */
    size_t *by_first;      /* their indices, grouped by first literal, in order */
    first_bucket *buckets; /* open addressing, a power of two long */
    size_t nbuckets;
};

router *router_create(void)
{
    return xcalloc(1, sizeof(router));
}

void router_destroy(router *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->len; i++) {
        free(r->routes[i]->pattern);
        free(r->routes[i]);
    }
    free(r->routes);
    free(r->by_first);
    free(r->buckets);
    free(r);
}

size_t router_count(const router *r)
{
    return r->len;
}

static int is_name_char(char c, int first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && c >= '0' && c <= '9');
}

/* Literal segments may hold RFC 3986 pchar characters other than ':' and '*' first. */
static int is_literal_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("-._~!$&'()+,;=@:", c) != NULL;
}

static int parse_pattern(route *rt, char *err, size_t errlen)
{
    const char *p = rt->pattern;
    size_t nparams = 0;
    if (p[0] != '/') {
        snprintf(err, errlen, "path must start with '/'");
        return -1;
    }
    rt->nseg = 0;
    if (p[1] == '\0')
        return 0; /* "/" has no segments */
    while (*p == '/') {
        const char *start = ++p;
        while (*p && *p != '/')
            p++;
        size_t len = (size_t)(p - start);
        if (rt->nseg == ROUTER_MAX_SEGMENTS) {
            snprintf(err, errlen, "path has more than %d segments", ROUTER_MAX_SEGMENTS);
            return -1;
        }
        segment *s = &rt->seg[rt->nseg++];
        if (len == 0) {
            snprintf(err, errlen, "path has an empty segment");
            return -1;
        }
        if (start[0] == ':' || start[0] == '*') {
            s->kind = start[0] == ':' ? SEG_PARAM : SEG_WILDCARD;
            s->text = start + 1;
            s->len = len - 1;
            if (s->len == 0 || !is_name_char(s->text[0], 1)) {
                snprintf(err, errlen, "parameter name must start with a letter or '_'");
                return -1;
            }
            for (size_t i = 1; i < s->len; i++)
                if (!is_name_char(s->text[i], 0)) {
                    snprintf(err, errlen, "parameter name may hold only letters, digits, '_'");
                    return -1;
                }
            if (s->kind == SEG_WILDCARD && *p) {
                snprintf(err, errlen, "a '*' parameter must be the last segment");
                return -1;
            }
            if (++nparams > ROUTER_MAX_PARAMS) {
                snprintf(err, errlen, "more than %d parameters", ROUTER_MAX_PARAMS);
                return -1;
            }
            for (size_t j = 0; j + 1 < rt->nseg; j++) {
                const segment *o = &rt->seg[j];
                if (o->kind != SEG_LITERAL && o->len == s->len &&
                    !memcmp(o->text, s->text, s->len)) {
                    snprintf(err, errlen, "parameter '%.*s' appears twice", (int)s->len, s->text);
                    return -1;
                }
            }
        } else {
            s->kind = SEG_LITERAL;
            s->text = start;
            s->len = len;
            for (size_t i = 0; i < len; i++)
                if (!is_literal_char(start[i])) {
                    snprintf(err, errlen, "character '%c' not allowed in a path", start[i]);
                    return -1;
                }
        }
    }
    if (*p) {
        snprintf(err, errlen, "path is malformed");
        return -1;
    }
    return 0;
}

/* Same shape: same literals in the same places, parameters of the same kind. */
static int same_shape(const route *a, const route *b)
{
    if (a->nseg != b->nseg)
        return 0;
    for (size_t i = 0; i < a->nseg; i++) {
        if (a->seg[i].kind != b->seg[i].kind)
            return 0;
        if (a->seg[i].kind == SEG_LITERAL &&
            (a->seg[i].len != b->seg[i].len ||
             memcmp(a->seg[i].text, b->seg[i].text, a->seg[i].len) != 0))
            return 0;
    }
    return 1;
}

/* Orders by specificity: compares segment kinds left to right, then length. */
static int more_specific(const route *a, const route *b)
{
    size_t n = a->nseg < b->nseg ? a->nseg : b->nseg;
    for (size_t i = 0; i < n; i++)
        if (a->seg[i].kind != b->seg[i].kind)
            return a->seg[i].kind < b->seg[i].kind;
    return a->nseg > b->nseg;
}

static size_t segment_hash(const char *text, size_t len)
{
    size_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)text[i]) * 16777619u;
    return h;
}

static first_bucket *find_bucket(const router *r, const char *text, size_t len)
{
    if (!r->nbuckets)
        return NULL;
    size_t mask = r->nbuckets - 1;
    for (size_t i = segment_hash(text, len) & mask;; i = (i + 1) & mask) {
        first_bucket *b = &r->buckets[i];
        if (!b->text)
            return NULL;
        if (b->len == len && !memcmp(b->text, text, len))
            return b;
    }
}

/* Rebuilds the first-literal index (routes are added at load, not per
 * request; the cost is linear in the routes). */
static void build_index(router *r)
{
    size_t n = 0;
    while (n < r->len && r->routes[n]->nseg > 0 && r->routes[n]->seg[0].kind == SEG_LITERAL)
        n++;
    r->nliteral = n;
    size_t nb = 8;
    while (nb < 2 * n)
        nb *= 2;
    free(r->buckets);
    free(r->by_first);
    r->buckets = xcalloc(nb, sizeof *r->buckets);
    r->nbuckets = nb;
    r->by_first = xcalloc(n ? n : 1, sizeof *r->by_first);
    /* count per literal, then place the indices in the routes' order */
    for (size_t i = 0; i < n; i++) {
        const segment *s = &r->routes[i]->seg[0];
        first_bucket *b = find_bucket(r, s->text, s->len);
        if (!b) {
            size_t j = segment_hash(s->text, s->len) & (nb - 1);
            while (r->buckets[j].text)
                j = (j + 1) & (nb - 1);
            b = &r->buckets[j];
            b->text = s->text;
            b->len = s->len;
        }
        b->count++;
    }
    size_t start = 0;
    for (size_t j = 0; j < nb; j++) {
        r->buckets[j].start = start;
        start += r->buckets[j].count;
        r->buckets[j].count = 0;
    }
    for (size_t i = 0; i < n; i++) {
        const segment *s = &r->routes[i]->seg[0];
        first_bucket *b = find_bucket(r, s->text, s->len);
        r->by_first[b->start + b->count++] = i;
    }
}

int router_add(router *r, const char *method, const char *pattern, int id, int *conflict_id,
               char *err, size_t errlen)
{
    size_t mlen = strlen(method);
    if (conflict_id)
        *conflict_id = -1;
    if (mlen == 0 || mlen >= sizeof(((route *)0)->method)) {
        snprintf(err, errlen, "method must be an HTTP token of 1 to 15 characters");
        return -1;
    }
    for (size_t i = 0; i < mlen; i++)
        if (method[i] < 'A' || method[i] > 'Z') {
            snprintf(err, errlen, "method must be upper-case letters");
            return -1;
        }
    route *rt = xcalloc(1, sizeof *rt);
    rt->id = id;
    memcpy(rt->method, method, mlen + 1);
    rt->pattern = xstrdup(pattern);
    if (parse_pattern(rt, err, errlen) < 0)
        goto err_free_route;
    for (size_t i = 0; i < r->len; i++) {
        if (!strcmp(r->routes[i]->method, method) && same_shape(r->routes[i], rt)) {
            snprintf(err, errlen, "%s %s conflicts with %s %s", method, pattern, method,
                     r->routes[i]->pattern);
            if (conflict_id)
                *conflict_id = r->routes[i]->id;
            goto err_free_route;
        }
    }
    if (r->len == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->routes = xrealloc(r->routes, r->cap * sizeof *r->routes);
    }
    /* insertion keeps the array sorted, most specific first */
    size_t pos = r->len;
    while (pos > 0 && more_specific(rt, r->routes[pos - 1])) {
        r->routes[pos] = r->routes[pos - 1];
        pos--;
    }
    r->routes[pos] = rt;
    r->len++;
    build_index(r);
    return 0;

err_free_route:
    free(rt->pattern);
    free(rt);
    return -1;
}

/* The byte of the escape at s ("%XX", within n bytes), or -1 if it is none. */
static int escape_at(const char *s, size_t n)
{
    if (n < 3 || s[0] != '%')
        return -1;
    int hi = util_hex_digit(s[1]), lo = util_hex_digit(s[2]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

char *router_path_of_target(const char *target, size_t len)
{
    char *out = xmalloc(len + 1);
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (target[i] != '%') {
            out[k++] = target[i];
            continue;
        }
        int v = escape_at(target + i, len - i);
        if (v <= 0) {
            free(out);
            return NULL;
        }
        if (v == '/' || v == '%') {
            memcpy(out + k, v == '/' ? "%2F" : "%25", 3);
            k += 3;
        } else {
            out[k++] = (char)v;
        }
        i += 2;
    }
    out[k] = '\0';
    return out;
}

size_t router_param_decode(char *s, size_t len)
{
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        int v = s[i] == '%' ? escape_at(s + i, len - i) : -1;
        if (v < 0) {
            s[k++] = s[i];
        } else {
            s[k++] = (char)v;
            i += 2;
        }
    }
    return k;
}

/* Splits path into segment offsets; returns the count, or -1 if malformed.
 * A path of more than max segments counts as max: no route has that many,
 * so only a wildcard (which takes the rest of the string) can match it. */
static int split_path(const char *path, const char **starts, size_t *lens, size_t max)
{
    size_t n = 0;
    if (path[0] != '/')
        return -1;
    if (path[1] == '\0')
        return 0;
    const char *p = path;
    while (*p == '/') {
        const char *start = ++p;
        while (*p && *p != '/')
            p++;
        if (n == max)
            break;
        starts[n] = start;
        lens[n] = (size_t)(p - start);
        n++;
    }
    return (int)n;
}

static int route_matches(const route *rt, const char *const *starts, const size_t *lens, size_t n,
                         router_match *m)
{
    size_t np = 0;
    if (rt->nseg > n)
        return 0;
    for (size_t i = 0; i < rt->nseg; i++) {
        const segment *s = &rt->seg[i];
        /* a wildcard takes any non-empty rest, even one that starts with
         * '/' (the route then judges the value: "//a" is a name to refuse
         * with a reason, not a missing route) */
        if (lens[i] == 0 && (s->kind != SEG_WILDCARD || starts[i][0] == '\0'))
            return 0;
        if (s->kind == SEG_LITERAL) {
            if (s->len != lens[i] || memcmp(s->text, starts[i], s->len) != 0)
                return 0;
        } else if (m) {
            router_param *pm = &m->params[np++];
            pm->name = s->text;
            pm->name_len = s->len;
            pm->value = starts[i];
            if (s->kind == SEG_WILDCARD) {
                pm->value_len = strlen(starts[i]);
            } else {
                pm->value_len = lens[i];
            }
        }
        if (s->kind == SEG_WILDCARD) {
            if (m)
                m->nparams = np;
            return 1;
        }
    }
    if (rt->nseg != n)
        return 0;
    if (m)
        m->nparams = np;
    return 1;
}

static int method_matches(const route *rt, const char *method)
{
    return !strcmp(rt->method, method) || (!strcmp(method, "HEAD") && !strcmp(rt->method, "GET"));
}

static void allow_add(char *allow, size_t allowlen, const char *method)
{
    size_t used = strlen(allow);
    /* skip duplicates: a method appears once however many shapes offer it */
    const char *p = allow;
    size_t ml = strlen(method);
    while ((p = strstr(p, method)) != NULL) {
        if ((p == allow || p[-1] == ' ') && (p[ml] == ',' || p[ml] == '\0'))
            return;
        p += ml;
    }
    snprintf(allow + used, allowlen - used, "%s%s", used ? ", " : "", method);
}

/*
 * routes[i], a GET route, matches a HEAD request: returns a HEAD route as
 * specific as it that matches too (declared later, so sorted after it), or
 * routes[i]. An explicit HEAD route wins over GET's implicit one.
 */
static const route *exact_method(const router *r, size_t i, const char *method,
                                 const char *const *starts, const size_t *lens, size_t n)
{
    for (size_t j = i + 1; j < r->len && !more_specific(r->routes[i], r->routes[j]); j++)
        if (!strcmp(r->routes[j]->method, method) &&
            route_matches(r->routes[j], starts, lens, n, NULL))
            return r->routes[j];
    return r->routes[i];
}

/* Tries routes[i] on the split path: ROUTER_FOUND (m filled), or
 * ROUTER_METHOD_NOT_ALLOWED when only the method differs (its methods added
 * to allow), or ROUTER_NOT_FOUND. */
static int try_route(const router *r, size_t i, const char *method, const char *const *starts,
                     const size_t *lens, size_t n, router_match *m, char *allow, size_t allowlen)
{
    const route *rt = r->routes[i];
    if (!route_matches(rt, starts, lens, n, NULL))
        return ROUTER_NOT_FOUND;
    if (method_matches(rt, method)) {
        if (strcmp(rt->method, method) != 0)
            rt = exact_method(r, i, method, starts, lens, n);
        route_matches(rt, starts, lens, n, m);
        m->id = rt->id;
        m->pattern = rt->pattern;
        return ROUTER_FOUND;
    }
    if (allow && allowlen) {
        allow_add(allow, allowlen, rt->method);
        if (!strcmp(rt->method, "GET"))
            allow_add(allow, allowlen, "HEAD");
    }
    return ROUTER_METHOD_NOT_ALLOWED;
}

int router_lookup(const router *r, const char *method, const char *path, router_match *m,
                  char *allow, size_t allowlen)
{
    const char *starts[ROUTER_MAX_SEGMENTS + 1];
    size_t lens[ROUTER_MAX_SEGMENTS + 1];
    int n = split_path(path, starts, lens, ROUTER_MAX_SEGMENTS + 1);
    int path_matched = 0;

    if (allow && allowlen)
        allow[0] = '\0';
    if (n < 0)
        return ROUTER_NOT_FOUND;
    /* Routes that start with a literal come first in the sorted array, so
     * those of the path's first segment, then every route that starts
     * otherwise, is the order a scan of all of them would try: no route of
     * another first literal can match. */
    const first_bucket *b = n > 0 ? find_bucket(r, starts[0], lens[0]) : NULL;
    for (size_t k = 0; b && k < b->count; k++) {
        int st = try_route(r, r->by_first[b->start + k], method, starts, lens, (size_t)n, m, allow,
                           allowlen);
        if (st == ROUTER_FOUND)
            return st;
        path_matched |= st == ROUTER_METHOD_NOT_ALLOWED;
    }
    for (size_t i = r->nliteral; i < r->len; i++) {
        int st = try_route(r, i, method, starts, lens, (size_t)n, m, allow, allowlen);
        if (st == ROUTER_FOUND)
            return st;
        path_matched |= st == ROUTER_METHOD_NOT_ALLOWED;
    }
    return path_matched ? ROUTER_METHOD_NOT_ALLOWED : ROUTER_NOT_FOUND;
}
