/*
 * lua_db: pgpool for Lua coroutines, and PostgreSQL text values to Lua.
 *
 * Type mapping (README "Database"): bool -> boolean; int2, int4, oid,
 * float4, float8 -> number; int8 -> number when |v| <= 2^53 (exact in a
 * double), else a decimal string; numeric -> string (exact); json, jsonb ->
 * decoded value; timestamptz -> RFC 3339 UTC string ("...Z"); timestamp ->
 * "YYYY-MM-DDTHH:MM:SS[.ffffff]"; date, uuid, text and the rest -> string;
 * one-dimensional arrays of those -> arrays; NULL -> the null sentinel.
 */
#include "lua_db.h"

#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "lwait.h"
#include "util.h"

#define DBCONN_MT "glasgow.dbconn"
#define MAX_PARAMS 100

static _Thread_local pgpool *tl_pool;
static pgpool_config db_cfg;
static unsigned statement_deadline_ms = 6000;

typedef struct dbconn dbconn;

/* One pending operation: the wait for a connection, or a statement. */
typedef struct db_op {
    pgpool_waiter w; /* first: the waiter callback finds the op from it */
    request *r;
    dbconn *conn;
} db_op;

/* A connection as Lua sees it; created closed before the pool is asked.
 * It carries its one pending operation (a connection runs one statement
 * at a time, and is acquired once): the userdata stays reachable while
 * the operation is pending, yielded by acquire or as exec's argument 1,
 * so no userdata of its own is allocated per operation. */
struct dbconn {
    pgpool_conn *c;
    request *r;               /* the request holding it, NULL once released */
    request_cleanup *cleanup; /* releases it when r ends */
    int busy;
    db_op op;
};

static void conn_release(dbconn *d);

/* The request's cleanup: r ends while it still holds d. */
static void conn_cleanup(void *data)
{
    dbconn *d = data;
    d->r = NULL; /* the record is already gone */
    d->cleanup = NULL;
    conn_release(d);
}

static void held_add(request *r, dbconn *d)
{
    d->r = r;
    d->cleanup = request_add_cleanup(r, conn_cleanup, d);
}

static void held_remove(dbconn *d)
{
    if (!d->r)
        return;
    request_remove_cleanup(d->r, d->cleanup);
    d->r = NULL;
    d->cleanup = NULL;
}

static void conn_release(dbconn *d)
{
    held_remove(d);
    if (d->c) {
        if (d->busy)
            pgpool_abandon(d->c);
        pgpool_release(d->c);
        d->c = NULL;
    }
    d->busy = 0;
}

static int push_error(lua_State *L, const pg_error *e)
{
    lua_pushnil(L);
    lua_pushstring(L, pgpool_kind_name(e->kind));
    lua_pushstring(L, e->sqlstate);
    lua_pushstring(L, e->message);
    return 4;
}

/* ---- acquire ------------------------------------------------------------------------- */

static void cancel_acquire(request *r)
{
    db_op *op = r->op;
    if (tl_pool)
        pgpool_cancel_wait(tl_pool, &op->w);
}

static void on_acquired(pgpool_waiter *w, pgpool_conn *c, const pg_error *err)
{
    db_op *op = (db_op *)(void *)w;
    request *r = op->r;
    lua_State *co = r->co;
    r->cancel = NULL;
    r->op = NULL;
    if (c) {
        op->conn->c = c;
        held_add(r, op->conn);
        lua_pushvalue(co, -1); /* the dbconn, yielded */
        lwait_resume(r, 1);
    } else {
        lwait_resume(r, push_error(co, err));
    }
}

static int db_acquire(lua_State *L)
{
    request *r = lwait_request_of(L, "acquire");
    if (!tl_pool)
        return luaL_error(L, "acquire: no database is configured (set DATABASE_URL)");
    dbconn *d = lua_newuserdata(L, sizeof *d);
    memset(d, 0, sizeof *d);
    luaL_getmetatable(L, DBCONN_MT);
    lua_setmetatable(L, -2);
    db_op *op = &d->op;
    op->r = r;
    op->conn = d;
    op->w.cb = on_acquired;
    pg_error err;
    pgpool_conn *c = pgpool_acquire(tl_pool, &op->w, &err);
    if (c) {
        d->c = c;
        held_add(r, d);
        return 1;
    }
    if (err.kind != PGE_NONE)
        return push_error(L, &err);
    r->cancel = cancel_acquire;
    r->op = op;
    /* yield the conn (and its op): it stays on the coroutine's stack,
     * alive and reachable from on_acquired, until it resumes */
    return lua_yield(L, 1);
}

