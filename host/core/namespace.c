/* namespace.c - namespaces and rooms: membership indexes, the client's
 * connect/disconnect/join/leave requests (docs/protocol.md §7.2, §7.4, §7.6, §7.7), the
 * server-forced versions (§7.3, §7.5) and the close procedure (§7.8).
 *
 * Each endpoint indexes its namespaces (name -> members) and each namespace
 * its rooms (name -> members), so broadcasts and member listings walk only
 * the receivers, never every connection. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* ---- name bounds ---------------------------------------------------------------- */

/* A long name costs memory in every index that holds it and CPU in every
 * lookup (hash, compare): 256 rooms of 1 MB would keep 256 MiB per
 * connection. Lengths are checked before anything else touches a name. */
int nf_ns_check_names(const nf_host *h, nf_slice ns, nf_slice room, nf_slice event)
{
    size_t max = h->limits.max_name_bytes;
    return ns.len > max || room.len > max || event.len > max ? -ENAMETOOLONG : 0;
}

static void name_refused(nf_conn *c)
{
    nf_conn_limit_hit(c, NF_LIMIT_NAME, "name longer than --max-name-bytes");
}

/* Would a connection holding `len` more bytes of names stay in bounds? */
static bool names_fit(const nf_conn *c, size_t len)
{
    return len <= nf_conn_host(c)->limits.max_name_bytes_per_conn - c->name_bytes;
}

static void names_refused(nf_conn *c)
{
    nf_conn_limit_hit(c, NF_LIMIT_NAMES_PER_CONN, "namespace and room names per connection (--max-name-bytes-per-conn)");
}

/* ---- indexes ------------------------------------------------------------------- */

static nf_ns_index *index_get(nf_endpoint *ep, nf_slice ns, bool create)
{
    nf_ns_index *idx = nf_dict_get(ep->namespaces, ns);
    if (idx || !create)
        return idx;
    idx = calloc(1, sizeof *idx + ns.len + 1);
    if (idx == NULL)
        return NULL;
    idx->rooms = nf_dict_new();
    if (idx->rooms == NULL) {
        free(idx);
        return NULL;
    }
    nf_list_init(&idx->members);
    memcpy(idx->name, ns.ptr, ns.len);
    idx->name_len = ns.len;
    if (nf_dict_set(ep->namespaces, nf_slice_of(idx->name, idx->name_len), idx) != 0) {
        nf_dict_free(idx->rooms);
        free(idx);
        return NULL;
    }
    return idx;
}

static void index_drop(nf_endpoint *ep, nf_ns_index *idx)
{
    nf_dict_delete(ep->namespaces, nf_slice_of(idx->name, idx->name_len));
    nf_dict_free(idx->rooms);
    free(idx);
}

nf_nsconn *nf_ns_attach(nf_conn *c, nf_slice ns)
{
    nf_ns_index *idx = index_get(nf_conn_endpoint(c), ns, true);
    nf_nsconn *nc = idx ? calloc(1, sizeof *nc) : NULL;
    if (nc == NULL)
        return NULL;
    nc->conn = c;
    nc->index = idx;
    nf_list_init(&nc->rooms);
    nf_list_push_back(&idx->members, &nc->index_link);
    idx->count++;
    nf_list_push_back(&c->nsconns, &nc->conn_link);
    c->nsconn_count++;
    c->name_bytes += ns.len;
    return nc;
}

static void detach(nf_nsconn *nc)
{
    nf_conn *c = nc->conn;
    nf_ns_index *idx = nc->index;
    nf_list_remove(&nc->index_link);
    nf_list_remove(&nc->conn_link);
    c->nsconn_count--;
    c->name_bytes -= idx->name_len;
    if (--idx->count == 0)
        index_drop(nf_conn_endpoint(c), idx);
    free(nc);
}

static nf_room_member *find_member(const nf_nsconn *nc, nf_slice room)
{
    NF_LIST_FOREACH(it, &nc->rooms) {
        nf_room_member *m = NF_LIST_ENTRY(it, nf_room_member, nc_link);
        if (nf_slice_eq(nf_slice_of(m->room->name, m->room->name_len), room))
            return m;
    }
    return NULL;
}

