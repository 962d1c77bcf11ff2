/*
 * service: the static table of services, and the loops over it.
 */
#include "service.h"

#include <stdio.h>
#include <string.h>

#include "lua_authcache.h"
#include "lua_db.h"
#include "lua_s3.h"
#include "lua_urlsign.h"

/* Every service, in the order they are configured, started and described. */
static const service *const table[] = {
    &lua_db_service,
    &lua_authcache_service,
    &lua_s3_service,
    &lua_urlsign_service,
};

#define NSERVICES (sizeof table / sizeof table[0])

/* Written by services_configure before any thread starts; read-only after. */
static int enabled[NSERVICES];

static _Thread_local void *tl_state[NSERVICES];

int services_configure(const config *cfg, config_getenv_fn get, char *err, size_t errlen)
{
    for (size_t i = 0; i < NSERVICES; i++) {
        err[0] = '\0';
        int rc = table[i]->configure(cfg, get, err, errlen);
        if (rc < 0)
            return -1;
        enabled[i] = rc > 0;
    }
    return 0;
}

int services_enabled(const char *name)
{
    for (size_t i = 0; i < NSERVICES; i++)
        if (!strcmp(table[i]->name, name))
            return enabled[i];
    return 0;
}

size_t services_count(void)
{
    return NSERVICES;
}

const service *services_get(size_t i)
{
    return i < NSERVICES ? table[i] : NULL;
}

void services_thread_start(loop *lp)
{
    for (size_t i = 0; i < NSERVICES; i++)
        if (enabled[i] && table[i]->thread_start)
            tl_state[i] = table[i]->thread_start(lp);
}

void services_thread_stop(void)
{
    for (size_t i = NSERVICES; i-- > 0;) {
        if (enabled[i] && table[i]->thread_stop)
            table[i]->thread_stop(tl_state[i]);
        tl_state[i] = NULL;
    }
}

const char *services_not_ready(void)
{
    for (size_t i = 0; i < NSERVICES; i++)
        if (enabled[i] && table[i]->ready && !table[i]->ready())
            return table[i]->not_ready;
    return NULL;
}

void services_describe(char *out, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < NSERVICES && used < n; i++) {
        char desc[512];
        table[i]->describe(enabled[i], desc, sizeof desc);
        int w = snprintf(out + used, n - used, "%s%s %s", i ? ", " : "", table[i]->name, desc);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

void services_metrics_init(void)
{
    for (size_t i = 0; i < NSERVICES; i++)
        if (table[i]->metrics_init)
            table[i]->metrics_init();
}
