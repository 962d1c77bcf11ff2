/*
 * Fuzz target: the configuration parsers (runtime/config.c).
 *
 * The first byte picks what the rest of the input is:
 *   'u'  an integer for config_parse_uint, no units, full range (this is
 *        also how httpd reads Content-Length);
 *   's'  a size with k/m/g units, full range;
 *   'r'  a size within GLASGOW_MAX_BODY_BYTES's bounds;
 *   'a'  a listen address for config_parse_addr;
 *   'e'  an environment for config_load and config_secret: NAME=VALUE
 *        entries separated by NUL bytes (so values may hold newlines).
 * Any other first byte picks one of these by its value. Numbers are
 * checked against a reference parser, addresses must print and parse back
 * to the same socket address, and config_load must either fill every field
 * as the reference predicts or fail with one printable line naming a
 * variable.
 */
#include "config.h"
#include "fuzz.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

/* config_parse_uint's contract, written independently: decimal digits,
 * then with units one of k, m, g (either case) optionally followed by "i",
 * "b" or "B" and then "b" or "B" (so k, kB, KiB). */
static int reference_uint(const char *s, uint64_t min, uint64_t max, int units, uint64_t *out)
{
    if (!isdigit((unsigned char)s[0]))
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno == ERANGE)
        return -1;
    if (*end && units) {
        const char *u = strchr("kKmMgG", *end);
        if (!u || !*end)
            return -1;
        unsigned shift = 10 * (unsigned)(1 + (u - "kKmMgG") / 2);
        if (v > (UINT64_MAX >> shift))
            return -1;
        v <<= shift;
        end++;
        if (*end == 'i' || *end == 'b' || *end == 'B')
            end++;
        if (*end == 'b' || *end == 'B')
            end++;
    }
    if (*end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static void check_uint(const char *s, uint64_t min, uint64_t max, int units)
{
    uint64_t got = 12345, want = 0;
    int rc = config_parse_uint(s, min, max, units, &got);
    int want_rc = reference_uint(s, min, max, units, &want);
    fuzz_check(rc == want_rc, "\"%s\" (units %d): returned %d, the reference %d", s, units, rc,
               want_rc);
    if (rc == 0)
        fuzz_check(got == want && got >= min && got <= max, "\"%s\": %llu, want %llu", s,
                   (unsigned long long)got, (unsigned long long)want);
    else
        fuzz_check(got == 12345, "\"%s\": the output was written on failure", s);
}

static void check_addr(const char *s)
{
    config_addr a, b;
    char host[INET6_ADDRSTRLEN], again[128];
    if (config_parse_addr(s, &a) < 0)
        return;
    fuzz_check(!strcmp(a.text, s), "\"%s\": text is \"%s\"", s, a.text);
    if (a.ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&a.ss;
        fuzz_check(a.len == sizeof *in, "\"%s\": IPv4 length %u", s, (unsigned)a.len);
        fuzz_check(inet_ntop(AF_INET, &in->sin_addr, host, sizeof host), "inet_ntop");
        snprintf(again, sizeof again, "%s:%u", host, ntohs(in->sin_port));
    } else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a.ss;
        fuzz_check(a.ss.ss_family == AF_INET6, "\"%s\": family %d", s, a.ss.ss_family);
        fuzz_check(a.len == sizeof *in6, "\"%s\": IPv6 length %u", s, (unsigned)a.len);
        fuzz_check(inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host), "inet_ntop");
        snprintf(again, sizeof again, "[%s]:%u", host, ntohs(in6->sin6_port));
    }
    fuzz_check(config_parse_addr(again, &b) == 0, "\"%s\" printed as \"%s\" does not parse", s,
               again);
    fuzz_check(a.len == b.len && !memcmp(&a.ss, &b.ss, a.len), "\"%s\" and \"%s\" differ", s,
               again);
}

/* The numeric settings, from the README's table. */
static const struct {
    const char *name;
    uint64_t def, min, max;
    size_t offset;
    int is_size;
} settings[] = {
#define U(n, d, lo, hi, f)                                                                         \
    {                                                                                              \
        n, d, lo, hi, offsetof(config, f), 0                                                       \
    }
#define S(n, d, lo, hi, f)                                                                         \
    {                                                                                              \
        n, d, lo, hi, offsetof(config, f), 1                                                       \
    }
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
#undef U
#undef S
};

#define MAX_VARS 64
static const char *env_names[MAX_VARS], *env_values[MAX_VARS];
static size_t env_n;

