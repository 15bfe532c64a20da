/* nf_lua.h - the Lua application host: what main() uses.
 *
 * One nf_lua_app owns one lua_State that runs one app (a directory with
 * app.lua, or a single .lua file). It implements nf_app_ops for the protocol
 * core, mounts the endpoints the app declares, and reloads the app in place. */
#ifndef NF_LUA_H
#define NF_LUA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct event_base;

typedef struct nf_lua_app nf_lua_app;

typedef struct nf_lua_options {
    const char *app_path;          /* directory holding app.lua, or a .lua file */
    const char *default_endpoint;  /* for servers that declare none; "/echo" if NULL */
    const char *scripts_dir;       /* where neffos.lua lives; NF_SCRIPTS_DIR if NULL */
    size_t memory_limit;           /* bytes the Lua heap may use while app code runs; 0 = no cap */
    uint64_t instruction_limit;    /* per handler run slice (until it waits); 0 = no limit */
    unsigned worker_id;            /* neffos.worker.id: 1..worker_count (0 = 1) */
    unsigned worker_count;         /* neffos.worker.count (--workers; 0 = 1) */
    struct nf_shdict *shared;      /* neffos.shared (shared by every worker), or NULL */
    struct nf_workers *workers;    /* the process's workers (worker_count > 1), or NULL */
} nf_lua_options;

/* Creates the Lua state and loads the neffos library (not the app yet).
 * NULL on failure, with a message in err. */
nf_lua_app *nf_lua_new(struct event_base *base, const nf_lua_options *opt, char *err, size_t errcap);
void nf_lua_free(nf_lua_app *a);

/* The callbacks to hand to nf_host_new(), with the app as their `app`. */
const nf_app_ops *nf_lua_ops(void);

/* Loads and validates the app. With a host, also mounts its endpoints and
 * makes it the serving version (start and reload); without one (--check) it
 * only validates. Returns 0, or -1 with "file:line: message" in err. */
int nf_lua_load(nf_lua_app *a, nf_host *h, char *err, size_t errcap);

/* How nf_lua_reload() ended. */
enum {
    NF_RELOAD_FAILED = -1,       /* err says why; the old version serves, nothing is reported */
    NF_RELOAD_SWAPPED = 0,       /* the new version serves; the host is healthy */
    NF_RELOAD_UNCHANGED = 1,     /* every file is byte-identical to what serves: nothing ran,
                                  * the host is marked healthy (a broken save was undone) */
    NF_RELOAD_SAME_FAILURE = 2,  /* the files are those the last, failed, attempt read */
    NF_RELOAD_PREPARED = 3,      /* nf_lua_reload_prepare: loaded and valid, waiting for commit */
};

/* Hot reload: load into a fresh environment, validate, swap. With
 * if_changed, first compares the files with what the serving version (and
 * the last failed attempt) loaded, by content, and loads only if they
 * differ: one save that raises several change events reloads once. A
 * failure is only returned (the caller decides when it is final); report
 * it with nf_lua_reload_failed(). */
int nf_lua_reload(nf_lua_app *a, bool if_changed, char *err, size_t errcap);
/* The two halves of nf_lua_reload, for a process of several workers that
 * swap all or none (--workers N): prepare loads and validates the new
 * version (the old one keeps serving) and returns NF_RELOAD_PREPARED or what
 * nf_lua_reload would; commit swaps it in (NF_RELOAD_SWAPPED or
 * NF_RELOAD_FAILED); abort drops it. A second prepare drops the first. */
int nf_lua_reload_prepare(nf_lua_app *a, bool if_changed, char *err, size_t errcap);
int nf_lua_reload_commit(nf_lua_app *a, char *err, size_t errcap);
void nf_lua_reload_abort(nf_lua_app *a);

/* Logs a failed reload and marks the host unhealthy (/health 503 with err)
 * until the next good reload. */
void nf_lua_reload_failed(nf_lua_app *a, const char *err);

/* The files a load reads (for the watcher): the main file, every file the
 * serving version and the last load attempt read, and the paths where they
 * looked for a module in vain (its appearance changes what loads). Calls fn
 * once per path. */
void nf_lua_each_source_file(nf_lua_app *a, void (*fn)(void *ud, const char *file), void *ud);
/* The app's directory (of app.lua, or of the single .lua file) as given. */
const char *nf_lua_app_dir(const nf_lua_app *a);

/* Shutdown begins: cancels timers and refuses new ones. Handlers already
 * running go on; the drain closes their connections as they finish. */
void nf_lua_stop(nf_lua_app *a);
/* At the end of the drain: handlers still sleeping, waiting for another
 * worker (remote calls, listings) or for the Lua client (a dial, an ask of
 * a dialled connection), fail with "server shutting down". */
void nf_lua_abort_waiting(nf_lua_app *a);

/* The broker the app asked for with neffos.scale_out{} (read after the
 * first load): kind "redis" or "nats", URL and prefix (empty = default),
 * copied into the buffers. False if the app asked for none. */
bool nf_lua_scale_out(nf_lua_app *a, char *kind, size_t kcap, char *url, size_t ucap, char *prefix, size_t pcap);

/* The watchdog to tell which app code runs (watchdog.h); NULL for none. */
struct nf_watchdog;
void nf_lua_set_watchdog(nf_lua_app *a, struct nf_watchdog *wd);

/* Current Lua heap size in bytes. */
size_t nf_lua_memory(const nf_lua_app *a);

#endif
