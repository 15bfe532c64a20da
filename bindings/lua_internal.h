/* lua_internal.h - what the files of bindings/ share. Not for main().
 *
 * Files, one idea each:
 *   lua_app.c      state, load + validate + swap, reload, endpoints
 *   lua_run.c      the coroutine engine: runs of app code, waits, results
 *   lua_invoke.c   nf_app_ops: which handler an event runs, and starting it
 *   lua_ids.c      connection IDs from the app's id(req)
 *   lua_message.c  the msg table, nil + err results
 *   lua_ask.c      the end of a Lua ask: resumes its handler
 *   lua_conn.c     the conn userdata, the request table, the per-conn store
 *   lua_nsconn.c   the ns and room userdata
 *   lua_server.c   the server userdata (one per endpoint)
 *   lua_timer.c    neffos.after / every / sleep on the event loop
 *   lua_sandbox.c  the capped allocator and the instruction budget
 *   lua_pattern.c  Lua's pattern functions, metered
 *   lua_hostlib.c  the "neffos.host" module that scripts/neffos.lua uses
 *   lua_opts.c     the options tables of the API ({ binary =, timeout =, ... }) */
#ifndef NF_LUA_INTERNAL_H
#define NF_LUA_INTERNAL_H

#include <lauxlib.h>
#include <lua.h>
#include <stdbool.h>
#include <time.h>
#include <stdint.h>

#include "nf_lua.h"
#include "proto.h"

struct event;
typedef struct lrun lrun;
typedef struct ltimer ltimer;

/* ---- sandbox ---- */
typedef struct lsandbox {
    size_t used;             /* bytes allocated by the Lua state */
    size_t cap;              /* 0 = unlimited */
    int enforce;             /* > 0 while app code runs: only then is the cap applied */
    uint64_t limit;          /* instructions per run slice, 0 = unlimited */
    int64_t budget;          /* instructions left in the current slice */
    bool overran;            /* the run going on hit the limit (told to its connection) */
    int step;                /* hook granularity */
} lsandbox;

/* Per endpoint: the server object and the description of the serving version. */
typedef struct lendpoint {
    nf_endpoint *ep;
    int server_ref;          /* the server userdata, stable across reloads */
    int desc_ref;            /* the description table of the serving version */
    int meta_ref;            /* its message metatable (lua_codec.c's cache), or LUA_NOREF:
                              * reset whenever desc_ref changes */
    unsigned seen;           /* reload generation that declared it */
    struct lendpoint *next;
} lendpoint;

struct nf_lua_app {
    lua_State *L;
    struct event_base *base;
    nf_host *host;           /* NULL under --check */
    lsandbox sb;
    struct nf_watchdog *wd;  /* told which app code runs; NULL under --check */
    char *app_path;          /* as given */
    char *main_file;         /* app.lua or the file itself */
    char *app_dir;
    char *scripts_dir;
    char *default_endpoint;
    int version_ref;         /* the serving version record (LUA_NOREF before the first load) */
    int prepared_ref;        /* a loaded, validated version waiting for the other workers (LUA_NOREF) */
    unsigned version;        /* 1, 2, ... per successful load */
    unsigned loading;        /* the version being loaded (owner of timers made meanwhile) */
    lendpoint *endpoints;
    lrun *runs;              /* every run in flight */
    lrun *current;           /* the run whose code is executing, or NULL */
    ltimer *timers;          /* every armed timer */
    int pool[32];            /* finished threads kept for reuse (registry refs) */
    int npool;
    lrun *spare_runs;        /* ended runs' structs kept for reuse (linked by next) */
    int nspare_runs;
    struct lrun_loc {        /* lua_run.c: " (app.lua:12)" per handler, direct-mapped */
        const void *fn;      /* the function, anchored at ref while cached; NULL: empty */
        int ref;             /* registry ref holding it; 0 before the first use */
        unsigned char len;
        char text[LUA_IDSIZE + 32];
    } locs[16];
    bool stopping;
    struct timespec prepared_at;   /* when the prepared version began to load */
    unsigned worker_id;      /* 1-based (--workers N) */
    unsigned worker_count;
    struct nf_shdict *shared;      /* neffos.shared, or NULL */
    struct nf_workers *workers;    /* the process's workers (worker_count > 1), or NULL */
    struct lrretry *remote_retries;  /* lua_remote.c: answers waiting for a full queue */
    struct lrwait *remote_waits;     /* lua_remote.c: calls and listings waiting for answers */
    char *shared_buf;              /* values copied out of it */
    size_t shared_cap;
};

