/*
 * pgpool: a per-worker pool of non-blocking PostgreSQL connections.
 *
 * Everything runs on the worker's loop: connects (PQconnectStartParams /
 * PQconnectPoll), queries (PQsendQueryParams, PQconsumeInput, PQisBusy,
 * PQgetResult, PQflush), health checks (an idle connection whose socket
 * turns readable is probed and dropped if the server closed it) and
 * reconnects with exponential backoff. The pool never blocks and never
 * queues without bound: a full wait queue or an expired wait is an error
 * the caller turns into 503 with Retry-After. No Lua here.
 *
 * Readiness follows a server that answers, not one whose socket is open:
 * every round trip that comes back (a connect, a statement, even one that
 * failed in SQL) marks the pool up; a pool that heard nothing for
 * health_interval_ms sends an empty query on an idle connection (or, with
 * none idle and room to grow, opens one), and a probe unanswered after
 * health_timeout_ms, or a statement that outlives its client-side
 * deadline, marks it down until the next answer. A busy pool sends no
 * probes at all; an idle one sends one per interval.
 */
#ifndef GLASGOW_PGPOOL_H
#define GLASGOW_PGPOOL_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "util.h"

typedef struct pgpool pgpool;
typedef struct pgpool_conn pgpool_conn;
typedef struct pgpool_waiter pgpool_waiter;

/* Error kinds; stable strings for Lua come from pgpool_kind_name(). */
enum {
    PGE_NONE = 0,
    PGE_SQL,          /* the server refused the statement (sqlstate set) */
    PGE_CONNECTION,   /* cannot reach the server, or the connection broke */
    PGE_TIMEOUT,      /* the statement outlived its deadline */
    PGE_POOL_TIMEOUT, /* no connection became free within the wait timeout */
    PGE_POOL_FULL,    /* the wait queue is full */
    PGE_INVALID,      /* a parameter PostgreSQL could never accept (NUL byte) */
};

/* A caller-owned error record; owns no heap memory. */
typedef struct pg_error {
    int kind;
    char sqlstate[6];
    char message[256];
} pg_error;

typedef struct pgpool_config {
    const char *conninfo;          /* URL or key=value string; copied */
    unsigned max_size;             /* connections, hard maximum */
    unsigned max_waiters;          /* bounded wait queue */
    unsigned wait_timeout_ms;      /* how long an acquire may wait */
    unsigned statement_timeout_ms; /* server-side statement_timeout (0: none) */
    unsigned connect_timeout_ms;
    unsigned health_interval_ms; /* probe after this long without an answer (0: 1000) */
    unsigned health_timeout_ms;  /* a probe slower than this marks the pool down (0: 2000) */
} pgpool_config;

/* Called when an acquire completes: exactly one of conn and err is set. */
typedef void (*pgpool_acquire_cb)(pgpool_waiter *w, pgpool_conn *conn, const pg_error *err);

/* A queued acquire, embedded in the caller's state (no allocation). */
struct pgpool_waiter {
    pgpool_acquire_cb cb;
    void *data;
    loop_timer timer;
    pgpool_waiter *prev, *next;
    int queued;
};

/* Called when a query completes: res (owned by the callee, who must PQclear
 * it) or err. */
typedef void (*pgpool_query_cb)(void *arg, PGresult *res, const pg_error *err);

/* Creates a pool on lp and, from the loop's next turn, opens one connection
 * at once (a warm connection, and the first readiness answer); further ones
 * are opened when acquires wait, up to max_size. Aborts on allocation
 * failure. */
pgpool *pgpool_create(loop *lp, const pgpool_config *cfg);

/* Closes every connection (in-flight queries are abandoned) and frees p.
 * Waiters still queued are failed with PGE_CONNECTION first. */
void pgpool_destroy(pgpool *p);

/*
 * Acquires a connection. Returns it at once when one is idle; otherwise
 * queues w (cb called later from the loop with a connection or an error)
 * and returns NULL with err->kind == PGE_NONE, or returns NULL with err
 * set when the request can be refused at once (queue full, server down
 * during backoff).
 */
pgpool_conn *pgpool_acquire(pgpool *p, pgpool_waiter *w, pg_error *err);

/* Removes a queued waiter; its callback will not run. */
void pgpool_cancel_wait(pgpool *p, pgpool_waiter *w);

/*
 * Sends one statement with text parameters (values[i] NULL for SQL NULL,
 * lengths[i] their byte lengths) on an acquired connection; nparams < 0
 * sends sql through the simple protocol instead (several statements, no
 * parameters; for migrations). deadline_ms is
 * relative; 0 means none. Returns 0 (cb will be called from the loop) or
 * -1 with err set (cb will not be called).
 */
int pgpool_query(pgpool_conn *c, const char *sql, int nparams, const char *const *values,
                 const int *lengths, unsigned deadline_ms, pgpool_query_cb cb, void *arg,
                 pg_error *err);

/* Abandons the query in flight on c: its callback will not run and the
 * connection will be closed on release. */
void pgpool_abandon(pgpool_conn *c);

/*
 * Returns c to the pool. A connection left inside a transaction is rolled
 * back first; one that is broken, busy or abandoned is closed.
 */
void pgpool_release(pgpool_conn *c);

/* Marks c so that release closes it instead of pooling it. */
void pgpool_discard(pgpool_conn *c);

/* Statistics for /metrics and /readyz. */
typedef struct pgpool_stats {
    unsigned size;    /* open or opening connections */
    unsigned in_use;  /* acquired */
    unsigned waiting; /* queued acquires */
    uint64_t wait_timeouts;
    uint64_t connect_failures;
    uint64_t health_probes;   /* health probes sent */
    uint64_t health_timeouts; /* probes or statements the server left unanswered in time */
    int server_up; /* the server answered lately: no probe or deadline has gone unanswered
                      since its last answer, and the last connect did not fail */
} pgpool_stats;

void pgpool_get_stats(pgpool *p, pgpool_stats *out);

/* Non-zero when every pool of the process (one per worker) has its server
 * up (see pgpool_stats.server_up): readiness means any worker can serve a
 * query. Reads atomics only: cheap, never blocks, never queries. */
int pgpool_all_up(void);

/* Records a finished statement: duration and SQLSTATE class ("" for success). */
void pgpool_observe(const char *sqlstate, double seconds);

/* Registers the pool metrics collector once (process-wide). */
void pgpool_metrics_init(void);

/* Returns the stable lower-case name of an error kind ("sql", "connection", ...). */
const char *pgpool_kind_name(int kind);

/* Copies conninfo with any password replaced by "***", for logs. */
void pgpool_redact(const char *conninfo, char *out, size_t n);

#endif
