/*
 * lhost: the Lua host. Builds generations (one lua_State each, loaded from a
 * routes bundle) and runs requests as coroutines on them.
 *
 * A generation is immutable once built: its routes, router and OpenAPI
 * document never change. It may be built on one thread and then handed to
 * a worker, which alone uses it afterwards. Bindings that wait (sleep,
 * database statements, password hashing, streamed bodies) arm an operation
 * on the worker's loop and yield; the loop resumes the coroutine when the
 * operation completes.
 */
#ifndef GLASGOW_LHOST_H
#define GLASGOW_LHOST_H

#include <stddef.h>
#include <stdint.h>

#include "bundle.h"
#include "config.h"
#include "loop.h"
#include "request.h"

typedef struct lhost_gen lhost_gen;

typedef struct lhost_opts {
    const char *lua_path; /* package.path entries for lua/ */
    unsigned max_json_depth;
    size_t max_body_bytes;    /* default per-route body limit */
    size_t memory_limit;      /* bytes one state may hold while Lua runs; 0: none */
    unsigned run_limit_ms;    /* longest a handler runs without yielding; 0: none */
    unsigned load_timeout_ms; /* budget for loading a bundle; 0: none */
} lhost_opts;

enum { LHOST_DONE = 0, LHOST_YIELDED = 1 };

/*
 * Sets the authentication limits that every state built afterwards exposes
 * to Lua as glasgow.core.limits (token_ttl_s, login_*, password_change*),
 * and the bounds of the password-hashing queue (jobs_configure). Call once
 * at start-up, before any state or thread exists.
 */
void lhost_set_auth_limits(const config_auth *a);

/* Binds the calling thread to lp: bindings that wait arm timers there
 * (lwait.h). */
void lhost_thread_init(loop *lp);

/*
 * Starts the watchdog that stops Lua code past its deadline (see
 * watchdog.h): request handlers at their request deadline or run limit,
 * bundle loading at its budget. on_stuck (may be NULL) is told about code
 * that a hook cannot reach (a long C call) stuck_grace_ms after its
 * deadline, with the thread's name and what it runs; it returns non-zero
 * to count the thread as stuck (/livez). shortest_limit_ms is the shortest
 * budget code is given (run limit, request timeout, load budget; 0: none):
 * the watchdog sleeps at most half of it (and at most 250 ms) while nothing
 * is due, so that entering work seldom has to wake it. Without this call
 * deadlines apply only to waits.
 */
void lhost_watchdog_start(int (*on_stuck)(const char *thread, const char *what,
                                          uint64_t overdue_ms),
                          unsigned stuck_grace_ms, unsigned shortest_limit_ms);

/*
 * Builds a generation from b: a fresh state with the library and bindings,
 * every route file compiled and run, routes validated and routed, the
 * OpenAPI document built. Returns NULL with "file:line: message" in err when
 * anything fails. The generation starts with one reference.
 */
lhost_gen *lhost_gen_create(const bundle *b, const lhost_opts *o, uint64_t number, char *err,
                            size_t errlen);

/* Reference counting, not atomic: at any moment one thread holds all of a
 * generation's references. The thread that built it (the reloader, or
 * check/run on the main thread) owns it until it is published; while it
 * waits in a worker's pending slot, whoever takes it out drops it there (a
 * newer publish, on the reloader thread, or worker_join after the worker
 * thread ended); once the worker adopts it, only that worker's thread takes
 * and drops references (one per request running on it). Dropping the last
 * reference closes the state. */
void lhost_gen_ref(lhost_gen *g);
void lhost_gen_unref(lhost_gen *g);

uint64_t lhost_gen_number(const lhost_gen *g);
const char *lhost_gen_hash(const lhost_gen *g);
size_t lhost_gen_route_count(const lhost_gen *g);

/* Routes r->method and r->route_path (r->path when that is NULL): fills
 * route_status, match, allow and the route's body limit; the parameters
 * are decoded in place in route_path, so call it once per request. Call
 * when the headers are in. */
void lhost_match(lhost_gen *g, request *r);

/*
 * Runs the handler for r on g (takes a reference to g). Returns LHOST_DONE
 * when it finished (r->on_complete already called) or LHOST_YIELDED when it
 * waits; on_complete is then called later from the loop.
 */
int lhost_run(lhost_gen *g, request *r);

/*
 * Stops a yielded request: cancels its pending operation, discards its
 * coroutine and completes it with an error response of status/code/message.
 * A no-op when r is not running.
 */
void lhost_abort(request *r, unsigned status, const char *code, const char *message);

/* Inside on_complete: the response the handler produced. */
typedef struct lhost_response {
    unsigned status;
    const char *body;
    size_t body_len;
    const char *route; /* template for logs and metrics, NULL when unmatched */
    int streamed;      /* the handler returned after starting a streamed response */
} lhost_response;

void lhost_result(request *r, lhost_response *out);

/* Inside on_complete: calls fn for each response header (the runner's
 * third result: a table of them, or a string that is the Content-Type). */
void lhost_result_headers(request *r, request_pair_fn fn, void *arg);

/* Runs r's cleanups (request_add_cleanup), then releases what lhost holds
 * for r (coroutine, generation reference). Safe to call more than once. */
void lhost_release(request *r);

/*
 * Appends the standard JSON error body to sb, the one C builder of it:
 * {"error":{"code":..,"message":..,"details":null,"request_id":..}}, members
 * in this order, as glasgow.errors.body writes it on the Lua side (and
 * .ci/patches/libmicrohttpd/0004 for the errors libmicrohttpd answers).
 * request_id may be NULL (the admin listener has none): then it is null.
 */
void lhost_error_body(strbuf *sb, const char *code, const char *message, const char *request_id);

/*
 * glasgow run: executes file (or, when chunk is not NULL, that source text
 * named file) as a coroutine with the same library and bindings and an
 * event loop, with arg = {[0]=file, ...}. Returns the exit status: the
 * script's integer return value, 0 when it returns nothing, 1 on error
 * (printed to stderr).
 */
int lhost_run_script(const lhost_opts *o, const char *file, const char *chunk, int argc,
                     char **argv);

#endif
