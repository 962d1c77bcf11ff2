/*
 * config: the server's settings, read once from the environment at start-up.
 *
 * Every setting has a safe default; a malformed value is a start-up error
 * whose message names the variable, so an operator sees at once what to fix.
 */
#ifndef GLASGOW_CONFIG_H
#define GLASGOW_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "netaddr.h"

typedef struct config_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    char text[80]; /* as given, for log lines */
} config_addr;

/*
 * Authentication limits, read by the routes through glasgow.core.limits, and
 * the bounds of the password-hashing queue (jobs). Login failures are
 * counted per account and per client address; past the free ones each
 * further failure doubles a delay, from login_base_delay_s up to
 * login_max_delay_s, during which logins answer 429 with Retry-After.
 * Failures are forgotten login_window_s after the last one. A login that
 * presents a device cookie from an earlier success on the same account (at
 * most login_device_ttl_s old) is counted per device instead of per account.
 */
typedef struct config_auth {
    unsigned token_ttl_s;              /* GLASGOW_TOKEN_TTL_S */
    unsigned login_account_failures;   /* GLASGOW_LOGIN_ACCOUNT_FAILURES: free, per account */
    unsigned login_address_failures;   /* GLASGOW_LOGIN_ADDRESS_FAILURES: free, per address */
    unsigned login_base_delay_s;       /* GLASGOW_LOGIN_BASE_DELAY_S: first delay */
    unsigned login_max_delay_s;        /* GLASGOW_LOGIN_MAX_DELAY_S: longest delay */
    unsigned login_window_s;           /* GLASGOW_LOGIN_WINDOW_S: memory of failures */
    unsigned login_device_ttl_s;       /* GLASGOW_LOGIN_DEVICE_TTL_S: device cookies; 0 off */
    unsigned password_changes;         /* GLASGOW_PASSWORD_CHANGES: per user ... */
    unsigned password_change_window_s; /* GLASGOW_PASSWORD_CHANGE_WINDOW_S: ... per window */
    unsigned scrypt_threads;           /* GLASGOW_SCRYPT_THREADS: hashing threads */
    unsigned scrypt_queue;             /* GLASGOW_SCRYPT_QUEUE: hashes queued or running */
    unsigned scrypt_queue_per_user;    /* GLASGOW_SCRYPT_QUEUE_PER_USER: of those, per user */
} config_auth;

