/*
 * libmicrohttpd's responses as our patch 0016 leaves them
 * (.ci/patches/libmicrohttpd/0016-response-fewer-instructions.patch):
 *
 * - MHD_add_response_header measures and checks a name and a value in one
 *   pass each and compares the special names only when the length matches:
 *   every name or value it refused before (TAB, space, CR or LF in a name;
 *   CR or LF in a value; empty) is still refused, footers included, and
 *   the special names (Date, Connection, Transfer-Encoding,
 *   Content-Length) are still special in any case.
 * - Header entries and a small copied body lie in the response's own
 *   space until it is full, then are malloc'ed: many headers, removed,
 *   replaced and destroyed, must come out the same (the SAN build checks
 *   the frees), and a body just under, at and over the limit is sent whole.
 * - The reference count is atomic: one response shared by many
 *   connections on a pool of threads is sent whole every time and freed
 *   once, when the last reference goes.
 * - MHD_uint64_to_str writes the same digits.
 * - A daemon with MHD_USE_NO_THREAD_SAFETY, run from one thread as
 *   glasgow's workers run theirs, moves a connection in its timeout list
 *   without a lock: a busy keep-alive connection is still answered and an
 *   idle one still times out.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mhd_headers.h"
#include "tap.h"

/* libmicrohttpd's internals (not in its public header, but exported by the
 * static library we link): src/microhttpd/mhd_str.h and response.h. */
size_t MHD_uint64_to_str(uint64_t val, char *buf, size_t buf_size);
void MHD_increment_response_rc(struct MHD_Response *response);

static void refused_input(void)
{
    struct MHD_Response *r = MHD_create_response_empty(MHD_RF_NONE);
    seen s;
    ok(r != NULL, "an empty response");
    static const char *bad_names[] = {"X-A\r", "X-\nA",        "X A",
                                      "X\tA",  "\r\nX-A",      "Date ",
                                      " Date", "Connection\r", "Content-Length\n",
                                      ""};
    for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++)
        is_int(MHD_add_response_header(r, bad_names[i], "v"), MHD_NO, "name %zu refused", i);
    static const char *bad_values[] = {"a\rb", "a\nb", "\r\n", "ab\r", "\nab", ""};
    for (size_t i = 0; i < sizeof bad_values / sizeof *bad_values; i++) {
        is_int(MHD_add_response_header(r, "X-V", bad_values[i]), MHD_NO, "value %zu refused", i);
        is_int(MHD_add_response_header(r, "Date", bad_values[i]), MHD_NO, "Date value %zu refused",
               i);
        is_int(MHD_add_response_header(r, "Connection", bad_values[i]), MHD_NO,
               "Connection value %zu refused", i);
    }
    is_int(MHD_add_response_header(r, NULL, "v"), MHD_NO, "no name refused (a crash before)");
    is_int(MHD_add_response_header(r, "X-V", NULL), MHD_NO, "no value refused");
    is_int(MHD_add_response_footer(r, "X-F\r", "v"), MHD_NO, "a footer name with CR refused");
    is_int(MHD_add_response_footer(r, "X F", "v"), MHD_NO, "a footer name with a space refused");
    is_int(MHD_add_response_footer(r, "X-F", "a\nb"), MHD_NO, "a footer value with LF refused");
    is_int(MHD_add_response_header(r, "X-Tab-In-Value", "a\tb"), MHD_YES,
           "a TAB in a value is allowed, as before");
    is_str(headers_of(r, &s), "X-Tab-In-Value=a\tb;", "only the valid header is there");
    is_int(MHD_add_response_footer(r, "X-F", "v"), MHD_YES, "a valid footer");
    MHD_destroy_response(r);
}

