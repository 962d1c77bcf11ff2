/* Router matching: literals, parameters, wildcards, precedence, 405, conflicts. */
#include "router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

static int lookup(router *r, const char *method, const char *path, router_match *m, char *allow)
{
    return router_lookup(r, method, path, m, allow, 96);
}

static void test_basic(void)
{
    char err[256], allow[96];
    router_match m;
    router *r = router_create();
    ok(router_add(r, "GET", "/hello", 1, NULL, err, sizeof err) == 0, "add literal route");
    ok(router_add(r, "GET", "/v1/users/:id", 2, NULL, err, sizeof err) == 0, "add param route");
    ok(router_add(r, "PATCH", "/v1/users/:id", 3, NULL, err, sizeof err) == 0,
       "same shape, other method");
    ok(router_add(r, "GET", "/v1/users/me", 4, NULL, err, sizeof err) == 0, "add literal sibling");
    ok(router_add(r, "GET", "/files/:bucket/*key", 5, NULL, err, sizeof err) == 0,
       "add wildcard route");
    ok(router_add(r, "GET", "/", 6, NULL, err, sizeof err) == 0, "add root");

    is_int(lookup(r, "GET", "/hello", &m, allow), ROUTER_FOUND, "literal matches");
    is_int(m.id, 1, "literal id");
    is_int(m.nparams, 0, "no params");
    is_int(lookup(r, "GET", "/", &m, allow), ROUTER_FOUND, "root matches");
    is_int(m.id, 6, "root id");
    is_int(lookup(r, "GET", "/hello/", &m, allow), ROUTER_NOT_FOUND, "trailing slash differs");
    is_int(lookup(r, "GET", "/hello/x", &m, allow), ROUTER_NOT_FOUND, "longer path no match");
    is_int(lookup(r, "GET", "/hell", &m, allow), ROUTER_NOT_FOUND, "prefix no match");

    is_int(lookup(r, "GET", "/v1/users/42", &m, allow), ROUTER_FOUND, "param matches");
    is_int(m.id, 2, "param route id");
    is_int(m.nparams, 1, "one param");
    ok(m.params[0].name_len == 2 && !memcmp(m.params[0].name, "id", 2), "param name");
    ok(m.params[0].value_len == 2 && !memcmp(m.params[0].value, "42", 2), "param value");
    is_str(m.pattern, "/v1/users/:id", "pattern reported");

    is_int(lookup(r, "GET", "/v1/users/me", &m, allow), ROUTER_FOUND, "literal beats param");
    is_int(m.id, 4, "literal sibling id");
    is_int(lookup(r, "PATCH", "/v1/users/me", &m, allow), ROUTER_FOUND,
           "falls back to param route when the literal lacks the method");
    is_int(m.id, 3, "PATCH route id");

    is_int(lookup(r, "GET", "/v1/users/", &m, allow), ROUTER_NOT_FOUND, "empty param no match");
    is_int(lookup(r, "GET", "/v1/users//", &m, allow), ROUTER_NOT_FOUND, "empty segments");

    is_int(lookup(r, "DELETE", "/v1/users/42", &m, allow), ROUTER_METHOD_NOT_ALLOWED,
           "wrong method is 405");
    is_str(allow, "GET, HEAD, PATCH", "Allow lists the methods");
    is_int(lookup(r, "HEAD", "/hello", &m, allow), ROUTER_FOUND, "HEAD uses GET routes");

    is_int(lookup(r, "GET", "/files/b1/a/b/c.txt", &m, allow), ROUTER_FOUND, "wildcard");
    is_int(m.nparams, 2, "wildcard has two params");
    ok(m.params[1].value_len == 9 && !memcmp(m.params[1].value, "a/b/c.txt", 9),
       "wildcard takes the rest");
    is_int(lookup(r, "GET", "/files/b1", &m, allow), ROUTER_NOT_FOUND, "wildcard needs a rest");
    is_int(lookup(r, "GET", "/files/b1/", &m, allow), ROUTER_NOT_FOUND, "an empty rest is no rest");
    is_int(lookup(r, "GET", "/files/b1//a", &m, allow), ROUTER_FOUND,
           "a rest starting with '/' matches");
    ok(m.params[1].value_len == 2 && !memcmp(m.params[1].value, "/a", 2),
       "  and the wildcard holds it, leading '/' included");
    is_int(lookup(r, "GET", "/files/b1///", &m, allow), ROUTER_FOUND, "so does a rest of slashes");
    ok(m.params[1].value_len == 2 && !memcmp(m.params[1].value, "//", 2), "  \"//\"");
    is_int(lookup(r, "GET", "/files//a/b", &m, allow), ROUTER_NOT_FOUND,
           "an empty segment before the wildcard still fails");
    is_int(lookup(r, "GET", "", &m, allow), ROUTER_NOT_FOUND, "empty path");
    is_int(lookup(r, "GET", "hello", &m, allow), ROUTER_NOT_FOUND, "relative path");
    router_destroy(r);
}

