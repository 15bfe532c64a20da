/* reloader.c - see reloader.h. */
#include "reloader.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "watch.h"

struct nf_reloader {
    nf_lua_app *app;
    nf_reloader_options opt;
    nf_watch *watch;           /* NULL: --no-watch, or inotify unavailable */
    struct event *settle;      /* armed while a failed load waits for the save to finish */
    struct event *poll;        /* --watch-poll-ms */
    struct timeval settle_tv;
    char failure[1024];        /* what the settle timer reports */
    bool stopped;
    bool warned;               /* "cannot watch" said once */
};

/* Follows `file` through its directory's parent, so that the directory
 * being replaced counts; a file outside the app's directory from its own. */
static void follow_file(void *ud, const char *file)
{
    nf_reloader *r = ud;
    const char *dir = nf_lua_app_dir(r->app);
    size_t n = strlen(dir);
    char from[4096];
    const char *rel;
    if (strncmp(file, dir, n) == 0 && file[n] == '/') {
        const char *slash = strrchr(dir, '/');
        const char *base = slash ? slash + 1 : dir;
        if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
            snprintf(from, sizeof from, "%s", dir);   /* "." or "/": nothing above to name it */
            rel = file + n + 1;
        } else {
            snprintf(from, sizeof from, "%.*s", slash ? (int)(slash == dir ? 1 : slash - dir) : 1, slash ? dir : ".");
            rel = file + (size_t)(base - dir);
        }
    } else {
        const char *slash = strrchr(file, '/');
        snprintf(from, sizeof from, "%.*s", slash ? (int)(slash == file ? 1 : slash - file) : 1, slash ? file : ".");
        rel = slash ? slash + 1 : file;
    }
    if (nf_watch_follow(r->watch, from, rel) != 0 && errno != ENOENT && !r->warned) {
        r->warned = true;
        nf_warn("cannot watch %s: %s (edits may need SIGHUP)", file, strerror(errno));
    }
}

/* Re-resolves every path the app reads, by name: a swapped symlink or a
 * replaced directory is watched where it now leads. */
static void follow_all(nf_reloader *r)
{
    if (!r->watch)
        return;
    nf_watch_begin(r->watch);
    nf_lua_each_source_file(r->app, follow_file, r);
    nf_watch_end(r->watch);
}

static int reload(nf_reloader *r, bool if_changed, char *err, size_t errcap)
{
    if (r->opt.reload)
        return r->opt.reload(r->opt.ud, if_changed, err, errcap);
    return nf_lua_reload(r->app, if_changed, err, errcap);
}

static void failed(nf_reloader *r, const char *err)
{
    if (r->opt.failed)
        r->opt.failed(r->opt.ud, err);
    else
        nf_lua_reload_failed(r->app, err);
}

static void on_change(void *ud)
{
    nf_reloader *r = ud;
    if (r->stopped)
        return;
    follow_all(r);   /* before loading: a new directory must be watched from now on */
    char err[sizeof r->failure];
    int rc = reload(r, true, err, sizeof err);
    if (rc == NF_RELOAD_FAILED) {
        /* Maybe the save is not finished: wait for the next change. */
        nf_debug("app files changed but do not load (yet), the previous version keeps serving: %s", err);
        memcpy(r->failure, err, sizeof err);
        event_add(r->settle, &r->settle_tv);
    } else if (rc != NF_RELOAD_SAME_FAILURE) {
        event_del(r->settle);
    }
    follow_all(r);   /* the files this load read */
}

static void on_settled(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    nf_reloader *r = ud;
    if (r->stopped)
        return;
    if (r->watch && nf_watch_writing(r->watch)) {   /* the save goes on: its end retries */
        event_add(r->settle, &r->settle_tv);
        return;
    }
    failed(r, r->failure);
}

static void on_poll(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    on_change(ud);
}

void nf_reloader_reload(nf_reloader *r)
{
    if (r->stopped)
        return;
    event_del(r->settle);
    follow_all(r);
    char err[sizeof r->failure];
    if (reload(r, false, err, sizeof err) == NF_RELOAD_FAILED)
        failed(r, err);
    follow_all(r);
}

nf_reloader *nf_reloader_new(struct event_base *base, nf_lua_app *app, const nf_reloader_options *opt)
{
    nf_reloader *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->app = app;
    r->opt = *opt;
    unsigned settle = NF_RELOAD_SETTLE_MS;
    if (opt->poll_ms && settle < 2 * opt->poll_ms)
        settle = 2 * opt->poll_ms;   /* the next poll may be the end of the save */
    r->settle_tv.tv_sec = settle / 1000;
    r->settle_tv.tv_usec = (settle % 1000) * 1000;
    r->settle = evtimer_new(base, on_settled, r);
    if (!r->settle)
        goto fail;
    if (opt->poll_ms) {
        struct timeval tv = { opt->poll_ms / 1000, (opt->poll_ms % 1000) * 1000 };
        r->poll = event_new(base, -1, EV_PERSIST, on_poll, r);
        if (!r->poll || event_add(r->poll, &tv) != 0)
            goto fail;
    }
    if (opt->watch) {
        r->watch = nf_watch_new(base, NF_RELOAD_DEBOUNCE_MS, ".lua", on_change, r);
        if (!r->watch)
            nf_warn("cannot watch the app's files (%s): reload with SIGHUP or --watch-poll-ms", strerror(errno));
        follow_all(r);
    }
    return r;
fail:
    nf_reloader_free(r);
    return NULL;
}

void nf_reloader_stop(nf_reloader *r)
{
    r->stopped = true;
    event_del(r->settle);
    if (r->poll)
        event_del(r->poll);
}

void nf_reloader_free(nf_reloader *r)
{
    if (!r)
        return;
    if (r->settle)
        event_free(r->settle);
    if (r->poll)
        event_free(r->poll);
    nf_watch_free(r->watch);
    free(r);
}
