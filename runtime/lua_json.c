/*
 * lua_json: strict JSON <-> Lua values, exact round trips (see lua_json.h).
 *
 * Memory: everything the codec writes lives in Lua userdata held in fixed
 * stack slots (grown by allocating a larger userdata and copying), so a
 * raise in the middle of encode() or a memory error leaks nothing; the
 * garbage collector takes it. Each function keeps its last buffer in an
 * upvalue for the next call and leaves false there while it is in use, so
 * a re-entrant call (a __gc running during an allocation) gets its own.
 */
#include "lua_json.h"

#include <lauxlib.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Upvalues shared by every function of the module. */
#define UP_ARRAY_MT 1
#define UP_OBJECT_MT 2
#define UP_BUF 3  /* cached output / scratch buffer, or false */
#define UP_KEYS 4 /* cached key array (encode), or false */
#define NUPVALUES 4

#define BUF_MIN 4096
/* Buffers larger than this are left to the collector instead of cached. */
#define BUF_CACHE_MAX (1u << 20)
/* Tables with more keys than this are sorted by qsort, fewer by insertion. */
#define SORT_SMALL 32

/*
 * Buffers
 */

/* Pushes a userdata of at least min bytes, taken from upvalue up when the
 * cached one is large enough; returns its address and size in *cap. */
static void *buf_acquire(lua_State *L, int up, size_t min, size_t *cap)
{
    lua_pushvalue(L, lua_upvalueindex(up));
    if (lua_type(L, -1) == LUA_TUSERDATA && lua_objlen(L, -1) >= min) {
        lua_pushboolean(L, 0);
        lua_replace(L, lua_upvalueindex(up));
    } else {
        lua_pop(L, 1);
        lua_newuserdata(L, min);
    }
    *cap = lua_objlen(L, -1);
    return lua_touserdata(L, -1);
}

/* Caches the userdata at idx in upvalue up unless it has grown large. */
static void buf_release(lua_State *L, int up, int idx)
{
    if (lua_objlen(L, idx) <= BUF_CACHE_MAX) {
        lua_pushvalue(L, idx);
        lua_replace(L, lua_upvalueindex(up));
    }
}

/* Replaces the userdata in slot idx by one of at least need bytes holding
 * the first used bytes of old; returns the new address. Needs one free
 * stack slot. Raises "not enough memory" when need cannot be represented. */
static void *buf_grow(lua_State *L, int idx, const void *old, size_t used, size_t *cap, size_t need)
{
    size_t ncap = *cap < BUF_MIN ? BUF_MIN : *cap;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            luaL_error(L, "not enough memory");
        ncap *= 2;
    }
    void *p = lua_newuserdata(L, ncap);
    if (used)
        memcpy(p, old, used);
    lua_replace(L, idx);
    *cap = ncap;
    return p;
}

/* Moves the used bytes at old (a buffer on the C stack, or one too small)
 * into a userdata of at least need bytes in slot idx: the one cached in
 * upvalue up when it is large enough, else a new one (buf_grow). Returns
 * its address. Needs two free stack slots. */
static void *buf_spill(lua_State *L, int up, int idx, const void *old, size_t used, size_t *cap,
                       size_t need)
{
    lua_pushvalue(L, lua_upvalueindex(up));
    if (lua_type(L, -1) == LUA_TUSERDATA && lua_objlen(L, -1) >= need) {
        lua_pushboolean(L, 0);
        lua_replace(L, lua_upvalueindex(up));
        void *p = lua_touserdata(L, -1);
        *cap = lua_objlen(L, -1);
        if (used)
            memcpy(p, old, used);
        lua_replace(L, idx);
        return p;
    }
    lua_pop(L, 1);
    return buf_grow(L, idx, old, used, cap, need);
}

/*
 * UTF-8
 */

/* Length of the well-formed UTF-8 sequence at p (1..4), or 0 when p does
 * not start one: no overlong forms, surrogates or code points > U+10FFFF. */
