/* exchange_workers.c - the in-process exchange of a group of workers
 * (workers.h, --workers N): the nf_exchange of each worker's host, which
 * delivers a broadcast to the other workers' connections, forwards their
 * broker subscriptions to worker 1, counts every worker's connections and
 * asks every worker by ID. Threads and lifetimes: workers_internal.h. */
#include "workers_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "log.h"

struct wx {
    nf_exchange base;             /* first: the host holds an nf_exchange */
    worker *w;
    nf_list asks;                 /* wask.link */
    nf_list unsubs;               /* unsub_later.link (worker 1) */
};

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
    bool binary, native;
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
    nf_workers_received(w);
    if (w && !w->stopped) {
        nf_endpoint *ep = nf_host_find_endpoint(w->host, m->path);
        if (ep) {
            /* The excepted connection (not an ID) lives on the publisher. */
            nf_broadcast b = { .ns = m->f[B_NS], .room = m->f[B_ROOM], .event = m->f[B_EVENT],
                               .body = m->f[B_BODY], .binary = m->binary, .native = m->native, .to = m->f[B_TO],
                               .except_id = m->f[B_EXCEPT] };
            nf_exchange *up = w->g->up;
            if (m->publish_up && up && w->id == 0)
                up->ops->publish(up, ep, &b);   /* the process's one broker connection */
            nf_exchange_deliver_host(ep, &b);
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
    size_t size = sizeof(wmsg) + path_room(path) + slices_len(src, B_FIELDS);
    wmsg *m = malloc(size);
    if (m == NULL)
        return;
    m->binary = b->binary;
    m->native = b->native;
    m->publish_up = publish_up;
    m->path = copy_slices(m->data, path, m->f, src, B_FIELDS);
    atomic_init(&m->refs, 1);   /* ours, while posting */
    for (unsigned i = 0; i < g->n; i++) {
        if (i == w->id)
            continue;
        atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
        if (nf_workers_post_from(w, i, run_broadcast, m, size) != 0)   /* each queue holds it all */
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
    nf_workers_received(w);
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
    if (nf_workers_post_now(w, 0, run_sub, sb, 0) != 0)   /* a subscription must not be lost to the bytes */
        free(sb);
}

static void wx_subscribe_ns(nf_exchange *x, nf_endpoint *ep, nf_slice ns) { forward_sub(((wx *)x)->w, ep, SUB_NS, true, ns); }
static void wx_unsubscribe_ns(nf_exchange *x, nf_endpoint *ep, nf_slice ns) { forward_sub(((wx *)x)->w, ep, SUB_NS, false, ns); }

/* ---- connection counts ------------------------------------------------------------ */

static void wx_subscribe_id(nf_exchange *x, nf_endpoint *ep, nf_slice id)
{
    nf_workers_count_change(((wx *)x)->w, ep, 1);
    forward_sub(((wx *)x)->w, ep, SUB_ID, true, id);
}

static void wx_unsubscribe_id(nf_exchange *x, nf_endpoint *ep, nf_slice id)
{
    nf_workers_count_change(((wx *)x)->w, ep, -1);
    forward_sub(((wx *)x)->w, ep, SUB_ID, false, id);
}

/* ep's own connections, exactly, plus the other workers' with an ID. */
static size_t wx_count(nf_exchange *x, nf_endpoint *ep)
{
    return nf_endpoint_own_count(ep) + nf_workers_count_others(((wx *)x)->w, ep);
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
    struct event *timer;          /* the ask's own timeout, or NULL */
} wask;

enum { Q_TO, Q_NS, Q_ROOM, Q_EVENT, Q_BODY, Q_FIELDS };

typedef struct wquestion {
    unsigned asker;
    wask *a;                      /* followed only on the asker's thread */
    worker *w;                    /* the worker asking its clients */
    bool via_broker;              /* worker 1 asks the other processes through the broker */
    bool binary;                  /* a binary frame, as the asker's clients get it */
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
    bool binary;                  /* the answer's frame (msg.binary) */
    nf_slice f[A_FIELDS];
    char data[];
} wanswer;

static int failure_rank(nf_ask_status st)
{
    return st == NF_ASK_TIMEOUT ? 2 : st == NF_ASK_CLOSED ? 1 : 0;
}

static void wask_free(wask *a)
{
    nf_list_remove(&a->link);
    if (a->timer)
        event_free(a->timer);
    free(a);
}

/* The ask's timeout on the asker's own loop. Each leg has it too, on its
 * worker, but from when that worker runs the question: a worker that does
 * not turn its loop (a long handler) would hold the asker past it, however
 * soon the other legs ended. The legs still out answer to nobody. */
static void wask_timeout(evutil_socket_t fd, short what, void *arg)
{
    wask *a = arg;
    if (!a->done) {
        a->done = true;
        a->cb(a->ud, NF_ASK_TIMEOUT, NULL);
    }
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
    wask_free(a);
}

static void run_answer(void *owner, void *arg)
{
    worker *w = owner;
    wanswer *an = arg;
    if (w == NULL) {   /* the asker's loop has ended: its asks end with it */
        free(an);
        return;
    }
    nf_workers_received(w);
    nf_msg reply = { .ns = an->f[A_NS], .room = an->f[A_ROOM], .event = an->f[A_EVENT], .body = an->f[A_BODY],
                     .is_error = an->is_error, .binary = an->binary };
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
    size_t size = sizeof(wanswer) + path_room("") + slices_len(src, A_FIELDS);
    wanswer *an = malloc(size);
    if (an == NULL)
        return;   /* the asker's own timeout ends its wait */
    an->a = a;
    an->st = st;
    an->has_reply = reply != NULL;
    an->is_error = reply && reply->is_error;
    an->binary = reply && reply->binary;
    copy_slices(an->data, "", an->f, src, A_FIELDS);
    if (nf_workers_post_from(from, asker, run_answer, an, size) != 0)
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
    nf_workers_received(w);
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
            up->ops->ask(up, ep, q->f[Q_TO], q->f[Q_NS], q->f[Q_ROOM], q->f[Q_EVENT], q->f[Q_BODY], q->binary,
                         q->timeout_ms, question_done, q);
        return;
    }
    /* Local only: the asker asks every worker itself. */
    nf_exchange_ask_host(ep, q->f[Q_TO], q->f[Q_NS], q->f[Q_ROOM], q->f[Q_EVENT], q->f[Q_BODY], q->binary,
                         q->timeout_ms, question_done, q);
}

static void *wx_ask(nf_exchange *x, nf_endpoint *ep, nf_slice to, nf_slice ns, nf_slice room, nf_slice event,
                    nf_slice body, bool binary, unsigned timeout_ms, nf_ask_cb cb, void *ud)
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
        q->binary = binary;
        q->timeout_ms = timeout_ms;
        q->path = copy_slices(q->data, path, q->f, src, Q_FIELDS);
        a->legs++;
        if (nf_workers_post_from(w, i, run_question, q, sizeof *q + len) != 0) {
            a->legs--;
            free(q);
        }
    }
    if (a->legs == 1) {   /* nobody to ask */
        a->legs = 0;
        wask_free(a);
        cb(ud, NF_ASK_NOT_FOUND, NULL);
        return NULL;
    }
    unsigned ms = timeout_ms ? timeout_ms : nf_host_limits(w->host)->ask_timeout_ms;
    struct timeval tv = nf_clock_timeval(ms);
    a->timer = evtimer_new(nf_host_base(w->host), wask_timeout, a);
    if (a->timer)   /* out of memory: the legs' own timeouts end it */
        evtimer_add(a->timer, &tv);
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
        bool done = a->done;
        a->done = true;
        if (!done)
            a->cb(a->ud, NF_ASK_CLOSED, NULL);
        wask_free(a);
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

/* ---- attaching ------------------------------------------------------------------------ */

int nf_exchange_workers_attach(worker *w)
{
    wx *x = calloc(1, sizeof *x);
    if (x == NULL)
        return NF_ENOMEM;
    x->base.ops = &wx_ops;
    x->base.host = w->host;
    x->w = w;
    nf_list_init(&x->asks);
    nf_list_init(&x->unsubs);
    w->x = x;
    nf_host_set_exchange(w->host, &x->base);
    w->metrics->exchange_connected = -1;   /* no broker: no exchange lines in /metrics */
    return 0;
}
