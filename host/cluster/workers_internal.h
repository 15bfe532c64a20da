/* workers_internal.h - what workers.c and exchange_workers.c share: the
 * group of workers (--workers N) and the calls between them. Not for other
 * files: they use workers.h.
 *
 * Threads. Everything of a worker (its host, connections, endpoints, its
 * `wx` and the asks and /metrics requests it waits on) is touched by its
 * own thread only. What crosses is a call in a mailbox whose argument is
 * owned by the receiving call from the moment the post succeeded; the
 * pointers in it to the poster's records (an ask) are only followed back on
 * the poster's thread, in the answer the receiver posts; a /metrics request
 * goes by an id instead (it may be answered and freed before a late reply). Shared: the count table (mutex), each worker's load (atomic), the
 * turn of the acceptor's tie-break (the acceptor's thread only), each
 * worker's last /metrics figures (mutex).
 *
 * Lifetimes. A worker whose loop ended is detached: its mailbox refuses new
 * posts and runs those queued in stopped mode. From then on no answer can
 * reach its records, so the host's exchange free (after detach) fails the
 * asks still out with NF_ASK_CLOSED and frees them. */
#ifndef NF_WORKERS_INTERNAL_H
#define NF_WORKERS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "dict.h"
#include "list.h"
#include "metrics.h"
#include "workers.h"

typedef struct wx wx;   /* exchange_workers.c: a worker's in-process exchange */

typedef struct worker {
    nf_workers *g;
    unsigned id;
    nf_host *host;
    nf_metrics *metrics;          /* its host's (nf_host_metrics): the worker_* lines */
    nf_mailbox *mb;
    wx *x;                        /* the in-process exchange, or NULL */
    atomic_size_t load;           /* its sockets, from the listener's choice to their close */
    nf_list gathers;              /* /metrics requests waiting for the others */
    uint64_t next_gather;         /* the id of its next one (own thread) */
    uint64_t metrics_logged_ms;   /* own thread: the last "answered without" line */
    /* Its figures as of its last /metrics snapshot, under g->mu: what a
     * /metrics it does not answer in time sums in its place, so that no
     * counter of the process goes back (a reset to Prometheus). */
    nf_metrics last;
    size_t last_conns;
    bool last_set;
    bool stopped;                 /* detached (own thread) */
    uint64_t queue_logged_ms;     /* own thread */
    /* Calls to the other workers made during this loop iteration, posted
     * together at its end (flush_ev): one lock and one wake-up per worker
     * per iteration, so a receiver gets a burst as a batch, as it would
     * have come from its own clients (and flushes its sockets once). */
    nf_mailbox_batch *outbox;     /* [n] */
    struct event *flush_ev;
    bool flush_pending;
} worker;

/* Connections of one endpoint path, per worker. */
typedef struct path_count {
    size_t *per;                  /* [g->n] */
    char path[];
} path_count;

/* Sockets from one address, process-wide. */
typedef struct ip_count {
    size_t count;
    char ip[];
} ip_count;

struct nf_workers {
    unsigned n;
    size_t queue_cap, queue_bytes;  /* --max-worker-queue, --max-worker-queue-bytes */
    unsigned turn;                /* the acceptor's tie-break (its thread only) */
    size_t max_sockets, max_per_ip;   /* --max-connections, --max-connections-per-ip (0 = none) */
    pthread_mutex_t mu;
    nf_dict *counts;              /* path -> path_count, under mu */
    size_t sockets;               /* every worker's, under mu */
    nf_dict *per_ip;              /* address -> ip_count, under mu */
    nf_exchange *up;              /* the broker (worker 1's thread only), or NULL */
    worker w[];
};

/* ---- workers.c ---- */
/* A call from worker `from` (its thread) to worker `to`, posted at the end
 * of this loop iteration. A call that cannot be delivered then (the queue
 * full, the loop ended) runs on `from` with owner NULL: it releases what it
 * holds and ends what waited for it. bytes: what arg holds, counted against
 * --max-worker-queue-bytes. Returns 0 or NF_ENOMEM (not queued). */
int nf_workers_post_from(worker *from, unsigned to, nf_mailbox_fn fn, void *arg, size_t bytes);
/* The same call posted at once, not with the iteration's batch: 0, or
 * NF_ENOBUFS (logged, counted), NF_EPIPE, NF_ENOMEM; on failure fn does
 * not run and arg stays the caller's. */
int nf_workers_post_now(worker *from, unsigned to, nf_mailbox_fn fn, void *arg, size_t bytes);
/* Counts a call received (w NULL or stopped: nothing). */
void nf_workers_received(worker *w);
/* One connection with an ID more (delta 1) or less (-1) on w for ep's path. */
void nf_workers_count_change(worker *w, nf_endpoint *ep, int delta);
/* ep's path's connections on every worker but w. */
size_t nf_workers_count_others(worker *w, nf_endpoint *ep);

/* ---- exchange_workers.c ---- */
/* Gives w's host the in-process exchange. 0 or NF_ENOMEM. */
int nf_exchange_workers_attach(worker *w);

#endif
