/*
 * pglisten: one non-blocking PostgreSQL connection that LISTENs on a channel
 * and hands each notification's payload to its owner, on a worker's loop.
 *
 * Everything runs on the loop through libpq's asynchronous API
 * (PQconnectStartParams / PQconnectPoll, PQsendQuery, PQflush,
 * PQconsumeInput, PQnotifies); nothing blocks. The connection is "up" from
 * the moment the server has confirmed the LISTEN (and the optional check
 * query has answered true) until the first sign that
 * it may have missed a notification: a read or write error, an end of
 * file, a FATAL message from the server (pg_terminate_backend, shutdown),
 * or a ping (an empty query sent after ping_interval_ms without traffic)
 * left unanswered for ping_timeout_ms. Then it reports down at once,
 * closes the connection, and reconnects after a backoff that doubles from
 * 100 ms up to 5 s and restarts after a success.
 *
 * The owner's callbacks run on the loop's thread, never re-entrantly from
 * pglisten_destroy: on_state(data, 1) after the LISTEN is confirmed,
 * on_state(data, 0) when an up connection is lost, on_notify(data,
 * payload) for each notification in the order the server sent them.
 *
 * Ordering: the connection's socket is a priority watcher of the loop
 * (loop_io_add_first), and its event is handled by reading until the
 * socket is empty (up to 64 reads). So whatever had reached the socket
 * when the loop read a batch of events (notifications, a FATAL message,
 * an end of file) is delivered, or the loss reported, before any other
 * watcher's event of that batch is dispatched. What arrives while a
 * batch is dispatched waits for the next one, or for pglisten_sync.
 */
#ifndef GLASGOW_PGLISTEN_H
#define GLASGOW_PGLISTEN_H

#include <stdint.h>

#include "loop.h"

typedef struct pglisten pglisten;

typedef struct pglisten_config {
    const char *conninfo;         /* URL or key=value string; copied */
    const char *channel;          /* an SQL identifier, [a-z_][a-z0-9_]*; copied */
    const char *application_name; /* how pg_stat_activity names the connection; copied */
    unsigned connect_timeout_ms;  /* a connect or LISTEN slower than this is retried */
    unsigned ping_interval_ms;    /* quiet time before a ping */
    unsigned ping_timeout_ms;     /* an unanswered ping means down */
    /* Optional: a query sent with the LISTEN whose one row must be true for
     * the connection to count as up; otherwise the connection is closed,
     * check_failed is logged, and it is tried again after the backoff.
     * NULL: none. Copied. */
    const char *check_sql;
    const char *check_failed;
} pglisten_config;

typedef struct pglisten_callbacks {
    void (*on_state)(void *data, int up);
    void (*on_notify)(void *data, const char *payload);
    void *data;
} pglisten_callbacks;

/* Creates the listener on lp and starts connecting from the loop's next
 * turn. Returns NULL when the channel is not a plain identifier. */
pglisten *pglisten_create(loop *lp, const pglisten_config *cfg, const pglisten_callbacks *cbs);

/* Closes the connection and frees l (NULL: no-op); no callback runs. */
void pglisten_destroy(pglisten *l);

/* Non-zero while the LISTEN is confirmed and no loss has been seen. */
int pglisten_up(const pglisten *l);

/*
 * Returns pglisten_up(l) once everything that reached the socket more
 * than max_age_us ago has been processed. The priority watcher (above)
 * has handled whatever arrived before the loop's current batch; so only
 * when that batch began more than max_age_us ago (it ran long) and the
 * socket was last read more than max_age_us ago is it read now, until
 * empty, with notifications delivered and a loss reported before this
 * returns. Otherwise nothing is read: in the usual short batches this
 * costs two comparisons and a vDSO clock read, no system call.
 */
int pglisten_sync(pglisten *l, uint64_t max_age_us);

/* Connections made and lost so far (for metrics). */
uint64_t pglisten_connects(const pglisten *l);
uint64_t pglisten_losses(const pglisten *l);

#endif
