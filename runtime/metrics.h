/*
 * metrics: counters and histograms rendered in the Prometheus text format.
 *
 * Process-wide gauges are atomics. Per-request series live in one table per
 * worker, written only by that worker under its own (uncontended) mutex and
 * merged when /metrics is scraped, so the request path never contends.
 */
#ifndef GLASGOW_METRICS_H
#define GLASGOW_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "util.h"

typedef struct metrics_worker metrics_worker;

/* Process-wide values, updated with relaxed atomics from any thread. */
typedef struct metrics_global {
    atomic_long in_flight;
    atomic_ullong bytes_in;
    atomic_ullong bytes_out;
    atomic_ullong connections_rejected;
    atomic_ullong header_timeouts;
    atomic_ullong slow_bodies;
    atomic_ullong reload_success;
    atomic_ullong reload_failure;
    atomic_ullong routes_generation;
    atomic_int draining;
    atomic_ullong lua_stops_deadline; /* handlers stopped by the watchdog, by reason */
    atomic_ullong lua_stops_run_limit;
    atomic_ullong lua_stops_memory;
    atomic_ullong lua_stops_shutdown;
} metrics_global;

extern metrics_global metrics;

/* Creates one worker's table; aborts on allocation failure. */
metrics_worker *metrics_worker_create(void);

/* Registers w so that metrics_render includes it; call before serving. */
void metrics_worker_register(metrics_worker *w);

/*
 * Records a finished request. route is the matched template or NULL
 * (recorded as "unmatched", so unknown paths add no series).
 */
void metrics_observe(metrics_worker *w, const char *method, const char *route, unsigned status,
                     double seconds);

/* Sets the routes bundle hash reported as a label (hex, copied). */
void metrics_set_routes_hash(const char *hex);

/* A function that appends more families to the exposition (db pools, S3). */
typedef void (*metrics_collector)(strbuf *out);

/* Adds a collector; call before serving (not thread-safe). */
void metrics_add_collector(metrics_collector fn);

/* Appends the whole exposition to out. */
void metrics_render(strbuf *out);

#endif
