/* exchange_bus.c - see exchange_bus.h.
 *
 * Subscriptions: one record per channel name, holding which endpoints want
 * it and how many times (one reference per local namespace connection, or
 * per local connection ID). The first reference subscribes on the broker,
 * the last one unsubscribes; in between the broker is not asked anything.
 * A namespace and a connection ID with the same name share a channel (the
 * Go exchanges have the same property); the record keeps both kinds.
 *
 * Publishing: one bus message per broadcast, marked in field 0 with this
 * process's node id (exchange_marker.h). The broker sends our own messages
 * back; they were delivered locally already, so they are dropped here.
 *
 * Asks across processes (docs/protocol.md §14.7): the asker subscribes to a channel
 * named by a fresh digits token, and once the broker confirmed it (a
 * publish that overtook the subscription would lose the answer) publishes
 * the question with that token in field 0 to the target's ID channel. The
 * process owning the target asks its client with an ordinary local ask and
 * publishes the answer ";ns;room;event;E;0;body" on the token channel,
 * which is also what a Go asker expects. */
#include "exchange_bus.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "clock.h"
#include "dict.h"
#include "exchange_key.h"
#include "exchange_marker.h"
#include "list.h"
#include "log.h"
#include "metrics.h"

enum { KIND_NS = 0, KIND_ID = 1 };

typedef struct chan_ep {
    nf_list link;                 /* in bus_chan.eps[kind] */
    nf_endpoint *ep;
    size_t refs;
} chan_ep;

typedef struct bus_ask bus_ask;

typedef struct bus_chan {
    nf_list eps[2];               /* chan_ep, by KIND_* */
    size_t refs;                  /* every chan_ep's refs, plus one for an ask */
    bus_ask *ask;                 /* a token channel: the ask waiting on it */
    size_t key_off, key_len;      /* the namespace or ID inside the name */
    bool valid;                   /* the broker accepts the name */
    bool pending;                 /* subscribed, not confirmed yet (metrics.exchange_pending) */
    size_t name_len;
    char name[];
} bus_chan;

struct bus_ask {
    nf_list link;                 /* in nf_bus.asks */
    nf_bus *bus;
    bus_chan *chan;               /* the token channel */
    nf_ask_cb cb;
    void *ud;
    struct event *timer;
    char *to;                     /* the target's ID channel */
    size_t to_len;
    char *question;               /* payload, until published */
    size_t question_len;
};

/* An ask from another process that a local client is answering. */
typedef struct bus_serve {
    nf_list link;                 /* in nf_bus.serves */
    nf_bus *bus;                  /* NULL once the bus is gone */
    nf_slice token, ns, room, event;
    char data[];
} bus_serve;

struct nf_bus {
    nf_exchange base;             /* first: the core holds an nf_exchange */
    nf_host *host;
    nf_metrics *metrics;          /* the host's (nf_host_metrics): this bus's lines */
    const nf_bus_transport_ops *ops;
    void *t;
    nf_bus_names names;
    char *prefix;
    size_t prefix_len;
    char node[NF_MARKER_NODE_LEN + 1];
    unsigned node_digits;         /* from node: part of every ask token */
    nf_dict *chans;               /* name -> bus_chan */
    nf_list asks;
    size_t ask_count;
    nf_list serves;
    size_t serve_count;
    uint64_t first_token, next_token;
    char *scratch;                /* unescaped fields of received messages */
    size_t scratch_cap;
    char *name_buf;               /* channel names being built */
    size_t name_cap;
    char *decoded;                /* the ID and except-id of a received message */
    size_t decoded_cap;
    bool up;
    bool freeing;
    bool warned_invalid;
    bool warned_names;
};

static const nf_exchange_ops bus_exchange_ops;

/* ---- buffers and names ------------------------------------------------------ */

static int reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    char *p = realloc(*buf, need);
    if (p == NULL)
        return -1;
    *buf = p;
    *cap = need;
    return 0;
}

/* The channel of a namespace or connection ID; valid until the next call.
 * *key_off receives where the key starts inside the name. On NATS an ID is
 * percent-encoded (exchange_key.h): one subject token whatever its bytes. */
