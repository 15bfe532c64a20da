/* conn.c - one neffos connection: the handshake ("M" -> "A<id>" / "H<err>"),
 * frame dispatch (docs/protocol.md §6), per-connection ordering, closing, and the
 * timeouts checked by the host's sweep.
 *
 * Ordering: the handlers of one connection run one at a time (turn.c).
 * While the connection's turn is held (a handler waits in an ask, a sleep,
 * a forced action), later frames are parked there (bounded) and dispatched
 * when it ends. Answers to the server's own asks bypass it, otherwise a
 * handler asking its own client would wait for itself.
 *
 * Owns: the nf_conn struct and its lifecycle, the one place that moves a
 * connection between states (HTTP -> OPEN -> CONNECTING -> READY ->
 * CLOSING -> CLOSED, never back) and sets the deadline of the closing state
 * (begin_closing; the grace periods are named at the top). host.c runs the
 * HTTP phase through nf_conn_input/output/end_http/upgrade, never through
 * the struct. Frees: the request, the ID, the WebSocket and the bufferevent
 * (at teardown), the struct itself with the last reference (nf_conn_unref).
 * The modules of a connection's parts (turn.c, barrier.c, ask.c, ids.c,
 * namespace.c) keep their state in it and free it at teardown. */
#include "internal.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "http.h"
#include "linger.h"
#include "log.h"
#include "tls.h"

#include "exchange.h"

/* How long a closing connection may take to flush before it is dropped.
 * These are the only deadlines of the closing state; every path to it goes
 * through begin_closing(). */
#define CLOSE_GRACE_MS 1000          /* after our close frame: wait this long for the peer's */
#define HTTP_ANSWER_GRACE_MS 5000    /* an HTTP answer (status, /health, /metrics) to be written */
#define STATIC_FILE_GRACE_MS 30000   /* a static file, which can be large, to be written */
#define RATE_WINDOW_MS 1000          /* --max-messages-per-sec counts per window of this length */

/* ---- lifetime ---------------------------------------------------------------- */

/* The one way into NF_CONN_CLOSING: nothing more is read or dispatched, the
 * output is flushed, and the sweep drops the connection after grace_ms. */
static void begin_closing(nf_conn *c, unsigned grace_ms)
{
    c->state = NF_CONN_CLOSING;
    c->close_deadline_ms = nf_now_ms() + grace_ms;
}

void nf_conn_ref(nf_conn *c) { c->refs++; }

void nf_conn_unref(nf_conn *c)
{
    if (--c->refs > 0)
        return;
    if (c->host->ops->conn_freed)
        c->host->ops->conn_freed(c->host->app, c);
    nf_request_free(c->req);
    free(c->id);
    free(c->id_shown);
    free(c);
}

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_ws_read_cb(evutil_socket_t fd, short what, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);

/* Process-wide, so that with --workers N a serial names one connection of
 * the process and orders connections by when they opened, whichever
 * worker holds them (nf_conn_serial). */
static atomic_uint_fast64_t conn_serials;

nf_conn *nf_conn_new(nf_host *h, struct bufferevent *bev, const char *remote, bool tls)
{
    nf_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->host = h;
    c->bev = bev;
    c->refs = 1;                      /* the loop's reference, dropped at teardown */
    c->state = NF_CONN_HTTP;
    c->opened_ms = nf_now_ms();
    c->serial = (uint64_t)atomic_fetch_add_explicit(&conn_serials, 1, memory_order_relaxed) + 1;
    c->tls = tls;
    /* A TLS connection's transport is its SSL (tls.h); only the HTTP phase
     * reads through the bufferevent, which runs the handshake. */
    if (tls)
        nf_tls_sock_init(&c->sock, bev);
    else
        nf_sock_init_plain(&c->sock, bufferevent_getfd(bev));
    nf_list_init(&c->ep_link);
    nf_list_init(&c->id_link);
    nf_list_init(&c->nsconns);
    nf_list_init(&c->asks);
    nf_list_init(&c->flush_link);
    snprintf(c->remote, sizeof c->remote, "%s", remote);
    nf_list_push_back(&h->conns, &c->host_link);
    h->conn_count++;
    bufferevent_setcb(bev, conn_read_cb, NULL, conn_event_cb, c);
    /* Reading only: writes are ours (nf_conn_flush_all, conn_write), and
     * write_ev waits for the socket only after a short write. A bufferevent
     * starts with EV_WRITE enabled: it would add and delete its write event
     * (two epoll_ctl) around every message queued. */
    bufferevent_disable(bev, EV_WRITE);
    bufferevent_enable(bev, EV_READ);
    return c;
}

/* A socket that is still up may have input we never read (the rest of an
 * oversized message, an HTTP body): closing it would send RST and the peer
 * could lose our close frame or answer. It lingers instead (linger.h). */
static void close_socket(nf_conn *c)
{
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if (c->peer_gone || fd < 0 || (c->tls && !c->tls_ready)) {
        bufferevent_free(c->bev);   /* a TLS handshake cut short has nothing in flight */
        return;
    }
    if (c->tls) {
        /* close_notify, then the bufferevent frees the SSL and closes fd
         * (it owns both, tls.h); the socket lingers as a duplicate. */
        nf_tls_close_notify(c->bev);
        fd = dup(fd);
        bufferevent_free(c->bev);
        if (fd >= 0)
            nf_linger_close(c->host->linger, fd);
        return;
    }
    bufferevent_setfd(c->bev, -1);   /* the bufferevent no longer closes it */
    bufferevent_free(c->bev);
    nf_linger_close(c->host->linger, fd);
}

