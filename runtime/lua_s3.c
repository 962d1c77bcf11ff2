/*
 * lua_s3: s3 for Lua coroutines (see lua_s3.h for the functions).
 *
 * A function that waits creates its wait record as a userdata first (so
 * nothing leaks if anything raises), starts the s3 operation with the
 * record as its argument, arms r->cancel and yields the record, which the
 * coroutine's stack keeps alive until the done callback resumes it. A get
 * handle outlives that first wait: it is a userdata of its own, whose
 * operation is cancelled by a request cleanup when the request ends, or
 * by __gc when Lua drops it first.
 */
#include "lua_s3.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bodystream.h"
#include "config.h"
#include "lwait.h"
#include "util.h"

#define WAIT_MT "glasgow.s3wait"
#define OBJ_MT "glasgow.s3object"

static _Thread_local s3_client *tl_client;
static s3_config s3cfg;
static uint64_t read_max = 8ULL * 1024 * 1024;

enum { W_HEAD, W_DELETE, W_LIST, W_LIST_UPLOADS, W_ABORT, W_BUCKET, W_PUT, W_READ };

/* One waiting call: a userdata on the waiting coroutine's stack. */
typedef struct s3wait {
    s3_op *op;
    request *r;
    int kind;
    strbuf buf;          /* read: the body */
    uint64_t max;        /* read: bound */
    body_source *src;    /* put_stream: the request's body */
    const char *src_err; /* why it failed (BODY_ERR_*) */
} s3wait;

/* A get's object: the handle Lua holds between get and pipe or close. */
typedef struct s3obj {
    s3_op *op;
    request *r;               /* NULL once the request ended */
    request_cleanup *cleanup; /* cancels op when r ends */
    s3_object_info info;
    int waiting;  /* 1: the coroutine waits for the headers; 2: for the end of a pipe */
    int finished; /* the op ended (done ran) */
    s3_error err;
    int failed;
    body_sink *sink;      /* while piping */
    const char *sink_err; /* why the client side failed (BODY_ERR_*) */
} s3obj;

/* ---- errors and results ---------------------------------------------------------- */

static int push_error(lua_State *L, const s3_error *e)
{
    lua_pushnil(L);
    lua_pushstring(L, s3_kind_name(e->kind));
    lua_pushstring(L, e->code);
    lua_pushinteger(L, (lua_Integer)e->status);
    lua_pushstring(L, e->message);
    lua_pushboolean(L, e->retryable);
    return 6;
}

static void set_num(lua_State *L, const char *k, uint64_t v)
{
    lua_pushnumber(L, (lua_Number)v);
    lua_setfield(L, -2, k);
}

static void set_str(lua_State *L, const char *k, const char *v)
{
    if (v && v[0]) {
        lua_pushstring(L, v);
        lua_setfield(L, -2, k);
    }
}

static void push_info(lua_State *L, const s3_object_info *in)
{
    lua_createtable(L, 0, 8);
    set_num(L, "status", in->status);
    set_num(L, "size", in->size);
    set_num(L, "length", in->length);
    if (in->status == 206) {
        set_num(L, "first", in->first);
        set_num(L, "last", in->last);
    }
    set_str(L, "etag", in->etag);
    set_str(L, "last_modified", in->last_modified);
    set_str(L, "content_type", in->content_type);
}

