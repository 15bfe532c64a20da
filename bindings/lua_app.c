/* lua_app.c - the app: one Lua state, the serving version, its endpoints.
 *
 * Loading (start, reload and --check alike) is neffos.load_app() in
 * scripts/neffos.lua: it runs the app's top level in a fresh environment
 * (fresh globals, fresh module cache for the app's own files) under a
 * protected call and validates what it returns. Only when that succeeded is
 * the new version swapped in, in one step between two loop iterations (we
 * run on the loop, so no handler runs meanwhile): endpoints are mounted,
 * reconfigured or unmounted and each endpoint's description is replaced.
 * Handlers already running keep the closures they started with. */
#include <errno.h>
#include <event2/event.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "lua_internal.h"

#ifndef NF_SCRIPTS_DIR
#define NF_SCRIPTS_DIR "scripts"
#endif

unsigned lopt_ms(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx))
        return 0;
    lua_Number s = luaL_checknumber(L, idx);
    if (!(s >= 0) || s > 4e6)
        luaL_error(L, "timeout out of range: %f seconds", (double)s);
    lua_Number ms = s * 1000;
    unsigned v = (unsigned)ms;
    return v < ms ? v + 1 : (v == 0 && s > 0 ? 1 : v);
}

lendpoint *lapp_endpoint(nf_lua_app *a, nf_endpoint *ep)
{
    (void)a;
    return ep ? nf_endpoint_app_data(ep) : NULL;
}

void lapp_push_desc(nf_lua_app *a, nf_endpoint *ep)
{
    lendpoint *le = lapp_endpoint(a, ep);
    if (le)
        lua_rawgeti(a->L, LUA_REGISTRYINDEX, le->desc_ref);
    else
        lua_pushnil(a->L);
}

static int panic(lua_State *L)
{
    nf_error("Lua panic: %s", lua_tostring(L, -1));
    abort();
}

/* ---- creation ------------------------------------------------------------------- */

static char *dup_str(const char *s) { return s ? strdup(s) : NULL; }

/* Finds the main file and directory of APP (a directory or a .lua file). */
static int resolve_app(nf_lua_app *a, const char *path, char *err, size_t errcap)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        size_t n = strlen(path);
        while (n > 1 && path[n - 1] == '/')
            n--;
        a->app_dir = strndup(path, n);
        a->main_file = malloc(n + sizeof "/app.lua");
        if (!a->app_dir || !a->main_file)
            return snprintf(err, errcap, "out of memory"), -1;
        memcpy(a->main_file, path, n);
        memcpy(a->main_file + n, "/app.lua", sizeof "/app.lua");
        if (stat(a->main_file, &st) != 0) {
            snprintf(err, errcap, "%s: no app.lua in this directory", path);
            return -1;
        }
        return 0;
    }
    a->main_file = strdup(path);
    const char *slash = strrchr(path, '/');
    a->app_dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!a->main_file || !a->app_dir)
        return snprintf(err, errcap, "out of memory"), -1;
    return 0;
}

