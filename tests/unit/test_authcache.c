/* authcache: hits and misses, deadlines, LRU eviction at capacity, eviction
 * by token, by user and by notification payload, the generation that every
 * invalidation advances, the revocation log across threads (including
 * a reader that fell behind the ring), and the Authorization header reader. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "authcache.h"
#include "tap.h"

static void key_of(uint8_t key[AUTHCACHE_KEY_LEN], unsigned n)
{
    memset(key, 0, AUTHCACHE_KEY_LEN);
    /* different first bytes for most keys, and some sharing a bucket */
    key[0] = (uint8_t)(n & 0xff);
    key[1] = (uint8_t)((n >> 8) & 0xff);
    key[31] = (uint8_t)(n * 7);
}

static void test_get_put(void)
{
    authcache *c = authcache_create(4);
    uint8_t k1[AUTHCACHE_KEY_LEN], k2[AUTHCACHE_KEY_LEN];
    key_of(k1, 1);
    key_of(k2, 2);
    ok(authcache_get(c, k1, 0) == NULL, "empty cache misses");
    is_int(authcache_put(c, k1, 1000, "u1", "a@x", "Ann", "admin"), 0, "put");
    const authcache_entry *e = authcache_get(c, k1, 999);
    ok(e != NULL, "hit before the deadline");
    if (e) {
        is_str(e->id, "u1", "id");
        is_str(e->email, "a@x", "email");
        is_str(e->name, "Ann", "name");
        is_str(e->role, "admin", "role");
    }
    ok(authcache_get(c, k2, 0) == NULL, "another key misses");
    uint64_t g = authcache_generation(c);
    ok(authcache_get(c, k1, 1000) == NULL, "miss at the deadline");
    is_int(authcache_size(c), 0, "the expired entry is gone");
    is_int(authcache_generation(c), g, "expiry is not an invalidation");
    is_int(authcache_put(c, k1, 10, "u1", "", "", "user"), 0, "empty strings are fine");
    is_int(authcache_put(c, k1, 20, "u1", "e", "n", "admin"), 0, "replace");
    is_int(authcache_size(c), 1, "replacing keeps one entry");
    e = authcache_get(c, k1, 15);
    ok(e && !strcmp(e->role, "admin"), "the replacement is what get returns");
    char long_id[AUTHCACHE_MAX_ID + 1];
    memset(long_id, 'x', AUTHCACHE_MAX_ID);
    long_id[AUTHCACHE_MAX_ID] = '\0';
    is_int(authcache_put(c, k2, 10, long_id, "", "", ""), -1, "an over-long id is refused");
    static char big[AUTHCACHE_MAX_DATA + 1];
    memset(big, 'n', AUTHCACHE_MAX_DATA);
    is_int(authcache_put(c, k2, 10, "u2", "", big, ""), -1, "over-long data is refused");
    is_int(authcache_size(c), 1, "refusals leave the cache unchanged");
    authcache_destroy(c);
}

