#include "metrics.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "watchdog.h"

metrics_global metrics;

#define NBUCKETS 12
static const double bucket_bounds[NBUCKETS] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                               0.25,  0.5,   1,    2.5,   5,    10};
#define MAX_WORKERS 256
#define MAX_COLLECTORS 8

typedef struct series {
    char *method;
    char *route;
    unsigned status;
    uint64_t count;
} series;

typedef struct histo {
    char *route;
    uint64_t buckets[NBUCKETS]; /* per bucket (le its bound, above the one before); cumulated
                                 * when rendered */
    uint64_t count;
    double sum;
} histo;

struct metrics_worker {
    pthread_mutex_t mu;
    series *series;
    size_t nseries, capseries;
    histo *histos;
    size_t nhistos, caphistos;
};

static metrics_worker *workers[MAX_WORKERS];
static atomic_size_t nworkers;
static metrics_collector collectors[MAX_COLLECTORS];
static size_t ncollectors;
static pthread_mutex_t hash_mu = PTHREAD_MUTEX_INITIALIZER;
static char routes_hash[80] = "";

metrics_worker *metrics_worker_create(void)
{
    metrics_worker *w = xcalloc(1, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    return w;
}

void metrics_worker_register(metrics_worker *w)
{
    size_t i = atomic_fetch_add(&nworkers, 1);
    if (i >= MAX_WORKERS)
        die("too many metrics workers");
    workers[i] = w;
}

void metrics_add_collector(metrics_collector fn)
{
    if (ncollectors < MAX_COLLECTORS)
        collectors[ncollectors++] = fn;
}

void metrics_set_routes_hash(const char *hex)
{
    pthread_mutex_lock(&hash_mu);
    strncpy(routes_hash, hex, sizeof routes_hash - 1);
    pthread_mutex_unlock(&hash_mu);
}

static const char *known_method(const char *m)
{
    static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(m, known[i]))
            return known[i];
    return "OTHER";
}

void metrics_observe(metrics_worker *w, const char *method, const char *route, unsigned status,
                     double seconds)
{
    const char *m = known_method(method);
    const char *r = route ? route : "unmatched";
    size_t i;

    pthread_mutex_lock(&w->mu);
    for (i = 0; i < w->nseries; i++) {
        series *s = &w->series[i];
        if (s->status == status && !strcmp(s->route, r) && !strcmp(s->method, m))
            break;
    }
    if (i == w->nseries) {
        if (w->nseries == w->capseries) {
            w->capseries = w->capseries ? w->capseries * 2 : 32;
            w->series = xrealloc(w->series, w->capseries * sizeof *w->series);
        }
        w->series[i] = (series){xstrdup(m), xstrdup(r), status, 0};
        w->nseries++;
    }
    w->series[i].count++;

    for (i = 0; i < w->nhistos; i++)
        if (!strcmp(w->histos[i].route, r))
            break;
    if (i == w->nhistos) {
        if (w->nhistos == w->caphistos) {
            w->caphistos = w->caphistos ? w->caphistos * 2 : 16;
            w->histos = xrealloc(w->histos, w->caphistos * sizeof *w->histos);
        }
        memset(&w->histos[i], 0, sizeof w->histos[i]);
        w->histos[i].route = xstrdup(r);
        w->nhistos++;
    }
    histo *h = &w->histos[i];
    for (int b = 0; b < NBUCKETS; b++)
        if (seconds <= bucket_bounds[b]) {
            h->buckets[b]++;
            break;
        }
    h->count++;
    h->sum += seconds;
    pthread_mutex_unlock(&w->mu);
}

/* Label values are escaped as the text format requires: backslash, quote, newline. */
static void add_label_value(strbuf *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            strbuf_addf(out, "\\%c", *v);
        else if (*v == '\n')
            strbuf_adds(out, "\\n");
        else
            strbuf_add(out, v, 1);
    }
}

static int series_cmp(const void *a, const void *b)
{
    const series *x = a, *y = b;
    int c = strcmp(x->route, y->route);
    if (c)
        return c;
    c = strcmp(x->method, y->method);
    if (c)
        return c;
    return (int)x->status - (int)y->status;
}

