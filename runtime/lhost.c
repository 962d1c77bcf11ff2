/*
 * lhost: LuaJIT states, generations and the request coroutine runner.
 */
#include "lhost.h"

#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "jobs.h"
#include "log.h"
#include "lua_crypto.h"
#include "lua_json.h"
#include "lua_range.h"
#include "lua_sigv4.h"
#include "lua_stream.h"
#include "lwait.h"
#include "metrics.h"
#include "router.h"
#include "scrypt.h"
#include "service.h"
#include "util.h"
#include "watchdog.h"

typedef struct route_info {
    size_t max_body;
    int wants_json;
    int stream;
    int bearer;      /* declared auth = "bearer" */
    int pattern_ref; /* the route's path pattern as a Lua string */
} route_info;

#define CO_CACHE 64

/* The methods whose names the request table takes from a reference rather
 * than hashing them per request. */
static const char *const common_methods[] = {"GET",    "HEAD",  "POST",   "PUT",
                                             "DELETE", "PATCH", "OPTIONS"};
#define NMETHODS (sizeof common_methods / sizeof common_methods[0])

/*
 * The per-state memory cap: an allocator wrapped around LuaJIT's own that
 * counts the bytes the state holds. While Lua code runs (enforce), growth
 * past the limit arms the stop hook instead of failing: the code is
 * stopped at its next instruction, a safe point, because an allocation
 * that fails inside a trace exit (LuaJIT materialising sunk objects)
 * crashes this LuaJIT. Only growth past the hard limit (the limit plus
 * half of it) fails outright, which a single huge C allocation can reach.
 * Host-side calls made outside protected mode never meet the cap.
 */
typedef struct memcap {
    lua_Alloc inner;
    void *inner_ud;
    lua_State *L;
    size_t used;
    size_t limit; /* 0: none */
    size_t hard;
    int enforce;
    int hit; /* the limit was reached since the flag was last cleared */
} memcap;

/* The request table's field names, interned once per state and kept in the
 * registry: lua_setfield hashed and looked up each name on every request. */
enum {
    RK_METHOD,
    RK_PATH,
    RK_ID,
    RK_CLIENT,
    RK_ROUTE,
    RK_ALLOW,
    RK_PARAMS,
    RK_QUERY,
    RK_HEADERS,
    RK_BODY,
    RK_COUNT
};
static const char *const req_keys[RK_COUNT] = {
    "method", "path", "id", "client", "route", "allow", "params", "query", "headers", "body",
};

struct lhost_gen {
    /* coroutines whose handler returned normally, kept for the next
     * requests: a finished LuaJIT thread can run a new function, which
     * spares a lua_newthread, a registry slot and the garbage per request */
    lua_State *co_free[CO_CACHE];
    int co_free_ref[CO_CACHE];
    unsigned nco_free;
    lua_State *L;
    router *router;
    route_info *routes; /* indexed by route id - 1 */
    size_t nroutes;
    int handle_ref;           /* app.handle */
    int key_ref[RK_COUNT];    /* the request table's field names (req_keys) */
    int method_ref[NMETHODS]; /* common_methods as Lua strings */
    int req_mt_ref;           /* the request tables' metatable */
    unsigned refs;
    uint64_t number;
    char hash[65];
    unsigned run_limit_ms;
    memcap mem; /* outlives L: freed with the generation after lua_close */
};

static _Thread_local loop *tl_loop;
static _Thread_local request *tl_current;

/* The state the calling thread is running Lua on, and what stopping it
 * should say; read by the watchdog's signal handler and the hook. */
static _Thread_local lua_State *volatile tl_run_L;
static _Thread_local volatile int tl_stopped;
static _Thread_local int tl_mem_stop;         /* the cap, not a deadline, armed the hook */
static _Thread_local const char *tl_stop_msg; /* valid from enter_lua to leave_lua */
static _Thread_local char tl_stop_where[512];
static _Thread_local const char *tl_stop_code;
static _Thread_local uint64_t tl_run_deadline;

static request *current_request(lua_State *L, const char *fname);
static void resume_request(request *r, int nargs);

/* Registry key for the generation's options table (address of a static char). */
static const char limits_key = 'l';

/* Authentication limits every new state shows in glasgow.core.limits; set
 * once at start-up, before any worker thread, and only read afterwards. */
static config_auth auth_limits;
static int auth_limits_set;

void lhost_set_auth_limits(const config_auth *a)
{
    auth_limits = *a;
    auth_limits_set = 1;
    jobs_configure(a->scrypt_threads, a->scrypt_queue, a->scrypt_queue_per_user);
}

void lhost_thread_init(loop *lp)
{
    tl_loop = lp;
}

/* ---- stopping runaway code ------------------------------------------------- */

/*
 * The instruction hook armed by the watchdog. It re-checks the deadline
 * (the signal may belong to a run that has since ended), then raises an
 * error at the running line. It stays armed: code that catches the error
 * with pcall meets it again at its next instruction, so the error reaches
 * the host whatever the code does.
 */
static void stop_hook(lua_State *L, lua_Debug *ar)
{
    if (tl_mem_stop && !tl_stopped) {
        tl_stop_msg = "the Lua memory limit was reached";
        tl_stop_code = "memory_limit";
    } else if (!tl_stopped && !watchdog_expired(watchdog_slot(NULL))) {
        lua_sethook(L, NULL, 0, 0);
        return;
    }
    if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
        lua_pushfstring(L, "%s:%d: %s", ar->short_src, ar->currentline, tl_stop_msg);
    else
        lua_pushstring(L, tl_stop_msg);
    if (!tl_stopped) /* where it was stopped, not where the error surfaced */
        snprintf(tl_stop_where, sizeof tl_stop_where, "%s", lua_tostring(L, -1));
    tl_stopped = 1;
    lua_error(L);
}

/* Signal handler context (see watchdog.h): arms the hook with a count of
 * one, which LuaJIT documents as safe from a signal handler. */
static void on_interrupt(wd_slot *s)
{
    (void)s;
    lua_State *L = tl_run_L;
    if (L)
        lua_sethook(L, stop_hook, LUA_MASKCOUNT, 1);
}

static int (*stuck_cb)(const char *, const char *, uint64_t);

static int on_stuck(wd_slot *s, const char *name, const char *what, uint64_t overdue_ms)
{
    (void)s;
    return stuck_cb ? stuck_cb(name, what, overdue_ms) : 1;
}

#define WATCHDOG_TICK_MS 5
#define WATCHDOG_IDLE_MAX_MS 250

