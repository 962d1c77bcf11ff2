/*
 * lua_crypto: require "glasgow.crypto" (see lua_crypto.h for the API).
 *
 * Nothing here allocates with malloc: inputs are read in place from the Lua
 * stack, fixed-size results go through stack buffers, and variable-size
 * results are built in a luaL_Buffer, so raising is always safe.
 */
#include "lua_crypto.h"

#include "scrypt.h"

#include <lauxlib.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <string.h>

enum {
    RANDOM_MAX = 1024,
    SHA256_LEN = 32,
    /* Output is produced through a stack buffer of this size; the input
     * chunk sizes below are whole groups that fill it at most. */
    OUT_CHUNK = 4096,
    HEX_CHUNK = OUT_CHUNK / 2,
    B64_ENCODE_CHUNK = OUT_CHUNK / 4 * 3,
    B64_DECODE_CHUNK = OUT_CHUNK,
};

/* Returns argument arg as an integer in lo..hi, or raises "bad argument". */
static lua_Integer check_int_range(lua_State *L, int arg, lua_Integer lo, lua_Integer hi)
{
    lua_Number n = luaL_checknumber(L, arg);
    if (!(n >= (lua_Number)lo && n <= (lua_Number)hi) || n != (lua_Number)(lua_Integer)n) {
        luaL_argerror(L, arg, lua_pushfstring(L, "integer in %d..%d expected", (int)lo, (int)hi));
        return lo;
    }
    return (lua_Integer)n;
}

/* Pushes nil and "what failed: reason" from OpenSSL's error queue, which it
 * empties; returns 2 for the binding to return. */
static int push_ssl_error(lua_State *L, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    lua_pushnil(L);
    lua_pushfstring(L, "%s failed: %s", what, reason ? reason : "unknown error");
    ERR_clear_error();
    return 2;
}

void lua_crypto_scrypt_args(lua_State *L, lua_crypto_scrypt_in *in)
{
    in->pass = luaL_checklstring(L, 1, &in->passlen);
    in->salt = (const unsigned char *)luaL_checklstring(L, 2, &in->saltlen);
    lua_Number n = luaL_checknumber(L, 3), r = luaL_checknumber(L, 4);
    lua_Number p = luaL_checknumber(L, 5), dklen = luaL_checknumber(L, 6);
    int arg = 0;
    const char *why = scrypt_check(in->passlen, in->saltlen, n, r, p, dklen, &in->params, &arg);
    if (why)
        luaL_argerror(L, arg, why);
}

/* scrypt(password, salt, N, r, p, dklen) -> dklen bytes, or nil, err. */
static int crypto_scrypt(lua_State *L)
{
    lua_crypto_scrypt_in in;
    lua_crypto_scrypt_args(L, &in);
    unsigned char out[SCRYPT_MAX_DKLEN];
    char why[160];
    if (!scrypt_derive(&in.params, in.pass, in.passlen, in.salt, in.saltlen, out, why,
                       sizeof why)) {
        lua_pushnil(L);
        lua_pushstring(L, why);
        return 2;
    }
    lua_pushlstring(L, (const char *)out, in.params.dklen);
    OPENSSL_cleanse(out, sizeof out);
    return 1;
}

/* sha256(data) -> 32 bytes, or nil, err. */
static int crypto_sha256(lua_State *L)
{
    size_t len;
    const char *data = luaL_checklstring(L, 1, &len);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    ERR_clear_error();
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != SHA256_LEN)
        return push_ssl_error(L, "sha256");
    lua_pushlstring(L, (const char *)md, mdlen);
    return 1;
}

/* hmac_sha256(key, data) -> 32 bytes, or nil, err. */
static int crypto_hmac_sha256(lua_State *L)
{
    size_t keylen, len;
    const char *key = luaL_checklstring(L, 1, &keylen);
    const unsigned char *data = (const unsigned char *)luaL_checklstring(L, 2, &len);
    if (keylen > INT_MAX)
        return luaL_argerror(L, 1, "key too long");
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    ERR_clear_error();
    if (!HMAC(EVP_sha256(), key, (int)keylen, data, len, md, &mdlen) || mdlen != SHA256_LEN)
        return push_ssl_error(L, "hmac_sha256");
    lua_pushlstring(L, (const char *)md, mdlen);
    OPENSSL_cleanse(md, sizeof md);
    return 1;
}

/* equal(a, b) -> boolean; the time taken depends only on the lengths. */
static int crypto_equal(lua_State *L)
{
    size_t alen, blen;
    const char *a = luaL_checklstring(L, 1, &alen);
    const char *b = luaL_checklstring(L, 2, &blen);
    lua_pushboolean(L, alen == blen && CRYPTO_memcmp(a, b, alen) == 0);
    return 1;
}

/* random(n) -> n bytes, or nil, err. */
static int crypto_random(lua_State *L)
{
    int n = (int)check_int_range(L, 1, 1, RANDOM_MAX);
    unsigned char buf[RANDOM_MAX];
    ERR_clear_error();
    if (RAND_bytes(buf, n) != 1)
        return push_ssl_error(L, "random");
    lua_pushlstring(L, (const char *)buf, (size_t)n);
    OPENSSL_cleanse(buf, (size_t)n);
    return 1;
}

