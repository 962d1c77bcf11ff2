/*
 * loop: epoll plus a binary min-heap of timers.
 *
 * Watchers are embedded in their owners, so a callback may remove, and its
 * owner free, another watcher whose event is still waiting in the current
 * epoll batch. loop_io_del therefore forgets that watcher's pending events
 * (it clears their pointers in the batch being dispatched), and dispatch
 * skips cleared entries: a removed watcher is never called nor read.
 *
 * Priority watchers (loop_io_add_first) are dispatched in a first pass
 * over the batch, the others in a second; the first pass runs only while
 * some priority watcher is registered, so loops without one pay nothing.
 */
#include "loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define LOOP_MAX_EVENTS 64

typedef struct posted {
    void (*fn)(void *arg);
    void *arg;
    struct posted *next;
} posted;

struct loop {
    atomic_uint holds;
    int epfd;
    pthread_mutex_t post_mu;
    posted *post_head, *post_tail;
    int wakefd;
    uint64_t now;
    uint64_t batch_us; /* when the last wait returned */
    loop_timer **heap;
    size_t heap_len;
    size_t heap_cap;
    loop_io wake_io;
    struct epoll_event *batch; /* the events being dispatched, or NULL */
    int batch_len;
    unsigned firsts; /* priority watchers registered */
    void (*wake_cb)(loop *lp, void *data);
    void *wake_data;
};

uint64_t loop_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t loop_clock_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void loop_drain_wake(loop *lp, loop_io *io, uint32_t events)
{
    uint64_t n;
    (void)events;
    while (read(io->fd, &n, sizeof n) > 0) {
    }
    pthread_mutex_lock(&lp->post_mu);
    posted *p = lp->post_head;
    lp->post_head = lp->post_tail = NULL;
    pthread_mutex_unlock(&lp->post_mu);
    while (p) {
        posted *next = p->next;
        p->fn(p->arg);
        free(p);
        p = next;
    }
    if (lp->wake_cb)
        lp->wake_cb(lp, lp->wake_data);
}

loop *loop_create(void)
{
    loop *lp = xcalloc(1, sizeof *lp);
    pthread_mutex_init(&lp->post_mu, NULL);
    lp->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (lp->epfd < 0)
        goto err_free;
    lp->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (lp->wakefd < 0)
        goto err_close_ep;
    if (loop_io_add(lp, &lp->wake_io, lp->wakefd, EPOLLIN, loop_drain_wake, NULL) < 0)
        goto err_close_wake;
    lp->batch_us = loop_clock_us();
    lp->now = lp->batch_us / 1000u;
    return lp;

err_close_wake:
    close(lp->wakefd);
err_close_ep:
    close(lp->epfd);
err_free:
    free(lp);
    return NULL;
}

void loop_destroy(loop *lp)
{
    if (!lp)
        return;
    close(lp->wakefd);
    close(lp->epfd);
    while (lp->post_head) {
        posted *next = lp->post_head->next;
        free(lp->post_head);
        lp->post_head = next;
    }
    pthread_mutex_destroy(&lp->post_mu);
    free(lp->heap);
    free(lp);
}

void loop_hold(loop *lp)
{
    atomic_fetch_add(&lp->holds, 1);
}

void loop_unhold(loop *lp)
{
    atomic_fetch_sub(&lp->holds, 1);
}

unsigned loop_holds(loop *lp)
{
    return atomic_load(&lp->holds);
}

void loop_post(loop *lp, void (*fn)(void *arg), void *arg)
{
    posted *p = xmalloc(sizeof *p);
    p->fn = fn;
    p->arg = arg;
    p->next = NULL;
    pthread_mutex_lock(&lp->post_mu);
    if (lp->post_tail)
        lp->post_tail->next = p;
    else
        lp->post_head = p;
    lp->post_tail = p;
    pthread_mutex_unlock(&lp->post_mu);
    loop_wake(lp);
}

uint64_t loop_now(const loop *lp)
{
    return lp->now;
}

uint64_t loop_batch_us(const loop *lp)
{
    return lp->batch_us;
}

/* Heap helpers: the heap is ordered by due_us; each timer knows its slot. */
static void heap_set(loop *lp, size_t i, loop_timer *t)
{
    lp->heap[i] = t;
    t->heap_index = i;
}

static void heap_up(loop *lp, size_t i)
{
    loop_timer *t = lp->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (lp->heap[parent]->due_us <= t->due_us)
            break;
        heap_set(lp, i, lp->heap[parent]);
        i = parent;
    }
    heap_set(lp, i, t);
}

static void heap_down(loop *lp, size_t i)
{
    loop_timer *t = lp->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= lp->heap_len)
            break;
        if (child + 1 < lp->heap_len && lp->heap[child + 1]->due_us < lp->heap[child]->due_us)
            child++;
        if (t->due_us <= lp->heap[child]->due_us)
            break;
        heap_set(lp, i, lp->heap[child]);
        i = child;
    }
    heap_set(lp, i, t);
}

void loop_timer_init(loop_timer *t, loop_timer_cb cb, void *data)
{
    t->due_us = 0;
    t->heap_index = SIZE_MAX;
    t->cb = cb;
    t->data = data;
}

