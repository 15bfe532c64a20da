/* lua_nsconn.c - the `ns` object (a connection's membership of a namespace)
 * and the `room` object.
 *
 * An ns object holds its connection object and the namespace name, never an
 * nf_nsconn pointer: those die when the namespace disconnects, which can
 * happen while a handler waits. Every method looks the namespace up again;
 * when it is gone the object behaves as closed (emit and ask return nil,
 * "write closed"). A room object holds its ns object and name. */
#include <string.h>

#include "log.h"
#include "lua_internal.h"

#define NS_MT "neffos.ns"
#define ROOM_MT "neffos.room"

enum { UV_CONN = 1, UV_NAME = 2 };

void lns_push_at(lua_State *L, int conn_idx, int name_idx)
{
    conn_idx = lua_absindex(L, conn_idx);
    name_idx = lua_absindex(L, name_idx);
    lconn_push_ns_cache(L, conn_idx);
    lua_pushvalue(L, name_idx);
    if (lua_rawget(L, -2) == LUA_TUSERDATA) {
        lua_remove(L, -2);
        return;
    }
    lua_pop(L, 1);
    lua_newuserdatauv(L, 0, 2);
    luaL_setmetatable(L, NS_MT);
    lua_pushvalue(L, conn_idx);
    lua_setiuservalue(L, -2, UV_CONN);
    lua_pushvalue(L, name_idx);
    lua_setiuservalue(L, -2, UV_NAME);
    lua_pushvalue(L, name_idx);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);   /* cache[name] = ns */
    lua_remove(L, -2);
}

void lns_push(lua_State *L, int conn_idx, nf_slice name)
{
    conn_idx = lua_absindex(L, conn_idx);
    lpush_slice(L, name);
    lns_push_at(L, conn_idx, -1);
    lua_remove(L, -2);   /* the name */
}

nf_conn *lns_test_conn(lua_State *L, int idx)
{
    if (!luaL_testudata(L, idx, NS_MT))
        return NULL;
    lua_getiuservalue(L, idx, UV_CONN);
    nf_conn *c = lconn_test(L, -1);
    lua_pop(L, 1);
    return c;
}

bool lns_parts(lua_State *L, int idx, nf_conn **c, nf_slice *name)
{
    if (!luaL_testudata(L, idx, NS_MT))
        return false;
    if (c) {
        lua_getiuservalue(L, idx, UV_CONN);
        *c = lconn_test(L, -1);
        lua_pop(L, 1);
    }
    if (name) {
        lua_getiuservalue(L, idx, UV_NAME);
        *name = lslice(L, -1);   /* anchored by the userdata */
        lua_pop(L, 1);
    }
    return true;
}

/* The ns object at idx: its connection (NULL if gone), name, and the live
 * membership (NULL if the namespace is not connected now). */
typedef struct nsref {
    nf_conn *c;
    nf_slice name;
    nf_nsconn *nc;
} nsref;

static nsref ns_check(lua_State *L, int idx)
{
    nsref n = { NULL, NF_SLICE_EMPTY, NULL };
    luaL_checkudata(L, idx, NS_MT);
    lua_getiuservalue(L, idx, UV_CONN);
    n.c = lconn_test(L, -1);
    lua_pop(L, 1);
    lua_getiuservalue(L, idx, UV_NAME);
    n.name = lslice(L, -1);   /* anchored by the userdata */
    lua_pop(L, 1);
    if (n.c && !nf_conn_is_closed(n.c))
        n.nc = nf_conn_namespace(n.c, n.name);
    return n;
}

static int push_write_closed(lua_State *L)
{
    lua_pushnil(L);
    lua_pushliteral(L, NF_ERR_WRITE);
    return 2;
}

/* Pushes (T) the ns object of (w->c, w->ns). */
static void push_ns_of(lua_State *T, lwait *w)
{
    lconn_push(T, w->c);
    lns_push(T, -1, w->ns);
    lua_remove(T, -2);
}

/* ---- emit, ask, broadcast ------------------------------------------------------ */

/* The options each sending method knows (docs/lua-api.md, "Conventions"). */
static const char *const EMIT_OPTS[] = { "binary", NULL };
static const char *const ASK_OPTS[] = { "binary", "timeout", NULL };
static const char *const BROADCAST_OPTS[] = { "binary", "except", "to", "room", NULL };
static const char *const ROOM_BROADCAST_OPTS[] = { "binary", "except", "to", NULL };

/* ns:emit / room:emit (event, body [, { binary }]): true, or nil, "write
 * closed" (connection closed, namespace disconnected, queue full). */
