/*
 * pglisten: a LISTEN connection driven by the loop, with pings and
 * reconnects.
 */
#include "pglisten.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "log.h"
#include "util.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

enum {
    ST_WAIT,       /* no connection; the timer starts the next attempt */
    ST_CONNECTING, /* PQconnectPoll in progress */
    ST_LISTENING,  /* LISTEN sent, its answer not yet read */
    ST_UP,         /* LISTEN confirmed */
};

struct pglisten {
    loop *lp;
    pglisten_config cfg; /* strings owned below */
    char *conninfo, *channel, *appname, *check_failed;
    char *listen_sql; /* LISTEN, then the check query if any */
    pglisten_callbacks cbs;
    PGconn *pg;
    loop_io io;
    int io_fd;
    uint32_t io_events;
    loop_timer timer;
    int state;
    int awaiting; /* a statement was sent and its results are not all read */
    int pinging;
    int fatal;     /* the server said FATAL or PANIC: it is closing the connection */
    int has_check; /* a check query follows the LISTEN */
    int check_ok;  /* it answered true */
    unsigned backoff_ms;
    int failing;           /* the last attempt failed and was logged: log the next success */
    char last_logged[256]; /* the failure logged last: the same one is not repeated */
    uint64_t connects, losses;
    uint64_t read_us; /* when the socket was last read (loop_clock_us) */
};

static void start_connect(pglisten *l);
static void lost(pglisten *l, const char *why);

static int plain_identifier(const char *s)
{
    if (!s || !((*s >= 'a' && *s <= 'z') || *s == '_'))
        return 0;
    size_t n = 0;
    for (; *s; s++, n++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return n < 64;
}

/* The server's errors and notices outside a statement come here; a FATAL
 * one (pg_terminate_backend, a shutdown) announces the connection's end, so
 * nothing after it can be trusted even before the socket closes. */
static void on_notice(void *arg, const PGresult *res)
{
    pglisten *l = arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    if (sev && (!strcmp(sev, "FATAL") || !strcmp(sev, "PANIC")))
        l->fatal = 1;
}

static void on_io(loop *lp, loop_io *io, uint32_t events);

static void watch(pglisten *l, uint32_t events)
{
    int fd = l->pg ? PQsocket(l->pg) : -1;
    if (fd != l->io_fd) {
        if (l->io_fd >= 0)
            loop_io_del(l->lp, &l->io);
        l->io_fd = -1;
        if (fd < 0)
            return;
        /* a priority watcher: a notification that had reached the socket
         * when the loop read its batch is applied before any request of
         * that batch runs (pglisten.h) */
        if (loop_io_add_first(l->lp, &l->io, fd, events, on_io, l) == 0) {
            l->io_fd = fd;
            l->io_events = events;
        }
        return;
    }
    if (fd >= 0 && events != l->io_events && loop_io_mod(l->lp, &l->io, events) == 0)
        l->io_events = events;
}

/* Sends sql; returns 0, or -1 when the connection failed. */
static int send_sql(pglisten *l, const char *sql)
{
    if (!PQsendQuery(l->pg, sql))
        return -1;
    l->awaiting = 1;
    int r = PQflush(l->pg);
    if (r < 0)
        return -1;
    watch(l, r ? EPOLLIN | EPOLLOUT : EPOLLIN);
    return 0;
}

/* A statement's results are all read. */
static void statement_done(pglisten *l)
{
    if (l->state == ST_LISTENING) {
        if (l->has_check && !l->check_ok) {
            lost(l, l->check_failed);
            return;
        }
        l->state = ST_UP;
        l->connects++;
        l->backoff_ms = 0;
        if (l->failing) {
            log_msg(LOG_INFO, NULL, "%s: listening again", l->appname);
            l->failing = 0;
            l->last_logged[0] = '\0';
        }
        loop_timer_start(l->lp, &l->timer, l->cfg.ping_interval_ms);
        l->cbs.on_state(l->cbs.data, 1);
    } else if (l->pinging) {
        l->pinging = 0;
        loop_timer_start(l->lp, &l->timer, l->cfg.ping_interval_ms);
    }
}

/*
 * Processes what libpq has buffered: results of the outstanding statement,
 * then notifications. Returns 0, or -1 with the connection lost (already
 * torn down and reported).
 */
static int process(pglisten *l)
{
    while (l->awaiting && !PQisBusy(l->pg)) {
        PGresult *res = PQgetResult(l->pg);
        if (!res) {
            l->awaiting = 0;
            statement_done(l);
            break;
        }
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_TUPLES_OK && l->state == ST_LISTENING)
            l->check_ok =
                PQntuples(res) == 1 && PQnfields(res) >= 1 && !strcmp(PQgetvalue(res, 0, 0), "t");
        PQclear(res);
        if (st != PGRES_COMMAND_OK && st != PGRES_EMPTY_QUERY && st != PGRES_TUPLES_OK) {
            lost(l, l->state == ST_LISTENING ? "LISTEN or its check refused" : "ping failed");
            return -1;
        }
    }
    PGnotify *n;
    int delivered = 0;
    /* PQnotifies also parses what PQconsumeInput read, so a FATAL message
     * reaches on_notice here at the latest */
    while (l->pg && (n = PQnotifies(l->pg)) != NULL) {
        if (l->state == ST_UP)
            l->cbs.on_notify(l->cbs.data, n->extra);
        PQfreemem(n);
        delivered++;
    }
    if (l->fatal || PQstatus(l->pg) != CONNECTION_OK) {
        lost(l, "the server ended the connection");
        return -1;
    }
    return delivered;
}