void lhost_watchdog_start(int (*cb)(const char *, const char *, uint64_t), unsigned stuck_grace_ms,
                          unsigned shortest_limit_ms)
{
    stuck_cb = cb;
    unsigned idle = shortest_limit_ms / 2;
    if (!shortest_limit_ms || idle > WATCHDOG_IDLE_MAX_MS)
        idle = WATCHDOG_IDLE_MAX_MS;
    watchdog_start(on_interrupt, on_stuck, stuck_grace_ms, WATCHDOG_TICK_MS, idle);
}

/* Enters Lua on g's state under deadline_us (0: none); msg is what the
 * error says if the watchdog stops it. Pair with leave_lua. */
static void enter_lua(lhost_gen *g, uint64_t deadline_us, const char *what,
                      watchdog_describe_fn describe, const void *arg, const char *code,
                      const char *msg)
{
    tl_stop_msg = msg;
    tl_stop_code = code;
    tl_run_deadline = deadline_us;
    tl_mem_stop = 0;
    tl_stopped = 0;
    g->mem.enforce = 1;
    tl_run_L = g->L;
    if (describe)
        watchdog_begin_described(watchdog_slot(NULL), deadline_us, describe, arg);
    else
        watchdog_begin(watchdog_slot(NULL), deadline_us, what);
}

/* Leaves Lua: disarms the hook if the watchdog or the memory cap armed it.
 * who names the work in a warning, or else describe(arg) does. Returns
 * non-zero when the code was stopped (settle_memory collects once the
 * stopped code's coroutine is gone). */
static int leave_lua(lhost_gen *g, const char *who, watchdog_describe_fn describe, const void *arg)
{
    watchdog_end(watchdog_slot(NULL));
    tl_run_L = NULL;
    g->mem.enforce = 0;
    if (lua_gethookmask(g->L))
        lua_sethook(g->L, NULL, 0, 0);
    if (g->mem.hit) {
        char described[200];
        if (!who && describe) {
            describe(arg, described, sizeof described);
            who = described;
        }
        log_msg(LOG_WARN, NULL, "%s: the Lua memory limit (%zu bytes) was reached",
                who ? who : "Lua code", g->mem.limit);
    }
    return tl_stopped;
}

/* After the code that reached the memory limit has let go of it (its
 * coroutine released): collect, so that the next request starts clean. */
static void settle_memory(lhost_gen *g)
{
    if (!g->mem.hit)
        return;
    g->mem.hit = 0;
    lua_gc(g->L, LUA_GCCOLLECT, 0);
    lua_gc(g->L, LUA_GCRESTART, 0); /* in case code ran collectgarbage("stop") */
    if (g->mem.used > g->mem.limit / 2)
        log_msg(LOG_WARN, NULL, "Lua state still holds %zu bytes after a full collection",
                g->mem.used);
}

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    memcap *m = ud;
    if (nsize > osize && m->enforce && m->limit) {
        size_t after = m->used + (nsize - osize);
        if (after > m->limit && !m->hit) {
            m->hit = 1;
            tl_mem_stop = 1;
            lua_sethook(m->L, stop_hook, LUA_MASKCOUNT, 1);
        }
        if (after > m->hard)
            return NULL;
    }
    void *p = m->inner(m->inner_ud, ptr, osize, nsize);
    if (p || nsize == 0)
        m->used = m->used - osize + nsize;
    return p;
}

static uint64_t deadline_after(unsigned ms)
{
    return ms ? watchdog_now_us() + (uint64_t)ms * 1000u : 0;
}

/* ---- lwait.h: the interface of waiting bindings --------------------------- */

loop *lwait_loop(void)
{
    return tl_loop;
}

request *lwait_request_of(lua_State *L, const char *fname)
{
    return current_request(L, fname);
}

void lwait_resume(request *r, int nargs)
{
    resume_request(r, nargs);
}

/* ---- bindings: require "glasgow.core" ------------------------------------ */

/* The request whose coroutine is L, or a raised error: waiting is only
 * possible from the request's own coroutine, not from a nested one. */
static request *current_request(lua_State *L, const char *fname)
{
    request *r = tl_current;
    if (!r || r->co != (void *)L || !tl_loop)
        luaL_error(L,
                   "%s: can only wait inside a request handler or a glasgow run script, "
                   "not at load time or in a nested coroutine",
                   fname);
    return r;
}

static void sleep_done(loop *lp, loop_timer *t)
{
    request *r = t->data;
    (void)lp;
    r->cancel = NULL;
    lua_pushboolean((lua_State *)r->co, 1);
    resume_request(r, 1);
}

static void sleep_cancel(request *r)
{
    loop_timer_stop(tl_loop, &r->wait_timer);
}

/* glasgow.core.sleep(ms): yields to the loop for ms milliseconds. */
static int core_sleep(lua_State *L)
{
    lua_Number ms = luaL_checknumber(L, 1);
    if (!(ms >= 0 && ms <= 86400000.0))
        return luaL_argerror(L, 1, "must be between 0 and 86400000 milliseconds");
    request *r = current_request(L, "sleep");
    loop_timer_init(&r->wait_timer, sleep_done, r);
    loop_timer_start(tl_loop, &r->wait_timer, (uint64_t)ms);
    r->cancel = sleep_cancel;
    return lua_yield(L, 0);
}

static int core_now(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

static int core_monotonic_ms(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)loop_clock_ms());
    return 1;
}

/* glasgow.core.log(level, msg [, extra]): extra is a JSON object text whose
 * members are merged into the line. */
static int core_log(lua_State *L)
{
    const char *lvl = luaL_checkstring(L, 1);
    const char *msg = luaL_checkstring(L, 2);
    size_t elen = 0;
    const char *extra = luaL_optlstring(L, 3, NULL, &elen);
    int level = log_level_parse(lvl);
    if (level < 0)
        return luaL_argerror(L, 1, "must be debug, info, warn or error");
    if (!log_enabled(level))
        return 0;
    strbuf sb;
    strbuf_init(&sb);
    if (tl_current) {
        strbuf_adds(&sb, ",\"request_id\":\"");
        strbuf_add_json_escaped(&sb, tl_current->request_id, strlen(tl_current->request_id));
        strbuf_adds(&sb, "\"");
    }
    if (extra && elen > 2 && extra[0] == '{' && extra[elen - 1] == '}') {
        strbuf_adds(&sb, ",");
        strbuf_add(&sb, extra + 1, elen - 2);
    }
    log_msg(level, sb.buf, "%s", msg);
    strbuf_dispose(&sb);
    return 0;
}

static int core_request_id(lua_State *L)
{
    if (!tl_current)
        return 0;
    lua_pushstring(L, tl_current->request_id);
    return 1;
}

