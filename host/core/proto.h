/* proto.h - the neffos protocol core: endpoints, connections, namespaces,
 * rooms, asks and broadcast (docs/protocol.md §4, §6 to §12).
 *
 * The core knows nothing of Lua. It runs application code through the small
 * nf_app_ops interface below, which bindings/ implements; a plain C test can
 * implement it too.
 *
 * Threading: everything runs on one libevent loop. No function here blocks.
 *
 * Ownership: the core owns every nf_conn, nf_nsconn and nf_invocation. The
 * application may keep a pointer to a connection only while holding a
 * reference (nf_conn_ref / nf_conn_unref); a closed connection stays valid
 * (nf_conn_is_closed() is true) until its last reference goes. An nf_nsconn
 * pointer is valid only until the namespace disconnects: look it up again
 * with nf_conn_namespace() after anything that waited.
 *
 * Errors (docs/architecture.md, "Errors"): a function that can fail returns
 * 0 or a negative NF_E* code (errors.h, nf_strerror names it), as its
 * comment lists; predicates return bool, counts a size_t. */
#ifndef NF_PROTO_H
#define NF_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "errors.h"
#include "http.h"
#include "nf_limits.h"

struct event_base;

typedef struct nf_host nf_host;             /* the process: loop, listeners, endpoints */
typedef struct nf_endpoint nf_endpoint;     /* one neffos server mounted on one path */
typedef struct nf_conn nf_conn;             /* one WebSocket connection */
typedef struct nf_nsconn nf_nsconn;         /* a connection's membership of one namespace */
typedef struct nf_invocation nf_invocation; /* one run of an application handler */

/* ---- what the application implements ------------------------------------ */

typedef enum nf_invocation_kind {
    NF_INVOKE_CONNECT,     /* on_connect hook, when the client sent "M" (native: at upgrade);
                              a decision: NF_RESULT_ERROR refuses with the text */
    NF_INVOKE_DISCONNECT,  /* on_disconnect hook: exactly once for every connection whose
                              CONNECT invocation ran, refused ones included */
    NF_INVOKE_EVENT        /* an event of a namespace: system events (_OnNamespaceConnect ...)
                              and application events alike */
} nf_invocation_kind;

typedef enum nf_result {
    NF_RESULT_NONE = 0,    /* no answer */
    NF_RESULT_REPLY,       /* answer with a body (may be empty) */
    NF_RESULT_ERROR        /* answer with an error text (never sent empty: "error" instead) */
} nf_result;

/* What generate_id returns besides a length. */
enum {
    NF_ID_DEFAULT = 0,     /* no choice: a random UUID v4 */
    NF_ID_EMPTY = -1,      /* the app chose "" (a "To" of "" means everybody): refused */
    NF_ID_TOO_LONG = -2,   /* more than cap (--max-id-bytes) bytes: refused */
    NF_ID_FAILED = -3,     /* the app's generator failed (it logged why): refused */
    NF_ID_NOT_UTF8 = -4    /* set by the core: the "A" frame is text */
};