/* 0, -ENAMETOOLONG (the connection's names would pass their bound), or -ENOMEM. */
static int room_add(nf_nsconn *nc, nf_slice room)
{
    if (!names_fit(nc->conn, room.len))
        return -ENAMETOOLONG;
    nf_room_index *ri = nf_dict_get(nc->index->rooms, room);
    if (ri == NULL) {
        ri = calloc(1, sizeof *ri + room.len + 1);
        if (ri == NULL)
            return -ENOMEM;
        nf_list_init(&ri->members);
        memcpy(ri->name, room.ptr, room.len);
        ri->name_len = room.len;
        if (nf_dict_set(nc->index->rooms, nf_slice_of(ri->name, ri->name_len), ri) != 0) {
            free(ri);
            return -ENOMEM;
        }
    }
    nf_room_member *m = calloc(1, sizeof *m);
    if (m == NULL)
        return -ENOMEM;
    m->nc = nc;
    m->room = ri;
    nf_list_push_back(&ri->members, &m->room_link);
    nf_list_push_back(&nc->rooms, &m->nc_link);
    ri->count++;
    nc->room_count++;
    nc->conn->name_bytes += room.len;
    return 0;
}

static void room_remove(nf_nsconn *nc, nf_room_member *m)
{
    nf_room_index *ri = m->room;
    nf_list_remove(&m->room_link);
    nf_list_remove(&m->nc_link);
    nc->room_count--;
    nc->conn->name_bytes -= ri->name_len;
    free(m);
    if (--ri->count == 0) {
        nf_dict_delete(nc->index->rooms, nf_slice_of(ri->name, ri->name_len));
        free(ri);
    }
}

/* Leaves every room with the forced local events, then drops the namespace.
 * The room's name is copied first: the handlers run while it still exists,
 * and it is freed with the last member. */
static void leave_rooms_forced(nf_nsconn *nc, bool is_local)
{
    nf_conn *c = nc->conn;
    nf_slice ns = nf_slice_of(nc->index->name, nc->index->name_len);
    while (!nf_list_empty(&nc->rooms)) {
        nf_room_member *m = NF_LIST_ENTRY(nc->rooms.next, nf_room_member, nc_link);
        char stack[256];
        size_t n = m->room->name_len;
        char *name = n <= sizeof stack ? stack : malloc(n);
        if (name == NULL)
            return;
        memcpy(name, m->room->name, n);
        nf_slice room = nf_slice_of(name, n);
        nf_invocation_notify(c, ns, room, NF_ON_ROOM_LEAVE, (is_local ? NF_INV_LOCAL : 0) | NF_INV_FORCED);
        nf_invocation_notify(c, ns, room, NF_ON_ROOM_LEFT, (is_local ? NF_INV_LOCAL : 0) | NF_INV_FORCED);
        /* A handler may have left it already; look it up again. */
        m = find_member(nc, room);
        if (m)
            room_remove(nc, m);
        if (name != stack)
            free(name);
    }
}

void nf_ns_close_all(nf_conn *c)
{
    while (!nf_list_empty(&c->nsconns)) {
        nf_nsconn *nc = NF_LIST_ENTRY(c->nsconns.next, nf_nsconn, conn_link);
        leave_rooms_forced(nc, true);
        nf_invocation_notify(c, nf_slice_of(nc->index->name, nc->index->name_len), NF_SLICE_EMPTY,
                             NF_ON_NAMESPACE_DISCONNECT, NF_INV_LOCAL | NF_INV_FORCED);
        nf_broadcast_ns_disconnected(nc);   /* its share of the namespace's broker channel */
        detach(nc);
    }
}

/* ---- replies ------------------------------------------------------------------- */

static void reply_error(nf_conn *c, const nf_msg *req, nf_slice text, bool binary)
{
    nf_msg m = { .wait = req->wait, .ns = req->ns, .room = req->room, .event = req->event,
                 .is_error = true, .body = text.len ? text : NF_SLICE("error") };
    nf_conn_send_msg(c, &m, binary);
}