static void test_lru(void)
{
    authcache *c = authcache_create(3);
    uint8_t k[5][AUTHCACHE_KEY_LEN];
    for (unsigned i = 0; i < 5; i++)
        key_of(k[i], i * 16); /* same low bits: one bucket chain */
    authcache_put(c, k[0], 100, "a", "", "", "");
    authcache_put(c, k[1], 100, "b", "", "", "");
    authcache_put(c, k[2], 100, "c", "", "", "");
    ok(authcache_get(c, k[0], 0) != NULL, "touch the oldest");
    authcache_put(c, k[3], 100, "d", "", "", "");
    is_int(authcache_size(c), 3, "capacity holds");
    ok(authcache_get(c, k[1], 0) == NULL, "the least recently used went");
    ok(authcache_get(c, k[0], 0) && authcache_get(c, k[2], 0) && authcache_get(c, k[3], 0),
       "the others stay");
    authcache_put(c, k[4], 100, "e", "", "", "");
    ok(authcache_get(c, k[3], 0) == NULL || authcache_get(c, k[0], 0) == NULL ||
           authcache_get(c, k[2], 0) == NULL,
       "still bounded after more puts");
    is_int(authcache_size(c), 3, "size is the capacity");
    authcache_destroy(c);

    /* many entries, many evictions: the table stays consistent */
    c = authcache_create(1000);
    uint8_t key[AUTHCACHE_KEY_LEN];
    for (unsigned i = 0; i < 5000; i++) {
        key_of(key, i);
        authcache_put(c, key, 100, i % 2 ? "odd" : "even", "", "", "");
    }
    is_int(authcache_size(c), 1000, "1000 of 5000 kept");
    unsigned found = 0;
    for (unsigned i = 4000; i < 5000; i++) {
        key_of(key, i);
        found += authcache_get(c, key, 0) != NULL;
    }
    is_int(found, 1000, "the newest 1000 are the ones kept");
    is_int(authcache_evict_user(c, "odd"), 500, "evict_user removes every entry of the user");
    is_int(authcache_size(c), 500, "the rest stay");
    authcache_flush(c);
    is_int(authcache_size(c), 0, "flush empties");
    key_of(key, 1);
    is_int(authcache_put(c, key, 100, "x", "", "", ""), 0, "usable after a flush");
    authcache_destroy(c);
}

static void test_invalidation(void)
{
    authcache *c = authcache_create(10);
    uint8_t k1[AUTHCACHE_KEY_LEN], k2[AUTHCACHE_KEY_LEN];
    key_of(k1, 1);
    key_of(k2, 2);
    authcache_put(c, k1, 100, "u1", "", "", "");
    authcache_put(c, k2, 100, "u2", "", "", "");
    uint64_t g = authcache_generation(c);
    is_int(authcache_evict_token(c, k1), 1, "evict_token removes it");
    ok(authcache_generation(c) > g, "and advances the generation");
    g = authcache_generation(c);
    is_int(authcache_evict_token(c, k1), 0, "evicting a missing token removes nothing");
    ok(authcache_generation(c) > g, "but still advances the generation");
    g = authcache_generation(c);
    is_int(authcache_evict_user(c, "nobody"), 0, "an unknown user removes nothing");
    ok(authcache_generation(c) > g, "and advances the generation");

    char payload[2 + 2 * AUTHCACHE_KEY_LEN + 1] = "t:";
    for (int i = 0; i < AUTHCACHE_KEY_LEN; i++)
        snprintf(payload + 2 + 2 * i, 3, "%02x", k2[i]);
    is_int(authcache_apply_payload(c, payload), 1, "t:<hex> evicts that token");
    ok(authcache_get(c, k2, 0) == NULL, "gone");
    authcache_put(c, k1, 100, "u1", "", "", "");
    authcache_put(c, k2, 100, "u2", "", "", "");
    is_int(authcache_apply_payload(c, "u:u1"), 1, "u:<id> evicts the user");
    ok(authcache_get(c, k2, 0) != NULL, "another user stays");
    authcache_put(c, k1, 100, "u1", "", "", "");
    is_int(authcache_apply_payload(c, "*"), 2, "* flushes");
    authcache_put(c, k1, 100, "u1", "", "", "");
    is_int(authcache_apply_payload(c, "t:zz"), 1, "a malformed payload flushes");
    authcache_put(c, k1, 100, "u1", "", "", "");
    payload[5] = 'g';
    is_int(authcache_apply_payload(c, payload), 1, "a token payload with a non-hex digit flushes");
    authcache_put(c, k1, 100, "u1", "", "", "");
    is_int(authcache_apply_payload(c, "hello"), 1, "an unknown payload flushes");
    authcache_destroy(c);
}

static authcache_log shared_log = AUTHCACHE_LOG_INIT;

