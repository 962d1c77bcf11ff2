/*
 * worker: one thread per worker, running its loop and its httpd server
 * until drained.
 */
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "httpd.h"
#include "log.h"
#include "loop.h"
#include "service.h"
#include "util.h"
#include "watchdog.h"

struct worker {
    unsigned index;
    pthread_t thread;
    loop *lp;
    httpd *srv;
    _Atomic(wd_slot *) slot; /* the thread's watchdog slot */

    pthread_mutex_t mu; /* guards the fields below, written by other threads */
    lhost_gen *pending_gen;
    int drain_requested;
    unsigned grace_ms;

    int draining;
    uint64_t drain_deadline;
};

static void on_wake(loop *lp, void *data)
{
    worker *w = data;
    (void)lp;
    pthread_mutex_lock(&w->mu);
    lhost_gen *g = w->pending_gen;
    w->pending_gen = NULL;
    int drain = w->drain_requested && !w->draining;
    pthread_mutex_unlock(&w->mu);
    if (g) {
        httpd_use_gen(w->srv, g);
        log_msg(LOG_DEBUG, NULL, "worker %u: routes generation %llu active", w->index,
                (unsigned long long)lhost_gen_number(g));
    }
    if (drain) {
        w->draining = 1;
        w->drain_deadline = loop_now(w->lp) + w->grace_ms;
        httpd_quiesce(w->srv);
    }
    httpd_need_run(w->srv);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    char name[32];
    snprintf(name, sizeof name, "worker %u", w->index);
    atomic_store(&w->slot, watchdog_slot(name));
    lhost_thread_init(w->lp);
    services_thread_start(w->lp);
    for (;;) {
        int64_t wait = httpd_next_wait(w->srv);
        if (w->draining) {
            if (httpd_in_flight(w->srv) == 0 || loop_clock_ms() >= w->drain_deadline)
                break;
            if (wait < 0 || wait > 50)
                wait = 50;
        }
        loop_run_once(w->lp, wait);
        httpd_run(w->srv);
    }
    httpd_shutdown(w->srv);
    /* a job thread still hashing for an aborted request posts back here:
     * keep the loop alive until it has (scrypt takes ~100 ms) */
    uint64_t jobs_until = loop_clock_ms() + 2000;
    while (loop_holds(w->lp) > 0 && loop_clock_ms() < jobs_until)
        loop_run_once(w->lp, 10);
    services_thread_stop();
    httpd_flush_log(w->srv);
    return NULL;
}

worker *worker_create(unsigned index, const config *cfg, int listen_fd, int tls, lhost_gen *gen,
                      char *err, size_t errlen)
{
    worker *w = xcalloc(1, sizeof *w);
    w->index = index;
    pthread_mutex_init(&w->mu, NULL);
    w->lp = loop_create();
    if (!w->lp) {
        snprintf(err, errlen, "worker %u: event loop: %s", index, strerror(errno));
        return NULL;
    }
    w->srv = httpd_create(index, cfg, w->lp, listen_fd, tls, gen, err, errlen);
    if (!w->srv)
        return NULL;
    loop_on_wake(w->lp, on_wake, w);
    return w;
}

void worker_start(worker *w)
{
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
        die("cannot start worker thread %u", w->index);
}

void worker_publish(worker *w, lhost_gen *gen)
{
    pthread_mutex_lock(&w->mu);
    lhost_gen *superseded = w->pending_gen;
    w->pending_gen = gen;
    pthread_mutex_unlock(&w->mu);
    /* never adopted, so nothing on the worker refers to it */
    lhost_gen_unref(superseded);
    loop_wake(w->lp);
}

void worker_drain(worker *w, unsigned grace_ms)
{
    pthread_mutex_lock(&w->mu);
    w->drain_requested = 1;
    w->grace_ms = grace_ms;
    pthread_mutex_unlock(&w->mu);
    loop_wake(w->lp);
}

int worker_join(worker *w, uint64_t deadline_ms)
{
    if (deadline_ms) {
        /* poll: a thread the watchdog marked stuck will never be joined */
        while (pthread_tryjoin_np(w->thread, NULL) != 0) {
            if (watchdog_is_stuck(atomic_load(&w->slot)) || loop_clock_ms() >= deadline_ms)
                return -1; /* still running: w stays allocated, its thread may use it */
            struct timespec ts = {0, 10 * 1000000L};
            nanosleep(&ts, NULL);
        }
    } else {
        pthread_join(w->thread, NULL);
    }
    lhost_gen_unref(w->pending_gen);
    httpd_destroy(w->srv);
    loop_destroy(w->lp);
    pthread_mutex_destroy(&w->mu);
    free(w);
    return 0;
}

long worker_in_flight(const worker *w)
{
    return httpd_in_flight(w->srv);
}
