/* netaddr: address and CIDR parsing, set membership, X-Forwarded-For. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>

#include "netaddr.h"
#include "tap.h"

static const char *fmt(const netaddr *a)
{
    static char buf[4][INET6_ADDRSTRLEN];
    static int i;
    i = (i + 1) % 4;
    netaddr_format(a, buf[i], sizeof buf[i]);
    return buf[i];
}

static const char *parsed(const char *s)
{
    netaddr a;
    if (netaddr_parse(s, strlen(s), &a) < 0)
        return "(refused)";
    return fmt(&a);
}

static void test_parse(void)
{
    is_str(parsed("203.0.113.7"), "203.0.113.7", "IPv4");
    is_str(parsed("2001:DB8:0:0:0:0:0:1"), "2001:db8::1", "IPv6, printed in RFC 5952 form");
    is_str(parsed("::ffff:10.1.2.3"), "10.1.2.3", "IPv4-mapped IPv6 is the IPv4 address");
    is_str(parsed("::"), "::", "the unspecified IPv6 address");
    static const char *const bad[] = {
        "",           "1.2.3",        "1.2.3.4.5",        "256.1.1.1",
        "01.2.3.4",   " 1.2.3.4",     "1.2.3.4 ",         "1.2.3.4:80",
        "[::1]",      "fe80::1%eth0", "localhost",        "unknown",
        "1.2.3.4/32", "2001:db8:::1", "0x7f.0.0.1",       "1.2.3.-4",
        "::1::",      "12345::",      "1:2:3:4:5:6:7:8:9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        is_str(parsed(bad[i]), "(refused)", "refused: \"%s\"", bad[i]);
    netaddr a;
    is_int(netaddr_parse("1.2.3.4\0"
                         "5",
                         9, &a),
           -1, "a NUL inside is refused");
    char longv[200];
    memset(longv, '1', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    is_int(netaddr_parse(longv, strlen(longv), &a), -1, "overlong text is refused");
}

static const char *cidr(const char *s)
{
    static char out[256];
    netaddr_cidr c;
    char err[200];
    if (netaddr_parse_cidr(s, strlen(s), &c, err, sizeof err) < 0) {
        snprintf(out, sizeof out, "error: %s", err);
        return out;
    }
    snprintf(out, sizeof out, "%s/%u", fmt(&c.net), c.bits);
    return out;
}

static void test_cidr(void)
{
    is_str(cidr("10.0.0.0/8"), "10.0.0.0/104", "IPv4 /8 is /104 over 16 bytes");
    is_str(cidr("10.42.0.7"), "10.42.0.7/128", "a bare IPv4 address is one host");
    is_str(cidr("0.0.0.0/0"), "0.0.0.0/96", "all of IPv4");
    is_str(cidr("fd00::/8"), "fd00::/8", "IPv6 /8");
    is_str(cidr("::/0"), "::/0", "everything");
    is_str(cidr("2001:db8::1"), "2001:db8::1/128", "a bare IPv6 address is one host");
    is_str(cidr("10.0.0.1/8"), "error: bits are set past the /8 prefix (did you mean 10.0.0.0/8?)",
           "host bits set: refused with the likely meaning");
    is_str(cidr("2001:db8::1/32"),
           "error: bits are set past the /32 prefix (did you mean 2001:db8::/32?)",
           "IPv6 host bits set: refused");
    static const char *const bad[] = {"10.0.0.0/33",          "::/129",         "10.0.0.0/",
                                      "10.0.0.0/08",          "10.0.0.0/-1",    "10.0.0.0/8/8",
                                      "10.0.0.0/+8",          "10/8",           "/8",
                                      "10.0.0.0/99999999999", "host.example/32"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ok(!strncmp(cidr(bad[i]), "error: ", 7), "refused: \"%s\" (%s)", bad[i], cidr(bad[i]));
    is_str(cidr("10.0.0.0/33"), "error: the prefix length must be a number from 0 to 32",
           "the message gives the IPv4 range");
    is_str(cidr("192.168.1.0/24"), "192.168.1.0/120", "a /24");
    is_str(cidr("192.168.1.128/25"), "192.168.1.128/121", "a /25: partial byte");
    is_str(cidr("192.168.1.129/25"),
           "error: bits are set past the /25 prefix (did you mean 192.168.1.128/25?)",
           "a /25 with a host bit set");
}

static netaddr_set set_of(const char *list)
{
    netaddr_set s;
    char err[300];
    if (netaddr_set_parse(list, &s, err, sizeof err) < 0) {
        printf("# %s: %s\n", list, err);
        s.n = 999;
    }
    return s;
}

static int in(const netaddr_set *s, const char *addr)
{
    netaddr a;
    if (netaddr_parse(addr, strlen(addr), &a) < 0)
        return -1;
    return netaddr_set_contains(s, &a);
}

static void test_set(void)
{
    netaddr_set s = set_of(" 10.42.0.0/16,\tfd00:1::/32 192.168.5.5 ,, ");
    is_int(s.n, 3, "commas and white space separate entries; empty ones are skipped");
    is_int(in(&s, "10.42.255.1"), 1, "inside the IPv4 range");
    is_int(in(&s, "10.43.0.1"), 0, "outside the IPv4 range");
    is_int(in(&s, "::ffff:10.42.0.9"), 1, "an IPv4-mapped peer matches the IPv4 range");
    is_int(in(&s, "fd00:1:ffff::1"), 1, "inside the IPv6 range");
    is_int(in(&s, "fd00:2::1"), 0, "outside the IPv6 range");
    is_int(in(&s, "192.168.5.5"), 1, "the single host");
    is_int(in(&s, "192.168.5.6"), 0, "its neighbour");
    netaddr_set all4 = set_of("0.0.0.0/0");
    is_int(in(&all4, "8.8.8.8"), 1, "0.0.0.0/0 holds every IPv4 address");
    is_int(in(&all4, "2001:db8::1"), 0, "... and no IPv6 one");
    netaddr_set all = set_of("::/0");
    is_int(in(&all, "8.8.8.8") + in(&all, "2001:db8::1"), 2, "::/0 holds everything");
    netaddr_set empty = set_of("  ");
    is_int(empty.n, 0, "a blank list is an empty set");
    is_int(in(&empty, "127.0.0.1"), 0, "the empty set holds nothing");
    netaddr_set part = set_of("10.0.0.128/25");
    is_int(in(&part, "10.0.0.200") * 2 + in(&part, "10.0.0.127"), 2, "a /25 splits a byte");

    char err[300];
    netaddr_set s2;
    is_int(netaddr_set_parse("10.0.0.0/8,10.0.0.1/8", &s2, err, sizeof err), -1,
           "one bad entry fails the list");
    is_str(err, "\"10.0.0.1/8\": bits are set past the /8 prefix (did you mean 10.0.0.0/8?)",
           "the message names the entry");
    is_int(netaddr_set_parse("10.0.0.0/8;fd00::/8", &s2, err, sizeof err), -1,
           "a semicolon is no separator");
    is_int(netaddr_set_parse("1.2.3.4\x01\"x", &s2, err, sizeof err), -1, "control bytes");
    is_str(err, "\"1.2.3.4\\x01\\x22x\": not a numeric IPv4 or IPv6 address",
           "control bytes and quotes are escaped in the message");
    char many[65 * 16] = "";
    for (int i = 0; i < 65; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "10.0.%d.0/24,", i);
    is_int(netaddr_set_parse(many, &s2, err, sizeof err), -1, "65 entries are too many");
    is_str(err, "more than 64 entries", "... and say so");
}

/* netaddr_forwarded over lines separated by '|' (one header line each). */
static const char *fwd(const netaddr_set *trusted, const char *spec)
{
    static char out[128];
    char copy[4096];
    const char *lines[40];
    size_t n = 0;
    snprintf(copy, sizeof copy, "%s", spec);
    if (spec[0]) {
        char *p = copy;
        for (;;) {
            lines[n++] = p;
            char *bar = strchr(p, '|');
            if (!bar)
                break;
            *bar = '\0';
            p = bar + 1;
        }
    }
    netaddr a;
    int rc = netaddr_forwarded(trusted, lines, n, &a);
    if (rc == 1)
        snprintf(out, sizeof out, "%s", fmt(&a));
    else
        snprintf(out, sizeof out, "%s", rc == 0 ? "(none)" : "(peer)");
    return out;
}