/* Frees the socket and runs the close procedure (docs/protocol.md §7.8): the forced
 * leave/disconnect events, pending asks failed, on_disconnect. Idempotent. */
void nf_conn_teardown(nf_conn *c)
{
    if (c->torn_down)
        return;
    c->torn_down = true;
    nf_conn_ref(c);
    nf_conn_state was = c->state;
    c->state = NF_CONN_CLOSED;
    nf_list_remove(&c->flush_link);
    if (c->read_ev) {
        event_free(c->read_ev);
        c->read_ev = NULL;
    }
    if (c->write_ev) {
        event_free(c->write_ev);   /* before the socket closes */
        c->write_ev = NULL;
    }
    if (c->bev) {
        close_socket(c);
        c->bev = NULL;
    }
    if (c->ep) {
        nf_endpoint *ep = c->ep;
        nf_ns_close_all(c);
        nf_ask_cancel_all(c);
        nf_ids_remove(c);
        nf_endpoint_leave(ep, c);
        c->host->ws_count--;
        c->host->metrics.closed++;
        nf_debug("conn %s closed (state %d)", c->id_shown ? c->id_shown : "", (int)was);
        if (c->on_connect_ran) {
            nf_invocation *inv = nf_invocation_new(NF_INVOKE_DISCONNECT, c, NULL, NF_INV_LOCAL | NF_INV_FORCED);
            if (inv) {
                nf_invocation_run(inv);
            }
        }
    }
    if (c->ws) {
        nf_ws_free(c->ws);
        c->ws = NULL;
    }
    nf_turn_clear(c);
    nf_barrier_free(c);
    nf_ns_free_deferred(c);
    if (c->ep && c->host->exchange && c->id && c->id_refusal == NULL)
        nf_exchange_conn_removed(c->host->exchange, c->ep, nf_slice_of(c->id, c->id_len));
    nf_host_conn_gone(c->host, c);
    c->refs--;          /* the loop's reference; ours, taken above, keeps c alive */
    nf_conn_unref(c);   /* ours */
}

bool nf_conn_can_write(nf_conn *c)
{
    return c->ws != NULL && c->state >= NF_CONN_OPEN && c->state <= NF_CONN_READY && !nf_ws_is_closing(c->ws);
}

void nf_conn_limit_hit(nf_conn *c, uint32_t bit, const char *what)
{
    nf_metrics *m = &c->host->metrics;
    switch (bit) {
    case NF_LIMIT_OUTGOING: m->limit_outgoing++; break;
    case NF_LIMIT_INBOX: m->limit_inbox++; break;
    case NF_LIMIT_INBOX_BYTES: m->limit_inbox_bytes++; break;
    case NF_LIMIT_RATE: m->limit_rate++; break;
    case NF_LIMIT_NAMESPACES: m->limit_namespaces++; break;
    case NF_LIMIT_ROOMS: m->limit_rooms++; break;
    case NF_LIMIT_ASKS: m->limit_asks++; break;
    case NF_LIMIT_NAME: m->limit_name++; break;
    case NF_LIMIT_NAMES_PER_CONN: m->limit_names_per_conn++; break;
    case NF_LIMIT_BUDGET: m->limit_budget++; break;
    }
    if (!(c->limits_logged & bit)) {
        c->limits_logged |= bit;
        nf_warn("conn %s (%s): limit hit: %s", c->id_shown ? c->id_shown : "-", c->remote, what);
    }
}

/* The outgoing queue is bounded: a reader that cannot keep up is closed with
 * 1008 rather than buffered without end. Everything queued counts, data and
 * wslay's control frames alike. */
bool nf_conn_output_has_room(nf_conn *c)
{
    /* Everything queued for this connection: output, wslay's control frames, held frames. */
    size_t queued = c->ws ? nf_ws_queued_bytes(c->ws) : evbuffer_get_length(bufferevent_get_output(c->bev));
    if (queued <= c->host->limits.max_outgoing_bytes)
        return true;
    nf_conn_limit_hit(c, NF_LIMIT_OUTGOING, "outgoing queue full (slow reader), closing with 1008");
    nf_conn_close(c, NF_WS_CLOSE_POLICY, NF_SLICE("outgoing queue full"));
    return false;
}

static int send_text(nf_conn *c, char prefix, nf_slice rest);

void nf_conn_close(nf_conn *c, uint16_t code, nf_slice reason)
{
    if (c->state >= NF_CONN_CLOSING)
        return;
    if (c->ws == NULL) {
        nf_conn_teardown(c);
        return;
    }
    if (c->state == NF_CONN_CONNECTING && !c->ep->cfg.native_only && !c->answered_handshake) {
        /* Closed from on_connect: the client waits for "A" or "H", and
         * neffos.js's dial() would never settle on a close frame alone. */
        nf_slice why = reason.len ? reason : NF_SLICE("connection closed");
        send_text(c, 'H', why);
    }
    nf_barrier_release_all(c);   /* what was held goes out before the close frame */
    nf_ws_close(c->ws, code, reason.ptr, reason.len);
    begin_closing(c, CLOSE_GRACE_MS);
}

void nf_conn_end_http(nf_conn *c, nf_conn_answer kind)
{
    begin_closing(c, kind == NF_CONN_ANSWER_FILE ? STATIC_FILE_GRACE_MS : HTTP_ANSWER_GRACE_MS);
    bufferevent_disable(c->bev, EV_READ);
    nf_conn_want_flush(c);
}

/* ---- writing ----------------------------------------------------------------- */

static void fill_msg(void *ctx, char *dst) { nf_msg_serialize(ctx, dst); }

