/*
 * The libmicrohttpd behaviour that streamed bodies (bodystream.h, httpd.c)
 * are built on, checked on the library we link (DESIGN.md section 5, "How
 * the bytes flow"), in the mode the server uses: external epoll, one
 * thread, MHD_run after each wait.
 *
 * 1. An access handler that leaves upload data unconsumed and suspends the
 *    connection stops the reading: the client can push only what the
 *    socket buffers and the connection's memory pool hold, and the handler
 *    is not called again; resuming delivers the rest, byte for byte.
 * 2. A response callback that returns 0 together with a suspend is not
 *    called again (no busy loop) until the connection is resumed; the
 *    same callback without the suspend is called over and over, which is
 *    the pitfall the server avoids.
 */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"

#define MEM_LIMIT 16384
#define BODY_BYTES (8u << 20)

typedef struct state {
    struct MHD_Connection *conn;
    int stall; /* leave body data unconsumed and suspend */
    int suspended;
    unsigned body_calls; /* access-handler calls with body data */
    unsigned final_calls;
    uint64_t received;
    uint32_t sum; /* of the bytes received, to compare with the sent ones */
    /* response test */
    int suspend_on_empty;
    unsigned crc_calls;
    const char *data; /* what the callback has to give, NULL: nothing yet */
    int data_given;
} state;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static ssize_t crc(void *cls, uint64_t pos, char *buf, size_t max)
{
    state *s = cls;
    (void)pos;
    s->crc_calls++;
    if (s->data && !s->data_given) {
        size_t n = strlen(s->data);
        if (n > max)
            n = max;
        memcpy(buf, s->data, n);
        s->data_given = 1;
        return (ssize_t)n;
    }
    if (s->data_given)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (s->suspend_on_empty) {
        MHD_suspend_connection(s->conn);
        s->suspended = 1;
    }
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req_cls)
{
    state *s = cls;
    (void)url;
    (void)method;
    (void)version;
    if (!*req_cls) {
        *req_cls = s;
        s->conn = conn;
        return MHD_YES;
    }
    if (*upload_size) {
        s->body_calls++;
        if (s->stall) {
            MHD_suspend_connection(conn);
            s->suspended = 1;
            return MHD_YES;
        }
        for (size_t i = 0; i < *upload_size; i++)
            s->sum = s->sum * 31u + (unsigned char)upload[i];
        s->received += *upload_size;
        *upload_size = 0;
        return MHD_YES;
    }
    s->final_calls++;
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, crc, s, NULL);
    enum MHD_Result ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

typedef struct server {
    struct MHD_Daemon *d;
    int epfd; /* ours, watching libmicrohttpd's (waiting on that one directly
               * would consume the events MHD_run is looking for) */
    int port;
} server;

static int start(server *sv, state *s)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int small = 4096, one = 1;
    /* small kernel buffers (inherited by accepted sockets) so that the bound
     * on what the client can push is dominated by what we measure */
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 8) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        return -1;
    sv->port = ntohs(a.sin_port);
    sv->d = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL, on_request, s,
                             MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                             (size_t)MEM_LIMIT, MHD_OPTION_END);
    if (!sv->d)
        return -1;
    struct epoll_event ev = {.events = EPOLLIN};
    sv->epfd = epoll_create1(EPOLL_CLOEXEC);
    return epoll_ctl(sv->epfd, EPOLL_CTL_ADD,
                     MHD_get_daemon_info(sv->d, MHD_DAEMON_INFO_EPOLL_FD)->epoll_fd, &ev);
}

/* One server iteration, as the worker does it: wait on libmicrohttpd's
 * epoll descriptor (up to its timeout, at most wait_ms), then MHD_run. */
static void step(server *sv, int wait_ms)
{
    MHD_UNSIGNED_LONG_LONG to;
    if (MHD_get_timeout(sv->d, &to) == MHD_YES && (int)to < wait_ms)
        wait_ms = (int)to;
    struct epoll_event ev;
    epoll_wait(sv->epfd, &ev, 1, wait_ms);
    MHD_run(sv->d);
}

static int client(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)port)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        return -1;
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* Sends what the socket takes now of a deterministic body; returns bytes. */
static size_t push(int fd, uint64_t *sent, uint32_t *sum)
{
    char buf[8192];
    size_t total = 0;
    while (*sent < BODY_BYTES) {
        size_t n = sizeof buf;
        if (BODY_BYTES - *sent < n)
            n = (size_t)(BODY_BYTES - *sent);
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)((*sent + i) * 7u + 3u);
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        for (ssize_t i = 0; i < w; i++)
            *sum = *sum * 31u + (unsigned char)buf[i];
        *sent += (uint64_t)w;
        total += (size_t)w;
    }
    return total;
}

