/* glasgow.crypto against published vectors (RFC 7914 scrypt, FIPS 180-2
 * SHA-256, RFC 4231 HMAC-SHA256, RFC 4648 base64), its misuse contract, and
 * glasgow.password on top of it, all called through a real lua_State. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdlib.h>
#include <time.h>

#include "lua_crypto.h"
#include "tap.h"
#include "util.h"

/* Loads code and calls it with the nargs values on top of the stack as its
 * "...". Returns the lua_pcall status (or the load status) and leaves nres
 * results, or the error message, on the stack. */
static int run(lua_State *L, const char *code, int nargs, int nres)
{
    int st = luaL_loadstring(L, code);
    if (st != 0) {
        lua_insert(L, -(nargs + 1));
        lua_pop(L, nargs);
        return st;
    }
    lua_insert(L, -(nargs + 1));
    return lua_pcall(L, nargs, nres, 0);
}

/* Runs code, which returns true on success or false and a detail message. */
static void check(lua_State *L, const char *code, const char *desc)
{
    int st = run(L, code, 0, 2);
    int pass = st == 0 && lua_toboolean(L, -2);
    ok(pass, "%s", desc);
    if (!pass) {
        const char *msg = lua_tostring(L, -1);
        printf("#   %s\n", msg ? msg : "(no message)");
    }
    lua_pop(L, st == 0 ? 2 : 1);
}

/* Runs code, which must raise an error containing want. */
static void raises(lua_State *L, const char *code, const char *want)
{
    int st = run(L, code, 0, 0);
    const char *msg = st != 0 ? lua_tostring(L, -1) : NULL;
    int pass = msg && strstr(msg, want);
    ok(pass, "raises: %s", code);
    if (!pass)
        printf("#   got %s, want an error with \"%s\"\n", msg ? msg : "no error", want);
    if (st != 0)
        lua_pop(L, 1);
}

/* Lowercase hex of the string at the top of the stack into out (pops it);
 * "(not a string)" when it is something else. */
static void pop_hex(lua_State *L, char *out, size_t outlen)
{
    size_t len;
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
    if (s && 2 * len < outlen)
        util_hex((const unsigned char *)s, len, out);
    else
        snprintf(out, outlen, "%s", s ? "(too long)" : "(not a string)");
    lua_pop(L, 1);
}

/* util_hex (the digests' and the request ids' encoding) over every byte. */
static void test_hex(void)
{
    unsigned char all[256];
    char got[513], want[513];
    for (int i = 0; i < 256; i++) {
        all[i] = (unsigned char)i;
        snprintf(want + 2 * i, 3, "%02x", i);
    }
    util_hex(all, sizeof all, got);
    is_str(got, want, "util_hex: two lowercase digits for each of the 256 byte values");
    util_hex(all, 0, got);
    is_str(got, "", "util_hex of nothing is the empty string");
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A state with the standard libraries, glasgow.crypto preloaded and loaded
 * as the global "crypto", and package.path pointing at lua/. */
static lua_State *new_state(void)
{
    lua_State *L = luaL_newstate();
    if (!L)
        die("cannot create a Lua state");
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_pushliteral(L, "./lua/?.lua;./lua/?/init.lua");
    lua_setfield(L, -2, "path");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_glasgow_crypto);
    lua_setfield(L, -2, "glasgow.crypto");
    lua_pop(L, 2);
    if (run(L, "crypto = require 'glasgow.crypto'", 0, 0) != 0)
        die("require glasgow.crypto: %s", lua_tostring(L, -1));
    return L;
}

/* ---- scrypt ------------------------------------------------------------------ */

