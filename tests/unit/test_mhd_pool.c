/*
 * libmicrohttpd's connection memory pool as our patch 0012 leaves it
 * (.ci/patches/libmicrohttpd/0012-pool-zero-what-was-written.patch): a
 * reset zeroes only what the request may have written, and still every
 * byte of it. The pool is driven the way a connection drives it for one
 * keep-alive request after another (a read buffer from the start, header
 * entries from the end, the read buffer given back or shrunk, a write
 * buffer grown over the free space) and, after each reset, every byte of
 * the pool beyond what the reset keeps must be zero: nothing of a request
 * is left for the next one on the same connection.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tap.h"

/* libmicrohttpd's internal pool API (src/microhttpd/memorypool.h): not in
 * its public header, but exported by the static library we link. */
struct MemoryPool;
struct MemoryPool *MHD_pool_create(size_t max);
void MHD_pool_destroy(struct MemoryPool *pool);
void *MHD_pool_allocate(struct MemoryPool *pool, size_t size, bool from_end);
void *MHD_pool_reallocate(struct MemoryPool *pool, void *old, size_t old_size, size_t new_size);
void MHD_pool_deallocate(struct MemoryPool *pool, void *block, size_t block_size);
void *MHD_pool_reset(struct MemoryPool *pool, void *keep, size_t copy_bytes, size_t new_size);
size_t MHD_pool_get_free(struct MemoryPool *pool);
void MHD_pool_mark_written(struct MemoryPool *pool, const void *block_end);

#define POOL 16384 /* the server's pool: malloc'ed (32 KiB or less) */
#define BIG 65536  /* an mmapped pool (patch 0005's side) */

/* The first offset at or after from where base holds a non-zero byte, or
 * -1 when [from, size) is all zero. */
static long first_nonzero(const uint8_t *base, size_t from, size_t size)
{
    for (size_t i = from; i < size; i++)
        if (base[i])
            return (long)i;
    return -1;
}

/* One request as a connection handles it; every write is reported as
 * connection.c reports it. Returns the read buffer (8 KiB) after the
 * reset, and the bytes of the next request kept at its start. */
static uint8_t *one_request(struct MemoryPool *p, uint8_t *rb, char fill, size_t req_len,
                            size_t next_len, int give_back_read_buffer)
{
    /* recv: the request, and maybe the start of the next one */
    memset(rb, fill, req_len + next_len);
    MHD_pool_mark_written(p, rb + req_len + next_len);
    /* header entries come from the end */
    uint8_t *hdr = MHD_pool_allocate(p, 96, true);
    memset(hdr, fill, 96);
    uint8_t *keep = rb + req_len;
    if (give_back_read_buffer && next_len == 0) {
        MHD_pool_deallocate(p, rb, 8192);
    } else {
        /* the read buffer shrinks to what it holds */
        rb = MHD_pool_reallocate(p, rb, 8192, req_len + next_len);
        keep = rb + req_len;
    }
    /* the write buffer takes the free space; the response header is written */
    size_t wsize = MHD_pool_get_free(p);
    uint8_t *wb = MHD_pool_reallocate(p, NULL, 0, wsize);
    memset(wb, fill, 180);
    MHD_pool_mark_written(p, wb + 180);
    return MHD_pool_reset(p, next_len ? keep : NULL, next_len, 8192);
}

static void test_keepalive_requests(void)
{
    struct MemoryPool *p = MHD_pool_create(POOL);
    ok(p != NULL, "a 16 KiB pool");
    uint8_t *rb = MHD_pool_allocate(p, 8192, false);
    /* a long request first, then shorter ones: none may find the others' bytes */
    uint8_t *base = one_request(p, rb, 'A', 7000, 0, 1);
    is_int(first_nonzero(base, 0, POOL), -1, "after a 7000-byte request: the whole pool is zero");
    base = one_request(p, base, 'B', 300, 0, 1);
    is_int(first_nonzero(base, 0, POOL), -1, "after a short one: the whole pool is zero");
    base = one_request(p, base, 'C', 2000, 0, 0);
    is_int(first_nonzero(base, 0, POOL), -1, "read buffer shrunk rather than given back: all zero");
    /* pipelined: the next request's first bytes are kept, nothing else */
    base = one_request(p, base, 'D', 4000, 120, 0);
    int kept = 1;
    for (size_t i = 0; i < 120; i++)
        kept &= base[i] == 'D';
    ok(kept, "a pipelined request's 120 bytes are kept at the start");
    is_int(first_nonzero(base, 120, POOL), -1, "and every byte after them is zero");
    base = one_request(p, base, 'E', 50, 0, 1);
    is_int(first_nonzero(base, 0, POOL), -1, "a 50-byte request after it: all zero");
    MHD_pool_destroy(p);
}

