/* internal.h - the protocol core's private structures and functions, shared
 * by the files that implement proto.h. Nothing outside host/core includes
 * this (spec/lint/layers.sh): the other layers use proto.h, exchange.h and
 * metrics.h.
 *
 * Who owns what (a struct's fields are written by its owner only):
 *   nf_host                      host.c (invocation.c: the handler timing)
 *   nf_endpoint                  endpoint.c (endpoint.h)
 *   nf_conn                      conn.c; its parts: turn (turn.c), barrier
 *                                (barrier.c), asks (ask.c), id (ids.c),
 *                                nsconns / deferred (namespace.c)
 *   nf_nsconn, nf_ns_index,
 *   nf_room_index, nf_room_member namespace.c
 *   nf_id_group                  ids.c
 *   nf_invocation                invocation.c (opaque)
 * Errors follow errors.h: 0 or a negative NF_E* code. */
#ifndef NF_INTERNAL_H
#define NF_INTERNAL_H

#include <stdint.h>
#include <time.h>

#include "clock.h"
#include "dict.h"
#include "endpoint.h"
#include "errors.h"
#include "list.h"
#include "metrics.h"
#include "proto.h"
#include "refusal.h"
#include "sock.h"
#include "tls.h"
#include "ws.h"

struct bufferevent;
struct evconnlistener;
struct event;
typedef struct nf_exchange nf_exchange;

struct nf_host {
    struct event_base *base;
    nf_limits limits;
    const nf_app_ops *ops;
    void *app;
    struct evconnlistener *listener;
    int port;
    struct evconnlistener *tls_listener;   /* --listen-tls, or NULL */
    int tls_port;
    nf_tls *tls;                     /* its certificate (main's, not owned), or NULL */
    nf_endpoint *endpoints;          /* mount order */
    nf_endpoint *retired;            /* unmounted, kept until the host is freed */
    char **allowed_origins;          /* NULL-terminated, or NULL = any */
    char *static_root;               /* realpath, or NULL */
    nf_list conns;                   /* every nf_conn, HTTP phase included (host_link) */
    size_t ws_count;                 /* open WebSocket connections */
    size_t conn_count;               /* every socket, HTTP phase included */
    nf_dict *per_ip;                 /* remote address -> count, when limited */
    uint64_t next_token;             /* server ask tokens: decimal, never '$' */
    struct event *sweep;             /* coarse timer for every timeout */
    char *unhealthy;                 /* reason, or NULL */
    bool draining;
    void (*drain_done)(void *);
    void *drain_ud;
    struct event *drain_timer;
    nf_metrics metrics;
    nf_refusal_log refusal_log[NF_REFUSAL_REASONS];
    unsigned handler_depth;          /* handler slices running, nested (nf_host_handler_enter) */
    uint64_t handler_since_us;       /* when the outermost one started */
    nf_exchange *exchange;           /* scale-out, or NULL */
    char *scratch;                   /* max_message_bytes: unescaped names while parsing */
    nf_list flushq;                  /* connections with output to write this iteration */
    struct event *flush_ev;          /* runs flush_all once per loop iteration */
    struct event *accept_resume;     /* re-enables the listener after an accept failure */
    uint64_t accept_failures;        /* since the last log line about them */
    uint64_t accept_logged_ms;       /* when that line was written (0 = never) */
    struct nf_linger *linger;        /* closed sockets discarding their last input */
    uint64_t trim_activity;          /* closes + deliveries at the last sweep (heap trim) */
    uint64_t trim_pending_ms;        /* since when memory may wait to go back; 0 = none */
    uint64_t trim_last_ms;           /* the last trim; 0 = none yet */
    const nf_host_hooks *hooks;      /* --workers N (nf_host_set_hooks), or NULL */
    void *hooks_ud;
};

/* Connections connected to one namespace of one endpoint, and its rooms. */
typedef struct nf_ns_index {
    nf_list members;                 /* nf_nsconn.index_link */
    size_t count;
    nf_dict *rooms;                  /* room name -> nf_room_index */
    size_t name_len;
    char name[];
} nf_ns_index;

typedef struct nf_room_index {
    nf_list members;                 /* nf_room_member.room_link */
    size_t count;
    size_t name_len;
    char name[];
} nf_room_index;

/* The open connections that share one ID (IDs need not be unique,
 * docs/protocol.md §17.2.5), in nf_endpoint.by_id. */
