/* Config parsing: defaults, each variable's validation, secrets from files. */
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "tap.h"

static const char *const *vars; /* NAME, VALUE pairs, NULL-terminated */

static const char *fake_env(const char *name)
{
    for (const char *const *p = vars; p && p[0]; p += 2)
        if (!strcmp(p[0], name))
            return p[1];
    return NULL;
}

static int load(config *c, const char *const *v, char *err)
{
    vars = v;
    err[0] = '\0';
    return config_load(c, fake_env, err, 256);
}

static void test_defaults(void)
{
    config c;
    char err[256];
    static const char *const none[] = {NULL};
    is_int(load(&c, none, err), 0, "empty environment loads");
    is_str(c.listen.text, "127.0.0.1:8080", "default listen");
    is_str(c.admin_listen.text, "127.0.0.1:9090", "default admin listen");
    is_str(c.routes_dir, "./routes", "default routes dir");
    ok(c.workers >= 1, "workers default to the core count");
    is_int(c.max_body_bytes, 1048576, "default body limit");
    is_int(c.max_headers, 100, "default header count");
    is_int(c.header_timeout_ms, 10000, "default header timeout");
    is_int(c.min_rate, 1024, "default minimum body rate");
    is_int(c.min_rate_grace_ms, 10000, "default grace before the body rate applies");
    is_int(c.access_log, 1, "access log on by default");
    is_str(c.tls_cert_file, "", "TLS off by default");
    is_int(c.lua_memory_limit, 256u << 20, "Lua states capped at 256 MiB by default");
    is_int(c.lua_run_limit_ms, 2000, "handlers may run 2 s without yielding");
    is_int(c.load_timeout_ms, 5000, "a bundle loads within 5 s");
    is_int(c.stuck_grace_ms, 5000, "stuck code gets 5 s past its deadline");
    is_int(c.db_health_interval_ms, 1000, "database probed after 1 s without an answer");
    is_int(c.db_health_timeout_ms, 2000, "an unanswered probe means not ready after 2 s");
}

static void test_runaway_limits(void)
{
    config c;
    char err[256];
    static const char *const v[] = {"GLASGOW_LUA_MEMORY_LIMIT",
                                    "64m",
                                    "GLASGOW_LUA_RUN_LIMIT_MS",
                                    "0",
                                    "GLASGOW_ROUTES_LOAD_TIMEOUT_MS",
                                    "250",
                                    "GLASGOW_STUCK_GRACE_MS",
                                    "1000",
                                    NULL};
    is_int(load(&c, v, err), 0, "runaway limits load (%s)", err);
    is_int(c.lua_memory_limit, 64u << 20, "64m memory limit");
    is_int(c.lua_run_limit_ms, 0, "run limit 0 turns it off");
    is_int(c.load_timeout_ms, 250, "load timeout");
    is_int(c.stuck_grace_ms, 1000, "stuck grace");
    static const char *const small[] = {"GLASGOW_LUA_MEMORY_LIMIT", "1m", NULL};
    is_int(load(&c, small, err), -1, "a memory limit under 4 MiB is refused");
    ok(strstr(err, "GLASGOW_LUA_MEMORY_LIMIT") != NULL, "the error names the variable: %s", err);
    static const char *const zero[] = {"GLASGOW_ROUTES_LOAD_TIMEOUT_MS", "0", NULL};
    is_int(load(&c, zero, err), -1, "a zero load timeout is refused");
}

static void test_db_health(void)
{
    config c;
    char err[256];
    static const char *const v[] = {"GLASGOW_DB_HEALTH_INTERVAL_MS", "250",
                                    "GLASGOW_DB_HEALTH_TIMEOUT_MS", "750", NULL};
    is_int(load(&c, v, err), 0, "health interval and timeout load (%s)", err);
    is_int(c.db_health_interval_ms, 250, "health interval");
    is_int(c.db_health_timeout_ms, 750, "health timeout");
    static const char *const lo[] = {"GLASGOW_DB_HEALTH_INTERVAL_MS", "100",
                                     "GLASGOW_DB_HEALTH_TIMEOUT_MS", "100", NULL};
    is_int(load(&c, lo, err), 0, "the smallest values (100 ms) load (%s)", err);
    static const char *const hi[] = {"GLASGOW_DB_HEALTH_INTERVAL_MS", "3600000",
                                     "GLASGOW_DB_HEALTH_TIMEOUT_MS", "600000", NULL};
    is_int(load(&c, hi, err), 0, "the largest values load (%s)", err);
}

