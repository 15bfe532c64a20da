/* lua_invoke.c - nf_app_ops on the Lua side: which handler an event runs
 * (the serving description of its endpoint, then _OnAnyEvent), and starting
 * it in a run (lua_run.c) with its arguments. The result goes back to the
 * core through the run when it ends. */
#include <string.h>

#include "lua_internal.h"

/* Pushes the handler for (ns, event), the names strings at ns_at and
 * event_at, of ep's serving description, falling back to _OnAnyEvent.
 * Returns false (nothing pushed) when there is none. */
static bool push_handler(nf_lua_app *a, nf_endpoint *ep, int ns_at, int event_at)
{
    lua_State *L = a->L;
    int top = lua_gettop(L);

    lapp_push_desc(a, ep);
    if (lua_type(L, -1) != LUA_TTABLE || lapp_rawget_str(L, -1, "namespaces", 10) != LUA_TTABLE)
        goto none;
    lua_pushvalue(L, ns_at);
    if (lua_rawget(L, -2) != LUA_TTABLE)
        goto none;
    lua_pushvalue(L, event_at);
    if (lua_rawget(L, -2) != LUA_TFUNCTION) {
        lua_pop(L, 1);
        if (lapp_rawget_str(L, -1, NF_ON_ANY_EVENT, sizeof NF_ON_ANY_EVENT - 1) != LUA_TFUNCTION)
            goto none;
    }
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    return true;
none:
    lua_settop(L, top);
    return false;
}

bool linvoke_has_namespace(void *app, nf_endpoint *ep, nf_slice ns)
{
    nf_lua_app *a = app;
    lua_State *L = a->L;
    int top = lua_gettop(L);
    bool found = false;
    lapp_push_desc(a, ep);
    if (lua_type(L, -1) == LUA_TTABLE && lapp_rawget_str(L, -1, "namespaces", 10) == LUA_TTABLE)
        found = lapp_rawget_str(L, -1, ns.ptr, ns.len) == LUA_TTABLE;
    lua_settop(L, top);
    return found;
}

static void invoke(nf_lua_app *a, nf_invocation *inv)
{
    lua_State *L = a->L;
    int top = lua_gettop(L);
    nf_conn *c = nf_invocation_conn(inv);
    nf_endpoint *ep = nf_invocation_endpoint(inv);
    nf_invocation_kind kind = nf_invocation_kind_of(inv);
    const nf_msg *m = nf_invocation_msg(inv);
    const char *hook = kind == NF_INVOKE_CONNECT ? "on_connect" : "on_disconnect";
    char label[80];
    size_t labellen;

    if (kind == NF_INVOKE_EVENT) {
        /* The names as strings once, for the lookup, the ns object and the msg. */
        lpush_slice(L, m->ns);      /* top + 1 */
        lpush_slice(L, m->event);   /* top + 2 */
        if (!push_handler(a, ep, top + 1, top + 2)) {
            lua_settop(L, top);
            nf_invocation_finish(inv, NF_RESULT_NONE, NULL, 0);
            return;
        }
        /* "ns/event" for error logs; built by hand, snprintf showed in profiles. */
        size_t nl = m->ns.len > 38 ? 38 : m->ns.len, el = m->event.len > 38 ? 38 : m->event.len;
        memcpy(label, m->ns.ptr, nl);
        label[nl] = '/';
        memcpy(label + nl + 1, m->event.ptr, el);
        labellen = nl + 1 + el;
        label[labellen] = '\0';
    } else {
        lapp_push_desc(a, ep);
        if (lua_type(L, -1) != LUA_TTABLE || lapp_rawget_str(L, -1, hook, strlen(hook)) != LUA_TFUNCTION) {
            lua_settop(L, top);
            nf_invocation_finish(inv, NF_RESULT_NONE, NULL, 0);
            return;
        }
        lua_replace(L, -2);
        labellen = strlen(hook);
        memcpy(label, hook, labellen + 1);
    }

    lrun *r = lrun_new(a, inv, c, label, labellen);
    if (!r) {
        lua_settop(L, top);
        static const char oom[] = "out of memory";
        nf_invocation_finish(inv, NF_RESULT_ERROR, oom, sizeof oom - 1);
        return;
    }
    lua_State *co = lrun_thread(r);
    lua_xmove(L, co, 1);   /* the handler */
    int nargs;
    if (kind == NF_INVOKE_EVENT) {
        lconn_push(co, c);                    /* handler, conn */
        lua_pushvalue(L, top + 1);
        lua_pushvalue(L, top + 2);
        lua_xmove(L, co, 2);                  /* handler, conn, ns name, event name */
        int names = lua_gettop(co) - 1;
        lns_push_at(co, names - 1, names);
        lua_replace(co, names - 1);           /* handler, ns, ns name, event name */
        lmsg_push_served(co, m, nf_invocation_flags(inv), nf_conn_endpoint(c), names);
        lua_replace(co, names);
        lua_settop(co, names);                /* handler, ns, msg */
        nargs = 2;
    } else {
        lconn_push(co, c);
        nargs = 1;
    }
    lua_settop(L, top);
    lrun_start(r, nargs);
}

void linvoke_run(void *app, nf_invocation *inv)
{
    /* Run from inside a handler (one that forces a connect, a leave ... on
     * its own connection), the setup would be under that handler's memory
     * cap, in no protected call; the run's start applies the cap again. */
    nf_lua_app *a = app;
    int saved = lsb_host_enter(a);
    invoke(a, inv);
    lsb_host_leave(a, saved);
}
