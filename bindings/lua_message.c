/* lua_message.c - the tables and results a handler sees: the msg table of
 * an event or of an ask's reply, and nil, err for what failed
 * (docs/lua-api.md, "Handlers"). Pushes onto a Lua stack only: it owns
 * nothing. */
#include <string.h>

#include "lua_internal.h"

/* The msg table's keys, interned once per Lua state: an array in the
 * registry (at &msg_keys) in enum order. lua_setfield with a C string costs
 * a strlen and a strcmp against Lua's string cache per field, ten fields
 * per message (perf: ~4% of the server's CPU at 64 B asks). */
enum { K_NAMESPACE = 1, K_ROOM, K_EVENT, K_ERR, K_BODY, K_TOKEN, K_BINARY, K_IS_LOCAL, K_IS_FORCED, K_IS_NATIVE, K_N };
static const char *const msg_key_names[K_N] = {
    [K_NAMESPACE] = "namespace", [K_ROOM] = "room", [K_EVENT] = "event", [K_ERR] = "err",
    [K_BODY] = "body", [K_TOKEN] = "token", [K_BINARY] = "binary", [K_IS_LOCAL] = "is_local",
    [K_IS_FORCED] = "is_forced", [K_IS_NATIVE] = "is_native",
};
static const char msg_keys;   /* its address is the registry key */

/* Pushes the keys array (made on first use in this state). */
static void push_keys(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &msg_keys) == LUA_TTABLE)
        return;
    lua_pop(L, 1);
    lua_createtable(L, K_N - 1, 0);
    for (int k = 1; k < K_N; k++) {
        lua_pushstring(L, msg_key_names[k]);
        lua_rawseti(L, -2, k);
    }
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &msg_keys);
}

/* t[keys[k]] = s, with the keys at -2 and the table at -1. */
static void set_str(lua_State *L, int k, nf_slice s)
{
    lua_rawgeti(L, -2, k);
    lua_pushlstring(L, s.ptr, s.len);
    lua_rawset(L, -3);
}

static void set_bool(lua_State *L, int k, bool v)
{
    lua_rawgeti(L, -2, k);
    lua_pushboolean(L, v);
    lua_rawset(L, -3);
}

void lmsg_push(lua_State *L, const nf_msg *m, unsigned flags)
{
    push_keys(L);
    lua_createtable(L, 0, 10);
    set_str(L, K_NAMESPACE, m->ns);
    set_str(L, K_ROOM, m->room);
    set_str(L, K_EVENT, m->event);
    if (m->is_error) {
        set_str(L, K_ERR, m->body.len ? m->body : NF_SLICE("error"));
        set_str(L, K_BODY, NF_SLICE_EMPTY);
    } else {
        set_str(L, K_BODY, m->body);
    }
    if (m->wait.len)
        set_str(L, K_TOKEN, m->wait);
    set_bool(L, K_BINARY, flags & NF_INV_BINARY);
    set_bool(L, K_IS_LOCAL, flags & NF_INV_LOCAL);
    set_bool(L, K_IS_FORCED, flags & NF_INV_FORCED);
    set_bool(L, K_IS_NATIVE, flags & NF_INV_NATIVE);
    lua_remove(L, -2);   /* the keys */
}

int lmsg_push_error(lua_State *L, const char *err, size_t errlen)
{
    lua_pushnil(L);
    if (errlen) lua_pushlstring(L, err, errlen);
    else lua_pushliteral(L, "error");
    return 2;
}

int lmsg_push_ask_failure(lua_State *L, nf_ask_status st, const nf_msg *reply)
{
    lua_pushnil(L);
    switch (st) {
    case NF_ASK_REMOTE_ERROR:
        if (reply && reply->body.len)
            lpush_slice(L, reply->body);
        else
            lua_pushliteral(L, "error");
        break;
    case NF_ASK_TIMEOUT: lua_pushliteral(L, "timeout"); break;
    case NF_ASK_NOT_FOUND: lua_pushliteral(L, "not found"); break;
    default: lua_pushliteral(L, NF_ERR_WRITE); break;
    }
    return 2;
}
