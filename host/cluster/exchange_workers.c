/* exchange_workers.c - see exchange_workers.h.
 *
 * Threads. Everything of a worker (its host, connections, endpoints, its
 * `wx` and the asks and /metrics requests it waits on) is touched by its
 * own thread only. What crosses is a call in a mailbox whose argument is
 * owned by the receiving call from the moment the post succeeded; the
 * pointers in it to the poster's records (an ask, a /metrics request) are
 * only followed back on the poster's thread, in the answer the receiver
 * posts. Shared: the count table (mutex), each worker's load (atomic), the
 * turn of the acceptor's tie-break (the acceptor's thread only).
 *
 * Lifetimes. A worker whose loop ended is detached: its mailbox refuses new
 * posts and runs those queued in stopped mode. From then on no answer can
 * reach its records, so the host's exchange free (after detach) fails the
 * asks still out with NF_ASK_CLOSED and frees them. */
#include "exchange_workers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "dict.h"
#include "internal.h"
#include "log.h"

#define QUEUE_LOG_INTERVAL_MS 1000   /* at most one "queue full" line per worker per interval */

typedef struct wx wx;

typedef struct worker {
    nf_workers *g;
    unsigned id;
    nf_host *host;
    nf_mailbox *mb;
    wx *x;                        /* the in-process exchange, or NULL */
    atomic_size_t load;           /* open connections with an ID (the acceptor's choice) */
    nf_list gathers;              /* /metrics requests waiting for the others */
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
    size_t queue_cap;
    unsigned turn;                /* the acceptor's tie-break (its thread only) */
    size_t max_sockets, max_per_ip;   /* --max-connections, --max-connections-per-ip (0 = none) */
    pthread_mutex_t mu;
    nf_dict *counts;              /* path -> path_count, under mu */
    size_t sockets;               /* every worker's, under mu */
    nf_dict *per_ip;              /* address -> ip_count, under mu */
    nf_exchange *up;              /* the broker (worker 1's thread only), or NULL */
    worker w[];
};

struct wx {
    nf_exchange base;             /* first: the host holds an nf_exchange */
    worker *w;
    nf_list asks;                 /* wask.link */
    nf_list unsubs;               /* unsub_later.link (worker 1) */
};

/* ---- posting -------------------------------------------------------------------- */

static void count_failure(worker *from, unsigned to, int rc)
{
    if (rc != NF_ENOBUFS)
        return;
    from->host->metrics.limit_worker_queue++;
    uint64_t now = nf_now_ms();
    if (from->queue_logged_ms == 0 || now - from->queue_logged_ms >= QUEUE_LOG_INTERVAL_MS) {
        from->queue_logged_ms = now;
        nf_warn("worker %u: the queue of worker %u is full (--max-worker-queue %zu): a message to it was dropped "
                "(neffos_limit_hits_total{limit=\"worker_queue\"})", from->id + 1, to + 1, from->g->queue_cap);
    }
}

/* A call from worker `from` (its thread) to worker `to`, posted at the end
 * of this loop iteration. A call that cannot be delivered then (the queue
 * full, the loop ended) runs on `from` with owner NULL: it releases what it
 * holds and ends what waited for it. Returns 0 or NF_ENOMEM (not queued). */
static int post(worker *from, unsigned to, nf_mailbox_fn fn, void *arg)
{
    if (from->stopped || from->flush_ev == NULL) {   /* no iteration to end: at once */
        int rc = nf_mailbox_post(from->g->w[to].mb, fn, arg);
        if (rc == NF_ENOMEM)
            return rc;
        if (rc == 0)
            from->host->metrics.worker_messages_out++;
        else {
            count_failure(from, to, rc);
            fn(NULL, arg);
        }
        return 0;
    }
    if (nf_mailbox_batch_add(&from->outbox[to], fn, arg) != 0)
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
            w->host->metrics.worker_messages_out += n;
            continue;
        }
        count_failure(w, i, rc);
        nf_mailbox_batch_run(b, NULL);   /* not delivered */
    }
}

