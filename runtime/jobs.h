/*
 * jobs: a small process-wide pool of threads for work that would block an
 * event loop (password hashing). A job's work runs on a pool thread; its
 * completion runs back on the submitting loop's thread.
 *
 * The pool is bounded: at most max_pending jobs are queued or running at
 * once, and at most max_per_key of them for one key (the user or account a
 * job is for), so that one client cannot queue enough work to delay
 * everyone else's. A job whose submitter no longer wants it can be
 * cancelled while it waits; once started it runs to the end.
 */
#ifndef GLASGOW_JOBS_H
#define GLASGOW_JOBS_H

#include "loop.h"

typedef struct job job;

/* Why jobs_submit refused a job. */
enum { JOBS_FULL = 1, JOBS_KEY_FULL = 2 };

/* Longest key compared; a longer key is compared on its first bytes. */
enum { JOBS_KEY_MAX = 127 };

/*
 * Sets the number of threads and the bounds (each at least 1). Takes effect
 * only before the pool starts (the first jobs_submit); later calls change
 * nothing. Without it: 2 threads, 32 pending jobs, 2 per key.
 */
void jobs_configure(unsigned threads, unsigned max_pending, unsigned max_per_key);

/*
 * Queues work(arg) on a pool thread, then done(arg) on lp's thread, and
 * returns the job, a handle valid until done has run or jobs_cancel
 * succeeded. key (NULL for none, copied) names who the job is for. When the
 * pool already holds max_pending jobs, or max_per_key jobs with an equal
 * key, nothing is queued: returns NULL with *why set to JOBS_FULL or
 * JOBS_KEY_FULL, and arg stays the caller's. arg must stay valid until done
 * runs; done owns it then. lp is held (loop_hold) until done has run or the
 * job was cancelled, so its owner can wait for it before destroying the loop.
 */
job *jobs_submit(loop *lp, const char *key, void (*work)(void *arg), void (*done)(void *arg),
                 void *arg, int *why);

/*
 * On the submitting loop's thread, before done ran: removes j from the
 * queue if no thread has started it and returns 1 (done will never run;
 * arg is the caller's again). Returns 0 when j has started: it runs to the
 * end and done is still called.
 */
int jobs_cancel(job *j);

/* Jobs queued or running now (for tests and metrics). */
unsigned jobs_pending(void);

#endif