bool nf_ns_admit_names(nf_conn *c, const nf_msg *m, bool binary)
{
    if (nf_ns_check_names(nf_conn_host(c), m->ns, m->room, m->event) == 0)
        return true;
    name_refused(c);
    /* Answered like the other refusals ("too many rooms") when the client
     * waits for an answer; never an error for an error (docs/protocol.md §6). */
    if (m->wait.len && !m->is_error)
        reply_error(c, m, NF_SLICE(NF_ERR_NAME_TOO_LONG), binary);
    return false;
}

/* A system request with no token or with isNoOp gets no answer and fires
 * nothing (docs/protocol.md §7.9). */
static bool ignorable(const nf_msg *m) { return m->wait.len == 0 || m->is_noop; }

typedef void (*decided_fn)(nf_conn *c, const nf_msg *req, nf_result r, nf_slice err, bool binary);

static void system_decided(nf_invocation *inv, nf_result result, const char *data, size_t len)
{
    nf_conn *c = nf_invocation_conn(inv);
    decided_fn fn = (decided_fn)nf_invocation_cont_ud(inv);
    /* Still in the request's turn: the notification fn starts (e.g.
     * OnNamespaceConnected) belongs to it, and the next frame waits for it. */
    if (nf_conn_is_acknowledged(c))
        fn(c, nf_invocation_msg(inv), result, nf_slice_of(data, len), nf_invocation_is_binary(inv));
}

static void decide(nf_conn *c, const nf_msg *req, bool binary, decided_fn fn)
{
    nf_invocation *inv = nf_invocation_new(NF_INVOKE_EVENT, c, req, binary ? NF_INV_BINARY : 0);
    if (inv == NULL)
        return;
    nf_invocation_set_cont(inv, system_decided, (void *)fn);
    nf_invocation_run(inv);
}

/* ---- client requests ------------------------------------------------------------- */

static void connect_decided(nf_conn *c, const nf_msg *req, nf_result r, nf_slice err, bool binary)
{
    nf_nsconn *nc = nf_conn_namespace(c, req->ns);
    if (nc == NULL)
        return;
    if (r == NF_RESULT_ERROR) {
        detach(nc);   /* refused: it was never connected, so no events */
        reply_error(c, req, err, binary);
        return;
    }
    /* The answer goes first, then _OnNamespaceConnected (docs/protocol.md §7.2, 17.5.7);
     * what follows waits for the client's pong (barrier.c). */
    nf_conn_send_empty_reply(c, req->wait);
    nf_barrier_add(c);
    nf_broadcast_ns_connected(nc);
    nf_invocation_notify(c, req->ns, NF_SLICE_EMPTY, NF_ON_NAMESPACE_CONNECTED, 0);
}

void nf_ns_handle_connect(nf_conn *c, const nf_msg *m, bool binary)
{
    if (ignorable(m))
        return;
    if (nf_conn_namespace(c, m->ns)) {
        nf_conn_send_empty_reply(c, m->wait);
        return;
    }
    if (!nf_conn_host(c)->ops->has_namespace(nf_conn_host(c)->app, nf_conn_endpoint(c), m->ns)) {
        reply_error(c, m, NF_SLICE(NF_ERR_BAD_NAMESPACE), binary);
        return;
    }
    if (c->nsconn_count >= nf_conn_host(c)->limits.max_namespaces_per_conn) {
        nf_conn_limit_hit(c, NF_LIMIT_NAMESPACES, "namespaces per connection");
        reply_error(c, m, NF_SLICE("too many namespaces"), binary);
        return;
    }
    if (!names_fit(c, m->ns.len)) {
        names_refused(c);
        reply_error(c, m, NF_SLICE(NF_ERR_NAMES_TOO_LONG), binary);
        return;
    }
    /* Attached before the decision so that the handler's ns object works;
     * detached again without events if it refuses. */
    nf_nsconn *nc = nf_ns_attach(c, m->ns);
    if (nc == NULL)
        return;
    decide(c, m, binary, connect_decided);
}

