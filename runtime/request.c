/*
 * request: the per-request cleanup list.
 */
#include "request.h"

#include <stdlib.h>

struct request_cleanup {
    void (*fn)(void *data);
    void *data;
    request_cleanup *next;
};

request_cleanup *request_add_cleanup(request *r, void (*fn)(void *data), void *data)
{
    request_cleanup *c = xmalloc(sizeof *c);
    c->fn = fn;
    c->data = data;
    c->next = r->cleanups;
    r->cleanups = c;
    return c;
}

void request_remove_cleanup(request *r, request_cleanup *c)
{
    request_cleanup **pp = &r->cleanups;
    while (*pp && *pp != c)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = c->next;
        free(c);
    }
}

void request_run_cleanups(request *r)
{
    /* newest first; a cleanup may register or remove others meanwhile */
    while (r->cleanups) {
        request_cleanup *c = r->cleanups;
        r->cleanups = c->next;
        void (*fn)(void *data) = c->fn;
        void *data = c->data;
        free(c);
        fn(data);
    }
}
