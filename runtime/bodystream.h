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

/* Total bytes of the body read so far (for logs and limits). */
uint64_t body_source_consumed(const body_source *s);

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

/*
 * Queues up to len bytes of the body. Returns the count accepted (> 0,
 * possibly less than len), BODY_AGAIN when the client's buffer is full, or
 * BODY_ERROR when the client is gone or the request ended
 * (body_sink_error says which).
 */
ssize_t body_sink_write(body_sink *s, const char *buf, size_t len);

/* After BODY_ERROR: one of the BODY_ERR_* constants. */
const char *body_sink_error(const body_sink *s);

/* Calls ready(arg) once on the loop when a write can make progress. A
 * second call replaces the first; ready NULL cancels. */
void body_sink_notify(body_sink *s, void (*ready)(void *arg), void *arg);

/* Ends the body: the response completes once the queued bytes are sent.
 * With a Content-Length, finishing short of it is body_sink_fail. */
void body_sink_finish(body_sink *s);

/* Abandons the body (the store failed mid-way): the connection is closed
 * without completing the response, so the client sees a truncated body,
 * never a complete-looking wrong one. */
void body_sink_fail(body_sink *s);

/* Total bytes of the body accepted so far. */
uint64_t body_sink_written(const body_sink *s);

#endif
