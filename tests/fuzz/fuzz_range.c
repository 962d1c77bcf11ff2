/*
 * Fuzz target: range_parse, the Range header of file downloads.
 *
 * The first line of the input is the representation's size in decimal
 * (any digits; empty or malformed means 0, huge values saturate), the rest
 * is the header value (any bytes, NUL included). The verdict and the range
 * must equal an independent reference written from range.h's contract the
 * slow way (split on commas into copies, trim, classify each element with
 * strspn), and the invariants hold: a partial range lies inside the file,
 * and a header over the length limit is ignored.
 */
#include "fuzz.h"
#include "range.h"
#include "util.h"

#include <string.h>
#include <strings.h>

/* Decimal digits of s (all of them, or -1), saturating. */
static int ref_number(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || strspn(s, "0123456789") < n)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (v > UINT64_MAX / 10 || v * 10 > UINT64_MAX - (uint64_t)(s[i] - '0')) {
            v = UINT64_MAX;
            continue;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

static int reference(const char *h, size_t len, uint64_t size, uint64_t *first, uint64_t *last)
{
    if (len > RANGE_MAX_HEADER || len <= 6 || strncasecmp(h, "bytes=", 6) != 0)
        return RANGE_NONE;
    char *copy = xstrndup(h + 6, len - 6);
    if (strlen(copy) != len - 6) { /* a NUL inside is no valid syntax */
        free(copy);
        return RANGE_NONE;
    }
    int count = 0, suffix = 0, has_last = 0, bad = 0;
    uint64_t a = 0, b = 0;
    char *save = NULL;
    /* strtok_r skips empty elements, which the list syntax allows anyway */
    for (char *el = strtok_r(copy, ",", &save); el && !bad; el = strtok_r(NULL, ",", &save)) {
        while (*el == ' ' || *el == '\t')
            el++;
        size_t n = strlen(el);
        while (n > 0 && (el[n - 1] == ' ' || el[n - 1] == '\t'))
            n--;
        if (n == 0)
            continue;
        count++;
        char *dash = memchr(el, '-', n);
        uint64_t x = 0, y = 0;
        if (!dash) {
            bad = 1;
        } else if (dash == el) {
            if (count == 1)
                suffix = 1;
            bad = ref_number(el + 1, n - 1, &x) < 0;
        } else {
            size_t rest = n - (size_t)(dash - el) - 1;
            bad = ref_number(el, (size_t)(dash - el), &x) < 0 ||
                  (rest > 0 && (ref_number(dash + 1, rest, &y) < 0 || y < x));
            if (count == 1)
                has_last = rest > 0;
        }
        if (count == 1) {
            a = x;
            b = y;
        }
    }
    free(copy);
    if (bad || count != 1)
        return RANGE_NONE;
    if (suffix) {
        if (a == 0)
            return RANGE_UNSATISFIABLE;
        if (size == 0)
            return RANGE_NONE;
        *first = a >= size ? 0 : size - a;
        *last = size - 1;
        return RANGE_PARTIAL;
    }
    if (a >= size)
        return RANGE_UNSATISFIABLE;
    *first = a;
    *last = has_last && b < size ? b : size - 1;
    return RANGE_PARTIAL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    size_t head = nl ? (size_t)(nl - in) : 0;
    uint64_t rsize = 0;
    if (ref_number(in, head, &rsize) < 0)
        rsize = 0;
    const char *h = nl ? nl + 1 : in;
    size_t len = size - (size_t)(h - in);

    uint64_t f = 0, l = 0, rf = 0, rl = 0;
    int got = range_parse(h, len, rsize, &f, &l);
    int want = reference(h, len, rsize, &rf, &rl);
    fuzz_check(got == RANGE_NONE || got == RANGE_PARTIAL || got == RANGE_UNSATISFIABLE,
               "verdict %d", got);
    fuzz_check(got == want, "verdict %d, the reference says %d", got, want);
    if (got == RANGE_PARTIAL) {
        fuzz_check(f <= l && l < rsize, "range %llu-%llu outside a file of %llu bytes",
                   (unsigned long long)f, (unsigned long long)l, (unsigned long long)rsize);
        fuzz_check(f == rf && l == rl, "range %llu-%llu, the reference says %llu-%llu",
                   (unsigned long long)f, (unsigned long long)l, (unsigned long long)rf,
                   (unsigned long long)rl);
    }
    if (len > RANGE_MAX_HEADER)
        fuzz_check(got == RANGE_NONE, "an over-long header was not ignored");
    return 0;
}
