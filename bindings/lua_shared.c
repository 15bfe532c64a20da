/* lua_shared.c - neffos.shared: the dictionary every worker of the process
 * shares (host/base/shdict.h), in Lua (docs/lua-api.md, "Workers").
 *
 *   neffos.shared:get(key)                    -> value | nil
 *   neffos.shared:set(key, value [, ttl])     -> true | nil, err
 *   neffos.shared:add(key, value [, ttl])     -> true | nil, "exists" | err
 *   neffos.shared:incr(key, by [, init [, ttl]]) -> number | nil, "not found" | "not a number" | err
 *   neffos.shared:delete(key)
 *   neffos.shared:keys([max])                 -> { key, ... }
 *   neffos.shared:flush_all()
 *   neffos.shared:capacity(), neffos.shared:used()   -> bytes
 * Values are strings, numbers and booleans; nil deletes. ttl in seconds
 * (fractions allowed; nil or 0 = never expires). Errors: "no memory" (the
 * dictionary is full: --shared-dict-bytes), "key too long", "empty key". */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "lua_internal.h"
#include "shdict.h"

#define SHARED_MT "neffos.shared"

static nf_shdict *check_dict(lua_State *L)
{
    nf_shdict **p = luaL_checkudata(L, 1, SHARED_MT);
    return *p;
}

static int push_err(lua_State *L, int rc)
{
    lua_pushnil(L);
    switch (rc) {
    case NF_ENOBUFS: lua_pushliteral(L, "no memory"); break;
    case NF_ENAMETOOLONG: lua_pushliteral(L, "key too long"); break;
    case NF_EINVAL: lua_pushliteral(L, "empty key"); break;
    case NF_EEXIST: lua_pushliteral(L, "exists"); break;
    case NF_ENOENT: lua_pushliteral(L, "not found"); break;
    default: lua_pushliteral(L, "out of memory"); break;
    }
    return 2;
}

static nf_slice check_key(lua_State *L, int idx)
{
    size_t n;
    const char *s = luaL_checklstring(L, idx, &n);
    return nf_slice_of(s, n);
}

static void push_number(lua_State *L, double n)
{
    /* Integers stay integers (counters) while a double holds them exactly. */
    if (n == floor(n) && fabs(n) < 9007199254740992.0)
        lua_pushinteger(L, (lua_Integer)n);
    else
        lua_pushnumber(L, n);
}

static nf_shval check_value(lua_State *L, int idx)
{
    nf_shval v = { .type = NF_SHVAL_NIL };
    switch (lua_type(L, idx)) {
    case LUA_TNONE:
    case LUA_TNIL: break;
    case LUA_TBOOLEAN: v.type = NF_SHVAL_BOOLEAN; v.b = lua_toboolean(L, idx); break;
    case LUA_TNUMBER: v.type = NF_SHVAL_NUMBER; v.n = (double)lua_tonumber(L, idx); break;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        v.type = NF_SHVAL_STRING;
        v.s = nf_slice_of(s, n);
        break;
    }
    default:
        luaL_argerror(L, idx, "a string, number, boolean or nil");
    }
    return v;
}

static int shared_get(lua_State *L)
{
    nf_shdict *d = check_dict(L);
    nf_slice key = check_key(L, 2);
    nf_lua_app *a = lapp_of(L);
    nf_shval v;
    /* The app's scratch buffer: a Lua error in the push leaks nothing. */
    int rc = nf_shdict_get(d, key, &v, &a->shared_buf, &a->shared_cap);
    if (rc != 0)
        return push_err(L, rc);
    switch (v.type) {
    case NF_SHVAL_BOOLEAN: lua_pushboolean(L, v.b); break;
    case NF_SHVAL_NUMBER: push_number(L, v.n); break;
    case NF_SHVAL_STRING: lua_pushlstring(L, v.s.ptr, v.s.len); break;
    default: lua_pushnil(L); break;
    }
    return 1;
}

