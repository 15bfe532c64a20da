/* cmd_test.c - `neffos test APP [SPECS...] [busted options]`: busted specs
 * against an app, in one process on one event loop.
 *
 * Two Lua states share the loop: the app's (an nf_lua_app serving on a
 * free 127.0.0.1 port, exactly as `neffos APP` would, sandbox included)
 * and the runner's, a plain Lua 5.4 with the standard libraries where busted
 * runs the specs. The specs reach the app through require "neffos.testing"
 * (scripts/neffos/testing.lua) and talk to it with the Lua client
 * (lua_client.c): whenever a spec waits, the loop turns, so the app's
 * handlers, timers and the clients all progress. Nothing is mocked but the
 * clock, and only when asked: with { fake_clock = true } the app's
 * neffos.after / every / sleep run on a clock that only app:advance(s)
 * moves (scripts/neffos/fakeclock.lua).
 *
 * The server's log goes to a buffer the specs read (app:log(),
 * app:wait_log()); NEFFOS_TEST_LOG=1 also prints it to stderr. */
#include <event2/event.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "lua_client.h"
#include "lua_internal.h"
#include "shdict.h"
#include "nf_cmds.h"
#include "nf_limits.h"

#define TAPP_MT "neffos.testing.app"
#define LOG_CAP 20000            /* lines kept; older ones are dropped */

typedef struct tapp {
    nf_lua_app *app;
    nf_shdict *shared;     /* its neffos.shared, fresh for each app started */
    nf_host *host;
    bool fake_clock;
    struct tapp *next;           /* every app started, for the final cleanup */
} tapp;

static struct {
    struct event_base *base;
    const char *scripts;
    tapp *apps;
    char **lines;                /* ring of LOG_CAP */
    size_t total;                /* lines ever logged */
    bool echo;
} g;

/* ---- the log ----------------------------------------------------------------------- */

static const char *const level_names[] = { "debug", "info", "warn", "error" };

static void log_sink(void *ud, nf_log_level level, const char *text)
{
    (void)ud;
    char *line;
    if (asprintf(&line, "%s %s", level_names[level < NF_LOG_OFF ? level : NF_LOG_ERROR], text) < 0)
        return;
    if (g.echo)
        fprintf(stderr, "[log] %s\n", line);
    size_t slot = g.total % LOG_CAP;
    free(g.lines[slot]);
    g.lines[slot] = line;
    g.total++;
}

/* host.log_lines(after) -> { lines after index `after` }, total */
static int t_log_lines(lua_State *L)
{
    lua_Integer after = luaL_optinteger(L, 1, 0);
    size_t first = g.total > LOG_CAP ? g.total - LOG_CAP : 0;
    if (after < (lua_Integer)first)
        after = (lua_Integer)first;
    lua_newtable(L);
    int n = 0;
    for (size_t i = (size_t)after; i < g.total; i++) {
        lua_pushstring(L, g.lines[i % LOG_CAP]);
        lua_rawseti(L, -2, ++n);
    }
    lua_pushinteger(L, (lua_Integer)g.total);
    return 2;
}

/* host.now(): monotonic seconds, for the specs' deadlines. */
static int t_now(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
    return 1;
}

/* ---- the fake clock's hooks in the app's state ---------------------------------------- */

/* spawn(fn): runs fn as a run of its own, like a timer firing (it may wait). */
static int f_spawn(lua_State *L)
{
    nf_lua_app *a = lapp_of(L);
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_pushvalue(L, 1);
    lua_xmove(L, a->L, 1);
    lrun_spawn(a, "timer");
    return 0;
}

/* park(register): suspends the calling run; register(handle) is called
 * first with what unpark(handle) resumes it by. */
static int f_park(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lrun *r = lrun_begin_wait(L, "neffos.sleep");
    lua_pushvalue(L, 1);
    lua_pushlightuserdata(L, r);
    lua_call(L, 1, 0);
    return lrun_wait(L, r);
}

static int f_unpark(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TLIGHTUSERDATA);
    lrun *r = lua_touserdata(L, 1);
    lrun_deliver(r, 0);
    return 0;
}

/* The version whose top level runs now, or 0 inside a handler or timer:
 * a reload cancels the timers of the top level it replaces. */