/* require "neffos" with scripts_dir first on package.path. */
static int open_library(nf_lua_app *a, char *err, size_t errcap)
{
    lua_State *L = a->L;
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/?.lua", a->scripts_dir);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "neffos");
    if (lrun_pcall(a, 1, 0) != LUA_OK) {
        snprintf(err, errcap, "loading %s/neffos.lua: %s", a->scripts_dir, lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}

nf_lua_app *nf_lua_new(struct event_base *base, const nf_lua_options *opt, char *err, size_t errcap)
{
    nf_lua_app *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    a->base = base;
    a->version_ref = LUA_NOREF;
    a->prepared_ref = LUA_NOREF;
    a->worker_id = opt->worker_id ? opt->worker_id : 1;
    a->worker_count = opt->worker_count ? opt->worker_count : 1;
    a->shared = opt->shared;
    a->workers = opt->workers;
    a->sb.cap = opt->memory_limit;
    a->sb.limit = opt->instruction_limit;
    a->sb.step = (int)(a->sb.limit / 100 < 100 ? 100 : a->sb.limit / 100 > 10000 ? 10000 : a->sb.limit / 100);
    a->app_path = dup_str(opt->app_path);
    a->scripts_dir = dup_str(opt->scripts_dir ? opt->scripts_dir : NF_SCRIPTS_DIR);
    a->default_endpoint = dup_str(opt->default_endpoint ? opt->default_endpoint : "/echo");
    if (!a->app_path || !a->scripts_dir || !a->default_endpoint) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }
    if (resolve_app(a, a->app_path, err, errcap) != 0)
        goto fail;

    a->L = lua_newstate(lsb_alloc, &a->sb);
    if (!a->L) {
        snprintf(err, errcap, "cannot create the Lua state");
        goto fail;
    }
    lua_State *L = a->L;
    lua_atpanic(L, panic);
    *(nf_lua_app **)lua_getextraspace(L) = a;   /* copied into every thread */
    luaL_openlibs(L);   /* the host side's libraries; apps get a sandbox (neffos.lua) */
    lpat_open(L);       /* metered pattern matching, before any Lua code takes string.* */
    lsb_install_hook(a, L);   /* threads inherit it */
    lconn_open(L);
    lns_open(L);
    lserver_open(L);
    lremote_open(L);
    ltimer_open(L);
    lhost_open(L);
    if (open_library(a, err, errcap) != 0)
        goto fail;
    return a;
fail:
    nf_lua_free(a);
    return NULL;
}

/* ---- loading ---------------------------------------------------------------------- */

/* "file:line: message\nstack traceback:..." -> the message part. */
static void first_part(const char *msg, char *out, size_t cap)
{
    const char *tb = msg ? strstr(msg, "\nstack traceback:") : NULL;
    size_t n = msg ? (tb ? (size_t)(tb - msg) : strlen(msg)) : 0;
    snprintf(out, cap, "%.*s", (int)n, msg ? msg : "unknown error");
}

/* Runs neffos.load_app; on success leaves the version record on the stack. */
static int load_version(nf_lua_app *a, char *err, size_t errcap)
{
    lua_State *L = a->L;
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "neffos");
    lua_remove(L, -2);
    lua_getfield(L, -1, "load_app");
    lua_remove(L, -2);
    lua_pushstring(L, a->main_file);
    lua_pushstring(L, a->app_dir);
    lua_createtable(L, 0, 2);
    lua_pushstring(L, a->default_endpoint);
    lua_setfield(L, -2, "default_endpoint");
    lua_pushstring(L, a->scripts_dir);
    lua_setfield(L, -2, "scripts_dir");

    a->loading = a->version + 1;
    char what[200];
    snprintf(what, sizeof what, "the top level of %s", a->main_file);
    int st = lrun_pcall_as(a, 3, 1, what);
    a->loading = 0;
    if (st != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        first_part(msg, err, errcap);
        nf_debug("load failed: %s", msg ? msg : "?");
        lua_pop(L, 1);
        ltimer_cancel_version(a, a->version + 1);   /* made by the failed top level */
        return -1;
    }
    return 0;
}

/* Reads version.configs[i] into cfg. Version record at `v`. */
static void read_config(lua_State *L, int v, int i, nf_endpoint_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    lua_getfield(L, v, "configs");
    lua_rawgeti(L, -1, i);
    lua_getfield(L, -1, "native_only");
    cfg->native_only = lua_toboolean(L, -1);
    lua_getfield(L, -2, "read_ms");
    cfg->read_timeout_ms = (unsigned)lua_tointeger(L, -1);
    lua_getfield(L, -3, "write_ms");
    cfg->write_timeout_ms = (unsigned)lua_tointeger(L, -1);
    lua_pop(L, 5);
}

