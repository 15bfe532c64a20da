/* lua_remote.c - the connections of the other workers, seen from this one
 * (--workers N; docs/lua-api.md, "Workers").
 *
 * With several workers the listings of the server object (connections,
 * get, get_all, members) cover the whole process: the calling run waits
 * while every other worker lists its own, and a connection held by another
 * worker comes back as a *remote object*. A remote object names its
 * connection process-wide (the owning worker, the connection's serial, its
 * ID and endpoint; for an ns also the namespace, for a room also the room)
 * and owns nothing else. Reading `id`, `worker`, `namespace`, `name`,
 * `conn`, `ns` or `server` answers at once; any method, and the fields
 * `request`, `reconnect_tries` and `was_reconnected`, are a *remote call*:
 * the arguments are copied (nil, booleans, numbers, strings, tables of
 * them, and conn / ns / room objects by name), the owning worker runs the
 * same method on its real object in a run of its own (so methods that wait,
 * join_room or ask, wait there), and the results come back the same way;
 * an error raised there is raised here. A connection that is gone behaves
 * as a closed local one: nil, "write closed" (is_closed: true).
 *
 * Threads. A call (lrcall) is malloc'd by the asking worker and posted to
 * the owner with nf_workers_post; from then on it belongs to the owner's
 * thread until the owner posts it back with the answer; the asker's wait
 * and gather pointers in it are only followed on the asker's thread. An
 * answer that cannot be posted because the asker's queue is full is
 * posted again on a timer until it goes through or the asker's loop ended.
 * A method run that ends without answering (its thread abandoned) answers
 * from the __close of a guard it holds.
 *
 * Deadline. The asking run waits in a record of its own (lrwait, asker's
 * thread) with a timer: a worker busy in a long handler does not turn its
 * loop, and the caller would wait as long. Whichever comes first, the
 * answer or the deadline, ends the wait ("timeout" for the deadline); the
 * record stays until the answer too has come, which then finds no run and
 * is dropped (the run may have ended and its thread been reused), or until
 * the app is freed (an answer that never came: the asker's loop ended). */
#include <event2/event.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "workers.h"
#include "clock.h"
#include "log.h"
#include "nf_limits.h"
#include "lua_internal.h"

#define REMOTE_MT "neffos.remote"
#define GUARD_MT "neffos.remote.guard"
#define TRAMPOLINE_KEY "neffos.remote.trampoline"
#define MAX_DEPTH 16                    /* nested tables in one argument or result */
#define RETRY_MS 2                      /* an answer to a full queue is posted again after this */
#define TIMEOUT_ERR "timeout"           /* what a call or listing past its deadline returns */

enum { K_CONN = 1, K_NS = 2, K_ROOM = 3 };
enum { OP_METHOD = 1, OP_FIELD = 2, OP_LIST = 3 };

/* ---- bytes ----------------------------------------------------------------------- */

typedef struct lrbuf {
    char *p;
    size_t len, cap;
    const char *err;   /* the first failure; nothing more is written */
} lrbuf;

