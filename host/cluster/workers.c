/* workers.c - the group of workers (--workers N; workers.h): their
 * mailboxes and the calls between them, the one listener that hands
 * connections out, /metrics for the whole process, the connection limits
 * counted per process. The in-process exchange that carries broadcasts and
 * asks between them is exchange_workers.c. Threads and lifetimes:
 * workers_internal.h. */
#include "workers_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "log.h"

#define QUEUE_LOG_INTERVAL_MS 1000   /* at most one "queue full" line per worker per interval */

/* ---- posting -------------------------------------------------------------------- */

/* n calls to worker `to` were not posted: over a bound, each is a hit. */
static void count_failure(worker *from, unsigned to, int rc, size_t n)
{
    if (rc != NF_ENOBUFS)
        return;
    from->metrics->limit_worker_queue += n;
    uint64_t now = nf_now_ms();
    if (from->queue_logged_ms == 0 || now - from->queue_logged_ms >= QUEUE_LOG_INTERVAL_MS) {
        from->queue_logged_ms = now;
        nf_warn("worker %u: the queue of worker %u is full (--max-worker-queue %zu calls, --max-worker-queue-bytes "
                "%zu): a message to it was dropped (neffos_limit_hits_total{limit=\"worker_queue\"})", from->id + 1,
                to + 1, from->g->queue_cap, from->g->queue_bytes);
    }
}

int nf_workers_post_now(worker *from, unsigned to, nf_mailbox_fn fn, void *arg, size_t bytes)
{
    int rc = nf_mailbox_post(from->g->w[to].mb, fn, arg, bytes);
    if (rc == 0)
        from->metrics->worker_messages_out++;
    else
        count_failure(from, to, rc, 1);
    return rc;
}

int nf_workers_post_from(worker *from, unsigned to, nf_mailbox_fn fn, void *arg, size_t bytes)
{
    if (from->stopped || from->flush_ev == NULL) {   /* no iteration to end: at once */
        int rc = nf_workers_post_now(from, to, fn, arg, bytes);
        if (rc == NF_ENOMEM)
            return rc;
        if (rc != 0)
            fn(NULL, arg);
        return 0;
    }
    if (nf_mailbox_batch_add(&from->outbox[to], fn, arg, bytes) != 0)
        return NF_ENOMEM;
    if (!from->flush_pending) {
        from->flush_pending = true;
        event_active(from->flush_ev, 0, 0);
    }
    return 0;
}

static void flush_outbox(worker *w)
{
    w->flush_pending = false;
    for (unsigned i = 0; i < w->g->n; i++) {
        nf_mailbox_batch *b = &w->outbox[i];
        size_t n = b->count;
        if (n == 0)
            continue;
        int rc = nf_mailbox_post_batch(w->g->w[i].mb, b);
        if (rc == 0) {
            w->metrics->worker_messages_out += n;
            continue;
        }
        count_failure(w, i, rc, n);
        nf_mailbox_batch_run(b, NULL);   /* not delivered */
    }
}

static void flush_cb(evutil_socket_t fd, short what, void *arg) { flush_outbox(arg); }

/* Posts what w batched so far, ahead of a call posted at once. A batch that
 * cannot go (its queue full, its loop ended) stays for flush_outbox, which
 * counts it and runs its calls as not delivered: not here, where the poster
 * may be a Lua call that such a call (an ask's failure) must not re-enter. */
static void post_batched(worker *w)
{
    for (unsigned i = 0; i < w->g->n; i++) {
        size_t n = w->outbox[i].count;
        if (n && nf_mailbox_post_batch(w->g->w[i].mb, &w->outbox[i]) == 0)
            w->metrics->worker_messages_out += n;
    }
}

/* The host writes its sockets: this iteration's calls to the other workers
 * go first, so that a client that reads an answer of ours and then writes to
 * another worker finds that worker's mailbox signalled already; and the
 * mailbox runs before the sockets of a wake-up (mailbox.h). Together: what
 * a handler sent to other workers before its answer is delivered there
 * before anything its client does after the answer, as in one loop. */
static void hook_flushing(void *ud)
{
    worker *w = ud;
    if (w->flush_pending)
        flush_outbox(w);   /* flush_ev stays active: it finds nothing left */
}

void nf_workers_received(worker *w)
{
    if (w && !w->stopped)
        w->metrics->worker_messages_in++;
}

/* ---- connection counts ------------------------------------------------------------ */