int nf_conn_send_msg(nf_conn *c, const nf_msg *m, bool binary)
{
    if (!nf_conn_can_write(c) || !nf_conn_output_has_room(c))
        return NF_EPIPE;
    size_t len = nf_msg_serialized_len(m);
    int rc = nf_ws_send_with(c->ws, binary, len, fill_msg, (void *)m);
    if (rc != 0)
        return rc;
    c->host->metrics.messages_out++;
    c->host->metrics.bytes_out += len;
    return 0;
}

typedef struct token_ctx { nf_slice token; } token_ctx;

static void fill_empty_reply(void *ctx, char *dst) { nf_empty_reply_serialize(((token_ctx *)ctx)->token, dst); }

int nf_conn_send_empty_reply(nf_conn *c, nf_slice token)
{
    token_ctx t = { token };
    if (!nf_conn_can_write(c) || !nf_conn_output_has_room(c))
        return NF_EPIPE;
    /* Empty replies are always text (docs/protocol.md §17.1.4). */
    int rc = nf_ws_send_with(c->ws, false, nf_empty_reply_len(token), fill_empty_reply, &t);
    if (rc != 0)
        return rc;
    c->host->metrics.messages_out++;
    return 0;
}

int nf_conn_write_raw(nf_conn *c, bool binary, const char *data, size_t len)
{
    if (!nf_conn_can_write(c) || !nf_conn_output_has_room(c))
        return NF_EPIPE;
    int rc = nf_ws_send(c->ws, binary, data, len);
    if (rc != 0)
        return rc;
    c->host->metrics.messages_out++;
    c->host->metrics.bytes_out += len;
    return 0;
}

static int send_text(nf_conn *c, char prefix, nf_slice rest)
{
    if (prefix == 'A' || prefix == 'H')
        c->answered_handshake = true;
    char stack[256];
    char *buf = rest.len + 1 <= sizeof stack ? stack : malloc(rest.len + 1);
    if (buf == NULL)
        return NF_ENOMEM;
    buf[0] = prefix;
    memcpy(buf + 1, rest.ptr, rest.len);
    int r = nf_ws_send(c->ws, false, buf, rest.len + 1);
    if (buf != stack)
        free(buf);
    return r;
}

/* ---- the handshake --------------------------------------------------------------- */


static void handshake_done(nf_invocation *inv, nf_result result, const char *data, size_t len)
{
    nf_conn *c = nf_invocation_conn(inv);
    if (c->state != NF_CONN_CONNECTING)
        return;   /* closed while on_connect ran */
    if (result == NF_RESULT_ERROR) {
        if (len == 0) {
            data = "error";
            len = 5;
        }
        nf_refusal_conn(c, c->ep, NF_REFUSED_ON_CONNECT, "conn %s: %.*s", c->id_shown,
                   (int)(len > 200 ? 200 : len), data);
        if (c->ep->cfg.native_only) {
            nf_conn_close(c, NF_WS_CLOSE_POLICY, nf_slice_of(data, len > 123 ? 123 : len));
        } else {
            send_text(c, 'H', nf_slice_of(data, len));
            nf_conn_close(c, NF_WS_CLOSE_NORMAL, NF_SLICE("refused"));
        }
        return;
    }
    c->state = NF_CONN_READY;
    if (!c->ep->cfg.native_only)
        send_text(c, 'A', nf_slice_of(c->id, c->id_len));
    nf_ns_run_deferred(c);   /* in the handshake's turn: frames wait for their answers (docs/protocol.md §7.3) */
}

static void start_handshake(nf_conn *c)
{
    if (c->id_refusal) {
        /* The app's ID could not be used (ids.c): say so rather than
         * replace it. IDs need not be unique, a used one is fine. */
        c->host->metrics.refused_id++;
        nf_info("conn %s refused: %s (from the app's id function; --max-id-bytes is %zu)", c->remote,
                c->id_refusal, c->host->limits.max_id_bytes);
        nf_refusal_tell(c, c->ep, "id", c->id_refusal);
        if (!c->ep->cfg.native_only)
            send_text(c, 'H', nf_slice_of(c->id_refusal, strlen(c->id_refusal)));
        nf_conn_close(c, NF_WS_CLOSE_POLICY, nf_slice_of(c->id_refusal, strlen(c->id_refusal)));
        return;
    }
    nf_invocation *inv = nf_invocation_new(NF_INVOKE_CONNECT, c, NULL, 0);
    if (inv == NULL) {
        nf_conn_close(c, NF_WS_CLOSE_INTERNAL, NF_SLICE("out of memory"));
        return;
    }
    c->state = NF_CONN_CONNECTING;
    c->on_connect_ran = true;
    nf_invocation_set_cont(inv, handshake_done, NULL);
    nf_invocation_run(inv);
}

int nf_conn_upgrade(nf_conn *c, nf_endpoint *ep)
{
    int rc = nf_ids_assign(c, ep);
    if (rc != 0)
        return rc;
    const nf_limits *lim = &c->host->limits;
    c->ws = nf_ws_new(c->bev, lim->max_message_bytes, lim->max_outgoing_bytes, &nf_conn_ws_callbacks, c);
    if (c->ws == NULL)
        return NF_ENOMEM;
    /* From now on the socket is read by the WebSocket itself (ws.c: into
     * one buffer, as much as it holds), not by the bufferevent, which
     * reads 4 KiB per loop iteration into chains of its own. */
    c->read_ev = event_new(bufferevent_get_base(c->bev), c->sock.fd, EV_READ | EV_PERSIST, conn_ws_read_cb, c);
    if (c->read_ev == NULL)
        return NF_ENOMEM;
    nf_ws_set_sock(c->ws, &c->sock);
    return 0;
}