int loop_timer_active(const loop_timer *t)
{
    return t->heap_index != SIZE_MAX;
}

void loop_timer_stop(loop *lp, loop_timer *t)
{
    size_t i = t->heap_index;
    if (i == SIZE_MAX)
        return;
    t->heap_index = SIZE_MAX;
    lp->heap_len--;
    if (i == lp->heap_len)
        return;
    loop_timer *moved = lp->heap[lp->heap_len];
    heap_set(lp, i, moved);
    heap_up(lp, i);
    heap_down(lp, moved->heap_index);
}

void loop_timer_start(loop *lp, loop_timer *t, uint64_t after_ms)
{
    loop_timer_stop(lp, t);
    if (lp->heap_len == lp->heap_cap) {
        lp->heap_cap = lp->heap_cap ? lp->heap_cap * 2 : 64;
        lp->heap = xrealloc(lp->heap, lp->heap_cap * sizeof *lp->heap);
    }
    /* from the clock in microseconds, not the iteration's cached
     * milliseconds: a timer must never fire before after_ms has passed */
    t->due_us = loop_clock_us() + after_ms * 1000u;
    lp->heap[lp->heap_len] = t;
    t->heap_index = lp->heap_len;
    lp->heap_len++;
    heap_up(lp, t->heap_index);
}

int64_t loop_next_timeout(const loop *lp)
{
    if (lp->heap_len == 0)
        return -1;
    uint64_t due = lp->heap[0]->due_us;
    uint64_t now = loop_clock_us();
    return due > now ? (int64_t)((due - now + 999) / 1000) : 0; /* round up */
}

static int io_add(loop *lp, loop_io *io, int fd, uint32_t events, loop_io_cb cb, void *data,
                  int first)
{
    struct epoll_event ev = {.events = events, .data.ptr = io};
    io->fd = fd;
    io->first = 0;
    io->cb = cb;
    io->data = data;
    if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -1;
    io->first = first;
    lp->firsts += (unsigned)first;
    return 0;
}

int loop_io_add(loop *lp, loop_io *io, int fd, uint32_t events, loop_io_cb cb, void *data)
{
    return io_add(lp, io, fd, events, cb, data, 0);
}

int loop_io_add_first(loop *lp, loop_io *io, int fd, uint32_t events, loop_io_cb cb, void *data)
{
    return io_add(lp, io, fd, events, cb, data, 1);
}

int loop_io_mod(loop *lp, loop_io *io, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = io};
    return epoll_ctl(lp->epfd, EPOLL_CTL_MOD, io->fd, &ev);
}

void loop_io_del(loop *lp, loop_io *io)
{
    epoll_ctl(lp->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    if (io->first) {
        lp->firsts--;
        io->first = 0;
    }
    /* at most LOOP_MAX_EVENTS entries, and only while dispatching */
    for (int i = 0; i < lp->batch_len; i++)
        if (lp->batch[i].data.ptr == io)
            lp->batch[i].data.ptr = NULL;
}

void loop_on_wake(loop *lp, void (*cb)(loop *lp, void *data), void *data)
{
    lp->wake_cb = cb;
    lp->wake_data = data;
}

void loop_wake(loop *lp)
{
    uint64_t one = 1;
    ssize_t n = write(lp->wakefd, &one, sizeof one);
    (void)n; /* EAGAIN means a wake is already pending */
}

static void loop_run_timers(loop *lp)
{
    uint64_t now_us = loop_clock_us();
    while (lp->heap_len > 0 && lp->heap[0]->due_us <= now_us) {
        loop_timer *t = lp->heap[0];
        loop_timer_stop(lp, t);
        t->cb(lp, t);
    }
}

int loop_run_once(loop *lp, int64_t max_wait_ms)
{
    struct epoll_event events[LOOP_MAX_EVENTS];
    int64_t wait = loop_next_timeout(lp);
    if (max_wait_ms >= 0 && (wait < 0 || max_wait_ms < wait))
        wait = max_wait_ms;
    if (wait > 60000)
        wait = 60000;
    int n = epoll_wait(lp->epfd, events, LOOP_MAX_EVENTS, (int)wait);
    if (n < 0 && errno != EINTR)
        die_errno("epoll_wait");
    lp->batch_us = loop_clock_us();
    lp->now = lp->batch_us / 1000u;        /* what loop_clock_ms would say */
    struct epoll_event *outer = lp->batch; /* a nested run (none today) */
    int outer_len = lp->batch_len;
    lp->batch = events;
    lp->batch_len = n;
    for (int pass = lp->firsts ? 0 : 1; pass < 2; pass++) {
        for (int i = 0; i < n; i++) {
            loop_io *io = events[i].data.ptr;
            if (!io)
                continue; /* removed by an earlier callback, or dispatched in pass 0 */
            if (pass == 0 && !io->first)
                continue;
            events[i].data.ptr = NULL;
            io->cb(lp, io, events[i].events);
        }
    }
    lp->batch = outer;
    lp->batch_len = outer_len;
    loop_run_timers(lp);
    return n < 0 ? 0 : n;
}