/* ---- values ------------------------------------------------------------------------------ */

/* Converts argument idx to PostgreSQL text, pushing the string (or nothing
 * for NULL); returns 1 when a value was pushed. Tables become JSON through
 * the encode function at exec's upvalue 1. */
static int push_param(lua_State *L, int idx)
{
    char buf[64];
    switch (lua_type(L, idx)) {
    case LUA_TNIL: return 0;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL)
            return 0; /* the null sentinel */
        break;
    case LUA_TBOOLEAN: lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false"); return 1;
    case LUA_TNUMBER: {
        lua_Number v = lua_tonumber(L, idx);
        if (!isfinite(v))
            luaL_argerror(L, idx, "numbers must be finite");
        if (v == floor(v) && fabs(v) < 9.2e18)
            snprintf(buf, sizeof buf, "%lld", (long long)v);
        else
            snprintf(buf, sizeof buf, "%.17g", v);
        lua_pushstring(L, buf);
        return 1;
    }
    case LUA_TSTRING: lua_pushvalue(L, idx); return 1;
    case LUA_TTABLE:
        lua_pushvalue(L, lua_upvalueindex(1));
        lua_pushvalue(L, idx);
        lua_call(L, 1, 1);
        return 1;
    default: break;
    }
    luaL_argerror(L, idx, "parameters must be nil, null, boolean, number, string or table");
    return 0;
}

enum {
    OID_BOOL = 16,
    OID_INT8 = 20,
    OID_INT2 = 21,
    OID_INT4 = 23,
    OID_OID = 26,
    OID_JSON = 114,
    OID_FLOAT4 = 700,
    OID_FLOAT8 = 701,
    OID_NUMERIC = 1700,
    OID_DATE = 1082,
    OID_TIMESTAMP = 1114,
    OID_TIMESTAMPTZ = 1184,
    OID_JSONB = 3802
};

/* Array type oid -> element type oid, for the arrays converted element-wise. */
static Oid array_elem(Oid t)
{
    switch (t) {
    case 1000: return OID_BOOL;
    case 1005: return OID_INT2;
    case 1007: return OID_INT4;
    case 1016: return OID_INT8;
    case 1021: return OID_FLOAT4;
    case 1022: return OID_FLOAT8;
    case 1231: return OID_NUMERIC;
    case 1009:
    case 1015:
    case 1014:
    case 2951:
    case 1182:
    case 1115:
    case 1185: return 25; /* text-like elements; timestamps converted below by type */
    case 199: return OID_JSON;
    case 3807: return OID_JSONB;
    default: return 0;
    }
}

static void push_timestamp(lua_State *L, const char *v, size_t n, int tz)
{
    char out[64];
    size_t o = 0;
    if (n >= sizeof out - 8 || n < 10 || v[4] != '-') {
        lua_pushlstring(L, v, n); /* infinity, BC dates: as PostgreSQL wrote them */
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = v[i];
        if (ch == ' ' && i == 10)
            ch = 'T';
        out[o++] = ch;
    }
    out[o] = '\0';
    if (tz && o > 19) {
        /* "+00" -> "Z"; "+05" -> "+05:00"; "+05:30" stays (out has room) */
        char *sign = strpbrk(out + 19, "+-");
        if (sign && !strcmp(sign, "+00"))
            memcpy(sign, "Z", 2);
        else if (sign && strlen(sign) == 3)
            memcpy(sign + 3, ":00", 4);
    }
    lua_pushstring(L, out);
}

/* Pushes one text value of type t; json values go through decode (rows'
 * upvalue 1). */