/* An scrypt derivation handed to a job thread. Owned by the job until its
 * completion runs on the loop; an aborted request takes it back if no
 * thread started it, and otherwise only marks it. */
typedef struct scrypt_job {
    request *r; /* NULL once the request gave up waiting */
    job *job;   /* the queued job, while r waits for it */
    char *password;
    size_t password_len;
    unsigned char salt[SCRYPT_MAX_SALT];
    size_t salt_len;
    scrypt_params params;
    unsigned char out[SCRYPT_MAX_DKLEN];
    char why[160]; /* OpenSSL's reason when it failed */
    int ok;
} scrypt_job;

static void scrypt_work(void *arg)
{
    scrypt_job *j = arg;
    j->ok = scrypt_derive(&j->params, j->password, j->password_len, j->salt, j->salt_len, j->out,
                          j->why, sizeof j->why);
}

static void scrypt_job_free(scrypt_job *j)
{
    OPENSSL_cleanse(j->password, j->password_len);
    free(j->password);
    OPENSSL_cleanse(j->out, sizeof j->out);
    free(j);
}

static void scrypt_done(void *arg)
{
    scrypt_job *j = arg;
    request *r = j->r;
    if (r) {
        lua_State *co = r->co;
        r->cancel = NULL;
        r->op = NULL;
        if (j->ok) {
            lua_pushlstring(co, (const char *)j->out, j->params.dklen);
            resume_request(r, 1);
        } else {
            lua_pushnil(co);
            lua_pushstring(co, j->why);
            resume_request(r, 2);
        }
    }
    scrypt_job_free(j);
}

/* The request is gone (client hung up, deadline): a derivation nobody
 * started is dropped at once and frees its place in the queue; one that
 * runs finishes on its own and its result is discarded. */
static void scrypt_cancel(request *r)
{
    scrypt_job *j = r->op;
    r->op = NULL;
    if (jobs_cancel(j->job))
        scrypt_job_free(j);
    else
        j->r = NULL;
}

/*
 * glasgow.core.scrypt(password, salt, N, r, p, dklen [, owner]) -> key | nil, err.
 * The arguments, their checks (raising "bad argument") and the derivation
 * are glasgow.crypto.scrypt's (lua_crypto_scrypt_args, scrypt.h); only where
 * it runs differs. Inside a request the derivation runs on a job thread and
 * the coroutine waits, so a 50-100 ms hash never stalls the worker;
 * elsewhere (migrate, glasgow run, load time) it runs inline. owner names
 * who the hash is for (a user or an account): when the queue already holds
 * its share of jobs for that owner the answer is nil, "busy"; when the
 * queue is full, nil, "overloaded". Both are immediate, and the caller
 * answers 429 or 503. When OpenSSL fails: nil, "scrypt failed: <reason>".
 */
static int core_scrypt(lua_State *L)
{
    lua_crypto_scrypt_in in;
    lua_crypto_scrypt_args(L, &in);
    const char *owner = luaL_optstring(L, 7, NULL);
    scrypt_job *j = xcalloc(1, sizeof *j);
    j->password = xstrndup(in.pass, in.passlen);
    j->password_len = in.passlen;
    memcpy(j->salt, in.salt, in.saltlen);
    j->salt_len = in.saltlen;
    j->params = in.params;
    request *r = tl_current;
    if (!r || r->co != (void *)L || !tl_loop) {
        scrypt_work(j);
        int ok = j->ok;
        if (ok)
            lua_pushlstring(L, (const char *)j->out, j->params.dklen);
        else {
            lua_pushnil(L);
            lua_pushstring(L, j->why);
        }
        scrypt_job_free(j);
        return ok ? 1 : 2;
    }
    int why = 0;
    j->job = jobs_submit(tl_loop, owner, scrypt_work, scrypt_done, j, &why);
    if (!j->job) {
        scrypt_job_free(j);
        lua_pushnil(L);
        lua_pushstring(L, why == JOBS_KEY_FULL ? "busy" : "overloaded");
        return 2;
    }
    j->r = r;
    r->cancel = scrypt_cancel;
    r->op = j;
    return lua_yield(L, 0);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* glasgow.core.listdir(path) -> sorted array of entry names (no dot files),
 * or nil, message. */
static int core_listdir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    DIR *d = opendir(path);
    if (!d) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(errno));
        return 2;
    }
    size_t n = 0, cap = 16;
    char **names = xmalloc(cap * sizeof *names);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap)
            names = xrealloc(names, (cap *= 2) * sizeof *names);
        names[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, name_cmp);
    /* copy into Lua first, then free: nothing below can raise but OOM */
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, names[i]);
        lua_rawseti(L, -2, (int)i + 1);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return 1;
}

static int core_open(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"sleep", core_sleep},
        {"now", core_now},
        {"monotonic_ms", core_monotonic_ms},
        {"log", core_log},
        {"request_id", core_request_id},
        {"listdir", core_listdir},
        {"scrypt", core_scrypt},
        {NULL, NULL},
    };
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    lua_pushlightuserdata(L, (void *)&limits_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_setfield(L, -2, "limits");
    return 1;
}

/* ---- states ----------------------------------------------------------------- */

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Sets package.path and preloads glasgow.core; m (embedded in the
 * generation) becomes the state's memory cap. */
