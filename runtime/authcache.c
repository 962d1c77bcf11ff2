/*
 * authcache: a chained hash table of token hashes with an LRU list, and the
 * revocation ring shared by the workers.
 */
#include "authcache.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef struct entry {
    authcache_entry pub; /* points into data */
    struct entry *hnext; /* bucket chain */
    struct entry *prev;  /* LRU list: head is the most recently used */
    struct entry *next;
    uint64_t deadline_ms;
    uint8_t key[AUTHCACHE_KEY_LEN];
    char data[]; /* id, email, name, role, each NUL-terminated */
} entry;

struct authcache {
    entry **buckets;
    size_t mask; /* buckets - 1, a power of two minus one */
    size_t count;
    size_t capacity;
    entry *head, *tail;
    uint64_t generation;
};

authcache *authcache_create(size_t capacity)
{
    authcache *c = xcalloc(1, sizeof *c);
    size_t n = 16;
    if (capacity < 1)
        capacity = 1;
    while (n < capacity && n < ((size_t)1 << 30))
        n <<= 1;
    c->buckets = xcalloc(n, sizeof *c->buckets);
    c->mask = n - 1;
    c->capacity = capacity;
    return c;
}

void authcache_destroy(authcache *c)
{
    if (!c)
        return;
    authcache_flush(c);
    free(c->buckets);
    free(c);
}

/* The key is a SHA-256 already: its first bytes are as good a hash as any. */
static size_t slot_of(const authcache *c, const uint8_t *key)
{
    uint64_t h;
    memcpy(&h, key, sizeof h);
    return (size_t)h & c->mask;
}

