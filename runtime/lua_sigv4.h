/*
 * lua_sigv4: require "glasgow.sigv4", the SigV4 signer (sigv4.h) for ops
 * scripts and tests. Pure functions: no I/O, no clock; the caller passes
 * the time.
 *
 * Arguments follow the Lua binding contract: anything sigv4.h refuses (a
 * missing or malformed field, an input over its limit, a header the signer
 * adds) raises "bad argument #1 to 'sign' (...)"; there is no operational
 * failure, so nothing returns nil, err.
 *
 *   sign{method=, path=, query=, headers=, payload_hash=, region=, service=,
 *        access_key=, secret_key=, session_token=, time=}
 *       query   array of {name, value}, decoded (the signer encodes them);
 *               may be nil; a value may be a number
 *       headers array of {name, value} in request order, names may repeat;
 *               must hold host
 *       session_token optional; time "YYYYMMDDTHHMMSSZ"
 *     -> {canonical_request=, string_to_sign=, signature=, signed_headers=,
 *         authorization=, headers={{"X-Amz-Date", time},
 *         {"X-Amz-Security-Token", token} (with a token)}}
 *       headers lists what the caller must add to the request, besides
 *       Authorization.
 *
 *   presign{the same fields but payload_hash, expires=seconds (1..604800)}
 *     -> {canonical_request=, string_to_sign=, signature=, signed_headers=,
 *         query="encoded query string", url=path.."?"..query,
 *         params={{"X-Amz-Algorithm", ...}, ..., {"X-Amz-Signature", sig}}}
 *       params holds the added parameters, decoded.
 *
 *   chunk_signature{secret_key=, region=, service=, time=, previous=, data=}
 *     -> hex signature of one aws-chunked chunk; previous is the seed (the
 *        signature of the request signed with payload_hash
 *        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD") or the previous chunk's;
 *        data "" signs the final chunk.
 */
#ifndef GLASGOW_LUA_SIGV4_H
#define GLASGOW_LUA_SIGV4_H

#include <lua.h>

/*
 * Pushes a new table holding the functions above and returns 1; suitable as
 * package.preload["glasgow.sigv4"]. Keeps no state, so one loader serves
 * every lua_State and thread.
 */
int luaopen_glasgow_sigv4(lua_State *L);

#endif
