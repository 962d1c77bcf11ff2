/* Per-request cleanups: reverse order, removal, run once. */
#include <string.h>

#include "request.h"
#include "tap.h"

static char order[8];
static size_t norder;

static void note(void *data)
{
    order[norder++] = *(const char *)data;
}

int main(void)
{
    request r;
    memset(&r, 0, sizeof r);
    static const char a = 'a', b = 'b', c = 'c';
    request_add_cleanup(&r, note, (void *)&a);
    request_cleanup *cb = request_add_cleanup(&r, note, (void *)&b);
    request_add_cleanup(&r, note, (void *)&c);
    request_remove_cleanup(&r, cb);
    request_run_cleanups(&r);
    order[norder] = 0;
    is_str(order, "ca", "cleanups run newest first; a removed one does not run");
    ok(r.cleanups == NULL, "none left afterwards");
    request_run_cleanups(&r);
    is_int(norder, 2, "running them again is a no-op");
    return done_testing();
}
