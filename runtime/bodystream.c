/*
 * bodystream: the buffers, limits and states of streamed bodies; the
 * transport (httpd.c) moves the bytes between them and libmicrohttpd.
 * Nothing here does I/O or touches libmicrohttpd or Lua.
 */
#include "bodystream.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"
#include "util.h"

const char *const BODY_ERR_CLOSED = "closed";
const char *const BODY_ERR_TIMEOUT = "timeout";
const char *const BODY_ERR_TOO_LARGE = "too_large";
const char *const BODY_ERR_ABORTED = "aborted";

/* A byte ring of cap bytes (BODY_SRC_BYTES or BODY_SINK_BYTES), allocated on
 * first use. */
typedef struct ring {
    char *buf;
    size_t cap, head, len;
} ring;

static size_t ring_put(ring *q, const char *p, size_t n)
{
    if (!q->buf)
        q->buf = xmalloc(q->cap);
    size_t room = q->cap - q->len;
    if (n > room)
        n = room;
    size_t tail = (q->head + q->len) % q->cap;
    size_t first = q->cap - tail;
    if (first > n)
        first = n;
    memcpy(q->buf + tail, p, first);
    memcpy(q->buf, p + first, n - first);
    q->len += n;
    return n;
}

static size_t ring_get(ring *q, char *out, size_t n)
{
    if (n > q->len)
        n = q->len;
    if (n == 0)
        return 0; /* the ring may not be allocated yet: no memcpy from NULL */
    size_t first = q->cap - q->head;
    if (first > n)
        first = n;
    memcpy(out, q->buf + q->head, first);
    memcpy(out + first, q->buf, n - first);
    q->head = (q->head + n) % q->cap;
    q->len -= n;
    if (q->len == 0)
        q->head = 0;
    return n;
}

static void ring_free(ring *q)
{
    free(q->buf);
    q->buf = NULL;
    q->head = q->len = 0;
}

/* The handler moved a byte (read one, or had one accepted): the deadline
 * of a streamed request restarts its period. */
static void progress(request *r)
{
    if (r && r->deadline_us && r->deadline_period_us)
        r->deadline_us = loop_clock_us() + r->deadline_period_us;
}

/* ---- sources --------------------------------------------------------------------- */

struct body_source {
    request *r;
    const body_transport *t;
    void *owner;
    ring q;
    int64_t length;
    uint64_t limit;
    uint64_t received;
    uint64_t consumed;
    int ended;
    const char *err;
    void (*ready)(void *arg);
    void *ready_arg;
    size_t ready_min; /* bytes buffered before ready is called */
};

static void source_poke(body_source *s)
{
    if (s->t && s->t->poke)
        s->t->poke(s->owner);
}

body_source *body_source_create(request *r, const body_transport *t, void *owner, int64_t length,
                                uint64_t limit)
{
    body_source *s = xcalloc(1, sizeof *s);
    s->r = r;
    s->t = t;
    s->owner = owner;
    s->length = length;
    s->limit = limit;
    s->q.cap = BODY_SRC_BYTES;
    return s;
}

void body_source_free(body_source *s)
{
    if (!s)
        return;
    ring_free(&s->q);
    free(s);
}

body_source *request_body_source(request *r)
{
    return r->streams && r->body_stream ? r->streams->source(r) : NULL;
}

int64_t body_source_length(const body_source *s)
{
    return s->length;
}

ssize_t body_source_read(body_source *s, char *buf, size_t max)
{
    if (s->err)
        return BODY_ERROR;
    if (s->q.len > 0 && max > 0) {
        size_t n = ring_get(&s->q, buf, max);
        s->consumed += n;
        progress(s->r);
        source_poke(s); /* room again: the connection may be read on */
        return (ssize_t)n;
    }
    if (s->ended)
        return 0;
    return BODY_AGAIN;
}

const char *body_source_error(const body_source *s)
{
    return s->err;
}

void body_source_notify(body_source *s, void (*ready)(void *arg), void *arg)
{
    body_source_notify_min(s, ready, arg, 1);
}

void body_source_notify_min(body_source *s, void (*ready)(void *arg), void *arg, size_t min)
{
    s->ready = ready;
    s->ready_arg = arg;
    s->ready_min = min < 1 ? 1 : min > BODY_SRC_BYTES ? BODY_SRC_BYTES : min;
    if (ready)
        source_poke(s);
}

uint64_t body_source_consumed(const body_source *s)
{
    return s->consumed;
}

size_t body_source_push(body_source *s, const char *data, size_t n)
{
    if (s->err) {
        s->received += n;
        return n;
    }
    if (s->ended)
        return n;
    if (s->received + n > s->limit) {
        s->received += n;
        body_source_fail(s, BODY_ERR_TOO_LARGE);
        return n;
    }
    size_t k = ring_put(&s->q, data, n);
    s->received += k;
    if (k)
        source_poke(s);
    return k;
}

void body_source_end(body_source *s)
{
    if (s->ended || s->err)
        return;
    s->ended = 1;
    source_poke(s);
}

void body_source_fail(body_source *s, const char *err)
{
    if (s->err || s->ended) /* once it ended, the buffered rest stays readable */
        return;
    s->err = err;
    ring_free(&s->q);
    source_poke(s);
}

size_t body_source_buffered(const body_source *s)
{
    return s->q.len;
}

int body_source_done(const body_source *s)
{
    return s->ended || s->err;
}

