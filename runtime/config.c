#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

int config_parse_uint(const char *text, uint64_t min, uint64_t max, int units, uint64_t *out)
{
    const char *p = text;
    uint64_t v = 0;
    if (!text || *p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (*p && units) {
        unsigned shift;
        switch (*p) {
        case 'k':
        case 'K': shift = 10; break;
        case 'm':
        case 'M': shift = 20; break;
        case 'g':
        case 'G': shift = 30; break;
        default: return -1;
        }
        if (v > (UINT64_MAX >> shift))
            return -1;
        v <<= shift;
        p++;
        if (*p == 'i' || *p == 'B' || *p == 'b') /* accept KiB, kB, k */
            p++;
        if (*p == 'B' || *p == 'b')
            p++;
    }
    if (*p != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int config_parse_addr(const char *text, config_addr *out)
{
    char host[64];
    const char *port;
    memset(out, 0, sizeof *out);
    if (!text || strlen(text) >= sizeof out->text)
        return -1;
    snprintf(out->text, sizeof out->text, "%s", text);
    if (text[0] == '[') {
        const char *end = strchr(text, ']');
        if (!end || end[1] != ':' || (size_t)(end - text - 1) >= sizeof host)
            return -1;
        memcpy(host, text + 1, (size_t)(end - text - 1));
        host[end - text - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (!colon || (size_t)(colon - text) >= sizeof host)
            return -1;
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
        port = colon + 1;
    }
    uint64_t portnum;
    if (config_parse_uint(port, 0, 65535, 0, &portnum) < 0)
        return -1;
    if (text[0] == '[') {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)portnum);
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
            return -1;
        out->len = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&out->ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)portnum);
        if (host[0] == '\0')
            s4->sin_addr.s_addr = htonl(INADDR_ANY);
        else if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
            return -1;
        out->len = sizeof *s4;
    }
    return 0;
}

/* One numeric setting: its variable, bounds, unit support and destination. */
struct uint_setting {
    const char *name;
    uint64_t def, min, max;
    size_t offset;
    int is_size; /* size_t field with unit suffixes, else unsigned */
};

#define U(name, def, min, max, field)                                                              \
    {                                                                                              \
        name, def, min, max, offsetof(config, field), 0                                            \
    }
#define S(name, def, min, max, field)                                                              \
    {                                                                                              \
        name, def, min, max, offsetof(config, field), 1                                            \
    }

static const struct uint_setting uint_settings[] = {
    U("GLASGOW_WORKERS", 0, 1, 256, workers),
    S("GLASGOW_MAX_HEADER_BYTES", 8192, 1024, 1048576, max_header_bytes),
    U("GLASGOW_MAX_HEADERS", 100, 8, 10000, max_headers),
    S("GLASGOW_MAX_REQUEST_LINE", 4096, 256, 1048576, max_request_line),
    S("GLASGOW_MAX_BODY_BYTES", 1048576, 0, (uint64_t)1 << 40, max_body_bytes),
    U("GLASGOW_MAX_JSON_DEPTH", 64, 1, 1000, max_json_depth),
    U("GLASGOW_MAX_CONNECTIONS", 10000, 1, 1000000, max_connections),
    U("GLASGOW_MAX_CONNS_PER_IP", 256, 1, 1000000, max_conns_per_ip),
    U("GLASGOW_HEADER_TIMEOUT_MS", 10000, 100, 3600000, header_timeout_ms),
    U("GLASGOW_IDLE_TIMEOUT_MS", 60000, 1000, 3600000, idle_timeout_ms),
    U("GLASGOW_REQUEST_TIMEOUT_MS", 30000, 10, 3600000, request_timeout_ms),
    S("GLASGOW_MIN_RATE_BYTES_PER_S", 1024, 0, (uint64_t)1 << 30, min_rate),
    U("GLASGOW_MIN_RATE_GRACE_MS", 10000, 100, 3600000, min_rate_grace_ms),
    U("GLASGOW_SHUTDOWN_GRACE_MS", 20000, 0, 3600000, shutdown_grace_ms),
    U("GLASGOW_RELOAD_INTERVAL_MS", 5000, 100, 3600000, reload_interval_ms),
    U("GLASGOW_RELOAD_DEBOUNCE_MS", 200, 0, 60000, reload_debounce_ms),
    S("GLASGOW_LUA_MEMORY_LIMIT", (uint64_t)256 << 20, (uint64_t)4 << 20, (uint64_t)1 << 40,
      lua_memory_limit),
    U("GLASGOW_LUA_RUN_LIMIT_MS", 2000, 0, 3600000, lua_run_limit_ms),
    U("GLASGOW_ROUTES_LOAD_TIMEOUT_MS", 5000, 10, 600000, load_timeout_ms),
    U("GLASGOW_STUCK_GRACE_MS", 5000, 100, 600000, stuck_grace_ms),
    U("GLASGOW_DB_HEALTH_INTERVAL_MS", 1000, 100, 3600000, db_health_interval_ms),
    U("GLASGOW_DB_HEALTH_TIMEOUT_MS", 2000, 100, 600000, db_health_timeout_ms),
    U("GLASGOW_TOKEN_TTL_S", 3600, 60, 31536000, auth.token_ttl_s),
    U("GLASGOW_LOGIN_ACCOUNT_FAILURES", 5, 1, 1000, auth.login_account_failures),
    U("GLASGOW_LOGIN_ADDRESS_FAILURES", 20, 1, 100000, auth.login_address_failures),
    U("GLASGOW_LOGIN_BASE_DELAY_S", 1, 1, 3600, auth.login_base_delay_s),
    U("GLASGOW_LOGIN_MAX_DELAY_S", 300, 1, 86400, auth.login_max_delay_s),
    U("GLASGOW_LOGIN_WINDOW_S", 900, 1, 604800, auth.login_window_s),
    U("GLASGOW_LOGIN_DEVICE_TTL_S", 2592000, 0, 31536000, auth.login_device_ttl_s),
    U("GLASGOW_PASSWORD_CHANGES", 5, 1, 100000, auth.password_changes),
    U("GLASGOW_PASSWORD_CHANGE_WINDOW_S", 3600, 1, 604800, auth.password_change_window_s),
    U("GLASGOW_SCRYPT_THREADS", 2, 1, 64, auth.scrypt_threads),
    U("GLASGOW_SCRYPT_QUEUE", 32, 1, 100000, auth.scrypt_queue),
    U("GLASGOW_SCRYPT_QUEUE_PER_USER", 2, 1, 100000, auth.scrypt_queue_per_user),
};