typedef struct nf_app_ops {
    /* Is namespace `ns` declared on this endpoint? Called for client connects. */
    bool (*has_namespace)(void *app, nf_endpoint *ep, nf_slice ns);

    /* Writes a connection ID for a new connection into id[0..cap) and returns
     * its length, or NF_ID_DEFAULT (a random UUID v4), or a negative NF_ID_*
     * code: the connection is then refused with a clear "H" text (docs/protocol.md
     * §17.2.5). It runs before the upgrade: ep is the endpoint the request
     * names (c joins it only once upgraded, so nf_conn_endpoint(c) is still
     * NULL); the request is available through nf_conn_request(c). Any bytes
     * are an ID, used as they are (the core refuses invalid UTF-8); IDs need
     * not be unique. */
    long (*generate_id)(void *app, nf_endpoint *ep, nf_conn *c, char *id, size_t cap);

    /* Runs a handler. The application MUST call nf_invocation_finish() exactly
     * once for every invocation, synchronously or later (a waiting coroutine).
     * The message slices are valid only until invoke() returns: copy them. */
    void (*invoke)(void *app, nf_invocation *inv);

    /* A connection is being freed: drop whatever the application attached. */
    void (*conn_freed)(void *app, nf_conn *c);

    /* The invocation whose handler code runs right now (a resumed, waiting
     * handler included), or NULL (a timer, nothing). A forced action that a
     * handler asks of its own connection is part of that handler's turn;
     * one asked from anywhere else waits for the connection's turn. May be
     * NULL: every forced action then waits for the turn. */
    nf_invocation *(*current)(void *app);

    /* A connection whose request reached endpoint ep was refused (a bad
     * upgrade, its origin, its ID, on_connect, no "M" in time): reason is the
     * refusal's metric label (neffos_refusals_total{reason}), what the text
     * logged. Called for every refusal, after it was counted; c is closing
     * and must not be used beyond its request. May be NULL. Refusals before
     * a request is read (connection limits at accept) name no endpoint and
     * are not told. */
    void (*refused)(void *app, nf_endpoint *ep, nf_conn *c, const char *reason, const char *what);

    /* The server went quiet after connections closed or queues drained, and
     * is about to give free memory back to the system: free what garbage
     * the application holds first (it pins the heap's pages). May be NULL. */
    void (*trim)(void *app);
} nf_app_ops;

/* ---- invocations ----------------------------------------------------------- */

nf_invocation_kind nf_invocation_kind_of(const nf_invocation *inv);
nf_conn *nf_invocation_conn(const nf_invocation *inv);
/* The namespace connection the event belongs to; NULL for hooks, and for
 * _OnNamespaceConnect before the namespace is connected. */
nf_nsconn *nf_invocation_nsconn(const nf_invocation *inv);
nf_endpoint *nf_invocation_endpoint(const nf_invocation *inv);
/* The message: ns, room, event, body, wait, is_error. Empty for hooks. */
const nf_msg *nf_invocation_msg(const nf_invocation *inv);
/* How the run came about, by name: a set of these bits. */
typedef enum nf_invocation_flag {
    NF_INV_LOCAL = 1,                /* asked by the server (a forced action), not by the client */
    NF_INV_FORCED = 2,               /* part of a close: the handler's answer is ignored */
    NF_INV_NATIVE = 4,               /* a raw WebSocket message of a native client (docs/protocol.md §8) */
    NF_INV_BINARY = 8                /* the message came in a binary frame */
} nf_invocation_flag;
unsigned nf_invocation_flags(const nf_invocation *inv);
bool nf_invocation_is_local(const nf_invocation *inv);
bool nf_invocation_is_forced(const nf_invocation *inv);
bool nf_invocation_is_native(const nf_invocation *inv);
bool nf_invocation_is_binary(const nf_invocation *inv);
/* True when the result decides something (connect hook, client requests,
 * events that can be answered); false for notifications such as
 * _OnNamespaceConnected or the forced events of a close. */
bool nf_invocation_wants_result(const nf_invocation *inv);

/* Completes an invocation; data is copied. Frees inv. An NF_RESULT_ERROR
 * counts in neffos_handler_errors_total, whatever produced it. */
void nf_invocation_finish(nf_invocation *inv, nf_result result, const char *data, size_t len);

/* neffos_handler_seconds_total is the time spent inside handler code, every
 * slice of it: the host times the first slice (invoke); an app that resumes
 * a handler later, after a wait, brackets that slice with these two. Nested
 * slices (a handler whose call runs another one) count once. */
void nf_host_handler_enter(nf_host *h);
void nf_host_handler_leave(nf_host *h);

/* ---- the host ---------------------------------------------------------------- */

nf_host *nf_host_new(struct event_base *base, const nf_limits *limits,
                     const nf_app_ops *ops, void *app);
