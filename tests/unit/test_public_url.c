/* GLASGOW_PUBLIC_URL: config_parse_public_url's accepted forms, their
 * normalisation, and each refusal with its reason. */
#include <string.h>

#include "config.h"
#include "tap.h"

static void accepts(const char *in, const char *want)
{
    char out[CONFIG_PUBLIC_URL_MAX + 1], why[200] = "";
    int rc = config_parse_public_url(in, out, sizeof out, why, sizeof why);
    is_int(rc, 0, "accepts %s", in);
    if (rc == 0)
        is_str(out, want, "... as %s", want ? want : "(null)");
    else
        ok(0, "... (refused: %s)", why);
}

static void refuses(const char *in, const char *reason)
{
    char out[CONFIG_PUBLIC_URL_MAX + 1], why[200] = "", shown[64];
    int rc = config_parse_public_url(in, out, sizeof out, why, sizeof why);
    size_t i = 0;
    for (; in && in[i] && i < sizeof shown - 1; i++) /* keep the TAP line one line */
        shown[i] = (unsigned char)in[i] < 0x20 || (unsigned char)in[i] >= 0x7f ? '?' : in[i];
    shown[i] = '\0';
    is_int(rc, -1, "refuses \"%s\"", in ? shown : "(null)");
    ok(strstr(why, reason) != NULL, "... saying \"%s\" (got \"%s\")", reason, why);
}

int main(void)
{
    accepts("https://api.example.com", "https://api.example.com");
    accepts("https://api.example.com/", "https://api.example.com");
    accepts("HTTPS://API.Example.COM/Base/", "https://api.example.com/Base");
    accepts("http://127.0.0.1:8080", "http://127.0.0.1:8080");
    accepts("http://localhost:1", "http://localhost:1");
    accepts("https://h.example:65535/a/b-c/d~e/%C3%A9", "https://h.example:65535/a/b-c/d~e/%C3%A9");
    accepts("http://[::1]:8080/api", "http://[::1]:8080/api");
    accepts("http://[2001:DB8::1]", "http://[2001:db8::1]");
    accepts("https://a-b.c0/x:y@z", "https://a-b.c0/x:y@z");

    refuses(NULL, "is empty");
    refuses("", "is empty");
    refuses("api.example.com", "http:// or https://");
    refuses("ftp://api.example.com", "http:// or https://");
    refuses("//api.example.com", "http:// or https://");
    refuses("https://", "no host");
    refuses("https:///path", "no host");
    refuses("https://user:pw@api.example.com", "user information");
    refuses("https://user@api.example.com/p", "user information");
    refuses("https://api.example.com/?a=1", "query");
    refuses("https://api.example.com?", "query");
    refuses("https://api.example.com/#top", "fragment");
    refuses("https://api.example.com:0", "port");
    refuses("https://api.example.com:65536", "port");
    refuses("https://api.example.com:", "port");
    refuses("https://api.example.com:80a", "port");
    refuses("https://api.example.com:-1", "port");
    refuses("https://-api.example.com", "invalid host");
    refuses("https://api-.example.com", "invalid host");
    refuses("https://api..example.com", "invalid host");
    refuses("https://api_x.example.com", "invalid host");
    refuses("https://[::1", "IPv6");
    refuses("https://[nothex::1]", "not an IPv6 address");
    refuses("https://[::1]x", "not a :port");
    refuses("https://[::1]:99999", "port");
    refuses("https://api.example.com/a//b", "empty path segment");
    refuses("https://api.example.com//", "empty path segment");
    refuses("https://api.example.com/a/../b", "\"..\"");
    refuses("https://api.example.com/./b", "\".\"");
    refuses("https://api.example.com/a b", "spaces");
    refuses(" https://api.example.com", "spaces");
    refuses("https://api.example.com/a\nb", "spaces");
    refuses("https://api.example.com/\x01", "control");
    refuses("https://api.example.com/\xc3\xa9", "ASCII");
    refuses("https://api.example.com/a%2", "two hex digits");
    refuses("https://api.example.com/a%zz", "two hex digits");
    refuses("https://api.example.com/a\"b", "percent-encoded");
    refuses("https://api.example.com/a<b>", "percent-encoded");

    char longurl[CONFIG_PUBLIC_URL_MAX + 2];
    memcpy(longurl, "https://h/", 10);
    memset(longurl + 10, 'a', sizeof longurl - 11);
    longurl[sizeof longurl - 1] = '\0';
    refuses(longurl, "longer than 1024");
    longurl[CONFIG_PUBLIC_URL_MAX] = '\0';
    char out[CONFIG_PUBLIC_URL_MAX + 1], why[200];
    is_int(config_parse_public_url(longurl, out, sizeof out, why, sizeof why), 0,
           "accepts exactly 1024 bytes");
    char label[80];
    memset(label, 'a', 64);
    memcpy(label, "http://", 7);
    label[7 + 64] = '\0';
    memset(label + 7, 'a', 64);
    refuses(label, "invalid host");
    label[7 + 63] = '\0';
    is_int(config_parse_public_url(label, out, sizeof out, why, sizeof why), 0,
           "accepts a 63-byte label");
    return done_testing();
}
