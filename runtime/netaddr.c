/*
 * netaddr: numeric addresses, CIDR sets and X-Forwarded-For (netaddr.h).
 */
#include "netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

static const unsigned char v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int is_v4(const netaddr *a)
{
    return !memcmp(a->b, v4_mapped_prefix, sizeof v4_mapped_prefix);
}

int netaddr_parse(const char *s, size_t n, netaddr *out)
{
    char buf[NETADDR_TEXT_MAX];
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (strlen(buf) != n) /* a NUL inside */
        return -1;
    netaddr a;
    if (memchr(buf, ':', n)) {
        if (inet_pton(AF_INET6, buf, a.b) != 1)
            return -1;
    } else {
        memcpy(a.b, v4_mapped_prefix, sizeof v4_mapped_prefix);
        if (inet_pton(AF_INET, buf, a.b + 12) != 1)
            return -1;
    }
    *out = a;
    return 0;
}

/* Zeroes every bit of a past the first bits; returns 1 if any was set. */
static int clear_host_bits(netaddr *a, unsigned bits)
{
    int had = 0;
    for (unsigned i = 0; i < 16; i++) {
        unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * i : 0;
        unsigned char mask = (unsigned char)(keep ? 0xff << (8 - keep) : 0);
        if (a->b[i] & (unsigned char)~mask)
            had = 1;
        a->b[i] &= mask;
    }
    return had;
}

int netaddr_parse_cidr(const char *s, size_t n, netaddr_cidr *out, char *err, size_t errlen)
{
    const char *slash = memchr(s, '/', n);
    size_t alen = slash ? (size_t)(slash - s) : n;
    netaddr a;
    if (netaddr_parse(s, alen, &a) < 0) {
        snprintf(err, errlen, "not a numeric IPv4 or IPv6 address");
        return -1;
    }
    int v4 = !memchr(s, ':', alen);
    unsigned max = v4 ? 32 : 128, bits = max;
    if (slash) {
        const char *p = slash + 1, *end = s + n;
        if (p == end || (*p == '0' && end - p > 1)) {
            snprintf(err, errlen, "the prefix length must be a number from 0 to %u", max);
            return -1;
        }
        bits = 0;
        for (; p < end; p++) {
            if (*p < '0' || *p > '9' || bits > max) {
                snprintf(err, errlen, "the prefix length must be a number from 0 to %u", max);
                return -1;
            }
            bits = bits * 10 + (unsigned)(*p - '0');
        }
        if (bits > max) {
            snprintf(err, errlen, "the prefix length must be a number from 0 to %u", max);
            return -1;
        }
    }
    unsigned bits16 = v4 ? bits + 96 : bits;
    netaddr net = a;
    if (clear_host_bits(&net, bits16)) {
        char text[INET6_ADDRSTRLEN];
        netaddr_format(&net, text, sizeof text);
        snprintf(err, errlen, "bits are set past the /%u prefix (did you mean %s/%u?)", bits, text,
                 bits);
        return -1;
    }
    out->net = net;
    out->bits = bits16;
    return 0;
}

static int is_sep(char c)
{
    return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int netaddr_set_parse(const char *list, netaddr_set *out, char *err, size_t errlen)
{
    netaddr_set set;
    set.n = 0;
    const char *p = list;
    for (;;) {
        while (*p && is_sep(*p))
            p++;
        if (!*p)
            break;
        const char *start = p;
        while (*p && !is_sep(*p))
            p++;
        size_t len = (size_t)(p - start);
        char quoted[UTIL_QUOTE_MAX], why[128];
        util_quote(start, len, quoted);
        if (set.n == NETADDR_SET_MAX) {
            snprintf(err, errlen, "more than %d entries", NETADDR_SET_MAX);
            return -1;
        }
        if (netaddr_parse_cidr(start, len, &set.v[set.n], why, sizeof why) < 0) {
            snprintf(err, errlen, "\"%s\": %s", quoted, why);
            return -1;
        }
        set.n++;
    }
    *out = set;
    return 0;
}

int netaddr_set_contains(const netaddr_set *set, const netaddr *a)
{
    for (unsigned i = 0; i < set->n; i++) {
        const netaddr_cidr *c = &set->v[i];
        unsigned whole = c->bits / 8, rest = c->bits % 8;
        if (memcmp(a->b, c->net.b, whole) != 0)
            continue;
        if (rest && ((a->b[whole] ^ c->net.b[whole]) & (unsigned char)(0xff << (8 - rest))))
            continue;
        return 1;
    }
    return 0;
}

int netaddr_from_sockaddr(const struct sockaddr *sa, netaddr *out)
{
    if (!sa)
        return -1;
    if (sa->sa_family == AF_INET6) {
        memcpy(out->b, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        return 0;
    }
    if (sa->sa_family == AF_INET) {
        memcpy(out->b, v4_mapped_prefix, sizeof v4_mapped_prefix);
        memcpy(out->b + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return 0;
    }
    return -1;
}

void netaddr_format(const netaddr *a, char *out, size_t n)
{
    if (n == 0)
        return;
    const char *r = is_v4(a) ? inet_ntop(AF_INET, a->b + 12, out, (socklen_t)n)
                             : inet_ntop(AF_INET6, a->b, out, (socklen_t)n);
    if (!r)
        out[0] = '\0';
}

/* One X-Forwarded-For element, s[0..n) with spaces around it: an address,
 * "a.b.c.d:port", or "[v6]" / "[v6]:port". Returns 0 or -1. */
static int parse_element(const char *s, size_t n, netaddr *out)
{
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n == 0 || n > NETADDR_TEXT_MAX)
        return -1;
    const char *host = s, *port = NULL;
    size_t hlen = n;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close)
            return -1;
        host = s + 1;
        hlen = (size_t)(close - host);
        if (!memchr(host, ':', hlen)) /* brackets hold IPv6 only */
            return -1;
        size_t after = n - (size_t)(close + 1 - s);
        if (after) {
            if (close[1] != ':')
                return -1;
            port = close + 2;
        }
    } else {
        const char *colon = memchr(s, ':', n);
        if (colon && !memchr(colon + 1, ':', n - (size_t)(colon + 1 - s))) {
            hlen = (size_t)(colon - s); /* exactly one colon: IPv4 with a port */
            port = colon + 1;
        }
    }
    if (port) {
        size_t plen = n - (size_t)(port - s);
        unsigned v = 0;
        if (plen == 0 || plen > 5)
            return -1;
        for (size_t i = 0; i < plen; i++) {
            if (port[i] < '0' || port[i] > '9')
                return -1;
            v = v * 10 + (unsigned)(port[i] - '0');
        }
        if (v > 65535)
            return -1;
    }
    return netaddr_parse(host, hlen, out);
}

int netaddr_forwarded(const netaddr_set *trusted, const char *const *values, size_t n, netaddr *out)
{
    unsigned hops = 0;
    netaddr last = {{0}};
    if (n > NETADDR_FORWARD_HEADERS)
        return -1;
    for (size_t h = n; h-- > 0;) {
        const char *v = values[h];
        size_t end = strlen(v);
        for (;;) {
            size_t start = end;
            while (start > 0 && v[start - 1] != ',')
                start--;
            netaddr a;
            if (++hops > NETADDR_FORWARD_HOPS || parse_element(v + start, end - start, &a) < 0)
                return -1;
            if (!netaddr_set_contains(trusted, &a)) {
                *out = a;
                return 1;
            }
            last = a;
            if (start == 0)
                break;
            end = start - 1; /* before the comma */
        }
    }
    if (hops == 0)
        return 0;
    *out = last;
    return 1;
}
