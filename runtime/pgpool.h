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
 *
 * Two ways to run a statement: acquire a connection (pgpool_acquire, then
 * pgpool_query and pgpool_release), which a transaction needs; or give one
 * autocommit statement to the pool (pgpool_submit), which may queue it in
 * libpq's pipeline mode on a connection already carrying other callers'
 * statements (pipeline_depth), each its own Sync, so that a backend finds
 * its next statement waiting and fewer backends are busy at once.
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
    unsigned pipeline_depth;     /* statements one connection may carry at once for
                                    pgpool_submit (0 or 1: one, no pipelining; at most
                                    PGPOOL_PIPELINE_MAX) */
    unsigned pipeline_fast_us;   /* a read with at most this smoothed time may have
                                    statements queued behind it (0: 10000) */
    unsigned pipeline_stall_ms;  /* ... unless the one in front has been running this
                                    long (0: 20) */
} pgpool_config;

#define PGPOOL_PIPELINE_MAX 32
#define PGPOOL_MAX_PARAMS 100 /* parameters of one pgpool_submit statement */

/* Called when an acquire completes: exactly one of conn and err is set. */
typedef void (*pgpool_acquire_cb)(pgpool_waiter *w, pgpool_conn *conn, const pg_error *err);

/* A queued acquire, embedded in the caller's state (no allocation). */
struct pgpool_waiter {
    pgpool_acquire_cb cb;
    void *data;
    loop_timer timer;
    pgpool_waiter *prev, *next;
    int queued;
    int is_call; /* set by pgpool_submit: the waiter of a pgpool_call */
};

/* Called when a query completes: res (owned by the callee, who must PQclear
 * it) or err. */
typedef void (*pgpool_query_cb)(void *arg, PGresult *res, const pg_error *err);

/* One statement given to the pool rather than to a connection
 * (pgpool_submit), embedded in the caller's state; opaque. */
typedef struct pgpool_call {
    pgpool_waiter w; /* queued while no connection can take it */
    pgpool_query_cb cb;
    void *arg;
    pgpool *pool;
    pgpool_conn *conn; /* the connection carrying it once sent */
    int cls;           /* PGPOOL_SHARE_* of its SQL */
    unsigned deadline_ms;
    int nparams;
    char *copy; /* sql and parameters, copied while it waits (one block) */
} pgpool_call;

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

/* How a statement may share a connection (pgpool_share_class). */
enum {
    PGPOOL_SHARE_NO = 0, /* not through pgpool_submit: session or transaction control,
                            DDL, anything not recognised */
    PGPOOL_SHARE_TAIL,   /* a write (INSERT, UPDATE, DELETE, MERGE, WITH, SELECT ...
                            FOR UPDATE): may be queued behind others, never ahead of one,
                            since it may wait on a row lock */
    PGPOOL_SHARE_READ,   /* a plain read (SELECT, VALUES, TABLE): others may queue behind
                            it while its statement has been fast on that connection */
};

/* Classifies sql by its first keyword (after blanks, comments and opening
 * parentheses) and, for reads, by any locking clause. A statement that can
 * open a transaction block or change session state is PGPOOL_SHARE_NO. */
int pgpool_share_class(const char *sql);

/* Non-zero when p pipelines (pipeline_depth > 1). */
int pgpool_pipelining(const pgpool *p);

/*
 * Runs one autocommit statement (extended protocol, text parameters as for
 * pgpool_query; cls is pgpool_share_class(sql), which the caller may have
 * cached, and must not be PGPOOL_SHARE_NO: that is refused, invalid) on some
 * connection of p: an idle one, or one already carrying fewer than
 * pipeline_depth statements that are all fast reads (libpq's pipeline mode,
 * each statement its own Sync, so that an error in one never touches the
 * next), or, when neither exists, after waiting in the pool's queue like
 * pgpool_acquire (same bounds and errors). Returns 0 (cb will be called
 * from the loop, never from this call) or -1 with err set (cb will not be
 * called). A lost connection fails every statement it carries with
 * PGE_CONNECTION; a statement past its deadline fails with PGE_TIMEOUT and
 * the others queued on its connection with PGE_CONNECTION.
 */
int pgpool_submit(pgpool *p, pgpool_call *q, int cls, const char *sql, int nparams,
                  const char *const *values, const int *lengths, unsigned deadline_ms,
                  pgpool_query_cb cb, void *arg, pg_error *err);

/* Withdraws q: its callback will not run. A queued q leaves the queue; a
 * sent one's result is read and discarded when it arrives, and its
 * connection serves on. Safe on a call that already completed. */
void pgpool_call_cancel(pgpool_call *q);

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
    uint64_t pipelined;       /* statements sent behind another on a busy connection */
    unsigned shared;          /* connections carrying pgpool_submit statements now */
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