static void special_names(void)
{
    seen s;
    struct MHD_Response *r = MHD_create_response_empty(MHD_RF_NONE);
    is_int(MHD_add_response_header(r, "DATE", "Mon, 30 Nov 2026 09:00:00 GMT"), MHD_YES, "DATE");
    is_int(MHD_add_response_header(r, "date", "Tue, 01 Dec 2026 10:00:00 GMT"), MHD_YES,
           "date, another case");
    headers_of(r, &s);
    is_int(s.n, 1, "the second Date replaced the first, whatever the case");
    is_str(MHD_get_response_header(r, "Date"), "Tue, 01 Dec 2026 10:00:00 GMT", "the second one");
    is_int(MHD_add_response_header(r, "cOnNeCtIoN", "keep-alive"), MHD_NO,
           "Connection: keep-alive alone is dropped (special, any case)");
    is_int(MHD_add_response_header(r, "CONNECTION", "x-token, close"), MHD_YES, "Connection");
    is_str(MHD_get_response_header(r, "Connection"), "close, x-token", "close moved first");
    is_int(MHD_add_response_header(r, "transfer-encoding", "gzip"), MHD_NO,
           "Transfer-Encoding other than chunked refused");
    is_int(MHD_add_response_header(r, "Transfer-Encoding", "chunked"), MHD_YES,
           "Transfer-Encoding: chunked");
    is_int(MHD_add_response_header(r, "TRANSFER-ENCODING", "chunked"), MHD_YES,
           "a second one is accepted");
    headers_of(r, &s);
    is_int(s.n, 3, "and not added twice");
    is_int(MHD_add_response_header(r, "content-length", "5"), MHD_NO,
           "Content-Length refused without the insanity flag");
    is_int(MHD_add_response_header(r, "Content-Lengthy", "5"), MHD_YES,
           "a longer name is not special");
    is_int(MHD_add_response_header(r, "Dat", "x"), MHD_YES, "a shorter name is not special");
    is_int(MHD_add_response_header(r, "Datf", "x"), MHD_YES,
           "a name of Date's length is not special");
    headers_of(r, &s);
    is_int(s.n, 6, "six headers");
    MHD_destroy_response(r);

    r = MHD_create_response_empty(MHD_RF_INSANITY_HEADER_CONTENT_LENGTH);
    is_int(MHD_add_response_header(r, "Content-Length", "5"), MHD_YES,
           "Content-Length with the insanity flag");
    MHD_destroy_response(r);
}

static void many_headers(void)
{
    seen s;
    char want[4096] = "", name[32], value[64];
    struct MHD_Response *r =
        MHD_create_response_from_buffer(5, (void *)"hello", MHD_RESPMEM_MUST_COPY);
    /* 40 headers: the first few in the response's space, the rest
     * malloc'ed; then every other one removed, from both sides */
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "X-H%02d", i);
        snprintf(value, sizeof value, "value-%02d-0123456789", i);
        is_int(MHD_add_response_header(r, name, value), MHD_YES, "header %d", i);
    }
    for (int i = 0; i < 40; i += 2) {
        snprintf(name, sizeof name, "X-H%02d", i);
        snprintf(value, sizeof value, "value-%02d-0123456789", i);
        is_int(MHD_del_response_header(r, name, value), MHD_YES, "header %d removed", i);
    }
    for (int i = 1; i < 40; i += 2) {
        size_t len = strlen(want);
        snprintf(want + len, sizeof want - len, "X-H%02d=value-%02d-0123456789;", i, i);
    }
    is_str(headers_of(r, &s), want, "the odd ones remain, in order");
    /* Date replaced many times: every replacement must free what it held */
    for (int i = 0; i < 30; i++) {
        snprintf(value, sizeof value, "Mon, 30 Nov 2026 09:00:%02d GMT", i);
        MHD_add_response_header(r, "Date", value);
    }
    is_str(MHD_get_response_header(r, "Date"), "Mon, 30 Nov 2026 09:00:29 GMT", "the last Date");
    headers_of(r, &s);
    is_int(s.n, 21, "twenty and a Date");
    MHD_destroy_response(r);
    ok(1, "destroyed (the SAN build checks the frees)");
}

