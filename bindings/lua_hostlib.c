/* lua_hostlib.c - the "neffos.host" module: what scripts/neffos.lua needs
 * from C. It is preloaded before neffos.lua is required; apps never see it
 * directly (their require only resolves neffos, cjson and their own files). */
#include "log.h"
#include "lua_client.h"
#include "lua_internal.h"
#include "sha1.h"

static int host_log(lua_State *L)
{
    lua_Integer level = luaL_checkinteger(L, 1);
    const char *text = luaL_checkstring(L, 2);
    if (level < NF_LOG_DEBUG || level > NF_LOG_ERROR)
        level = NF_LOG_INFO;
    nf_log((nf_log_level)level, "%s", text);
    return 0;
}

/* neffos.servers(): { [endpoint] = server } of the serving version. */
static int host_servers(lua_State *L)
{
    nf_lua_app *a = lapp_of(L);
    lua_newtable(L);
    for (lendpoint *le = a->endpoints; le; le = le->next) {
        lua_pushstring(L, nf_endpoint_path(le->ep));
        lua_rawgeti(L, LUA_REGISTRYINDEX, le->server_ref);
        lua_rawset(L, -3);
    }
    return 1;
}

/* True once the running handler is past its instruction budget. */
static int host_over_budget(lua_State *L)
{
    nf_lua_app *a = lapp_of(L);
    lua_pushboolean(L, a->sb.limit && a->sb.enforce > 0 && a->sb.budget < 0);
    return 1;
}

/* neffos.host.digest(bytes): their SHA-1 (20 bytes). What the reloader
 * compares a saved file with: a fingerprint, not a security measure. */
static int host_digest(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    uint8_t d[20];
    nf_sha1(s, n, d);
    lua_pushlstring(L, (const char *)d, sizeof d);
    return 1;
}

void lhost_open(lua_State *L)
{
    static const luaL_Reg fns[] = {
        { "log", host_log },
        { "timer", ltimer_new_lua },
        { "sleep", ltimer_sleep_lua },
        { "servers", host_servers },
        { "over_budget", host_over_budget },
        { "digest", host_digest },
        { NULL, NULL },
    };
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    luaL_newlib(L, fns);
    lua_pushlightuserdata(L, &lrun_yield_tag);
    lua_setfield(L, -2, "yield_tag");
    lua_pushinteger(L, lapp_of(L)->worker_id);
    lua_setfield(L, -2, "worker_id");
    lua_pushinteger(L, lapp_of(L)->worker_count);
    lua_setfield(L, -2, "worker_count");
    lshared_push(L, lapp_of(L)->shared);
    lua_setfield(L, -2, "shared");
#ifdef NF_VERSION
    lua_pushliteral(L, NF_VERSION);
    lua_setfield(L, -2, "version");
#endif
    lua_setfield(L, -2, "neffos.host");
    lua_pop(L, 1);
    lclient_open(L, lapp_of(L)->base);   /* neffos.dial (scripts/neffos/client.lua) */
}