static void push_list(lua_State *L, int kind, const s3_result *res)
{
    lua_createtable(L, 0, 4);
    lua_createtable(L, (int)res->nentries, 0);
    for (size_t i = 0; i < res->nentries; i++) {
        const s3_entry *en = &res->entries[i];
        lua_createtable(L, 0, 4);
        set_str(L, "key", en->key);
        if (kind == W_LIST) {
            set_num(L, "size", en->size);
            set_str(L, "etag", en->etag);
            set_str(L, "last_modified", en->last_modified);
        } else {
            set_str(L, "upload_id", en->upload_id);
            set_str(L, "initiated", en->last_modified);
        }
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_setfield(L, -2, kind == W_LIST ? "objects" : "uploads");
    lua_pushboolean(L, res->truncated);
    lua_setfield(L, -2, "truncated");
    if (kind == W_LIST) {
        set_str(L, "continuation", res->truncated ? res->next_token : NULL);
    } else if (res->truncated) {
        set_str(L, "key_marker", res->next_key_marker);
        set_str(L, "upload_id_marker", res->next_upload_marker);
    }
}

/* ---- waits ---------------------------------------------------------------------------- */

static void wait_cancel(request *r)
{
    s3wait *w = r->op;
    if (w && w->op) {
        s3_op_cancel(w->op);
        w->op = NULL;
    }
    if (w && w->src)
        body_source_notify(w->src, NULL, NULL);
}

static int wait_gc(lua_State *L)
{
    s3wait *w = luaL_checkudata(L, 1, WAIT_MT);
    if (w->op)
        s3_op_cancel(w->op);
    w->op = NULL;
    strbuf_dispose(&w->buf);
    return 0;
}

static s3_client *client_of(lua_State *L, const char *fname)
{
    if (!tl_client)
        luaL_error(L, "%s: no object store is configured (set S3_ENDPOINT)", fname);
    return tl_client;
}

/* Creates the wait record on L's stack. */
static s3wait *wait_new(lua_State *L, request *r, int kind)
{
    s3wait *w = lua_newuserdata(L, sizeof *w);
    memset(w, 0, sizeof *w);
    strbuf_init(&w->buf);
    luaL_getmetatable(L, WAIT_MT);
    lua_setmetatable(L, -2);
    w->r = r;
    w->kind = kind;
    return w;
}

static void on_done(void *arg, const s3_result *res, const s3_error *err)
{
    s3wait *w = arg;
    request *r = w->r;
    lua_State *co = r->co;
    w->op = NULL;
    r->cancel = NULL;
    r->op = NULL;
    if (w->src)
        body_source_notify(w->src, NULL, NULL);
    if (err && err->kind == S3E_CLIENT && w->src_err) {
        s3_error e = *err;
        snprintf(e.code, sizeof e.code, "%s", w->src_err);
        snprintf(e.message, sizeof e.message, "the request's body failed: %s", w->src_err);
        lwait_resume(r, push_error(co, &e));
        return;
    }
    if (err) {
        lwait_resume(r, push_error(co, err));
        return;
    }
    switch (w->kind) {
    case W_HEAD: push_info(co, &res->info); break;
    case W_LIST:
    case W_LIST_UPLOADS: push_list(co, w->kind, res); break;
    case W_PUT:
        lua_createtable(co, 0, 3);
        set_num(co, "size", res->size);
        set_str(co, "sha256", res->sha256);
        set_str(co, "etag", res->etag);
        break;
    case W_READ:
        lua_pushlstring(co, w->buf.buf ? w->buf.buf : "", w->buf.len);
        strbuf_dispose(&w->buf);
        break;
    default: lua_pushboolean(co, 1); break;
    }
    lwait_resume(r, 1);
}

/* Arms the wait after the op started, or returns the failure at once. */
static int wait_start(lua_State *L, request *r, s3wait *w, s3_op *op, const s3_error *err)
{
    if (!op)
        return push_error(L, err);
    w->op = op;
    r->cancel = wait_cancel;
    r->op = w;
    return lua_yield(L, 1);
}

static const char *check_key(lua_State *L, int idx)
{
    size_t n;
    const char *k = luaL_checklstring(L, idx, &n);
    if (strlen(k) != n)
        luaL_argerror(L, idx, "keys hold no NUL");
    return k;
}

static const char *opt_string(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx))
        return NULL;
    size_t n;
    const char *s = luaL_checklstring(L, idx, &n);
    if (strlen(s) != n)
        luaL_argerror(L, idx, "no NUL allowed");
    return s;
}

/* An optional byte offset or count: a non-negative integer below 2^53. */
static int opt_u64(lua_State *L, int idx, uint64_t *out)
{
    if (lua_isnoneornil(L, idx))
        return 0;
    lua_Number v = luaL_checknumber(L, idx);
    if (!(v >= 0 && v <= 9007199254740992.0) || v != (lua_Number)(uint64_t)v)
        luaL_argerror(L, idx, "expected a non-negative integer");
    *out = (uint64_t)v;
    return 1;
}

