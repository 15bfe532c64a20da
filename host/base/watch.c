/* watch.c - see watch.h. */
#include "watch.h"

#include "clock.h"
#include "errors.h"

#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Complete files (closed after writing, moved in, deleted) and any change
 * of an entry (created, moved away: a step of a followed path), and the
 * directory itself going. IN_MODIFY alone would fire in the middle of a
 * write. */
#define WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_DELETE_SELF | \
                    IN_MOVE_SELF | IN_ONLYDIR)
#define COMPLETE (IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE)
/* Where a file of interest goes when it stops being written to: closed,
 * replaced, deleted, moved away. */
#define WRITE_ENDS (IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM)
#define MAX_LINKS 40   /* symlinks followed per path, as the kernel's ELOOP */
#define MAX_WRITING 32 /* files tracked as being written; more are not waited for */

/* A name looked up in a watched directory on the way to a followed file. */
typedef struct watch_name {
    char *name;
    bool any;   /* a step (directory, symlink, absent entry): any change counts;
                 * else a followed file: only complete ones */
} watch_name;

typedef struct watch_dir {
    int wd;
    bool source;   /* holds a followed file: suffix files count too */
    bool used;     /* needed by the set being built */
    watch_name *names;
    size_t nnames, cap;
} watch_dir;

/* A file of interest modified and not yet closed (IN_MODIFY, no
 * IN_CLOSE_WRITE yet): a write in progress. */
typedef struct watch_writing {
    int wd;
    char *name;
    struct timespec since;
} watch_writing;

struct nf_watch {
    int fd;
    struct event *readable;
    struct event *debounce;
    struct timeval delay;
    char *suffix;
    void (*cb)(void *ud);
    void *ud;
    watch_dir *dirs;
    size_t ndirs, cap;
    bool in_burst;
    struct timespec burst_start;
    watch_writing writing[MAX_WRITING];
    size_t nwriting;
};

static long ms_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t->tv_sec) * 1000L + (now.tv_nsec - t->tv_nsec) / 1000000L;
}

static void writing_end(nf_watch *w, int wd, const char *name);

/* ---- the set of directories ------------------------------------------------- */

static watch_dir *dir_of(nf_watch *w, int wd)
{
    for (size_t i = 0; i < w->ndirs; i++)
        if (w->dirs[i].wd == wd)
            return &w->dirs[i];
    return NULL;
}

static void dir_clear_names(watch_dir *d)
{
    for (size_t i = 0; i < d->nnames; i++)
        free(d->names[i].name);
    d->nnames = 0;
}

/* Watches `path` (again: inotify gives the same descriptor for the same
 * directory) and marks it used. NULL with errno on failure. */
static watch_dir *dir_add(nf_watch *w, const char *path, uint32_t extra)
{
    int wd = inotify_add_watch(w->fd, path, WATCH_MASK | IN_MASK_ADD | extra);
    if (wd < 0)
        return NULL;
    watch_dir *d = dir_of(w, wd);
    if (!d) {
        if (w->ndirs == w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 8;
            watch_dir *nd = realloc(w->dirs, cap * sizeof *nd);
            if (!nd) {
                inotify_rm_watch(w->fd, wd);
                errno = ENOMEM;
                return NULL;
            }
            w->dirs = nd;
            w->cap = cap;
        }
        d = &w->dirs[w->ndirs++];
        *d = (watch_dir){ .wd = wd };
    }
    d->used = true;
    return d;
}

static int dir_add_name(watch_dir *d, const char *name, size_t len, bool any)
{
    for (size_t i = 0; i < d->nnames; i++) {
        if (strlen(d->names[i].name) == len && memcmp(d->names[i].name, name, len) == 0) {
            d->names[i].any |= any;
            return 0;
        }
    }
    if (d->nnames == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        watch_name *nn = realloc(d->names, cap * sizeof *nn);
        if (!nn)
            return errno = ENOMEM, -1;
        d->names = nn;
        d->cap = cap;
    }
    char *copy = strndup(name, len);
    if (!copy)
        return errno = ENOMEM, -1;
    d->names[d->nnames++] = (watch_name){ copy, any };
    return 0;
}

void nf_watch_begin(nf_watch *w)
{
    for (size_t i = 0; i < w->ndirs; i++) {
        w->dirs[i].used = false;
        w->dirs[i].source = false;
        dir_clear_names(&w->dirs[i]);
    }
}

void nf_watch_end(nf_watch *w)
{
    size_t kept = 0;
    for (size_t i = 0; i < w->ndirs; i++) {
        watch_dir *d = &w->dirs[i];
        if (d->used) {
            w->dirs[kept++] = *d;
            continue;
        }
        /* E.g. the old `..2026_...` directory, or `app` moved to `app.old`:
         * the watch follows the inode, not the name, so it must go. */
        if (d->wd >= 0) {
            inotify_rm_watch(w->fd, d->wd);
            writing_end(w, d->wd, NULL);
        }
        dir_clear_names(d);
        free(d->names);
    }
    w->ndirs = kept;
}

