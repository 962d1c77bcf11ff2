/*
 * bodystream: a request body read as it arrives, and a response body
 * written as it is made, with back-pressure both ways. The contract
 * between the HTTP side (which implements it, in worker/httpd) and the
 * bindings that move bytes (s3, Lua's req.body_stream and res:write),
 * so that neither knows the other.
 *
 * Everything here runs on the request's worker thread, on its loop. A
 * source or sink belongs to its request: it is valid until the request
 * ends, and a binding holding one across a wait registers a request
 * cleanup (request_add_cleanup) that stops using it.
 *
 * Back-pressure: a read that finds nothing buffered returns BODY_AGAIN and
 * the connection stops being read (libmicrohttpd keeps what it has in its
 * bounded connection buffer); a write that finds the client's buffer full
 * returns BODY_AGAIN and nothing more is accepted. In both cases
 * *_notify registers a one-shot callback run on the loop (never from
 * inside the read or write call) as soon as the call can make progress:
 * data, end of body or error for a source; room or error for a sink.
 */
#ifndef GLASGOW_BODYSTREAM_H
#define GLASGOW_BODYSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "request.h"

/* Return values of body_source_read and body_sink_write besides a count. */
#define BODY_AGAIN ((ssize_t)-1) /* nothing now: wait for the notify callback */
#define BODY_ERROR ((ssize_t)-2) /* the transfer failed: see *_error */

/* Why a stream failed; the strings are constants compared by pointer. */
extern const char *const BODY_ERR_CLOSED;    /* "closed": the client went away */
extern const char *const BODY_ERR_TIMEOUT;   /* "timeout": idle or below the minimum rate */
extern const char *const BODY_ERR_TOO_LARGE; /* "too_large": past the route's body limit */
extern const char *const BODY_ERR_ABORTED;   /* "aborted": the request ended (deadline, shutdown) */

typedef struct body_source body_source;
typedef struct body_sink body_sink;

/*
 * Timing, as the server applies it to a request whose body streams either
 * way (DESIGN.md section 5; README "Streamed bodies"):
 * - every byte the handler reads from the source or writes into the sink
 *   pushes the request's deadline (GLASGOW_REQUEST_TIMEOUT_MS) back to a
 *   full period from then, and the deadline does not fire while someone
 *   waits on a stream (a notify is armed) and restarts when that wait
 *   ends: a transfer that keeps moving is never cut by it, while a handler
 *   that stops moving bytes (and is not waiting for the client) is;
 * - the client must keep up GLASGOW_MIN_RATE_BYTES_PER_S (after
 *   GLASGOW_MIN_RATE_GRACE_MS), counted only over the time the server
 *   waits on the client (not while it holds the connection suspended
 *   because nobody reads the body or nothing was written yet); a client
 *   below it is cut (BODY_ERR_TIMEOUT, 408 when nothing was answered yet);
 * - the Lua run limit applies to each stretch between two yields, as for
 *   any handler; waiting on a stream is a yield.
 * A client hang-up fails both streams with BODY_ERR_CLOSED and runs the
 * armed notify callbacks in the same loop iteration, also while the
 * connection is suspended (its socket is watched; a half-close counts as a
 * hang-up then). The handler runs on to its end; the request is logged
 * 499 when it ends.
 */

/*
 * The request body of r as a source, for a route declared with
 * body = "stream" (NULL otherwise, or once the body was consumed whole).
 * The handler starts when the headers are in; the body flows only while
 * someone reads it.
 */
body_source *request_body_source(request *r);

/* The declared Content-Length of the body, or -1 when the request is
 * chunked (unknown until the end). */
int64_t body_source_length(const body_source *s);

/*
 * Copies up to max (> 0) bytes of the body into buf. Returns the number
 * of bytes copied (> 0), 0 at the end of the body (every later call
 * returns 0 too), BODY_AGAIN when nothing is buffered yet, BODY_ERROR when
 * the body cannot be completed (client gone, idle timeout or minimum rate,
 * past the route's limit, request ended; body_source_error says which).
 */
ssize_t body_source_read(body_source *s, char *buf, size_t max);

/* After BODY_ERROR: one of the BODY_ERR_* constants. */
const char *body_source_error(const body_source *s);

/* Calls ready(arg) once on the loop when a read can make progress. A
 * second call replaces the first; ready NULL cancels. */
void body_source_notify(body_source *s, void (*ready)(void *arg), void *arg);

/* body_source_notify, but ready waits until min bytes (at most
 * BODY_SRC_BYTES) are buffered, or the whole of a known-length body has
 * arrived, or the body ended or failed: a consumer that forwards the body
 * in larger pieces than the connection delivers (the S3 client) wakes once
 * per piece. */
void body_source_notify_min(body_source *s, void (*ready)(void *arg), void *arg, size_t min);

/* Total bytes of the body read so far (for logs and limits). */
uint64_t body_source_consumed(const body_source *s);

/*
 * Adds a header to r's streamed response, before request_body_sink. The
 * name must be an HTTP token and the value free of CR, LF and NUL; Date
 * and X-Request-ID are set by the server. Returns 0, or -1 when the pair
 * is malformed or the response has started.
 */
int request_add_header(request *r, const char *name, const char *value);

/*
 * Starts a streamed response on r with status and the headers already set
 * on it (the same ones a buffered response would carry), and returns the
 * sink its body is written to. content_length is the exact body size when
 * known (then the response has a Content-Length and the sink refuses more
 * bytes), or -1 for a chunked response. Called at most once per request,
 * instead of returning a body; the request completes when the sink is
 * finished or failed. For HEAD, the headers go out and writes are
 * accepted and dropped.
 */
