/*
 * Unit tests for scrypt: the one set of parameter checks and caps both Lua
 * bindings (glasgow.crypto.scrypt, glasgow.core.scrypt) go through, and the
 * derivation, including its failure path.
 */
#include "lua_crypto.h"
#include "scrypt.h"
#include "tap.h"

#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* scrypt_check with empty password and salt; returns the refused argument
 * (0 when accepted) and stores the message in *msg. */
static int check_args(double n, double r, double p, double dklen, const char **msg)
{
    scrypt_params sp;
    int arg = 0;
    *msg = scrypt_check(0, 0, n, r, p, dklen, &sp, &arg);
    return *msg ? arg : 0;
}

static void test_check(void)
{
    static const struct {
        double n, r, p, dklen;
        int arg; /* 0: accepted */
        const char *what;
    } v[] = {
        {32768, 8, 1, 32, 0, "the default (N=2^15, r=8, p=1, 32 bytes)"},
        {2, 1, 1, 16, 0, "the smallest (N=2, r=1, p=1, 16 bytes)"},
        {1 << 17, 8, 1, 64, 0, "N=2^17, r=8 (128 MiB)"},
        {1 << 18, 7, 1, 32, 0, "N=2^18, r=7 (224 MiB, under the cap)"},
        {1 << 15, 1, 1, 32, 0, "N=2^15 with r=1 (RFC rule: below 2^16)"},
        {1 << 16, 16, 1, 32, 0, "N=2^16, r=16 (128 MiB)"},
        {1 << 10, 16, 16, 32, 0, "r=16, p=16"},
        {1, 8, 1, 32, SCRYPT_ARG_N, "N=1"},
        {0, 8, 1, 32, SCRYPT_ARG_N, "N=0"},
        {-1024, 8, 1, 32, SCRYPT_ARG_N, "N negative"},
        {1000, 8, 1, 32, SCRYPT_ARG_N, "N not a power of two"},
        {1024.5, 8, 1, 32, SCRYPT_ARG_N, "N a fraction"},
        {NAN, 8, 1, 32, SCRYPT_ARG_N, "N NaN"},
        {INFINITY, 8, 1, 32, SCRYPT_ARG_N, "N infinite"},
        {1 << 21, 1, 1, 32, SCRYPT_ARG_N, "N=2^21"},
        {1e300, 1, 1, 32, SCRYPT_ARG_N, "N=1e300"},
        {1 << 16, 1, 1, 32, SCRYPT_ARG_N, "N=2^16 with r=1 (RFC 7914: N < 2^(16r))"},
        {1 << 20, 2, 1, 32, SCRYPT_ARG_N, "N=2^20, r=2: over the 256 MiB cap"},
        {1 << 20, 8, 1, 64, SCRYPT_ARG_N, "N=2^20, r=8 (1 GiB, RFC vector 4): over the cap"},
        {1 << 17, 16, 16, 32, SCRYPT_ARG_N, "N=2^17, r=16, p=16: just over the cap"},
        {1024, 0, 1, 32, SCRYPT_ARG_R, "r=0"},
        {1024, 17, 1, 32, SCRYPT_ARG_R, "r=17"},
        {1024, 1.5, 1, 32, SCRYPT_ARG_R, "r a fraction (the job path once truncated it)"},
        {1024, NAN, 1, 32, SCRYPT_ARG_R, "r NaN"},
        {1024, 8, 0, 32, SCRYPT_ARG_P, "p=0"},
        {1024, 8, 17, 32, SCRYPT_ARG_P, "p=17"},
        {1024, 8, 2.5, 32, SCRYPT_ARG_P, "p a fraction"},
        {1024, 8, 1, 15, SCRYPT_ARG_DKLEN, "dklen=15"},
        {1024, 8, 1, 65, SCRYPT_ARG_DKLEN, "dklen=65"},
        {1024, 8, 1, 31.5, SCRYPT_ARG_DKLEN, "dklen a fraction"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        const char *msg;
        int arg = check_args(v[i].n, v[i].r, v[i].p, v[i].dklen, &msg);
        if (!tap_ok(arg == v[i].arg, __FILE__, __LINE__, "check: %s %s", v[i].what,
                    v[i].arg ? "refused" : "accepted"))
            printf("#   got arg %d (%s), want %d\n", arg, msg ? msg : "accepted", v[i].arg);
    }

    const char *msg;
    check_args(1 << 20, 8, 1, 64, &msg);
    ok(msg && strstr(msg, "256 MiB"), "check: the cap's message names 256 MiB (%s)",
       msg ? msg : "accepted");

    scrypt_params sp;
    int arg = 0;
    ok(scrypt_check(4096, 64, 1024, 8, 1, 32, &sp, &arg) == NULL,
       "check: a 4096-byte password and a 64-byte salt are accepted");
    ok(scrypt_check(4097, 16, 1024, 8, 1, 32, &sp, &arg) && arg == SCRYPT_ARG_PASSWORD,
       "check: a 4097-byte password is refused (argument 1)");
    ok(scrypt_check(16, 65, 1024, 8, 1, 32, &sp, &arg) && arg == SCRYPT_ARG_SALT,
       "check: a 65-byte salt is refused (argument 2)");

    ok(scrypt_check(0, 16, 32768, 8, 1, 32, &sp, &arg) == NULL && sp.n == 32768 && sp.r == 8 &&
           sp.p == 1 && sp.dklen == 32,
       "check: fills the parameters");
    /* OpenSSL needs 128*r*(N+2) + 128*r*p bytes: the default asks 32 MiB. */
    uint64_t need = (uint64_t)128 * 8 * (32768 + 2 + 1);
    ok(sp.maxmem >= need && sp.maxmem <= need + (1u << 20),
       "check: maxmem covers OpenSSL's need with a small margin (%llu for %llu)",
       (unsigned long long)sp.maxmem, (unsigned long long)need);
}

static void hex(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", in[i]);
}

static void test_derive(void)
{
    scrypt_params sp;
    int arg = 0;
    unsigned char out[SCRYPT_MAX_DKLEN];
    char h[2 * SCRYPT_MAX_DKLEN + 1];
    char why[160] = "";

    /* RFC 7914 section 12, vectors 1 and 2. */
    static const struct {
        const char *pass, *salt;
        double n, r, p;
        const char *hex;
    } v[] = {
        {"", "", 16, 1, 1,
         "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442"
         "fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906"},
        {"password", "NaCl", 1024, 8, 16,
         "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
         "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t pl = strlen(v[i].pass), sl = strlen(v[i].salt);
        ok(scrypt_check(pl, sl, v[i].n, v[i].r, v[i].p, 64, &sp, &arg) == NULL,
           "vector %zu passes the checks", i + 1);
        ok(scrypt_derive(&sp, v[i].pass, pl, (const unsigned char *)v[i].salt, sl, out, why,
                         sizeof why),
           "vector %zu derives", i + 1);
        hex(out, 64, h);
        is_str(h, v[i].hex, "RFC 7914 vector %zu", i + 1);
    }

    /* The failure path: a memory limit below the need makes OpenSSL refuse. */
    scrypt_params tight = sp;
    tight.maxmem = 1024;
    memset(out, 0xaa, sizeof out);
    int done = scrypt_derive(&tight, "password", 8, (const unsigned char *)"NaCl", 4, out, why,
                             sizeof why);
    ok(!done, "derive: OpenSSL refusing is a failure, not a key");
    ok(strncmp(why, "scrypt failed: ", 15) == 0 && strlen(why) > 15,
       "derive: the failure says why (%s)", why);
    int zero = 1;
    for (size_t i = 0; i < tight.dklen; i++)
        zero &= out[i] == 0;
    ok(zero, "derive: a failed derivation leaves no bytes behind");
    ok(!scrypt_derive(&tight, "x", 1, (const unsigned char *)"s", 1, out, NULL, 0),
       "derive: why may be NULL");
}

/* The Lua side: lua_crypto_scrypt_args raises with scrypt_check's verdict. */
static void test_lua_args(void)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    lua_pushcfunction(L, luaopen_glasgow_crypto);
    lua_call(L, 0, 1);
    lua_setglobal(L, "crypto");
    static const struct {
        const char *code, *want;
    } v[] = {
        {"local k = crypto.scrypt(string.rep('p', 4097), 's', 1024, 8, 1, 32)",
         "bad argument #1 to 'scrypt' (at most 4096 bytes expected)"},
        {"local k = crypto.scrypt('p', string.rep('s', 65), 1024, 8, 1, 32)",
         "bad argument #2 to 'scrypt' (at most 64 bytes expected)"},
        {"local k = crypto.scrypt('p', 's', 1024, 1.5, 1, 32)",
         "bad argument #4 to 'scrypt' (integer in 1..16 expected)"},
        {"local k = crypto.scrypt('p', 's', 2^20, 2, 1, 32)", "256 MiB memory cap"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        int st = luaL_dostring(L, v[i].code);
        const char *msg = st ? lua_tostring(L, -1) : "(no error)";
        if (!tap_ok(st != 0 && msg && strstr(msg, v[i].want), __FILE__, __LINE__,
                    "lua: %s raises %s", v[i].code, v[i].want))
            printf("#   got %s\n", msg ? msg : "(null)");
        lua_settop(L, 0);
    }
    int st = luaL_dostring(L, "return #crypto.scrypt(string.rep('p', 4096), string.rep('s', 64), "
                              "16, 1, 1, 16)");
    ok(st == 0 && lua_tointeger(L, -1) == 16, "lua: the largest password and salt derive");
    lua_close(L);
}

int main(void)
{
    test_check();
    test_derive();
    test_lua_args();
    return done_testing();
}
