/*
 * pgpool: libpq in non-blocking mode, driven by the worker's epoll loop.
 */
#include "pgpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "log.h"
#include "metrics.h"

/* CS_PROBING: an idle connection carrying a health probe (not lent, not idle).
 * CS_SHARED: carrying statements of pgpool_submit, in libpq's pipeline mode. */
enum { CS_CONNECTING, CS_IDLE, CS_ACQUIRED, CS_RESETTING, CS_PROBING, CS_SHARED };

/* A connected socket is always watched for input: an idle connection
 * notices a server that closes it, and a query's interest never changes,
 * so the common query costs no epoll_ctl at all (output is added only while
 * libpq has unsent bytes). */
#define WATCH_IN (EPOLLIN | EPOLLRDHUP)

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000

/* A probe that missed its timeout marks the pool down at once but keeps
 * waiting for the answer, which marks it up again the moment a frozen
 * server resumes; it is bounded so that a server gone without a reset
 * cannot pin the connection forever. */
#define PROBE_GIVE_UP_MS 30000

/*
 * Prepared statements, per connection, where it pays: a statement's first
 * run goes out unnamed (one round trip, as for any one-off SQL); its second
 * run prepares it (Parse once, an extra round trip that one time) and every
 * later run sends only Bind/Execute, sparing the server the parse and plan.
 * The cache is bounded; beyond it statements simply stay unnamed.
 */
#define STMT_CACHE 32

/* stmt.prepared */
enum { ST_UNPREPARED, ST_PREPARING, ST_PREPARED };

typedef struct stmt {
    uint64_t hash;
    char *sql;
    unsigned uses;
    int prepared;     /* ST_*: ST_PREPARING while a pipelined Prepare is unanswered */
    unsigned runs;    /* completed pipelined runs, for ewma_us */
    unsigned ewma_us; /* their time, smoothed (the mean of the first 8 runs, then 1/8 a run) */
    char name[16];
} stmt;

/*
 * Pipelining (pgpool_submit). A statement that may share a connection is
 * sent in libpq's pipeline mode, followed by its own Sync: the server runs
 * it in its own implicit transaction, and an error in it aborts nothing
 * else. Statements are queued behind others on a busy connection (up to the
 * configured depth), so that its backend finds the next statement waiting
 * instead of sleeping, and fewer backends are busy at once. What is queued
 * waits for whatever is ahead of it, so only fast reads may have statements
 * behind them: a read whose statement has been seen on the connection and
 * took at most PIPE_FAST_US (smoothed; as the client sees it, so under load
 * it includes the time a result waits to be read), on a connection that has
 * not been working on the one in front for longer than PIPE_STALL_MS. A
 * write may wait on a row lock: it goes last. What stays exposed is a fast
 * read that turns slow (a plan change, a lock taken by DDL): the at most
 * depth - 1 statements already behind it wait with it, up to its timeout.
 */
#define PIPE_FAST_US 10000 /* defaults of pgpool_config.pipeline_fast_us */
#define PIPE_STALL_MS 20   /* ... and pipeline_stall_ms */

typedef struct pipe_slot {
    pgpool_call *call; /* NULL once withdrawn: the result is read and dropped */
    stmt *st;
    PGresult *result;
    pg_error err;
    uint64_t sent_us;
    uint64_t deadline_ms; /* loop clock; 0: none */
    int preparing;        /* its Sync segment begins with a Prepare, answered first */
    int blocks;           /* nothing may be queued behind it */
} pipe_slot;

/* Completed statements, handed to their callers once the connection is in
 * a consistent state; a call withdrawn meanwhile is dropped from it. */
typedef struct delivery {
    pgpool_call *call;
    PGresult *res;
    pg_error err;
} delivery;

typedef struct batch {
    delivery d[PGPOOL_PIPELINE_MAX];
    unsigned n;
    struct batch *up;
} batch;

struct pgpool_conn {
    stmt stmts[STMT_CACHE];
    unsigned nstmts;
    /* the execute step that follows a Prepare */
    stmt *preparing;
    int pend_n;
    char **pend_values;
    int *pend_lengths;
    pgpool *pool;
    PGconn *pg;
    int state;
    loop_io io;
    int io_fd;
    uint32_t io_events;
    loop_timer timer; /* connect timeout, or the query deadline */
    pgpool_query_cb cb;
    void *arg;
    PGresult *result;
    pg_error qerr;
    int querying;
    int discard;
    int heard;      /* the statement in flight got a result from the server */
    int probe;      /* this connect or query is a health probe */
    int probe_late; /* ... which has already missed its timeout */
    uint64_t query_start_us;
    pipe_slot *pipe; /* CS_SHARED: a ring of depth slots, oldest at phead */
    unsigned phead, npipe;
    unsigned nblock;          /* slots that nothing may be queued behind */
    int pipeline_on;          /* libpq is in pipeline mode */
    uint64_t last_done_us;    /* when the last pipelined statement completed */
    uint64_t armed_ms;        /* deadline the timer is set for (CS_SHARED) */
    pgpool_conn *prev, *next; /* every connection of the pool */
    pgpool_conn *idle_next;   /* idle stack */
};

struct pgpool {
    loop *lp;
    char *conninfo;
    char options[160];
    char connect_timeout[16];
    pgpool_config cfg;
    pgpool_conn *conns;
    pgpool_conn *idle;
    pgpool_waiter *wait_head, *wait_tail;
    unsigned connecting;
    uint64_t backoff_until;
    unsigned backoff_ms;
    unsigned long long backoff_epoch; /* connect_epoch when the backoff began */
    char last_error[256];
    loop_timer fail_timer; /* answers the queue from the loop, never re-entrantly */
    pg_error fail_err;
    loop_timer keeper;       /* keeps one connection open, reconnects after backoff, probes */
    pgpool_conn *probing;    /* the connection carrying the health probe, if any */
    uint64_t last_answer_ms; /* loop clock of the server's last answer */
    int silence_logged;
    atomic_uint nconns;
    atomic_uint nacquired;
    atomic_uint nwaiting;
    atomic_ullong wait_timeouts;
    atomic_ullong connect_failures;
    atomic_ullong health_probes;
    atomic_ullong health_timeouts;
    atomic_int server_up;
    unsigned depth; /* pipeline depth; 1: no pipelining */
    batch *batches; /* deliveries under way (nested when a callback causes one) */
    atomic_uint nshared;
    atomic_ullong pipelined;
};

/* ---- process-wide metrics -------------------------------------------------------- */

#define MAX_POOLS 256
#define NBUCKETS 11
static const double qbounds[NBUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                         0.05,   0.1,   0.25,   1,     5};
static pgpool *pools[MAX_POOLS];
/* Bumped whenever any pool connects: a pool backing off after a failure
 * retries at once when another worker has just reached the server. */
static atomic_ullong connect_epoch;
static pthread_mutex_t pools_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_ullong qbuckets[NBUCKETS];
static atomic_ullong qcount;
static atomic_ullong qsum_us;
static pthread_mutex_t err_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char cls[3];
    uint64_t n;
} err_classes[64];
static size_t n_err_classes;

void pgpool_observe(const char *sqlstate, double seconds)
{
    for (int b = 0; b < NBUCKETS; b++)
        if (seconds <= qbounds[b])
            atomic_fetch_add_explicit(&qbuckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&qcount, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&qsum_us, (unsigned long long)(seconds * 1e6), memory_order_relaxed);
    if (!sqlstate || !sqlstate[0])
        return;
    pthread_mutex_lock(&err_mu);
    size_t i;
    for (i = 0; i < n_err_classes; i++)
        if (!strncmp(err_classes[i].cls, sqlstate, 2))
            break;
    if (i == n_err_classes && i < sizeof err_classes / sizeof err_classes[0]) {
        memcpy(err_classes[i].cls, sqlstate, 2);
        err_classes[i].cls[2] = '\0';
        n_err_classes++;
    }
    if (i < n_err_classes)
        err_classes[i].n++;
    pthread_mutex_unlock(&err_mu);
}