uint64_t body_source_received(const body_source *s)
{
    return s->received;
}

int body_source_waiting(const body_source *s)
{
    return s->ready != NULL;
}

void body_source_fire(body_source *s)
{
    int all_in = s->length >= 0 && s->received >= (uint64_t)s->length;
    if (s->ready && (s->q.len >= s->ready_min || (s->q.len > 0 && all_in) || s->ended || s->err)) {
        void (*cb)(void *) = s->ready;
        s->ready = NULL;
        progress(s->r); /* the wait on the client was not the handler's time */
        cb(s->ready_arg);
    }
}

/* ---- sinks ------------------------------------------------------------------------ */

struct body_sink {
    request *r;
    const body_transport *t;
    void *owner;
    ring q;
    int64_t length;
    int head;
    uint64_t written;
    int finished;
    const char *err;
    void (*ready)(void *arg);
    void *ready_arg;
    size_t ready_room; /* room needed before ready is called */
};

static void sink_poke(body_sink *s)
{
    if (s->t && s->t->poke)
        s->t->poke(s->owner);
}

static int token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

int request_add_header(request *r, const char *name, const char *value)
{
    if (r->responded || !name[0])
        return -1;
    for (const char *p = name; *p; p++)
        if (!token_char((unsigned char)*p))
            return -1;
    for (const char *p = value; *p; p++)
        if (*p == '\r' || *p == '\n')
            return -1;
    strbuf_add(&r->resp_headers, name, strlen(name) + 1);
    strbuf_add(&r->resp_headers, value, strlen(value) + 1);
    return 0;
}

body_sink *request_body_sink(request *r, unsigned status, int64_t content_length)
{
    if (!r->streams || r->responded || status < 100 || status > 599 || content_length < -1)
        return NULL;
    body_sink *s = r->streams->sink(r, status, content_length);
    if (s)
        r->responded = 1;
    return s;
}

int request_responded(const request *r)
{
    return r->responded;
}

body_sink *body_sink_create(request *r, const body_transport *t, void *owner,
                            int64_t content_length, int head)
{
    body_sink *s = xcalloc(1, sizeof *s);
    s->r = r;
    s->t = t;
    s->owner = owner;
    s->length = content_length;
    s->head = head;
    s->q.cap = BODY_SINK_BYTES;
    return s;
}

void body_sink_free(body_sink *s)
{
    if (!s)
        return;
    ring_free(&s->q);
    free(s);
}

ssize_t body_sink_write(body_sink *s, const char *buf, size_t len)
{
    if (s->err)
        return BODY_ERROR;
    if (s->finished) {
        s->err = BODY_ERR_CLOSED; /* a misuse: the body was already ended */
        return BODY_ERROR;
    }
    if (len == 0)
        return 0;
    if (s->length >= 0 && len > (uint64_t)s->length - s->written) {
        body_sink_set_error(s, BODY_ERR_TOO_LARGE);
        return BODY_ERROR;
    }
    if (s->head) {
        s->written += len;
        return (ssize_t)len;
    }
    size_t k = ring_put(&s->q, buf, len);
    if (k == 0)
        return BODY_AGAIN;
    s->written += k;
    progress(s->r);
    sink_poke(s);
    return (ssize_t)k;
}

size_t body_sink_room(const body_sink *s)
{
    if (s->err || s->finished)
        return 0;
    if (s->head)
        return SIZE_MAX;
    return s->q.cap - s->q.len;
}

const char *body_sink_error(const body_sink *s)
{
    return s->err;
}

void body_sink_notify(body_sink *s, void (*ready)(void *arg), void *arg)
{
    body_sink_notify_min(s, ready, arg, 1);
}

void body_sink_notify_min(body_sink *s, void (*ready)(void *arg), void *arg, size_t room)
{
    s->ready = ready;
    s->ready_arg = arg;
    s->ready_room = room < 1 ? 1 : room > s->q.cap ? s->q.cap : room;
    if (ready)
        sink_poke(s);
}

void body_sink_finish(body_sink *s)
{
    if (s->finished || s->err)
        return;
    if (s->length >= 0 && s->written < (uint64_t)s->length) {
        body_sink_fail(s);
        return;
    }
    s->finished = 1;
    sink_poke(s);
}

void body_sink_fail(body_sink *s)
{
    body_sink_set_error(s, BODY_ERR_ABORTED);
}

uint64_t body_sink_written(const body_sink *s)
{
    return s->written;
}

size_t body_sink_pull(body_sink *s, char *buf, size_t max)
{
    if (s->err)
        return 0;
    size_t k = ring_get(&s->q, buf, max);
    if (k)
        sink_poke(s); /* room again for the writer */
    return k;
}

size_t body_sink_buffered(const body_sink *s)
{
    return s->q.len;
}

int body_sink_state(const body_sink *s)
{
    if (s->err)
        return -1;
    return s->finished && s->q.len == 0 ? 1 : 0;
}

void body_sink_set_error(body_sink *s, const char *err)
{
    if (s->err)
        return;
    s->err = err;
    ring_free(&s->q);
    sink_poke(s);
}

int body_sink_waiting(const body_sink *s)
{
    return s->ready != NULL;
}

void body_sink_fire(body_sink *s)
{
    if (s->ready && (s->err || s->finished || s->head || s->q.cap - s->q.len >= s->ready_room)) {
        void (*cb)(void *) = s->ready;
        s->ready = NULL;
        progress(s->r);
        cb(s->ready_arg);
    }
}
