/* linger.c - the lingering close of linger.h: one event per socket, in a
 * list so that the set can close what is left when the host goes. */
#include "linger.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "list.h"

#define LINGER_READ_BYTES 16384   /* one discarding read; the loop's other work goes on between reads */

typedef struct lingering {
    nf_list link;
    nf_linger *set;
    struct event *ev;
    uint64_t deadline_ms;
    size_t discarded;
    evutil_socket_t fd;
} lingering;

struct nf_linger {
    struct event_base *base;
    nf_list sockets;   /* lingering.link */
    unsigned count;
};

nf_linger *nf_linger_new(struct event_base *base)
{
    nf_linger *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    l->base = base;
    nf_list_init(&l->sockets);
    return l;
}

static void finish(lingering *s)
{
    nf_list_remove(&s->link);
    s->set->count--;
    event_free(s->ev);
    evutil_closesocket(s->fd);
    free(s);
}

void nf_linger_free(nf_linger *l)
{
    if (l == NULL)
        return;
    while (!nf_list_empty(&l->sockets))
        finish(NF_LIST_ENTRY(l->sockets.next, lingering, link));
    free(l);
}

/* Readable or timed out: discard what came; done at the peer's FIN, an
 * error, the deadline or the byte bound. One read per wake-up keeps a fast
 * sender from holding the loop. */
static void linger_cb(evutil_socket_t fd, short what, void *arg)
{
    lingering *s = arg;
    if (what & EV_READ) {
        char buf[LINGER_READ_BYTES];
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0)
            s->discarded += (size_t)n;
        else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            finish(s);
            return;
        }
    }
    if ((what & EV_TIMEOUT) || nf_now_ms() >= s->deadline_ms || s->discarded >= NF_LINGER_MAX_BYTES)
        finish(s);
}

void nf_linger_close(nf_linger *l, evutil_socket_t fd)
{
    lingering *s = NULL;
    if (l == NULL || l->count >= NF_LINGER_MAX_SOCKETS || shutdown(fd, SHUT_WR) != 0 ||
        (s = calloc(1, sizeof *s)) == NULL ||
        (s->ev = event_new(l->base, fd, EV_READ | EV_PERSIST, linger_cb, s)) == NULL) {
        free(s);
        evutil_closesocket(fd);
        return;
    }
    s->set = l;
    s->fd = fd;
    s->deadline_ms = nf_now_ms() + NF_LINGER_MS;
    struct timeval tv = nf_clock_timeval(NF_LINGER_MS);
    event_add(s->ev, &tv);
    nf_list_push_back(&l->sockets, &s->link);
    l->count++;
}

unsigned nf_linger_count(const nf_linger *l) { return l ? l->count : 0; }