/* ---- lua_shared.c ---- */
/* Pushes neffos.shared for d (nil when NULL). */
void lshared_push(lua_State *L, struct nf_shdict *d);

/* ---- lua_sandbox.c ---- */
void *lsb_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
void lsb_install_hook(nf_lua_app *a, lua_State *co);
/* Brackets around any execution of app code: start a budget slice and
 * apply the memory cap. Returns the previous state for lsb_leave. */
typedef struct lsb_saved { int enforce; int64_t budget; } lsb_saved;
lsb_saved lsb_enter(nf_lua_app *a);
void lsb_leave(nf_lua_app *a, lsb_saved s);
/* Brackets around the host's own Lua work while app code may be running
 * (a run set up from inside a handler, a failure's traceback): off the
 * memory cap, which is the app's; a refusal there, in no protected call,
 * would panic. Returns what lsb_host_leave restores. */
int lsb_host_enter(nf_lua_app *a);
void lsb_host_leave(nf_lua_app *a, int saved);
/* Takes n instructions off the current slice for work done in C; raises
 * "instruction limit exceeded" past the budget. No-op outside app code. */
void lsb_charge(lua_State *L, int64_t n);
/* Sets __metatable on the metatable at idx: getmetatable() on the host's
 * objects gives "locked", so app code cannot add a __gc, __index ... there. */
void lsb_lock_metatable(lua_State *L, int idx);

/* ---- lua_pattern.c ---- */
/* Replaces string.find, match, gmatch and gsub with versions whose matcher
 * charges its steps to the instruction budget (lsb_charge). */
void lpat_open(lua_State *L);
static inline nf_lua_app *lapp_of(lua_State *L) { return *(nf_lua_app **)lua_getextraspace(L); }

/* ---- lua_run.c: the coroutine engine ---- */
extern char lrun_yield_tag;   /* its address tags host waits */
/* A run of app code in a coroutine from the pool: inv (NULL for timers) is
 * finished exactly once when the run ends; c (or NULL) is referenced while
 * it lives. `label` names it in logs. NULL when out of memory. */
lrun *lrun_new(nf_lua_app *a, nf_invocation *inv, nf_conn *c, const char *label, size_t labellen);
/* The run's thread: push the function, then its nargs arguments, on it. */
lua_State *lrun_thread(lrun *r);
void lrun_start(lrun *r, int nargs);
/* Starts fn (at the top of a's main stack, popped) in a new run without an
 * invocation: timers. `label` names it in logs. */
void lrun_spawn(nf_lua_app *a, const char *label);
/* Protected call on the main thread under the sandbox with a traceback
 * handler: function and nargs on the stack. On error leaves the message
 * with traceback and returns the status. `what` names it for waits. */
int lrun_pcall(nf_lua_app *a, int nargs, int nres);
/* The same, named `what` for the watchdog instead of the function's
 * file:line. */
int lrun_pcall_as(nf_lua_app *a, int nargs, int nres, const char *what);
/* "what (file.lua:12)" for the function at idx: which code runs, for the
 * watchdog's log. */
void lrun_describe(lua_State *L, int idx, const char *what, char *out, size_t cap);
/* Waiting from a C function: begin (raises if this code may not wait),
 * start the operation with the run as callback data, then return
 * lrun_wait(). In the callback, push results on lrun_result_state() and call
 * lrun_deliver(). */
lrun *lrun_begin_wait(lua_State *L, const char *what);
/* lrun_begin_wait's checks alone (raises as it does; the waiting run if
 * not): for what must be allocated before the wait begins and would be
 * lost if lrun_begin_wait raised after it. */
