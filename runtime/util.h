/*
 * util: allocation that aborts on failure, fatal errors, small string helpers.
 */
#ifndef GLASGOW_UTIL_H
#define GLASGOW_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Allocators: abort the process when memory is exhausted (Redis style),
 * so callers never handle NULL. */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Prints "glasgow: MESSAGE" to stderr and exits 1. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Like die(), appending ": strerror(errno)". */
void die_errno(const char *what) __attribute__((noreturn));

/* A growable byte buffer; the bytes are always NUL-terminated. */
typedef struct strbuf {
    char *buf;
    size_t len;
    size_t cap;
} strbuf;

void strbuf_init(strbuf *sb);
void strbuf_dispose(strbuf *sb);
void strbuf_reset(strbuf *sb);
void strbuf_add(strbuf *sb, const void *p, size_t n);
void strbuf_adds(strbuf *sb, const char *s);
void strbuf_addf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as the body of a JSON string (no quotes), escaping per RFC 8259;
 * bytes that are not valid UTF-8 are replaced by U+FFFD. */
void strbuf_add_json_escaped(strbuf *sb, const char *s, size_t n);

/* Fills buf with n cryptographically random bytes (getrandom); aborts on failure. */
void util_random_bytes(void *buf, size_t n);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void util_hex(const unsigned char *in, size_t n, char *out);

/* Wall-clock time as RFC 3339 UTC with milliseconds into out (>= 32 bytes). */
void util_timestamp(char *out, size_t outlen);

/* Decimal digits of v into out (>= 21 bytes); returns the length. */
size_t util_format_u64(char *out, uint64_t v);

/* The current time as an IMF-fixdate for the Date header, cached per
 * thread and second; valid until the calling thread's next call. */
const char *util_http_date(void);

/*
 * Decodes the %XX escapes of the NUL-terminated string s in place and
 * returns the new length; the result is never longer than s and is
 * NUL-terminated. Strict, for request targets: a '%' that is not followed
 * by two hex digits, or that encodes NUL (%00), is copied unchanged and sets
 * *bad to 1, so the caller can refuse the request; otherwise *bad is 0.
 * Any other byte, '+' included, is copied as is.
 */
size_t util_percent_decode(char *s, int *bad);

/* The value of hex digit c (either case), or -1 if it is not one. */
int util_hex_digit(char c);

/*
 * Copies the first 40 of the n bytes at s into out (UTIL_QUOTE_MAX bytes)
 * for a one-line message: printable ASCII as is, any other byte and '"'
 * and '\\' as \xNN, and "..." when s was longer. Whatever s holds (an
 * environment value, a header), out is one printable line.
 */
#define UTIL_QUOTE_MAX (4 * 40 + 4)
void util_quote(const char *s, size_t n, char *out);

#endif