static int f_top_level_version(lua_State *L)
{
    nf_lua_app *a = lapp_of(L);
    lua_pushinteger(L, a->current ? 0 : (lua_Integer)a->loading);
    return 1;
}

/* Calls fakeclock[fn](args...) in the app's state: nargs on a->L's top. */
static int fake_call(tapp *t, const char *fn, int nargs, int nres, char *err, size_t errcap)
{
    lua_State *A = t->app->L;
    lua_getglobal(A, "require");
    lua_pushliteral(A, "neffos.fakeclock");
    if (lua_pcall(A, 1, 1, 0) != LUA_OK) {
        snprintf(err, errcap, "%s", lua_tostring(A, -1));
        lua_pop(A, 1 + nargs);
        return -1;
    }
    lua_getfield(A, -1, fn);
    lua_remove(A, -2);
    lua_insert(A, -(nargs + 1));
    if (lrun_pcall(t->app, nargs, nres) != LUA_OK) {
        snprintf(err, errcap, "%s", lua_tostring(A, -1));
        lua_pop(A, 1);
        return -1;
    }
    return 0;
}

static int install_fake_clock(tapp *t, char *err, size_t errcap)
{
    lua_State *A = t->app->L;
    static const luaL_Reg fns[] = {
        { "spawn", f_spawn },
        { "park", f_park },
        { "unpark", f_unpark },
        { "top_level_version", f_top_level_version },
        { NULL, NULL },
    };
    luaL_newlib(A, fns);
    return fake_call(t, "install", 1, 0, err, errcap);
}

/* ---- apps under test ------------------------------------------------------------------ */

/* neffos.shared of an app under test (the server's default --shared-dict-bytes). */
#define NF_SHARED_TEST_BYTES (16u << 20)

static void tapp_stop(tapp *t)
{
    if (!t->app)
        return;
    nf_lua_stop(t->app);
    nf_host_free(t->host);
    nf_lua_free(t->app);
    nf_shdict_free(t->shared);
    t->app = NULL;
    t->host = NULL;
    t->shared = NULL;
}

static tapp *check_tapp(lua_State *L)
{
    tapp *t = *(tapp **)luaL_checkudata(L, 1, TAPP_MT);
    if (!t->app)
        luaL_error(L, "this app was stopped");
    return t;
}

/* host.start(path, fake_clock) -> app | nil, "file:line: message" */
static int t_start(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    bool fake = lua_toboolean(L, 2);
    char err[1024];
    tapp *t = calloc(1, sizeof *t);
    if (!t)
        return luaL_error(L, "out of memory");
    nf_lua_options lo = {
        .app_path = path,
        .scripts_dir = g.scripts,
        .default_endpoint = "/echo",
        .memory_limit = (size_t)256 << 20,
        .instruction_limit = 100000000,
    };
    nf_limits limits = nf_limits_default();
    t->fake_clock = fake;
    t->shared = nf_shdict_new(NF_SHARED_TEST_BYTES);
    lo.shared = t->shared;
    t->app = t->shared ? nf_lua_new(g.base, &lo, err, sizeof err) : NULL;
    if (!t->shared)
        snprintf(err, sizeof err, "out of memory");
    if (!t->app)
        goto fail;
    t->host = nf_host_new(g.base, &limits, nf_lua_ops(), t->app);
    if (!t->host) {
        snprintf(err, sizeof err, "cannot create the host");
        goto fail;
    }
    if (fake && install_fake_clock(t, err, sizeof err) != 0)
        goto fail;
    if (nf_lua_load(t->app, t->host, err, sizeof err) != 0)
        goto fail;
    if (nf_host_listen(t->host, "127.0.0.1", 0, err, sizeof err) != 0)
        goto fail;
    t->next = g.apps;
    g.apps = t;
    *(tapp **)lua_newuserdatauv(L, sizeof(tapp *), 0) = t;
    luaL_setmetatable(L, TAPP_MT);
    return 1;
fail:
    if (t->host)
        nf_host_free(t->host);
    if (t->app)
        nf_lua_free(t->app);
    nf_shdict_free(t->shared);
    free(t);
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
}

static int app_port(lua_State *L)
{
    lua_pushinteger(L, nf_host_port(check_tapp(L)->host));
    return 1;
}