static lua_State *new_state(const lhost_opts *o, memcap *m)
{
    lua_State *L = luaL_newstate();
    if (!L)
        die("cannot create a Lua state: out of memory");
    m->inner = lua_getallocf(L, &m->inner_ud);
    m->used = (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024u + (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
    m->limit = o->memory_limit;
    m->hard = m->limit + m->limit / 2;
    m->L = L;
    lua_setallocf(L, capped_alloc, m);
    luaL_openlibs(L);

    lua_getglobal(L, "package");
    lua_pushstring(L, o->lua_path);
    lua_setfield(L, -2, "path");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, core_open);
    lua_setfield(L, -2, "glasgow.core");
    lua_pushcfunction(L, luaopen_glasgow_crypto);
    lua_setfield(L, -2, "glasgow.crypto");
    lua_pushcfunction(L, luaopen_glasgow_sigv4);
    lua_setfield(L, -2, "glasgow.sigv4");
    lua_pushcfunction(L, luaopen_glasgow_jsonc);
    lua_setfield(L, -2, "glasgow.jsonc");
    lua_pushcfunction(L, luaopen_glasgow_range);
    lua_setfield(L, -2, "glasgow.range");
    for (size_t i = 0; i < services_count(); i++) {
        const service *s = services_get(i);
        if (s->lua_name) {
            lua_pushcfunction(L, s->lua_open);
            lua_setfield(L, -2, s->lua_name);
        }
    }
    lua_pop(L, 2);

    lua_pushlightuserdata(L, (void *)&limits_key);
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, (lua_Integer)o->max_json_depth);
    lua_setfield(L, -2, "max_json_depth");
    lua_pushnumber(L, (lua_Number)o->max_body_bytes);
    lua_setfield(L, -2, "max_body_bytes");
    if (auth_limits_set) {
        const struct {
            const char *name;
            unsigned value;
        } auth[] = {
            {"token_ttl_s", auth_limits.token_ttl_s},
            {"login_account_failures", auth_limits.login_account_failures},
            {"login_address_failures", auth_limits.login_address_failures},
            {"login_base_delay_s", auth_limits.login_base_delay_s},
            {"login_max_delay_s", auth_limits.login_max_delay_s},
            {"login_window_s", auth_limits.login_window_s},
            {"login_device_ttl_s", auth_limits.login_device_ttl_s},
            {"password_changes", auth_limits.password_changes},
            {"password_change_window_s", auth_limits.password_change_window_s},
        };
        for (size_t i = 0; i < sizeof auth / sizeof auth[0]; i++) {
            lua_pushinteger(L, (lua_Integer)auth[i].value);
            lua_setfield(L, -2, auth[i].name);
        }
    }
    lua_rawset(L, LUA_REGISTRYINDEX);
    return L;
}

/* Copies the message at the top of L into err and pops it. */
static void take_error(lua_State *L, char *err, size_t errlen)
{
    const char *msg = lua_tostring(L, -1);
    snprintf(err, errlen, "%s", msg ? msg : "(non-string error)");
    lua_pop(L, 1);
}

/* Registers every "_name.lua" file as package.preload["routes._name"]. */
static int preload_helpers(lua_State *L, const bundle *b, char *err, size_t errlen)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    for (size_t i = 0; i < b->nfiles; i++) {
        const bundle_file *f = &b->files[i];
        if (f->name[0] != '_')
            continue;
        char chunk[300], modname[300];
        snprintf(chunk, sizeof chunk, "@%s", f->name);
        snprintf(modname, sizeof modname, "routes.%.*s", (int)(strlen(f->name) - 4), f->name);
        if (luaL_loadbuffer(L, f->data, f->len, chunk) != 0) {
            take_error(L, err, errlen);
            lua_pop(L, 2);
            return -1;
        }
        lua_setfield(L, -2, modname);
    }
    lua_pop(L, 2);
    return 0;
}

/* Runs each route file and hands its table to app.declare(file, routes). */
static int load_routes(lua_State *L, const bundle *b, int app, char *err, size_t errlen)
{
    for (size_t i = 0; i < b->nfiles; i++) {
        const bundle_file *f = &b->files[i];
        char chunk[300];
        if (f->name[0] == '_')
            continue;
        snprintf(chunk, sizeof chunk, "@%s", f->name);
        watchdog_set_what(watchdog_slot(NULL), f->name);
        lua_pushcfunction(L, traceback);
        int tb = lua_gettop(L);
        lua_getfield(L, app, "declare");
        lua_pushstring(L, f->name);
        if (luaL_loadbuffer(L, f->data, f->len, chunk) != 0) {
            take_error(L, err, errlen);
            lua_settop(L, tb - 1);
            return -1;
        }
        if (lua_pcall(L, 0, 1, tb) != 0 || lua_pcall(L, 2, 0, tb) != 0) {
            take_error(L, err, errlen);
            lua_settop(L, tb - 1);
            return -1;
        }
        lua_settop(L, tb - 1);
    }
    return 0;
}

/* Calls app.finalize() and builds the router from the list it returns. */
static int build_router(lhost_gen *g, int app, char *err, size_t errlen)
{
    lua_State *L = g->L;
    lua_pushcfunction(L, traceback);
    int tb = lua_gettop(L);
    lua_getfield(L, app, "finalize");
    if (lua_pcall(L, 0, 1, tb) != 0) {
        take_error(L, err, errlen);
        lua_settop(L, tb - 1);
        return -1;
    }
    size_t n = lua_objlen(L, -1);
    g->router = router_create();
    g->routes = xcalloc(n ? n : 1, sizeof *g->routes);
    g->nroutes = n;
    for (size_t i = 1; i <= n; i++) {
        char rerr[256];
        int conflict;
        lua_rawgeti(L, -1, (int)i);
        lua_getfield(L, -1, "method");
        lua_getfield(L, -2, "path");
        lua_getfield(L, -3, "where");
        lua_getfield(L, -4, "max_body");
        lua_getfield(L, -5, "json");
        lua_getfield(L, -6, "stream");
        g->routes[i - 1].stream = lua_toboolean(L, -1);
        lua_pop(L, 1);
        lua_getfield(L, -6, "bearer");
        g->routes[i - 1].bearer = lua_toboolean(L, -1);
        lua_pop(L, 1);
        const char *method = lua_tostring(L, -5);
        const char *path = lua_tostring(L, -4);
        const char *where = lua_tostring(L, -3);
        g->routes[i - 1].max_body = (size_t)lua_tonumber(L, -2);
        g->routes[i - 1].wants_json = lua_toboolean(L, -1);
        lua_pushvalue(L, -4);
        g->routes[i - 1].pattern_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        if (!method || !path || !where ||
            router_add(g->router, method, path, (int)i, &conflict, rerr, sizeof rerr) < 0) {
            const char *other = "";
            if (method && path && where && conflict > 0) {
                lua_rawgeti(L, -6, conflict);
                lua_getfield(L, -1, "where");
                other = lua_tostring(L, -1);
                snprintf(err, errlen, "%s: %s (declared at %s)", where, rerr, other ? other : "?");
            } else {
                snprintf(err, errlen, "%s: %s", where ? where : "?",
                         method && path ? rerr : "route without method or path");
            }
            lua_settop(L, tb - 1);
            return -1;
        }
        lua_pop(L, 6);
    }
    lua_settop(L, tb - 1);
    return 0;
}

/* After loading, assigning a global raises: routes keep no hidden global state. */
static void lock_globals(lua_State *L)
{
    if (luaL_loadstring(L, "setmetatable(_G, {__newindex = function(_, k) "
                           "error('assignment to undeclared global \"' .. tostring(k) .. '\"', 2) "
                           "end})") != 0 ||
        lua_pcall(L, 0, 0, 0) != 0)
        die("cannot lock globals: %s", lua_tostring(L, -1));
}

