/* lua_timer.c - neffos.after / neffos.every / neffos.sleep on the loop.
 *
 * A timer is a userdata holding a libevent timer and a reference to its
 * function. While armed it is anchored in the registry (so a timer nobody
 * keeps still fires) and linked in a->timers. Each firing starts a new run,
 * so the function may wait like any handler.
 *
 * Timers made while the app's top level runs belong to that version: a
 * reload cancels them (the new top level makes its own), and so does a
 * failed load. Timers made by handlers belong to no version and live on. */
#include <event2/event.h>
#include <math.h>
#include <stdlib.h>

#include "log.h"
#include "lua_internal.h"

#define TIMER_MT "neffos.timer"

struct ltimer {
    nf_lua_app *app;
    struct event *ev;
    int fn_ref;
    int self_ref;      /* anchor while armed */
    bool repeat;
    unsigned version;  /* owner version, 0 = none */
    ltimer *prev, *next;
};

static struct timeval to_tv(double seconds)
{
    struct timeval tv;
    tv.tv_sec = (time_t)seconds;
    tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
    return tv;
}

static void unlink_timer(ltimer *t)
{
    nf_lua_app *a = t->app;
    if (t->prev) t->prev->next = t->next;
    else if (a->timers == t) a->timers = t->next;
    if (t->next) t->next->prev = t->prev;
    t->prev = t->next = NULL;
}

/* Disarms: the timer no longer fires and is no longer anchored. */
static void disarm(ltimer *t)
{
    lua_State *L = t->app->L;
    if (t->self_ref == LUA_NOREF)
        return;
    event_del(t->ev);
    unlink_timer(t);
    luaL_unref(L, LUA_REGISTRYINDEX, t->fn_ref);
    t->fn_ref = LUA_NOREF;
    int self = t->self_ref;
    t->self_ref = LUA_NOREF;
    luaL_unref(L, LUA_REGISTRYINDEX, self);   /* may make t collectable: last */
}

static void timer_fired(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    ltimer *t = ud;
    nf_lua_app *a = t->app;
    lua_rawgeti(a->L, LUA_REGISTRYINDEX, t->fn_ref);
    if (!t->repeat)
        disarm(t);   /* the run keeps the function */
    lrun_spawn(a, t->repeat ? "every" : "after");
}

int ltimer_new_lua(lua_State *L)
{
    nf_lua_app *a = lapp_of(L);
    double seconds = luaL_checknumber(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    bool repeat = lua_toboolean(L, 3);
    if (!(seconds >= 0) || seconds > 1e9)
        return luaL_argerror(L, 1, "seconds out of range");
    if (a->stopping)
        return luaL_error(L, "the server is stopping");

    ltimer *t = lua_newuserdatauv(L, sizeof *t, 0);
    t->app = a;
    t->fn_ref = t->self_ref = LUA_NOREF;
    t->prev = t->next = NULL;
    t->repeat = repeat;
    t->version = a->current ? 0 : a->loading;
    t->ev = event_new(a->base, -1, repeat ? EV_PERSIST : 0, timer_fired, t);
    if (!t->ev)
        return luaL_error(L, "cannot create a timer");
    luaL_setmetatable(L, TIMER_MT);
    struct timeval tv = to_tv(seconds);
    event_add(t->ev, &tv);
    lua_pushvalue(L, 2);
    t->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, -1);
    t->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    t->next = a->timers;
    if (a->timers)
        a->timers->prev = t;
    a->timers = t;
    return 1;
}

static int timer_cancel(lua_State *L)
{
    ltimer *t = luaL_checkudata(L, 1, TIMER_MT);
    disarm(t);
    return 0;
}

static int timer_gc(lua_State *L)
{
    ltimer *t = luaL_checkudata(L, 1, TIMER_MT);
    if (t->ev) {
        event_free(t->ev);
        t->ev = NULL;
    }
    return 0;
}

void ltimer_cancel_version(nf_lua_app *a, unsigned version)
{
    ltimer *t = a->timers, *next;
    for (; t; t = next) {
        next = t->next;
        if (t->version == version)
            disarm(t);
    }
}

void ltimer_cancel_all(nf_lua_app *a)
{
    while (a->timers)
        disarm(a->timers);
}

/* ---- neffos.sleep ---------------------------------------------------------------- */

static void sleep_done(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    lrun *r = ud;
    lrun_set_sleep(r, NULL);   /* frees the event */
    lrun_deliver(r, 0);
}

int ltimer_sleep_lua(lua_State *L)
{
    nf_lua_app *a = lapp_of(L);
    double seconds = luaL_checknumber(L, 1);
    if (!(seconds >= 0) || seconds > 1e9)
        return luaL_argerror(L, 1, "seconds out of range");
    lrun *r = lrun_begin_wait(L, "neffos.sleep");
    struct event *ev = evtimer_new(a->base, sleep_done, r);
    if (!ev) {
        lrun_cancel_wait(r);
        return luaL_error(L, "neffos.sleep: cannot create a timer");
    }
    struct timeval tv = to_tv(seconds);
    evtimer_add(ev, &tv);
    lrun_set_sleep(r, ev);
    return lrun_wait(L, r);
}

void ltimer_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "cancel", timer_cancel },
        { NULL, NULL },
    };
    luaL_newmetatable(L, TIMER_MT);
    lsb_lock_metatable(L, -1);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, timer_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
}
