#include "jobs.h"

#include <pthread.h>
#include <stdlib.h>

#include "util.h"

typedef struct job {
    loop *lp;
    void (*work)(void *arg);
    void (*done)(void *arg);
    void *arg;
    struct job *next;
} job;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static job *head, *tail;
static unsigned started;

/* Runs on the submitting loop's thread: the completion, then the release
 * of the hold that kept the loop alive for it. */
static void job_done(void *arg)
{
    job *j = arg;
    loop *lp = j->lp;
    j->done(j->arg);
    free(j);
    loop_unhold(lp);
}

static void *job_thread(void *unused)
{
    (void)unused;
    for (;;) {
        pthread_mutex_lock(&mu);
        while (!head)
            pthread_cond_wait(&cv, &mu);
        job *j = head;
        head = j->next;
        if (!head)
            tail = NULL;
        pthread_mutex_unlock(&mu);
        j->work(j->arg);
        loop_post(j->lp, job_done, j);
    }
    return NULL;
}

void jobs_init(unsigned n)
{
    pthread_mutex_lock(&mu);
    if (started) {
        pthread_mutex_unlock(&mu);
        return;
    }
    started = n ? n : 1;
    pthread_mutex_unlock(&mu);
    for (unsigned i = 0; i < started; i++) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, job_thread, NULL) != 0)
            die("cannot start a job thread");
        pthread_attr_destroy(&attr);
    }
}

void jobs_submit(loop *lp, void (*work)(void *arg), void (*done)(void *arg), void *arg)
{
    job *j = xmalloc(sizeof *j);
    j->lp = lp;
    j->work = work;
    j->done = done;
    j->arg = arg;
    j->next = NULL;
    loop_hold(lp);
    jobs_init(2);
    pthread_mutex_lock(&mu);
    if (tail)
        tail->next = j;
    else
        head = j;
    tail = j;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}