struct load_args {
    lhost_gen *g;
    const bundle *b;
    char *err;
    size_t errlen;
    int rc;
};

static int load_generation(lhost_gen *g, const bundle *b, char *err, size_t errlen);

/* lua_cpcall entry: even the host's own pushes run protected, so the
 * memory cap can never end the process during a load. */
static int load_generation_cp(lua_State *L)
{
    struct load_args *a = lua_touserdata(L, 1);
    lua_pop(L, 1);
    a->rc = load_generation(a->g, a->b, a->err, a->errlen);
    return 0;
}

lhost_gen *lhost_gen_create(const bundle *b, const lhost_opts *o, uint64_t number, char *err,
                            size_t errlen)
{
    lhost_gen *g = xcalloc(1, sizeof *g);
    g->L = new_state(o, &g->mem);
    g->refs = 1;
    g->number = number;
    g->handle_ref = LUA_NOREF;
    g->run_limit_ms = o->run_limit_ms;
    snprintf(g->hash, sizeof g->hash, "%s", b->hash);
    lua_State *L = g->L;

    /* every step below runs protected, under the load budget and the cap */
    char stopmsg[96];
    snprintf(stopmsg, sizeof stopmsg, "loading did not finish within %u ms", o->load_timeout_ms);
    enter_lua(g, deadline_after(o->load_timeout_ms), "loading routes", NULL, NULL, "load_timeout",
              stopmsg);
    struct load_args la = {g, b, err, errlen, -1};
    if (lua_cpcall(L, load_generation_cp, &la) != 0) {
        take_error(L, err, errlen); /* raised outside the steps' own pcalls */
        la.rc = -1;
    }
    int rc = la.rc;
    if (leave_lua(g, "routes", NULL, NULL) && rc == 0) { /* stopped, yet the error was swallowed */
        snprintf(err, errlen, "%s", tl_stop_where);
        rc = -1;
    }
    if (rc < 0)
        goto err_destroy;
    lua_settop(L, 0);
    lock_globals(L);
    lua_gc(L, LUA_GCCOLLECT, 0);
    return g;

err_destroy:
    lhost_gen_unref(g);
    return NULL;
}

/* The protected part of lhost_gen_create: library, helpers, route files,
 * router. Returns 0, or -1 with err. */
static int load_generation(lhost_gen *g, const bundle *b, char *err, size_t errlen)
{
    lua_State *L = g->L;
    lua_pushcfunction(L, traceback);
    lua_getglobal(L, "require");
    lua_pushstring(L, "glasgow.app");
    if (lua_pcall(L, 1, 1, -3) != 0) {
        take_error(L, err, errlen);
        return -1;
    }
    int app = lua_gettop(L);
    if (!lua_istable(L, app)) {
        snprintf(err, errlen, "glasgow.app did not return a table");
        return -1;
    }
    if (preload_helpers(L, b, err, errlen) < 0 || load_routes(L, b, app, err, errlen) < 0 ||
        build_router(g, app, err, errlen) < 0)
        return -1;
    lua_getfield(L, app, "handle");
    g->handle_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    for (int i = 0; i < RK_COUNT; i++) {
        lua_pushstring(L, req_keys[i]);
        g->key_ref[i] = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    for (size_t i = 0; i < NMETHODS; i++) {
        lua_pushstring(L, common_methods[i]);
        g->method_ref[i] = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    g->req_mt_ref = lua_stream_request_mt(L);
    return 0;
}

void lhost_gen_ref(lhost_gen *g)
{
    g->refs++;
}

void lhost_gen_unref(lhost_gen *g)
{
    if (!g || --g->refs > 0)
        return;
    lua_close(g->L);
    router_destroy(g->router);
    free(g->routes);
    free(g);
}

uint64_t lhost_gen_number(const lhost_gen *g)
{
    return g->number;
}

const char *lhost_gen_hash(const lhost_gen *g)
{
    return g->hash;
}

size_t lhost_gen_route_count(const lhost_gen *g)
{
    return g->nroutes;
}

void lhost_match(lhost_gen *g, request *r)
{
    const char *path = r->route_path ? r->route_path : r->path;
    r->route_status =
        router_lookup(g->router, r->method, path, &r->match, r->allow, sizeof r->allow);
    /* the values point into route_path: decode what it left encoded */
    for (size_t i = 0; r->route_path && r->route_status == ROUTER_FOUND && i < r->match.nparams;
         i++) {
        router_param *p = &r->match.params[i];
        char *v = r->route_path + (p->value - r->route_path);
        p->value_len = router_param_decode(v, p->value_len);
    }
    r->body_limit = 0;
    r->wants_json = 0;
    r->body_stream = 0;
    r->wants_bearer = 0;
    if (r->route_status == ROUTER_FOUND) {
        const route_info *ri = &g->routes[r->match.id - 1];
        r->body_limit = ri->max_body;
        r->wants_json = ri->wants_json;
        r->body_stream = ri->stream;
        r->wants_bearer = ri->bearer;
    }
}

/* ---- running requests --------------------------------------------------------- */

void lhost_error_body(strbuf *sb, const char *code, const char *message, const char *request_id)
{
    strbuf_adds(sb, "{\"error\":{\"code\":\"");
    strbuf_add_json_escaped(sb, code, strlen(code));
    strbuf_adds(sb, "\",\"message\":\"");
    strbuf_add_json_escaped(sb, message, strlen(message));
    strbuf_adds(sb, "\",\"details\":null,\"request_id\":");
    if (request_id) {
        strbuf_adds(sb, "\"");
        strbuf_add_json_escaped(sb, request_id, strlen(request_id));
        strbuf_adds(sb, "\"}}");
    } else {
        strbuf_adds(sb, "null}}");
    }
}

static void set_c_error(request *r, unsigned status, const char *code, const char *message)
{
    r->err_status = status;
    strbuf_reset(&r->err_body);
    lhost_error_body(&r->err_body, code, message, r->request_id);
}

/* Stores name -> value into the table at the top of L; a repeated name
 * becomes an array of its values in arrival order. */
static void store_pair(lua_State *L, const char *name, size_t n, const char *value)
{
    lua_pushlstring(L, name, n);
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushstring(L, value ? value : "");
    } else if (lua_type(L, -1) == LUA_TSTRING) {
        lua_createtable(L, 2, 0);
        lua_insert(L, -2);
        lua_rawseti(L, -2, 1);
        lua_pushstring(L, value ? value : "");
        lua_rawseti(L, -2, 2);
    } else {
        lua_pushstring(L, value ? value : "");
        lua_rawseti(L, -2, (int)lua_objlen(L, -2) + 1);
    }
    lua_rawset(L, -3);
}

/* Header names are case-insensitive: stored lower-cased. */
static void set_header_pair(void *arg, const char *name, const char *value)
{
    char low[256];
    size_t n = strlen(name);
    if (n >= sizeof low)
        n = sizeof low - 1;
    for (size_t i = 0; i < n; i++)
        low[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] + 32) : name[i];
    store_pair(arg, low, n, value);
}

