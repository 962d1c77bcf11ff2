/* Event loop: timer ordering, cancellation, re-arming, cross-thread wake,
 * watchers removed by another watcher's callback in the same batch,
 * priority watchers dispatched before the rest of their batch. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

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
    /* the old deadline is far enough that a loaded machine cannot blur the two */
    loop_timer_start(lp, &t, 10000);
    loop_timer_start(lp, &t, 5); /* re-arm earlier */
    uint64_t t0 = loop_clock_us();
    while (nfired == 0 && loop_clock_us() - t0 < 20000000)
        loop_run_once(lp, -1);
    is_int(nfired, 1, "re-armed timer fired once");
    ok(loop_clock_us() - t0 < 5000000, "at the new deadline, not the old one");
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
    /* without the wake the first turn would sleep its whole 10 s */
    while (!woken && loop_clock_ms() - t0 < 20000)
        loop_run_once(lp, 10000);
    pthread_join(th, NULL);
    is_int(woken, 1, "another thread woke the loop");
    ok(loop_clock_ms() - t0 < 5000, "promptly");
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

/* Two watchers whose descriptors are both ready, so their events arrive in
 * one epoll batch; whichever runs first removes the other (and, with
 * free_peer, frees it the way on_hangup -> lhost_abort -> pgpool_release
 * frees a connection). The removed one must never be called. */
typedef struct peer_watch {
    loop_io io;
    int pipefd[2];
    struct peer_watch **peer; /* the other watcher, NULL once removed */
    int *calls;
    int free_peer;
} peer_watch;

static void on_peer_ready(loop *lp, loop_io *io, uint32_t events)
{
    peer_watch *w = io->data;
    (void)events;
    (*w->calls)++;
    peer_watch *other = *w->peer;
    if (!other)
        return;
    loop_io_del(lp, &other->io);
    close(other->pipefd[0]);
    close(other->pipefd[1]);
    *w->peer = NULL;
    if (w->free_peer)
        free(other);
}

static peer_watch *peer_open(loop *lp, int *calls, int free_peer)
{
    peer_watch *w = calloc(1, sizeof *w);
    if (!w || pipe(w->pipefd) < 0)
        abort();
    w->calls = calls;
    w->free_peer = free_peer;
    if (write(w->pipefd[1], "x", 1) != 1 ||
        loop_io_add(lp, &w->io, w->pipefd[0], EPOLLIN, on_peer_ready, w) < 0)
        abort();
    return w;
}

static void test_remove_in_batch(int free_peer)
{
    loop *lp = loop_create();
    int calls[2] = {0, 0};
    peer_watch *a = peer_open(lp, &calls[0], free_peer);
    peer_watch *b = peer_open(lp, &calls[1], free_peer);
    peer_watch *a_slot = a, *b_slot = b;
    a->peer = &b_slot; /* a removes b */
    b->peer = &a_slot; /* b removes a */
    int n = loop_run_once(lp, 1000);
    ok(n >= 2, "both watchers were ready in one batch (%d events)", n);
    is_int(calls[0] + calls[1], 1,
           free_peer ? "a watcher freed by another's callback is not called"
                     : "a watcher removed by another's callback is not called");
    int removed = a_slot ? 1 : 0; /* b's slot was cleared: b was removed */
    loop_run_once(lp, 0);
    is_int(calls[removed], 0, "nor in the next iteration");
    peer_watch *slots[2] = {a_slot, b_slot};
    for (int i = 0; i < 2; i++) {
        peer_watch *w = slots[i];
        if (w) {
            loop_io_del(lp, &w->io);
            close(w->pipefd[0]);
            close(w->pipefd[1]);
            free(w);
        } else if (!free_peer) {
            free(i == 0 ? a : b);
        }
    }
    loop_destroy(lp);
}

/* Records the order in which watchers of one batch are called. */
typedef struct order_watch {
    loop_io io;
    int pipefd[2];
    char name;
    char *log;                  /* appended to: one character per call */
    struct order_watch *victim; /* removed (not freed) by this one's callback, if set */
} order_watch;

static void on_order_ready(loop *lp, loop_io *io, uint32_t events)
{
    order_watch *w = io->data;
    char c;
    (void)events;
    if (read(w->pipefd[0], &c, 1) != 1)
        abort();
    size_t n = strlen(w->log);
    w->log[n] = w->name;
    w->log[n + 1] = '\0';
    if (w->victim) {
        loop_io_del(lp, &w->victim->io);
        w->victim = NULL;
    }
}