static int emit(lua_State *L, nf_slice room, const char *what)
{
    nsref n = ns_check(L, 1);
    nf_slice event = lcheck_slice(L, 2);
    lopts_check(L, 4, what, EMIT_OPTS);
    bool binary = lopts_bool(L, 4, "binary");
    nf_slice body;
    if (lcodec_body(L, 3, n.c ? nf_conn_endpoint(n.c) : NULL, &body, &binary) != 0)
        return 2;   /* nil, err: the table could not be encoded */
    if (!n.nc || nf_nsconn_emit(n.nc, room, event, body, binary) != 0)
        return push_write_closed(L);
    lua_pushboolean(L, 1);
    return 1;
}

static int ns_emit(lua_State *L) { return emit(L, NF_SLICE_EMPTY, "ns:emit"); }

/* ns:ask / room:ask (event, body [, { timeout, binary }]): the answer msg,
 * or nil, err. */
static int ask(lua_State *L, nf_slice room, const char *what)
{
    nsref n = ns_check(L, 1);
    nf_slice event = lcheck_slice(L, 2);
    lopts_check(L, 4, what, ASK_OPTS);
    unsigned timeout = lopts_timeout_ms(L, 4);
    bool binary = lopts_bool(L, 4, "binary");
    nf_slice body;
    if (lcodec_body(L, 3, n.c ? nf_conn_endpoint(n.c) : NULL, &body, NULL) != 0)
        return 2;
    if (!n.nc)
        return push_write_closed(L);
    lwait *w = lwait_begin(L, what, n.c, n.name, room);
    lrun *r = w->r;   /* w may be gone once the action completes */
    nf_nsconn_ask(n.nc, w->room, event, body, binary, timeout, lask_done, w);
    return lrun_wait(L, r);
}

static int ns_ask(lua_State *L) { return ask(L, NF_SLICE_EMPTY, "ns:ask"); }

/* ns:broadcast (event, body [, { binary, except, to, room }]) and
 * room:broadcast (the same without `room`): to every connection of this
 * namespace (or of one room of it, joined by this connection or not), this
 * one included unless `except` says otherwise; the number of local
 * receivers, or nil, err. */
static int broadcast(lua_State *L, const nf_slice *room, const char *what)
{
    nsref n = ns_check(L, 1);
    nf_broadcast b = { 0 };
    b.ns = n.name;
    b.event = lcheck_slice(L, 2);
    lopts_check(L, 4, what, room ? ROOM_BROADCAST_OPTS : BROADCAST_OPTS);
    b.room = room ? *room : lopts_string(L, 4, what, "room");   /* anchored on the stack */
    b.binary = lopts_bool(L, 4, "binary");
    if (lcodec_body(L, 3, n.c ? nf_conn_endpoint(n.c) : NULL, &b.body, &b.binary) != 0)
        return 2;   /* the encoded body stays anchored on the stack */
    b.to = lopts_string(L, 4, what, "to");   /* anchored on the stack */
    lopts_except(L, 4, what, &b);
    if (!n.c)   /* a kept ns whose connection is gone: no endpoint to broadcast on */
        return push_write_closed(L);
    if (nf_ns_check_names(nf_endpoint_host(nf_conn_endpoint(n.c)), b.ns, b.room, b.event) != 0) {
        lua_pushnil(L);
        lua_pushliteral(L, NF_ERR_NAME_TOO_LONG);
        return 2;
    }
    lua_pushinteger(L, (lua_Integer)nf_endpoint_broadcast(nf_conn_endpoint(n.c), &b));
    return 1;
}

static int ns_broadcast(lua_State *L) { return broadcast(L, NULL, "ns:broadcast"); }

/* ---- rooms ---------------------------------------------------------------------- */

static void join_done(void *ud, const char *err, size_t errlen)
{
    lwait *w = ud;
    lrun *r = w->r;
    lua_State *T = lrun_result_state(r);
    int n = 1;
    if (err) {
        n = lmsg_push_error(T, err, errlen);
    } else {
        push_ns_of(T, w);
        lroom_push(T, -1, w->room);
        lua_remove(T, -2);
    }
    lwait_free(w);
    lrun_deliver(r, n);
}

static int ns_join_room(lua_State *L)
{
    nsref n = ns_check(L, 1);
    nf_slice room = lcheck_slice(L, 2);
    if (room.len == 0)
        return luaL_argerror(L, 2, "room name must not be empty");
    if (!n.nc)
        return push_write_closed(L);
    if (nf_nsconn_in_room(n.nc, room)) {
        lroom_push(L, 1, room);
        return 1;
    }
    lwait *w = lwait_begin(L, "ns:join_room", n.c, n.name, room);
    lrun *r = w->r;   /* w may be gone once the action completes */
    nf_nsconn_join_room(n.nc, w->room, join_done, w);
    return lrun_wait(L, r);
}