static int histo_cmp(const void *a, const void *b)
{
    return strcmp(((const histo *)a)->route, ((const histo *)b)->route);
}

/* Snapshots every worker's series into one merged, sorted array. */
static size_t merge_series(series **out)
{
    size_t n = 0, cap = 64;
    series *all = xmalloc(cap * sizeof *all);
    size_t nw = atomic_load(&nworkers);
    for (size_t wi = 0; wi < nw; wi++) {
        metrics_worker *w = workers[wi];
        pthread_mutex_lock(&w->mu);
        for (size_t i = 0; i < w->nseries; i++) {
            const series *s = &w->series[i];
            size_t j;
            for (j = 0; j < n; j++)
                if (all[j].status == s->status && !strcmp(all[j].route, s->route) &&
                    !strcmp(all[j].method, s->method))
                    break;
            if (j == n) {
                if (n == cap)
                    all = xrealloc(all, (cap *= 2) * sizeof *all);
                all[n++] = (series){xstrdup(s->method), xstrdup(s->route), s->status, 0};
            }
            all[j].count += s->count;
        }
        pthread_mutex_unlock(&w->mu);
    }
    qsort(all, n, sizeof *all, series_cmp);
    *out = all;
    return n;
}

static size_t merge_histos(histo **out)
{
    size_t n = 0, cap = 32;
    histo *all = xmalloc(cap * sizeof *all);
    size_t nw = atomic_load(&nworkers);
    for (size_t wi = 0; wi < nw; wi++) {
        metrics_worker *w = workers[wi];
        pthread_mutex_lock(&w->mu);
        for (size_t i = 0; i < w->nhistos; i++) {
            const histo *h = &w->histos[i];
            size_t j;
            for (j = 0; j < n; j++)
                if (!strcmp(all[j].route, h->route))
                    break;
            if (j == n) {
                if (n == cap)
                    all = xrealloc(all, (cap *= 2) * sizeof *all);
                memset(&all[n], 0, sizeof all[n]);
                all[n++].route = xstrdup(h->route);
            }
            for (int b = 0; b < NBUCKETS; b++)
                all[j].buckets[b] += h->buckets[b];
            all[j].count += h->count;
            all[j].sum += h->sum;
        }
        pthread_mutex_unlock(&w->mu);
    }
    qsort(all, n, sizeof *all, histo_cmp);
    *out = all;
    return n;
}