static void buf_put(lrbuf *b, const void *data, size_t n)
{
    if (b->err || n == 0)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->err = "out of memory";
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void buf_u8(lrbuf *b, uint8_t v) { buf_put(b, &v, 1); }
static void buf_u64(lrbuf *b, uint64_t v) { buf_put(b, &v, sizeof v); }
static void buf_str(lrbuf *b, nf_slice s)
{
    uint64_t n = s.len;
    buf_put(b, &n, sizeof n);
    buf_put(b, s.ptr, s.len);
}

/* Reading back what this file wrote (the bytes never leave the process). */
typedef struct lrread {
    const char *p;
    size_t len, at;
} lrread;

static uint8_t rd_u8(lrread *r) { return r->at < r->len ? (uint8_t)r->p[r->at++] : 0; }
static uint64_t rd_u64(lrread *r)
{
    uint64_t v = 0;
    if (r->at + sizeof v <= r->len) {
        memcpy(&v, r->p + r->at, sizeof v);
        r->at += sizeof v;
    }
    return v;
}
static nf_slice rd_str(lrread *r)
{
    uint64_t n = rd_u64(r);
    if (n > r->len - r->at)
        n = r->len - r->at;
    nf_slice s = nf_slice_of(r->p + r->at, (size_t)n);
    r->at += (size_t)n;
    return s;
}

/* ---- names of objects ------------------------------------------------------------- */

/* What names a conn, ns or room of the process. Slices point into a
 * userdata, a buffer being read, or a connection. */
typedef struct lrname {
    uint8_t kind;
    unsigned worker;   /* 0-based */
    uint64_t serial;
    nf_slice id, path, ns, room;
} lrname;

typedef struct lremote {
    lrname n;
    char data[];       /* id, path, ns, room */
} lremote;

static unsigned self_index(nf_lua_app *a) { return a->worker_id ? a->worker_id - 1 : 0; }

static void put_name(lrbuf *b, const lrname *n)
{
    buf_u8(b, n->kind);
    buf_u64(b, n->worker);
    buf_u64(b, n->serial);
    buf_str(b, n->id);
    buf_str(b, n->path);
    buf_str(b, n->ns);
    buf_str(b, n->room);
}

static lrname read_name(lrread *r, uint8_t kind)
{
    lrname n = { .kind = kind };
    n.worker = (unsigned)rd_u64(r);
    n.serial = rd_u64(r);
    n.id = rd_str(r);
    n.path = rd_str(r);
    n.ns = rd_str(r);
    n.room = rd_str(r);
    return n;
}

static lrname conn_name(nf_lua_app *a, nf_conn *c)
{
    nf_endpoint *ep = nf_conn_endpoint(c);
    const char *path = ep ? nf_endpoint_path(ep) : "";
    lrname n = { .kind = K_CONN, .worker = self_index(a), .serial = nf_conn_serial(c), .id = nf_conn_id(c),
                 .path = nf_slice_of(path, strlen(path)), .ns = NF_SLICE_EMPTY, .room = NF_SLICE_EMPTY };
    return n;
}

/* The remote object at idx, or NULL. */
static lremote *test_remote(lua_State *L, int idx) { return luaL_testudata(L, idx, REMOTE_MT); }

/* The name of the conn, ns, room or remote object at idx: true, or false
 * when it is none of them or its connection is gone. */
static bool name_of(lua_State *L, int idx, lrname *out)
{
    nf_lua_app *a = lapp_of(L);
    lremote *rm = test_remote(L, idx);
    if (rm) {
        *out = rm->n;
        return true;
    }
    nf_conn *c = lconn_test(L, idx);
    if (c) {
        *out = conn_name(a, c);
        return true;
    }
    nf_slice ns, room;
    if (lns_parts(L, idx, &c, &ns)) {
        if (!c)
            return false;
        *out = conn_name(a, c);
        out->kind = K_NS;
        out->ns = ns;
        return true;
    }
    if (lroom_parts(L, idx, &c, &ns, &room)) {
        if (!c)
            return false;
        *out = conn_name(a, c);
        out->kind = K_ROOM;
        out->ns = ns;
        out->room = room;
        return true;
    }
    return false;
}

static void push_remote(lua_State *L, const lrname *n)
{
    size_t len = n->id.len + n->path.len + n->ns.len + n->room.len;
    lremote *rm = lua_newuserdatauv(L, sizeof *rm + len, 0);
    char *p = rm->data;
    rm->n = *n;
    nf_slice *parts[] = { &rm->n.id, &rm->n.path, &rm->n.ns, &rm->n.room };
    for (size_t i = 0; i < 4; i++) {
        nf_slice s = *parts[i];
        memcpy(p, s.ptr, s.len);
        *parts[i] = nf_slice_of(p, s.len);
        p += s.len;
    }
    luaL_setmetatable(L, REMOTE_MT);
}

typedef struct find_ctx {
    uint64_t serial;
    nf_conn *found;
} find_ctx;

static bool match_serial(void *ud, nf_conn *c)
{
    find_ctx *f = ud;
    if (nf_conn_serial(c) != f->serial)
        return true;
    f->found = c;
    return false;
}

/* This worker's endpoint at path, or NULL. */
static nf_endpoint *find_endpoint(nf_lua_app *a, nf_slice path)
{
    char p[512];
    if (!a->host || path.len >= sizeof p)
        return NULL;
    memcpy(p, path.ptr, path.len);
    p[path.len] = '\0';
    return nf_host_find_endpoint(a->host, p);
}

/* This worker's open connection that n names, or NULL. */
static nf_conn *find_conn(nf_lua_app *a, const lrname *n)
{
    nf_endpoint *ep = find_endpoint(a, n->path);
    if (!ep)
        return NULL;
    find_ctx f = { n->serial, NULL };
    nf_endpoint_each_with_id(ep, n->id, match_serial, &f);
    return f.found && !nf_conn_is_closed(f.found) ? f.found : NULL;
}

/* Pushes the object n names: the real one when it is this worker's and
 * open, else a remote object (which answers as closed if it is gone). */
static void push_named(lua_State *L, const lrname *n)
{
    nf_lua_app *a = lapp_of(L);
    nf_conn *c = n->worker == self_index(a) ? find_conn(a, n) : NULL;
    if (!c) {
        push_remote(L, n);
        return;
    }
    lconn_push(L, c);
    if (n->kind == K_CONN)
        return;
    lns_push(L, -1, n->ns);
    lua_remove(L, -2);
    if (n->kind == K_ROOM) {
        lroom_push(L, -1, n->room);
        lua_remove(L, -2);
    }
}

/* ---- values ------------------------------------------------------------------------ */

static void put_value(lua_State *L, int idx, lrbuf *b, int depth)
{
    idx = lua_absindex(L, idx);
    lrname n;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        buf_u8(b, 'n');
        return;
    case LUA_TBOOLEAN:
        buf_u8(b, lua_toboolean(L, idx) ? 't' : 'f');
        return;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            buf_u8(b, 'i');
            buf_u64(b, (uint64_t)lua_tointeger(L, idx));
        } else {
            lua_Number d = lua_tonumber(L, idx);
            buf_u8(b, 'd');
            buf_put(b, &d, sizeof d);
        }
        return;
    case LUA_TSTRING:
        buf_u8(b, 's');
        buf_str(b, lslice(L, idx));
        return;
    case LUA_TTABLE:
        if (depth >= MAX_DEPTH) {
            b->err = "a table nested too deep (or a cycle) for another worker";
            return;
        }
        if (!lua_checkstack(L, 8)) {   /* pushing on regardless would write past the stack */
            b->err = "not enough memory";
            return;
        }
        /* A received msg goes as 'M' and its endpoint's path, its fields as
         * they are (room and the flags left at their defaults are not in the
         * table): the copy gets that endpoint's message metatable there,
         * which reads them (msg:unmarshal, __name). */
        if (lmsg_is(L, idx)) {
            buf_u8(b, 'M');
            const char *path = lcodec_meta_path(L, idx);
            buf_str(b, nf_slice_of(path, strlen(path)));
        } else {
            buf_u8(b, 'T');
        }
        lua_pushnil(L);
        while (!b->err && lua_next(L, idx)) {   /* raw: the contents, not a metatable's view */
            buf_u8(b, 'k');
            put_value(L, -2, b, depth + 1);
            put_value(L, -1, b, depth + 1);
            lua_pop(L, 1);
        }
        if (b->err)
            lua_pop(L, 1);
        buf_u8(b, 'e');
        return;
    case LUA_TUSERDATA:
        if (name_of(L, idx, &n)) {
            put_name(b, &n);
            return;
        }
        if (lconn_is(L, idx) || lns_parts(L, idx, NULL, NULL) || lroom_parts(L, idx, NULL, NULL, NULL)) {
            buf_u8(b, 'n');   /* an object whose connection is gone: as it would answer, nothing */
            return;
        }
        /* fallthrough */
    default:
        b->err = "only nil, booleans, numbers, strings, tables and conn / ns / room objects go to another worker";
    }
}

