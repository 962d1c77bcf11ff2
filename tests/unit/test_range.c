/* The Range header against representations of known size (range.h). */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>

#include "lua_range.h"
#include "range.h"
#include "tap.h"

typedef struct rcase {
    const char *header; /* NULL: no header */
    uint64_t size;
    int want;
    uint64_t first, last;
} rcase;

static const rcase cases[] = {
    /* the forms of RFC 9110 14.1.2 */
    {"bytes=0-0", 100, RANGE_PARTIAL, 0, 0},
    {"bytes=0-499", 10000, RANGE_PARTIAL, 0, 499},
    {"bytes=500-999", 10000, RANGE_PARTIAL, 500, 999},
    {"bytes=-10", 100, RANGE_PARTIAL, 90, 99},
    {"bytes=10-", 100, RANGE_PARTIAL, 10, 99},
    {"bytes=-500", 100, RANGE_PARTIAL, 0, 99}, /* suffix longer than the file: all */
    {"bytes=0-", 1, RANGE_PARTIAL, 0, 0},
    /* past the end: clamped */
    {"bytes=90-1000", 100, RANGE_PARTIAL, 90, 99},
    {"bytes=99-99", 100, RANGE_PARTIAL, 99, 99},
    {"bytes=0-18446744073709551615", 100, RANGE_PARTIAL, 0, 99},
    {"bytes=0-99999999999999999999999", 100, RANGE_PARTIAL, 0, 99}, /* saturates */
    {"bytes=-99999999999999999999999", 100, RANGE_PARTIAL, 0, 99},
    /* unsatisfiable */
    {"bytes=100-", 100, RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=100-200", 100, RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=99999999999999999999999-", 100, RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=-0", 100, RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=0-0", 0, RANGE_UNSATISFIABLE, 0, 0}, /* a 0-byte file */
    {"bytes=0-", 0, RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=-0", 0, RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=-10", 0, RANGE_NONE, 0, 0}, /* satisfiable, but no 206 form: 200 empty */
    /* ignored: whole file */
    {NULL, 100, RANGE_NONE, 0, 0},
    {"", 100, RANGE_NONE, 0, 0},
    {"bytes=", 100, RANGE_NONE, 0, 0},
    {"bytes=abc", 100, RANGE_NONE, 0, 0},
    {"bytes=5-2", 100, RANGE_NONE, 0, 0},     /* invalid spec: ignored */
    {"bytes=0-0,5-9", 100, RANGE_NONE, 0, 0}, /* several ranges: whole file */
    {"bytes=0-0, -1", 100, RANGE_NONE, 0, 0},
    {"bytes=0-1,0-1", 100, RANGE_NONE, 0, 0},
    {"items=0-5", 100, RANGE_NONE, 0, 0}, /* unknown unit */
    {"bytes 0-5", 100, RANGE_NONE, 0, 0},
    {"bytes = 0-5", 100, RANGE_NONE, 0, 0},
    {"bytes=0-5x", 100, RANGE_NONE, 0, 0},
    {"bytes=+0-5", 100, RANGE_NONE, 0, 0},
    {"bytes=0x10-20", 100, RANGE_NONE, 0, 0},
    {"bytes=-", 100, RANGE_NONE, 0, 0},
    {"bytes=--5", 100, RANGE_NONE, 0, 0},
    {"bytes=1-2-3", 100, RANGE_NONE, 0, 0},
    {"bytes=0 -5", 100, RANGE_NONE, 0, 0},
    {"bytes=,", 100, RANGE_NONE, 0, 0},
    /* list syntax: case-insensitive unit, OWS and empty elements */
    {"Bytes=1-2", 100, RANGE_PARTIAL, 1, 2},
    {"BYTES=1-2", 100, RANGE_PARTIAL, 1, 2},
    {"bytes= 1-2 ", 100, RANGE_PARTIAL, 1, 2},
    {"bytes=,1-2,", 100, RANGE_PARTIAL, 1, 2},
    {"bytes=\t1-2\t, ,", 100, RANGE_PARTIAL, 1, 2},
};