void metrics_render(strbuf *out)
{
    series *s;
    histo *h;
    size_t ns = merge_series(&s);
    size_t nh = merge_histos(&h);

    strbuf_adds(out, "# HELP http_requests_total Requests answered, by method, route template "
                     "and status.\n# TYPE http_requests_total counter\n");
    for (size_t i = 0; i < ns; i++) {
        strbuf_addf(out, "http_requests_total{method=\"%s\",route=\"", s[i].method);
        add_label_value(out, s[i].route);
        strbuf_addf(out, "\",status=\"%u\"} %llu\n", s[i].status, (unsigned long long)s[i].count);
        free(s[i].method);
        free(s[i].route);
    }
    free(s);

    strbuf_adds(out, "# HELP http_request_duration_seconds Time from full request to response, "
                     "by route template.\n# TYPE http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < nh; i++) {
        uint64_t below = 0;
        for (int b = 0; b < NBUCKETS; b++) {
            below += h[i].buckets[b];
            strbuf_adds(out, "http_request_duration_seconds_bucket{route=\"");
            add_label_value(out, h[i].route);
            strbuf_addf(out, "\",le=\"%g\"} %llu\n", bucket_bounds[b], (unsigned long long)below);
        }
        strbuf_adds(out, "http_request_duration_seconds_bucket{route=\"");
        add_label_value(out, h[i].route);
        strbuf_addf(out, "\",le=\"+Inf\"} %llu\n", (unsigned long long)h[i].count);
        strbuf_adds(out, "http_request_duration_seconds_sum{route=\"");
        add_label_value(out, h[i].route);
        strbuf_addf(out, "\"} %.6f\n", h[i].sum);
        strbuf_adds(out, "http_request_duration_seconds_count{route=\"");
        add_label_value(out, h[i].route);
        strbuf_addf(out, "\"} %llu\n", (unsigned long long)h[i].count);
        free(h[i].route);
    }
    free(h);

    char hash[80];
    pthread_mutex_lock(&hash_mu);
    memcpy(hash, routes_hash, sizeof hash);
    pthread_mutex_unlock(&hash_mu);

    strbuf_addf(
        out,
        "# HELP http_requests_in_flight Requests being handled now.\n"
        "# TYPE http_requests_in_flight gauge\nhttp_requests_in_flight %ld\n"
        "# HELP http_request_bytes_total Request body bytes received.\n"
        "# TYPE http_request_bytes_total counter\nhttp_request_bytes_total %llu\n"
        "# HELP http_response_bytes_total Response body bytes sent.\n"
        "# TYPE http_response_bytes_total counter\nhttp_response_bytes_total %llu\n"
        "# HELP http_connections_rejected_total Connections refused by the per-IP limit.\n"
        "# TYPE http_connections_rejected_total counter\n"
        "http_connections_rejected_total %llu\n"
        "# HELP http_header_timeouts_total Connections closed by the header timeout.\n"
        "# TYPE http_header_timeouts_total counter\nhttp_header_timeouts_total %llu\n"
        "# HELP http_slow_bodies_total Requests cut for a body slower than the minimum "
        "rate.\n# TYPE http_slow_bodies_total counter\nhttp_slow_bodies_total %llu\n"
        "# HELP glasgow_routes_generation Generation number of the routes bundle "
        "serving now.\n# TYPE glasgow_routes_generation gauge\n"
        "glasgow_routes_generation{hash=\"%s\"} %llu\n"
        "# HELP glasgow_routes_reloads_total Routes bundle reloads, by result.\n"
        "# TYPE glasgow_routes_reloads_total counter\n"
        "glasgow_routes_reloads_total{result=\"success\"} %llu\n"
        "glasgow_routes_reloads_total{result=\"failure\"} %llu\n"
        "# HELP glasgow_draining 1 while the server shuts down.\n"
        "# TYPE glasgow_draining gauge\nglasgow_draining %d\n"
        "# HELP glasgow_lua_stopped_total Lua code stopped by the watchdog, by reason.\n"
        "# TYPE glasgow_lua_stopped_total counter\n"
        "glasgow_lua_stopped_total{reason=\"deadline\"} %llu\n"
        "glasgow_lua_stopped_total{reason=\"run_limit\"} %llu\n"
        "glasgow_lua_stopped_total{reason=\"memory\"} %llu\n"
        "glasgow_lua_stopped_total{reason=\"shutdown\"} %llu\n"
        "# HELP glasgow_stuck_threads Threads stuck past their deadline where no hook "
        "reaches.\n# TYPE glasgow_stuck_threads gauge\nglasgow_stuck_threads %u\n",
        atomic_load(&metrics.in_flight), (unsigned long long)atomic_load(&metrics.bytes_in),
        (unsigned long long)atomic_load(&metrics.bytes_out),
        (unsigned long long)atomic_load(&metrics.connections_rejected),
        (unsigned long long)atomic_load(&metrics.header_timeouts),
        (unsigned long long)atomic_load(&metrics.slow_bodies), hash,
        (unsigned long long)atomic_load(&metrics.routes_generation),
        (unsigned long long)atomic_load(&metrics.reload_success),
        (unsigned long long)atomic_load(&metrics.reload_failure), atomic_load(&metrics.draining),
        (unsigned long long)atomic_load(&metrics.lua_stops_deadline),
        (unsigned long long)atomic_load(&metrics.lua_stops_run_limit),
        (unsigned long long)atomic_load(&metrics.lua_stops_memory),
        (unsigned long long)atomic_load(&metrics.lua_stops_shutdown), watchdog_stuck_count());
    for (size_t i = 0; i < ncollectors; i++)
        collectors[i](out);
}