/* Reads without waiting and processes; returns the notifications
 * delivered, or -1 (lost). */
static int read_and_process(pglisten *l)
{
    l->read_us = loop_clock_us();
    if (!PQconsumeInput(l->pg)) {
        lost(l, PQerrorMessage(l->pg));
        return -1;
    }
    return process(l);
}

/*
 * Reads and processes until the socket holds nothing more: libpq reads
 * one buffer (16 KiB at first) per call, and a burst of notifications (a
 * mass revocation) may be longer. Each read that delivered some is
 * followed by another, which costs one recv only when notifications came.
 * Bounded, so that a flood cannot keep the loop from its other watchers;
 * what is left is read at the start of the next batch.
 */
static void drain(pglisten *l)
{
    for (int i = 0; i < 64; i++)
        if (read_and_process(l) <= 0)
            return;
}

static void connect_step(pglisten *l)
{
    switch (PQconnectPoll(l->pg)) {
    case PGRES_POLLING_READING: watch(l, EPOLLIN); break;
    case PGRES_POLLING_WRITING: watch(l, EPOLLOUT); break;
    case PGRES_POLLING_OK:
        PQsetNoticeReceiver(l->pg, on_notice, l);
        l->state = ST_LISTENING;
        if (PQsetnonblocking(l->pg, 1) != 0 || send_sql(l, l->listen_sql) < 0)
            lost(l, PQerrorMessage(l->pg));
        break;
    default: lost(l, PQerrorMessage(l->pg)); break;
    }
}