static void disconnect_decided(nf_conn *c, const nf_msg *req, nf_result r, nf_slice err, bool binary)
{
    nf_nsconn *nc = nf_conn_namespace(c, req->ns);
    if (nc == NULL) {
        nf_conn_send_empty_reply(c, req->wait);
        return;
    }
    if (r == NF_RESULT_ERROR) {
        reply_error(c, req, err, binary);
        return;
    }
    leave_rooms_forced(nc, false);
    nf_broadcast_ns_disconnected(nc);
    detach(nc);
    nf_conn_send_empty_reply(c, req->wait);
}

void nf_ns_handle_disconnect(nf_conn *c, const nf_msg *m, bool binary)
{
    if (ignorable(m))
        return;
    nf_nsconn *nc = nf_conn_namespace(c, m->ns);
    if (nc == NULL) {
        nf_conn_send_empty_reply(c, m->wait);
        return;
    }
    decide(c, m, binary, disconnect_decided);
}

/* The common head of a room request's decision: the namespace connection
 * the request goes on with, or NULL when it is gone meanwhile or the
 * handler refused (the refusal is answered here). */
static nf_nsconn *room_request_accepted(nf_conn *c, const nf_msg *req, nf_result r, nf_slice err, bool binary)
{
    nf_nsconn *nc = nf_conn_namespace(c, req->ns);
    if (nc != NULL && r == NF_RESULT_ERROR) {
        reply_error(c, req, err, binary);
        return NULL;
    }
    return nc;
}

static void join_decided(nf_conn *c, const nf_msg *req, nf_result r, nf_slice err, bool binary)
{
    nf_nsconn *nc = room_request_accepted(c, req, r, err, binary);
    if (nc == NULL)
        return;
    int rc = find_member(nc, req->room) ? 0 : room_add(nc, req->room);
    if (rc == -ENAMETOOLONG) {   /* forced joins took the name bytes while the handler ran */
        names_refused(c);
        reply_error(c, req, NF_SLICE(NF_ERR_NAMES_TOO_LONG), binary);
        return;
    }
    if (rc != 0)
        return;
    nf_conn_send_empty_reply(c, req->wait);
    nf_barrier_add(c);
    nf_invocation_notify(c, req->ns, req->room, NF_ON_ROOM_JOINED, 0);
}

void nf_ns_handle_join(nf_conn *c, nf_nsconn *nc, const nf_msg *m, bool binary)
{
    if (ignorable(m))
        return;
    if (find_member(nc, m->room)) {
        nf_conn_send_empty_reply(c, m->wait);
        return;
    }
    if (nc->room_count >= nf_conn_host(c)->limits.max_rooms_per_conn) {
        nf_conn_limit_hit(c, NF_LIMIT_ROOMS, "rooms per namespace connection");
        reply_error(c, m, NF_SLICE("too many rooms"), binary);
        return;
    }
    if (!names_fit(c, m->room.len)) {
        names_refused(c);
        reply_error(c, m, NF_SLICE(NF_ERR_NAMES_TOO_LONG), binary);
        return;
    }
    decide(c, m, binary, join_decided);
}

static void leave_decided(nf_conn *c, const nf_msg *req, nf_result r, nf_slice err, bool binary)
{
    nf_nsconn *nc = room_request_accepted(c, req, r, err, binary);
    if (nc == NULL)
        return;
    nf_room_member *mem = find_member(nc, req->room);
    if (mem)
        room_remove(nc, mem);
    nf_conn_send_empty_reply(c, req->wait);
    nf_invocation_notify(c, req->ns, req->room, NF_ON_ROOM_LEFT, 0);
}

void nf_ns_handle_leave(nf_conn *c, nf_nsconn *nc, const nf_msg *m, bool binary)
{
    if (ignorable(m))
        return;
    if (!find_member(nc, m->room)) {
        nf_conn_send_empty_reply(c, m->wait);
        return;
    }
    /* Whatever the client called it (_OnRoomLeft from leaveAll), the handler
     * that decides is _OnRoomLeave. */
    nf_msg req = *m;
    req.event = NF_SLICE(NF_ON_ROOM_LEAVE);
    decide(c, &req, binary, leave_decided);
}

