/*
 * glasgow: one binary, several subcommands: serve, check DIR, run FILE
 * [ARGS], migrate [DIR], version (and help); `usage` below says what each
 * does.
 */
#include <errno.h>
#include <execinfo.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin.h"
#include "bundle.h"
#include "config.h"
#include "httpd.h"
#include "lhost.h"
#include "log.h"
#include "metrics.h"
#include "reload.h"
#include "service.h"
#include "tls.h"
#include "util.h"
#include "watchdog.h"
#include "worker.h"

#define GLASGOW_VERSION "0.1.0"
#define EXIT_STUCK 70      /* EX_SOFTWARE: a thread was stuck; restart the process */
#define JOIN_SLACK_MS 3000 /* past the grace: answers flush, job threads post back */

static const char usage[] =
    "usage: glasgow serve            serve the API (configured by GLASGOW_* variables)\n"
    "       glasgow check DIR        load a routes bundle as a reload would; exit 1 on error\n"
    "       glasgow run FILE [ARGS]  run a Lua script with the same library and bindings\n"
    "       glasgow migrate [DIR]    apply pending migrations (default ./migrations)\n"
    "       glasgow gc [--min-age S] [--dry-run]\n"
    "                                remove stale uploads, orphan objects, old tokens\n"
    "       glasgow version\n";

static const char *env(const char *name)
{
    return getenv(name);
}

static int has_app(const char *dir)
{
    char path[PATH_MAX + 64];
    struct stat st;
    snprintf(path, sizeof path, "%.4000s/glasgow/app.lua", dir);
    return stat(path, &st) == 0;
}

/* GLASGOW_LUA_PATH, else lua/ beside the binary (build tree or install). */
static void lua_path(const config *cfg, char *out, size_t n)
{
    if (cfg->lua_path[0]) {
        snprintf(out, n, "%s", cfg->lua_path);
        return;
    }
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    const char *dir = NULL;
    char cand[2][PATH_MAX];
    if (len > 0) {
        exe[len] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        if (strlen(exe) > PATH_MAX - 32)
            exe[0] = '\0';
        snprintf(cand[0], sizeof cand[0], "%.4000s/../lua", exe);
        snprintf(cand[1], sizeof cand[1], "%.4000s/../share/glasgow/lua", exe);
        for (int i = 0; i < 2 && !dir; i++)
            if (has_app(cand[i]))
                dir = cand[i];
    }
    if (!dir)
        dir = "./lua";
    snprintf(
        out, n,
        "%.4000s/?.lua;%.4000s/?/init.lua;/usr/share/lua/5.1/?.lua;/usr/share/lua/5.1/?/init.lua",
        dir, dir);
}

static lhost_opts opts_of(const config *cfg, const char *lp)
{
    return (lhost_opts){lp,
                        cfg->max_json_depth,
                        cfg->max_body_bytes,
                        cfg->lua_memory_limit,
                        cfg->lua_run_limit_ms,
                        cfg->load_timeout_ms};
}

/* The shortest budget serve gives code (the watchdog's idle sleep follows it). */
static unsigned shortest_limit(const config *cfg)
{
    unsigned m = cfg->request_timeout_ms;
    if (cfg->lua_run_limit_ms && cfg->lua_run_limit_ms < m)
        m = cfg->lua_run_limit_ms;
    if (cfg->load_timeout_ms < m)
        m = cfg->load_timeout_ms;
    return m;
}

/* glasgow check: code that no hook can stop (a long C call) at the top
 * level of a route file still ends the check, naming the file. */
static int check_stuck(const char *thread, const char *what, uint64_t overdue_ms)
{
    (void)thread;
    fprintf(stderr,
            "glasgow check: %s: loading did not finish (stuck in a C function %llu ms past the "
            "load timeout)\n",
            what ? what : "routes", (unsigned long long)overdue_ms);
    _exit(1);
}

