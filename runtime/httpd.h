/*
 * httpd: the libmicrohttpd request life cycle on one worker's loop. Each
 * server owns a libmicrohttpd daemon in external-epoll mode on a dup() of
 * the shared listen socket, the requests and connections in flight, the
 * access log buffer and the generation new requests are routed on. The
 * worker thread (worker.h) drives it: it waits on the loop for at most
 * httpd_next_wait(), then calls httpd_run().
 *
 * Everything here runs on the worker's thread, except httpd_listen (any
 * thread, before the workers) and httpd_in_flight (any thread).
 */
#ifndef GLASGOW_HTTPD_H
#define GLASGOW_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "lhost.h"
#include "loop.h"

typedef struct httpd httpd;

/* Binds and listens on addr (SO_REUSEADDR, non-blocking, close-on-exec).
 * Returns the socket, or -1 with a message naming var in err. */
int httpd_listen(const config_addr *addr, const char *var, char *err, size_t errlen);

/*
 * Creates the server of worker number index on lp, serving gen (takes the
 * caller's reference) on a dup of listen_fd; tls is non-zero to serve
 * HTTPS through the tls module's current certificate. Arms its timers (the
 * header-timeout and body-rate sweep, the access log flush) on lp. Returns
 * NULL with err on failure.
 */
httpd *httpd_create(unsigned index, const config *cfg, loop *lp, int listen_fd, int tls,
                    lhost_gen *gen, char *err, size_t errlen);

/* Routes new requests on gen (takes the caller's reference); requests in
 * flight keep the generation they started on. */
void httpd_use_gen(httpd *srv, lhost_gen *gen);

/* Asks for an httpd_run in the next iteration without waiting. */
void httpd_need_run(httpd *srv);

/* How long the loop may wait before httpd_run is due: libmicrohttpd's
 * timeout (capped at 60 s), 0 when a run is pending, -1 for no limit. */
int64_t httpd_next_wait(httpd *srv);

/* Lets libmicrohttpd process what is ready; call after each loop
 * iteration. */
void httpd_run(httpd *srv);

/* Stops accepting connections; those open are served on. */
void httpd_quiesce(httpd *srv);

/* The drain grace is over: answers suspended requests 503, lets the
 * answers go out for up to 200 ms, flushes the access log and stops the
 * daemon. */
void httpd_shutdown(httpd *srv);

/* Writes out the buffered access log lines. */
void httpd_flush_log(httpd *srv);

/* Requests being handled now (approximate, any thread). */
long httpd_in_flight(const httpd *srv);

/* Frees srv and drops its generation reference; after httpd_shutdown, on
 * any thread once the worker's has ended. NULL is fine. */
void httpd_destroy(httpd *srv);

#endif