static void drop_endpoint(nf_lua_app *a, lendpoint *le)
{
    nf_info("endpoint %s removed by the new code: closing its connections (1001)", nf_endpoint_path(le->ep));
    /* Forget the app data first: closing connections of an unmounted
     * endpoint run no handlers (its code is gone). */
    nf_endpoint_set_app_data(le->ep, NULL);
    nf_host_remove_endpoint(a->host, le->ep);
    lserver_detach(a->L, le->server_ref);
    luaL_unref(a->L, LUA_REGISTRYINDEX, le->server_ref);
    luaL_unref(a->L, LUA_REGISTRYINDEX, le->desc_ref);
    lcodec_forget_meta(a->L, le);
    free(le);
}

/* Builds what on_reload(old) receives from the old version record at v. */
static void push_old_info(nf_lua_app *a, int v)
{
    lua_State *L = a->L;
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, a->version);
    lua_setfield(L, -2, "version");
    if (v) {
        lua_getfield(L, v, "files");
        lua_setfield(L, -2, "files");
        lua_getfield(L, v, "loaded_at");
        lua_setfield(L, -2, "loaded_at");
        lua_createtable(L, 0, 0);
        lua_getfield(L, v, "servers");
        for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TTABLE; i++) {
            lua_pushliteral(L, "endpoint");   /* raw: an app's __index would run unguarded */
            lua_rawget(L, -2);
            lua_rawseti(L, -4, i);
            lua_pop(L, 1);
        }
        lua_pop(L, 2);
        lua_setfield(L, -2, "endpoints");
    }
}

/* Makes the version record at the top of the stack the serving one (pops
 * it). Returns 0, or -1 if an endpoint could not be mounted (then nothing
 * changed for the endpoints already serving). */
static int swap_in(nf_lua_app *a, char *err, size_t errcap)
{
    lua_State *L = a->L;
    int v = lua_gettop(L);
    unsigned next = a->version + 1;

    lua_pushnumber(L, (lua_Number)time(NULL));
    lua_setfield(L, v, "loaded_at");

    /* Mount or reconfigure every declared endpoint. Mounting can only fail
     * if the host refuses a path; then the endpoints handled so far already
     * serve the new descriptions, and the reload is reported as failed. */
    lua_getfield(L, v, "servers");
    int servers = lua_gettop(L);
    for (lua_Integer i = 1; lua_rawgeti(L, servers, i) == LUA_TTABLE; i++) {
        lua_pushliteral(L, "endpoint");   /* raw: descriptions are app tables */
        lua_rawget(L, -2);
        const char *path = lua_tostring(L, -1);
        nf_endpoint_config cfg;
        read_config(L, v, (int)i, &cfg);
        nf_endpoint *ep = nf_host_find_endpoint(a->host, path);
        lendpoint *le = ep ? nf_endpoint_app_data(ep) : NULL;
        if (ep && !le) {
            snprintf(err, errcap, "endpoint %s is already used by the host", path);
            lua_settop(L, v - 1);
            return -1;
        }
        if (!ep) {
            ep = nf_host_add_endpoint(a->host, path, &cfg);
            le = ep ? calloc(1, sizeof *le) : NULL;
            if (!le) {
                snprintf(err, errcap, "cannot mount endpoint %s", path);
                if (ep)
                    nf_host_remove_endpoint(a->host, ep);
                lua_settop(L, v - 1);
                return -1;
            }
            le->ep = ep;
            le->server_ref = lserver_new(L, ep);
            le->desc_ref = LUA_NOREF;
            le->meta_ref = LUA_NOREF;
            le->next = NULL;
            lendpoint **tail = &a->endpoints;
            while (*tail)
                tail = &(*tail)->next;
            *tail = le;
            nf_endpoint_set_app_data(ep, le);
            if (a->version > 0)
                nf_info("endpoint %s added by the new code", path);
        } else {
            nf_endpoint_configure(ep, &cfg);
        }
        lua_pop(L, 1);   /* endpoint */
        luaL_unref(L, LUA_REGISTRYINDEX, le->desc_ref);
        le->desc_ref = luaL_ref(L, LUA_REGISTRYINDEX);   /* pops the description */
        lcodec_forget_meta(L, le);
        le->seen = next;
    }
    lua_settop(L, v);

    /* Unmount what the new code no longer declares. */
    for (lendpoint **p = &a->endpoints; *p;) {
        lendpoint *le = *p;
        if (le->seen == next) {
            p = &le->next;
            continue;
        }
        *p = le->next;
        drop_endpoint(a, le);
    }

    /* The old version goes; its top-level timers with it. */
    int old_ref = a->version_ref;
    unsigned old = a->version;
    a->version_ref = luaL_ref(L, LUA_REGISTRYINDEX);   /* pops v */
    a->version = next;
    /* The watchdog's location cache anchors the handlers it names: now,
     * not at the next run, or reloads with no message between them would
     * keep every replaced version (and what its handlers hold) alive. */
    lrun_locs_clear(a);
    if (old_ref != LUA_NOREF) {
        ltimer_cancel_version(a, old);
        lua_rawgeti(L, LUA_REGISTRYINDEX, old_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, old_ref);
    } else {
        lua_pushnil(L);
    }
    int oldv = lua_gettop(L);

    /* on_reload(old) of every server that has one: after the swap, so it
     * sees the new code serving; an error is logged, the swap stands. */
    if (old_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, a->version_ref);
        lua_getfield(L, -1, "servers");
        for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TTABLE; i++) {
            lua_pushliteral(L, "on_reload");
            if (lua_rawget(L, -2) == LUA_TFUNCTION) {
                push_old_info(a, oldv);
                if (lrun_pcall(a, 1, 0) != LUA_OK) {
                    nf_error("on_reload failed: %s", lua_tostring(L, -1));
                    lua_pop(L, 1);
                }
            } else {
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 3);
    }
    lua_settop(L, oldv - 1);
    return 0;
}

