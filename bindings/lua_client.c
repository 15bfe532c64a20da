/* lua_client.c - "neffos.client.raw": the C client (host/client/nf_client.h)
 * for Lua. scripts/neffos/client.lua builds the neffos client API on it.
 *
 * The same module serves two kinds of Lua state on one event loop:
 *  - the app's state (lapp_of(L) is the app): a wait suspends the handler's
 *    or timer's run (lrun_begin_wait / lrun_deliver), so a handler may dial
 *    another server and ask it without blocking the loop; the client's own
 *    events run as new runs (lrun_spawn), so they may wait too;
 *  - the test runner's state of `neffos test` (lapp_of(L) is NULL): there is
 *    no run to suspend, so a wait runs the loop (EVLOOP_ONCE) until its
 *    answer or its deadline arrived, and events are called at once. Such a
 *    wait is never nested: inside a client callback it raises.
 *
 * A client is a userdata anchored in the registry while its socket lives
 * (a client nobody keeps still gets its events); it lets go once closed. */
#include <event2/event.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "lua_client.h"
#include "lua_internal.h"
#include "nf_client.h"

#define CLIENT_MT "neffos.client.raw"
#define CTX_KEY "neffos.client.ctx"
#define PUMP_DEFAULT_TIMEOUT 10.0   /* seconds: a test's wait without its own timeout */
#define MAX_HEADERS 32

typedef struct lclient_ctx {
    struct event_base *base;
    nf_client_loop *loop;
    int in_callback;         /* > 0 while a test-state callback runs: no pumping then */
} lclient_ctx;

/* Whom to hand the results of a wait: a suspended run (app state) or a
 * pumping C frame (test state; done/nres live on its C stack). A run's wait
 * is the app's own (lrun_own_wait): the drain closes the server's
 * connections, not the client's sockets, so nothing else would end it. */
typedef struct lwake {
    lrun *r;
    lua_State *L;
    bool *done;
    int *nres;
    /* At the drain's end, before its run is ended: makes sure nothing is
     * delivered to it any more (the run is freed). */
    void (*abort)(struct lwake *w);
} lwake;

typedef struct lclient {
    nf_client *c;
    lclient_ctx *ctx;
    nf_lua_app *app;         /* NULL in the test state */
    lua_State *L;            /* the main thread of the owning state */
    int cb_ref;              /* function(kind, ...) for events, asks and the close */
    int self_ref;            /* anchor while the socket lives */
    lwake open_wake;         /* dial waits for "A" */
    bool opening;
    bool dying;              /* being collected: completions deliver nothing */
    struct event *open_timer;
    char *headers[MAX_HEADERS + 1];
    nf_target target;        /* nf_client keeps a pointer to it */
} lclient;

/* An ask in flight. Freed by nf_client's completion, which always comes
 * (answer, or NF_CLIENT_ASK_CLOSED); a timeout only delivers early. */
typedef struct lask {
    lwake wake;
    bool delivered;
    struct event *timer;
} lask;

/* ---- the context -------------------------------------------------------------- */

static int ctx_gc(lua_State *L)
{
    lclient_ctx *x = lua_touserdata(L, 1);
    if (x->loop) {
        nf_client_loop_free(x->loop);
        x->loop = NULL;
    }
    return 0;
}

static lclient_ctx *ctx_of(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, CTX_KEY);
    lclient_ctx *x = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!x)
        luaL_error(L, "neffos client: no event loop in this state");
    return x;
}

/* ---- waking ----------------------------------------------------------------------- */

static lua_State *wake_state(const lwake *w) { return w->r ? lrun_result_state(w->r) : w->L; }

static void wake_deliver(const lwake *w, int n)
{
    if (w->r) {
        lrun_deliver(w->r, n);
        return;
    }
    *w->nres = n;
    *w->done = true;
}

/* lrun_own_wait's detach, at the drain's end. */
static void wake_detach(void *ud)
{
    lwake *w = ud;
    w->r = NULL;
    w->abort(w);
}

/* Starts a wait. In the app state it raises outside a handler or timer;
 * abort is its part at the drain's end (wake_detach). */