void nf_host_free(nf_host *h);
struct event_base *nf_host_base(nf_host *h);
const nf_limits *nf_host_limits(const nf_host *h);
/* The `app` given to nf_host_new. */
void *nf_host_app(const nf_host *h);

/* Listens on HOST:PORT (IPv4, IPv6 in brackets, or a name). Returns 0; on
 * failure a negative errno value (NF_EINVAL for a name that does not
 * resolve, -EADDRINUSE, -EACCES ...) and a message such as "127.0.0.1:8080:
 * address already in use" in err. */
int nf_host_listen(nf_host *h, const char *host, int port, char *err, size_t errcap);
/* The port actually bound (useful with port 0). */
int nf_host_port(const nf_host *h);

struct nf_tls;
/* Listens on HOST:PORT for TLS (https://, wss://) with tls's certificate
 * (host/tls/tls.h; the caller keeps tls alive as long as h, and reloads
 * it). Beside nf_host_listen or instead of it: the two listeners serve the
 * same endpoints. Returns as nf_host_listen. */
int nf_host_listen_tls(nf_host *h, const char *host, int port, struct nf_tls *tls, char *err, size_t errcap);
/* The TLS port actually bound, 0 if none. */
int nf_host_tls_port(const nf_host *h);

/* Adopts an already-connected stream socket as a new connection: the accept
 * path without accept(2) (the connection limits apply; fd is made
 * non-blocking and owned from here on, closed on every error). The
 * connection starts in the HTTP phase. *out (may be NULL) gets the
 * connection, valid until it closes unless referenced (nf_conn_ref).
 * Returns 0, -EAGAIN (over --max-connections or the per-address limit),
 * -EINVAL or -ENOMEM. Tests use one end of a socketpair(AF_UNIX). */
int nf_host_adopt(nf_host *h, int fd, const char *remote, nf_conn **out);
/* nf_host_adopt of a socket a TLS listener accepted: the TLS handshake
 * comes first, with tls's certificate (--workers N: another worker's TLS
 * listener handed it over). */
int nf_host_adopt_tls(nf_host *h, int fd, const char *remote, struct nf_tls *tls, nf_conn **out);
/* The process's certificate on a host that does not listen itself
 * (--workers N): /metrics then shows its reloads and expiry, from whichever
 * worker answers. nf_host_listen_tls sets it on the host that listens. */
void nf_host_set_tls(nf_host *h, struct nf_tls *tls);

/* Runs the timeout sweep once, at nf_now_ms() (clock.h): server asks past
 * their deadline, then the handshake, read, write and close-grace deadlines.
 * The host runs the latter every 250 ms on its own (docs/protocol.md §12.4),
 * and each server ask has an exact timer of its own; this call is how a
 * test with a manual clock fires any of them. */
void nf_host_sweep(nf_host *h);
/* Changes how often the host sweeps by itself; 0 stops it (a test with a
 * manual clock then calls nf_host_sweep). Returns 0 or -ENOMEM. */
int nf_host_sweep_every(nf_host *h, unsigned ms);

/* What the host's tables hold now: read-only, for tests and the fuzzer. */
typedef struct nf_host_stats {
    size_t sockets;        /* every connection, HTTP phase included */
    size_t websockets;     /* upgraded ones */
    size_t addresses;      /* per-address counters (--max-connections-per-ip) */
    size_t ids;            /* connection-ID index entries, all endpoints */
    size_t namespaces;     /* namespace indexes with members, all endpoints */
    size_t rooms;          /* room indexes with members, all namespaces */
} nf_host_stats;
void nf_host_get_stats(const nf_host *h, nf_host_stats *out);

/* ---- workers (--workers N): the seams of a process of several hosts ----------
 * Each worker is one host on its own loop and thread; these let the layer
 * that joins them (host/cluster/workers.h) share one listener and
 * answer /metrics for the whole process. A host without hooks is a process
 * of its own (the default). */