static void flush_cb(evutil_socket_t fd, short what, void *arg) { flush_outbox(arg); }

static void received(worker *w)
{
    if (w && !w->stopped)
        w->host->metrics.worker_messages_in++;
}

/* Copies the endpoint's path (NUL-terminated) and then slices into one
 * block: dst[i] point into data, which has room for path_room(path) plus
 * every src[i].len. Returns where the path went. */
static size_t path_room(const char *path) { return strlen(path) + 1; }

static char *copy_slices(char *data, const char *path, nf_slice *dst, const nf_slice *src, size_t n)
{
    size_t plen = strlen(path) + 1;
    memcpy(data, path, plen);
    char *copied = data;
    data += plen;
    for (size_t i = 0; i < n; i++) {
        if (src[i].len)
            memcpy(data, src[i].ptr, src[i].len);
        dst[i] = nf_slice_of(data, src[i].len);
        data += src[i].len;
    }
    return copied;
}

static size_t slices_len(const nf_slice *s, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += s[i].len;
    return len;
}

/* ---- broadcasts ------------------------------------------------------------------ */

enum { B_NS, B_ROOM, B_EVENT, B_BODY, B_TO, B_EXCEPT, B_FIELDS };

/* One broadcast for every other worker: copied once, shared by reference. */
typedef struct wmsg {
    atomic_uint refs;
    bool binary;
    bool publish_up;              /* from an app: worker 1 also publishes it to the broker */
    nf_slice f[B_FIELDS];
    char *path;                   /* the endpoint's, in data */
    char data[];
} wmsg;

static void wmsg_release(wmsg *m)
{
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        free(m);
}

static void run_broadcast(void *owner, void *arg)
{
    worker *w = owner;
    wmsg *m = arg;
    received(w);
    if (w && !w->stopped) {
        nf_endpoint *ep = nf_host_find_endpoint(w->host, m->path);
        if (ep) {
            /* The excepted connection (not an ID) lives on the publisher. */
            nf_broadcast b = { .ns = m->f[B_NS], .room = m->f[B_ROOM], .event = m->f[B_EVENT],
                               .body = m->f[B_BODY], .binary = m->binary, .to = m->f[B_TO],
                               .except_id = m->f[B_EXCEPT] };
            nf_exchange *up = w->g->up;
            if (m->publish_up && up && w->id == 0)
                up->ops->publish(up, ep, &b);   /* the process's one broker connection */
            nf_broadcast_local(ep, &b);
        }
    }
    wmsg_release(m);
}

/* Posts b to every other worker; publish_up: worker 1 publishes it to the
 * broker too (a broadcast of an app, not one that came from the broker). */
static void fan_out(worker *w, nf_endpoint *ep, const nf_broadcast *b, bool publish_up)
{
    nf_workers *g = w->g;
    const char *path = nf_endpoint_path(ep);
    nf_slice src[B_FIELDS] = { b->ns, b->room, b->event, b->body, b->to, b->except_id };
    wmsg *m = malloc(sizeof *m + path_room(path) + slices_len(src, B_FIELDS));
    if (m == NULL)
        return;
    m->binary = b->binary;
    m->publish_up = publish_up;
    m->path = copy_slices(m->data, path, m->f, src, B_FIELDS);
    atomic_init(&m->refs, 1);   /* ours, while posting */
    for (unsigned i = 0; i < g->n; i++) {
        if (i == w->id)
            continue;
        atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
        if (post(w, i, run_broadcast, m) != 0)
            atomic_fetch_sub_explicit(&m->refs, 1, memory_order_relaxed);   /* not queued */
    }
    wmsg_release(m);
}

static void wx_publish(nf_exchange *x, nf_endpoint *ep, const nf_broadcast *b)
{
    worker *w = ((wx *)x)->w;
    nf_exchange *up = w->g->up;
    if (up && w->id == 0)
        up->ops->publish(up, ep, b);
    fan_out(w, ep, b, w->id != 0);
}