/* Pushes the next value of r; false at the end or on damage. */
static bool push_value(lua_State *L, lrread *r, int depth)
{
    if (r->at >= r->len || depth > MAX_DEPTH + 1 || !lua_checkstack(L, 4))
        return false;
    uint8_t t = rd_u8(r);
    switch (t) {
    case 'n': lua_pushnil(L); return true;
    case 't': lua_pushboolean(L, 1); return true;
    case 'f': lua_pushboolean(L, 0); return true;
    case 'i': lua_pushinteger(L, (lua_Integer)rd_u64(r)); return true;
    case 'd': {
        lua_Number d = 0;
        if (r->at + sizeof d <= r->len)
            memcpy(&d, r->p + r->at, sizeof d);
        r->at += sizeof d;
        lua_pushnumber(L, d);
        return true;
    }
    case 's': lpush_slice(L, rd_str(r)); return true;
    case 'M':
    case 'T': {
        nf_slice path = t == 'M' ? rd_str(r) : NF_SLICE_EMPTY;
        lua_newtable(L);
        while (r->at < r->len && r->p[r->at] == 'k') {
            r->at++;
            if (!push_value(L, r, depth + 1))
                return false;
            if (!push_value(L, r, depth + 1)) {
                lua_pop(L, 1);
                return false;
            }
            if (lua_isnil(L, -2))
                lua_pop(L, 2);
            else
                lua_rawset(L, -3);
        }
        if (t == 'M' && !lcodec_set_meta_by_path(L, path))
            lmsg_fill_defaults(L, -1);   /* no metatable to read them from */
        return rd_u8(r) == 'e';
    }
    case K_CONN: case K_NS: case K_ROOM: {
        lrname n = read_name(r, t);
        push_named(L, &n);
        return true;
    }
    default:
        return false;
    }
}

/* ---- a call, there and back --------------------------------------------------------- */

typedef struct lrgather lrgather;

typedef struct lrwait lrwait;

typedef struct lrcall {
    lrwait *w;                   /* the asker's wait (OP_METHOD, OP_FIELD), asker's thread only */
    lrgather *gather;            /* OP_LIST, asker's thread only */
    nf_workers *g;
    unsigned from, to;           /* 0-based workers */
    uint8_t op;
    bool ok;                     /* the answer: results, or an error raised there */
    nf_lua_app *owner;           /* the owner's app, for retries (owner's thread) */
    lrbuf req;                   /* name, method or field; args / list query */
    lrbuf res;                   /* answer: values, or the error text */
} lrcall;

static void call_free(lrcall *k)
{
    free(k->req.p);
    free(k->res.p);
    free(k);
}

/* What k holds, for the other worker's --max-worker-queue-bytes: a call
 * that timed out on its caller (lrwait) waits on in that queue, and the
 * caller may make the next one meanwhile. */
static size_t call_bytes(const lrcall *k) { return sizeof *k + k->req.len + k->res.len; }

static void answered(nf_host *h, void *arg);

/* An answer waiting for room in the asker's queue: the owner's, with its
 * timer (the call itself then crosses without any event of the owner's),
 * listed in the owner's app until it goes (lremote_free_retries). */
typedef struct lrretry {
    lrcall *k;           /* k->owner lists it */
    struct event *ev;
    struct lrretry *next, *prev;
} lrretry;

static void retry_unlink(lrretry *rt)
{
    if (rt->prev)
        rt->prev->next = rt->next;
    else
        rt->k->owner->remote_retries = rt->next;
    if (rt->next)
        rt->next->prev = rt->prev;
}

static void post_answer(lrcall *k);

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    lrretry *rt = arg;
    lrcall *k = rt->k;
    retry_unlink(rt);
    event_free(rt->ev);
    free(rt);
    post_answer(k);
}

/* Owner's thread: sends k back. A full queue is tried again on a timer (the
 * asker's run waits for this answer and nothing else ends its wait); a loop
 * that has ended takes nothing any more. */
