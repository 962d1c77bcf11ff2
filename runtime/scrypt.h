/*
 * scrypt: the one scrypt (RFC 7914) of the runtime, with its parameter
 * checks and memory cap. Both Lua bindings use it: glasgow.crypto.scrypt
 * (inline) and glasgow.core.scrypt (on a job thread inside a request).
 *
 * Accepted: N a power of two in 2..2^20 and below 2^(16r) (RFC 7914 section
 * 2, binding only for r = 1); r and p integers in 1..16; dklen an integer in
 * 16..64; a salt of at most 64 bytes and a password of at most 4096 bytes
 * (glasgow.password's MAX_BYTES); and the memory OpenSSL allocates,
 * 128*r*(N+p+2) bytes, at most 256 MiB. N = 2^20 with r = 8 (1 GiB) is thus
 * refused; the default N = 2^15, r = 8, p = 1 needs 32 MiB.
 */
#ifndef GLASGOW_SCRYPT_H
#define GLASGOW_SCRYPT_H

#include <stddef.h>
#include <stdint.h>

enum {
    SCRYPT_MAX_N = 1 << 20,
    SCRYPT_MAX_RP = 16,
    SCRYPT_MIN_DKLEN = 16,
    SCRYPT_MAX_DKLEN = 64,
    SCRYPT_MAX_SALT = 64,
    SCRYPT_MAX_PASSWORD = 4096,
};

/* The most memory one derivation may ask OpenSSL for. */
#define SCRYPT_MEM_CAP ((uint64_t)256 << 20)

/* Parameters that passed scrypt_check. */
typedef struct scrypt_params {
    uint64_t n, r, p;
    size_t dklen;
    uint64_t maxmem; /* what OpenSSL may allocate: the need plus a margin */
} scrypt_params;

/* The argument a check refused, numbered as the Lua bindings take them:
 * scrypt(password, salt, N, r, p, dklen). */
enum {
    SCRYPT_ARG_PASSWORD = 1,
    SCRYPT_ARG_SALT = 2,
    SCRYPT_ARG_N = 3,
    SCRYPT_ARG_R = 4,
    SCRYPT_ARG_P = 5,
    SCRYPT_ARG_DKLEN = 6,
};

/*
 * Checks a derivation's sizes and parameters against the limits above (n,
 * r, p, dklen as Lua numbers: NaN, infinities and fractions are refused).
 * Returns NULL and fills *out when they are acceptable; otherwise returns a
 * static message saying what is expected and sets *arg to the SCRYPT_ARG_*
 * of the offending argument (out is then unspecified).
 */
const char *scrypt_check(size_t passlen, size_t saltlen, double n, double r, double p, double dklen,
                         scrypt_params *out, int *arg);

/*
 * Derives sp->dklen bytes of scrypt(pass, salt, sp) into out (room for
 * sp->dklen bytes); sp must come from scrypt_check with these lengths.
 * Returns 1; or 0 when OpenSSL failed, with its reason in why (a string of
 * at most whylen bytes, NUL-terminated; why may be NULL) and out cleared.
 * Thread-safe: it only reads its arguments and clears this thread's
 * OpenSSL error queue.
 */
int scrypt_derive(const scrypt_params *sp, const char *pass, size_t passlen,
                  const unsigned char *salt, size_t saltlen, unsigned char *out, char *why,
                  size_t whylen);

#endif