int nf_lua_load(nf_lua_app *a, nf_host *h, char *err, size_t errcap)
{
    if (load_version(a, err, errcap) != 0)
        return -1;
    if (!h) {   /* --check: validated, nothing to serve */
        lua_pop(a->L, 1);
        ltimer_cancel_version(a, a->version + 1);
        return 0;
    }
    a->host = h;
    return swap_in(a, err, errcap);
}

/* Calls neffos.same_files(t) on the table t pushes (t is popped): are the
 * files a load read still byte-identical? False when unsure. */
static bool same_files(nf_lua_app *a, void (*push)(nf_lua_app *a))
{
    lua_State *L = a->L;
    int top = lua_gettop(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "neffos");
    lua_getfield(L, -1, "same_files");
    push(a);
    bool same = lua_type(L, -1) == LUA_TTABLE && lua_pcall(L, 1, 1, 0) == LUA_OK && lua_toboolean(L, -1);
    lua_settop(L, top);
    return same;
}

static void push_serving_digests(nf_lua_app *a)
{
    lua_rawgeti(a->L, LUA_REGISTRYINDEX, a->version_ref);
    lua_getfield(a->L, -1, "digests");
    lua_remove(a->L, -2);
}

/* neffos.last_digests: what the last load attempt read (it may have failed). */
static void push_attempt_digests(nf_lua_app *a)
{
    lua_getfield(a->L, -2, "last_digests");   /* -2: the neffos table, below same_files */
}