static void post_answer(lrcall *k)
{
    int rc = nf_workers_post(k->g, k->from, answered, k, call_bytes(k));
    if (rc == 0)
        return;
    if (rc == NF_ENOBUFS && k->owner) {
        lrretry *rt = malloc(sizeof *rt);
        struct event *ev = rt ? evtimer_new(k->owner->base, retry_cb, rt) : NULL;
        if (ev) {
            rt->k = k;
            rt->ev = ev;
            rt->prev = NULL;
            rt->next = k->owner->remote_retries;
            if (rt->next)
                rt->next->prev = rt;
            k->owner->remote_retries = rt;
            struct timeval tv = { 0, RETRY_MS * 1000 };
            evtimer_add(ev, &tv);
            return;
        }
        free(rt);
        nf_error("worker %u: out of memory: an answer to worker %u is lost", k->to + 1, k->from + 1);
    }
    call_free(k);
}

static void answer_error(lrcall *k, const char *msg)
{
    k->ok = false;
    k->res.len = 0;
    k->res.err = NULL;
    buf_put(&k->res, msg, strlen(msg) + 1);   /* the NUL stays after the text: a C string too */
    if (k->res.len > 0)
        k->res.len--;
    post_answer(k);
}

static void put_values(lua_State *L, int first, int last, lrbuf *b)
{
    for (int i = first; i <= last && !b->err; i++)
        put_value(L, i, b, 0);
}

/* ---- the owner: running the call ------------------------------------------------------ */

typedef struct lrguard {
    lrcall *k;   /* NULL once answered */
} lrguard;

/* done(guard, ok, ...): the method's pcall results, sent back. */
static int guard_done(lua_State *L)
{
    lrguard *gd = luaL_checkudata(L, 1, GUARD_MT);
    lrcall *k = gd->k;
    if (!k)
        return 0;
    gd->k = NULL;
    if (!lua_toboolean(L, 2)) {
        answer_error(k, lua_type(L, 3) == LUA_TSTRING ? lua_tostring(L, 3) : "(error object is not a string)");
        return 0;
    }
    k->ok = true;
    k->res.len = 0;
    put_values(L, 3, lua_gettop(L), &k->res);
    if (k->res.err) {
        char msg[256];
        snprintf(msg, sizeof msg, "the results cannot go back to worker %u: %s", k->from + 1, k->res.err);
        answer_error(k, msg);
        return 0;
    }
    post_answer(k);
    return 0;
}

static int guard_close(lua_State *L)
{
    lrguard *gd = luaL_checkudata(L, 1, GUARD_MT);
    lrcall *k = gd->k;
    if (k) {
        gd->k = NULL;
        answer_error(k, "the call ended on its worker without an answer");
    }
    return 0;
}

/* function(guard, obj, name, ...): the method runs under pcall and its
 * results go back through done; a thread abandoned on the way closes the
 * guard, which answers with an error. */
static const char TRAMPOLINE[] =
    "local done, pcall = ...\n"
    "return function(guard, obj, name, ...)\n"
    "  local g <close> = guard\n"
    "  return done(guard, pcall(obj[name], obj, ...))\n"
    "end\n";

static void push_trampoline(lua_State *L)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, TRAMPOLINE_KEY) == LUA_TFUNCTION)
        return;
    lua_pop(L, 1);
    if (luaL_loadbufferx(L, TRAMPOLINE, sizeof TRAMPOLINE - 1, "=remote", "t") != LUA_OK)
        lua_error(L);
    lua_pushcfunction(L, guard_done);
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    lua_getfield(L, -1, "pcall");
    lua_remove(L, -2);
    lua_call(L, 2, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, TRAMPOLINE_KEY);
}

/* Is this field read there (a call), not here? */
static bool remote_field(uint8_t kind, const char *k)
{
    return kind == K_CONN &&
           (strcmp(k, "request") == 0 || strcmp(k, "reconnect_tries") == 0 || strcmp(k, "was_reconnected") == 0);
}

/* Pushes (on L, the app's main state) the real object n names on this
 * worker: false when its connection is gone or the namespace is not
 * connected (a room need not be joined: its methods answer for that). */
static bool push_target(lua_State *L, nf_lua_app *a, const lrname *n)
{
    nf_conn *c = find_conn(a, n);
    if (!c)
        return false;
    lconn_push(L, c);
    if (n->kind == K_CONN)
        return true;
    if (!nf_conn_namespace(c, n->ns)) {
        lua_pop(L, 1);
        return false;
    }
    lns_push(L, -1, n->ns);
    lua_remove(L, -2);
    if (n->kind == K_ROOM) {
        lroom_push(L, -1, n->room);
        lua_remove(L, -2);
    }
    return true;
}

/* What a closed object answers (docs/lua-api.md, "Conventions"). */
static void answer_gone(lrcall *k, nf_slice what)
{
    k->ok = true;
    k->res.len = 0;
    if (nf_slice_eq_cstr(what, "is_closed")) {
        buf_u8(&k->res, 't');
    } else if (nf_slice_eq_cstr(what, "is_connected")) {
        buf_u8(&k->res, 'f');
    } else if (k->op == OP_FIELD) {
        buf_u8(&k->res, 'n');
    } else {
        buf_u8(&k->res, 'n');
        buf_u8(&k->res, 's');
        buf_str(&k->res, nf_slice_of(NF_ERR_WRITE, strlen(NF_ERR_WRITE)));
    }
    post_answer(k);
}