static size_t utf8_len(const unsigned char *p, size_t avail)
{
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0;
    if (c < 0xE0)
        return avail >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        if (avail < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0))
            return 0;
        return 3;
    }
    if (c < 0xF5) {
        if (avail < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

/* Writes code point cp (not a surrogate, <= U+10FFFF) as UTF-8; returns
 * the number of bytes written. */
static size_t utf8_put(unsigned char *out, unsigned long cp)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/*
 * Numbers
 */

/* Decimal digits of v into out (>= 21 bytes); returns the length. */
static size_t fmt_i64(char *out, long long v)
{
    char tmp[24];
    size_t n = 0, len = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        out[len++] = '-';
    while (n)
        out[len++] = tmp[--n];
    return len;
}

/* Whether d is integral with |d| < 2^63, storing it in *i when so. */
static int as_i64(double d, long long *i)
{
    const double two63 = 9223372036854775808.0;
    if (!(d > -two63 && d < two63))
        return 0;
    *i = (long long)d;
    return (double)*i == d;
}

/*
 * Fast path of fmt_double for a non-integral d in [1e-4, 1e15) that is the
 * nearest double to a decimal of at most 15 significant digits, the usual
 * case for prices and measurements: finds the fewest decimals k with
 * round(d * 10^k) / 10^k == d. Both sides of that test are correctly
 * rounded quotients of exact doubles, so the decimal parses back to d; and
 * with at most 15 digits it is what "%.15g" prints. Returns the length, or
 * 0 when d needs the slow path.
 */
static size_t fmt_short_decimal(char *out, double d)
{
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,
                                   1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19};
    double a = fabs(d);
    if (!(a >= 1e-4 && a < 1e15))
        return 0;
    for (int k = 1; k < (int)(sizeof pow10 / sizeof pow10[0]); k++) {
        double m = a * pow10[k];
        if (m >= 1e15)
            return 0;
        double r = floor(m + 0.5);
        if (r / pow10[k] != a)
            continue;
        char digits[24];
        size_t nd = fmt_i64(digits, (long long)r), len = 0, lead;
        if (d < 0)
            out[len++] = '-';
        if (nd <= (size_t)k) { /* 0.000ddd */
            out[len++] = '0';
            out[len++] = '.';
            for (lead = nd; lead < (size_t)k; lead++)
                out[len++] = '0';
            memcpy(out + len, digits, nd);
            return len + nd;
        }
        memcpy(out + len, digits, nd - (size_t)k);
        len += nd - (size_t)k;
        out[len++] = '.';
        memcpy(out + len, digits + nd - (size_t)k, (size_t)k);
        return len + (size_t)k;
    }
    return 0;
}

/* Formats finite d into out (>= 32 bytes) as described in lua_json.h:
 * integers below 2^63 in full, anything else as the first of "%.15g",
 * "%.16g", "%.17g" that reads back as d. Returns the length. */
static size_t fmt_double(char *out, double d)
{
    long long i;
    if (as_i64(d, &i))
        return fmt_i64(out, i);
    size_t n = fmt_short_decimal(out, d);
    if (n)
        return n;
    int len = 0;
    for (int prec = 15; prec <= 17; prec++) {
        len = snprintf(out, 32, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            break;
    }
    return (size_t)len;
}

/*
 * Decoder
 */

typedef struct dec {
    lua_State *L;
    const unsigned char *start, *p, *end;
    unsigned char *scratch; /* userdata in slot scratch_idx */
    size_t scratch_cap;
    int scratch_idx;
    int depth, max_depth;
    char err[96];
} dec;

/* Bytes that end a plain run inside a string: control characters, '"',
 * '\\' and every non-ASCII byte. */
static const unsigned char str_special[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static unsigned long pos_of(const dec *d, const unsigned char *at)
{
    return (unsigned long)(at - d->start) + 1;
}

/* Records a message naming the byte at `at`; always returns -1. */
static int dec_fail(dec *d, const char *what, const unsigned char *at)
{
    snprintf(d->err, sizeof d->err, "%s at byte %lu", what, pos_of(d, at));
    return -1;
}

/* Records "unexpected ..." for the byte at `at` (or end of input). */
static int dec_unexpected(dec *d, const unsigned char *at)
{
    if (at >= d->end)
        return dec_fail(d, "unexpected end of input", at);
    if (*at > 0x20 && *at < 0x7F)
        snprintf(d->err, sizeof d->err, "unexpected character '%c' at byte %lu", *at,
                 pos_of(d, at));
    else
        snprintf(d->err, sizeof d->err, "unexpected byte 0x%02X at byte %lu", *at, pos_of(d, at));
    return -1;
}

/* Like dec_unexpected, but says what was wanted. */
static int dec_expected(dec *d, const char *what, const unsigned char *at)
{
    if (at >= d->end)
        return dec_fail(d, "unexpected end of input", at);
    snprintf(d->err, sizeof d->err, "expected %s at byte %lu", what, pos_of(d, at));
    return -1;
}

static void skip_ws(dec *d)
{
    while (d->p < d->end && is_ws(*d->p))
        d->p++;
}

static int ensure_scratch(dec *d, size_t need)
{
    if (need > d->scratch_cap)
        d->scratch = buf_grow(d->L, d->scratch_idx, NULL, 0, &d->scratch_cap, need);
    return 0;
}

static long hex4(const unsigned char *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (long)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (long)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (long)(c - 'A' + 10);
        else
            return -1;
    }
    return v;
}

/* Decodes the escapes of the validated string body [s, e) into scratch and
 * pushes the result. */
static int dec_unescape(dec *d, const unsigned char *s, const unsigned char *e)
{
    ensure_scratch(d, (size_t)(e - s));
    unsigned char *out = d->scratch;
    size_t n = 0;
    while (s < e) {
        if (*s != '\\') {
            out[n++] = *s++;
            continue;
        }
        const unsigned char *esc = s;
        unsigned char c = s[1];
        s += 2;
        switch (c) {
        case '"': out[n++] = '"'; break;
        case '\\': out[n++] = '\\'; break;
        case '/': out[n++] = '/'; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'u': {
            long cp = e - s >= 4 ? hex4(s) : -1;
            if (cp < 0)
                return dec_fail(d, "invalid \\u escape", esc);
            s += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return dec_fail(d, "lone surrogate", esc);
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                long lo = e - s >= 6 && s[0] == '\\' && s[1] == 'u' ? hex4(s + 2) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return dec_fail(d, "lone surrogate", esc);
                s += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            n += utf8_put(out + n, (unsigned long)cp);
            break;
        }
        default: return dec_fail(d, "invalid escape", esc);
        }
    }
    lua_pushlstring(d->L, (const char *)out, n);
    return 0;
}

/* At the opening quote: pushes the string. */
static int dec_string(dec *d)
{
    const unsigned char *s = d->p + 1, *q = s, *end = d->end;
    int escaped = 0;
    for (;;) {
        if (q >= end)
            return dec_fail(d, "unterminated string", d->p);
        if (!str_special[*q]) {
            q++;
            continue;
        }
        unsigned char c = *q;
        if (c == '"')
            break;
        if (c == '\\') {
            if (q + 1 >= end)
                return dec_fail(d, "unterminated string", d->p);
            escaped = 1;
            q += 2;
        } else if (c < 0x20) {
            return dec_fail(d, "control character in string", q);
        } else {
            size_t k = utf8_len(q, (size_t)(end - q));
            if (!k)
                return dec_fail(d, "invalid UTF-8", q);
            q += k;
        }
    }
    if (escaped) {
        if (dec_unescape(d, s, q) < 0)
            return -1;
    } else {
        lua_pushlstring(d->L, (const char *)s, (size_t)(q - s));
    }
    d->p = q + 1;
    return 0;
}

static int is_digit(const dec *d, const unsigned char *q)
{
    return q < d->end && *q >= '0' && *q <= '9';
}

/* Adds the digit at q to the significand acc unless it already holds 15
 * significant digits (then *nsig goes past 15 and the fast path is off). */
static void add_digit(unsigned long long *acc, int *nsig, unsigned char c)
{
    if (*acc == 0 && c == '0')
        return; /* leading zeros are not significant */
    if (++*nsig <= 15)
        *acc = *acc * 10 + (unsigned)(c - '0');
}

/*
 * At '-' or a digit: pushes the number. When the significand has at most 15
 * digits and the decimal exponent is within +-22, both are exact doubles and
 * one multiplication or division rounds correctly (Clinger's fast path);
 * otherwise strtod does the work.
 */
static int dec_number(dec *d)
{
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    const unsigned char *start = d->p, *q = start;
    int neg = 0, nsig = 0, scale = 0, exp = 0, exp_neg = 0;
    unsigned long long acc = 0;
    if (*q == '-') {
        neg = 1;
        q++;
    }
    if (!is_digit(d, q))
        return dec_fail(d, "invalid number", q);
    if (*q == '0') {
        q++;
        if (is_digit(d, q))
            return dec_fail(d, "invalid number", q);
    } else {
        while (is_digit(d, q)) {
            add_digit(&acc, &nsig, *q++);
        }
    }
    if (q < d->end && *q == '.') {
        q++;
        if (!is_digit(d, q))
            return dec_fail(d, "invalid number", q);
        while (is_digit(d, q)) {
            add_digit(&acc, &nsig, *q++);
            scale--;
        }
    }
    if (q < d->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < d->end && (*q == '+' || *q == '-'))
            exp_neg = *q++ == '-';
        if (!is_digit(d, q))
            return dec_fail(d, "invalid number", q);
        while (is_digit(d, q)) {
            if (exp < 10000)
                exp = exp * 10 + (*q - '0');
            q++;
        }
    }
    double v;
    int e10 = scale + (exp_neg ? -exp : exp);
    if (nsig <= 15 && e10 >= -22 && e10 <= 22) {
        v = e10 < 0 ? (double)acc / pow10[-e10] : (double)acc * pow10[e10];
        if (neg)
            v = -v;
    } else {
        /* strtod reads a superset of JSON numbers: give it only this one */
        size_t len = (size_t)(q - start);
        char local[64], *text = local;
        if (len >= sizeof local) {
            ensure_scratch(d, len + 1);
            text = (char *)d->scratch;
        }
        memcpy(text, start, len);
        text[len] = '\0';
        v = strtod(text, NULL);
        if (isinf(v))
            return dec_fail(d, "number out of range", start);
    }
    lua_pushnumber(d->L, v);
    d->p = q;
    return 0;
}

/* At the first byte of literal lit: pushes nothing, checks the spelling. */
static int dec_literal(dec *d, const char *lit, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (d->p + i >= d->end || d->p[i] != (unsigned char)lit[i])
            return dec_unexpected(d, d->p + i);
    }
    d->p += n;
    return 0;
}