static void collect(strbuf *out)
{
    unsigned size = 0, in_use = 0, waiting = 0;
    unsigned long long timeouts = 0, failures = 0, probes = 0, silences = 0, pipelined = 0;
    unsigned shared = 0;
    int up = 0, npools = 0;
    pthread_mutex_lock(&pools_mu);
    for (int i = 0; i < MAX_POOLS; i++) {
        pgpool *p = pools[i];
        if (!p)
            continue;
        npools++;
        size += atomic_load(&p->nconns);
        in_use += atomic_load(&p->nacquired);
        waiting += atomic_load(&p->nwaiting);
        timeouts += atomic_load(&p->wait_timeouts);
        failures += atomic_load(&p->connect_failures);
        probes += atomic_load(&p->health_probes);
        silences += atomic_load(&p->health_timeouts);
        pipelined += atomic_load(&p->pipelined);
        shared += atomic_load(&p->nshared);
        up |= atomic_load(&p->server_up);
    }
    pthread_mutex_unlock(&pools_mu);
    if (!npools)
        return;
    strbuf_addf(out,
                "# HELP glasgow_db_pool_connections Open database connections, all workers.\n"
                "# TYPE glasgow_db_pool_connections gauge\nglasgow_db_pool_connections %u\n"
                "# HELP glasgow_db_pool_in_use Connections lent to requests.\n"
                "# TYPE glasgow_db_pool_in_use gauge\nglasgow_db_pool_in_use %u\n"
                "# HELP glasgow_db_pool_waiting Requests waiting for a connection.\n"
                "# TYPE glasgow_db_pool_waiting gauge\nglasgow_db_pool_waiting %u\n"
                "# HELP glasgow_db_pool_wait_timeouts_total Waits that gave up (503).\n"
                "# TYPE glasgow_db_pool_wait_timeouts_total counter\n"
                "glasgow_db_pool_wait_timeouts_total %llu\n"
                "# HELP glasgow_db_connect_failures_total Failed connection attempts.\n"
                "# TYPE glasgow_db_connect_failures_total counter\n"
                "glasgow_db_connect_failures_total %llu\n"
                "# HELP glasgow_db_health_probes_total Health probes sent by idle pools.\n"
                "# TYPE glasgow_db_health_probes_total counter\n"
                "glasgow_db_health_probes_total %llu\n"
                "# HELP glasgow_db_health_timeouts_total Probes or statements the server left "
                "unanswered in time.\n"
                "# TYPE glasgow_db_health_timeouts_total counter\n"
                "glasgow_db_health_timeouts_total %llu\n"
                "# HELP glasgow_db_up 1 when the server answered lately (any worker).\n"
                "# TYPE glasgow_db_up gauge\nglasgow_db_up %d\n",
                size, in_use, waiting, timeouts, failures, probes, silences, up);
    strbuf_addf(out,
                "# HELP glasgow_db_pool_shared Connections carrying pipelined statements "
                "(counted in in_use too).\n"
                "# TYPE glasgow_db_pool_shared gauge\nglasgow_db_pool_shared %u\n"
                "# HELP glasgow_db_pipelined_total Statements queued behind another on a busy "
                "connection (GLASGOW_DB_PIPELINE_DEPTH).\n"
                "# TYPE glasgow_db_pipelined_total counter\nglasgow_db_pipelined_total %llu\n",
                shared, pipelined);
    strbuf_adds(out, "# HELP glasgow_db_query_duration_seconds Statement round trips.\n"
                     "# TYPE glasgow_db_query_duration_seconds histogram\n");
    for (int b = 0; b < NBUCKETS; b++)
        strbuf_addf(out, "glasgow_db_query_duration_seconds_bucket{le=\"%g\"} %llu\n", qbounds[b],
                    (unsigned long long)atomic_load(&qbuckets[b]));
    strbuf_addf(out,
                "glasgow_db_query_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
                "glasgow_db_query_duration_seconds_sum %.6f\n"
                "glasgow_db_query_duration_seconds_count %llu\n",
                (unsigned long long)atomic_load(&qcount), (double)atomic_load(&qsum_us) / 1e6,
                (unsigned long long)atomic_load(&qcount));
    strbuf_adds(out, "# HELP glasgow_db_errors_total Statement errors by SQLSTATE class.\n"
                     "# TYPE glasgow_db_errors_total counter\n");
    pthread_mutex_lock(&err_mu);
    for (size_t i = 0; i < n_err_classes; i++)
        strbuf_addf(out, "glasgow_db_errors_total{class=\"%s\"} %llu\n", err_classes[i].cls,
                    (unsigned long long)err_classes[i].n);
    pthread_mutex_unlock(&err_mu);
}

void pgpool_metrics_init(void)
{
    metrics_add_collector(collect);
}

/* ---- helpers ------------------------------------------------------------------------ */

const char *pgpool_kind_name(int kind)
{
    switch (kind) {
    case PGE_SQL: return "sql";
    case PGE_CONNECTION: return "connection";
    case PGE_TIMEOUT: return "timeout";
    case PGE_POOL_TIMEOUT: return "pool_timeout";
    case PGE_POOL_FULL: return "pool_full";
    case PGE_INVALID: return "invalid";
    default: return "none";
    }
}

void pgpool_redact(const char *conninfo, char *out, size_t n)
{
    /* URL form: scheme://user:PASSWORD@host...; key=value form: password=... */
    const char *at = strchr(conninfo, '@');
    const char *scheme = strstr(conninfo, "://");
    if (scheme && at && at > scheme) {
        const char *colon = memchr(scheme + 3, ':', (size_t)(at - scheme - 3));
        if (colon) {
            snprintf(out, n, "%.*s:***%s", (int)(colon - conninfo), conninfo, at);
            return;
        }
    }
    const char *pw = strstr(conninfo, "password");
    if (pw) {
        snprintf(out, n, "%.*spassword=***", (int)(pw - conninfo), conninfo);
        return;
    }
    snprintf(out, n, "%s", conninfo);
}

static void set_err(pg_error *e, int kind, const char *sqlstate, const char *msg)
{
    e->kind = kind;
    snprintf(e->sqlstate, sizeof e->sqlstate, "%s", sqlstate ? sqlstate : "");
    snprintf(e->message, sizeof e->message, "%s", msg ? msg : "");
    /* libpq messages end with a newline */
    size_t len = strlen(e->message);
    while (len > 0 && (e->message[len - 1] == '\n' || e->message[len - 1] == ' '))
        e->message[--len] = '\0';
}

/* The server answered a round trip: p is up, and its probe clock restarts. */
static void pool_answered(pgpool *p)
{
    p->last_answer_ms = loop_clock_ms();
    if (atomic_load_explicit(&p->server_up, memory_order_relaxed))
        return;
    atomic_store(&p->server_up, 1);
    if (p->silence_logged) {
        log_msg(LOG_INFO, NULL, "database answers again");
        p->silence_logged = 0;
    }
}

/* The server left a probe or a statement unanswered past its bound: p is
 * down (readyz 503) until its next answer. Connections stay as they are;
 * a frozen server that resumes answers on them. */
static void pool_silent(pgpool *p, const char *what)
{
    atomic_fetch_add(&p->health_timeouts, 1);
    if (!atomic_load(&p->server_up))
        return;
    atomic_store(&p->server_up, 0);
    log_msg(LOG_WARN, NULL, "database did not answer %s in time; not ready until it does", what);
    p->silence_logged = 1;
}

static void conn_io(loop *lp, loop_io *io, uint32_t events);

/* Points the loop at c's current socket with the given interest. */
static void conn_watch(pgpool_conn *c, uint32_t events)
{
    int fd = PQsocket(c->pg);
    if (fd != c->io_fd) {
        if (c->io_fd >= 0)
            loop_io_del(c->pool->lp, &c->io);
        c->io_fd = -1;
        if (fd < 0)
            return;
        if (loop_io_add(c->pool->lp, &c->io, fd, events, conn_io, c) == 0) {
            c->io_fd = fd;
            c->io_events = events;
        }
        return;
    }
    if (fd >= 0 && events != c->io_events && loop_io_mod(c->pool->lp, &c->io, events) == 0)
        c->io_events = events;
}

static void free_pending(pgpool_conn *c)
{
    for (int i = 0; i < c->pend_n; i++)
        free(c->pend_values[i]);
    free(c->pend_values);
    free(c->pend_lengths);
    c->pend_values = NULL;
    c->pend_lengths = NULL;
    c->pend_n = 0;
    c->preparing = NULL;
}

