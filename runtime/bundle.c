#include "bundle.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

static int name_cmp(const void *a, const void *b)
{
    return strcmp(((const bundle_file *)a)->name, ((const bundle_file *)b)->name);
}

static int is_lua_name(const char *n)
{
    size_t len = strlen(n);
    return n[0] != '.' && len > 4 && !strcmp(n + len - 4, ".lua");
}

void bundle_free(bundle *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->nfiles; i++) {
        free(b->files[i].name);
        free(b->files[i].data);
    }
    free(b->files);
    free(b->resolved_dir);
    free(b);
}

/* Reads a whole file of at most BUNDLE_MAX_FILE_BYTES. */
static int read_file(const char *path, bundle_file *f, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, len = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (len == cap) {
            if (cap > BUNDLE_MAX_FILE_BYTES) {
                fclose(fp);
                free(buf);
                snprintf(err, errlen, "%s: larger than %u bytes", path, BUNDLE_MAX_FILE_BYTES);
                return -1;
            }
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        size_t n = fread(buf + len, 1, cap - len, fp);
        if (n == 0)
            break;
        len += n;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad || len > BUNDLE_MAX_FILE_BYTES) {
        free(buf);
        snprintf(err, errlen, "%s: %s", path, bad ? "read error" : "file too large");
        return -1;
    }
    f->data = buf;
    f->len = len;
    return 0;
}

static void bundle_hash(bundle *b)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        die("out of memory");
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (size_t i = 0; i < b->nfiles; i++) {
        char lenbuf[32];
        /* name, NUL, decimal length, NUL, bytes: unambiguous framing */
        EVP_DigestUpdate(ctx, b->files[i].name, strlen(b->files[i].name) + 1);
        int n = snprintf(lenbuf, sizeof lenbuf, "%zu", b->files[i].len);
        EVP_DigestUpdate(ctx, lenbuf, (size_t)n + 1);
        EVP_DigestUpdate(ctx, b->files[i].data, b->files[i].len);
    }
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    util_hex(md, 32, b->hash);
}

bundle *bundle_read(const char *dir, char *err, size_t errlen)
{
    char data_link[PATH_MAX];
    char resolved[PATH_MAX];
    struct stat st;

    /* A ConfigMap volume: read through what "..data" points at right now. */
    snprintf(data_link, sizeof data_link, "%s/..data", dir);
    const char *base = lstat(data_link, &st) == 0 ? data_link : dir;
    if (!realpath(base, resolved)) {
        snprintf(err, errlen, "%s: %s", base, strerror(errno));
        return NULL;
    }
    DIR *d = opendir(resolved);
    if (!d) {
        snprintf(err, errlen, "%s: %s", resolved, strerror(errno));
        return NULL;
    }
    bundle *b = xcalloc(1, sizeof *b);
    b->resolved_dir = xstrdup(resolved);
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char path[PATH_MAX];
        if (!is_lua_name(de->d_name))
            continue;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", resolved, de->d_name) >= sizeof path)
            continue;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (b->nfiles == BUNDLE_MAX_FILES) {
            snprintf(err, errlen, "%s: more than %d route files", resolved, BUNDLE_MAX_FILES);
            goto err_free_bundle;
        }
        if (b->nfiles == cap) {
            cap = cap ? cap * 2 : 16;
            b->files = xrealloc(b->files, cap * sizeof *b->files);
        }
        bundle_file *f = &b->files[b->nfiles];
        if (read_file(path, f, err, errlen) < 0)
            goto err_free_bundle;
        f->name = xstrdup(de->d_name);
        b->nfiles++;
    }
    closedir(d);
    if (b->nfiles)
        qsort(b->files, b->nfiles, sizeof *b->files, name_cmp);
    bundle_hash(b);
    return b;

err_free_bundle:
    closedir(d);
    bundle_free(b);
    return NULL;
}

int bundle_looks_like_subpath(const char *dir)
{
    char path[PATH_MAX];
    struct stat st;
    /* A kubelet-managed volume always has ..data; a subPath mount of one of
     * its files or folders never has, and is never updated in place. */
    snprintf(path, sizeof path, "%s/..data", dir);
    if (lstat(path, &st) == 0)
        return 0;
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f)
        return 0;
    char line[4096];
    char real[PATH_MAX];
    int hit = 0;
    if (!realpath(dir, real)) {
        fclose(f);
        return 0;
    }
    size_t rl = strlen(real);
    while (fgets(line, sizeof line, f)) {
        /* field 5 is the mount point; a mount at or inside dir without ..data */
        char mnt[PATH_MAX];
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1 && !strncmp(mnt, real, rl) &&
            (mnt[rl] == '\0' || mnt[rl] == '/')) {
            hit = 1;
            break;
        }
    }
    fclose(f);
    return hit;
}
