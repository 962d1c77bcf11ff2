/*
 * lua_json: a strict RFC 8259 JSON codec for Lua that round-trips exactly.
 *
 * Unlike lua-cjson 2.1.0 it keeps empty arrays and empty objects apart
 * (decoded tables carry the metatable array_mt or object_mt) and prints
 * every finite double so that it parses back to the same value.
 */
#ifndef GLASGOW_LUA_JSON_H
#define GLASGOW_LUA_JSON_H

#include <lua.h>

/* Default nesting depth of decode() and encode(), and the largest either
 * accepts as max_depth. */
#define LUA_JSON_DECODE_DEPTH 64
#define LUA_JSON_ENCODE_DEPTH 1000
#define LUA_JSON_MAX_DEPTH 1000

/*
 * Opens the module (meant for package.preload["glasgow.jsonc"]) and leaves
 * one new table on the stack, returning 1. The table holds:
 *
 *   decode(text [, max_depth]) -> value | nil, message
 *       Strict RFC 8259 over valid UTF-8; any value at top level. Objects get
 *       object_mt, arrays array_mt, JSON null is `null`. Duplicate keys: the
 *       last wins. Numbers become doubles (-0 stays -0; underflow gives 0 or
 *       a subnormal; overflow to infinity is refused). max_depth (0..1000,
 *       default 64) bounds container nesting. Malformed input returns nil
 *       and a message naming the 1-based byte offset ("unexpected character
 *       'x' at byte 17"); excess nesting returns nil, "too deeply nested".
 *       Raises only on misuse (text not a string, max_depth out of range).
 *   encode(value [, max_depth]) -> string
 *       Raises on anything JSON cannot hold: functions, threads, userdata
 *       other than null, NaN and infinities, strings that are not UTF-8,
 *       cycles, nesting beyond max_depth (0..1000, default 1000), sparse
 *       arrays, tables mixing array and object keys. A table marked with
 *       array_mt is an array (keys exactly 1..n), one marked with object_mt
 *       an object (string keys; integral number keys print as "%d"); an
 *       unmarked table is an array if its keys are exactly 1..n, {} if
 *       empty, else an object with string keys. nil encodes as null.
 *       Object keys are sorted bytewise, so equal values encode to equal
 *       strings. Integral numbers below 2^63 in magnitude print without
 *       exponent, -0 as 0; other numbers as the first of %.15g, %.16g,
 *       %.17g that reads back exactly. "/" is not escaped; U+2028 and
 *       U+2029 are.
 *   array([t]) / object([t]) -> t
 *       Marks t (or a new table) as a JSON array / object and returns it.
 *   is_array(v) -> boolean
 *       Whether v is a table marked as an array.
 *   is_uuid(s) -> boolean
 *       Whether the string s is a UUID in its text form: 36 bytes, hex
 *       digits of either case in groups of 8-4-4-4-12 joined by "-" (the
 *       JSON Schema format "uuid"). Raises if s is not a string or number.
 *   null, array_mt, object_mt
 *       null is the light userdata NULL, the same value as cjson.null.
 */
int luaopen_glasgow_jsonc(lua_State *L);

#endif
