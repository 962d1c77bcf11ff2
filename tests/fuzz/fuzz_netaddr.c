/*
 * Fuzz target: runtime/netaddr.c (GLASGOW_TRUSTED_PROXIES, X-Forwarded-For).
 *
 * The first byte picks what the rest of the input is:
 *   'c'  a CIDR list for netaddr_set_parse: either refused with one
 *        printable line, or every entry prints and parses back to itself
 *        with its host bits clear;
 *   'x'  X-Forwarded-For header lines separated by '\n', walked with a
 *        fixed trusted set: the answer must equal a reference walk written
 *        independently (all elements split first, parsed with sscanf),
 *        and a junk element put in front of the first line must not change
 *        an answer that named an untrusted client.
 * Any other first byte picks one by its parity.
 */
#include "fuzz.h"
#include "netaddr.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>

static void check_set(const char *text)
{
    netaddr_set s;
    char err[512];
    err[0] = '\0';
    if (netaddr_set_parse(text, &s, err, sizeof err) < 0) {
        fuzz_check(err[0], "refused without a message");
        for (const char *p = err; *p; p++)
            fuzz_check(isprint((unsigned char)*p), "message is not one printable line: %s", err);
        return;
    }
    fuzz_check(s.n <= NETADDR_SET_MAX, "%u entries", s.n);
    for (unsigned i = 0; i < s.n; i++) {
        char addr[INET6_ADDRSTRLEN], again[INET6_ADDRSTRLEN + 8];
        netaddr_format(&s.v[i].net, addr, sizeof addr);
        int v4 = !strchr(addr, ':');
        fuzz_check(s.v[i].bits <= 128 && (!v4 || s.v[i].bits >= 96), "%s: bits %u", addr,
                   s.v[i].bits);
        snprintf(again, sizeof again, "%s/%u", addr, v4 ? s.v[i].bits - 96 : s.v[i].bits);
        netaddr_cidr c;
        fuzz_check(netaddr_parse_cidr(again, strlen(again), &c, err, sizeof err) == 0,
                   "\"%s\" does not parse back: %s", again, err);
        fuzz_check(c.bits == s.v[i].bits && !memcmp(&c.net, &s.v[i].net, sizeof c.net),
                   "\"%s\" parses back differently", again);
        fuzz_check(netaddr_set_contains(&s, &c.net), "%s is not in its own set", again);
    }
}

/* ---- the reference X-Forwarded-For walk ---------------------------------------- */

#define REF_MAX 4096

/* One element as the contract in netaddr.h describes it. */
static int ref_element(const char *e, netaddr *out)
{
    char host[NETADDR_TEXT_MAX + 1], tail[NETADDR_TEXT_MAX + 1];
    size_t n = strlen(e);
    while (n && (e[n - 1] == ' ' || e[n - 1] == '\t'))
        n--;
    while (n && (*e == ' ' || *e == '\t'))
        e++, n--;
    if (n == 0 || n > NETADDR_TEXT_MAX)
        return -1;
    char el[NETADDR_TEXT_MAX + 1];
    memcpy(el, e, n);
    el[n] = '\0';
    unsigned char bin[16];
    const char *colon = strchr(el, ':');
    if (el[0] == '[') {
        int used = 0;
        tail[0] = '\0';
        if (sscanf(el, "[%64[0-9a-fA-F:.]]%n", host, &used) != 1 || used == 0)
            return -1;
        snprintf(tail, sizeof tail, "%s", el + used);
        if (tail[0] &&
            (tail[0] != ':' || strlen(tail) < 2 || strlen(tail) > 6 ||
             strspn(tail + 1, "0123456789") != strlen(tail) - 1 || atoi(tail + 1) > 65535))
            return -1;
        return inet_pton(AF_INET6, host, bin) == 1 ? netaddr_parse(host, strlen(host), out) : -1;
    }
    if (colon && !strchr(colon + 1, ':')) {
        const char *port = colon + 1;
        if (!*port || strlen(port) > 5 || strspn(port, "0123456789") != strlen(port) ||
            atoi(port) > 65535)
            return -1;
        memcpy(host, el, (size_t)(colon - el));
        host[colon - el] = '\0';
        return inet_pton(AF_INET, host, bin) == 1 ? netaddr_parse(host, strlen(host), out) : -1;
    }
    if (inet_pton(colon ? AF_INET6 : AF_INET, el, bin) != 1)
        return -1;
    return netaddr_parse(el, n, out);
}