static void digits(void)
{
    char buf[32];
    static const struct {
        uint64_t v;
        const char *s;
    } cases[] = {{0, "0"},
                 {9, "9"},
                 {10, "10"},
                 {19, "19"},
                 {1000000, "1000000"},
                 {4294967296u, "4294967296"},
                 {UINT64_C(10000000000000000000), "10000000000000000000"},
                 {UINT64_MAX, "18446744073709551615"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *want = cases[i].s;
        memset(buf, 'x', sizeof buf);
        size_t n = MHD_uint64_to_str(cases[i].v, buf, sizeof buf);
        buf[n < sizeof buf ? n : 0] = '\0';
        is_int(strcmp(buf, want), 0, "%s formatted (got %s)", want, buf);
        size_t len = strlen(want);
        is_int(MHD_uint64_to_str(cases[i].v, buf, len), len, "%s fits its exact size", want);
        is_int(MHD_uint64_to_str(cases[i].v, buf, len - 1), 0, "%s: a byte short gives 0", want);
    }
}

/* ---------------------------------------------------------------- served */

static struct MHD_Response *shared;
static char big_body[4000];
static char edge_body[257];

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    (void)cls, (void)method, (void)version, (void)upload, (void)upload_size;
    if (!*state) {
        *state = c;
        return MHD_YES;
    }
    if (strcmp(url, "/shared") == 0)
        return MHD_queue_response(c, MHD_HTTP_OK, shared);
    const char *body = "";
    size_t len = 0;
    if (strcmp(url, "/256") == 0)
        len = 256, body = edge_body;
    else if (strcmp(url, "/257") == 0)
        len = 257, body = edge_body;
    else if (strcmp(url, "/big") == 0)
        len = sizeof big_body, body = big_body;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "text/plain");
    MHD_add_response_header(r, "X-Request-ID", "0123456789abcdef0123456789abcdef");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* One GET with Connection: close; the whole reply into out (NUL-ended). */
static size_t get(int port, const char *path, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    size_t got = 0;
    if (fd < 0)
        return 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        char req[128];
        int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                         path);
        if (write(fd, req, (size_t)n) == n) {
            ssize_t r;
            while (got < cap - 1 && (r = read(fd, out + got, cap - 1 - got)) > 0)
                got += (size_t)r;
        }
    }
    close(fd);
    out[got] = '\0';
    return got;
}

static int port_of(struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    return di ? di->port : 0;
}

/* The body after the header block, or NULL. */
static const char *body_of(const char *reply)
{
    const char *p = strstr(reply, "\r\n\r\n");
    return p ? p + 4 : NULL;
}

typedef struct client {
    int port;
    int good;
} client;

static void *client_main(void *arg)
{
    client *cl = arg;
    char reply[1024];
    for (int i = 0; i < 50; i++) {
        get(cl->port, "/shared", reply, sizeof reply);
        const char *b = body_of(reply);
        if (b && strcmp(b, "{\"message\":\"hello\"}") == 0 &&
            strstr(reply, "\r\nContent-Length: 19\r\n") &&
            strstr(reply, "\r\nX-Request-ID: shared-0123456789\r\n") &&
            strstr(reply, "\r\nContent-Type: application/json\r\n"))
            cl->good++;
    }
    return NULL;
}

static void served(void)
{
    static const char hello[] = "{\"message\":\"hello\"}";
    for (size_t i = 0; i < sizeof big_body; i++)
        big_body[i] = (char)('a' + i % 26);
    for (size_t i = 0; i < sizeof edge_body; i++)
        edge_body[i] = (char)('A' + i % 26);
    shared =
        MHD_create_response_from_buffer(sizeof hello - 1, (void *)hello, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(shared, "Content-Type", "application/json");
    MHD_add_response_header(shared, "X-Request-ID", "shared-0123456789");

    /* a pool of two threads: the shared response is queued and released on
     * both at once */
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, on_request,
                         NULL, MHD_OPTION_THREAD_POOL_SIZE, 2u, MHD_OPTION_END);
    ok(d != NULL, "a daemon with two threads");
    if (!d)
        return;
    int port = port_of(d);
    char reply[8192];

    get(port, "/256", reply, sizeof reply);
    ok(strstr(reply, "\r\nContent-Length: 256\r\n") != NULL, "a 256-byte copied body's length");
    ok(body_of(reply) && strncmp(body_of(reply), edge_body, 256) == 0 &&
           strlen(body_of(reply)) == 256,
       "and its bytes (in the response's space)");
    get(port, "/257", reply, sizeof reply);
    ok(body_of(reply) && strncmp(body_of(reply), edge_body, 257) == 0 &&
           strlen(body_of(reply)) == 257,
       "a 257-byte copied body (malloc'ed)");
    get(port, "/big", reply, sizeof reply);
    ok(body_of(reply) && strlen(body_of(reply)) == sizeof big_body &&
           memcmp(body_of(reply), big_body, sizeof big_body) == 0,
       "a 4000-byte copied body");
    ok(strstr(reply, "\r\nX-Request-ID: 0123456789abcdef0123456789abcdef\r\n") != NULL,
       "its headers");
    get(port, "/empty", reply, sizeof reply);
    ok(strstr(reply, "\r\nContent-Length: 0\r\n") != NULL && body_of(reply) &&
           *body_of(reply) == '\0',
       "an empty copied body");

    client cl[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        cl[i] = (client){.port = port};
        pthread_create(&t[i], NULL, client_main, &cl[i]);
    }
    int good = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        good += cl[i].good;
    }
    is_int(good, 200, "a shared response, 200 times from 4 clients on 2 threads: all whole");
    MHD_stop_daemon(d);

    /* every connection let go of it: one reference left, ours; taking and
     * dropping more on several threads leaves it at one too */
    MHD_increment_response_rc(shared);
    MHD_destroy_response(shared);
    seen s;
    is_str(headers_of(shared, &s), "Content-Type=application/json;X-Request-ID=shared-0123456789;",
           "still alive after the connections and an extra reference");
    MHD_destroy_response(shared);
    ok(1, "freed by the last reference (the SAN build checks it is freed once)");
}

