/*
 * libmicrohttpd's response headers as our patch 0013 leaves them
 * (.ci/patches/libmicrohttpd/0013-response-header-one-allocation.patch):
 * an entry and its name and value are one allocation. Every way an entry
 * is replaced, rewritten or removed must still give the same headers and
 * free what it should (the SAN build runs this under AddressSanitizer and
 * LeakSanitizer): plain headers, a second Date (replaces the first), the
 * Connection header (rewritten in place with a buffer of its own), removal
 * by MHD_del_response_header, and destruction.
 */
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>

#include "mhd_headers.h"
#include "tap.h"

int main(void)
{
    static const char body[] = "{\"message\":\"hello\"}";
    seen s;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_MUST_COPY);
    ok(r != NULL, "a response");
    is_int(MHD_add_response_header(r, "Content-Type", "application/json"), MHD_YES,
           "Content-Type added");
    is_int(MHD_add_response_header(r, "Date", "Mon, 30 Nov 2026 09:00:00 GMT"), MHD_YES,
           "Date added");
    is_int(MHD_add_response_header(r, "X-Request-ID", "0123456789abcdef"), MHD_YES,
           "X-Request-ID added");
    is_str(headers_of(r, &s),
           "Content-Type=application/json;Date=Mon, 30 Nov 2026 09:00:00 GMT;"
           "X-Request-ID=0123456789abcdef;",
           "names and values as given, in order");
    const char *ct = MHD_get_response_header(r, "content-type");
    is_str(ct, "application/json", "looked up by name, any case");

    /* a second Date replaces the first */
    is_int(MHD_add_response_header(r, "Date", "Tue, 01 Dec 2026 10:00:00 GMT"), MHD_YES,
           "a second Date");
    is_str(MHD_get_response_header(r, "Date"), "Tue, 01 Dec 2026 10:00:00 GMT",
           "it replaced the first");
    headers_of(r, &s);
    is_int(s.n, 3, "still three headers");

    /* Connection: made by libmicrohttpd's own path, then rewritten */
    is_int(MHD_add_response_header(r, "Connection", "keep-alive, x-token"), MHD_YES,
           "Connection added");
    is_str(MHD_get_response_header(r, "Connection"), "x-token", "keep-alive dropped from it");
    is_int(MHD_add_response_header(r, "Connection", "close"), MHD_YES, "close added to it");
    is_str(MHD_get_response_header(r, "Connection"), "close, x-token", "close goes first");
    is_int(MHD_del_response_header(r, "Connection", "x-token"), MHD_YES, "a token removed");
    is_str(MHD_get_response_header(r, "Connection"), "close", "close remains");

    /* removal of an entry made in one piece */
    is_int(MHD_del_response_header(r, "X-Request-ID", "0123456789abcdef"), MHD_YES,
           "X-Request-ID removed");
    ok(MHD_get_response_header(r, "X-Request-ID") == NULL, "and gone");
    is_int(MHD_del_response_header(r, "Content-Type", "text/plain"), MHD_NO,
           "removal with another value is refused");
    is_int(MHD_add_response_header(r, "X-Empty", ""), MHD_NO, "an empty value is refused");
    is_int(MHD_add_response_header(r, "X-Bad", "a\r\nb"), MHD_NO, "a CR LF in a value is refused");

    /* a long value in one piece with its entry */
    char big[4000];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    is_int(MHD_add_response_header(r, "X-Big", big), MHD_YES, "a 3999-byte value");
    is_str(MHD_get_response_header(r, "X-Big"), big, "kept whole");
    MHD_destroy_response(r);
    ok(1, "destroyed (the SAN build checks the frees)");
    return done_testing();
}
