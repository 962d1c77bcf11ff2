/*
 * lua_authcache: verified tokens cached per worker, invalidated through
 * LISTEN/NOTIFY and through an in-process revocation log.
 *
 * Who invalidates what:
 * - migrations/008_auth_notify.sql puts triggers on auth_tokens and users
 *   that call pg_notify('glasgow_auth', 't:<hash hex>' | 'u:<user id>' |
 *   '*') when a token is revoked, deleted or its expiry changes, and when a
 *   user is deleted or its role, password, email or name changes. Any
 *   writer (the API, psql, `glasgow gc`, another pod) is covered. Every
 *   worker's listener receives every notification and evicts from its own
 *   cache.
 * - Revocations made by this process's routes also call forget_token /
 *   forget_user after their transaction has committed and before the
 *   response is sent; that pushes to the process-wide log, which every
 *   worker reads (one atomic load) before it trusts its cache.
 *
 * Races, and why each is closed:
 * (a) A lookup misses and asks the database; while the query is in flight,
 *     the token is revoked and the worker applies the invalidation (a
 *     notification, or a log entry). The query's snapshot may predate the
 *     revocation, so its answer ("valid") is stale. ticket() captures the
 *     cache's generation before the query; every applied invalidation
 *     advances it, and put() (which first applies the log) stores only
 *     when the generation is unchanged and the listener is up.
 *     A revocation committed after the query's snapshot whose notification
 *     arrives only after put() is no problem: the entry is stored, then
 *     evicted when the notification is processed, which happens before
 *     any request of the next batch of events runs (d).
 * (b) "Refused on the very next request, on every worker." Notifications
 *     are asynchronous: the revoking request's response could reach the
 *     client, and its next request reach another worker, before that
 *     worker's listener has read the NOTIFY. For revocations made through
 *     this process, the route pushes to the log synchronously (under a
 *     mutex, published with a release store) after the commit and before
 *     it responds; every get() does an acquire load of the log's count and
 *     applies new entries before looking up, so once the client has the
 *     response no worker of this process can answer from the stale entry.
 *     The push must come after the commit: pushed earlier, a concurrent
 *     miss could read the pre-commit row and store it with a fresh ticket.
 *     Other processes, other pods and psql writers rely on the NOTIFY,
 *     delivered once the writer commits (and applied before any request
 *     read after its arrival, (d)); the window is the notification's trip
 *     from the database to this process.
 * (c) Listener loss. Notifications sent while the listener is not
 *     LISTENing are lost, so the cache is flushed the moment a loss is
 *     seen, bypassed (every request asks the database) until a new
 *     connection has confirmed its LISTEN, and filled again only by queries
 *     ticketed after that (the loss and the reconnect advance the
 *     generation). A loss is seen at once when the server closes the
 *     connection or says FATAL (pg_terminate_backend, a restart): the
 *     loop handles the listener's event before the other events of its
 *     batch (d), so even a request already waiting behind the event is
 *     refused the cache. A silent loss (a network partition,
 *     a frozen server) is seen only when a ping goes unanswered: at most
 *     GLASGOW_DB_HEALTH_INTERVAL_MS + GLASGOW_DB_HEALTH_TIMEOUT_MS
 *     (3 s by default) late; the maximum age (GLASGOW_AUTH_CACHE_TTL_S)
 *     bounds any staleness in all cases, and revocations made by this
 *     process never depend on the listener at all.
 * (d) Ordering without a system call per request. Every lookup used to
 *     read the listener's socket first (one recv per authenticated
 *     request). Now two things bound how long a notification can wait:
 *     - The socket is a priority watcher of the worker's loop
 *       (loop_io_add_first): in each batch of events epoll returns, its
 *       event is handled (the socket read until empty, every notification
 *       applied, a loss reported) before any other event of the batch. A
 *       notification that had arrived when the batch was read is applied
 *       before any request of that batch runs, at no cost per request.
 *     - A batch can run long (a handler that computes for a second), and
 *       libmicrohttpd reads sockets during it and after it: a request can
 *       arrive after a notification and still be served in that batch.
 *       So get(), ticket() and put() read the socket themselves when the
 *       batch began more than SYNC_US (1 ms) ago and the socket has not
 *       been read since then (pglisten_sync; the clock read is the
 *       vDSO's, no system call). Batches under load take microseconds:
 *       there this reads nothing.
 *     So a notification that reached the socket 1 ms or more before a
 *     lookup, or before the batch the lookup runs in, is always applied
 *     first. The window of (b) grows from the notification's trip to that
 *     trip plus at most 1 ms. test_db_authcache.py holds a worker in a
 *     long handler while a request and then a notification arrive.
 */