/* app:endpoints() -> { "/echo", ... } */
static int app_endpoints(lua_State *L)
{
    tapp *t = check_tapp(L);
    lua_newtable(L);
    int n = 0;
    for (nf_endpoint *ep = nf_host_endpoint_next(t->host, NULL); ep; ep = nf_host_endpoint_next(t->host, ep)) {
        lua_pushstring(L, nf_endpoint_path(ep));
        lua_rawseti(L, -2, ++n);
    }
    return 1;
}

static int app_stop(lua_State *L)
{
    tapp *t = *(tapp **)luaL_checkudata(L, 1, TAPP_MT);
    tapp_stop(t);
    return 0;
}

static char *join_path(const char *dir, const char *file)
{
    char *p;
    return asprintf(&p, "%s/%s", dir, file) < 0 ? NULL : p;
}

/* app:reload([dir]) -> true | nil, err. With dir, the app is served from
 * that directory from now on (testing.lua copies it there first). */
static int app_reload(lua_State *L)
{
    tapp *t = check_tapp(L);
    nf_lua_app *a = t->app;
    char err[1024];
    if (!lua_isnoneornil(L, 2)) {
        const char *dir = luaL_checkstring(L, 2);
        const char *base = strrchr(a->main_file, '/');
        char *main_file = join_path(dir, base ? base + 1 : a->main_file);
        char *app_dir = strdup(dir);
        if (!main_file || !app_dir) {
            free(main_file);
            free(app_dir);
            return luaL_error(L, "out of memory");
        }
        free(a->main_file);
        free(a->app_dir);
        a->main_file = main_file;
        a->app_dir = app_dir;
    }
    int rc = nf_lua_reload(a, false, err, sizeof err);
    if (rc != NF_RELOAD_SWAPPED && rc != NF_RELOAD_UNCHANGED) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    if (t->fake_clock) {
        lua_pushinteger(a->L, (lua_Integer)a->version);
        if (fake_call(t, "cancel_before", 1, 0, err, sizeof err) != 0)
            return luaL_error(L, "%s", err);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* The directory the app is served from (a copy after a reload with files). */
static int app_dir(lua_State *L)
{
    tapp *t = check_tapp(L);
    lua_pushstring(L, t->app->app_dir);
    lua_pushstring(L, t->app->main_file);
    return 2;
}

/* app:advance(seconds) -> timers fired */
static int app_advance(lua_State *L)
{
    tapp *t = check_tapp(L);
    double s = luaL_checknumber(L, 2);
    if (!t->fake_clock)
        return luaL_error(L, "app:advance needs an app started with { fake_clock = true }");
    if (!(s >= 0))
        return luaL_argerror(L, 2, "seconds must be >= 0");
    char err[1024];
    lua_pushnumber(t->app->L, s);
    if (fake_call(t, "advance", 1, 1, err, sizeof err) != 0)
        return luaL_error(L, "%s", err);
    lua_pushinteger(L, lua_tointeger(t->app->L, -1));
    lua_pop(t->app->L, 1);
    return 1;
}

static int app_now(lua_State *L)
{
    tapp *t = check_tapp(L);
    char err[1024];
    if (!t->fake_clock) {
        lua_pushnil(L);
        return 1;
    }
    if (fake_call(t, "now", 0, 1, err, sizeof err) != 0)
        return luaL_error(L, "%s", err);
    lua_pushnumber(L, lua_tonumber(t->app->L, -1));
    lua_pop(t->app->L, 1);
    return 1;
}

static void open_host_module(lua_State *L, const char *app)
{
    luaL_newmetatable(L, TAPP_MT);
    static const luaL_Reg methods[] = {
        { "port", app_port }, { "endpoints", app_endpoints }, { "stop", app_stop },
        { "reload", app_reload }, { "dir", app_dir }, { "advance", app_advance }, { "now", app_now },
        { NULL, NULL },
    };
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    static const luaL_Reg fns[] = { { "start", t_start }, { "log_lines", t_log_lines }, { "now", t_now }, { NULL, NULL } };
    luaL_newlib(L, fns);
    lua_pushstring(L, app);
    lua_setfield(L, -2, "app");
    lua_pushstring(L, g.scripts);
    lua_setfield(L, -2, "scripts_dir");
    lua_setfield(L, -2, "neffos.testing.host");
    lua_pop(L, 1);

    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "neffos.client.errors");
}

/* ---- the command ---------------------------------------------------------------------- */

/* os.exit inside the runner: busted ends with it. Raised as an error that
 * carries the code, so the apps are stopped and freed first. */
static int exit_as_error(lua_State *L)
{
    int code = lua_isboolean(L, 1) ? (lua_toboolean(L, 1) ? 0 : 1) : (int)luaL_optinteger(L, 1, 0);
    lua_newtable(L);
    lua_pushinteger(L, code);
    lua_setfield(L, -2, "neffos_exit");
    return lua_error(L);
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void usage_test(FILE *f)
{
    fprintf(f, "usage: neffos test APP [SPECS...] [busted options]\n"
               "  runs busted specs against APP (a directory with app.lua, or a .lua file);\n"
               "  SPECS default to APP/spec. The specs use require \"neffos.testing\" (docs/lua-api.md, \"Testing\").\n"
               "  NEFFOS_TEST_LOG=1 prints the server's log too.\n");
}

int nf_cmd_test(int argc, char **argv, const char *scripts_dir)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage_test(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *app = argv[1];
    struct stat st;
    if (stat(app, &st) != 0) {
        fprintf(stderr, "neffos test: %s: no such app (a directory with app.lua, or a .lua file)\n", app);
        return 2;
    }
    g.scripts = scripts_dir;
    g.echo = getenv("NEFFOS_TEST_LOG") && strcmp(getenv("NEFFOS_TEST_LOG"), "0") != 0;
    g.lines = calloc(LOG_CAP, sizeof *g.lines);
    g.base = event_base_new();
    if (!g.lines || !g.base) {
        fprintf(stderr, "neffos test: out of memory\n");
        return 1;
    }
    nf_log_set_sink(log_sink, NULL);

    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    *(void **)lua_getextraspace(L) = NULL;   /* not an app: waits run the loop */
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", scripts_dir, scripts_dir, lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);
    lclient_open(L, g.base);
    open_host_module(L, app);
    lua_getglobal(L, "os");
    lua_pushcfunction(L, exit_as_error);
    lua_setfield(L, -2, "exit");
    lua_pop(L, 1);

    /* arg: the specs (APP/spec by default) and busted's own options. */
    lua_createtable(L, argc, 1);
    lua_pushliteral(L, "neffos test");
    lua_rawseti(L, -2, 0);
    int n = 0;
    bool have_spec = false;
    for (int i = 2; i < argc; i++) {
        if (argv[i][0] != '-')
            have_spec = true;
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, ++n);
    }
    if (!have_spec) {
        char *spec = NULL;
        if (is_dir(app))
            spec = join_path(app, "spec");
        else {
            const char *slash = strrchr(app, '/');
            spec = slash ? NULL : strdup("spec");
            if (slash && asprintf(&spec, "%.*s/spec", (int)(slash - app), app) < 0)
                spec = NULL;
        }
        lua_pushstring(L, spec ? spec : "spec");
        lua_rawseti(L, -2, ++n);
        free(spec);
    }
    lua_setglobal(L, "arg");

    int rc = 0;
    static const char runner[] = "require 'busted.runner'({ standalone = false })";
    if (luaL_loadbuffer(L, runner, sizeof runner - 1, "@neffos test") != LUA_OK
        || lua_pcall(L, 0, 0, 0) != LUA_OK) {
        if (lua_istable(L, -1)) {
            lua_getfield(L, -1, "neffos_exit");
            rc = (int)lua_tointeger(L, -1);
        } else {
            fprintf(stderr, "neffos test: %s\n", lua_tostring(L, -1));
            rc = 1;
        }
    }
    lua_settop(L, 0);
    lua_close(L);   /* the clients first: they are of the runner's state */
    while (g.apps) {
        tapp *t = g.apps;
        g.apps = t->next;
        tapp_stop(t);
        free(t);
    }
    nf_log_set_sink(NULL, NULL);
    for (size_t i = 0; i < LOG_CAP; i++)
        free(g.lines[i]);
    free(g.lines);
    event_base_free(g.base);
    return rc;
}
