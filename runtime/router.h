/*
 * router: maps (method, path) to a route id.
 *
 * Patterns are absolute paths whose segments are literals, ":name"
 * parameters (one non-empty segment) or, last only, "*name" (the non-empty
 * rest of the path, slashes included, even a leading one: a wildcard after
 * "/f" takes "/a" from the path "/f//a", and nothing from "/f/"). When
 * several routes match, the most specific wins, segment by segment:
 * literal over parameter over wildcard.
 * A GET route also answers HEAD. The router is immutable once built and may
 * be read from several threads.
 */
#ifndef GLASGOW_ROUTER_H
#define GLASGOW_ROUTER_H

#include <stddef.h>

#define ROUTER_MAX_PARAMS 16
#define ROUTER_MAX_SEGMENTS 64

enum { ROUTER_FOUND = 0, ROUTER_NOT_FOUND = 1, ROUTER_METHOD_NOT_ALLOWED = 2 };

typedef struct router router;

typedef struct router_param {
    const char *name; /* points into the router; not NUL-terminated */
    size_t name_len;
    const char *value; /* points into the matched path */
    size_t value_len;
} router_param;

typedef struct router_match {
    int id;
    const char *pattern; /* the matched route's pattern, owned by the router */
    size_t nparams;
    router_param params[ROUTER_MAX_PARAMS];
} router_match;

/* Creates an empty router; aborts on allocation failure. */
router *router_create(void);

/* Frees r and every pattern it holds. */
void router_destroy(router *r);

/*
 * Adds a route. method is an upper-case token; pattern as described above.
 * Returns 0, or -1 with a message in err when the pattern is malformed or
 * the same method already has a route of the same shape (then *conflict_id,
 * if not NULL, is that route's id; otherwise -1).
 */
int router_add(router *r, const char *method, const char *pattern, int id, int *conflict_id,
               char *err, size_t errlen);

/*
 * Matches a path: decoded, or from router_path_of_target (a segment holding
 * "%2F" is then one segment, and the parameters need router_param_decode).
 * Returns ROUTER_FOUND with m filled,
 * ROUTER_METHOD_NOT_ALLOWED with the methods that would match in allow
 * ("GET, HEAD, POST"), or ROUTER_NOT_FOUND.
 */
int router_lookup(const router *r, const char *method, const char *path, router_match *m,
                  char *allow, size_t allowlen);

/*
 * The path router_lookup should match for a request target's path as it
 * came (percent-encoded, without the query; len bytes): every escape is
 * decoded except those of '/' and '%', which stay as "%2F" and "%25", so
 * that an encoded slash is part of its segment ("/b%2Ff" is one segment)
 * while "/%62" still matches the literal "/b". Returns a new string (free
 * it), or NULL when an escape is malformed or encodes NUL. Aborts on
 * allocation failure.
 */
char *router_path_of_target(const char *target, size_t len);

/*
 * Decodes the escapes left in a parameter value matched on a path from
 * router_path_of_target (len bytes at s, in place; not NUL-terminated).
 * Returns the new length.
 */
size_t router_param_decode(char *s, size_t len);

/* Number of routes added. */
size_t router_count(const router *r);

#endif
