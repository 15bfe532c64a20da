/* broadcast.c - delivery to many connections (docs/protocol.md §10), server-level
 * listings and asks by connection ID (IDs need not be unique: a message
 * or an ask "to" an ID reaches every connection with it, docs/protocol.md §17.2.5).
 *
 * A broadcast is serialized once, WebSocket header included (server frames
 * are not masked, so the bytes are the same for every receiver), and each
 * receiver's output gets a reference to those bytes, not a copy. Delivery is
 * synchronous into each receiver's output buffer, so nothing is lost under a
 * burst and order is kept per receiver; the bounded output queue is what
 * protects the server from a receiver that does not read. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include "exchange.h"
#include "log.h"

typedef struct fanout {
    nf_msg msg;
    bool binary, native;
    nf_shared_frame *frame;       /* built on the first receiver */
    const nf_broadcast *b;
    size_t delivered;
} fanout;

static void fill_msg(void *ctx, char *dst) { nf_msg_serialize(ctx, dst); }

static void fill_body(void *ctx, char *dst)
{
    const nf_msg *m = ctx;
    memcpy(dst, m->body.ptr, m->body.len);
}

static bool excluded(const nf_broadcast *b, const nf_conn *c)
{
    if (b->except == c)
        return true;
    return b->except_id.len && nf_slice_eq(b->except_id, nf_conn_id(c));
}

static void deliver(fanout *f, nf_conn *c)
{
    if (excluded(f->b, c) || !nf_conn_can_write(c) || !nf_conn_is_acknowledged(c) || !nf_conn_output_has_room(c))
        return;
    if (f->frame == NULL) {
        f->frame = f->native ? nf_shared_frame_new(f->binary, f->msg.body.len, fill_body, &f->msg)
                             : nf_shared_frame_new(f->binary, nf_msg_serialized_len(&f->msg), fill_msg, &f->msg);
        if (f->frame == NULL)
            return;
    }
    if (nf_ws_send_shared(nf_conn_ws(c), f->frame) == 0)
        f->delivered++;
}

size_t nf_broadcast_local(nf_endpoint *ep, const nf_broadcast *b)
{
    fanout f = { .msg = { .ns = b->ns, .room = b->room, .event = b->event, .body = b->body },
                 .binary = b->binary, .native = b->native, .b = b };
    if (b->to.len) {
        nf_id_group *g = nf_dict_get(ep->by_id, b->to);
        if (g) {
            NF_LIST_FOREACH(it, &g->conns) {
                nf_conn *c = NF_LIST_ENTRY(it, nf_conn, id_link);
                nf_nsconn *nc = nf_conn_namespace(c, b->ns);
                if (nc && (b->room.len == 0 || nf_nsconn_in_room(nc, b->room)))
                    deliver(&f, c);
            }
        }
    } else {
        nf_ns_index *idx = nf_dict_get(ep->namespaces, b->ns);
        if (idx && b->room.len) {
            nf_room_index *ri = nf_dict_get(idx->rooms, b->room);
            if (ri) {
                NF_LIST_FOREACH(it, &ri->members)
                    deliver(&f, NF_LIST_ENTRY(it, nf_room_member, room_link)->nc->conn);
            }
        } else if (idx) {
            NF_LIST_FOREACH(it, &idx->members)
                deliver(&f, NF_LIST_ENTRY(it, nf_nsconn, index_link)->conn);
        }
    }
    if (f.frame) {
        ep->host->metrics.broadcast_deliveries += f.delivered;
        ep->host->metrics.messages_out += f.delivered;
        ep->host->metrics.bytes_out += f.delivered * nf_shared_frame_size(f.frame);
        nf_shared_frame_release(f.frame);
    }
    return f.delivered;
}

size_t nf_broadcast_publish(nf_endpoint *ep, const nf_broadcast *b)
{
    /* No connection can be in a namespace or room with a longer name; not
     * hashed, not published (the other processes would drop it too). */
    if (nf_ns_check_names(ep->host, b->ns, b->room, b->event) != 0) {
        ep->host->metrics.limit_name++;
        return 0;
    }
    ep->host->metrics.broadcasts++;
    if (ep->host->exchange)
        nf_exchange_publish(ep->host->exchange, ep, b);
    /* Our own publication comes back from the broker and is dropped there:
     * local receivers get it here, at once. */
    return nf_broadcast_local(ep, b);
}

/* ---- listings ------------------------------------------------------------------ */

typedef struct snapshot {
    nf_conn **conns;
    size_t n;
} snapshot;

static int snapshot_take(snapshot *s, nf_list *head, size_t count, size_t link_off)
{
    s->n = 0;
    s->conns = count ? malloc(count * sizeof *s->conns) : NULL;
    if (count && s->conns == NULL)
        return NF_ENOMEM;
    NF_LIST_FOREACH(it, head) {
        if (s->n == count)
            break;
        nf_conn *c = (nf_conn *)((char *)it - link_off);
        nf_conn_ref(c);
        s->conns[s->n++] = c;
    }
    return 0;
}

static void snapshot_release(snapshot *s)
{
    for (size_t i = 0; i < s->n; i++)
        nf_conn_unref(s->conns[i]);
    free(s->conns);
}

void nf_broadcast_each(nf_endpoint *ep, bool (*fn)(void *ud, nf_conn *c), void *ud)
{
    snapshot s;
    if (snapshot_take(&s, &ep->conns, ep->count, offsetof(nf_conn, ep_link)) != 0)
        return;
    for (size_t i = 0; i < s.n; i++)
        if (!nf_conn_is_closed(s.conns[i]) && !fn(ud, s.conns[i]))
            break;
    snapshot_release(&s);
}

