/* fake_conn.h - a fake transport for C tests of the protocol core (host/conn.c,
 * namespace.c, ask.c) and for the connection fuzzer: bytes in, bytes out, a
 * manual clock.
 *
 * The server end of a socketpair(AF_UNIX, SOCK_STREAM) is adopted by a real
 * nf_host (nf_host_adopt), so the whole read, dispatch and flush path runs
 * as in production; the test holds the other end. It writes client bytes
 * (masked frames made by fake_conn_send*), runs the event loop until it is
 * quiet (fake_conn_pump), and reads the server's bytes back as an HTTP
 * answer and then server frames (fake_conn_next). Pings from the server are
 * answered with pongs by the harness and never returned, as every real
 * client does (docs/protocol.md §12.4).
 *
 * Time is the manual clock of fake_clock_*: nothing in a test sleeps.
 * fake_host_new stops the host's periodic sweep, so a timeout fires exactly
 * when the test moves the clock and calls fake_conn_tick.
 *
 * fake_app is a C nf_app_ops: it records every invocation and answers as the
 * test's rules say (IDs are the core's default) (reply, error, nothing, or wait to be finished later with
 * fake_app_finish / nf_invocation_finish). No Lua.
 *
 * Nothing here asserts: functions return what they saw, the tests check. */
#ifndef FAKE_CONN_H
#define FAKE_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "proto.h"

struct event_base;

/* ---- the manual clock --------------------------------------------------------- */

/* Installs the manual clock (nf_clock_set) at start_ms; it moves only when told. */
void fake_clock_install(uint64_t start_ms);
void fake_clock_advance(uint64_t ms);
uint64_t fake_clock_now(void);
/* Back to CLOCK_MONOTONIC. */
void fake_clock_uninstall(void);

/* ---- the application ------------------------------------------------------------ */

typedef enum fake_action {
    FAKE_NONE = 0,      /* finish at once with NF_RESULT_NONE */
    FAKE_REPLY,         /* finish at once with NF_RESULT_REPLY and the rule's data */
    FAKE_ERROR,         /* finish at once with NF_RESULT_ERROR and the rule's data */
    FAKE_WAIT,          /* do not finish: the test does, later (fake_app_finish) */
    FAKE_HOOK           /* call the rule's hook, which must finish the invocation */
} fake_action;

typedef struct fake_app fake_app;
typedef void (*fake_hook)(fake_app *a, nf_invocation *inv, void *ud);

/* Invocations are matched by event name; the two hooks by these names. */
#define FAKE_ON_CONNECT "<connect>"
#define FAKE_ON_DISCONNECT "<disconnect>"

#define FAKE_MAX_RULES 32
#define FAKE_MAX_CALLS 256
#define FAKE_MAX_WAITING 64
#define FAKE_NAME_MAX 64
#define FAKE_BODY_MAX 256

typedef struct fake_rule {
    char event[FAKE_NAME_MAX];
    fake_action action;
    char data[FAKE_BODY_MAX];
    fake_hook hook;
    void *ud;
} fake_rule;

/* One invocation as the core made it (names and body copied; the body cut
 * at FAKE_BODY_MAX). */
typedef struct fake_call {
    nf_invocation_kind kind;
    char ns[FAKE_NAME_MAX], room[FAKE_NAME_MAX], event[FAKE_NAME_MAX];
    char body[FAKE_BODY_MAX];
    size_t body_len;
    bool is_local, is_forced, is_native, binary, wants_result, has_nsconn;
} fake_call;

struct fake_app {
    const char *namespaces[8];   /* declared namespaces (NULL-terminated); "" allowed */
    fake_rule rules[FAKE_MAX_RULES];
    size_t nrules;
    fake_call calls[FAKE_MAX_CALLS];
    size_t ncalls;               /* may exceed FAKE_MAX_CALLS: only the first are kept */
    nf_invocation *waiting[FAKE_MAX_WAITING];   /* FAKE_WAIT invocations, in arrival order */
    size_t nwaiting;
    size_t conns_freed;          /* conn_freed callbacks */
};

extern const nf_app_ops fake_app_ops;

/* Zeroes the app; namespaces are then set by the test. */
void fake_app_init(fake_app *a);
/* Adds (or replaces) the rule for an event name. */
void fake_app_on(fake_app *a, const char *event, fake_action action, const char *data);
void fake_app_hook(fake_app *a, const char *event, fake_hook hook, void *ud);
/* Forgets the recorded calls (not the rules, not the waiting invocations). */
void fake_app_clear_calls(fake_app *a);
/* Finishes the i-th waiting invocation (0 = oldest) and removes it from the
 * list; returns -1 if there is none. */
int fake_app_finish(fake_app *a, size_t i, nf_result result, const char *data);
/* The index of the first recorded call of `event` at or after `from`, or -1. */
int fake_app_find(const fake_app *a, const char *event, size_t from);
/* How many recorded calls have this event name. */
size_t fake_app_count(const fake_app *a, const char *event);

/* ---- the host -------------------------------------------------------------------- */

/* A host on a new event base with the app's ops, the periodic sweep stopped,
 * and an endpoint at "/echo" with cfg (NULL: no timeouts). */
nf_host *fake_host_new(const nf_limits *limits, fake_app *app, const nf_endpoint_config *cfg);
/* Frees the host and its base. */
void fake_host_free(nf_host *h);

/* ---- one connection ----------------------------------------------------------- */