static int build_name(nf_bus *b, nf_slice key, bool is_id, nf_slice *name, size_t *key_off)
{
    bool encode = is_id && b->names == NF_BUS_NAMES_NATS;
    size_t klen = encode ? nf_key_encoded_len(key) : key.len;
    if (reserve(&b->name_buf, &b->name_cap, b->prefix_len + klen + 2) != 0)
        return -1;
    char *p = b->name_buf;
    memcpy(p, b->prefix, b->prefix_len);
    p += b->prefix_len;
    if (b->names == NF_BUS_NAMES_NATS && key.len == 0) {
        *key_off = b->prefix_len;     /* NATS refuses "prefix.": the bare prefix instead */
    } else {
        *p++ = '.';
        *key_off = b->prefix_len + 1;
        if (encode)
            nf_key_encode(key, p);
        else if (key.len)
            memcpy(p, key.ptr, key.len);
        p += klen;
        if (b->names == NF_BUS_NAMES_REDIS)
            *p++ = '.';
    }
    *name = nf_slice_of(b->name_buf, (size_t)(p - b->name_buf));
    return 0;
}

/* ---- channel records ------------------------------------------------------------ */

static bus_chan *chan_new(nf_bus *b, nf_slice name, size_t key_off, size_t key_len)
{
    bus_chan *ch = calloc(1, sizeof *ch + name.len + 1);
    if (ch == NULL)
        return NULL;
    nf_list_init(&ch->eps[KIND_NS]);
    nf_list_init(&ch->eps[KIND_ID]);
    memcpy(ch->name, name.ptr, name.len);
    ch->name_len = name.len;
    ch->key_off = key_off;
    ch->key_len = key_len;
    ch->valid = b->ops->valid == NULL || b->ops->valid(name);
    if (nf_dict_set(b->chans, nf_slice_of(ch->name, ch->name_len), ch) != 0) {
        free(ch);
        return NULL;
    }
    b->metrics->exchange_channels = nf_dict_size(b->chans);
    if (!ch->valid && !b->warned_invalid) {
        b->warned_invalid = true;
        nf_warn("exchange: \"%.*s\" is not a valid channel for this broker: not shared with other "
                "processes (further names are not reported)", (int)name.len, name.ptr);
    }
    return ch;
}

static void send_question(nf_bus *b, bus_ask *a);

/* Subscribes on the broker; a confirmation may be immediate (NATS). */
static void chan_subscribe(nf_bus *b, bus_chan *ch)
{
    if (!ch->valid || b->freeing)
        return;
    nf_bus_sub rc = b->ops->subscribe(b->t, nf_slice_of(ch->name, ch->name_len));
    if (rc == NF_BUS_SUB_SENT && !ch->pending) {
        ch->pending = true;
        b->metrics->exchange_pending++;
    }
    if (rc == NF_BUS_SUB_ORDERED && ch->ask)
        send_question(b, ch->ask);
}

static void chan_confirmed(nf_bus *b, bus_chan *ch)
{
    if (!ch->pending)
        return;
    ch->pending = false;
    b->metrics->exchange_pending--;
}

static void chan_drop(nf_bus *b, bus_chan *ch)
{
    chan_confirmed(b, ch);
    nf_dict_delete(b->chans, nf_slice_of(ch->name, ch->name_len));
    b->metrics->exchange_channels = nf_dict_size(b->chans);
    free(ch);
}

static void chan_release(nf_bus *b, bus_chan *ch)
{
    if (--ch->refs > 0)
        return;
    if (ch->valid && !b->freeing)
        b->ops->unsubscribe(b->t, nf_slice_of(ch->name, ch->name_len));
    chan_drop(b, ch);
}

static chan_ep *chan_find_ep(bus_chan *ch, int kind, nf_endpoint *ep)
{
    NF_LIST_FOREACH(it, &ch->eps[kind]) {
        chan_ep *ce = NF_LIST_ENTRY(it, chan_ep, link);
        if (ce->ep == ep)
            return ce;
    }
    return NULL;
}

static void ref(nf_bus *b, int kind, nf_endpoint *ep, nf_slice key)
{
    nf_slice name;
    size_t key_off;
    if (b->freeing || build_name(b, key, kind == KIND_ID, &name, &key_off) != 0)
        return;
    bus_chan *ch = nf_dict_get(b->chans, name);
    bool fresh = ch == NULL;
    /* The key as the name holds it: an encoded ID is longer than the ID. */
    size_t key_len = name.len - key_off - (b->names == NF_BUS_NAMES_REDIS && name.len > key_off ? 1 : 0);
    if (fresh && (ch = chan_new(b, name, key_off, key_len)) == NULL)
        return;
    chan_ep *ce = chan_find_ep(ch, kind, ep);
    if (ce == NULL) {
        if ((ce = calloc(1, sizeof *ce)) == NULL) {
            if (fresh)
                chan_drop(b, ch);
            return;
        }
        ce->ep = ep;
        nf_list_push_back(&ch->eps[kind], &ce->link);
    }
    ce->refs++;
    ch->refs++;
    if (fresh)
        chan_subscribe(b, ch);
}