static void run_call(nf_lua_app *a, lrcall *k)
{
    lua_State *L = a->L;
    lrread rd = { k->req.p, k->req.len, 0 };
    lrname n = read_name(&rd, rd_u8(&rd));
    nf_slice what = rd_str(&rd);
    int top = lua_gettop(L);
    if (!push_target(L, a, &n)) {
        answer_gone(k, what);
        return;
    }
    if (k->op == OP_FIELD) {   /* a C field (remote_field): no app code runs */
        lpush_slice(L, what);
        lua_gettable(L, -2);
        k->ok = true;
        k->res.len = 0;
        put_value(L, -1, &k->res, 0);
        lua_settop(L, top);
        if (k->res.err)
            answer_error(k, k->res.err);
        else
            post_answer(k);
        return;
    }
    nf_conn *c = find_conn(a, &n);
    char label[96];
    int len = snprintf(label, sizeof label, "remote %.*s from worker %u", (int)(what.len > 40 ? 40 : what.len),
                       what.ptr, k->from + 1);
    lrun *r = lrun_new(a, NULL, c, label, (size_t)len);
    if (!r) {
        lua_settop(L, top);
        answer_error(k, "out of memory");
        return;
    }
    lua_State *T = lrun_thread(r);
    push_trampoline(T);
    lrguard *gd = lua_newuserdatauv(T, sizeof *gd, 0);
    gd->k = k;
    luaL_setmetatable(T, GUARD_MT);
    lua_xmove(L, T, 1);   /* obj */
    lpush_slice(T, what);
    int nargs = 3;
    while (rd.at < rd.len && push_value(T, &rd, 0))   /* our own bytes: never damaged */
        nargs++;
    lua_settop(L, top);
    lrun_start(r, nargs);
}

/* ---- the owner: listing -------------------------------------------------------------- */

typedef struct list_ctx {
    nf_lua_app *a;
    lrbuf *b;
    uint8_t kind;
} list_ctx;

static void put_entry(list_ctx *x, nf_conn *c, nf_slice ns)
{
    lrname n = conn_name(x->a, c);
    n.kind = x->kind;
    n.ns = ns;
    buf_u64(x->b, n.serial);
    put_name(x->b, &n);
}

static bool list_conn(void *ud, nf_conn *c)
{
    list_ctx *x = ud;
    if (!nf_conn_is_closed(c))
        put_entry(x, c, NF_SLICE_EMPTY);
    return x->b->err == NULL;
}

static bool list_member(void *ud, nf_nsconn *nc)
{
    list_ctx *x = ud;
    put_entry(x, nf_nsconn_conn(nc), nf_nsconn_name(nc));
    return x->b->err == NULL;
}

/* This worker's part of a listing, as entries (serial, name) in b. */
static void list_local(nf_lua_app *a, nf_endpoint *ep, uint8_t what, nf_slice arg1, nf_slice arg2, lrbuf *b)
{
    list_ctx x = { a, b, what == LREMOTE_MEMBERS ? K_NS : K_CONN };
    if (!ep)
        return;
    switch (what) {
    case LREMOTE_CONNECTIONS: nf_endpoint_each(ep, list_conn, &x); break;
    case LREMOTE_GET:
    case LREMOTE_GET_ALL: nf_endpoint_each_with_id(ep, arg1, list_conn, &x); break;
    case LREMOTE_MEMBERS: nf_endpoint_each_member(ep, arg1, arg2, list_member, &x); break;
    }
}

static void run_list(nf_lua_app *a, lrcall *k)
{
    lrread rd = { k->req.p, k->req.len, 0 };
    uint8_t what = rd_u8(&rd);
    nf_slice path = rd_str(&rd), arg1 = rd_str(&rd), arg2 = rd_str(&rd);
    nf_endpoint *ep = find_endpoint(a, path);
    k->ok = true;
    k->res.len = 0;
    list_local(a, ep, what, arg1, arg2, &k->res);
    if (k->res.err)
        answer_error(k, k->res.err);
    else
        post_answer(k);
}

/* nf_workers_fn on the owner. */
static void received(nf_host *h, void *arg)
{
    lrcall *k = arg;
    nf_lua_app *a = nf_host_app(h);
    k->owner = a;
    if (a->stopping || !a->host) {
        answer_error(k, "the worker is stopping");
        return;
    }
    if (k->op == OP_LIST)
        run_list(a, k);
    else
        run_call(a, k);
}

/* ---- the asker ----------------------------------------------------------------------- */

struct lrgather {
    lrwait *w;     /* the asker's wait, once every post went out */
    uint8_t what;
    unsigned remaining;
    bool failed;
    char err[160];
    lrbuf parts;   /* every worker's entries */
};

/* The asker's wait for a call's answer or a listing's answers. */
struct lrwait {
    lrun *r;                 /* the waiting run; NULL once the deadline ended the wait */
    struct event *deadline;
    nf_lua_app *a;           /* lists it (a->remote_waits) */
    lrgather *gather;        /* a listing's, freed with the record */
    lrwait *next, *prev;
};

static void gather_free(lrgather *gt)
{
    free(gt->parts.p);
    free(gt);
}

static void wait_free(lrwait *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        w->a->remote_waits = w->next;
    if (w->next)
        w->next->prev = w->prev;
    if (w->deadline)
        event_free(w->deadline);
    if (w->gather)
        gather_free(w->gather);
    free(w);
}

/* The deadline: the run goes on with nil, "timeout" (after call_k's ok
 * for a call); the answer, when it comes, is dropped. The call may still
 * run, or have run, on its worker, as an ask's question may have reached
 * its client. */
static void wait_expired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    lrwait *w = arg;
    lrun *r = w->r;
    if (!r)
        return;
    w->r = NULL;
    lua_State *T = lrun_result_state(r);
    int n = 2;
    if (!w->gather) {
        lua_pushboolean(T, 1);
        n++;
    }
    lua_pushnil(T);
    lua_pushliteral(T, TIMEOUT_ERR);
    lrun_deliver(r, n);
}