lrun *lrun_check_wait(lua_State *L, const char *what);
int lrun_wait(lua_State *L, lrun *r);
lua_State *lrun_result_state(lrun *r);
void lrun_cancel_wait(lrun *r);   /* the operation could not start: no wait */
void lrun_deliver(lrun *r, int nres);
/* The run executing now: its invocation (NULL for timers) and connection. */
nf_invocation *lrun_current_invocation(nf_lua_app *a);
/* Sleep support: the run's pending timer event (lua_timer.c). */
void lrun_set_sleep(lrun *r, struct event *ev);
/* A wait the app owns, which nobody else ends at shutdown (a remote call,
 * the Lua client's dial or ask): detach(ud) cuts the operation off from r,
 * so that nothing is delivered to it any more. Registered once the
 * operation started; forgotten when the wait ends (lrun_deliver,
 * lrun_cancel_wait). */
void lrun_own_wait(lrun *r, void (*detach)(void *ud), void *ud);
/* Shutdown, at the drain's end: every run sleeping or in a registered wait
 * is detached and ended without resuming: its invocation fails with
 * "server shutting down", its pending __close handlers run. Waits the host
 * owns (asks, forced actions) end as its connections close. */
void lrun_abort_waiting(nf_lua_app *a);
void lrun_pool_free(nf_lua_app *a);
/* Frees the ended runs' structs kept for reuse. */
void lrun_spares_free(nf_lua_app *a);
/* Empties the handler location cache (lua_run.c), letting its functions go. */
void lrun_locs_clear(nf_lua_app *a);
void lrun_forget_all(nf_lua_app *a);   /* after the host is freed */

/* ---- lua_invoke.c: nf_app_ops.invoke / has_namespace ---- */
void linvoke_run(void *app, nf_invocation *inv);
bool linvoke_has_namespace(void *app, nf_endpoint *ep, nf_slice ns);

/* ---- lua_ids.c: nf_app_ops.generate_id ---- */
long lids_generate(void *app, nf_endpoint *ep, nf_conn *c, char *id, size_t cap);

/* ---- lua_message.c ---- */
/* Pushes the msg table of m, every field set (the client's messages); flags
 * a set of nf_invocation_flag (binary, is_local, is_forced, is_native). */
void lmsg_push(lua_State *L, const nf_msg *m, unsigned flags);
/* The same for a message a server received or an ask's reply, with the
 * message metatable of ep's server (lcodec_push_meta; ep may be NULL):
 * the fields at the defaults it holds (room "", the flags false) are left
 * unset. names: 0, or where m's namespace and event names already are as
 * strings (names, names + 1; absolute), which spares interning them again
 * (~140 instructions each; the handler's lookup interned them). */
void lmsg_push_served(lua_State *L, const nf_msg *m, unsigned flags, nf_endpoint *ep, int names);
/* Whether the value at idx is a msg a handler received: a table whose
 * metatable is named "neffos.msg" (codec.lua). Allocates nothing. */
bool lmsg_is(lua_State *L, int idx);
/* Sets the fields a msg leaves at their defaults (room "", the flags
 * false) in the table at idx where they are missing: for a copy that can
 * have no message metatable (no codec loaded). May raise (memory). */
void lmsg_fill_defaults(lua_State *L, int idx);
/* Pushes nil, text for an ask that failed; returns 2. */
int lmsg_push_ask_failure(lua_State *L, nf_ask_status st, const nf_msg *reply);
/* Pushes nil, err (an empty err becomes "error"); returns 2. */
int lmsg_push_error(lua_State *L, const char *err, size_t errlen);

/* ---- lua_ask.c ---- */
/* The nf_ask_cb of every Lua ask; ud is its lwait (freed here). */
void lask_done(void *ud, nf_ask_status st, const nf_msg *reply);

/* Fields of app tables are read raw: a metamethod would run app code
 * outside any protected call. Pushes the field; returns its type. */
static inline int lapp_rawget_str(lua_State *L, int idx, const char *k, size_t len)
{
    idx = lua_absindex(L, idx);
    lua_pushlstring(L, k, len);
    return lua_rawget(L, idx);
}

/* An operation in flight: what its callback needs to build the results.
 * Holds a reference on the connection until freed. */
