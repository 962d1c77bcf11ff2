/*
 * netaddr: numeric IP addresses, CIDR sets, and the client address behind
 * trusted reverse proxies (GLASGOW_TRUSTED_PROXIES, X-Forwarded-For).
 *
 * Every address is held in 16 bytes: IPv6 as is, IPv4 as the IPv4-mapped
 * IPv6 address ::ffff:a.b.c.d, so one comparison serves both families and
 * a peer accepted on a dual-stack socket matches an IPv4 range. An IPv4
 * prefix /n is stored as /(96 + n); "0.0.0.0/0" therefore matches every
 * IPv4 address and no IPv6 one, while "::/0" matches everything.
 *
 * No name resolution, no I/O, no allocation: the parsers work on bounded
 * copies and can be fed anything.
 */
#ifndef GLASGOW_NETADDR_H
#define GLASGOW_NETADDR_H

#include <stddef.h>
#include <sys/socket.h>

#define NETADDR_SET_MAX 64         /* CIDRs in one set */
#define NETADDR_TEXT_MAX 64        /* longest address text read, brackets and port included */
#define NETADDR_FORWARD_HOPS 32    /* X-Forwarded-For elements examined at most */
#define NETADDR_FORWARD_HEADERS 16 /* X-Forwarded-For header lines read at most */

typedef struct netaddr {
    unsigned char b[16];
} netaddr;

typedef struct netaddr_cidr {
    netaddr net;   /* host bits zero */
    unsigned bits; /* 0..128 over the 16-byte form */
} netaddr_cidr;

typedef struct netaddr_set {
    netaddr_cidr v[NETADDR_SET_MAX];
    unsigned n;
} netaddr_set;

/*
 * Parses exactly one numeric address of n bytes (no brackets, port, zone or
 * surrounding space; IPv4 in dotted-quad without leading zeros). Returns 0,
 * or -1 leaving out unchanged.
 */
int netaddr_parse(const char *s, size_t n, netaddr *out);

/*
 * Parses "ADDR" (a single host: /32 or /128) or "ADDR/BITS" of n bytes.
 * BITS is decimal without sign or leading zeros, at most 32 for IPv4 and
 * 128 for IPv6. Bits set beyond the prefix are an error (10.0.0.1/8 is a
 * typo for 10.0.0.0/8 or 10.0.0.1/32, and guessing which is unsafe).
 * Returns 0, or -1 with a one-line reason in err (errlen bytes).
 */
int netaddr_parse_cidr(const char *s, size_t n, netaddr_cidr *out, char *err, size_t errlen);

/*
 * Parses a list of CIDRs separated by commas and/or white space into out;
 * an empty or blank list gives an empty set. Returns 0, or -1 with one
 * printable line in err naming the offending entry (control bytes escaped),
 * for a malformed entry or more than NETADDR_SET_MAX of them.
 */
int netaddr_set_parse(const char *list, netaddr_set *out, char *err, size_t errlen);

/* Returns 1 when a lies inside one of set's CIDRs, else 0. */
int netaddr_set_contains(const netaddr_set *set, const netaddr *a);

/*
 * Converts an AF_INET or AF_INET6 socket address (NULL allowed). Returns 0,
 * or -1 for anything else.
 */
int netaddr_from_sockaddr(const struct sockaddr *sa, netaddr *out);

/*
 * Prints a as inet_ntop does: IPv4 (and IPv4-mapped) addresses dotted,
 * others in RFC 5952 IPv6 form. out needs 46 bytes for every address.
 */
void netaddr_format(const netaddr *a, char *out, size_t n);

/*
 * The client address that X-Forwarded-For names, for a request whose TCP
 * peer is already known to be in trusted. values are the header's lines in
 * the order received (RFC 9110 5.3: together one comma-separated list).
 *
 * The list is walked from the right, the hop nearest to us: an address in
 * trusted is one of our proxies and is skipped, and the first one that is
 * not is the client. If every address is trusted, the leftmost is. An
 * element is an IPv4 address with an optional ":port", an IPv6 address, or
 * a bracketed IPv6 address with an optional ":port", with optional spaces
 * or tabs around it.
 *
 * Returns 1 with the client in out; 0 when there is no element (no header:
 * the peer is the client); -1 when an element reached in the walk is
 * malformed (empty, "unknown", a name, overlong) or the walk passes
 * NETADDR_FORWARD_HOPS elements or n exceeds NETADDR_FORWARD_HEADERS: the
 * caller then uses the peer, never a value it could not read. Elements left
 * of the client are never examined, so a spoofed prefix a client sends
 * cannot change the answer.
 */
int netaddr_forwarded(const netaddr_set *trusted, const char *const *values, size_t n,
                      netaddr *out);

#endif