/* lrun_own_wait's detach, at the drain's end: the other worker may never
 * answer now (its loop ended, or it is stuck past the grace period); the
 * run is ended, and a late answer is dropped as one past the deadline. */
static void wait_detach(void *ud) { ((lrwait *)ud)->r = NULL; }

/* A wait for r, its deadline ms from now. NULL when out of memory. */
static lrwait *wait_new(nf_lua_app *a, lrun *r, uint64_t ms)
{
    lrwait *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->deadline = evtimer_new(a->base, wait_expired, w);
    if (!w->deadline) {
        free(w);
        return NULL;
    }
    struct timeval tv = nf_clock_timeval(ms);
    evtimer_add(w->deadline, &tv);
    w->r = r;
    w->a = a;
    w->next = a->remote_waits;
    if (w->next)
        w->next->prev = w;
    a->remote_waits = w;
    return w;
}

/* The server's ask timeout: how long a listing waits for every worker,
 * and a call for its worker to take it up. */
static uint64_t ask_timeout_ms(nf_lua_app *a)
{
    return a->host ? nf_host_limits(a->host)->ask_timeout_ms : nf_limits_default().ask_timeout_ms;
}

/* Asker's side: posts k to its owner. 0, or a negative code (k freed). */
static int post_call(lrcall *k)
{
    int rc = nf_workers_post(k->g, k->to, received, k, call_bytes(k));
    if (rc != 0)
        call_free(k);
    return rc;
}

static const char *post_failure(int rc)
{
    return rc == NF_ENOBUFS ? "the other worker's queue is full (--max-worker-queue, --max-worker-queue-bytes)" : "the other worker is stopping";
}

static lrcall *call_new(nf_lua_app *a, unsigned to, uint8_t op)
{
    lrcall *k = calloc(1, sizeof *k);
    if (k) {
        k->g = a->workers;
        k->from = self_index(a);
        k->to = to;
        k->op = op;
    }
    return k;
}

typedef struct entry {
    uint64_t serial;
    size_t at;
} entry;

static int by_serial(const void *x, const void *y)
{
    uint64_t a = ((const entry *)x)->serial, b = ((const entry *)y)->serial;
    return a < b ? -1 : a > b;
}

/* Pushes (T) the listing of every worker's entries in opening order: a
 * list, or for LREMOTE_GET the newest object or nil. */
static int push_gathered(lua_State *T, lrgather *gt)
{
    lrread rd = { gt->parts.p, gt->parts.len, 0 };
    size_t n = 0, cap = 0;
    entry *v = NULL;
    while (rd.at < rd.len) {
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            entry *nv = realloc(v, cap * sizeof *v);
            if (!nv) {
                free(v);
                lua_pushnil(T);
                lua_pushliteral(T, "out of memory");
                return 2;
            }
            v = nv;
        }
        v[n].serial = rd_u64(&rd);
        v[n].at = rd.at;
        n++;
        (void)read_name(&rd, rd_u8(&rd));
    }
    if (n > 1)
        qsort(v, n, sizeof *v, by_serial);
    if (gt->what == LREMOTE_GET) {
        if (n == 0) {
            lua_pushnil(T);
        } else {
            rd.at = v[n - 1].at;
            push_value(T, &rd, 0);
        }
    } else {
        lua_createtable(T, (int)n, 0);
        for (size_t i = 0; i < n; i++) {
            rd.at = v[i].at;
            push_value(T, &rd, 0);
            lua_rawseti(T, -2, (lua_Integer)i + 1);
        }
    }
    free(v);
    return 1;
}

/* Pushes (T) the listing or nil, err. Returns the count. */
static int gather_push(lua_State *T, lrgather *gt)
{
    if (!gt->failed)
        return push_gathered(T, gt);
    lua_pushnil(T);
    lua_pushstring(T, gt->err);
    return 2;
}

/* Every answer is in: to the run, unless its deadline came first. */
static void gather_end(lrgather *gt)
{
    lrwait *w = gt->w;
    lrun *r = w->r;
    int n = r ? gather_push(lrun_result_state(r), gt) : 0;
    wait_free(w);   /* and gt */
    if (r)
        lrun_deliver(r, n);
}

static void gather_fail(lrgather *gt, const char *err)
{
    if (!gt->failed)
        snprintf(gt->err, sizeof gt->err, "%s", err);
    gt->failed = true;
}

/* nf_workers_fn back on the asker. */
static void answered(nf_host *h, void *arg)
{
    (void)h;
    lrcall *k = arg;
    if (k->op == OP_LIST) {
        lrgather *gt = k->gather;
        if (!k->ok)
            gather_fail(gt, k->res.p ? k->res.p : "error");
        else
            buf_put(&gt->parts, k->res.p, k->res.len);
        if (gt->parts.err)
            gather_fail(gt, gt->parts.err);
        call_free(k);
        if (--gt->remaining == 0)
            gather_end(gt);
        return;
    }
    lrwait *w = k->w;
    lrun *r = w->r;
    wait_free(w);
    if (!r) {   /* past its deadline: the run went on without it */
        call_free(k);
        return;
    }
    lua_State *T = lrun_result_state(r);
    int n = 1;
    lua_pushboolean(T, k->ok);
    if (!k->ok) {
        lua_pushlstring(T, k->res.p ? k->res.p : "error", k->res.p ? k->res.len : 5);
        n++;
    } else {
        lrread rd = { k->res.p, k->res.len, 0 };
        while (rd.at < rd.len && lua_checkstack(T, 2) && push_value(T, &rd, 0))
            n++;
    }
    call_free(k);
    lrun_deliver(r, n);
}