static int ns_room(lua_State *L)
{
    nsref n = ns_check(L, 1);
    nf_slice room = lcheck_slice(L, 2);
    if (!n.nc || !nf_nsconn_in_room(n.nc, room))
        return 0;
    lroom_push(L, 1, room);
    return 1;
}

static int ns_rooms(lua_State *L)
{
    nsref n = ns_check(L, 1);
    lua_newtable(L);
    size_t cursor = 0;
    nf_slice room;
    int i = 0;
    while (n.nc && nf_nsconn_room_next(n.nc, &cursor, &room)) {
        lroom_push(L, 1, room);
        lua_rawseti(L, -2, ++i);
    }
    return 1;
}

/* Leaves one room, or (leave_all) every room one after the other: each
 * completion starts the next leave. */
static void leave_next(lwait *w, bool all);

static void leave_done_common(void *ud, const char *err, size_t errlen, bool all)
{
    lwait *w = ud;
    lrun *r = w->r;
    if (err || !all) {
        lua_State *T = lrun_result_state(r);
        int n = 1;
        if (err) n = lmsg_push_error(T, err, errlen);
        else lua_pushboolean(T, 1);
        lwait_free(w);
        lrun_deliver(r, n);
        return;
    }
    leave_next(w, true);
}

static void leave_one_done(void *ud, const char *err, size_t errlen) { leave_done_common(ud, err, errlen, false); }
static void leave_all_done(void *ud, const char *err, size_t errlen) { leave_done_common(ud, err, errlen, true); }

static void leave_next(lwait *w, bool all)
{
    nf_nsconn *nc = w->c && !nf_conn_is_closed(w->c) ? nf_conn_namespace(w->c, w->ns) : NULL;
    size_t cursor = 0;
    nf_slice room;
    if (!nc || !nf_nsconn_room_next(nc, &cursor, &room)) {
        lrun *r = w->r;
        lua_pushboolean(lrun_result_state(r), 1);
        lwait_free(w);
        lrun_deliver(r, 1);
        return;
    }
    /* The room name belongs to the core and goes away with the room: copy. */
    lwait *next = lwait_new(w->r, w->c, w->ns, room);
    lrun *r = w->r;
    lwait_free(w);
    if (!next) {
        lua_State *T = lrun_result_state(r);
        lrun_deliver(r, lmsg_push_error(T, "out of memory", 13));
        return;
    }
    nf_nsconn_leave_room(nc, next->room, all ? leave_all_done : leave_one_done, next);
}

static int ns_leave_all(lua_State *L)
{
    nsref n = ns_check(L, 1);
    size_t cursor = 0;
    nf_slice room;
    if (!n.nc || !nf_nsconn_room_next(n.nc, &cursor, &room)) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lwait *w = lwait_begin(L, "ns:leave_all", n.c, n.name, NF_SLICE_EMPTY);
    lrun *r = w->r;   /* w may be gone once the action completes */
    leave_next(w, true);
    return lrun_wait(L, r);
}

static void disconnect_done(void *ud, const char *err, size_t errlen)
{
    lwait *w = ud;
    lrun *r = w->r;
    lua_State *T = lrun_result_state(r);
    int n = 1;
    if (err) n = lmsg_push_error(T, err, errlen);
    else lua_pushboolean(T, 1);
    lwait_free(w);
    lrun_deliver(r, n);
}

static int ns_disconnect(lua_State *L)
{
    nsref n = ns_check(L, 1);
    if (!n.nc) {   /* not connected: nothing to do (as the protocol's reply) */
        lua_pushboolean(L, 1);
        return 1;
    }
    lwait *w = lwait_begin(L, "ns:disconnect", n.c, n.name, NF_SLICE_EMPTY);
    lrun *r = w->r;   /* w may be gone once the action completes */
    nf_nsconn_disconnect(n.nc, disconnect_done, w);
    return lrun_wait(L, r);
}

/* ---- fields ---------------------------------------------------------------------- */

static int ns_index(lua_State *L)
{
    luaL_getmetafield(L, 1, "methods");
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL)
        return 1;
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
    if (!k)
        return 0;
    if (strcmp(k, "namespace") == 0) {
        lua_getiuservalue(L, 1, UV_NAME);
        return 1;
    }
    if (strcmp(k, "conn") == 0) {
        lua_getiuservalue(L, 1, UV_CONN);
        return 1;
    }
    nsref n = ns_check(L, 1);
    if (strcmp(k, "id") == 0 && n.c) {
        lpush_slice(L, nf_conn_id(n.c));
        return 1;
    }
    if (strcmp(k, "server") == 0 && n.c) {
        lserver_push(L, nf_conn_endpoint(n.c));
        return 1;
    }
    return 0;
}

static int ns_is_connected(lua_State *L)
{
    lua_pushboolean(L, ns_check(L, 1).nc != NULL);
    return 1;
}