static void test_moved_block(void)
{
    /* a block that is not the last one moves when it grows: both copies go */
    struct MemoryPool *p = MHD_pool_create(POOL);
    uint8_t *a = MHD_pool_allocate(p, 256, false);
    uint8_t *b = MHD_pool_allocate(p, 256, false);
    memset(a, 'M', 256);
    memset(b, 'N', 256);
    uint8_t *a2 = MHD_pool_reallocate(p, a, 256, 1024);
    ok(a2 != NULL && a2 != a, "the first block moved to grow");
    is_int(first_nonzero(a, 0, 256), -1, "its old place is zeroed at once");
    uint8_t *base = MHD_pool_reset(p, NULL, 0, 8192);
    is_int(first_nonzero(base, 0, POOL), -1, "after the reset the whole pool is zero");
    MHD_pool_destroy(p);
}

static void test_first_reset_zeroes_all(void)
{
    /* malloc'ed memory holds whatever it held: the first reset clears it
     * all, even bytes nobody reported */
    struct MemoryPool *p = MHD_pool_create(POOL);
    uint8_t *rb = MHD_pool_allocate(p, 8192, false);
    uint8_t *wb = MHD_pool_reallocate(p, NULL, 0, MHD_pool_get_free(p));
    memset(rb, 'F', 8192);
    memset(wb, 'F', 4096); /* not reported */
    uint8_t *base = MHD_pool_reset(p, NULL, 0, 8192);
    is_int(first_nonzero(base, 0, POOL), -1, "the first reset of a new pool zeroes it whole");
    MHD_pool_destroy(p);
}

static void test_only_reported_bytes_are_zeroed(void)
{
    /* what the patch saves: after the first reset, only what was reported
     * (or allocated from the end) is zeroed; bytes written behind the
     * pool's back stay (libmicrohttpd reports each of its writes) */
    struct MemoryPool *p = MHD_pool_create(POOL);
    uint8_t *rb = MHD_pool_allocate(p, 8192, false);
    uint8_t *base = MHD_pool_reset(p, NULL, 0, 8192);
    (void)rb;
    memset(base, 'R', 100);
    MHD_pool_mark_written(p, base + 100);
    base[5000] = 'U'; /* in the read buffer, past what was reported */
    base = MHD_pool_reset(p, NULL, 0, 8192);
    is_int(first_nonzero(base, 0, 5000), -1, "the reported bytes are zeroed");
    is_int(base[5000], 'U', "an unreported byte far past them is left alone");
    base[5000] = 0;
    MHD_pool_destroy(p);
}

static void test_mmapped_pool(void)
{
    /* patch 0005's large pools (mmapped) keep 0012's account too (0015):
     * the same keep-alive sequence leaves them all zero ... */
    struct MemoryPool *p = MHD_pool_create(BIG);
    uint8_t *rb = MHD_pool_allocate(p, 8192, false);
    uint8_t *base = one_request(p, rb, 'G', 7000, 0, 1);
    is_int(first_nonzero(base, 0, BIG), -1, "a 64 KiB pool is zero after a 7000-byte request");
    base = one_request(p, base, 'H', 4000, 120, 0);
    is_int(first_nonzero(base, 120, BIG), -1, "and after a pipelined one, past the kept bytes");
    base = one_request(p, base, 'I', 300, 0, 1);
    is_int(first_nonzero(base, 0, BIG), -1, "and after a short one");
    /* ... and zero only what was reported: a request of 100 bytes in an
     * 8 KiB read buffer costs 100 bytes, not the buffer */
    memset(base, 'R', 100);
    MHD_pool_mark_written(p, base + 100);
    base[5000] = 'U';
    base = MHD_pool_reset(p, NULL, 0, 8192);
    is_int(first_nonzero(base, 0, 5000), -1, "mmapped: the reported bytes are zeroed");
    is_int(base[5000], 'U', "mmapped: an unreported byte far past them is left alone");
    base[5000] = 0;
    /* a large freed block is zero (its pages given back) */
    uint8_t *big = MHD_pool_reallocate(p, base, 8192, 40960);
    ok(big != NULL, "the read buffer grows to 40 KiB");
    memset(big, 'L', 40960);
    MHD_pool_mark_written(p, big + 40960);
    MHD_pool_deallocate(p, big, 40960);
    is_int(first_nonzero(big, 0, BIG), -1, "a freed 40 KiB buffer reads as zero");
    MHD_pool_destroy(p);
}

int main(void)
{
    test_keepalive_requests();
    test_moved_block();
    test_first_reset_zeroes_all();
    test_only_reported_bytes_are_zeroed();
    test_mmapped_pool();
    return done_testing();
}