static void conn_close(pgpool_conn *c)
{
    pgpool *p = c->pool;
    if (c->io_fd >= 0)
        loop_io_del(p->lp, &c->io);
    loop_timer_stop(p->lp, &c->timer);
    if (c->result)
        PQclear(c->result);
    if (c->state == CS_CONNECTING)
        p->connecting--;
    if (p->probing == c)
        p->probing = NULL;
    if (c->state == CS_ACQUIRED || c->state == CS_SHARED)
        atomic_fetch_sub(&p->nacquired, 1);
    if (c->state == CS_SHARED)
        atomic_fetch_sub(&p->nshared, 1);
    if (c->state == CS_IDLE) {
        pgpool_conn **pp = &p->idle;
        while (*pp && *pp != c)
            pp = &(*pp)->idle_next;
        if (*pp)
            *pp = c->idle_next;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        p->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    atomic_fetch_sub(&p->nconns, 1);
    PQfinish(c->pg);
    for (unsigned i = 0; i < c->nstmts; i++)
        free(c->stmts[i].sql);
    free_pending(c);
    if (c->pipe) {
        /* slots still here were withdrawn by pgpool_destroy: no callbacks */
        for (unsigned i = 0; i < p->depth; i++)
            if (c->pipe[i].result)
                PQclear(c->pipe[i].result);
        free(c->pipe);
    }
    free(c);
}

static void waiter_unlink(pgpool *p, pgpool_waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        p->wait_head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        p->wait_tail = w->prev;
    w->prev = w->next = NULL;
    w->queued = 0;
    loop_timer_stop(p->lp, &w->timer);
    atomic_fetch_sub(&p->nwaiting, 1);
}

/* Fails every queued acquire with err (the server is unreachable). */
static void fail_waiters(pgpool *p, const pg_error *err)
{
    while (p->wait_head) {
        pgpool_waiter *w = p->wait_head;
        waiter_unlink(p, w);
        w->cb(w, NULL, err);
    }
}

static void start_connect(pgpool *p, int probe);

/* Non-zero while p should not try to connect: its last attempt failed
 * recently and no pool of the process has connected since. */
static int backing_off(pgpool *p)
{
    if (loop_clock_ms() >= p->backoff_until)
        return 0;
    if (atomic_load(&connect_epoch) != p->backoff_epoch) {
        p->backoff_until = 0; /* the server is back: another worker reached it */
        return 0;
    }
    return 1;
}

/* Opens connections for queued acquires, up to the maximum. */
static void grow_for_waiters(pgpool *p)
{
    while (p->connecting < atomic_load(&p->nwaiting) && atomic_load(&p->nconns) < p->cfg.max_size &&
           !backing_off(p))
        start_connect(p, 0);
}

static void share_begin(pgpool_conn *c);
static void refill(pgpool_conn *c);

/* c is free: hand it to the first waiter or park it. */
static void conn_available(pgpool_conn *c)
{
    pgpool *p = c->pool;
    if (p->wait_head && p->wait_head->is_call) {
        /* statements wait: c carries them (as many as may share it) */
        share_begin(c);
        refill(c);
        if (c->npipe == 0) {
            conn_close(c); /* the sends failed: the connection is broken */
            grow_for_waiters(p);
        }
        return;
    }
    if (p->wait_head) {
        pgpool_waiter *w = p->wait_head;
        waiter_unlink(p, w);
        c->state = CS_ACQUIRED;
        atomic_fetch_add(&p->nacquired, 1);
        w->cb(w, c, NULL);
        return;
    }
    c->state = CS_IDLE;
    c->idle_next = p->idle;
    p->idle = c;
    conn_watch(c, WATCH_IN);
}

static void connect_failed(pgpool_conn *c, const char *why)
{
    pgpool *p = c->pool;
    pg_error err;
    atomic_fetch_add(&p->connect_failures, 1);
    atomic_store(&p->server_up, 0);
    p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (p->backoff_ms > BACKOFF_MAX_MS)
        p->backoff_ms = BACKOFF_MAX_MS;
    p->backoff_until = loop_clock_ms() + p->backoff_ms;
    p->backoff_epoch = atomic_load(&connect_epoch);
    set_err(&err, PGE_CONNECTION, "08006", why);
    if (strcmp(p->last_error, err.message) != 0) {
        log_msg(LOG_WARN, NULL, "database connection failed (retrying with backoff): %s",
                err.message);
        snprintf(p->last_error, sizeof p->last_error, "%s", err.message);
    }
    conn_close(c);
    /* nothing else can serve the queue soon: answer it (503) from the loop */
    if (p->connecting == 0 && p->idle == NULL && p->wait_head) {
        p->fail_err = err;
        loop_timer_start(p->lp, &p->fail_timer, 0);
    }
}

static void on_fail_timer(loop *lp, loop_timer *t)
{
    pgpool *p = t->data;
    (void)lp;
    if (p->connecting == 0 && p->idle == NULL)
        fail_waiters(p, &p->fail_err);
}

#define KEEPER_MS 1000

static void probe_done(void *arg, PGresult *res, const pg_error *err)
{
    pgpool_conn *c = arg;
    if (res)
        PQclear(res);
    c->pool->probing = NULL;
    c->probe = 0;
    if (err || PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
        conn_close(c);
        return;
    }
    conn_available(c);
}

/*
 * Sends one health probe: an empty query (the server parses nothing and
 * answers EmptyQueryResponse; pgJDBC's isValid does the same) on an idle
 * connection, or, with none idle and room in the pool, a new connection,
 * whose handshake is the round trip. A saturated pool cannot probe; its
 * statements' own deadlines speak for it.
 */
static void probe(pgpool *p)
{
    pg_error err;
    if (!p->idle) {
        if (p->connecting == 0 && atomic_load(&p->nconns) < p->cfg.max_size && !backing_off(p))
            start_connect(p, 1);
        return;
    }
    pgpool_conn *c = p->idle;
    p->idle = c->idle_next;
    c->state = CS_PROBING;
    c->probe = 1;
    c->probe_late = 0;
    p->probing = c;
    atomic_fetch_add(&p->health_probes, 1);
    if (pgpool_query(c, "", -1, NULL, NULL, p->cfg.health_timeout_ms, probe_done, c, &err) < 0)
        conn_close(c);
}

static void on_keeper(loop *lp, loop_timer *t)
{
    pgpool *p = t->data;
    uint64_t now = loop_clock_ms();
    unsigned interval = p->cfg.health_interval_ms;
    unsigned next = interval < KEEPER_MS ? interval : KEEPER_MS;
    if (atomic_load(&p->nconns) == 0) {
        if (!backing_off(p))
            start_connect(p, 1);
    } else if (!p->probing && now - p->last_answer_ms >= interval) {
        probe(p);
    }
    if (!p->probing && p->idle) {
        /* wake exactly when the next probe falls due */
        uint64_t due = p->last_answer_ms + interval;
        if (due > now && due - now < next)
            next = (unsigned)(due - now);
    }
    loop_timer_start(lp, t, next);
}

/* Server notices (e.g. "relation already exists, skipping") are not errors. */
static void drop_notice(void *arg, const char *message)
{
    (void)arg;
    log_msg(LOG_DEBUG, NULL, "database notice: %s", message);
}

static void connect_step(pgpool_conn *c)
{
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING: conn_watch(c, EPOLLIN); break;
    case PGRES_POLLING_WRITING: conn_watch(c, EPOLLOUT); break;
    case PGRES_POLLING_OK: {
        pgpool *p = c->pool;
        loop_timer_stop(p->lp, &c->timer);
        p->connecting--;
        p->backoff_ms = 0;
        p->backoff_until = 0;
        atomic_fetch_add(&connect_epoch, 1);
        if (p->last_error[0]) {
            log_msg(LOG_INFO, NULL, "database connection restored");
            p->last_error[0] = '\0';
        }
        if (c->probe) {
            c->probe = 0;
            p->probing = NULL;
        }
        pool_answered(p);
        PQsetNoticeProcessor(c->pg, drop_notice, NULL);
        if (PQsetnonblocking(c->pg, 1) != 0) {
            connect_failed(c, "cannot make the connection non-blocking");
            return;
        }
        conn_available(c);
        break;
    }
    default: connect_failed(c, PQerrorMessage(c->pg)); break;
    }
}

static void on_conn_timer(loop *lp, loop_timer *t);

/* Opens a connection; probe: it is a health probe, so the pool is marked
 * down if the handshake takes longer than the health timeout. */
