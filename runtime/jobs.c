#include "jobs.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct job {
    loop *lp;
    void (*work)(void *arg);
    void (*done)(void *arg);
    void *arg;
    int started;
    struct job *prev, *next; /* in the queue while waiting, then in the running list */
    char key[JOBS_KEY_MAX + 1];
    int has_key;
};

/* A doubly linked list, so that a cancelled job leaves the queue in O(1). */
typedef struct job_list {
    job *head, *tail;
} job_list;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static job_list queued, running;
static unsigned npending;
static unsigned started;
static unsigned cfg_threads = 2, cfg_max_pending = 32, cfg_max_per_key = 2;

static void list_push(job_list *l, job *j)
{
    j->next = NULL;
    j->prev = l->tail;
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
}

static void list_remove(job_list *l, job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        l->head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        l->tail = j->prev;
    j->prev = j->next = NULL;
}

/* Jobs of list l whose key equals key; the bounds keep the lists short. */
static unsigned count_key(const job_list *l, const char *key)
{
    unsigned n = 0;
    for (const job *j = l->head; j; j = j->next)
        if (j->has_key && strcmp(j->key, key) == 0)
            n++;
    return n;
}

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
        while (!queued.head)
            pthread_cond_wait(&cv, &mu);
        job *j = queued.head;
        list_remove(&queued, j);
        j->started = 1;
        list_push(&running, j);
        pthread_mutex_unlock(&mu);

        j->work(j->arg);

        pthread_mutex_lock(&mu);
        list_remove(&running, j);
        npending--;
        pthread_mutex_unlock(&mu);
        loop_post(j->lp, job_done, j);
    }
    return NULL;
}

void jobs_configure(unsigned threads, unsigned max_pending, unsigned max_per_key)
{
    pthread_mutex_lock(&mu);
    if (!started) {
        cfg_threads = threads ? threads : 1;
        cfg_max_pending = max_pending ? max_pending : 1;
        cfg_max_per_key = max_per_key ? max_per_key : 1;
    }
    pthread_mutex_unlock(&mu);
}

/* Starts the threads once; called with mu held. */
static void start_threads(void)
{
    if (started)
        return;
    started = cfg_threads;
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

job *jobs_submit(loop *lp, const char *key, void (*work)(void *arg), void (*done)(void *arg),
                 void *arg, int *why)
{
    job *j = xcalloc(1, sizeof *j);
    j->lp = lp;
    j->work = work;
    j->done = done;
    j->arg = arg;
    if (key) {
        size_t n = strlen(key);
        if (n > JOBS_KEY_MAX)
            n = JOBS_KEY_MAX;
        memcpy(j->key, key, n);
        j->key[n] = '\0';
        j->has_key = 1;
    }
    pthread_mutex_lock(&mu);
    start_threads();
    int refused = 0;
    if (npending >= cfg_max_pending)
        refused = JOBS_FULL;
    else if (j->has_key &&
             count_key(&queued, j->key) + count_key(&running, j->key) >= cfg_max_per_key)
        refused = JOBS_KEY_FULL;
    if (refused) {
        pthread_mutex_unlock(&mu);
        free(j);
        if (why)
            *why = refused;
        return NULL;
    }
    npending++;
    loop_hold(lp);
    list_push(&queued, j);
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    return j;
}

int jobs_cancel(job *j)
{
    pthread_mutex_lock(&mu);
    if (j->started) {
        pthread_mutex_unlock(&mu);
        return 0;
    }
    list_remove(&queued, j);
    npending--;
    pthread_mutex_unlock(&mu);
    loop_unhold(j->lp);
    free(j);
    return 1;
}

unsigned jobs_pending(void)
{
    pthread_mutex_lock(&mu);
    unsigned n = npending;
    pthread_mutex_unlock(&mu);
    return n;
}