/* Worker 1: the broker delivered b to its connections; the others' too. */
static void wx_relay(nf_exchange *x, nf_endpoint *ep, const nf_broadcast *b)
{
    fan_out(((wx *)x)->w, ep, b, false);
}

/* ---- the broker's subscriptions: all on worker 1's one connection ---------------- */

enum { SUB_NS, SUB_ID };

typedef struct wsub {
    int kind;
    bool add;
    nf_slice name;
    char *path;
    char data[];
} wsub;

static void subscribe_up(worker *w, nf_endpoint *ep, int kind, bool add, nf_slice name)
{
    nf_exchange *up = w->g->up;
    if (kind == SUB_NS)
        (add ? up->ops->subscribe_ns : up->ops->unsubscribe_ns)(up, ep, name);
    else
        (add ? up->ops->subscribe_id : up->ops->unsubscribe_id)(up, ep, name);
}

/* A namespace's last unsubscription waits NF_WORKERS_UNSUB_DELAY_MS on
 * worker 1: a connection that leaves and one that comes (a reconnect, a
 * page reload) on two workers would otherwise make the broker unsubscribe
 * and subscribe again, and the new connection's subscription, one hop
 * behind its connect reply, could miss what it causes at once. */
typedef struct unsub_later {
    nf_list link;                 /* in wx.unsubs */
    worker *w;
    struct event *ev;
    wsub *sb;
} unsub_later;

static void unsub_fire(evutil_socket_t fd, short what, void *arg)
{
    unsub_later *u = arg;
    nf_endpoint *ep = u->w->g->up ? nf_host_find_endpoint(u->w->host, u->sb->path) : NULL;
    if (ep)
        subscribe_up(u->w, ep, u->sb->kind, false, u->sb->name);
    nf_list_remove(&u->link);
    event_free(u->ev);
    free(u->sb);
    free(u);
}

static void run_sub(void *owner, void *arg)
{
    worker *w = owner;
    wsub *sb = arg;
    received(w);
    nf_endpoint *ep = w && !w->stopped && w->g->up && w->x ? nf_host_find_endpoint(w->host, sb->path) : NULL;
    if (ep && sb->kind == SUB_NS && !sb->add) {
        unsub_later *u = calloc(1, sizeof *u);
        if (u && (u->ev = evtimer_new(nf_host_base(w->host), unsub_fire, u)) != NULL) {
            struct timeval tv = nf_clock_timeval(NF_WORKERS_UNSUB_DELAY_MS);
            u->w = w;
            u->sb = sb;
            nf_list_push_back(&w->x->unsubs, &u->link);
            evtimer_add(u->ev, &tv);
            return;
        }
        free(u);
    }
    if (ep)
        subscribe_up(w, ep, sb->kind, sb->add, sb->name);
    free(sb);
}

/* Every worker delivers every broadcast to its own connections, whatever
 * their namespaces: nothing to subscribe between workers. With a broker,
 * worker 1 holds the process's subscriptions (reference-counted there). */
static void forward_sub(worker *w, nf_endpoint *ep, int kind, bool add, nf_slice name)
{
    if (w->g->up == NULL)
        return;
    const char *path = nf_endpoint_path(ep);
    wsub *sb = malloc(sizeof *sb + path_room(path) + name.len);
    if (sb == NULL)
        return;
    sb->kind = kind;
    sb->add = add;
    sb->path = copy_slices(sb->data, path, &sb->name, &name, 1);
    if (w->id == 0) {   /* here, now (run_sub delays a namespace's unsubscription) */
        run_sub(w, sb);
        return;
    }
    /* At once, not with this iteration's batch: the connect reply that this
     * subscription precedes leaves now, and a broadcast the client then asks
     * of another process must find the broker subscribed (as close as one
     * process comes: its subscription is written before its reply). */
    int rc = nf_mailbox_post(w->g->w[0].mb, run_sub, sb);
    if (rc == 0)
        w->host->metrics.worker_messages_out++;
    else {
        count_failure(w, 0, rc);
        free(sb);
    }
}