static const char *fake_getenv(const char *name)
{
    for (size_t i = env_n; i-- > 0;) /* the last definition wins, as with setenv */
        if (!strcmp(env_names[i], name))
            return env_values[i];
    return NULL;
}

static void check_env(void)
{
    config c;
    char err[256];
    err[0] = '\0';
    int rc = config_load(&c, fake_getenv, err, sizeof err);
    if (rc < 0) {
        fuzz_check(!strncmp(err, "GLASGOW_", 8), "message names no variable: %s", err);
        for (const char *p = err; *p; p++)
            fuzz_check(!iscntrl((unsigned char)*p), "message is not one printable line: %s", err);
    } else {
        for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
            const char *v = fake_getenv(settings[i].name);
            uint64_t want = settings[i].def, got;
            if (v)
                fuzz_check(reference_uint(v, settings[i].min, settings[i].max, settings[i].is_size,
                                          &want) == 0,
                           "%s=\"%s\" was accepted", settings[i].name, v);
            const char *field = (const char *)&c + settings[i].offset;
            if (settings[i].is_size)
                got = *(const size_t *)(const void *)field;
            else
                got = *(const unsigned *)(const void *)field;
            if (!v && settings[i].def == 0) /* workers: the core count */
                continue;
            fuzz_check(got == want, "%s: %llu, want %llu", settings[i].name,
                       (unsigned long long)got, (unsigned long long)want);
        }
        fuzz_check(c.workers >= 1 && c.workers <= 256, "workers %u", c.workers);
        fuzz_check(c.log_level >= 0 && c.log_level <= 3, "log level %d", c.log_level);
        fuzz_check(c.access_log == 0 || c.access_log == 1, "access log %d", c.access_log);
    }

    /* A secret, given directly or through a file holding the value given. */
    static char path[64];
    const char *file_value = fake_getenv("DATABASE_URL_FILE");
    if (file_value) {
        if (!path[0]) {
            snprintf(path, sizeof path, "/tmp/glasgow-fuzz-secret.XXXXXX");
            int fd = mkstemp(path);
            fuzz_check(fd >= 0, "mkstemp: %s", strerror(errno));
            close(fd);
        }
        FILE *f = fopen(path, "wb");
        fuzz_check(f && fwrite(file_value, 1, strlen(file_value), f) == strlen(file_value) &&
                       fclose(f) == 0,
                   "cannot write %s", path);
        env_names[env_n] = "DATABASE_URL_FILE";
        env_values[env_n++] = path;
    }
    char *secret = config_secret(fake_getenv, "DATABASE_URL", err, sizeof err);
    const char *direct = fake_getenv("DATABASE_URL");
    if (direct && file_value) {
        fuzz_check(!secret && err[0], "both DATABASE_URL and _FILE were accepted");
    } else if (direct) {
        fuzz_check(secret && !strcmp(secret, direct), "DATABASE_URL changed");
    } else if (file_value) {
        size_t n = strlen(file_value);
        fuzz_check(secret, "DATABASE_URL_FILE refused: %s", err);
        if (n > 0 && file_value[n - 1] == '\n')
            n--;
        if (n > 0 && file_value[n - 1] == '\r')
            n--;
        fuzz_check(strlen(secret) == n && !memcmp(secret, file_value, n),
                   "DATABASE_URL_FILE's value changed");
    } else {
        fuzz_check(!secret && !err[0], "a secret from nowhere");
    }
    free(secret);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char modes[] = "usrae";
    if (size == 0)
        return 0;
    char mode = strchr(modes, data[0]) && data[0] ? (char)data[0] : modes[data[0] % 5];
    char *text = xmalloc(size); /* data after the mode byte, NUL-terminated */
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';

    switch (mode) {
    case 'u': check_uint(text, 0, UINT64_MAX, 0); break;
    case 's': check_uint(text, 0, UINT64_MAX, 1); break;
    case 'r': check_uint(text, 0, (uint64_t)1 << 40, 1); break;
    case 'a': check_addr(text); break;
    default:
        env_n = 0;
        for (char *p = text; p < text + size - 1 && env_n < MAX_VARS - 1; p += strlen(p) + 1) {
            char *eq = strchr(p, '=');
            if (!eq)
                continue;
            *eq = '\0';
            env_names[env_n] = p;
            env_values[env_n++] = eq + 1;
            p = eq + 1;
        }
        check_env();
        break;
    }
    free(text);
    return 0;
}
