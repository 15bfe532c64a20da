/* watch.c - see watch.h. */
#include "watch.h"

#include <errno.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>


/* What counts as "a file is complete": closed after writing, or moved in
 * (the rename of temp-file editors). IN_MODIFY alone would fire in the
 * middle of a write. IN_DELETE_SELF/IN_MOVE_SELF are not followed: the
 * directory itself is expected to stay. */
#define WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE)

struct nf_watch {
    int fd;
    struct event *readable;
    struct event *debounce;
    struct timeval delay;
    char *suffix;
    void (*cb)(void *ud);
    void *ud;
};

static bool counts(const nf_watch *w, const struct inotify_event *ev)
{
    if (ev->mask & IN_ISDIR)
        return false;
    if (ev->len == 0)
        return false;
    const char *name = ev->name;
    if (name[0] == '.')   /* editor swap and temp files: .app.lua.swp, .#app.lua */
        return false;
    if (!w->suffix)
        return true;
    size_t n = strlen(name), s = strlen(w->suffix);
    return n > s && memcmp(name + n - s, w->suffix, s) == 0;
}

static void on_readable(evutil_socket_t fd, short what, void *ud)
{
    (void)what;
    nf_watch *w = ud;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool changed = false;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            break;   /* EAGAIN: drained */
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            if (ev->mask & IN_Q_OVERFLOW)
                changed = true;
            else if (counts(w, ev))
                changed = true;
            p += sizeof *ev + ev->len;
        }
    }
    if (changed)   /* (re)start the quiet period */
        event_add(w->debounce, &w->delay);
}

static void on_quiet(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    nf_watch *w = ud;
    w->cb(w->ud);
}

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

int nf_watch_add(nf_watch *w, const char *dir)
{
    /* inotify returns the same descriptor for a directory added twice. */
    return inotify_add_watch(w->fd, dir, WATCH_MASK | IN_ONLYDIR) < 0 ? -1 : 0;
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
    free(w->suffix);
    free(w);
}
