/*
 * lua_db: the "glasgow.pg" Lua module, the thin binding between request
 * coroutines and the worker's pgpool. Lua code uses it through
 * lua/glasgow/db.lua, which adds error objects and transactions.
 *
 *   conn | nil, kind, sqlstate, message = pg.acquire()                (may wait)
 *   result | nil, kind, sqlstate, message = pg.exec(conn, sql, ...)  (waits)
 *   result | nil, kind, sqlstate, message = pg.exec_script(conn, sql) (waits;
 *                  several statements, no parameters, no deadline: migrations)
 *   cls = pg.share_class(sql)              (0: needs a connection of its own, or
 *                  pipelining is off; 1: a write; 2: a read: see
 *                  pgpool_share_class; db.lua caches it per SQL text)
 *   result | nil, kind, sqlstate, message = pg.query(cls, sql, ...)  (waits;
 *                  one autocommit statement given to the pool, which may
 *                  pipeline it behind other requests' statements; cls must
 *                  not be 0)
 *   rows, affected, tag = pg.rows(result)  (converts and frees the result;
 *                  affected: PQcmdTuples as a number, 0 when it has none;
 *                  tag: the command tag, e.g. "INSERT 0 1")
 *   pg.release(conn)                        (also the connection's __gc)
 *   { size, in_use, waiting, up, shared, pipelined } | nothing = pg.stats()
 *                  (nothing: no pool)
 *   configured = pg.configured()            (a pool exists on this thread)
 *
 * kind is pgpool_kind_name()'s: "sql", "connection", "timeout",
 * "pool_timeout", "pool_full" or "invalid"; sqlstate may be "" (pool
 * errors); message is the server's or the pool's. Misuse raises instead:
 * no database configured, a released or busy connection, another request's
 * connection, too many parameters (any, for exec_script), a second pg.rows
 * on one result, and a call outside a request's coroutine.
 *
 * A request's connections are also released when the request ends, however
 * it ends (deadline, client gone, error), by a request cleanup, so none can
 * leak; a pg.query statement still queued or running then is withdrawn
 * (its result is read and dropped; the connection serves on).
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