/* Query names are case-sensitive. */
static void set_query_pair(void *arg, const char *name, const char *value)
{
    store_pair(arg, name, strlen(name), value);
}

/* Sizes a table for n pairs: a hash part too large is garbage of its own
 * on every request, and one too small is rebuilt as it fills. */
static int table_hint(unsigned n)
{
    return n > 64 ? 64 : (int)n;
}

/* Pushes a new table of r's request headers, names lower-cased. */
static void push_headers(lua_State *L, request *r)
{
    lua_createtable(L, 0, r->nheaders ? table_hint(r->nheaders) : 8);
    if (r->each_header)
        r->each_header(r, set_header_pair, L);
}

/* Pushes a new table of the matched route's path parameters. */
static void push_params(lua_State *L, request *r)
{
    lua_createtable(L, 0, (int)r->match.nparams);
    if (r->route_status == ROUTER_FOUND)
        for (size_t i = 0; i < r->match.nparams; i++) {
            const router_param *p = &r->match.params[i];
            lua_pushlstring(L, p->name, p->name_len);
            lua_pushlstring(L, p->value, p->value_len);
            lua_rawset(L, -3);
        }
}

/* Pushes a new table of the query's pairs. */
static void push_query(lua_State *L, request *r)
{
    lua_createtable(L, 0, table_hint(r->nquery));
    if (r->each_query)
        r->each_query(r, set_query_pair, L);
}

/* The request table's fields that a table with the request metatable gets
 * on first read (the key's RK_ index), or -1 for any other key. */
static int lazy_key(const char *k, size_t n)
{
    switch (n) {
    case 2: return memcmp(k, "id", 2) ? -1 : RK_ID;
    case 5: return memcmp(k, "query", 5) ? -1 : RK_QUERY;
    case 6: return !memcmp(k, "client", 6) ? RK_CLIENT : !memcmp(k, "params", 6) ? RK_PARAMS : -1;
    case 7: return memcmp(k, "headers", 7) ? -1 : RK_HEADERS;
    default: return -1;
    }
}

/* Pushes the value of lazy field k (lazy_key) of r. */
static void push_lazy_field(lua_State *L, request *r, int k)
{
    switch (k) {
    case RK_ID: lua_pushstring(L, r->request_id); break;
    case RK_CLIENT: lua_pushstring(L, r->client); break;
    case RK_PARAMS: push_params(L, r); break;
    case RK_QUERY: push_query(L, r); break;
    default: push_headers(L, r); break;
    }
}

/* The running request whose table is at idx, or raises naming what (the
 * two parts of the field's name: "req." and "id", "req:" and "header"). */
static request *own_request(lua_State *L, int idx, const char *what, const char *name)
{
    /* the running request's table is its handler's argument, so it
     * cannot have been collected and its address is not reused */
    request *r = tl_current;
    if (!r || !r->lua_req || r->lua_req != lua_topointer(L, idx))
        luaL_error(L,
                   "%s%s: first read outside the request's own handler "
                   "(after it ended, or from another request)",
                   what, name);
    return r;
}

typedef struct header_find {
    const char *name;
    const char *first;
    int count;
} header_find;

static void find_header(void *arg, const char *name, const char *value)
{
    header_find *f = arg;
    if (strcasecmp(name, f->name) != 0)
        return;
    if (!f->count++)
        f->first = value;
}

int lwait_request_header(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *name = luaL_checkstring(L, 2);
    request *r = own_request(L, 1, "req:", "header");
    header_find f = {name, NULL, 0};
    if (r->each_header)
        r->each_header(r, find_header, &f);
    if (f.first)
        lua_pushstring(L, f.first);
    else
        lua_pushnil(L);
    lua_pushinteger(L, f.count);
    return 2;
}

int lwait_request_index(lua_State *L)
{
    size_t n = 0;
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &n) : NULL;
    int field = k ? lazy_key(k, n) : -1;
    if (field >= 0) {
        request *r = own_request(L, 1, "req.", k);
        push_lazy_field(L, r, field);
        lua_pushvalue(L, 2);
        lua_pushvalue(L, -2);
        lua_rawset(L, 1);
        return 1;
    }
    if (lua_istable(L, lua_upvalueindex(1))) {
        lua_pushvalue(L, 2);
        lua_rawget(L, lua_upvalueindex(1));
        return 1;
    }
    lua_pushnil(L);
    return 1;
}

/* Pushes the field name req_keys[k] (interned once per state): the key of a
 * lua_rawset into the request table once its value is pushed above it. */
static void push_key(lua_State *co, const lhost_gen *g, int k)
{
    lua_rawgeti(co, LUA_REGISTRYINDEX, g->key_ref[k]);
}

/* Pushes r's method, from a reference when it is a common one (interning
 * a string hashes it per request). */
static void push_method(lua_State *co, const lhost_gen *g, const char *method)
{
    for (size_t i = 0; i < NMETHODS; i++)
        if (!strcmp(method, common_methods[i])) {
            lua_rawgeti(co, LUA_REGISTRYINDEX, g->method_ref[i]);
            return;
        }
    lua_pushstring(co, method);
}

