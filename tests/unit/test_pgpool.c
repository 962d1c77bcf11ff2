/* pgpool against a real PostgreSQL (GLASGOW_TEST_DATABASE_URL, which
 * tests/run-all sets for the unit suite too): the connection warmed up at
 * creation, statements with parameters (sent, then prepared), SQL errors
 * and NUL bytes, a transaction left open rolled back on release, the pool's
 * bounds (full queue at once, wait timeout later), the client-side deadline
 * and the server's statement_timeout, an unreachable server, and waiters
 * failed on destroy. Without a database only the pure parts run and the
 * rest is skipped, saying so. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"
#include "pgpool.h"
#include "tap.h"

static loop *lp;

/* Runs the loop until *flag is set or ms pass; returns *flag. */
static int run_until(const int *flag, unsigned ms)
{
    uint64_t until = loop_clock_ms() + ms;
    while (!*flag && loop_clock_ms() < until)
        loop_run_once(lp, 20);
    return *flag;
}

/* Runs the loop for ms whatever happens. */
static void run_for(unsigned ms)
{
    uint64_t until = loop_clock_ms() + ms;
    while (loop_clock_ms() < until)
        loop_run_once(lp, 10);
}

/* ---- acquire ----------------------------------------------------------------------- */

typedef struct acq {
    pgpool_waiter w; /* first: the callback gets it back */
    pgpool_conn *conn;
    int done, kind, queued;
    uint64_t t0, took_ms;
} acq;

static void on_acquire(pgpool_waiter *w, pgpool_conn *conn, const pg_error *err)
{
    acq *a = (acq *)w;
    a->conn = conn;
    a->kind = err ? err->kind : PGE_NONE;
    a->took_ms = loop_clock_ms() - a->t0;
    a->done = 1;
}

/* Starts an acquire: done at once (a connection or a refusal) or queued. */
static void acquire_start(pgpool *p, acq *a)
{
    pg_error err;
    memset(a, 0, sizeof *a);
    a->w.cb = on_acquire;
    a->t0 = loop_clock_ms();
    a->conn = pgpool_acquire(p, &a->w, &err);
    if (a->conn || err.kind != PGE_NONE) {
        a->kind = err.kind;
        a->done = 1;
    } else {
        a->queued = 1;
    }
}

static pgpool_conn *acquire(pgpool *p, acq *a)
{
    acquire_start(p, a);
    run_until(&a->done, 10000);
    return a->conn;
}

/* ---- query ------------------------------------------------------------------------- */

typedef struct qres {
    int done, kind, at_once;
    char sqlstate[6];
    char value[128];
    uint64_t t0, took_ms;
} qres;