/* Called by the host once the 101 answer is queued: c joins ep. */
void nf_conn_upgraded(nf_conn *c, nf_endpoint *ep)
{
    c->ep = ep;
    c->state = NF_CONN_OPEN;
    c->last_read_ms = nf_now_ms();
    bufferevent_disable(c->bev, EV_READ);
    event_add(c->read_ev, NULL);
    nf_endpoint_join(ep, c);
    c->host->ws_count++;
    if (c->id_refusal == NULL && nf_ids_add(c) != 0)
        c->id_refusal = "cannot assign a connection ID";   /* out of memory: refused at "M" */
    if (c->host->exchange && c->id_refusal == NULL)
        nf_exchange_conn_added(c->host->exchange, ep, nf_slice_of(c->id, c->id_len));
    if (ep->cfg.native_only) {
        /* Native-only endpoints have no handshake (docs/protocol.md §4.7): namespace ""
         * is connected from the start and on_connect runs right away. Connected means
         * subscribed too: a relay from another process reaches it (the close path
         * unsubscribes every namespace, this one included). */
        nf_nsconn *nc = nf_ns_attach(c, NF_SLICE_EMPTY);
        if (nc)
            nf_broadcast_ns_connected(nc);
        start_handshake(c);
    }
}

/* ---- dispatch ------------------------------------------------------------------- */

static void event_done(nf_invocation *inv, nf_result result, const char *data, size_t len)
{
    nf_conn *c = nf_invocation_conn(inv);
    const nf_msg *in = nf_invocation_msg(inv);
    if (result != NF_RESULT_NONE && !nf_invocation_is_native(inv)) {
        /* Do not answer an error with an error: two peers whose handlers
         * both fail would bounce frames forever (docs/protocol.md §6). */
        if (!(result == NF_RESULT_ERROR && in->is_error)) {
            nf_msg out = { .wait = in->wait, .ns = in->ns, .room = in->room, .event = in->event,
                           .is_error = result == NF_RESULT_ERROR, .body = nf_slice_of(data, len) };
            if (out.is_error && len == 0)
                out.body = NF_SLICE("error");   /* never an empty error text (docs/protocol.md §17.3.4) */
            nf_conn_send_msg(c, &out, nf_invocation_is_binary(inv));
        }
    }
}

/* flags: NF_INV_NATIVE, NF_INV_BINARY (the client's event: never local). */
static void run_event(nf_conn *c, const nf_msg *m, unsigned flags)
{
    nf_invocation *inv = nf_invocation_new(NF_INVOKE_EVENT, c, m, flags);
    if (inv == NULL)
        return;
    nf_invocation_set_cont(inv, event_done, NULL);
    nf_invocation_run(inv);
}

static void run_native(nf_conn *c, bool binary, const char *data, size_t len)
{
    nf_nsconn *nc = nf_conn_namespace(c, NF_SLICE_EMPTY);
    if (nc == NULL) {
        c->host->metrics.invalid_frames++;
        return;
    }
    nf_msg m = { .ns = NF_SLICE_EMPTY, .event = NF_SLICE(NF_ON_NATIVE_MESSAGE), .body = nf_slice_of(data, len) };
    run_event(c, &m, NF_INV_NATIVE | (binary ? NF_INV_BINARY : 0));
}

static bool is_event(const nf_msg *m, const char *name) { return nf_slice_eq_cstr(m->event, name); }

/* A system event (docs/protocol.md §7.1) from the wire: handled here, or
 * dropped when it is local-only. Returns false for an application event. */
static bool dispatch_system(nf_conn *c, nf_msg *m, bool binary)
{
    /* Every system event's name begins so (codec.h): one compare spares an
     * application event the nine below. */
    if (m->event.len < 3 || memcmp(m->event.ptr, "_On", 3) != 0)
        return false;
    if (is_event(m, NF_ON_NAMESPACE_CONNECT)) {
        nf_ns_handle_connect(c, m, binary);
        return true;
    }
    if (is_event(m, NF_ON_NAMESPACE_DISCONNECT)) {
        nf_ns_handle_disconnect(c, m, binary);
        return true;
    }
    if (is_event(m, NF_ON_ROOM_JOIN)) {
        nf_nsconn *nc = nf_conn_namespace(c, m->ns);
        if (nc)
            nf_ns_handle_join(c, nc, m, binary);
        return true;
    }
    /* neffos.js leaveAll() sends _OnRoomLeft with a token (docs/protocol.md §7.7): treat it
     * as the leave it meant to be. */
    if (is_event(m, NF_ON_ROOM_LEAVE) || (is_event(m, NF_ON_ROOM_LEFT) && m->wait.len)) {
        nf_nsconn *nc = nf_conn_namespace(c, m->ns);
        if (nc)
            nf_ns_handle_leave(c, nc, m, binary);
        return true;
    }
    /* Local-only system events arriving from the wire are not signals (docs/protocol.md §17.5.5). */
    return is_event(m, NF_ON_NAMESPACE_CONNECTED) || is_event(m, NF_ON_ROOM_JOINED) ||
           is_event(m, NF_ON_ROOM_LEFT) || is_event(m, NF_ON_ANY_EVENT) || is_event(m, NF_ON_NATIVE_MESSAGE);
}