static void order_open(loop *lp, order_watch *w, char name, char *log, int first)
{
    memset(w, 0, sizeof *w);
    w->name = name;
    w->log = log;
    if (pipe(w->pipefd) < 0)
        abort();
    int rc = first ? loop_io_add_first(lp, &w->io, w->pipefd[0], EPOLLIN, on_order_ready, w)
                   : loop_io_add(lp, &w->io, w->pipefd[0], EPOLLIN, on_order_ready, w);
    if (rc < 0)
        abort();
}

static void order_ready(order_watch *w)
{
    if (write(w->pipefd[1], "x", 1) != 1)
        abort();
}

static void order_close(loop *lp, order_watch *w, int registered)
{
    if (registered)
        loop_io_del(lp, &w->io);
    close(w->pipefd[0]);
    close(w->pipefd[1]);
}

/* The order the batch is dispatched in when a, b, c became ready in that
 * order and only the watchers marked in first[] have priority. */
static void run_order(const int first[3], char *log)
{
    loop *lp = loop_create();
    order_watch w[3];
    log[0] = '\0';
    for (int i = 0; i < 3; i++)
        order_open(lp, &w[i], (char)('a' + i), log, first[i]);
    for (int i = 0; i < 3; i++)
        order_ready(&w[i]);
    int n = loop_run_once(lp, 1000);
    if (n != 3)
        printf("# expected one batch of 3 events, got %d\n", n);
    for (int i = 0; i < 3; i++)
        order_close(lp, &w[i], 1);
    loop_destroy(lp);
}

static void test_priority(void)
{
    char log[16];
    run_order((const int[3]){0, 0, 0}, log);
    is_str(log, "abc", "without priority watchers a batch runs in the kernel's order");
    run_order((const int[3]){0, 0, 1}, log);
    is_str(log, "cab", "a priority watcher ready last runs first, the rest in order");
    run_order((const int[3]){0, 1, 1}, log);
    is_str(log, "bca", "two priority watchers run first, in the kernel's order");

    /* a priority watcher removes an ordinary one of its batch: never called */
    loop *lp = loop_create();
    order_watch a, b;
    log[0] = '\0';
    order_open(lp, &a, 'a', log, 0);
    order_open(lp, &b, 'b', log, 1);
    b.victim = &a;
    order_ready(&a);
    order_ready(&b);
    loop_run_once(lp, 1000);
    is_str(log, "b", "a watcher removed by a priority watcher's callback is not called");
    order_close(lp, &a, 0);

    /* once the priority watcher is removed, the loop keeps the kernel's order */
    loop_io_del(lp, &b.io);
    order_watch c, d;
    order_open(lp, &c, 'c', log, 0);
    order_open(lp, &d, 'd', log, 0);
    log[0] = '\0';
    order_ready(&c);
    order_ready(&d);
    order_ready(&b); /* no longer watched */
    loop_run_once(lp, 1000);
    is_str(log, "cd", "a removed priority watcher is neither called nor reorders the batch");
    /* c becomes ready before b is watched again (b's byte is still unread):
     * the kernel reports c first, the priority puts b first, also after a
     * loop_io_mod */
    log[0] = '\0';
    order_ready(&c);
    if (loop_io_add_first(lp, &b.io, b.pipefd[0], EPOLLIN, on_order_ready, &b) < 0 ||
        loop_io_mod(lp, &b.io, EPOLLIN) < 0)
        abort();
    loop_run_once(lp, 1000);
    is_str(log, "bc", "a priority watcher keeps its priority through loop_io_mod");
    order_close(lp, &b, 1);
    order_close(lp, &c, 1);
    order_close(lp, &d, 1);
    loop_destroy(lp);
}

static void test_batch_time(void)
{
    loop *lp = loop_create();
    uint64_t before = loop_clock_us();
    loop_run_once(lp, 5);
    uint64_t after = loop_clock_us();
    uint64_t b = loop_batch_us(lp);
    ok(b >= before + 4000 && b <= after, "the batch time is when the wait returned");
    is_int(loop_now(lp), b / 1000, "loop_now is the batch time in milliseconds");
    loop_destroy(lp);
}

int main(void)
{
    test_order();
    test_rearm();
    test_wake();
    test_many();
    test_remove_in_batch(0);
    test_remove_in_batch(1);
    test_priority();
    test_batch_time();
    return done_testing();
}
