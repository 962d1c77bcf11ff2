/* bodystream: buffers, limits, ends, failures and notifications of sources
 * and sinks, with a fake transport that records its pokes. */
#include <stdlib.h>
#include <string.h>

#include "bodystream.h"
#include "tap.h"

static int pokes;
static int fired;
static request req;
static body_sink *fake_sink;

static void poke(void *owner)
{
    (void)owner;
    pokes++;
}

static void on_ready(void *arg)
{
    (void)arg;
    fired++;
}

static body_source *t_source(request *r)
{
    (void)r;
    return NULL;
}

static body_sink *t_sink(request *r, unsigned status, int64_t len)
{
    (void)status;
    fake_sink = body_sink_create(r, r->streams, NULL, len, 0);
    return fake_sink;
}

static const body_transport tp = {t_source, t_sink, poke};

static void fill(char *buf, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)(i * 13u + seed);
}

static void test_source(void)
{
    static char in[3 * BODY_SRC_BYTES], out[3 * BODY_SRC_BYTES];
    fill(in, sizeof in, 1);
    body_source *s = body_source_create(&req, &tp, NULL, (int64_t)sizeof in, sizeof in);
    char b[16];
    is_int(body_source_read(s, b, sizeof b), BODY_AGAIN, "empty source: BODY_AGAIN");
    is_int(body_source_length(s), (long long)sizeof in, "length as declared");

    body_source_notify(s, on_ready, NULL);
    fired = 0;
    body_source_fire(s);
    is_int(fired, 0, "a notify does not fire while nothing can be read");

    size_t k = body_source_push(s, in, sizeof in);
    is_int(k, BODY_SRC_BYTES, "push takes what fits in the buffer");
    is_int(body_source_push(s, in + k, 10), 0, "and nothing more while it is full");
    body_source_fire(s);
    body_source_fire(s);
    is_int(fired, 1, "the notify fires once data is there, once");

    /* read across the ring's wrap while pushing the rest */
    size_t got = 0, pushed = k;
    while (got < sizeof in) {
        ssize_t n = body_source_read(s, out + got, 1000);
        if (n == BODY_AGAIN) {
            pushed += body_source_push(s, in + pushed, sizeof in - pushed);
            continue;
        }
        ok(n > 0, "read gives bytes");
        if (n <= 0)
            break;
        got += (size_t)n;
        if (pushed < sizeof in)
            pushed += body_source_push(s, in + pushed,
                                       sizeof in - pushed < 777 ? sizeof in - pushed : 777);
    }
    ok(got == sizeof in && memcmp(in, out, sizeof in) == 0, "every byte comes out in order");
    is_int(body_source_consumed(s), (long long)sizeof in, "consumed counts them");
    is_int(body_source_read(s, b, sizeof b), BODY_AGAIN, "drained but not ended: BODY_AGAIN");
    body_source_end(s);
    is_int(body_source_read(s, b, sizeof b), 0, "ended: 0");
    is_int(body_source_read(s, b, sizeof b), 0, "and 0 again");
    body_source_fail(s, BODY_ERR_CLOSED);
    is_int(body_source_read(s, b, sizeof b), 0, "a failure after the end changes nothing");
    body_source_free(s);
}

static void test_source_limits(void)
{
    char b[64];
    body_source *s = body_source_create(&req, &tp, NULL, -1, 100);
    is_int(body_source_length(s), -1, "chunked: length -1");
    is_int(body_source_push(s, b, 60), 60, "under the limit");
    is_int(body_source_push(s, b, 41), 41, "past the limit the bytes are taken");
    is_int(body_source_read(s, b, sizeof b), BODY_ERROR, "and the source fails");
    is_str(body_source_error(s), "too_large", "with too_large");
    ok(body_source_error(s) == BODY_ERR_TOO_LARGE, "the constant itself");
    is_int(body_source_push(s, b, 10), 10, "later bytes are taken and dropped");
    is_int(body_source_received(s), 111, "received counts everything");
    body_source_fail(s, BODY_ERR_CLOSED);
    is_str(body_source_error(s), "too_large", "the first failure sticks");
    body_source_free(s);

    s = body_source_create(&req, &tp, NULL, 10, 10);
    body_source_push(s, "0123456789", 10);
    body_source_fail(s, BODY_ERR_TIMEOUT);
    is_int(body_source_read(s, b, sizeof b), BODY_ERROR, "a failure drops what is buffered");
    is_str(body_source_error(s), "timeout", "timeout");
    fired = 0;
    body_source_notify(s, on_ready, NULL);
    body_source_fire(s);
    is_int(fired, 1, "a notify armed after a failure fires");
    body_source_free(s);
}

