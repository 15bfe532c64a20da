/* watch.h - "these files changed", debounced, on the libevent loop.
 *
 * inotify on directories. A change is one of:
 *   - a file the caller follows, or any file of a followed file's directory
 *     whose name ends with the given suffix, written and closed, renamed
 *     into place or deleted (only complete files: IN_MODIFY would fire in
 *     the middle of a write);
 *   - any entry on the way to a followed file being created, deleted or
 *     renamed: the directories it goes through and every symlink on the
 *     way, at their new targets. That is how a Kubernetes ConfigMap update
 *     (a new `..2026_...` directory, then the `..data` symlink renamed over)
 *     and an operator's directory replace (`mv app app.old`, a new `app`)
 *     are seen;
 *   - a watched directory deleted or moved itself, or the event queue
 *     overflowing (something may have been missed).
 * Editors save in bursts (truncate + write, temp file + rename, backup
 * files ...): the callback runs once, `debounce_ms` after the last change
 * of a burst; events still queued when that time comes are taken in first
 * and extend the burst (up to NF_WATCH_MAX_DEFER_MS), and while a file of
 * interest is being written it waits for the write to end (up to
 * NF_WATCH_MAX_WRITE_MS). Knows nothing of what the files are.
 *
 * Paths are followed by name, so the set is rebuilt after every change:
 * nf_watch_begin(), nf_watch_follow() per file, nf_watch_end() (which drops
 * the watches no followed path needs any more). */
#ifndef NF_WATCH_H
#define NF_WATCH_H

#include <stdbool.h>

struct event_base;
typedef struct nf_watch nf_watch;

/* A burst that keeps going is cut after this long: the callback runs even
 * if events still come (a file rewritten in a loop must not starve it). */
#define NF_WATCH_MAX_DEFER_MS 1000

/* A file of interest modified (IN_MODIFY) and not closed yet is a write in
 * progress: the callback waits for its close, but not longer than this
 * after its first write (a writer that never closes must not stop reloads). */
#define NF_WATCH_MAX_WRITE_MS 5000

/* NULL on failure (errno set). suffix may be NULL: every file counts. */
nf_watch *nf_watch_new(struct event_base *base, unsigned debounce_ms, const char *suffix,
                       void (*cb)(void *ud), void *ud);

/* Starts a new set of followed paths. */
void nf_watch_begin(nf_watch *w);
/* Follows the file `rel` (a relative path, e.g. "app/app.lua") from the
 * directory `from`, which is expected to stay (it is watched for rel's
 * first component, not followed itself). Symlinks are resolved one by one
 * (at most 40, like the kernel); a path that does not resolve yet is
 * watched up to where it stops, so its appearance counts. Returns 0, or a
 * negative errno value (errno set too) when a directory cannot be watched
 * (-ENOSPC: fs.inotify.max_user_watches; -ENAMETOOLONG; -ENOENT for `from`). */
int nf_watch_follow(nf_watch *w, const char *from, const char *rel);
/* Ends the set: directories no followed path needs any more are dropped. */
void nf_watch_end(nf_watch *w);

/* True while a followed file, or a suffix file beside one, is being written
 * (modified, not closed yet, for less than NF_WATCH_MAX_WRITE_MS). */
bool nf_watch_writing(nf_watch *w);

void nf_watch_free(nf_watch *w);

#endif