/* ------------------------------------------- one thread, no thread safety */

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Runs the daemon (on this thread, as glasgow's workers do) for up to ms
 * milliseconds, or until fd has given a whole reply (its headers and the
 * body they announce) or its end. Returns the bytes read, 0 at the end of
 * the connection, -1 when nothing whole came in time. */
static long drive(struct MHD_Daemon *d, int fd, char *out, size_t cap, unsigned ms)
{
    size_t got = 0;
    uint64_t until = now_ms() + ms;
    out[0] = '\0';
    while (now_ms() < until) {
        MHD_run(d);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5) <= 0)
            continue;
        ssize_t r = read(fd, out + got, cap - 1 - got);
        if (r <= 0)
            return got ? (long)got : 0;
        got += (size_t)r;
        out[got] = '\0';
        const char *b = body_of(out);
        const char *cl = strstr(out, "\r\nContent-Length: ");
        if (b && cl && strlen(b) >= strtoul(cl + 18, NULL, 10))
            return (long)got;
    }
    return -1;
}

static void single_threaded(void)
{
    static const char req[] = "GET /256 HTTP/1.1\r\nHost: t\r\n\r\n";
    char reply[2048];
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_NO_THREAD_SAFETY | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL,
        on_request, NULL, MHD_OPTION_CONNECTION_TIMEOUT, 1u, MHD_OPTION_END);
    ok(d != NULL, "a daemon without thread safety, run from this thread");
    if (!d)
        return;
    int port = port_of(d);
    int busy = connect_to(port), idle = connect_to(port);
    ok(busy >= 0 && idle >= 0, "two connections");
    /* the busy one asks every 200 ms for 1.6 s, keep-alive: each request
     * moves it to the head of the timeout list (without the lock); the idle
     * one never asks and must be closed after its 1 s */
    int answered = 0, asked = 0;
    for (uint64_t end = now_ms() + 1600; now_ms() < end; asked++) {
        if (write(busy, req, sizeof req - 1) != (ssize_t)(sizeof req - 1))
            break;
        long n = drive(d, busy, reply, sizeof reply, 1000);
        const char *b = body_of(reply);
        if (n > 0 && b && strncmp(b, edge_body, 256) == 0)
            answered++;
        drive(d, busy, reply, sizeof reply, 200);
    }
    ok(asked >= 5, "the busy connection asked %d times", asked);
    is_int(answered, asked, "and had every answer on the same connection");
    is_int(drive(d, idle, reply, sizeof reply, 500), 0, "the idle one was closed (timed out)");
    if (write(busy, req, sizeof req - 1) == (ssize_t)(sizeof req - 1))
        ok(drive(d, busy, reply, sizeof reply, 1000) > 0, "the busy one still answers");
    else
        ok(0, "the busy one still answers");
    close(busy);
    close(idle);
    MHD_stop_daemon(d);
}

int main(void)
{
    refused_input();
    special_names();
    many_headers();
    digits();
    served();
    single_threaded();
    return done_testing();
}
