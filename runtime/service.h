/*
 * service: the table of bindings to outside services (the database, and
 * later the object store) that the server iterates instead of naming them.
 *
 * Like nginx's module list: each binding defines one `service` value with
 * its hooks, service.c lists them in a static table, and the core (main,
 * the worker threads, lhost, admin) calls the services_* functions below,
 * which run every entry's hook in table order. Adding a binding is one
 * line in that table.
 *
 * Life cycle: services_configure once at start-up, before any thread;
 * services_metrics_init once when serving; services_thread_start/stop on
 * each thread that runs Lua (workers, glasgow run); services_not_ready
 * from any thread (it reads atomics only).
 */
#ifndef GLASGOW_SERVICE_H
#define GLASGOW_SERVICE_H

#include <stddef.h>

#include "config.h"
#include "loop.h"

struct lua_State;

typedef struct service {
    const char *name; /* short, lower case: "database"; logs, services_enabled */
    /* The Lua module: registered as package.preload[lua_name] in every
     * state (NULL: none). */
    const char *lua_name;
    int (*lua_open)(struct lua_State *L);
    /* Reads the service's settings through get (and cfg, already loaded).
     * Returns 1 when the service is configured, 0 when it is not (the
     * other hooks then see it disabled), -1 with a message naming the
     * variable in err. */
    int (*configure)(const config *cfg, config_getenv_fn get, char *err, size_t errlen);
    /* On a thread that runs Lua, when configured: sets up the thread's
     * connection to the service on lp (bindings on that thread use it) and
     * returns it; stop gets it back when the thread ends. May be NULL. */
    void *(*thread_start)(loop *lp);
    void (*thread_stop)(void *state);
    /* When configured: non-zero when the service is reachable (/readyz);
     * cheap, never blocks, any thread. NULL: always ready. */
    int (*ready)(void);
    const char *not_ready; /* /readyz status text when ready() is 0 */
    /* What the start-up log says after the name, e.g. the connection
     * string with its password masked, or "none" when not configured. */
    void (*describe)(int enabled, char *out, size_t n);
    /* Registers the service's metrics collector (metrics_add_collector);
     * called once, configured or not. May be NULL. */
    void (*metrics_init)(void);
} service;

/*
 * Configures every service from the environment through get. Returns 0, or
 * -1 with the failing service's message in err (start-up stops there).
 */
int services_configure(const config *cfg, config_getenv_fn get, char *err, size_t errlen);

/* Non-zero when the service called name is configured. */
int services_enabled(const char *name);

/* The number of services and the i-th, in table order (for lhost's
 * package.preload). */
size_t services_count(void);
const service *services_get(size_t i);

/* Starts, on the calling thread, every configured service's per-thread
 * state on lp; services_thread_stop stops them in reverse order. */
void services_thread_start(loop *lp);
void services_thread_stop(void);

/* NULL when every configured service is ready, else the not_ready text of
 * the first that is not. */
const char *services_not_ready(void);

/* Writes "name description" for each service, joined by ", ", into out. */
void services_describe(char *out, size_t n);

/* Registers every service's metrics collector; once per process. */
void services_metrics_init(void);

#endif