/* hex(s) -> lowercase hex of s. */
static int crypto_hex(lua_State *L)
{
    static const char digits[] = "0123456789abcdef";
    size_t len;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    while (len > 0) {
        char out[OUT_CHUNK];
        size_t take = len < HEX_CHUNK ? len : HEX_CHUNK;
        for (size_t i = 0; i < take; i++) {
            out[2 * i] = digits[s[i] >> 4];
            out[2 * i + 1] = digits[s[i] & 15];
        }
        luaL_addlstring(&b, out, 2 * take);
        s += take;
        len -= take;
    }
    luaL_pushresult(&b);
    return 1;
}

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url(s) -> RFC 4648 section 5 encoding of s without padding. */
static int crypto_base64url(lua_State *L)
{
    size_t len;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    while (len > 0) {
        /* Whole groups of three bytes per chunk, except for the tail. */
        char out[OUT_CHUNK];
        size_t take = len < B64_ENCODE_CHUNK ? len : B64_ENCODE_CHUNK;
        size_t o = 0, i = 0;
        for (; i + 3 <= take; i += 3) {
            uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
            out[o++] = b64url_alphabet[v >> 18];
            out[o++] = b64url_alphabet[(v >> 12) & 63];
            out[o++] = b64url_alphabet[(v >> 6) & 63];
            out[o++] = b64url_alphabet[v & 63];
        }
        if (take - i == 1) {
            out[o++] = b64url_alphabet[s[i] >> 2];
            out[o++] = b64url_alphabet[(s[i] & 3) << 4];
        } else if (take - i == 2) {
            uint32_t v = (uint32_t)s[i] << 8 | s[i + 1];
            out[o++] = b64url_alphabet[v >> 10];
            out[o++] = b64url_alphabet[(v >> 4) & 63];
            out[o++] = b64url_alphabet[(v << 2) & 63];
        }
        luaL_addlstring(&b, out, o);
        s += take;
        len -= take;
    }
    luaL_pushresult(&b);
    return 1;
}

/* The 6-bit value of a base64url character, or -1 for anything else. */
static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* base64url_decode(s) -> bytes, or nil, err when s is not canonical base64url. */
static int crypto_base64url_decode(lua_State *L)
{
    size_t len;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
    if (len % 4 == 1) {
        lua_pushnil(L);
        lua_pushliteral(L, "invalid base64url length");
        return 2;
    }
    for (size_t i = 0; i < len; i++) {
        if (b64url_value(s[i]) < 0) {
            lua_pushnil(L);
            lua_pushliteral(L, "invalid base64url character");
            return 2;
        }
    }
    /* The bits of the last character beyond the final byte must be zero,
     * so that every byte string has exactly one accepted encoding. */
    if ((len % 4 == 2 && (b64url_value(s[len - 1]) & 15)) ||
        (len % 4 == 3 && (b64url_value(s[len - 1]) & 3))) {
        lua_pushnil(L);
        lua_pushliteral(L, "invalid base64url trailing bits");
        return 2;
    }

    luaL_Buffer b;
    luaL_buffinit(L, &b);
    while (len > 0) {
        char out[OUT_CHUNK];
        size_t take = len < B64_DECODE_CHUNK ? len : B64_DECODE_CHUNK;
        size_t o = 0, i = 0;
        for (; i + 4 <= take; i += 4) {
            uint32_t v = (uint32_t)b64url_value(s[i]) << 18 |
                         (uint32_t)b64url_value(s[i + 1]) << 12 |
                         (uint32_t)b64url_value(s[i + 2]) << 6 | (uint32_t)b64url_value(s[i + 3]);
            out[o++] = (char)(v >> 16);
            out[o++] = (char)(v >> 8);
            out[o++] = (char)v;
        }
        if (take - i >= 2) {
            uint32_t v = (uint32_t)b64url_value(s[i]) << 18 | (uint32_t)b64url_value(s[i + 1])
                                                                  << 12;
            if (take - i == 3)
                v |= (uint32_t)b64url_value(s[i + 2]) << 6;
            out[o++] = (char)(v >> 16);
            if (take - i == 3)
                out[o++] = (char)(v >> 8);
        }
        luaL_addlstring(&b, out, o);
        s += take;
        len -= take;
    }
    luaL_pushresult(&b);
    return 1;
}

int luaopen_glasgow_crypto(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"scrypt", crypto_scrypt},
        {"sha256", crypto_sha256},
        {"hmac_sha256", crypto_hmac_sha256},
        {"equal", crypto_equal},
        {"random", crypto_random},
        {"hex", crypto_hex},
        {"base64url", crypto_base64url},
        {"base64url_decode", crypto_base64url_decode},
        {NULL, NULL},
    };
    lua_createtable(L, 0, (int)(sizeof fns / sizeof fns[0]) - 1);
    luaL_register(L, NULL, fns);
    return 1;
}
