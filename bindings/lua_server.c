/* lua_server.c - the `server` object: one per endpoint, kept across reloads
 * (handlers and neffos.state may hold it). When its endpoint is unmounted it
 * forgets the pointer and behaves as an empty server. */
#include <string.h>

#include "log.h"
#include "lua_internal.h"

#define SERVER_MT "neffos.server"

typedef struct lserver {
    nf_endpoint *ep;   /* NULL once unmounted */
} lserver;

int lserver_new(lua_State *L, nf_endpoint *ep)
{
    lserver *s = lua_newuserdatauv(L, sizeof *s, 0);
    s->ep = ep;
    luaL_setmetatable(L, SERVER_MT);
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

void lserver_detach(lua_State *L, int ref)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    lserver *s = luaL_testudata(L, -1, SERVER_MT);
    if (s)
        s->ep = NULL;
    lua_pop(L, 1);
}

void lserver_push(lua_State *L, nf_endpoint *ep)
{
    lendpoint *le = ep ? lapp_endpoint(lapp_of(L), ep) : NULL;
    if (le)
        lua_rawgeti(L, LUA_REGISTRYINDEX, le->server_ref);
    else
        lua_pushnil(L);
}

static nf_endpoint *check_server(lua_State *L)
{
    return ((lserver *)luaL_checkudata(L, 1, SERVER_MT))->ep;
}

/* server:broadcast and server:ask take one table shaped like a neffos
 * message (docs/lua-api.md, "Conventions"). */
static const char *const BROADCAST_FIELDS[] = { "namespace", "room", "event", "body", "binary", "to", "except", NULL };
static const char *const ASK_FIELDS[] = { "namespace", "room", "event", "body", "binary", "to", "timeout", NULL };

/* t.body as the message body: a table is encoded with ep's codec (which may
 * make it binary). Returns 0, or -1 with nil, err pushed. */
static int body_field(lua_State *L, int t, nf_endpoint *ep, nf_slice *body, bool *binary)
{
    lua_getfield(L, t, "body");
    return lcodec_body(L, -1, ep, body, binary);
}

/* The number of local receivers (0 once unmounted: an empty server), or
 * nil, err. */
