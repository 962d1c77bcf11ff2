/*
 * watchdog: stops Lua code that runs past its deadline, and reports the
 * threads that could not be stopped.
 *
 * A thread that runs Lua owns a slot. Before it enters Lua it publishes a
 * deadline in its slot (watchdog_begin) and clears it when Lua returns
 * (watchdog_end): a few atomic stores and a fence, no system call unless
 * the deadline comes before the watchdog thread means to look next. That
 * thread sleeps until the nearest deadline of the busy slots (at most the
 * idle sleep, so an idle process wakes a few times a second, not every few
 * milliseconds); when a slot is past its deadline (or past the shutdown
 * deadline) it sends that thread a signal,
 * and the signal handler calls the interrupt function the Lua host
 * registered (it arms an instruction hook, exactly as LuaJIT's own Ctrl-C
 * handler does from SIGINT). The hook then raises a Lua error in the
 * running code, JIT-compiled loops included (LuaJIT is built with
 * LUAJIT_ENABLE_CHECKHOOK).
 *
 * Code that runs inside one C call (a pathological string.find, a blocking
 * library call) never reaches a hook. A slot still busy stuck_grace after
 * its deadline (at most 500 ms after the shutdown deadline) is reported to
 * the on_stuck callback, once per run; when the callback says so, the slot
 * is marked stuck and counted in watchdog_stuck_count() (serve: /livez
 * turns 503 and the process drains and exits for the orchestrator to
 * restart it).
 *
 * The module knows nothing of Lua; it is testable with plain threads.
 */
#ifndef GLASGOW_WATCHDOG_H
#define GLASGOW_WATCHDOG_H

#include <stddef.h>
#include <stdint.h>

typedef struct wd_slot wd_slot;

/* Called in the signalled thread, from its signal handler: must be
 * async-signal-safe. slot is that thread's own slot. */
typedef void (*watchdog_interrupt_fn)(wd_slot *slot);

/* Called once per stuck run, from the watchdog thread. what is the slot's
 * description (may be NULL), overdue_ms how long past its deadline.
 * Returns non-zero to mark the slot stuck, 0 to leave it at a report. */
typedef int (*watchdog_stuck_fn)(wd_slot *slot, const char *name, const char *what,
                                 uint64_t overdue_ms);

/* Monotonic clock in microseconds (CLOCK_MONOTONIC). */
uint64_t watchdog_now_us(void);

/*
 * Starts the watchdog thread (idempotent). interrupt is called in a thread
 * whose deadline passed; on_stuck (may be NULL: every such slot is marked
 * stuck) when a slot stays busy stuck_grace_ms after its deadline. The
 * thread looks at a deadline when it comes, then every tick_ms while that
 * slot stays past it (re-signalling, judging it stuck), and otherwise
 * sleeps at most idle_ms (at least tick_ms). Work entered with a deadline
 * sooner than the thread's next look wakes it at once (a mutex and a
 * condition variable): an idle_ms no longer than the shortest deadline work
 * is given (its run limit) keeps that off the common path.
 */
void watchdog_start(watchdog_interrupt_fn interrupt, watchdog_stuck_fn on_stuck,
                    unsigned stuck_grace_ms, unsigned tick_ms, unsigned idle_ms);

/* How many times the watchdog thread woke since the process started. */
uint64_t watchdog_wakeups(void);

/* Stops the watchdog thread (it is idempotent and safe when not started). */
void watchdog_stop(void);

/*
 * The calling thread's slot, created on first use with name (copied; e.g.
 * "worker 1", "reload"). Never freed: threads that run Lua live as long as
 * the process, or are the main thread of a command. Returns NULL when all
 * slots are taken (the thread then runs unwatched).
 */
wd_slot *watchdog_slot(const char *name);

/* Enters Lua with an absolute deadline (watchdog_now_us() clock; 0 means
 * none). what describes the work for the stuck report and must stay valid
 * until watchdog_end (may be NULL). */
void watchdog_begin(wd_slot *s, uint64_t deadline_us, const char *what);

/* Writes a description of the work into out (outlen > 0, NUL-terminated).
 * Called from the watchdog thread while the slot's thread is still inside
 * the run it describes. */
typedef void (*watchdog_describe_fn)(const void *arg, char *out, size_t outlen);

/* As watchdog_begin, with the description made only when a report needs
 * it: describe(arg, ...) from the watchdog thread. arg must stay valid
 * until watchdog_end. For work entered per request, where formatting a
 * description every time would cost more than the rest of the bookkeeping. */
void watchdog_begin_described(wd_slot *s, uint64_t deadline_us, watchdog_describe_fn describe,
                              const void *arg);

/* Updates the description of the work in progress (may be NULL). */
void watchdog_set_what(wd_slot *s, const char *what);

/* Leaves Lua. */
void watchdog_end(wd_slot *s);

/* Non-zero when s is inside begin/end and its deadline (or the shutdown
 * deadline) has passed. Cheap; callable from the slot's own thread. */
int watchdog_expired(const wd_slot *s);

/* The deadline of the current work of s (0 when none), for messages. */
uint64_t watchdog_deadline(const wd_slot *s);

/*
 * Sets a process-wide deadline (absolute, watchdog_now_us() clock) that
 * applies to every slot in addition to its own: at the end of the shutdown
 * grace, code still running is interrupted. 0 clears it.
 */
void watchdog_set_shutdown_deadline(uint64_t deadline_us);

/* Non-zero when s was marked stuck (any thread). */
int watchdog_is_stuck(const wd_slot *s);

/* Slots marked stuck so far (any thread). */
unsigned watchdog_stuck_count(void);

/* Writes a short description of the stuck slots into out ("" when none). */
void watchdog_describe_stuck(char *out, size_t n);

#endif