static void test_forwarded(void)
{
    netaddr_set t = set_of("10.42.0.0/16, fd00::/8, 127.0.0.1");
    /* header lines separated by '|', the answer, what the case shows */
    static const char *const cases[][3] = {
        {"", "(none)", "no header: the peer"},
        {"203.0.113.7", "203.0.113.7", "one hop"},
        {"1.1.1.1, 203.0.113.7", "203.0.113.7",
         "the rightmost untrusted hop, not the spoofable leftmost"},
        {"198.51.100.1, 203.0.113.7, 10.42.3.4, 10.42.0.1", "203.0.113.7",
         "a chain of trusted proxies is skipped"},
        {"garbage, <script>, 203.0.113.7", "203.0.113.7",
         "garbage left of the client is never read"},
        {"203.0.113.7, garbage", "(peer)", "garbage where the walk reads: the peer"},
        {"203.0.113.7,, 10.42.0.1", "(peer)", "an empty element: the peer"},
        {"unknown", "(peer)", "\"unknown\": the peer"},
        {" ", "(peer)", "a blank line: the peer"},
        {" 203.0.113.7\t", "203.0.113.7", "spaces and tabs around an element"},
        {"203.0.113.7 ,\t10.42.0.1 ", "203.0.113.7", "spaces around commas"},
        {"203.0.113 .7", "(peer)", "a space inside an element"},
        {"203.0.113.7:51234", "203.0.113.7", "IPv4 with a port"},
        {"203.0.113.7:", "(peer)", "IPv4 with an empty port"},
        {"203.0.113.7:65536", "(peer)", "IPv4 with a port out of range"},
        {"203.0.113.7:8a", "(peer)", "IPv4 with a non-numeric port"},
        {"2001:db8::7", "2001:db8::7", "IPv6"},
        {"[2001:db8::7]", "2001:db8::7", "bracketed IPv6"},
        {"[2001:db8::7]:443", "2001:db8::7", "bracketed IPv6 with a port"},
        {"[2001:db8::7]x", "(peer)", "junk after the bracket"},
        {"[2001:db8::7", "(peer)", "unclosed bracket"},
        {"[203.0.113.7]", "(peer)", "IPv4 in brackets"},
        {"2001:db8::7, fd00::1, [fd12::9]:80", "2001:db8::7", "IPv6 trusted proxies skipped"},
        {"::ffff:203.0.113.7", "203.0.113.7", "IPv4-mapped prints as IPv4"},
        {"::ffff:10.42.0.5, 10.42.0.1", "10.42.0.5",
         "every hop trusted: the leftmost (IPv4-mapped seen as IPv4)"},
        {"fe80::1%eth0", "(peer)", "a zone index"},
        {"client.example.com", "(peer)", "a name"},
        {"198.51.100.9|203.0.113.7", "203.0.113.7",
         "two header lines: the last line's last element is the nearest hop"},
        {"203.0.113.7|10.42.0.1, 10.42.0.2", "203.0.113.7",
         "two lines, trusted hops in the second"},
        {"203.0.113.7, 10.42.0.9|", "(peer)", "an empty last line: the peer"},
        {"203.0.113.7\xff", "(peer)", "a non-ASCII byte"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        is_str(fwd(&t, cases[i][0]), cases[i][1], "%s", cases[i][2]);

    char longv[200];
    memset(longv, '9', 100);
    longv[100] = '\0';
    is_str(fwd(&t, longv), "(peer)", "an overlong element");
    char chain[2048] = "203.0.113.7";
    for (int i = 0; i < 31; i++)
        snprintf(chain + strlen(chain), sizeof chain - strlen(chain), ", 10.42.0.%d", i);
    is_str(fwd(&t, chain), "203.0.113.7", "31 trusted hops and the client: 32 examined");
    snprintf(chain + strlen(chain), sizeof chain - strlen(chain), ", 10.42.1.1");
    is_str(fwd(&t, chain), "(peer)", "32 trusted hops: past the limit, the peer");
    char lines[4096] = "";
    for (int i = 0; i < 16; i++)
        snprintf(lines + strlen(lines), sizeof lines - strlen(lines), "%s203.0.113.%d",
                 i ? "|" : "", i);
    is_str(fwd(&t, lines), "203.0.113.15", "16 header lines are read");
    snprintf(lines + strlen(lines), sizeof lines - strlen(lines), "|203.0.113.99");
    is_str(fwd(&t, lines), "(peer)", "17 header lines: the peer");

    netaddr_set none = set_of("");
    is_str(fwd(&none, "1.1.1.1, 203.0.113.7"), "203.0.113.7",
           "with nothing trusted the nearest hop is the client");
}

static void test_sockaddr(void)
{
    struct sockaddr_in in4 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "192.0.2.1", &in4.sin_addr);
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "2001:db8::2", &in6.sin6_addr);
    netaddr a;
    is_int(netaddr_from_sockaddr((const struct sockaddr *)&in4, &a), 0, "AF_INET");
    is_str(fmt(&a), "192.0.2.1", "... its address");
    is_int(netaddr_from_sockaddr((const struct sockaddr *)&in6, &a), 0, "AF_INET6");
    is_str(fmt(&a), "2001:db8::2", "... its address");
    struct sockaddr un = {.sa_family = AF_UNIX};
    is_int(netaddr_from_sockaddr(&un, &a), -1, "AF_UNIX refused");
    is_int(netaddr_from_sockaddr(NULL, &a), -1, "NULL refused");
}

int main(void)
{
    test_parse();
    test_cidr();
    test_set();
    test_forwarded();
    test_sockaddr();
    return done_testing();
}
