#include "reload.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "bundle.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "tls.h"
#include "util.h"
#include "watchdog.h"

struct reloader {
    const config *cfg;
    const lhost_opts *opts;
    worker **workers;
    unsigned n;
    pthread_t thread;
    int stopfd;
    int ifd;
    int routes_wd;
    char current_hash[65];
    char failed_hash[65]; /* last bad bundle, reported once */
    uint64_t next_gen;
    char tls_error[256];
};

int reload_build(const bundle *b, const lhost_opts *opts, uint64_t number, lhost_gen **gens,
                 unsigned n, char *err, size_t errlen)
{
    for (unsigned i = 0; i < n; i++) {
        gens[i] = lhost_gen_create(b, opts, number, err, errlen);
        if (!gens[i]) {
            for (unsigned j = 0; j < i; j++)
                lhost_gen_unref(gens[j]);
            return -1;
        }
    }
    return 0;
}

/* Watches the routes directory; re-adds the watch if the directory was replaced. */
static void watch_routes(reloader *rl)
{
    if (rl->routes_wd >= 0)
        inotify_rm_watch(rl->ifd, rl->routes_wd);
    rl->routes_wd = inotify_add_watch(rl->ifd, rl->cfg->routes_dir,
                                      IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                          IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF |
                                          IN_MOVE_SELF | IN_DONT_FOLLOW);
}

static void watch_dir_of(reloader *rl, const char *file)
{
    char copy[PATH_MAX];
    snprintf(copy, sizeof copy, "%s", file);
    inotify_add_watch(rl->ifd, dirname(copy),
                      IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_MODIFY | IN_DELETE);
}

static void check_routes(reloader *rl)
{
    char err[1024];
    bundle *b = bundle_read(rl->cfg->routes_dir, err, sizeof err);
    if (!b) {
        if (strcmp(rl->failed_hash, "unreadable") != 0) {
            log_msg(LOG_ERROR, NULL, "routes reload failed, still serving generation %llu: %s",
                    (unsigned long long)(rl->next_gen - 1), err);
            atomic_fetch_add(&metrics.reload_failure, 1);
            snprintf(rl->failed_hash, sizeof rl->failed_hash, "unreadable");
        }
        return;
    }
    if (!strcmp(b->hash, rl->current_hash) || !strcmp(b->hash, rl->failed_hash)) {
        bundle_free(b);
        return;
    }
    lhost_gen **gens = xcalloc(rl->n, sizeof *gens);
    uint64_t t0 = loop_clock_ms();
    if (reload_build(b, rl->opts, rl->next_gen, gens, rl->n, err, sizeof err) < 0) {
        strbuf extra;
        strbuf_init(&extra);
        strbuf_addf(&extra, ",\"hash\":\"%s\",\"error\":\"", b->hash);
        strbuf_add_json_escaped(&extra, err, strlen(err));
        strbuf_adds(&extra, "\"");
        log_msg(LOG_ERROR, extra.buf, "routes reload failed, still serving generation %llu: %s",
                (unsigned long long)(rl->next_gen - 1), err);
        strbuf_dispose(&extra);
        atomic_fetch_add(&metrics.reload_failure, 1);
        snprintf(rl->failed_hash, sizeof rl->failed_hash, "%s", b->hash);
        free(gens);
        bundle_free(b);
        return;
    }
    for (unsigned i = 0; i < rl->n; i++)
        worker_publish(rl->workers[i], gens[i]);
    free(gens);
    snprintf(rl->current_hash, sizeof rl->current_hash, "%s", b->hash);
    rl->failed_hash[0] = '\0';
    atomic_store(&metrics.routes_generation, rl->next_gen);
    atomic_fetch_add(&metrics.reload_success, 1);
    metrics_set_routes_hash(b->hash);
    log_msg(LOG_INFO, NULL,
            "routes generation %llu published: %zu files, hash %.12s, built in %llu ms",
            (unsigned long long)rl->next_gen, b->nfiles, b->hash,
            (unsigned long long)(loop_clock_ms() - t0));
    rl->next_gen++;
    bundle_free(b);
}