void nf_conn_dispatch(nf_conn *c, bool binary, const char *data, size_t len)
{
    nf_msg m;
    if (c->ep->cfg.native_only) {
        run_native(c, binary, data, len);
        return;
    }
    if (nf_msg_parse(data, len, c->host->scratch, c->host->limits.max_message_bytes, &m) != NF_PARSE_OK) {
        /* Mixed mode (docs/protocol.md §11.1): raw frames go to _OnNativeMessage of "" when
         * the client connected it; otherwise they are dropped silently. */
        run_native(c, binary, data, len);
        return;
    }
    if (m.wait.len && m.wait.ptr[0] != '$')
        return;   /* a late answer to one of our asks: dropped (docs/protocol.md §17.4.3) */
    if (!nf_ns_admit_names(c, &m, binary))
        return;
    if (dispatch_system(c, &m, binary))
        return;
    nf_nsconn *nc = nf_conn_namespace(c, m.ns);
    if (nc == NULL) {
        /* Friendlier than Go's silence: an ask gets an error instead of
         * waiting forever (docs/protocol.md §17.5.4). */
        if (m.wait.len) {
            nf_msg err = { .wait = m.wait, .ns = m.ns, .room = m.room, .event = m.event,
                           .is_error = true, .body = NF_SLICE(NF_ERR_BAD_NAMESPACE) };
            nf_conn_send_msg(c, &err, binary);
        }
        return;
    }
    run_event(c, &m, binary ? NF_INV_BINARY : 0);
}

/* The turn has ended (or may have): start what waits. */
void nf_conn_shutdown(nf_conn *c)
{
    if (c->ws && !nf_turn_busy(c))
        nf_conn_close(c, NF_WS_CLOSE_GOING_AWAY, NF_SLICE("going away"));
    else if (c->state == NF_CONN_HTTP)
        nf_conn_teardown(c);
}

void nf_conn_drain(nf_conn *c)
{
    if (c->host->draining && !nf_turn_busy(c) && c->ws && c->state <= NF_CONN_READY) {
        /* Shutting down: the handler that held this connection open has
         * finished; what is still parked is not started. */
        nf_conn_close(c, NF_WS_CLOSE_GOING_AWAY, NF_SLICE("going away"));
        return;
    }
    nf_turn_pump(c);
}

/* An answer to one of our asks? Those are matched at once, never parked. */
static bool try_answer(nf_conn *c, bool binary, const uint8_t *data, size_t len)
{
    nf_msg m;
    if (len == 0 || data[0] == '$' || data[0] == ';' || c->ep->cfg.native_only || nf_list_empty(&c->asks))
        return false;
    if (nf_msg_parse((const char *)data, len, c->host->scratch, c->host->limits.max_message_bytes, &m) !=
        NF_PARSE_OK)
        return false;
    m.binary = binary;
    return nf_ask_deliver(c, &m);
}

static bool rate_allows(nf_conn *c)
{
    unsigned max = c->host->limits.max_messages_per_sec;
    if (max == 0)
        return true;
    uint64_t now = nf_now_ms();
    if (now - c->rate_window_ms >= RATE_WINDOW_MS) {
        c->rate_window_ms = now;
        c->rate_count = 0;
    }
    if (++c->rate_count <= max)
        return true;
    nf_conn_limit_hit(c, NF_LIMIT_RATE, "incoming message rate limit, closing with 1008");
    nf_conn_close(c, NF_WS_CLOSE_POLICY, NF_SLICE("message rate limit"));
    return false;
}

void nf_conn_on_ws_message(void *ud, bool binary, const uint8_t *data, size_t len)
{
    nf_conn *c = ud;
    c->host->metrics.messages_in++;
    c->host->metrics.bytes_in += len;
    if (len == 0 || c->state >= NF_CONN_CLOSING)
        return;   /* empty frames only count as activity (docs/protocol.md §17.1.5) */
    if (!rate_allows(c))
        return;
    if (c->state == NF_CONN_OPEN) {
        if (data[0] == 'M')
            start_handshake(c);
        /* Anything before "M" is dropped: real clients never send it (docs/protocol.md §4.5). */
        return;
    }
    if (try_answer(c, binary, data, len))
        return;
    if (nf_turn_busy(c) || c->state != NF_CONN_READY || c->turn.head) {
        nf_turn_park_frame(c, binary, data, len);
        return;
    }
    nf_turn_hold(c);
    nf_conn_dispatch(c, binary, (const char *)data, len);
    nf_turn_release(c);
}

static void on_activity(void *ud)
{
    ((nf_conn *)ud)->last_read_ms = nf_now_ms();
}

static void on_output(void *ud)
{
    nf_conn_want_flush(ud);
}

static void on_pong(void *ud, const uint8_t *payload, size_t len)
{
    nf_barrier_pong(ud, payload, len);
}

const nf_ws_callbacks nf_conn_ws_callbacks = { nf_conn_on_ws_message, on_activity, on_output, on_pong };

/* ---- back-pressure ------------------------------------------------------------------
 *
 * While a connection's output is over --max-outgoing-bytes its socket is not
 * read: the frames it would bring could only ask for more output (replies,
 * pongs). Reading resumes once the output drains below the low-water mark.
 * A read whose own replies push the output over the bound (a peer that
 * sends faster than it reads: pings, asks) is a slow reader and is closed
 * with 1008, like a send that finds the queue full; reading stays off. */

static size_t output_low_water(const nf_conn *c) { return c->host->limits.max_outgoing_bytes / 2; }

/* Bytes queued for the socket, not yet written (held ones excluded). */
static size_t unwritten(const nf_conn *c)
{
    return c->ws ? nf_ws_unwritten_bytes(c->ws) : evbuffer_get_length(bufferevent_get_output(c->bev));
}

static bool output_over(const nf_conn *c)
{
    return nf_ws_queued_bytes(c->ws) > c->host->limits.max_outgoing_bytes;
}