/* ---- following a path --------------------------------------------------------- */

/* Joins "a" + "/" + "b" (b of length n; none if n is 0) into out, which
 * may be a. -1 if it does not fit. */
static int join(char *out, size_t cap, const char *a, const char *b, size_t n)
{
    size_t la = strlen(a);
    bool slash = n > 0 && la > 0 && a[la - 1] != '/';
    if (la + slash + n + 1 > cap)
        return -1;
    memmove(out, a, la);   /* a may be out */
    if (slash)
        out[la++] = '/';
    memcpy(out + la, b, n);
    out[la + n] = '\0';
    return 0;
}

/* nf_watch_follow's walk: 0, or -1 with errno set. */
static int follow(nf_watch *w, const char *from, const char *rel)
{
    char dir[PATH_MAX], next[PATH_MAX], rest[PATH_MAX], target[PATH_MAX];
    if (!realpath(from, dir))
        return -1;
    if (snprintf(rest, sizeof rest, "%s", rel) >= (int)sizeof rest)
        return errno = ENAMETOOLONG, -1;
    int links = 0;
    for (;;) {
        /* rest = "c/more..." : look c up in dir. */
        char *c = rest;
        while (*c == '/')
            c++;
        if (!*c)
            return 0;
        size_t n = strcspn(c, "/");
        char *more = c + n;
        while (*more == '/')
            more++;
        bool last = *more == '\0';
        if (n == 1 && c[0] == '.') {
            memmove(rest, more, strlen(more) + 1);
            continue;
        }
        if (n == 2 && c[0] == '.' && c[1] == '.') {   /* dir is canonical: lexical is right */
            char *slash = strrchr(dir, '/');
            if (slash)
                slash[slash == dir ? 1 : 0] = '\0';
            memmove(rest, more, strlen(more) + 1);
            continue;
        }
        watch_dir *d = dir_add(w, dir, 0);
        if (!d || join(next, sizeof next, dir, c, n) != 0)
            return d ? (errno = ENAMETOOLONG, -1) : -1;
        struct stat st;
        if (lstat(next, &st) != 0) {   /* not there (yet): its appearance counts */
            if (last && !(d = dir_add(w, dir, IN_MODIFY)))   /* and its writing, as below */
                return -1;
            return dir_add_name(d, c, n, true);
        }
        if (S_ISLNK(st.st_mode)) {
            if (dir_add_name(d, c, n, true) != 0)
                return -1;
            ssize_t tl = readlink(next, target, sizeof target - 1);
            if (tl < 0 || ++links > MAX_LINKS)
                return 0;   /* watched as far as it goes */
            target[tl] = '\0';
            /* rest = target + "/" + more; an absolute target starts at "/". */
            if (join(target, sizeof target, target, more, strlen(more)) != 0)
                return errno = ENAMETOOLONG, -1;
            memcpy(rest, target, strlen(target) + 1);
            if (rest[0] == '/')
                strcpy(dir, "/");
            continue;
        }
        if (S_ISDIR(st.st_mode) && !last) {
            if (dir_add_name(d, c, n, true) != 0)
                return -1;
            memcpy(dir, next, strlen(next) + 1);
            memmove(rest, more, strlen(more) + 1);
            continue;
        }
        if (!last)   /* a file where a directory should be: watch this step */
            return dir_add_name(d, c, n, true);
        /* The file's own directory: IN_MODIFY too, to know when a write
         * is in progress (nf_watch_writing). */
        if (!(d = dir_add(w, dir, IN_MODIFY)))
            return -1;
        d->source = true;
        return dir_add_name(d, c, n, false);
    }
}

int nf_watch_follow(nf_watch *w, const char *from, const char *rel)
{
    errno = 0;
    if (follow(w, from, rel) == 0)
        return 0;
    return errno > 0 ? -errno : NF_EIO;
}

/* ---- events -------------------------------------------------------------------- */

static void writing_end(nf_watch *w, int wd, const char *name)
{
    for (size_t i = 0; i < w->nwriting; i++) {
        if (w->writing[i].wd == wd && (!name || strcmp(w->writing[i].name, name) == 0)) {
            free(w->writing[i].name);
            w->writing[i--] = w->writing[--w->nwriting];
        }
    }
}

static void writing_begin(nf_watch *w, int wd, const char *name)
{
    for (size_t i = 0; i < w->nwriting; i++)
        if (w->writing[i].wd == wd && strcmp(w->writing[i].name, name) == 0)
            return;
    if (w->nwriting == MAX_WRITING)
        return;
    char *copy = strdup(name);
    if (!copy)
        return;
    watch_writing *e = &w->writing[w->nwriting++];
    e->wd = wd;
    e->name = copy;
    clock_gettime(CLOCK_MONOTONIC, &e->since);
}