static int dec_value(dec *d);

/* Enters a container: checks the depth and the Lua stack, pushes a table
 * marked with the metatable in upvalue mt. */
static int dec_open(dec *d, int mt)
{
    if (d->depth >= d->max_depth || !lua_checkstack(d->L, 4)) {
        snprintf(d->err, sizeof d->err, "too deeply nested");
        return -1;
    }
    d->depth++;
    d->p++;
    lua_createtable(d->L, 0, 0);
    lua_pushvalue(d->L, lua_upvalueindex(mt));
    lua_setmetatable(d->L, -2);
    return 0;
}

static int dec_array(dec *d)
{
    lua_State *L = d->L;
    if (dec_open(d, UP_ARRAY_MT) < 0)
        return -1;
    skip_ws(d);
    if (d->p < d->end && *d->p == ']') {
        d->p++;
        d->depth--;
        return 0;
    }
    for (int i = 1;; i++) {
        if (dec_value(d) < 0)
            return -1;
        lua_rawseti(L, -2, i);
        skip_ws(d);
        if (d->p < d->end && *d->p == ',') {
            d->p++;
            continue;
        }
        if (d->p < d->end && *d->p == ']') {
            d->p++;
            d->depth--;
            return 0;
        }
        return dec_expected(d, "',' or ']'", d->p);
    }
}

