/*
 * bundle: an immutable snapshot of a routes directory.
 *
 * A bundle holds the bytes of every "*.lua" file in the directory, read
 * through one resolved path: for a Kubernetes ConfigMap volume that is the
 * target of the "..data" symlink, so a kubelet swap during the read cannot
 * mix two versions. Its hash (SHA-256 over names and contents) tells
 * whether anything changed. Every state of a generation is built from the
 * same snapshot, so all workers run exactly the bytes that were checked.
 */
#ifndef GLASGOW_BUNDLE_H
#define GLASGOW_BUNDLE_H

#include <stddef.h>

#define BUNDLE_MAX_FILES 512
#define BUNDLE_MAX_FILE_BYTES (4u << 20)

typedef struct bundle_file {
    char *name; /* "hello.lua" */
    char *data;
    size_t len;
} bundle_file;

typedef struct bundle {
    char *resolved_dir; /* the directory actually read */
    bundle_file *files; /* sorted by name */
    size_t nfiles;
    char hash[65]; /* lowercase hex SHA-256 */
} bundle;

/*
 * Reads dir into a new bundle. Returns NULL with a message in err when the
 * directory cannot be read, a file is too large or there are too many.
 * An empty directory is a valid, empty bundle.
 */
bundle *bundle_read(const char *dir, char *err, size_t errlen);

/* Frees b (NULL is fine). */
void bundle_free(bundle *b);

/* Returns non-zero when dir looks like a subPath mount (regular files and
 * no "..data" link while the kubelet layout is expected); used for a warning. */
int bundle_looks_like_subpath(const char *dir);

#endif