static void wake_begin(lua_State *L, lwake *w, bool *done, int *nres, const char *what, void (*abort)(lwake *))
{
    memset(w, 0, sizeof *w);
    if (lapp_of(L)) {
        w->r = lrun_begin_wait(L, what);
        w->abort = abort;
        lrun_own_wait(w->r, wake_detach, w);   /* forgotten by wake_cancel's lrun_cancel_wait */
        return;
    }
    if (ctx_of(L)->in_callback)
        luaL_error(L, "%s cannot wait inside a client handler of a test (wait in the spec itself)", what);
    *done = false;
    *nres = 0;
    w->L = L;
    w->done = done;
    w->nres = nres;
}

static void wake_cancel(lwake *w)
{
    if (w->r)
        lrun_cancel_wait(w->r);
}

/* Finishes a wait: yields the run, or runs the loop until done. */
static int wake_wait(lua_State *L, lwake *w, const bool *done, const int *nres)
{
    if (w->r)
        return lrun_wait(L, w->r);
    lclient_ctx *x = ctx_of(L);
    while (!*done)
        if (event_base_loop(x->base, EVLOOP_ONCE) < 0)
            return luaL_error(L, "neffos client: the event loop failed");
    return *nres;
}

static struct timeval to_tv(double seconds)
{
    struct timeval tv;
    tv.tv_sec = (time_t)seconds;
    tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
    return tv;
}

/* Seconds from an optional argument: nil = default (the test state has
 * one, the app's none = -1), else a number >= 0. */
static double opt_timeout(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx))
        return lapp_of(L) ? -1 : PUMP_DEFAULT_TIMEOUT;
    double s = luaL_checknumber(L, idx);
    if (!(s >= 0) || s > 1e9)
        luaL_argerror(L, idx, "timeout: seconds out of range");
    return s;
}

/* ---- callbacks into Lua -------------------------------------------------------------- */

static int tramp_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    return lua_gettop(L);
}

/* upvalue 1 = n, 2 = the function, 3.. = its n arguments. */
static int tramp(lua_State *L)
{
    int n = (int)lua_tointeger(L, lua_upvalueindex(1));
    for (int i = 0; i <= n; i++)
        lua_pushvalue(L, lua_upvalueindex(2 + i));
    lua_callk(L, n, LUA_MULTRET, 0, tramp_k);
    return lua_gettop(L);
}

static int tb_handler(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
    return 1;
}

/* Calls the client's callback with the n values on top of lc->L (popped). */
static void call_back(lclient *lc, int n)
{
    lua_State *L = lc->L;
    int base = lua_gettop(L) - n;
    lua_rawgeti(L, LUA_REGISTRYINDEX, lc->cb_ref);
    lua_insert(L, -(n + 1));
    if (lc->app) {
        /* A run of its own, like a timer's: the handler may wait. */
        lua_pushinteger(L, n);
        lua_insert(L, -(n + 2));
        lua_pushcclosure(L, tramp, n + 2);
        lrun_spawn(lc->app, "client event");
        return;
    }
    lua_pushcfunction(L, tb_handler);
    lua_insert(L, -(n + 2));
    lc->ctx->in_callback++;
    if (lua_pcall(L, n, 0, -(n + 2)) != LUA_OK) {
        /* The test state: neffos.testing reads these back and fails the spec. */
        nf_error("client handler failed: %s", lua_tostring(L, -1));
        lua_getfield(L, LUA_REGISTRYINDEX, "neffos.client.errors");
        if (lua_istable(L, -1)) {
            lua_pushvalue(L, -2);
            lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
        }
    }
    lua_settop(L, base);
    lc->ctx->in_callback--;
}

static void release_anchor(lclient *lc)
{
    if (lc->self_ref != LUA_NOREF) {
        int ref = lc->self_ref;
        lc->self_ref = LUA_NOREF;
        luaL_unref(lc->L, LUA_REGISTRYINDEX, ref);
    }
}

static void stop_open_timer(lclient *lc)
{
    if (lc->open_timer) {
        event_free(lc->open_timer);
        lc->open_timer = NULL;
    }
}

static void on_open(nf_client *c, nf_slice id)
{
    lclient *lc = nf_client_udata(c);
    if (!lc->opening)
        return;
    lc->opening = false;
    stop_open_timer(lc);
    lua_State *T = wake_state(&lc->open_wake);
    lua_rawgeti(T, LUA_REGISTRYINDEX, lc->self_ref);
    lpush_slice(T, id);
    wake_deliver(&lc->open_wake, 2);
}

static void on_event(nf_client *c, const nf_msg *m)
{
    lclient *lc = nf_client_udata(c);
    lua_pushliteral(lc->L, "event");
    lmsg_push(lc->L, m, m->binary ? NF_INV_BINARY : 0);
    call_back(lc, 2);
}