static void start_connect(pgpool *p, int probe)
{
    static const char *const keys[] = {"dbname",          "application_name", "client_encoding",
                                       "connect_timeout", "options",          NULL};
    const char *vals[] = {p->conninfo, "glasgow", "UTF8", p->connect_timeout, p->options, NULL};
    pgpool_conn *c = xcalloc(1, sizeof *c);
    c->pool = p;
    c->io_fd = -1;
    c->state = CS_CONNECTING;
    loop_timer_init(&c->timer, on_conn_timer, c);
    c->next = p->conns;
    if (p->conns)
        p->conns->prev = c;
    p->conns = c;
    atomic_fetch_add(&p->nconns, 1);
    p->connecting++;
    if (probe && !p->probing) {
        c->probe = 1;
        p->probing = c;
        atomic_fetch_add(&p->health_probes, 1);
    }
    c->pg = PQconnectStartParams(keys, vals, 1);
    if (!c->pg)
        die("out of memory starting a database connection");
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        connect_failed(c, PQerrorMessage(c->pg));
        return;
    }
    unsigned bound = p->cfg.connect_timeout_ms;
    if (c->probe && p->cfg.health_timeout_ms < bound)
        bound = p->cfg.health_timeout_ms;
    loop_timer_start(p->lp, &c->timer, bound);
    conn_watch(c, EPOLLOUT);
}

/* ---- queries ------------------------------------------------------------------------- */

/* Classifies a failed result into *e (unless e already holds an error). */
static void classify_error(pgpool_conn *c, const PGresult *res, pg_error *e)
{
    if (e->kind != PGE_NONE)
        return;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg)
        msg = PQerrorMessage(c->pg);
    int kind = PGE_SQL;
    /* 08P01 (protocol violation) is how the server refuses a statement given
     * the wrong number of parameters: a bug in the caller, on a healthy
     * connection; the rest of class 08 means the connection is gone */
    int conn_class = state && !strncmp(state, "08", 2) && strcmp(state, "08P01") != 0;
    if (!state || PQstatus(c->pg) != CONNECTION_OK || conn_class || !strcmp(state, "57P01") ||
        !strcmp(state, "57P02") || !strcmp(state, "57P03")) {
        kind = PGE_CONNECTION;
        c->discard = 1;
        atomic_store(&c->pool->server_up, PQstatus(c->pg) == CONNECTION_OK);
    } else if (!strcmp(state, "57014")) {
        kind = PGE_TIMEOUT; /* statement_timeout or a cancel */
    } else if (!strcmp(state, "0A000") || !strcmp(state, "26000")) {
        c->discard = 1; /* a cached plan went stale (schema change): start afresh */
    }
    set_err(e, kind, state ? state : "08006", msg);
}

/* Classifies a failed result into c->qerr. */
static void record_error(pgpool_conn *c, const PGresult *res)
{
    classify_error(c, res, &c->qerr);
}

static int send_prepared(pgpool_conn *c, const stmt *st, int n, const char *const *values,
                         const int *lengths)
{
    return PQsendQueryPrepared(c->pg, st->name, n, values, lengths, NULL, 0);
}

static void query_done(pgpool_conn *c);

/* The Prepare finished: on success send the execute and keep waiting. */
static int finish_prepare(pgpool_conn *c)
{
    stmt *st = c->preparing;
    if (c->qerr.kind != PGE_NONE) {
        free_pending(c);
        return 0; /* the statement's own error (syntax, types): report it */
    }
    if (c->result) {
        PQclear(c->result);
        c->result = NULL;
    }
    st->prepared = ST_PREPARED;
    int ok = send_prepared(c, st, c->pend_n, (const char *const *)c->pend_values, c->pend_lengths);
    free_pending(c);
    if (!ok || PQflush(c->pg) < 0) {
        set_err(&c->qerr, PGE_CONNECTION, "08006", PQerrorMessage(c->pg));
        c->discard = 1;
        return 0;
    }
    return 1;
}

static void query_done(pgpool_conn *c)
{
    if (c->preparing && finish_prepare(c))
        return;
    pgpool_query_cb cb = c->cb;
    void *arg = c->arg;
    PGresult *res = c->result;
    pg_error err = c->qerr;
    double secs = (double)(loop_clock_us() - c->query_start_us) / 1e6;
    c->querying = 0;
    c->cb = NULL;
    c->result = NULL;
    loop_timer_stop(c->pool->lp, &c->timer);
    if (c->io_fd >= 0)
        conn_watch(c, WATCH_IN);
    if (c->heard && err.kind != PGE_CONNECTION)
        pool_answered(c->pool);
    if (c->state != CS_PROBING)
        pgpool_observe(err.kind == PGE_NONE ? "" : err.sqlstate, secs);
    if (err.kind != PGE_NONE) {
        if (res)
            PQclear(res);
        res = NULL;
    }
    if (cb)
        cb(arg, res, err.kind != PGE_NONE ? &err : NULL);
    else if (res)
        PQclear(res);
}

/* Reads what has arrived; completes the query when libpq has all of it. */
static void query_progress(pgpool_conn *c, uint32_t events)
{
    if (events & EPOLLOUT) {
        int f = PQflush(c->pg);
        if (f < 0) {
            record_error(c, NULL);
            query_done(c);
            return;
        }
        conn_watch(c, f == 0 ? WATCH_IN : WATCH_IN | EPOLLOUT);
    }
    if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)))
        return;
    if (!PQconsumeInput(c->pg)) {
        record_error(c, NULL);
        query_done(c);
        return;
    }
    while (!PQisBusy(c->pg)) {
        PGresult *res = PQgetResult(c->pg);
        if (!res) {
            query_done(c);
            return;
        }
        c->heard = 1;
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR) {
            record_error(c, res);
            PQclear(res);
        } else {
            if (c->result)
                PQclear(c->result);
            c->result = res;
        }
        if (PQstatus(c->pg) != CONNECTION_OK) {
            record_error(c, NULL);
            query_done(c);
            return;
        }
    }
}

static void reset_done(void *arg, PGresult *res, const pg_error *err)
{
    pgpool_conn *c = arg;
    if (res)
        PQclear(res);
    if (err || PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
        conn_close(c);
        return;
    }
    conn_available(c);
}

static void pipe_progress(pgpool_conn *c, uint32_t events);
static void pipe_deadline(pgpool_conn *c);

static void on_conn_timer(loop *lp, loop_timer *t)
{
    pgpool_conn *c = t->data;
    pgpool *p = c->pool;
    if (c->state == CS_SHARED) {
        pipe_deadline(c);
        return;
    }
    if (c->state == CS_CONNECTING) {
        if (c->probe && !c->probe_late && p->cfg.health_timeout_ms < p->cfg.connect_timeout_ms) {
            /* not ready, but the handshake may still finish within its own bound */
            c->probe_late = 1;
            pool_silent(p, "a connection attempt");
            loop_timer_start(lp, t, p->cfg.connect_timeout_ms - p->cfg.health_timeout_ms);
            return;
        }
        connect_failed(c, "timed out connecting to the database");
        return;
    }
    if (c->state == CS_PROBING && c->querying) {
        if (!c->probe_late) {
            c->probe_late = 1;
            pool_silent(p, "a health check");
            loop_timer_start(lp, t, PROBE_GIVE_UP_MS);
            return;
        }
        c->querying = 0;
        conn_close(c);
        return;
    }
    if (c->querying) {
        /* the statement outlived its deadline: answer now, drop the connection;
         * the server, which should have cancelled it first, is not answering */
        pool_silent(p, "a statement");
        c->discard = 1;
        if (c->qerr.kind == PGE_NONE)
            set_err(&c->qerr, PGE_TIMEOUT, "57014", "statement deadline exceeded");
        if (c->state == CS_RESETTING) {
            c->querying = 0;
            conn_close(c);
            return;
        }
        query_done(c);
    }
}

static void conn_io(loop *lp, loop_io *io, uint32_t events)
{
    pgpool_conn *c = io->data;
    (void)lp;
    if (c->state == CS_CONNECTING) {
        connect_step(c);
        return;
    }
    if (c->state == CS_SHARED) {
        pipe_progress(c, events);
        return;
    }
    if (c->querying) {
        query_progress(c, events);
        return;
    }
    if (c->state == CS_ACQUIRED) {
        /* lent to a request between statements: read what the server sent
         * (a notice, or its goodbye) so the level-triggered watch goes quiet */
        if (!PQconsumeInput(c->pg) || PQstatus(c->pg) != CONNECTION_OK) {
            c->discard = 1;
            loop_io_del(c->pool->lp, &c->io); /* a dead socket would report forever */
            c->io_fd = -1;
        }
        return;
    }
    if (c->state == CS_IDLE) {
        /* the server spoke to (or closed) an idle connection */
        if (!PQconsumeInput(c->pg) || PQstatus(c->pg) != CONNECTION_OK) {
            log_msg(LOG_INFO, NULL, "database closed an idle connection; dropping it");
            conn_close(c);
            return;
        }
        PGnotify *n;
        while ((n = PQnotifies(c->pg)) != NULL)
            PQfreemem(n);
    }
}

