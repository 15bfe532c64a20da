/* reloader.h - when to hot reload the app: its files changed (inotify, or
 * polling where inotify sees nothing), or SIGHUP.
 *
 * One save is one reload: a change event only reloads if the files differ
 * from what serves (by content), so a save's intermediate states that leave
 * them as they were, and second events of the same save, do nothing. A
 * change whose load fails is taken as a save still in progress (a truncate
 * before the write, a rename dance, a network file system catching up): the
 * old code keeps serving and /health stays as it was until
 * NF_RELOAD_SETTLE_MS pass without a change that loads; then the failure is
 * reported (logged, /health 503). SIGHUP always reloads and reports at once. */
#ifndef NF_RELOADER_H
#define NF_RELOADER_H

#include "nf_lua.h"

struct event_base;
typedef struct nf_reloader nf_reloader;

/* How long a failed load of a changed file waits for the save to finish
 * before it counts (with polling: at least two poll intervals). */
#define NF_RELOAD_SETTLE_MS 500
/* The quiet period that folds one save's burst of events into one. */
#define NF_RELOAD_DEBOUNCE_MS 10

typedef struct nf_reloader_options {
    bool watch;         /* follow the app's files with inotify */
    unsigned poll_ms;   /* also compare them every poll_ms (0 = never) */
    /* Optional (--workers N: every worker or none): what reloads and what
     * reports a final failure, in place of nf_lua_reload and
     * nf_lua_reload_failed on the app; ud is theirs. */
    int (*reload)(void *ud, bool if_changed, char *err, size_t errcap);
    void (*failed)(void *ud, const char *err);
    void *ud;
} nf_reloader_options;

/* Starts watching/polling the app's files (after its first load). NULL only
 * when out of memory; inotify failing is logged (SIGHUP still reloads). */
nf_reloader *nf_reloader_new(struct event_base *base, nf_lua_app *app, const nf_reloader_options *opt);
/* SIGHUP: reload now, whatever changed; a failure is reported at once. */
void nf_reloader_reload(nf_reloader *r);
/* The drain began: no more reloads. */
void nf_reloader_stop(nf_reloader *r);
void nf_reloader_free(nf_reloader *r);

#endif
