/* The Lua host: generation building (errors as file:line), JSON <-> Lua
 * conversion on the request path, error mapping, and yielding bindings. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "lhost.h"
#include "tap.h"

static const lhost_opts opts = {"./lua/?.lua;./lua/?/init.lua", 16, 4096, 64u << 20, 1000, 2000};
static char dir[] = "/tmp/glasgow-lhost-XXXXXX";

static void write_file(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void clear_dir(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -f %s/*.lua", dir);
    if (system(cmd) != 0)
        printf("# cannot clear %s\n", dir);
}

static lhost_gen *build(char *err, size_t errlen)
{
    bundle *b = bundle_read(dir, err, errlen);
    if (!b)
        return NULL;
    lhost_gen *g = lhost_gen_create(b, &opts, 1, err, errlen);
    bundle_free(b);
    return g;
}

/* A captured response. */
static unsigned got_status;
static char got_body[8192];
static char got_ctype[128];
static int completions;

static void grab_header(void *arg, const char *name, const char *value)
{
    (void)arg;
    if (!strcasecmp(name, "Content-Type"))
        snprintf(got_ctype, sizeof got_ctype, "%s", value);
}

static void on_complete(request *r)
{
    lhost_response res;
    lhost_result(r, &res);
    got_status = res.status;
    snprintf(got_body, sizeof got_body, "%.*s", (int)res.body_len, res.body);
    got_ctype[0] = '\0';
    lhost_result_headers(r, grab_header, NULL);
    completions++;
}

static const char *req_ctype;

static void each_header(request *r, request_pair_fn fn, void *arg)
{
    (void)r;
    if (req_ctype)
        fn(arg, "Content-Type", req_ctype);
}

/* Runs method path with body on g; returns LHOST_DONE or LHOST_YIELDED. */
static int run(lhost_gen *g, request *r, const char *method, const char *path, const char *body)
{
    memset(r, 0, sizeof *r);
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->request_id, sizeof r->request_id, "test-id");
    r->path = xstrdup(path);
    strbuf_init(&r->body);
    strbuf_init(&r->err_body);
    if (body)
        strbuf_adds(&r->body, body);
    r->on_complete = on_complete;
    r->each_header = each_header;
    lhost_match(g, r);
    return lhost_run(g, r);
}

static void dispose(request *r)
{
    free(r->path);
    strbuf_dispose(&r->body);
    strbuf_dispose(&r->err_body);
}

static void expect(lhost_gen *g, const char *method, const char *path, const char *body,
                   unsigned status, const char *needle, const char *what)
{
    request r;
    int rc = run(g, &r, method, path, body);
    ok(rc == LHOST_DONE && got_status == status && strstr(got_body, needle) != NULL,
       "%s: %u with %s", what, status, needle);
    if (got_status != status || !strstr(got_body, needle))
        printf("#   got %u %s\n", got_status, got_body);
    dispose(&r);
}

static const char *const app_routes =
    "local glasgow = require 'glasgow'\n"
    "local json = glasgow.json\n"
    "return {\n"
    " { method = 'GET', path = '/types', handler = function()\n"
    "     return 200, { int = 42, float = 1.5, bool = false, str = 'h\\u{e9}llo \"q\"',\n"
    "                   arr = { 1, 2, 3 }, null = json.null, nested = { a = { b = { 'c' } } } }\n"
    "   end },\n"
    " { method = 'POST', path = '/echo', body = { type = 'object' }, max_body = 2048,\n"
    "   handler = function(req) return 201, req.body end },\n"
    " { method = 'GET', path = '/boom', handler = function() error('secret detail') end },\n"
    " { method = 'GET', path = '/fail', handler = function()\n"
    "     glasgow.fail(409, 'conflict', 'already there', { field = 'email' }) end },\n"
    " { method = 'GET', path = '/badstatus', handler = function() return 99 end },\n"
    " { method = 'GET', path = '/inject', handler = function()\n"
    "     return 200, 'x', { ['X-A'] = 'a\\r\\nSet-Cookie: y' } end },\n"
    " { method = 'GET', path = '/text', handler = function() return 200, 'plain' end },\n"
    " { method = 'GET', path = '/global', handler = function() leak = 1; return 200, {} end },\n"
    " { method = 'GET', path = '/sleep', handler = function()\n"
    "     glasgow.sleep(20); return 200, { slept = true } end },\n"
    " { method = 'GET', path = '/nested', handler = function()\n"
    "     local co = coroutine.wrap(function() glasgow.sleep(1) end); co(); return 200, {} end },\n"
    " { method = 'GET', path = '/items/:id', params = { type = 'object',\n"
    "     properties = { id = { type = 'integer', minimum = 1 } }, required = { 'id' } },\n"
    "   handler = function(req) return 200, { id = req.params.id, t = type(req.params.id) } end "
    "},\n"
    "}\n";