/* ---- public API -------------------------------------------------------------------- */

pgpool *pgpool_create(loop *lp, const pgpool_config *cfg)
{
    pgpool *p = xcalloc(1, sizeof *p);
    p->lp = lp;
    p->cfg = *cfg;
    p->conninfo = xstrdup(cfg->conninfo);
    p->cfg.conninfo = p->conninfo;
    if (p->cfg.max_size == 0)
        p->cfg.max_size = 1;
    if (p->cfg.connect_timeout_ms == 0)
        p->cfg.connect_timeout_ms = 5000;
    snprintf(p->connect_timeout, sizeof p->connect_timeout, "%u",
             (p->cfg.connect_timeout_ms + 999) / 1000);
    p->depth = cfg->pipeline_depth ? cfg->pipeline_depth : 1;
    if (p->depth > PGPOOL_PIPELINE_MAX)
        p->depth = PGPOOL_PIPELINE_MAX;
    if (!p->cfg.pipeline_fast_us)
        p->cfg.pipeline_fast_us = PIPE_FAST_US;
    if (!p->cfg.pipeline_stall_ms)
        p->cfg.pipeline_stall_ms = PIPE_STALL_MS;
    snprintf(p->options, sizeof p->options,
             "-c statement_timeout=%u -c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=iso_8601",
             cfg->statement_timeout_ms);
    pthread_mutex_lock(&pools_mu);
    for (int i = 0; i < MAX_POOLS; i++)
        if (!pools[i]) {
            pools[i] = p;
            break;
        }
    pthread_mutex_unlock(&pools_mu);
    loop_timer_init(&p->fail_timer, on_fail_timer, p);
    if (p->cfg.health_interval_ms == 0)
        p->cfg.health_interval_ms = 1000;
    if (p->cfg.health_timeout_ms == 0)
        p->cfg.health_timeout_ms = 2000;
    p->last_answer_ms = loop_clock_ms();
    loop_timer_init(&p->keeper, on_keeper, p);
    loop_timer_start(lp, &p->keeper, 0); /* warm one connection up at once */
    return p;
}

void pgpool_destroy(pgpool *p)
{
    pg_error err;
    if (!p)
        return;
    pthread_mutex_lock(&pools_mu);
    for (int i = 0; i < MAX_POOLS; i++)
        if (pools[i] == p)
            pools[i] = NULL;
    pthread_mutex_unlock(&pools_mu);
    set_err(&err, PGE_CONNECTION, "08006", "the pool is shutting down");
    loop_timer_stop(p->lp, &p->fail_timer);
    loop_timer_stop(p->lp, &p->keeper);
    fail_waiters(p, &err);
    while (p->conns) {
        p->conns->cb = NULL;
        conn_close(p->conns);
    }
    free(p->conninfo);
    free(p);
}

static void on_wait_timeout(loop *lp, loop_timer *t)
{
    pgpool_waiter *w = t->data;
    pgpool *p = w->data;
    pg_error err;
    (void)lp;
    waiter_unlink(p, w);
    atomic_fetch_add(&p->wait_timeouts, 1);
    set_err(&err, PGE_POOL_TIMEOUT, "", "no database connection became free in time");
    w->cb(w, NULL, &err);
}

pgpool_conn *pgpool_acquire(pgpool *p, pgpool_waiter *w, pg_error *err)
{
    err->kind = PGE_NONE;
    while (p->idle) {
        pgpool_conn *c = p->idle;
        p->idle = c->idle_next;
        if (PQstatus(c->pg) != CONNECTION_OK) {
            c->state = CS_ACQUIRED; /* not on the idle stack any more */
            atomic_fetch_add(&p->nacquired, 1);
            conn_close(c);
            continue;
        }
        c->state = CS_ACQUIRED;
        atomic_fetch_add(&p->nacquired, 1);
        return c;
    }
    if (p->connecting == 0 && atomic_load(&p->nconns) == atomic_load(&p->nacquired) &&
        backing_off(p)) {
        set_err(err, PGE_CONNECTION, "08006",
                p->last_error[0] ? p->last_error : "the database is unreachable");
        return NULL;
    }
    if (atomic_load(&p->nwaiting) >= p->cfg.max_waiters) {
        set_err(err, PGE_POOL_FULL, "", "too many requests are waiting for a database connection");
        return NULL;
    }
    /* w->cb is set by the caller; w->data carries the pool for the timer */
    w->is_call = 0;
    w->queued = 1;
    w->next = NULL;
    w->prev = p->wait_tail;
    if (p->wait_tail)
        p->wait_tail->next = w;
    else
        p->wait_head = w;
    p->wait_tail = w;
    atomic_fetch_add(&p->nwaiting, 1);
    loop_timer_init(&w->timer, on_wait_timeout, w);
    w->data = p;
    loop_timer_start(p->lp, &w->timer, p->cfg.wait_timeout_ms);
    grow_for_waiters(p);
    return NULL;
}

void pgpool_cancel_wait(pgpool *p, pgpool_waiter *w)
{
    if (w->queued)
        waiter_unlink(p, w);
}

/* Finds sql in c's statement cache, adding it while there is room. */
static stmt *stmt_find(pgpool_conn *c, const char *sql)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)sql; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    for (unsigned i = 0; i < c->nstmts; i++)
        if (c->stmts[i].hash == h && !strcmp(c->stmts[i].sql, sql))
            return &c->stmts[i];
    if (c->nstmts == STMT_CACHE)
        return NULL;
    stmt *st = &c->stmts[c->nstmts];
    st->hash = h;
    st->sql = xstrdup(sql);
    st->uses = 0;
    st->prepared = 0;
    snprintf(st->name, sizeof st->name, "glasgow_%u", c->nstmts);
    c->nstmts++;
    return st;
}

int pgpool_query(pgpool_conn *c, const char *sql, int nparams, const char *const *values,
                 const int *lengths, unsigned deadline_ms, pgpool_query_cb cb, void *arg,
                 pg_error *err)
{
    for (int i = 0; i < nparams; i++)
        if (values[i] && memchr(values[i], '\0', (size_t)lengths[i])) {
            set_err(err, PGE_INVALID, "22021", "a text value contains a NUL byte");
            return -1;
        }
    if (c->pipeline_on) {
        /* it last carried pipelined statements; all were answered */
        if (!PQexitPipelineMode(c->pg)) {
            set_err(err, PGE_CONNECTION, "08006", PQerrorMessage(c->pg));
            c->discard = 1;
            return -1;
        }
        c->pipeline_on = 0;
    }
    int sent;
    stmt *st = nparams < 0 ? NULL : stmt_find(c, sql);
    if (nparams < 0) {
        /* the simple protocol, which runs a script of several statements */
        sent = PQsendQuery(c->pg, sql);
    } else if (st && st->prepared == ST_PREPARED) {
        sent = send_prepared(c, st, nparams, values, lengths);
    } else if (st && st->uses > 0 && st->prepared == ST_UNPREPARED) {
        /* second run: prepare it now; the execute follows (finish_prepare) */
        c->pend_n = nparams;
        c->pend_values = xcalloc((size_t)nparams + 1, sizeof *c->pend_values);
        c->pend_lengths = xcalloc((size_t)nparams + 1, sizeof *c->pend_lengths);
        for (int i = 0; i < nparams; i++) {
            c->pend_values[i] = values[i] ? xstrndup(values[i], (size_t)lengths[i]) : NULL;
            c->pend_lengths[i] = lengths[i];
        }
        c->preparing = st;
        sent = PQsendPrepare(c->pg, st->name, sql, nparams, NULL);
        if (!sent)
            free_pending(c);
    } else {
        if (st && st->prepared == ST_UNPREPARED)
            st->uses++;
        sent = PQsendQueryParams(c->pg, sql, nparams, NULL, values, lengths, NULL, 0);
    }
    if (!sent) {
        set_err(err, PGE_CONNECTION, "08006", PQerrorMessage(c->pg));
        c->discard = 1;
        return -1;
    }
    memset(&c->qerr, 0, sizeof c->qerr);
    c->heard = 0;
    c->querying = 1;
    c->cb = cb;
    c->arg = arg;
    c->query_start_us = loop_clock_us();
    if (deadline_ms)
        loop_timer_start(c->pool->lp, &c->timer, deadline_ms);
    int f = PQflush(c->pg);
    if (f < 0) {
        set_err(err, PGE_CONNECTION, "08006", PQerrorMessage(c->pg));
        c->discard = 1;
        c->querying = 0;
        c->cb = NULL;
        loop_timer_stop(c->pool->lp, &c->timer);
        return -1;
    }
    conn_watch(c, f == 0 ? WATCH_IN : WATCH_IN | EPOLLOUT);
    return 0;
}

