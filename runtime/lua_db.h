/*
 * lua_db: the "glasgow.pg" Lua module, the thin binding between request
 * coroutines and the worker's pgpool. Lua code uses it through
 * lua/glasgow/db.lua, which adds error objects and transactions.
 *
 *   conn | nil, kind, sqlstate, message = pg.acquire()       (may wait)
 *   result | nil, kind, sqlstate, message = pg.exec(conn, sql, ...)  (waits)
 *   rows, affected = pg.rows(result)
 *   pg.release(conn)
 *
 * A request's connections are also released when the request ends, however
 * it ends (deadline, client gone, error), by a request cleanup, so none can
 * leak.
 */
#ifndef GLASGOW_LUA_DB_H
#define GLASGOW_LUA_DB_H

#include "pgpool.h"
#include "request.h"

struct lua_State;
struct config;

/* Opens the module (package.preload["glasgow.pg"]). */
int luaopen_glasgow_pg(struct lua_State *L);

/* Creates the calling thread's pool on lp when a database is configured
 * (else returns NULL); bindings on this thread use it. */
pgpool *lua_db_start(loop *lp);

/* Destroys the calling thread's pool (NULL is fine). */
void lua_db_stop(pgpool *p);

/* Non-zero when lua_db_config found a database. */
int lua_db_enabled(void);

/*
 * Reads the database settings (DATABASE_URL or DATABASE_URL_FILE,
 * GLASGOW_DB_*) once, before any thread starts; the health-check settings
 * come from cfg (already loaded by config_load). Returns 1 when a database
 * is configured, 0 when not, -1 with a message naming the variable in err.
 */
int lua_db_config(const struct config *cfg, char *err, size_t errlen);

/* The configured connection string with its password masked, for logs. */
void lua_db_describe(char *out, size_t n);

#endif