static void wx_subscribe_ns(nf_exchange *x, nf_endpoint *ep, nf_slice ns) { forward_sub(((wx *)x)->w, ep, SUB_NS, true, ns); }
static void wx_unsubscribe_ns(nf_exchange *x, nf_endpoint *ep, nf_slice ns) { forward_sub(((wx *)x)->w, ep, SUB_NS, false, ns); }

/* ---- connection counts ------------------------------------------------------------ */

static void count_change(worker *w, nf_endpoint *ep, int delta)
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
    if (delta > 0)
        atomic_fetch_add_explicit(&w->load, 1, memory_order_relaxed);
    else if (atomic_load_explicit(&w->load, memory_order_relaxed) > 0)
        atomic_fetch_sub_explicit(&w->load, 1, memory_order_relaxed);
}

static void wx_subscribe_id(nf_exchange *x, nf_endpoint *ep, nf_slice id)
{
    count_change(((wx *)x)->w, ep, 1);
    forward_sub(((wx *)x)->w, ep, SUB_ID, true, id);
}

static void wx_unsubscribe_id(nf_exchange *x, nf_endpoint *ep, nf_slice id)
{
    count_change(((wx *)x)->w, ep, -1);
    forward_sub(((wx *)x)->w, ep, SUB_ID, false, id);
}

/* ep's own connections, exactly, plus the other workers' with an ID. */
static size_t wx_count(nf_exchange *x, nf_endpoint *ep)
{
    worker *w = ((wx *)x)->w;
    nf_workers *g = w->g;
    const char *path = nf_endpoint_path(ep);
    size_t others = 0;
    pthread_mutex_lock(&g->mu);
    path_count *pc = nf_dict_get(g->counts, nf_slice_of(path, strlen(path)));
    for (unsigned i = 0; pc && i < g->n; i++)
        if (i != w->id)
            others += pc->per[i];
    pthread_mutex_unlock(&g->mu);
    return ep->count + others;
}

/* ---- asks by ID ------------------------------------------------------------------- */

/* An ask of this worker to the others (the asker's thread only). */
typedef struct wask {
    nf_list link;                 /* in wx.asks */
    nf_ask_cb cb;
    void *ud;
    unsigned legs;                /* workers that have not answered */
    bool done;                    /* cb ran */
    nf_ask_status failure;        /* the most telling so far */
} wask;

enum { Q_TO, Q_NS, Q_ROOM, Q_EVENT, Q_BODY, Q_FIELDS };

typedef struct wquestion {
    unsigned asker;
    wask *a;                      /* followed only on the asker's thread */
    worker *w;                    /* the worker asking its clients */
    bool via_broker;              /* worker 1 asks the other processes through the broker */
    unsigned timeout_ms;
    nf_slice f[Q_FIELDS];
    char *path;                   /* in data */
    char data[];
} wquestion;

enum { A_NS, A_ROOM, A_EVENT, A_BODY, A_FIELDS };

typedef struct wanswer {
    wask *a;
    nf_ask_status st;
    bool has_reply;
    bool is_error;
    nf_slice f[A_FIELDS];
    char data[];
} wanswer;

static int failure_rank(nf_ask_status st)
{
    return st == NF_ASK_TIMEOUT ? 2 : st == NF_ASK_CLOSED ? 1 : 0;
}

static void wask_leg_done(wask *a, nf_ask_status st, const nf_msg *reply)
{
    if (!a->done && (st == NF_ASK_OK || st == NF_ASK_REMOTE_ERROR)) {
        a->done = true;
        a->cb(a->ud, st, reply);
    } else if (!a->done && failure_rank(st) > failure_rank(a->failure)) {
        a->failure = st;
    }
    if (--a->legs > 0)
        return;
    if (!a->done) {
        a->done = true;
        a->cb(a->ud, a->failure, NULL);
    }
    nf_list_remove(&a->link);
    free(a);
}

