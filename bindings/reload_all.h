/* reload_all.h - hot reload of a process of N workers, all or none.
 *
 * Worker 1 (index 0) owns the reloader (reloader.h) and decides when to
 * reload; this module then has every worker load and validate the new code
 * in its own Lua state, between two iterations of its own loop, while the
 * old code serves (nf_lua_reload_prepare). When every worker answered: all
 * prepared, so all swap (commit, on_reload once per worker); one failed, so
 * all drop what they prepared, the old code keeps serving everywhere and
 * every worker's /health reports the failure. A request to reload while a
 * round is under way runs once that round is over. */
#ifndef NF_RELOAD_ALL_H
#define NF_RELOAD_ALL_H

#include <stdbool.h>
#include <stddef.h>

#include "workers.h"
#include "nf_lua.h"

typedef struct nf_reload_all nf_reload_all;

/* apps[i] is worker i's app (the array is copied). NULL when out of memory. */
nf_reload_all *nf_reload_all_new(nf_workers *g, nf_lua_app *const *apps, unsigned n);
void nf_reload_all_free(nf_reload_all *r);

/* The reloader's hooks (nf_reloader_options.reload / .failed, ud = r), on
 * worker 1's thread. reload returns what worker 1's own attempt gave:
 * NF_RELOAD_FAILED (nothing else was tried), NF_RELOAD_UNCHANGED,
 * NF_RELOAD_SAME_FAILURE, or NF_RELOAD_SWAPPED once the round has started
 * (its outcome is logged and reported when every worker has answered). */
int nf_reload_all_reload(void *r, bool if_changed, char *err, size_t errcap);
void nf_reload_all_failed(void *r, const char *err);

#endif