static int l_head(lua_State *L)
{
    const char *key = check_key(L, 1);
    request *r = lwait_request_of(L, "head");
    s3_client *c = client_of(L, "head");
    s3wait *w = wait_new(L, r, W_HEAD);
    s3_error err;
    return wait_start(L, r, w, s3_head_object(c, key, on_done, w, &err), &err);
}

static int l_delete(lua_State *L)
{
    const char *key = check_key(L, 1);
    request *r = lwait_request_of(L, "delete");
    s3_client *c = client_of(L, "delete");
    s3wait *w = wait_new(L, r, W_DELETE);
    s3_error err;
    return wait_start(L, r, w, s3_delete_object(c, key, on_done, w, &err), &err);
}

static int l_list(lua_State *L)
{
    const char *prefix = opt_string(L, 1);
    const char *cont = opt_string(L, 2);
    uint64_t max = 0;
    opt_u64(L, 3, &max);
    if (max > 1000)
        luaL_argerror(L, 3, "at most 1000 keys per page");
    request *r = lwait_request_of(L, "list");
    s3_client *c = client_of(L, "list");
    s3wait *w = wait_new(L, r, W_LIST);
    s3_error err;
    return wait_start(L, r, w, s3_list_objects(c, prefix, cont, (unsigned)max, on_done, w, &err),
                      &err);
}

static int l_list_uploads(lua_State *L)
{
    const char *prefix = opt_string(L, 1);
    const char *km = opt_string(L, 2);
    const char *um = opt_string(L, 3);
    uint64_t max = 0;
    opt_u64(L, 4, &max);
    if (max > 1000)
        luaL_argerror(L, 4, "at most 1000 uploads per page");
    request *r = lwait_request_of(L, "list_uploads");
    s3_client *c = client_of(L, "list_uploads");
    s3wait *w = wait_new(L, r, W_LIST_UPLOADS);
    s3_error err;
    return wait_start(L, r, w, s3_list_uploads(c, prefix, km, um, (unsigned)max, on_done, w, &err),
                      &err);
}

static int l_abort_upload(lua_State *L)
{
    const char *key = check_key(L, 1);
    const char *id = luaL_checkstring(L, 2);
    request *r = lwait_request_of(L, "abort_upload");
    s3_client *c = client_of(L, "abort_upload");
    s3wait *w = wait_new(L, r, W_ABORT);
    s3_error err;
    return wait_start(L, r, w, s3_abort_multipart(c, key, id, on_done, w, &err), &err);
}

static int l_bucket(lua_State *L)
{
    int create = lua_toboolean(L, lua_upvalueindex(1));
    const char *name = create ? "create_bucket" : "head_bucket";
    request *r = lwait_request_of(L, name);
    s3_client *c = client_of(L, name);
    s3wait *w = wait_new(L, r, W_BUCKET);
    s3_error err;
    return wait_start(
        L, r, w,
        create ? s3_create_bucket(c, on_done, w, &err) : s3_head_bucket(c, on_done, w, &err), &err);
}

/* put(key, data, content_type, max_bytes, sha256): a string body (the
 * request's streamed body goes through put_stream). */