static int copy_path(const char *name, const char *v, char *dst, size_t n, char *err, size_t errlen)
{
    if (strlen(v) >= n) {
        snprintf(err, errlen, "%s: value too long", name);
        return -1;
    }
    snprintf(dst, n, "%s", v);
    return 0;
}

static int parse_bool(const char *v, int *out)
{
    if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "on") || !strcmp(v, "yes"))
        *out = 1;
    else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "off") || !strcmp(v, "no"))
        *out = 0;
    else
        return -1;
    return 0;
}

int config_load(config *c, config_getenv_fn get, char *err, size_t errlen)
{
    const char *v;
    memset(c, 0, sizeof *c);

    v = get("GLASGOW_LISTEN");
    if (config_parse_addr(v ? v : "127.0.0.1:8080", &c->listen) < 0) {
        snprintf(err, errlen, "GLASGOW_LISTEN: expected HOST:PORT with a numeric address");
        return -1;
    }
    v = get("GLASGOW_ADMIN_LISTEN");
    if (config_parse_addr(v ? v : "127.0.0.1:9090", &c->admin_listen) < 0) {
        snprintf(err, errlen, "GLASGOW_ADMIN_LISTEN: expected HOST:PORT with a numeric address");
        return -1;
    }
    v = get("GLASGOW_ROUTES_DIR");
    if (copy_path("GLASGOW_ROUTES_DIR", v && *v ? v : "./routes", c->routes_dir,
                  sizeof c->routes_dir, err, errlen) < 0)
        return -1;
    v = get("GLASGOW_LUA_PATH");
    if (v && copy_path("GLASGOW_LUA_PATH", v, c->lua_path, sizeof c->lua_path, err, errlen) < 0)
        return -1;

    for (size_t i = 0; i < sizeof uint_settings / sizeof uint_settings[0]; i++) {
        const struct uint_setting *s = &uint_settings[i];
        uint64_t val = s->def;
        v = get(s->name);
        if (v && config_parse_uint(v, s->min, s->max, s->is_size, &val) < 0) {
            char quoted[UTIL_QUOTE_MAX];
            util_quote(v, strlen(v), quoted);
            snprintf(err, errlen, "%s: expected %s between %llu and %llu, got \"%s\"", s->name,
                     s->is_size ? "a size (bytes, or with k/m/g)" : "an integer",
                     (unsigned long long)s->min, (unsigned long long)s->max, quoted);
            return -1;
        }
        if (s->is_size)
            *(size_t *)((char *)c + s->offset) = (size_t)val;
        else
            *(unsigned *)((char *)c + s->offset) = (unsigned)val;
    }
    if (c->auth.login_max_delay_s < c->auth.login_base_delay_s) {
        snprintf(err, errlen,
                 "GLASGOW_LOGIN_MAX_DELAY_S: must not be below "
                 "GLASGOW_LOGIN_BASE_DELAY_S");
        return -1;
    }
    if (c->auth.login_window_s < c->auth.login_max_delay_s) {
        /* failures forgotten before the delay they caused ends would let a
         * patient guesser skip the longer delays */
        snprintf(err, errlen,
                 "GLASGOW_LOGIN_WINDOW_S: must not be below "
                 "GLASGOW_LOGIN_MAX_DELAY_S");
        return -1;
    }
    if (c->auth.scrypt_queue_per_user > c->auth.scrypt_queue) {
        snprintf(err, errlen,
                 "GLASGOW_SCRYPT_QUEUE_PER_USER: must not exceed GLASGOW_SCRYPT_QUEUE");
        return -1;
    }
    if (c->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->workers = n > 0 ? (unsigned)(n > 256 ? 256 : n) : 1;
    }

    const char *cert = get("GLASGOW_TLS_CERT_FILE");
    const char *key = get("GLASGOW_TLS_KEY_FILE");
    if ((cert && *cert) != (key && *key)) {
        snprintf(err, errlen, "%s: must be set together with %s",
                 cert && *cert ? "GLASGOW_TLS_CERT_FILE" : "GLASGOW_TLS_KEY_FILE",
                 cert && *cert ? "GLASGOW_TLS_KEY_FILE" : "GLASGOW_TLS_CERT_FILE");
        return -1;
    }
    if (cert && *cert) {
        if (copy_path("GLASGOW_TLS_CERT_FILE", cert, c->tls_cert_file, sizeof c->tls_cert_file, err,
                      errlen) < 0 ||
            copy_path("GLASGOW_TLS_KEY_FILE", key, c->tls_key_file, sizeof c->tls_key_file, err,
                      errlen) < 0)
            return -1;
    }

    c->access_log = 1;
    v = get("GLASGOW_ACCESS_LOG");
    if (v && parse_bool(v, &c->access_log) < 0) {
        snprintf(err, errlen, "GLASGOW_ACCESS_LOG: expected true or false");
        return -1;
    }
    v = get("GLASGOW_TRUSTED_PROXIES");
    if (v) {
        char why[256];
        if (netaddr_set_parse(v, &c->trusted_proxies, why, sizeof why) < 0) {
            snprintf(err, errlen,
                     "GLASGOW_TRUSTED_PROXIES: %s (expected CIDRs such as "
                     "10.42.0.0/16, fd00::/8, separated by commas)",
                     why);
            return -1;
        }
    }
    c->log_level = LOG_INFO;
    v = get("GLASGOW_LOG_LEVEL");
    if (v && (c->log_level = log_level_parse(v)) < 0) {
        snprintf(err, errlen, "GLASGOW_LOG_LEVEL: expected debug, info, warn or error");
        return -1;
    }
    return 0;
}