void nf_workers_count_change(worker *w, nf_endpoint *ep, int delta)
{
    nf_workers *g = w->g;
    const char *path = nf_endpoint_path(ep);
    nf_slice key = nf_slice_of(path, strlen(path));
    pthread_mutex_lock(&g->mu);
    path_count *pc = nf_dict_get(g->counts, key);
    if (pc == NULL && delta > 0) {
        pc = calloc(1, sizeof *pc + key.len + 1);
        size_t *per = calloc(g->n, sizeof *per);
        if (pc == NULL || per == NULL) {
            free(pc);
            free(per);
            pc = NULL;
        } else {
            pc->per = per;
            memcpy(pc->path, path, key.len + 1);
            if (nf_dict_set(g->counts, nf_slice_of(pc->path, key.len), pc) != 0) {
                free(per);
                free(pc);
                pc = NULL;
            }
        }
    }
    if (pc && (delta > 0 || pc->per[w->id] > 0))
        pc->per[w->id] += (size_t)delta;
    pthread_mutex_unlock(&g->mu);
}

/* A worker's load: its sockets, counted from the moment the listener hands
 * one to it (least_loaded) until the socket closes (hook_gone) or is
 * refused (hook_admit, run_adopt). Counted at the WebSocket upgrade
 * instead, a burst of connections skewed: the sockets handed over but not
 * yet upgraded were invisible, so the worker that upgraded its first ones
 * soonest looked the busiest for the rest of the burst (50 connections in
 * one burst went 31/19 to 38/12 one time in three). */
static void load_add(worker *w) { atomic_fetch_add_explicit(&w->load, 1, memory_order_relaxed); }

/* Never below 0, whichever threads lower it at once (w's own as its
 * sockets close, the listener's as it takes back one it could not hand
 * over). */
static void load_sub(worker *w)
{
    size_t n = atomic_load_explicit(&w->load, memory_order_relaxed);
    while (n > 0 && !atomic_compare_exchange_weak_explicit(&w->load, &n, n - 1, memory_order_relaxed,
                                                           memory_order_relaxed))
        ;
}

/* ep's connections on the other workers than w (the count table). */
size_t nf_workers_count_others(worker *w, nf_endpoint *ep)
{
    nf_workers *g = w->g;
    const char *path = nf_endpoint_path(ep);
    size_t others = 0;
    pthread_mutex_lock(&g->mu);
    path_count *pc = nf_dict_get(g->counts, nf_slice_of(path, strlen(path)));
    for (unsigned i = 0; pc && i < g->n; i++)
        if (i != w->id)
            others += pc->per[i];
    pthread_mutex_unlock(&g->mu);
    return others;
}

/* ---- one listener ------------------------------------------------------------------ */

typedef struct whandover {
    worker *from;                 /* the listener's worker */
    worker *to;                   /* the worker it was counted on */
    int fd;
    struct nf_tls *tls;           /* from the TLS listener: the handshake is the adopter's */
    char remote[64];
} whandover;

static void run_adopt(void *owner, void *arg)
{
    worker *w = owner;
    whandover *ho = arg;
    if (w == NULL) {   /* not delivered: admitted by the listener's worker */
        load_sub(ho->to);
        load_add(ho->from);
        nf_host_adopt_tls(ho->from->host, ho->fd, ho->remote, ho->tls, NULL);
        free(ho);
        return;
    }
    nf_workers_received(w);
    if (w->stopped || nf_host_is_draining(w->host)) {
        close(ho->fd);   /* it would be refused anyway: the process stops */
        load_sub(w);
    } else
        nf_host_adopt_tls(w->host, ho->fd, ho->remote, ho->tls, NULL);
    free(ho);
}

/* The worker with the fewest sockets (load_add); among equals, the next in
 * turn. */
static unsigned least_loaded(nf_workers *g)
{
    unsigned best = g->turn % g->n;
    size_t best_load = atomic_load_explicit(&g->w[best].load, memory_order_relaxed);
    for (unsigned k = 1; k < g->n; k++) {
        unsigned i = (g->turn + k) % g->n;
        size_t load = atomic_load_explicit(&g->w[i].load, memory_order_relaxed);
        if (load < best_load) {
            best = i;
            best_load = load;
        }
    }
    g->turn = best + 1;
    return best;
}