static void run_answer(void *owner, void *arg)
{
    worker *w = owner;
    wanswer *an = arg;
    if (w == NULL) {   /* the asker's loop has ended: its asks end with it */
        free(an);
        return;
    }
    received(w);
    nf_msg reply = { .ns = an->f[A_NS], .room = an->f[A_ROOM], .event = an->f[A_EVENT], .body = an->f[A_BODY],
                     .is_error = an->is_error };
    wask_leg_done(an->a, an->st, an->has_reply ? &reply : NULL);
    free(an);
}

static void answer(worker *from, unsigned asker, wask *a, nf_ask_status st, const nf_msg *reply)
{
    nf_slice src[A_FIELDS] = { NF_SLICE_EMPTY, NF_SLICE_EMPTY, NF_SLICE_EMPTY, NF_SLICE_EMPTY };
    if (reply) {
        src[A_NS] = reply->ns;
        src[A_ROOM] = reply->room;
        src[A_EVENT] = reply->event;
        src[A_BODY] = reply->body;
    }
    wanswer *an = malloc(sizeof *an + path_room("") + slices_len(src, A_FIELDS));
    if (an == NULL)
        return;   /* the asker's own timeout ends its wait */
    an->a = a;
    an->st = st;
    an->has_reply = reply != NULL;
    an->is_error = reply && reply->is_error;
    copy_slices(an->data, "", an->f, src, A_FIELDS);
    if (post(from, asker, run_answer, an) != 0)
        free(an);   /* out of memory: the asker's leg ends with its worker's */
}

static void question_done(void *ud, nf_ask_status st, const nf_msg *reply)
{
    wquestion *q = ud;
    answer(q->w, q->asker, q->a, st, reply);
    free(q);
}

static void run_question(void *owner, void *arg)
{
    worker *w = owner;
    wquestion *q = arg;
    if (w == NULL) {   /* not delivered: on the asker's thread, that leg ends */
        wask_leg_done(q->a, NF_ASK_CLOSED, NULL);
        free(q);
        return;
    }
    received(w);
    q->w = w;
    nf_endpoint *ep = w->stopped ? NULL : nf_host_find_endpoint(w->host, q->path);
    if (ep == NULL) {
        question_done(q, w->stopped ? NF_ASK_CLOSED : NF_ASK_NOT_FOUND, NULL);
        return;
    }
    if (q->via_broker) {
        nf_exchange *up = w->g->up;
        if (up == NULL)
            question_done(q, NF_ASK_NOT_FOUND, NULL);
        else   /* its answer (or timeout) comes through question_done; not cancelled: answers to nobody */
            up->ops->ask(up, ep, q->f[Q_TO], q->f[Q_NS], q->f[Q_ROOM], q->f[Q_EVENT], q->f[Q_BODY], q->timeout_ms,
                         question_done, q);
        return;
    }
    /* Local only: the asker asks every worker itself. */
    nf_broadcast_ask(ep, false, q->f[Q_TO], q->f[Q_NS], q->f[Q_ROOM], q->f[Q_EVENT], q->f[Q_BODY], false,
                     q->timeout_ms, question_done, q);
}

