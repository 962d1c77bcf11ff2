/*
 * lua_urlsign: require "glasgow.urlsign", the signatures of time-limited
 * download URLs, with a server key that never enters Lua.
 *
 * The key comes from GLASGOW_URL_SIGNING_KEY or GLASGOW_URL_SIGNING_KEY_FILE
 * (a mounted Secret), read once at start-up: a key shorter than
 * URLSIGN_MIN_KEY bytes stops start-up with a message naming the variable.
 * Without a key the service is not configured: sign returns nil and
 * verify false, and the routes answer 503 (no per-process key is made up:
 * URLs it signed would fail on every other pod and after every restart).
 *
 * A signature is HMAC-SHA256(key, "glasgow-url-v1\n" METHOD "\n" PATH "\n"
 * EXPIRES) as base64url without padding (43 characters): METHOD and PATH
 * may not hold a newline, EXPIRES is the decimal Unix time after which the
 * URL is refused. Changing any of the three, or the key, invalidates it.
 *
 * GLASGOW_PUBLIC_URL, when set, is the API's public base URL
 * (config_parse_public_url's rules; a bad value stops start-up naming the
 * variable and the rule), read here too: signed URLs are returned absolute
 * with it, as a path without it.
 *
 *   configured()                              -> boolean
 *   public_url()                              -> normalised base URL (no
 *       trailing "/"), or nil when GLASGOW_PUBLIC_URL is unset
 *   sign(method, path, expires)               -> signature, or nil, "not configured"
 *   verify(method, path, expires, signature)  -> boolean; compares in
 *       constant time; false when not configured, for a newline in
 *       method or path, or for anything but 43 characters
 * Misuse (wrong types, expires not an integer in 0..2^53, a newline in
 * what sign is given) raises.
 */
#ifndef GLASGOW_LUA_URLSIGN_H
#define GLASGOW_LUA_URLSIGN_H

#include <lua.h>

#include "service.h"

#define URLSIGN_MIN_KEY 32   /* bytes */
#define URLSIGN_MAX_KEY 4096 /* bytes */

/* The service entry: configure reads the key; the Lua module is
 * glasgow.urlsign. */
extern const service lua_urlsign_service;

/* Pushes the module table and returns 1. */
int luaopen_glasgow_urlsign(lua_State *L);

#endif
