/* glasgow.urlsign: the key's configuration (length limits, _FILE, unset),
 * signatures equal to an independent HMAC-SHA256 of the documented
 * message, verification refusing any change, and the misuse contract;
 * all through a real lua_State. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <unistd.h>

#include "lua_urlsign.h"
#include "tap.h"

static const char *env_key;
static const char *env_file;

static const char *fake_env(const char *name)
{
    if (!strcmp(name, "GLASGOW_URL_SIGNING_KEY"))
        return env_key;
    if (!strcmp(name, "GLASGOW_URL_SIGNING_KEY_FILE"))
        return env_file;
    return NULL;
}

static int configure(const char *k, const char *file, char *err, size_t errlen)
{
    env_key = k;
    env_file = file;
    err[0] = '\0';
    return lua_urlsign_service.configure(NULL, fake_env, err, errlen);
}

static lua_State *state(void)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_glasgow_urlsign);
    lua_setfield(L, -2, "glasgow.urlsign");
    lua_pop(L, 2);
    (void)luaL_dostring(L, "u = require 'glasgow.urlsign'");
    return L;
}

/* Runs code returning one value; returns its string form (static). */
static const char *eval(lua_State *L, const char *code)
{
    static char out[256];
    if (luaL_dostring(L, code) != 0) {
        snprintf(out, sizeof out, "error: %s", lua_tostring(L, -1));
    } else if (lua_isboolean(L, -1)) {
        snprintf(out, sizeof out, "%s", lua_toboolean(L, -1) ? "true" : "false");
    } else {
        const char *s = lua_tostring(L, -1);
        snprintf(out, sizeof out, "%s", s ? s : "nil");
    }
    lua_settop(L, 0);
    return out;
}

static void b64url(const unsigned char *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    unsigned bits = 0, acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = a[(acc >> bits) & 63];
        }
    }
    if (bits)
        out[o++] = a[(acc << (6 - bits)) & 63];
    out[o] = '\0';
}

static void test_configure(void)
{
    char err[256];
    const char *k32 = "0123456789abcdef0123456789abcdef";
    is_int(configure(NULL, NULL, err, sizeof err), 0, "unset: not configured, no error");
    is_str(err, "", "  no message");
    is_int(configure("too-short", NULL, err, sizeof err), -1, "a short key stops start-up");
    ok(strstr(err, "GLASGOW_URL_SIGNING_KEY") && strstr(err, "got 9"), "  naming the variable: %s",
       err);
    is_int(configure("0123456789abcdef0123456789abcde", NULL, err, sizeof err), -1,
           "31 bytes is too short");
    is_int(configure(k32, NULL, err, sizeof err), 1, "32 bytes configure it");
    char path[] = "/tmp/glasgow-urlsign-XXXXXX";
    int fd = mkstemp(path);
    ok(fd >= 0 && write(fd, k32, 32) == 32 && write(fd, "\n", 1) == 1, "write a key file");
    close(fd);
    is_int(configure(NULL, path, err, sizeof err), 1, "GLASGOW_URL_SIGNING_KEY_FILE works");
    is_int(configure(k32, path, err, sizeof err), -1, "both set is an error");
    unlink(path);
    is_int(configure(NULL, "/nonexistent/key", err, sizeof err), -1, "a missing file is an error");
}

static void test_sign_verify(void)
{
    char err[256];
    const char *k = "0123456789abcdef0123456789abcdef-extra";
    is_int(configure(k, NULL, err, sizeof err), 1, "configure");
    lua_State *L = state();
    is_str(eval(L, "return u.configured()"), "true", "configured()");

    /* the documented message, signed independently */
    const char *msg = "glasgow-url-v1\nGET\n/v1/download/b/caf\xc3\xa9.txt\n1700000000";
    unsigned char mac[32];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), k, (int)strlen(k), (const unsigned char *)msg, strlen(msg), mac, &maclen);
    char want[64];
    b64url(mac, maclen, want);
    is_str(eval(L, "return u.sign('GET', '/v1/download/b/caf\xc3\xa9.txt', 1700000000)"), want,
           "sign is HMAC-SHA256 of the documented message, base64url");
    (void)luaL_dostring(L, "sig = u.sign('GET', '/v1/download/b/x', 1700000000)");
    is_str(eval(L, "return u.verify('GET', '/v1/download/b/x', 1700000000, sig)"), "true",
           "verify accepts its own signature");
    is_str(eval(L, "return u.verify('HEAD', '/v1/download/b/x', 1700000000, sig)"), "false",
           "another method is refused");
    is_str(eval(L, "return u.verify('GET', '/v1/download/b/y', 1700000000, sig)"), "false",
           "another path is refused");
    is_str(eval(L, "return u.verify('GET', '/v1/download/b/x', 1700000001, sig)"), "false",
           "another expiry is refused");
    is_str(eval(L, "return u.verify('GET', '/v1/download/b/x', 1700000000, "
                   "(sig:sub(1, 42) .. (sig:sub(43) == 'A' and 'B' or 'A')))"),
           "false", "a changed signature is refused");
    is_str(eval(L, "return u.verify('GET', '/v1/download/b/x', 1700000000, sig .. 'A')"), "false",
           "a longer signature is refused");
    is_str(eval(L, "return u.verify('GET', '/v1/download/b/x', 1700000000, '')"), "false",
           "an empty signature is refused");
    is_str(eval(L, "return u.verify('GET', '/v1/download/b/x\\n', 1700000000, sig)"), "false",
           "a newline in the path is refused");
    ok(strstr(eval(L, "return u.sign('GET', 'a\\nb', 1)"), "newline") != NULL,
       "sign raises for a newline");
    ok(strstr(eval(L, "return u.sign('GET', '/p', 1.5)"), "integer") != NULL,
       "sign raises for a fractional expiry");
    ok(strstr(eval(L, "return u.sign('GET', '/p', -1)"), "integer") != NULL,
       "sign raises for a negative expiry");
    ok(strstr(eval(L, "return u.verify('GET', '/p')"), "bad argument") != NULL,
       "verify raises without an expiry");

    /* another key: old signatures stop working */
    is_int(configure("ffffffffffffffffffffffffffffffff", NULL, err, sizeof err), 1,
           "rotate the key");
    is_str(eval(L, "return u.verify('GET', '/v1/download/b/x', 1700000000, sig)"), "false",
           "a signature from the old key is refused");
    is_int(configure(NULL, NULL, err, sizeof err), 0, "unset the key");
    is_str(eval(L, "return u.configured()"), "false", "not configured");
    is_str(eval(L, "return select('#', u.sign('GET', '/p', 1)) .. tostring(select(2, u.sign('GET', "
                   "'/p', 1)))"),
           "2not configured", "sign answers nil, 'not configured'");
    is_str(eval(L, "return u.verify('GET', '/v1/download/b/x', 1700000000, sig)"), "false",
           "verify is false");
    lua_close(L);
}

int main(void)
{
    test_configure();
    test_sign_verify();
    done_testing();
}