static void *wx_ask(nf_exchange *x, nf_endpoint *ep, nf_slice to, nf_slice ns, nf_slice room, nf_slice event,
                    nf_slice body, unsigned timeout_ms, nf_ask_cb cb, void *ud)
{
    wx *self = (wx *)x;
    worker *w = self->w;
    nf_workers *g = w->g;
    wask *a = calloc(1, sizeof *a);
    if (a == NULL) {
        cb(ud, NF_ASK_CLOSED, NULL);
        return NULL;
    }
    *a = (wask){ .cb = cb, .ud = ud, .failure = NF_ASK_NOT_FOUND };
    nf_list_push_back(&self->asks, &a->link);
    const char *path = nf_endpoint_path(ep);
    nf_slice src[Q_FIELDS] = { to, ns, room, event, body };
    size_t len = path_room(path) + slices_len(src, Q_FIELDS);
    a->legs = 1;   /* while posting */
    /* A question to every other worker; with a broker, one more to worker 1
     * (itself included) for the other processes, unless this ask serves a
     * question that came from the broker. */
    bool broker = g->up != NULL && !nf_exchange_serving();
    for (unsigned k = 0; k < g->n + (broker ? 1u : 0u); k++) {
        bool via_broker = k == g->n;
        unsigned i = via_broker ? 0 : k;
        if (i == w->id && !via_broker)
            continue;
        wquestion *q = malloc(sizeof *q + len);
        if (q == NULL)
            continue;
        q->asker = w->id;
        q->a = a;
        q->w = NULL;
        q->via_broker = via_broker;
        q->timeout_ms = timeout_ms;
        q->path = copy_slices(q->data, path, q->f, src, Q_FIELDS);
        a->legs++;
        if (post(w, i, run_question, q) != 0) {
            a->legs--;
            free(q);
        }
    }
    if (a->legs == 1) {   /* nobody to ask */
        a->legs = 0;
        nf_list_remove(&a->link);
        free(a);
        cb(ud, NF_ASK_NOT_FOUND, NULL);
        return NULL;
    }
    a->legs--;
    return a;
}

/* The legs still out answer to nobody; the record goes with the last one. */
static void wx_ask_cancel(nf_exchange *x, void *handle)
{
    wask *a = handle;
    if (a->done)
        return;
    a->done = true;
    a->cb(a->ud, NF_ASK_CLOSED, NULL);
}

static void wx_free(nf_exchange *x)
{
    wx *self = (wx *)x;
    NF_LIST_FOREACH_SAFE(it, tmp, &self->unsubs) {   /* the broker goes too */
        unsub_later *u = NF_LIST_ENTRY(it, unsub_later, link);
        nf_list_remove(&u->link);
        event_free(u->ev);
        free(u->sb);
        free(u);
    }
    /* Detached already: no answer can arrive any more. */
    NF_LIST_FOREACH_SAFE(it, tmp, &self->asks) {
        wask *a = NF_LIST_ENTRY(it, wask, link);
        nf_list_remove(&a->link);
        if (!a->done)
            a->cb(a->ud, NF_ASK_CLOSED, NULL);
        free(a);
    }
    if (self->w->id == 0 && self->w->g->up) {
        nf_exchange *up = self->w->g->up;
        self->w->g->up = NULL;
        up->ops->free(up);
    }
    self->w->x = NULL;
    free(self);
}

static const nf_exchange_ops wx_ops = {
    .publish = wx_publish,
    .subscribe_ns = wx_subscribe_ns,
    .unsubscribe_ns = wx_unsubscribe_ns,
    .subscribe_id = wx_subscribe_id,
    .unsubscribe_id = wx_unsubscribe_id,
    .ask = wx_ask,
    .ask_cancel = wx_ask_cancel,
    .free = wx_free,
    .count = wx_count,
    .relay = wx_relay,
};

/* ---- one listener ------------------------------------------------------------------ */

typedef struct whandover {
    worker *from;                 /* the listener's worker */
    int fd;
    struct nf_tls *tls;           /* from the TLS listener: the handshake is the adopter's */
    char remote[64];
} whandover;

static void run_adopt(void *owner, void *arg)
{
    worker *w = owner;
    whandover *ho = arg;
    if (w == NULL) {   /* not delivered: admitted by the listener's worker */
        nf_host_adopt_tls(ho->from->host, ho->fd, ho->remote, ho->tls, NULL);
        free(ho);
        return;
    }
    received(w);
    if (w->stopped || w->host->draining)
        close(ho->fd);   /* it would be refused anyway: the process stops */
    else
        nf_host_adopt_tls(w->host, ho->fd, ho->remote, ho->tls, NULL);
    free(ho);
}