static void pause_reading(nf_conn *c)
{
    if (c->read_paused)
        return;
    c->read_paused = true;
    event_del(c->read_ev);
    /* Each write the socket takes checks the low-water mark (resume_reading). */
}

static void resume_reading(nf_conn *c)
{
    if (!c->read_paused || c->bev == NULL || unwritten(c) > output_low_water(c))
        return;
    c->read_paused = false;
    event_add(c->read_ev, NULL);
    /* What was read before the pause has waited unparsed, or in the
     * transport (TLS records decrypted, which epoll cannot see). */
    if (nf_ws_input_pending(c->ws) || nf_sock_pending(&c->sock))
        event_active(c->read_ev, EV_READ, 0);
}

/* ---- socket events ---------------------------------------------------------------- */

static void maybe_finish(nf_conn *c)
{
    if (c->state == NF_CONN_CLOSING && c->bev && unwritten(c) == 0 &&
        (c->ws == NULL || c->ws_done))
        nf_conn_teardown(c);
}

/* The bufferevent reads only until the upgrade (HTTP). */
static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    nf_conn *c = arg;
    if (c->state == NF_CONN_HTTP) {
        nf_host_http_read(c);
        return;
    }
    evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
}

/* The socket of a WebSocket connection is readable (or input waits parsed
 * no further, see resume_reading): ws.c reads and parses it. The replies
 * of this read are written by nf_conn_flush_all later in the same loop
 * iteration. */
static void conn_ws_read_cb(evutil_socket_t fd, short what, void *arg)
{
    nf_conn *c = arg;
    (void)fd;
    (void)what;
    if (c->ws == NULL || c->state == NF_CONN_CLOSED)
        return;
    if (c->read_paused || output_over(c)) {
        pause_reading(c);   /* a send from outside a read (broadcast, timer) passed the bound */
        return;
    }
    nf_conn_ref(c);
    int rc = nf_ws_read(c->ws);
    if (rc == NF_EPIPE) {   /* the peer ended the stream or reset it */
        c->peer_gone = true;
        nf_conn_teardown(c);
        nf_conn_unref(c);
        return;
    }
    if (rc != 0) {
        if (rc != NF_EOF)   /* not the end of the close handshake: a failure of ours */
            nf_warn("conn %.*s (%s): %s, closing", (int)c->id_len, c->id ? c->id : "-", c->remote, nf_strerror(rc));
        c->ws_done = true;
        if (c->state < NF_CONN_CLOSING)
            begin_closing(c, CLOSE_GRACE_MS);
    } else if (nf_ws_is_closing(c->ws) && c->state < NF_CONN_CLOSING) {
        begin_closing(c, CLOSE_GRACE_MS);
    }
    if (c->state == NF_CONN_CLOSING)
        nf_barrier_release_all(c);   /* the answering close frame must not wait for a pong */
    if (!c->torn_down && c->ws && output_over(c)) {
        pause_reading(c);
        if (c->state < NF_CONN_CLOSING)
            nf_conn_output_has_room(c);   /* closes it: a slow reader */
    }
    /* The transport holds input the socket no longer shows (TLS: a record
     * decrypted past the reads' bound): epoll would not wake us for it. */
    if (!c->torn_down && !c->read_paused && c->read_ev && nf_sock_pending(&c->sock))
        event_active(c->read_ev, EV_READ, 0);
    if (!c->torn_down)
        maybe_finish(c);
    nf_conn_unref(c);
}

/* ---- writing: one flush per connection per loop iteration ---------------------
 *
 * Everything a loop iteration queues for a connection (replies, broadcasts,
 * pongs) leaves with one writev from nf_conn_flush_all, which runs after the
 * iteration's reads. EV_WRITE is armed only when that write was short, so a
 * connection that keeps up costs no epoll_ctl per message (bufferevents
 * would enable and disable it around every flush). The bufferevent never
 * writes itself: its output is only part of what is queued (ws.h). */

#define WRITE_IOV_MAX 128   /* extents per writev, as libevent's evbuffer_write */
#define WRITE_ROUNDS_MAX 4  /* writevs per flush while the socket takes them whole */

void nf_conn_want_flush(nf_conn *c)
{
    if (c->bev == NULL || c->write_armed || nf_list_linked(&c->flush_link))
        return;
    /* A queue that is not empty has its flush coming (flush_all empties
     * it): a broadcast activates the event once, not once per receiver. */
    if (nf_list_empty(&c->host->flushq))
        event_active(c->host->flush_ev, EV_WRITE, 0);
    nf_list_push_back(&c->host->flushq, &c->flush_link);
}

static void output_drained(nf_conn *c)
{
    c->output_stall_ms = 0;
    resume_reading(c);
    if (c->state == NF_CONN_CLOSING && c->ws && nf_ws_is_closing(c->ws) && !c->ws_done)
        return;   /* our close frame is out; the peer's answer may never come (sweep) */
    maybe_finish(c);
}

/* The HTTP phase of a TLS connection: the bufferevent's output through the
 * transport (SSL_write), as the WebSocket's output below. Its output is not
 * frozen: an OpenSSL bufferevent drains it unfrozen. */