/* ---- server-forced actions ---------------------------------------------------------- */

/* What a forced action waits on: the connection (referenced) and the names,
 * since the nf_nsconn may be gone by the time the client answers. A forced
 * action holds the connection's turn from its start to its end (turn.c), so
 * the client's frames wait for it: an event of a namespace whose forced
 * connect is pending is handled once it is answered (the Go client writes
 * such events before its answer), or gets "bad namespace" if it failed. */
typedef struct forced {
    nf_conn *c;
    nf_done_cb cb;
    void *ud;
    nf_slice ns, room;
    void (*start)(struct forced *);
    bool held;             /* holds c's turn */
    struct forced *next;   /* deferred connects */
    char names[];
} forced;

static forced *forced_new(nf_conn *c, nf_slice ns, nf_slice room, nf_done_cb cb, void *ud)
{
    forced *f = calloc(1, sizeof *f + ns.len + room.len);
    if (f == NULL)
        return NULL;
    f->c = c;
    f->cb = cb;
    f->ud = ud;
    memcpy(f->names, ns.ptr, ns.len);
    memcpy(f->names + ns.len, room.ptr, room.len);
    f->ns = nf_slice_of(f->names, ns.len);
    f->room = nf_slice_of(f->names + ns.len, room.len);
    nf_conn_ref(c);
    return f;
}

static void forced_done(forced *f, const char *err)
{
    nf_conn *c = f->c;
    /* What the callback asks of c next (ns:leave_all's next leave) is part
     * of this turn too: nf_turn_is_current says so. */
    nf_turn_completion_begin(c);
    if (f->cb)
        f->cb(f->ud, err, err ? strlen(err) : 0);
    nf_turn_completion_end(c);
    if (f->held)
        nf_turn_release(c);
    nf_conn_unref(c);
    free(f);
}

static void forced_go(void *ud, bool go)
{
    forced *f = ud;
    if (!go) {
        forced_done(f, nf_conn_is_closed(f->c) ? NF_ERR_WRITE : "timeout");
        return;
    }
    f->held = true;   /* nf_turn_call_later took the hold for us */
    f->start(f);
}

/* Starts f in c's turn: at once when the handler asking for it runs in that
 * turn (nested), else when the turn is free. */
static void forced_begin(forced *f, void (*start)(forced *), bool nested)
{
    f->start = start;
    if (nested) {
        nf_turn_hold(f->c);
        f->held = true;
        start(f);
        return;
    }
    nf_turn_call_later(f->c, forced_go, f);
}

static const char *ask_error(nf_ask_status st, const nf_msg *reply, char *buf, size_t cap)
{
    switch (st) {
    case NF_ASK_OK: return NULL;
    case NF_ASK_REMOTE_ERROR:
        snprintf(buf, cap, "%.*s", (int)reply->body.len, reply->body.ptr);
        return buf;
    case NF_ASK_TIMEOUT: return "timeout";
    case NF_ASK_NOT_FOUND: return NF_ERR_BAD_NAMESPACE;
    default: return NF_ERR_WRITE;
    }
}

static void connect_answered(void *ud, nf_ask_status st, const nf_msg *reply)
{
    forced *f = ud;
    char buf[512];
    const char *err = ask_error(st, reply, buf, sizeof buf);
    nf_conn *c = f->c;
    if (err == NULL && nf_conn_is_acknowledged(c) && nf_conn_namespace(c, f->ns) == NULL) {
        /* Checked when asked for, but other connects may have come first. */
        bool fits = names_fit(c, f->ns.len);
        nf_nsconn *nc = fits ? nf_ns_attach(c, f->ns) : NULL;
        if (!fits) {
            names_refused(c);
            err = NF_ERR_NAMES_TOO_LONG;
        } else if (nc) {
            nf_broadcast_ns_connected(nc);
            nf_invocation_notify(c, f->ns, NF_SLICE_EMPTY, NF_ON_NAMESPACE_CONNECTED, NF_INV_LOCAL);
        }
    }
    forced_done(f, err);
}

