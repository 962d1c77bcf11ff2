/*
 * reload: the watcher thread. Notices changes to the routes directory (and
 * the TLS files), debounces them, builds and checks a whole new generation
 * off the request path, and publishes it to every worker. A bundle that
 * fails to load leaves the serving generation in place, is logged with
 * file:line and counted in metrics.
 */
#ifndef GLASGOW_RELOAD_H
#define GLASGOW_RELOAD_H

#include "config.h"
#include "lhost.h"
#include "worker.h"

typedef struct reloader reloader;

/*
 * Creates the watcher for cfg's routes directory (and TLS files if set),
 * publishing to workers[0..n). current_hash is the hash of the bundle the
 * workers start with; generation numbers continue from first_gen.
 */
reloader *reloader_create(const config *cfg, const lhost_opts *opts, worker **workers, unsigned n,
                          const char *current_hash, uint64_t first_gen);

/* Starts the watcher thread. */
void reloader_start(reloader *rl);

/* Stops the thread and frees rl. Gives up at deadline_ms (loop_clock_ms()
 * clock) and returns -1 when the thread is stuck in a load; rl then stays
 * allocated, in use by that thread. */
int reloader_stop(reloader *rl, uint64_t deadline_ms);

/*
 * Builds n generations from b: the first is the check; the others are
 * built only when it passes. Returns 0 with gens filled, or -1 with the
 * first error ("file:line: message") in err.
 */
int reload_build(const bundle *b, const lhost_opts *opts, uint64_t number, lhost_gen **gens,
                 unsigned n, char *err, size_t errlen);

#endif
