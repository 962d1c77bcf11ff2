/*
 * lua_sigv4: require "glasgow.sigv4" (see lua_sigv4.h for the API).
 *
 * Nothing here calls malloc while Lua may raise: the pair arrays handed to
 * sigv4 are userdata, every string they point to is anchored in a table on
 * the stack, and the signer's result lives in a userdata created (empty,
 * with a __gc) before signing, so an error while the results are pushed
 * cannot leak it.
 */
#include "lua_sigv4.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "sigv4.h"

static const char result_mt[] = "glasgow.sigv4.result";

typedef struct result_box {
    sigv4_result r;
} result_box;

static int result_gc(lua_State *L)
{
    result_box *b = luaL_checkudata(L, 1, result_mt);
    sigv4_result_dispose(&b->r);
    return 0;
}

/* Pushes an empty result userdata that disposes itself when collected. */
static result_box *push_result_box(lua_State *L)
{
    result_box *b = lua_newuserdata(L, sizeof *b);
    memset(b, 0, sizeof *b);
    if (luaL_newmetatable(L, result_mt)) {
        lua_pushcfunction(L, result_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return b;
}

/* Reads string field name of the table at index 1; NULL when absent and not
 * required. The string stays referenced by the table while the call runs. */
static const char *opt_field(lua_State *L, const char *name, int required, size_t *len)
{
    lua_getfield(L, 1, name);
    int t = lua_type(L, -1);
    if (t == LUA_TNIL && !required) {
        lua_pop(L, 1);
        return NULL;
    }
    if (t != LUA_TSTRING) {
        luaL_argerror(
            L, 1,
            lua_pushfstring(L, "field '%s': string expected, got %s", name, lua_typename(L, t)));
        return NULL;
    }
    const char *s = lua_tolstring(L, -1, len);
    lua_pop(L, 1);
    if (strlen(s) != *len) {
        luaL_argerror(L, 1, lua_pushfstring(L, "field '%s': embedded NUL", name));
        return NULL;
    }
    return s;
}

static const char *field(lua_State *L, const char *name, int required)
{
    size_t len;
    return opt_field(L, name, required, &len);
}

/* Reads one side of a pair (index i of the pair table on top of the stack):
 * a string, or a number made into one and anchored in the table at anchor. */
static const char *pair_part(lua_State *L, const char *name, size_t n, int i, int anchor,
                             size_t *len)
{
    lua_rawgeti(L, -1, i);
    int t = lua_type(L, -1);
    if (t != LUA_TSTRING && t != LUA_TNUMBER) {
        luaL_argerror(L, 1,
                      lua_pushfstring(L, "field '%s': item %d: {name, value} of strings expected",
                                      name, (int)n));
        return NULL;
    }
    const char *s = lua_tolstring(L, -1, len);
    lua_rawseti(L, anchor, (int)lua_objlen(L, anchor) + 1);
    return s;
}

/* Reads the array of {name, value} pairs in field name (nil: none) into a
 * userdata it leaves on the stack; *n gets the count. */
static sigv4_pair *pairs_field(lua_State *L, const char *name, int max, int anchor, size_t *n)
{
    lua_getfield(L, 1, name);
    int t = lua_type(L, -1);
    *n = 0;
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        lua_newuserdata(L, sizeof(sigv4_pair));
        return NULL;
    }
    if (t != LUA_TTABLE) {
        luaL_argerror(
            L, 1,
            lua_pushfstring(L, "field '%s': table expected, got %s", name, lua_typename(L, t)));
        return NULL;
    }
    size_t count = lua_objlen(L, -1);
    if (count > (size_t)max) {
        luaL_argerror(L, 1, lua_pushfstring(L, "field '%s': more than %d pairs", name, max));
        return NULL;
    }
    sigv4_pair *p = lua_newuserdata(L, (count ? count : 1) * sizeof *p);
    lua_insert(L, -2);
    for (size_t i = 0; i < count; i++) {
        lua_rawgeti(L, -1, (int)i + 1);
        if (!lua_istable(L, -1)) {
            luaL_argerror(L, 1,
                          lua_pushfstring(L, "field '%s': item %d: {name, value} expected", name,
                                          (int)i + 1));
            return NULL;
        }
        p[i].name = pair_part(L, name, i + 1, 1, anchor, &p[i].name_len);
        p[i].value = pair_part(L, name, i + 1, 2, anchor, &p[i].value_len);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    *n = count;
    return p;
}

/* Reads the request fields shared by sign and presign; leaves two pair
 * userdata and an anchor table on the stack. */
static void read_request(lua_State *L, sigv4_request *r, int with_payload_hash)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_newtable(L);
    int anchor = lua_gettop(L);
    memset(r, 0, sizeof *r);
    r->method = field(L, "method", 1);
    r->path = opt_field(L, "path", 1, &r->path_len);
    r->query = pairs_field(L, "query", SIGV4_MAX_QUERY, anchor, &r->nquery);
    r->headers = pairs_field(L, "headers", SIGV4_MAX_HEADERS, anchor, &r->nheaders);
    if (with_payload_hash)
        r->payload_hash = field(L, "payload_hash", 1);
    r->region = field(L, "region", 1);
    r->service = field(L, "service", 1);
    r->access_key = field(L, "access_key", 1);
    r->secret_key = field(L, "secret_key", 1);
    r->session_token = field(L, "session_token", 0);
    r->time = field(L, "time", 1);
}

static void set_string(lua_State *L, const char *key, const char *value)
{
    lua_pushstring(L, value);
    lua_setfield(L, -2, key);
}

/* Appends {name, value} to the array on top of the stack. */
static void append_pair(lua_State *L, const char *name, const char *value)
{
    lua_createtable(L, 2, 0);
    lua_pushstring(L, name);
    lua_rawseti(L, -2, 1);
    lua_pushstring(L, value);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, (int)lua_objlen(L, -2) + 1);
}

