/* lua_opts.c - the options tables of the Lua API (docs/lua-api.md,
 * "Conventions"): every method that sends a body takes its options as a
 * table, `{ binary = true, timeout = seconds, except = ..., to = ... }`, and
 * the server's methods take one table shaped like a neffos message.
 *
 * One reader for all of them, so that a field means the same thing
 * everywhere, and an unknown field (a typo such as `timout`) is refused
 * with the method's name instead of being ignored. */
#include <string.h>

#include "lua_internal.h"

/* The fields of a received message (codec.lua's neffos.msg) that describe
 * how it came, not what to send: a handler that passes the msg it got to
 * server:broadcast or server:ask (a relay) means its namespace, room, event
 * and body, and an ask's token answers nobody else. */
static const char *const MSG_ONLY[] = { "token", "err", "is_local", "is_forced", "is_native", NULL };

static bool in_list(const char *k, const char *const list[])
{
    for (int i = 0; k && list[i]; i++)
        if (strcmp(k, list[i]) == 0)
            return true;
    return false;
}

void lopts_check(lua_State *L, int idx, const char *what, const char *const known[])
{
    if (lua_isnoneornil(L, idx))
        return;
    if (lua_type(L, idx) != LUA_TTABLE) {
        const char *got = luaL_typename(L, idx);
        luaL_where(L, 2);   /* the app's file:line, not this C function's */
        lua_pushfstring(L, "%s: options must be a table (got %s)%s", what, got,
                        lua_type(L, idx) == LUA_TNUMBER ? "; a timeout is { timeout = seconds }" : "");
        lua_concat(L, 2);
        lua_error(L);
        return;
    }
    idx = lua_absindex(L, idx);
    bool msg = lmsg_is(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        bool ok = in_list(k, known) || (msg && in_list(k, MSG_ONLY));
        if (!ok) {
            const char *name = luaL_tolstring(L, -1, NULL);
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (int i = 0; known[i]; i++) {
                if (i)
                    luaL_addstring(&b, ", ");
                luaL_addstring(&b, known[i]);
            }
            luaL_pushresult(&b);
            luaL_where(L, 2);
            lua_pushfstring(L, "%s: unknown option %s (known: %s)", what, name, lua_tostring(L, -2));
            lua_concat(L, 2);
            lua_error(L);
        }
    }
}

bool lopts_bool(lua_State *L, int idx, const char *k)
{
    if (!lua_istable(L, idx))
        return false;
    lua_getfield(L, idx, k);
    bool v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

unsigned lopts_timeout_ms(lua_State *L, int idx)
{
    if (!lua_istable(L, idx))
        return 0;
    lua_getfield(L, idx, "timeout");
    unsigned ms = lopt_ms(L, -1);
    lua_pop(L, 1);
    return ms;
}

nf_slice lopts_string(lua_State *L, int idx, const char *what, const char *k)
{
    if (!lua_istable(L, idx)) {
        lua_pushnil(L);   /* the caller pops one value either way */
        return NF_SLICE_EMPTY;
    }
    int type = lua_getfield(L, idx, k);
    if (type == LUA_TNIL)
        return NF_SLICE_EMPTY;
    if (type != LUA_TSTRING && type != LUA_TNUMBER)
        luaL_error(L, "%s: field '%s' must be a string (got %s)", what, k, lua_typename(L, type));
    return lslice(L, -1);
}

void lopts_except(lua_State *L, int idx, const char *what, nf_broadcast *b)
{
    if (!lua_istable(L, idx)) {
        lua_pushnil(L);
        return;
    }
    switch (lua_getfield(L, idx, "except")) {
    case LUA_TNIL:
        break;
    case LUA_TSTRING:
        b->except_id = lslice(L, -1);
        break;
    case LUA_TUSERDATA:
        b->except = lconn_test(L, -1);
        if (!b->except)
            b->except = lns_test_conn(L, -1);
        if (!b->except && lremote_id(L, -1, &b->except_id))
            break;   /* another worker's connection: skipped by its ID (the value anchors it) */
        break;   /* NULL: a conn or ns whose connection is gone, nobody to skip */
    default:
        luaL_error(L, "%s: field 'except' must be a conn, an ns or an ID", what);
    }
}
