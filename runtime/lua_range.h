/*
 * lua_range: require "glasgow.range", the Range header parser (range.h)
 * for the file routes.
 *
 *   parse(header, size) -> "partial", first, last   (206, bytes first..last)
 *                        | "unsatisfiable"           (416)
 *                        | "none"                    (200, the whole file)
 *       header is the Range value (a string; nil or a table, as a repeated
 *       field arrives, means no usable header: "none"); size is the file's
 *       length, an integer in 0..2^53. Misuse raises; there is no other
 *       failure.
 */
#ifndef GLASGOW_LUA_RANGE_H
#define GLASGOW_LUA_RANGE_H

#include <lua.h>

/* Pushes the module table and returns 1; package.preload["glasgow.range"].
 * Keeps no state. */
int luaopen_glasgow_range(lua_State *L);

#endif
