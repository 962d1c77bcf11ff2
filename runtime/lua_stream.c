/*
 * lua_stream: req.body_stream and req:respond for Lua handlers, on top of
 * bodystream.h. A wait arms the stream's notify, sets r->cancel and
 * yields; the notify callback finishes the operation in C and resumes the
 * coroutine with its results (lwait.h).
 */
#include "lua_stream.h"

#include <lauxlib.h>
#include <lua.h>
#include <string.h>
#include <strings.h>

#include "bodystream.h"
#include "lwait.h"

#define SOURCE_MT "glasgow.body_stream"
#define WRITER_MT "glasgow.body_writer"
#define REQUEST_MT "glasgow.request"

/* ---- shared: the request's end cuts the objects loose ---------------------------- */

typedef struct lsource {
    body_source *s;
    request *r; /* NULL once the request ended */
    request_cleanup *c;
    size_t want; /* the pending read's max */
} lsource;

typedef struct lwriter {
    body_sink *k;
    request *r;
    request_cleanup *c;
    int ref; /* the chunk being written while waiting */
    const char *p;
    size_t left;
    int closed;
} lwriter;

static void source_cleanup(void *data)
{
    lsource *u = data;
    if (u->s)
        body_source_notify(u->s, NULL, NULL);
    u->s = NULL;
    u->r = NULL;
    u->c = NULL;
}

static void writer_cleanup(void *data)
{
    lwriter *u = data;
    if (u->k)
        body_sink_notify(u->k, NULL, NULL);
    u->k = NULL;
    u->r = NULL;
    u->c = NULL;
}

/* What an err of kind k answers when raised, and what it says. */
static void error_fields(const char *k, int *status, const char **code, const char **msg)
{
    if (strcmp(k, BODY_ERR_CLOSED) == 0) {
        *status = 400, *code = "client_closed", *msg = "the client closed the connection";
    } else if (strcmp(k, BODY_ERR_TIMEOUT) == 0) {
        *status = 408, *code = "body_too_slow";
        *msg = "the transfer stalled or fell below the minimum rate";
    } else if (strcmp(k, BODY_ERR_TOO_LARGE) == 0) {
        *status = 413, *code = "body_too_large", *msg = "the body is larger than allowed";
    } else {
        *status = 503, *code = "aborted", *msg = "the request is ending";
    }
}

static void set_field(lua_State *L, const char *k, const char *v)
{
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

/* Pushes nil, err: err a glasgow.errors object {source = "stream", kind =
 * one of the BODY_ERR_* strings, status, code, message}. Built without
 * calling Lua (this also runs on a yielded coroutine's stack, when a read
 * or write is resumed): the metatable is glasgow.errors' own, read from
 * package.loaded, which the app has loaded before any handler runs. */
static int push_error(lua_State *L, const char *err)
{
    const char *kind = err ? err : BODY_ERR_ABORTED;
    int status;
    const char *code, *msg;
    error_fields(kind, &status, &code, &msg);
    lua_pushnil(L);
    lua_createtable(L, 0, 5);
    set_field(L, "source", "stream");
    set_field(L, "kind", kind);
    set_field(L, "code", code);
    set_field(L, "message", msg);
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "glasgow.errors");
        lua_remove(L, -2);
        if (lua_istable(L, -1)) {
            lua_getfield(L, -1, "mt");
            lua_remove(L, -2);
        }
    }
    if (lua_istable(L, -1))
        lua_setmetatable(L, -2);
    else
        lua_pop(L, 1);
    return 2;
}

/* ---- body_stream ------------------------------------------------------------------ */

/* Pushes the outcome of a read onto L; returns the count. */
static int push_read(lua_State *L, body_source *s, size_t max, int *again)
{
    char buf[BODY_BUF_BYTES];
    ssize_t n = body_source_read(s, buf, max);
    *again = n == BODY_AGAIN;
    if (n > 0) {
        lua_pushlstring(L, buf, (size_t)n);
        return 1;
    }
    if (n == 0) {
        lua_pushnil(L);
        return 1;
    }
    if (n == BODY_ERROR)
        return push_error(L, body_source_error(s));
    return 0;
}

static void source_ready(void *arg)
{
    lsource *u = arg;
    request *r = u->r;
    int again;
    lua_State *co = r->co;
    int n = push_read(co, u->s, u->want, &again);
    if (again) { /* cannot happen: the notify comes when a read can progress */
        body_source_notify(u->s, source_ready, u);
        return;
    }
    r->cancel = NULL;
    r->op = NULL;
    lwait_resume(r, n);
}

static void source_cancel(request *r)
{
    lsource *u = r->op;
    if (u && u->s)
        body_source_notify(u->s, NULL, NULL);
}

