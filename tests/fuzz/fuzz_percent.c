/*
 * Fuzz target: util_percent_decode, the strict %-decoder of request targets.
 *
 * The input, up to its first NUL (a request target is a C string), is
 * decoded and checked against an independent reference decoder (same
 * bytes, same verdict), and a target that decodes cleanly must survive
 * re-encoding: encode every byte, decode again, get the same bytes.
 */
#include "fuzz.h"
#include "util.h"

#include <ctype.h>
#include <string.h>

/* The contract, written the obvious way. */
static size_t reference_decode(const char *in, size_t len, char *out, int *bad)
{
    size_t n = 0;
    *bad = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '%' && i + 2 < len && isxdigit((unsigned char)in[i + 1]) &&
            isxdigit((unsigned char)in[i + 2])) {
            char hex[3] = {in[i + 1], in[i + 2], '\0'};
            long v = strtol(hex, NULL, 16);
            if (v != 0) {
                out[n++] = (char)v;
                i += 2;
                continue;
            }
        }
        if (in[i] == '%')
            *bad = 1;
        out[n++] = in[i];
    }
    out[n] = '\0';
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len = strnlen((const char *)data, size);
    char *s = xstrndup((const char *)data, len);
    char *want = xmalloc(len + 1);
    int bad, want_bad;

    size_t n = util_percent_decode(s, &bad);
    size_t want_n = reference_decode((const char *)data, len, want, &want_bad);
    fuzz_check(n <= len, "decoded %zu bytes from %zu", n, len);
    fuzz_check(s[n] == '\0' && strlen(s) == n, "result is not a C string of length %zu", n);
    fuzz_check(bad == want_bad, "bad is %d, the reference says %d", bad, want_bad);
    fuzz_check(n == want_n && memcmp(s, want, n) == 0, "result differs from the reference");
    if (!memchr(data, '%', len))
        fuzz_check(n == len && memcmp(s, data, len) == 0, "changed a string without escapes");

    if (!bad) {
        static const char hex[] = "0123456789ABCDEF";
        char *enc = xmalloc(3 * n + 1);
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)s[i];
            enc[3 * i] = '%';
            enc[3 * i + 1] = hex[c >> 4];
            enc[3 * i + 2] = hex[c & 15];
        }
        enc[3 * n] = '\0';
        int bad2;
        size_t n2 = util_percent_decode(enc, &bad2);
        fuzz_check(!bad2 && n2 == n && memcmp(enc, s, n) == 0, "encode then decode changed it");
        free(enc);
    }
    free(want);
    free(s);
    return 0;
}
