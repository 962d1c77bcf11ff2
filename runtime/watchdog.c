#include "watchdog.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define MAX_SLOTS 128
#define RESIGNAL_US 50000        /* re-arm while still running: code may clear a hook */
#define SHUTDOWN_STUCK_US 500000 /* stuck grace once the shutdown deadline passed */

struct wd_slot {
    pthread_t thread;
    atomic_uint_fast64_t deadline_us;
    atomic_uint_fast64_t seq;
    _Atomic(const char *) what;
    _Atomic(watchdog_describe_fn) describe; /* instead of what when set */
    _Atomic(const void *) describe_arg;
    /* watchdog thread only */
    uint64_t signalled_seq;
    uint64_t signalled_us;
    uint64_t stuck_seq;
    atomic_int busy;
    atomic_int describing; /* the watchdog is inside describe(describe_arg) */
    atomic_int stuck;
    char name[32];
    char stuck_what[256]; /* name (32), description (160), overdue: room for all */
};

static wd_slot slots[MAX_SLOTS];
static atomic_uint nslots;
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local wd_slot *tl_slot;

static atomic_uint_fast64_t shutdown_deadline_us;
static atomic_uint stuck_count;

static pthread_mutex_t run_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t run_cv; /* on CLOCK_MONOTONIC, made by the first watchdog_start */
static int cv_made, running, stop_requested;
static int kicked; /* under run_mu: a sooner deadline came while the thread planned */
static pthread_t wd_thread;
static watchdog_interrupt_fn interrupt_fn;
static watchdog_stuck_fn stuck_fn;
static uint64_t grace_us;
static uint64_t tick_us; /* between looks while some slot is overdue */
static uint64_t idle_us; /* the longest sleep: see watchdog_start */
/* When the thread will next look at the slots (watchdog_now_us clock). A
 * thread that enters work due sooner wakes it (kick_if_sooner). */
static atomic_uint_fast64_t wake_at;
static atomic_uint_fast64_t wakeups;

uint64_t watchdog_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int wd_signal(void)
{
    return SIGRTMIN + 1;
}

/* Runs in the thread the watchdog signalled. Only the thread's own slot
 * is touched; the interrupt function must itself be async-signal-safe. */
static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    wd_slot *s = tl_slot;
    if (s && atomic_load_explicit(&s->busy, memory_order_acquire) && interrupt_fn)
        interrupt_fn(s);
    errno = saved;
}

/* The deadline that applies to s: its own or the shutdown's, the sooner. */
static uint64_t effective_deadline(const wd_slot *s)
{
    uint64_t d = atomic_load_explicit(&s->deadline_us, memory_order_relaxed);
    uint64_t sd = atomic_load_explicit(&shutdown_deadline_us, memory_order_relaxed);
    if (sd && (!d || sd < d))
        d = sd;
    return d;
}

/* Wakes the watchdog thread when deadline_us (0: none) comes before the
 * time it means to look next. The fence orders this thread's slot stores
 * before its read of wake_at, as the watchdog orders its store of wake_at
 * before it reads the slots again (watchdog_main): one of the two sees the
 * other, so no deadline is slept through. Work entered with a deadline
 * further off than the idle sleep (a request's run limit) never calls. */
static void kick_if_sooner(uint64_t deadline_us)
{
    if (!deadline_us)
        return;
    atomic_thread_fence(memory_order_seq_cst);
    if (deadline_us >= atomic_load(&wake_at))
        return;
    pthread_mutex_lock(&run_mu);
    kicked = 1;
    if (cv_made)
        pthread_cond_signal(&run_cv);
    pthread_mutex_unlock(&run_mu);
}

wd_slot *watchdog_slot(const char *name)
{
    if (tl_slot)
        return tl_slot;
    pthread_mutex_lock(&reg_mu);
    unsigned n = atomic_load(&nslots);
    if (n < MAX_SLOTS) {
        wd_slot *s = &slots[n];
        s->thread = pthread_self();
        snprintf(s->name, sizeof s->name, "%s", name ? name : "thread");
        atomic_store(&nslots, n + 1);
        tl_slot = s;
    }
    pthread_mutex_unlock(&reg_mu);
    return tl_slot;
}

