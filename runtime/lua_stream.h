/*
 * lua_stream: streamed bodies (bodystream.h) for Lua handlers.
 *
 *   req.body_stream                  on a route declared body = "stream"
 *     :read([max])  -> chunk (1..max bytes, max defaults to and is capped
 *                      at 65536), waiting until some is there;
 *                      nil at the end of the body;
 *                      nil, err on failure: err a glasgow.errors object
 *                      (source "stream") whose kind is "closed" (the client
 *                      went away; status 400, code "client_closed"),
 *                      "timeout" (idle or below the minimum rate; 408,
 *                      "body_too_slow"), "too_large" (past the route's
 *                      max_body; 413, "body_too_large") or "aborted" (the
 *                      request is ending; 503, "aborted"). Once an error
 *                      was returned, every later read returns one again.
 *     :length()     -> the declared Content-Length, or nil when chunked
 *     :consumed()   -> bytes read so far
 *
 *   req:respond(status [, headers [, content_length]]) -> writer
 *     Starts a streamed response: status and headers (name -> string)
 *     go out, then what is written. With content_length the response has
 *     that Content-Length and exactly that many bytes must be written;
 *     without, it is chunked. Content-Type defaults to
 *     application/octet-stream. Raises on misuse (bad arguments, a second
 *     call). Afterwards the handler's return values are ignored: returning
 *     normally ends the body (as writer:close()), raising an error cuts it
 *     (the client sees a truncated response; if nothing went out yet, the
 *     usual 500 is sent instead). For HEAD the headers go out and writes
 *     are dropped.
 *   writer:write(chunk) -> true once all of chunk is queued, waiting while
 *                          the client's buffer is full; nil, err as for
 *                          read ("too_large": more than content_length)
 *   writer:close()      -> true, or nil, err; ends the body
 *   writer:written()    -> bytes written so far
 *
 * read and write work only in the request's own coroutine (not at load
 * time, in a nested coroutine or for another request: they raise). The
 * objects stay usable until the request ends; after that every call
 * returns nil and an err of kind "aborted".
 */
#ifndef GLASGOW_LUA_STREAM_H
#define GLASGOW_LUA_STREAM_H

#include "request.h"

struct lua_State;

/* Returns a registry reference to L's request metatable (respond(),
 * header(), and the fields built on first read, see lwait_request_index),
 * creating the stream metatables on the state's first call. */
int lua_stream_request_mt(struct lua_State *L);

/* Decorates the request table at the top of L for r: sets the metatable
 * mt_ref (from lua_stream_request_mt), and body_stream when r's route
 * streams its body. */
void lua_stream_decorate(struct lua_State *L, request *r, int mt_ref);

#endif