static void load_config(config *cfg)
{
    char err[512];
    if (config_load(cfg, env, err, sizeof err) < 0)
        die("%s", err);
    log_set_level(cfg->log_level);
    lhost_set_auth_limits(&cfg->auth);
    if (services_configure(cfg, env, err, sizeof err) < 0)
        die("%s", err);
}

static int cmd_check(int argc, char **argv)
{
    config cfg;
    char lp[PATH_MAX * 2 + 200];
    char err[1024];
    if (argc != 1) {
        fputs(usage, stderr);
        return 2;
    }
    load_config(&cfg);
    lua_path(&cfg, lp, sizeof lp);
    lhost_opts o = opts_of(&cfg, lp);
    watchdog_slot("check");
    lhost_watchdog_start(check_stuck, cfg.stuck_grace_ms, cfg.load_timeout_ms);
    bundle *b = bundle_read(argv[0], err, sizeof err);
    if (!b) {
        fprintf(stderr, "glasgow check: %s\n", err);
        return 1;
    }
    lhost_gen *g = lhost_gen_create(b, &o, 1, err, sizeof err);
    if (!g) {
        fprintf(stderr, "glasgow check: %s\n", err);
        bundle_free(b);
        return 1;
    }
    printf("ok: %zu files, %zu routes, hash %s\n", b->nfiles, lhost_gen_route_count(g), b->hash);
    lhost_gen_unref(g);
    bundle_free(b);
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    config cfg;
    char lp[PATH_MAX * 2 + 200];
    if (argc < 1) {
        fputs(usage, stderr);
        return 2;
    }
    load_config(&cfg);
    lua_path(&cfg, lp, sizeof lp);
    lhost_opts o = opts_of(&cfg, lp);
    return lhost_run_script(&o, argv[0], NULL, argc - 1, argv + 1);
}

/* glasgow migrate [DIR]: applies migrations/ (see lua/glasgow/migrate.lua). */
static int cmd_migrate(int argc, char **argv)
{
    config cfg;
    char lp[PATH_MAX * 2 + 200];
    if (argc > 1) {
        fputs(usage, stderr);
        return 2;
    }
    load_config(&cfg);
    if (!services_enabled("database"))
        die("DATABASE_URL: not set (migrate needs a database)");
    lua_path(&cfg, lp, sizeof lp);
    lhost_opts o = opts_of(&cfg, lp);
    return lhost_run_script(&o, "=glasgow migrate", "return require('glasgow.migrate').main(...)",
                            argc, argv);
}

/* glasgow gc [--min-age SECONDS] [--dry-run]: removes what uploads,
 * deletions and logins leave behind (see lua/glasgow/gc.lua); safe while
 * the server runs. */
static int cmd_gc(int argc, char **argv)
{
    config cfg;
    char lp[PATH_MAX * 2 + 200];
    load_config(&cfg);
    if (!services_enabled("database"))
        die("DATABASE_URL: not set (gc needs a database)");
    lua_path(&cfg, lp, sizeof lp);
    lhost_opts o = opts_of(&cfg, lp);
    return lhost_run_script(&o, "=glasgow gc", "return require('glasgow.gc').main(...)", argc,
                            argv);
}

/* Set when a thread is stuck where no hook reaches: the process drains
 * and exits with this status so that its orchestrator restarts it. */
static atomic_int exit_status;

static int serve_stuck(const char *thread, const char *what, uint64_t overdue_ms)
{
    if (!strcmp(thread, "reload")) {
        /* Exiting would not help: a restart loads the same bundle at
         * start-up and sticks there. The serving generation stays. */
        log_msg(LOG_ERROR, NULL,
                "routes reload is stuck loading %s (%llu ms past the load timeout, in code no "
                "hook can stop); the serving generation stays, no further reload happens until "
                "the process restarts: fix the bundle, then restart",
                what ? what : "the bundle", (unsigned long long)overdue_ms);
        atomic_fetch_add(&metrics.reload_failure, 1);
        return 0;
    }
    if (!strcmp(thread, "main")) { /* start-up: nothing serves yet, nothing to drain */
        log_msg(LOG_ERROR, NULL,
                "start-up is stuck loading %s (%llu ms past the load timeout, in code no hook "
                "can stop); exiting",
                what ? what : "the routes bundle", (unsigned long long)overdue_ms);
        _exit(EXIT_STUCK);
    }
    log_msg(LOG_ERROR, NULL,
            "%s is stuck (%s, %llu ms past its deadline, in code no hook can stop): /livez "
            "reports it; draining and exiting for a restart",
            thread, what ? what : "Lua code", (unsigned long long)overdue_ms);
    if (atomic_exchange(&exit_status, EXIT_STUCK) == 0)
        kill(getpid(), SIGTERM);
    return 1;
}