/* A server ask: the Lua side answers with raw:send(token, ...) once its
 * handler returned (it may wait first). */
static bool on_ask(nf_client *c, const nf_msg *m, nf_client_reply *reply)
{
    (void)reply;
    lclient *lc = nf_client_udata(c);
    lua_pushliteral(lc->L, "ask");
    lmsg_push(lc->L, m, m->binary ? NF_INV_BINARY : 0);
    call_back(lc, 2);
    return false;
}

static void on_native(nf_client *c, nf_slice data, bool binary)
{
    lclient *lc = nf_client_udata(c);
    lua_pushliteral(lc->L, "native");
    lpush_slice(lc->L, data);
    lua_pushboolean(lc->L, binary);
    call_back(lc, 3);
}

static void on_close(nf_client *c, const char *why)
{
    lclient *lc = nf_client_udata(c);
    lc->c = NULL;
    nf_client_free(c);   /* deferred by nf_client until its callbacks return */
    if (lc->opening) {
        lc->opening = false;
        stop_open_timer(lc);
        lua_State *T = wake_state(&lc->open_wake);
        lua_pushnil(T);
        lua_pushstring(T, why);
        wake_deliver(&lc->open_wake, 2);
    } else {
        lua_pushliteral(lc->L, "close");
        lua_pushstring(lc->L, why);
        call_back(lc, 2);
    }
    release_anchor(lc);
}

static const nf_client_handlers handlers = {
    .on_open = on_open, .on_event = on_event, .on_ask = on_ask, .on_native = on_native, .on_close = on_close,
};

static void open_timeout(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    lclient *lc = ud;
    stop_open_timer(lc);
    if (lc->c) {
        nf_client *c = lc->c;
        lc->c = NULL;
        nf_client_free(c);   /* no on_close */
    }
    if (lc->opening) {
        lc->opening = false;
        lua_State *T = wake_state(&lc->open_wake);
        lua_pushnil(T);
        lua_pushliteral(T, "timeout");
        wake_deliver(&lc->open_wake, 2);
    }
    release_anchor(lc);
}

/* wake_detach: the dial's run is ended; the client goes as on its
 * timeout, without delivering. */
static void open_abort(lwake *w)
{
    lclient *lc = (lclient *)((char *)w - offsetof(lclient, open_wake));
    lc->opening = false;
    stop_open_timer(lc);
    if (lc->c) {
        nf_client *c = lc->c;
        lc->c = NULL;
        nf_client_free(c);   /* no on_close */
    }
    release_anchor(lc);
}

/* ---- raw.dial(url, callback [, headers [, timeout [, native]]]) -> client, id | nil, err ---- */

