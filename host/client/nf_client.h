/* nf_client.h - a neffos client in C on libevent.
 *
 * One nf_client is one WebSocket connection that speaks neffos (docs/protocol.md
 * §4, §5, §7.2, §8): it dials, upgrades, does the "M"/"A<id>"
 * handshake, connects namespaces, emits, asks with "$<n>" tokens and
 * answers the server's asks. It is built for load generation first:
 *
 *  - no allocation per message: every frame is serialized, framed and
 *    masked in place in the connection's output buffer, and every incoming
 *    frame is parsed in place in its input buffer (both grow, never shrink);
 *  - writes are batched: sends only append to the output buffer, and one
 *    event per loop (nf_client_loop) flushes every connection that has
 *    output with one write() each, after all of this iteration's callbacks
 *    ran. EV_WRITE is only armed after a short write.
 *
 * Everything is single-threaded, on the loop's event_base. Callbacks run on
 * the loop; the slices they receive point into the input buffer and are
 * valid only during the callback. */
#ifndef NF_CLIENT_H
#define NF_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "nf_target.h"

struct event_base;

typedef struct nf_client nf_client;
typedef struct nf_client_loop nf_client_loop;

/* One per event_base: owns the flush-once-per-iteration event and the
 * masking-key generator shared by all its clients. Free it after them. */
nf_client_loop *nf_client_loop_new(struct event_base *base);
void nf_client_loop_free(nf_client_loop *loop);

typedef enum nf_client_state {
    NF_CLIENT_CONNECTING,   /* TCP connect in progress */
    NF_CLIENT_UPGRADING,    /* HTTP request sent, waiting for 101 */
    NF_CLIENT_ACKING,       /* "M" sent, waiting for "A<id>" / "H<err>" */
    NF_CLIENT_OPEN,         /* neffos messages flow */
    NF_CLIENT_CLOSING,      /* close frame queued, flushing */
    NF_CLIENT_CLOSED        /* socket closed; only nf_client_free is left */
} nf_client_state;

/* What a handler answers to a server ask (a digits token). */
typedef struct nf_client_reply {
    nf_slice body;          /* the reply body, or the error text */
    bool is_error;
} nf_client_reply;

typedef struct nf_client_handlers {
    /* The server acknowledged: id is the text after "A". */
    void (*on_open)(nf_client *c, nf_slice id);
    /* A message that is neither a reply to our ask nor a server ask. */
    void (*on_event)(nf_client *c, const nf_msg *m);
    /* A server ask (a token that does not start with '$'). Fill *reply and
     * return true to answer it; return false to send nothing. NULL: events
     * handler gets it and nothing is answered. */
    bool (*on_ask)(nf_client *c, const nf_msg *m, nf_client_reply *reply);
    /* A native frame (fewer than six ';') after the handshake. Optional. */
    void (*on_native)(nf_client *c, nf_slice data, bool binary);
    /* The connection ended (refused with "H", failed, or closed by either
     * side). why is a short reason; after this, pending asks have been
     * completed with NF_CLIENT_ASK_CLOSED. Called at most once. */
    void (*on_close)(nf_client *c, const char *why);
} nf_client_handlers;

typedef struct nf_client_opts {
    const nf_target *url;              /* parsed once, shared by many clients */
    const char *const *headers;     /* extra "Name: value" lines, NULL-ended, or NULL */
    const nf_client_handlers *handlers;
    void *udata;                    /* nf_client_udata() */
    size_t max_message;             /* largest incoming message; 0 = 16 MiB */
    size_t max_output;              /* unwritten bytes a send may leave queued (a peer that
                                     * stops reading): a send past it fails; 0 = 32 MiB */
    bool nodelay;                   /* TCP_NODELAY (default false = as the kernel does) */
    bool native;                    /* a native-only endpoint (docs/protocol.md §4.7): no "M"/"A"
                                     * handshake (on_open runs after the upgrade with an empty id),
                                     * every frame goes to on_native */
} nf_client_opts;

/* Starts dialling. Returns NULL only when no socket could be created (errno
 * set); a failed connect is reported later through on_close. */
nf_client *nf_client_new(nf_client_loop *loop, const nf_client_opts *opts);

/* Closes the socket at once (no close frame) and frees. Pending asks are
 * completed with NF_CLIENT_ASK_CLOSED first, on_close is not called. Safe inside
 * the client's own callbacks: the memory is released when they return. */
void nf_client_free(nf_client *c);

/* Queues a close frame (1000) and closes the socket once it is written. */
void nf_client_close(nf_client *c);

nf_client_state nf_client_get_state(const nf_client *c);
void *nf_client_udata(const nf_client *c);
void nf_client_set_udata(nf_client *c, void *udata);
/* The id from "A<id>" (empty before), NUL-terminated. */
const char *nf_client_id(const nf_client *c);
/* Bytes waiting in the output buffer (backpressure signal). */
size_t nf_client_pending_output(const nf_client *c);

typedef enum nf_client_ask_status {
    NF_CLIENT_ASK_OK,          /* reply->body is the answer */
    NF_CLIENT_ASK_ERROR,       /* reply->body is the error text (isError was "1") */
    NF_CLIENT_ASK_CLOSED       /* the connection ended first; reply is NULL */
} nf_client_ask_status;

/* Completion of an ask. arg is the caller's, given to nf_client_ask; callers
 * that need a number (a send time) may store it as (void *)(uintptr_t)n. */
typedef void nf_client_ask_cb(nf_client *c, nf_client_ask_status status, const nf_msg *reply, void *arg);

/* Sends any message as is (m->wait included). binary picks the opcode.
 * Returns 0, or -1 when the connection is not open or the message is too
 * big. Messages sent before OPEN fail: wait for on_open. */
int nf_client_send(nf_client *c, const nf_msg *m, bool binary);

/* A raw text or binary frame (docs/protocol.md §11), for native endpoints.
 * Returns 0, or -1 when not open or too big. */
int nf_client_send_native(nf_client *c, nf_slice data, bool binary);

/* "<token>;;;;;;": the empty reply (docs/protocol.md §5.7) that accepts a
 * server's forced connect, join, leave or disconnect, as neffos.js sends it. */
int nf_client_send_empty_reply(nf_client *c, nf_slice token);

/* "<;ns;;event;0;0;body>". */
int nf_client_emit(nf_client *c, nf_slice ns, nf_slice event, nf_slice body);

/* "$<n>;ns;;event;0;0;body"; cb runs once with the answer, or with
 * NF_CLIENT_ASK_CLOSED. Returns 0, or -1 (cb is then not called). */
int nf_client_ask(nf_client *c, nf_slice ns, nf_slice event, nf_slice body,
                  nf_client_ask_cb *cb, void *arg);

/* Any message as an ask: q's namespace, room, event, body and flags with
 * a fresh "$<n>" token (q->wait is ignored). The same contract as
 * nf_client_ask; room joins and leaves (docs/protocol.md §7.6, §7.7) go
 * through here. */
int nf_client_ask_msg(nf_client *c, const nf_msg *q, bool binary, nf_client_ask_cb *cb, void *arg);

/* Namespace connect (docs/protocol.md §7.2): an ask for "_OnNamespaceConnect" whose
 * success answer is the empty reply "$<n>;;;;;;". */
int nf_client_connect_ns(nf_client *c, nf_slice ns, nf_client_ask_cb *cb, void *arg);
int nf_client_disconnect_ns(nf_client *c, nf_slice ns, nf_client_ask_cb *cb, void *arg);

/* Asks this client has sent that are still unanswered. */
size_t nf_client_asks_pending(const nf_client *c);

#endif
