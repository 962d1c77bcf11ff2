/*
 * Fuzz target: the router's pattern parser and matcher (runtime/router.c).
 *
 * The input is lines. "+METHOD PATTERN" adds a route (ids count from 0),
 * "METHOD PATH" looks a path up. A reference model written from router.h's
 * contract predicts which patterns are accepted, which conflict, which
 * route a lookup finds with what parameters, and the Allow list of a 405;
 * the router must agree on every line. Each looked-up path is also read as
 * a request target: router_path_of_target must refuse exactly the targets
 * with a malformed or NUL escape, keep every '/' and only those, and with
 * router_param_decode give back the whole decoded target; the lookup is
 * then repeated on its result.
 */
#include "fuzz.h"
#include "router.h"

#include <string.h>

#define MAX_ROUTES 64

enum { LIT, PARAM, WILD };

typedef struct seg {
    int kind;
    const char *text; /* literal or name, into the pattern */
    size_t len;
} seg;

typedef struct model_route {
    char method[16];
    const char *pattern; /* into the input copy */
    size_t nseg;
    seg segs[ROUTER_MAX_SEGMENTS];
} model_route;

static int name_char(char c, int first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && c >= '0' && c <= '9');
}

static int literal_char(char c)
{
    static const char other[] = "-._~!$&'()+,;=@:";
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && memchr(other, c, sizeof other - 1) != NULL);
}

/* Parses a pattern by the contract; returns 0 or -1. */
static int model_parse(const char *p, model_route *r)
{
    size_t nparams = 0;
    r->nseg = 0;
    if (p[0] != '/')
        return -1;
    if (p[1] == '\0')
        return 0;
    while (*p) {
        const char *s = ++p; /* p was at a '/' */
        const char *e = strchr(s, '/');
        if (!e)
            e = s + strlen(s);
        if (e == s || r->nseg == ROUTER_MAX_SEGMENTS)
            return -1;
        seg *g = &r->segs[r->nseg++];
        if (*s == ':' || *s == '*') {
            g->kind = *s == ':' ? PARAM : WILD;
            g->text = s + 1;
            g->len = (size_t)(e - s - 1);
            if (g->len == 0 || (g->kind == WILD && *e) || ++nparams > ROUTER_MAX_PARAMS)
                return -1;
            for (size_t i = 0; i < g->len; i++)
                if (!name_char(g->text[i], i == 0))
                    return -1;
            for (size_t j = 0; j + 1 < r->nseg; j++)
                if (r->segs[j].kind != LIT && r->segs[j].len == g->len &&
                    !memcmp(r->segs[j].text, g->text, g->len))
                    return -1;
        } else {
            g->kind = LIT;
            g->text = s;
            g->len = (size_t)(e - s);
            for (size_t i = 0; i < g->len; i++)
                if (!literal_char(s[i]))
                    return -1;
        }
        p = e;
    }
    return 0;
}

static int model_method_ok(const char *m)
{
    size_t n = strlen(m);
    if (n == 0 || n > 15)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (m[i] < 'A' || m[i] > 'Z')
            return 0;
    return 1;
}

static int same_shape(const model_route *a, const model_route *b)
{
    if (a->nseg != b->nseg)
        return 0;
    for (size_t i = 0; i < a->nseg; i++)
        if (a->segs[i].kind != b->segs[i].kind ||
            (a->segs[i].kind == LIT && (a->segs[i].len != b->segs[i].len ||
                                        memcmp(a->segs[i].text, b->segs[i].text, a->segs[i].len))))
            return 0;
    return 1;
}

/* Whether r matches path; fills params (name, value) in order if it does. */
static int model_match(const model_route *r, const char *path, router_param *params, size_t *np)
{
    const char *p = path;
    *np = 0;
    if (path[0] != '/')
        return 0;
    if (r->nseg == 0)
        return path[1] == '\0';
    for (size_t i = 0; i < r->nseg; i++) {
        if (*p != '/')
            return 0; /* the path has fewer segments */
        const char *s = p + 1;
        const char *e = strchr(s, '/');
        if (!e)
            e = s + strlen(s);
        size_t len = (size_t)(e - s);
        const seg *g = &r->segs[i];
        if (len == 0 && (g->kind != WILD || *s == '\0'))
            return 0;
        if (g->kind == LIT && (len != g->len || memcmp(s, g->text, len)))
            return 0;
        if (g->kind != LIT) {
            router_param *pm = &params[(*np)++];
            pm->name = g->text;
            pm->name_len = g->len;
            pm->value = s;
            pm->value_len = g->kind == WILD ? strlen(s) : len;
        }
        if (g->kind == WILD)
            return 1;
        p = e;
    }
    return *p == '\0';
}