static int raw_dial(lua_State *L)
{
    const char *url = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    double timeout = opt_timeout(L, 4);
    lclient_ctx *x = ctx_of(L);
    if (!x->loop && !(x->loop = nf_client_loop_new(x->base)))
        return lmsg_push_error(L, "out of memory", 13);

    lclient *lc = lua_newuserdatauv(L, sizeof *lc, 0);
    memset(lc, 0, sizeof *lc);
    lc->cb_ref = lc->self_ref = LUA_NOREF;
    luaL_setmetatable(L, CLIENT_MT);
    int ud = lua_gettop(L);
    char err[256];
    if (nf_target_resolve(url, &lc->target, err, sizeof err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    if (lua_istable(L, 3)) {
        int n = 0;
        lua_pushnil(L);
        while (lua_next(L, 3) != 0 && n < MAX_HEADERS) {
            if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
                const char *v = lua_pushfstring(L, "%s: %s", lua_tostring(L, -2), lua_tostring(L, -1));
                if (strpbrk(v, "\r\n"))
                    return luaL_error(L, "neffos.dial: a header may not contain a line break");
                lc->headers[n++] = strdup(v);
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
        }
    }
    lc->ctx = x;
    lc->app = lapp_of(L);
    /* The state's main thread: callbacks must not push on a run's thread. */
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    lc->L = lua_tothread(L, -1);
    lua_pop(L, 1);
    lua_pushvalue(L, 2);
    lc->cb_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    bool done;
    int nres;
    wake_begin(L, &lc->open_wake, &done, &nres, "neffos.dial", open_abort);
    nf_client_opts o = { .url = &lc->target, .headers = (const char *const *)lc->headers,
                         .handlers = &handlers, .udata = lc, .native = lua_toboolean(L, 5) };
    lc->c = nf_client_new(x->loop, &o);
    if (!lc->c) {
        wake_cancel(&lc->open_wake);
        return lmsg_push_error(L, "cannot create a socket", 22);
    }
    lua_pushvalue(L, ud);
    lc->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lc->opening = true;
    if (timeout >= 0) {
        lc->open_timer = evtimer_new(x->base, open_timeout, lc);
        struct timeval tv = to_tv(timeout);
        if (lc->open_timer)
            evtimer_add(lc->open_timer, &tv);
    }
    return wake_wait(L, &lc->open_wake, &done, &nres);
}

static lclient *check_client(lua_State *L)
{
    return luaL_checkudata(L, 1, CLIENT_MT);
}

/* ---- client:ask(ns, room, event, body [, timeout [, binary]]) -> msg | nil, err ---- */

static void ask_done(nf_client *c, nf_client_ask_status st, const nf_msg *reply, void *arg)
{
    lask *k = arg;
    lclient *lc = nf_client_udata(c);
    if (lc->dying)   /* the state is closing: its runs are gone already */
        k->delivered = true;
    if (!k->delivered) {
        k->delivered = true;
        lua_State *T = wake_state(&k->wake);
        int n;
        if (st == NF_CLIENT_ASK_OK) {
            lmsg_push(T, reply, reply->binary ? NF_INV_BINARY : 0);
            n = 1;
        } else if (st == NF_CLIENT_ASK_ERROR) {
            n = lmsg_push_error(T, reply->body.ptr, reply->body.len);
        } else {
            n = lmsg_push_error(T, NF_ERR_WRITE, sizeof NF_ERR_WRITE - 1);
        }
        wake_deliver(&k->wake, n);
    }
    if (k->timer)
        event_free(k->timer);
    free(k);
}

static void ask_timeout(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    lask *k = ud;
    if (k->delivered)
        return;
    k->delivered = true;
    lua_State *T = wake_state(&k->wake);
    int n = lmsg_push_error(T, "timeout", 7);
    wake_deliver(&k->wake, n);
}

/* wake_detach: the ask's run is ended; k stays for its completion,
 * which delivers nothing now. */
static void ask_abort(lwake *w)
{
    lask *k = (lask *)((char *)w - offsetof(lask, wake));
    k->delivered = true;
}

static nf_msg msg_args(lua_State *L, int first)
{
    nf_msg m;
    memset(&m, 0, sizeof m);
    m.ns = lcheck_slice(L, first);
    m.room = lopt_slice(L, first + 1);
    m.event = lcheck_slice(L, first + 2);
    m.body = lopt_slice(L, first + 3);
    return m;
}

static int client_ask(lua_State *L)
{
    lclient *lc = check_client(L);
    nf_msg m = msg_args(L, 2);
    double timeout = opt_timeout(L, 6);
    bool binary = lua_toboolean(L, 7);
    if (!lc->c || nf_client_get_state(lc->c) != NF_CLIENT_OPEN)
        return lmsg_push_error(L, NF_ERR_WRITE, sizeof NF_ERR_WRITE - 1);
    if (lapp_of(L))
        lrun_check_wait(L, "ask");   /* raises before k exists: wake_begin's raise would lose it */
    lask *k = calloc(1, sizeof *k);
    if (!k)
        return lmsg_push_error(L, "out of memory", 13);
    bool done;
    int nres;
    wake_begin(L, &k->wake, &done, &nres, "ask", ask_abort);
    if (nf_client_ask_msg(lc->c, &m, binary, ask_done, k) != 0) {
        wake_cancel(&k->wake);
        free(k);
        return lmsg_push_error(L, NF_ERR_WRITE, sizeof NF_ERR_WRITE - 1);
    }
    if (timeout >= 0) {
        k->timer = evtimer_new(lc->ctx->base, ask_timeout, k);
        struct timeval tv = to_tv(timeout);
        if (k->timer)
            evtimer_add(k->timer, &tv);
    }
    return wake_wait(L, &k->wake, &done, &nres);
}

/* client:send(token, ns, room, event, body [, is_error [, binary]]) -> bool:
 * emits (token "") and answers to the server's asks. */
static int client_send(lua_State *L)
{
    lclient *lc = check_client(L);
    nf_msg m = msg_args(L, 3);
    m.wait = lopt_slice(L, 2);
    m.is_error = lua_toboolean(L, 7);
    bool binary = lua_toboolean(L, 8);
    lua_pushboolean(L, lc->c && nf_client_send(lc->c, &m, binary) == 0);
    return 1;
}

/* client:write(data [, binary]) -> bool: a raw frame (native endpoints). */
static int client_write(lua_State *L)
{
    lclient *lc = check_client(L);
    nf_slice data = lcheck_slice(L, 2);
    lua_pushboolean(L, lc->c && nf_client_send_native(lc->c, data, lua_toboolean(L, 3)) == 0);
    return 1;
}

/* client:ack(token) -> bool: "<token>;;;;;;". */
static int client_ack(lua_State *L)
{
    lclient *lc = check_client(L);
    nf_slice token = lcheck_slice(L, 2);
    lua_pushboolean(L, lc->c && nf_client_send_empty_reply(lc->c, token) == 0);
    return 1;
}

/* client:close(): a close frame (1000); the "close" callback follows. */
static int client_close(lua_State *L)
{
    lclient *lc = check_client(L);
    if (lc->c)
        nf_client_close(lc->c);
    return 0;
}

static int client_is_open(lua_State *L)
{
    lclient *lc = check_client(L);
    lua_pushboolean(L, lc->c && nf_client_get_state(lc->c) == NF_CLIENT_OPEN);
    return 1;
}

static int client_gc(lua_State *L)
{
    lclient *lc = luaL_checkudata(L, 1, CLIENT_MT);
    lc->dying = true;
    stop_open_timer(lc);
    if (lc->c) {
        nf_client *c = lc->c;
        lc->c = NULL;
        nf_client_free(c);
    }
    for (int i = 0; i < MAX_HEADERS && lc->headers[i]; i++) {
        free(lc->headers[i]);
        lc->headers[i] = NULL;
    }
    if (lc->cb_ref != LUA_NOREF && lc->L) {
        luaL_unref(L, LUA_REGISTRYINDEX, lc->cb_ref);
        lc->cb_ref = LUA_NOREF;
    }
    return 0;
}

/* The timer of pump(): the time asked for is over. */
static void pump_done(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    *(bool *)ud = true;
}

/* Turns the test runner's loop for `seconds` (the whole time, or, with
 * once, until something happened); only outside the app and outside a
 * client handler, where waiting is the runner's to do. */
static int pump(lua_State *L, const char *what, bool once)
{
    double s = luaL_checknumber(L, 1);
    if (lapp_of(L))
        return luaL_error(L, "raw.%s is for the test runner", what);
    lclient_ctx *x = ctx_of(L);
    if (x->in_callback)
        return luaL_error(L, "cannot wait inside a client handler of a test");
    bool done = false;
    struct event *ev = evtimer_new(x->base, pump_done, &done);
    if (!ev)
        return luaL_error(L, "cannot create a timer");
    struct timeval tv = to_tv(s < 0 ? 0 : s);
    evtimer_add(ev, &tv);
    do
        event_base_loop(x->base, EVLOOP_ONCE);
    while (!once && !done);
    event_free(ev);
    return 0;
}

/* raw.run_loop(seconds): the loop runs that long. */
static int raw_run_loop(lua_State *L) { return pump(L, "run_loop", false); }

/* raw.step(seconds): one turn of the loop, waiting at most that long for
 * something to happen (the test state's building block for waits). */
static int raw_step(lua_State *L) { return pump(L, "step", true); }

static int raw_open(lua_State *L)
{
    static const luaL_Reg fns[] = {
        { "dial", raw_dial },
        { "run_loop", raw_run_loop },
        { "step", raw_step },
        { NULL, NULL },
    };
    luaL_newlib(L, fns);
    return 1;
}

void lclient_open(lua_State *L, struct event_base *base)
{
    lclient_ctx *x = lua_newuserdatauv(L, sizeof *x, 0);
    memset(x, 0, sizeof *x);
    x->base = base;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, ctx_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, CTX_KEY);

    luaL_newmetatable(L, CLIENT_MT);
    lsb_lock_metatable(L, -1);
    static const luaL_Reg methods[] = {
        { "ask", client_ask },
        { "send", client_send },
        { "ack", client_ack },
        { "write", client_write },
        { "close", client_close },
        { "is_open", client_is_open },
        { NULL, NULL },
    };
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, client_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);

    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    raw_open(L);
    lua_setfield(L, -2, "neffos.client.raw");
    lua_pop(L, 1);
}
