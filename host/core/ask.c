/* ask.c - asks from the server to one client (docs/protocol.md §8.2, §17.4): tokens,
 * the pending table, timeouts.
 *
 * Server tokens are decimal digits from a per-process counter seeded with
 * the clock, the Go server's shape: never '$' (a client's), '#', or a '!' as
 * second byte. Every ask has a timeout, because a neffos.js handler that
 * returns null never answers. */
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"

struct nf_pending_ask {
    nf_list link;                 /* in nf_conn.asks */
    nf_conn *c;
    uint64_t token;
    nf_ask_cb cb;
    void *ud;
    struct event *timer;
    uint64_t deadline_ms;         /* nf_now_ms() at which the sweep fails it (nf_ask_expire) */
};

size_t nf_ask_token_next(nf_host *h, char *buf)
{
    return (size_t)snprintf(buf, 21, "%" PRIu64, h->next_token++);
}

static void pending_free(nf_pending_ask *p)
{
    nf_list_remove(&p->link);
    p->c->ask_count--;
    if (p->timer)
        event_free(p->timer);
    free(p);
}

static void ask_timeout(evutil_socket_t fd, short what, void *arg)
{
    nf_pending_ask *p = arg;
    nf_ask_cb cb = p->cb;
    void *ud = p->ud;
    nf_conn *c = p->c;
    nf_conn_host(c)->metrics.ask_timeouts++;
    nf_conn_ref(c);
    pending_free(p);
    cb(ud, NF_ASK_TIMEOUT, NULL);
    nf_conn_unref(c);
}

void nf_ask_send(nf_conn *c, nf_slice ns, nf_slice room, nf_slice event, nf_slice body, bool binary,
                 unsigned timeout_ms, nf_ask_cb cb, void *ud)
{
    char token[24];
    if (!nf_conn_can_write(c) || !nf_conn_is_acknowledged(c)) {
        cb(ud, NF_ASK_CLOSED, NULL);
        return;
    }
    if (c->ask_count >= nf_conn_host(c)->limits.max_pending_asks) {
        nf_conn_limit_hit(c, NF_LIMIT_ASKS, "pending server asks per connection");
        cb(ud, NF_ASK_CLOSED, NULL);
        return;
    }
    nf_pending_ask *p = calloc(1, sizeof *p);
    if (p == NULL) {
        cb(ud, NF_ASK_CLOSED, NULL);
        return;
    }
    p->c = c;
    p->cb = cb;
    p->ud = ud;
    p->token = nf_conn_host(c)->next_token;
    size_t tlen = nf_ask_token_next(nf_conn_host(c), token);
    p->timer = evtimer_new(nf_conn_host(c)->base, ask_timeout, p);
    if (p->timer == NULL) {
        free(p);
        cb(ud, NF_ASK_CLOSED, NULL);
        return;
    }
    nf_list_push_back(&c->asks, &p->link);
    c->ask_count++;
    unsigned ms = timeout_ms ? timeout_ms : nf_conn_host(c)->limits.ask_timeout_ms;
    p->deadline_ms = nf_now_ms() + ms;
    struct timeval tv = nf_clock_timeval(ms);
    evtimer_add(p->timer, &tv);
    nf_msg m = { .wait = nf_slice_of(token, tlen), .ns = ns, .room = room, .event = event, .body = body };
    nf_conn_host(c)->metrics.asks_sent++;
    if (nf_conn_send_msg(c, &m, binary) != 0) {
        pending_free(p);
        cb(ud, NF_ASK_CLOSED, NULL);
    }
}

static bool parse_token(nf_slice t, uint64_t *out)
{
    uint64_t v = 0;
    if (t.len == 0 || t.len > 20)
        return false;
    for (size_t i = 0; i < t.len; i++) {
        if (t.ptr[i] < '0' || t.ptr[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(t.ptr[i] - '0');
    }
    *out = v;
    return true;
}

bool nf_ask_deliver(nf_conn *c, const nf_msg *reply)
{
    uint64_t token;
    if (!parse_token(reply->wait, &token))
        return false;
    NF_LIST_FOREACH(it, &c->asks) {
        nf_pending_ask *p = NF_LIST_ENTRY(it, nf_pending_ask, link);
        if (p->token != token)
            continue;
        nf_ask_cb cb = p->cb;
        void *ud = p->ud;
        pending_free(p);
        /* An error flag with empty text is success in Go and JS alike (docs/protocol.md §5.5). */
        nf_ask_status st = reply->is_error && reply->body.len ? NF_ASK_REMOTE_ERROR : NF_ASK_OK;
        nf_conn_ref(c);
        cb(ud, st, reply);
        nf_conn_unref(c);
        return true;
    }
    return false;
}

void nf_ask_cancel_all(nf_conn *c)
{
    while (!nf_list_empty(&c->asks)) {
        nf_pending_ask *p = NF_LIST_ENTRY(c->asks.next, nf_pending_ask, link);
        nf_ask_cb cb = p->cb;
        void *ud = p->ud;
        pending_free(p);
        cb(ud, NF_ASK_CLOSED, NULL);
    }
}

/* The same deadline as the timer's, checked by nf_host_sweep: the timer is
 * libevent's and exact; this check follows nf_now_ms(), so a manual clock
 * (clock.h) can time asks out too. Whichever comes first fails the ask. */
void nf_ask_expire(nf_conn *c, uint64_t now)
{
    /* A callback may ask again or close the connection: walk from the head
     * after each one, at most as many times as there were asks. */
    for (size_t budget = c->ask_count; budget > 0; budget--) {
        nf_pending_ask *due = NULL;
        NF_LIST_FOREACH(it, &c->asks) {
            nf_pending_ask *p = NF_LIST_ENTRY(it, nf_pending_ask, link);
            if (now >= p->deadline_ms) {
                due = p;
                break;
            }
        }
        if (due == NULL)
            return;
        ask_timeout(-1, 0, due);
    }
}
