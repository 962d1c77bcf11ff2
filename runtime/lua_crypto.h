/*
 * lua_crypto: require "glasgow.crypto", the primitives behind password
 * hashing and tokens, as thin bindings over OpenSSL 3.
 *
 * Every function follows the Lua binding contract: wrong argument types or
 * out-of-range parameters raise ("bad argument #3 to 'scrypt' (...)"); a
 * failure inside OpenSSL or of the input data (malformed base64url) returns
 * nil and a short lowercase message. Results are Lua strings of raw bytes
 * unless stated otherwise.
 *
 *   scrypt(password, salt, N, r, p, dklen) -> dklen bytes (RFC 7914), with
 *       scrypt.h's checks: N a power of two in 2..2^20 and below 2^(16r);
 *       r, p in 1..16; dklen in 16..64; salt at most 64 bytes, password at
 *       most 4096; the memory OpenSSL needs, 128*r*(N+p+2) bytes, at most
 *       256 MiB. glasgow.core.scrypt takes the same arguments, checked by
 *       lua_crypto_scrypt_args, and runs the same derivation on a job thread.
 *   sha256(data)             -> 32 bytes
 *   hmac_sha256(key, data)   -> 32 bytes
 *   equal(a, b)              -> boolean; constant time for equal lengths,
 *                               false at once for different lengths
 *   random(n)                -> n bytes from RAND_bytes, n in 1..1024
 *   hex(s)                   -> lowercase hex
 *   base64url(s)             -> RFC 4648 section 5, no padding
 *   base64url_decode(s)      -> bytes, or nil, err unless s is canonical:
 *                               url alphabet only, no padding, no
 *                               whitespace, #s % 4 ~= 1, unused bits zero
 */
#ifndef GLASGOW_LUA_CRYPTO_H
#define GLASGOW_LUA_CRYPTO_H

#include "scrypt.h"

#include <lua.h>
#include <stddef.h>

/*
 * Pushes a new table holding the functions above and returns 1; suitable as
 * package.preload["glasgow.crypto"]. Keeps no state, so one loader serves
 * every lua_State and thread.
 */
int luaopen_glasgow_crypto(lua_State *L);

/* scrypt's inputs as lua_crypto_scrypt_args read them. */
typedef struct lua_crypto_scrypt_in {
    const char *pass; /* points into the Lua stack */
    size_t passlen;
    const unsigned char *salt; /* likewise */
    size_t saltlen;
    scrypt_params params;
} lua_crypto_scrypt_in;

/*
 * Reads (password, salt, N, r, p, dklen) from stack slots 1..6 of L into
 * *in and checks them with scrypt_check; raises "bad argument #k to
 * '<calling function>'" when one is missing, not a string or number, or out
 * of bounds. The strings stay valid while they are on L's stack.
 */
void lua_crypto_scrypt_args(lua_State *L, lua_crypto_scrypt_in *in);

#endif