static void push_request_table(lua_State *co, request *r)
{
    const lhost_gen *g = r->gen;
    /* method, path, route or allow; with a metatable (r->streams) the
     * rest is built on first read (lwait_request_index): most handlers
     * read few of id, client, params, query, headers, and each was a
     * string or table of garbage per request. A body adds body (and
     * raw_body once decoded), a stream body_stream. */
    int has_body = r->body.len > 0 || r->body.buf;
    int lazy = r->streams != NULL;
    lua_createtable(co, 0, (lazy ? 4 : 8) + (has_body ? 2 : 0) + (r->body_stream ? 1 : 0));
    push_key(co, g, RK_METHOD);
    push_method(co, g, r->method);
    lua_rawset(co, -3);
    int found = r->route_status == ROUTER_FOUND;
    int pattern_ref = found ? g->routes[r->match.id - 1].pattern_ref : LUA_NOREF;
    push_key(co, g, RK_PATH);
    if (found && !strcmp(r->path, r->match.pattern)) /* a literal route */
        lua_rawgeti(co, LUA_REGISTRYINDEX, pattern_ref);
    else
        lua_pushstring(co, r->path);
    lua_rawset(co, -3);
    if (found) {
        push_key(co, g, RK_ROUTE);
        lua_rawgeti(co, LUA_REGISTRYINDEX, pattern_ref);
        lua_rawset(co, -3);
    } else if (r->route_status == ROUTER_METHOD_NOT_ALLOWED) {
        push_key(co, g, RK_ALLOW);
        lua_pushstring(co, r->allow);
        lua_rawset(co, -3);
    }
    r->lua_req = lazy ? lua_topointer(co, -1) : NULL;
    if (!lazy) {
        static const int eager[] = {RK_ID, RK_CLIENT, RK_PARAMS, RK_QUERY, RK_HEADERS};
        for (size_t i = 0; i < sizeof eager / sizeof eager[0]; i++) {
            push_key(co, g, eager[i]);
            push_lazy_field(co, r, eager[i]);
            lua_rawset(co, -3);
        }
    }
    if (has_body) {
        push_key(co, g, RK_BODY);
        lua_pushlstring(co, r->body.buf ? r->body.buf : "", r->body.len);
        lua_rawset(co, -3);
    }
    if (lazy)
        lua_stream_decorate(co, r, g->req_mt_ref);
}

/* Checks the runner's results (status, body, headers) on the coroutine stack. */
static int results_valid(lua_State *co)
{
    if (lua_gettop(co) < 2 || !lua_isnumber(co, 1) || lua_type(co, 2) != LUA_TSTRING)
        return 0;
    lua_Number st = lua_tonumber(co, 1);
    if (!(st >= 100 && st <= 599) || st != floor(st))
        return 0;
    return lua_gettop(co) < 3 || lua_isnil(co, 3) || lua_istable(co, 3) ||
           lua_type(co, 3) == LUA_TSTRING;
}

/* Finishes r: calls on_complete, then drops the coroutine and generation. */
static void complete(request *r)
{
    r->running = 0;
    r->on_complete(r);
    lhost_release(r);
}

/* The stuck report's and memory warning's name for a request: made only
 * when one is written (the watchdog thread calls it while r's worker is
 * still inside the run, so r's fields stand still). */
static void describe_request(const void *arg, char *out, size_t outlen)
{
    const request *r = arg;
    snprintf(out, outlen, "request %s %s %s", r->request_id, r->method,
             r->route_status == ROUTER_FOUND ? r->match.pattern : "(unrouted)");
}

/* Runs co under r's deadline and the generation's run limit (requests of
 * glasgow run have neither). Returns lua_resume's status; *stopped is set
 * when the watchdog stopped the code, with the answer already chosen. */
static int resume_watched(request *r, lua_State *co, int nargs, int *stopped)
{
    lhost_gen *g = r->gen;
    uint64_t deadline = 0;
    const char *code = "deadline_exceeded";
    const char *msg = "the request did not finish within its deadline";
    if (!r->raw_results) {
        uint64_t run = deadline_after(g->run_limit_ms);
        deadline = r->deadline_us;
        if (run && (!deadline || run < deadline)) {
            deadline = run;
            code = "handler_timeout";
            msg = "the handler ran too long without yielding";
        }
    }
    enter_lua(g, deadline, NULL, describe_request, r, code, msg);
    int st = lua_resume(co, nargs);
    *stopped = leave_lua(g, NULL, describe_request, r);
    return st;
}

static void resume_request(request *r, int nargs)
{
    lua_State *co = r->co;
    request *prev = tl_current;
    tl_current = r;
    int stopped = 0;
    int st = resume_watched(r, co, nargs, &stopped);
    tl_current = prev;
    r->co_done = st == 0 && !stopped;
    if (stopped) {
        if (st == LUA_YIELD && r->cancel) {
            r->cancel(r);
            r->cancel = NULL;
        }
        /* its own deadline, or else the end of the shutdown grace */
        int own = tl_run_deadline && watchdog_now_us() >= tl_run_deadline;
        if (tl_mem_stop) {
            set_c_error(r, 500, "internal", "internal error");
            atomic_fetch_add(&metrics.lua_stops_memory, 1);
        } else if (own) {
            set_c_error(r, 504, tl_stop_code, tl_stop_msg);
            atomic_fetch_add(!strcmp(tl_stop_code, "handler_timeout") ? &metrics.lua_stops_run_limit
                                                                      : &metrics.lua_stops_deadline,
                             1);
        } else {
            set_c_error(r, 503, "shutting_down", "the server is shutting down");
            atomic_fetch_add(&metrics.lua_stops_shutdown, 1);
        }
        log_msg(LOG_WARN, NULL, "request %s: handler stopped at %s", r->request_id, tl_stop_where);
        complete(r);
        return;
    }
    if (st == LUA_YIELD) {
        if (r->cancel)
            return; /* a binding armed an operation; the loop resumes us */
        set_c_error(r, 500, "internal", "handler yielded outside a glasgow binding");
        log_msg(LOG_ERROR, NULL, "request %s: coroutine.yield() in a handler", r->request_id);
    } else if (st != 0) {
        const char *msg = lua_tostring(co, -1);
        set_c_error(r, 500, "internal", "internal error");
        log_msg(LOG_ERROR, NULL, "request %s: runner failed: %s", r->request_id,
                msg ? msg : "(non-string error)");
    } else if (!r->raw_results && !results_valid(co)) {
        set_c_error(r, 500, "internal", "internal error");
        log_msg(LOG_ERROR, NULL, "request %s: runner returned malformed results", r->request_id);
    }
    complete(r);
}

static void find_url_token(void *arg, const char *name, const char *value)
{
    (void)value;
    if (!strcmp(name, "access_token"))
        *(int *)arg = 1;
}