void watchdog_begin(wd_slot *s, uint64_t deadline_us, const char *what)
{
    if (!s)
        return;
    atomic_store_explicit(&s->what, what, memory_order_relaxed);
    watchdog_begin_described(s, deadline_us, NULL, NULL);
}

void watchdog_begin_described(wd_slot *s, uint64_t deadline_us, watchdog_describe_fn describe,
                              const void *arg)
{
    if (!s)
        return;
    atomic_store_explicit(&s->describe, describe, memory_order_relaxed);
    atomic_store_explicit(&s->describe_arg, arg, memory_order_relaxed);
    atomic_store_explicit(&s->deadline_us, deadline_us, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->seq, 1, memory_order_relaxed);
    atomic_store_explicit(&s->busy, 1, memory_order_release);
    kick_if_sooner(effective_deadline(s));
}

void watchdog_set_what(wd_slot *s, const char *what)
{
    if (s)
        atomic_store_explicit(&s->what, what, memory_order_relaxed);
}

void watchdog_end(wd_slot *s)
{
    if (!s)
        return;
    /* after this the run's description may go (a request ends and is
     * freed): wait out a describe() the watchdog began while it was busy
     * (both sides store, then read the other's flag) */
    atomic_store(&s->busy, 0);
    while (atomic_load(&s->describing))
        sched_yield();
    atomic_store_explicit(&s->what, NULL, memory_order_relaxed);
}

int watchdog_expired(const wd_slot *s)
{
    if (!s || !atomic_load_explicit(&s->busy, memory_order_acquire))
        return 0;
    uint64_t d = effective_deadline(s);
    return d && watchdog_now_us() >= d;
}

uint64_t watchdog_deadline(const wd_slot *s)
{
    return s ? effective_deadline(s) : 0;
}

void watchdog_set_shutdown_deadline(uint64_t deadline_us)
{
    atomic_store(&shutdown_deadline_us, deadline_us);
    kick_if_sooner(deadline_us);
}

int watchdog_is_stuck(const wd_slot *s)
{
    return s && atomic_load(&((wd_slot *)s)->stuck);
}

unsigned watchdog_stuck_count(void)
{
    return atomic_load(&stuck_count);
}