static int dec_object(dec *d)
{
    lua_State *L = d->L;
    if (dec_open(d, UP_OBJECT_MT) < 0)
        return -1;
    skip_ws(d);
    if (d->p < d->end && *d->p == '}') {
        d->p++;
        d->depth--;
        return 0;
    }
    for (;;) {
        skip_ws(d);
        if (d->p >= d->end || *d->p != '"')
            return dec_expected(d, "string key", d->p);
        const unsigned char *key_at = d->p;
        if (dec_string(d) < 0)
            return -1;
        /* a name given twice would mean what the last one says here and
         * what the first says to a proxy or validator in front: refused */
        lua_pushvalue(L, -1);
        lua_rawget(L, -3);
        int seen = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (seen)
            return dec_fail(d, "duplicate key", key_at);
        skip_ws(d);
        if (d->p >= d->end || *d->p != ':')
            return dec_expected(d, "':'", d->p);
        d->p++;
        if (dec_value(d) < 0)
            return -1;
        lua_rawset(L, -3);
        skip_ws(d);
        if (d->p < d->end && *d->p == ',') {
            d->p++;
            continue;
        }
        if (d->p < d->end && *d->p == '}') {
            d->p++;
            d->depth--;
            return 0;
        }
        return dec_expected(d, "',' or '}'", d->p);
    }
}

/* Skips whitespace, pushes one value; 0, or -1 with d->err set. */
static int dec_value(dec *d)
{
    skip_ws(d);
    if (d->p >= d->end)
        return dec_unexpected(d, d->p);
    switch (*d->p) {
    case '{': return dec_object(d);
    case '[': return dec_array(d);
    case '"': return dec_string(d);
    case 't':
        if (dec_literal(d, "true", 4) < 0)
            return -1;
        lua_pushboolean(d->L, 1);
        return 0;
    case 'f':
        if (dec_literal(d, "false", 5) < 0)
            return -1;
        lua_pushboolean(d->L, 0);
        return 0;
    case 'n':
        if (dec_literal(d, "null", 4) < 0)
            return -1;
        lua_pushlightuserdata(d->L, NULL);
        return 0;
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9': return dec_number(d);
    default: return dec_unexpected(d, d->p);
    }
}