typedef struct nf_id_group {
    nf_list conns;                   /* nf_conn.id_link, oldest first */
    size_t count;
    size_t id_len;
    char id[];                       /* the dict key */
} nf_id_group;

typedef struct nf_room_member {
    nf_nsconn *nc;
    nf_room_index *room;
    nf_list room_link;               /* in nf_room_index.members */
    nf_list nc_link;                 /* in nf_nsconn.rooms, join order */
} nf_room_member;

struct nf_nsconn {
    nf_conn *conn;
    nf_ns_index *index;
    nf_list index_link;              /* in nf_ns_index.members */
    nf_list conn_link;               /* in nf_conn.nsconns */
    nf_list rooms;                   /* nf_room_member.nc_link */
    size_t room_count;
    void *app_data;
    bool disconnecting;
};

typedef enum nf_conn_state {
    NF_CONN_HTTP,                    /* reading the upgrade request */
    NF_CONN_OPEN,                    /* WebSocket open, waiting for "M" */
    NF_CONN_CONNECTING,              /* on_connect is running */
    NF_CONN_READY,                   /* acknowledged: messages flow */
    NF_CONN_CLOSING,                 /* close frame queued / HTTP answer sent: flushing */
    NF_CONN_CLOSED                   /* socket gone; waiting for the last reference */
} nf_conn_state;

typedef struct nf_deferred_connect nf_deferred_connect;
typedef struct nf_pending_ask nf_pending_ask;
typedef struct nf_job nf_job;

/* The connection's turn (turn.c): its handlers run one at a time. A turn
 * begins when a parked frame is dispatched, when "M" starts on_connect, or
 * when a forced action starts; every handler run, and every forced action
 * of the turn, holds it until it ends. Frames and forced actions from
 * outside the turn wait in `head` (FIFO) while it is held. */
typedef struct nf_turn {
    unsigned holds;                  /* runs + forced actions of the current turn; 0 = free */
    bool pumping;                    /* inside nf_turn_pump */
    unsigned completing;             /* inside a forced action's completion callback */
    nf_job *head, **tail;
    size_t frames;                   /* queued frames (--max-incoming-queue) */
    size_t bytes;                    /* queued frames with their job headers (--max-incoming-bytes) */
    size_t calls;                    /* queued forced actions */
} nf_turn;

/* The output barrier (barrier.c): frames after a connect/join reply wait
 * for the pong of a ping sent right behind it. */
#define NF_BARRIERS_MAX 8
#define NF_BARRIER_TIMEOUT_MS 2000   /* a client that never pongs is held at most this long, once */
typedef struct nf_barrier {
    struct evbuffer *held;           /* frames after the first unanswered ping, or NULL */
    unsigned count;                  /* unanswered pings */
    uint32_t next_seq;
    uint32_t seq[NF_BARRIERS_MAX];
    size_t upto[NF_BARRIERS_MAX];    /* k >= 1: held bytes from the end of ping k-1 to the end of ping k */
    uint64_t since_ms;               /* when the first unanswered ping was queued */
    bool off;                        /* a ping went unanswered: no more barriers */
} nf_barrier;

