/* Event loop: timer ordering, cancellation, re-arming, cross-thread wake. */
#include <pthread.h>

#include "loop.h"
#include "tap.h"

static int fired[16];
static int nfired;

static void record(loop *lp, loop_timer *t)
{
    (void)lp;
    fired[nfired++] = (int)(intptr_t)t->data;
}

static void test_order(void)
{
    loop *lp = loop_create();
    loop_timer t[6];
    static const int delays[6] = {30, 10, 50, 20, 40, 0};
    nfired = 0;
    uint64_t t0 = loop_clock_us();
    for (int i = 0; i < 6; i++) {
        loop_timer_init(&t[i], record, (void *)(intptr_t)delays[i]);
        loop_timer_start(lp, &t[i], (uint64_t)delays[i]);
    }
    loop_timer_stop(lp, &t[4]); /* cancel the 40 ms one */
    ok(!loop_timer_active(&t[4]), "stopped timer is idle");
    loop_timer_stop(lp, &t[4]);
    ok(!loop_timer_active(&t[4]) && loop_timer_active(&t[2]),
       "stopping twice leaves the others armed");
    while (nfired < 5 && loop_clock_us() - t0 < 2000000)
        loop_run_once(lp, -1);
    is_int(nfired, 5, "five timers fired");
    int sorted = 1, cancelled_fired = 0;
    for (int i = 0; i < nfired; i++) {
        if (i > 0 && fired[i] < fired[i - 1])
            sorted = 0;
        if (fired[i] == 40)
            cancelled_fired = 1;
    }
    ok(sorted, "timers fired in deadline order");
    ok(!cancelled_fired, "the cancelled timer never fired");
    ok(loop_clock_us() - t0 >= 50000, "the last fired no earlier than its deadline");
    is_int(loop_next_timeout(lp), -1, "no timer left");
    loop_destroy(lp);
}

static void test_rearm(void)
{
    loop *lp = loop_create();
    loop_timer t;
    nfired = 0;
    loop_timer_init(&t, record, (void *)(intptr_t)7);
    loop_timer_start(lp, &t, 1000);
    loop_timer_start(lp, &t, 5); /* re-arm earlier */
    uint64_t t0 = loop_clock_us();
    while (nfired == 0 && loop_clock_us() - t0 < 2000000)
        loop_run_once(lp, -1);
    is_int(nfired, 1, "re-armed timer fired once");
    ok(loop_clock_us() - t0 < 500000, "at the new deadline, not the old one");
    loop_destroy(lp);
}

static int woken;
static void on_wake(loop *lp, void *data)
{
    (void)lp;
    (void)data;
    woken++;
}

static void *waker(void *arg)
{
    loop_wake(arg);
    return NULL;
}

static void test_wake(void)
{
    loop *lp = loop_create();
    pthread_t th;
    loop_on_wake(lp, on_wake, NULL);
    pthread_create(&th, NULL, waker, lp);
    uint64_t t0 = loop_clock_ms();
    while (!woken && loop_clock_ms() - t0 < 2000)
        loop_run_once(lp, 1000);
    pthread_join(th, NULL);
    is_int(woken, 1, "another thread woke the loop");
    ok(loop_clock_ms() - t0 < 1000, "promptly");
    loop_destroy(lp);
}

static void test_many(void)
{
    loop *lp = loop_create();
    enum { N = 2000 };
    static loop_timer ts[N];
    nfired = 0;
    for (int i = 0; i < N; i++) {
        loop_timer_init(&ts[i], record, (void *)(intptr_t)(i % 7));
        loop_timer_start(lp, &ts[i], (uint64_t)(i % 7));
    }
    for (int i = 0; i < N; i += 2)
        loop_timer_stop(lp, &ts[i]);
    int count = 0;
    for (int i = 0; i < N; i++)
        count += loop_timer_active(&ts[i]);
    is_int(count, N / 2, "half the timers remain armed");
    for (int i = 1; i < N; i += 2)
        loop_timer_stop(lp, &ts[i]);
    is_int(loop_next_timeout(lp), -1, "all stopped");
    loop_destroy(lp);
}

int main(void)
{
    test_order();
    test_rearm();
    test_wake();
    test_many();
    return done_testing();
}
