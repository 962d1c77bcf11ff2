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
    pgpool_config cfg = {url, 2, 1, 300, 0, 5000, 0, 0};
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
    pgpool_config tcfg = {url, 1, 1, 1000, 200, 5000, 0, 0};
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
    pgpool_config cfg = {"postgresql://glasgow@127.0.0.1:1/none", 2, 4, 5000, 0, 2000, 0, 0};
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
    pgpool_destroy(p);
}

int main(void)
{
    lp = loop_create();
    test_names_and_redaction();
    test_unreachable();
    const char *url = getenv("GLASGOW_TEST_DATABASE_URL");
    if (url && *url) {
        test_live(url);
    } else {
        printf("# GLASGOW_TEST_DATABASE_URL is not set (tests/run-all sets it): the cases "
               "against PostgreSQL are skipped\n");
        ok(1, "# SKIP the cases against PostgreSQL need GLASGOW_TEST_DATABASE_URL");
    }
    loop_destroy(lp);
    return done_testing();
}