struct nf_conn {
    nf_host *host;
    nf_endpoint *ep;                 /* NULL until upgraded */
    struct bufferevent *bev;
    nf_sock sock;                    /* the transport after the upgrade (sock.h); the bev's fd */
    struct event *read_ev;           /* the socket readable, once a WebSocket (conn_ws_read_cb) */
    nf_ws *ws;
    nf_request *req;
    unsigned refs;
    nf_conn_state state;
    bool on_connect_ran;
    bool torn_down;
    bool peer_gone;                  /* the socket saw EOF or an error: close it, no lingering */
    bool counted_ip;
    bool ws_done;                    /* the WebSocket has nothing more to read or write */
    bool answered_handshake;         /* "A" or "H" was sent */
    bool write_armed;                /* a write was short: write_ev waits for the socket */
    bool read_paused;                /* output over the bound: socket not read (back-pressure) */
    bool tls;                        /* a TLS bufferevent (tls.h); sock is the TLS transport */
    bool tls_ready;                  /* its handshake is complete (BEV_EVENT_CONNECTED) */
    nf_list flush_link;              /* in nf_host.flushq */
    struct event *write_ev;          /* EV_WRITE on the socket, made at the first short write */
    char *id;
    size_t id_len;
    char *id_shown;                  /* the ID as log lines show it (escaped, cut) */
    const char *id_refusal;          /* the "H" text when the ID was refused, else NULL */
    nf_list id_link;                 /* in nf_id_group.conns */
    nf_list host_link;
    nf_list ep_link;
    nf_list nsconns;
    size_t nsconn_count;
    size_t name_bytes;               /* namespace and room names held (--max-name-bytes-per-conn) */
    nf_list asks;                    /* nf_pending_ask.link */
    size_t ask_count;
    nf_deferred_connect *deferred;   /* forced connects asked for before "A" */
    nf_turn turn;                    /* ordering of handler runs (turn.c) */
    nf_barrier barrier;              /* output held until a pong (barrier.c) */
    uint64_t last_read_ms;
    uint64_t output_stall_ms;        /* when output became non-empty; 0 = empty */
    uint64_t opened_ms;
    uint64_t serial;                 /* nf_conn_serial: unique in the process, in opening order */
    uint64_t close_deadline_ms;
    uint64_t rate_window_ms;
    unsigned rate_count;
    uint32_t limits_logged;          /* one bit per limit: log once per connection */
    unsigned budget_overruns;        /* handler runs in a row over the instruction limit */
    void *app_data;
    char remote[64];
};

/* Bits of nf_conn.limits_logged. */
enum { NF_LIMIT_OUTGOING = 1, NF_LIMIT_INBOX = 2, NF_LIMIT_RATE = 4, NF_LIMIT_NAMESPACES = 8,
       NF_LIMIT_ROOMS = 16, NF_LIMIT_ASKS = 32, NF_LIMIT_INBOX_BYTES = 64 };
/* Name bounds: high bits, clear of the others. */
enum { NF_LIMIT_NAME = 1u << 16, NF_LIMIT_NAMES_PER_CONN = 1u << 17, NF_LIMIT_BUDGET = 1u << 18 };

/* time: nf_now_ms(), see clock.h */

/* conn.c */
/* tls: bev is a TLS bufferevent (nf_tls_accept) still in its handshake. */
nf_conn *nf_conn_new(nf_host *h, struct bufferevent *bev, const char *remote, bool tls);
void nf_conn_upgraded(nf_conn *c, nf_endpoint *ep);
void nf_conn_on_ws_message(void *ud, bool binary, const uint8_t *data, size_t len);
void nf_conn_teardown(nf_conn *c);
void nf_conn_limit_hit(nf_conn *c, uint32_t bit, const char *what);
/* Send a message (docs/protocol.md §4) / the empty reply to a wait token
 * (§17.1.4). Return 0; NF_EPIPE when the connection cannot write (not open,
 * closing, or its output over --max-outgoing-bytes: it is then closing with
 * 1008); NF_ENOMEM. */
int nf_conn_send_msg(nf_conn *c, const nf_msg *m, bool binary);
int nf_conn_send_empty_reply(nf_conn *c, nf_slice token);
void nf_conn_sweep(nf_conn *c, uint64_t now);
bool nf_conn_can_write(nf_conn *c);
/* False (and the connection closing with 1008) once its output queue is over the limit. */
bool nf_conn_output_has_room(nf_conn *c);
/* After a handler ended: closes c with 1001 if the host drains and nothing
 * holds it any more, else starts what waits for its turn. */
void nf_conn_drain(nf_conn *c);
/* The host starts draining: closes c with 1001 unless a handler holds it
 * (nf_conn_drain closes it when that ends); drops it in the HTTP phase. */
void nf_conn_shutdown(nf_conn *c);
/* The HTTP phase (host.c) reads and answers through these. */
struct evbuffer *nf_conn_input(nf_conn *c);
/* The socket's output; NULL once the socket is gone (teardown). */
struct evbuffer *nf_conn_output(nf_conn *c);
nf_host *nf_conn_host(const nf_conn *c);
/* The WebSocket, NULL before the upgrade and after teardown. */
nf_ws *nf_conn_ws(const nf_conn *c);
/* Upgraded, handshake not done: waiting for "M" or running on_connect. */
bool nf_conn_is_handshaking(const nf_conn *c);
/* c keeps req (freed with c). */
void nf_conn_set_request(nf_conn *c, nf_request *req);
/* Frames pipelined behind the upgrade request: read them (deferred). */
void nf_conn_read_pipelined(nf_conn *c);
/* Dispatches one client frame (docs/protocol.md §6); the caller holds the turn. */
void nf_conn_dispatch(nf_conn *c, bool binary, const char *data, size_t len);
void nf_conn_want_flush(nf_conn *c);
/* Writes the output of every connection that asked (nf_conn_want_flush):
 * one writev each, once per loop iteration (the host's flush event). */