static void on_query(void *arg, PGresult *res, const pg_error *err)
{
    qres *q = arg;
    q->took_ms = loop_clock_ms() - q->t0;
    if (err) {
        q->kind = err->kind;
        snprintf(q->sqlstate, sizeof q->sqlstate, "%s", err->sqlstate);
    } else {
        q->kind = PGE_NONE;
        if (PQntuples(res) > 0 && PQnfields(res) > 0)
            snprintf(q->value, sizeof q->value, "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    q->done = 1;
}

/* Runs sql with n text parameters on c and waits for its answer. */
static void query(pgpool_conn *c, const char *sql, int n, const char *const *vals,
                  unsigned deadline_ms, qres *q)
{
    int lens[8] = {0};
    pg_error err;
    memset(q, 0, sizeof *q);
    for (int i = 0; i < n && i < 8; i++)
        lens[i] = vals[i] ? (int)strlen(vals[i]) : 0;
    q->t0 = loop_clock_ms();
    if (pgpool_query(c, sql, n, vals, lens, deadline_ms, on_query, q, &err) < 0) {
        q->kind = err.kind;
        snprintf(q->sqlstate, sizeof q->sqlstate, "%s", err.sqlstate);
        q->at_once = 1;
        q->done = 1;
        return;
    }
    run_until(&q->done, 15000);
}

static pgpool_stats stats(pgpool *p)
{
    pgpool_stats st;
    pgpool_get_stats(p, &st);
    return st;
}

/* ---- pipelined statements ------------------------------------------------------------ */

typedef struct cres {
    pgpool_call call;
    int done, kind, calls;
    char sqlstate[6];
    char value[128];
    uint64_t t0, took_ms;
} cres;

static void on_call(void *arg, PGresult *res, const pg_error *err)
{
    cres *r = arg;
    r->calls++;
    r->took_ms = loop_clock_ms() - r->t0;
    if (err) {
        r->kind = err->kind;
        snprintf(r->sqlstate, sizeof r->sqlstate, "%s", err->sqlstate);
    } else {
        r->kind = PGE_NONE;
        if (PQntuples(res) > 0 && PQnfields(res) > 0)
            snprintf(r->value, sizeof r->value, "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    r->done = 1;
}

/* Submits sql with up to 4 text parameters; done at once if refused. */
static void submit(pgpool *p, cres *r, const char *sql, int n, const char *const *vals,
                   unsigned deadline_ms)
{
    int lens[4] = {0};
    pg_error err;
    memset(r, 0, sizeof *r);
    for (int i = 0; i < n && i < 4; i++)
        lens[i] = vals[i] ? (int)strlen(vals[i]) : 0;
    r->t0 = loop_clock_ms();
    if (pgpool_submit(p, &r->call, pgpool_share_class(sql), sql, n, vals, lens, deadline_ms,
                      on_call, r, &err) < 0) {
        r->kind = err.kind;
        snprintf(r->sqlstate, sizeof r->sqlstate, "%s", err.sqlstate);
        r->done = 1;
    }
}

/* Runs the loop until every one of rs[0..n) is done or ms pass. */
static int run_all(cres *rs, int n, unsigned ms)
{
    uint64_t until = loop_clock_ms() + ms;
    for (;;) {
        int all = 1;
        for (int i = 0; i < n; i++)
            all &= rs[i].done;
        if (all)
            return 1;
        if (loop_clock_ms() >= until)
            return 0;
        loop_run_once(lp, 20);
    }
}

/* Submits sql and waits for its answer. */
static void call_wait(pgpool *p, cres *r, const char *sql, int n, const char *const *vals)
{
    submit(p, r, sql, n, vals, 5000);
    run_all(r, 1, 10000);
}

static void test_share_class(void)
{
    static const struct {
        const char *sql;
        int cls;
    } cases[] = {
        {"SELECT 1", PGPOOL_SHARE_READ},
        {"  select id FROM users WHERE id = $1", PGPOOL_SHARE_READ},
        {"-- a comment\n/* and another */ (SELECT 1) UNION (SELECT 2)", PGPOOL_SHARE_READ},
        {"VALUES (1), (2)", PGPOOL_SHARE_READ},
        {"TABLE users", PGPOOL_SHARE_READ},
        {"SELECT format, fork FROM t", PGPOOL_SHARE_READ},
        {"SELECT * FROM users WHERE id = $1 FOR UPDATE", PGPOOL_SHARE_TAIL},
        {"SELECT * FROM t FOR NO KEY UPDATE", PGPOOL_SHARE_TAIL},
        {"select * from t for\n share skip locked", PGPOOL_SHARE_TAIL},
        {"SELECT 1 INTO new_table", PGPOOL_SHARE_TAIL},
        {"INSERT INTO t VALUES ($1)", PGPOOL_SHARE_TAIL},
        {"update t set a = 1", PGPOOL_SHARE_TAIL},
        {"DELETE FROM t", PGPOOL_SHARE_TAIL},
        {"WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", PGPOOL_SHARE_TAIL},
        {"BEGIN", PGPOOL_SHARE_NO},
        {"start transaction", PGPOOL_SHARE_NO},
        {"COMMIT", PGPOOL_SHARE_NO},
        {"SET search_path = x", PGPOOL_SHARE_NO},
        {"LISTEN x", PGPOOL_SHARE_NO},
        {"CREATE TABLE t (a int)", PGPOOL_SHARE_NO},
        {"CALL p()", PGPOOL_SHARE_NO},
        {"selectx 1", PGPOOL_SHARE_NO},
        {"", PGPOOL_SHARE_NO},
        {"/* unterminated", PGPOOL_SHARE_NO},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        is_int(pgpool_share_class(cases[i].sql), cases[i].cls, "share class of case %zu (%.12s)", i,
               strchr(cases[i].sql, '\n') ? "multi-line" : cases[i].sql);
}

/* Pipelining against PostgreSQL: statements of several callers on one
 * connection, each its own Sync. The pools count any statement up to a
 * second as fast, so that a loaded machine cannot stop the queueing these
 * cases need; the 20 ms bound on the one in front stays the default. */
#define SLOWEST_OK 1000000
static void test_pipeline(const char *url)
{
    /* one connection, four statements deep */
    pgpool_config cfg = {url, 1, 8, 2000, 0, 5000, 0, 0, 4, SLOWEST_OK, 0};
    pgpool *p = pgpool_create(lp, &cfg);
    static const char *const v1[] = {"1"}, *const v2[] = {"2"}, *const v3[] = {"3"};
    static const char *const v0[] = {"0"};
    cres r[4];
    const char *add = "SELECT $1::int + 100";

    /* a statement seen once (and found fast) may have others queued behind it */
    for (int i = 0; i < 3; i++) /* known fast on the connection */
        call_wait(p, &r[0], add, 1, v1);
    is_str(r[0].value, "101", "a submitted statement is answered");
    call_wait(p, &r[0], "SELECT pg_backend_pid()", 0, NULL);
    char pid[128];
    snprintf(pid, sizeof pid, "%s", r[0].value);
    pgpool_stats st = stats(p);
    uint64_t piped0 = st.pipelined;
    submit(p, &r[0], add, 1, v1, 5000);
    submit(p, &r[1], add, 1, v2, 5000);
    submit(p, &r[2], add, 1, v3, 5000);
    submit(p, &r[3], "SELECT pg_backend_pid()", 0, NULL, 5000);
    st = stats(p);
    ok(st.waiting == 0 && st.shared == 1, "four statements on one connection: none waits (%u)",
       st.waiting);
    ok(run_all(r, 4, 5000), "... all four are answered");
    ok(!strcmp(r[0].value, "101") && !strcmp(r[1].value, "102") && !strcmp(r[2].value, "103"),
       "... each with its own result, in order (%s %s %s)", r[0].value, r[1].value, r[2].value);
    is_str(r[3].value, pid, "... all on the same backend");
    st = stats(p);
    ok(st.pipelined - piped0 == 3, "three were pipelined behind the first (%llu)",
       (unsigned long long)(st.pipelined - piped0));
    ok(st.size == 1 && st.in_use == 0 && st.shared == 0,
       "the connection is idle again (size %u, in use %u, shared %u)", st.size, st.in_use,
       st.shared);

    /* prepared on the pipelined connection (the second run prepares) */
    call_wait(p, &r[0], "SELECT count(*) FROM pg_prepared_statements", 0, NULL);
    ok(atoi(r[0].value) >= 1, "a repeated statement is prepared on the connection (%s)",
       r[0].value);

    /* an error in one statement does not touch the ones around it */
    for (int i = 0; i < 3; i++) /* known fast on the connection */
        call_wait(p, &r[0], "SELECT 10 / $1::int", 1, v1);
    submit(p, &r[0], add, 1, v1, 5000);
    submit(p, &r[1], "SELECT 10 / $1::int", 1, v0, 5000);
    submit(p, &r[2], add, 1, v3, 5000);
    run_all(r, 3, 5000);
    ok(r[0].kind == PGE_NONE && !strcmp(r[0].value, "101"), "before a failing one: answered");
    ok(r[1].kind == PGE_SQL && !strcmp(r[1].sqlstate, "22012"),
       "the failing one: sql, 22012 (%s, %s)", pgpool_kind_name(r[1].kind), r[1].sqlstate);
    ok(r[2].kind == PGE_NONE && !strcmp(r[2].value, "103"),
       "the one queued behind it is answered (%s, %s)", pgpool_kind_name(r[2].kind), r[2].value);
    ok(stats(p).pipelined - piped0 >= 5, "... and it was queued behind (pipelined)");

    /* a failed Prepare (second run of a bad statement) is its own error, and
     * the statement is not taken for prepared afterwards */
    for (int i = 0; i < 3; i++) {
        call_wait(p, &r[i], "SELECT no_such_column FROM pg_class", 0, NULL);
    }
    ok(r[0].kind == PGE_SQL && r[1].kind == PGE_SQL && r[2].kind == PGE_SQL &&
           !strcmp(r[0].sqlstate, "42703") && !strcmp(r[1].sqlstate, "42703") &&
           !strcmp(r[2].sqlstate, "42703"),
       "a bad statement fails alike on each run, Prepare or not (%s %s %s)", r[0].sqlstate,
       r[1].sqlstate, r[2].sqlstate);
    call_wait(p, &r[0], "SELECT pg_backend_pid()", 0, NULL);
    is_str(r[0].value, pid, "... and the connection serves on");

    /* a caller that gives up while its statement is queued: the result is
     * read and dropped, the callback never runs, the connection serves on */
    submit(p, &r[0], add, 1, v1, 5000);
    submit(p, &r[1], add, 1, v2, 5000);
    submit(p, &r[2], add, 1, v3, 5000);
    pgpool_call_cancel(&r[1].call);
    run_all(r, 3, 1500);
    ok(r[0].done && r[2].done && !r[1].done && r[1].calls == 0,
       "a withdrawn statement: its callback never runs, the others are answered");
    ok(!strcmp(r[2].value, "103"), "... the one after it gets its own result (%s)", r[2].value);
    call_wait(p, &r[0], "SELECT pg_backend_pid()", 0, NULL);
    is_str(r[0].value, pid, "... and the same connection serves the next statement");

    /* more than the depth: the rest wait and are sent as room appears */
    cres m[6];
    for (int i = 0; i < 6; i++)
        submit(p, &m[i], add, 1, v2, 5000);
    ok(stats(p).waiting == 2, "six statements, depth four, one connection: two wait (%u)",
       stats(p).waiting);
    ok(run_all(m, 6, 5000), "... and all six are answered");
    int right = 0;
    for (int i = 0; i < 6; i++)
        right += m[i].kind == PGE_NONE && !strcmp(m[i].value, "102");
    is_int(right, 6, "... correctly");

    /* an acquire for a connection of its own waits for the pipeline to drain */
    submit(p, &r[0], add, 1, v1, 5000);
    submit(p, &r[1], add, 1, v2, 5000);
    acq a;
    acquire_start(p, &a);
    submit(p, &r[2], add, 1, v3, 5000);
    ok(a.queued && stats(p).waiting == 2,
       "an acquire waits while the connection carries statements; a statement after it too");
    run_until(&a.done, 5000);
    ok(a.conn && r[0].done && r[1].done && !r[2].done,
       "the acquire gets the drained connection, before the statement that came after it");
    if (a.conn) {
        qres q;
        query(a.conn, "SELECT txid_current_if_assigned() IS NULL", -1, NULL, 5000, &q);
        ok(q.kind == PGE_NONE, "the acquired connection runs a simple-protocol statement");
        query(a.conn, "SELECT pg_backend_pid()", 0, NULL, 5000, &q);
        is_str(q.value, pid, "... on the backend that carried the pipeline");
        pgpool_release(a.conn);
    }
    run_all(&r[2], 1, 5000);
    is_str(r[2].value, "103", "the statement that waited is answered after the release");

    /* the server's statement_timeout cancels one statement; the next is answered */
    call_wait(p, &r[0], "SELECT pg_sleep($1::float8)", 1, v0);
    call_wait(p, &r[0], "SET statement_timeout = 300", 0, NULL);
    ok(r[0].done && r[0].kind == PGE_INVALID, "session control is refused by submit: invalid");
    pgpool_destroy(p);

    pgpool_config tcfg = {url, 1, 8, 2000, 300, 5000, 0, 0, 4, SLOWEST_OK, 0};
    p = pgpool_create(lp, &tcfg);
    for (int i = 0; i < 3; i++) /* known fast on the connection */
        call_wait(p, &r[0], "SELECT pg_sleep($1::float8)", 1, v0);
    call_wait(p, &r[0], "SELECT pg_backend_pid()", 0, NULL);
    snprintf(pid, sizeof pid, "%s", r[0].value);
    static const char *const slow[] = {"2"};
    submit(p, &r[0], "SELECT pg_sleep($1::float8)", 1, slow, 5000);
    submit(p, &r[1], "SELECT pg_backend_pid()", 0, NULL, 5000);
    run_all(r, 2, 5000);
    ok(r[0].kind == PGE_TIMEOUT && !strcmp(r[0].sqlstate, "57014"),
       "statement_timeout cancels a statement that turned slow: timeout, 57014 (%s, %s)",
       pgpool_kind_name(r[0].kind), r[0].sqlstate);
    ok(r[1].kind == PGE_NONE && !strcmp(r[1].value, pid),
       "the statement queued behind it is answered, on the same connection (%s)", r[1].value);
    pgpool_destroy(p);

    /* the client-side deadline: the late statement times out, those behind
     * it fail with connection (the connection is dropped), the pool serves on */
    pgpool_config dcfg = {url, 2, 8, 2000, 0, 5000, 0, 0, 4, SLOWEST_OK, 0};
    p = pgpool_create(lp, &dcfg);
    for (int i = 0; i < 3; i++) /* known fast on the connection */
        call_wait(p, &r[0], "SELECT pg_sleep($1::float8)", 1, v0);
    submit(p, &r[0], "SELECT pg_sleep($1::float8)", 1, slow, 300);
    submit(p, &r[1], add, 1, v1, 5000);
    run_all(r, 2, 5000);
    ok(r[0].kind == PGE_TIMEOUT && r[0].took_ms < 1500,
       "past its 300 ms deadline: timeout (%s after %llu ms)", pgpool_kind_name(r[0].kind),
       (unsigned long long)r[0].took_ms);
    ok(r[1].kind == PGE_CONNECTION && r[1].took_ms < 1500,
       "the statement queued behind it: connection, at the same time (%s)",
       pgpool_kind_name(r[1].kind));
    call_wait(p, &r[0], add, 1, v2);
    is_str(r[0].value, "102", "the pool serves the next statement");

    /* head-of-line blocking is bounded: nothing is queued behind a statement
     * that has been running for more than a few milliseconds */
    call_wait(p, &r[0], "SELECT pg_sleep($1::float8)", 1, v0);
    static const char *const half[] = {"0.5"};
    submit(p, &r[0], "SELECT pg_sleep($1::float8)", 1, half, 5000);
    run_for(50);
    submit(p, &r[1], add, 1, v3, 5000);
    run_all(&r[1], 1, 5000);
    ok(r[1].done && r[1].kind == PGE_NONE && !r[0].done,
       "a statement sent while another has run for 50 ms does not wait behind it (%llu ms)",
       (unsigned long long)r[1].took_ms);
    run_all(r, 1, 5000);

    /* a lost connection fails every statement it carries with connection
     * (one connection, its statements run a few times: known fast there) */
    pgpool_destroy(p);
    pgpool_config lcfg = {url, 1, 8, 2000, 0, 5000, 0, 0, 4, SLOWEST_OK, 0};
    p = pgpool_create(lp, &lcfg);
    const char *nap = "SELECT pg_sleep($1::float8), 'nap'";
    for (int i = 0; i < 3; i++) {
        call_wait(p, &r[0], nap, 1, v0);
        call_wait(p, &r[0], add, 1, v1);
    }
    call_wait(p, &r[0], "SELECT pg_backend_pid()", 0, NULL);
    PGconn *admin = PQconnectdb(url);
    char kill_sql[96];
    snprintf(kill_sql, sizeof kill_sql, "SELECT pg_terminate_backend(%d)", atoi(r[0].value));
    submit(p, &r[0], nap, 1, half, 5000);
    submit(p, &r[1], add, 1, v1, 5000);
    submit(p, &r[2], add, 1, v2, 5000);
    ok(stats(p).shared == 1, "three statements on one connection (shared %u, size %u, waiting %u)",
       stats(p).shared, stats(p).size, stats(p).waiting);
    run_for(30);
    PGresult *kres = PQexec(admin, kill_sql);
    ok(PQresultStatus(kres) == PGRES_TUPLES_OK, "the backend is terminated from outside");
    PQclear(kres);
    PQfinish(admin);
    run_all(r, 3, 5000);
    ok(r[0].kind == PGE_CONNECTION && r[1].kind == PGE_CONNECTION && r[2].kind == PGE_CONNECTION,
       "a lost connection fails the running statement and the two queued: connection (%s %s "
       "%s)",
       pgpool_kind_name(r[0].kind), pgpool_kind_name(r[1].kind), pgpool_kind_name(r[2].kind));
    ok(r[0].calls == 1 && r[1].calls == 1 && r[2].calls == 1, "... each callback runs once");
    call_wait(p, &r[0], add, 1, v3);
    is_str(r[0].value, "103", "the pool reconnects and serves on");

    /* destroy fails queued statements */
    pgpool_destroy(p);
    pgpool_config one = {url, 1, 8, 2000, 0, 5000, 0, 0, 2, SLOWEST_OK, 0};
    p = pgpool_create(lp, &one);
    for (int i = 0; i < 3; i++)
        call_wait(p, &r[0], "SELECT pg_sleep($1::float8)", 1, v0);
    submit(p, &r[0], "SELECT pg_sleep($1::float8)", 1, half, 5000);
    submit(p, &r[1], add, 1, v1, 5000);
    submit(p, &r[2], add, 1, v2, 5000);
    ok(stats(p).waiting == 1, "depth two: the third statement waits");
    pgpool_destroy(p);
    ok(r[2].done && r[2].kind == PGE_CONNECTION,
       "destroying the pool fails the waiting statement: connection");
}

/* ---- pure parts -------------------------------------------------------------------- */

static void test_names_and_redaction(void)
{
    is_str(pgpool_kind_name(PGE_SQL), "sql", "kind name sql");
    is_str(pgpool_kind_name(PGE_CONNECTION), "connection", "kind name connection");
    is_str(pgpool_kind_name(PGE_TIMEOUT), "timeout", "kind name timeout");
    is_str(pgpool_kind_name(PGE_POOL_TIMEOUT), "pool_timeout", "kind name pool_timeout");
    is_str(pgpool_kind_name(PGE_POOL_FULL), "pool_full", "kind name pool_full");
    is_str(pgpool_kind_name(PGE_INVALID), "invalid", "kind name invalid");
    is_str(pgpool_kind_name(PGE_NONE), "none", "kind name none");

    char out[256];
    pgpool_redact("postgresql://app:s3cret@db.example:5432/api?sslmode=require", out, sizeof out);
    is_str(out, "postgresql://app:***@db.example:5432/api?sslmode=require",
           "a URL's password is replaced, the rest kept");
    pgpool_redact("postgresql://app@db.example/api", out, sizeof out);
    is_str(out, "postgresql://app@db.example/api", "a URL without a password is kept whole");
    pgpool_redact("host=db user=app password=s3cret dbname=api", out, sizeof out);
    ok(!strstr(out, "s3cret") && strstr(out, "password=***") && strstr(out, "host=db"),
       "a key=value password is replaced: %s", out);
    pgpool_redact("host=db dbname=api", out, sizeof out);
    is_str(out, "host=db dbname=api", "key=value without a password is kept whole");
}

/* ---- against PostgreSQL -------------------------------------------------------------- */

static void test_live(const char *url)
{
    pgpool_config cfg = {url, 2, 1, 300, 0, 5000, 0, 0, 1, 0, 0};
    pgpool *p = pgpool_create(lp, &cfg);
    ok(p != NULL, "a pool is created");

    /* warmed up at creation: one connection, without any acquire */
    uint64_t t0 = loop_clock_ms();
    pgpool_stats st = stats(p);
    while (!(st.size == 1 && st.server_up && st.in_use == 0) && loop_clock_ms() - t0 < 10000) {
        loop_run_once(lp, 20);
        st = stats(p);
    }
    ok(st.size == 1 && st.server_up,
       "the pool opens one connection at creation, before any acquire (size %u, up %d)", st.size,
       st.server_up);
    ok(pgpool_all_up(), "pgpool_all_up says the server is up");

    acq a1, a2, a3, a4;
    acquire_start(p, &a1);
    ok(a1.conn != NULL && !a1.queued, "with one idle, an acquire gets it at once");
    pgpool_conn *c1 = a1.conn;
    if (!c1) {
        pgpool_destroy(p);
        return;
    }
    is_int(stats(p).in_use, 1, "in use: 1");

    /* parameters; the second run prepares the statement, the third runs it prepared */
    static const char *const v41[] = {"41"};
    qres q;
    int right = 0;
    for (int i = 0; i < 3; i++) {
        query(c1, "SELECT $1::int + 1", 1, v41, 5000, &q);
        right += q.kind == PGE_NONE && !strcmp(q.value, "42");
    }
    is_int(right, 3, "a statement with a parameter answers 42, three runs in a row");
    query(c1, "SELECT count(*) FROM pg_prepared_statements", 0, NULL, 5000, &q);
    ok(q.kind == PGE_NONE && atoi(q.value) >= 1,
       "... and the repeated statement was prepared on the connection (%s)", q.value);
    static const char *const vnull[] = {NULL};
    query(c1, "SELECT $1::text IS NULL", 1, vnull, 5000, &q);
    is_str(q.value, "t", "a NULL value pointer is SQL NULL");

    /* errors */
    query(c1, "SELECT 1/0", 0, NULL, 5000, &q);
    ok(q.kind == PGE_SQL && !strcmp(q.sqlstate, "22012"),
       "a failing statement: kind sql, SQLSTATE 22012 (%s, %s)", pgpool_kind_name(q.kind),
       q.sqlstate);
    query(c1, "SELECT 7", 0, NULL, 5000, &q);
    is_str(q.value, "7", "the connection serves the next statement");
    static const char *const vnul[] = {"a\0b"};
    int lens[1] = {3};
    pg_error err;
    int rc = pgpool_query(c1, "SELECT $1::text", 1, vnul, lens, 5000, on_query, &q, &err);
    ok(rc < 0 && err.kind == PGE_INVALID, "a value with a NUL byte is refused at once: invalid");

    /* a transaction left open is rolled back on release */
    query(c1, "BEGIN", -1, NULL, 5000, &q);
    query(c1, "SELECT txid_current()", 0, NULL, 5000, &q);
    ok(q.kind == PGE_NONE, "a transaction with an id is open");
    pgpool_release(c1);
    run_for(200);
    c1 = acquire(p, &a1);
    ok(c1 != NULL, "acquired again");
    if (!c1) {
        pgpool_destroy(p);
        return;
    }
    query(c1, "SELECT txid_current_if_assigned() IS NULL", 0, NULL, 5000, &q);
    is_str(q.value, "t", "the next user of the pool is outside any transaction");

    /* bounds: two connections at most, one waiter at most */
    pgpool_conn *c2 = acquire(p, &a2);
    ok(c2 != NULL && c2 != c1, "a second connection is opened for a second acquire");
    acquire_start(p, &a3);
    ok(a3.queued, "a third acquire waits (the pool is at its size)");
    acquire_start(p, &a4);
    ok(a4.done && !a4.conn && a4.kind == PGE_POOL_FULL,
       "a fourth is refused at once: pool_full (%s)", pgpool_kind_name(a4.kind));
    is_int(stats(p).waiting, 1, "waiting: 1");
    run_until(&a3.done, 10000);
    ok(a3.done && !a3.conn && a3.kind == PGE_POOL_TIMEOUT && a3.took_ms >= 300,
       "the waiter gives up after the 300 ms wait timeout: pool_timeout (%s, %llu ms)",
       pgpool_kind_name(a3.kind), (unsigned long long)a3.took_ms);
    ok(stats(p).wait_timeouts >= 1, "... counted in wait_timeouts");

    /* a waiter is served by a release */
    acquire_start(p, &a3);
    ok(a3.queued, "another acquire waits");
    pgpool_release(c2);
    run_until(&a3.done, 5000);
    ok(a3.conn == c2, "the released connection goes to the waiter");
    c2 = a3.conn;

    /* idle connections are a stack: the most recently released one is lent
     * first, so a light load keeps to a few hot backends and the rest sleep */
    if (c1 && c2) {
        pgpool_release(c1);
        pgpool_release(c2);
        acq b1, b2;
        pgpool_conn *x = acquire(p, &b1);
        ok(x == c2, "with two idle, an acquire gets the one released last");
        pgpool_release(x);
        x = acquire(p, &b1);
        ok(x == c2, "... and again after it is released once more");
        pgpool_conn *y = acquire(p, &b2);
        ok(y == c1, "the one released earlier comes next");
        c1 = y;
        c2 = x;
    }

    /* the client-side deadline: answered at once, the connection dropped */
    query(c1, "SELECT pg_sleep(3)", 0, NULL, 300, &q);
    ok(q.kind == PGE_TIMEOUT && q.took_ms < 2500,
       "a statement past its 300 ms deadline: kind timeout (%s after %llu ms)",
       pgpool_kind_name(q.kind), (unsigned long long)q.took_ms);
    pgpool_release(c1);
    is_int(stats(p).size, 1, "the connection that outlived its deadline is closed on release");
    if (c2)
        pgpool_release(c2);

    /* destroy fails the waiters still queued */
    c1 = acquire(p, &a1);
    c2 = acquire(p, &a2);
    acquire_start(p, &a3);
    ok(c1 && c2 && a3.queued, "both connections held and one waiter queued");
    pgpool_destroy(p);
    ok(a3.done && a3.kind == PGE_CONNECTION, "destroying the pool fails the waiter: connection");

    /* the server's statement_timeout: kind timeout, the connection stays */
    pgpool_config tcfg = {url, 1, 1, 1000, 200, 5000, 0, 0, 1, 0, 0};
    p = pgpool_create(lp, &tcfg);
    c1 = acquire(p, &a1);
    ok(c1 != NULL, "a pool with a 200 ms statement_timeout");
    if (c1) {
        query(c1, "SELECT pg_sleep(3)", 0, NULL, 10000, &q);
        ok(q.kind == PGE_TIMEOUT && !strcmp(q.sqlstate, "57014"),
           "the server cancels a longer statement: kind timeout, 57014 (%s, %s)",
           pgpool_kind_name(q.kind), q.sqlstate);
        query(c1, "SELECT 8", 0, NULL, 5000, &q);
        is_str(q.value, "8", "... and the connection serves on");
        pgpool_release(c1);
    }
    pgpool_destroy(p);
}

static void test_unreachable(void)
{
    /* port 1 on loopback: refused at once */
    pgpool_config cfg = {
        "postgresql://glasgow@127.0.0.1:1/none", 2, 4, 5000, 0, 2000, 0, 0, 4, 0, 0};
    pgpool *p = pgpool_create(lp, &cfg);
    acq a, b;
    acquire_start(p, &a);
    run_until(&a.done, 10000);
    ok(a.done && !a.conn && a.kind == PGE_CONNECTION,
       "an unreachable server: the acquire fails with kind connection (%s, %llu ms)",
       pgpool_kind_name(a.kind), (unsigned long long)a.took_ms);
    pgpool_stats st = stats(p);
    ok(!st.server_up && st.connect_failures >= 1, "the pool is down, with %llu connect failures",
       (unsigned long long)st.connect_failures);
    acquire_start(p, &b);
    ok(b.done && !b.conn && b.kind == PGE_CONNECTION,
       "during the backoff the next acquire is refused at once");
    cres r;
    submit(p, &r, "SELECT 1", 0, NULL, 5000);
    ok(r.done && r.calls == 0 && r.kind == PGE_CONNECTION,
       "... and so is a submitted statement: connection, no callback (%s)",
       pgpool_kind_name(r.kind));
    pgpool_destroy(p);

    /* a statement submitted before the first connect fails waits, then fails */
    p = pgpool_create(lp, &cfg);
    submit(p, &r, "SELECT 1", 0, NULL, 5000);
    ok(!r.done && stats(p).waiting == 1, "a statement submitted while connecting waits");
    run_all(&r, 1, 10000);
    ok(r.done && r.calls == 1 && r.kind == PGE_CONNECTION,
       "... and fails with connection when the connect does (%s)", pgpool_kind_name(r.kind));
    pgpool_destroy(p);
}

int main(void)
{
    lp = loop_create();
    test_names_and_redaction();
    test_unreachable();
    const char *url = getenv("GLASGOW_TEST_DATABASE_URL");
    test_share_class();
    if (url && *url) {
        test_live(url);
        test_pipeline(url);
    } else {
        printf("# GLASGOW_TEST_DATABASE_URL is not set (tests/run-all sets it): the cases "
               "against PostgreSQL are skipped\n");
        ok(1, "# SKIP the cases against PostgreSQL need GLASGOW_TEST_DATABASE_URL");
    }
    loop_destroy(lp);
    return done_testing();
}
