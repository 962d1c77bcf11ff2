/*
 * scrypt: parameter checks and the derivation (see scrypt.h).
 */
#include "scrypt.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdio.h>

/* Slack added to the computed need so that maxmem never refuses a
 * permitted call (OpenSSL's own accounting may round up). */
static const uint64_t mem_margin = (uint64_t)64 << 10;

/* True when x is an integer in lo..hi (false for NaN). */
static int int_in(double x, double lo, double hi)
{
    return x >= lo && x <= hi && x == (double)(int64_t)x;
}

const char *scrypt_check(size_t passlen, size_t saltlen, double n, double r, double p, double dklen,
                         scrypt_params *out, int *arg)
{
    if (passlen > SCRYPT_MAX_PASSWORD) {
        *arg = SCRYPT_ARG_PASSWORD;
        return "at most 4096 bytes expected";
    }
    if (saltlen > SCRYPT_MAX_SALT) {
        *arg = SCRYPT_ARG_SALT;
        return "at most 64 bytes expected";
    }
    if (!int_in(n, 2, SCRYPT_MAX_N)) {
        *arg = SCRYPT_ARG_N;
        return "integer in 2..1048576 expected";
    }
    if (!int_in(r, 1, SCRYPT_MAX_RP)) {
        *arg = SCRYPT_ARG_R;
        return "integer in 1..16 expected";
    }
    if (!int_in(p, 1, SCRYPT_MAX_RP)) {
        *arg = SCRYPT_ARG_P;
        return "integer in 1..16 expected";
    }
    if (!int_in(dklen, SCRYPT_MIN_DKLEN, SCRYPT_MAX_DKLEN)) {
        *arg = SCRYPT_ARG_DKLEN;
        return "integer in 16..64 expected";
    }
    uint64_t un = (uint64_t)n, ur = (uint64_t)r, up = (uint64_t)p;
    if (un & (un - 1)) {
        *arg = SCRYPT_ARG_N;
        return "power of two expected";
    }
    /* RFC 7914 section 2: N < 2^(128 * r / 8); only binds for r == 1. */
    if (16 * ur < 64 && un >= ((uint64_t)1 << (16 * ur))) {
        *arg = SCRYPT_ARG_N;
        return "N must be below 2^(16*r)";
    }
    /* What OpenSSL allocates: B (128*r*p) and V plus scratch (128*r*(N+2)). */
    uint64_t need = 128 * ur * (un + 2 + up) + mem_margin;
    if (need > SCRYPT_MEM_CAP) {
        *arg = SCRYPT_ARG_N;
        return "128*r*(N+p) exceeds the 256 MiB memory cap";
    }
    out->n = un;
    out->r = ur;
    out->p = up;
    out->dklen = (size_t)dklen;
    out->maxmem = need;
    return NULL;
}

int scrypt_derive(const scrypt_params *sp, const char *pass, size_t passlen,
                  const unsigned char *salt, size_t saltlen, unsigned char *out, char *why,
                  size_t whylen)
{
    ERR_clear_error();
    if (EVP_PBE_scrypt(pass, passlen, salt, saltlen, sp->n, sp->r, sp->p, sp->maxmem, out,
                       sp->dklen) == 1)
        return 1;
    OPENSSL_cleanse(out, sp->dklen);
    if (why && whylen > 0) {
        unsigned long e = ERR_peek_last_error();
        const char *reason = e ? ERR_reason_error_string(e) : NULL;
        snprintf(why, whylen, "scrypt failed: %s", reason ? reason : "unknown error");
    }
    ERR_clear_error();
    return 0;
}
