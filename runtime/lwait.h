/*
 * lwait: what a binding that waits needs from the Lua host, and nothing
 * else, so that bindings (lua_db, and later s3 and streams) include this
 * header instead of lhost.h and lhost never depends on them.
 *
 * A waiting binding finds the request of the calling coroutine, starts its
 * non-blocking operation on the thread's loop, sets r->cancel and r->op,
 * and yields; its completion callback pushes the results onto r->co and
 * calls lwait_resume. Anything the request holds beyond the wait is
 * released by a request cleanup (request_add_cleanup).
 *
 * Implemented by lhost.c.
 */
#ifndef GLASGOW_LWAIT_H
#define GLASGOW_LWAIT_H

#include "loop.h"
#include "request.h"

struct lua_State;

/* The calling thread's loop (bound by lhost_thread_init), NULL if none. */
loop *lwait_loop(void);

/*
 * Returns the request whose coroutine is L, or raises a Lua error naming
 * fname when L is not a request's own coroutine (load time, a nested
 * coroutine, another thread).
 */
request *lwait_request_of(struct lua_State *L, const char *fname);

/* Resumes r's coroutine with the nargs values already pushed onto it; for
 * the completion callbacks of waiting bindings, on r's thread. */
void lwait_resume(request *r, int nargs);

/*
 * The __index of a request table whose fields id, client, params, query and
 * headers are built on first read (r->streams set): for those keys, builds
 * the value, stores it in the request table and returns it; raises an
 * error when the table is not the one of the request running on this
 * thread (read from another request's code, or after it ended). Any other
 * key is looked up in upvalue 1 when that is a table (the request's
 * methods), else gives nil.
 */
int lwait_request_index(struct lua_State *L);

/*
 * req:header(name) -> value, count: the first field of that name the
 * client sent (names compare case-insensitively; nil when none) and how
 * many fields had it, read from the request without building req.headers.
 * Raises like lwait_request_index outside the request's own handler.
 */
int lwait_request_header(struct lua_State *L);

#endif