static void connect_locally_decided(nf_invocation *inv, nf_result result, const char *data, size_t len)
{
    forced *f = nf_invocation_cont_ud(inv);
    nf_conn *c = f->c;
    if (result == NF_RESULT_ERROR) {
        char buf[512];
        snprintf(buf, sizeof buf, "%.*s", (int)len, data);
        forced_done(f, len ? buf : "error");
        return;
    }
    if (!nf_conn_is_acknowledged(c)) {
        forced_done(f, NF_ERR_WRITE);
        return;
    }
    nf_slice event = NF_SLICE(NF_ON_NAMESPACE_CONNECT);
    nf_ask_send(c, f->ns, NF_SLICE_EMPTY, event, NF_SLICE_EMPTY, false, 0, connect_answered, f);
}

static void start_forced_connect(forced *f)
{
    nf_conn *c = f->c;
    if (!nf_conn_is_acknowledged(c)) {
        forced_done(f, NF_ERR_WRITE);
        return;
    }
    if (nf_conn_namespace(c, f->ns)) {
        forced_done(f, NULL);
        return;
    }
    /* The local _OnNamespaceConnect runs first and may refuse (docs/protocol.md §7.3). */
    nf_msg m = { .ns = f->ns, .event = NF_SLICE(NF_ON_NAMESPACE_CONNECT) };
    nf_invocation *inv = nf_invocation_new(NF_INVOKE_EVENT, c, &m, NF_INV_LOCAL);
    if (inv == NULL) {
        forced_done(f, "out of memory");
        return;
    }
    nf_invocation_set_cont(inv, connect_locally_decided, f);
    nf_invocation_run(inv);
}

/* The bounds of a name a forced action would add: NULL or the error text. */
static const char *forced_name_error(nf_conn *c, nf_slice name)
{
    if (name.len > nf_conn_host(c)->limits.max_name_bytes) {
        name_refused(c);
        return NF_ERR_NAME_TOO_LONG;
    }
    if (!names_fit(c, name.len)) {
        names_refused(c);
        return NF_ERR_NAMES_TOO_LONG;
    }
    return NULL;
}

void nf_ns_connect(nf_conn *c, nf_slice ns, nf_done_cb cb, void *ud)
{
    const char *err = forced_name_error(c, ns);
    if (err) {
        if (cb)
            cb(ud, err, strlen(err));
        return;
    }
    forced *f = forced_new(c, ns, NF_SLICE_EMPTY, cb, ud);
    if (f == NULL) {
        if (cb)
            cb(ud, "out of memory", 13);
        return;
    }
    if (nf_conn_is_handshaking(c)) {
        /* Before "A": sent right after it (docs/protocol.md §17.2.6). Keep call order. */
        forced **tail = (forced **)&c->deferred;
        while (*tail)
            tail = &(*tail)->next;
        *tail = f;
        return;
    }
    forced_begin(f, start_forced_connect, nf_turn_is_current(c));
}

void nf_ns_run_deferred(nf_conn *c)
{
    forced *f = (forced *)c->deferred;
    c->deferred = NULL;
    while (f) {
        forced *next = f->next;
        f->next = NULL;
        forced_begin(f, start_forced_connect, true);   /* part of the handshake's turn */
        f = next;
    }
}

void nf_ns_free_deferred(nf_conn *c)
{
    /* The connection closed before its handshake completed: the connects
     * asked for in on_connect fail. Each holds a reference to c. */
    forced *f = (forced *)c->deferred;
    c->deferred = NULL;
    while (f) {
        forced *next = f->next;
        forced_done(f, NF_ERR_WRITE);
        f = next;
    }
}