#include "lua_authcache.h"

#include <lauxlib.h>
#include <lua.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authcache.h"
#include "config.h"
#include "metrics.h"
#include "pglisten.h"
#include "pgpool.h"
#include "util.h"

#define CHANNEL "glasgow_auth"
/* A lookup in a batch older than this reads the listener's socket first
 * (d): the longest a notification can wait behind requests. */
#define SYNC_US 1000
#define APP_NAME "glasgow auth listener"

/* The cache is only as good as the triggers that announce changes: without
 * migration 008 (or with a trigger disabled), the listener never counts as
 * up, so the cache stays bypassed. Checked on every (re)connect. */
static const char check_sql[] =
    "SELECT count(*) = 6 FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'D' AND tgname "
    "IN ('auth_tokens_notify_update', 'auth_tokens_notify_delete', 'auth_tokens_notify_truncate', "
    "'users_notify_update', 'users_notify_delete', 'users_notify_truncate')";

/* Settings, written by configure before any thread starts. */
static struct {
    char *conninfo;
    int own_url; /* GLASGOW_AUTH_LISTEN_URL was given */
    unsigned ttl_ms;
    unsigned capacity;
    unsigned connect_timeout_ms;
    unsigned ping_interval_ms;
    unsigned ping_timeout_ms;
} settings;

static authcache_log revocations = AUTHCACHE_LOG_INIT;

/* One thread's cache, listener and counters (the counters are read by the
 * metrics scrape on another thread, hence atomic). */
typedef struct ac_thread {
    authcache *cache;
    pglisten *listener;
    loop *lp;
    uint64_t seen; /* revocation log entries applied */
    unsigned index;
    atomic_ullong hits, misses, bypasses, stores, stale, invalidations, connects, losses;
    atomic_ullong entries;
    atomic_int up;
    EVP_MD_CTX *md_ctx; /* SHA-256 of bearer tokens; NULL: EVP_Digest */
    struct ac_thread *next;
} ac_thread;

static _Thread_local ac_thread *tl;

static pthread_mutex_t threads_mu = PTHREAD_MUTEX_INITIALIZER;
static ac_thread *threads;
static unsigned next_index;