static int source_read(lua_State *L)
{
    lsource *u = luaL_checkudata(L, 1, SOURCE_MT);
    lua_Integer max = luaL_optinteger(L, 2, BODY_BUF_BYTES);
    if (max < 1)
        return luaL_argerror(L, 2, "must be at least 1");
    if (max > (lua_Integer)BODY_BUF_BYTES)
        max = (lua_Integer)BODY_BUF_BYTES;
    if (!u->s)
        return push_error(L, BODY_ERR_ABORTED);
    request *r = lwait_request_of(L, "body_stream:read");
    if (r != u->r)
        return luaL_error(L, "body_stream:read: the stream belongs to another request");
    int again;
    int n = push_read(L, u->s, (size_t)max, &again);
    if (!again)
        return n;
    u->want = (size_t)max;
    body_source_notify(u->s, source_ready, u);
    r->cancel = source_cancel;
    r->op = u;
    return lua_yield(L, 0);
}

static int source_length(lua_State *L)
{
    lsource *u = luaL_checkudata(L, 1, SOURCE_MT);
    int64_t n = u->s ? body_source_length(u->s) : -1;
    if (n < 0)
        lua_pushnil(L);
    else
        lua_pushnumber(L, (lua_Number)n);
    return 1;
}

static int source_consumed(lua_State *L)
{
    lsource *u = luaL_checkudata(L, 1, SOURCE_MT);
    lua_pushnumber(L, u->s ? (lua_Number)body_source_consumed(u->s) : 0);
    return 1;
}

static int source_gc(lua_State *L)
{
    lsource *u = luaL_checkudata(L, 1, SOURCE_MT);
    if (u->r && u->c)
        request_remove_cleanup(u->r, u->c);
    u->r = NULL;
    u->s = NULL;
    return 0;
}

/* ---- the writer ---------------------------------------------------------------- */

/* Writes what is left of the pending chunk; returns 1 when done (results
 * pushed, count in *nres), 0 when the sink is full again. */
static int writer_pump(lua_State *L, lwriter *u, int *nres)
{
    while (u->left > 0) {
        ssize_t n = body_sink_write(u->k, u->p, u->left);
        if (n == BODY_AGAIN)
            return 0;
        if (n < 0) {
            *nres = push_error(L, body_sink_error(u->k));
            return 1;
        }
        u->p += n;
        u->left -= (size_t)n;
    }
    lua_pushboolean(L, 1);
    *nres = 1;
    return 1;
}

static void writer_ready(void *arg)
{
    lwriter *u = arg;
    request *r = u->r;
    lua_State *co = r->co;
    int nres;
    if (!writer_pump(co, u, &nres)) {
        body_sink_notify(u->k, writer_ready, u);
        return;
    }
    luaL_unref(co, LUA_REGISTRYINDEX, u->ref);
    u->ref = LUA_NOREF;
    r->cancel = NULL;
    r->op = NULL;
    lwait_resume(r, nres);
}

static void writer_cancel(request *r)
{
    lwriter *u = r->op;
    if (!u)
        return;
    if (u->k)
        body_sink_notify(u->k, NULL, NULL);
    luaL_unref((lua_State *)r->co, LUA_REGISTRYINDEX, u->ref);
    u->ref = LUA_NOREF;
}

static int writer_write(lua_State *L)
{
    lwriter *u = luaL_checkudata(L, 1, WRITER_MT);
    size_t len;
    const char *p = luaL_checklstring(L, 2, &len);
    if (!u->k)
        return push_error(L, BODY_ERR_ABORTED);
    if (u->closed)
        return luaL_error(L, "writer:write: the body was already closed");
    request *r = lwait_request_of(L, "writer:write");
    if (r != u->r)
        return luaL_error(L, "writer:write: the writer belongs to another request");
    u->p = p;
    u->left = len;
    int nres;
    if (writer_pump(L, u, &nres))
        return nres;
    lua_pushvalue(L, 2); /* keeps the chunk alive while its bytes wait */
    u->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    body_sink_notify(u->k, writer_ready, u);
    r->cancel = writer_cancel;
    r->op = u;
    return lua_yield(L, 0);
}

static int writer_close(lua_State *L)
{
    lwriter *u = luaL_checkudata(L, 1, WRITER_MT);
    if (!u->k)
        return push_error(L, BODY_ERR_ABORTED);
    u->closed = 1;
    body_sink_finish(u->k);
    if (body_sink_error(u->k))
        return push_error(L, body_sink_error(u->k));
    lua_pushboolean(L, 1);
    return 1;
}

static int writer_written(lua_State *L)
{
    lwriter *u = luaL_checkudata(L, 1, WRITER_MT);
    lua_pushnumber(L, u->k ? (lua_Number)body_sink_written(u->k) : 0);
    return 1;
}