static int set_common(lua_State *L, bool only_new)
{
    nf_shdict *d = check_dict(L);
    nf_slice key = check_key(L, 2);
    nf_shval v = check_value(L, 3);
    unsigned ttl = lopt_ms(L, 4);
    int rc = only_new ? nf_shdict_add(d, key, &v, ttl) : nf_shdict_set(d, key, &v, ttl);
    if (rc != 0)
        return push_err(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

static int shared_set(lua_State *L) { return set_common(L, false); }
static int shared_add(lua_State *L) { return set_common(L, true); }

static int shared_incr(lua_State *L)
{
    nf_shdict *d = check_dict(L);
    nf_slice key = check_key(L, 2);
    double by = (double)luaL_checknumber(L, 3);
    bool has_init = !lua_isnoneornil(L, 4);
    double init = has_init ? (double)luaL_checknumber(L, 4) : 0;
    unsigned ttl = lopt_ms(L, 5);
    double out = 0;
    int rc = nf_shdict_incr(d, key, by, has_init, init, ttl, &out);
    if (rc == NF_EINVAL && key.len) {
        lua_pushnil(L);
        lua_pushliteral(L, "not a number");
        return 2;
    }
    if (rc != 0)
        return push_err(L, rc);
    push_number(L, out);
    return 1;
}

static int shared_delete(lua_State *L)
{
    nf_shdict *d = check_dict(L);
    nf_shdict_delete(d, check_key(L, 2));
    return 0;
}

typedef struct keylist {
    char **keys;
    size_t *lens;
    size_t n, cap;
    bool failed;
} keylist;

/* Under the dictionary's lock: C copies only, no Lua (a Lua error there
 * would leave the lock held). */
static void collect_key(void *ud, nf_slice key)
{
    keylist *kl = ud;
    if (kl->failed)
        return;
    if (kl->n == kl->cap) {
        size_t cap = kl->cap ? kl->cap * 2 : 16;
        char **k = realloc(kl->keys, cap * sizeof *k);
        if (k)
            kl->keys = k;
        size_t *l = k ? realloc(kl->lens, cap * sizeof *l) : NULL;
        if (l)
            kl->lens = l;
        if (!k || !l) {
            kl->failed = true;
            return;
        }
        kl->cap = cap;
    }
    char *copy = malloc(key.len ? key.len : 1);
    if (copy == NULL) {
        kl->failed = true;
        return;
    }
    memcpy(copy, key.ptr, key.len);
    kl->keys[kl->n] = copy;
    kl->lens[kl->n++] = key.len;
}

static int shared_keys(lua_State *L)
{
    nf_shdict *d = check_dict(L);
    lua_Integer max = luaL_optinteger(L, 2, 1024);
    keylist kl = { 0 };
    nf_shdict_keys(d, max > 0 ? (size_t)max : 0, collect_key, &kl);
    /* Everything copied: from here a Lua error may only leak, so make the
     * table first, then fill it. */
    lua_createtable(L, kl.failed ? 0 : (int)kl.n, 0);
    for (size_t i = 0; i < kl.n; i++) {
        if (!kl.failed) {
            lua_pushlstring(L, kl.keys[i], kl.lens[i]);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        free(kl.keys[i]);
    }
    free(kl.keys);
    free(kl.lens);
    if (kl.failed)
        return push_err(L, NF_ENOMEM);
    return 1;
}

static int shared_flush_all(lua_State *L)
{
    nf_shdict_flush_all(check_dict(L));
    return 0;
}

static int shared_capacity(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)nf_shdict_capacity(check_dict(L)));
    return 1;
}

static int shared_used(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)nf_shdict_used(check_dict(L)));
    return 1;
}

static int shared_tostring(lua_State *L)
{
    nf_shdict *d = check_dict(L);
    lua_pushfstring(L, "neffos.shared (%d of %d bytes)", (int)nf_shdict_used(d), (int)nf_shdict_capacity(d));
    return 1;
}

void lshared_push(lua_State *L, nf_shdict *d)
{
    if (d == NULL) {
        lua_pushnil(L);
        return;
    }
    nf_shdict **p = lua_newuserdatauv(L, sizeof *p, 0);
    *p = d;
    if (luaL_newmetatable(L, SHARED_MT)) {
        static const luaL_Reg methods[] = {
            { "get", shared_get }, { "set", shared_set }, { "add", shared_add }, { "incr", shared_incr },
            { "delete", shared_delete }, { "keys", shared_keys }, { "flush_all", shared_flush_all },
            { "capacity", shared_capacity }, { "used", shared_used }, { NULL, NULL },
        };
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, shared_tostring);
        lua_setfield(L, -2, "__tostring");
        lsb_lock_metatable(L, -1);
    }
    lua_setmetatable(L, -2);
}
