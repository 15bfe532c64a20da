/* lua_ids.c - connection IDs from the app's id(req) (docs/lua-api.md): the
 * generate_id of nf_app_ops. The ID is copied into the core's buffer; nothing
 * is kept here. */
#include <string.h>

#include "log.h"
#include "lua_internal.h"

/* The app's id(req): a string (or number) is the ID, as it is; nil means
 * the default. What cannot be an ID refuses the connection (the core sends
 * the "H" text), never a random ID in its place: an app that names its
 * users must not see one of them become somebody else. */
long lids_generate(void *app, nf_endpoint *ep, nf_conn *c, char *id, size_t cap)
{
    nf_lua_app *a = app;
    lua_State *L = a->L;
    int top = lua_gettop(L);
    long rc = NF_ID_DEFAULT;

    lapp_push_desc(a, ep);
    if (lua_type(L, -1) != LUA_TTABLE || lapp_rawget_str(L, -1, "id", 2) != LUA_TFUNCTION) {
        lua_settop(L, top);
        return NF_ID_DEFAULT;
    }
    lconn_push_request(L, c, nf_conn_request(c));
    if (lrun_pcall(a, 1, 1) != LUA_OK) {
        nf_error("id() failed, connection from %s refused: %s", nf_conn_remote_addr(c), lua_tostring(L, -1));
        rc = NF_ID_FAILED;
    } else if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        if (n == 0) {
            rc = NF_ID_EMPTY;
        } else if (n > cap) {
            nf_warn("id() returned %zu bytes, more than --max-id-bytes %zu: connection from %s refused", n, cap,
                    nf_conn_remote_addr(c));
            rc = NF_ID_TOO_LONG;
        } else {
            memcpy(id, s, n);
            rc = (long)n;
        }
    } else if (!lua_isnil(L, -1)) {
        nf_error("id() returned a %s (a string or nil expected): connection from %s refused", luaL_typename(L, -1),
                 nf_conn_remote_addr(c));
        rc = NF_ID_FAILED;
    }
    lua_settop(L, top);
    return rc;
}
