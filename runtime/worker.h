/*
 * worker: the worker threads. Each owns an event loop, an httpd server on
 * it (httpd.h) and the routes generation it serves (one lua_State), runs
 * the services' per-thread state (service.h), and takes new generations
 * and the drain request from other threads.
 */
#ifndef GLASGOW_WORKER_H
#define GLASGOW_WORKER_H

#include <stdint.h>

#include "config.h"
#include "lhost.h"

typedef struct worker worker;

/*
 * Creates worker number index serving gen (takes the caller's reference)
 * on a dup of listen_fd. tls is non-zero to serve HTTPS through the tls
 * module's current certificate. Returns NULL with err on failure.
 */
worker *worker_create(unsigned index, const config *cfg, int listen_fd, int tls, lhost_gen *gen,
                      char *err, size_t errlen);

/* Starts the worker's thread. */
void worker_start(worker *w);

/* Hands a new generation to w (takes the caller's reference); any thread.
 * The worker swaps it in between requests; in-flight requests finish on
 * the generation they started on. */
void worker_publish(worker *w, lhost_gen *gen);

/* Asks w to stop accepting, finish in-flight requests within grace_ms,
 * then stop; any thread. */
void worker_drain(worker *w, unsigned grace_ms);

/* Waits for the worker's thread and frees it. With deadline_ms (the
 * loop_clock_ms() clock; 0: wait forever), gives up then and returns -1,
 * leaving w alone: its thread is stuck and the caller exits without it. */
int worker_join(worker *w, uint64_t deadline_ms);

/* Requests being handled by w now (approximate, any thread). */
long worker_in_flight(const worker *w);

#endif
