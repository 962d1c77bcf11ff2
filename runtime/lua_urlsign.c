/*
 * lua_urlsign: require "glasgow.urlsign" (see lua_urlsign.h).
 *
 * The key is written once by configure, before any thread starts, and
 * read-only afterwards, so every worker reads it without locking.
 */
#include "lua_urlsign.h"

#include <lauxlib.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define SIG_RAW 32
#define SIG_LEN 43 /* base64url of 32 bytes, unpadded */
#define MAX_EXPIRES 9007199254740992.0

static unsigned char key[URLSIGN_MAX_KEY];
static size_t key_len;                             /* 0: not configured */
static char public_url[CONFIG_PUBLIC_URL_MAX + 1]; /* "": not set */

static int urlsign_configure(const config *cfg, config_getenv_fn get, char *err, size_t errlen)
{
    (void)cfg;
    OPENSSL_cleanse(key, sizeof key);
    key_len = 0;
    public_url[0] = '\0';
    const char *base = get("GLASGOW_PUBLIC_URL");
    if (base && *base) {
        char why[160];
        if (config_parse_public_url(base, public_url, sizeof public_url, why, sizeof why) < 0) {
            /* quoted (escaped) so the mistake shows, unless it may hold a
             * password in user information ("user:secret@host") */
            char quoted[UTIL_QUOTE_MAX] = "";
            int show = !strchr(base, '@');
            if (show)
                util_quote(base, strlen(base), quoted);
            snprintf(err, errlen,
                     "GLASGOW_PUBLIC_URL: %s (expected http(s)://HOST[:PORT][/PATH], e.g. "
                     "https://api.example.com)%s%s%s",
                     why, show ? ", got \"" : "", quoted, show ? "\"" : "");
            public_url[0] = '\0';
            return -1;
        }
    }
    char *k = config_secret(get, "GLASGOW_URL_SIGNING_KEY", err, errlen);
    if (!k)
        return err[0] ? -1 : 0;
    size_t n = strlen(k);
    if (n < URLSIGN_MIN_KEY || n > URLSIGN_MAX_KEY) {
        snprintf(err, errlen,
                 "GLASGOW_URL_SIGNING_KEY: must be %d to %d bytes (e.g. 32 random bytes in "
                 "base64: head -c 32 /dev/urandom | base64), got %zu",
                 URLSIGN_MIN_KEY, URLSIGN_MAX_KEY, n);
        OPENSSL_cleanse(k, n);
        free(k);
        return -1;
    }
    for (size_t i = 0; i < n; i++) /* raw bytes, not a string: no terminator */
        key[i] = (unsigned char)k[i];
    key_len = n;
    OPENSSL_cleanse(k, n);
    free(k);
    return 1;
}

static void urlsign_describe(int enabled, char *out, size_t n)
{
    snprintf(out, n, "%s, %s%s", enabled ? "key set" : "none (signed URLs answer 503)",
             public_url[0] ? "public URL " : "paths only (GLASGOW_PUBLIC_URL unset)", public_url);
}

/* Computes the signature of (method, path, expires) into out (SIG_LEN + 1
 * bytes, NUL-terminated). Returns 0, or -1 when OpenSSL fails. */
static int compute(const char *method, size_t mlen, const char *path, size_t plen,
                   unsigned long long expires, char *out)
{
    unsigned char mac[SIG_RAW];
    char tail[32];
    int tn = snprintf(tail, sizeof tail, "\n%llu", expires);
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *c = m ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[2] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end()};
    int rc = -1;
    size_t outl = 0;
    if (!c || !EVP_MAC_init(c, key, key_len, params))
        goto done;
    if (!EVP_MAC_update(c, (const unsigned char *)"glasgow-url-v1\n", 15) ||
        !EVP_MAC_update(c, (const unsigned char *)method, mlen) ||
        !EVP_MAC_update(c, (const unsigned char *)"\n", 1) ||
        !EVP_MAC_update(c, (const unsigned char *)path, plen) ||
        !EVP_MAC_update(c, (const unsigned char *)tail, (size_t)tn) ||
        !EVP_MAC_final(c, mac, &outl, sizeof mac) || outl != SIG_RAW)
        goto done;
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < SIG_RAW; i += 3) {
        unsigned v = (unsigned)mac[i] << 16;
        if (i + 1 < SIG_RAW)
            v |= (unsigned)mac[i + 1] << 8;
        if (i + 2 < SIG_RAW)
            v |= mac[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        if (i + 1 < SIG_RAW)
            out[o++] = b64[(v >> 6) & 63];
        if (i + 2 < SIG_RAW)
            out[o++] = b64[v & 63];
    }
    out[o] = '\0';
    rc = o == SIG_LEN ? 0 : -1;
done:
    OPENSSL_cleanse(mac, sizeof mac);
    EVP_MAC_CTX_free(c);
    EVP_MAC_free(m);
    return rc;
}

static unsigned long long check_expires(lua_State *L, int arg)
{
    lua_Number n = luaL_checknumber(L, arg);
    if (!(n >= 0 && n <= MAX_EXPIRES) || n != (lua_Number)(unsigned long long)n)
        luaL_argerror(L, arg, "integer in 0..2^53 expected");
    return (unsigned long long)n;
}

static int l_configured(lua_State *L)
{
    lua_pushboolean(L, key_len > 0);
    return 1;
}

static int l_public_url(lua_State *L)
{
    if (public_url[0])
        lua_pushstring(L, public_url);
    else
        lua_pushnil(L);
    return 1;
}

static int l_sign(lua_State *L)
{
    size_t mlen, plen;
    const char *method = luaL_checklstring(L, 1, &mlen);
    const char *path = luaL_checklstring(L, 2, &plen);
    unsigned long long expires = check_expires(L, 3);
    char sig[SIG_LEN + 1];
    if (memchr(method, '\n', mlen))
        return luaL_argerror(L, 1, "must not contain a newline");
    if (memchr(path, '\n', plen))
        return luaL_argerror(L, 2, "must not contain a newline");
    if (!key_len) {
        lua_pushnil(L);
        lua_pushliteral(L, "not configured");
        return 2;
    }
    if (compute(method, mlen, path, plen, expires, sig) < 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "hmac failed");
        return 2;
    }
    lua_pushlstring(L, sig, SIG_LEN);
    return 1;
}

static int l_verify(lua_State *L)
{
    size_t mlen, plen, slen;
    const char *method = luaL_checklstring(L, 1, &mlen);
    const char *path = luaL_checklstring(L, 2, &plen);
    unsigned long long expires = check_expires(L, 3);
    const char *given = luaL_checklstring(L, 4, &slen);
    char sig[SIG_LEN + 1];
    int okay = key_len > 0 && slen == SIG_LEN && !memchr(method, '\n', mlen) &&
               !memchr(path, '\n', plen) && compute(method, mlen, path, plen, expires, sig) == 0 &&
               CRYPTO_memcmp(sig, given, SIG_LEN) == 0;
    lua_pushboolean(L, okay);
    return 1;
}

int luaopen_glasgow_urlsign(lua_State *L)
{
    static const luaL_Reg fns[] = {{"configured", l_configured},
                                   {"sign", l_sign},
                                   {"verify", l_verify},
                                   {"public_url", l_public_url},
                                   {NULL, NULL}};
    lua_createtable(L, 0, 4);
    luaL_register(L, NULL, fns);
    return 1;
}

const service lua_urlsign_service = {
    .name = "urlsign",
    .lua_name = "glasgow.urlsign",
    .lua_open = luaopen_glasgow_urlsign,
    .configure = urlsign_configure,
    .describe = urlsign_describe,
};