static void test_deep_path(void)
{
    char err[256], allow[96], path[4096];
    router_match m;
    router *r = router_create();
    router_add(r, "GET", "/a/:x", 1, NULL, err, sizeof err);
    size_t n = 0;
    for (int i = 0; i < 1000; i++)
        n += (size_t)snprintf(path + n, sizeof path - n, "/a");
    is_int(lookup(r, "GET", path, &m, allow), ROUTER_NOT_FOUND,
           "1000 segments: no match, no crash");
    /* found by fuzz_router: a wildcard used to miss paths deeper than 65 segments */
    router_add(r, "GET", "/a/*rest", 2, NULL, err, sizeof err);
    is_int(lookup(r, "GET", path, &m, allow), ROUTER_FOUND, "1000 segments: the wildcard matches");
    is_int(m.id, 2, "the wildcard route");
    ok(m.nparams == 1 && m.params[0].value == path + 3 && m.params[0].value_len == n - 3,
       "the wildcard takes all 999 remaining segments");
    router_destroy(r);
}

/* Found while writing fuzz_router's model: a HEAD route declared after a GET
 * route of the same shape was never reached, GET's implicit HEAD won. */
static void test_explicit_head(void)
{
    char err[256], allow[96];
    router_match m;
    router *r = router_create();
    router_add(r, "GET", "/a/:x", 1, NULL, err, sizeof err);
    router_add(r, "GET", "/b/:x", 2, NULL, err, sizeof err);
    router_add(r, "HEAD", "/a/:y", 3, NULL, err, sizeof err);
    router_add(r, "GET", "/c", 4, NULL, err, sizeof err);
    router_add(r, "HEAD", "/a/lit", 5, NULL, err, sizeof err);
    router_add(r, "HEAD", "/:z", 6, NULL, err, sizeof err);
    is_int(lookup(r, "HEAD", "/a/1", &m, allow), ROUTER_FOUND, "HEAD /a/1 is found");
    is_int(m.id, 3, "the HEAD route declared after the GET route answers HEAD");
    ok(m.nparams == 1 && m.params[0].name_len == 1 && m.params[0].name[0] == 'y',
       "with its own parameter names");
    is_int(lookup(r, "GET", "/a/1", &m, allow), ROUTER_FOUND, "GET /a/1 is found");
    is_int(m.id, 1, "GET still goes to the GET route");
    is_int(lookup(r, "HEAD", "/b/1", &m, allow), ROUTER_FOUND, "HEAD /b/1 is found");
    is_int(m.id, 2, "GET answers HEAD where no HEAD route is declared");
    is_int(lookup(r, "HEAD", "/c", &m, allow), ROUTER_FOUND, "HEAD /c is found");
    is_int(m.id, 4, "a less specific HEAD route does not take over a literal GET");
    is_int(lookup(r, "HEAD", "/a/lit", &m, allow), ROUTER_FOUND, "HEAD /a/lit is found");
    is_int(m.id, 5, "the most specific route still wins first");
    router_destroy(r);
}