static int conn_write_http_tls(nf_conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    struct evbuffer_iovec v[WRITE_IOV_MAX];
    struct iovec iov[WRITE_IOV_MAX];
    for (int round = 0; round < WRITE_ROUNDS_MAX; round++) {
        int n = evbuffer_peek(out, -1, NULL, v, WRITE_IOV_MAX);
        if (n <= 0)
            return 0;
        if (n > WRITE_IOV_MAX)
            n = WRITE_IOV_MAX;
        size_t want = 0;
        for (int i = 0; i < n; i++) {
            iov[i] = (struct iovec){ v[i].iov_base, v[i].iov_len };
            want += v[i].iov_len;
        }
        ssize_t w = nf_sock_writev(&c->sock, iov, n);
        if (w < 0)
            return w == NF_EAGAIN ? 0 : (int)w;
        if (evbuffer_drain(out, (size_t)w) != 0)
            return NF_EIO;   /* the bytes would go out twice */
        if ((size_t)w < want)
            return 0;
    }
    return 0;
}

/* The one place a connection's bytes go to its socket. Returns 0 (all or
 * part written, or the socket is full) or -errno when the peer is gone. */
static int conn_write(nf_conn *c)
{
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if (c->ws == NULL && c->tls)
        return conn_write_http_tls(c);
    if (c->ws == NULL) {   /* the HTTP phase: a static file may be a file segment */
        struct evbuffer *out = bufferevent_get_output(c->bev);
        evbuffer_unfreeze(out, 1);
        errno = 0;
        int n = evbuffer_write(out, fd);
        int err = errno;
        evbuffer_freeze(out, 1);
        return n < 0 && err != EAGAIN && err != EWOULDBLOCK && err != EINTR ? -(err ? err : EIO) : 0;
    }
    struct iovec iov[WRITE_IOV_MAX];
    for (int round = 0; round < WRITE_ROUNDS_MAX; round++) {
        int n = nf_ws_output_peek(c->ws, iov, WRITE_IOV_MAX);
        if (n <= 0)
            return 0;
        size_t want = 0;
        for (int i = 0; i < n; i++)
            want += iov[i].iov_len;
        ssize_t w = nf_sock_writev(&c->sock, iov, n);
        if (w < 0)
            return w == NF_EAGAIN ? 0 : (int)w;
        nf_ws_output_drain(c->ws, (size_t)w);
        if ((size_t)w < want)
            return 0;   /* the socket is full */
    }
    return 0;
}

static void conn_writable_cb(evutil_socket_t fd, short what, void *arg);

/* A short write: wait for the socket (once armed, it stays until drained). */
static void arm_write(nf_conn *c)
{
    if (c->write_armed)
        return;
    if (c->write_ev == NULL) {
        c->write_ev = event_new(c->host->base, bufferevent_getfd(c->bev), EV_WRITE | EV_PERSIST,
                                conn_writable_cb, c);
        if (c->write_ev == NULL) {
            nf_conn_teardown(c);
            return;
        }
    }
    event_add(c->write_ev, NULL);
    c->write_armed = true;
}

static void conn_flush(nf_conn *c)
{
    if (unwritten(c) > 0 && conn_write(c) != 0) {
        c->peer_gone = true;
        nf_conn_teardown(c);   /* the peer is gone: reset, broken pipe */
        return;
    }
    if (unwritten(c) > 0) {
        arm_write(c);
        return;
    }
    if (c->write_armed) {
        event_del(c->write_ev);
        c->write_armed = false;
    }
    output_drained(c);
}

void nf_conn_flush_all(nf_host *h)
{
    while (!nf_list_empty(&h->flushq)) {
        nf_conn *c = NF_LIST_ENTRY(h->flushq.next, nf_conn, flush_link);
        nf_list_remove(&c->flush_link);
        nf_conn_ref(c);
        if (c->bev && !c->write_armed)
            conn_flush(c);
        nf_conn_unref(c);
    }
}

/* The socket takes more after a short write: go on writing; while reading
 * is paused, each write checks the low-water mark. */
static void conn_writable_cb(evutil_socket_t fd, short what, void *arg)
{
    nf_conn *c = arg;
    nf_conn_ref(c);
    conn_flush(c);
    if (!c->torn_down && c->write_armed)
        resume_reading(c);
    nf_conn_unref(c);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    nf_conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        c->tls_ready = true;   /* the TLS handshake is done: the HTTP request comes next */
        return;
    }
    if (c->tls && !c->tls_ready && (what & BEV_EVENT_ERROR)) {
        char why[160];
        nf_refusal(c->host, NF_REFUSED_TLS_HANDSHAKE, c->remote, "TLS handshake failed: %s",
                   nf_tls_error(bev, why, sizeof why));
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        c->peer_gone = true;
        nf_conn_teardown(c);
    }
}

/* ---- timeouts, checked by the host's coarse sweep --------------------------------- */

void nf_conn_sweep(nf_conn *c, uint64_t now)
{
    const nf_limits *lim = &c->host->limits;
    if (c->state == NF_CONN_CLOSING) {
        if (now >= c->close_deadline_ms)
            nf_conn_teardown(c);
        return;
    }
    /* HTTP request or "M" still missing (on_connect itself is not timed). */
    if ((c->state == NF_CONN_HTTP || c->state == NF_CONN_OPEN) &&
        now - c->opened_ms >= lim->handshake_timeout_ms) {
        nf_refusal_conn(c, c->state == NF_CONN_OPEN ? c->ep : NULL, NF_REFUSED_HANDSHAKE_TIMEOUT, "handshake timeout (%s)",
                   c->state == NF_CONN_OPEN ? "no \"M\"" : c->tls && !c->tls_ready ? "TLS handshake not finished"
                                                                               : "no HTTP request");
        if (c->state == NF_CONN_HTTP)
            nf_conn_teardown(c);
        else
            nf_conn_close(c, NF_WS_CLOSE_POLICY, NF_SLICE("handshake timeout"));
        return;
    }
    if (c->ep == NULL || c->bev == NULL)
        return;
    nf_barrier_sweep(c, now);
    nf_turn_sweep(c, now);
    const nf_endpoint_config *cfg = &c->ep->cfg;
    if (cfg->read_timeout_ms && now - c->last_read_ms >= cfg->read_timeout_ms) {
        nf_info("conn %s: read timeout (%u ms idle), closing", c->id_shown, cfg->read_timeout_ms);
        nf_conn_close(c, NF_WS_CLOSE_GOING_AWAY, NF_SLICE("read timeout"));
        return;
    }
    if (unwritten(c) == 0) {
        c->output_stall_ms = 0;
    } else if (c->output_stall_ms == 0) {
        c->output_stall_ms = now;
    } else if (cfg->write_timeout_ms && now - c->output_stall_ms >= cfg->write_timeout_ms) {
        nf_info("conn %s: write timeout, closing", c->id_shown);
        nf_conn_teardown(c);
    }
}