typedef struct nf_host_hooks {
    /* A socket this host's listener accepted (tls: its TLS listener's
     * certificate, NULL for the plain one): true when it was handed to
     * another host (which adopts it with nf_host_adopt_tls), false to admit
     * it here. */
    bool (*accepted)(void *ud, nf_host *h, int fd, const char *remote, struct nf_tls *tls);
    /* GET or HEAD /metrics: true when the answer will be given later, with
     * nf_host_answer_metrics (the connection is held meanwhile). */
    bool (*metrics)(void *ud, nf_host *h, nf_conn *c, bool head);
    /* Optional, together: --max-connections and --max-connections-per-ip
     * for the whole process. admit counts a new socket from address ip
     * and returns 0, or NF_EAGAIN over --max-connections, NF_EEXIST over
     * the per-address limit (nothing counted); gone releases one. */
    int (*admit)(void *ud, const char *ip);
    void (*gone)(void *ud, const char *ip);
    /* Optional: the loop iteration's writes to the sockets are about to
     * leave; what the hook sends elsewhere now leaves before them (a
     * client that reads them and then acts finds it sent). */
    void (*flushing)(void *ud);
} nf_host_hooks;
void nf_host_set_hooks(nf_host *h, const nf_host_hooks *hooks, void *ud);

struct nf_metrics;
/* This host's counters and gauges, a copy (its loop's thread only). */
void nf_host_metrics_snapshot(const nf_host *h, struct nf_metrics *m, size_t *connections, size_t *endpoints);
/* This host's counters (metrics.h), for the layers beside the core to
 * count their own in: the loop that runs it (the idle polling of
 * --busy-poll-us), host/cluster (the exchange_* and worker_* lines, which
 * metrics.h assigns to it). Valid as long as h; its loop's thread only. */
struct nf_metrics *nf_host_metrics(nf_host *h);
/* A counter that grows with the input this host handled: WebSocket messages,
 * HTTP requests, calls from other workers, broker messages. For
 * nf_loop_run()'s spin (loop.h); arg is the nf_host. May wrap. */
uint64_t nf_host_activity(void *arg);
/* Answers a /metrics request held by the metrics hook: m rendered, then
 * `extra` (more exposition lines, may be NULL). Does nothing if c closed
 * meanwhile. Releases the hold (the reference the hook took). */
void nf_host_answer_metrics(nf_conn *c, bool head, const struct nf_metrics *m, size_t connections,
                            size_t endpoints, const char *extra);
/* Frees this thread's recycled objects (input buffers, invocations,
 * permessage-deflate's compressors: the pools are per thread); a worker
 * thread calls this as it ends. */
void nf_host_thread_exit(void);

/* Serves static files from `root` for GET/HEAD requests that match no
 * endpoint. NULL disables it. */
void nf_host_set_static_root(nf_host *h, const char *root);

/* Total open WebSocket connections, all endpoints. */
size_t nf_host_connection_count(const nf_host *h);

/* Graceful stop: refuse new connections, close every connection with 1001,
 * call done(ud) when all are gone or grace_ms passed. */
void nf_host_drain(nf_host *h, unsigned grace_ms, void (*done)(void *ud), void *ud);
/* True from nf_host_drain on: h admits no new socket (--workers N hands
 * none to a draining worker). Its loop's thread only. */
bool nf_host_is_draining(const nf_host *h);

/* Comma-separated list of allowed Origin values ("*" = any); NULL or ""
 * allows every origin. Requests without an Origin header are allowed. */
void nf_host_set_allowed_origins(nf_host *h, const char *csv);

/* Health: a failing reason turns /health into 503 with that reason (NULL = healthy). */
void nf_host_set_unhealthy(nf_host *h, const char *reason);
/* Counts a hot reload of the app in neffos_reloads_total{result=ok|failed}. */
void nf_host_count_reload(nf_host *h, bool ok);

typedef struct nf_endpoint_config {
    bool native_only;            /* no handshake, every frame goes to _OnNativeMessage of "" */
    unsigned read_timeout_ms;    /* 0 = none; any data frame or ping counts as activity */
    unsigned write_timeout_ms;   /* 0 = none; output pending longer than this closes the conn */
} nf_endpoint_config;