void nf_conn_flush_all(nf_host *h);
/* The HTTP answer is in the output: stop reading, close once it is written,
 * or when the deadline of `kind` passed (a client that does not read it). */
typedef enum nf_conn_answer { NF_CONN_ANSWER_SHORT, NF_CONN_ANSWER_FILE } nf_conn_answer;
void nf_conn_end_http(nf_conn *c, nf_conn_answer kind);
/* Upgrade of an HTTP connection to ep (RFC 6455 4.2.2): asks the app for
 * its ID (generate_id sees ep), then makes the WebSocket. Returns 0, or
 * NF_ENOMEM (the connection stays in the HTTP phase: answer it 503). The
 * caller queues the 101 answer, then calls nf_conn_upgraded. */
int nf_conn_upgrade(nf_conn *c, nf_endpoint *ep);

/* namespace.c: namespaces and rooms, client requests and forced actions */
/* False (the frame answered with an error if it waits, else dropped) when
 * one of its names is over --max-name-bytes: checked before any lookup. */
bool nf_ns_admit_names(nf_conn *c, const nf_msg *m, bool binary);
void nf_ns_handle_connect(nf_conn *c, const nf_msg *m, bool binary);
void nf_ns_handle_disconnect(nf_conn *c, const nf_msg *m, bool binary);
void nf_ns_handle_join(nf_conn *c, nf_nsconn *nc, const nf_msg *m, bool binary);
void nf_ns_handle_leave(nf_conn *c, nf_nsconn *nc, const nf_msg *m, bool binary);
void nf_ns_close_all(nf_conn *c);
nf_nsconn *nf_ns_attach(nf_conn *c, nf_slice ns);
void nf_ns_run_deferred(nf_conn *c);
void nf_ns_free_deferred(nf_conn *c);
/* The forced connect of nf_conn_connect (proto.h). */
void nf_ns_connect(nf_conn *c, nf_slice ns, nf_done_cb cb, void *ud);

/* ids.c: connection IDs */
/* Asks the app for c's ID on ep (generate_id); a refused ID leaves an empty
 * one and c->id_refusal. Returns 0, or NF_ENOMEM. */
int nf_ids_assign(nf_conn *c, nf_endpoint *ep);
/* Adds c to / removes it from its endpoint's index (remove: if it is in).
 * nf_ids_add returns 0 or NF_ENOMEM. */
int nf_ids_add(nf_conn *c);
void nf_ids_remove(nf_conn *c);
/* nf_endpoint_find / nf_endpoint_each_with_id (proto.h) over the index. */
nf_conn *nf_ids_find(nf_endpoint *ep, nf_slice id);
void nf_ids_each(nf_endpoint *ep, nf_slice id, bool (*fn)(void *ud, nf_conn *c), void *ud);

/* turn.c: one handler at a time per connection (docs/architecture.md, "Ordering") */
typedef void (*nf_turn_call)(void *ud, bool go);   /* go: the turn is held for you; !go: give up */
bool nf_turn_busy(const nf_conn *c);
void nf_turn_hold(nf_conn *c);
/* Ends one hold; the turn ends with the last, and what waits starts. */
void nf_turn_release(nf_conn *c);
/* Parks a frame of the client. Returns 0; NF_ENOBUFS when a bound is hit
 * (the connection is then closing with 1008 "incoming queue full");
 * NF_ENOMEM (closing with 1011). */
int nf_turn_park_frame(nf_conn *c, bool binary, const uint8_t *data, size_t len);
/* Runs fn(ud, true) with the turn held for it: now if the turn is free,
 * else when its turn comes. fn(ud, false) if it has waited ask_timeout_ms
 * (two connections forcing actions on each other would wait forever) or
 * the connection closes first. */
