/* watchdog: deadlines signal the right thread, stuck threads are reported,
 * the shutdown deadline applies to every slot, and idle slots are left alone. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "tap.h"
#include "watchdog.h"

static atomic_int interrupts_main, interrupts_other;
static atomic_uint_fast64_t last_interrupt_us; /* when the main thread was last signalled */
static atomic_int stuck_calls;
static char stuck_what[128];
static _Thread_local int tl_is_other;

/* Signal-handler context: only atomics. */
static void on_interrupt(wd_slot *s)
{
    (void)s;
    if (!tl_is_other)
        atomic_store(&last_interrupt_us, watchdog_now_us()); /* clock_gettime: signal-safe */
    atomic_fetch_add(tl_is_other ? &interrupts_other : &interrupts_main, 1);
}

static int on_stuck(wd_slot *s, const char *name, const char *what, uint64_t overdue_ms)
{
    (void)s;
    (void)overdue_ms;
    snprintf(stuck_what, sizeof stuck_what, "%s: %s", name, what ? what : "");
    atomic_fetch_add(&stuck_calls, 1);
    return strcmp(name, "other") != 0; /* "other" is only reported */
}

static void spin_ms(unsigned ms)
{
    uint64_t until = watchdog_now_us() + (uint64_t)ms * 1000u;
    while (watchdog_now_us() < until) {
    }
}

/* Spins (busy, as Lua would be) until *v reaches want or max_ms pass: the
 * watchdog thread may be scheduled late on a loaded machine, so the cases
 * wait for its signal or report instead of assuming it within a fixed spin. */