typedef struct fake_frame {
    uint8_t opcode;          /* 1 text, 2 binary, 8 close, 9 ping, 10 pong */
    bool fin;
    uint8_t *data;           /* owned by the frame: fake_frame_free */
    size_t len;
    uint16_t close_code;     /* close frames: the code (0 if none) */
} fake_frame;

typedef struct fake_conn {
    nf_host *host;
    struct event_base *base;
    int peer;                /* the client's end of the socketpair, -1 once shut */
    nf_conn *conn;           /* referenced while the fake_conn lives */
    uint8_t *rx;             /* bytes from the server not yet consumed */
    size_t rx_len, rx_cap;
    bool http_done;          /* the HTTP answer head was consumed */
    int http_status;         /* its status code, 0 until then */
    bool eof;                /* the server closed its end */
    bool reading;            /* pump reads the socket (default true) */
    bool auto_pong;          /* answer pings (default true) */
    size_t pings;            /* pings answered */
    uint32_t mask_state;     /* masking keys: a fixed sequence, so runs repeat */
    size_t max_rx;           /* stop reading above this many unconsumed bytes */
} fake_conn;

/* Connects a new client: socketpair, nf_host_adopt. sndbuf > 0 sets the
 * server end's SO_SNDBUF (and the client end's SO_RCVBUF) so a client that
 * does not read fills the kernel quickly. Returns 0 or a negative errno. */
int fake_conn_open(fake_conn *fc, nf_host *h, int sndbuf);
/* Closes the client's end (if still open), pumps so the server sees the
 * EOF, and drops the reference. */
void fake_conn_free(fake_conn *fc);
/* Closes the client's end: the server sees EOF (a TCP close, no close frame). */
void fake_conn_shutdown(fake_conn *fc);

/* Raw client bytes. Returns 0, or -1 if the socket is gone or full. */
int fake_conn_write(fake_conn *fc, const void *bytes, size_t n);
/* One client frame: first byte b0 (FIN, RSV, opcode) as given, the payload
 * masked with the next key. */
int fake_conn_send_frame(fake_conn *fc, uint8_t b0, const void *payload, size_t n);
/* A final text frame of a C string / a binary frame. */
int fake_conn_send_text(fake_conn *fc, const char *s);
int fake_conn_send_binary(fake_conn *fc, const void *p, size_t n);
/* A close frame with code (0: none) and reason. */
int fake_conn_send_close(fake_conn *fc, uint16_t code, const char *reason);

/* Runs the loop until it is quiet (bounded), reading what the server
 * wrote and answering its pings. */
void fake_conn_pump(fake_conn *fc);
/* Moves the clock by ms, runs the sweep once, pumps. */
void fake_conn_tick(fake_conn *fc, uint64_t ms);

/* The GET upgrade of `path` with the RFC 6455 sample key, pumped; returns
 * the HTTP status of the answer (101), or 0 if none came. */
int fake_conn_upgrade(fake_conn *fc, const char *path);
/* upgrade + "M" + the "A" frame: returns 0 when the ack came. */
int fake_conn_handshake(fake_conn *fc, const char *path);
/* Connects namespace ns ("$0;ns;;_OnNamespaceConnect;0;0;") and takes its
 * empty reply "$0;;;;;;". Returns 0, or -1. */
int fake_conn_connect_ns(fake_conn *fc, const char *ns);

/* The usual start of a core test: the manual clock at start_ms, a recording
 * app declaring namespace "default" (a test adds more to app->namespaces), a
 * host with lim and cfg (NULL = defaults), one client (sndbuf, 0 = the
 * system's) opened and, with handshake, upgraded and acknowledged on /echo.
 * Returns 0, or -1 at the first step that failed. */
int fake_setup(fake_app *app, nf_host **host, fake_conn *fc, const nf_limits *lim, const nf_endpoint_config *cfg,
               int sndbuf, uint64_t start_ms, bool handshake);
/* The usual end: closes the client and frees the host. Returns 0 when the
 * host held nothing any more (no socket, WebSocket, ID, namespace or room),
 * the app saw its one connection freed and no handler is left waiting;
 * else -1 (what was left is printed). */
int fake_teardown(fake_app *app, nf_host *host, fake_conn *fc);

/* Takes the next complete server frame (pings are answered in pump and not
 * returned). Returns false when none is buffered. */
bool fake_conn_next(fake_conn *fc, fake_frame *f);
/* True when the next frame is a text frame whose payload is exactly s
 * (consumed then); false otherwise (the frame is consumed anyway, printed to stderr). */
bool fake_conn_expect_text(fake_conn *fc, const char *s);
bool fake_conn_expect_binary(fake_conn *fc, const void *p, size_t n);
/* The ack: "A" + the connection's ID (the core's default, a UUID v4). */
bool fake_conn_expect_ack(fake_conn *fc);
/* A close frame with this code and reason. */
bool fake_conn_expect_close(fake_conn *fc, uint16_t code, const char *reason);
/* True when nothing from the server is buffered; otherwise prints the next
 * frame to stderr (consuming it) and returns false. */
bool fake_conn_quiet(fake_conn *fc);
void fake_frame_free(fake_frame *f);

/* Bytes of the unconsumed server output (the HTTP answer included). */
size_t fake_conn_pending(const fake_conn *fc);
/* Drops all unconsumed server output. */
void fake_conn_discard(fake_conn *fc);

/* ---- frames by hand (the fuzzer's seeds, tests of exact bytes) ------------------- */

/* Writes a masked client frame into out (n + 14 bytes at most); returns its size. */
size_t fake_frame_encode(uint8_t *out, uint8_t b0, const void *payload, size_t n, uint32_t mask);

#endif