static void test_requests(void)
{
    char err[1024];
    clear_dir();
    write_file("app.lua", app_routes);
    lhost_gen *g = build(err, sizeof err);
    ok(g != NULL, "generation builds (%s)", g ? "ok" : err);
    if (!g)
        return;
    expect(g, "GET", "/types", NULL, 200, "\"int\":42", "integer encodes as integer");
    expect(g, "GET", "/types", NULL, 200, "\"float\":1.5", "float");
    expect(g, "GET", "/types", NULL, 200, "\"bool\":false", "boolean");
    expect(g, "GET", "/types", NULL, 200, "\"null\":null", "null sentinel");
    expect(g, "GET", "/types", NULL, 200, "\"arr\":[1,2,3]", "array");
    expect(g, "GET", "/types", NULL, 200, "\"b\":[\"c\"]", "nested");
    expect(g, "GET", "/types", NULL, 200, "h\xc3\xa9llo \\\"q\\\"", "unicode and quotes");
    is_str(got_ctype, "application/json", "table bodies are JSON");

    req_ctype = "application/json";
    expect(g, "POST", "/echo", "{\"a\":[1,{\"b\":null}],\"u\":\"\\u00e9\"}", 201,
           "\"a\":[1,{\"b\":null}]", "JSON body round-trips");
    expect(g, "POST", "/echo", "{\"u\":\"\\u00e9\"}", 201, "\"u\":\"\xc3\xa9\"", "escapes decode");
    expect(g, "POST", "/echo", "{\"a\":", 400, "invalid_json", "truncated JSON");
    expect(g, "POST", "/echo", "[1,2]", 400, "validation_failed", "array where object expected");
    expect(g, "POST", "/echo", "", 400, "body_required", "empty body");
    expect(g, "POST", "/echo", "{\"n\":1e999}", 400, "invalid_json", "infinite number refused");
    expect(g, "POST", "/echo", "{\"n\":NaN}", 400, "invalid_json", "NaN refused");
    {
        strbuf deep;
        strbuf_init(&deep);
        for (int i = 0; i < 10000; i++)
            strbuf_adds(&deep, "[");
        for (int i = 0; i < 10000; i++)
            strbuf_adds(&deep, "]");
        strbuf_adds(&deep, "");
        char *d = xstrndup(deep.buf, deep.len);
        expect(g, "POST", "/echo", d, 400, "invalid_json", "10000-deep nesting refused");
        free(d);
        strbuf_dispose(&deep);
    }
    req_ctype = "text/plain";
    expect(g, "POST", "/echo", "{}", 415, "unsupported_media_type", "wrong content type");
    req_ctype = "application/json; charset=latin1";
    expect(g, "POST", "/echo", "{}", 415, "unsupported_media_type", "non-UTF-8 charset");
    req_ctype = NULL;
    expect(g, "POST", "/echo", "{}", 415, "unsupported_media_type", "no content type");

    expect(g, "GET", "/boom", NULL, 500, "\"request_id\":\"test-id\"", "error is a 500 with id");
    ok(strstr(got_body, "secret detail") == NULL, "the cause is not leaked to the client");
    expect(g, "GET", "/fail", NULL, 409, "\"field\":\"email\"", "glasgow.fail maps status/details");
    expect(g, "GET", "/badstatus", NULL, 500, "internal", "bad status is a 500");
    expect(g, "GET", "/inject", NULL, 500, "internal", "CRLF in a header is a 500");
    expect(g, "GET", "/text", NULL, 200, "plain", "string body passes through");
    ok(strstr(got_ctype, "text/plain") != NULL, "string body is text/plain");
    expect(g, "GET", "/global", NULL, 500, "internal", "globals are locked");
    expect(g, "GET", "/nope", NULL, 404, "not_found", "unknown path");
    expect(g, "DELETE", "/types", NULL, 405, "method_not_allowed", "wrong method");
    expect(g, "GET", "/items/12", NULL, 200, "\"t\":\"number\"", "params are coerced");
    expect(g, "GET", "/items/0", NULL, 400, "params.id", "param schema enforced");
    expect(g, "GET", "/items/abc", NULL, 400, "validation_failed", "non-integer param");
    expect(g, "GET", "/openapi.json", NULL, 200, "\"/items/{id}\"", "openapi lists routes");

    /* yielding: sleep suspends, the loop completes it */
    loop *lp = loop_create();
    lhost_thread_init(lp);
    request r;
    completions = 0;
    int rc = run(g, &r, "GET", "/sleep", NULL);
    is_int(rc, LHOST_YIELDED, "sleep yields");
    is_int(completions, 0, "not complete yet");
    uint64_t t0 = loop_clock_ms();
    while (!completions && loop_clock_ms() - t0 < 10000)
        loop_run_once(lp, -1);
    is_int(completions, 1, "completed from the loop");
    ok(got_status == 200 && strstr(got_body, "slept"), "after the sleep");
    dispose(&r);

    completions = 0;
    rc = run(g, &r, "GET", "/sleep", NULL);
    is_int(rc, LHOST_YIELDED, "a second sleep yields");
    lhost_abort(&r, 504, "deadline_exceeded", "too slow");
    is_int(got_status, 504, "abort completes with its status");
    is_int(completions, 1, "abort completes it once");
    dispose(&r);
    t0 = loop_clock_ms();
    while (loop_clock_ms() - t0 < 50)
        loop_run_once(lp, 10);
    is_int(completions, 1, "the cancelled sleep never fires into the freed request");
    is_int(loop_next_timeout(lp), -1, "and no timer is left armed");

    expect(g, "GET", "/nested", NULL, 500, "internal", "sleep in a nested coroutine refused");
    lhost_thread_init(NULL);
    loop_destroy(lp);
    lhost_gen_unref(g);
}

