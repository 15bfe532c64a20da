/* lua_codec.c - bodies through the server's codec (Go's neffos.Marshal and
 * Message.Unmarshal; docs/lua-api.md, "Tables as bodies"). A body argument
 * that is a table is encoded by scripts/neffos/codec.lua
 * (encode_body) with the codec of the connection's server; received messages
 * get that server's message metatable (msg:unmarshal(), the fields'
 * defaults), found once per served version and kept in its lendpoint. The
 * codec itself is Lua: this file only finds it and anchors the encoded bytes. */
#include "lua_internal.h"

#define CODEC_MODULE "neffos.codec"

/* Pushes field k of package.loaded["neffos.codec"] (nil if absent). */
static int push_codec_field(lua_State *L, const char *k)
{
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    if (lua_getfield(L, -1, CODEC_MODULE) != LUA_TTABLE) {
        lua_pop(L, 2);
        lua_pushnil(L);
        return LUA_TNIL;
    }
    int t = lua_getfield(L, -1, k);
    lua_remove(L, -2);
    lua_remove(L, -2);
    return t;
}

/* Pushes the description of ep's serving version, or nil. */
static void push_desc(lua_State *L, nf_endpoint *ep)
{
    lendpoint *le = ep ? lapp_endpoint(lapp_of(L), ep) : NULL;
    if (le && le->desc_ref != LUA_NOREF)
        lua_rawgeti(L, LUA_REGISTRYINDEX, le->desc_ref);
    else
        lua_pushnil(L);
}

/* Only tables are encoded: a string is the body's bytes, and a boolean is
 * more likely a mistake (`return ns:emit(...)`) than a value to send. */
static bool plain_body(int t) { return t != LUA_TTABLE; }

int lcodec_body(lua_State *L, int idx, nf_endpoint *ep, nf_slice *body, bool *binary)
{
    if (plain_body(lua_type(L, idx))) {
        *body = lopt_slice(L, idx);
        return 0;
    }
    idx = lua_absindex(L, idx);
    if (push_codec_field(L, "encode_body") != LUA_TFUNCTION) {
        lua_pop(L, 1);
        lua_pushnil(L);
        lua_pushliteral(L, "no codec loaded (scripts/neffos/codec.lua)");
        return -1;
    }
    push_desc(L, ep);
    lua_pushvalue(L, idx);
    lua_call(L, 2, 2);                 /* bytes, binary  or  nil, err (codec errors are caught there) */
    if (lua_type(L, -2) != LUA_TSTRING)
        return -1;                     /* leaves nil, err */
    if (binary && lua_toboolean(L, -1))
        *binary = true;
    lua_pop(L, 1);
    lua_replace(L, idx);               /* anchors the bytes where the argument was */
    *body = lcheck_slice(L, idx);
    return 0;
}

void lcodec_returned(lua_State *L, int first, nf_endpoint *ep)
{
    if (lua_gettop(L) < first || plain_body(lua_type(L, first)))
        return;
    nf_slice body;
    if (lcodec_body(L, first, ep, &body, NULL) == 0) {
        lua_settop(L, first);          /* the bytes: the reply */
        return;
    }
    /* nil, err on top: the handler's answer becomes that error reply. */
    lua_replace(L, first);             /* err where the table was */
    lua_settop(L, first);
    lua_pushnil(L);
    lua_insert(L, first);              /* nil, err */
}

/* The uncached lookup: meta[desc], else meta.default. */
static bool lookup_meta(lua_State *L, nf_endpoint *ep)
{
    if (push_codec_field(L, "meta") != LUA_TTABLE) {
        lua_pop(L, 1);
        return false;
    }
    push_desc(L, ep);
    if (lua_isnil(L, -1) || lua_rawget(L, -2) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_getfield(L, -1, "default");
    }
    lua_remove(L, -2);
    if (lua_istable(L, -1))
        return true;
    lua_pop(L, 1);
    return false;
}

bool lcodec_push_meta(lua_State *L, nf_endpoint *ep)
{
    lendpoint *le = ep ? lapp_endpoint(lapp_of(L), ep) : NULL;
    if (le && le->meta_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, le->meta_ref);
        return true;
    }
    if (!lookup_meta(L, ep))
        return false;
    if (le && le->desc_ref != LUA_NOREF) {   /* codec.prepare ran before the description served */
        lua_pushvalue(L, -1);
        le->meta_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    return true;
}

void lcodec_forget_meta(lua_State *L, lendpoint *le)
{
    luaL_unref(L, LUA_REGISTRYINDEX, le->meta_ref);
    le->meta_ref = LUA_NOREF;
}

const char *lcodec_meta_path(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (!lua_checkstack(L, 2) || !lua_getmetatable(L, idx))
        return "";
    /* Read from the metatable, not found among the endpoints' cached ones: a
     * msg received before a reload has the old version's metatable. The key
     * is interned already (codec.lua): no allocation. The string stays
     * anchored by the metatable, which the table at idx holds. */
    lua_pushliteral(L, "__endpoint");
    const char *path = lua_rawget(L, -2) == LUA_TSTRING ? lua_tostring(L, -1) : "";
    lua_pop(L, 2);
    return path;
}

bool lcodec_set_meta_by_path(lua_State *L, nf_slice path)
{
    nf_endpoint *ep = NULL;
    for (lendpoint *le = lapp_of(L)->endpoints; le && !ep && path.len; le = le->next)
        if (nf_slice_eq_cstr(path, nf_endpoint_path(le->ep)))
            ep = le->ep;
    if (!lcodec_push_meta(L, ep))
        return false;
    lua_setmetatable(L, -2);
    return true;
}
