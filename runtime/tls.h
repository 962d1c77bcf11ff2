/*
 * tls: the public listener's certificate, loaded from PEM files and
 * replaced in place when they change (cert-manager rotates them through a
 * Secret volume). Handshakes pick the current certificate through a
 * libmicrohttpd certificate callback, so a rotation drops no connection.
 */
#ifndef GLASGOW_TLS_H
#define GLASGOW_TLS_H

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stddef.h>

/* GnuTLS priority string: TLS 1.2 minimum. */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/*
 * Loads cert_file and key_file and makes them current. Returns 1 when a new
 * certificate was installed, 0 when the files are unchanged, -1 with err on
 * failure (the previous certificate stays current).
 */
int tls_load(const char *cert_file, const char *key_file, char *err, size_t errlen);

/* The certificate callback to pass as MHD_OPTION_HTTPS_CERT_CALLBACK:
 * answers every handshake with the current certificate. */
gnutls_certificate_retrieve_function2 tls_retrieve;

#endif