static int json_decode(lua_State *L)
{
    dec d;
    size_t len;
    luaL_checktype(L, 1, LUA_TSTRING);
    const char *text = lua_tolstring(L, 1, &len);
    lua_Integer max_depth = luaL_optinteger(L, 2, LUA_JSON_DECODE_DEPTH);
    luaL_argcheck(L, max_depth >= 0 && max_depth <= LUA_JSON_MAX_DEPTH, 2, "depth must be 0..1000");
    lua_settop(L, 2);
    d.L = L;
    d.start = d.p = (const unsigned char *)text;
    d.end = d.start + len;
    d.depth = 0;
    d.max_depth = (int)max_depth;
    d.err[0] = '\0';
    d.scratch_idx = 3;
    d.scratch = buf_acquire(L, UP_BUF, 256, &d.scratch_cap);
    int rc = dec_value(&d);
    if (rc == 0) {
        skip_ws(&d);
        if (d.p < d.end)
            rc = dec_fail(&d, "trailing garbage", d.p);
    }
    buf_release(L, UP_BUF, 3);
    if (rc < 0) {
        lua_settop(L, 3);
        lua_pushnil(L);
        lua_pushstring(L, d.err);
        return 2;
    }
    return 1;
}

/*
 * Encoder
 */

/* An object member already written to the output: its key, a string
 * (s != NULL) or an integral number, and where its bytes lie. */
typedef struct jkey {
    const char *s;
    size_t len;
    lua_Number num;
    size_t off, seglen;
} jkey;

typedef struct enc {
    lua_State *L;
    char *out; /* json_encode's stack buffer, then a userdata in slot out_idx */
    size_t len, cap;
    int out_idx;
    jkey *keys;             /* the same, in slot keys_idx; used as a stack */
    size_t nkeys, keys_cap; /* keys_cap in bytes */
    int keys_idx;
    int depth, max_depth;
    const void *path[LUA_JSON_MAX_DEPTH]; /* tables being encoded, outermost first */
} enc;

static void reserve(enc *e, size_t n)
{
    if (e->cap - e->len < n) {
        if (n > SIZE_MAX - e->len)
            luaL_error(e->L, "not enough memory");
        e->out = buf_spill(e->L, UP_BUF, e->out_idx, e->out, e->len, &e->cap, e->len + n);
    }
}

static void put(enc *e, const char *s, size_t n)
{
    reserve(e, n);
    memcpy(e->out + e->len, s, n);
    e->len += n;
}

static void put_char(enc *e, char c)
{
    if (e->len == e->cap)
        reserve(e, 1);
    e->out[e->len++] = c;
}

static void put_escape(enc *e, unsigned cp)
{
    static const char hex[] = "0123456789abcdef";
    const char *rep = NULL;
    char *o;
    reserve(e, 6);
    o = e->out + e->len;
    switch (cp) {
    case '"': rep = "\\\""; break;
    case '\\': rep = "\\\\"; break;
    case '\b': rep = "\\b"; break;
    case '\f': rep = "\\f"; break;
    case '\n': rep = "\\n"; break;
    case '\r': rep = "\\r"; break;
    case '\t': rep = "\\t"; break;
    default: break;
    }
    if (rep) {
        memcpy(o, rep, 2);
        e->len += 2;
    } else {
        o[0] = '\\';
        o[1] = 'u';
        o[2] = hex[(cp >> 12) & 0xF];
        o[3] = hex[(cp >> 8) & 0xF];
        o[4] = hex[(cp >> 4) & 0xF];
        o[5] = hex[cp & 0xF];
        e->len += 6;
    }
}

/* Whether the 3 bytes at p are U+2028 or U+2029, which JavaScript source
 * does not allow raw in string literals. */
static int is_js_separator(const unsigned char *p)
{
    return p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9);
}

/* Writes str as a JSON string. Plain bytes are copied while scanned, into
 * room reserved for the whole string; only escapes reserve more. */