static void disconnect_answered(void *ud, nf_ask_status st, const nf_msg *reply)
{
    forced *f = ud;
    nf_conn *c = f->c;
    char buf[512];
    const char *err = st == NF_ASK_OK ? NULL : ask_error(st, reply, buf, sizeof buf);
    /* The server's decision stands whatever the client said (docs/protocol.md §7.5). */
    nf_nsconn *nc = nf_conn_namespace(c, f->ns);
    if (nc && !nf_conn_is_closed(c)) {
        leave_rooms_forced(nc, true);
        nf_invocation_notify(c, f->ns, NF_SLICE_EMPTY, NF_ON_NAMESPACE_DISCONNECT, NF_INV_LOCAL);
        nc = nf_conn_namespace(c, f->ns);
        if (nc) {
            nf_broadcast_ns_disconnected(nc);
            detach(nc);
        }
    }
    forced_done(f, err);
}

static void start_forced_disconnect(forced *f)
{
    nf_nsconn *nc = nf_conn_namespace(f->c, f->ns);
    if (nc == NULL) {
        forced_done(f, NULL);
        return;
    }
    nc->disconnecting = true;
    nf_ask_send(f->c, f->ns, NF_SLICE_EMPTY, NF_SLICE(NF_ON_NAMESPACE_DISCONNECT), NF_SLICE_EMPTY, false, 0,
                disconnect_answered, f);
}

void nf_nsconn_disconnect(nf_nsconn *nc, nf_done_cb cb, void *ud)
{
    nf_slice ns = nf_slice_of(nc->index->name, nc->index->name_len);
    if (nc->disconnecting) {
        if (cb)
            cb(ud, NULL, 0);
        return;
    }
    forced *f = forced_new(nc->conn, ns, NF_SLICE_EMPTY, cb, ud);
    if (f == NULL)
        return;
    nc->disconnecting = true;
    forced_begin(f, start_forced_disconnect, nf_turn_is_current(nc->conn));
}

static void join_answered(void *ud, nf_ask_status st, const nf_msg *reply)
{
    forced *f = ud;
    char buf[512];
    const char *err = ask_error(st, reply, buf, sizeof buf);
    nf_nsconn *nc = nf_conn_namespace(f->c, f->ns);
    if (err == NULL && nc && !find_member(nc, f->room)) {
        nf_invocation_notify(f->c, f->ns, f->room, NF_ON_ROOM_JOIN, NF_INV_LOCAL);
        nc = nf_conn_namespace(f->c, f->ns);
        int rc = nc && !find_member(nc, f->room) ? room_add(nc, f->room) : -ENOENT;
        if (rc == 0) {
            nf_invocation_notify(f->c, f->ns, f->room, NF_ON_ROOM_JOINED, NF_INV_LOCAL);
        } else if (rc == -ENAMETOOLONG) {   /* other joins came first */
            names_refused(f->c);
            err = NF_ERR_NAMES_TOO_LONG;
        }
    } else if (err == NULL && nc == NULL) {
        err = NF_ERR_BAD_NAMESPACE;
    }
    forced_done(f, err);
}

static void start_forced_join(forced *f)
{
    nf_conn *c = f->c;
    nf_nsconn *nc = nf_conn_namespace(c, f->ns);
    if (nc == NULL) {
        forced_done(f, NF_ERR_BAD_NAMESPACE);
        return;
    }
    if (find_member(nc, f->room)) {
        forced_done(f, NULL);
        return;
    }
    if (nc->room_count >= nf_conn_host(c)->limits.max_rooms_per_conn) {
        nf_conn_limit_hit(c, NF_LIMIT_ROOMS, "rooms per namespace connection");
        forced_done(f, "too many rooms");
        return;
    }
    nf_ask_send(c, f->ns, f->room, NF_SLICE(NF_ON_ROOM_JOIN), NF_SLICE_EMPTY, false, 0, join_answered, f);
}