static void unref(nf_bus *b, int kind, nf_endpoint *ep, nf_slice key)
{
    nf_slice name;
    size_t key_off;
    if (b->freeing || build_name(b, key, kind == KIND_ID, &name, &key_off) != 0)
        return;
    bus_chan *ch = nf_dict_get(b->chans, name);
    chan_ep *ce = ch ? chan_find_ep(ch, kind, ep) : NULL;
    if (ce == NULL)
        return;
    if (--ce->refs == 0) {
        nf_list_remove(&ce->link);
        free(ce);
    }
    chan_release(b, ch);
}

/* ---- publishing -------------------------------------------------------------- */

static int publish(nf_bus *b, nf_slice channel, nf_slice payload)
{
    if (b->freeing || payload.len > nf_bus_max_payload(b) || b->ops->publish(b->t, channel, payload) != 0) {
        b->metrics->exchange_dropped++;
        return -1;
    }
    b->metrics->exchange_published++;
    return 0;
}

/* An empty slice may come with a NULL pointer, which the codec's
 * memchr/memcpy must not see. */
static nf_slice nn(nf_slice s) { return s.ptr ? s : NF_SLICE_EMPTY; }

/* Serializes m into a fresh buffer: *len bytes, caller frees. */
static char *serialize(const nf_msg *in, size_t *len)
{
    nf_msg copy = *in, *m = &copy;
    copy.wait = nn(in->wait);
    copy.ns = nn(in->ns);
    copy.room = nn(in->room);
    copy.event = nn(in->event);
    copy.body = nn(in->body);
    *len = nf_msg_serialized_len(m);
    char *p = malloc(*len ? *len : 1);
    if (p)
        nf_msg_serialize(m, p);
    return p;
}

static void bus_publish(nf_exchange *x, nf_endpoint *ep, const nf_broadcast *bc)
{
    nf_bus *b = (nf_bus *)x;
    /* Even a message to an ID that lives here goes out: IDs need not be
     * unique, other processes may have connections with it too. */
    if (b->freeing)
        return;
    const char *path = nf_endpoint_path(ep);
    /* An excepted connection (not an ID) lives here, and this process skips
     * its own publication when it comes back: the others skip nobody. */
    nf_marker mk = {
        .node = nf_slice_of(b->node, NF_MARKER_NODE_LEN),
        .binary = bc->binary,
        .native = bc->native,
        .path = strchr(path, ';') ? NF_SLICE_EMPTY : nf_slice_of(path, strlen(path)),
        .except_id = bc->except_id,
    };
    char stack[256];
    size_t mlen = nf_marker_len(&mk);
    char *marker = mlen <= sizeof stack ? stack : malloc(mlen);
    if (marker == NULL) {
        b->metrics->exchange_dropped++;
        return;
    }
    nf_marker_write(&mk, marker);
    nf_msg m = { .wait = nf_slice_of(marker, mlen), .ns = bc->ns, .room = bc->room, .event = bc->event,
                 .body = bc->body };
    size_t len;
    char *payload = serialize(&m, &len);
    nf_slice name;
    size_t key_off;
    if (payload == NULL || build_name(b, bc->to.len ? bc->to : bc->ns, bc->to.len > 0, &name, &key_off) != 0)
        b->metrics->exchange_dropped++;
    else if (b->ops->valid && !b->ops->valid(name))
        b->metrics->exchange_dropped++;
    else
        publish(b, name, nf_slice_of(payload, len));
    free(payload);
    if (marker != stack)
        free(marker);
}

/* ---- subscriptions (the core's hooks) ------------------------------------------ */