static void spin_until(atomic_int *v, int want, unsigned max_ms)
{
    uint64_t until = watchdog_now_us() + (uint64_t)max_ms * 1000u;
    while (atomic_load(v) < want && watchdog_now_us() < until) {
    }
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* A second thread that runs under a deadline while the main one does not. */
static void *other_main(void *arg)
{
    (void)arg;
    tl_is_other = 1;
    wd_slot *s = watchdog_slot("other");
    watchdog_begin(s, watchdog_now_us() + 30000, "other work");
    spin_ms(40);
    spin_until(&interrupts_other, 1, 3000);
    ok(watchdog_expired(s), "the other thread sees its own deadline passed");
    watchdog_end(s);
    ok(!watchdog_expired(s), "and not once it left");
    return NULL;
}

/* The stuck grace: far longer than any scheduling delay between a deadline's
 * signal and the end of the work it interrupts, so that only the case that
 * spins on past it is reported stuck. */
#define GRACE_MS 1000

/* The idle sleep: far longer than the deadlines below, so that a deadline
 * met only at the next idle look would show as late. */
#define IDLE_MS 1000

static atomic_int describe_calls;
static atomic_int slow_state; /* 1 while describe_slowly runs, 2 once it returned */

/* A description that takes a while: the run's end must wait for it, as a
 * request's must before the request (the description's source) is freed. */
static void describe_slowly(const void *arg, char *out, size_t outlen)
{
    atomic_store(&slow_state, 1);
    struct timespec ts = {0, 200 * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
    snprintf(out, outlen, "slow %s", (const char *)arg);
    atomic_store(&slow_state, 2);
}

/* A description made on demand, as lhost's per-request one is. */
static void describe_work(const void *arg, char *out, size_t outlen)
{
    atomic_fetch_add(&describe_calls, 1);
    snprintf(out, outlen, "request %d POST /d", *(const int *)arg);
}

int main(void)
{
    watchdog_start(on_interrupt, on_stuck, GRACE_MS, 5, IDLE_MS);
    wd_slot *s = watchdog_slot("main");
    ok(s != NULL, "the main thread gets a slot");
    ok(watchdog_slot("again") == s, "a thread keeps its slot");

    /* idle, the thread sleeps: it used to look every 5 ms (120 times here) */
    sleep_ms(50);
    uint64_t w0 = watchdog_wakeups();
    sleep_ms(1200);
    uint64_t woke = watchdog_wakeups() - w0;
    ok(woke <= 3, "idle for 1.2 s, the watchdog thread woke %llu times (idle sleep %d ms)",
       (unsigned long long)woke, IDLE_MS);

    /* a deadline sooner than the thread's next look wakes it: signalled on
     * time, not at the end of its idle sleep */
    uint64_t due = watchdog_now_us() + 20000;
    watchdog_begin(s, due, "sooner than the idle sleep");
    spin_until(&interrupts_main, 1, 3000);
    watchdog_end(s);
    uint64_t late_ms = (atomic_load(&last_interrupt_us) - due) / 1000u;
    ok(atomic_load(&interrupts_main) == 1 && atomic_load(&last_interrupt_us) >= due &&
           late_ms < IDLE_MS / 3,
       "a 20 ms deadline is signalled %llu ms after it passed (the idle sleep is %d ms)",
       (unsigned long long)late_ms, IDLE_MS);

    /* many short deadlines, entered at varied moments after the thread's
     * last look (it re-plans 5 ms after a signal, then sleeps idle): each is
     * signalled soon after it passes, none waits for an idle look */
    int late = 0, worst = 0;
    for (int i = 0; i < 100; i++) {
        sleep_ms((unsigned)(i % 11));
        int before = atomic_load(&interrupts_main);
        due = watchdog_now_us() + 2000 + (uint64_t)(i % 7) * 300;
        watchdog_begin(s, due, "short");
        spin_until(&interrupts_main, before + 1, 3000);
        watchdog_end(s);
        int ms = (int)((atomic_load(&last_interrupt_us) - due) / 1000u);
        if (atomic_load(&interrupts_main) == before || ms >= IDLE_MS / 3)
            late++;
        if (ms > worst)
            worst = ms;
    }
    ok(late == 0, "100 short deadlines: %d signalled late or never (worst %d ms)", late, worst);
    atomic_store(&interrupts_main, 0);
    sleep_ms(60); /* past RESIGNAL: no re-signal is pending for the cases below */
    atomic_store(&interrupts_main, 0);

    /* no deadline: never signalled */
    watchdog_begin(s, 0, "unbounded");
    spin_ms(50);
    watchdog_end(s);
    is_int(atomic_load(&interrupts_main), 0, "work without a deadline is never interrupted");

    /* a deadline in the future that is met (by far: 20 ms of work, 2 s allowed) */
    watchdog_begin(s, watchdog_now_us() + 2000000, "quick");
    spin_ms(20);
    ok(!watchdog_expired(s), "before its deadline the work is not expired");
    watchdog_end(s);
    sleep_ms(50);
    is_int(atomic_load(&interrupts_main), 0, "work that ends in time is not interrupted");

    /* a deadline that passes: interrupted in this thread, re-armed while it runs */
    watchdog_begin(s, watchdog_now_us() + 20000, "slow");
    spin_ms(30);
    spin_until(&interrupts_main, 1, 3000);
    ok(watchdog_expired(s), "past its deadline the work is expired");
    watchdog_end(s);
    int n = atomic_load(&interrupts_main);
    ok(n >= 1, "the overdue thread was signalled (%d times)", n);
    is_int(atomic_load(&stuck_calls), 0, "not stuck yet: within the stuck grace");
    sleep_ms(30);
    is_int(atomic_load(&interrupts_main), n, "no signal once it left Lua");

    /* the other thread's deadline signals the other thread only */
    int before_main = atomic_load(&interrupts_main);
    pthread_t t;
    pthread_create(&t, NULL, other_main, NULL);
    pthread_join(t, NULL);
    ok(atomic_load(&interrupts_other) >= 1, "the other thread's deadline signalled it");
    is_int(atomic_load(&interrupts_main), before_main, "and not the main thread");

    /* stuck: still busy past deadline + grace */
    watchdog_begin(s, watchdog_now_us() + 10000, "request 42 GET /c");
    spin_ms(10 + GRACE_MS);
    spin_until(&stuck_calls, 1, 5000);
    is_int(atomic_load(&stuck_calls), 1, "a thread busy past its deadline and grace is stuck");
    is_str(stuck_what, "main: request 42 GET /c", "the report names the thread and the work");
    ok(watchdog_is_stuck(s), "watchdog_is_stuck says so");
    is_int(watchdog_stuck_count(), 1, "one stuck slot");
    char desc[256];
    watchdog_describe_stuck(desc, sizeof desc);
    ok(strstr(desc, "main: request 42 GET /c") != NULL, "described: %s", desc);
    watchdog_end(s);
    sleep_ms(30);
    is_int(atomic_load(&stuck_calls), 1, "reported once per run");

    /* a description made only for the report */
    int id = 43;
    watchdog_begin_described(s, watchdog_now_us() + 2000000, describe_work, &id);
    spin_ms(20);
    watchdog_end(s);
    is_int(atomic_load(&describe_calls), 0, "work that ends in time is never described");
    watchdog_begin_described(s, watchdog_now_us() + 10000, describe_work, &id);
    spin_ms(10 + GRACE_MS);
    spin_until(&stuck_calls, 2, 5000);
    is_int(atomic_load(&stuck_calls), 2, "stuck work entered with a describer is reported");
    is_str(stuck_what, "main: request 43 POST /d", "with the description it made on demand");
    is_int(atomic_load(&describe_calls), 1, "made once, for the report");
    watchdog_end(s);
    watchdog_begin(s, watchdog_now_us() + 10000, "plain again");
    spin_ms(10 + GRACE_MS);
    spin_until(&stuck_calls, 3, 5000);
    is_str(stuck_what, "main: plain again", "a plain description after a described run");
    watchdog_end(s);

    /* a run that ends while the watchdog describes it: the end waits */
    watchdog_begin_described(s, watchdog_now_us() + 10000, describe_slowly, "thing");
    uint64_t until = watchdog_now_us() + (10 + GRACE_MS + 5000) * 1000u;
    while (atomic_load(&slow_state) == 0 && watchdog_now_us() < until) {
    }
    int during = atomic_load(&slow_state);
    watchdog_end(s);
    int after = atomic_load(&slow_state);
    ok(during == 1 && after == 2,
       "watchdog_end waited for the description in progress (state %d, then %d)", during, after);
    spin_until(&stuck_calls, 4, 3000);
    is_str(stuck_what, "main: slow thing", "and the report used it");

    /* the shutdown deadline applies to work that has none of its own */
    before_main = atomic_load(&interrupts_main);
    watchdog_set_shutdown_deadline(watchdog_now_us() + 20000);
    watchdog_begin(s, 0, "long");
    spin_ms(30);
    spin_until(&interrupts_main, before_main + 1, 3000);
    ok(watchdog_expired(s), "past the shutdown deadline, work without one is expired");
    watchdog_end(s);
    ok(atomic_load(&interrupts_main) > before_main, "and was signalled");
    watchdog_set_shutdown_deadline(0);

    watchdog_stop();
    watchdog_stop();
    ok(1, "stopping twice is harmless");
    return done_testing();
}