void nf_nsconn_join_room(nf_nsconn *nc, nf_slice room, nf_done_cb cb, void *ud)
{
    nf_slice ns = nf_slice_of(nc->index->name, nc->index->name_len);
    if (find_member(nc, room)) {
        if (cb)
            cb(ud, NULL, 0);
        return;
    }
    const char *err = forced_name_error(nc->conn, room);
    if (err) {
        if (cb)
            cb(ud, err, strlen(err));
        return;
    }
    forced *f = forced_new(nc->conn, ns, room, cb, ud);
    if (f == NULL)
        return;
    forced_begin(f, start_forced_join, nf_turn_is_current(nc->conn));
}

static void leave_answered(void *ud, nf_ask_status st, const nf_msg *reply)
{
    forced *f = ud;
    char buf[512];
    const char *err = st == NF_ASK_OK ? NULL : ask_error(st, reply, buf, sizeof buf);
    nf_nsconn *nc = nf_conn_namespace(f->c, f->ns);
    if (nc && find_member(nc, f->room) && !nf_conn_is_closed(f->c)) {
        nf_invocation_notify(f->c, f->ns, f->room, NF_ON_ROOM_LEAVE, NF_INV_LOCAL);
        nc = nf_conn_namespace(f->c, f->ns);
        nf_room_member *m = nc ? find_member(nc, f->room) : NULL;
        if (m) {
            room_remove(nc, m);
            nf_invocation_notify(f->c, f->ns, f->room, NF_ON_ROOM_LEFT, NF_INV_LOCAL);
        }
    }
    forced_done(f, err);
}

static void start_forced_leave(forced *f)
{
    nf_nsconn *nc = nf_conn_namespace(f->c, f->ns);
    if (nc == NULL || !find_member(nc, f->room)) {
        forced_done(f, NULL);
        return;
    }
    nf_ask_send(f->c, f->ns, f->room, NF_SLICE(NF_ON_ROOM_LEAVE), NF_SLICE_EMPTY, false, 0, leave_answered, f);
}

void nf_nsconn_leave_room(nf_nsconn *nc, nf_slice room, nf_done_cb cb, void *ud)
{
    nf_slice ns = nf_slice_of(nc->index->name, nc->index->name_len);
    if (!find_member(nc, room)) {
        if (cb)
            cb(ud, NULL, 0);
        return;
    }
    forced *f = forced_new(nc->conn, ns, room, cb, ud);
    if (f == NULL)
        return;
    forced_begin(f, start_forced_leave, nf_turn_is_current(nc->conn));
}

/* ---- accessors ------------------------------------------------------------------ */


nf_conn *nf_nsconn_conn(nf_nsconn *nc) { return nc->conn; }
nf_slice nf_nsconn_name(const nf_nsconn *nc) { return nf_slice_of(nc->index->name, nc->index->name_len); }
void *nf_nsconn_app_data(const nf_nsconn *nc) { return nc->app_data; }
void nf_nsconn_set_app_data(nf_nsconn *nc, void *data) { nc->app_data = data; }
bool nf_nsconn_in_room(const nf_nsconn *nc, nf_slice room) { return find_member(nc, room) != NULL; }

bool nf_nsconn_room_next(const nf_nsconn *nc, size_t *cursor, nf_slice *room)
{
    size_t i = 0;
    NF_LIST_FOREACH(it, &nc->rooms) {
        if (i++ == *cursor) {
            nf_room_member *m = NF_LIST_ENTRY(it, nf_room_member, nc_link);
            *room = nf_slice_of(m->room->name, m->room->name_len);
            (*cursor)++;
            return true;
        }
    }
    return false;
}

int nf_nsconn_emit(nf_nsconn *nc, nf_slice room, nf_slice event, nf_slice body, bool binary)
{
    nf_msg m = { .ns = nf_nsconn_name(nc), .room = room, .event = event, .body = body };
    return nf_conn_send_msg(nc->conn, &m, binary);
}

void nf_nsconn_ask(nf_nsconn *nc, nf_slice room, nf_slice event, nf_slice body, bool binary,
                   unsigned timeout_ms, nf_ask_cb cb, void *ud)
{
    nf_ask_send(nc->conn, nf_nsconn_name(nc), room, event, body, binary, timeout_ms, cb, ud);
}