typedef struct config {
    config_addr listen;       /* GLASGOW_LISTEN */
    config_addr admin_listen; /* GLASGOW_ADMIN_LISTEN */
    char routes_dir[4096];    /* GLASGOW_ROUTES_DIR */
    char lua_path[4096];      /* GLASGOW_LUA_PATH; empty means "next to the binary" */
    unsigned workers;         /* GLASGOW_WORKERS */

    /* limits */
    size_t max_header_bytes;     /* GLASGOW_MAX_HEADER_BYTES: all header lines together */
    unsigned max_headers;        /* GLASGOW_MAX_HEADERS */
    size_t max_request_line;     /* GLASGOW_MAX_REQUEST_LINE: method, target and version */
    size_t max_body_bytes;       /* GLASGOW_MAX_BODY_BYTES: default per-route body limit */
    unsigned max_json_depth;     /* GLASGOW_MAX_JSON_DEPTH */
    unsigned max_connections;    /* GLASGOW_MAX_CONNECTIONS: per process */
    unsigned max_conns_per_ip;   /* GLASGOW_MAX_CONNS_PER_IP: per TCP peer, trusted proxies
                                  * exempt */
    unsigned header_timeout_ms;  /* GLASGOW_HEADER_TIMEOUT_MS: first byte to end of headers */
    unsigned idle_timeout_ms;    /* GLASGOW_IDLE_TIMEOUT_MS: no traffic on a connection */
    unsigned request_timeout_ms; /* GLASGOW_REQUEST_TIMEOUT_MS: handler deadline */
    size_t min_rate;             /* GLASGOW_MIN_RATE_BYTES_PER_S: body bytes/s, 0 = off */
    unsigned min_rate_grace_ms;  /* GLASGOW_MIN_RATE_GRACE_MS: before the rate applies */
    unsigned shutdown_grace_ms;  /* GLASGOW_SHUTDOWN_GRACE_MS */
    unsigned reload_interval_ms; /* GLASGOW_RELOAD_INTERVAL_MS: periodic re-hash */
    unsigned reload_debounce_ms; /* GLASGOW_RELOAD_DEBOUNCE_MS */
    size_t lua_memory_limit;     /* GLASGOW_LUA_MEMORY_LIMIT: bytes per Lua state */
    unsigned lua_run_limit_ms;   /* GLASGOW_LUA_RUN_LIMIT_MS: running without yielding */
    unsigned load_timeout_ms;    /* GLASGOW_ROUTES_LOAD_TIMEOUT_MS: loading a bundle */
    unsigned stuck_grace_ms;     /* GLASGOW_STUCK_GRACE_MS: unstoppable code, then exit */

    /* database health (readiness); the other GLASGOW_DB_* live in lua_db */
    unsigned db_health_interval_ms; /* GLASGOW_DB_HEALTH_INTERVAL_MS: probe after this quiet */
    unsigned db_health_timeout_ms;  /* GLASGOW_DB_HEALTH_TIMEOUT_MS: unanswered: not ready */

    char tls_cert_file[4096]; /* GLASGOW_TLS_CERT_FILE */
    char tls_key_file[4096];  /* GLASGOW_TLS_KEY_FILE */
    int access_log;           /* GLASGOW_ACCESS_LOG: true/false */
    /* GLASGOW_TRUSTED_PROXIES: CIDRs whose X-Forwarded-For names the client */
    netaddr_set trusted_proxies;
    int log_level; /* GLASGOW_LOG_LEVEL: debug, info, warn, error */

    config_auth auth;
} config;

/* Looks a variable up; getenv() in production, a table in tests. */
typedef const char *(*config_getenv_fn)(const char *name);

/*
 * Fills c from the environment. Returns 0, or -1 with a one-line message
 * naming the offending variable in err (errlen bytes).
 */
int config_load(config *c, config_getenv_fn get, char *err, size_t errlen);

/*
 * Parses "host:port", "[v6]:port" or ":port" (all interfaces) into a numeric
 * socket address; no name resolution. Returns 0 or -1.
 */
int config_parse_addr(const char *text, config_addr *out);

/*
 * Parses an unsigned decimal in [min, max] with an optional unit suffix
 * when units is non-zero (k, m, g as powers of 1024). Returns 0 or -1.
 */
int config_parse_uint(const char *text, uint64_t min, uint64_t max, int units, uint64_t *out);

/*
 * Checks text as the server's public base URL (GLASGOW_PUBLIC_URL): http://
 * or https://, a host (a DNS name, IPv4 address or [IPv6] literal), an
 * optional :port (1-65535) and an optional path prefix of RFC 3986 path
 * characters without "." or ".." segments or empty ones; no user
 * information, query or fragment, at most CONFIG_PUBLIC_URL_MAX bytes.
 * Writes the normalised form (scheme and host lower-cased, no trailing
 * "/") to out (outlen bytes, at least CONFIG_PUBLIC_URL_MAX + 1) and returns
 * 0, or returns -1 with the rule it breaks in why (whylen bytes).
 */
#define CONFIG_PUBLIC_URL_MAX 1024
int config_parse_public_url(const char *text, char *out, size_t outlen, char *why, size_t whylen);

/*
 * Reads a secret given either as NAME or as NAME_FILE (a path to a mounted
 * Secret file; one trailing newline is stripped). Returns a malloc'd string
 * the caller frees, NULL when neither is set, and on error NULL with err
 * filled (both set, unreadable file, file over 64 KiB).
 */
char *config_secret(config_getenv_fn get, const char *name, char *err, size_t errlen);

#endif
