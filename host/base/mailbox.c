/* mailbox.c - see mailbox.h.
 *
 * The queue is a singly linked list of (fn, arg) cells appended under the
 * mutex. The consumer takes the whole list in one lock and runs it outside
 * the lock, so a call may post again (to any mailbox, its own included)
 * without deadlock; what it posts to its own mailbox runs in the next round.
 * The eventfd is written only on the empty -> non-empty transition: a burst
 * of N posts costs one wake-up. */
#include "mailbox.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "errors.h"

typedef struct nf_mailbox_cell {
    struct nf_mailbox_cell *next;
    nf_mailbox_fn fn;
    void *arg;
    size_t bytes;
} cell;

struct nf_mailbox {
    pthread_mutex_t mu;
    cell *head, *tail;      /* under mu */
    size_t count;           /* under mu */
    size_t bytes;           /* under mu: what the waiting calls hold */
    size_t cap, cap_bytes;
    void *owner;
    bool closed;            /* under mu */
    int efd;
    struct event *ev;
};

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    uint64_t v;
    while (read(fd, &v, sizeof v) < 0 && errno == EINTR)
        ;
    nf_mailbox_run(arg);
}

nf_mailbox *nf_mailbox_new(struct event_base *base, size_t cap, size_t cap_bytes, void *owner)
{
    nf_mailbox *mb = calloc(1, sizeof *mb);
    if (mb == NULL)
        return NULL;
    mb->cap = cap;
    mb->cap_bytes = cap_bytes;
    mb->owner = owner;
    mb->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (mb->efd < 0) {
        free(mb);
        return NULL;
    }
    pthread_mutex_init(&mb->mu, NULL);
    mb->ev = event_new(base, mb->efd, EV_READ | EV_PERSIST, wake_cb, mb);
    if (mb->ev)
        event_priority_set(mb->ev, 0);   /* before the sockets (mailbox.h); a base of one priority: no-op */
    if (mb->ev == NULL || event_add(mb->ev, NULL) != 0) {
        if (mb->ev)
            event_free(mb->ev);
        close(mb->efd);
        pthread_mutex_destroy(&mb->mu);
        free(mb);
        return NULL;
    }
    return mb;
}

static cell *cell_new(nf_mailbox_fn fn, void *arg, size_t bytes)
{
    cell *c = malloc(sizeof *c);
    if (c) {
        c->next = NULL;
        c->fn = fn;
        c->arg = arg;
        c->bytes = bytes;
    }
    return c;
}

/* Under mu: n more calls holding `bytes` would pass a bound. An empty queue
 * takes them whatever their bytes: a message bigger than the bound, or one
 * loop iteration's burst, must not be refused while the receiver keeps up;
 * and calls that hold no bytes (a drain, a reload step) only count. */
static bool over(const nf_mailbox *mb, size_t n, size_t bytes)
{
    if (mb->count + n > mb->cap)
        return true;
    return bytes > 0 && mb->count > 0 && mb->bytes + bytes > mb->cap_bytes;
}

int nf_mailbox_post(nf_mailbox *mb, nf_mailbox_fn fn, void *arg, size_t bytes)
{
    cell *c = cell_new(fn, arg, bytes);
    if (c == NULL)
        return NF_ENOMEM;
    pthread_mutex_lock(&mb->mu);
    if (mb->closed || over(mb, 1, bytes)) {
        int rc = mb->closed ? NF_EPIPE : NF_ENOBUFS;
        pthread_mutex_unlock(&mb->mu);
        free(c);
        return rc;
    }
    bool was_empty = mb->head == NULL;
    if (mb->tail)
        mb->tail->next = c;
    else
        mb->head = c;
    mb->tail = c;
    mb->count++;
    mb->bytes += bytes;
    if (was_empty) {
        /* Under the lock: nf_mailbox_detach closes the eventfd under it. */
        uint64_t one = 1;
        while (write(mb->efd, &one, sizeof one) < 0 && errno == EINTR)
            ;
    }
    pthread_mutex_unlock(&mb->mu);
    return 0;
}

int nf_mailbox_batch_add(nf_mailbox_batch *b, nf_mailbox_fn fn, void *arg, size_t bytes)
{
    cell *c = cell_new(fn, arg, bytes);
    if (c == NULL)
        return NF_ENOMEM;
    if (b->tail)
        b->tail->next = c;
    else
        b->head = c;
    b->tail = c;
    b->count++;
    b->bytes += bytes;
    return 0;
}

int nf_mailbox_post_batch(nf_mailbox *mb, nf_mailbox_batch *b)
{
    if (b->head == NULL)
        return 0;
    pthread_mutex_lock(&mb->mu);
    if (mb->closed || over(mb, b->count, b->bytes)) {
        int rc = mb->closed ? NF_EPIPE : NF_ENOBUFS;
        pthread_mutex_unlock(&mb->mu);
        return rc;
    }
    bool was_empty = mb->head == NULL;
    if (mb->tail)
        mb->tail->next = b->head;
    else
        mb->head = b->head;
    mb->tail = b->tail;
    mb->count += b->count;
    mb->bytes += b->bytes;
    if (was_empty) {
        uint64_t one = 1;
        while (write(mb->efd, &one, sizeof one) < 0 && errno == EINTR)
            ;
    }
    pthread_mutex_unlock(&mb->mu);
    b->head = b->tail = NULL;
    b->count = 0;
    b->bytes = 0;
    return 0;
}

void nf_mailbox_batch_run(nf_mailbox_batch *b, void *owner)
{
    cell *c = b->head;
    b->head = b->tail = NULL;
    b->count = 0;
    b->bytes = 0;
    while (c) {
        cell *next = c->next;
        c->fn(owner, c->arg);
        free(c);
        c = next;
    }
}

size_t nf_mailbox_run(nf_mailbox *mb)
{
    pthread_mutex_lock(&mb->mu);
    cell *c = mb->head;
    mb->head = mb->tail = NULL;
    mb->count = 0;
    mb->bytes = 0;
    pthread_mutex_unlock(&mb->mu);
    size_t n = 0;
    while (c) {
        cell *next = c->next;
        c->fn(mb->owner, c->arg);
        free(c);
        c = next;
        n++;
    }
    return n;
}

void nf_mailbox_close(nf_mailbox *mb)
{
    pthread_mutex_lock(&mb->mu);
    mb->closed = true;
    pthread_mutex_unlock(&mb->mu);
}

size_t nf_mailbox_pending(nf_mailbox *mb)
{
    pthread_mutex_lock(&mb->mu);
    size_t n = mb->count;
    pthread_mutex_unlock(&mb->mu);
    return n;
}

size_t nf_mailbox_pending_bytes(nf_mailbox *mb)
{
    pthread_mutex_lock(&mb->mu);
    size_t n = mb->bytes;
    pthread_mutex_unlock(&mb->mu);
    return n;
}

void nf_mailbox_detach(nf_mailbox *mb)
{
    if (mb == NULL || mb->ev == NULL)
        return;
    nf_mailbox_close(mb);
    while (nf_mailbox_run(mb) > 0)
        ;
    event_free(mb->ev);
    mb->ev = NULL;
    pthread_mutex_lock(&mb->mu);
    close(mb->efd);
    mb->efd = -1;
    pthread_mutex_unlock(&mb->mu);
}

void nf_mailbox_free(nf_mailbox *mb)
{
    if (mb == NULL)
        return;
    nf_mailbox_detach(mb);
    pthread_mutex_destroy(&mb->mu);
    free(mb);
}