/* Is the event about a file of interest: a followed one, or a suffix file of
 * a followed file's directory? (*any: every change of it counts.) */
static bool of_interest(const nf_watch *w, const watch_dir *d, const struct inotify_event *ev, bool *any)
{
    *any = false;
    for (size_t i = 0; i < d->nnames; i++) {
        if (strcmp(d->names[i].name, ev->name) == 0) {
            *any = d->names[i].any;
            return true;
        }
    }
    if (!d->source || ev->mask & IN_ISDIR || ev->name[0] == '.')   /* .app.lua.swp, .#app.lua */
        return false;
    if (!w->suffix)
        return true;
    size_t n = strlen(ev->name), s = strlen(w->suffix);
    return n > s && memcmp(ev->name + n - s, w->suffix, s) == 0;
}

static bool counts(nf_watch *w, const struct inotify_event *ev)
{
    if (ev->mask & IN_Q_OVERFLOW)
        return true;   /* something may have been missed */
    watch_dir *d = dir_of(w, ev->wd);
    if (!d)
        return false;   /* dropped by nf_watch_end */
    if (ev->mask & IN_IGNORED) {   /* the kernel dropped it: deleted, unmounted */
        writing_end(w, ev->wd, NULL);
        d->wd = -1;
        return true;
    }
    if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
        writing_end(w, ev->wd, NULL);
        return true;
    }
    bool any;
    if (ev->len == 0 || !of_interest(w, d, ev, &any))
        return false;
    if (ev->mask & IN_MODIFY) {
        writing_begin(w, ev->wd, ev->name);
        return false;   /* the write is not complete */
    }
    if (ev->mask & WRITE_ENDS)
        writing_end(w, ev->wd, ev->name);
    return any || (ev->mask & COMPLETE);
}

bool nf_watch_writing(nf_watch *w)
{
    for (size_t i = 0; i < w->nwriting; i++) {
        if (ms_since(&w->writing[i].since) < NF_WATCH_MAX_WRITE_MS)
            return true;
    }
    return false;
}

/* Reads every queued event; true if one of them is a change. */
static bool drain(nf_watch *w)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool changed = false;
    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof buf);
        if (n <= 0)
            break;   /* EAGAIN: drained */
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            changed |= counts(w, ev);
            p += sizeof *ev + ev->len;
        }
    }
    return changed;
}

static void on_readable(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    nf_watch *w = ud;
    if (!drain(w))
        return;
    if (!w->in_burst) {
        w->in_burst = true;
        clock_gettime(CLOCK_MONOTONIC, &w->burst_start);
    }
    event_add(w->debounce, &w->delay);   /* (re)start the quiet period */
}

static void on_quiet(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    nf_watch *w = ud;
    /* The loop may have fired this timer before reading events that were
     * already queued (a write that landed just after the quiet period, on
     * a busy machine): they belong to this burst. */
    if (drain(w) && ms_since(&w->burst_start) < NF_WATCH_MAX_DEFER_MS) {
        event_add(w->debounce, &w->delay);
        return;
    }
    /* A file of interest is still being written (a slow copy, a save of
     * several files in a row): its close will start a new quiet period.
     * Check again then, or when the oldest write is too old to wait for. */
    if (nf_watch_writing(w)) {
        struct timeval tv = nf_clock_timeval(NF_WATCH_MAX_WRITE_MS);
        event_add(w->debounce, &tv);
        return;
    }
    w->in_burst = false;
    w->cb(w->ud);
}

/* ---- life ------------------------------------------------------------------------ */

nf_watch *nf_watch_new(struct event_base *base, unsigned debounce_ms, const char *suffix,
                       void (*cb)(void *ud), void *ud)
{
    nf_watch *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0) {
        free(w);
        return NULL;
    }
    w->cb = cb;
    w->ud = ud;
    w->delay.tv_sec = debounce_ms / 1000;
    w->delay.tv_usec = (debounce_ms % 1000) * 1000;
    w->suffix = suffix ? strdup(suffix) : NULL;
    w->readable = event_new(base, w->fd, EV_READ | EV_PERSIST, on_readable, w);
    w->debounce = evtimer_new(base, on_quiet, w);
    if ((suffix && !w->suffix) || !w->readable || !w->debounce || event_add(w->readable, NULL) != 0) {
        nf_watch_free(w);
        errno = ENOMEM;
        return NULL;
    }
    return w;
}

void nf_watch_free(nf_watch *w)
{
    if (!w)
        return;
    if (w->readable)
        event_free(w->readable);
    if (w->debounce)
        event_free(w->debounce);
    if (w->fd >= 0)
        close(w->fd);
    for (size_t i = 0; i < w->ndirs; i++) {
        dir_clear_names(&w->dirs[i]);
        free(w->dirs[i].names);
    }
    free(w->dirs);
    for (size_t i = 0; i < w->nwriting; i++)
        free(w->writing[i].name);
    free(w->suffix);
    free(w);
}