/* ---- accessors ------------------------------------------------------------------- */

/* The connection's namespaces: it holds the list (nf_nsconn.conn_link);
 * namespace.c makes and drops its entries. */
nf_nsconn *nf_conn_namespace(nf_conn *c, nf_slice ns)
{
    NF_LIST_FOREACH(it, &c->nsconns) {
        nf_nsconn *nc = NF_LIST_ENTRY(it, nf_nsconn, conn_link);
        if (nf_slice_eq(nf_slice_of(nc->index->name, nc->index->name_len), ns))
            return nc;
    }
    return NULL;
}

nf_nsconn *nf_conn_namespace_next(nf_conn *c, nf_nsconn *prev)
{
    nf_list *next = prev ? prev->conn_link.next : c->nsconns.next;
    return next == &c->nsconns ? NULL : NF_LIST_ENTRY(next, nf_nsconn, conn_link);
}

/* Forced connect (docs/protocol.md §7.4): namespace.c runs the procedure. */
void nf_conn_connect(nf_conn *c, nf_slice ns, nf_done_cb cb, void *ud) { nf_ns_connect(c, ns, cb, ud); }

struct evbuffer *nf_conn_input(nf_conn *c) { return bufferevent_get_input(c->bev); }
struct evbuffer *nf_conn_output(nf_conn *c) { return c->bev ? bufferevent_get_output(c->bev) : NULL; }
nf_host *nf_conn_host(const nf_conn *c) { return c->host; }
nf_ws *nf_conn_ws(const nf_conn *c) { return c->ws; }
bool nf_conn_is_handshaking(const nf_conn *c) { return c->state == NF_CONN_OPEN || c->state == NF_CONN_CONNECTING; }

void nf_conn_set_request(nf_conn *c, nf_request *req)
{
    nf_request_free(c->req);
    c->req = req;
}

void nf_conn_read_pipelined(nf_conn *c)
{
    if (c->ws && c->read_ev && c->state == NF_CONN_OPEN && (nf_ws_input_pending(c->ws) || nf_sock_pending(&c->sock)))
        event_active(c->read_ev, EV_READ, 0);
}

nf_slice nf_conn_id(const nf_conn *c) { return nf_slice_of(c->id ? c->id : "", c->id_len); }
nf_endpoint *nf_conn_endpoint(nf_conn *c) { return c->ep; }
uint64_t nf_conn_serial(const nf_conn *c) { return c->serial; }
const nf_request *nf_conn_request(const nf_conn *c) { return c->req; }
bool nf_conn_is_closed(const nf_conn *c) { return c->state >= NF_CONN_CLOSING; }
bool nf_conn_is_acknowledged(const nf_conn *c) { return c->state == NF_CONN_READY; }
int nf_conn_reconnect_tries(const nf_conn *c) { return c->req ? nf_request_reconnect_tries(c->req) : 0; }
const char *nf_conn_remote_addr(const nf_conn *c) { return c->remote; }
void *nf_conn_app_data(const nf_conn *c) { return c->app_data; }
void nf_conn_set_app_data(nf_conn *c, void *data) { c->app_data = data; }

void nf_conn_get_stats(const nf_conn *c, nf_conn_stats *out)
{
    memset(out, 0, sizeof *out);
    out->output_bytes = c->ws ? nf_ws_queued_bytes(c->ws) : c->bev ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;
    out->inbox_frames = c->turn.frames;
    out->inbox_bytes = c->turn.bytes;
    out->namespaces = c->nsconn_count;
    for (const nf_list *it = c->nsconns.next; it != &c->nsconns; it = it->next) {
        const nf_nsconn *nc = NF_LIST_ENTRY(it, nf_nsconn, conn_link);
        out->rooms += nc->room_count;
        if (nc->room_count > out->max_rooms)
            out->max_rooms = nc->room_count;
    }
    out->asks = c->ask_count;
    out->closed = c->state == NF_CONN_CLOSED;
}

/* A handler that ran into the instruction limit held the loop for the whole
 * budget; one client sending such messages back to back would hold it most
 * of the time. So a connection whose handler runs overrun the budget
 * --max-budget-overruns times in a row is closed like any other abuser. */
void nf_conn_budget_result(nf_conn *c, bool overran)
{
    size_t max = c->host->limits.max_budget_overruns;
    if (!overran) {
        c->budget_overruns = 0;
        return;
    }
    if (max == 0 || ++c->budget_overruns < max || c->state >= NF_CONN_CLOSING)
        return;
    nf_conn_limit_hit(c, NF_LIMIT_BUDGET, "handler runs in a row over the instruction limit");
    nf_conn_close(c, NF_WS_CLOSE_POLICY, NF_SLICE("handler budget exceeded"));
}
