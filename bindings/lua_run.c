/* lua_run.c - the coroutine engine: every run of app code (a handler, a
 * timer) in a coroutine of its own, and waiting in it.
 *
 * Every handler run is a coroutine (a "run"). A run that waits (an ask, a
 * sleep, a forced join ...) yields with lrun_yield_tag; the C callback of
 * that operation pushes the results on the run's thread and resumes it. A
 * run stays in a->runs, its thread anchored in the registry, until it ends;
 * then its invocation is finished exactly once and the thread goes back to a
 * small pool.
 *
 * Results (docs/lua-api.md, "Handlers"):
 *   nothing / nil         NF_RESULT_NONE
 *   string or number      NF_RESULT_REPLY
 *   nil, text             NF_RESULT_ERROR
 *   raised error          NF_RESULT_ERROR with the message, traceback logged
 *
 * The handler runs under a pcall inside its coroutine (run_body), not bare:
 * an error then unwinds inside the resume, so the handler's to-be-closed
 * variables are closed there, under the run's instruction budget and memory
 * cap, and with hooks back on. A bare error would leave them pending on a
 * dead thread until lua_resetthread, outside both guards, and with hooks
 * off when the count hook raised it (Lua 5.4.4). */
#include <event2/event.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "poison.h"
#include "lua_internal.h"
#include "watchdog.h"

char lrun_yield_tag;

struct lrun {
    nf_lua_app *app;
    lua_State *co;
    int co_ref;
    nf_invocation *inv;      /* NULL for timers, or once finished */
    nf_conn *conn;           /* referenced while the run lives */
    char label[80];          /* "ns/event", "on_connect", "timer" ... for logs */
    bool logged;             /* its failure was logged with a traceback */
    char where[160];         /* "handler ns/event (app.lua:12)" for the watchdog */
    /* waiting */
    bool in_call;            /* inside the C function that started the wait */
    lua_State *wait_L;       /* the thread of that C function */
    int arrived;             /* results delivered during the call, or -1 */
    struct event *sleep_ev;  /* pending neffos.sleep */
    void (*detach)(void *ud);   /* a wait its owner registered (lrun_own_wait), or NULL */
    void *detach_ud;
    lrun *prev, *next;
};

/* ---- thread pool ---------------------------------------------------------- */

