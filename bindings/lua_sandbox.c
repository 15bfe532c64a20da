/* lua_sandbox.c - the two resource guards of app code (issue 8.3).
 *
 * Memory: the Lua state allocates through lsb_alloc, which counts bytes and
 * refuses growth past the cap while app code runs (Lua then raises "not
 * enough memory" inside that handler). Outside app code the host itself
 * pushes values on Lua stacks in unprotected context, where a refusal would
 * panic; there the cap is not applied.
 *
 * Time: a count hook on every coroutine that runs app code takes `step`
 * instructions off the budget of the current slice (from a resume to the
 * next wait). Past the budget every hook call raises an error, so even a
 * handler that catches the first one with pcall cannot go on. Long C calls
 * that do work proportional to their input's shape rather than its size
 * (pattern matching, lua_pattern.c) charge the same budget (lsb_charge).
 *
 * Code that would run outside these guards is kept out instead:
 *  - finalizers: apps cannot set __gc (scripts/neffos.lua) and the host's
 *    own metatables are locked (lsb_lock_metatable), since Lua runs __gc
 *    with hooks off at whatever moment the collector picks;
 *  - __close handlers: a handler runs under a pcall inside its coroutine
 *    (lua_run.c), so they run during the unwind, inside the slice; a run
 *    abandoned while it waits is closed under a fresh slice.
 * What still cannot be interrupted (one long C call) is the watchdog's. */
#include <stdlib.h>

#include "lua_internal.h"

void *lsb_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    lsandbox *sb = ud;
    size_t old = ptr ? osize : 0;

    if (nsize == 0) {
        free(ptr);
        sb->used -= old;
        return NULL;
    }
    if (sb->cap && sb->enforce > 0 && nsize > old && sb->used - old + nsize > sb->cap)
        return NULL;
    void *p = realloc(ptr, nsize);
    if (p)
        sb->used = sb->used - old + nsize;
    return p;
}

static void budget_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    nf_lua_app *a = lapp_of(L);
    if (a->sb.limit == 0 || a->sb.enforce <= 0)
        return;
    a->sb.budget -= a->sb.step;
    if (a->sb.budget < 0) {
        a->sb.overran = true;
        luaL_error(L, "instruction limit exceeded (%I instructions without waiting)",
                   (lua_Integer)a->sb.limit);
    }
}

void lsb_install_hook(nf_lua_app *a, lua_State *co)
{
    if (a->sb.limit)
        lua_sethook(co, budget_hook, LUA_MASKCOUNT, a->sb.step);
}

lsb_saved lsb_enter(nf_lua_app *a)
{
    lsb_saved s = { a->sb.enforce, a->sb.budget };
    a->sb.enforce++;
    a->sb.budget = (int64_t)a->sb.limit;
    return s;
}

void lsb_leave(nf_lua_app *a, lsb_saved s)
{
    a->sb.enforce = s.enforce;
    a->sb.budget = s.budget;
}

int lsb_host_enter(nf_lua_app *a)
{
    int saved = a->sb.enforce;
    a->sb.enforce = 0;
    return saved;
}

void lsb_host_leave(nf_lua_app *a, int saved)
{
    a->sb.enforce = saved;
}

void lsb_charge(lua_State *L, int64_t n)
{
    nf_lua_app *a = lapp_of(L);
    if (a->sb.limit == 0 || a->sb.enforce <= 0)
        return;
    a->sb.budget -= n;
    if (a->sb.budget < 0) {
        a->sb.overran = true;
        luaL_error(L, "instruction limit exceeded (%I instructions without waiting)", (lua_Integer)a->sb.limit);
    }
}

void lsb_lock_metatable(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    lua_pushliteral(L, "locked");
    lua_setfield(L, idx, "__metatable");
}
