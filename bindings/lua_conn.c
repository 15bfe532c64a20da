/* lua_conn.c - the `conn` object: one userdata per connection.
 *
 * The userdata is made on first use and anchored in the registry; the
 * connection's app-data slot holds that registry reference. When the core
 * frees the connection (conn_freed) the userdata forgets its pointer and the
 * anchor goes: Lua code that kept it sees a closed connection.
 *
 * User values: 1 = the per-connection store, 2 = ns objects by name (so that
 * an ns is the same value every time), 3 = the request table (lazy). */
#include <ctype.h>
#include <stdint.h>
#include <string.h>

#include "log.h"
#include "lua_internal.h"

#define CONN_MT "neffos.conn"
#define HEADERS_MT "neffos.headers"

typedef struct lconn {
    nf_conn *c;   /* NULL once the connection is freed */
} lconn;

enum { UV_STORE = 1, UV_NS = 2, UV_REQUEST = 3 };

void lconn_push(lua_State *L, nf_conn *c)
{
    void *slot = nf_conn_app_data(c);
    if (slot) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, (int)(intptr_t)slot);
        return;
    }
    lconn *u = lua_newuserdatauv(L, sizeof *u, 3);
    u->c = c;
    luaL_setmetatable(L, CONN_MT);
    lua_newtable(L);
    lua_setiuservalue(L, -2, UV_STORE);
    lua_newtable(L);
    lua_setiuservalue(L, -2, UV_NS);
    lua_pushvalue(L, -1);
    nf_conn_set_app_data(c, (void *)(intptr_t)luaL_ref(L, LUA_REGISTRYINDEX));
}

void lconn_freed(nf_lua_app *a, nf_conn *c)
{
    void *slot = nf_conn_app_data(c);
    if (!slot)
        return;
    lua_State *L = a->L;
    int ref = (int)(intptr_t)slot;
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    lconn *u = luaL_testudata(L, -1, CONN_MT);
    if (u)
        u->c = NULL;
    lua_pop(L, 1);
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    nf_conn_set_app_data(c, NULL);
}

bool lconn_is(lua_State *L, int idx) { return luaL_testudata(L, idx, CONN_MT) != NULL; }

nf_conn *lconn_check(lua_State *L, int idx)
{
    return ((lconn *)luaL_checkudata(L, idx, CONN_MT))->c;
}

nf_conn *lconn_test(lua_State *L, int idx)
{
    lconn *u = luaL_testudata(L, idx, CONN_MT);
    return u ? u->c : NULL;
}

/* An open connection, or NULL (freed or closing). */
static nf_conn *open_conn(lua_State *L)
{
    nf_conn *c = lconn_check(L, 1);
    return c && !nf_conn_is_closed(c) ? c : NULL;
}

void lconn_push_ns_cache(lua_State *L, int conn_idx)
{
    lua_getiuservalue(L, conn_idx, UV_NS);
}

/* ---- the request ---------------------------------------------------------- */

/* headers[name]: names are stored lower-case, lookups fold the key. */
static int headers_index(lua_State *L)
{
    size_t n;
    const char *k = lua_tolstring(L, 2, &n);
    if (!k || lua_type(L, 2) != LUA_TSTRING)
        return 0;
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, n);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)tolower((unsigned char)k[i]);
    luaL_pushresultsize(&b, n);
    lua_rawget(L, 1);
    return 1;
}

static void set_field(lua_State *L, const char *k, nf_slice v)
{
    lpush_slice(L, v);
    lua_setfield(L, -2, k);
}

void lconn_push_request(lua_State *L, nf_conn *c, const nf_request *r)
{
    lua_createtable(L, 0, 6);
    if (r) {
        set_field(L, "method", nf_request_method(r));
        set_field(L, "path", nf_request_path(r));
        set_field(L, "query", nf_request_query(r));
    }
    lua_pushstring(L, nf_conn_remote_addr(c));
    lua_setfield(L, -2, "remote_addr");

    lua_newtable(L);
    size_t cursor = 0;
    nf_slice name, value;
    char lower[256];
    while (r && nf_request_header_next(r, &cursor, &name, &value)) {
        if (name.len > sizeof lower)
            continue;
        for (size_t i = 0; i < name.len; i++)
            lower[i] = (char)tolower((unsigned char)name.ptr[i]);
        lua_pushlstring(L, lower, name.len);
        if (lua_rawget(L, -2) != LUA_TNIL) {   /* keep the first value, as Go's Header.Get */
            lua_pop(L, 1);
            continue;
        }
        lua_pop(L, 1);
        lua_pushlstring(L, lower, name.len);
        lpush_slice(L, value);
        lua_rawset(L, -3);
    }
    luaL_setmetatable(L, HEADERS_MT);
    lua_setfield(L, -2, "headers");
}

/* ---- fields ------------------------------------------------------------------ */

