/*
 * lua_s3: the "glasgow.s3core" Lua module, the thin binding between request
 * coroutines and the thread's s3 client. Route code uses it through
 * lua/glasgow/s3.lua ("glasgow.s3"), which turns failures into error
 * objects and adds the raising variant.
 *
 * Every function waits (yields) and returns its result, or on failure
 *   nil, kind, code, store_status, message, retryable
 * with kind one of s3.h's kinds ("store", "network", "timeout", "client",
 * "digest_mismatch", "too_large", "invalid", "protocol"). Misuse (a wrong
 * argument type) raises.
 *
 *   put(key, data, content_type, max_bytes, sha256)
 *                               a string body -> {size, sha256, etag}
 *   put_stream(key, content_type, max_bytes, sha256)
 *                               the calling request's streamed body (a route
 *                               with body = "stream"), through C, never Lua
 *   get(key, first, last)       -> handle, {status, size, length, first,
 *                               last, etag, last_modified, content_type}
 *   pipe(handle, req, status, headers)
 *                               starts the streamed response and pumps the
 *                               object into it with back-pressure -> bytes
 *                               sent (a store failure midway cuts the
 *                               connection: body_sink_fail)
 *   close(handle)               stops a get that will not be piped
 *   read(key, first, last, max) -> the body as a string
 *   head(key)                   -> {size, etag, last_modified, content_type}
 *   delete(key)                 -> true
 *   list(prefix, continuation, max_keys)
 *   list_uploads(prefix, key_marker, upload_id_marker, max_uploads)
 *   abort_upload(key, upload_id) -> true
 *   head_bucket(), create_bucket() -> true
 *
 * Every operation a request starts is stopped when the request ends,
 * however it ends (a client hang-up cancels the store request at once).
 */
#ifndef GLASGOW_LUA_S3_H
#define GLASGOW_LUA_S3_H

#include "s3.h"
#include "service.h"

struct lua_State;

/* Opens the module (package.preload["glasgow.s3core"]). */
int luaopen_glasgow_s3core(struct lua_State *L);

/*
 * The object store as a service (service.h): configured from S3_ENDPOINT,
 * S3_REGION, S3_ACCESS_KEY_ID[_FILE], S3_SECRET_ACCESS_KEY[_FILE],
 * S3_BUCKET, S3_CA_FILE and GLASGOW_S3_* (README, "Object storage"); one
 * s3 client per thread that runs Lua; ready while every client's last
 * probe of the bucket succeeded; described by endpoint and bucket.
 */
extern const service lua_s3_service;

#endif