int nf_lua_reload_prepare(nf_lua_app *a, bool if_changed, char *err, size_t errcap)
{
    if (!a->host) {
        snprintf(err, errcap, "nothing is served");
        return NF_RELOAD_FAILED;
    }
    nf_lua_reload_abort(a);
    if (if_changed && a->version_ref != LUA_NOREF) {
        if (same_files(a, push_serving_digests)) {
            /* What is on disk is what serves (e.g. a broken save undone). */
            nf_debug("app files unchanged: no reload");
            nf_host_set_unhealthy(a->host, NULL);
            return NF_RELOAD_UNCHANGED;
        }
        if (same_files(a, push_attempt_digests))
            return NF_RELOAD_SAME_FAILURE;
    }
    clock_gettime(CLOCK_MONOTONIC, &a->prepared_at);
    if (load_version(a, err, errcap) != 0)
        return NF_RELOAD_FAILED;
    a->prepared_ref = luaL_ref(a->L, LUA_REGISTRYINDEX);
    return NF_RELOAD_PREPARED;
}

int nf_lua_reload_commit(nf_lua_app *a, char *err, size_t errcap)
{
    if (a->prepared_ref == LUA_NOREF) {
        snprintf(err, errcap, "no version prepared");
        return NF_RELOAD_FAILED;
    }
    lua_rawgeti(a->L, LUA_REGISTRYINDEX, a->prepared_ref);
    luaL_unref(a->L, LUA_REGISTRYINDEX, a->prepared_ref);
    a->prepared_ref = LUA_NOREF;
    if (swap_in(a, err, errcap) != 0)
        return NF_RELOAD_FAILED;
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - a->prepared_at.tv_sec) * 1e3 + (double)(t1.tv_nsec - a->prepared_at.tv_nsec) / 1e6;
    /* One line per reload: worker 1's (every worker swaps, or none). */
    if (a->worker_count > 1 && a->worker_id > 1)
        nf_debug("worker %u: reloaded %s: version %u serving", a->worker_id, a->main_file, a->version);
    else if (a->worker_count > 1)
        nf_info("reloaded %s: version %u serving on %u workers (loaded in %.1f ms)", a->main_file, a->version,
                a->worker_count, ms);
    else
        nf_info("reloaded %s: version %u serving (loaded in %.1f ms)", a->main_file, a->version, ms);
    nf_host_set_unhealthy(a->host, NULL);
    nf_host_count_reload(a->host, true);
    return NF_RELOAD_SWAPPED;
}

void nf_lua_reload_abort(nf_lua_app *a)
{
    if (a->prepared_ref == LUA_NOREF)
        return;
    luaL_unref(a->L, LUA_REGISTRYINDEX, a->prepared_ref);
    a->prepared_ref = LUA_NOREF;
    ltimer_cancel_version(a, a->version + 1);   /* made by its top level */
}

int nf_lua_reload(nf_lua_app *a, bool if_changed, char *err, size_t errcap)
{
    int rc = nf_lua_reload_prepare(a, if_changed, err, errcap);
    return rc == NF_RELOAD_PREPARED ? nf_lua_reload_commit(a, err, errcap) : rc;
}

void nf_lua_reload_failed(nf_lua_app *a, const char *err)
{
    char reason[1100];
    snprintf(reason, sizeof reason, "reload failed: %s", err);
    nf_error("%s (the previous version keeps serving)", reason);
    if (a->host) {
        nf_host_set_unhealthy(a->host, reason);
        nf_host_count_reload(a->host, false);
    }
}

/* ---- the rest ---------------------------------------------------------------------- */

/* Calls fn once per string key of the table at the top of the stack that
 * is not yet in the table at index seen, and adds it there. */
static void each_new_key(lua_State *L, int seen, void (*fn)(void *ud, const char *file), void *ud)
{
    int t = lua_gettop(L);
    if (!lua_istable(L, t))
        return;
    for (lua_pushnil(L); lua_next(L, t);) {
        lua_pop(L, 1);   /* the value; the key stays for lua_next */
        if (lua_type(L, -1) != LUA_TSTRING)
            continue;
        lua_pushvalue(L, -1);
        if (lua_rawget(L, seen) == LUA_TNIL) {
            fn(ud, lua_tostring(L, -2));
            lua_pushvalue(L, -2);
            lua_pushboolean(L, 1);
            lua_rawset(L, seen);
        }
        lua_pop(L, 1);
    }
}