static void *pusher(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++)
        authcache_log_push(&shared_log, AUTHCACHE_REVOKE_USER, "far-away");
    authcache_log_push(&shared_log, AUTHCACHE_REVOKE_USER, "u1");
    return NULL;
}

static void test_log(void)
{
    authcache_log l;
    authcache_log_init(&l);
    authcache *c = authcache_create(10);
    uint8_t k1[AUTHCACHE_KEY_LEN], k2[AUTHCACHE_KEY_LEN];
    key_of(k1, 1);
    key_of(k2, 2);
    uint64_t seen = 0;
    ok(!authcache_log_pending(&l, seen), "a new log has nothing pending");
    authcache_put(c, k1, 100, "u1", "", "", "");
    authcache_put(c, k2, 100, "u2", "", "", "");
    authcache_log_push(&l, AUTHCACHE_REVOKE_TOKEN, k1);
    ok(authcache_log_pending(&l, seen), "a push is pending");
    uint64_t g = authcache_generation(c);
    is_int(authcache_log_apply(&l, &seen, c), 1, "applying it evicts the token");
    ok(authcache_generation(c) > g, "and advances the generation");
    ok(!authcache_log_pending(&l, seen), "nothing pending after apply");
    authcache_log_push(&l, AUTHCACHE_REVOKE_USER, "u2");
    is_int(authcache_log_apply(&l, &seen, c), 1, "a user revocation evicts its token");
    authcache_put(c, k1, 100, "u1", "", "", "");
    authcache_log_push(&l, AUTHCACHE_REVOKE_ALL, NULL);
    is_int(authcache_log_apply(&l, &seen, c), 1, "revoke-all flushes");

    /* a reader more than a ring behind flushes instead of applying */
    authcache_put(c, k1, 100, "u1", "", "", "");
    for (int i = 0; i < AUTHCACHE_LOG_SIZE + 1; i++)
        authcache_log_push(&l, AUTHCACHE_REVOKE_USER, "someone-else");
    is_int(authcache_log_apply(&l, &seen, c), 1, "an overrun flushes the cache");
    ok(!authcache_log_pending(&l, seen), "and catches up");

    /* exactly a ring behind: still applied one by one */
    authcache_put(c, k1, 100, "u1", "", "", "");
    for (int i = 0; i < AUTHCACHE_LOG_SIZE; i++)
        authcache_log_push(&l, AUTHCACHE_REVOKE_USER, "someone-else");
    is_int(authcache_log_apply(&l, &seen, c), 0, "a full ring of others keeps the entry");

    char long_id[AUTHCACHE_MAX_ID + 8];
    memset(long_id, 'q', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    authcache_log_push(&l, AUTHCACHE_REVOKE_USER, long_id);
    is_int(authcache_log_apply(&l, &seen, c), 1, "an over-long user id revokes everything");

    /* another thread's pushes are seen once it has returned */
    authcache *c2 = authcache_create(10);
    uint64_t seen2 = 0;
    authcache_put(c2, k1, 100, "u1", "", "", "");
    pthread_t th;
    pthread_create(&th, NULL, pusher, NULL);
    pthread_join(th, NULL);
    ok(authcache_log_pending(&shared_log, seen2), "pushes from another thread are pending");
    is_int(authcache_log_apply(&shared_log, &seen2, c2), 1, "and evict here");
    authcache_destroy(c2);
    authcache_destroy(c);
    pthread_mutex_destroy(&l.mu);
}

/* Unpadded base64url of n bytes into out (NUL-terminated), written the
 * plain way, as the reference the reader is checked against. */
static void b64url(const uint8_t *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        if (i + 1 < n)
            out[o++] = a[v >> 6 & 63];
        if (i + 2 < n)
            out[o++] = a[v & 63];
    }
    out[o] = '\0';
}

static int bearer_str(const char *value, uint8_t raw[AUTHCACHE_TOKEN_LEN])
{
    return authcache_bearer(value, strlen(value), raw);
}