static void check_tls(reloader *rl)
{
    char err[256];
    if (!rl->cfg->tls_cert_file[0])
        return;
    int rc = tls_load(rl->cfg->tls_cert_file, rl->cfg->tls_key_file, err, sizeof err);
    if (rc == 1) {
        log_msg(LOG_INFO, NULL, "TLS certificate reloaded from %s", rl->cfg->tls_cert_file);
        rl->tls_error[0] = '\0';
    } else if (rc < 0 && strcmp(err, rl->tls_error) != 0) {
        /* mid-rotation the files may briefly disagree; the next check retries */
        log_msg(LOG_WARN, NULL, "TLS certificate not reloaded, keeping the current one: %s", err);
        snprintf(rl->tls_error, sizeof rl->tls_error, "%s", err);
    }
}

static void *reloader_main(void *arg)
{
    reloader *rl = arg;
    watchdog_slot("reload");
    uint64_t last_check = loop_clock_ms();
    uint64_t dirty_since = 0; /* 0: nothing pending */
    for (;;) {
        uint64_t now = loop_clock_ms();
        int64_t timeout = (int64_t)(last_check + rl->cfg->reload_interval_ms) - (int64_t)now;
        if (dirty_since) {
            int64_t t = (int64_t)(dirty_since + rl->cfg->reload_debounce_ms) - (int64_t)now;
            if (t < timeout)
                timeout = t;
        }
        if (timeout < 0)
            timeout = 0;
        struct pollfd pfd[2] = {{rl->ifd, POLLIN, 0}, {rl->stopfd, POLLIN, 0}};
        int n = poll(pfd, 2, (int)timeout);
        if (n < 0 && errno != EINTR)
            break;
        if (pfd[1].revents)
            break;
        if (n > 0 && (pfd[0].revents & POLLIN)) {
            char buf[8192];
            ssize_t got;
            int replaced = 0;
            while ((got = read(rl->ifd, buf, sizeof buf)) > 0) {
                for (char *p = buf; p < buf + got;) {
                    const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
                    if (ev->wd == rl->routes_wd &&
                        (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)))
                        replaced = 1;
                    p += sizeof *ev + ev->len;
                }
            }
            if (replaced)
                watch_routes(rl);
            /* debounce: wait until the burst of events is over */
            dirty_since = loop_clock_ms();
            continue;
        }
        now = loop_clock_ms();
        if ((dirty_since && now >= dirty_since + rl->cfg->reload_debounce_ms) ||
            now >= last_check + rl->cfg->reload_interval_ms) {
            dirty_since = 0;
            last_check = now;
            if (rl->routes_wd < 0)
                watch_routes(rl);
            check_routes(rl);
            check_tls(rl);
        }
    }
    return NULL;
}

reloader *reloader_create(const config *cfg, const lhost_opts *opts, worker **workers, unsigned n,
                          const char *current_hash, uint64_t first_gen)
{
    reloader *rl = xcalloc(1, sizeof *rl);
    rl->cfg = cfg;
    rl->opts = opts;
    rl->workers = workers;
    rl->n = n;
    rl->next_gen = first_gen;
    rl->routes_wd = -1;
    snprintf(rl->current_hash, sizeof rl->current_hash, "%s", current_hash);
    rl->stopfd = eventfd(0, EFD_CLOEXEC);
    rl->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (rl->stopfd < 0 || rl->ifd < 0)
        die_errno("reloader: eventfd/inotify");
    watch_routes(rl);
    if (rl->routes_wd < 0)
        log_msg(LOG_WARN, NULL, "cannot watch %s (%s); relying on the periodic re-hash",
                cfg->routes_dir, strerror(errno));
    if (cfg->tls_cert_file[0]) {
        watch_dir_of(rl, cfg->tls_cert_file);
        watch_dir_of(rl, cfg->tls_key_file);
    }
    return rl;
}

void reloader_start(reloader *rl)
{
    if (pthread_create(&rl->thread, NULL, reloader_main, rl) != 0)
        die("cannot start the reload thread");
}

int reloader_stop(reloader *rl, uint64_t deadline_ms)
{
    uint64_t one = 1;
    if (write(rl->stopfd, &one, sizeof one) < 0)
        log_msg(LOG_WARN, NULL, "reloader: cannot signal stop");
    while (pthread_tryjoin_np(rl->thread, NULL) != 0) {
        if (loop_clock_ms() >= deadline_ms)
            return -1; /* stuck in a load no hook can stop: rl stays with it */
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    close(rl->stopfd);
    close(rl->ifd);
    free(rl);
    return 0;
}