static bool hook_accepted(void *ud, nf_host *h, int fd, const char *remote, struct nf_tls *tls)
{
    worker *w = ud;
    unsigned to = least_loaded(w->g);
    worker *target = &w->g->w[to];
    load_add(target);
    if (to == w->id)
        return false;
    whandover *ho = malloc(sizeof *ho);
    if (ho == NULL) {
        load_sub(target);
        load_add(w);
        return false;   /* admitted here instead */
    }
    ho->from = w;
    ho->to = target;
    ho->fd = fd;
    ho->tls = tls;
    snprintf(ho->remote, sizeof ho->remote, "%s", remote);
    if (nf_workers_post_from(w, to, run_adopt, ho, 0) != 0) {   /* no message: the count bounds it */
        free(ho);
        load_sub(target);
        load_add(w);
        return false;   /* admitted here instead */
    }
    return true;
}

/* ---- /metrics for the whole process -------------------------------------------------- */

/* A worker stuck in a long handler must not hold up the process's /metrics
 * (a scrape that times out when it is most needed): what has not replied by
 * then is left out, marked by neffos_worker_up 0. Far below any scrape
 * timeout (Prometheus' default is 10 s), far above a turning loop's reply
 * (microseconds). */
#define METRICS_DEADLINE_MS 1000
#define METRICS_LOG_INTERVAL_MS 10000   /* at most one "answered without" line per worker per interval */

typedef struct gather {
    nf_list link;                 /* in worker.gathers */
    uint64_t id;                  /* what replies find it by: it may be gone by then */
    worker *rq;                   /* the requester */
    nf_conn *c;                   /* held (nf_host_answer_metrics releases it) */
    bool head;
    unsigned pending;
    nf_metrics sum;
    size_t conns, eps;
    size_t *per_conns;            /* [n] */
    bool *replied;                /* [n] */
    struct event *deadline;       /* METRICS_DEADLINE_MS */
} gather;

typedef struct snapshot {
    uint64_t gid;                 /* the gather's id, looked up on the requester's thread */
    worker *rq;                   /* the requester (its thread only) */
    unsigned requester, from;
    bool valid;
    nf_metrics m;
    size_t conns, eps;
} snapshot;

/* w's figures now (its thread), kept as its last for the gathers it misses. */
static void snapshot_take(worker *w, nf_metrics *m, size_t *conns, size_t *eps)
{
    nf_host_metrics_snapshot(w->host, m, conns, eps);
    pthread_mutex_lock(&w->g->mu);
    w->last = *m;
    w->last_conns = *conns;
    w->last_set = true;
    pthread_mutex_unlock(&w->g->mu);
}

static gather *gather_find(worker *w, uint64_t id)
{
    NF_LIST_FOREACH(it, &w->gathers) {
        gather *gt = NF_LIST_ENTRY(it, gather, link);
        if (gt->id == id)
            return gt;
    }
    return NULL;   /* answered already (its deadline passed), or its worker stopped */
}

static void gather_free(gather *gt)
{
    nf_list_remove(&gt->link);
    if (gt->deadline)
        event_free(gt->deadline);
    free(gt->per_conns);
    free(gt->replied);
    free(gt);
}

static void gather_add(gather *gt, unsigned from, const nf_metrics *m, size_t conns, size_t eps)
{
    nf_metrics_add(&gt->sum, m);
    gt->conns += conns;
    if (eps > gt->eps)
        gt->eps = eps;
    gt->per_conns[from] = conns;
    gt->replied[from] = true;
}

/* The workers that did not reply count with their last figures (a counter
 * of the process must not go back); returns how many they are. */
static unsigned gather_fill_missing(worker *w, gather *gt)
{
    nf_workers *g = w->g;
    unsigned missing = 0;
    pthread_mutex_lock(&g->mu);
    for (unsigned i = 0; i < g->n; i++) {
        if (gt->replied[i])
            continue;
        missing++;
        if (g->w[i].last_set) {
            nf_metrics_add(&gt->sum, &g->w[i].last);
            gt->conns += g->w[i].last_conns;
        }
    }
    pthread_mutex_unlock(&g->mu);
    if (missing) {
        uint64_t now = nf_now_ms();
        if (w->metrics_logged_ms == 0 || now - w->metrics_logged_ms >= METRICS_LOG_INTERVAL_MS) {
            w->metrics_logged_ms = now;
            nf_warn("worker %u: /metrics answered without %u worker(s) that did not reply within %d ms (a long "
                    "handler?): their last figures, neffos_worker_up 0", w->id + 1, missing, METRICS_DEADLINE_MS);
        }
    }
    return missing;
}