static int l_put(lua_State *L)
{
    const char *key = check_key(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    s3_put_opts o;
    memset(&o, 0, sizeof o);
    o.content_type = opt_string(L, 3);
    opt_u64(L, 4, &o.max_bytes);
    o.sha256 = opt_string(L, 5);
    o.data = data;
    o.len = len;
    request *r = lwait_request_of(L, "put");
    s3_client *c = client_of(L, "put");
    s3wait *w = wait_new(L, r, W_PUT);
    /* the body string stays referenced by the coroutine's stack below
     * the yielded record until the put ends */
    s3_error err;
    return wait_start(L, r, w, s3_put(c, key, &o, on_done, w, &err), &err);
}

/* ---- read: a whole (small) object into a string -------------------------------------- */

static void read_headers(void *arg, const s3_object_info *info)
{
    s3wait *w = arg;
    if (info->length > w->max) {
        request *r = w->r;
        s3_error e;
        memset(&e, 0, sizeof e);
        e.kind = S3E_TOO_LARGE;
        snprintf(e.code, sizeof e.code, "too_large");
        snprintf(e.message, sizeof e.message,
                 "the object is %llu bytes, over the %llu that read returns",
                 (unsigned long long)info->length, (unsigned long long)w->max);
        s3_op_cancel(w->op);
        w->op = NULL;
        r->cancel = NULL;
        r->op = NULL;
        lwait_resume(r, push_error(r->co, &e));
    }
}

static ssize_t read_write(void *arg, const char *buf, size_t len)
{
    s3wait *w = arg;
    if (w->buf.len + len > w->max)
        return S3_ABORT;
    strbuf_add(&w->buf, buf, len);
    return (ssize_t)len;
}

static int l_read(lua_State *L)
{
    const char *key = check_key(L, 1);
    s3_range range = {0, UINT64_MAX};
    int ranged = opt_u64(L, 2, &range.first);
    if (opt_u64(L, 3, &range.last) && !ranged)
        luaL_argerror(L, 2, "a range needs its first byte");
    uint64_t max = read_max;
    opt_u64(L, 4, &max);
    if (ranged && range.first > range.last)
        luaL_argerror(L, 3, "last is before first");
    request *r = lwait_request_of(L, "read");
    s3_client *c = client_of(L, "read");
    s3wait *w = wait_new(L, r, W_READ);
    w->max = max;
    s3_error err;
    return wait_start(
        L, r, w, s3_get(c, key, ranged ? &range : NULL, read_headers, read_write, on_done, w, &err),
        &err);
}

/* ---- get: the object handle ---------------------------------------------------------------- */

/* Stops using the sink (the request ends, or Lua dropped the object). */
static void obj_drop_sink(s3obj *o)
{
    if (o->sink && o->r)
        body_sink_notify(o->sink, NULL, NULL);
    o->sink = NULL;
}

static void obj_release(s3obj *o)
{
    obj_drop_sink(o);
    if (o->op) {
        s3_op_cancel(o->op);
        o->op = NULL;
    }
    if (o->r) {
        request_remove_cleanup(o->r, o->cleanup);
        o->r = NULL;
        o->cleanup = NULL;
    }
}

static void obj_cleanup(void *data)
{
    s3obj *o = data;
    obj_drop_sink(o);
    o->r = NULL; /* the record is already gone */
    o->cleanup = NULL;
    if (o->op) {
        s3_op_cancel(o->op);
        o->op = NULL;
    }
}

static int obj_gc(lua_State *L)
{
    obj_release(luaL_checkudata(L, 1, OBJ_MT));
    return 0;
}

static void obj_cancel_wait(request *r)
{
    s3obj *o = r->op;
    if (o->op) {
        s3_op_cancel(o->op);
        o->op = NULL;
    }
    o->waiting = 0;
}

static void obj_headers(void *arg, const s3_object_info *info)
{
    s3obj *o = arg;
    o->info = *info;
    if (o->waiting != 1 || !o->r)
        return;
    request *r = o->r;
    o->waiting = 0;
    r->cancel = NULL;
    r->op = NULL;
    lua_State *co = r->co;
    lua_pushvalue(co, -1); /* the handle, yielded */
    push_info(co, info);
    lwait_resume(r, 2);
}

static ssize_t obj_write(void *arg, const char *buf, size_t len);
static void lua_s3_pipe_done(s3obj *o, const s3_error *err);

static void obj_done(void *arg, const s3_result *res, const s3_error *err)
{
    s3obj *o = arg;
    (void)res;
    o->op = NULL;
    o->finished = 1;
    if (err) {
        o->failed = 1;
        o->err = *err;
    }
    if (!o->r)
        return;
    request *r = o->r;
    if (o->waiting == 1 && err) {
        /* failed before the headers (a missing key, a bad range) */
        o->waiting = 0;
        r->cancel = NULL;
        r->op = NULL;
        lwait_resume(r, push_error(r->co, err));
    } else if (o->waiting == 2) {
        lua_s3_pipe_done(o, err);
    }
}

static int l_get(lua_State *L)
{
    const char *key = check_key(L, 1);
    s3_range range = {0, UINT64_MAX};
    int ranged = opt_u64(L, 2, &range.first);
    if (opt_u64(L, 3, &range.last) && !ranged)
        luaL_argerror(L, 2, "a range needs its first byte");
    if (ranged && range.first > range.last)
        luaL_argerror(L, 3, "last is before first");
    request *r = lwait_request_of(L, "get");
    s3_client *c = client_of(L, "get");
    s3obj *o = lua_newuserdata(L, sizeof *o);
    memset(o, 0, sizeof *o);
    luaL_getmetatable(L, OBJ_MT);
    lua_setmetatable(L, -2);
    s3_error err;
    o->op = s3_get(c, key, ranged ? &range : NULL, obj_headers, obj_write, obj_done, o, &err);
    if (!o->op)
        return push_error(L, &err);
    o->r = r;
    o->cleanup = request_add_cleanup(r, obj_cleanup, o);
    o->waiting = 1;
    r->cancel = obj_cancel_wait;
    r->op = o;
    return lua_yield(L, 1);
}

static int l_close(lua_State *L)
{
    obj_release(luaL_checkudata(L, 1, OBJ_MT));
    return 0;
}

/* ---- streamed bodies: put from the request, pipe to the client ---------------------- */

/* A streamed body goes to the store in pieces of at least SRC_BATCH bytes
 * (or the rest), curl's whole upload buffer (S3_SEND_BUFFER): passing each
 * piece libmicrohttpd hands over on at once costs a curl wake-up, a send
 * and a pause per piece (bench/files.sh: uploads at half the direct rate
 * with 8 KiB pieces). Half the source's buffer, so that the connection
 * goes on reading while a batch waits. */
#define SRC_BATCH ((size_t)262144)

static void src_ready(void *arg)
{
    s3wait *w = arg;
    if (w->op)
        s3_op_resume(w->op);
}

static ssize_t src_read(void *arg, char *buf, size_t max)
{
    s3wait *w = arg;
    size_t want = max < SRC_BATCH ? max : SRC_BATCH;
    int64_t len = body_source_length(w->src);
    if (body_source_buffered(w->src) < want && !body_source_done(w->src) &&
        (len < 0 || body_source_received(w->src) < (uint64_t)len)) {
        body_source_notify_min(w->src, src_ready, w, want);
        return S3_PAUSE;
    }
    ssize_t n = body_source_read(w->src, buf, max);
    if (n == BODY_AGAIN) {
        body_source_notify(w->src, src_ready, w);
        return S3_PAUSE;
    }
    if (n == BODY_ERROR) {
        w->src_err = body_source_error(w->src);
        return S3_ABORT;
    }
    return n;
}

/* put_stream(key, content_type, max_bytes, sha256): the calling request's
 * body (a route declared with body = "stream") into the store. */
static int l_put_stream(lua_State *L)
{
    const char *key = check_key(L, 1);
    s3_put_opts o;
    memset(&o, 0, sizeof o);
    o.content_type = opt_string(L, 2);
    opt_u64(L, 3, &o.max_bytes);
    o.sha256 = opt_string(L, 4);
    request *r = lwait_request_of(L, "put");
    s3_client *c = client_of(L, "put");
    body_source *src = request_body_source(r);
    if (!src)
        return luaL_error(L, "put: the request's body is not a stream (declare the route with "
                             "body = \"stream\") or was already read");
    s3wait *w = wait_new(L, r, W_PUT);
    w->src = src;
    o.read = src_read;
    o.read_arg = w;
    o.length = body_source_length(src);
    s3_error err;
    return wait_start(L, r, w, s3_put(c, key, &o, on_done, w, &err), &err);
}

static void sink_ready(void *arg)
{
    s3obj *o = arg;
    if (o->op)
        s3_op_resume(o->op);
}

static ssize_t obj_write(void *arg, const char *buf, size_t len)
{
    s3obj *o = arg;
    if (!o->sink)
        return S3_PAUSE; /* not piped yet */
    ssize_t n = body_sink_write(o->sink, buf, len);
    if (n == BODY_ERROR) {
        o->sink_err = body_sink_error(o->sink);
        return S3_ABORT;
    }
    if (n == BODY_AGAIN || (size_t)n < len) {
        /* the client's buffer is full: s3 holds the rest until it drains */
        body_sink_notify(o->sink, sink_ready, o);
        return n == BODY_AGAIN ? S3_PAUSE : n;
    }
    if (body_sink_room(o->sink) < S3_RECV_BUFFER) {
        /* stop receiving while a whole receive still fits, rather than have
         * s3 hold (copy) what does not fit; go on when one fits again */
        body_sink_notify_min(o->sink, sink_ready, o, S3_RECV_BUFFER);
        s3_op_hold(o->op);
    }
    return n;
}

/* The get ended while piping: ends the response and resumes the handler. */
static void lua_s3_pipe_done(s3obj *o, const s3_error *err)
{
    request *r = o->r;
    o->waiting = 0;
    r->cancel = NULL;
    r->op = NULL;
    uint64_t sent = body_sink_written(o->sink);
    body_sink_notify(o->sink, NULL, NULL);
    if (err) {
        s3_error e = *err;
        if (o->sink_err) {
            e.kind = S3E_CLIENT;
            e.retryable = 0;
            snprintf(e.code, sizeof e.code, "%s", o->sink_err);
            snprintf(e.message, sizeof e.message, "the client's side failed: %s", o->sink_err);
        }
        body_sink_fail(o->sink);
        o->sink = NULL;
        lwait_resume(r, push_error(r->co, &e));
        return;
    }
    body_sink_finish(o->sink);
    o->sink = NULL;
    lua_pushnumber(r->co, (lua_Number)sent);
    lwait_resume(r, 1);
}

static void pipe_cancel(request *r)
{
    s3obj *o = r->op;
    if (o->op) {
        s3_op_cancel(o->op);
        o->op = NULL;
    }
    if (o->sink)
        body_sink_notify(o->sink, NULL, NULL);
    o->sink = NULL;
    o->waiting = 0;
}

/* pipe(handle, req, status, headers): starts the streamed response with
 * the object's bytes as its body and waits until they are all sent. */
static int l_pipe(lua_State *L)
{
    s3obj *o = luaL_checkudata(L, 1, OBJ_MT);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer status = luaL_checkinteger(L, 3);
    if (status < 200 || status > 599)
        return luaL_argerror(L, 3, "must be an HTTP status (200-599)");
    if (!lua_isnoneornil(L, 4))
        luaL_checktype(L, 4, LUA_TTABLE);
    request *r = lwait_request_of(L, "pipe");
    if (o->r != r)
        return luaL_argerror(L, 1, "the object belongs to another request or was closed");
    if (o->sink || o->waiting)
        return luaL_argerror(L, 1, "the object is already being piped");
    if (o->finished && o->failed)
        return push_error(L, &o->err);
    if (!o->op && !o->finished)
        return luaL_argerror(L, 1, "the object was closed");
    if (request_responded(r))
        return luaL_error(L, "pipe: the response has already started");
    int has_type = 0;
    if (lua_istable(L, 4)) {
        lua_pushnil(L);
        while (lua_next(L, 4) != 0) {
            const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
            int vt = lua_type(L, -1);
            const char *value = vt == LUA_TSTRING || vt == LUA_TNUMBER ? lua_tostring(L, -1) : NULL;
            if (!name || !value || request_add_header(r, name, value) < 0)
                return luaL_error(L, "pipe: bad response header %s",
                                  name ? name : "(not a string)");
            if (!strcasecmp(name, "Content-Type"))
                has_type = 1;
            lua_pop(L, 1);
        }
    }
    if (!has_type)
        request_add_header(r, "Content-Type",
                           o->info.content_type[0] ? o->info.content_type
                                                   : "application/octet-stream");
    body_sink *k = request_body_sink(r, (unsigned)status, (int64_t)o->info.length);
    if (!k)
        return luaL_error(L, "pipe: streamed responses are not available here");
    lua_pushboolean(L, 1);
    lua_setfield(L, 2, "responded");
    o->sink = k;
    if (!strcmp(r->method, "HEAD") || o->finished) {
        /* nothing to send: HEAD answers the headers only; an empty body is done */
        if (o->op) {
            s3_op_cancel(o->op);
            o->op = NULL;
        }
        body_sink_finish(k);
        o->sink = NULL;
        lua_pushnumber(L, 0);
        return 1;
    }
    o->waiting = 2;
    r->cancel = pipe_cancel;
    r->op = o;
    s3_op_resume(o->op);
    lua_settop(L, 1);
    return lua_yield(L, 1);
}

/* ---- module ------------------------------------------------------------------------------- */

static int l_configured(lua_State *L)
{
    lua_pushboolean(L, tl_client != NULL);
    return 1;
}

int luaopen_glasgow_s3core(lua_State *L)
{
    if (luaL_newmetatable(L, WAIT_MT)) {
        lua_pushcfunction(L, wait_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, OBJ_MT)) {
        lua_pushcfunction(L, obj_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushliteral(L, "glasgow.s3object");
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);
    static const luaL_Reg fns[] = {
        {"head", l_head},
        {"delete", l_delete},
        {"list", l_list},
        {"list_uploads", l_list_uploads},
        {"abort_upload", l_abort_upload},
        {"put", l_put},
        {"read", l_read},
        {"get", l_get},
        {"close", l_close},
        {"configured", l_configured},
        {"put_stream", l_put_stream},
        {"pipe", l_pipe},
        {NULL, NULL},
    };
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    lua_pushboolean(L, 0);
    lua_pushcclosure(L, l_bucket, 1);
    lua_setfield(L, -2, "head_bucket");
    lua_pushboolean(L, 1);
    lua_pushcclosure(L, l_bucket, 1);
    lua_setfield(L, -2, "create_bucket");
    lua_pushnumber(L, (lua_Number)read_max);
    lua_setfield(L, -2, "read_max");
    lua_pushnumber(L, (lua_Number)s3cfg.multipart_threshold);
    lua_setfield(L, -2, "multipart_threshold");
    return 1;
}

/* ---- the service ---------------------------------------------------------------------------- */

static void *s3svc_thread_start(loop *lp)
{
    tl_client = s3_client_create(lp, &s3cfg);
    return tl_client;
}

static void s3svc_thread_stop(void *state)
{
    /* multipart aborts sent by the last failures get a moment to finish */
    s3_client_destroy(state, 2000);
    tl_client = NULL;
}

static int s3svc_configure(const config *conf, config_getenv_fn get, char *err, size_t errlen)
{
    static char *strs[5];
    (void)conf;
    for (size_t i = 0; i < 5; i++) {
        free(strs[i]);
        strs[i] = NULL;
    }
    s3_config *c = &s3cfg;
    memset(c, 0, sizeof *c);
    const char *endpoint = get("S3_ENDPOINT");
    if (!endpoint || !endpoint[0])
        return 0;
    if (s3_endpoint_parse(endpoint, &c->endpoint, err, errlen) < 0)
        return -1;
    const char *region = get("S3_REGION");
    strs[0] = xstrdup(region && region[0] ? region : "us-east-1");
    c->region = strs[0];
    const char *bucket = get("S3_BUCKET");
    if (!bucket || !bucket[0] || strlen(bucket) > 63) {
        snprintf(err, errlen,
                 "S3_BUCKET: the bucket that holds every object must be set "
                 "(3 to 63 characters)");
        return -1;
    }
    for (const char *p = bucket; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.')) {
            snprintf(err, errlen, "S3_BUCKET: lower-case letters, digits, '-' and '.' only");
            return -1;
        }
    strs[1] = xstrdup(bucket);
    c->bucket = strs[1];
    strs[2] = config_secret(get, "S3_ACCESS_KEY_ID", err, errlen);
    if (!strs[2]) {
        if (!err[0])
            snprintf(err, errlen, "S3_ACCESS_KEY_ID (or S3_ACCESS_KEY_ID_FILE) must be set");
        return -1;
    }
    strs[3] = config_secret(get, "S3_SECRET_ACCESS_KEY", err, errlen);
    if (!strs[3]) {
        if (!err[0])
            snprintf(err, errlen,
                     "S3_SECRET_ACCESS_KEY (or S3_SECRET_ACCESS_KEY_FILE) must be set");
        return -1;
    }
    c->access_key = strs[2];
    c->secret_key = strs[3];
    const char *ca = get("S3_CA_FILE");
    if (ca && ca[0]) {
        strs[4] = xstrdup(ca);
        c->ca_file = strs[4];
    }
    static const struct {
        const char *name;
        uint64_t def, min, max;
        int units;
    } knobs[] = {
        {"GLASGOW_S3_CONNECT_TIMEOUT_MS", 5000, 100, 600000, 0},
        {"GLASGOW_S3_REQUEST_TIMEOUT_MS", 30000, 100, 3600000, 0},
        {"GLASGOW_S3_LOW_SPEED_BYTES_PER_S", 1024, 1, 1ULL << 30, 1},
        {"GLASGOW_S3_LOW_SPEED_TIME_S", 30, 1, 3600, 0},
        {"GLASGOW_S3_ATTEMPTS", 4, 1, 20, 0},
        {"GLASGOW_S3_BACKOFF_BASE_MS", 100, 1, 60000, 0},
        {"GLASGOW_S3_BACKOFF_MAX_MS", 2000, 1, 600000, 0},
        {"GLASGOW_S3_MULTIPART_THRESHOLD", S3_MAX_PART, 0, S3_MAX_PART, 1},
        {"GLASGOW_S3_PART_SIZE", 8ULL << 20, S3_MIN_PART, S3_MAX_PART, 1},
        {"GLASGOW_S3_MAX_CONNECTIONS", 16, 1, 1024, 0},
        {"GLASGOW_S3_HEALTH_INTERVAL_MS", 2000, 100, 600000, 0},
        {"GLASGOW_S3_HEALTH_TIMEOUT_MS", 2000, 100, 600000, 0},
        {"GLASGOW_S3_READ_MAX_BYTES", 8ULL << 20, 0, 1ULL << 30, 1},
    };
    enum { NKNOBS = sizeof knobs / sizeof knobs[0] };
    uint64_t v[NKNOBS];
    for (size_t i = 0; i < NKNOBS; i++) {
        const char *s = get(knobs[i].name);
        v[i] = knobs[i].def;
        if (s && config_parse_uint(s, knobs[i].min, knobs[i].max, knobs[i].units, &v[i]) < 0) {
            snprintf(err, errlen, "%s: expected an integer between %llu and %llu%s", knobs[i].name,
                     (unsigned long long)knobs[i].min, (unsigned long long)knobs[i].max,
                     knobs[i].units ? " (k, m, g allowed)" : "");
            return -1;
        }
    }
    c->connect_timeout_ms = (unsigned)v[0];
    c->request_timeout_ms = (unsigned)v[1];
    c->low_speed_bytes = (unsigned)v[2];
    c->low_speed_time_s = (unsigned)v[3];
    c->attempts = (unsigned)v[4];
    c->backoff_base_ms = (unsigned)v[5];
    c->backoff_max_ms = (unsigned)v[6];
    c->multipart_threshold = v[7];
    c->part_size = v[8];
    c->max_connections = (unsigned)v[9];
    c->health_interval_ms = (unsigned)v[10];
    c->health_timeout_ms = (unsigned)v[11];
    read_max = v[12];
    const char *create = get("GLASGOW_S3_CREATE_BUCKET");
    if (create && create[0]) {
        if (!strcmp(create, "true") || !strcmp(create, "1"))
            c->create_bucket = 1;
        else if (strcmp(create, "false") != 0 && strcmp(create, "0") != 0) {
            snprintf(err, errlen, "GLASGOW_S3_CREATE_BUCKET: expected true or false");
            return -1;
        }
    }
    s3_global_init();
    return 1;
}

static void s3svc_describe(int enabled, char *out, size_t n)
{
    if (!enabled) {
        snprintf(out, n, "none");
        return;
    }
    snprintf(out, n, "%s/%s (region %s)", s3cfg.endpoint.base, s3cfg.bucket, s3cfg.region);
}

const service lua_s3_service = {
    .name = "s3",
    .lua_name = "glasgow.s3core",
    .lua_open = luaopen_glasgow_s3core,
    .configure = s3svc_configure,
    .thread_start = s3svc_thread_start,
    .thread_stop = s3svc_thread_stop,
    .ready = s3_all_up,
    .not_ready = "object store unreachable",
    .describe = s3svc_describe,
    .metrics_init = s3_metrics_init,
};