body_sink *request_body_sink(request *r, unsigned status, int64_t content_length);

/* Whether request_body_sink was called on r. */
int request_responded(const request *r);

/*
 * Queues up to len bytes of the body. Returns the count accepted (> 0,
 * possibly less than len), BODY_AGAIN when the client's buffer is full, or
 * BODY_ERROR when the client is gone or the request ended
 * (body_sink_error says which).
 */
ssize_t body_sink_write(body_sink *s, const char *buf, size_t len);

/* How many bytes a body_sink_write would accept now: 0 when full or failed
 * (a write then says which), SIZE_MAX for HEAD. For a binding that must
 * take a chunk whole or not at all (curl's write callback, which can only
 * pause before it consumed anything). */
size_t body_sink_room(const body_sink *s);

/* After BODY_ERROR: one of the BODY_ERR_* constants. */
const char *body_sink_error(const body_sink *s);

/* Calls ready(arg) once on the loop when a write can make progress. A
 * second call replaces the first; ready NULL cancels. */
void body_sink_notify(body_sink *s, void (*ready)(void *arg), void *arg);

/* body_sink_notify, but ready waits until room (at most BODY_SINK_BYTES)
 * bytes fit, or the sink ended or failed: a writer that must not be
 * offered more than fits (the S3 client, whose receives bring up to
 * S3_RECV_BUFFER) resumes once per that much room. */
void body_sink_notify_min(body_sink *s, void (*ready)(void *arg), void *arg, size_t room);

/* Ends the body: the response completes once the queued bytes are sent.
 * With a Content-Length, finishing short of it is body_sink_fail. */
void body_sink_finish(body_sink *s);

/* Abandons the body (the store failed mid-way): the connection is closed
 * without completing the response, so the client sees a truncated body,
 * never a complete-looking wrong one. */
void body_sink_fail(body_sink *s);

/* Total bytes of the body accepted so far. */
uint64_t body_sink_written(const body_sink *s);

/* ---- the transport side: what the HTTP server (httpd.c) uses ------------------- */

/* The most a Lua read (req.body_stream:read) takes at once. */
#define BODY_BUF_BYTES ((size_t)65536)

/* Capacity of a sink's buffer: room for two of the S3 client's receives
 * (S3_RECV_BUFFER, 256 KiB), so that it can take one whole while
 * libmicrohttpd still has one to send. */
#define BODY_SINK_BYTES ((size_t)524288)

/* The size of the blocks libmicrohttpd pulls from a sink (the response's
 * own buffer): a download moves 256 KiB per loop turn, a recv from the
 * store and a send to the client. */
#define BODY_SINK_BLOCK ((size_t)262144)

/* Capacity of a source's buffer, beyond libmicrohttpd's connection buffer
 * (which hands over up to about 264 KiB of a body per read, httpd.c): room
 * for two of the S3 client's 256 KiB batches, so that the connection goes
 * on being read while one waits and the store gets large sends. Allocated
 * while a body streams, freed with it. */
#define BODY_SRC_BYTES ((size_t)524288)

/* How a request reaches its transport; set by the server on r->streams. */
typedef struct body_transport {
    body_source *(*source)(request *r);
    body_sink *(*sink)(request *r, unsigned status, int64_t content_length);
    /* the stream's state changed (bytes taken or given, a notify armed,
     * the end, a failure): the transport re-evaluates on its loop, never
     * inside the call that poked, and fires what became ready */
    void (*poke)(void *owner);
} body_transport;

/* A source for r of declared length (-1: chunked) under limit bytes; the
 * transport pokes owner. Freed with body_source_free. */
body_source *body_source_create(request *r, const body_transport *t, void *owner, int64_t length,
                                uint64_t limit);
void body_source_free(body_source *s);

/* Offers n bytes that arrived; returns how many fit (0..n). Past the
 * limit, the source fails with BODY_ERR_TOO_LARGE and takes everything
 * (the caller discards it). */
size_t body_source_push(body_source *s, const char *data, size_t n);

/* The body ended (every byte pushed). */
void body_source_end(body_source *s);

/* The body cannot be completed: err is a BODY_ERR_* constant. The first
 * failure sticks; bytes still buffered are dropped. A no-op once the body
 * ended (what is buffered stays readable). */
void body_source_fail(body_source *s, const char *err);

/* Bytes buffered and not read yet; whether it ended or failed. */
size_t body_source_buffered(const body_source *s);
int body_source_done(const body_source *s);

/* Bytes pushed so far (counted before the limit check). */
uint64_t body_source_received(const body_source *s);

/* Runs the notify callback if one is armed and a read can make progress. */
void body_source_fire(body_source *s);

/* A sink for r: content_length as for request_body_sink; head non-zero
 * drops what is written (HEAD). Freed with body_sink_free. */
body_sink *body_sink_create(request *r, const body_transport *t, void *owner,
                            int64_t content_length, int head);
void body_sink_free(body_sink *s);

/* Takes up to max queued bytes for the client; returns the count. */
size_t body_sink_pull(body_sink *s, char *buf, size_t max);

/* Bytes queued and not pulled yet. */
size_t body_sink_buffered(const body_sink *s);

/* 1 when finished and drained (the response is complete), -1 when failed,
 * 0 while the body goes on. */
int body_sink_state(const body_sink *s);

/* The transport fails the sink (client gone, cut, request ended). */
void body_sink_set_error(body_sink *s, const char *err);

/* Runs the notify callback if one is armed and a write can make progress. */
void body_sink_fire(body_sink *s);

/* Whether a notify callback is armed (someone waits on the stream). */
int body_source_waiting(const body_source *s);
int body_sink_waiting(const body_sink *s);

#endif