static void on_io(loop *lp, loop_io *io, uint32_t events)
{
    pglisten *l = io->data;
    (void)lp;
    if (l->state == ST_CONNECTING) {
        connect_step(l);
        return;
    }
    if (!l->pg)
        return;
    if (events & EPOLLOUT) {
        int r = PQflush(l->pg);
        if (r < 0) {
            lost(l, PQerrorMessage(l->pg));
            return;
        }
        if (r == 0)
            watch(l, EPOLLIN);
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        drain(l);
}

static void on_timer(loop *lp, loop_timer *t)
{
    pglisten *l = t->data;
    (void)lp;
    switch (l->state) {
    case ST_WAIT: start_connect(l); break;
    case ST_CONNECTING:
    case ST_LISTENING: lost(l, "connecting took too long"); break;
    case ST_UP:
        if (l->pinging) {
            /* the answer may be waiting in the socket behind a long batch
             * (timers run after the batch's events): read before judging */
            drain(l);
            if (l->state == ST_UP && l->pinging)
                lost(l, "the server did not answer a ping in time");
        } else if (send_sql(l, "") < 0) {
            lost(l, PQerrorMessage(l->pg));
        } else {
            l->pinging = 1;
            loop_timer_start(l->lp, &l->timer, l->cfg.ping_timeout_ms);
        }
        break;
    default: break;
    }
}

/* Tears the connection down, reports a loss of an up connection, and
 * schedules the next attempt. */
static void lost(pglisten *l, const char *why)
{
    int was_up = l->state == ST_UP;
    char msg[256];
    snprintf(msg, sizeof msg, "%s", why && *why ? why : "connection failed");
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    if (l->io_fd >= 0)
        loop_io_del(l->lp, &l->io);
    l->io_fd = -1;
    if (l->pg)
        PQfinish(l->pg);
    l->pg = NULL;
    l->state = ST_WAIT;
    l->awaiting = l->pinging = l->fatal = l->check_ok = 0;
    l->backoff_ms = l->backoff_ms ? l->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (l->backoff_ms > BACKOFF_MAX_MS)
        l->backoff_ms = BACKOFF_MAX_MS;
    if (was_up || !l->failing || strcmp(msg, l->last_logged) != 0)
        log_msg(LOG_WARN, NULL, "%s: %s (retrying in %u ms)", l->appname, msg, l->backoff_ms);
    memcpy(l->last_logged, msg, sizeof msg);
    l->failing = 1;
    loop_timer_start(l->lp, &l->timer, l->backoff_ms);
    if (was_up) {
        l->losses++;
        l->cbs.on_state(l->cbs.data, 0);
    }
}

static void start_connect(pglisten *l)
{
    char timeout[16];
    unsigned secs = (l->cfg.connect_timeout_ms + 999) / 1000;
    snprintf(timeout, sizeof timeout, "%u", secs < 2 ? 2 : secs);
    const char *const keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *vals[] = {l->conninfo, l->appname, timeout, NULL};
    l->state = ST_CONNECTING;
    l->pg = PQconnectStartParams(keys, vals, 1);
    if (!l->pg)
        die("out of memory starting a database connection");
    if (PQstatus(l->pg) == CONNECTION_BAD) {
        lost(l, PQerrorMessage(l->pg));
        return;
    }
    loop_timer_start(l->lp, &l->timer, l->cfg.connect_timeout_ms);
    watch(l, EPOLLOUT);
}

pglisten *pglisten_create(loop *lp, const pglisten_config *cfg, const pglisten_callbacks *cbs)
{
    if (!plain_identifier(cfg->channel))
        return NULL;
    pglisten *l = xcalloc(1, sizeof *l);
    l->lp = lp;
    l->cfg = *cfg;
    l->conninfo = xstrdup(cfg->conninfo);
    l->channel = xstrdup(cfg->channel);
    l->appname = xstrdup(cfg->application_name ? cfg->application_name : "glasgow");
    size_t n = strlen(l->channel) + (cfg->check_sql ? strlen(cfg->check_sql) : 0) + 16;
    l->listen_sql = xmalloc(n);
    snprintf(l->listen_sql, n, "LISTEN %s;%s", l->channel, cfg->check_sql ? cfg->check_sql : "");
    l->check_failed = xstrdup(cfg->check_failed ? cfg->check_failed : "the check query failed");
    l->has_check = cfg->check_sql != NULL;
    /* the caller's strings, copied above */
    l->cfg.conninfo = l->cfg.channel = l->cfg.application_name = NULL;
    l->cfg.check_sql = l->cfg.check_failed = NULL;
    if (!l->cfg.connect_timeout_ms)
        l->cfg.connect_timeout_ms = 5000;
    if (!l->cfg.ping_interval_ms)
        l->cfg.ping_interval_ms = 1000;
    if (!l->cfg.ping_timeout_ms)
        l->cfg.ping_timeout_ms = 2000;
    l->cbs = *cbs;
    l->io_fd = -1;
    l->state = ST_WAIT;
    loop_timer_init(&l->timer, on_timer, l);
    loop_timer_start(lp, &l->timer, 0);
    return l;
}

void pglisten_destroy(pglisten *l)
{
    if (!l)
        return;
    loop_timer_stop(l->lp, &l->timer);
    if (l->io_fd >= 0)
        loop_io_del(l->lp, &l->io);
    if (l->pg)
        PQfinish(l->pg);
    free(l->conninfo);
    free(l->channel);
    free(l->appname);
    free(l->listen_sql);
    free(l->check_failed);
    free(l);
}

int pglisten_up(const pglisten *l)
{
    return l && l->state == ST_UP;
}

int pglisten_sync(pglisten *l, uint64_t max_age_us)
{
    if (!l || l->state != ST_UP)
        return 0;
    uint64_t now = loop_clock_us();
    if (now - l->read_us > max_age_us && now - loop_batch_us(l->lp) > max_age_us)
        drain(l);
    return l->state == ST_UP;
}

uint64_t pglisten_connects(const pglisten *l)
{
    return l ? l->connects : 0;
}

uint64_t pglisten_losses(const pglisten *l)
{
    return l ? l->losses : 0;
}