static void enc_string(enc *e, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    char *o;
    reserve(e, n + 2);
    o = e->out + e->len;
    *o++ = '"';
    for (;;) {
        while (i < n && !str_special[s[i]])
            *o++ = (char)s[i++];
        if (i == n)
            break;
        if (s[i] >= 0x80) {
            size_t k = utf8_len(s + i, n - i);
            if (!k)
                luaL_error(e->L, "cannot encode string that is not valid UTF-8");
            if (k != 3 || !is_js_separator(s + i)) {
                memcpy(o, s + i, k);
                o += k;
                i += k;
                continue;
            }
        }
        /* an escape: up to 6 bytes for 1 (or 3) of input */
        e->len = (size_t)(o - e->out);
        reserve(e, 6 + (n - i) + 1);
        if (s[i] < 0x80) {
            put_escape(e, s[i]);
            i++;
        } else {
            put_escape(e, s[i + 2] == 0xA8 ? 0x2028 : 0x2029);
            i += 3;
        }
        o = e->out + e->len;
    }
    *o++ = '"';
    e->len = (size_t)(o - e->out);
}

static void enc_number(enc *e, lua_Number v)
{
    char buf[32];
    if (!isfinite(v))
        luaL_error(e->L, "cannot encode %s", isnan(v) ? "NaN" : "infinity");
    size_t n = fmt_double(buf, v);
    put(e, buf, n);
}

/* The bytes of key k: its string, or its number formatted into tmp (>= 24
 * bytes); NUL-terminated either way. */
static const char *key_bytes(const jkey *k, char *tmp, size_t *len)
{
    if (k->s) {
        *len = k->len;
        return k->s;
    }
    *len = fmt_i64(tmp, (long long)k->num);
    tmp[*len] = '\0';
    return tmp;
}

static int key_cmp(const void *pa, const void *pb)
{
    const jkey *a = pa, *b = pb;
    if (a->s && b->s && a->len && b->len && a->s[0] != b->s[0]) /* the usual case */
        return (unsigned char)a->s[0] < (unsigned char)b->s[0] ? -1 : 1;
    char ta[24], tb[24];
    size_t la, lb;
    const char *sa = key_bytes(a, ta, &la), *sb = key_bytes(b, tb, &lb);
    int c = memcmp(sa, sb, la < lb ? la : lb);
    if (c)
        return c;
    return la < lb ? -1 : la > lb;
}

static void sort_keys(jkey *k, size_t n)
{
    if (n > SORT_SMALL) {
        qsort(k, n, sizeof *k, key_cmp);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        jkey x = k[i];
        size_t j = i;
        while (j > 0 && key_cmp(&k[j - 1], &x) > 0) {
            k[j] = k[j - 1];
            j--;
        }
        k[j] = x;
    }
}

static void push_key(enc *e, const char *s, size_t len, lua_Number num, size_t off)
{
    if ((e->nkeys + 1) * sizeof(jkey) > e->keys_cap)
        e->keys = buf_spill(e->L, UP_KEYS, e->keys_idx, e->keys, e->nkeys * sizeof(jkey),
                            &e->keys_cap, (e->nkeys + 1) * sizeof(jkey));
    jkey *k = &e->keys[e->nkeys++];
    k->s = s;
    k->len = len;
    k->num = num;
    k->off = off;
    k->seglen = e->len - off;
}

/* Whether d is an array index: an integer in 1..INT32_MAX. */
static int is_index(lua_Number d)
{
    return d >= 1 && d <= 2147483647.0 && d == (lua_Number)(int)d;
}

static void enc_value(enc *e);

enum { KIND_NONE, KIND_ARRAY, KIND_OBJECT };

/* Emits t[1..n]. */
static void enc_array(enc *e, int t, size_t n)
{
    lua_State *L = e->L;
    put_char(e, '[');
    for (size_t i = 1; i <= n; i++) {
        if (i > 1)
            put_char(e, ',');
        lua_rawgeti(L, t, (int)i);
        enc_value(e);
        lua_pop(L, 1);
    }
    put_char(e, ']');
}

/* Emits the table at t marked as an array: keys must be exactly 1..n. */
static void enc_marked_array(enc *e, int t)
{
    lua_State *L = e->L;
    size_t count = 0;
    lua_Number max = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TNUMBER)
            luaL_error(L, "cannot encode array with %s key", luaL_typename(L, -1));
        lua_Number d = lua_tonumber(L, -1);
        if (!is_index(d))
            luaL_error(L, "cannot encode array with key %s", lua_tostring(L, -1));
        if (d > max)
            max = d;
        count++;
    }
    if ((lua_Number)count != max)
        luaL_error(L, "cannot encode sparse array");
    enc_array(e, t, count);
}

/*
 * Completes the object opened at byte `open`, whose members e->keys[base..]
 * were written in traversal order separated by commas: reorders them by key
 * (in a copy past the end of the output, then moved back) unless they are
 * sorted already, closes it and pops the keys. Copying the bytes costs less
 * than looking every value up again in the table.
 */
