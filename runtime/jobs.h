/*
 * jobs: a small process-wide pool of threads for work that would block an
 * event loop (password hashing). A job's work runs on a pool thread; its
 * completion runs back on the submitting loop's thread.
 */
#ifndef GLASGOW_JOBS_H
#define GLASGOW_JOBS_H

#include "loop.h"

/* Starts n threads on first use (later calls are no-ops). */
void jobs_init(unsigned n);

/* Queues work(arg) on a pool thread, then done(arg) on lp's thread. arg
 * must stay valid until done runs; done owns it then. lp is held
 * (loop_hold) until done has run, so its owner can wait for it before
 * destroying the loop. */
void jobs_submit(loop *lp, void (*work)(void *arg), void (*done)(void *arg), void *arg);

#endif