static void push_value(lua_State *L, Oid t, const char *v, size_t n)
{
    switch (t) {
    case OID_BOOL: lua_pushboolean(L, v[0] == 't'); return;
    case OID_INT2:
    case OID_INT4:
    case OID_OID: lua_pushnumber(L, (lua_Number)strtoll(v, NULL, 10)); return;
    case OID_INT8: {
        errno = 0;
        long long x = strtoll(v, NULL, 10);
        if (errno == 0 && x <= 9007199254740992LL && x >= -9007199254740992LL)
            lua_pushnumber(L, (lua_Number)x);
        else
            lua_pushlstring(L, v, n);
        return;
    }
    case OID_FLOAT4:
    case OID_FLOAT8: {
        char *end;
        double d = strtod(v, &end);
        if (isfinite(d) && *end == '\0')
            lua_pushnumber(L, d);
        else
            lua_pushlstring(L, v, n); /* NaN, Infinity */
        return;
    }
    case OID_JSON:
    case OID_JSONB:
        lua_pushvalue(L, lua_upvalueindex(1));
        lua_pushlstring(L, v, n);
        lua_call(L, 1, 1);
        return;
    case OID_TIMESTAMPTZ: push_timestamp(L, v, n, 1); return;
    case OID_TIMESTAMP: push_timestamp(L, v, n, 0); return;
    default: lua_pushlstring(L, v, n); return;
    }
}

/* Parses a one-dimensional PostgreSQL array literal into a Lua array.
 * Returns 0, or -1 (nothing pushed) for shapes left as text. */
static int push_array(lua_State *L, Oid t, Oid elem, const char *v, size_t n)
{
    if (n < 2 || v[0] != '{' || v[n - 1] != '}')
        return -1; /* bounds decoration or multi-dimensional */
    luaL_Buffer b;
    lua_newtable(L);
    lua_pushvalue(L, lua_upvalueindex(2)); /* array metatable, may be nil */
    lua_setmetatable(L, -2);
    size_t i = 1;
    int idx = 0;
    if (n == 2)
        return 0;
    while (i < n - 1) {
        if (v[i] == '{')
            goto err_pop;
        int quoted = v[i] == '"';
        luaL_buffinit(L, &b);
        if (quoted) {
            i++;
            while (i < n - 1 && v[i] != '"') {
                if (v[i] == '\\' && i + 1 < n - 1)
                    i++;
                luaL_addlstring(&b, &v[i], 1);
                i++;
            }
            i++; /* closing quote */
        } else {
            while (i < n - 1 && v[i] != ',') {
                luaL_addlstring(&b, &v[i], 1);
                i++;
            }
        }
        luaL_pushresult(&b);
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        if (!quoted && len == 4 && !memcmp(s, "NULL", 4)) {
            lua_pop(L, 1);
            lua_pushlightuserdata(L, NULL);
        } else if (elem == OID_TIMESTAMPTZ || t == 1185) {
            lua_pushvalue(L, -1);
            push_timestamp(L, lua_tostring(L, -1), len, 1);
            lua_replace(L, -3);
            lua_pop(L, 1);
        } else if (elem != 25) {
            push_value(L, elem, s, len);
            lua_replace(L, -2);
        }
        lua_rawseti(L, -2, ++idx);
        if (i < n - 1 && v[i] == ',')
            i++;
    }
    return 0;

err_pop:
    lua_pop(L, 1);
    return -1;
}

/* Builds the rows table for res at the top of L. */
static void push_rows(lua_State *L, const PGresult *res)
{
    int nrows = PQntuples(res), ncols = PQnfields(res);
    lua_createtable(L, nrows, 0);
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_setmetatable(L, -2);
    for (int row = 0; row < nrows; row++) {
        lua_createtable(L, 0, ncols);
        for (int col = 0; col < ncols; col++) {
            lua_pushstring(L, PQfname(res, col));
            if (PQgetisnull(res, row, col)) {
                lua_pushlightuserdata(L, NULL);
            } else {
                Oid t = PQftype(res, col);
                const char *v = PQgetvalue(res, row, col);
                size_t n = (size_t)PQgetlength(res, row, col);
                Oid elem = array_elem(t);
                if (!elem || push_array(L, t, elem, v, n) < 0)
                    push_value(L, elem ? 25 : t, v, n);
            }
            lua_rawset(L, -3);
        }
        lua_rawseti(L, -2, row + 1);
    }
}

/* ---- exec ------------------------------------------------------------------------------- */

static void cancel_exec(request *r)
{
    db_op *op = r->op;
    if (op->conn->c)
        pgpool_abandon(op->conn->c);
    op->conn->busy = 0;
}

#define DBRESULT_MT "glasgow.dbresult"

/* A finished statement's result, handed to the coroutine; freed by rows()
 * or, if the coroutine never gets there, by __gc. */