static void test_values(void)
{
    config c;
    char err[256];
    static const char *const v[] = {"GLASGOW_LISTEN",
                                    "0.0.0.0:80",
                                    "GLASGOW_ADMIN_LISTEN",
                                    "[::1]:9000",
                                    "GLASGOW_WORKERS",
                                    "3",
                                    "GLASGOW_MAX_BODY_BYTES",
                                    "16m",
                                    "GLASGOW_MAX_HEADER_BYTES",
                                    "8KiB",
                                    "GLASGOW_ACCESS_LOG",
                                    "false",
                                    "GLASGOW_MIN_RATE_BYTES_PER_S",
                                    "4k",
                                    "GLASGOW_MIN_RATE_GRACE_MS",
                                    "500",
                                    NULL};
    is_int(load(&c, v, err), 0, "valid values load (%s)", err);
    is_int(c.workers, 3, "workers");
    is_int(c.max_body_bytes, 16u << 20, "16m body limit");
    is_int(c.max_header_bytes, 8192, "8KiB header limit");
    is_int(c.access_log, 0, "access log off");
    is_int(c.min_rate, 4096, "4k minimum body rate");
    is_int(c.min_rate_grace_ms, 500, "500 ms rate grace");
    is_int(c.admin_listen.ss.ss_family, AF_INET6, "IPv6 admin address");
    static const char *const any[] = {"GLASGOW_LISTEN", ":8080", NULL};
    is_int(load(&c, any, err), 0, "':port' means all interfaces");
    static const char *const off[] = {"GLASGOW_MIN_RATE_BYTES_PER_S", "0", NULL};
    is_int(load(&c, off, err), 0, "a minimum body rate of 0 turns the check off");
    is_int(c.min_rate, 0, "minimum body rate off");
}

