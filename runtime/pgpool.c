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

/* CS_PROBING: an idle connection carrying a health probe (not lent, not idle). */
enum { CS_CONNECTING, CS_IDLE, CS_ACQUIRED, CS_RESETTING, CS_PROBING };

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

typedef struct stmt {
    uint64_t hash;
    char *sql;
    unsigned uses;
    int prepared;
    char name[16];
} stmt;

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
    unsigned long long timeouts = 0, failures = 0, probes = 0, silences = 0;
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
    if (c->state == CS_ACQUIRED || c->state == CS_RESETTING)
        atomic_fetch_sub(&p->nacquired, c->state == CS_ACQUIRED ? 1 : 0);
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

/* c is free: hand it to the first waiter or park it. */
static void conn_available(pgpool_conn *c)
{
    pgpool *p = c->pool;
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

/* Classifies a failed result into c->qerr. */
static void record_error(pgpool_conn *c, const PGresult *res)
{
    if (c->qerr.kind != PGE_NONE)
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
    set_err(&c->qerr, kind, state ? state : "08006", msg);
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
    st->prepared = 1;
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

static void on_conn_timer(loop *lp, loop_timer *t)
{
    pgpool_conn *c = t->data;
    pgpool *p = c->pool;
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
    int sent;
    stmt *st = nparams < 0 ? NULL : stmt_find(c, sql);
    if (nparams < 0) {
        /* the simple protocol, which runs a script of several statements */
        sent = PQsendQuery(c->pg, sql);
    } else if (st && st->prepared) {
        sent = send_prepared(c, st, nparams, values, lengths);
    } else if (st && st->uses > 0) {
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
        if (st)
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