void watchdog_describe_stuck(char *out, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
    unsigned k = atomic_load(&nslots);
    for (unsigned i = 0; i < k && used + 1 < n; i++) {
        wd_slot *s = &slots[i];
        if (!atomic_load(&s->stuck))
            continue;
        int w = snprintf(out + used, n - used, "%s%s", used ? "; " : "", s->stuck_what);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* One pass over the slots at time now. */
static void scan(uint64_t now)
{
    unsigned k = atomic_load(&nslots);
    for (unsigned i = 0; i < k; i++) {
        wd_slot *s = &slots[i];
        if (!atomic_load_explicit(&s->busy, memory_order_acquire))
            continue;
        uint64_t seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
        uint64_t d = effective_deadline(s);
        if (!d || now < d)
            continue;
        if (s->signalled_seq != seq || now - s->signalled_us >= RESIGNAL_US) {
            s->signalled_seq = seq;
            s->signalled_us = now;
            pthread_kill(s->thread, wd_signal());
        }
        /* once the shutdown deadline has passed, there is no time to wait */
        uint64_t sd = atomic_load_explicit(&shutdown_deadline_us, memory_order_relaxed);
        uint64_t g = sd && now >= sd && grace_us > SHUTDOWN_STUCK_US ? SHUTDOWN_STUCK_US : grace_us;
        if (s->stuck_seq != seq && now >= d + g) {
            s->stuck_seq = seq;
            /* the description of this very run, or none if it just ended
             * (watchdog_end waits while describing is set) */
            atomic_store(&s->describing, 1);
            int same_run = atomic_load(&s->busy) && atomic_load(&s->seq) == seq;
            const char *what = NULL;
            char described[160];
            if (same_run) {
                what = atomic_load_explicit(&s->what, memory_order_relaxed);
                watchdog_describe_fn describe =
                    atomic_load_explicit(&s->describe, memory_order_relaxed);
                if (describe) {
                    described[0] = '\0';
                    describe(atomic_load_explicit(&s->describe_arg, memory_order_relaxed),
                             described, sizeof described);
                    what = described;
                }
            }
            atomic_store(&s->describing, 0);
            if (!same_run)
                continue;
            uint64_t overdue_ms = (now - d) / 1000u;
            snprintf(s->stuck_what, sizeof s->stuck_what, "%s: %s, %llu ms past its deadline",
                     s->name, what ? what : "Lua code", (unsigned long long)overdue_ms);
            if ((!stuck_fn || stuck_fn(s, s->name, what, overdue_ms)) &&
                !atomic_exchange(&s->stuck, 1))
                atomic_fetch_add(&stuck_count, 1);
        }
    }
}

/* When to look next, at now: a busy slot's deadline, or every tick while
 * one is past it (to re-signal and to judge it stuck), else after the idle
 * sleep. */
static uint64_t plan(uint64_t now)
{
    uint64_t next = now + idle_us;
    unsigned k = atomic_load(&nslots);
    for (unsigned i = 0; i < k; i++) {
        wd_slot *s = &slots[i];
        if (!atomic_load(&s->busy))
            continue;
        uint64_t d = effective_deadline(s);
        uint64_t t = !d ? next : now < d ? d : now + tick_us;
        if (t < next)
            next = t;
    }
    return next;
}

/* Sleeps until next, or until kicked or stopped; run_mu held. */
static void sleep_until(uint64_t next)
{
    struct timespec ts = {(time_t)(next / 1000000u), (long)(next % 1000000u) * 1000L};
    while (!kicked && !stop_requested && watchdog_now_us() < next)
        if (pthread_cond_timedwait(&run_cv, &run_mu, &ts) == ETIMEDOUT)
            break;
    kicked = 0;
}

static void *watchdog_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&run_mu);
    while (!stop_requested) {
        pthread_mutex_unlock(&run_mu);
        uint64_t now = watchdog_now_us();
        scan(now);
        uint64_t next = plan(now);
        atomic_store(&wake_at, next);
        /* again after publishing it: a slot that entered work meanwhile
         * either shows here or saw wake_at (kick_if_sooner) */
        uint64_t again = plan(watchdog_now_us());
        if (again < next) {
            next = again;
            atomic_store(&wake_at, next);
        }
        pthread_mutex_lock(&run_mu);
        sleep_until(next);
        atomic_fetch_add_explicit(&wakeups, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&run_mu);
    return NULL;
}

uint64_t watchdog_wakeups(void)
{
    return atomic_load_explicit(&wakeups, memory_order_relaxed);
}

void watchdog_start(watchdog_interrupt_fn interrupt, watchdog_stuck_fn on_stuck,
                    unsigned stuck_grace_ms, unsigned tick_ms, unsigned idle_ms)
{
    pthread_mutex_lock(&run_mu);
    if (running) {
        pthread_mutex_unlock(&run_mu);
        return;
    }
    if (!cv_made) {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&run_cv, &ca);
        pthread_condattr_destroy(&ca);
        cv_made = 1;
    }
    interrupt_fn = interrupt;
    stuck_fn = on_stuck;
    grace_us = (uint64_t)stuck_grace_ms * 1000u;
    tick_us = (uint64_t)(tick_ms ? tick_ms : 10) * 1000u;
    idle_us = (uint64_t)idle_ms * 1000u;
    if (idle_us < tick_us)
        idle_us = tick_us;
    atomic_store(&wake_at, 0); /* nobody kicks before the first plan */
    kicked = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(wd_signal(), &sa, NULL) != 0)
        log_msg(LOG_ERROR, NULL, "watchdog: sigaction: %s", strerror(errno));
    stop_requested = 0;
    /* the watchdog itself never runs Lua: block its signal there */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    if (pthread_create(&wd_thread, NULL, watchdog_main, NULL) == 0)
        running = 1;
    else
        log_msg(LOG_ERROR, NULL, "watchdog: cannot start its thread");
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_mutex_unlock(&run_mu);
}

void watchdog_stop(void)
{
    pthread_mutex_lock(&run_mu);
    if (!running) {
        pthread_mutex_unlock(&run_mu);
        return;
    }
    stop_requested = 1;
    pthread_cond_signal(&run_cv);
    pthread_mutex_unlock(&run_mu);
    pthread_join(wd_thread, NULL);
    pthread_mutex_lock(&run_mu);
    running = 0;
    pthread_mutex_unlock(&run_mu);
}