static void bus_subscribe_ns(nf_exchange *x, nf_endpoint *ep, nf_slice ns) { ref((nf_bus *)x, KIND_NS, ep, ns); }
static void bus_unsubscribe_ns(nf_exchange *x, nf_endpoint *ep, nf_slice ns) { unref((nf_bus *)x, KIND_NS, ep, ns); }
static void bus_subscribe_id(nf_exchange *x, nf_endpoint *ep, nf_slice id) { ref((nf_bus *)x, KIND_ID, ep, id); }
static void bus_unsubscribe_id(nf_exchange *x, nf_endpoint *ep, nf_slice id) { unref((nf_bus *)x, KIND_ID, ep, id); }

/* ---- asks: the asking side --------------------------------------------------------- */

static void ask_finish(bus_ask *a, nf_ask_status st, const nf_msg *reply)
{
    nf_bus *b = a->bus;
    nf_ask_cb cb = a->cb;
    void *ud = a->ud;
    nf_list_remove(&a->link);
    b->ask_count--;
    a->chan->ask = NULL;
    chan_release(b, a->chan);
    event_free(a->timer);
    free(a->to);
    free(a->question);
    free(a);
    cb(ud, st, reply);
}

static void ask_timeout(evutil_socket_t fd, short what, void *arg)
{
    bus_ask *a = arg;
    a->bus->metrics->ask_timeouts++;
    ask_finish(a, NF_ASK_TIMEOUT, NULL);
}

static void send_question(nf_bus *b, bus_ask *a)
{
    if (a->question == NULL)
        return;           /* already sent: a second confirmation after a resubscribe */
    publish(b, nf_slice_of(a->to, a->to_len), nf_slice_of(a->question, a->question_len));
    free(a->question);
    a->question = NULL;
}

/* Digits only, like Go's tokens, so that Go nodes and neffos.js treat it as
 * a server ask; six digits of the node id keep processes apart. */
static size_t make_token(nf_bus *b, char *out, size_t cap)
{
    return (size_t)snprintf(out, cap, "%" PRIu64 "%06u", b->next_token++, b->node_digits);
}

/* Did this process make this token? Its own questions come back on the ID
 * channels it subscribed (its connections may share the ID), and the local
 * connections were asked directly: they must not be asked twice, even after
 * the ask ended. Another process would need the same six node digits and a
 * counter in our range (counters start at the start time in ns). */