void nf_turn_call_later(nf_conn *c, nf_turn_call fn, void *ud);
/* Starts what waits, while the turn is free. */
void nf_turn_pump(nf_conn *c);
void nf_turn_sweep(nf_conn *c, uint64_t now);
/* Teardown: parked frames are dropped, waiting calls given up. */
void nf_turn_clear(nf_conn *c);
/* Is the handler running now one of c's (a forced action it asks for is
 * part of its turn)? */
bool nf_turn_is_current(nf_conn *c);
/* Around a forced action's completion callback: what it asks of c next is
 * part of the turn (nf_turn_is_current). */
void nf_turn_completion_begin(nf_conn *c);
void nf_turn_completion_end(nf_conn *c);

/* barrier.c: output held after a connect/join reply until the pong */
void nf_barrier_add(nf_conn *c);
void nf_barrier_pong(nf_conn *c, const uint8_t *payload, size_t len);
void nf_barrier_release_all(nf_conn *c);
void nf_barrier_sweep(nf_conn *c, uint64_t now);
size_t nf_barrier_held_bytes(const nf_conn *c);
void nf_barrier_free(nf_conn *c);

/* broadcast.c: fan-out, listings, asks by ID, and the scale-out
 * subscription hooks; the nf_endpoint_* entries of proto.h call these. */
void nf_broadcast_ns_connected(nf_nsconn *nc);      /* after a namespace connected */
void nf_broadcast_ns_disconnected(nf_nsconn *nc);   /* before it is detached */
size_t nf_broadcast_local(nf_endpoint *ep, const nf_broadcast *b);
size_t nf_broadcast_publish(nf_endpoint *ep, const nf_broadcast *b);
void nf_broadcast_each(nf_endpoint *ep, bool (*fn)(void *ud, nf_conn *c), void *ud);
void nf_broadcast_each_member(nf_endpoint *ep, nf_slice ns, nf_slice room,
                              bool (*fn)(void *ud, nf_nsconn *nc), void *ud);
/* remote: also ask the other processes (false for an ask that came from one). */
void nf_broadcast_ask(nf_endpoint *ep, bool remote, nf_slice to, nf_slice ns, nf_slice room, nf_slice event,
                      nf_slice body, bool binary, unsigned timeout_ms, nf_ask_cb cb, void *ud);

/* ask.c */
void nf_ask_send(nf_conn *c, nf_slice ns, nf_slice room, nf_slice event, nf_slice body, bool binary,
                 unsigned timeout_ms, nf_ask_cb cb, void *ud);
bool nf_ask_deliver(nf_conn *c, const nf_msg *reply);
void nf_ask_cancel_all(nf_conn *c);
/* Fails with NF_ASK_TIMEOUT the asks whose deadline is <= now (the host's sweep). */
void nf_ask_expire(nf_conn *c, uint64_t now);
/* Writes the next server token (decimal) into buf (>= 21 bytes); returns its length. */
size_t nf_ask_token_next(nf_host *h, char *buf);

/* invocation.c */
typedef void (*nf_invocation_cont)(nf_invocation *inv, nf_result result, const char *data, size_t len);
/* A handler run on c of the message m (NULL for hooks: empty), flags a set
 * of nf_invocation_flag (proto.h; a call site names them, NF_INV_LOCAL |
 * NF_INV_FORCED, instead of a row of positional booleans). The invocation keeps copies of m's token and names
 * and lends its body (valid during invoke() only); it holds a reference to
 * c until nf_invocation_finish() frees it. Returns NULL when out of memory. */
nf_invocation *nf_invocation_new(nf_invocation_kind kind, nf_conn *c, const nf_msg *m, unsigned flags);
void nf_invocation_set_cont(nf_invocation *inv, nf_invocation_cont cont, void *cont_ud);
void *nf_invocation_cont_ud(const nf_invocation *inv);
void nf_invocation_run(nf_invocation *inv);
/* Frees this thread's recycled invocations (the pool is per thread). */
void nf_invocation_pool_release(void);
/* Fires a notification event (result ignored); flags as nf_invocation_new. */
void nf_invocation_notify(nf_conn *c, nf_slice ns, nf_slice room, const char *event, unsigned flags);

extern const nf_ws_callbacks nf_conn_ws_callbacks;

/* host.c */
void nf_host_http_read(nf_conn *c);
void nf_host_conn_gone(nf_host *h, nf_conn *c);

#endif