/* A fatal signal (a crash): one line naming it and the call stack, as
 * "binary(+offset)" frames that addr2line -f -e build/glasgow resolves,
 * on stderr, then the default action (a core dump where enabled). Only
 * async-signal-safe calls: write, backtrace_symbols_fd, and backtrace,
 * whose first call (which may load libgcc) is made at start-up. Not in
 * sanitizer builds: their own handler reports more. */
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_UNDEFINED__)
static void on_fatal_signal(int sig)
{
    static const char head[] = "glasgow: fatal signal ";
    char num[4] = {(char)('0' + sig / 10 % 10), (char)('0' + sig % 10), '\n', 0};
    const char *digits = sig < 10 ? num + 1 : num;
    void *frames[64];
    if (write(STDERR_FILENO, head, sizeof head - 1) < 0 ||
        write(STDERR_FILENO, digits, strlen(digits)) < 0) {
        /* nothing more can be said */
    }
    int n = backtrace(frames, 64);
    backtrace_symbols_fd(frames, n, STDERR_FILENO);
    signal(sig, SIG_DFL);
    raise(sig);
}
#endif

static void report_crashes(void)
{
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_UNDEFINED__)
    void *warm[2];
    (void)backtrace(warm, 2);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = (int)SA_RESETHAND;
    static const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
        sigaction(fatal[i], &sa, NULL);
#endif
}

