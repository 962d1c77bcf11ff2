/* Job pool: bounds overall and per key, cancelling a queued job, that a
 * started job runs to its completion, where work and completion run, keys
 * longer than JOBS_KEY_MAX, and that the pool is configured once. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "jobs.h"
#include "tap.h"

/* Work that waits until the test opens the gate, so jobs stay pending. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_open;
static atomic_int entered, worked, completed;

static void blocked_work(void *arg)
{
    (void)arg;
    atomic_fetch_add(&entered, 1);
    pthread_mutex_lock(&gate_mu);
    while (!gate_open)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    atomic_fetch_add(&worked, 1);
}

static void count_done(void *arg)
{
    (void)arg;
    atomic_fetch_add(&completed, 1);
}

/* Where work and completions ran, relative to the loop's (main) thread. */
static pthread_t loop_thread;
static atomic_int work_on_loop, work_elsewhere, done_on_loop, done_elsewhere;

static void where_work(void *arg)
{
    (void)arg;
    atomic_fetch_add(pthread_equal(pthread_self(), loop_thread) ? &work_on_loop : &work_elsewhere,
                     1);
    blocked_work(arg);
}

static void where_done(void *arg)
{
    (void)arg;
    atomic_fetch_add(pthread_equal(pthread_self(), loop_thread) ? &done_on_loop : &done_elsewhere,
                     1);
    atomic_fetch_add(&completed, 1);
}

/* Fills buf with a key of n 'k's followed by tail. */
static void long_key(char *buf, size_t n, const char *tail)
{
    memset(buf, 'k', n);
    strcpy(buf + n, tail);
}

static void close_gate(void)
{
    pthread_mutex_lock(&gate_mu);
    gate_open = 0;
    pthread_mutex_unlock(&gate_mu);
}

static void open_gate(void)
{
    pthread_mutex_lock(&gate_mu);
    gate_open = 1;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

/* Runs lp until n completions ran or ten seconds passed (a bound for a
 * failure, generous for a loaded machine). */
static void run_until(loop *lp, int n)
{
    uint64_t t0 = loop_clock_us();
    while (atomic_load(&completed) < n && loop_clock_us() - t0 < 10000000)
        loop_run_once(lp, 10);
}

int main(void)
{
    /* one thread, four pending jobs, two per key */
    jobs_configure(1, 4, 2);
    loop *lp = loop_create();
    int why = 0;

    job *a1 = jobs_submit(lp, "user:a", blocked_work, count_done, NULL, &why);
    job *a2 = jobs_submit(lp, "user:a", blocked_work, count_done, NULL, &why);
    ok(a1 && a2, "two jobs for one key are queued");
    why = 0;
    job *a3 = jobs_submit(lp, "user:a", blocked_work, count_done, NULL, &why);
    ok(!a3 && why == JOBS_KEY_FULL, "a third for the same key is refused: JOBS_KEY_FULL (%d)", why);
    job *b1 = jobs_submit(lp, "user:b", blocked_work, count_done, NULL, &why);
    job *n1 = jobs_submit(lp, NULL, blocked_work, count_done, NULL, &why);
    ok(b1 && n1, "other keys and keyless jobs still fit");
    is_int(jobs_pending(), 4, "four jobs pending");
    is_int(loop_holds(lp), 4, "each holds the loop");
    why = 0;
    job *c1 = jobs_submit(lp, "user:c", blocked_work, count_done, NULL, &why);
    ok(!c1 && why == JOBS_FULL, "a fifth is refused: JOBS_FULL (%d)", why);

    /* With one thread, a1 runs (held at the gate) and the rest wait. */
    uint64_t t0 = loop_clock_us();
    while (atomic_load(&entered) == 0 && loop_clock_us() - t0 < 10000000)
        ;
    is_int(atomic_load(&entered), 1, "the only thread started the first job");
    is_int(jobs_cancel(a1), 0, "a job a thread has started cannot be cancelled");
    is_int(jobs_cancel(a2), 1, "a queued job can");
    is_int(jobs_pending(), 3, "cancelling a queued job frees its place");
    is_int(loop_holds(lp), 3, "... and releases its hold on the loop");
    job *a4 = jobs_submit(lp, "user:a", blocked_work, count_done, NULL, &why);
    ok(a4 != NULL, "... and its key's share: a new job for that key fits");

    open_gate();
    run_until(lp, 4);
    is_int(atomic_load(&completed), 4, "every job that was not cancelled completed");
    is_int(atomic_load(&worked), 4, "the cancelled one never ran");
    is_int(jobs_pending(), 0, "nothing is pending at the end");
    is_int(loop_holds(lp), 0, "no hold is left on the loop");

    /* work on a pool thread, completion on the submitting loop's thread */
    loop_thread = pthread_self();
    atomic_store(&completed, 0);
    job *w1 = jobs_submit(lp, NULL, where_work, where_done, NULL, &why);
    job *w2 = jobs_submit(lp, "user:w", where_work, where_done, NULL, &why);
    ok(w1 && w2, "two more jobs are queued");
    run_until(lp, 2);
    is_int(atomic_load(&completed), 2, "both completed");
    is_int(atomic_load(&work_elsewhere), 2, "their work ran on a pool thread");
    is_int(atomic_load(&work_on_loop), 0, "... never on the loop's thread");
    is_int(atomic_load(&done_on_loop), 2, "their completions ran on the loop's thread");
    is_int(atomic_load(&done_elsewhere), 0, "... never on a pool thread");

    /* keys are compared on their first JOBS_KEY_MAX bytes */
    char k1[JOBS_KEY_MAX + 16], k2[JOBS_KEY_MAX + 16], k3[JOBS_KEY_MAX + 16];
    long_key(k1, JOBS_KEY_MAX, "-first");
    long_key(k2, JOBS_KEY_MAX, "-second");
    long_key(k3, JOBS_KEY_MAX - 1, "x");
    close_gate();
    atomic_store(&completed, 0);
    job *l1 = jobs_submit(lp, k1, blocked_work, count_done, NULL, &why);
    job *l2 = jobs_submit(lp, k2, blocked_work, count_done, NULL, &why);
    why = 0;
    job *l3 = jobs_submit(lp, k1, blocked_work, count_done, NULL, &why);
    ok(l1 && l2 && !l3 && why == JOBS_KEY_FULL,
       "two keys equal on their first %d bytes share one key's bound (%d)", JOBS_KEY_MAX, why);
    job *l4 = jobs_submit(lp, k3, blocked_work, count_done, NULL, &why);
    ok(l4 != NULL, "a key that differs within the first %d bytes is another key", JOBS_KEY_MAX);

    /* configured once: a later jobs_configure changes nothing (4 pending stays the bound) */
    jobs_configure(8, 100, 50);
    job *m1 = jobs_submit(lp, "user:m", blocked_work, count_done, NULL, &why);
    why = 0;
    job *m2 = jobs_submit(lp, "user:n", blocked_work, count_done, NULL, &why);
    ok(m1 && !m2 && why == JOBS_FULL,
       "jobs_configure after the pool started leaves the bounds as they were (%d)", why);
    open_gate();
    run_until(lp, 4);
    is_int(atomic_load(&completed), 4, "the four completed");
    is_int(jobs_pending(), 0, "nothing is pending at the end");
    loop_destroy(lp);
    done_testing();
}