static void pool_get(nf_lua_app *a, lrun *r)
{
    lua_State *L = a->L;
    if (a->npool > 0) {
        r->co_ref = a->pool[--a->npool];
        lua_rawgeti(L, LUA_REGISTRYINDEX, r->co_ref);
        r->co = lua_tothread(L, -1);
        lua_pop(L, 1);
        return;
    }
    r->co = lua_newthread(L);   /* inherits the budget hook of the main thread */
    r->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* Runs the pending __close handlers of an abandoned thread (one that waits
 * or yielded) as app code: under a fresh slice and the memory cap, and
 * unable to wait. */
static void close_thread(nf_lua_app *a, lua_State *co)
{
    lrun *saved = a->current;
    a->current = NULL;
    nf_watchdog_enter(a->wd, "a __close handler of an abandoned handler");
    lsb_saved sb = lsb_enter(a);
    int st = lua_resetthread(co);   /* 5.4.6: lua_closethread */
    lsb_leave(a, sb);
    nf_watchdog_leave(a->wd);
    a->current = saved;
    if (st != LUA_OK)
        nf_error("a __close handler of an abandoned handler failed: %s",
                 lua_type(co, -1) == LUA_TSTRING ? lua_tostring(co, -1) : "(not a string)");
}

static void pool_put(nf_lua_app *a, lua_State *co, int ref, bool clean)
{
    if (!clean) {
        /* A thread that failed or was abandoned is not reused (Lua 5.4.4
         * may leave `allowhook` off on a thread whose count hook raised an
         * error). Close its pending __close handlers, then let the GC have
         * it. */
        close_thread(a, co);
        luaL_unref(a->L, LUA_REGISTRYINDEX, ref);
        return;
    }
    lua_settop(co, 0);
    if (a->npool < (int)(sizeof a->pool / sizeof a->pool[0]) && !a->stopping) {
        a->pool[a->npool++] = ref;
        return;
    }
    luaL_unref(a->L, LUA_REGISTRYINDEX, ref);
}

void lrun_pool_free(nf_lua_app *a)
{
    while (a->npool > 0)
        luaL_unref(a->L, LUA_REGISTRYINDEX, a->pool[--a->npool]);
}

/* ---- run lifecycle ---------------------------------------------------------- */

/* " (app.lua:12)" for the function at the top of a->L ("" for a C
 * function), for the watchdog's "handler ns/event (app.lua:12)". lua_getinfo
 * and the formatting per run showed in profiles, and so did a weak table of
 * texts (two hash lookups per run, ~4% of a 64 B ask): the texts are kept in
 * a small direct-mapped cache keyed by the function's address. An entry
 * anchors its function in the registry, so the address cannot be reused by
 * another function while the entry stands; a reload empties the cache
 * (swap_in), so an old version's handlers (and what their upvalues hold)
 * are not kept. */
static const struct lrun_loc *location(nf_lua_app *a)
{
    lua_State *L = a->L;
    const void *fn = lua_topointer(L, -1);
    struct lrun_loc *e = &a->locs[((uintptr_t)fn >> 4) % (sizeof a->locs / sizeof a->locs[0])];
    if (e->fn == fn && fn)
        return e;
    char loc[LUA_IDSIZE + 32];
    lrun_describe(L, -1, "", loc, sizeof loc);
    size_t n = strlen(loc);
    if (n > sizeof e->text - 1)
        n = sizeof e->text - 1;
    memcpy(e->text, loc, n);
    e->text[n] = '\0';
    e->len = (unsigned char)n;
    e->fn = NULL;
    /* Only Lua functions: what else comes here (a remote call's conn or ns
     * object, the Lua client's closure per event) has no location, and
     * anchoring it would keep it, and what it holds, alive. */
    if (!fn || lua_type(L, -1) != LUA_TFUNCTION || lua_iscfunction(L, -1) || !lua_checkstack(L, 1))
        return e;   /* the text is right for this run; nothing anchored, nothing cached */
    lua_pushvalue(L, -1);
    if (e->ref > 0)
        lua_rawseti(L, LUA_REGISTRYINDEX, e->ref);
    else if ((e->ref = luaL_ref(L, LUA_REGISTRYINDEX)) <= 0)
        return e;   /* no ref (nil can't be): not cached */
    e->fn = fn;
    return e;
}

void lrun_locs_clear(nf_lua_app *a)
{
    for (size_t i = 0; i < sizeof a->locs / sizeof a->locs[0]; i++) {
        struct lrun_loc *e = &a->locs[i];
        if (e->ref > 0)
            luaL_unref(a->L, LUA_REGISTRYINDEX, e->ref);
        e->ref = 0;
        e->fn = NULL;
    }
}

/* Ended runs' structs are kept for the next ones: a calloc and a free per
 * message showed in profiles. Bounded like the thread pool. Not under ASan:
 * a kept struct is reused at once (last in, first out), so a stale pointer
 * to a run would silently reach the next one, where ASan's quarantine of
 * freed memory reports it. */
#if defined(NF_POISON_ASAN)
enum { SPARE_RUNS_MAX = 0 };
#else
enum { SPARE_RUNS_MAX = 64 };
#endif

static lrun *run_alloc(nf_lua_app *a)
{
    lrun *r = a->spare_runs;
    if (!r)
        return calloc(1, sizeof *r);
    a->spare_runs = r->next;
    a->nspare_runs--;
    memset(r, 0, sizeof *r);
    return r;
}

static void run_release(nf_lua_app *a, lrun *r)
{
    if (a->nspare_runs >= SPARE_RUNS_MAX || a->stopping) {
        free(r);
        return;
    }
    r->next = a->spare_runs;
    a->spare_runs = r;
    a->nspare_runs++;
}

void lrun_spares_free(nf_lua_app *a)
{
    while (a->spare_runs) {
        lrun *r = a->spare_runs;
        a->spare_runs = r->next;
        free(r);
    }
    a->nspare_runs = 0;
}

lrun *lrun_new(nf_lua_app *a, nf_invocation *inv, nf_conn *c, const char *label, size_t labellen)
{
    lrun *r = run_alloc(a);
    if (!r)
        return NULL;
    r->app = a;
    r->inv = inv;
    r->conn = c;
    r->arrived = -1;
    if (c)
        nf_conn_ref(c);
    if (labellen >= sizeof r->label)
        labellen = sizeof r->label - 1;
    memcpy(r->label, label, labellen);
    r->label[labellen] = '\0';
    if (a->wd) {   /* the function is at the top of a->L */
        const struct lrun_loc *loc = location(a);
        size_t loclen = loc->len, at = sizeof "handler " - 1;
        memcpy(r->where, "handler ", at);
        memcpy(r->where + at, r->label, labellen);
        at += labellen;
        if (loclen > sizeof r->where - 1 - at)
            loclen = sizeof r->where - 1 - at;
        memcpy(r->where + at, loc->text, loclen);
        r->where[at + loclen] = '\0';
    }
    pool_get(a, r);
    r->next = a->runs;
    if (a->runs)
        a->runs->prev = r;
    a->runs = r;
    return r;
}

static void run_free(lrun *r, bool clean)
{
    nf_lua_app *a = r->app;
    if (r->prev) r->prev->next = r->next;
    else a->runs = r->next;
    if (r->next) r->next->prev = r->prev;
    if (r->sleep_ev)
        event_free(r->sleep_ev);
    pool_put(a, r->co, r->co_ref, clean);
    if (r->conn)
        nf_conn_unref(r->conn);
    run_release(a, r);
}

/* Finishes the invocation once; data may point into the run's stack, which
 * is still intact here (the core copies it). */
static void run_finish(lrun *r, nf_result res, const char *data, size_t len)
{
    nf_invocation *inv = r->inv;
    bool overran = r->app->sb.overran;
    r->app->sb.overran = false;
    r->inv = NULL;
    if (inv)
        nf_invocation_finish(inv, res, data, len);
    if (inv && r->conn)   /* the connection counts runs over the budget (--max-budget-overruns) */
        nf_conn_budget_result(r->conn, overran && res == NF_RESULT_ERROR);
}

static void run_failed(lrun *r, const char *msg, size_t len)
{
    if (len == 0) {
        msg = "error";
        len = 5;
    }
    run_finish(r, NF_RESULT_ERROR, msg, len);
}

/* The error object of a failed resume as text for the client. */
static const char *error_text(lua_State *co, size_t *len)
{
    int t = lua_type(co, -1);
    if (t == LUA_TSTRING || t == LUA_TNUMBER)
        return lua_tolstring(co, -1, len);
    lua_pushfstring(co, "(error object is a %s value)", luaL_typename(co, -1));
    return lua_tolstring(co, -1, len);
}

/* Length of the "file.lua:12: " that error() puts before a message. The log
 * keeps it (with the traceback); the client gets the message alone, since
 * server paths are nobody else's business. */
static size_t location_prefix(const char *msg, size_t len)
{
    const char *colon = memchr(msg, ':', len);
    size_t i;
    if (colon == NULL || colon == msg)
        return 0;
    i = (size_t)(colon - msg) + 1;
    if (i >= len || msg[i] < '0' || msg[i] > '9')
        return 0;
    while (i < len && msg[i] >= '0' && msg[i] <= '9')
        i++;
    if (i + 1 >= len || msg[i] != ':' || msg[i + 1] != ' ')
        return 0;
    for (const char *p = msg; p < colon; p++)
        if (*p == '\n' || *p == ' ')
            return 0;
    return i + 2;
}

static void log_failure(lrun *r, const char *msg)
{
    lua_State *L = r->app->L;
    luaL_traceback(L, r->co, msg, 0);
    nf_error("handler %s failed: %s", r->label, lua_tostring(L, -1));
    lua_pop(L, 1);
}

/* Maps what the handler returned (nres values on co) to the invocation. */
static void run_returned(lrun *r, int nres)
{
    lua_State *co = r->co;
    int base = lua_gettop(co) - nres + 1;
    int t1 = nres >= 1 ? lua_type(co, base) : LUA_TNIL;

    if (t1 == LUA_TSTRING || t1 == LUA_TNUMBER) {
        size_t len;
        const char *s = lua_tolstring(co, base, &len);
        run_finish(r, NF_RESULT_REPLY, s, len);
    } else if (t1 == LUA_TNIL) {
        int t2 = nres >= 2 ? lua_type(co, base + 1) : LUA_TNIL;
        if (t2 == LUA_TNIL) {
            run_finish(r, NF_RESULT_NONE, NULL, 0);
        } else {
            size_t len;
            const char *s = t2 == LUA_TSTRING || t2 == LUA_TNUMBER
                ? lua_tolstring(co, base + 1, &len)
                : (len = 0, (const char *)NULL);
            if (!s) {
                nf_warn("handler %s returned nil and a %s as the error; sending \"error\"",
                        r->label, lua_typename(co, t2));
            }
            run_failed(r, s, len);
        }
    } else {
        /* true, a table ...: a bug in the handler; say so where it is seen. */
        lua_pushfstring(co, "handler returned a %s (want a string, a number, nil or nil, err)",
                        lua_typename(co, t1));
        size_t len;
        const char *s = lua_tolstring(co, -1, &len);
        nf_error("handler %s: %s", r->label, s);
        run_failed(r, s, len);
    }
}

/* The message handler of run_body: logs the failure with the traceback
 * of the failing code (only known here, before the unwind), then leaves
 * the error object as it is for the handler's __close and the client. */
static int run_msgh(lua_State *L)
{
    nf_lua_app *a = lapp_of(L);
    lrun *r = a->current;
    size_t len;
    int saved = lsb_host_enter(a);
    lua_pushvalue(L, 1);
    const char *msg = error_text(L, &len);
    luaL_traceback(L, L, msg, 1);
    nf_error("handler %s failed: %s", r ? r->label : "?", lua_tostring(L, -1));
    if (r)
        r->logged = true;
    lsb_host_leave(a, saved);
    lua_settop(L, 1);
    return 1;
}

/* run_body's continuation: true + results, or false + the error. */
static int run_body_done(lua_State *L, int status, lua_KContext ctx)
{
    (void)ctx;
    if (status == LUA_OK || status == LUA_YIELD) {   /* a table answer: encoded here, under the budget */
        lrun *r = lapp_of(L)->current;
        lcodec_returned(L, 2, r && r->conn ? nf_conn_endpoint(r->conn) : NULL);
    }
    lua_pushboolean(L, status == LUA_OK || status == LUA_YIELD);
    lua_replace(L, 1);   /* over the message handler */
    return lua_gettop(L);
}

/* The function a run's coroutine starts with: handler and its arguments
 * on the stack. Waits (yields) pass through the pcall. */
static int run_body(lua_State *L)
{
    int nargs = lua_gettop(L) - 1;
    lua_pushcfunction(L, run_msgh);
    lua_insert(L, 1);
    return run_body_done(L, lua_pcallk(L, nargs, LUA_MULTRET, 1, 0, run_body_done), 0);
}

/* Resumes the run with nargs values on its stack and handles the outcome. */
static void run_resume(lrun *r, int nargs)
{
    nf_lua_app *a = r->app;
    lrun *saved = a->current;
    int nres = 0;

    a->current = r;
    nf_watchdog_enter(a->wd, r->where);
    lsb_saved sb = lsb_enter(a);
    int st = lua_resume(r->co, NULL, nargs, &nres);
    lsb_leave(a, sb);
    nf_watchdog_leave(a->wd);
    a->current = saved;

    if (st == LUA_YIELD) {
        if (nres == 1 && lua_touserdata(r->co, -1) == &lrun_yield_tag) {
            lua_pop(r->co, 1);
            return;   /* waits: the operation's callback resumes it */
        }
        /* A bare coroutine.yield() at the top of a handler has no one to
         * resume it: end the run. */
        static const char msg[] = "attempt to yield from a handler (use neffos.sleep to wait)";
        nf_error("handler %s: %s", r->label, msg);
        run_failed(r, msg, sizeof msg - 1);
        run_free(r, false);
        return;
    }
    if (st == LUA_OK && nres >= 1 && lua_toboolean(r->co, -nres)) {
        lua_remove(r->co, -nres);
        run_returned(r, nres - 1);
        run_free(r, true);
        return;
    }
    size_t len;
    const char *msg = error_text(r->co, &len);
    if (!r->logged)   /* memory errors skip the message handler */
        log_failure(r, msg);
    size_t skip = location_prefix(msg, len);
    run_failed(r, msg + skip, len - skip);
    run_free(r, false);
}

/* First resume: the handler and its nargs arguments are on the run's stack. */
void lrun_start(lrun *r, int nargs)
{
    lua_pushcfunction(r->co, run_body);
    lua_insert(r->co, -(nargs + 2));
    run_resume(r, nargs + 1);
}

/* ---- waiting ----------------------------------------------------------------- */

lrun *lrun_check_wait(lua_State *L, const char *what)
{
    lrun *r = lapp_of(L)->current;
    if (!r)
        luaL_error(L, "%s can only wait inside a handler or a timer", what);
    if (!lua_isyieldable(L))
        luaL_error(L, "%s cannot wait here (inside a metamethod or a C call)", what);
    return r;
}

lrun *lrun_begin_wait(lua_State *L, const char *what)
{
    lrun *r = lrun_check_wait(L, what);
    r->in_call = true;
    r->wait_L = L;
    r->arrived = -1;
    return r;
}

int lrun_wait(lua_State *L, lrun *r)
{
    r->in_call = false;
    if (r->arrived >= 0) {   /* the callback already ran */
        int n = r->arrived;
        r->arrived = -1;
        return n;
    }
    lua_pushlightuserdata(L, &lrun_yield_tag);
    return lua_yield(L, 1);
}

void lrun_cancel_wait(lrun *r)
{
    r->in_call = false;
    r->detach = NULL;
}

void lrun_own_wait(lrun *r, void (*detach)(void *ud), void *ud)
{
    r->detach = detach;
    r->detach_ud = ud;
}

lua_State *lrun_thread(lrun *r) { return r->co; }

lua_State *lrun_result_state(lrun *r) { return r->in_call ? r->wait_L : r->co; }

void lrun_deliver(lrun *r, int nres)
{
    r->detach = NULL;   /* the wait is over: before the run may begin another */
    if (r->in_call) {
        r->arrived = nres;
        return;
    }
    /* A handler's slices after a wait are handler time too; the first one
     * the host times around invoke. Timers are not handlers. */
    nf_host *h = r->inv ? r->app->host : NULL;
    if (h)
        nf_host_handler_enter(h);
    run_resume(r, nres);
    if (h)
        nf_host_handler_leave(h);
}

void lrun_set_sleep(lrun *r, struct event *ev)
{
    if (r->sleep_ev && r->sleep_ev != ev)
        event_free(r->sleep_ev);
    r->sleep_ev = ev;
}

nf_invocation *lrun_current_invocation(nf_lua_app *a) { return a->current ? a->current->inv : NULL; }

void lrun_abort_waiting(nf_lua_app *a)
{
    static const char msg[] = "server shutting down";
    lrun *r = a->runs, *next;
    for (; r; r = next) {
        next = r->next;
        if (r->detach) {
            r->detach(r->detach_ud);   /* nothing reaches the run any more */
            r->detach = NULL;
        } else if (!r->sleep_ev) {
            continue;   /* the host's wait: it ends as its connections close */
        }
        run_finish(r, NF_RESULT_ERROR, msg, sizeof msg - 1);
        run_free(r, false);
    }
}

lwait *lwait_new(lrun *r, nf_conn *c, nf_slice ns, nf_slice room)
{
    lwait *w = malloc(sizeof *w + ns.len + room.len + 2);
    if (!w)
        return NULL;
    w->r = r;
    w->c = c;
    if (c)
        nf_conn_ref(c);
    memcpy(w->buf, ns.ptr, ns.len);
    w->buf[ns.len] = '\0';
    memcpy(w->buf + ns.len + 1, room.ptr, room.len);
    w->buf[ns.len + 1 + room.len] = '\0';
    w->ns = nf_slice_of(w->buf, ns.len);
    w->room = nf_slice_of(w->buf + ns.len + 1, room.len);
    return w;
}

/* lrun_begin_wait + lwait_new: raises (nothing started) if out of memory. */
lwait *lwait_begin(lua_State *L, const char *what, nf_conn *c, nf_slice ns, nf_slice room)
{
    lrun *r = lrun_begin_wait(L, what);
    lwait *w = lwait_new(r, c, ns, room);
    if (!w) {
        lrun_cancel_wait(r);
        luaL_error(L, "%s: out of memory", what);
    }
    return w;
}

void lwait_free(lwait *w)
{
    if (w->c)
        nf_conn_unref(w->c);
    free(w);
}

void lrun_forget_all(nf_lua_app *a)
{
    /* The host is gone: its invocations and connections with it. */
    while (a->runs) {
        lrun *r = a->runs;
        a->runs = r->next;
        if (r->sleep_ev)
            event_free(r->sleep_ev);
        free(r);
    }
}


void lrun_spawn(nf_lua_app *a, const char *label)
{
    lrun *r = lrun_new(a, NULL, NULL, label, strlen(label));
    if (!r) {
        lua_pop(a->L, 1);
        nf_error("%s: out of memory", label);
        return;
    }
    lua_xmove(a->L, r->co, 1);
    lrun_start(r, 0);
}

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg)
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Appends the decimal digits of v. */
static size_t put_uint(char *out, size_t cap, size_t at, unsigned long v)
{
    char d[24];
    size_t n = 0;
    do d[n++] = (char)('0' + v % 10); while ((v /= 10) && n < sizeof d);
    while (n > 0 && at + 1 < cap)
        out[at++] = d[--n];
    return at;
}