static void enc_object_end(enc *e, size_t open, size_t base, int numeric)
{
    size_t n = e->nkeys - base, i;
    jkey *k = e->keys + base;
    for (i = 1; i < n; i++) {
        if (key_cmp(&k[i - 1], &k[i]) >= 0)
            break;
    }
    if (i < n) {
        sort_keys(k, n);
        if (numeric) {
            for (i = 1; i < n; i++) {
                if (key_cmp(&k[i - 1], &k[i]) == 0) {
                    char tmp[24];
                    size_t len;
                    const char *s = key_bytes(&k[i], tmp, &len);
                    luaL_error(e->L, "cannot encode object with duplicate key '%s'", s);
                }
            }
        }
        size_t body = e->len - (open + 1), w = 0;
        reserve(e, body);
        k = e->keys + base;
        char *tmp = e->out + e->len;
        for (i = 0; i < n; i++) {
            if (i)
                tmp[w++] = ',';
            memcpy(tmp + w, e->out + k[i].off, k[i].seglen);
            w += k[i].seglen;
        }
        memcpy(e->out + open + 1, tmp, w);
    }
    put_char(e, '}');
    e->nkeys = base;
}

static void enc_too_deep(enc *e, int t)
{
    const void *self = lua_topointer(e->L, t);
    for (int i = 0; i < e->depth; i++) {
        if (e->path[i] == self)
            luaL_error(e->L, "cannot encode cyclic table");
    }
    luaL_error(e->L, "cannot encode table nested deeper than %d", e->max_depth);
}

/*
 * Encodes the table on top of the stack. Members of an object are written
 * as lua_next() meets them and reordered at the end; an unmarked table
 * whose first key is an index writes nothing until it is known to be an
 * array, then is emitted by index.
 */
static void enc_table(enc *e)
{
    lua_State *L = e->L;
    int t = lua_gettop(L), kind = KIND_NONE, numeric = 0;
    size_t base = e->nkeys, open = e->len, nidx = 0;
    lua_Number max = 0;

    if (e->depth >= e->max_depth || !lua_checkstack(L, 4))
        enc_too_deep(e, t);
    e->path[e->depth++] = lua_topointer(L, t);
    if (lua_getmetatable(L, t)) {
        if (lua_rawequal(L, -1, lua_upvalueindex(UP_ARRAY_MT)))
            kind = KIND_ARRAY;
        else if (lua_rawequal(L, -1, lua_upvalueindex(UP_OBJECT_MT)))
            kind = KIND_OBJECT;
        lua_pop(L, 1);
    }
    if (kind == KIND_ARRAY) {
        enc_marked_array(e, t);
        e->depth--;
        return;
    }

    put_char(e, '{');
    lua_pushnil(L);
    while (lua_next(L, t)) {
        int kt = lua_type(L, -2);
        size_t off;
        if (kt == LUA_TSTRING) {
            size_t len;
            const char *s = lua_tolstring(L, -2, &len);
            if (nidx)
                luaL_error(L, "cannot encode table mixing array and object keys");
            if (e->nkeys > base)
                put_char(e, ',');
            off = e->len;
            enc_string(e, s, len);
            put_char(e, ':');
            enc_value(e);
            push_key(e, s, len, 0, off);
        } else if (kt == LUA_TNUMBER) {
            lua_Number d = lua_tonumber(L, -2);
            long long i = 0;
            if (kind == KIND_OBJECT) {
                char digits[24];
                if (!as_i64(d, &i))
                    luaL_error(L, "cannot encode object key %s", lua_tostring(L, -2));
                if (e->nkeys > base)
                    put_char(e, ',');
                off = e->len;
                put_char(e, '"');
                size_t nd = fmt_i64(digits, i);
                put(e, digits, nd);
                put(e, "\":", 2);
                enc_value(e);
                push_key(e, NULL, 0, d, off);
                numeric = 1;
            } else if (is_index(d)) {
                if (e->nkeys > base)
                    luaL_error(L, "cannot encode table mixing array and object keys");
                if (d > max)
                    max = d;
                nidx++;
            } else {
                luaL_error(L, "cannot encode table with number key %s", lua_tostring(L, -2));
            }
        } else {
            luaL_error(L, "cannot encode table with %s key", luaL_typename(L, -2));
        }
        lua_pop(L, 1);
    }

    if (nidx) {
        e->len = open;
        if ((lua_Number)nidx != max)
            luaL_error(L, "cannot encode sparse array");
        enc_array(e, t, nidx);
    } else {
        enc_object_end(e, open, base, numeric);
    }
    e->depth--;
}

