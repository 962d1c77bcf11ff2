/*
 * authcache: a bounded cache of verified bearer tokens, and the process-wide
 * log of revocations that keeps every worker's cache honest.
 *
 * A cache belongs to one thread (a worker) and is not thread-safe. It maps
 * the SHA-256 of a token to what authentication returned for it (the user's
 * id, email, name and role) until a deadline on the loop's monotonic clock
 * (the earlier of the token's expiry and the cache's maximum age). It holds
 * at most `capacity` entries and drops the least recently used one to make
 * room. Every invalidation (evict_token, evict_user, flush, apply_payload)
 * advances the cache's generation, whether or not it removed anything: a
 * caller that captured the generation before it asked the database stores
 * the answer only if no invalidation was applied meanwhile (see
 * lua_authcache.c for the race this closes).
 *
 * The revocation log is the opposite: one per process, shared by every
 * thread. A revocation made in this process (logout, a deleted user, a
 * changed role or password) is pushed there before the response is sent;
 * each worker applies the entries it has not seen to its own cache before
 * it trusts it. The log is a fixed ring: a worker that fell more than
 * AUTHCACHE_LOG_SIZE entries behind flushes its whole cache instead.
 */
#ifndef GLASGOW_AUTHCACHE_H
#define GLASGOW_AUTHCACHE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define AUTHCACHE_KEY_LEN 32    /* SHA-256 of the token */
#define AUTHCACHE_MAX_ID 64     /* user ids (uuids are 36) are shorter than this */
#define AUTHCACHE_MAX_DATA 4096 /* id, email, name and role together, in bytes */
#define AUTHCACHE_LOG_SIZE 256

typedef struct authcache authcache;

/* What one entry holds; the strings are NUL-terminated and stay valid until
 * the cache is next changed (put, evict, flush, or a get that expires). */
typedef struct authcache_entry {
    const char *id;
    const char *email;
    const char *name;
    const char *role;
} authcache_entry;

/* Creates an empty cache for at most capacity (>= 1) entries; aborts on
 * allocation failure. */
authcache *authcache_create(size_t capacity);

/* Frees c and every entry; NULL is a no-op. */
void authcache_destroy(authcache *c);

/* The entry for key, or NULL when there is none or its deadline is not
 * after now_ms (an expired entry is removed, which is not an invalidation:
 * the generation stays). A hit becomes the most recently used entry. */
const authcache_entry *authcache_get(authcache *c, const uint8_t key[AUTHCACHE_KEY_LEN],
                                     uint64_t now_ms);

/*
 * Stores (or replaces) key's entry with a copy of the four strings, valid
 * until deadline_ms. When the cache is full the least recently used entry
 * goes. Returns 0, or -1 (cache unchanged) when the id is AUTHCACHE_MAX_ID
 * bytes or longer or the strings together exceed AUTHCACHE_MAX_DATA.
 */
int authcache_put(authcache *c, const uint8_t key[AUTHCACHE_KEY_LEN], uint64_t deadline_ms,
                  const char *id, const char *email, const char *name, const char *role);

/* Removes key's entry; returns how many were removed (0 or 1). */
size_t authcache_evict_token(authcache *c, const uint8_t key[AUTHCACHE_KEY_LEN]);

/* Removes every entry of user id (exact, case-sensitive match); returns how
 * many. O(entries). */
size_t authcache_evict_user(authcache *c, const char *id);

/* Removes every entry. */
void authcache_flush(authcache *c);

/*
 * Applies one notification payload from the database triggers
 * (migrations/008_auth_notify.sql): "t:<64 hex digits>" evicts that token
 * hash, "u:<user id>" evicts the user, "*" flushes. Anything else flushes
 * too (an unknown payload must not leave a revoked token cached). Returns
 * the number of entries removed.
 */
size_t authcache_apply_payload(authcache *c, const char *payload);

#define AUTHCACHE_TOKEN_LEN 32   /* a bearer token's raw bytes */
#define AUTHCACHE_TOKEN_CHARS 43 /* the same in unpadded base64url */

/*
 * Reads an Authorization header value of the form "Bearer <token>" (or
 * "bearer <token>"; one space; nothing after the token) whose token is
 * AUTHCACHE_TOKEN_CHARS base64url characters, canonically encoded (the
 * unused low bits of the last character are zero), and writes the
 * token's AUTHCACHE_TOKEN_LEN raw bytes to raw. value may hold NUL bytes
 * (n counts them). Returns 0, or -1 for anything else (raw unchanged).
 */
int authcache_bearer(const char *value, size_t n, uint8_t raw[AUTHCACHE_TOKEN_LEN]);

/* Entries held now. */
size_t authcache_size(const authcache *c);

/* Invalidations applied so far (starts at 0, only grows). */
uint64_t authcache_generation(const authcache *c);

/* ---- the process-wide revocation log --------------------------------------------------- */

enum { AUTHCACHE_REVOKE_TOKEN = 1, AUTHCACHE_REVOKE_USER, AUTHCACHE_REVOKE_ALL };

typedef struct authcache_revocation {
    int kind;
    char key[AUTHCACHE_MAX_ID]; /* raw token hash, or the user id */
} authcache_revocation;

typedef struct authcache_log {
    pthread_mutex_t mu;
    atomic_ullong seq; /* entries ever pushed; written under mu, read without it */
    authcache_revocation ring[AUTHCACHE_LOG_SIZE];
} authcache_log;

/* Prepares an empty log (static storage may use AUTHCACHE_LOG_INIT instead). */
void authcache_log_init(authcache_log *l);

#define AUTHCACHE_LOG_INIT                                                                         \
    {                                                                                              \
        .mu = PTHREAD_MUTEX_INITIALIZER                                                            \
    }

/*
 * Records one revocation; any thread. kind AUTHCACHE_REVOKE_TOKEN takes
 * AUTHCACHE_KEY_LEN bytes at key, AUTHCACHE_REVOKE_USER a NUL-terminated id
 * (one of AUTHCACHE_MAX_ID bytes or more is recorded as REVOKE_ALL), and
 * AUTHCACHE_REVOKE_ALL ignores key. When this returns, every later
 * authcache_log_pending() on any thread sees it.
 */
void authcache_log_push(authcache_log *l, int kind, const void *key);

/* Non-zero when l has entries after *seen; one atomic load, any thread. */
int authcache_log_pending(authcache_log *l, uint64_t seen);

/*
 * Applies the entries after *seen to c (flushing it when more than
 * AUTHCACHE_LOG_SIZE are missed) and advances *seen. Each applied entry
 * advances c's generation. Returns the number of cache entries removed.
 */
size_t authcache_log_apply(authcache_log *l, uint64_t *seen, authcache *c);

#endif
