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
 * handler that catches the first one with pcall cannot go on. */
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
    if (a->sb.budget < 0)
        luaL_error(L, "instruction limit exceeded (%I instructions without waiting)",
                   (lua_Integer)a->sb.limit);
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