static size_t put_str(char *out, size_t cap, size_t at, const char *s)
{
    while (*s && at + 1 < cap)
        out[at++] = *s++;
    return at;
}

/* By hand: it runs for every handler run, where snprintf showed in profiles. */
void lrun_describe(lua_State *L, int idx, const char *what, char *out, size_t cap)
{
    lua_Debug ar;
    size_t at = put_str(out, cap, 0, what);
    lua_pushvalue(L, idx);
    if (lua_getinfo(L, ">S", &ar) && ar.linedefined > 0) {
        at = put_str(out, cap, at, " (");
        at = put_str(out, cap, at, ar.short_src);
        at = put_str(out, cap, at, ":");
        at = put_uint(out, cap, at, (unsigned long)ar.linedefined);
        at = put_str(out, cap, at, ")");
    }
    out[at] = '\0';
}

int lrun_pcall(nf_lua_app *a, int nargs, int nres)
{
    return lrun_pcall_as(a, nargs, nres, NULL);
}

int lrun_pcall_as(nf_lua_app *a, int nargs, int nres, const char *what)
{
    lua_State *L = a->L;
    int fn = lua_gettop(L) - nargs;
    char where[200];
    if (a->wd) {
        if (what)
            snprintf(where, sizeof where, "%s", what);
        else
            lrun_describe(L, fn, "Lua code", where, sizeof where);
    }
    lua_pushcfunction(L, traceback);
    lua_insert(L, fn);
    lrun *saved = a->current;
    a->current = NULL;   /* no run: nothing here may wait */
    nf_watchdog_enter(a->wd, where);
    lsb_saved sb = lsb_enter(a);
    int st = lua_pcall(L, nargs, nres, fn);
    lsb_leave(a, sb);
    nf_watchdog_leave(a->wd);
    a->current = saved;
    lua_remove(L, fn);
    return st;
}