/* 1 if a is to be preferred over b for the same path: kinds left to right
 * (literal, parameter, wildcard), then more segments. */
static int more_specific(const model_route *a, const model_route *b)
{
    size_t n = a->nseg < b->nseg ? a->nseg : b->nseg;
    for (size_t i = 0; i < n; i++)
        if (a->segs[i].kind != b->segs[i].kind)
            return a->segs[i].kind < b->segs[i].kind;
    return a->nseg > b->nseg;
}

static int method_answers(const char *route_method, const char *method)
{
    return !strcmp(route_method, method) ||
           (!strcmp(method, "HEAD") && !strcmp(route_method, "GET"));
}

/* Whether allow, a ", "-separated list, holds m exactly once. */
static int allow_has_once(const char *allow, const char *m)
{
    size_t ml = strlen(m), count = 0;
    for (const char *p = allow; *p;) {
        const char *e = strstr(p, ", ");
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == ml && !memcmp(p, m, ml))
            count++;
        p += len + (e ? 2 : 0);
    }
    return count == 1;
}

static void lookup(const router *rt, const model_route *routes, size_t n, const char *method,
                   const char *path)
{
    router_match m;
    char allow[MAX_ROUTES * 24 + 16];
    char tiny[8];
    router_param want[ROUTER_MAX_PARAMS];
    size_t want_np = 0;
    long best = -1;
    int path_known = 0;

    for (size_t i = 0; i < n; i++) {
        router_param params[ROUTER_MAX_PARAMS];
        size_t np;
        if (!model_match(&routes[i], path, params, &np))
            continue;
        path_known = 1;
        if (!method_answers(routes[i].method, method))
            continue;
        /* the most specific, and of equals an explicit method over GET answering HEAD */
        if (best < 0 || more_specific(&routes[i], &routes[best]) ||
            (!more_specific(&routes[best], &routes[i]) && !strcmp(routes[i].method, method) &&
             strcmp(routes[best].method, method) != 0)) {
            best = (long)i;
            want_np = np;
            memcpy(want, params, sizeof params);
        }
    }

    int rc = router_lookup(rt, method, path, &m, allow, sizeof allow);
    router_lookup(rt, method, path, &m, tiny, sizeof tiny); /* Allow truncated: no overflow */
    rc = router_lookup(rt, method, path, &m, allow, sizeof allow);
    if (best >= 0) {
        fuzz_check(rc == ROUTER_FOUND, "%s %s: want route %ld, got status %d", method, path, best,
                   rc);
        fuzz_check(m.id == best, "%s %s: want route %ld (%s), got %d (%s)", method, path, best,
                   routes[best].pattern, m.id, m.pattern);
        fuzz_check(!strcmp(m.pattern, routes[best].pattern), "pattern of route %d", m.id);
        fuzz_check(m.nparams == want_np, "%s %s: %zu parameters, want %zu", method, path, m.nparams,
                   want_np);
        for (size_t i = 0; i < want_np; i++) {
            const router_param *g = &m.params[i], *w = &want[i];
            fuzz_check(g->name_len == w->name_len && !memcmp(g->name, w->name, w->name_len) &&
                           g->value == w->value && g->value_len == w->value_len,
                       "%s %s: parameter %zu is %.*s=%.*s, want %.*s=%.*s", method, path, i,
                       (int)g->name_len, g->name, (int)g->value_len, g->value, (int)w->name_len,
                       w->name, (int)w->value_len, w->value);
        }
        return;
    }
    if (!path_known) {
        fuzz_check(rc == ROUTER_NOT_FOUND, "%s %s: want not found, got %d", method, path, rc);
        return;
    }
    fuzz_check(rc == ROUTER_METHOD_NOT_ALLOWED, "%s %s: want 405, got %d", method, path, rc);
    for (size_t i = 0; i < n; i++) {
        router_param params[ROUTER_MAX_PARAMS];
        size_t np;
        if (!model_match(&routes[i], path, params, &np))
            continue;
        fuzz_check(allow_has_once(allow, routes[i].method), "%s %s: Allow \"%s\" and %s", method,
                   path, allow, routes[i].method);
        if (!strcmp(routes[i].method, "GET"))
            fuzz_check(allow_has_once(allow, "HEAD"), "%s %s: Allow \"%s\" lacks HEAD", method,
                       path, allow);
    }
    /* and nothing else */
    for (const char *p = allow; *p;) {
        const char *e = strstr(p, ", ");
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int known = 0;
        for (size_t i = 0; i < n && !known; i++) {
            router_param params[ROUTER_MAX_PARAMS];
            size_t np;
            const char *rm = routes[i].method;
            known = model_match(&routes[i], path, params, &np) &&
                    ((strlen(rm) == len && !memcmp(rm, p, len)) ||
                     (!strcmp(rm, "GET") && len == 4 && !memcmp(p, "HEAD", 4)));
        }
        fuzz_check(known, "%s %s: Allow \"%s\" names a method no route offers", method, path,
                   allow);
        p += len + (e ? 2 : 0);
    }
}