static void expect_build_error(const char *name, const char *src, const char *needle,
                               const char *what)
{
    char err[1024];
    clear_dir();
    write_file("good.lua", "return { { method = 'GET', path = '/good', handler = function() "
                           "return 200, {} end } }\n");
    write_file(name, src);
    lhost_gen *g = build(err, sizeof err);
    ok(g == NULL && strstr(err, needle) != NULL, "%s: error names %s", what, needle);
    if (g || !strstr(err, needle))
        printf("#   got: %s\n", g ? "(built)" : err);
    lhost_gen_unref(g);
}

static void test_build_errors(void)
{
    expect_build_error("bad.lua", "return {\n  {\n method = = 'GET' }\n}\n",
                       "bad.lua:3:", "syntax error");
    expect_build_error("bad.lua", "local x = nil\nx.y = 1\nreturn {}\n",
                       "bad.lua:2:", "error at load");
    expect_build_error("bad.lua", "return 42\n", "bad.lua:1:", "not a table");
    expect_build_error("bad.lua",
                       "return {\n{ method = 'GET', path = '/x',\n  handler = function() end,"
                       " hanlder = 1 } }\n",
                       "unknown field", "typo in a route field");
    expect_build_error("bad.lua",
                       "return {\n{ method = 'GET', path = '/good',\n"
                       "  handler = function() end } }\n",
                       "good.lua:1", "conflict names the other file");
    expect_build_error("bad.lua",
                       "return { { method = 'GET', path = '/x/:id', handler = function() end,\n"
                       "  params = { type = 'object', properties = {} } } }\n",
                       "has no schema", "path param without schema");
    expect_build_error("bad.lua",
                       "return { { method = 'POST', path = '/x', handler = function() end,\n"
                       "  body = { type = 'object', maxlen = 3 } } }\n",
                       "maxlen", "unknown schema keyword");
    expect_build_error("bad.lua", "require('routes._missing')\nreturn {}\n", "_missing",
                       "missing helper module");
    expect_build_error("_helper.lua", "return {\n", "_helper.lua", "helper syntax error");
}

static void test_helpers(void)
{
    char err[1024];
    clear_dir();
    write_file("_ver.lua", "return { version = 'v7' }\n");
    write_file("a.lua", "local v = require('routes._ver')\nreturn { { method = 'GET', path = "
                        "'/v', handler = function() return 200, { v = v.version } end } }\n");
    lhost_gen *g = build(err, sizeof err);
    ok(g != NULL, "helper modules load (%s)", g ? "ok" : err);
    if (g) {
        expect(g, "GET", "/v", NULL, 200, "\"v\":\"v7\"", "route uses its helper");
        is_int(lhost_gen_route_count(g), 4, "one route plus openapi.json, /docs and /docs/:name");
    }
    lhost_gen_unref(g);
    clear_dir();
    g = build(err, sizeof err);
    ok(g != NULL && lhost_gen_route_count(g) == 3,
       "an empty bundle is valid (the three built-in routes)");
    lhost_gen_unref(g);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }
    test_requests();
    test_build_errors();
    test_helpers();
    rmdir(dir);
    return done_testing();
}