static int writer_gc(lua_State *L)
{
    lwriter *u = luaL_checkudata(L, 1, WRITER_MT);
    if (u->r && u->c)
        request_remove_cleanup(u->r, u->c);
    u->r = NULL;
    u->k = NULL;
    return 0;
}

/* req:respond(status [, headers [, content_length]]) */
static int req_respond(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer status = luaL_checkinteger(L, 2);
    if (status < 100 || status > 599)
        return luaL_argerror(L, 2, "must be an HTTP status (100-599)");
    if (!lua_isnoneornil(L, 3))
        luaL_checktype(L, 3, LUA_TTABLE);
    int64_t length = -1;
    if (!lua_isnoneornil(L, 4)) {
        lua_Number n = luaL_checknumber(L, 4);
        if (!(n >= 0 && n <= 9007199254740992.0) || n != (lua_Number)(int64_t)n)
            return luaL_argerror(L, 4, "must be a non-negative integer");
        length = (int64_t)n;
    }
    request *r = lwait_request_of(L, "req:respond");
    if (r->responded)
        return luaL_error(L, "req:respond: the response has already started");
    int has_type = 0;
    if (lua_istable(L, 3)) {
        lua_pushnil(L);
        while (lua_next(L, 3) != 0) {
            const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
            int vt = lua_type(L, -1);
            const char *value = vt == LUA_TSTRING || vt == LUA_TNUMBER ? lua_tostring(L, -1) : NULL;
            if (!name || !value || request_add_header(r, name, value) < 0)
                return luaL_error(L, "req:respond: bad response header %s",
                                  name ? name : "(not a string)");
            if (!strcasecmp(name, "Content-Type"))
                has_type = 1;
            lua_pop(L, 1);
        }
    }
    if (!has_type)
        request_add_header(r, "Content-Type", "application/octet-stream");
    body_sink *k = request_body_sink(r, (unsigned)status, length);
    if (!k)
        return luaL_error(L, "req:respond: streamed responses are not available here");
    lua_pushboolean(L, 1);
    lua_setfield(L, 1, "responded");
    lwriter *u = lua_newuserdata(L, sizeof *u);
    memset(u, 0, sizeof *u);
    u->k = k;
    u->r = r;
    u->ref = LUA_NOREF;
    u->c = request_add_cleanup(r, writer_cleanup, u);
    luaL_getmetatable(L, WRITER_MT);
    lua_setmetatable(L, -2);
    return 1;
}

/* ---- setup ---------------------------------------------------------------------- */

static void define(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc)
{
    luaL_newmetatable(L, name);
    lua_newtable(L);
    luaL_register(L, NULL, methods);
    lua_setfield(L, -2, "__index");
    if (gc) {
        lua_pushcfunction(L, gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
}

/* The three metatables, made once per state. */
static void ensure_metatables(lua_State *L)
{
    luaL_getmetatable(L, REQUEST_MT);
    int have = lua_istable(L, -1);
    lua_pop(L, 1);
    if (have)
        return;
    static const luaL_Reg source_methods[] = {
        {"read", source_read},
        {"length", source_length},
        {"consumed", source_consumed},
        {NULL, NULL},
    };
    static const luaL_Reg writer_methods[] = {
        {"write", writer_write},
        {"close", writer_close},
        {"written", writer_written},
        {NULL, NULL},
    };
    static const luaL_Reg request_methods[] = {
        {"respond", req_respond},
        {"header", lwait_request_header},
        {NULL, NULL},
    };
    define(L, SOURCE_MT, source_methods, source_gc);
    define(L, WRITER_MT, writer_methods, writer_gc);
    /* the request table itself: methods and headers built on first read
     * (lwait_request_index), its fields stay writable */
    luaL_newmetatable(L, REQUEST_MT);
    lua_newtable(L);
    luaL_register(L, NULL, request_methods);
    lua_pushcclosure(L, lwait_request_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

int lua_stream_request_mt(lua_State *L)
{
    ensure_metatables(L);
    luaL_getmetatable(L, REQUEST_MT);
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

void lua_stream_decorate(lua_State *L, request *r, int mt_ref)
{
    /* by reference: a name lookup hashed the name per request */
    lua_rawgeti(L, LUA_REGISTRYINDEX, mt_ref);
    lua_setmetatable(L, -2);
    body_source *s = request_body_source(r);
    if (!s)
        return;
    lsource *u = lua_newuserdata(L, sizeof *u);
    memset(u, 0, sizeof *u);
    u->s = s;
    u->r = r;
    u->c = request_add_cleanup(r, source_cleanup, u);
    luaL_getmetatable(L, SOURCE_MT);
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, "body_stream");
}