typedef struct dbresult {
    PGresult *res;
} dbresult;

static int result_gc(lua_State *L)
{
    dbresult *dr = luaL_checkudata(L, 1, DBRESULT_MT);
    if (dr->res)
        PQclear(dr->res);
    dr->res = NULL;
    return 0;
}

/* Ends r's wait on a statement: resumes it with the error's values, or
 * with res wrapped in a result userdata (which then owns it). */
static void resume_with_result(request *r, PGresult *res, const pg_error *err)
{
    lua_State *co = r->co;
    r->cancel = NULL;
    r->op = NULL;
    if (err) {
        lwait_resume(r, push_error(co, err));
        return;
    }
    dbresult *dr = lua_newuserdata(co, sizeof *dr);
    dr->res = res;
    luaL_getmetatable(co, DBRESULT_MT);
    lua_setmetatable(co, -2);
    lwait_resume(r, 1);
}

static void on_result(void *arg, PGresult *res, const pg_error *err)
{
    db_op *op = arg;
    op->conn->busy = 0;
    resume_with_result(op->r, res, err);
}

/* pg.rows(result) -> rows, affected, command tag: converts and frees the result. */
static int db_rows(lua_State *L)
{
    dbresult *dr = luaL_checkudata(L, 1, DBRESULT_MT);
    if (!dr->res)
        return luaL_argerror(L, 1, "result already consumed");
    /* converting runs Lua (json decode); if it raises, __gc still frees res */
    push_rows(L, dr->res);
    const char *tuples = PQcmdTuples(dr->res);
    lua_pushnumber(L, tuples && *tuples ? strtod(tuples, NULL) : 0);
    lua_pushstring(L, PQcmdStatus(dr->res));
    PQclear(dr->res);
    dr->res = NULL;
    return 3;
}

static dbconn *check_conn(lua_State *L, int idx)
{
    dbconn *d = luaL_checkudata(L, idx, DBCONN_MT);
    if (!d->c)
        luaL_argerror(L, idx, "the connection was released");
    if (d->busy)
        luaL_argerror(L, idx, "the connection is already running a statement");
    return d;
}

static int db_exec(lua_State *L)
{
    dbconn *d = check_conn(L, 1);
    const char *sql = luaL_checkstring(L, 2);
    request *r = lwait_request_of(L, "exec");
    int nparams = lua_gettop(L) - 2;
    int script = lua_toboolean(L, lua_upvalueindex(2));
    if (script && nparams > 0)
        return luaL_error(L, "exec_script: takes no parameters");
    if (nparams > MAX_PARAMS)
        return luaL_error(L, "exec: at most %d parameters", MAX_PARAMS);
    if (d->r != r)
        return luaL_argerror(L, 1, "the connection belongs to another request");
    const char *values[MAX_PARAMS];
    int lengths[MAX_PARAMS];
    int base = lua_gettop(L);
    for (int i = 0; i < nparams; i++) {
        if (push_param(L, 3 + i)) {
            size_t len;
            values[i] = lua_tolstring(L, -1, &len);
            if (len > (size_t)0x3fffffff)
                return luaL_argerror(L, 3 + i, "value too large");
            lengths[i] = (int)len;
        } else {
            lua_pushnil(L); /* keep one slot per parameter */
            values[i] = NULL;
            lengths[i] = 0;
        }
    }
    db_op *op = &d->op;
    op->r = r;
    op->conn = d;
    pg_error err;
    if (pgpool_query(d->c, sql, script ? -1 : nparams, values, lengths,
                     script ? 0 : statement_deadline_ms, on_result, op, &err) < 0) {
        lua_settop(L, base);
        return push_error(L, &err);
    }
    d->busy = 1;
    r->cancel = cancel_exec;
    r->op = op;
    /* yielding the conn keeps it (and op) alive on the coroutine's stack:
     * a yield replaces the arguments with the values it yields */
    lua_pushvalue(L, 1);
    return lua_yield(L, 1);
}

/* ---- query: one statement given to the pool (pipelined) ------------------------------ */

/* A statement in flight through pgpool_submit; the userdata is yielded, so
 * it stays alive until the coroutine resumes, and a request that ends
 * first withdraws it (cancel_call) before it can be collected. */
typedef struct dbcall {
    pgpool_call call;
    request *r;
} dbcall;