/* A waiting C function's continuation: (ok, results...) after base. */
static int call_k(lua_State *L, int status, lua_KContext base)
{
    (void)status;
    int first = (int)base + 1;
    if (!lua_toboolean(L, first)) {
        lua_pushvalue(L, first + 1);
        return lua_error(L);
    }
    return lua_gettop(L) - first;
}

/* How long the caller waits for the answer to `what` (arguments from
 * `first` up): an ask timeout for the owning worker to take the call up
 * (the time a listing has), and for a method, which may wait there, as
 * long again as it may wait: an ask its own timeout, a forced action an
 * ask timeout for its connection's turn. A field read runs no app code. */
static uint64_t call_deadline_ms(lua_State *L, nf_slice what, bool field, int first)
{
    uint64_t base = ask_timeout_ms(lapp_of(L));
    if (field)
        return base;
    unsigned own = nf_slice_eq_cstr(what, "ask") ? lopts_timeout_ms(L, first + 2) : 0;   /* (event, body, opts) */
    return base + (own ? own : base);
}

/* The call on the owning worker of rm: the method or field `what` with the
 * values from index `first` up as arguments; waits (a field read waits
 * inside __index, which Lua 5.4 allows from Lua code), until the answer or
 * the deadline (call_deadline_ms). */
static int call_remote(lua_State *L, const lremote *rm, nf_slice what, bool field, int first)
{
    nf_lua_app *a = lapp_of(L);
    if (!a->workers || rm->n.worker >= a->worker_count)
        return luaL_error(L, "%s: no such worker", what.ptr);
    uint64_t ms = call_deadline_ms(L, what, field, first);   /* may raise (a bad timeout) */
    /* First, as it raises where code cannot wait: nothing is allocated yet. */
    lrun *r = lrun_begin_wait(L, field ? "a remote connection's field" : "a remote connection's method");
    lrcall *k = call_new(a, rm->n.worker, field ? OP_FIELD : OP_METHOD);
    lrwait *w = k ? wait_new(a, r, ms) : NULL;
    if (!w) {
        free(k);
        lrun_cancel_wait(r);
        return luaL_error(L, "not enough memory");
    }
    put_name(&k->req, &rm->n);
    buf_str(&k->req, what);
    if (!field)
        put_values(L, first, lua_gettop(L), &k->req);
    if (k->req.err) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s", k->req.err);
        call_free(k);
        wait_free(w);
        lrun_cancel_wait(r);
        return luaL_error(L, "%s: %s", what.ptr, msg);
    }
    k->w = w;
    int rc = post_call(k);
    lrun_cancel_wait(r);   /* as lrun_wait begins; the answer comes through the mailbox, later */
    if (rc != 0) {
        wait_free(w);
        lua_pushnil(L);
        lua_pushstring(L, post_failure(rc));
        return 2;
    }
    lrun_own_wait(r, wait_detach, w);
    int base = lua_gettop(L);
    lua_pushlightuserdata(L, &lrun_yield_tag);
    return lua_yieldk(L, 1, (lua_KContext)base, call_k);
}

/* rm:method(...): upvalue 1 is the method's name. */
static int remote_method(lua_State *L)
{
    lremote *rm = luaL_checkudata(L, 1, REMOTE_MT);
    return call_remote(L, rm, lslice(L, lua_upvalueindex(1)), false, 2);
}

/* ---- listings -------------------------------------------------------------------------- */

int lremote_list(lua_State *L, nf_endpoint *ep, int what, nf_slice arg1, nf_slice arg2)
{
    nf_lua_app *a = lapp_of(L);
    static const char *const names[] = { "", "server:connections", "server:get", "server:get_all", "server:members" };
    lrun *r = lrun_begin_wait(L, names[what]);   /* raises where code may not wait */
    lrgather *gt = calloc(1, sizeof *gt);
    lrwait *w = gt ? wait_new(a, r, ask_timeout_ms(a)) : NULL;   /* what C does there, between two iterations */
    if (!w) {
        free(gt);
        lrun_cancel_wait(r);
        return luaL_error(L, "not enough memory");
    }
    w->gather = gt;
    gt->w = w;
    gt->what = (uint8_t)what;
    list_local(a, ep, (uint8_t)what, arg1, arg2, &gt->parts);
    const char *path = ep ? nf_endpoint_path(ep) : "";
    unsigned self = self_index(a);
    gt->remaining = 1;   /* this call's own, dropped below: no answer can end it meanwhile */
    for (unsigned i = 0; i < a->worker_count && !gt->failed; i++) {
        if (i == self)
            continue;
        lrcall *k = call_new(a, i, OP_LIST);
        if (!k) {
            gather_fail(gt, "out of memory");
            break;
        }
        k->gather = gt;
        buf_u8(&k->req, (uint8_t)what);
        buf_str(&k->req, nf_slice_of(path, strlen(path)));
        buf_str(&k->req, arg1);
        buf_str(&k->req, arg2);
        int rc;
        if (k->req.err) {
            call_free(k);
            rc = NF_ENOMEM;
        } else {
            rc = post_call(k);
        }
        if (rc != 0)
            gather_fail(gt, rc == NF_ENOMEM ? "out of memory" : post_failure(rc));
        else
            gt->remaining++;
    }
    if (--gt->remaining == 0) {   /* nothing went out: every post failed (gt->failed says why) */
        lrun_cancel_wait(r);
        char err[sizeof gt->err];
        snprintf(err, sizeof err, "%s", gt->failed ? gt->err : "no worker could be asked");
        wait_free(w);   /* and gt, first: pushing may raise, and nothing may outlive this call */
        return lmsg_push_error(L, err, strlen(err));
    }
    lrun_own_wait(r, wait_detach, w);
    return lrun_wait(L, r);
}