static int cmd_serve(void)
{
    static config cfg;
    static char lp[PATH_MAX * 2 + 200];
    char err[1024];
    sigset_t sigs;

    load_config(&cfg);
    report_crashes();
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* every thread inherits the mask */

    lua_path(&cfg, lp, sizeof lp);
    static lhost_opts opts;
    opts = opts_of(&cfg, lp);
    watchdog_slot("main");
    lhost_watchdog_start(serve_stuck, cfg.stuck_grace_ms, shortest_limit(&cfg));

    int tls = cfg.tls_cert_file[0] != '\0';
    services_metrics_init();
    if (tls && tls_load(cfg.tls_cert_file, cfg.tls_key_file, err, sizeof err) < 0)
        die("GLASGOW_TLS_CERT_FILE: %s", err);

    if (bundle_looks_like_subpath(cfg.routes_dir))
        log_msg(LOG_WARN, NULL,
                "%s looks like a subPath mount, which Kubernetes never updates; "
                "mount the routes ConfigMap as a whole directory for hot reload",
                cfg.routes_dir);
    bundle *b = bundle_read(cfg.routes_dir, err, sizeof err);
    if (!b)
        die("GLASGOW_ROUTES_DIR: %s", err);
    lhost_gen **gens = xcalloc(cfg.workers, sizeof *gens);
    if (reload_build(b, &opts, 1, gens, cfg.workers, err, sizeof err) < 0)
        die("routes: %s", err);
    atomic_store(&metrics.routes_generation, 1);
    metrics_set_routes_hash(b->hash);

    int lfd = httpd_listen(&cfg.listen, "GLASGOW_LISTEN", err, sizeof err);
    if (lfd < 0)
        die("%s", err);
    int afd = httpd_listen(&cfg.admin_listen, "GLASGOW_ADMIN_LISTEN", err, sizeof err);
    if (afd < 0)
        die("%s", err);

    worker **workers = xcalloc(cfg.workers, sizeof *workers);
    for (unsigned i = 0; i < cfg.workers; i++) {
        workers[i] = worker_create(i, &cfg, lfd, tls, gens[i], err, sizeof err);
        if (!workers[i])
            die("%s", err);
    }
    free(gens);
    if (admin_start(afd) < 0)
        die("GLASGOW_ADMIN_LISTEN: cannot start the admin listener");
    for (unsigned i = 0; i < cfg.workers; i++)
        worker_start(workers[i]);
    reloader *rl = reloader_create(&cfg, &opts, workers, cfg.workers, b->hash, 2);
    reloader_start(rl);
    char services[1024];
    services_describe(services, sizeof services);
    log_msg(
        LOG_INFO, NULL,
        "glasgow %s serving %s on %s (admin %s), %u workers, routes %s (%zu files, hash %.12s), "
        "%s",
        GLASGOW_VERSION, tls ? "https" : "http", cfg.listen.text, cfg.admin_listen.text,
        cfg.workers, cfg.routes_dir, b->nfiles, b->hash, services);
    bundle_free(b);

    siginfo_t si;
    int sig;
    memset(&si, 0, sizeof si);
    while ((sig = sigwaitinfo(&sigs, &si)) < 0) {
    }
    atomic_store(&metrics.draining, 1);
    int status = atomic_load(&exit_status);
    /* who sent it: an orchestrator, a script, or this process (stuck) */
    char from[48] = "";
    if (si.si_code == SI_USER || si.si_code == SI_QUEUE)
        snprintf(from, sizeof from, " from pid %ld", (long)si.si_pid);
    log_msg(LOG_INFO, NULL, "%s%s: draining (grace %u ms, %ld requests in flight)",
            status           ? "stuck thread"
            : sig == SIGTERM ? "SIGTERM received"
                             : "SIGINT received",
            status ? "" : from, cfg.shutdown_grace_ms, atomic_load(&metrics.in_flight));
    /* Lua code still running at the end of the grace is stopped by the
     * watchdog; what even that cannot stop is left behind at exit. */
    uint64_t grace_end = loop_clock_ms() + cfg.shutdown_grace_ms;
    watchdog_set_shutdown_deadline(watchdog_now_us() + (uint64_t)cfg.shutdown_grace_ms * 1000u);
    for (unsigned i = 0; i < cfg.workers; i++)
        worker_drain(workers[i], cfg.shutdown_grace_ms);
    /* each worker closes its own copy when it quiesces; once this one goes
     * too the kernel refuses new connections instead of queueing them */
    close(lfd);
    int abandoned = 0;
    for (unsigned i = 0; i < cfg.workers; i++)
        if (worker_join(workers[i], grace_end + JOIN_SLACK_MS) < 0) {
            log_msg(LOG_ERROR, NULL, "worker %u did not stop within the grace period", i);
            abandoned = 1;
        }
    if (!abandoned && reloader_stop(rl, grace_end + JOIN_SLACK_MS) < 0) {
        log_msg(LOG_ERROR, NULL, "the routes reload thread did not stop within the grace period");
        abandoned = 1;
    }
    if (abandoned || status) {
        log_msg(LOG_ERROR, NULL, "exiting with status %d without waiting for stuck threads",
                EXIT_STUCK);
        _exit(EXIT_STUCK);
    }
    admin_stop();
    free(workers);
    watchdog_stop();
    log_msg(LOG_INFO, NULL, "stopped");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    if (!strcmp(argv[1], "serve"))
        return cmd_serve();
    if (!strcmp(argv[1], "check"))
        return cmd_check(argc - 2, argv + 2);
    if (!strcmp(argv[1], "run"))
        return cmd_run(argc - 2, argv + 2);
    if (!strcmp(argv[1], "migrate"))
        return cmd_migrate(argc - 2, argv + 2);
    if (!strcmp(argv[1], "gc"))
        return cmd_gc(argc - 2, argv + 2);
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        printf("glasgow %s\n", GLASGOW_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, stdout);
        return 0;
    }
    fprintf(stderr, "glasgow: unknown command '%s'\n%s", argv[1], usage);
    return 2;
}