void pgpool_abandon(pgpool_conn *c)
{
    c->cb = NULL;
    c->discard = 1;
}

void pgpool_discard(pgpool_conn *c)
{
    c->discard = 1;
}

void pgpool_release(pgpool_conn *c)
{
    pgpool *p = c->pool;
    if (c->state != CS_ACQUIRED)
        return;
    if (c->discard || c->querying || PQstatus(c->pg) != CONNECTION_OK) {
        conn_close(c);
        grow_for_waiters(p);
        return;
    }
    atomic_fetch_sub(&p->nacquired, 1);
    switch (PQtransactionStatus(c->pg)) {
    case PQTRANS_IDLE: conn_available(c); return;
    case PQTRANS_INTRANS:
    case PQTRANS_INERROR: {
        pg_error err;
        c->state = CS_RESETTING;
        if (pgpool_query(c, "ROLLBACK", 0, NULL, NULL, 5000, reset_done, c, &err) < 0)
            conn_close(c);
        return;
    }
    default:
        c->state = CS_RESETTING;
        conn_close(c);
        grow_for_waiters(p);
        return;
    }
}

/* ---- pipelined statements (pgpool_submit) ------------------------------------------- */

/* Skips blanks, comments and opening parentheses. */
static const char *skip_lead(const char *s)
{
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '(')
            s++;
        if (s[0] == '-' && s[1] == '-') {
            while (*s && *s != '\n')
                s++;
        } else if (s[0] == '/' && s[1] == '*') {
            const char *e = strstr(s + 2, "*/");
            if (!e)
                return s + strlen(s);
            s = e + 2;
        } else {
            return s;
        }
    }
}

static int is_word_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_';
}

/* Non-zero when s starts with the keyword kw (lower case), as a whole word. */
static int keyword_at(const char *s, const char *kw)
{
    size_t n = strlen(kw);
    for (size_t i = 0; i < n; i++)
        if ((s[i] | 0x20) != kw[i])
            return 0;
    return !is_word_char(s[n]);
}

/* Non-zero when a read names a locking clause (FOR UPDATE, FOR SHARE,
 * FOR NO KEY UPDATE, FOR KEY SHARE) or INTO (SELECT INTO creates a table).
 * Words inside string literals count too: a false alarm only makes the
 * statement a write. */
static int read_writes(const char *s)
{
    const char *p = s;
    while (*p) {
        if (!is_word_char(*p) || (p > s && is_word_char(p[-1]))) {
            p++;
            continue;
        }
        if (keyword_at(p, "into"))
            return 1;
        if (keyword_at(p, "for")) {
            const char *q = skip_lead(p + 3);
            if (keyword_at(q, "update") || keyword_at(q, "share") || keyword_at(q, "no") ||
                keyword_at(q, "key"))
                return 1;
        }
        p++;
    }
    return 0;
}

int pgpool_share_class(const char *sql)
{
    const char *s = skip_lead(sql);
    if (keyword_at(s, "select") || keyword_at(s, "values") || keyword_at(s, "table"))
        return read_writes(s) ? PGPOOL_SHARE_TAIL : PGPOOL_SHARE_READ;
    if (keyword_at(s, "insert") || keyword_at(s, "update") || keyword_at(s, "delete") ||
        keyword_at(s, "merge") || keyword_at(s, "with"))
        return PGPOOL_SHARE_TAIL;
    return PGPOOL_SHARE_NO;
}

int pgpool_pipelining(const pgpool *p)
{
    return p->depth > 1;
}

/* Hands the completed statements of b to their callers. */
static void deliver(pgpool *p, batch *b)
{
    b->up = p->batches;
    p->batches = b;
    for (unsigned i = 0; i < b->n; i++) {
        pgpool_call *q = b->d[i].call;
        PGresult *res = b->d[i].res;
        if (!q) {
            if (res)
                PQclear(res);
            continue;
        }
        b->d[i].call = NULL;
        q->conn = NULL;
        q->pool = NULL;
        q->cb(q->arg, res, b->d[i].err.kind != PGE_NONE ? &b->d[i].err : NULL);
    }
    p->batches = b->up;
}

static void batch_add(batch *b, pgpool_call *q, PGresult *res, const pg_error *err)
{
    delivery *d = &b->d[b->n++];
    d->call = q;
    d->res = res;
    if (err)
        d->err = *err;
    else
        d->err.kind = PGE_NONE;
}

/* Sets c's timer for the earliest deadline among its slots. */
static void pipe_arm(pgpool_conn *c)
{
    uint64_t first = 0;
    for (unsigned i = 0; i < c->npipe; i++) {
        uint64_t dl = c->pipe[(c->phead + i) % c->pool->depth].deadline_ms;
        if (dl && (!first || dl < first))
            first = dl;
    }
    if (first == c->armed_ms)
        return;
    c->armed_ms = first;
    if (!first) {
        loop_timer_stop(c->pool->lp, &c->timer);
        return;
    }
    uint64_t now = loop_clock_ms();
    loop_timer_start(c->pool->lp, &c->timer, first > now ? first - now : 0);
}

/* c starts carrying pipelined statements. */
static void share_begin(pgpool_conn *c)
{
    pgpool *p = c->pool;
    if (!c->pipe)
        c->pipe = xcalloc(p->depth, sizeof *c->pipe);
    c->state = CS_SHARED;
    c->phead = c->npipe = c->nblock = 0;
    c->armed_ms = 0;
    atomic_fetch_add(&p->nacquired, 1);
    atomic_fetch_add(&p->nshared, 1);
}

/* Non-zero when another statement may be queued on c now. */
static int can_append(pgpool_conn *c)
{
    pgpool *p = c->pool;
    if (c->state != CS_SHARED || c->discard || c->npipe >= p->depth || c->nblock)
        return 0;
    if (c->npipe == 0)
        return 1;
    const pipe_slot *head = &c->pipe[c->phead];
    uint64_t since = head->sent_us > c->last_done_us ? head->sent_us : c->last_done_us;
    return loop_clock_us() - since <= (uint64_t)p->cfg.pipeline_stall_ms * 1000;
}

/* Sends q's statement on c (CS_SHARED) as one Sync segment. */
static int call_send(pgpool_conn *c, pgpool_call *q, const char *sql, int nparams,
                     const char *const *values, const int *lengths, pg_error *err)
{
    pgpool *p = c->pool;
    if (!c->pipeline_on) {
        if (!PQenterPipelineMode(c->pg)) {
            set_err(err, PGE_CONNECTION, "08006", PQerrorMessage(c->pg));
            c->discard = 1;
            return -1;
        }
        c->pipeline_on = 1;
    }
    stmt *st = stmt_find(c, sql);
    int preparing = 0, sent;
    if (st && st->prepared == ST_PREPARED) {
        sent = send_prepared(c, st, nparams, values, lengths);
    } else if (st && st->prepared == ST_UNPREPARED && st->uses > 0) {
        /* second run: Prepare and execute in one segment, one round trip */
        preparing = 1;
        st->prepared = ST_PREPARING;
        sent = PQsendPrepare(c->pg, st->name, sql, nparams, NULL) &&
               send_prepared(c, st, nparams, values, lengths);
    } else {
        /* first run, or its Prepare is still unanswered: unnamed */
        if (st && st->prepared == ST_UNPREPARED)
            st->uses++;
        sent = PQsendQueryParams(c->pg, sql, nparams, NULL, values, lengths, NULL, 0);
    }
    if (!sent || !PQpipelineSync(c->pg)) {
        set_err(err, PGE_CONNECTION, "08006", PQerrorMessage(c->pg));
        if (preparing)
            st->prepared = ST_UNPREPARED;
        c->discard = 1; /* what libpq queued of it has no Sync: never reuse */
        return -1;
    }
    pipe_slot *s = &c->pipe[(c->phead + c->npipe) % p->depth];
    memset(s, 0, sizeof *s);
    s->call = q;
    s->st = st;
    s->preparing = preparing;
    s->sent_us = loop_clock_us();
    s->deadline_ms = q->deadline_ms ? loop_clock_ms() + q->deadline_ms : 0;
    s->blocks = !(q->cls == PGPOOL_SHARE_READ && st && st->runs > 0 &&
                  st->ewma_us <= p->cfg.pipeline_fast_us);
    if (c->npipe > 0)
        atomic_fetch_add(&p->pipelined, 1);
    c->npipe++;
    c->nblock += (unsigned)s->blocks;
    q->conn = c;
    int f = PQflush(c->pg);
    if (f < 0) {
        /* the slot stays: the socket's error fails it from the loop */
        c->discard = 1;
        conn_watch(c, WATCH_IN | EPOLLOUT);
    } else {
        conn_watch(c, f == 0 ? WATCH_IN : WATCH_IN | EPOLLOUT);
    }
    pipe_arm(c);
    return 0;
}