/* The per-worker lines: up for every worker, connections for those that
 * replied (a missing worker's are not known now), sockets for every worker
 * (the listener's count, read without it). */
static char *gather_worker_lines(nf_workers *g, const gather *gt)
{
    size_t cap = 700 + (size_t)g->n * 192;
    char *extra = malloc(cap);
    if (extra == NULL)
        return NULL;
    size_t used = (size_t)snprintf(extra, cap, "# HELP neffos_worker_up Whether the worker replied to this /metrics "
                                               "in time (0: its figures above are its last ones).\n"
                                               "# TYPE neffos_worker_up gauge\n");
    for (unsigned i = 0; i < g->n && used < cap; i++)
        used += (size_t)snprintf(extra + used, cap - used, "neffos_worker_up{worker=\"%u\"} %d\n", i + 1,
                                 gt->replied[i] ? 1 : 0);
    if (used < cap)
        used += (size_t)snprintf(extra + used, cap - used, "# HELP neffos_worker_connections Open WebSocket connections, by worker.\n"
                                                           "# TYPE neffos_worker_connections gauge\n");
    for (unsigned i = 0; i < g->n && used < cap; i++)
        if (gt->replied[i])
            used += (size_t)snprintf(extra + used, cap - used, "neffos_worker_connections{worker=\"%u\"} %zu\n", i + 1,
                                     gt->per_conns[i]);
    if (used < cap)
        used += (size_t)snprintf(extra + used, cap - used,
                                 "# HELP neffos_worker_sockets Sockets each worker holds, in any phase: what the "
                                 "listener balances.\n# TYPE neffos_worker_sockets gauge\n");
    for (unsigned i = 0; i < g->n && used < cap; i++)
        used += (size_t)snprintf(extra + used, cap - used, "neffos_worker_sockets{worker=\"%u\"} %zu\n", i + 1,
                                 atomic_load_explicit(&g->w[i].load, memory_order_relaxed));
    return extra;
}

static void gather_finish(worker *w, gather *gt)
{
    nf_workers *g = w->g;
    gather_fill_missing(w, gt);
    char *extra = gather_worker_lines(g, gt);
    gt->sum.workers = g->n;
    nf_host_answer_metrics(gt->c, gt->head, &gt->sum, gt->conns, gt->eps, extra);
    free(extra);
    gather_free(gt);
}

static void gather_deadline(evutil_socket_t fd, short what, void *arg)
{
    gather *gt = arg;
    gather_finish(gt->rq, gt);
}

/* One reply less to wait for (the requester's thread); a late one finds
 * nothing. */
static void gather_reply(worker *rq, const snapshot *s)
{
    gather *gt = gather_find(rq, s->gid);
    if (gt == NULL)
        return;
    if (s->valid)
        gather_add(gt, s->from, &s->m, s->conns, s->eps);
    if (--gt->pending == 0)
        gather_finish(rq, gt);
}

static void run_snapshot_reply(void *owner, void *arg)
{
    worker *w = owner;
    snapshot *s = arg;
    if (w == NULL) {   /* the requester has ended: its requests with it */
        free(s);
        return;
    }
    nf_workers_received(w);
    gather_reply(w, s);
    free(s);
}

static void run_snapshot(void *owner, void *arg)
{
    worker *w = owner;
    snapshot *s = arg;
    if (w == NULL) {   /* not delivered: on the requester's thread, without that worker's figures */
        s->valid = false;
        gather_reply(s->rq, s);
        free(s);
        return;
    }
    nf_workers_received(w);
    s->from = w->id;
    s->valid = !w->stopped;
    if (s->valid)
        snapshot_take(w, &s->m, &s->conns, &s->eps);
    if (nf_workers_post_from(w, s->requester, run_snapshot_reply, s, 0) != 0)
        free(s);   /* out of memory: that gather ends at its deadline */
}