/* ---- remote objects ----------------------------------------------------------------- */

static const char *const CONN_METHODS[] = { "set", "get", "increment", "decrement", "namespace", "namespaces",
                                            "connect", "close", "write", "is_closed", NULL };
static const char *const NS_METHODS[] = { "emit", "ask", "join_room", "room", "rooms", "leave_all", "disconnect",
                                          "broadcast", "is_connected", NULL };
static const char *const ROOM_METHODS[] = { "emit", "ask", "broadcast", "leave", NULL };

static bool listed(const char *const *list, const char *k)
{
    for (; *list; list++)
        if (strcmp(*list, k) == 0)
            return true;
    return false;
}

/* The copy of rm's name with another kind: the conn of an ns, the ns of a room. */
static void push_up(lua_State *L, const lremote *rm, uint8_t kind)
{
    lrname n = rm->n;
    n.kind = kind;
    if (kind == K_CONN)
        n.ns = NF_SLICE_EMPTY;
    n.room = NF_SLICE_EMPTY;
    push_named(L, &n);
}

static int remote_index(lua_State *L)
{
    lremote *rm = luaL_checkudata(L, 1, REMOTE_MT);
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
    if (!k)
        return 0;
    uint8_t kind = rm->n.kind;
    if (strcmp(k, "remote") == 0) {
        lua_pushboolean(L, 1);
        return 1;
    }
    if (strcmp(k, "worker") == 0) {
        lua_pushinteger(L, (lua_Integer)rm->n.worker + 1);
        return 1;
    }
    if (strcmp(k, "id") == 0) {
        lpush_slice(L, rm->n.id);
        return 1;
    }
    if (strcmp(k, "server") == 0) {
        lserver_push(L, find_endpoint(lapp_of(L), rm->n.path));
        return 1;
    }
    if (kind != K_CONN && strcmp(k, "namespace") == 0) {
        lpush_slice(L, rm->n.ns);
        return 1;
    }
    if (kind == K_NS && strcmp(k, "conn") == 0) {
        push_up(L, rm, K_CONN);
        return 1;
    }
    if (kind == K_ROOM && strcmp(k, "name") == 0) {
        lpush_slice(L, rm->n.room);
        return 1;
    }
    if (kind == K_ROOM && strcmp(k, "ns") == 0) {
        push_up(L, rm, K_NS);
        return 1;
    }
    bool field = remote_field(kind, k);
    const char *const *methods = kind == K_CONN ? CONN_METHODS : kind == K_NS ? NS_METHODS : ROOM_METHODS;
    if (!field && !listed(methods, k))
        return 0;
    if (field)
        return call_remote(L, rm, lslice(L, 2), true, 3);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, remote_method, 1);
    return 1;
}

static int remote_eq(lua_State *L)
{
    lremote *x = test_remote(L, 1), *y = test_remote(L, 2);
    lua_pushboolean(L, x && y && x->n.kind == y->n.kind && x->n.worker == y->n.worker &&
                           x->n.serial == y->n.serial && nf_slice_eq(x->n.ns, y->n.ns) &&
                           nf_slice_eq(x->n.room, y->n.room));
    return 1;
}

static int remote_tostring(lua_State *L)
{
    lremote *rm = luaL_checkudata(L, 1, REMOTE_MT);
    const char *kind = rm->n.kind == K_CONN ? "conn" : rm->n.kind == K_NS ? "ns" : "room";
    nf_slice name = rm->n.kind == K_CONN ? rm->n.id : rm->n.kind == K_NS ? rm->n.ns : rm->n.room;
    lua_pushfstring(L, "%s(", kind);
    lpush_slice(L, name);
    lua_pushfstring(L, ", worker %d)", (int)rm->n.worker + 1);
    lua_concat(L, 3);
    return 1;
}

bool lremote_id(lua_State *L, int idx, nf_slice *id)
{
    lremote *rm = test_remote(L, idx);
    if (rm)
        *id = rm->n.id;
    return rm != NULL;
}

void lremote_open(lua_State *L)
{
    luaL_newmetatable(L, REMOTE_MT);
    lsb_lock_metatable(L, -1);
    lua_pushcfunction(L, remote_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, remote_eq);
    lua_setfield(L, -2, "__eq");
    lua_pushcfunction(L, remote_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
    luaL_newmetatable(L, GUARD_MT);
    lsb_lock_metatable(L, -1);
    lua_pushcfunction(L, guard_close);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
    push_trampoline(L);
    lua_pop(L, 1);
}

void lremote_free_waits(nf_lua_app *a)
{
    while (a->remote_waits)
        wait_free(a->remote_waits);   /* their answers can no longer come: the loop has ended */
}

void lremote_free_retries(nf_lua_app *a)
{
    while (a->remote_retries) {
        lrretry *rt = a->remote_retries;
        retry_unlink(rt);
        event_free(rt->ev);
        call_free(rt->k);   /* its asker's loop has ended too, or is ending: nobody waits */
        free(rt);
    }
}