static void lru_unlink(authcache *c, entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(authcache *c, entry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

/* Unlinks e from its bucket and the LRU list and frees it. */
static void remove_entry(authcache *c, entry *e)
{
    entry **pp = &c->buckets[slot_of(c, e->key)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(c, e);
    c->count--;
    free(e);
}

static entry *find(const authcache *c, const uint8_t *key)
{
    for (entry *e = c->buckets[slot_of(c, key)]; e; e = e->hnext)
        if (!memcmp(e->key, key, AUTHCACHE_KEY_LEN))
            return e;
    return NULL;
}

const authcache_entry *authcache_get(authcache *c, const uint8_t key[AUTHCACHE_KEY_LEN],
                                     uint64_t now_ms)
{
    entry *e = find(c, key);
    if (!e)
        return NULL;
    if (e->deadline_ms <= now_ms) {
        remove_entry(c, e);
        return NULL;
    }
    if (c->head != e) {
        lru_unlink(c, e);
        lru_push_front(c, e);
    }
    return &e->pub;
}

int authcache_put(authcache *c, const uint8_t key[AUTHCACHE_KEY_LEN], uint64_t deadline_ms,
                  const char *id, const char *email, const char *name, const char *role)
{
    const char *parts[4] = {id, email, name, role};
    size_t lens[4], total = 0;
    for (int i = 0; i < 4; i++) {
        lens[i] = parts[i] ? strlen(parts[i]) : 0;
        total += lens[i] + 1;
    }
    if (lens[0] >= AUTHCACHE_MAX_ID || total > AUTHCACHE_MAX_DATA)
        return -1;
    entry *old = find(c, key);
    if (old)
        remove_entry(c, old);
    while (c->count >= c->capacity && c->tail)
        remove_entry(c, c->tail);
    entry *e = xmalloc(sizeof *e + total);
    memset(e, 0, sizeof *e);
    memcpy(e->key, key, AUTHCACHE_KEY_LEN);
    e->deadline_ms = deadline_ms;
    char *p = e->data;
    const char **dst[4] = {&e->pub.id, &e->pub.email, &e->pub.name, &e->pub.role};
    for (int i = 0; i < 4; i++) {
        if (lens[i])
            memcpy(p, parts[i], lens[i]);
        p[lens[i]] = '\0';
        *dst[i] = p;
        p += lens[i] + 1;
    }
    size_t s = slot_of(c, key);
    e->hnext = c->buckets[s];
    c->buckets[s] = e;
    lru_push_front(c, e);
    c->count++;
    return 0;
}

size_t authcache_evict_token(authcache *c, const uint8_t key[AUTHCACHE_KEY_LEN])
{
    c->generation++;
    entry *e = find(c, key);
    if (!e)
        return 0;
    remove_entry(c, e);
    return 1;
}

size_t authcache_evict_user(authcache *c, const char *id)
{
    size_t n = 0;
    c->generation++;
    for (entry *e = c->head, *next; e; e = next) {
        next = e->next;
        if (!strcmp(e->pub.id, id)) {
            remove_entry(c, e);
            n++;
        }
    }
    return n;
}

void authcache_flush(authcache *c)
{
    c->generation++;
    for (entry *e = c->head, *next; e; e = next) {
        next = e->next;
        free(e);
    }
    memset(c->buckets, 0, (c->mask + 1) * sizeof *c->buckets);
    c->head = c->tail = NULL;
    c->count = 0;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

size_t authcache_apply_payload(authcache *c, const char *payload)
{
    size_t len = strlen(payload);
    if (len == 2 + 2 * AUTHCACHE_KEY_LEN && !strncmp(payload, "t:", 2)) {
        uint8_t key[AUTHCACHE_KEY_LEN];
        int good = 1;
        for (size_t i = 0; i < AUTHCACHE_KEY_LEN && good; i++) {
            int hi = hexval(payload[2 + 2 * i]), lo = hexval(payload[3 + 2 * i]);
            good = hi >= 0 && lo >= 0;
            if (good)
                key[i] = (uint8_t)(hi << 4 | lo);
        }
        if (good)
            return authcache_evict_token(c, key);
    } else if (len > 2 && len < 2 + AUTHCACHE_MAX_ID && !strncmp(payload, "u:", 2)) {
        return authcache_evict_user(c, payload + 2);
    }
    size_t n = c->count;
    authcache_flush(c);
    return n;
}

/* The value of a base64url character, or -1. */
static int b64url_digit(unsigned char ch)
{
    if ((unsigned)(ch - 'A') < 26u)
        return ch - 'A';
    if ((unsigned)(ch - 'a') < 26u)
        return ch - 'a' + 26;
    if ((unsigned)(ch - '0') < 10u)
        return ch - '0' + 52;
    return ch == '-' ? 62 : ch == '_' ? 63 : -1;
}

int authcache_bearer(const char *value, size_t n, uint8_t raw[AUTHCACHE_TOKEN_LEN])
{
    static const char scheme[] = "earer ";
    if (n != 1 + sizeof scheme - 1 + AUTHCACHE_TOKEN_CHARS ||
        (value[0] != 'B' && value[0] != 'b') || memcmp(value + 1, scheme, sizeof scheme - 1) != 0)
        return -1;
    const unsigned char *s = (const unsigned char *)value + sizeof scheme;
    int d[AUTHCACHE_TOKEN_CHARS];
    for (size_t i = 0; i < AUTHCACHE_TOKEN_CHARS; i++)
        if ((d[i] = b64url_digit(s[i])) < 0)
            return -1;
    /* 43 characters carry 258 bits: the last one's low 2 must be zero, so
     * that each token has exactly one accepted spelling */
    if (d[AUTHCACHE_TOKEN_CHARS - 1] & 3)
        return -1;
    size_t o = 0, i = 0;
    for (; i + 4 <= AUTHCACHE_TOKEN_CHARS; i += 4) {
        uint32_t v = (uint32_t)d[i] << 18 | (uint32_t)d[i + 1] << 12 | (uint32_t)d[i + 2] << 6 |
                     (uint32_t)d[i + 3];
        raw[o++] = (uint8_t)(v >> 16);
        raw[o++] = (uint8_t)(v >> 8);
        raw[o++] = (uint8_t)v;
    }
    uint32_t v = (uint32_t)d[i] << 18 | (uint32_t)d[i + 1] << 12 | (uint32_t)d[i + 2] << 6;
    raw[o++] = (uint8_t)(v >> 16);
    raw[o] = (uint8_t)(v >> 8);
    return 0;
}

size_t authcache_size(const authcache *c)
{
    return c->count;
}

uint64_t authcache_generation(const authcache *c)
{
    return c->generation;
}

/* ---- revocation log ------------------------------------------------------------------ */

void authcache_log_init(authcache_log *l)
{
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->mu, NULL);
    atomic_init(&l->seq, 0);
}

void authcache_log_push(authcache_log *l, int kind, const void *key)
{
    pthread_mutex_lock(&l->mu);
    uint64_t s = atomic_load_explicit(&l->seq, memory_order_relaxed);
    authcache_revocation *slot = &l->ring[s % AUTHCACHE_LOG_SIZE];
    memset(slot->key, 0, sizeof slot->key);
    if (kind == AUTHCACHE_REVOKE_TOKEN) {
        memcpy(slot->key, key, AUTHCACHE_KEY_LEN);
    } else if (kind == AUTHCACHE_REVOKE_USER) {
        size_t n = strlen(key);
        if (n < AUTHCACHE_MAX_ID)
            memcpy(slot->key, key, n);
        else
            kind = AUTHCACHE_REVOKE_ALL;
    } else {
        kind = AUTHCACHE_REVOKE_ALL;
    }
    slot->kind = kind;
    /* release: a reader that sees the new count sees the slot written */
    atomic_store_explicit(&l->seq, s + 1, memory_order_release);
    pthread_mutex_unlock(&l->mu);
}

int authcache_log_pending(authcache_log *l, uint64_t seen)
{
    return atomic_load_explicit(&l->seq, memory_order_acquire) != seen;
}

size_t authcache_log_apply(authcache_log *l, uint64_t *seen, authcache *c)
{
    size_t removed = 0;
    pthread_mutex_lock(&l->mu);
    uint64_t s = atomic_load_explicit(&l->seq, memory_order_relaxed);
    if (s - *seen > AUTHCACHE_LOG_SIZE) {
        removed = c->count;
        authcache_flush(c);
    } else {
        for (uint64_t i = *seen; i < s; i++) {
            const authcache_revocation *slot = &l->ring[i % AUTHCACHE_LOG_SIZE];
            if (slot->kind == AUTHCACHE_REVOKE_TOKEN) {
                removed += authcache_evict_token(c, (const uint8_t *)slot->key);
            } else if (slot->kind == AUTHCACHE_REVOKE_USER) {
                removed += authcache_evict_user(c, slot->key);
            } else {
                removed += c->count;
                authcache_flush(c);
            }
        }
    }
    *seen = s;
    pthread_mutex_unlock(&l->mu);
    return removed;
}
