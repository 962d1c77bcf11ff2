/*
 * fuzz: what every target in tests/fuzz/fuzz_<name>.c provides and may use.
 *
 * A target is one file that defines LLVMFuzzerTestOneInput and keeps its
 * seeds in tests/fuzz/corpus/<name>/ (and, if useful, a libFuzzer dictionary
 * in tests/fuzz/<name>.dict); a target that drives Lua keeps its invariants
 * in tests/fuzz/fuzz_<name>.lua (see fuzzlua.h). It is built twice: with clang and libFuzzer
 * under ASan+UBSan by `make fuzz`, and with the project's compiler and
 * replay.c by `make test`, which feeds it every corpus file as a TAP test.
 * So a target must compile cleanly with both, and must report a broken
 * invariant by aborting (fuzz_check), never by returning a value.
 */
#ifndef GLASGOW_FUZZ_H
#define GLASGOW_FUZZ_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Runs one input. Returns 0; any failure aborts the process. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Prints "fuzz: FILE:LINE: MESSAGE" to stderr and aborts. */
__attribute__((format(printf, 3, 4), noreturn)) static inline void
fuzz_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "fuzz: %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* Aborts with a message unless cond holds. */
#define fuzz_check(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(__FILE__, __LINE__, __VA_ARGS__);                                            \
    } while (0)

/* Directory of the source tree (for lua/), set by the build. */
#ifndef FUZZ_SRC_DIR
#define FUZZ_SRC_DIR "."
#endif

#endif