void nf_broadcast_each_member(nf_endpoint *ep, nf_slice ns, nf_slice room,
                              bool (*fn)(void *ud, nf_nsconn *nc), void *ud)
{
    nf_ns_index *idx = nf_dict_get(ep->namespaces, ns);
    snapshot s = { NULL, 0 };
    if (idx == NULL)
        return;
    if (room.len) {
        nf_room_index *ri = nf_dict_get(idx->rooms, room);
        if (ri == NULL)
            return;
        s.conns = malloc(ri->count * sizeof *s.conns);
        if (s.conns == NULL)
            return;
        NF_LIST_FOREACH(it, &ri->members) {
            nf_conn *c = NF_LIST_ENTRY(it, nf_room_member, room_link)->nc->conn;
            nf_conn_ref(c);
            s.conns[s.n++] = c;
        }
    } else {
        s.conns = malloc(idx->count * sizeof *s.conns);
        if (s.conns == NULL)
            return;
        NF_LIST_FOREACH(it, &idx->members) {
            nf_conn *c = NF_LIST_ENTRY(it, nf_nsconn, index_link)->conn;
            nf_conn_ref(c);
            s.conns[s.n++] = c;
        }
    }
    /* Look each namespace connection up again: an earlier callback may have
     * disconnected it. */
    for (size_t i = 0; i < s.n; i++) {
        nf_nsconn *nc = nf_conn_is_closed(s.conns[i]) ? NULL : nf_conn_namespace(s.conns[i], ns);
        if (nc && (room.len == 0 || nf_nsconn_in_room(nc, room)) && !fn(ud, nc))
            break;
    }
    snapshot_release(&s);
}

/* ---- asks by ID ------------------------------------------------------------------ */

/* One server:ask of every connection with an ID, here and (a leg of its
 * own) on the other processes. The first answer wins, like Go's Server.Ask
 * (docs/protocol.md §8.4); the questions still out are answered to nobody: a late answer
 * matches its token and is dropped (docs/protocol.md §17.4.3), and the other processes' leg is
 * cancelled. */
typedef struct ask_group {
    nf_ask_cb cb;
    void *ud;
    nf_slice room, event, body;   /* the question, while the legs start */
    nf_slice ns;
    bool binary;
    unsigned timeout_ms;
    nf_exchange *x;
    void *remote;                 /* the other processes' leg, until it ends */
    unsigned legs;                /* not ended, plus one while starting */
    bool answered;
    nf_ask_status failure;        /* the most telling so far */
} ask_group;

/* A timeout says more than a close, a close more than "not found". */
static int failure_rank(nf_ask_status st)
{
    return st == NF_ASK_TIMEOUT ? 2 : st == NF_ASK_CLOSED ? 1 : 0;
}

static void group_leg_done(void *ud, nf_ask_status st, const nf_msg *reply)
{
    ask_group *g = ud;
    if (!g->answered && (st == NF_ASK_OK || st == NF_ASK_REMOTE_ERROR)) {
        g->answered = true;
        g->cb(g->ud, st, reply);
        if (g->remote)
            nf_exchange_ask_cancel(g->x, g->remote);   /* ends that leg, now */
    } else if (!g->answered && failure_rank(st) > failure_rank(g->failure)) {
        g->failure = st;
    }
    if (--g->legs > 0)
        return;
    if (!g->answered)
        g->cb(g->ud, g->failure, NULL);
    free(g);
}

static void group_remote_done(void *ud, nf_ask_status st, const nf_msg *reply)
{
    ask_group *g = ud;
    g->remote = NULL;
    group_leg_done(g, st, reply);
}

static bool group_ask_one(void *ud, nf_conn *c)
{
    ask_group *g = ud;
    nf_nsconn *nc = nf_conn_namespace(c, g->ns);
    if (nc) {
        g->legs++;
        nf_nsconn_ask(nc, g->room, g->event, g->body, g->binary, g->timeout_ms, group_leg_done, g);
    }
    return true;
}

void nf_broadcast_ask(nf_endpoint *ep, bool remote, nf_slice to, nf_slice ns, nf_slice room, nf_slice event,
                      nf_slice body, bool binary, unsigned timeout_ms, nf_ask_cb cb, void *ud)
{
    ask_group *g = calloc(1, sizeof *g);
    if (g == NULL) {
        cb(ud, NF_ASK_CLOSED, NULL);
        return;
    }
    *g = (ask_group){ .cb = cb, .ud = ud, .ns = ns, .room = room, .event = event, .body = body,
                      .binary = binary, .timeout_ms = timeout_ms, .legs = 1, .failure = NF_ASK_NOT_FOUND };
    nf_ids_each(ep, to, group_ask_one, g);
    if (remote && ep->host->exchange) {
        g->x = ep->host->exchange;
        g->legs++;
        g->remote = nf_exchange_ask(g->x, ep, to, ns, room, event, body, binary, timeout_ms, group_remote_done, g);
    }
    group_leg_done(g, NF_ASK_NOT_FOUND, NULL);   /* the starting reference */
}


/* ---- scale-out subscriptions ------------------------------------------------------ */

void nf_broadcast_ns_connected(nf_nsconn *nc)
{
    nf_exchange *x = nf_conn_host(nc->conn)->exchange;
    if (x)
        nf_exchange_subscribe(x, nf_conn_endpoint(nc->conn), nf_nsconn_name(nc));
}

void nf_broadcast_ns_disconnected(nf_nsconn *nc)
{
    nf_exchange *x = nf_conn_host(nc->conn)->exchange;
    if (x)
        nf_exchange_unsubscribe(x, nf_conn_endpoint(nc->conn), nf_nsconn_name(nc));
}