static bool hook_metrics(void *ud, nf_host *h, nf_conn *c, bool head)
{
    worker *w = ud;
    nf_workers *g = w->g;
    gather *gt = calloc(1, sizeof *gt);
    size_t *per = calloc(g->n, sizeof *per);
    bool *replied = calloc(g->n, sizeof *replied);
    struct event *deadline = gt ? evtimer_new(nf_host_base(h), gather_deadline, gt) : NULL;
    if (gt == NULL || per == NULL || replied == NULL || deadline == NULL) {
        if (deadline)
            event_free(deadline);
        free(gt);
        free(per);
        free(replied);
        return false;   /* this worker's figures only */
    }
    gt->id = ++w->next_gather;
    gt->rq = w;
    gt->c = c;
    gt->head = head;
    gt->per_conns = per;
    gt->replied = replied;
    gt->deadline = deadline;
    gt->sum.exchange_connected = -1;   /* no broker unless a worker has one */
    nf_list_push_back(&w->gathers, &gt->link);
    nf_metrics m;
    size_t conns, eps;
    snapshot_take(w, &m, &conns, &eps);
    gather_add(gt, w->id, &m, conns, eps);
    gt->pending = 1;   /* while posting */
    for (unsigned i = 0; i < g->n; i++) {
        if (i == w->id)
            continue;
        snapshot *s = calloc(1, sizeof *s);
        if (s == NULL)
            continue;
        s->gid = gt->id;
        s->rq = w;
        s->requester = w->id;
        gt->pending++;
        if (nf_workers_post_from(w, i, run_snapshot, s, 0) != 0) {
            gt->pending--;
            free(s);
        }
    }
    if (--gt->pending == 0) {
        gather_finish(w, gt);
        return true;
    }
    struct timeval tv = nf_clock_timeval(METRICS_DEADLINE_MS);
    evtimer_add(gt->deadline, &tv);
    return true;
}

/* ---- the connection limits, per process ---------------------------------------------- */

static int hook_admit(void *ud, const char *ip)
{
    nf_workers *g = ((worker *)ud)->g;
    nf_slice key = nf_slice_of(ip, strlen(ip));
    int rc = 0;
    pthread_mutex_lock(&g->mu);
    ip_count *ic = g->max_per_ip ? nf_dict_get(g->per_ip, key) : NULL;
    if (g->sockets >= g->max_sockets) {
        rc = NF_EAGAIN;
    } else if (g->max_per_ip && ic && ic->count >= g->max_per_ip) {
        rc = NF_EEXIST;
    } else if (g->max_per_ip && ic == NULL) {
        ic = calloc(1, sizeof *ic + key.len + 1);
        if (ic == NULL || (memcpy(ic->ip, ip, key.len + 1), nf_dict_set(g->per_ip, nf_slice_of(ic->ip, key.len), ic)) != 0) {
            free(ic);
            rc = NF_EEXIST;   /* out of memory: refused like a limit */
            ic = NULL;
        }
    }
    if (rc == 0) {
        g->sockets++;
        if (ic)
            ic->count++;
    }
    pthread_mutex_unlock(&g->mu);
    if (rc != 0)
        load_sub(ud);   /* refused: the socket closes without hook_gone */
    return rc;
}

static void hook_gone(void *ud, const char *ip)
{
    nf_workers *g = ((worker *)ud)->g;
    load_sub(ud);
    nf_slice key = nf_slice_of(ip, strlen(ip));
    pthread_mutex_lock(&g->mu);
    if (g->sockets > 0)
        g->sockets--;
    ip_count *ic = g->max_per_ip ? nf_dict_get(g->per_ip, key) : NULL;
    if (ic && --ic->count == 0) {
        nf_dict_delete(g->per_ip, key);
        free(ic);
    }
    pthread_mutex_unlock(&g->mu);
}

static const nf_host_hooks worker_hooks = {
    .accepted = hook_accepted, .metrics = hook_metrics, .admit = hook_admit, .gone = hook_gone,
    .flushing = hook_flushing,
};

/* ---- the group ------------------------------------------------------------------------ */

nf_workers *nf_workers_new(unsigned n, size_t queue_cap, size_t queue_bytes)
{
    if (n == 0 || n > NF_WORKERS_MAX)
        return NULL;
    nf_workers *g = calloc(1, sizeof *g + n * sizeof(worker));
    if (g == NULL)
        return NULL;
    g->n = n;
    g->queue_cap = queue_cap;
    g->queue_bytes = queue_bytes;
    g->counts = nf_dict_new();
    g->per_ip = nf_dict_new();
    if (g->counts == NULL || g->per_ip == NULL) {
        nf_dict_free(g->counts);
        nf_dict_free(g->per_ip);
        free(g);
        return NULL;
    }
    pthread_mutex_init(&g->mu, NULL);
    for (unsigned i = 0; i < n; i++) {
        g->w[i].g = g;
        g->w[i].id = i;
        atomic_init(&g->w[i].load, 0);
        nf_list_init(&g->w[i].gathers);
    }
    return g;
}