static bool own_token(const nf_bus *b, nf_slice token)
{
    char digits[8];
    if (token.len <= 6 || token.len > 26)
        return false;
    snprintf(digits, sizeof digits, "%06u", b->node_digits);
    if (memcmp(token.ptr + token.len - 6, digits, 6) != 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < token.len - 6; i++) {
        char ch = token.ptr[i];
        if (ch < '0' || ch > '9' || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(ch - '0');
    }
    return v >= b->first_token && v < b->next_token;
}

/* binary is not carried: the question goes as Go's, a text frame (exchange.h). */
static void *bus_ask_op(nf_exchange *x, nf_endpoint *ep, nf_slice to, nf_slice ns, nf_slice room,
                        nf_slice event, nf_slice body, bool binary, unsigned timeout_ms, nf_ask_cb cb, void *ud)
{
    nf_bus *b = (nf_bus *)x;
    nf_slice name;
    size_t key_off;
    char token[48];
    if (b->freeing || to.len == 0 || b->ask_count >= NF_BUS_MAX_ASKS) {
        cb(ud, b->ask_count >= NF_BUS_MAX_ASKS ? NF_ASK_CLOSED : NF_ASK_NOT_FOUND, NULL);
        return NULL;
    }
    size_t tlen = make_token(b, token, sizeof token);
    bus_ask *a = calloc(1, sizeof *a);
    nf_msg q = { .wait = nf_slice_of(token, tlen), .ns = ns, .room = room, .event = event, .body = body };
    if (a == NULL || build_name(b, to, true, &name, &key_off) != 0 || (a->to = malloc(name.len)) == NULL ||
        (a->question = serialize(&q, &a->question_len)) == NULL ||
        (a->timer = evtimer_new(nf_host_base(b->host), ask_timeout, a)) == NULL ||
        (a->chan = chan_new(b, nf_slice_of(token, tlen), 0, tlen)) == NULL) {
        if (a) {
            if (a->timer)
                event_free(a->timer);
            free(a->to);
            free(a->question);
            free(a);
        }
        cb(ud, NF_ASK_CLOSED, NULL);
        return NULL;
    }
    memcpy(a->to, name.ptr, name.len);
    a->to_len = name.len;
    a->bus = b;
    a->cb = cb;
    a->ud = ud;
    a->chan->ask = a;
    a->chan->refs = 1;
    nf_list_push_back(&b->asks, &a->link);
    b->ask_count++;
    unsigned ms = timeout_ms ? timeout_ms : nf_host_limits(b->host)->ask_timeout_ms;
    struct timeval tv = nf_clock_timeval(ms);
    evtimer_add(a->timer, &tv);
    chan_subscribe(b, a->chan);
    return a;
}

static void bus_ask_cancel(nf_exchange *x, void *handle)
{
    (void)x;
    ask_finish(handle, NF_ASK_CLOSED, NULL);
}

static void ask_answered(nf_bus *b, bus_ask *a, const nf_msg *m)
{
    b->metrics->exchange_received++;
    /* An error flag with empty text is success in Go and JS alike (docs/protocol.md §5.5). */
    ask_finish(a, m->is_error && m->body.len ? NF_ASK_REMOTE_ERROR : NF_ASK_OK, m);
}

/* ---- asks: the answering side ------------------------------------------------------ */

static bus_serve *serve_new(nf_bus *b, const nf_msg *m)
{
    size_t n = m->wait.len + m->ns.len + m->room.len + m->event.len;
    bus_serve *s = malloc(sizeof *s + (n ? n : 1));
    if (s == NULL)
        return NULL;
    char *p = s->data;
    const nf_slice *src[4] = { &m->wait, &m->ns, &m->room, &m->event };
    nf_slice *dst[4] = { &s->token, &s->ns, &s->room, &s->event };
    for (int i = 0; i < 4; i++) {
        if (src[i]->len)
            memcpy(p, src[i]->ptr, src[i]->len);
        *dst[i] = nf_slice_of(p, src[i]->len);
        p += src[i]->len;
    }
    s->bus = b;
    nf_list_push_back(&b->serves, &s->link);
    b->serve_count++;
    return s;
}

static void serve_done(void *ud, nf_ask_status st, const nf_msg *reply)
{
    bus_serve *s = ud;
    nf_bus *b = s->bus;
    if (b) {
        nf_list_remove(&s->link);
        b->serve_count--;
    }
    /* Only an answer is published. Other processes may have connections with
     * this ID too (IDs need not be unique), so "none of mine answered" is no
     * answer: the asker waits for theirs, or for its own timeout. */
    if (b && (st == NF_ASK_OK || st == NF_ASK_REMOTE_ERROR)) {
        nf_msg m = { .ns = s->ns, .room = s->room, .event = s->event, .is_error = st != NF_ASK_OK,
                     .body = reply->body };
        size_t len;
        char *payload = serialize(&m, &len);
        if (payload)
            publish(b, s->token, nf_slice_of(payload, len));
        free(payload);
    }
    free(s);
}

static void serve_ask(nf_bus *b, bus_chan *ch, nf_slice id, const nf_msg *m)
{
    nf_endpoint *ep = NULL;
    /* --workers N: the ID may live on any worker of this process: ask them all. */
    bool workers = nf_exchange_relayed(&b->base);
    if (id.len == 0 || own_token(b, m->wait))
        return;           /* not an ID channel; or our own question: asked here directly */
    NF_LIST_FOREACH(it, &ch->eps[KIND_ID]) {
        nf_endpoint *cand = NF_LIST_ENTRY(it, chan_ep, link)->ep;
        if (workers || nf_endpoint_find(cand, id)) {
            ep = cand;
            break;
        }
    }
    if (ep == NULL)
        return;           /* a token on a namespace channel, or the connection just left */
    if (b->serve_count >= NF_BUS_MAX_ASKS) {
        nf_debug("exchange: too many asks from other processes in flight, one ignored");
        return;
    }
    bus_serve *s = serve_new(b, m);
    if (s == NULL)
        return;
    b->metrics->exchange_received++;
    if (workers) {
        nf_exchange_set_serving(true);   /* every worker, not the broker again */
        nf_endpoint_ask(ep, id, m->ns, m->room, m->event, m->body, false, 0, serve_done, s);
        nf_exchange_set_serving(false);
    } else {
        nf_exchange_ask_host(ep, id, m->ns, m->room, m->event, m->body, false, 0, serve_done, s);
    }
}

/* ---- receiving ------------------------------------------------------------------ */

typedef struct target {
    nf_endpoint *ep;
    bool by_id;
} target;

static size_t count_targets(bus_chan *ch)
{
    size_t n = 0;
    for (int k = 0; k < 2; k++)
        NF_LIST_FOREACH(it, &ch->eps[k])
            n++;
    return n;
}

/* Delivers to the endpoints that subscribed the channel. They are copied
 * first: a delivery may close a slow reader, which unsubscribes. */
static void deliver(bus_chan *ch, nf_slice id, const nf_msg *m, const nf_marker *mk)
{
    target stack[8], *t = stack;
    size_t n = count_targets(ch), k = 0;
    if (n > 8 && (t = malloc(n * sizeof *t)) == NULL)
        return;
    for (int kind = 0; kind < 2; kind++) {
        NF_LIST_FOREACH(it, &ch->eps[kind]) {
            nf_endpoint *ep = NF_LIST_ENTRY(it, chan_ep, link)->ep;
            if (mk && mk->path.len && !nf_slice_eq_cstr(mk->path, nf_endpoint_path(ep)))
                continue;
            t[k++] = (target){ ep, kind == KIND_ID };
        }
    }
    nf_broadcast bc = { .ns = m->ns, .room = m->room, .event = m->event, .body = m->body,
                        .binary = mk && mk->binary, .native = mk && mk->native,
                        .except_id = mk ? mk->except_id : NF_SLICE_EMPTY };
    for (size_t i = 0; i < k; i++) {
        if (t[i].by_id && id.len == 0)
            continue;     /* an empty "To" would mean everybody */
        bc.to = t[i].by_id ? id : NF_SLICE_EMPTY;
        nf_exchange_deliver_local(t[i].ep, &bc);
    }
    if (t != stack)
        free(t);
}

void nf_bus_receive(nf_bus *b, nf_slice channel, nf_slice payload)
{
    bus_chan *ch = b->freeing ? NULL : nf_dict_get(b->chans, channel);
    nf_msg m;
    nf_marker mk;
    if (ch == NULL)
        return;           /* unsubscribed meanwhile */
    if (payload.len > nf_bus_max_payload(b) || reserve(&b->scratch, &b->scratch_cap, payload.len + 1) != 0 ||
        nf_msg_parse(payload.ptr, payload.len, b->scratch, b->scratch_cap, &m) != NF_PARSE_OK) {
        nf_debug("exchange: ignored a message of %zu bytes on \"%.*s\"", payload.len, (int)channel.len,
                 channel.ptr);
        return;
    }
    if (ch->ask) {
        ask_answered(b, ch->ask, &m);
        return;
    }
    /* decoded: the ID of the channel, then the except-id of the marker. */
    if (reserve(&b->decoded, &b->decoded_cap, channel.len + m.wait.len + 1) != 0)
        return;
    nf_marker_kind kind = nf_marker_parse(m.wait, &mk, b->decoded + channel.len);
    /* Our own publication coming back: the core delivered it locally already. */
    if (kind == NF_MARKER_OURS && memcmp(mk.node.ptr, b->node, NF_MARKER_NODE_LEN) == 0)
        return;
    /* Any process (a Go node too) may publish any name: one no local
     * connection can hold is dropped before it is hashed or copied. */
    if (nf_ns_check_names(b->host, m.ns, m.room, m.event) != 0) {
        b->metrics->limit_name++;
        if (!b->warned_names) {
            b->warned_names = true;
            nf_warn("exchange: dropped a message on \"%.*s\" with a name longer than --max-name-bytes "
                    "(further ones are only counted)", (int)(channel.len > 200 ? 200 : channel.len), channel.ptr);
        }
        return;
    }
    nf_slice id = nf_slice_of(channel.ptr + ch->key_off, ch->key_len);
    if (b->names == NF_BUS_NAMES_NATS) {
        /* A namespace's subject may not decode: then it is no ID's. */
        long n = nf_key_decode(id, b->decoded);
        id = n > 0 ? nf_slice_of(b->decoded, (size_t)n) : NF_SLICE_EMPTY;
    }
    if (kind == NF_MARKER_TOKEN)
        serve_ask(b, ch, id, &m);
    else
        deliver(ch, id, &m, kind == NF_MARKER_OURS ? &mk : NULL);
}

/* ---- transport events --------------------------------------------------------------- */

void nf_bus_set_connected(nf_bus *b, bool up)
{
    if (b->freeing)
        return;
    b->up = up;
    b->metrics->exchange_connected = up ? 1 : 0;
}

void nf_bus_resubscribe(nf_bus *b)
{
    size_t cur = 0, n = 0;
    bus_chan *ch;
    if (b->freeing)
        return;
    /* Collected first: a confirmation may publish a question, and nothing
     * may change the table while it is walked. */
    size_t total = nf_dict_size(b->chans);
    bus_chan **all = total ? malloc(total * sizeof *all) : NULL;
    if (total && all == NULL)
        return;
    while ((ch = nf_dict_next(b->chans, &cur, NULL)) != NULL && n < total)
        all[n++] = ch;
    for (size_t i = 0; i < n; i++)
        chan_subscribe(b, all[i]);
    free(all);
    nf_info("exchange: subscribed %zu channel%s", n, n == 1 ? "" : "s");
}

void nf_bus_subscribed(nf_bus *b, nf_slice channel)
{
    bus_chan *ch = b->freeing ? NULL : nf_dict_get(b->chans, channel);
    if (ch)
        chan_confirmed(b, ch);
    if (ch && ch->ask)
        send_question(b, ch->ask);
}

bool nf_bus_wants(nf_bus *b, nf_slice channel) { return !b->freeing && nf_dict_get(b->chans, channel) != NULL; }

/* ---- life cycle ----------------------------------------------------------------------- */

nf_bus *nf_bus_new(nf_host *h, const char *prefix, nf_bus_names names, const nf_bus_transport_ops *ops, void *t)
{
    nf_bus *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    b->base.ops = &bus_exchange_ops;
    b->base.host = h;
    b->host = h;
    b->metrics = nf_host_metrics(h);
    b->ops = ops;
    b->t = t;
    b->names = names;
    b->prefix = strdup(prefix);
    b->prefix_len = strlen(prefix);
    b->chans = nf_dict_new();
    nf_list_init(&b->asks);
    nf_list_init(&b->serves);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    b->next_token = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    b->first_token = b->next_token;
    if (b->prefix == NULL || b->chans == NULL || nf_marker_new_node(b->node) != 0) {
        nf_dict_free(b->chans);
        free(b->prefix);
        free(b);
        return NULL;
    }
    unsigned v = 0;
    sscanf(b->node, "%8x", &v);
    b->node_digits = v % 1000000u;
    return b;
}

static void bus_free(nf_exchange *x)
{
    nf_bus *b = (nf_bus *)x;
    size_t cur = 0;
    bus_chan *ch;
    /* From here on nothing reaches the broker: callbacks that run below
     * (asks failing, the app broadcasting from them) find the bus closing. */
    b->freeing = true;
    b->ops->free(b->t);
    while (!nf_list_empty(&b->asks))
        ask_finish(NF_LIST_ENTRY(b->asks.next, bus_ask, link), NF_ASK_CLOSED, NULL);
    NF_LIST_FOREACH_SAFE(it, tmp, &b->serves) {
        bus_serve *s = NF_LIST_ENTRY(it, bus_serve, link);
        nf_list_remove(&s->link);
        s->bus = NULL;    /* freed by serve_done when the local ask ends */
    }
    while ((ch = nf_dict_next(b->chans, &cur, NULL)) != NULL) {
        for (int k = 0; k < 2; k++)
            NF_LIST_FOREACH_SAFE(it, tmp, &ch->eps[k])
                free(NF_LIST_ENTRY(it, chan_ep, link));
        free(ch);
    }
    nf_dict_free(b->chans);
    free(b->scratch);
    free(b->name_buf);
    free(b->decoded);
    free(b->prefix);
    free(b);
}

static const nf_exchange_ops bus_exchange_ops = {
    .publish = bus_publish,
    .subscribe_ns = bus_subscribe_ns,
    .unsubscribe_ns = bus_unsubscribe_ns,
    .subscribe_id = bus_subscribe_id,
    .unsubscribe_id = bus_unsubscribe_id,
    .ask = bus_ask_op,
    .ask_cancel = bus_ask_cancel,
    .free = bus_free,
};

nf_exchange *nf_bus_exchange(nf_bus *b) { return &b->base; }
nf_host *nf_bus_host(nf_bus *b) { return b->host; }
size_t nf_bus_max_payload(const nf_bus *b) { return nf_host_limits(b->host)->max_message_bytes + 4096; }