typedef struct lwait {
    lrun *r;
    nf_conn *c;
    nf_slice ns, room;   /* copies, in buf */
    char buf[];
} lwait;
lwait *lwait_new(lrun *r, nf_conn *c, nf_slice ns, nf_slice room);
lwait *lwait_begin(lua_State *L, const char *what, nf_conn *c, nf_slice ns, nf_slice room);
void lwait_free(lwait *w);

/* ---- lua_codec.c ---- */
/* The body argument at idx: a string or number as it is, nil as "" (others
 * raise, as before); a table encoded with ep's codec, the bytes anchored in its
 * place; *binary is set when the codec makes binary frames (binary may be
 * NULL). Returns 0, or -1 with nil, err pushed (the encoding failed). */
int lcodec_body(lua_State *L, int idx, nf_endpoint *ep, nf_slice *body, bool *binary);
/* A handler's results from index first to the top: a table first result is
 * encoded with ep's codec into the reply bytes, or becomes nil, err. */
void lcodec_returned(lua_State *L, int first, nf_endpoint *ep);
/* Pushes ep's message metatable (msg:unmarshal(), and the defaults of the
 * fields lmsg_push leaves unset) and returns true; pushes nothing and returns
 * false when no codec is loaded. ep may be NULL (meta.default). Cached per
 * endpoint: a registry lookup per message. */
bool lcodec_push_meta(lua_State *L, nf_endpoint *ep);
/* Forgets the cached metatable of le (its description changed or went). */
void lcodec_forget_meta(lua_State *L, lendpoint *le);
/* The path of the endpoint whose message metatable (of any version, one
 * before a reload too) the table at idx has: its __endpoint (codec.lua), or
 * "" (not a message, or meta.default's). Valid while that table lives.
 * Pushes and allocates nothing: safe where the heap is at its cap. */
const char *lcodec_meta_path(lua_State *L, int idx);
/* Gives the table on top the message metatable of the endpoint at path
 * (meta.default when no endpoint has it): a message copied from another
 * worker reads and unmarshals as one received here. False, with the table
 * left as it was, when no codec is loaded. */
bool lcodec_set_meta_by_path(lua_State *L, nf_slice path);

/* ---- lua_upgrade_error.c ---- */
/* nf_app_ops.refused: calls the description's on_upgrade_error(req, reason, text). */
void lrun_refused(void *app, nf_endpoint *ep, nf_conn *c, const char *reason, const char *what);

/* ---- lua_conn.c ---- */
void lconn_open(lua_State *L);                 /* metatables */
void lconn_push(lua_State *L, nf_conn *c);     /* the conn userdata (made on first use) */
nf_conn *lconn_check(lua_State *L, int idx);   /* raises if not a conn; may return NULL (gone) */
nf_conn *lconn_test(lua_State *L, int idx);    /* NULL if not a conn or gone */
bool lconn_is(lua_State *L, int idx);          /* a conn object, gone or not */
void lconn_freed(nf_lua_app *a, nf_conn *c);
void lconn_push_request(lua_State *L, nf_conn *c, const nf_request *r);
void lconn_push_ns_cache(lua_State *L, int conn_idx);  /* the conn's ns objects by name */

/* ---- lua_nsconn.c ---- */
void lns_open(lua_State *L);
/* The ns object for (conn at idx, name); cached per connection. */
void lns_push(lua_State *L, int conn_idx, nf_slice name);
/* The same with the name a string at name_idx (no second interning). */
void lns_push_at(lua_State *L, int conn_idx, int name_idx);
nf_conn *lns_test_conn(lua_State *L, int idx); /* the conn of an ns object, or NULL */
/* An ns object's connection (NULL if gone) and name; false if idx is not an
 * ns object. The name stays anchored by the object. c, name may be NULL. */
bool lns_parts(lua_State *L, int idx, nf_conn **c, nf_slice *name);
/* The same for a room object, with its room name. */
bool lroom_parts(lua_State *L, int idx, nf_conn **c, nf_slice *ns, nf_slice *room);
/* Pushes a room object of the ns object at ns_idx. */
void lroom_push(lua_State *L, int ns_idx, nf_slice room);

/* ---- lua_server.c ---- */
void lserver_open(lua_State *L);
/* The server object of an endpoint (nil if unknown). */
void lserver_push(lua_State *L, nf_endpoint *ep);

