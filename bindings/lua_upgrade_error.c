/* lua_upgrade_error.c - the server description's on_upgrade_error hook
 * (Go's Server.OnUpgradeError): the core tells every refusal of a request
 * that reached an endpoint (nf_app_ops.refused), and this calls the hook
 * with the request, the reason's label and the text. It cannot wait or
 * change the outcome: the refusal is already on its way to the client. */
#include "lua_internal.h"

#include "log.h"

void lrun_refused(void *app, nf_endpoint *ep, nf_conn *c, const char *reason, const char *what)
{
    nf_lua_app *a = app;
    lua_State *L = a->L;
    int top = lua_gettop(L);

    lapp_push_desc(a, ep);
    if (lua_type(L, -1) != LUA_TTABLE) {
        lua_settop(L, top);
        return;
    }
    lua_pushliteral(L, "on_upgrade_error");
    if (lua_rawget(L, -2) != LUA_TFUNCTION) {   /* raw: the description as validated */
        lua_settop(L, top);
        return;
    }
    lconn_push_request(L, c, nf_conn_request(c));
    lua_pushstring(L, reason);
    lua_pushstring(L, what);
    if (lrun_pcall_as(a, 3, 0, "on_upgrade_error") != LUA_OK)
        nf_error("on_upgrade_error failed: %s", lua_tostring(L, -1));
    lua_settop(L, top);
}
