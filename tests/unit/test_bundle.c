/* bundle: which files a routes directory contributes, their order and
 * bytes, the hash's framing (checked against an independent SHA-256), the
 * kubelet "..data" layout read through one resolved path, the size and
 * count limits, and the subPath heuristic. */
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "tap.h"
#include "util.h"

static char root[1024];

/* Writes len bytes of data to dir/name (creating or truncating it). */
static void put(const char *dir, const char *name, const char *data, size_t len)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        printf("Bail out! cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

static void put_str(const char *dir, const char *name, const char *text)
{
    put(dir, name, text, strlen(text));
}

/* A fresh directory under root. */
static void subdir(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", root, name);
    if (mkdir(out, 0755) != 0) {
        printf("Bail out! mkdir %s: %s\n", out, strerror(errno));
        exit(1);
    }
}

/* The hash bundle.h documents, computed here on its own: for each file in
 * name order, the name and a NUL, its decimal length and a NUL, its bytes. */
static void expected_hash(const char *const *names, const char *const *datas, size_t n,
                          char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (size_t i = 0; i < n; i++) {
        char len[32];
        int k = snprintf(len, sizeof len, "%zu", strlen(datas[i]));
        EVP_DigestUpdate(ctx, names[i], strlen(names[i]) + 1);
        EVP_DigestUpdate(ctx, len, (size_t)k + 1);
        EVP_DigestUpdate(ctx, datas[i], strlen(datas[i]));
    }
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    util_hex(md, 32, out);
}

static void test_plain_directory(void)
{
    char dir[PATH_MAX], sub[PATH_MAX + 16], err[512], want[65];
    subdir(dir, sizeof dir, "plain");
    put_str(dir, "b.lua", "return 'b'\n");
    put_str(dir, "a.lua", "return 'a'\n");
    put_str(dir, "c.lua", "");
    put_str(dir, "README.md", "not a route file");
    put_str(dir, ".hidden.lua", "return 'hidden'\n");
    put_str(dir, ".lua", "return 'no name'\n");
    put_str(dir, "x.lua.orig", "return 'backup'\n");
    snprintf(sub, sizeof sub, "%s/dir.lua", dir);
    mkdir(sub, 0755); /* a directory with a route file's name */
    char link[PATH_MAX + 16];
    snprintf(link, sizeof link, "%s/d.lua", dir);
    ok(symlink("a.lua", link) == 0, "a symlink to a route file");

    bundle *b = bundle_read(dir, err, sizeof err);
    ok(b != NULL, "a plain directory reads: %s", b ? "" : err);
    if (!b)
        return;
    is_int(b->nfiles, 4, "only the *.lua regular files (and links to them) count");
    if (b->nfiles == 4) {
        is_str(b->files[0].name, "a.lua", "sorted by name: a.lua first");
        is_str(b->files[1].name, "b.lua", "... then b.lua");
        is_str(b->files[2].name, "c.lua", "... then c.lua");
        is_str(b->files[3].name, "d.lua", "... then d.lua (the link)");
        ok(b->files[1].len == 11 && !memcmp(b->files[1].data, "return 'b'\n", 11),
           "a file's bytes are held as read");
        is_int(b->files[2].len, 0, "an empty file is an empty entry");
        ok(b->files[3].len == 11 && !memcmp(b->files[3].data, "return 'a'\n", 11),
           "a link contributes its target's bytes under its own name");
        static const char *const names[] = {"a.lua", "b.lua", "c.lua", "d.lua"};
        static const char *const datas[] = {"return 'a'\n", "return 'b'\n", "", "return 'a'\n"};
        expected_hash(names, datas, 4, want);
        is_str(b->hash, want, "the hash is SHA-256 over name, NUL, length, NUL, bytes per file");
    }
    char real[PATH_MAX];
    ok(realpath(dir, real) && b->resolved_dir && !strcmp(b->resolved_dir, real),
       "resolved_dir is the directory itself");

    /* the hash follows contents and names, not the order files were made in */
    char dir2[PATH_MAX];
    subdir(dir2, sizeof dir2, "plain2");
    put_str(dir2, "d.lua", "return 'a'\n");
    put_str(dir2, "c.lua", "");
    put_str(dir2, "b.lua", "return 'b'\n");
    put_str(dir2, "a.lua", "return 'a'\n");
    bundle *b2 = bundle_read(dir2, err, sizeof err);
    ok(b2 && !strcmp(b2->hash, b->hash), "the same files made in another order: the same hash");
    bundle_free(b2);
    put_str(dir2, "c.lua", " ");
    b2 = bundle_read(dir2, err, sizeof err);
    ok(b2 && strcmp(b2->hash, b->hash) != 0, "one byte more: another hash");
    bundle_free(b2);
    put_str(dir2, "c.lua", "");
    char from[PATH_MAX + 16], to[PATH_MAX + 16];
    snprintf(from, sizeof from, "%s/d.lua", dir2);
    snprintf(to, sizeof to, "%s/e.lua", dir2);
    ok(rename(from, to) == 0, "d.lua renamed e.lua");
    b2 = bundle_read(dir2, err, sizeof err);
    ok(b2 && strcmp(b2->hash, b->hash) != 0, "a file renamed: another hash");
    bundle_free(b2);
    /* the framing keeps a byte from moving between a name and the data */
    char dir3[PATH_MAX], dir4[PATH_MAX];
    subdir(dir3, sizeof dir3, "frame1");
    subdir(dir4, sizeof dir4, "frame2");
    put_str(dir3, "ab.lua", "x");
    put_str(dir3, "b.lua", "");
    put_str(dir4, "ab.lua", "");
    put_str(dir4, "b.lua", "x");
    bundle *f3 = bundle_read(dir3, err, sizeof err), *f4 = bundle_read(dir4, err, sizeof err);
    ok(f3 && f4 && strcmp(f3->hash, f4->hash) != 0,
       "the same bytes split differently between files: different hashes");
    bundle_free(f3);
    bundle_free(f4);
    bundle_free(b);
}

static void test_empty_and_missing(void)
{
    char dir[PATH_MAX], err[512] = "", want[65];
    subdir(dir, sizeof dir, "empty");
    bundle *b = bundle_read(dir, err, sizeof err);
    ok(b && b->nfiles == 0, "an empty directory is a valid, empty bundle");
    expected_hash(NULL, NULL, 0, want);
    ok(b && !strcmp(b->hash, want) &&
           !strcmp(want, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
       "... whose hash is the SHA-256 of nothing");
    bundle_free(b);
    bundle_free(NULL);
    ok(1, "bundle_free(NULL) is harmless");

    char missing[PATH_MAX + 16];
    snprintf(missing, sizeof missing, "%s/does-not-exist", root);
    err[0] = '\0';
    b = bundle_read(missing, err, sizeof err);
    ok(!b && strstr(err, "does-not-exist") && strstr(err, strerror(ENOENT)),
       "a missing directory: NULL, and the error names it and why (%s)", err);
    bundle_free(b);
}

static void test_kubelet_layout(void)
{
    char dir[PATH_MAX], err[512];
    char ts1[PATH_MAX + 32], ts2[PATH_MAX + 32], path[PATH_MAX + 32], tmp[PATH_MAX + 32];
    subdir(dir, sizeof dir, "kube");
    snprintf(ts1, sizeof ts1, "%s/..2026_11_30_01_02_03.1", dir);
    snprintf(ts2, sizeof ts2, "%s/..2026_11_30_01_02_04.2", dir);
    mkdir(ts1, 0755);
    mkdir(ts2, 0755);
    put_str(ts1, "v.lua", "return 1\n");
    put_str(ts2, "v.lua", "return 2\n");
    put_str(ts2, "w.lua", "return 'w'\n");
    snprintf(path, sizeof path, "%s/..data", dir);
    ok(symlink("..2026_11_30_01_02_03.1", path) == 0, "..data points at the first version");
    snprintf(path, sizeof path, "%s/v.lua", dir);
    ok(symlink("..data/v.lua", path) == 0, "v.lua -> ..data/v.lua");

    bundle *b1 = bundle_read(dir, err, sizeof err);
    char real[PATH_MAX];
    ok(b1 && realpath(ts1, real) && !strcmp(b1->resolved_dir, real),
       "read through the directory ..data points at");
    ok(b1 && b1->nfiles == 1 && b1->files[0].len == 9 &&
           !memcmp(b1->files[0].data, "return 1\n", 9),
       "the first version's file");

    /* the kubelet's swap: a new link renamed over ..data */
    snprintf(tmp, sizeof tmp, "%s/..data_tmp", dir);
    snprintf(path, sizeof path, "%s/..data", dir);
    ok(symlink("..2026_11_30_01_02_04.2", tmp) == 0 && rename(tmp, path) == 0,
       "..data swapped to the second version");
    bundle *b2 = bundle_read(dir, err, sizeof err);
    ok(b2 && realpath(ts2, real) && !strcmp(b2->resolved_dir, real),
       "the next read goes through the new target");
    ok(b2 && b2->nfiles == 2, "every file of the version is read, linked at the top or not");
    ok(b1 && b2 && strcmp(b1->hash, b2->hash) != 0, "the swap changes the hash");
    ok(bundle_looks_like_subpath(dir) == 0, "a directory with ..data is not a subPath mount");
    bundle_free(b1);
    bundle_free(b2);
}

static void test_limits(void)
{
    char dir[PATH_MAX], err[512] = "";
    subdir(dir, sizeof dir, "big");
    char *data = malloc((size_t)BUNDLE_MAX_FILE_BYTES + 1);
    memset(data, '-', (size_t)BUNDLE_MAX_FILE_BYTES + 1);
    put(dir, "max.lua", data, BUNDLE_MAX_FILE_BYTES);
    bundle *b = bundle_read(dir, err, sizeof err);
    ok(b && b->nfiles == 1 && b->files[0].len == BUNDLE_MAX_FILE_BYTES,
       "a file of exactly BUNDLE_MAX_FILE_BYTES is read whole: %s", b ? "" : err);
    bundle_free(b);
    put(dir, "over.lua", data, (size_t)BUNDLE_MAX_FILE_BYTES + 1);
    err[0] = '\0';
    b = bundle_read(dir, err, sizeof err);
    ok(!b && strstr(err, "over.lua"), "one byte more: refused, naming the file (%s)", err);
    bundle_free(b);
    free(data);

    char many[PATH_MAX];
    subdir(many, sizeof many, "many");
    for (int i = 0; i < BUNDLE_MAX_FILES; i++) {
        char name[32];
        snprintf(name, sizeof name, "r%04d.lua", i);
        put_str(many, name, "return {}\n");
    }
    b = bundle_read(many, err, sizeof err);
    ok(b && b->nfiles == BUNDLE_MAX_FILES, "%d route files are allowed", BUNDLE_MAX_FILES);
    ok(b && !strcmp(b->files[0].name, "r0000.lua") &&
           !strcmp(b->files[BUNDLE_MAX_FILES - 1].name, "r0511.lua"),
       "... in name order");
    bundle_free(b);
    put_str(many, "one-more.lua", "return {}\n");
    err[0] = '\0';
    b = bundle_read(many, err, sizeof err);
    ok(!b && strstr(err, "more than 512 route files"), "one more is refused (%s)", err);
    bundle_free(b);
}

static void test_subpath(void)
{
    char dir[PATH_MAX];
    subdir(dir, sizeof dir, "notamount");
    is_int(bundle_looks_like_subpath(dir), 0, "a plain directory that is no mount point: no");
    is_int(bundle_looks_like_subpath("/proc"), 1,
           "a mount point without ..data (/proc) looks like a subPath mount");
}

/* Removes the tree under root (files and directories this test made). */
static void cleanup(void)
{
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", root);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/glasgow-test-bundle.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(root)) {
        printf("Bail out! mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    test_plain_directory();
    test_empty_and_missing();
    test_kubelet_layout();
    test_limits();
    test_subpath();
    cleanup();
    return done_testing();
}
