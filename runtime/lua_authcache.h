/*
 * lua_authcache: the "glasgow.authcache" Lua module and the "authcache"
 * service: a per-worker cache of verified bearer tokens (authcache.h) kept
 * exact by a per-worker LISTEN connection (pglisten.h) and the
 * process-wide revocation log.
 *
 *   id, email, name, role | nil = ac.get(hash)
 *       hash: the token's raw SHA-256 (32 bytes). nil: not cached, or the
 *       cache is off, or its listener is not up (then it is bypassed).
 *   ticket | nil = ac.ticket()
 *       taken before the database is asked; nil: do not store the answer.
 *   stored = ac.put(ticket, hash, ttl_s, id, email, name, role)
 *       stores the answer unless an invalidation was applied since ticket
 *       (or the listener went down); ttl_s: the token's remaining life in
 *       seconds, capped by GLASGOW_AUTH_CACHE_TTL_S.
 *   ac.forget_token(hash), ac.forget_user(id)
 *       after a revocation has committed, before the response is sent: no
 *       worker of this process trusts the cached entry afterwards.
 *   enabled = ac.enabled()
 *
 * Misuse raises (a hash that is not 32 bytes, a non-string id); every
 * function is a no-op returning nil/false when the cache is off
 * (GLASGOW_AUTH_CACHE_TTL_S=0 or no database).
 */
#ifndef GLASGOW_LUA_AUTHCACHE_H
#define GLASGOW_LUA_AUTHCACHE_H

#include "service.h"

struct lua_State;

/* Opens the module (package.preload["glasgow.authcache"]). */
int luaopen_glasgow_authcache(struct lua_State *L);

/*
 * The cache as a service (service.h): on when DATABASE_URL (or _FILE) is
 * set and GLASGOW_AUTH_CACHE_TTL_S (default 10) is not 0; the listener
 * connects to GLASGOW_AUTH_LISTEN_URL (or _FILE; default: DATABASE_URL),
 * which must reach PostgreSQL directly or through a session-mode pooler;
 * GLASGOW_AUTH_CACHE_SIZE: entries per worker (default 10000);
 * per thread, a cache, and a listener connection on the thread's loop
 * opened at the thread's first token check (until it has confirmed its
 * LISTEN, the cache is bypassed); always ready (a down listener only bypasses the cache); its
 * metrics are glasgow_auth_cache_*.
 */
extern const service lua_authcache_service;

#endif