static void test_upload_backpressure(void)
{
    state s;
    server sv;
    memset(&s, 0, sizeof s);
    s.stall = 1;
    if (start(&sv, &s) < 0) {
        ok(0, "daemon starts");
        return;
    }
    int fd = client(sv.port);
    char hdr[160];
    int hl = snprintf(hdr, sizeof hdr, "PUT /up HTTP/1.1\r\nHost: t\r\nContent-Length: %u\r\n\r\n",
                      BODY_BYTES);
    ok(send(fd, hdr, (size_t)hl, 0) == hl, "headers sent");
    uint64_t sent = 0;
    uint32_t sum = 0;
    uint64_t t0 = now_ms(), last_progress = t0, c0 = cpu_ms();
    while (now_ms() - last_progress < 300 && now_ms() - t0 < 5000) {
        if (push(fd, &sent, &sum) > 0)
            last_progress = now_ms();
        step(&sv, 10);
    }
    uint64_t cpu = cpu_ms() - c0, wall = now_ms() - t0;
    printf("# stalled: client pushed %llu bytes before blocking; %u body call(s); "
           "cpu %llu ms in %llu ms\n",
           (unsigned long long)sent, s.body_calls, (unsigned long long)cpu,
           (unsigned long long)wall);
    ok(s.suspended, "the handler suspended with the data unconsumed");
    is_int(s.body_calls, 1, "a suspended connection's handler is not called again");
    ok(sent < 1024 * 1024, "the client cannot push more than the buffers hold (%llu bytes)",
       (unsigned long long)sent);
    ok(cpu < wall / 2 + 20, "no busy loop while suspended");

    /* resume: everything arrives, in order */
    s.stall = 0;
    s.suspended = 0;
    MHD_resume_connection(s.conn);
    t0 = now_ms();
    while (s.final_calls == 0 && now_ms() - t0 < 20000) {
        push(fd, &sent, &sum);
        step(&sv, 10);
    }
    is_int(s.received, BODY_BYTES, "after resume the whole body is delivered");
    ok(s.sum == sum, "byte for byte, the unconsumed part included");
    is_int(s.final_calls, 1, "and the request completes");
    close(fd);
    MHD_stop_daemon(sv.d);
    close(sv.epfd);
}

/* A GET answered from a callback that has nothing yet: with or without a
 * suspend along with the 0. */
static void test_response_callback(int suspend_on_empty)
{
    state s;
    server sv;
    memset(&s, 0, sizeof s);
    s.suspend_on_empty = suspend_on_empty;
    if (start(&sv, &s) < 0) {
        ok(0, "daemon starts");
        return;
    }
    int fd = client(sv.port);
    const char *req = "GET /down HTTP/1.1\r\nHost: t\r\n\r\n";
    ok(send(fd, req, strlen(req), 0) == (ssize_t)strlen(req), "request sent");
    uint64_t t0 = now_ms(), c0 = cpu_ms();
    unsigned runs = 0;
    while (now_ms() - t0 < 300) {
        step(&sv, 10);
        runs++;
    }
    uint64_t cpu = cpu_ms() - c0;
    printf("# %s: %u callback call(s), %u runs, cpu %llu ms in 300 ms\n",
           suspend_on_empty ? "with suspend" : "without suspend", s.crc_calls, runs,
           (unsigned long long)cpu);
    if (!suspend_on_empty) {
        ok(s.crc_calls > 100, "without a suspend, returning 0 makes libmicrohttpd spin (%u calls)",
           s.crc_calls);
        close(fd);
        MHD_stop_daemon(sv.d);
        close(sv.epfd);
        return;
    }
    is_int(s.crc_calls, 1, "returning 0 with a suspend: the callback is not called again");
    ok(cpu < 150, "and the thread is idle meanwhile");
    s.data = "hello";
    s.suspended = 0;
    MHD_resume_connection(s.conn);
    char buf[1024] = "";
    size_t got = 0;
    t0 = now_ms();
    while (now_ms() - t0 < 3000 && !strstr(buf, "0\r\n\r\n")) {
        step(&sv, 10);
        ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (n > 0)
            got += (size_t)n;
        buf[got] = '\0';
    }
    ok(strstr(buf, "HTTP/1.1 200") == buf, "after resume the response goes out");
    ok(strstr(buf, "\r\n\r\n5\r\nhello\r\n0\r\n\r\n") != NULL, "with the data given after resume");
    close(fd);
    MHD_stop_daemon(sv.d);
    close(sv.epfd);
}

int main(void)
{
    test_upload_backpressure();
    test_response_callback(1);
    test_response_callback(0);
    return done_testing();
}