int lhost_run(lhost_gen *g, request *r)
{
    lua_State *L = g->L;
    lhost_gen_ref(g);
    r->gen = g;
    r->err_status = 0;
    r->cancel = NULL;
    r->running = 1;
    /* URLs end up in logs, proxies and browser history: a credential there
     * is refused on every route, before its handler (and before the query
     * table, which most requests never build, would exist to look in) */
    int url_token = 0;
    if (r->route_status == ROUTER_FOUND && r->each_query)
        r->each_query(r, find_url_token, &url_token);
    if (url_token) {
        r->co = NULL;
        r->co_ref = LUA_NOREF;
        set_c_error(r, 401, "invalid_request",
                    "send credentials in the Authorization header, not in the URL");
        complete(r);
        return LHOST_DONE;
    }
    lua_State *co;
    if (g->nco_free > 0) {
        g->nco_free--;
        co = g->co_free[g->nco_free];
        r->co_ref = g->co_free_ref[g->nco_free];
    } else {
        co = lua_newthread(L);
        r->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    r->co = co;
    r->co_done = 0;
    lua_rawgeti(co, LUA_REGISTRYINDEX, g->handle_ref);
    lua_pushinteger(co, r->route_status == ROUTER_FOUND                ? r->match.id
                        : r->route_status == ROUTER_METHOD_NOT_ALLOWED ? -1
                                                                       : 0);
    push_request_table(co, r);
    resume_request(r, 2);
    return r->running ? LHOST_YIELDED : LHOST_DONE;
}

void lhost_abort(request *r, unsigned status, const char *code, const char *message)
{
    if (!r->running)
        return;
    if (r->cancel) {
        r->cancel(r);
        r->cancel = NULL;
    }
    set_c_error(r, status, code, message);
    complete(r);
}

void lhost_result(request *r, lhost_response *out)
{
    out->route = r->route_status == ROUTER_FOUND ? r->match.pattern : NULL;
    out->streamed = 0;
    if (r->err_status || !r->co) {
        out->status = r->err_status ? r->err_status : 500;
        out->body = r->err_body.buf ? r->err_body.buf : "";
        out->body_len = r->err_body.len;
        return;
    }
    lua_State *co = r->co;
    out->status = (unsigned)lua_tointeger(co, 1);
    out->body = lua_tolstring(co, 2, &out->body_len);
    out->streamed = lua_gettop(co) >= 4 && lua_toboolean(co, 4);
}

void lhost_result_headers(request *r, request_pair_fn fn, void *arg)
{
    if (r->err_status || !r->co) {
        fn(arg, "Content-Type", "application/json");
        if (r->err_status == 401) /* lhost_run's refusal of a token in the URL */
            fn(arg, "WWW-Authenticate", "Bearer realm=\"glasgow\", error=\"invalid_request\"");
        return;
    }
    lua_State *co = r->co;
    if (lua_gettop(co) < 3)
        return;
    if (lua_type(co, 3) == LUA_TSTRING) {
        /* glasgow.app's common case: the Content-Type alone */
        fn(arg, "Content-Type", lua_tostring(co, 3));
        return;
    }
    if (!lua_istable(co, 3))
        return;
    lua_pushnil(co);
    while (lua_next(co, 3) != 0) {
        if (lua_type(co, -2) == LUA_TSTRING && lua_type(co, -1) == LUA_TSTRING)
            fn(arg, lua_tostring(co, -2), lua_tostring(co, -1));
        lua_pop(co, 1);
    }
}

void lhost_release(request *r)
{
    lhost_gen *g = r->gen;
    request_run_cleanups(r);
    if (!g)
        return;
    if (r->co_ref != LUA_NOREF && r->co_ref != 0) {
        lua_State *co = r->co;
        if (r->co_done && co && lua_status(co) == 0 && g->nco_free < CO_CACHE) {
            lua_settop(co, 0);
            g->co_free[g->nco_free] = co;
            g->co_free_ref[g->nco_free] = r->co_ref;
            g->nco_free++;
        } else {
            luaL_unref(g->L, LUA_REGISTRYINDEX, r->co_ref);
        }
        r->co_ref = LUA_NOREF;
    }
    r->co = NULL;
    r->gen = NULL;
    settle_memory(g);
    lhost_gen_unref(g);
}

/* ---- glasgow run --------------------------------------------------------------- */

typedef struct script_state {
    int status;
    int done;
} script_state;

static void script_complete(request *r)
{
    script_state *ss = r->owner;
    ss->done = 1;
    if (r->err_status) {
        ss->status = 1;
        return;
    }
    lua_State *co = r->co;
    ss->status = lua_isnumber(co, 1) ? (int)lua_tointeger(co, 1) : 0;
}

/* Runs the chunk in a coroutine; prints errors; results pass through. */
static const char script_runner[] =
    "local chunk = ...\n"
    "return function(...)\n"
    "  local ok, res = xpcall(chunk, debug.traceback, ...)\n"
    "  if not ok then io.stderr:write('glasgow run: ', tostring(res), '\\n'); return 1 end\n"
    "  return res\n"
    "end\n";

int lhost_run_script(const lhost_opts *o, const char *file, const char *chunk, int argc,
                     char **argv)
{
    loop *lp = loop_create();
    if (!lp)
        die_errno("loop");
    lhost_thread_init(lp);
    services_thread_start(lp);
    lhost_gen *g = xcalloc(1, sizeof *g);
    g->L = new_state(o, &g->mem);
    g->refs = 1;
    lua_State *L = g->L;

    lua_createtable(L, argc, 1);
    lua_pushstring(L, file);
    lua_rawseti(L, -2, 0);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setglobal(L, "arg");

    if ((chunk ? luaL_loadbuffer(L, chunk, strlen(chunk), file) : luaL_loadfile(L, file)) != 0) {
        fprintf(stderr, "glasgow run: %s\n", lua_tostring(L, -1));
        lhost_gen_unref(g);
        services_thread_stop();
        loop_destroy(lp);
        return 1;
    }
    if (luaL_loadstring(L, script_runner) != 0)
        die("script runner: %s", lua_tostring(L, -1));
    lua_insert(L, -2);
    lua_call(L, 1, 1);
    g->handle_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    script_state ss = {0, 0};
    request r;
    memset(&r, 0, sizeof r);
    snprintf(r.method, sizeof r.method, "RUN");
    snprintf(r.request_id, sizeof r.request_id, "run");
    r.path = xstrdup(file);
    strbuf_init(&r.body);
    strbuf_init(&r.err_body);
    r.on_complete = script_complete;
    r.owner = &ss;
    r.route_status = ROUTER_NOT_FOUND;
    r.gen = g;
    lhost_gen_ref(g);
    r.running = 1;
    r.raw_results = 1;
    lua_State *co = lua_newthread(L);
    r.co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    r.co = co;
    lua_rawgeti(co, LUA_REGISTRYINDEX, g->handle_ref);
    for (int i = 0; i < argc; i++)
        lua_pushstring(co, argv[i]);
    resume_request(&r, argc);
    while (!ss.done || loop_holds(lp) > 0)
        loop_run_once(lp, -1);
    free(r.path);
    strbuf_dispose(&r.body);
    strbuf_dispose(&r.err_body);
    lhost_gen_unref(g);
    services_thread_stop();
    loop_destroy(lp);
    return ss.status;
}