static void test_bad_patterns(void)
{
    static const struct {
        const char *method, *pattern;
    } bad[] = {
        {"GET", "hello"},       {"GET", "/a//b"},    {"GET", "/a/:"}, {"GET", "/a/:1x"},
        {"GET", "/*rest/more"}, {"GET", "/a/:x/:x"}, {"get", "/a"},   {"", "/a"},
        {"GET", "/a b"},        {"GET", "/a/:x-y"},  {"GET", "/a?b"}, {"VERYLONGMETHODNAME", "/"},
    };
    char err[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        router *r = router_create();
        err[0] = '\0';
        ok(router_add(r, bad[i].method, bad[i].pattern, 1, NULL, err, sizeof err) < 0 && err[0],
           "rejects %s '%s' (%s)", bad[i].method, bad[i].pattern, err);
        router_destroy(r);
    }
}

static void test_conflicts(void)
{
    char err[256];
    int other = 0;
    router *r = router_create();
    router_add(r, "GET", "/v1/users/:id", 7, NULL, err, sizeof err);
    ok(router_add(r, "GET", "/v1/users/:uid", 8, &other, err, sizeof err) < 0,
       "same shape with another param name conflicts");
    is_int(other, 7, "conflict names the other route");
    ok(strstr(err, "/v1/users/:id") != NULL, "message names the other pattern");
    ok(router_add(r, "POST", "/v1/users/:uid", 9, &other, err, sizeof err) == 0,
       "another method does not conflict");
    ok(router_add(r, "GET", "/v1/users/*rest", 10, &other, err, sizeof err) == 0,
       "a wildcard is another shape");
    is_int(router_count(r), 3, "three routes");
    router_destroy(r);
}

/* router_path_of_target on target, then a lookup; returns the decoded
 * value of the first parameter (or "" when the lookup finds nothing). */
static const char *param_of(router *r, const char *target, char *out, size_t outlen)
{
    router_match m;
    char *path = router_path_of_target(target, strlen(target));
    out[0] = '\0';
    if (path && router_lookup(r, "GET", path, &m, NULL, 0) == ROUTER_FOUND && m.nparams) {
        char *v = path + (m.params[0].value - path);
        size_t n = router_param_decode(v, m.params[0].value_len);
        snprintf(out, outlen, "%.*s", (int)n, v);
    }
    free(path);
    return out;
}

static void test_encoded_targets(void)
{
    struct {
        const char *target, *want;
    } paths[] = {
        {"/a/b%2Fc", "/a/b%2Fc"}, {"/a/b%2fc", "/a/b%2Fc"},
        {"/%61/b", "/a/b"},       {"/a/%25", "/a/%25"},
        {"/a/%252F", "/a/%252F"}, {"/a/%C3%A9", "/a/\xc3\xa9"},
        {"/a/b%20c", "/a/b c"},   {"", ""},
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char *p = router_path_of_target(paths[i].target, strlen(paths[i].target));
        is_str(p, paths[i].want, "path of target '%s'", paths[i].target);
        free(p);
    }
    const char *bad[] = {"/a%", "/a%2", "/a%zz", "/a%00", "/a/%G0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *p = router_path_of_target(bad[i], strlen(bad[i]));
        ok(p == NULL, "target '%s' is refused", bad[i]);
        free(p);
    }
    char *p = router_path_of_target("/a/b?c=%2F", 4);
    is_str(p, "/a/b", "only len bytes are read");
    free(p);

    router *r = router_create();
    char err[256], out[64];
    router_add(r, "GET", "/b/:bucket", 1, NULL, err, sizeof err);
    router_add(r, "GET", "/b/:bucket/files", 2, NULL, err, sizeof err);
    router_add(r, "GET", "/b/:bucket/files/*name", 3, NULL, err, sizeof err);
    is_str(param_of(r, "/b/x%2Ffiles", out, sizeof out), "x/files",
           "%%2F stays in its segment: /b/:bucket, decoded after");
    is_str(param_of(r, "/b/x%252F", out, sizeof out), "x%2F", "%%25 decodes once");
    is_str(param_of(r, "/%62/x/files", out, sizeof out), "x", "an escaped literal still matches");
    router_match m;
    char *path = router_path_of_target("/b/x/files/d%2Fe/f", 18);
    ok(path && router_lookup(r, "GET", path, &m, NULL, 0) == ROUTER_FOUND && m.id == 3 &&
           m.nparams == 2,
       "a wildcard takes the rest");
    if (path && m.nparams == 2) {
        char *v = path + (m.params[1].value - path);
        size_t n = router_param_decode(v, m.params[1].value_len);
        ok(n == 5 && !memcmp(v, "d/e/f", 5), "and decodes to d/e/f (got %.*s)", (int)n, v);
    }
    free(path);
    router_destroy(r);
}

