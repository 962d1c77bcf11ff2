/*
 * loop: a single-threaded epoll event loop with millisecond timers.
 *
 * One loop per worker thread. Nothing here is thread-safe except
 * loop_wake(), which any thread may call to interrupt epoll_wait().
 * Timers and I/O watchers are embedded in their owner's structs
 * (init/start/stop, no allocation), so arming a timer on the request
 * path costs no malloc.
 */
#ifndef GLASGOW_LOOP_H
#define GLASGOW_LOOP_H

#include <stddef.h>
#include <stdint.h>

typedef struct loop loop;
typedef struct loop_timer loop_timer;
typedef struct loop_io loop_io;

typedef void (*loop_timer_cb)(loop *lp, loop_timer *t);
typedef void (*loop_io_cb)(loop *lp, loop_io *io, uint32_t events);

struct loop_timer {
    uint64_t due_us;   /* monotonic deadline, microseconds */
    size_t heap_index; /* position in the heap, or SIZE_MAX when idle */
    loop_timer_cb cb;
    void *data; /* owner's pointer, untouched by the loop */
};

struct loop_io {
    int fd;
    int first; /* dispatched before ordinary watchers in a batch (loop_io_add_first) */
    loop_io_cb cb;
    void *data;
};

/* Creates a loop; aborts on allocation failure, returns NULL (errno set)
 * when the kernel refuses an epoll or eventfd descriptor. */
loop *loop_create(void);

/* Closes the loop's descriptors and frees it. Watchers and timers still
 * registered are simply forgotten; their owners must not use them again. */
void loop_destroy(loop *lp);

/* Monotonic milliseconds, refreshed once per iteration (cheap to call). */
uint64_t loop_now(const loop *lp);

/* Monotonic microseconds (loop_clock_us) at which the current iteration's
 * wait for events returned, so loop_now(lp) == loop_batch_us(lp) / 1000.
 * Everything until the next wait (the events, the timers, what the owner
 * runs between iterations) belongs to that batch: now minus this is how
 * long ago the loop last looked at its descriptors. */
uint64_t loop_batch_us(const loop *lp);

/* Monotonic milliseconds read from the clock now. */
uint64_t loop_clock_ms(void);

/* Monotonic microseconds read from the clock now. */
uint64_t loop_clock_us(void);

/* Prepares an idle timer; must be called once before loop_timer_start. */
void loop_timer_init(loop_timer *t, loop_timer_cb cb, void *data);

/* Arms (or re-arms) t to fire once, after_ms from now. */
void loop_timer_start(loop *lp, loop_timer *t, uint64_t after_ms);

/* Disarms t; a no-op for an idle timer. */
void loop_timer_stop(loop *lp, loop_timer *t);

/* Returns non-zero while t is armed. */
int loop_timer_active(const loop_timer *t);

/* Watches fd for events (EPOLLIN, EPOLLOUT, ...); io must outlive the
 * registration. Returns 0, or -1 with errno from epoll_ctl. */
int loop_io_add(loop *lp, loop_io *io, int fd, uint32_t events, loop_io_cb cb, void *data);

/*
 * Like loop_io_add, but io is a priority watcher: in every batch of events
 * the loop dispatches those of priority watchers before any other, so an
 * event that was pending when the batch was read (data that had arrived on
 * fd) is handled before every ordinary watcher's event of that batch, in
 * whatever order the kernel reported them. For a descriptor whose data
 * changes how the others' events must be handled (an invalidation feed).
 */
int loop_io_add_first(loop *lp, loop_io *io, int fd, uint32_t events, loop_io_cb cb, void *data);

/* Changes the event mask of a registered watcher (it keeps its priority). */
int loop_io_mod(loop *lp, loop_io *io, uint32_t events);

/* Stops watching io's descriptor (does not close it). Safe from any
 * callback: events of io still pending in the batch being dispatched are
 * dropped, so io may be freed as soon as this returns. */
void loop_io_del(loop *lp, loop_io *io);

/* Sets the function run on the loop's thread after loop_wake(). */
void loop_on_wake(loop *lp, void (*cb)(loop *lp, void *data), void *data);

/* Wakes the loop from any thread; async-signal-safe. */
void loop_wake(loop *lp);

/* Runs fn(arg) on lp's thread during its next iteration; any thread.
 * Callbacks run in the order they were posted. */
void loop_post(loop *lp, void (*fn)(void *arg), void *arg);

/* Counts work that will post back to lp (any thread): the owner keeps the
 * loop alive until loop_holds() drops to zero. */
void loop_hold(loop *lp);
void loop_unhold(loop *lp);
unsigned loop_holds(loop *lp);

/* Milliseconds until the next timer is due, or -1 when none is armed. */
int64_t loop_next_timeout(const loop *lp);

/*
 * Runs one iteration: waits for I/O at most min(max_wait_ms, next timer)
 * milliseconds (max_wait_ms < 0 means no cap), dispatches ready watchers
 * (priority watchers first, then the others in the kernel's order), then
 * runs every timer that is due. Returns the number of events seen.
 */
int loop_run_once(loop *lp, int64_t max_wait_ms);

#endif