unsigned nf_workers_count(const nf_workers *g) { return g->n; }

int nf_workers_attach(nf_workers *g, unsigned i, nf_host *h, bool with_exchange)
{
    if (i >= g->n || g->w[i].host)
        return NF_EINVAL;
    worker *w = &g->w[i];
    w->mb = nf_mailbox_new(nf_host_base(h), g->queue_cap, g->queue_bytes, w);
    w->outbox = calloc(g->n, sizeof *w->outbox);
    w->flush_ev = event_new(nf_host_base(h), -1, 0, flush_cb, w);
    if (w->mb == NULL || w->outbox == NULL || w->flush_ev == NULL)
        return NF_ENOMEM;
    w->host = h;
    w->metrics = nf_host_metrics(h);
    w->metrics->workers = g->n;
    if (i == 0) {   /* the process's limits: every worker has the same */
        g->max_sockets = nf_host_limits(h)->max_connections;
        g->max_per_ip = nf_host_limits(h)->max_connections_per_ip;
    }
    nf_host_set_hooks(h, &worker_hooks, w);
    if (with_exchange)
        return nf_exchange_workers_attach(w);
    return 0;
}

void nf_workers_set_broker(nf_workers *g, nf_exchange *x)
{
    g->up = x;
    g->w[0].metrics->exchange_connected = 0;   /* the broker's lines in /metrics */
}

typedef struct wcall {
    nf_workers_fn fn;
    void *arg;
} wcall;

static void run_call(void *owner, void *arg)
{
    worker *w = owner;
    wcall *c = arg;
    nf_workers_received(w);
    c->fn(w->host, c->arg);
    free(c);
}

/* The worker whose loop this thread runs (nf_workers_bind_thread), or NULL. */
static _Thread_local worker *bound;

void nf_workers_bind_thread(nf_workers *g, unsigned i) { bound = i < g->n ? &g->w[i] : NULL; }

int nf_workers_post(nf_workers *g, unsigned i, nf_workers_fn fn, void *arg, size_t bytes)
{
    if (i >= g->n || g->w[i].mb == NULL)
        return NF_EINVAL;
    /* Posted at once, this call would overtake what the poster batched
     * earlier in this iteration (nf_workers_post_from): a remote emit its
     * handler made after a broadcast to the same client arrived first. */
    if (bound && bound->g == g && !bound->stopped && bound->flush_pending)
        post_batched(bound);
    wcall *c = malloc(sizeof *c);
    if (c == NULL)
        return NF_ENOMEM;
    c->fn = fn;
    c->arg = arg;
    int rc = nf_mailbox_post(g->w[i].mb, run_call, c, bytes);
    if (rc != 0)
        free(c);
    return rc;
}

void nf_workers_detach(nf_workers *g, unsigned i)
{
    worker *w = &g->w[i];
    if (w->mb == NULL || w->stopped)
        return;
    flush_outbox(w);   /* what this iteration still had for the others */
    w->stopped = true;
    nf_mailbox_detach(w->mb);
    event_free(w->flush_ev);
    w->flush_ev = NULL;
    /* /metrics requests still waiting: their connections are closing. */
    NF_LIST_FOREACH_SAFE(it, tmp, &w->gathers) {
        gather *gt = NF_LIST_ENTRY(it, gather, link);
        nf_conn_unref(gt->c);
        gather_free(gt);
    }
}

void nf_workers_free(nf_workers *g)
{
    if (g == NULL)
        return;
    for (unsigned i = 0; i < g->n; i++) {
        nf_mailbox_free(g->w[i].mb);
        if (g->w[i].flush_ev)
            event_free(g->w[i].flush_ev);   /* attached, never detached (a start that failed) */
        free(g->w[i].outbox);
    }
    size_t cur = 0;
    path_count *pc;
    while ((pc = nf_dict_next(g->counts, &cur, NULL)) != NULL) {
        free(pc->per);
        free(pc);
    }
    nf_dict_free(g->counts);
    ip_count *ic;
    cur = 0;
    while ((ic = nf_dict_next(g->per_ip, &cur, NULL)) != NULL)
        free(ic);
    nf_dict_free(g->per_ip);
    pthread_mutex_destroy(&g->mu);
    free(g);
}