void nf_lua_each_source_file(nf_lua_app *a, void (*fn)(void *ud, const char *file), void *ud)
{
    lua_State *L = a->L;
    int top = lua_gettop(L);
    fn(ud, a->main_file);
    lua_newtable(L);
    int seen = lua_gettop(L);
    lua_pushstring(L, a->main_file);
    lua_pushboolean(L, 1);
    lua_rawset(L, seen);
    if (a->version_ref != LUA_NOREF) {
        push_serving_digests(a);
        each_new_key(L, seen, fn, ud);
        lua_pop(L, 1);
    }
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    if (lua_getfield(L, -1, "neffos") == LUA_TTABLE) {
        lua_getfield(L, -1, "last_digests");
        each_new_key(L, seen, fn, ud);
    }
    lua_settop(L, top);
}

const char *nf_lua_app_dir(const nf_lua_app *a) { return a->app_dir; }

void nf_lua_stop(nf_lua_app *a)
{
    /* Timers stop; handlers already running go on: the drain waits for
     * them (their connections close as they finish) up to the grace period. */
    a->stopping = true;
    ltimer_cancel_all(a);
}

void nf_lua_abort_waiting(nf_lua_app *a)
{
    lrun_abort_waiting(a);
}

static void copy_field(lua_State *L, const char *name, char *out, size_t cap)
{
    size_t n = 0;
    const char *v = lua_getfield(L, -1, name) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : "";
    snprintf(out, cap, "%.*s", (int)n, v);
    lua_pop(L, 1);
}

bool nf_lua_scale_out(nf_lua_app *a, char *kind, size_t kcap, char *url, size_t ucap, char *prefix, size_t pcap)
{
    lua_State *L = a->L;
    int top = lua_gettop(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    bool found = lua_getfield(L, -1, "neffos") == LUA_TTABLE && lua_getfield(L, -1, "_scale_out") == LUA_TTABLE;
    if (found) {
        copy_field(L, "kind", kind, kcap);
        copy_field(L, "url", url, ucap);
        copy_field(L, "prefix", prefix, pcap);
    }
    lua_settop(L, top);
    return found;
}

size_t nf_lua_memory(const nf_lua_app *a) { return a->sb.used; }

void nf_lua_set_watchdog(nf_lua_app *a, struct nf_watchdog *wd) { a->wd = wd; }

static void app_conn_freed(void *app, nf_conn *c) { lconn_freed(app, c); }
static nf_invocation *app_current(void *app) { return lrun_current_invocation(app); }
/* The connections' garbage, collected now rather than at the next
 * allocation, so that the heap trim after them finds its pages free. */
static void app_trim(void *app) { lua_gc(((nf_lua_app *)app)->L, LUA_GCCOLLECT); }

const nf_app_ops *nf_lua_ops(void)
{
    static const nf_app_ops ops = {
        .has_namespace = linvoke_has_namespace,
        .generate_id = lids_generate,
        .invoke = linvoke_run,
        .conn_freed = app_conn_freed,
        .current = app_current,
        .refused = lrun_refused,
        .trim = app_trim,
    };
    return &ops;
}

void nf_lua_free(nf_lua_app *a)
{
    if (!a)
        return;
    a->stopping = true;
    lremote_free_retries(a);
    lremote_free_waits(a);
    if (a->L) {
        ltimer_cancel_all(a);
        lrun_forget_all(a);
        lrun_pool_free(a);
        lrun_locs_clear(a);
        while (a->endpoints) {
            lendpoint *le = a->endpoints;
            a->endpoints = le->next;
            free(le);
        }
        lua_close(a->L);
    }
    free(a->app_path);
    free(a->main_file);
    free(a->app_dir);
    free(a->scripts_dir);
    free(a->default_endpoint);
    free(a->shared_buf);
    lrun_spares_free(a);
    free(a);
}