/* Mounts an endpoint at path (e.g. "/echo"). Returns NULL if the path is
 * taken or memory ran out (an exception to errors.h's rule, kept for its
 * callers; nf_host_find_endpoint tells the two apart). */
nf_endpoint *nf_host_add_endpoint(nf_host *h, const char *path, const nf_endpoint_config *cfg);
nf_endpoint *nf_host_find_endpoint(nf_host *h, const char *path);
/* Changes an endpoint's configuration in place (used by reload). */
void nf_endpoint_configure(nf_endpoint *ep, const nf_endpoint_config *cfg);
/* Unmounts at once: new requests for the path get 404 (or another endpoint
 * mounted there later). Every connection of the endpoint is sent a close
 * frame 1001 "endpoint removed"; their teardown (forced leave/disconnect
 * events, NF_INVOKE_DISCONNECT) happens later, when the close handshake ends
 * or its grace period runs out, through the same nf_app_ops. The endpoint
 * itself stays allocated (and its app data untouched) until nf_host_free, so
 * pointers held by those invocations stay valid. */
void nf_host_remove_endpoint(nf_host *h, nf_endpoint *ep);
/* Iterates endpoints in mount order; returns NULL after the last. */
nf_endpoint *nf_host_endpoint_next(nf_host *h, nf_endpoint *prev);

const char *nf_endpoint_path(const nf_endpoint *ep);
nf_host *nf_endpoint_host(nf_endpoint *ep);
void *nf_endpoint_app_data(nf_endpoint *ep);
void nf_endpoint_set_app_data(nf_endpoint *ep, void *data);

/* ---- server-level operations ------------------------------------------------- */

/* Open WebSocket connections of ep's path in the whole process (with
 * --workers N every worker's: the exchange's count, exchange.h). */
size_t nf_endpoint_connection_count(const nf_endpoint *ep);
/* Those of ep alone, on its host (what an exchange's count adds to). */
size_t nf_endpoint_own_count(const nf_endpoint *ep);
/* The open connection with this ID that connected last, or NULL. IDs need
 * not be unique (docs/protocol.md §17.2.5). */
nf_conn *nf_endpoint_find(nf_endpoint *ep, nf_slice id);
/* Calls fn for every open connection with this ID, oldest first (a
 * snapshot: closes during the walk are safe). Stops when fn returns false. */
void nf_endpoint_each_with_id(nf_endpoint *ep, nf_slice id, bool (*fn)(void *ud, nf_conn *c), void *ud);

/* Calls fn for every open connection (a snapshot: closes during the walk are
 * safe). Stops early when fn returns false. */
void nf_endpoint_each(nf_endpoint *ep, bool (*fn)(void *ud, nf_conn *c), void *ud);
/* Calls fn for every connection connected to namespace ns (and, if room is
 * non-empty, joined to room). Local to this process. */
void nf_endpoint_each_member(nf_endpoint *ep, nf_slice ns, nf_slice room,
                             bool (*fn)(void *ud, nf_nsconn *nc), void *ud);

typedef struct nf_broadcast {
    nf_slice ns, room, event, body;
    bool binary;
    bool native;              /* the frame is the body alone (a native message,
                               * docs/protocol.md §11), as Go writes one */
    nf_slice to;              /* non-empty: only the connections with this ID */
    const nf_conn *except;    /* NULL or the connection to skip */
    nf_slice except_id;       /* or skip every connection with this ID (empty = none) */
} nf_broadcast;

/* Delivers to every matching connection: namespace connected, room joined
 * (if set), ID equal to `to` (if set), not the excepted one. A name over
 * --max-name-bytes matches nobody: nothing is delivered or published. The frame is
 * serialized once and its bytes shared by all receivers. Reliable and in
 * order per receiver. With a scale-out exchange, also published to the other
 * processes. Returns the number of local receivers. */