/* The worker with the fewest connections; among equals, the next in turn
 * (a burst of connections that have not upgraded yet is spread too). */
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
    if (to == w->id)
        return false;
    whandover *ho = malloc(sizeof *ho);
    if (ho == NULL)
        return false;
    ho->from = w;
    ho->fd = fd;
    ho->tls = tls;
    snprintf(ho->remote, sizeof ho->remote, "%s", remote);
    if (post(w, to, run_adopt, ho) != 0) {
        free(ho);
        return false;   /* admitted here instead */
    }
    return true;
}

/* ---- /metrics for the whole process -------------------------------------------------- */

typedef struct gather {
    nf_list link;                 /* in worker.gathers */
    nf_conn *c;                   /* held (nf_host_answer_metrics releases it) */
    bool head;
    unsigned pending;
    nf_metrics sum;
    size_t conns, eps;
    size_t *per_conns;            /* [n] */
} gather;

typedef struct snapshot {
    gather *gt;                   /* followed only on the requester's thread */
    worker *rq;                   /* the requester (its thread only) */
    unsigned requester, from;
    bool valid;
    nf_metrics m;
    size_t conns, eps;
} snapshot;

static void gather_add(gather *gt, unsigned from, const nf_metrics *m, size_t conns, size_t eps)
{
    nf_metrics_add(&gt->sum, m);
    gt->conns += conns;
    if (eps > gt->eps)
        gt->eps = eps;
    gt->per_conns[from] = conns;
}

static void gather_finish(worker *w, gather *gt)
{
    nf_workers *g = w->g;
    size_t cap = 200 + (size_t)g->n * 64;
    char *extra = malloc(cap);
    if (extra) {
        size_t used = (size_t)snprintf(extra, cap, "# HELP neffos_worker_connections Open WebSocket connections, by worker.\n"
                                                   "# TYPE neffos_worker_connections gauge\n");
        for (unsigned i = 0; i < g->n && used < cap; i++)
            used += (size_t)snprintf(extra + used, cap - used, "neffos_worker_connections{worker=\"%u\"} %zu\n", i + 1,
                                     gt->per_conns[i]);
    }
    gt->sum.workers = g->n;
    nf_list_remove(&gt->link);
    nf_host_answer_metrics(gt->c, gt->head, &gt->sum, gt->conns, gt->eps, extra);
    free(extra);
    free(gt->per_conns);
    free(gt);
}

static void run_snapshot_reply(void *owner, void *arg)
{
    worker *w = owner;
    snapshot *s = arg;
    if (w == NULL) {   /* the requester has ended: its requests with it */
        free(s);
        return;
    }
    received(w);
    if (s->valid)
        gather_add(s->gt, s->from, &s->m, s->conns, s->eps);
    if (--s->gt->pending == 0)
        gather_finish(w, s->gt);
    free(s);
}

static void run_snapshot(void *owner, void *arg)
{
    worker *w = owner;
    snapshot *s = arg;
    if (w == NULL) {   /* not delivered: on the requester's thread, without that worker's figures */
        gather *gt = s->gt;
        worker *rq = s->rq;
        free(s);
        if (--gt->pending == 0)
            gather_finish(rq, gt);
        return;
    }
    received(w);
    s->from = w->id;
    s->valid = !w->stopped;
    if (s->valid)
        nf_host_metrics_snapshot(w->host, &s->m, &s->conns, &s->eps);
    if (post(w, s->requester, run_snapshot_reply, s) != 0)
        free(s);   /* out of memory: that gather waits for its connection's close */
}

