/*
 * replay: runs a fuzz target without libFuzzer, as a TAP test.
 *
 * Linked with one tests/fuzz/fuzz_<name>.c into $BUILD/tests/test_fuzz_<name>
 * (so tests/run-all runs it with the unit tests). Feeds every regular file
 * of the target's corpus, tests/fuzz/corpus/<name>/ (or the directory given
 * as the first argument), to LLVMFuzzerTestOneInput in a child process of
 * its own: one "ok" per file, and a crash or a broken invariant is one
 * "not ok" naming the file, while the other files still run.
 */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PREFIX "test_fuzz_"

static int is_seed(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

/* Reads path into a malloc'd buffer; returns 0, or -1 with errno set. */
static int read_file(const char *path, uint8_t **data, size_t *size)
{
    struct stat st;
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    int e = fstat(fileno(f), &st) < 0 ? errno : S_ISREG(st.st_mode) ? 0 : EINVAL;
    if (e) {
        fclose(f);
        errno = e;
        return -1;
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf || fread(buf, 1, n, f) != n) {
        free(buf);
        fclose(f);
        errno = EIO;
        return -1;
    }
    fclose(f);
    *data = buf;
    *size = n;
    return 0;
}

/* Runs one input in a child; returns its wait status, or -1. */
static int run_one(const uint8_t *data, size_t size)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        LLVMFuzzerTestOneInput(data, size);
        exit(0); /* not _exit: LeakSanitizer checks at exit */
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return status;
}

int main(int argc, char **argv)
{
    char dir[4096];
    if (argc > 1) {
        snprintf(dir, sizeof dir, "%s", argv[1]);
    } else {
        const char *base = strrchr(argv[0], '/');
        base = base ? base + 1 : argv[0];
        if (strncmp(base, PREFIX, strlen(PREFIX)) != 0) {
            printf("1..0 # skip: run as %sNAME or give the corpus directory\n", PREFIX);
            return 1;
        }
        snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", FUZZ_SRC_DIR, base + strlen(PREFIX));
    }

    struct dirent **names;
    int n = scandir(dir, &names, is_seed, alphasort);
    if (n < 0) {
        printf("not ok 1 - cannot read the corpus %s: %s\n1..1\n", dir, strerror(errno));
        return 1;
    }
    printf("# corpus %s\n1..%d\n", dir, n);
    int failed = 0;
    for (int i = 0; i < n; i++) {
        char path[8192];
        uint8_t *data = NULL;
        size_t size = 0;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        if (read_file(path, &data, &size) < 0) {
            printf("not ok %d - %s: %s\n", i + 1, names[i]->d_name, strerror(errno));
            failed++;
        } else {
            int status = run_one(data, size);
            if (status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
                printf("ok %d - %s\n", i + 1, names[i]->d_name);
            } else {
                printf("not ok %d - %s", i + 1, names[i]->d_name);
                if (status < 0)
                    printf(" (cannot run: %s)\n", strerror(errno));
                else if (WIFSIGNALED(status))
                    printf(" (signal %d)\n", WTERMSIG(status));
                else
                    printf(" (exit status %d)\n", WEXITSTATUS(status));
                failed++;
            }
            free(data);
        }
        free(names[i]);
    }
    free(names);
    return failed ? 1 : 0;
}