static int conn_field(lua_State *L, nf_conn *c, const char *k)
{
    if (strcmp(k, "id") == 0) {
        if (!c) return 0;
        lpush_slice(L, nf_conn_id(c));
        return 1;
    }
    if (strcmp(k, "server") == 0) {
        if (!c) return 0;
        lserver_push(L, nf_conn_endpoint(c));
        return 1;
    }
    if (strcmp(k, "request") == 0) {
        if (lua_getiuservalue(L, 1, UV_REQUEST) == LUA_TTABLE || !c)
            return 1;
        lua_pop(L, 1);
        lconn_push_request(L, c, nf_conn_request(c));
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, 1, UV_REQUEST);
        return 1;
    }
    if (strcmp(k, "reconnect_tries") == 0) {
        lua_pushinteger(L, c ? nf_conn_reconnect_tries(c) : 0);
        return 1;
    }
    if (strcmp(k, "was_reconnected") == 0) {   /* Go's Conn.WasReconnected (docs/protocol.md §3.3) */
        lua_pushboolean(L, c && nf_conn_reconnect_tries(c) > 0);
        return 1;
    }
    return 0;
}

static int conn_index(lua_State *L)
{
    nf_conn *c = lconn_check(L, 1);
    luaL_getmetafield(L, 1, "methods");
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL)
        return 1;
    const char *k = lua_tostring(L, 2);
    if (!k || lua_type(L, 2) != LUA_TSTRING)
        return 0;
    return conn_field(L, c, k);
}

static int conn_tostring(lua_State *L)
{
    nf_conn *c = lconn_check(L, 1);
    if (c) {
        nf_slice id = nf_conn_id(c);
        lua_pushfstring(L, "conn(%s)", lua_pushlstring(L, id.ptr, id.len));
    } else {
        lua_pushliteral(L, "conn(closed)");
    }
    return 1;
}

/* ---- the store ----------------------------------------------------------------- */

static int conn_set(lua_State *L)
{
    lconn_check(L, 1);
    luaL_checkany(L, 2);
    if (lua_isnil(L, 2))
        return luaL_argerror(L, 2, "key must not be nil");
    lua_settop(L, 3);
    lua_getiuservalue(L, 1, UV_STORE);
    lua_insert(L, 2);
    lua_rawset(L, 2);
    return 0;
}

static int conn_get(lua_State *L)
{
    lconn_check(L, 1);
    luaL_checkany(L, 2);
    lua_getiuservalue(L, 1, UV_STORE);
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
}

static int add_to(lua_State *L, lua_Number sign)
{
    lconn_check(L, 1);
    luaL_checkany(L, 2);
    if (lua_isnil(L, 2))
        return luaL_argerror(L, 2, "key must not be nil");
    lua_settop(L, 3);
    lua_getiuservalue(L, 1, UV_STORE);          /* 4 */
    if (lua_isnil(L, 3)) {
        lua_pushinteger(L, 1);
        lua_replace(L, 3);
    }
    luaL_checknumber(L, 3);
    lua_pushvalue(L, 2);
    int t = lua_rawget(L, 4);                  /* 5: current */
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushinteger(L, 0);
    } else if (t != LUA_TNUMBER) {
        return luaL_error(L, "conn: value of key '%s' is a %s, not a number", luaL_tolstring(L, 2, NULL),
                          lua_typename(L, t));
    }
    lua_pushvalue(L, 3);
    if (sign < 0)
        lua_arith(L, LUA_OPUNM);
    lua_arith(L, LUA_OPADD);                   /* 5: current +/- by */
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 5);
    lua_rawset(L, 4);
    return 1;
}

static int conn_increment(lua_State *L) { return add_to(L, 1); }
static int conn_decrement(lua_State *L) { return add_to(L, -1); }

/* ---- namespaces ---------------------------------------------------------------- */

static int conn_namespace(lua_State *L)
{
    nf_conn *c = lconn_check(L, 1);
    nf_slice name = lcheck_slice(L, 2);
    if (!c || !nf_conn_namespace(c, name))
        return 0;
    lns_push(L, 1, name);
    return 1;
}

static int conn_namespaces(lua_State *L)
{
    nf_conn *c = lconn_check(L, 1);
    lua_newtable(L);
    int i = 0;
    for (nf_nsconn *nc = c ? nf_conn_namespace_next(c, NULL) : NULL; nc; nc = nf_conn_namespace_next(c, nc)) {
        lns_push(L, 1, nf_nsconn_name(nc));
        lua_rawseti(L, -2, ++i);
    }
    return 1;
}

static void connect_done(void *ud, const char *err, size_t errlen)
{
    lwait *w = ud;
    lrun *r = w->r;
    lua_State *T = lrun_result_state(r);
    int n;
    if (err) {
        n = lmsg_push_error(T, err, errlen);
    } else {
        lconn_push(T, w->c);
        lns_push(T, -1, w->ns);
        lua_remove(T, -2);
        n = 1;
    }
    lwait_free(w);
    lrun_deliver(r, n);
}

