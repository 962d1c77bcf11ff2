/*
 * request: one HTTP request as the Lua host sees it, free of libmicrohttpd
 * and Lua types so that either side can be tested alone.
 *
 * httpd owns the struct (one per request, freed when the connection is done
 * with it); lhost fills the route fields and runs the handler coroutine.
 */
#ifndef GLASGOW_REQUEST_H
#define GLASGOW_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "router.h"
#include "util.h"

typedef struct request request;
typedef struct request_cleanup request_cleanup;
struct body_transport;

/* Calls fn for each (name, value) pair of one kind (headers or query). */
typedef void (*request_pair_fn)(void *arg, const char *name, const char *value);

struct request {
    /* set by httpd before lhost sees the request */
    char method[16];
    char *path;       /* decoded path, owned */
    char *route_path; /* router_path_of_target of the path as sent, owned (NULL: route on path) */
    char request_id[72];
    char client[64];
    strbuf body;          /* raw request body */
    uint64_t started_us;  /* monotonic, when the headers were in */
    uint64_t deadline_us; /* monotonic; the handler is stopped then (0: none) */
    void (*each_header)(request *r, request_pair_fn fn, void *arg);
    void (*each_query)(request *r, request_pair_fn fn, void *arg);
    unsigned nheaders; /* how many pairs each_header gives (0: unknown), to size the table */
    unsigned nquery;   /* how many pairs each_query gives (0: unknown or none) */
    /* Called once when the handler finished, synchronously or after a yield;
     * lhost_result() is valid only during this call. */
    void (*on_complete)(request *r);
    void *owner; /* httpd's connection state */
    /* streamed bodies (bodystream.h); NULL where the host has none (glasgow run) */
    const struct body_transport *streams;
    uint64_t deadline_period_us; /* a streamed byte pushes deadline_us to now + this */
    strbuf resp_headers;         /* request_add_header pairs, "name\0value\0" */
    int responded;               /* request_body_sink was called */

    /* set by lhost_match */
    int route_status; /* ROUTER_FOUND, ROUTER_NOT_FOUND, ROUTER_METHOD_NOT_ALLOWED */
    router_match match;
    char allow[96];
    size_t body_limit;
    int wants_json;   /* route declares a JSON body */
    int body_stream;  /* route declares body = "stream": the handler reads it */
    int wants_bearer; /* route declares auth = "bearer" */

    /* coroutine state, owned by lhost */
    void *gen; /* lhost_gen the request runs on (referenced) */
    void *co;  /* lua_State of the coroutine */
    int co_ref;
    int running;                /* between lhost_run and completion */
    const void *lua_req;        /* its request table, whose headers are built on first read */
    int co_done;                /* the coroutine returned normally (reusable) */
    loop_timer wait_timer;      /* the pending sleep, if any */
    void (*cancel)(request *r); /* cancels the pending I/O operation */
    void *op;                   /* the pending operation's state */
    request_cleanup *cleanups;  /* run when the request ends (request_add_cleanup) */
    int raw_results;            /* glasgow run: results are not an HTTP response */
    unsigned err_status;        /* a response made in C (abort, runner failure) */
    strbuf err_body;
};

/*
 * Registers fn(data) to run once when r ends, however it ends (response,
 * abort, deadline, client gone): bindings release what the request holds
 * there, so none needs a field in this struct. Cleanups run in reverse
 * order of registration, from lhost_release. Returns a handle for
 * request_remove_cleanup; aborts on allocation failure.
 */
request_cleanup *request_add_cleanup(request *r, void (*fn)(void *data), void *data);

/* Unregisters c (from request_add_cleanup on r) without running it; c is
 * freed. For a resource released before the request ends. */
void request_remove_cleanup(request *r, request_cleanup *c);

/* Runs and frees r's cleanups, newest first; r has none afterwards. A
 * no-op when none is registered, so calling it twice is harmless. */
void request_run_cleanups(request *r);

#endif