/* RFC 3986 unreserved and sub-delims, and ":" "@" (pchar without "%"). */
static int is_pchar(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("-._~!$&'()*+,;=:@", ch));
}

static int is_hex(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* Checks a DNS name or dotted IPv4 address: labels of 1-63 letters,
 * digits and "-", not starting or ending with "-", 253 bytes at most. */
static int valid_hostname(const char *h, size_t n)
{
    size_t label = 0;
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = h[i];
        if (ch == '.') {
            if (label == 0 || h[i - 1] == '-')
                return 0;
            label = 0;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || ch == '-') {
            if ((label == 0 && ch == '-') || ++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return label > 0 && h[n - 1] != '-';
}

/* Checks a path prefix p (n bytes, starting with "/", one trailing "/"
 * already dropped): "/"-separated segments of pchar or %XX, none empty and
 * none "." or "..". Returns NULL, or the rule it breaks. */
static const char *path_problem(const char *p, size_t n)
{
    size_t start = 1;
    for (size_t i = 1; i <= n; i++) {
        if (i < n && p[i] != '/') {
            if (p[i] == '%') {
                if (i + 2 >= n || !is_hex(p[i + 1]) || !is_hex(p[i + 2]))
                    return "has a \"%\" not followed by two hex digits in its path";
                i += 2;
            } else if (!is_pchar(p[i])) {
                return "has a character in its path that must be percent-encoded";
            }
            continue;
        }
        size_t len = i - start;
        if (len == 0)
            return "has an empty path segment (\"//\")";
        if ((len == 1 && p[start] == '.') || (len == 2 && p[start] == '.' && p[start + 1] == '.'))
            return "has a \".\" or \"..\" path segment";
        start = i + 1;
    }
    return NULL;
}

int config_parse_public_url(const char *text, char *out, size_t outlen, char *why, size_t whylen)
{
    const char *problem = NULL;
    size_t n = text ? strlen(text) : 0;
    const char *p = text, *scheme = NULL;
    size_t slen = 0;
    if (n == 0) {
        problem = "is empty";
    } else if (n > CONFIG_PUBLIC_URL_MAX || outlen <= CONFIG_PUBLIC_URL_MAX) {
        problem = "is longer than 1024 bytes";
    } else if (strpbrk(text, "\t\n\v\f\r ")) {
        problem = "must not contain spaces or control characters";
    } else if (!strncasecmp(p, "https://", 8)) {
        scheme = "https://", slen = 8;
    } else if (!strncasecmp(p, "http://", 7)) {
        scheme = "http://", slen = 7;
    } else {
        problem = "must start with http:// or https://";
    }
    for (size_t i = 0; !problem && i < n; i++)
        if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] >= 0x7f)
            problem = "must be ASCII without control characters (percent-encode the rest)";
    if (!problem && strchr(text, '#'))
        problem = "must not have a fragment (\"#\")";
    if (!problem && strchr(text, '?'))
        problem = "must not have a query (\"?\")";
    const char *auth = NULL, *path = NULL;
    size_t alen = 0;
    if (!problem) {
        auth = p + slen;
        path = strchr(auth, '/');
        alen = path ? (size_t)(path - auth) : strlen(auth);
        if (memchr(auth, '@', alen))
            problem = "must not contain user information (\"user@\")";
        else if (alen == 0)
            problem = "has no host";
    }
    size_t hlen = 0, off = 0;
    if (!problem) {
        const char *port = NULL;
        if (auth[0] == '[') {
            const char *close = memchr(auth, ']', alen);
            char v6[64];
            struct in6_addr a6;
            hlen = close ? (size_t)(close - auth) + 1 : 0;
            if (!close || hlen - 2 >= sizeof v6)
                problem = "has an unterminated or overlong [IPv6] host";
            else {
                memcpy(v6, auth + 1, hlen - 2);
                v6[hlen - 2] = '\0';
                if (inet_pton(AF_INET6, v6, &a6) != 1)
                    problem = "has a host in [] that is not an IPv6 address";
                else if (hlen < alen && auth[hlen] != ':')
                    problem = "has something after the [IPv6] host that is not a :port";
                else if (hlen < alen)
                    port = auth + hlen;
            }
        } else {
            const char *colon = memchr(auth, ':', alen);
            hlen = colon ? (size_t)(colon - auth) : alen;
            port = colon;
            if (!valid_hostname(auth, hlen))
                problem = "has an invalid host (a DNS name, IPv4 address or [IPv6] address)";
        }
        if (!problem && port) {
            char digits[8];
            size_t plen = alen - (size_t)(port - auth) - 1;
            uint64_t num;
            if (plen == 0 || plen >= sizeof digits)
                problem = "has an invalid port (1 to 65535)";
            else {
                memcpy(digits, port + 1, plen);
                digits[plen] = '\0';
                if (config_parse_uint(digits, 1, 65535, 0, &num) < 0)
                    problem = "has an invalid port (1 to 65535)";
            }
        }
    }
    size_t plen = path ? strlen(path) : 0;
    if (plen > 0 && path[plen - 1] == '/')
        plen--; /* "https://h/" and "https://h/api/" name the same base */
    if (!problem && plen > 0)
        problem = path_problem(path, plen);
    if (problem) {
        snprintf(why, whylen, "%s", problem);
        return -1;
    }
    off = (size_t)snprintf(out, outlen, "%s", scheme);
    for (size_t i = 0; i < alen; i++) /* lower-case the host, the port is digits */
        out[off++] = (char)(i < hlen && auth[i] >= 'A' && auth[i] <= 'Z' ? auth[i] + 32 : auth[i]);
    memcpy(out + off, path ? path : "", plen);
    off += plen;
    out[off] = '\0';
    return 0;
}

char *config_secret(config_getenv_fn get, const char *name, char *err, size_t errlen)
{
    char fname[128];
    snprintf(fname, sizeof fname, "%s_FILE", name);
    const char *direct = get(name);
    const char *path = get(fname);
    err[0] = '\0';
    if (direct && path) {
        snprintf(err, errlen, "%s: set either %s or %s, not both", name, name, fname);
        return NULL;
    }
    if (direct)
        return xstrdup(direct);
    if (!path)
        return NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open the file it names: %s", fname, strerror(errno));
        return NULL;
    }
    char *buf = xmalloc(65536 + 1);
    size_t n = fread(buf, 1, 65536 + 1, f);
    fclose(f);
    if (n > 65536) {
        free(buf);
        snprintf(err, errlen, "%s: the file it names is larger than 64 KiB", fname);
        return NULL;
    }
    buf[n] = '\0';
    if (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = '\0';
    return buf;
}