static void cancel_call(request *r)
{
    dbcall *dc = r->op;
    pgpool_call_cancel(&dc->call);
}

static void on_call_result(void *arg, PGresult *res, const pg_error *err)
{
    dbcall *dc = arg;
    resume_with_result(dc->r, res, err);
}

/* pg.share_class(sql) -> 0 (a connection of its own), 1 (may queue behind
 * others) or 2 (a read others may queue behind); 0 when pipelining is off. */
static int db_share_class(lua_State *L)
{
    const char *sql = luaL_checkstring(L, 1);
    lua_pushinteger(L, db_cfg.pipeline_depth > 1 ? pgpool_share_class(sql) : PGPOOL_SHARE_NO);
    return 1;
}

/* pg.query(cls, sql, ...) -> result | nil, kind, sqlstate, message */
static int db_query(lua_State *L)
{
    int cls = (int)luaL_checkinteger(L, 1);
    const char *sql = luaL_checkstring(L, 2);
    request *r = lwait_request_of(L, "query");
    if (!tl_pool)
        return luaL_error(L, "query: no database is configured (set DATABASE_URL)");
    if (cls != PGPOOL_SHARE_READ && cls != PGPOOL_SHARE_TAIL)
        return luaL_argerror(L, 1, "a class from share_class, not 0");
    int nparams = lua_gettop(L) - 2;
    if (nparams > MAX_PARAMS)
        return luaL_error(L, "query: at most %d parameters", MAX_PARAMS);
    const char *values[MAX_PARAMS];
    int lengths[MAX_PARAMS];
    int base = lua_gettop(L);
    for (int i = 0; i < nparams; i++) {
        if (push_param(L, 3 + i)) {
            size_t len;
            values[i] = lua_tolstring(L, -1, &len);
            if (len > (size_t)0x3fffffff)
                return luaL_argerror(L, 3 + i, "value too large");
            lengths[i] = (int)len;
        } else {
            lua_pushnil(L); /* keep one slot per parameter */
            values[i] = NULL;
            lengths[i] = 0;
        }
    }
    dbcall *dc = lua_newuserdata(L, sizeof *dc);
    dc->r = r;
    pg_error err;
    if (pgpool_submit(tl_pool, &dc->call, cls, sql, nparams, values, lengths, statement_deadline_ms,
                      on_call_result, dc, &err) < 0) {
        lua_settop(L, base);
        return push_error(L, &err);
    }
    r->cancel = cancel_call;
    r->op = dc;
    return lua_yield(L, 1); /* the dbcall, kept alive on the stack */
}

static int db_release(lua_State *L)
{
    dbconn *d = luaL_checkudata(L, 1, DBCONN_MT);
    conn_release(d);
    return 0;
}

static int db_stats(lua_State *L)
{
    pgpool_stats st;
    if (!tl_pool)
        return 0;
    pgpool_get_stats(tl_pool, &st);
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, st.size);
    lua_setfield(L, -2, "size");
    lua_pushinteger(L, st.in_use);
    lua_setfield(L, -2, "in_use");
    lua_pushinteger(L, st.waiting);
    lua_setfield(L, -2, "waiting");
    lua_pushboolean(L, st.server_up);
    lua_setfield(L, -2, "up");
    lua_pushinteger(L, st.shared);
    lua_setfield(L, -2, "shared");
    lua_pushnumber(L, (lua_Number)st.pipelined);
    lua_setfield(L, -2, "pipelined");
    return 1;
}

static int db_configured(lua_State *L)
{
    lua_pushboolean(L, tl_pool != NULL);
    return 1;
}