/* Pushes the fields both functions return into a new table. */
static void push_common(lua_State *L, const sigv4_result *r)
{
    lua_createtable(L, 0, 8);
    set_string(L, "canonical_request", r->canonical_request);
    set_string(L, "string_to_sign", r->string_to_sign);
    set_string(L, "signature", r->signature);
    set_string(L, "signed_headers", r->signed_headers);
}

static int l_sign(lua_State *L)
{
    sigv4_request req;
    char err[256];
    read_request(L, &req, 1);
    result_box *b = push_result_box(L);
    if (sigv4_sign(&req, &b->r, err, sizeof err) < 0)
        return luaL_argerror(L, 1, err);
    push_common(L, &b->r);
    set_string(L, "authorization", b->r.authorization);
    lua_createtable(L, 2, 0);
    append_pair(L, "X-Amz-Date", b->r.time);
    if (req.session_token && *req.session_token)
        append_pair(L, "X-Amz-Security-Token", req.session_token);
    lua_setfield(L, -2, "headers");
    sigv4_result_dispose(&b->r);
    return 1;
}

static int l_presign(lua_State *L)
{
    sigv4_request req;
    char err[256];
    read_request(L, &req, 0);
    lua_getfield(L, 1, "expires");
    if (lua_type(L, -1) != LUA_TNUMBER)
        return luaL_argerror(L, 1, "field 'expires': number expected");
    lua_Number e = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (!(e >= 1 && e <= SIGV4_MAX_EXPIRES) || e != (lua_Number)(long)e)
        return luaL_argerror(L, 1, "field 'expires': integer in 1..604800 expected");
    result_box *b = push_result_box(L);
    if (sigv4_presign(&req, (long)e, &b->r, err, sizeof err) < 0)
        return luaL_argerror(L, 1, err);
    push_common(L, &b->r);
    set_string(L, "query", b->r.query);
    lua_pushlstring(L, req.path, req.path_len);
    lua_pushliteral(L, "?");
    lua_pushstring(L, b->r.query);
    lua_concat(L, 3);
    lua_setfield(L, -2, "url");

    char credential[SIGV4_MAX_FIELD + 1 + SIGV4_SCOPE_MAX + 1], expires[24];
    snprintf(credential, sizeof credential, "%s/%s", req.access_key, b->r.scope);
    snprintf(expires, sizeof expires, "%ld", (long)e);
    lua_createtable(L, 7, 0);
    append_pair(L, "X-Amz-Algorithm", "AWS4-HMAC-SHA256");
    append_pair(L, "X-Amz-Credential", credential);
    append_pair(L, "X-Amz-Date", b->r.time);
    append_pair(L, "X-Amz-Expires", expires);
    append_pair(L, "X-Amz-SignedHeaders", b->r.signed_headers);
    if (req.session_token && *req.session_token)
        append_pair(L, "X-Amz-Security-Token", req.session_token);
    append_pair(L, "X-Amz-Signature", b->r.signature);
    lua_setfield(L, -2, "params");
    sigv4_result_dispose(&b->r);
    return 1;
}

static int l_chunk_signature(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    const char *secret = field(L, "secret_key", 1);
    const char *time = field(L, "time", 1);
    const char *region = field(L, "region", 1);
    const char *service = field(L, "service", 1);
    const char *previous = field(L, "previous", 1);
    size_t len;
    lua_getfield(L, 1, "data");
    if (lua_type(L, -1) != LUA_TSTRING)
        return luaL_argerror(L, 1, "field 'data': string expected");
    const char *data = lua_tolstring(L, -1, &len);
    lua_pop(L, 1);
    int hex = strlen(previous) == SIGV4_SIG_LEN;
    for (size_t i = 0; hex && i < SIGV4_SIG_LEN; i++)
        hex = (previous[i] >= '0' && previous[i] <= '9') ||
              (previous[i] >= 'a' && previous[i] <= 'f');
    if (!hex)
        return luaL_argerror(L, 1, "field 'previous': 64 lowercase hex digits expected");

    sigv4_chunk c;
    char err[256], sig[SIGV4_SIG_LEN + 1];
    if (sigv4_signing_key(secret, time, region, service, c.signing_key, c.scope, err, sizeof err) <
        0)
        return luaL_argerror(L, 1, err);
    memcpy(c.time, time, SIGV4_TIME_LEN + 1);
    memcpy(c.previous, previous, SIGV4_SIG_LEN + 1);
    sigv4_chunk_sign(&c, data, len, sig);
    sigv4_chunk_dispose(&c);
    lua_pushstring(L, sig);
    return 1;
}

int luaopen_glasgow_sigv4(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"sign", l_sign},
        {"presign", l_presign},
        {"chunk_signature", l_chunk_signature},
        {NULL, NULL},
    };
    lua_createtable(L, 0, 3);
    luaL_register(L, NULL, fns);
    return 1;
}