static void test_table(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const rcase *c = &cases[i];
        uint64_t first = 777, last = 777;
        int got = range_parse(c->header, c->header ? strlen(c->header) : 0, c->size, &first, &last);
        is_int(got, c->want, "\"%s\" on %llu bytes", c->header ? c->header : "(none)",
               (unsigned long long)c->size);
        if (c->want == RANGE_PARTIAL) {
            ok(first == c->first && last == c->last, "  selects %llu-%llu (got %llu-%llu)",
               (unsigned long long)c->first, (unsigned long long)c->last, (unsigned long long)first,
               (unsigned long long)last);
        } else {
            ok(first == 777 && last == 777, "  leaves first and last alone");
        }
    }
}

static void test_limits(void)
{
    char big[RANGE_MAX_HEADER + 2];
    uint64_t f, l;
    memset(big, ' ', sizeof big);
    memcpy(big, "bytes=1-2", 9);
    is_int(range_parse(big, RANGE_MAX_HEADER, 100, &f, &l), RANGE_PARTIAL,
           "a header of exactly the limit is read");
    is_int(range_parse(big, RANGE_MAX_HEADER + 1, 100, &f, &l), RANGE_NONE,
           "a longer one is ignored");
    /* not NUL-terminated: only len bytes are read */
    is_int(range_parse("bytes=1-2junk", 9, 100, &f, &l), RANGE_PARTIAL, "reads only len bytes");
    ok(f == 1 && l == 2, "  1-2");
    is_int(range_parse("bytes=1-2", 9, UINT64_MAX, &f, &l), RANGE_PARTIAL, "a huge size");
    is_int(range_parse("bytes=-1", 8, UINT64_MAX, &f, &l), RANGE_PARTIAL, "suffix of a huge size");
    ok(f == UINT64_MAX - 1 && l == UINT64_MAX - 1, "  the last byte");
}

/* glasgow.range.parse: the same verdicts, and its misuse contract. */
static void test_lua(void)
{
    static const struct {
        const char *code, *want;
    } lc[] = {
        {"return table.concat({r.parse('bytes=0-0', 10)}, ' ')", "partial 0 0"},
        {"return table.concat({r.parse('bytes=-3', 10)}, ' ')", "partial 7 9"},
        {"local k, a, b = r.parse('bytes=5-', 2^53) return k .. (b == 2^53 - 1 and ' last' or ' "
         "wrong')",
         "partial last"},
        {"return r.parse('bytes=10-', 10)", "unsatisfiable"},
        {"return r.parse('bytes=abc', 10)", "none"},
        {"return r.parse(nil, 10)", "none"},
        {"return r.parse({'bytes=0-1', 'bytes=2-3'}, 10)", "none"},
        {"return select(2, pcall(r.parse, 'bytes=0-1', -1))", "integer in 0..2^53"},
        {"return select(2, pcall(r.parse, 'bytes=0-1', 1.5))", "integer in 0..2^53"},
        {"return select(2, pcall(r.parse, 'bytes=0-1', 2^53 + 2))", "integer in 0..2^53"},
        {"return select(2, pcall(r.parse, 'bytes=0-1'))", "number expected"},
    };
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    lua_pushcfunction(L, luaopen_glasgow_range);
    lua_call(L, 0, 1);
    lua_setglobal(L, "r");
    for (size_t i = 0; i < sizeof lc / sizeof lc[0]; i++) {
        const char *got = NULL;
        if (luaL_dostring(L, lc[i].code) == 0 || lua_isstring(L, -1))
            got = lua_tostring(L, -1);
        ok(got && strstr(got, lc[i].want), "%s -> %s (got %s)", lc[i].code, lc[i].want,
           got ? got : "nothing");
        lua_settop(L, 0);
    }
    lua_close(L);
}

int main(void)
{
    test_table();
    test_limits();
    test_lua();
    done_testing();
}