static void free_copy(pgpool_call *q)
{
    free(q->copy);
    q->copy = NULL;
}

/* Unpacks a waiting call's copy and sends it on c. */
static int call_send_copy(pgpool_conn *c, pgpool_call *q, pg_error *err)
{
    const char *values[PGPOOL_MAX_PARAMS];
    int lengths[PGPOOL_MAX_PARAMS];
    const char *sql = q->copy;
    const char *at = sql + strlen(sql) + 1;
    for (int i = 0; i < q->nparams; i++) {
        int len;
        memcpy(&len, at, sizeof len);
        at += sizeof len;
        if (len < 0) {
            values[i] = NULL;
            lengths[i] = 0;
        } else {
            values[i] = at;
            lengths[i] = len;
            at += (size_t)len + 1;
        }
    }
    int rc = call_send(c, q, sql, q->nparams, values, lengths, err);
    free_copy(q);
    return rc;
}

/* Sends waiting statements on c while it can take them. */
static void refill(pgpool_conn *c)
{
    pgpool *p = c->pool;
    while (p->wait_head && p->wait_head->is_call && can_append(c)) {
        pgpool_call *q = (pgpool_call *)(void *)p->wait_head;
        pg_error err;
        waiter_unlink(p, &q->w);
        if (call_send_copy(c, q, &err) < 0) {
            q->pool = NULL;
            q->cb(q->arg, NULL, &err);
            return;
        }
    }
}

/* The last statement on c was answered: lend or park it, or close it. */
static void share_end(pgpool_conn *c)
{
    pgpool *p = c->pool;
    loop_timer_stop(p->lp, &c->timer);
    c->armed_ms = 0;
    if (c->discard || PQstatus(c->pg) != CONNECTION_OK ||
        PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
        conn_close(c);
        grow_for_waiters(p);
        return;
    }
    atomic_fetch_sub(&p->nacquired, 1);
    atomic_fetch_sub(&p->nshared, 1);
    c->state = CS_ACQUIRED; /* in passing, for conn_available */
    conn_available(c);
}

/* Moves the head slot, answered up to its Sync, into b. */
static void pipe_pop(pgpool_conn *c, batch *b)
{
    pgpool *p = c->pool;
    pipe_slot *s = &c->pipe[c->phead];
    uint64_t now = loop_clock_us();
    uint64_t since = s->sent_us > c->last_done_us ? s->sent_us : c->last_done_us;
    unsigned took = (unsigned)(now - since);
    c->last_done_us = now;
    if (s->st) {
        /* a plain mean over the first runs (one hiccup does not brand a
         * statement slow for long), then an average moving by 1/8 a run */
        stmt *st = s->st;
        if (st->runs < 8)
            st->ewma_us = (unsigned)(((uint64_t)st->ewma_us * st->runs + took) / (st->runs + 1));
        else
            st->ewma_us = st->ewma_us - st->ewma_us / 8 + took / 8;
        st->runs++;
    }
    if (s->err.kind != PGE_CONNECTION)
        pool_answered(p);
    pgpool_observe(s->err.kind == PGE_NONE ? "" : s->err.sqlstate,
                   (double)(now - s->sent_us) / 1e6);
    if (s->err.kind != PGE_NONE && s->result) {
        PQclear(s->result);
        s->result = NULL;
    }
    batch_add(b, s->call, s->result, s->err.kind != PGE_NONE ? &s->err : NULL);
    c->nblock -= (unsigned)s->blocks;
    memset(s, 0, sizeof *s);
    c->phead = (c->phead + 1) % p->depth;
    c->npipe--;
}

/* Fails every slot of c into b: the first due one (if any) with timeout,
 * the rest with e. */
static void pipe_fail(pgpool_conn *c, batch *b, const pg_error *e, int timed_out)
{
    pgpool *p = c->pool;
    uint64_t now = loop_clock_ms();
    while (c->npipe > 0) {
        pipe_slot *s = &c->pipe[c->phead];
        pg_error err = *e;
        if (timed_out && s->deadline_ms && s->deadline_ms <= now) {
            set_err(&err, PGE_TIMEOUT, "57014", "statement deadline exceeded");
            timed_out = 0;
        } else if (s->err.kind == PGE_CONNECTION || s->err.kind == PGE_TIMEOUT) {
            err = s->err; /* its own words, e.g. the server shutting down */
        }
        if (s->result)
            PQclear(s->result);
        if (s->preparing && s->st)
            s->st->prepared = ST_UNPREPARED;
        if (s->call)
            pgpool_observe(err.sqlstate, (double)(loop_clock_us() - s->sent_us) / 1e6);
        batch_add(b, s->call, NULL, &err);
        memset(s, 0, sizeof *s);
        c->phead = (c->phead + 1) % p->depth;
        c->npipe--;
    }
    c->nblock = 0;
}

/* Reads the results that have arrived. Returns -1 when the connection broke. */
static int pipe_read(pgpool_conn *c, batch *b)
{
    int nulls = 0;
    while (c->npipe > 0 && !PQisBusy(c->pg)) {
        PGresult *res = PQgetResult(c->pg);
        if (!res) {
            /* the end of one statement's results; twice: nothing is pending */
            if (++nulls > 1)
                return -1;
            continue;
        }
        nulls = 0;
        pipe_slot *s = &c->pipe[c->phead];
        switch (PQresultStatus(res)) {
        case PGRES_PIPELINE_SYNC:
            PQclear(res);
            pipe_pop(c, b);
            break;
        case PGRES_PIPELINE_ABORTED: /* the execute after a failed Prepare */
            PQclear(res);
            if (s->err.kind == PGE_NONE)
                set_err(&s->err, PGE_SQL, "XX000", "the statement was not run");
            break;
        case PGRES_FATAL_ERROR:
        case PGRES_BAD_RESPONSE:
        case PGRES_NONFATAL_ERROR:
            classify_error(c, res, &s->err);
            if (s->preparing) {
                s->preparing = 0;
                if (s->st)
                    s->st->prepared = ST_UNPREPARED;
            }
            PQclear(res);
            break;
        default:
            if (s->preparing) {
                s->preparing = 0; /* the Prepare's answer */
                if (s->st)
                    s->st->prepared = ST_PREPARED;
                PQclear(res);
                break;
            }
            if (s->result)
                PQclear(s->result);
            s->result = res;
            break;
        }
        if (PQstatus(c->pg) != CONNECTION_OK)
            return -1;
    }
    return 0;
}

/* Fails what c carries with a connection error, closes it and answers. */
static void pipe_break(pgpool_conn *c, batch *b, int timed_out)
{
    pgpool *p = c->pool;
    pg_error e;
    if (timed_out)
        set_err(&e, PGE_CONNECTION, "08006",
                "the connection was dropped: a statement ahead of this one outlived its deadline");
    else
        set_err(&e, PGE_CONNECTION, "08006", PQerrorMessage(c->pg));
    if (!e.message[0])
        set_err(&e, PGE_CONNECTION, "08006", "the database connection was lost");
    if (!timed_out && PQstatus(c->pg) != CONNECTION_OK)
        atomic_store(&p->server_up, 0);
    pipe_fail(c, b, &e, timed_out);
    conn_close(c);
    deliver(p, b);
    grow_for_waiters(p);
}