static int ns_tostring(lua_State *L)
{
    nsref n = ns_check(L, 1);
    lua_pushliteral(L, "ns(");
    lpush_slice(L, n.name);
    lua_pushliteral(L, ")");
    lua_concat(L, 3);
    return 1;
}

/* ---- room objects -------------------------------------------------------------------- */

void lroom_push(lua_State *L, int ns_idx, nf_slice room)
{
    ns_idx = lua_absindex(L, ns_idx);
    lua_newuserdatauv(L, 0, 2);
    luaL_setmetatable(L, ROOM_MT);
    lua_pushvalue(L, ns_idx);
    lua_setiuservalue(L, -2, 1);
    lpush_slice(L, room);
    lua_setiuservalue(L, -2, 2);
}

bool lroom_parts(lua_State *L, int idx, nf_conn **c, nf_slice *ns, nf_slice *room)
{
    if (!luaL_testudata(L, idx, ROOM_MT))
        return false;
    idx = lua_absindex(L, idx);
    lua_getiuservalue(L, idx, 1);
    bool ok = lns_parts(L, -1, c, ns);   /* the name stays anchored by the ns object */
    lua_pop(L, 1);
    if (room) {
        lua_getiuservalue(L, idx, 2);
        *room = lslice(L, -1);
        lua_pop(L, 1);
    }
    return ok;
}

/* Room methods run as ns methods: index 1 becomes the ns object and the
 * room name is put at index `at` (the stack anchors it). */
static nf_slice room_to_ns(lua_State *L, int at)
{
    luaL_checkudata(L, 1, ROOM_MT);
    lua_settop(L, at - 1);
    lua_getiuservalue(L, 1, 2);   /* at: name */
    lua_getiuservalue(L, 1, 1);
    lua_replace(L, 1);            /* 1: ns */
    return lslice(L, at);
}

static int room_emit(lua_State *L) { nf_slice room = room_to_ns(L, 5); return emit(L, room, "room:emit"); }
static int room_ask(lua_State *L) { nf_slice room = room_to_ns(L, 5); return ask(L, room, "room:ask"); }
static int room_broadcast(lua_State *L)
{
    nf_slice room = room_to_ns(L, 5);
    return broadcast(L, &room, "room:broadcast");
}

static int room_leave(lua_State *L)
{
    nf_slice room = room_to_ns(L, 2);
    nsref n = ns_check(L, 1);
    if (!n.nc || !nf_nsconn_in_room(n.nc, room)) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lwait *w = lwait_begin(L, "room:leave", n.c, n.name, room);
    lrun *r = w->r;   /* w may be gone once the action completes */
    nf_nsconn_leave_room(n.nc, w->room, leave_one_done, w);
    return lrun_wait(L, r);
}

static int room_index(lua_State *L)
{
    luaL_getmetafield(L, 1, "methods");
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL)
        return 1;
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
    if (k && strcmp(k, "name") == 0) {
        lua_getiuservalue(L, 1, 2);
        return 1;
    }
    if (k && strcmp(k, "ns") == 0) {
        lua_getiuservalue(L, 1, 1);
        return 1;
    }
    return 0;
}

static int room_eq(lua_State *L)
{
    if (!luaL_testudata(L, 1, ROOM_MT) || !luaL_testudata(L, 2, ROOM_MT)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_getiuservalue(L, 1, 1);
    lua_getiuservalue(L, 2, 1);
    lua_getiuservalue(L, 1, 2);
    lua_getiuservalue(L, 2, 2);
    lua_pushboolean(L, lua_rawequal(L, -4, -3) && lua_rawequal(L, -2, -1));
    return 1;
}

static void new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction index)
{
    luaL_newmetatable(L, name);
    lsb_lock_metatable(L, -1);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "methods");
    lua_pushcfunction(L, index);
    lua_setfield(L, -2, "__index");
}

void lns_open(lua_State *L)
{
    static const luaL_Reg ns_methods[] = {
        { "emit", ns_emit },
        { "ask", ns_ask },
        { "join_room", ns_join_room },
        { "room", ns_room },
        { "rooms", ns_rooms },
        { "leave_all", ns_leave_all },
        { "disconnect", ns_disconnect },
        { "broadcast", ns_broadcast },
        { "is_connected", ns_is_connected },
        { NULL, NULL },
    };
    static const luaL_Reg room_methods[] = {
        { "emit", room_emit },
        { "ask", room_ask },
        { "broadcast", room_broadcast },
        { "leave", room_leave },
        { NULL, NULL },
    };
    new_class(L, NS_MT, ns_methods, ns_index);
    lua_pushcfunction(L, ns_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
    new_class(L, ROOM_MT, room_methods, room_index);
    lua_pushcfunction(L, room_eq);
    lua_setfield(L, -2, "__eq");
    lua_pop(L, 1);
}