/* The first-literal index must give what a scan of every route in order
 * gives: routes of other first segments never match, those starting with a
 * parameter or wildcard still do, in specificity order, and 405's Allow
 * gathers methods from both kinds. */
static void test_first_literal_index(void)
{
    char err[256], allow[96], path[32];
    router_match m;
    router *r = router_create();
    /* 40 first literals: the bucket table grows and its probes collide */
    int added = 0;
    for (int i = 0; i < 40; i++) {
        char pat[32];
        snprintf(pat, sizeof pat, "/r%d", i);
        added += router_add(r, "GET", pat, 100 + i, NULL, err, sizeof err) == 0;
    }
    is_int(added, 40, "40 routes of distinct first literals");
    int found = 0;
    for (int i = 0; i < 40; i++) {
        snprintf(path, sizeof path, "/r%d", i);
        found += lookup(r, "GET", path, &m, allow) == ROUTER_FOUND && m.id == 100 + i;
    }
    is_int(found, 40, "each found by its own literal");
    is_int(lookup(r, "GET", "/r40", &m, allow), ROUTER_NOT_FOUND, "an unknown literal: 404");

    ok(router_add(r, "GET", "/a/:x", 1, NULL, err, sizeof err) == 0, "literal then param");
    ok(router_add(r, "POST", "/:y/b", 2, NULL, err, sizeof err) == 0, "param then literal");
    ok(router_add(r, "PUT", "/*rest", 3, NULL, err, sizeof err) == 0, "a wildcard");
    ok(router_add(r, "GET", "/r7/:x", 4, NULL, err, sizeof err) == 0, "deeper, same first literal");
    is_int(lookup(r, "GET", "/a/b", &m, allow), ROUTER_FOUND, "GET /a/b");
    is_int(m.id, 1, "from the literal's bucket");
    is_int(lookup(r, "POST", "/a/b", &m, allow), ROUTER_FOUND, "POST /a/b");
    is_int(m.id, 2, "from a route starting with a parameter, after the bucket");
    is_int(lookup(r, "PUT", "/a/b", &m, allow), ROUTER_FOUND, "PUT /a/b");
    is_int(m.id, 3, "from the wildcard, last");
    is_int(lookup(r, "DELETE", "/a/b", &m, allow), ROUTER_METHOD_NOT_ALLOWED, "DELETE /a/b");
    is_str(allow, "GET, HEAD, POST, PUT", "Allow from the bucket and the rest, in order");
    is_int(lookup(r, "POST", "/r7/b", &m, allow), ROUTER_FOUND, "POST /r7/b");
    is_int(m.id, 2, "a parameter route beside a bucket of other shapes");
    is_int(lookup(r, "GET", "/r7/z", &m, allow), ROUTER_FOUND, "GET /r7/z");
    is_int(m.id, 4, "the deeper literal-first route");
    is_int(lookup(r, "GET", "//b", &m, allow), ROUTER_METHOD_NOT_ALLOWED,
           "an empty first segment: only routes not starting with a literal");
    is_str(allow, "PUT", "the wildcard takes it; :y needs a non-empty segment");
    is_int(lookup(r, "GET", "/", &m, allow), ROUTER_NOT_FOUND, "no root route");
    router_destroy(r);
}

int main(void)
{
    test_basic();
    test_deep_path();
    test_explicit_head();
    test_bad_patterns();
    test_conflicts();
    test_encoded_targets();
    test_first_literal_index();
    return done_testing();
}