static int hex(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* The model: decodes every escape of t into out; returns the length, or -1
 * for a malformed escape or an encoded NUL. */
static long model_decode(const char *t, char *out)
{
    size_t k = 0;
    for (size_t i = 0; t[i]; i++) {
        if (t[i] != '%') {
            out[k++] = t[i];
            continue;
        }
        int hi = hex(t[i + 1]), lo = hi < 0 ? -1 : hex(t[i + 2]);
        if (hi < 0 || lo < 0 || hi * 16 + lo == 0)
            return -1;
        out[k++] = (char)(hi * 16 + lo);
        i += 2;
    }
    return (long)k;
}

static size_t slashes(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += s[i] == '/';
    return c;
}

static void check_target(const router *rt, const model_route *routes, size_t n, const char *method,
                         const char *target)
{
    size_t len = strlen(target);
    char *want = malloc(len + 1);
    fuzz_check(want, "out of memory");
    long want_len = model_decode(target, want);
    char *p = router_path_of_target(target, len);
    fuzz_check((p == NULL) == (want_len < 0), "target %s: refused %d, malformed %d", target,
               p == NULL, want_len < 0);
    if (p) {
        size_t plen = strlen(p);
        fuzz_check(slashes(p, plen) == slashes(target, len), "target %s: path %s moved a '/'",
                   target, p);
        lookup(rt, routes, n, method, p);
        size_t dlen = router_param_decode(p, plen);
        fuzz_check((long)dlen == want_len && !memcmp(p, want, dlen),
                   "target %s: decodes to %.*s, want %.*s", target, (int)dlen, p, (int)want_len,
                   want);
    }
    free(p);
    free(want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    model_route *routes = malloc(MAX_ROUTES * sizeof *routes);
    size_t nroutes = 0;
    int id = 0;
    router *rt = router_create();
    fuzz_check(text && routes, "out of memory");
    memcpy(text, data, size);
    text[size] = '\0';

    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        int add = line[0] == '+';
        char *method = line + add;
        char *sp = strchr(method, ' ');
        if (!sp)
            continue;
        *sp = '\0';
        const char *arg = sp + 1;
        if (!add) {
            lookup(rt, routes, nroutes, method, arg);
            check_target(rt, routes, nroutes, method, arg);
            continue;
        }
        if (nroutes == MAX_ROUTES)
            continue;

        model_route *r = &routes[nroutes];
        char err[128] = "";
        int conflict = -2;
        int valid = model_method_ok(method) && model_parse(arg, r) == 0;
        long clash = -1;
        for (size_t i = 0; valid && i < nroutes && clash < 0; i++)
            if (!strcmp(routes[i].method, method) && same_shape(&routes[i], r))
                clash = (long)i;
        int rc = router_add(rt, method, arg, id, &conflict, err, sizeof err);
        if (!valid) {
            fuzz_check(rc == -1 && err[0] && conflict == -1, "accepted %s %s", method, arg);
            continue;
        }
        if (clash >= 0) {
            fuzz_check(rc == -1 && err[0] && conflict == clash,
                       "%s %s: want a conflict with %ld, got %d (%d)", method, arg, clash, rc,
                       conflict);
            continue;
        }
        fuzz_check(rc == 0, "refused %s %s: %s", method, arg, err);
        snprintf(r->method, sizeof r->method, "%s", method);
        r->pattern = arg;
        nroutes++;
        id++;
        fuzz_check(router_count(rt) == nroutes, "router_count");
    }
    router_destroy(rt);
    free(routes);
    free(text);
    return 0;
}
