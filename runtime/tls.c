#include "tls.h"

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define TLS_MAX_CHAIN 8
#define TLS_KEEP 4 /* superseded credentials kept alive for handshakes in progress */

typedef struct tls_cred {
    gnutls_pcert_st pcerts[TLS_MAX_CHAIN];
    unsigned npcerts;
    gnutls_privkey_t key;
    unsigned char digest[32];
} tls_cred;

static pthread_mutex_t tls_mu = PTHREAD_MUTEX_INITIALIZER;
static tls_cred *ring[TLS_KEEP];
static unsigned ring_head; /* index of the current credential */

static void cred_free(tls_cred *c)
{
    if (!c)
        return;
    for (unsigned i = 0; i < c->npcerts; i++)
        gnutls_pcert_deinit(&c->pcerts[i]);
    gnutls_privkey_deinit(c->key);
    free(c);
}

static int read_all(const char *path, gnutls_datum_t *out, char *err, size_t errlen)
{
    if (gnutls_load_file(path, out) < 0) {
        snprintf(err, errlen, "%s: cannot read", path);
        return -1;
    }
    return 0;
}

int tls_load(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
    gnutls_datum_t cert = {NULL, 0}, key = {NULL, 0};
    unsigned char digest[32];
    int rc = -1;

    if (read_all(cert_file, &cert, err, errlen) < 0)
        return -1;
    if (read_all(key_file, &key, err, errlen) < 0)
        goto out_free_cert;

    /* a digest of both files tells a real change from a touch */
    gnutls_hash_hd_t h;
    gnutls_hash_init(&h, GNUTLS_DIG_SHA256);
    gnutls_hash(h, cert.data, cert.size);
    gnutls_hash(h, key.data, key.size);
    gnutls_hash_deinit(h, digest);
    pthread_mutex_lock(&tls_mu);
    int same = ring[ring_head] && !memcmp(ring[ring_head]->digest, digest, sizeof digest);
    pthread_mutex_unlock(&tls_mu);
    if (same) {
        rc = 0;
        goto out_free_key;
    }

    tls_cred *c = xcalloc(1, sizeof *c);
    memcpy(c->digest, digest, sizeof digest);
    c->npcerts = TLS_MAX_CHAIN;
    int e =
        gnutls_pcert_list_import_x509_raw(c->pcerts, &c->npcerts, &cert, GNUTLS_X509_FMT_PEM, 0);
    if (e < 0 || c->npcerts == 0) {
        snprintf(err, errlen, "%s: not a PEM certificate chain: %s", cert_file, gnutls_strerror(e));
        c->npcerts = 0;
        free(c);
        goto out_free_key;
    }
    if (gnutls_privkey_init(&c->key) < 0 ||
        (e = gnutls_privkey_import_x509_raw(c->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
        snprintf(err, errlen, "%s: not a PEM private key: %s", key_file, gnutls_strerror(e));
        cred_free(c);
        goto out_free_key;
    }
    /* the key must belong to the first certificate */
    gnutls_pubkey_t pub = c->pcerts[0].pubkey;
    gnutls_datum_t probe = {(unsigned char *)"glasgow", 7}, sig = {NULL, 0};
    gnutls_pk_algorithm_t pk = gnutls_pubkey_get_pk_algorithm(pub, NULL);
    gnutls_sign_algorithm_t salg = gnutls_pk_to_sign(pk, GNUTLS_DIG_SHA256);
    if (gnutls_privkey_sign_data(c->key, GNUTLS_DIG_SHA256, 0, &probe, &sig) < 0 ||
        gnutls_pubkey_verify_data2(pub, salg, 0, &probe, &sig) < 0) {
        gnutls_free(sig.data);
        snprintf(err, errlen, "%s: the key does not match the certificate in %s", key_file,
                 cert_file);
        cred_free(c);
        goto out_free_key;
    }
    gnutls_free(sig.data);

    pthread_mutex_lock(&tls_mu);
    unsigned next = ring[ring_head] ? (ring_head + 1) % TLS_KEEP : ring_head;
    tls_cred *old = ring[next];
    ring[next] = c;
    ring_head = next;
    pthread_mutex_unlock(&tls_mu);
    cred_free(old); /* TLS_KEEP rotations old: no handshake still uses it */
    rc = 1;

out_free_key:
    gnutls_free(key.data);
out_free_cert:
    gnutls_free(cert.data);
    return rc;
}

int tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                 const gnutls_pk_algorithm_t *algos, int nalgos, gnutls_pcert_st **pcert,
                 unsigned int *pcert_length, gnutls_privkey_t *pkey)
{
    (void)session;
    (void)req_ca_dn;
    (void)nreqs;
    (void)algos;
    (void)nalgos;
    pthread_mutex_lock(&tls_mu);
    tls_cred *c = ring[ring_head];
    pthread_mutex_unlock(&tls_mu);
    if (!c)
        return -1;
    *pcert = c->pcerts;
    *pcert_length = c->npcerts;
    *pkey = c->key;
    return 0;
}