static void test_bad_values(void)
{
    static const char *const cases[][2] = {
        {"GLASGOW_WORKERS", "abc"},
        {"GLASGOW_WORKERS", "0"},
        {"GLASGOW_WORKERS", "-1"},
        {"GLASGOW_WORKERS", "99999"},
        {"GLASGOW_WORKERS", "2x"},
        {"GLASGOW_WORKERS", ""},
        {"GLASGOW_LISTEN", "nonsense"},
        {"GLASGOW_LISTEN", "localhost:80"},
        {"GLASGOW_LISTEN", "1.2.3.4:99999"},
        {"GLASGOW_LISTEN", "1.2.3.4:"},
        {"GLASGOW_ADMIN_LISTEN", "[::1]"},
        {"GLASGOW_MAX_BODY_BYTES", "1t"},
        {"GLASGOW_MAX_BODY_BYTES", "99999999999999999999999"},
        {"GLASGOW_HEADER_TIMEOUT_MS", "5"},
        {"GLASGOW_ACCESS_LOG", "maybe"},
        {"GLASGOW_LOG_LEVEL", "loud"},
        {"GLASGOW_TLS_CERT_FILE", "/x.pem"},
        {"GLASGOW_MAX_JSON_DEPTH", "100000"},
        {"GLASGOW_DB_HEALTH_INTERVAL_MS", "0"},
        {"GLASGOW_DB_HEALTH_INTERVAL_MS", "99"},
        {"GLASGOW_DB_HEALTH_INTERVAL_MS", "3600001"},
        {"GLASGOW_DB_HEALTH_INTERVAL_MS", "1s"},
        {"GLASGOW_DB_HEALTH_TIMEOUT_MS", "0"},
        {"GLASGOW_DB_HEALTH_TIMEOUT_MS", "600001"},
        {"GLASGOW_DB_HEALTH_TIMEOUT_MS", "-5"},
        {"GLASGOW_MIN_RATE_BYTES_PER_S", "-1"},
        {"GLASGOW_MIN_RATE_BYTES_PER_S", "2g"},
        {"GLASGOW_MIN_RATE_BYTES_PER_S", "fast"},
        {"GLASGOW_MIN_RATE_GRACE_MS", "0"},
        {"GLASGOW_MIN_RATE_GRACE_MS", "10s"},
        {"GLASGOW_TRUSTED_PROXIES", "10.0.0.0/33"},
        {"GLASGOW_TRUSTED_PROXIES", "10.42.0.0/16;10.43.0.0/16"},
        {"GLASGOW_TRUSTED_PROXIES", "traefik.kube-system"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        config c;
        char err[256];
        const char *v[] = {cases[i][0], cases[i][1], NULL};
        int rc = load(&c, v, err);
        ok(rc < 0 && strstr(err, cases[i][0]) == err, "%s=\"%s\" is refused naming it: %s",
           cases[i][0], cases[i][1], err);
    }
}

static void test_auth(void)
{
    config c;
    char err[256];
    static const char *const none[] = {NULL};
    is_int(load(&c, none, err), 0, "empty environment loads");
    is_int(c.auth.token_ttl_s, 3600, "tokens live an hour by default");
    is_int(c.auth.login_account_failures, 5, "5 free failures per account");
    is_int(c.auth.login_address_failures, 20, "20 free failures per address");
    is_int(c.auth.login_base_delay_s, 1, "first delay 1 s");
    is_int(c.auth.login_max_delay_s, 300, "longest delay 300 s");
    is_int(c.auth.login_window_s, 900, "failures remembered 900 s");
    is_int(c.auth.login_device_ttl_s, 2592000, "device cookies live 30 days");
    is_int(c.auth.password_changes, 5, "5 password changes ...");
    is_int(c.auth.password_change_window_s, 3600, "... per hour");
    is_int(c.auth.scrypt_threads, 2, "2 hashing threads");
    is_int(c.auth.scrypt_queue, 32, "32 hashes queued or running");
    is_int(c.auth.scrypt_queue_per_user, 2, "2 of them per user");

    static const char *const v[] = {"GLASGOW_TOKEN_TTL_S",
                                    "600",
                                    "GLASGOW_LOGIN_ACCOUNT_FAILURES",
                                    "3",
                                    "GLASGOW_LOGIN_ADDRESS_FAILURES",
                                    "50",
                                    "GLASGOW_LOGIN_BASE_DELAY_S",
                                    "2",
                                    "GLASGOW_LOGIN_MAX_DELAY_S",
                                    "60",
                                    "GLASGOW_LOGIN_WINDOW_S",
                                    "60",
                                    "GLASGOW_PASSWORD_CHANGES",
                                    "10",
                                    "GLASGOW_PASSWORD_CHANGE_WINDOW_S",
                                    "60",
                                    "GLASGOW_SCRYPT_THREADS",
                                    "4",
                                    "GLASGOW_SCRYPT_QUEUE",
                                    "8",
                                    "GLASGOW_SCRYPT_QUEUE_PER_USER",
                                    "8",
                                    NULL};
    is_int(load(&c, v, err), 0, "auth values load (%s)", err);
    ok(c.auth.token_ttl_s == 600 && c.auth.login_account_failures == 3 &&
           c.auth.login_address_failures == 50 && c.auth.login_base_delay_s == 2 &&
           c.auth.login_max_delay_s == 60 && c.auth.login_window_s == 60 &&
           c.auth.password_changes == 10 && c.auth.password_change_window_s == 60 &&
           c.auth.scrypt_threads == 4 && c.auth.scrypt_queue == 8 &&
           c.auth.scrypt_queue_per_user == 8,
       "each auth variable lands in its field");

    static const char *const cases[][4] = {
        {"GLASGOW_TOKEN_TTL_S", "0", NULL, NULL},
        {"GLASGOW_TOKEN_TTL_S", "1h", NULL, NULL},
        {"GLASGOW_TOKEN_TTL_S", "99999999999", NULL, NULL},
        {"GLASGOW_LOGIN_ACCOUNT_FAILURES", "0", NULL, NULL},
        {"GLASGOW_LOGIN_ADDRESS_FAILURES", "-1", NULL, NULL},
        {"GLASGOW_LOGIN_BASE_DELAY_S", "0", NULL, NULL},
        {"GLASGOW_LOGIN_WINDOW_S", "", NULL, NULL},
        {"GLASGOW_LOGIN_DEVICE_TTL_S", "31536001", NULL, NULL},
        {"GLASGOW_PASSWORD_CHANGES", "0", NULL, NULL},
        {"GLASGOW_SCRYPT_THREADS", "0", NULL, NULL},
        {"GLASGOW_SCRYPT_THREADS", "65", NULL, NULL},
        {"GLASGOW_SCRYPT_QUEUE", "0", NULL, NULL},
        {"GLASGOW_LOGIN_MAX_DELAY_S", "5", "GLASGOW_LOGIN_BASE_DELAY_S", "10"},
        {"GLASGOW_SCRYPT_QUEUE_PER_USER", "9", "GLASGOW_SCRYPT_QUEUE", "8"},
        {"GLASGOW_LOGIN_WINDOW_S", "60", "GLASGOW_LOGIN_MAX_DELAY_S", "120"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *e[] = {cases[i][0], cases[i][1], cases[i][2], cases[i][3], NULL};
        int rc = load(&c, e, err);
        ok(rc < 0 && strstr(err, cases[i][0]) == err, "%s=\"%s\"%s%s is refused naming it: %s",
           cases[i][0], cases[i][1], cases[i][2] ? " with " : "", cases[i][2] ? cases[i][2] : "",
           err);
    }
}

/* Found by fuzz_config: the value was quoted raw, so a newline or an escape
 * sequence in it went into the start-up message. */
static void test_message_is_one_line(void)
{
    config c;
    char err[256];
    const char *v[] = {"GLASGOW_WORKERS", "4\n\x1b[2J\"\\\xc3\xa9", NULL};
    int rc = load(&c, v, err);
    is_str(err,
           "GLASGOW_WORKERS: expected an integer between 1 and 256, "
           "got \"4\\x0a\\x1b[2J\\x22\\x5c\\xc3\\xa9\"",
           "control bytes, quotes and non-ASCII in a bad value are escaped");
    ok(rc < 0, "and the value is refused");
}

static void test_parse_uint(void)
{
    uint64_t v;
    ok(config_parse_uint("0", 0, 10, 0, &v) == 0 && v == 0, "zero");
    ok(config_parse_uint("18446744073709551615", 0, UINT64_MAX, 0, &v) == 0, "max uint64");
    ok(config_parse_uint("18446744073709551616", 0, UINT64_MAX, 0, &v) < 0, "overflow refused");
    ok(config_parse_uint("+1", 0, 10, 0, &v) < 0, "sign refused");
    ok(config_parse_uint(" 1", 0, 10, 0, &v) < 0, "space refused");
    ok(config_parse_uint("1k", 0, 1 << 20, 0, &v) < 0, "unit refused where not allowed");
    ok(config_parse_uint("2k", 0, 1 << 20, 1, &v) == 0 && v == 2048, "2k is 2048");
}

static void test_secret(void)
{
    char err[256];
    char path[] = "/tmp/glasgow-secret-XXXXXX";
    int fd = mkstemp(path);
    ok(fd >= 0, "temp file");
    ok(write(fd, "s3cret\n", 7) == 7, "write secret");
    close(fd);
    const char *v1[] = {"DB_PASSWORD_FILE", path, NULL};
    vars = v1;
    char *s = config_secret(fake_env, "DB_PASSWORD", err, sizeof err);
    is_str(s, "s3cret", "secret read from NAME_FILE, newline stripped");
    free(s);
    const char *v2[] = {"DB_PASSWORD", "direct", "DB_PASSWORD_FILE", path, NULL};
    vars = v2;
    s = config_secret(fake_env, "DB_PASSWORD", err, sizeof err);
    ok(s == NULL && strstr(err, "not both"), "both set is an error");
    const char *v3[] = {"DB_PASSWORD_FILE", "/nonexistent/x", NULL};
    vars = v3;
    s = config_secret(fake_env, "DB_PASSWORD", err, sizeof err);
    ok(s == NULL && strstr(err, "DB_PASSWORD_FILE"), "unreadable file names the variable");
    const char *v4[] = {NULL};
    vars = v4;
    s = config_secret(fake_env, "DB_PASSWORD", err, sizeof err);
    ok(s == NULL && err[0] == '\0', "unset is NULL without error");
    unlink(path);
}

static void test_trusted_proxies(void)
{
    config c;
    char err[256];
    static const char *const none[] = {NULL};
    is_int(load(&c, none, err), 0, "empty environment loads");
    is_int(c.trusted_proxies.n, 0, "no trusted proxies by default");
    static const char *const two[] = {"GLASGOW_TRUSTED_PROXIES", "10.42.0.0/16, fd00:42::/56",
                                      NULL};
    is_int(load(&c, two, err), 0, "two CIDRs load");
    is_int(c.trusted_proxies.n, 2, "... both kept");
    static const char *const typo[] = {"GLASGOW_TRUSTED_PROXIES", "10.42.0.1/16", NULL};
    is_int(load(&c, typo, err), -1, "host bits set is an error");
    is_str(err,
           "GLASGOW_TRUSTED_PROXIES: \"10.42.0.1/16\": bits are set past the /16 prefix "
           "(did you mean 10.42.0.0/16?) (expected CIDRs such as 10.42.0.0/16, fd00::/8, "
           "separated by commas)",
           "... naming the variable, the entry and the likely meaning");
}

int main(void)
{
    test_trusted_proxies();
    test_defaults();
    test_values();
    test_runaway_limits();
    test_db_health();
    test_auth();
    test_bad_values();
    test_message_is_one_line();
    test_parse_uint();
    test_secret();
    return done_testing();
}
