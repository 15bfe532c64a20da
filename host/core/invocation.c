/* invocation.c - one run of an application handler.
 *
 * The core creates an invocation, the application runs it (maybe in a
 * coroutine that waits) and completes it with nf_invocation_finish(). The
 * continuation set by the core then carries on the protocol procedure: write
 * the reply, mark the namespace connected, send "A", and so on. The
 * invocation keeps its own copies of the token and names, since the frame it
 * came from is gone by the time a waiting handler finishes; the body is only
 * lent for the duration of invoke().
 *
 * Owns: nf_invocation (opaque to everything else), from nf_invocation_new
 * to nf_invocation_finish, which frees it (back to a small pool). An
 * invocation holds a reference to its connection and one hold of the
 * connection's turn while it runs; finish gives both back. How it came
 * about is a set of named flags (NF_INV_*), fixed at creation. */
#include "internal.h"
#include "poison.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct nf_invocation {
    nf_invocation_kind kind;
    nf_conn *conn;                 /* referenced */
    nf_endpoint *ep;
    nf_msg msg;                    /* names point into storage */
    unsigned flags;                /* nf_invocation_flag */
    nf_invocation_cont cont;
    void *cont_ud;
    char storage[];
};

/* Invocations are made for every message: recycle them instead of a
 * malloc/free pair each time. Those whose names fit POOLED_STORAGE come from
 * a free list bounded at POOL_MAX entries. */
#define POOLED_STORAGE 192
#define POOL_MAX 1024

typedef union pooled {
    union pooled *next;
    char bytes[sizeof(struct nf_invocation) + POOLED_STORAGE];
} pooled;

/* Per thread: each worker (--workers N) recycles its own. */
static _Thread_local pooled *free_list;
static _Thread_local size_t free_count;

static nf_invocation *inv_alloc(size_t storage)
{
    if (storage > POOLED_STORAGE)
        return malloc(sizeof(nf_invocation) + storage);
    if (free_list) {
        pooled *p = free_list;
        NF_UNPOISON(p, sizeof *p);
        free_list = p->next;
        free_count--;
        return (nf_invocation *)p;
    }
    return malloc(sizeof(pooled));
}

static void inv_free(nf_invocation *inv, size_t storage)
{
    if (storage > POOLED_STORAGE || free_count >= POOL_MAX) {
        free(inv);
        return;
    }
    pooled *p = (pooled *)inv;
    p->next = free_list;
    free_list = p;
    free_count++;
    /* A use after nf_invocation's end still shows under ASan; the link
     * stays readable, for LeakSanitizer to follow the list. */
    NF_POISON(p->bytes + sizeof p->next, sizeof *p - sizeof p->next);
}

static size_t storage_of(const nf_invocation *inv)
{
    return inv->msg.wait.len + inv->msg.ns.len + inv->msg.room.len + inv->msg.event.len;
}

static char *keep(char *w, nf_slice s, nf_slice *out)
{
    if (s.len)
        memcpy(w, s.ptr, s.len);
    *out = nf_slice_of(w, s.len);
    return w + s.len;
}

nf_invocation *nf_invocation_new(nf_invocation_kind kind, nf_conn *c, const nf_msg *m, unsigned flags)
{
    static const nf_msg none;
    if (m == NULL)
        m = &none;
    size_t need = m->wait.len + m->ns.len + m->room.len + m->event.len;
    nf_invocation *inv = inv_alloc(need);
    if (inv == NULL)
        return NULL;
    memset(inv, 0, sizeof *inv);
    inv->kind = kind;
    inv->flags = flags;
    inv->conn = c;
    inv->ep = nf_conn_endpoint(c);
    nf_conn_ref(c);
    char *w = inv->storage;
    w = keep(w, m->wait, &inv->msg.wait);
    w = keep(w, m->ns, &inv->msg.ns);
    w = keep(w, m->room, &inv->msg.room);
    keep(w, m->event, &inv->msg.event);
    inv->msg.body = m->body;
    inv->msg.is_error = m->is_error;
    inv->msg.is_noop = m->is_noop;
    return inv;
}

void nf_invocation_set_cont(nf_invocation *inv, nf_invocation_cont cont, void *cont_ud)
{
    inv->cont = cont;
    inv->cont_ud = cont_ud;
}

void *nf_invocation_cont_ud(const nf_invocation *inv) { return inv->cont_ud; }

void nf_invocation_run(nf_invocation *inv)
{
    nf_host *h = nf_conn_host(inv->conn);
    h->metrics.handler_runs++;
    nf_turn_hold(inv->conn);       /* every run holds its connection's turn (turn.c) */
    nf_host_handler_enter(h);
    h->ops->invoke(h->app, inv);   /* may finish and free inv: do not touch it after */
    nf_host_handler_leave(h);
}

void nf_invocation_finish(nf_invocation *inv, nf_result result, const char *data, size_t len)
{
    nf_conn *c = inv->conn;
    /* The body was lent for invoke() only; a late finish must not see it. */
    inv->msg.body = NF_SLICE_EMPTY;
    if (result == NF_RESULT_ERROR)
        nf_conn_host(c)->metrics.handler_errors++;
    if (inv->cont)
        inv->cont(inv, result, data, len);   /* may chain a run into the same turn */
    nf_turn_release(c);
    nf_conn_unref(c);
    inv_free(inv, storage_of(inv));
}

void nf_invocation_notify(nf_conn *c, nf_slice ns, nf_slice room, const char *event, unsigned flags)
{
    nf_msg m = { .ns = ns, .room = room, .event = nf_slice_of(event, strlen(event)) };
    nf_invocation *inv = nf_invocation_new(NF_INVOKE_EVENT, c, &m, flags);
    if (inv == NULL)
        return;
    nf_invocation_run(inv);
}

nf_invocation_kind nf_invocation_kind_of(const nf_invocation *inv) { return inv->kind; }
nf_conn *nf_invocation_conn(const nf_invocation *inv) { return inv->conn; }
nf_endpoint *nf_invocation_endpoint(const nf_invocation *inv) { return inv->ep; }
const nf_msg *nf_invocation_msg(const nf_invocation *inv) { return &inv->msg; }
unsigned nf_invocation_flags(const nf_invocation *inv) { return inv->flags; }
bool nf_invocation_is_local(const nf_invocation *inv) { return inv->flags & NF_INV_LOCAL; }
bool nf_invocation_is_forced(const nf_invocation *inv) { return inv->flags & NF_INV_FORCED; }
bool nf_invocation_is_native(const nf_invocation *inv) { return inv->flags & NF_INV_NATIVE; }
bool nf_invocation_is_binary(const nf_invocation *inv) { return inv->flags & NF_INV_BINARY; }
bool nf_invocation_wants_result(const nf_invocation *inv) { return inv->cont != NULL; }

nf_nsconn *nf_invocation_nsconn(const nf_invocation *inv)
{
    if (inv->kind != NF_INVOKE_EVENT)
        return NULL;
    return nf_conn_namespace(inv->conn, inv->msg.ns);
}

void nf_invocation_pool_release(void)
{
    while (free_list) {
        pooled *p = free_list;
        NF_UNPOISON(p, sizeof *p);
        free_list = p->next;
        free(p);
    }
    free_count = 0;
}