static void test_bearer(void)
{
    uint8_t tok[AUTHCACHE_TOKEN_LEN], raw[AUTHCACHE_TOKEN_LEN];
    char enc[64], hdr[128];
    int roundtrip = 1;
    unsigned seed = 12345;
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof tok; i++) {
            seed = seed * 1103515245u + 12345u;
            tok[i] = (uint8_t)(round == 0 ? 0 : round == 1 ? 0xff : seed >> 16);
        }
        b64url(tok, sizeof tok, enc);
        snprintf(hdr, sizeof hdr, "%s %s", round % 2 ? "bearer" : "Bearer", enc);
        memset(raw, 0, sizeof raw);
        if (strlen(enc) != AUTHCACHE_TOKEN_CHARS || bearer_str(hdr, raw) != 0 ||
            memcmp(raw, tok, sizeof tok) != 0)
            roundtrip = 0;
    }
    ok(roundtrip, "200 tokens (all zero, all 0xff, random) read back, Bearer and bearer");

    b64url(tok, sizeof tok, enc);
    snprintf(hdr, sizeof hdr, "Bearer %s", enc);
    is_int(bearer_str(hdr, raw), 0, "the last token reads");
    static const char *const bad_prefix[] = {"BEARER ", "Bearer  ", " Bearer ", "Basic ",
                                             "Token ",  "Bearer\t", "bEarer ",  ""};
    int refused = 1;
    for (size_t i = 0; i < sizeof bad_prefix / sizeof bad_prefix[0]; i++) {
        snprintf(hdr, sizeof hdr, "%s%s", bad_prefix[i], enc);
        if (bearer_str(hdr, raw) == 0) {
            refused = 0;
            printf("# accepted prefix '%s'\n", bad_prefix[i]);
        }
    }
    ok(refused, "other schemes, spellings and spacing are refused");
    snprintf(hdr, sizeof hdr, "Bearer %s ", enc);
    is_int(bearer_str(hdr, raw), -1, "a trailing space is refused");
    snprintf(hdr, sizeof hdr, "Bearer %.42s", enc);
    is_int(bearer_str(hdr, raw), -1, "42 characters are refused");
    snprintf(hdr, sizeof hdr, "Bearer %sA", enc);
    is_int(bearer_str(hdr, raw), -1, "44 characters are refused");
    is_int(bearer_str("Bearer", raw), -1, "no token is refused");

    /* every position, every byte that is not base64url: refused */
    int all_refused = 1;
    for (size_t pos = 0; pos < AUTHCACHE_TOKEN_CHARS; pos++) {
        for (int ch = 0; ch < 256; ch++) {
            if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                ch == '-' || ch == '_')
                continue;
            snprintf(hdr, sizeof hdr, "Bearer %s", enc);
            hdr[7 + pos] = (char)ch;
            if (authcache_bearer(hdr, 7 + AUTHCACHE_TOKEN_CHARS, raw) == 0)
                all_refused = 0;
        }
    }
    ok(all_refused,
       "a byte outside base64url (NUL, '+', '/', '=', space, 0x80..) anywhere is refused");

    /* the last character's two unused bits must be zero: 'A','E',... only */
    int canonical = 1;
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (int v = 0; v < 64; v++) {
        snprintf(hdr, sizeof hdr, "Bearer %s", enc);
        hdr[7 + AUTHCACHE_TOKEN_CHARS - 1] = alphabet[v];
        if ((bearer_str(hdr, raw) == 0) != ((v & 3) == 0))
            canonical = 0;
    }
    ok(canonical, "a last character with non-zero unused bits is refused, the others read");
    memset(raw, 0x5a, sizeof raw);
    bearer_str("Bearer !", raw);
    ok(raw[0] == 0x5a && raw[31] == 0x5a, "a refused value leaves raw unchanged");
}

int main(void)
{
    test_get_put();
    test_lru();
    test_invalidation();
    test_log();
    test_bearer();
    return done_testing();
}