/* ---- lua_remote.c: other workers' connections (--workers N) ---- */
enum { LREMOTE_CONNECTIONS = 1, LREMOTE_GET = 2, LREMOTE_GET_ALL = 3, LREMOTE_MEMBERS = 4 };
void lremote_open(lua_State *L);   /* metatables; the app's main state */
/* A listing of every worker's connections of ep, in opening order: waits
 * for the other workers (raises where code may not wait). Pushes the list
 * (LREMOTE_GET: the newest object or nil), or nil, err when a worker could
 * not be asked (its queue full, stopping) or has not answered within the
 * ask timeout ("timeout"); returns the count. arg1 is the
 * ID (GET, GET_ALL) or the namespace (MEMBERS), arg2 the room or empty. */
int lremote_list(lua_State *L, nf_endpoint *ep, int what, nf_slice arg1, nf_slice arg2);
/* At the app's end: the answers still waiting for room in a full queue go. */
void lremote_free_retries(nf_lua_app *a);
/* The waits of remote calls and listings still listed (their answers never
 * came: the loop has ended), with their timers. */
void lremote_free_waits(nf_lua_app *a);
/* A remote object's ID (for `except`): false if idx is not one. */
bool lremote_id(lua_State *L, int idx, nf_slice *id);
int lserver_new(lua_State *L, nf_endpoint *ep);  /* returns a registry ref */
void lserver_detach(lua_State *L, int ref);        /* endpoint gone */

/* ---- lua_timer.c ---- */
void ltimer_open(lua_State *L);
int ltimer_new_lua(lua_State *L);                  /* host.timer(seconds, fn, repeat) */
int ltimer_sleep_lua(lua_State *L);                /* host.sleep(seconds) */
void ltimer_cancel_version(nf_lua_app *a, unsigned version);
void ltimer_cancel_all(nf_lua_app *a);

/* ---- lua_hostlib.c ---- */
void lhost_open(lua_State *L);                     /* sets package.loaded["neffos.host"] */

/* ---- lua_opts.c ---- */
/* Raises "what: unknown option k (known: ...)" unless the value at idx is
 * nil, none, or a table whose keys are all in `known` (NULL-terminated). A
 * message a handler received (metatable "neffos.msg") may also carry its
 * token, err, is_local, is_forced and is_native, which the caller ignores:
 * `server:broadcast(msg)` relays it. */
void lopts_check(lua_State *L, int idx, const char *what, const char *const known[]);
/* Field k of the options at idx (nil/none: the default). */
bool lopts_bool(lua_State *L, int idx, const char *k);
unsigned lopts_timeout_ms(lua_State *L, int idx);   /* `timeout` seconds as ms, 0 = default */
/* A string field; pushes one value (the anchor) whatever happens. */
nf_slice lopts_string(lua_State *L, int idx, const char *what, const char *k);
/* The `except` field (a conn, an ns or an ID) into b; pushes one value. */
void lopts_except(lua_State *L, int idx, const char *what, nf_broadcast *b);

/* ---- lua_app.c ---- */
lendpoint *lapp_endpoint(nf_lua_app *a, nf_endpoint *ep);
/* Pushes the serving description of ep's server, or nil. */
void lapp_push_desc(nf_lua_app *a, nf_endpoint *ep);

/* Small helpers. */
static inline nf_slice lslice(lua_State *L, int idx)
{
    size_t n;
    const char *p = lua_tolstring(L, idx, &n);
    return p ? nf_slice_of(p, n) : NF_SLICE_EMPTY;
}
static inline nf_slice lcheck_slice(lua_State *L, int idx)
{
    size_t n;
    const char *p = luaL_checklstring(L, idx, &n);
    return nf_slice_of(p, n);
}
static inline nf_slice lopt_slice(lua_State *L, int idx)
{
    size_t n;
    const char *p = luaL_optlstring(L, idx, "", &n);
    return nf_slice_of(p, n);
}
static inline void lpush_slice(lua_State *L, nf_slice s) { lua_pushlstring(L, s.ptr, s.len); }
/* Seconds (number or nil) as milliseconds; 0 for nil. */
unsigned lopt_ms(lua_State *L, int idx);

#endif
