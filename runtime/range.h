/*
 * range: the Range request header (RFC 9110 section 14) for one
 * representation of known size, reduced to what a file download does.
 *
 * Only the "bytes" unit is understood, and only one range is served:
 *   - RANGE_NONE: serve the whole representation (200). The header is
 *     ignored when its unit is not "bytes", when it is not valid syntax
 *     ("bytes=abc", "bytes=5-2": RFC 9110 14.1.1 lets a recipient ignore
 *     an invalid range-spec, and 14.2 an invalid ranges-specifier), when
 *     it holds more than one range (we never send multipart/byteranges;
 *     14.2 lets a server ignore a Range it chooses not to honour), or when
 *     it is longer than RANGE_MAX_HEADER.
 *   - RANGE_PARTIAL: serve bytes *first..*last inclusive (206). A last
 *     position past the end is clamped to size - 1; a suffix "-N" selects
 *     the last N bytes (all of them when N >= size).
 *   - RANGE_UNSATISFIABLE: answer 416, with a Content-Range of "bytes", an
 *     asterisk, a slash and the size.
 *     An int-range whose first position is at or past size (every
 *     int-range of a 0-byte file), or the suffix "-0".
 * A suffix range on a 0-byte file is satisfiable by the RFC but has no
 * 206 form ("bytes 0--1/0"): it is RANGE_NONE (the empty body, 200).
 *
 * Syntax accepted, case-insensitively for the unit:
 *   "bytes" "=" range-spec *( OWS "," OWS range-spec ), empty list
 *   elements allowed (RFC 9110 5.6.1); range-spec = first "-" [last] /
 *   "-" suffix, all decimal digits. Numbers too large for 64 bits
 *   saturate (a huge first position is unsatisfiable, a huge last or
 *   suffix is clamped).
 */
#ifndef GLASGOW_RANGE_H
#define GLASGOW_RANGE_H

#include <stddef.h>
#include <stdint.h>

#define RANGE_MAX_HEADER 1024 /* longer Range headers are ignored */

enum { RANGE_NONE = 0, RANGE_PARTIAL = 1, RANGE_UNSATISFIABLE = 2 };

/*
 * Evaluates the Range header value h (len bytes, need not be
 * NUL-terminated; NULL means no header) against a representation of size
 * bytes. Returns RANGE_NONE, RANGE_PARTIAL (then *first <= *last < size)
 * or RANGE_UNSATISFIABLE. *first and *last are written only for
 * RANGE_PARTIAL. Pure: no allocation, no I/O.
 */
int range_parse(const char *h, size_t len, uint64_t size, uint64_t *first, uint64_t *last);

#endif
