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
#include "service.h"

struct lua_State;

/* Opens the module (package.preload["glasgow.pg"]). */
int luaopen_glasgow_pg(struct lua_State *L);

/*
 * The database as a service (service.h): configured from DATABASE_URL or
 * DATABASE_URL_FILE and GLASGOW_DB_* (the health-check settings come from
 * the config, already loaded); one pgpool per thread that runs Lua;
 * ready while every pool's server is up; described with the connection
 * string's password masked.
 */
extern const service lua_db_service;

#endif
