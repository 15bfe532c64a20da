/* lua_message.c - the tables and results a handler sees: the msg table of
 * an event or of an ask's reply, and nil, err for what failed
 * (docs/lua-api.md, "Handlers"). Pushes onto a Lua stack only: it owns
 * nothing. */
#include <string.h>

#include "lua_internal.h"

static void set_str(lua_State *L, const char *k, nf_slice s)
{
    lua_pushlstring(L, s.ptr, s.len);
    lua_setfield(L, -2, k);
}

static void set_bool(lua_State *L, const char *k, bool v)
{
    lua_pushboolean(L, v);
    lua_setfield(L, -2, k);
}

void lmsg_push(lua_State *L, const nf_msg *m, unsigned flags)
{
    lua_createtable(L, 0, 10);
    set_str(L, "namespace", m->ns);
    set_str(L, "room", m->room);
    set_str(L, "event", m->event);
    if (m->is_error) {
        set_str(L, "err", m->body.len ? m->body : NF_SLICE("error"));
        set_str(L, "body", NF_SLICE_EMPTY);
    } else {
        set_str(L, "body", m->body);
    }
    if (m->wait.len)
        set_str(L, "token", m->wait);
    set_bool(L, "binary", flags & NF_INV_BINARY);
    set_bool(L, "is_local", flags & NF_INV_LOCAL);
    set_bool(L, "is_forced", flags & NF_INV_FORCED);
    set_bool(L, "is_native", flags & NF_INV_NATIVE);
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