static void test_scrypt_vectors(lua_State *L)
{
    /* RFC 7914 section 12; the fourth vector (N = 2^20, r = 8) needs 1 GiB
     * and is refused by the memory cap, see test_misuse. */
    static const struct {
        const char *pass, *salt;
        int n, r, p, dklen;
        const char *hex;
    } v[] = {
        {"", "", 16, 1, 1, 64,
         "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442"
         "fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906"},
        {"password", "NaCl", 1024, 8, 16, 64,
         "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
         "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"},
        {"pleaseletmein", "SodiumChloride", 16384, 8, 1, 64,
         "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2"
         "d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887"},
    };
    char hex[160];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        lua_pushstring(L, v[i].pass);
        lua_pushstring(L, v[i].salt);
        lua_pushinteger(L, v[i].n);
        lua_pushinteger(L, v[i].r);
        lua_pushinteger(L, v[i].p);
        lua_pushinteger(L, v[i].dklen);
        int st = run(L, "return crypto.scrypt(...)", 6, 1);
        if (st != 0)
            printf("#   %s\n", lua_tostring(L, -1));
        pop_hex(L, hex, sizeof hex);
        is_str(hex, v[i].hex, "scrypt RFC 7914 vector %zu (\"%s\", N=%d, r=%d, p=%d)", i + 1,
               v[i].pass, v[i].n, v[i].r, v[i].p);
    }
    check(L,
          "local k = crypto.scrypt('password', 'NaCl', 1024, 8, 16, 16)\n"
          "return #k == 16 and k == crypto.scrypt('password', 'NaCl', 1024, 8, 16, 64):sub(1, 16)",
          "scrypt dklen 16 is a prefix of dklen 64");
    check(
        L,
        "return crypto.scrypt('a\\0b', 's', 16, 1, 1, 16) ~= crypto.scrypt('a', 's', 16, 1, 1, 16)",
        "scrypt: bytes after a NUL in the password count");
}

/* ---- SHA-256 and HMAC-SHA256 -------------------------------------------------- */

static void test_sha256(lua_State *L)
{
    static const struct {
        const char *msg, *hex;
    } v[] = {
        /* FIPS 180-2 appendix B */
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    };
    char hex[80];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        lua_pushstring(L, v[i].msg);
        run(L, "return crypto.sha256(...)", 1, 1);
        pop_hex(L, hex, sizeof hex);
        is_str(hex, v[i].hex, "sha256 \"%.20s\"", v[i].msg);
    }
    run(L, "return crypto.sha256(string.rep('a', 1000000))", 0, 1);
    pop_hex(L, hex, sizeof hex);
    is_str(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
           "sha256 of one million 'a' (FIPS 180-2 B.3)");
}

