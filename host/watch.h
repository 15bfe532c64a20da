/* watch.h - "these directories changed", debounced, on the libevent loop.
 *
 * inotify on each added directory; a change is a file whose name ends with
 * the given suffix being written and closed, or renamed/moved into place.
 * Editors save in bursts (truncate + write, temp file + rename, backup
 * files ...): the callback runs once, `debounce_ms` after the last change of
 * a burst. Knows nothing of what the files are. */
#ifndef NF_WATCH_H
#define NF_WATCH_H

struct event_base;
typedef struct nf_watch nf_watch;

/* NULL on failure (errno set). suffix may be NULL: every file counts. */
nf_watch *nf_watch_new(struct event_base *base, unsigned debounce_ms, const char *suffix,
                       void (*cb)(void *ud), void *ud);
/* Watches one more directory; adding one twice is harmless. 0 or -1 (errno). */
int nf_watch_add(nf_watch *w, const char *dir);
void nf_watch_free(nf_watch *w);

#endif