static bool hook_metrics(void *ud, nf_host *h, nf_conn *c, bool head)
{
    worker *w = ud;
    nf_workers *g = w->g;
    gather *gt = calloc(1, sizeof *gt);
    size_t *per = calloc(g->n, sizeof *per);
    if (gt == NULL || per == NULL) {
        free(gt);
        free(per);
        return false;   /* this worker's figures only */
    }
    gt->c = c;
    gt->head = head;
    gt->per_conns = per;
    gt->sum.exchange_connected = -1;   /* no broker unless a worker has one */
    nf_list_push_back(&w->gathers, &gt->link);
    nf_metrics m;
    size_t conns, eps;
    nf_host_metrics_snapshot(h, &m, &conns, &eps);
    gather_add(gt, w->id, &m, conns, eps);
    gt->pending = 1;   /* while posting */
    for (unsigned i = 0; i < g->n; i++) {
        if (i == w->id)
            continue;
        snapshot *s = calloc(1, sizeof *s);
        if (s == NULL)
            continue;
        s->gt = gt;
        s->rq = w;
        s->requester = w->id;
        gt->pending++;
        if (post(w, i, run_snapshot, s) != 0) {
            gt->pending--;
            free(s);
        }
    }
    if (--gt->pending == 0)
        gather_finish(w, gt);
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
    return rc;
}

static void hook_gone(void *ud, const char *ip)
{
    nf_workers *g = ((worker *)ud)->g;
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
};

/* ---- the group ------------------------------------------------------------------------ */

nf_workers *nf_workers_new(unsigned n, size_t queue_cap)
{
    if (n == 0 || n > NF_WORKERS_MAX)
        return NULL;
    nf_workers *g = calloc(1, sizeof *g + n * sizeof(worker));
    if (g == NULL)
        return NULL;
    g->n = n;
    g->queue_cap = queue_cap;
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
    w->mb = nf_mailbox_new(nf_host_base(h), g->queue_cap, w);
    w->outbox = calloc(g->n, sizeof *w->outbox);
    w->flush_ev = event_new(nf_host_base(h), -1, 0, flush_cb, w);
    if (w->mb == NULL || w->outbox == NULL || w->flush_ev == NULL)
        return NF_ENOMEM;
    w->host = h;
    h->metrics.workers = g->n;
    if (i == 0) {   /* the process's limits: every worker has the same */
        g->max_sockets = h->limits.max_connections;
        g->max_per_ip = h->limits.max_connections_per_ip;
    }
    nf_host_set_hooks(h, &worker_hooks, w);
    if (with_exchange) {
        wx *x = calloc(1, sizeof *x);
        if (x == NULL)
            return NF_ENOMEM;
        x->base.ops = &wx_ops;
        x->base.host = h;
        x->w = w;
        nf_list_init(&x->asks);
        nf_list_init(&x->unsubs);
        w->x = x;
        nf_host_set_exchange(h, &x->base);
        h->metrics.exchange_connected = -1;   /* no broker: no exchange lines in /metrics */
    }
    return 0;
}

void nf_workers_set_broker(nf_workers *g, nf_exchange *x)
{
    g->up = x;
    g->w[0].host->metrics.exchange_connected = 0;   /* the broker's lines in /metrics */
}

typedef struct wcall {
    nf_workers_fn fn;
    void *arg;
} wcall;

static void run_call(void *owner, void *arg)
{
    worker *w = owner;
    wcall *c = arg;
    received(w);
    c->fn(w->host, c->arg);
    free(c);
}

int nf_workers_post(nf_workers *g, unsigned i, nf_workers_fn fn, void *arg)
{
    if (i >= g->n || g->w[i].mb == NULL)
        return NF_EINVAL;
    wcall *c = malloc(sizeof *c);
    if (c == NULL)
        return NF_ENOMEM;
    c->fn = fn;
    c->arg = arg;
    int rc = nf_mailbox_post(g->w[i].mb, run_call, c);
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
        nf_list_remove(&gt->link);
        nf_conn_unref(gt->c);
        free(gt->per_conns);
        free(gt);
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
