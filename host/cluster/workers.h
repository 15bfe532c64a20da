/* workers.h - one process, N event loops (--workers N), one server.
 *
 * Each worker is a host (nf_host) with its own loop, on its own thread, with
 * its own Lua state. This module joins them so that the app and the clients
 * see one server:
 *   - one listener: the worker that listens hands each accepted socket to the
 *     worker with the fewest open connections (ties in turn), which adopts it;
 *   - an in-process exchange (exchange.h): a broadcast is delivered locally at
 *     once and posted, copied once and shared by reference, to every other
 *     worker, which delivers it to its own connections (namespace, room, `to`,
 *     except-ID checks as for a broker's message); a server ask by ID asks
 *     every worker and the first answer wins; server:count() sums every
 *     worker's connections of that path;
 *   - /metrics of any worker sums every worker's counters (those that
 *     reply within 1 s: workers.c).
 * Workers share nothing but the mailboxes (mailbox.h) and one table of
 * connection counts under a mutex; no worker ever touches another's host,
 * connections or Lua state. Frames to one client keep their order: one
 * worker's posts to another run in the order they were made.
 *
 * With a broker (--redis, --nats) the process keeps one broker connection
 * (pair), worker 1's, and the cluster sees one node: a broadcast of any
 * worker is published once, by worker 1; what the broker delivers to worker
 * 1 is relayed to the others; every worker's subscriptions are worker 1's
 * (reference-counted there); a server ask by ID asks the other processes
 * through worker 1, and a question from them is asked of every worker. */
#ifndef NF_WORKERS_H
#define NF_WORKERS_H

#include <stdbool.h>
#include <stddef.h>

#include "exchange.h"
#include "mailbox.h"

#define NF_WORKERS_MAX 256                      /* --workers */
#define NF_WORKER_QUEUE_DEFAULT (1u << 20)      /* --max-worker-queue: calls waiting for one worker */
#define NF_WORKER_QUEUE_BYTES_DEFAULT (64u << 20) /* --max-worker-queue-bytes: their messages' bytes */
#define NF_WORKERS_UNSUB_DELAY_MS 1000          /* a namespace's last broker unsubscription waits this long */

typedef struct nf_workers nf_workers;

/* A group of n workers (1..NF_WORKERS_MAX); queue_cap (calls) and
 * queue_bytes (the bytes of the broadcasts, questions and answers in them;
 * the calls of nf_workers_post, a drain, a reload step, a remote call that
 * waits for its answer, count as calls only) bound each worker's mailbox
 * (mailbox.h). NULL when out of memory. */
nf_workers *nf_workers_new(unsigned n, size_t queue_cap, size_t queue_bytes);
unsigned nf_workers_count(const nf_workers *g);

/* Worker i (0-based) with its host, before any loop runs (any thread): its
 * mailbox on the host's loop, the host's hooks (proto.h), and with
 * with_exchange the in-process exchange. Returns 0, NF_ENOMEM, or NF_EINVAL
 * (i out of range, attached already). */
int nf_workers_attach(nf_workers *g, unsigned i, nf_host *h, bool with_exchange);

/* After attaching with the exchange: the broker exchange x, made on worker
 * 1's host and not installed there (the group owns it from now on, worker
 * 1's exchange frees it). Before any loop runs. */
void nf_workers_set_broker(nf_workers *g, nf_exchange *x);

/* The calling thread runs worker i's loop from now on (call it there,
 * before the loop runs): a nf_workers_post from it is then ordered after the
 * calls that worker made before it (see nf_workers_post). */
void nf_workers_bind_thread(nf_workers *g, unsigned i);

/* From any thread: fn(worker i's host, arg) on worker i's loop; arg holds
 * `bytes` of message (a remote call's arguments or results; 0 for a control
 * call: a drain, a reload step), counted against --max-worker-queue-bytes.
 * Returns 0, NF_ENOBUFS (its queue is full), NF_EPIPE (its loop has ended)
 * or NF_ENOMEM; on failure fn does not run and arg stays the caller's.
 * From a worker's bound thread it keeps that worker's order: the calls it
 * made earlier in this loop iteration (a broadcast, an answer; they leave
 * together at the iteration's end) are posted first, so a remote call made
 * after a broadcast reaches its worker after that broadcast, and the answer
 * to one reaches the asker after what the method sent there. */
typedef void (*nf_workers_fn)(nf_host *h, void *arg);
int nf_workers_post(nf_workers *g, unsigned i, nf_workers_fn fn, void *arg, size_t bytes);

/* Worker i's loop has ended (its thread): no more calls reach it, those
 * queued run now (they see a stopped worker and only release what they
 * hold). Call before freeing its host. */
void nf_workers_detach(nf_workers *g, unsigned i);

/* After every worker detached. */
void nf_workers_free(nf_workers *g);

#endif