static int conn_connect(lua_State *L)
{
    nf_conn *c = open_conn(L);
    nf_slice name = lcheck_slice(L, 2);
    nf_lua_app *a = lapp_of(L);
    if (!c) {
        lua_pushnil(L);
        lua_pushliteral(L, NF_ERR_WRITE);
        return 2;
    }
    if (nf_conn_namespace(c, name)) {
        lns_push(L, 1, name);
        return 1;
    }
    if (nf_ns_check_names(nf_endpoint_host(nf_conn_endpoint(c)), name, NF_SLICE_EMPTY, NF_SLICE_EMPTY) != 0) {
        lua_pushnil(L);   /* refused before anything holds it (the on_connect path has no callback) */
        lua_pushliteral(L, NF_ERR_NAME_TOO_LONG);
        return 2;
    }
    /* From on_connect of this very connection the core sends the request
     * right after the "A" frame: nothing to wait for (docs/lua-api.md). */
    nf_invocation *inv = lrun_current_invocation(a);
    if (inv && nf_invocation_kind_of(inv) == NF_INVOKE_CONNECT && nf_invocation_conn(inv) == c) {
        nf_conn_connect(c, name, NULL, NULL);
        lns_push(L, 1, name);
        return 1;
    }
    lwait *w = lwait_begin(L, "conn:connect", c, name, NF_SLICE_EMPTY);
    lrun *r = w->r;   /* w may be gone once the action completes */
    nf_conn_connect(c, w->ns, connect_done, w);
    return lrun_wait(L, r);
}

/* ---- the socket ---------------------------------------------------------------- */

/* Codes an endpoint may send (RFC 6455 7.4.1, 7.4.2): the defined ones
 * except 1004 (reserved), 1005, 1006 and 1015 (never sent: they stand for
 * "no code", "dropped" and "TLS failed" locally); the IANA-registered
 * 1012-1014; 3000-4999 for libraries and apps. 1016-2999 are reserved. */
static bool close_code_sendable(lua_Integer code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past
 * U+10FFFF. A close reason must be UTF-8 (RFC 6455 5.5.1). */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char b = s[i];
        size_t len;
        uint32_t cp, min;
        if (b < 0x80) { i++; continue; }
        if (b >= 0xC2 && b <= 0xDF) { len = 2; cp = b & 0x1F; min = 0x80; }
        else if (b >= 0xE0 && b <= 0xEF) { len = 3; cp = b & 0x0F; min = 0x800; }
        else if (b >= 0xF0 && b <= 0xF4) { len = 4; cp = b & 0x07; min = 0x10000; }
        else return false;
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

static int conn_close(lua_State *L)
{
    nf_conn *c = open_conn(L);
    lua_Integer code = luaL_optinteger(L, 2, 1000);
    nf_slice reason = lopt_slice(L, 3);
    if (!close_code_sendable(code))
        return luaL_argerror(L, 2, lua_pushfstring(L, "close code %I may not be sent (RFC 6455 7.4: "
                                                   "1000-1003, 1007-1014 or 3000-4999)", code));
    if (reason.len > 123)
        return luaL_argerror(L, 3, "close reason must be at most 123 bytes");
    if (!utf8_valid((const unsigned char *)reason.ptr, reason.len))
        return luaL_argerror(L, 3, "close reason must be UTF-8 (RFC 6455 5.5.1)");
    if (c)
        nf_conn_close(c, (uint16_t)code, reason);
    lua_pushboolean(L, 1);   /* closing a closed connection is what was asked */
    return 1;
}

/* conn:write(body [, { binary }]): one native frame, no neffos framing;
 * true, or nil, "write closed" (closed, or the outgoing queue is full). */
static int conn_write(lua_State *L)
{
    static const char *const known[] = { "binary", NULL };
    nf_conn *c = open_conn(L);
    nf_slice s = lcheck_slice(L, 2);
    lopts_check(L, 3, "conn:write", known);
    if (!c || nf_conn_write_raw(c, lopts_bool(L, 3, "binary"), s.ptr, s.len) != 0) {
        lua_pushnil(L);
        lua_pushliteral(L, NF_ERR_WRITE);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int conn_is_closed(lua_State *L)
{
    lua_pushboolean(L, open_conn(L) == NULL);
    return 1;
}

void lconn_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "set", conn_set },
        { "get", conn_get },
        { "increment", conn_increment },
        { "decrement", conn_decrement },
        { "namespace", conn_namespace },
        { "namespaces", conn_namespaces },
        { "connect", conn_connect },
        { "close", conn_close },
        { "write", conn_write },
        { "is_closed", conn_is_closed },
        { NULL, NULL },
    };
    luaL_newmetatable(L, CONN_MT);
    lsb_lock_metatable(L, -1);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "methods");
    lua_pushcfunction(L, conn_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, conn_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "conn");
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);

    luaL_newmetatable(L, HEADERS_MT);
    lsb_lock_metatable(L, -1);
    lua_pushcfunction(L, headers_index);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}
