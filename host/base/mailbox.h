/* mailbox.h - a queue of calls into one event loop, posted from any thread.
 *
 * Each worker of a process (--workers N) runs its own libevent loop on its
 * own thread and shares nothing with the others but what passes through
 * their mailboxes: a poster appends (fn, arg) under the mailbox's mutex and,
 * when the queue was empty, wakes the loop through an eventfd; the loop then
 * runs every call queued so far, in the order they were posted, on its own
 * thread. One lock per post and one eventfd write per burst: the cost of a
 * message between workers (docs/bench.md).
 *
 * Bounded: at most `cap` calls and `cap_bytes` bytes wait (a worker that
 * stops turning its loop must not make the others grow its queue without
 * end; a count alone bounds no memory when each call may carry a message of
 * up to a MiB); a post over either bound fails with NF_ENOBUFS and the caller
 * counts it. The bytes of a call are what the poster says it holds.
 *
 * First: the mailbox's event has the base's highest priority (0; see
 * NF_MAILBOX_PRIORITIES), so when a wake-up finds both calls and readable
 * sockets, the calls run first: what another loop posted before a client's
 * frame arrived is done before that frame is read, as in one loop. */
#ifndef NF_MAILBOX_H
#define NF_MAILBOX_H

#include <stddef.h>

struct event_base;

typedef struct nf_mailbox nf_mailbox;
/* A call: owner is the mailbox's (nf_mailbox_new), arg the poster's. */
typedef void (*nf_mailbox_fn)(void *owner, void *arg);

/* The priorities a base whose loop has a mailbox should be given
 * (event_base_priority_init, before any event of it is made): 0 for the
 * mailbox and for what must run before the sockets' events of a wake-up,
 * 1, libevent's default then, for everything else. */
#define NF_MAILBOX_PRIORITIES 2

/* A mailbox whose calls run on base's loop, each given `owner`; at most cap
 * calls and cap_bytes bytes wait. NULL when out of memory or out of
 * descriptors (errno says which). */
nf_mailbox *nf_mailbox_new(struct event_base *base, size_t cap, size_t cap_bytes, void *owner);

/* From any thread: queue fn(arg), which holds `bytes`, for the mailbox's
 * loop. Returns 0, or NF_ENOBUFS when it would pass cap calls, or cap_bytes
 * bytes in a queue that is not empty (an empty one takes any bytes: a call,
 * or a batch, bigger than the bound is never refused while the loop keeps
 * up; a call of 0 bytes, a control call, counts against cap alone),
 * NF_ENOMEM, NF_EPIPE after
 * nf_mailbox_close (arg is then still the caller's). */
int nf_mailbox_post(nf_mailbox *mb, nf_mailbox_fn fn, void *arg, size_t bytes);

/* Calls gathered by one thread (its loop iteration's) and posted together:
 * one lock and at most one wake-up for the lot, instead of one each. */
typedef struct nf_mailbox_cell nf_mailbox_cell;
typedef struct nf_mailbox_batch {
    nf_mailbox_cell *head, *tail;
    size_t count;
    size_t bytes;
} nf_mailbox_batch;

/* Appends fn(arg), which holds `bytes`, to b. Returns 0 or NF_ENOMEM. */
int nf_mailbox_batch_add(nf_mailbox_batch *b, nf_mailbox_fn fn, void *arg, size_t bytes);
/* Posts every call of b, in order, or none: 0 (b is then empty), or
 * NF_ENOBUFS (the bounds as nf_mailbox_post, for b's calls and bytes
 * together) / NF_EPIPE, b untouched. */
int nf_mailbox_post_batch(nf_mailbox *mb, nf_mailbox_batch *b);
/* Runs every call of b with `owner` (e.g. NULL: "not delivered, release
 * what you hold"), then empties it. */
void nf_mailbox_batch_run(nf_mailbox_batch *b, void *owner);

/* From the loop's thread: runs what is queued now (also done by the loop
 * on its own); returns how many calls ran. */
size_t nf_mailbox_run(nf_mailbox *mb);

/* Refuses later posts; what is queued still runs with nf_mailbox_run. */
void nf_mailbox_close(nf_mailbox *mb);

/* Calls waiting now, and their bytes (any thread; a snapshot). */
size_t nf_mailbox_pending(nf_mailbox *mb);
size_t nf_mailbox_pending_bytes(nf_mailbox *mb);

/* On the loop's thread, after its loop ended and before its base is freed:
 * closes it, runs what is still queued (each call must free what its arg
 * owns), lets go of the loop. Posts fail with NF_EPIPE from then on. */
void nf_mailbox_detach(nf_mailbox *mb);

/* When no thread can post any more: detaches if not yet, frees. */
void nf_mailbox_free(nf_mailbox *mb);

#endif