/* Encodes the value on top of the stack, leaving it there. */
static void enc_value(enc *e)
{
    lua_State *L = e->L;
    switch (lua_type(L, -1)) {
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        enc_string(e, s, n);
        break;
    }
    case LUA_TNUMBER: enc_number(e, lua_tonumber(L, -1)); break;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, -1))
            put(e, "true", 4);
        else
            put(e, "false", 5);
        break;
    case LUA_TNIL: put(e, "null", 4); break;
    case LUA_TTABLE: enc_table(e); break;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, -1) == NULL) {
            put(e, "null", 4);
            break;
        }
        /* fall through */
    default: luaL_error(L, "cannot encode %s", luaL_typename(L, -1));
    }
}

static int json_encode(lua_State *L)
{
    enc e;
    /* most documents fit these: no userdata is taken or made for them */
    char out0[1024];
    jkey keys0[16];
    luaL_checkany(L, 1);
    lua_Integer max_depth = luaL_optinteger(L, 2, LUA_JSON_ENCODE_DEPTH);
    luaL_argcheck(L, max_depth >= 0 && max_depth <= LUA_JSON_MAX_DEPTH, 2, "depth must be 0..1000");
    lua_settop(L, 2);
    e.L = L;
    e.len = 0;
    e.nkeys = 0;
    e.depth = 0;
    e.max_depth = (int)max_depth;
    e.out_idx = 3;
    e.out = out0;
    e.cap = sizeof out0;
    lua_pushnil(L); /* slot 3: the output's userdata once it outgrows out0 */
    e.keys_idx = 4;
    e.keys = keys0;
    e.keys_cap = sizeof keys0;
    lua_pushnil(L); /* slot 4: the same for the keys */
    lua_pushvalue(L, 1);
    enc_value(&e);
    lua_pushlstring(L, e.out, e.len);
    if (lua_type(L, 3) == LUA_TUSERDATA)
        buf_release(L, UP_BUF, 3);
    if (lua_type(L, 4) == LUA_TUSERDATA)
        buf_release(L, UP_KEYS, 4);
    return 1;
}

/*
 * Marks
 */

static int mark(lua_State *L, int mt)
{
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    } else {
        luaL_checktype(L, 1, LUA_TTABLE);
        lua_settop(L, 1);
    }
    lua_pushvalue(L, lua_upvalueindex(mt));
    lua_setmetatable(L, 1);
    return 1;
}

static int json_array(lua_State *L)
{
    return mark(L, UP_ARRAY_MT);
}

static int json_object(lua_State *L)
{
    return mark(L, UP_OBJECT_MT);
}

static int json_is_array(lua_State *L)
{
    int yes = lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1) &&
              lua_rawequal(L, -1, lua_upvalueindex(UP_ARRAY_MT));
    lua_pushboolean(L, yes);
    return 1;
}

/* One table lookup per byte: a Lua pattern of 36 classes cost ten times as
 * much, on a check many routes make on a path parameter per request. */
static int json_is_uuid(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    int ok = n == 36;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23)
            ok = c == '-';
        else
            ok = (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
    }
    lua_pushboolean(L, ok);
    return 1;
}

/* The number of code points in a string, or nil when it is not well-formed
 * UTF-8 (the rules utf8_len applies): schema checks every string value this
 * way, path parameters on every request, where a Lua pattern for the ASCII
 * case cost about 80 instructions a byte. */
static int json_utf8_length(lua_State *L)
{
    size_t n;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
    size_t count = 0;
    for (size_t i = 0; i < n; count++) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_len(s + i, n - i);
        if (k == 0) {
            lua_pushnil(L);
            return 1;
        }
        i += k;
    }
    lua_pushnumber(L, (lua_Number)count);
    return 1;
}

int luaopen_glasgow_jsonc(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"decode", json_decode},
        {"encode", json_encode},
        {"array", json_array},
        {"object", json_object},
        {"is_array", json_is_array},
        {"is_uuid", json_is_uuid},
        {"utf8_length", json_utf8_length},
        {NULL, NULL},
    };
    lua_createtable(L, 0, 8);
    lua_newtable(L); /* array_mt */
    lua_newtable(L); /* object_mt */
    lua_pushvalue(L, -2);
    lua_setfield(L, -4, "array_mt");
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, "object_mt");
    lua_pushboolean(L, 0); /* UP_BUF */
    lua_pushboolean(L, 0); /* UP_KEYS */
    luaL_setfuncs(L, fns, NUPVALUES);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    return 1;
}
