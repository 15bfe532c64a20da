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

/* t[keys[k]] = s, with the table at -2 and the keys at -1 (the keys go
 * with a pop at the end, cheaper than removing them from under the table). */
static void set_str(lua_State *L, int k, nf_slice s)
{
    lua_rawgeti(L, -1, k);
    lua_pushlstring(L, s.ptr, s.len);
    lua_rawset(L, -4);
}

static void set_bool(lua_State *L, int k, bool v)
{
    lua_rawgeti(L, -1, k);
    lua_pushboolean(L, v);
    lua_rawset(L, -4);
}

/* t[keys[k]] = the value at idx (absolute), as set_str. */
static void set_value(lua_State *L, int k, int idx)
{
    lua_rawgeti(L, -1, k);
    lua_pushvalue(L, idx);
    lua_rawset(L, -4);
}

/* The table of m; sparse: the fields at their defaults are left unset;
 * names: 0, or where m's namespace and event names are (names, names + 1). */
static void push_msg(lua_State *L, const nf_msg *m, unsigned flags, bool sparse, int names)
{
    lua_createtable(L, 0, sparse ? 4 : 10);
    push_keys(L);
    if (names) {
        set_value(L, K_NAMESPACE, names);
        set_value(L, K_EVENT, names + 1);
    } else {
        set_str(L, K_NAMESPACE, m->ns);
        set_str(L, K_EVENT, m->event);
    }
    if (!sparse || m->room.len)
        set_str(L, K_ROOM, m->room);
    if (m->is_error) {
        set_str(L, K_ERR, m->body.len ? m->body : NF_SLICE("error"));
        set_str(L, K_BODY, NF_SLICE_EMPTY);
    } else {
        set_str(L, K_BODY, m->body);
    }
    if (m->wait.len)
        set_str(L, K_TOKEN, m->wait);
    static const struct { int key; unsigned flag; } flag_keys[] = {
        { K_BINARY, NF_INV_BINARY }, { K_IS_LOCAL, NF_INV_LOCAL },
        { K_IS_FORCED, NF_INV_FORCED }, { K_IS_NATIVE, NF_INV_NATIVE },
    };
    for (size_t i = 0; i < sizeof flag_keys / sizeof flag_keys[0]; i++)
        if (!sparse || (flags & flag_keys[i].flag))
            set_bool(L, flag_keys[i].key, flags & flag_keys[i].flag);
    lua_pop(L, 1);   /* the keys */
}

void lmsg_push(lua_State *L, const nf_msg *m, unsigned flags)
{
    push_msg(L, m, flags, false, 0);
}

void lmsg_push_served(lua_State *L, const nf_msg *m, unsigned flags, nf_endpoint *ep, int names)
{
    /* The server's message metatable's __index gives the defaults
     * (codec.lua, message_meta), so a field at its default is left unset:
     * a 64 B ask costs 4 fields in a 4-slot table instead of 10 in 16
     * (callgrind: the msg table was a third of the server's instructions). */
    push_msg(L, m, flags, true, names);
    if (lcodec_push_meta(L, ep))
        lua_setmetatable(L, -2);
    else
        lmsg_fill_defaults(L, -1);   /* no codec loaded: no metatable to read them from */
}

bool lmsg_is(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) != LUA_TTABLE || !lua_checkstack(L, 2) || !lua_getmetatable(L, idx))
        return false;
    lua_pushliteral(L, "__name");   /* interned already (codec.lua): no allocation */
    bool is_msg = lua_rawget(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "neffos.msg") == 0;
    lua_pop(L, 2);
    return is_msg;
}

void lmsg_fill_defaults(lua_State *L, int idx)
{
    static const int defaults[] = { K_ROOM, K_BINARY, K_IS_LOCAL, K_IS_FORCED, K_IS_NATIVE };
    idx = lua_absindex(L, idx);
    push_keys(L);
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        lua_rawgeti(L, -1, defaults[i]);                /* keys, key */
        lua_pushvalue(L, -1);
        if (lua_rawget(L, idx) != LUA_TNIL) {
            lua_pop(L, 2);
            continue;
        }
        lua_pop(L, 1);
        if (defaults[i] == K_ROOM)
            lua_pushliteral(L, "");
        else
            lua_pushboolean(L, 0);
        lua_rawset(L, idx);
    }
    lua_pop(L, 1);
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