size_t nf_endpoint_broadcast(nf_endpoint *ep, const nf_broadcast *b);

/* ---- asks and completions ---------------------------------------------------- */

typedef enum nf_ask_status {
    NF_ASK_OK = 0,        /* reply->body is the answer */
    NF_ASK_REMOTE_ERROR,  /* reply->body is the error text */
    NF_ASK_TIMEOUT,
    NF_ASK_CLOSED,        /* connection closed or namespace gone */
    NF_ASK_NOT_FOUND      /* no such connection / namespace not connected */
} nf_ask_status;

typedef void (*nf_ask_cb)(void *ud, nf_ask_status status, const nf_msg *reply);

/* Completion of a server-driven action (connect, disconnect, join, leave):
 * err is NULL on success, else the error text (e.g. the client's refusal). */
typedef void (*nf_done_cb)(void *ud, const char *err, size_t errlen);

/* Server ask by ID (server-wide; across processes when an exchange is
 * configured): every connection with that ID connected to ns is asked, as
 * Go's Server.Ask does, and the first answer (an error answer included)
 * completes the ask; later answers are dropped. Without any answer, cb gets
 * the most telling failure: NF_ASK_TIMEOUT, else NF_ASK_CLOSED, else
 * NF_ASK_NOT_FOUND. cb is always called exactly once, possibly before this
 * returns. timeout_ms 0 means the endpoint's default ask timeout. */
void nf_endpoint_ask(nf_endpoint *ep, nf_slice to, nf_slice ns, nf_slice room, nf_slice event,
                     nf_slice body, bool binary, unsigned timeout_ms, nf_ask_cb cb, void *ud);

/* ---- connections ------------------------------------------------------------- */

void nf_conn_ref(nf_conn *c);
void nf_conn_unref(nf_conn *c);

nf_slice nf_conn_id(const nf_conn *c);
nf_endpoint *nf_conn_endpoint(nf_conn *c);
/* A number naming this connection in the whole process (every worker's host
 * draws from one counter), larger for a connection opened later; never 0.
 * With --workers N it is how one worker names another's connection. */
uint64_t nf_conn_serial(const nf_conn *c);
const nf_request *nf_conn_request(const nf_conn *c);
bool nf_conn_is_closed(const nf_conn *c);
bool nf_conn_is_acknowledged(const nf_conn *c);
int nf_conn_reconnect_tries(const nf_conn *c);
/* The peer's address as text ("127.0.0.1:53412"). */
const char *nf_conn_remote_addr(const nf_conn *c);

/* What one connection holds now: read-only, for tests and the fuzzer. */
typedef struct nf_conn_stats {
    size_t output_bytes;   /* queued for the socket, not yet written */
    size_t inbox_frames;   /* parked while a handler waits (--max-incoming-queue) */
    size_t inbox_bytes;    /* their bytes, 5 bytes of framing each included */
    size_t namespaces;     /* connected namespaces */
    size_t rooms;          /* joined rooms, all namespaces */
    size_t max_rooms;      /* the most rooms joined in one namespace */
    size_t asks;           /* server asks waiting for an answer */
    bool closed;           /* the socket is gone */
} nf_conn_stats;
void nf_conn_get_stats(const nf_conn *c, nf_conn_stats *out);

/* A slot the application may use (e.g. a Lua registry reference). */
void *nf_conn_app_data(const nf_conn *c);
void nf_conn_set_app_data(nf_conn *c, void *data);

/* The connection's membership of ns, or NULL if not connected. */
nf_nsconn *nf_conn_namespace(nf_conn *c, nf_slice ns);
/* Iterates connected namespaces; NULL after the last. */
nf_nsconn *nf_conn_namespace_next(nf_conn *c, nf_nsconn *prev);

/* Server-initiated namespace connect (docs/protocol.md §7.3). If called before the
 * handshake completed (e.g. from on_connect) the request is sent right after
 * the "A" frame. cb may be NULL. A name over the bounds fails at once with
 * NF_ERR_NAME_TOO_LONG / NF_ERR_NAMES_TOO_LONG. */