static void test_hmac_sha256(lua_State *L)
{
    /* RFC 4231 test cases 1-4, 6 and 7; keys and data as Lua expressions. */
    static const struct {
        int tc;
        const char *key, *data, *hex;
    } v[] = {
        {1, "string.rep('\\11', 20)", "'Hi There'",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {2, "'Jefe'", "'what do ya want for nothing?'",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {3, "string.rep('\\170', 20)", "string.rep('\\221', 50)",
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {4,
         "'\\1\\2\\3\\4\\5\\6\\7\\8\\9\\10\\11\\12\\13\\14\\15\\16\\17\\18\\19\\20\\21\\22\\23\\24"
         "\\25'",
         "string.rep('\\205', 50)",
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
        {6, "string.rep('\\170', 131)", "'Test Using Larger Than Block-Size Key - Hash Key First'",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
        {7, "string.rep('\\170', 131)",
         "'This is a test using a larger than block-size key and a larger than block-size data.'"
         " .. ' The key needs to be hashed before being used by the HMAC algorithm.'",
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
    };
    char code[512], hex[80];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        snprintf(code, sizeof code, "return crypto.hmac_sha256(%s, %s)", v[i].key, v[i].data);
        if (run(L, code, 0, 1) != 0)
            printf("#   %s\n", lua_tostring(L, -1));
        pop_hex(L, hex, sizeof hex);
        is_str(hex, v[i].hex, "hmac_sha256 RFC 4231 test case %d", v[i].tc);
    }
    check(L, "return #crypto.hmac_sha256('', '') == 32", "hmac_sha256 with empty key and data");
}

/* ---- equal, random, hex -------------------------------------------------------- */

static void test_equal_random_hex(lua_State *L)
{
    check(L, "return crypto.equal('abc', 'abc') == true", "equal: same bytes");
    check(L, "return crypto.equal('', '') == true", "equal: empty strings");
    check(L, "return crypto.equal('abc', 'abd') == false", "equal: last byte differs");
    check(L, "return crypto.equal('xbc', 'abc') == false", "equal: first byte differs");
    check(L, "return crypto.equal('a\\0b', 'a\\0c') == false", "equal: bytes after a NUL count");
    check(L, "return crypto.equal('abc', 'abcd') == false", "equal: different lengths");
    check(L, "return crypto.equal('abc', '') == false", "equal: one empty");

    check(L, "return #crypto.random(1) == 1 and #crypto.random(1024) == 1024",
          "random: 1 and 1024 bytes");
    check(L, "return crypto.random(32) ~= crypto.random(32)", "random: two draws differ");
    check(L,
          "local seen = {}\n"
          "for _ = 1, 64 do for b in crypto.random(1024):gmatch('.') do seen[b] = true end end\n"
          "local n = 0 for _ in pairs(seen) do n = n + 1 end\n"
          "return n == 256, n .. ' distinct byte values'",
          "random: 64 KiB cover all 256 byte values");

    check(L, "return crypto.hex('') == ''", "hex of empty");
    check(L, "return crypto.hex('\\0\\1\\127\\128\\255abc') == '00017f80ff616263'",
          "hex of edge bytes");
    enum { BIG = 100001 };
    char *big = xmalloc(BIG), *want = xmalloc(2 * BIG + 1);
    for (size_t i = 0; i < BIG; i++)
        big[i] = (char)(i * 7 + i / 256);
    util_hex((const unsigned char *)big, BIG, want);
    lua_pushlstring(L, big, BIG);
    run(L, "return crypto.hex(...)", 1, 1);
    const char *got = lua_tostring(L, -1);
    ok(got && strcmp(got, want) == 0, "hex of %d bytes (several buffer chunks)", BIG);
    lua_pop(L, 1);
    free(big);
    free(want);
}

/* ---- base64url ------------------------------------------------------------------ */

static void test_base64url(lua_State *L)
{
    /* RFC 4648 section 10, then bytes that use '-' and '_' (standard '+' and '/'). */
    static const struct {
        const char *raw;
        size_t len;
        const char *enc;
    } v[] = {
        {"", 0, ""},
        {"f", 1, "Zg"},
        {"fo", 2, "Zm8"},
        {"foo", 3, "Zm9v"},
        {"foob", 4, "Zm9vYg"},
        {"fooba", 5, "Zm9vYmE"},
        {"foobar", 6, "Zm9vYmFy"},
        {"\xfb\xff", 2, "-_8"},
        {"\xfb\xff\xbf", 3, "-_-_"},
        {"\xff\xff\xff\xff", 4, "_____w"},
        {"\0\0\0", 3, "AAAA"},
        {"\0", 1, "AA"},
        {"\x14\xfb\x9c\x03\xd9\x7e", 6, "FPucA9l-"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        lua_pushlstring(L, v[i].raw, v[i].len);
        run(L, "return crypto.base64url(...)", 1, 1);
        is_str(lua_tostring(L, -1), v[i].enc, "base64url encodes to \"%s\"", v[i].enc);
        lua_pop(L, 1);
        lua_pushstring(L, v[i].enc);
        run(L, "return crypto.base64url_decode(...)", 1, 1);
        size_t len = 0;
        const char *got = lua_tolstring(L, -1, &len);
        ok(got && len == v[i].len && memcmp(got, v[i].raw, len) == 0, "base64url_decode \"%s\"",
           v[i].enc);
        lua_pop(L, 1);
    }
    check(L,
          "for n = 0, 300 do\n"
          "    local s = n > 0 and crypto.random(math.min(n, 1024)) or ''\n"
          "    local e = crypto.base64url(s)\n"
          "    if #e ~= math.ceil(n * 4 / 3) or e:find('[^%w_-]') then return false, 'len ' .. n "
          "end\n"
          "    if crypto.base64url_decode(e) ~= s then return false, 'round trip ' .. n end\n"
          "end\n"
          "return true",
          "base64url round trips for lengths 0..300");
    check(L,
          "for _, n in ipairs({3071, 3072, 3073, 4095, 4096, 4097, 6144, 6145, 100000}) do\n"
          "    local s = string.rep('\\251\\255\\191\\0', n):sub(1, n)\n"
          "    local e = crypto.base64url(s)\n"
          "    if crypto.base64url_decode(e) ~= s then return false, 'length ' .. n end\n"
          "end\n"
          "return true",
          "base64url round trips across buffer chunk boundaries");

#define BAD(lit)                                                                                   \
    {                                                                                              \
        (lit), sizeof(lit) - 1                                                                     \
    }
    static const struct {
        const char *s;
        size_t len;
    } bad[] = {
        BAD("A"),       BAD("Zm9vY"),        BAD("Zm9v="), BAD("Zg=="),      BAD("Zm8="),
        BAD("Zm9v Zg"), BAD("Zm9v\n"),       BAD(" Zm9v"), BAD("Zm+v"),      BAD("Zm/v"),
        BAD("Zm9v."),   BAD("Zh"),           BAD("Zm9"),   BAD("_____x"),    BAD("\xc3\xa9Zg"),
        BAD("Zm\0v"),   BAD("Zm9vYmFy\r\n"), BAD("="),     BAD("Zm9vYmFy="), BAD("Zm9v\0"),
    };
#undef BAD
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lua_pushlstring(L, bad[i].s, bad[i].len);
        int st = run(L, "return crypto.base64url_decode(...)", 1, 2);
        const char *err = st == 0 ? lua_tostring(L, -1) : NULL;
        ok(st == 0 && lua_isnil(L, -2) && err && !strncmp(err, "invalid base64url", 17),
           "base64url_decode refuses malformed input %zu (%s)", i + 1, err ? err : "?");
        lua_pop(L, st == 0 ? 2 : 1);
    }
}

/* ---- misuse raises ------------------------------------------------------------- */

static void test_misuse(lua_State *L)
{
    static const struct {
        const char *code, *want;
    } v[] = {
        {"crypto.scrypt('p', 's', 1000, 8, 1, 32)", "bad argument #3 to 'scrypt'"},
        {"crypto.scrypt('p', 's', 1, 8, 1, 32)", "bad argument #3 to 'scrypt'"},
        {"crypto.scrypt('p', 's', 0, 8, 1, 32)", "bad argument #3 to 'scrypt'"},
        {"crypto.scrypt('p', 's', 2^21, 8, 1, 32)", "bad argument #3 to 'scrypt'"},
        {"crypto.scrypt('p', 's', 1024.5, 8, 1, 32)", "bad argument #3 to 'scrypt'"},
        {"crypto.scrypt('p', 's', 0/0, 8, 1, 32)", "bad argument #3 to 'scrypt'"},
        {"crypto.scrypt('p', 's', -1024, 8, 1, 32)", "bad argument #3 to 'scrypt'"},
        {"crypto.scrypt('p', 's', 2^16, 1, 1, 32)", "bad argument #3 to 'scrypt'"},
        {"crypto.scrypt('p', 's', 2^20, 8, 1, 64)", "bad argument #3 to 'scrypt'"},
        {"crypto.scrypt('p', 's', 2^20, 2, 1, 32)", "bad argument #3 to 'scrypt'"},
        {"crypto.scrypt('p', 's', 1024, 0, 1, 32)", "bad argument #4 to 'scrypt'"},
        {"crypto.scrypt('p', 's', 1024, 17, 1, 32)", "bad argument #4 to 'scrypt'"},
        {"crypto.scrypt('p', 's', 1024, 8, 0, 32)", "bad argument #5 to 'scrypt'"},
        {"crypto.scrypt('p', 's', 1024, 8, 17, 32)", "bad argument #5 to 'scrypt'"},
        {"crypto.scrypt('p', 's', 1024, 8, 1, 15)", "bad argument #6 to 'scrypt'"},
        {"crypto.scrypt('p', 's', 1024, 8, 1, 65)", "bad argument #6 to 'scrypt'"},
        {"crypto.scrypt('p', 's', 1024, 8, 1)", "bad argument #6 to 'scrypt'"},
        {"crypto.scrypt('p', 's', '1024x', 8, 1, 32)", "bad argument #3 to 'scrypt'"},
        {"crypto.scrypt({}, 's', 1024, 8, 1, 32)", "bad argument #1 to 'scrypt'"},
        {"crypto.scrypt('p', nil, 1024, 8, 1, 32)", "bad argument #2 to 'scrypt'"},
        {"crypto.sha256()", "bad argument #1 to 'sha256'"},
        {"crypto.sha256({})", "bad argument #1 to 'sha256'"},
        {"crypto.hmac_sha256('key')", "bad argument #2 to 'hmac_sha256'"},
        {"crypto.hmac_sha256(nil, 'data')", "bad argument #1 to 'hmac_sha256'"},
        {"crypto.equal('a')", "bad argument #2 to 'equal'"},
        {"crypto.equal(nil, 'a')", "bad argument #1 to 'equal'"},
        {"crypto.random(0)", "bad argument #1 to 'random'"},
        {"crypto.random(1025)", "bad argument #1 to 'random'"},
        {"crypto.random(1.5)", "bad argument #1 to 'random'"},
        {"crypto.random()", "bad argument #1 to 'random'"},
        {"crypto.hex()", "bad argument #1 to 'hex'"},
        {"crypto.base64url(true)", "bad argument #1 to 'base64url'"},
        {"crypto.base64url_decode({})", "bad argument #1 to 'base64url_decode'"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        raises(L, v[i].code, v[i].want);
    raises(L, "crypto.scrypt('p', 's', 2^20, 8, 1, 64)", "256 MiB");
    check(L, "return #crypto.scrypt('p', 's', 2^15, 1, 1, 32) == 32",
          "scrypt: N = 2^15 is allowed with r = 1");
}

/* ---- glasgow.password ------------------------------------------------------------ */

static void test_password(lua_State *L)
{
    if (run(L, "pw = require 'glasgow.password'; pw.params = {ln = 10, r = 8, p = 1}", 0, 0)) {
        ok(0, "require glasgow.password: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return;
    }
    check(L,
          "h = pw.hash('correct horse battery staple')\n"
          "return type(h) == 'string' and\n"
          "    h:match('^scrypt%$ln=10,r=8,p=1%$[%w_-]+%$[%w_-]+$') ~= nil and\n"
          "    #h:match('^scrypt%$[^$]+%$([^$]+)%$') == 22 and #h:match('([^$]+)$') == 43,\n"
          "    tostring(h)",
          "hash: scrypt$ln=10,r=8,p=1$<22 chars salt>$<43 chars key>");
    check(L,
          "local salt, key = h:match('^scrypt%$[^$]+%$([^$]+)%$([^$]+)$')\n"
          "salt, key = crypto.base64url_decode(salt), crypto.base64url_decode(key)\n"
          "return #salt == 16 and\n"
          "    key == crypto.scrypt('correct horse battery staple', salt, 1024, 8, 1, 32)",
          "hash: the key is scrypt(password, salt, 2^ln, r, p, 32)");
    check(L, "return pw.verify('correct horse battery staple', h) == true",
          "verify: right password");
    check(L, "return pw.verify('correct horse battery staplE', h) == false",
          "verify: wrong password");
    check(L, "return pw.verify('', h) == false", "verify: empty password");
    check(L, "return pw.verify('correct horse\\0battery staple', h) == false",
          "verify: a NUL inside the password counts");
    check(L,
          "local h2 = pw.hash('correct horse battery staple')\n"
          "return h2 ~= h and pw.verify('correct horse battery staple', h2) == true",
          "hash: two hashes of one password differ (salt) and both verify");
    check(L,
          "local e = pw.hash('')\n"
          "return pw.verify('', e) == true and pw.verify('x', e) == false",
          "hash: empty password round trip");

    /* Tampering with any part of a good hash makes it fail, without raising. */
    check(L,
          "local pfx, salt, key = h:match('^(scrypt%$[^$]+%$)([^$]+)%$([^$]+)$')\n"
          "local function flip(s, i)\n"
          "    local c = s:sub(i, i)\n"
          "    return s:sub(1, i - 1) .. (c == 'A' and 'B' or 'A') .. s:sub(i + 1)\n"
          "end\n"
          "local bad = {\n"
          "    pfx .. flip(salt, 1) .. '$' .. key, pfx .. flip(salt, 21) .. '$' .. key,\n"
          "    pfx .. salt .. '$' .. flip(key, 1), pfx .. salt .. '$' .. flip(key, 42),\n"
          "    h:gsub('ln=10', 'ln=11'), h:gsub('ln=10', 'ln=9'), h:gsub('r=8', 'r=9'),\n"
          "    h:gsub('p=1', 'p=2'), pfx .. key .. '$' .. salt,\n"
          "    pfx .. salt .. '$' .. key:sub(1, 42) .. (key:sub(43) == 'A' and 'E' or 'A'),\n"
          "}\n"
          "for i, s in ipairs(bad) do\n"
          "    if pw.verify('correct horse battery staple', s) ~= false then\n"
          "        return false, 'accepted tampered #' .. i .. ': ' .. s\n"
          "    end\n"
          "end\n"
          "return true",
          "verify: tampered salt, key or parameters are false");

    /* Malformed or out-of-bounds stored values: false, quickly, never raising. */
    check(L,
          "local pfx, salt, key = h:match('^(scrypt%$[^$]+%$)([^$]+)%$([^$]+)$')\n"
          "local tail = '$' .. salt .. '$' .. key\n"
          "local function list(...) return {n = select('#', ...), ...} end\n"
          "local bad = list(\n"
          "    nil, false, 42, {}, '', 'scrypt', 'scrypt$', 'scrypt$$$', h .. '$', '$' .. h,\n"
          "    h .. '\\n', ' ' .. h, h:upper(), h:gsub('^scrypt', 'bcrypt'), h:gsub('^scrypt', "
          "'SCRYPT'),\n"
          "    'scrypt$ln=10,r=8,p=1$' .. salt, 'scrypt$ln=10,r=8,p=1$' .. salt .. '$',\n"
          "    'scrypt$ln=10,r=8,p=1$$' .. key, pfx .. salt .. '=$' .. key, pfx .. salt .. '$' .. "
          "key .. '=',\n"
          "    pfx .. salt .. '$' .. key .. 'A', pfx .. salt .. '$' .. key:sub(1, 20),\n"
          "    pfx .. salt:sub(1, 10) .. '$' .. key, pfx .. salt .. '+$' .. key,\n"
          "    pfx .. salt .. '$' .. key .. string.rep('A', 44),\n"
          "    pfx .. string.rep('A', 300) .. '$' .. key, h .. string.rep('A', 1000000),\n"
          "    'scrypt$ln=010,r=8,p=1' .. tail, 'scrypt$ln=0,r=8,p=1' .. tail,\n"
          "    'scrypt$ln=21,r=8,p=1' .. tail, 'scrypt$ln=99,r=8,p=1' .. tail,\n"
          "    'scrypt$ln=20,r=8,p=1' .. tail, 'scrypt$ln=18,r=8,p=1' .. tail,\n"
          "    'scrypt$ln=17,r=8,p=3' .. tail, 'scrypt$ln=16,r=1,p=1' .. tail,\n"
          "    'scrypt$ln=10,r=0,p=1' .. tail, 'scrypt$ln=10,r=17,p=1' .. tail,\n"
          "    'scrypt$ln=10,r=8,p=0' .. tail, 'scrypt$ln=10,r=8,p=17' .. tail,\n"
          "    'scrypt$ln=14,r=16,p=16' .. tail, 'scrypt$ln=10,r=8' .. tail,\n"
          "    'scrypt$ln=10,r=8,p=1,x=1' .. tail, 'scrypt$r=8,ln=10,p=1' .. tail,\n"
          "    'scrypt$ln=-1,r=8,p=1' .. tail, 'scrypt$ln=1e1,r=8,p=1' .. tail,\n"
          "    'scrypt$ln=0x0a,r=8,p=1' .. tail, 'scrypt$ln= 10,r=8,p=1' .. tail\n"
          ")\n"
          "local t0 = os.clock()\n"
          "for i = 1, bad.n do\n"
          "    local ok, res = pcall(pw.verify, 'correct horse battery staple', bad[i])\n"
          "    if not ok then return false, 'raised on #' .. i .. ': ' .. tostring(res) end\n"
          "    if res ~= false then return false, 'accepted #' .. i end\n"
          "end\n"
          "local dt = os.clock() - t0\n"
          "return dt < 1.5, 'took ' .. dt .. ' s'",
          "verify: malformed or out-of-bounds stored values are false, fast, never raise");
    check(L,
          "return pw.verify('x', 'scrypt$ln=10,r=8,p=8$QUFBQUFBQUFBQUFBQUFBQQ$' .. "
          "crypto.base64url(crypto.scrypt('x', 'AAAAAAAAAAAAAAAA', 1024, 8, 8, 32))) == true",
          "verify: parameters come from the stored string (p=8)");
    check(L,
          "local k = crypto.scrypt('x', 'AAAAAAAAAAAAAAAA', 1024, 8, 1, 64)\n"
          "return pw.verify('x', 'scrypt$ln=10,r=8,p=1$QUFBQUFBQUFBQUFBQUFBQQ$' ..\n"
          "    crypto.base64url(k)) == true",
          "verify: a 64-byte key verifies with dklen 64");

    check(L, "return pw.needs_rehash(h) == false", "needs_rehash: current parameters");
    check(L,
          "pw.params = {ln = 11, r = 8, p = 1}\n"
          "local a = pw.needs_rehash(h)\n"
          "pw.params = {ln = 10, r = 8, p = 2}\n"
          "local b = pw.needs_rehash(h)\n"
          "pw.params = {ln = 10, r = 8, p = 1}\n"
          "return a == true and b == true",
          "needs_rehash: different ln or p");
    check(L,
          "return pw.needs_rehash(nil) == true and pw.needs_rehash('scrypt$junk') == true and\n"
          "    pw.needs_rehash(h:gsub('ln=10', 'ln=21')) == true",
          "needs_rehash: malformed values need a new hash");
    check(L,
          "local k = crypto.scrypt('x', 'AAAAAAAAAAAAAAAA', 1024, 8, 1, 64)\n"
          "return pw.needs_rehash('scrypt$ln=10,r=8,p=1$QUFBQUFBQUFBQUFBQUFBQQ$' ..\n"
          "    crypto.base64url(k)) == true",
          "needs_rehash: a key length other than 32");

    check(L,
          "local long = string.rep('a', 4097)\n"
          "local v, err = pw.hash(long)\n"
          "return v == nil and err.kind == 'too_long' and err.status == 400 and\n"
          "    pw.verify(long, h) == false\n"
          "    and pw.dummy_verify(long) == false, tostring(v) .. ' ' .. tostring(err)",
          "4097-byte password: hash gives nil, a too_long error (400); verify false");
    check(L,
          "local max = string.rep('\\255', 4096)\n"
          "local m = pw.hash(max)\n"
          "return pw.verify(max, m) == true and pw.verify(max:sub(2), m) == false",
          "4096-byte password round trip (1024 four-byte characters)");
    check(L,
          "return pw.dummy_verify('correct horse battery staple') == false and\n"
          "    pw.dummy_verify('') == false",
          "dummy_verify: false");

    raises(L, "pw.hash(nil)", "bad argument #1 to 'hash' (string expected, got nil)");
    raises(L, "pw.hash(12345)", "bad argument #1 to 'hash' (string expected, got number)");
    raises(L, "pw.verify(nil, h)", "bad argument #1 to 'verify'");
    raises(L, "pw.verify({}, h)", "bad argument #1 to 'verify'");
    raises(L, "pw.dummy_verify(nil)", "bad argument #1 to 'dummy_verify'");
    raises(L,
           "pw.params = {ln = 21, r = 8, p = 1}; local ok, e = pcall(pw.hash, 'x');"
           " pw.params = {ln = 10, r = 8, p = 1}; error(e, 0)",
           "params out of bounds");
    raises(L,
           "pw.params = {ln = 10.5, r = 8, p = 1}; local ok, e = pcall(pw.hash, 'x');"
           " pw.params = {ln = 10, r = 8, p = 1}; error(e, 0)",
           "params out of bounds");
}

/* A derivation that fails (the hashing queue refused it, OpenSSL failed):
 * verify and dummy_verify return nil, err, never false, and hash nil, err;
 * err is a glasgow.errors object with the status a login must answer. A
 * glasgow.core whose scrypt fails stands in for the runtime's. */
static void test_password_failures(lua_State *L)
{
    if (run(L,
            "errors = require 'glasgow.errors'\n"
            "local saved_core = package.loaded['glasgow.core']\n"
            "local saved_pw = package.loaded['glasgow.password']\n"
            "package.loaded['glasgow.core'] = { scrypt = function() return nil, scrypt_answer end "
            "}\n"
            "package.loaded['glasgow.password'] = nil\n"
            "failing = require 'glasgow.password'\n"
            "failing.params = { ln = 10, r = 8, p = 1 }\n"
            "package.loaded['glasgow.core'] = saved_core\n"
            "package.loaded['glasgow.password'] = saved_pw\n",
            0, 0)) {
        ok(0, "load glasgow.password with a failing scrypt: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return;
    }
    static const struct {
        const char *answer, *kind, *code;
        int status, retryable;
    } v[] = {
        {"overloaded", "overloaded", "unavailable", 503, 1},
        {"busy", "busy", "too_many_requests", 429, 1},
        {"scrypt failed: memory limit exceeded", "crypto", "internal", 500, 0},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char code[2048];
        snprintf(code, sizeof code,
                 "scrypt_answer = '%s'\n"
                 "local function shape(v, e)\n"
                 "    if v ~= nil then return false, 'returned ' .. tostring(v) end\n"
                 "    if not errors.is(e) then return false, 'err is not an error object' end\n"
                 "    if e.kind ~= '%s' or e.status ~= %d or e.code ~= '%s'\n"
                 "        or e.source ~= 'password' or type(e.message) ~= 'string' then\n"
                 "        return false, tostring(e)\n"
                 "    end\n"
                 "    if %d == 1 then\n"
                 "        if e.retryable ~= true or e.headers['Retry-After'] ~= '1' then\n"
                 "            return false, 'not retryable with Retry-After'\n"
                 "        end\n"
                 "    elseif e.retryable ~= nil then return false, 'retryable' end\n"
                 "    return true\n"
                 "end\n"
                 "local ok1, why1 = shape(failing.verify('correct horse battery staple', h, 'a'))\n"
                 "if not ok1 then return false, 'verify (right password): ' .. why1 end\n"
                 "local ok2, why2 = shape(failing.verify('wrong', h, 'a'))\n"
                 "if not ok2 then return false, 'verify (wrong password): ' .. why2 end\n"
                 "local ok3, why3 = shape(failing.dummy_verify('x', 'a'))\n"
                 "if not ok3 then return false, 'dummy_verify: ' .. why3 end\n"
                 "local ok4, why4 = shape(failing.hash('new password', 'a'))\n"
                 "if not ok4 then return false, 'hash: ' .. why4 end\n"
                 "return true",
                 v[i].answer, v[i].kind, v[i].status, v[i].code, v[i].retryable);
        char desc[256];
        snprintf(desc, sizeof desc,
                 "scrypt failing with \"%s\": verify, dummy_verify and hash return nil and a "
                 "%s error (%d)",
                 v[i].answer, v[i].kind, v[i].status);
        check(L, code, desc);
    }
    check(L,
          "scrypt_answer = nil\n"
          "return failing.verify('wrong', 'not a hash') == false and\n"
          "    failing.verify(string.rep('a', 4097), h) == false",
          "verify without a derivation (malformed hash, over-long password) is still false");
}

/* One hash, verify and dummy_verify at the default parameters, timed. */
static void test_password_defaults(lua_State *L)
{
    if (run(L, "pw.params = {ln = 15, r = 8, p = 1}", 0, 0) != 0) {
        ok(0, "reset params: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return;
    }
    double t0 = now_ms();
    int st = run(L, "hd = pw.hash('hunter2'); return hd", 0, 1);
    double t_hash = now_ms() - t0;
    ok(st == 0 && lua_type(L, -1) == LUA_TSTRING, "default hash: a string");
    lua_pop(L, 1);
    check(L, "return hd:match('^scrypt%$ln=15,r=8,p=1%$') ~= nil, hd",
          "default hash: scrypt$ln=15,r=8,p=1$...");
    printf("# one default-parameter hash (N=2^15, r=8, p=1): %.1f ms\n", t_hash);

    t0 = now_ms();
    check(L, "return pw.verify('hunter2', hd) == true", "default: verify right password");
    double t_verify = now_ms() - t0;
    t0 = now_ms();
    check(L, "return pw.verify('hunter3', hd) == false", "default: verify wrong password");
    double t_wrong = now_ms() - t0;
    t0 = now_ms();
    check(L, "return pw.dummy_verify('hunter2') == false", "default: dummy_verify");
    double t_dummy = now_ms() - t0;
    printf("# verify %.1f ms, wrong password %.1f ms, dummy_verify %.1f ms\n", t_verify, t_wrong,
           t_dummy);
    /* Loose bounds: the point is "same work", not a benchmark. */
    ok(t_dummy > t_wrong / 3 && t_dummy < t_wrong * 3,
       "dummy_verify costs about as much as a failed verify");
    check(L, "return pw.needs_rehash(hd) == false and pw.needs_rehash(h) == true",
          "default: needs_rehash false for a default hash, true for the ln=10 one");
    check(L, "return pw.verify('correct horse battery staple', h) == true",
          "default: an ln=10 hash still verifies");
}

int main(void)
{
    lua_State *L = new_state();
    test_hex();
    test_scrypt_vectors(L);
    test_sha256(L);
    test_hmac_sha256(L);
    test_equal_random_hex(L);
    test_base64url(L);
    test_misuse(L);
    test_password(L);
    test_password_failures(L);
    test_password_defaults(L);
    is_int(lua_gettop(L), 0, "the Lua stack is balanced");
    lua_close(L);
    return done_testing();
}