static void count(atomic_ullong *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static void note_size(ac_thread *t)
{
    atomic_store_explicit(&t->entries, authcache_size(t->cache), memory_order_relaxed);
}

/* Applies the revocations pushed by any thread since this one last looked. */
static void sync_log(ac_thread *t)
{
    if (!authcache_log_pending(&revocations, t->seen))
        return;
    count(&t->invalidations, authcache_log_apply(&revocations, &t->seen, t->cache));
    note_size(t);
}

static void on_state(void *data, int up)
{
    ac_thread *t = data;
    /* either way, what was cached may have missed notifications: the loss
     * flushes, and entries return only through tickets taken after the up */
    count(&t->invalidations, authcache_size(t->cache));
    authcache_flush(t->cache);
    note_size(t);
    atomic_store(&t->up, up);
    count(up ? &t->connects : &t->losses, 1);
}

static void on_notify(void *data, const char *payload)
{
    ac_thread *t = data;
    count(&t->invalidations, authcache_apply_payload(t->cache, payload));
    note_size(t);
}

/* Opens the thread's listener: at its first token check, so that threads
 * that never check one (glasgow run, migrate, gc; a deployment without
 * authentication) hold no connection for it. */
static void start_listener(ac_thread *t)
{
    pglisten_config lc = {
        .conninfo = settings.conninfo,
        .channel = CHANNEL,
        .application_name = APP_NAME,
        .connect_timeout_ms = settings.connect_timeout_ms,
        .ping_interval_ms = settings.ping_interval_ms,
        .ping_timeout_ms = settings.ping_timeout_ms,
        .check_sql = check_sql,
        .check_failed = "the notify triggers of migrations/008_auth_notify.sql are missing or "
                        "disabled (run glasgow migrate); tokens are checked in the database",
    };
    pglisten_callbacks cbs = {.on_state = on_state, .on_notify = on_notify, .data = t};
    t->listener = pglisten_create(t->lp, &lc, &cbs);
}

/* Makes the cache current (the log, and the listener's socket when the
 * batch is older than SYNC_US) and returns non-zero when it may be used:
 * see (d) above. */
static int usable(ac_thread *t)
{
    sync_log(t);
    if (!t->listener)
        start_listener(t);
    return pglisten_sync(t->listener, SYNC_US);
}

static const uint8_t *check_hash(lua_State *L, int arg)
{
    size_t n;
    const char *h = luaL_checklstring(L, arg, &n);
    if (n != AUTHCACHE_KEY_LEN)
        luaL_argerror(L, arg, "expected a 32-byte SHA-256");
    return (const uint8_t *)h;
}

/* Looks key up in this thread's cache; pushes id, email, name and role
 * and returns 4 on a hit, else 0 (counted as a miss or a bypass). */
static int lookup(lua_State *L, const uint8_t *key)
{
    ac_thread *t = tl;
    if (!t)
        return 0;
    if (!usable(t)) {
        count(&t->bypasses, 1);
        return 0;
    }
    const authcache_entry *e = authcache_get(t->cache, key, loop_now(t->lp));
    if (!e) {
        count(&t->misses, 1);
        note_size(t);
        return 0;
    }
    count(&t->hits, 1);
    lua_pushstring(L, e->id);
    lua_pushstring(L, e->email);
    lua_pushstring(L, e->name);
    lua_pushstring(L, e->role);
    return 4;
}

static int ac_get(lua_State *L)
{
    return lookup(L, check_hash(L, 1));
}

static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md; /* fetched once: EVP_Digest looks it up on every call */

static void fetch_sha256(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* SHA-256 of the n bytes at data into out, through this thread's digest
 * context when it has one (about half the instructions of EVP_Digest,
 * which fetches the algorithm and allocates a context per call). */
static int sha256(ac_thread *t, const void *data, size_t n, uint8_t out[AUTHCACHE_KEY_LEN])
{
    unsigned len = 0;
    if (t && t->md_ctx)
        return EVP_DigestInit_ex2(t->md_ctx, NULL, NULL) == 1 &&
                       EVP_DigestUpdate(t->md_ctx, data, n) == 1 &&
                       EVP_DigestFinal_ex(t->md_ctx, out, &len) == 1 && len == AUTHCACHE_KEY_LEN
                   ? 0
                   : -1;
    return EVP_Digest(data, n, out, &len, EVP_sha256(), NULL) == 1 && len == AUTHCACHE_KEY_LEN ? 0
                                                                                               : -1;
}

/*
 * check(value) -> nil when value (an Authorization header) is not "Bearer
 * <token>" with a well-formed token (authcache_bearer); else the token's
 * SHA-256 (32 bytes, the cache key and auth_tokens.token_hash), followed
 * by id, email, name, role when this worker's cache holds it. One call
 * instead of a pattern match, a decode, a hash and a lookup, with no
 * intermediate Lua strings. Raises when the digest cannot be computed.
 */
static int ac_check(lua_State *L)
{
    size_t n;
    const char *value = luaL_checklstring(L, 1, &n);
    uint8_t raw[AUTHCACHE_TOKEN_LEN], key[AUTHCACHE_KEY_LEN];
    if (authcache_bearer(value, n, raw) < 0)
        return 0;
    if (sha256(tl, raw, sizeof raw, key) < 0)
        return luaL_error(L, "sha256 failed");
    lua_pushlstring(L, (const char *)key, sizeof key);
    return 1 + lookup(L, key);
}

static int ac_ticket(lua_State *L)
{
    ac_thread *t = tl;
    if (!t || !usable(t))
        return 0;
    lua_pushnumber(L, (lua_Number)authcache_generation(t->cache));
    return 1;
}

static int ac_put(lua_State *L)
{
    ac_thread *t = tl;
    const uint8_t *key = check_hash(L, 2);
    lua_Number ttl_s = luaL_checknumber(L, 3);
    const char *id = luaL_checkstring(L, 4);
    const char *email = luaL_checkstring(L, 5);
    const char *name = luaL_checkstring(L, 6);
    const char *role = luaL_checkstring(L, 7);
    if (!t || lua_isnil(L, 1)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_Number ticket = luaL_checknumber(L, 1);
    if (!usable(t) || ticket != (lua_Number)authcache_generation(t->cache)) {
        count(&t->stale, 1);
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_Number ms = ttl_s * 1000.0;
    if (!(ms >= 1.0)) { /* expired, or NaN */
        lua_pushboolean(L, 0);
        return 1;
    }
    if (ms > (lua_Number)settings.ttl_ms)
        ms = (lua_Number)settings.ttl_ms;
    int rc = authcache_put(t->cache, key, loop_now(t->lp) + (uint64_t)ms, id, email, name, role);
    if (rc == 0)
        count(&t->stores, 1);
    note_size(t);
    lua_pushboolean(L, rc == 0);
    return 1;
}

/* Pushes a revocation to every worker's cache, this thread's at once. */
static int forget(int kind, const void *key)
{
    if (settings.ttl_ms)
        authcache_log_push(&revocations, kind, key);
    if (tl)
        sync_log(tl);
    return 0;
}

static int ac_forget_token(lua_State *L)
{
    return forget(AUTHCACHE_REVOKE_TOKEN, check_hash(L, 1));
}

static int ac_forget_user(lua_State *L)
{
    return forget(AUTHCACHE_REVOKE_USER, luaL_checkstring(L, 1));
}

static int ac_enabled(lua_State *L)
{
    lua_pushboolean(L, tl != NULL);
    return 1;
}

int luaopen_glasgow_authcache(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"check", ac_check},
        {"get", ac_get},
        {"ticket", ac_ticket},
        {"put", ac_put},
        {"forget_token", ac_forget_token},
        {"forget_user", ac_forget_user},
        {"enabled", ac_enabled},
        {NULL, NULL},
    };
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    return 1;
}

/* ---- the service --------------------------------------------------------------------- */

static void *ac_thread_start(loop *lp)
{
    ac_thread *t = xcalloc(1, sizeof *t);
    t->cache = authcache_create(settings.capacity);
    t->lp = lp;
    pthread_once(&sha256_once, fetch_sha256);
    if (sha256_md && (t->md_ctx = EVP_MD_CTX_new()) != NULL &&
        EVP_DigestInit_ex2(t->md_ctx, sha256_md, NULL) != 1) {
        EVP_MD_CTX_free(t->md_ctx);
        t->md_ctx = NULL;
    }
    /* entries pushed before this thread existed concern no entry of its cache */
    t->seen = atomic_load(&revocations.seq);
    pthread_mutex_lock(&threads_mu);
    t->index = next_index++;
    t->next = threads;
    threads = t;
    pthread_mutex_unlock(&threads_mu);
    tl = t;
    return t;
}

static void ac_thread_stop(void *state)
{
    ac_thread *t = state;
    if (!t)
        return;
    pthread_mutex_lock(&threads_mu);
    for (ac_thread **pp = &threads; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    pthread_mutex_unlock(&threads_mu);
    pglisten_destroy(t->listener);
    EVP_MD_CTX_free(t->md_ctx);
    authcache_destroy(t->cache);
    free(t);
    tl = NULL;
}

static int ac_configure(const config *cfg, config_getenv_fn get, char *err, size_t errlen)
{
    static const struct {
        const char *name;
        uint64_t def, min, max;
    } knobs[] = {
        {"GLASGOW_AUTH_CACHE_TTL_S", 10, 0, 3600},
        {"GLASGOW_AUTH_CACHE_SIZE", 10000, 1, 10000000},
        {"GLASGOW_DB_CONNECT_TIMEOUT_MS", 5000, 1000, 600000},
    };
    uint64_t vals[3];
    for (size_t i = 0; i < 3; i++) {
        const char *s = get(knobs[i].name);
        vals[i] = knobs[i].def;
        if (s && config_parse_uint(s, knobs[i].min, knobs[i].max, 0, &vals[i]) < 0) {
            snprintf(err, errlen, "%s: expected an integer between %llu and %llu", knobs[i].name,
                     (unsigned long long)knobs[i].min, (unsigned long long)knobs[i].max);
            return -1;
        }
    }
    free(settings.conninfo);
    settings.conninfo = NULL;
    settings.ttl_ms = (unsigned)vals[0] * 1000;
    settings.capacity = (unsigned)vals[1];
    settings.connect_timeout_ms = (unsigned)vals[2];
    settings.ping_interval_ms = cfg->db_health_interval_ms;
    settings.ping_timeout_ms = cfg->db_health_timeout_ms;
    /* the pool's URL may go through PgBouncer in transaction mode, which
     * cannot carry a LISTEN: the listener may be given a direct one */
    char *db = config_secret(get, "DATABASE_URL", err, errlen);
    if (!db)
        return err[0] ? -1 : 0;
    char *url = config_secret(get, "GLASGOW_AUTH_LISTEN_URL", err, errlen);
    if (!url && err[0]) {
        free(db);
        return -1;
    }
    settings.own_url = url != NULL;
    if (!url) {
        url = db;
        db = NULL;
    }
    free(db);
    if (!settings.ttl_ms) {
        free(url);
        return 0;
    }
    settings.conninfo = url;
    return 1;
}

static void ac_describe(int enabled, char *out, size_t n)
{
    char where[400];
    if (!enabled) {
        snprintf(out, n, "off");
        return;
    }
    if (settings.own_url)
        pgpool_redact(settings.conninfo, where, sizeof where);
    else
        snprintf(where, sizeof where, "the database");
    snprintf(out, n, "max age %u s, %u entries per worker, LISTEN %s on %s", settings.ttl_ms / 1000,
             settings.capacity, CHANNEL, where);
}

static void collect(strbuf *out)
{
    static const struct {
        const char *name, *type, *help;
        size_t offset;
    } series[] = {
        {"glasgow_auth_cache_hits_total", "counter", "Tokens answered from the cache.",
         offsetof(ac_thread, hits)},
        {"glasgow_auth_cache_misses_total", "counter",
         "Tokens looked up in the database because the cache did not hold them.",
         offsetof(ac_thread, misses)},
        {"glasgow_auth_cache_bypasses_total", "counter",
         "Tokens looked up in the database because the listener was down.",
         offsetof(ac_thread, bypasses)},
        {"glasgow_auth_cache_stores_total", "counter", "Database answers stored.",
         offsetof(ac_thread, stores)},
        {"glasgow_auth_cache_stale_total", "counter",
         "Database answers not stored: an invalidation came while the query ran.",
         offsetof(ac_thread, stale)},
        {"glasgow_auth_cache_invalidations_total", "counter",
         "Entries removed by revocations, notifications and listener losses.",
         offsetof(ac_thread, invalidations)},
        {"glasgow_auth_cache_listener_connects_total", "counter", "LISTEN connections established.",
         offsetof(ac_thread, connects)},
        {"glasgow_auth_cache_listener_losses_total", "counter",
         "LISTEN connections lost (each flushed the cache).", offsetof(ac_thread, losses)},
        {"glasgow_auth_cache_entries", "gauge", "Tokens cached now.", offsetof(ac_thread, entries)},
    };
    pthread_mutex_lock(&threads_mu);
    for (size_t i = 0; i < sizeof series / sizeof series[0]; i++) {
        strbuf_addf(out, "# HELP %s %s\n# TYPE %s %s\n", series[i].name, series[i].help,
                    series[i].name, series[i].type);
        for (ac_thread *t = threads; t; t = t->next) {
            atomic_ullong *v = (atomic_ullong *)(void *)((char *)t + series[i].offset);
            strbuf_addf(out, "%s{worker=\"%u\"} %llu\n", series[i].name, t->index,
                        (unsigned long long)atomic_load_explicit(v, memory_order_relaxed));
        }
    }
    strbuf_adds(out, "# HELP glasgow_auth_cache_listener_up 1 while the worker's LISTEN "
                     "connection is confirmed (else its cache is bypassed).\n"
                     "# TYPE glasgow_auth_cache_listener_up gauge\n");
    for (ac_thread *t = threads; t; t = t->next)
        strbuf_addf(out, "glasgow_auth_cache_listener_up{worker=\"%u\"} %d\n", t->index,
                    atomic_load(&t->up));
    pthread_mutex_unlock(&threads_mu);
}

static void ac_metrics_init(void)
{
    metrics_add_collector(collect);
}

const service lua_authcache_service = {
    .name = "authcache",
    .lua_name = "glasgow.authcache",
    .lua_open = luaopen_glasgow_authcache,
    .configure = ac_configure,
    .thread_start = ac_thread_start,
    .thread_stop = ac_thread_stop,
    .ready = NULL,
    .not_ready = NULL,
    .describe = ac_describe,
    .metrics_init = ac_metrics_init,
};