static void pipe_progress(pgpool_conn *c, uint32_t events)
{
    batch b;
    b.n = 0;
    if (events & EPOLLOUT) {
        int f = PQflush(c->pg);
        if (f < 0) {
            pipe_break(c, &b, 0);
            return;
        }
        conn_watch(c, f == 0 ? WATCH_IN : WATCH_IN | EPOLLOUT);
    }
    /* a flush that could not send everything may have read what the server
     * sent meanwhile into libpq's buffer: parse after EPOLLOUT too */
    if (((events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) && !PQconsumeInput(c->pg)) ||
        pipe_read(c, &b) < 0) {
        pipe_break(c, &b, 0);
        return;
    }
    if (b.n == 0)
        return;
    pipe_arm(c);
    /* c is consistent: the callbacks may queue more on it; nothing but this
     * function closes it (pgpool_submit closes only a connection it took idle) */
    deliver(c->pool, &b);
    if (c->npipe > 0)
        refill(c);
    if (c->npipe == 0)
        share_end(c);
}

static void pipe_deadline(pgpool_conn *c)
{
    uint64_t now = loop_clock_ms();
    int due = 0;
    for (unsigned i = 0; i < c->npipe; i++) {
        uint64_t dl = c->pipe[(c->phead + i) % c->pool->depth].deadline_ms;
        due |= dl && dl <= now;
    }
    c->armed_ms = 0;
    if (!due) {
        pipe_arm(c);
        return;
    }
    /* as for a lone statement: the server, which should have cancelled it
     * first, is not answering; answer now and drop the connection */
    pool_silent(c->pool, "a statement");
    batch b;
    b.n = 0;
    pipe_break(c, &b, 1);
}

static void call_waited(pgpool_waiter *w, pgpool_conn *c, const pg_error *err)
{
    pgpool_call *q = (pgpool_call *)(void *)w;
    (void)c; /* connections reach waiting calls through refill, never here */
    free_copy(q);
    q->pool = NULL;
    q->cb(q->arg, NULL, err);
}

/* Takes an idle connection that is still open, or returns NULL. */
static pgpool_conn *take_idle(pgpool *p)
{
    while (p->idle) {
        pgpool_conn *c = p->idle;
        p->idle = c->idle_next;
        if (PQstatus(c->pg) == CONNECTION_OK)
            return c;
        c->state = CS_ACQUIRED; /* not on the idle stack any more */
        atomic_fetch_add(&p->nacquired, 1);
        conn_close(c);
    }
    return NULL;
}

/* The busy connection to queue a statement on: the fullest that can take
 * one, so that as few backends as possible are busy. */
static pgpool_conn *pick_shared(pgpool *p)
{
    pgpool_conn *best = NULL;
    if (!atomic_load_explicit(&p->nshared, memory_order_relaxed))
        return NULL;
    for (pgpool_conn *c = p->conns; c; c = c->next)
        if (c->state == CS_SHARED && can_append(c) && (!best || c->npipe > best->npipe))
            best = c;
    return best;
}

int pgpool_submit(pgpool *p, pgpool_call *q, int cls, const char *sql, int nparams,
                  const char *const *values, const int *lengths, unsigned deadline_ms,
                  pgpool_query_cb cb, void *arg, pg_error *err)
{
    err->kind = PGE_NONE;
    if (nparams < 0 || nparams > PGPOOL_MAX_PARAMS) {
        set_err(err, PGE_INVALID, "", "too many parameters");
        return -1;
    }
    for (int i = 0; i < nparams; i++)
        if (values[i] && memchr(values[i], '\0', (size_t)lengths[i])) {
            set_err(err, PGE_INVALID, "22021", "a text value contains a NUL byte");
            return -1;
        }
    memset(q, 0, sizeof *q);
    q->cb = cb;
    q->arg = arg;
    q->pool = p;
    q->cls = cls;
    q->deadline_ms = deadline_ms;
    q->nparams = nparams;
    if (cls != PGPOOL_SHARE_READ && cls != PGPOOL_SHARE_TAIL) {
        set_err(err, PGE_INVALID, "", "this statement cannot share a connection");
        return -1;
    }
    if (!p->wait_head) { /* first come, first served: never overtake a waiter */
        pgpool_conn *c = pick_shared(p);
        int fresh = 0;
        if (!c && (c = take_idle(p)) != NULL) {
            share_begin(c);
            fresh = 1;
        }
        if (c) {
            if (call_send(c, q, sql, nparams, values, lengths, err) == 0)
                return 0;
            /* a busy one is closed by whoever reads it, once it drains */
            if (fresh) {
                conn_close(c);
                grow_for_waiters(p);
            }
            return -1;
        }
    }
    if (p->connecting == 0 && atomic_load(&p->nconns) == atomic_load(&p->nacquired) &&
        backing_off(p)) {
        set_err(err, PGE_CONNECTION, "08006",
                p->last_error[0] ? p->last_error : "the database is unreachable");
        return -1;
    }
    if (atomic_load(&p->nwaiting) >= p->cfg.max_waiters) {
        set_err(err, PGE_POOL_FULL, "", "too many requests are waiting for a database connection");
        return -1;
    }
    /* wait: keep a copy, "sql\0" then per parameter its length (-1: NULL)
     * and its bytes with a NUL */
    size_t need = strlen(sql) + 1;
    for (int i = 0; i < nparams; i++)
        need += sizeof(int) + (values[i] ? (size_t)lengths[i] + 1 : 0);
    char *at = q->copy = xcalloc(1, need);
    memcpy(at, sql, strlen(sql) + 1);
    at += strlen(sql) + 1;
    for (int i = 0; i < nparams; i++) {
        int len = values[i] ? lengths[i] : -1;
        memcpy(at, &len, sizeof len);
        at += sizeof len;
        if (values[i]) {
            memcpy(at, values[i], (size_t)len);
            at += (size_t)len + 1;
        }
    }
    q->w.cb = call_waited;
    q->w.is_call = 1;
    q->w.queued = 1;
    q->w.next = NULL;
    q->w.prev = p->wait_tail;
    if (p->wait_tail)
        p->wait_tail->next = &q->w;
    else
        p->wait_head = &q->w;
    p->wait_tail = &q->w;
    atomic_fetch_add(&p->nwaiting, 1);
    loop_timer_init(&q->w.timer, on_wait_timeout, &q->w);
    q->w.data = p;
    loop_timer_start(p->lp, &q->w.timer, p->cfg.wait_timeout_ms);
    grow_for_waiters(p);
    return 0;
}

void pgpool_call_cancel(pgpool_call *q)
{
    pgpool *p = q->pool;
    if (!p)
        return;
    if (q->w.queued) {
        waiter_unlink(p, &q->w);
        free_copy(q);
    }
    pgpool_conn *c = q->conn;
    if (c && c->pipe)
        for (unsigned i = 0; i < c->npipe; i++) {
            pipe_slot *s = &c->pipe[(c->phead + i) % p->depth];
            if (s->call == q)
                s->call = NULL;
        }
    for (batch *b = p->batches; b; b = b->up)
        for (unsigned i = 0; i < b->n; i++)
            if (b->d[i].call == q)
                b->d[i].call = NULL;
    q->conn = NULL;
    q->pool = NULL;
}

void pgpool_get_stats(pgpool *p, pgpool_stats *out)
{
    out->size = atomic_load(&p->nconns);
    out->in_use = atomic_load(&p->nacquired);
    out->waiting = atomic_load(&p->nwaiting);
    out->wait_timeouts = atomic_load(&p->wait_timeouts);
    out->connect_failures = atomic_load(&p->connect_failures);
    out->health_probes = atomic_load(&p->health_probes);
    out->health_timeouts = atomic_load(&p->health_timeouts);
    out->server_up = atomic_load(&p->server_up);
    out->pipelined = atomic_load(&p->pipelined);
    out->shared = atomic_load(&p->nshared);
}

int pgpool_all_up(void)
{
    int up = 1, any = 0;
    pthread_mutex_lock(&pools_mu);
    for (int i = 0; i < MAX_POOLS; i++)
        if (pools[i]) {
            any = 1;
            if (!atomic_load(&pools[i]->server_up))
                up = 0;
        }
    pthread_mutex_unlock(&pools_mu);
    return any && up;
}