static int server_broadcast(lua_State *L)
{
    nf_endpoint *ep = check_server(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    lopts_check(L, 2, "server:broadcast", BROADCAST_FIELDS);
    nf_broadcast b = { 0 };
    b.ns = lopts_string(L, 2, "server:broadcast", "namespace");   /* each anchored on the stack */
    b.room = lopts_string(L, 2, "server:broadcast", "room");
    b.event = lopts_string(L, 2, "server:broadcast", "event");
    b.to = lopts_string(L, 2, "server:broadcast", "to");
    b.binary = lopts_bool(L, 2, "binary");
    /* A received native message relays as Go's Server.Broadcast writes one:
     * its body alone (docs/protocol.md §11). A table of the app's cannot ask
     * for that: conn:write sends raw frames. */
    b.native = lmsg_is(L, 2) && lopts_bool(L, 2, "is_native");
    if (body_field(L, 2, ep, &b.body, &b.binary) != 0)
        return 2;
    if (b.event.len == 0)
        return luaL_error(L, "server:broadcast: field 'event' is required");
    lopts_except(L, 2, "server:broadcast", &b);
    if (ep && nf_ns_check_names(nf_endpoint_host(ep), b.ns, b.room, b.event) != 0) {
        lua_pushnil(L);
        lua_pushliteral(L, NF_ERR_NAME_TOO_LONG);
        return 2;
    }
    lua_pushinteger(L, ep ? (lua_Integer)nf_endpoint_broadcast(ep, &b) : 0);
    return 1;
}

static int server_ask(lua_State *L)
{
    nf_endpoint *ep = check_server(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    lopts_check(L, 2, "server:ask", ASK_FIELDS);
    nf_slice to = lopts_string(L, 2, "server:ask", "to");
    nf_slice ns = lopts_string(L, 2, "server:ask", "namespace");
    nf_slice room = lopts_string(L, 2, "server:ask", "room");
    nf_slice event = lopts_string(L, 2, "server:ask", "event");
    bool binary = lopts_bool(L, 2, "binary");
    nf_slice body;
    if (body_field(L, 2, ep, &body, &binary) != 0)
        return 2;
    unsigned timeout = lopts_timeout_ms(L, 2);
    if (to.len == 0 || event.len == 0)
        return luaL_error(L, "server:ask: fields 'to' and 'event' are required");
    if (ep && nf_ns_check_names(nf_endpoint_host(ep), ns, room, event) != 0) {
        lua_pushnil(L);   /* no connection could answer it, here or in another process */
        lua_pushliteral(L, NF_ERR_NAME_TOO_LONG);
        return 2;
    }
    if (!ep) {
        lua_pushnil(L);
        lua_pushliteral(L, NF_ERR_WRITE);
        return 2;
    }
    lwait *w = lwait_begin(L, "server:ask", NULL, NF_SLICE_EMPTY, NF_SLICE_EMPTY);
    lrun *r = w->r;   /* w may be gone once the action completes */
    nf_endpoint_ask(ep, to, ns, room, event, body, binary, timeout, lask_done, w);
    return lrun_wait(L, r);
}

static int server_count(lua_State *L)
{
    nf_endpoint *ep = check_server(L);
    lua_pushinteger(L, ep ? (lua_Integer)nf_endpoint_connection_count(ep) : 0);
    return 1;
}

static bool collect_conn(void *ud, nf_conn *c)
{
    lua_State *L = ud;
    lconn_push(L, c);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    return true;
}

/* server:connections(): a list of every open conn (the Server.Do
 * equivalent), a snapshot like every listing of the API. */
/* With several workers a listing covers every worker (lua_remote.c). */
static bool process_wide(lua_State *L, nf_endpoint *ep) { return ep && lapp_of(L)->worker_count > 1; }

static int server_connections(lua_State *L)
{
    nf_endpoint *ep = check_server(L);
    if (process_wide(L, ep))
        return lremote_list(L, ep, LREMOTE_CONNECTIONS, NF_SLICE_EMPTY, NF_SLICE_EMPTY);
    lua_newtable(L);
    if (ep)
        nf_endpoint_each(ep, collect_conn, L);
    return 1;
}

/* server:get(id): the connection with this ID that connected last (IDs
 * need not be unique: the newest is the live one after a reconnect). */
static int server_get(lua_State *L)
{
    nf_endpoint *ep = check_server(L);
    nf_slice id = lcheck_slice(L, 2);
    if (process_wide(L, ep))
        return lremote_list(L, ep, LREMOTE_GET, id, NF_SLICE_EMPTY);
    nf_conn *c = ep ? nf_endpoint_find(ep, id) : NULL;
    if (!c)
        return 0;
    lconn_push(L, c);
    return 1;
}

/* server:get_all(id): every open connection with this ID, oldest first. */
static int server_get_all(lua_State *L)
{
    nf_endpoint *ep = check_server(L);
    nf_slice id = lcheck_slice(L, 2);
    if (process_wide(L, ep))
        return lremote_list(L, ep, LREMOTE_GET_ALL, id, NF_SLICE_EMPTY);
    lua_newtable(L);
    if (ep)
        nf_endpoint_each_with_id(ep, id, collect_conn, L);
    return 1;
}

/* A member is a namespace connection: its ns object (ns.id is the ID). */
static bool collect_member(void *ud, nf_nsconn *nc)
{
    lua_State *L = ud;
    lconn_push(L, nf_nsconn_conn(nc));
    lns_push(L, -1, nf_nsconn_name(nc));
    lua_remove(L, -2);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    return true;
}

static int server_members(lua_State *L)
{
    nf_endpoint *ep = check_server(L);
    nf_slice ns = lcheck_slice(L, 2);
    nf_slice room = lopt_slice(L, 3);
    if (process_wide(L, ep))
        return lremote_list(L, ep, LREMOTE_MEMBERS, ns, room);
    lua_newtable(L);
    if (ep)
        nf_endpoint_each_member(ep, ns, room, collect_member, L);
    return 1;
}

static int server_index(lua_State *L)
{
    nf_endpoint *ep = check_server(L);
    luaL_getmetafield(L, 1, "methods");
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL)
        return 1;
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
    if (k && strcmp(k, "endpoint") == 0 && ep) {
        lua_pushstring(L, nf_endpoint_path(ep));
        return 1;
    }
    return 0;
}

static int server_tostring(lua_State *L)
{
    nf_endpoint *ep = check_server(L);
    lua_pushfstring(L, "server(%s)", ep ? nf_endpoint_path(ep) : "unmounted");
    return 1;
}

void lserver_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "broadcast", server_broadcast },
        { "ask", server_ask },
        { "count", server_count },
        { "connections", server_connections },
        { "get", server_get },
        { "get_all", server_get_all },
        { "members", server_members },
        { NULL, NULL },
    };
    luaL_newmetatable(L, SERVER_MT);
    lsb_lock_metatable(L, -1);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "methods");
    lua_pushcfunction(L, server_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, server_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
}