int luaopen_glasgow_pg(lua_State *L)
{
    if (luaL_newmetatable(L, DBRESULT_MT)) {
        lua_pushcfunction(L, result_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, DBCONN_MT)) {
        lua_pushcfunction(L, db_release);
        lua_setfield(L, -2, "__gc");
        lua_pushliteral(L, "glasgow.dbconn");
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);

    lua_newtable(L);
    lua_pushcfunction(L, db_acquire);
    lua_setfield(L, -2, "acquire");
    lua_pushcfunction(L, db_release);
    lua_setfield(L, -2, "release");
    lua_pushcfunction(L, db_stats);
    lua_setfield(L, -2, "stats");
    lua_pushcfunction(L, db_configured);
    lua_setfield(L, -2, "configured");
    lua_pushcfunction(L, db_share_class);
    lua_setfield(L, -2, "share_class");

    /* exec's upvalue: json encode; rows': json decode and the array metatable */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "glasgow.json");
    lua_call(L, 1, 1);
    int json = lua_gettop(L);
    lua_getfield(L, json, "encode");
    lua_pushvalue(L, -1);
    lua_pushboolean(L, 0);
    lua_pushcclosure(L, db_exec, 2);
    lua_setfield(L, -4, "exec");
    lua_pushboolean(L, 1);
    lua_pushcclosure(L, db_exec, 2);
    lua_setfield(L, -3, "exec_script");
    lua_getfield(L, json, "encode");
    lua_pushcclosure(L, db_query, 1);
    lua_setfield(L, -3, "query");
    lua_getfield(L, json, "decode");
    lua_getfield(L, json, "array_mt");
    lua_pushcclosure(L, db_rows, 2);
    lua_setfield(L, -3, "rows");
    lua_pop(L, 1); /* json */
    return 1;
}

static void *db_thread_start(loop *lp)
{
    tl_pool = pgpool_create(lp, &db_cfg);
    return tl_pool;
}

static void db_thread_stop(void *state)
{
    if (state)
        pgpool_destroy(state);
    tl_pool = NULL;
}

static int db_configure(const config *conf, config_getenv_fn get, char *err, size_t errlen)
{
    static char *url;
    uint64_t v;
    pgpool_config *cfg = &db_cfg;
    memset(cfg, 0, sizeof *cfg);
    free(url);
    url = config_secret(get, "DATABASE_URL", err, errlen);
    if (!url)
        return err[0] ? -1 : 0;
    cfg->conninfo = url;
    static const struct {
        const char *name;
        uint64_t def, min, max;
    } knobs[] = {
        {"GLASGOW_DB_POOL_SIZE", 8, 1, 1000},
        {"GLASGOW_DB_WAIT_TIMEOUT_MS", 1000, 1, 600000},
        {"GLASGOW_DB_STATEMENT_TIMEOUT_MS", 5000, 0, 3600000},
        {"GLASGOW_DB_MAX_WAITERS", 1024, 0, 1000000},
        {"GLASGOW_DB_CONNECT_TIMEOUT_MS", 5000, 1000, 600000},
        {"GLASGOW_DB_PIPELINE_DEPTH", 8, 1, PGPOOL_PIPELINE_MAX},
    };
    uint64_t vals[6];
    for (size_t i = 0; i < 6; i++) {
        const char *s = get(knobs[i].name);
        vals[i] = knobs[i].def;
        if (s && config_parse_uint(s, knobs[i].min, knobs[i].max, 0, &v) < 0) {
            snprintf(err, errlen, "%s: expected an integer between %llu and %llu", knobs[i].name,
                     (unsigned long long)knobs[i].min, (unsigned long long)knobs[i].max);
            return -1;
        }
        if (s)
            vals[i] = v;
    }
    cfg->max_size = (unsigned)vals[0];
    cfg->wait_timeout_ms = (unsigned)vals[1];
    cfg->statement_timeout_ms = (unsigned)vals[2];
    cfg->max_waiters = (unsigned)vals[3];
    cfg->connect_timeout_ms = (unsigned)vals[4];
    cfg->pipeline_depth = (unsigned)vals[5];
    cfg->health_interval_ms = conf->db_health_interval_ms;
    cfg->health_timeout_ms = conf->db_health_timeout_ms;
    /* the client-side deadline backs up the server's statement_timeout */
    statement_deadline_ms = cfg->statement_timeout_ms ? cfg->statement_timeout_ms + 1000 : 0;
    return 1;
}

static void db_describe(int enabled, char *out, size_t n)
{
    if (!enabled) {
        snprintf(out, n, "none");
        return;
    }
    pgpool_redact(db_cfg.conninfo, out, n);
}

const service lua_db_service = {
    .name = "database",
    .lua_name = "glasgow.pg",
    .lua_open = luaopen_glasgow_pg,
    .configure = db_configure,
    .thread_start = db_thread_start,
    .thread_stop = db_thread_stop,
    .ready = pgpool_all_up,
    .not_ready = "database unreachable",
    .describe = db_describe,
    .metrics_init = pgpool_metrics_init,
};