/* notify_min: the S3 client waits for pieces of 32 KiB, not each one the
 * connection delivers, but never past what the body can still bring. */
static void test_source_notify_min(void)
{
    static char in[32800 + BODY_SRC_BYTES + 1664];
    char b[64];
    fill(in, sizeof in, 5);
    body_source *s = body_source_create(&req, &tp, NULL, (int64_t)sizeof in, sizeof in);
    fired = 0;
    body_source_notify_min(s, on_ready, NULL, 32768);
    body_source_push(s, in, 8000);
    body_source_fire(s);
    is_int(fired, 0, "notify_min: 8000 of 32768 bytes do not fire it");
    body_source_push(s, in + 8000, 24000);
    body_source_fire(s);
    is_int(fired, 0, "nor 32000");
    body_source_push(s, in + 32000, 800);
    body_source_fire(s);
    is_int(fired, 1, "32800 do, once");
    size_t got = 0;
    while (got < 32800) {
        ssize_t n =
            body_source_read(s, in + got, sizeof in - got < 20000 ? sizeof in - got : 20000);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    fired = 0;
    body_source_notify_min(s, on_ready, NULL, 1u << 30);
    body_source_push(s, in + got, BODY_SRC_BYTES);
    body_source_fire(s);
    is_int(fired, 1, "a minimum above the buffer is the buffer's size: a full buffer fires");
    while (body_source_read(s, b, sizeof b) > 0)
        ;
    got += BODY_SRC_BYTES;
    fired = 0;
    body_source_notify_min(s, on_ready, NULL, 32768);
    body_source_push(s, in + got, sizeof in - got); /* the last 1664 bytes */
    body_source_fire(s);
    is_int(fired, 1, "the rest of a known length fires it, short of the minimum");
    while (body_source_read(s, b, sizeof b) > 0)
        ;
    body_source_free(s);

    s = body_source_create(&req, &tp, NULL, -1, sizeof in);
    fired = 0;
    body_source_notify_min(s, on_ready, NULL, 32768);
    body_source_push(s, in, 100);
    body_source_fire(s);
    is_int(fired, 0, "chunked: 100 bytes do not fire it");
    body_source_end(s);
    body_source_fire(s);
    is_int(fired, 1, "the end does");
    body_source_free(s);
}

static void test_sink(void)
{
    static char b[BODY_SINK_BYTES];
    memset(&req, 0, sizeof req);
    req.streams = &tp;
    is_int(request_add_header(&req, "X-A", "1"), 0, "a header");
    is_int(request_add_header(&req, "Bad Name", "1"), -1, "a name that is not a token is refused");
    is_int(request_add_header(&req, "X-B", "a\r\nb"), -1, "CR LF in a value is refused");
    is_int(request_body_sink(&req, 99, -1) == NULL, 1, "a bad status is refused");
    body_sink *k = request_body_sink(&req, 200, -1);
    ok(k != NULL && k == fake_sink, "request_body_sink goes through the transport");
    ok(request_responded(&req), "and the request has responded");
    ok(request_body_sink(&req, 200, -1) == NULL, "a second call gets NULL");
    is_int(request_add_header(&req, "X-C", "1"), -1, "no header after the start");

    fill(b, sizeof b, 3);
    is_int(body_sink_room(k), BODY_SINK_BYTES, "an empty sink has room for its whole buffer");
    is_int(body_sink_write(k, b, sizeof b), BODY_SINK_BYTES, "a write takes what fits");
    is_int(body_sink_room(k), 0, "then no room");
    is_int(body_sink_write(k, b, 1), BODY_AGAIN, "then BODY_AGAIN");
    fired = 0;
    body_sink_notify(k, on_ready, NULL);
    body_sink_fire(k);
    is_int(fired, 0, "no room: the notify waits");
    char out[100];
    is_int(body_sink_pull(k, out, sizeof out), 100, "the transport pulls");
    is_int(body_sink_room(k), 100, "room for what was pulled");
    ok(memcmp(out, b, 100) == 0, "the bytes written");
    body_sink_fire(k);
    is_int(fired, 1, "room again: the notify fires");
    is_int(body_sink_state(k), 0, "going on");
    body_sink_finish(k);
    is_int(body_sink_state(k), 0, "finished but not drained: still going");
    while (body_sink_pull(k, b, sizeof b) > 0) {
    }
    is_int(body_sink_state(k), 1, "finished and drained: complete");
    is_int(body_sink_write(k, "x", 1), BODY_ERROR, "a write after the end is an error");
    body_sink_free(k);
    strbuf_dispose(&req.resp_headers);

    /* a declared length */
    k = body_sink_create(&req, &tp, NULL, 10, 0);
    is_int(body_sink_write(k, "0123456", 7), 7, "within the length");
    is_int(body_sink_write(k, "7890", 4), BODY_ERROR, "past the length: an error");
    is_str(body_sink_error(k), "too_large", "too_large");
    is_int(body_sink_state(k), -1, "and the response fails");
    body_sink_free(k);
    k = body_sink_create(&req, &tp, NULL, 10, 0);
    body_sink_write(k, "01234", 5);
    body_sink_finish(k);
    is_int(body_sink_state(k), -1, "finishing short of the length fails");
    body_sink_free(k);

    /* HEAD: writes dropped */
    k = body_sink_create(&req, &tp, NULL, -1, 1);
    is_int(body_sink_write(k, b, sizeof b), BODY_SINK_BYTES, "HEAD: writes accepted");
    is_int(body_sink_write(k, b, sizeof b), BODY_SINK_BYTES, "and never full");
    is_int(body_sink_buffered(k), 0, "nothing kept");
    is_int(body_sink_written(k), 2 * BODY_SINK_BYTES, "written counted");
    ok(body_sink_room(k) == SIZE_MAX, "HEAD: unlimited room");
    body_sink_free(k);

    /* failure by the transport, and by the writer */
    k = body_sink_create(&req, &tp, NULL, -1, 0);
    body_sink_write(k, "abc", 3);
    body_sink_set_error(k, BODY_ERR_CLOSED);
    is_int(body_sink_write(k, "d", 1), BODY_ERROR, "the client left: writes fail");
    is_str(body_sink_error(k), "closed", "closed");
    is_int(body_sink_pull(k, out, sizeof out), 0, "nothing left to send");
    body_sink_free(k);
    k = body_sink_create(&req, &tp, NULL, -1, 0);
    body_sink_fail(k);
    is_int(body_sink_state(k), -1, "body_sink_fail: failed");
    is_str(body_sink_error(k), "aborted", "as aborted");
    body_sink_free(k);

    memset(&req, 0, sizeof req);
    ok(request_body_sink(&req, 200, -1) == NULL, "no transport (glasgow run): NULL");
    ok(request_body_source(&req) == NULL, "and no source");
}

/* notify_min on a sink: the S3 client resumes a download only when a whole
 * receive fits, so nothing it received has to be held back. */
static void test_sink_notify_min(void)
{
    static char b[BODY_SINK_BYTES];
    char out[4096];
    body_sink *k = body_sink_create(&req, &tp, NULL, -1, 0);
    is_int(body_sink_write(k, b, sizeof b - 1000), (long long)(sizeof b - 1000), "nearly full");
    fired = 0;
    body_sink_notify_min(k, on_ready, NULL, 10000);
    body_sink_fire(k);
    is_int(fired, 0, "notify_min: 1000 bytes of room do not fire it");
    body_sink_pull(k, out, 4096);
    body_sink_pull(k, out, 4096);
    body_sink_fire(k);
    is_int(fired, 0, "nor 9192");
    body_sink_pull(k, out, 808);
    body_sink_fire(k);
    is_int(fired, 1, "10000 do");
    body_sink_notify_min(k, on_ready, NULL, 1u << 30);
    while (body_sink_pull(k, out, sizeof out) > 0)
        ;
    body_sink_fire(k);
    is_int(fired, 2, "a room above the buffer is the buffer's size: an empty sink fires");
    body_sink_write(k, b, 100);
    body_sink_notify_min(k, on_ready, NULL, BODY_SINK_BYTES);
    body_sink_set_error(k, BODY_ERR_CLOSED);
    body_sink_fire(k);
    is_int(fired, 3, "a failure fires it whatever the room");
    body_sink_free(k);
}

static void test_deadline_progress(void)
{
    memset(&req, 0, sizeof req);
    req.deadline_us = 1;
    req.deadline_period_us = 5000000;
    body_source *s = body_source_create(&req, &tp, NULL, 3, 3);
    char b[4];
    body_source_push(s, "abc", 3);
    body_source_read(s, b, 1);
    ok(req.deadline_us > 1, "a byte read pushes the deadline of a streamed request");
    uint64_t d = req.deadline_us;
    req.deadline_period_us = 0;
    body_source_read(s, b, 1);
    ok(req.deadline_us == d, "not without a period");
    body_source_free(s);
}

int main(void)
{
    test_source();
    test_source_limits();
    test_source_notify_min();
    test_sink();
    test_sink_notify_min();
    test_deadline_progress();
    return done_testing();
}