void nf_conn_connect(nf_conn *c, nf_slice ns, nf_done_cb cb, void *ud);

/* Sends a close frame with code and reason, then closes. The local forced
 * events and on_disconnect run once the connection is gone. */
void nf_conn_close(nf_conn *c, uint16_t code, nf_slice reason);

/* The app tells how one of c's handler runs ended: overran = it hit the
 * app's instruction limit. After --max-budget-overruns such runs in a row
 * (a run that finished resets the count) c is closed with 1008 "handler
 * budget exceeded" and neffos_limit_hits_total{limit="handler_budget"}. */
void nf_conn_budget_result(nf_conn *c, bool overran);

/* Writes a raw (native) frame, no neffos framing. Returns 0; NF_EPIPE if
 * closed or the outgoing queue is full (errors.h); NF_ENOMEM. */
int nf_conn_write_raw(nf_conn *c, bool binary, const char *data, size_t len);

/* ---- namespace connections ------------------------------------------------------- */

nf_conn *nf_nsconn_conn(nf_nsconn *nc);
nf_slice nf_nsconn_name(const nf_nsconn *nc);
void *nf_nsconn_app_data(const nf_nsconn *nc);
void nf_nsconn_set_app_data(nf_nsconn *nc, void *data);

/* Sends ";ns;room;event;0;0;body" (docs/protocol.md §4). Returns 0, NF_EPIPE
 * (closed, or the outgoing queue full: then closing with 1008), NF_ENOMEM. */
int nf_nsconn_emit(nf_nsconn *nc, nf_slice room, nf_slice event, nf_slice body, bool binary);

/* Asks the client: sends "N;ns;room;event;0;0;body" with a server token and
 * calls cb with its answer, a timeout, or a close. */
void nf_nsconn_ask(nf_nsconn *nc, nf_slice room, nf_slice event, nf_slice body, bool binary,
                   unsigned timeout_ms, nf_ask_cb cb, void *ud);

/* Server-initiated (forced) disconnect, join and leave (docs/protocol.md §7.5-§7.7).
 * A room name over the bounds fails the join at once (NF_ERR_NAME_TOO_LONG,
 * NF_ERR_NAMES_TOO_LONG).
 * Like nf_conn_connect, each runs in the connection's turn (turn.c): at
 * once when asked by one of that connection's handlers, else once its
 * turn is free; cb gets "timeout" if it waited longer than the ask timeout
 * for the turn, "write closed" if the connection closed first. */
void nf_nsconn_disconnect(nf_nsconn *nc, nf_done_cb cb, void *ud);
void nf_nsconn_join_room(nf_nsconn *nc, nf_slice room, nf_done_cb cb, void *ud);
void nf_nsconn_leave_room(nf_nsconn *nc, nf_slice room, nf_done_cb cb, void *ud);

/* Names are bounded (--max-name-bytes each, --max-name-bytes-per-conn for
 * a connection's namespaces and rooms together): every path that takes a
 * name (client frames, forced actions, broadcasts, the scale-out bus)
 * refuses a longer one before looking it up or copying it, with these texts. */
#define NF_ERR_NAME_TOO_LONG "name too long"
#define NF_ERR_NAMES_TOO_LONG "too many name bytes"

/* 0 when ns, room and event each fit --max-name-bytes, else -ENAMETOOLONG.
 * Length checks only: costs nothing whatever the names hold. */
int nf_ns_check_names(const nf_host *h, nf_slice ns, nf_slice room, nf_slice event);

bool nf_nsconn_in_room(const nf_nsconn *nc, nf_slice room);
/* Iterates joined rooms in join order: pass 0 first, then the returned
 * cursor; returns false after the last. */
bool nf_nsconn_room_next(const nf_nsconn *nc, size_t *cursor, nf_slice *room);

/* The upgrade request (nf_request and its accessors) is http.h's. */

#endif