static int ref_forwarded(const netaddr_set *t, char *const *lines, size_t n, netaddr *out)
{
    static char *elems[REF_MAX];
    static char buf[REF_MAX * 2];
    size_t ne = 0, used = 0;
    if (n > NETADDR_FORWARD_HEADERS)
        return -1;
    for (size_t i = 0; i < n; i++) { /* split everything first, left to right */
        const char *p = lines[i];
        for (;;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            if (ne == REF_MAX || used + len + 1 > sizeof buf)
                return -2; /* too big to model: skip */
            elems[ne++] = memcpy(buf + used, p, len);
            buf[used + len] = '\0';
            used += len + 1;
            if (!comma)
                break;
            p = comma + 1;
        }
    }
    if (ne == 0)
        return 0;
    for (size_t k = 0; k < ne; k++) {
        if (k == NETADDR_FORWARD_HOPS)
            return -1;
        netaddr a;
        if (ref_element(elems[ne - 1 - k], &a) < 0)
            return -1;
        *out = a;
        if (!netaddr_set_contains(t, &a))
            return 1;
    }
    return 1;
}

static void check_forwarded(char *text)
{
    static netaddr_set trusted;
    static int ready;
    char err[256];
    if (!ready) {
        fuzz_check(netaddr_set_parse("10.0.0.0/8, 127.0.0.1, fd00::/8, 192.168.1.128/25", &trusted,
                                     err, sizeof err) == 0,
                   "%s", err);
        ready = 1;
    }
    char *lines[NETADDR_FORWARD_HEADERS + 2];
    size_t n = 0;
    for (char *p = text; n < sizeof lines / sizeof lines[0];) {
        lines[n++] = p;
        char *nl = strchr(p, '\n');
        if (!nl)
            break;
        *nl = '\0';
        p = nl + 1;
    }
    if (n == 1 && !lines[0][0])
        n = 0; /* empty input: no header */
    netaddr got, want;
    int rc = netaddr_forwarded(&trusted, (const char *const *)lines, n, &got);
    int want_rc = ref_forwarded(&trusted, lines, n, &want);
    if (want_rc == -2)
        return;
    fuzz_check(rc == want_rc, "returned %d, the reference %d", rc, want_rc);
    if (rc != 1)
        return;
    char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
    netaddr_format(&got, a, sizeof a);
    netaddr_format(&want, b, sizeof b);
    fuzz_check(!memcmp(&got, &want, sizeof got), "client %s, the reference %s", a, b);
    if (n == 0 || netaddr_set_contains(&trusted, &got))
        return;
    /* what a client prepends cannot move the answer */
    size_t len = strlen(lines[0]);
    char *spoofed = xmalloc(len + 32);
    snprintf(spoofed, len + 32, "6.6.6.6, junk, %s", lines[0]);
    char *first = lines[0];
    lines[0] = spoofed;
    netaddr again;
    rc = netaddr_forwarded(&trusted, (const char *const *)lines, n, &again);
    lines[0] = first;
    free(spoofed);
    fuzz_check(rc == 1 && !memcmp(&again, &got, sizeof got), "a prefix changed the client %s", a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    char mode = data[0] == 'c' || data[0] == 'x' ? (char)data[0] : "cx"[data[0] & 1];
    char *text = xmalloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    if (mode == 'c')
        check_set(text);
    else
        check_forwarded(text);
    free(text);
    return 0;
}
