/* ws.c - see ws.h. */
#include "ws.h"

#include "errors.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <wslay/wslay.h>

/* A wslay context holds 8 KB of fixed buffers, more than everything else a
 * connection needs. An idle connection has no use for it: between frames,
 * outside a fragmented message and with nothing queued, wslay's state is its
 * initial state. So contexts are lent to connections only while they parse
 * (or close) and go back to a bounded pool afterwards. The slot is wslay's
 * user data: it points at whichever connection holds the context now. */
typedef struct ws_slot {
    wslay_event_context_ptr ctx;
    struct nf_ws *ws;
    struct ws_slot *next;
} ws_slot;

#define SLOT_POOL_MAX 1024
#define WS_MAX_HEADER 14   /* bytes of a frame header: 2 + 8 (length) + 4 (mask) */

/* Per thread: each worker (--workers N) lends its own contexts. */
static _Thread_local ws_slot *slot_pool;
static _Thread_local size_t slot_pool_size;

struct nf_ws {
    struct bufferevent *bev;
    struct evbuffer *held;    /* frames go here instead of the output, or NULL */
    ws_slot *slot;        /* lent while parsing or closing, else NULL */
    nf_ws_callbacks cb;
    void *ud;
    bool closing;
    bool in_message;      /* a fragmented data message is open */
    /* A shadow of wslay's frame-header parser (see guard_input). */
    uint8_t hdr[WS_MAX_HEADER];
    uint8_t hdr_len;
    uint64_t skip;        /* payload bytes of the current frame still to pass */
    uint16_t fail_code;   /* a header was refused: answer with this close code */
    bool in_close;        /* skipping a close frame's payload (held back until whole) */
    bool guard_in_msg;    /* the shadow parser is inside a fragmented data message */
    uint64_t guard_msg_bytes;   /* payload announced so far by the frames of that message */
    size_t max_message_bytes;
    size_t max_output_bytes;    /* input waits while more than this is queued; 0 = no bound */
    /* The data message being assembled (see chunk_cb). */
    uint8_t *msg;
    size_t msg_len, msg_cap;
    bool frame_is_data;   /* the frame being received belongs to a data message */
    bool frame_fin;
    bool msg_failed;      /* assembly failed (fail_now): nothing more is delivered */
    uint64_t frame_left;  /* payload bytes of that frame still to come */
};

struct nf_shared_frame {
    unsigned refs;
    size_t len;
    char bytes[];
};

/* wslay refuses a few malformed frame headers in its frame layer (control
 * frame longer than 125 bytes or fragmented, 64-bit length with the top bit
 * set, non-minimal length encoding) and answers them with a close frame that
 * carries no status code. RFC 6455 5.5 / 7.4.1 make these protocol errors
 * (1002), which is what clients and conformance suites expect, and a close
 * with a 1-byte payload (wslay takes it as "no code") is one too (5.5.1).
 * So the bytes are checked here, in stream order, before wslay sees them:
 * header_error() returns the close code for a complete-enough header. */
static unsigned header_need(const uint8_t *h)
{
    unsigned len7 = h[1] & 0x7f;
    return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((h[1] & 0x80) ? 4 : 0);
}

static uint16_t header_error(const uint8_t *h, unsigned have, uint64_t *payload_len)
{
    unsigned opcode = h[0] & 0x0f, len7 = h[1] & 0x7f;
    bool control = opcode & 0x08, fin = h[0] & 0x80;
    if (have == 2) {
        if (control && (len7 > 125 || !fin))
            return 1002;
        if (opcode == 0x8 && len7 == 1)
            return 1002;
    }
    if (have == 4 && len7 == 126) {
        uint64_t n = (uint64_t)h[2] << 8 | h[3];
        if (n < 126)
            return 1002;
    }
    if (have == 10 && len7 == 127) {
        uint64_t n = 0;
        for (int i = 2; i < 10; i++)
            n = n << 8 | h[i];
        if ((n >> 63) || n <= 0xFFFF)
            return 1002;
    }
    if (have == header_need(h)) {
        *payload_len = len7 < 126 ? len7 : 0;
        for (unsigned i = 2; i < 2 + (len7 == 126 ? 2u : len7 == 127 ? 8u : 0u); i++)
            *payload_len = *payload_len << 8 | h[i];
    }
    return 0;
}

/* Adds a complete data frame header to the message it belongs to; true if
 * the message is now over the maximum. wslay, which does not buffer data
 * messages here (see chunk_cb), only sees one frame at a time. Frames wslay
 * refuses anyway (unmasked, RSV bits, a continuation outside a message) are
 * left to it, so that they get its 1002. */
static bool guard_message_too_big(nf_ws *ws, uint64_t payload_len)
{
    unsigned op = ws->hdr[0] & 0x7f;   /* opcode, RSV bits included */
    bool fin = ws->hdr[0] & 0x80;
    if (op > WSLAY_BINARY_FRAME || !(ws->hdr[1] & 0x80))
        return false;
    if (op == WSLAY_CONTINUATION_FRAME) {
        if (!ws->guard_in_msg)
            return false;
        ws->guard_msg_bytes += payload_len;
    } else {
        ws->guard_msg_bytes = payload_len;
    }
    ws->guard_in_msg = !fin;
    return ws->guard_msg_bytes > ws->max_message_bytes;
}

/* Scans buf[0..n) as the next bytes of the stream. Returns how many of them
 * may go to wslay: all, or those before the byte that showed a bad header
 * (then ws->fail_code is set). */
static size_t guard_input(nf_ws *ws, const uint8_t *buf, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (ws->skip > 0 && ws->in_close) {
            /* wslay checks a close reason's UTF-8 per read and skips the
             * first two bytes of every read, not only of the payload: a
             * reason split across reads could be refused when valid, or
             * pass unchecked when invalid and be echoed in wslay's
             * answering close. So a close frame's payload (<= 125 bytes) is
             * held back until it can go to wslay in one piece. */
            if ((uint64_t)(n - i) < ws->skip)
                return i;
            ws->in_close = false;
        }
        if (ws->skip > 0) {
            size_t take = (uint64_t)(n - i) < ws->skip ? n - i : (size_t)ws->skip;
            ws->skip -= take;
            i += take;
            continue;
        }
        ws->hdr[ws->hdr_len++] = buf[i];
        if (ws->hdr_len >= 2) {
            uint64_t payload_len = 0;
            uint16_t code = header_error(ws->hdr, ws->hdr_len, &payload_len);
            if (code) {
                ws->fail_code = code;
                return i;
            }
            if (ws->hdr_len == header_need(ws->hdr)) {
                /* A data message announcing more than the maximum, in one
                 * frame or as the sum of its fragments: 1009 now (wslay
                 * would wait for the first payload byte). */
                if (guard_message_too_big(ws, payload_len)) {
                    ws->fail_code = 1009;
                    return i;
                }
                ws->skip = payload_len;
                ws->in_close = (ws->hdr[0] & 0x0f) == 0x8;
                ws->hdr_len = 0;
            }
        }
        i++;
    }
    return n;
}

/* Fails the connection after guard_input refused a header: our close frame,
 * and no more reading. */
static void fail_if_refused(nf_ws *ws)
{
    if (ws->fail_code && wslay_event_want_read(ws->slot->ctx)) {
        wslay_event_queue_close(ws->slot->ctx, ws->fail_code, NULL, 0);
        wslay_event_shutdown_read(ws->slot->ctx);
    }
}

static bool output_over(const nf_ws *ws)
{
    return ws->max_output_bytes && nf_ws_queued_bytes(ws) > ws->max_output_bytes;
}

/* wslay pulls input from the bufferevent. Not while the output is over its
 * bound: the frames read could ask for more (pongs, close echoes), and a
 * peer that sends faster than it reads would grow the output without end.
 * The input then waits, unparsed, for the owner (see nf_ws_read). */
static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    nf_ws *ws = ((ws_slot *)user)->ws;
    struct evbuffer *in = bufferevent_get_input(ws->bev);
    ev_ssize_t n = ws->fail_code || output_over(ws) ? 0 : evbuffer_copyout(in, buf, len);
    size_t pass = n > 0 ? guard_input(ws, buf, (size_t)n) : 0;
    if (pass == 0) {
        fail_if_refused(ws);
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    evbuffer_drain(in, pass);
    return (ssize_t)pass;
}

/* Where frames are appended: the bufferevent's output, or the owner's hold. */
static struct evbuffer *out_of(nf_ws *ws)
{
    return ws->held ? ws->held : bufferevent_get_output(ws->bev);
}

static void output_added(nf_ws *ws)
{
    if (ws->cb.on_output)
        ws->cb.on_output(ws->ud);
}

/* wslay's own frames (pong, close) go to the same output, in order. */
static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user)
{
    nf_ws *ws = ((ws_slot *)user)->ws;
    if (evbuffer_add(out_of(ws), data, len) != 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    output_added(ws);
    return (ssize_t)len;
}

static void frame_start_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_frame_recv_start_arg *arg,
                           void *user)
{
    nf_ws *ws = ((ws_slot *)user)->ws;
    ws->frame_is_data = arg->opcode <= WSLAY_BINARY_FRAME;   /* continuation, text, binary */
    if (ws->frame_is_data) {
        ws->in_message = !arg->fin;
        ws->frame_fin = arg->fin;
        ws->frame_left = arg->payload_length;
    }
    if (ws->cb.on_activity)
        ws->cb.on_activity(ws->ud);
}

/* Fails the connection from inside wslay's parser (a callback cannot return
 * an error): our close frame, nothing more read, nothing delivered. */
static void fail_now(nf_ws *ws, wslay_event_context_ptr ctx, uint16_t code)
{
    ws->msg_failed = true;
    wslay_event_queue_close(ctx, code, NULL, 0);
    wslay_event_shutdown_read(ctx);
}

/* The capacity for `need` bytes of message: doubling, so that a message
 * sent in tiny fragments costs a few reallocations and at most twice its
 * payload; never more than the maximum, nor more than the message's last
 * frame will fill. Memory follows the bytes that arrived, not the lengths
 * announced. */
static size_t msg_grow_to(const nf_ws *ws, size_t need)
{
    size_t cap = ws->msg_cap > need / 2 ? ws->msg_cap * 2 : need;
    if (cap > ws->max_message_bytes)
        cap = ws->max_message_bytes;
    if (ws->frame_fin && cap > need + ws->frame_left)
        cap = need + (size_t)ws->frame_left;
    return cap < need ? need : cap;
}

/* Data payload, unmasked and (for text) UTF-8-checked by wslay, appended to
 * one buffer per message. wslay's own buffering keeps a heap chunk per
 * frame: a message of 1-byte fragments cost it tens of bytes per byte. */
static void chunk_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_frame_recv_chunk_arg *arg,
                     void *user)
{
    nf_ws *ws = ((ws_slot *)user)->ws;
    if (!ws->frame_is_data || ws->msg_failed || arg->data_length == 0)
        return;
    ws->frame_left -= arg->data_length;
    size_t need = ws->msg_len + arg->data_length;
    if (need > ws->max_message_bytes) {   /* the guard refuses these first */
        fail_now(ws, ctx, WSLAY_CODE_MESSAGE_TOO_BIG);
        return;
    }
    if (need > ws->msg_cap) {
        size_t cap = msg_grow_to(ws, need);
        uint8_t *p = realloc(ws->msg, cap);
        if (p == NULL) {
            fail_now(ws, ctx, WSLAY_CODE_INTERNAL_SERVER_ERROR);
            return;
        }
        ws->msg = p;
        ws->msg_cap = cap;
    }
    memcpy(ws->msg + ws->msg_len, arg->data, arg->data_length);
    ws->msg_len = need;
}

static void msg_reset(nf_ws *ws)
{
    free(ws->msg);
    ws->msg = NULL;
    ws->msg_len = ws->msg_cap = 0;
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
    nf_ws *ws = ((ws_slot *)user)->ws;
    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME) {
        if (!ws->msg_failed)
            ws->cb.on_message(ws->ud, arg->opcode == WSLAY_BINARY_FRAME, ws->msg ? ws->msg : (const uint8_t *)"",
                              ws->msg_len);
        msg_reset(ws);
    } else if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
        ws->closing = true;   /* wslay has queued the answering close frame */
    } else if (arg->opcode == WSLAY_PONG && ws->cb.on_pong) {
        ws->cb.on_pong(ws->ud, arg->msg, arg->msg_length);
    }
}

static const struct wslay_event_callbacks callbacks = {
    recv_cb, send_cb, NULL, frame_start_cb, chunk_cb, NULL, msg_cb
};

/* Lends ws a context: from the pool, or a new one. */
static int slot_attach(nf_ws *ws)
{
    ws_slot *slot = slot_pool;
    if (ws->slot)
        return 0;
    if (slot) {
        slot_pool = slot->next;
        slot_pool_size--;
    } else {
        slot = calloc(1, sizeof *slot);
        if (slot == NULL)
            return NF_ENOMEM;
        if (wslay_event_context_server_init(&slot->ctx, &callbacks, slot) != 0) {
            free(slot);
            return NF_ENOMEM;
        }
        /* Data messages are assembled here (chunk_cb); control frames
         * (<= 125 bytes) are still buffered by wslay. */
        wslay_event_config_set_no_buffering(slot->ctx, 1);
    }
    /* Never wslay's default (2 GiB): a peer could make us buffer that much. */
    wslay_event_config_set_max_recv_msg_length(slot->ctx, ws->max_message_bytes);
    slot->ws = ws;
    slot->next = NULL;
    ws->slot = slot;
    return 0;
}

static void slot_destroy(ws_slot *slot)
{
    wslay_event_context_free(slot->ctx);
    free(slot);
}

/* Gives the context back when wslay holds no state for this connection:
 * at a frame boundary (our shadow parser agrees), outside a fragmented
 * message, nothing queued, not closing. */
static void slot_detach_if_idle(nf_ws *ws)
{
    ws_slot *slot = ws->slot;
    if (slot == NULL || ws->closing || ws->fail_code || ws->in_message || ws->skip || ws->hdr_len ||
        wslay_event_want_write(slot->ctx) || !wslay_event_want_read(slot->ctx) ||
        wslay_event_get_queued_msg_count(slot->ctx) > 0)
        return;
    ws->slot = NULL;
    slot->ws = NULL;
    if (slot_pool_size >= SLOT_POOL_MAX) {
        slot_destroy(slot);
        return;
    }
    slot->next = slot_pool;
    slot_pool = slot;
    slot_pool_size++;
}

nf_ws *nf_ws_new(struct bufferevent *bev, size_t max_message_bytes, size_t max_output_bytes,
                 const nf_ws_callbacks *cb, void *ud)
{
    nf_ws *ws = calloc(1, sizeof *ws);
    if (ws == NULL)
        return NULL;
    ws->max_message_bytes = max_message_bytes;
    ws->max_output_bytes = max_output_bytes;
    ws->bev = bev;
    ws->cb = *cb;
    ws->ud = ud;
    return ws;
}

void nf_ws_free(nf_ws *ws)
{
    if (ws) {
        if (ws->slot)
            slot_destroy(ws->slot);   /* state unknown: never back to the pool */
        free(ws->msg);
        free(ws);
    }
}

/* wslay's WSLAY_ERR_* as an NF_E* code. */
static int wslay_error(int rc)
{
    return rc == WSLAY_ERR_NOMEM ? NF_ENOMEM : NF_EIO;
}

int nf_ws_read(nf_ws *ws)
{
    struct evbuffer *in = bufferevent_get_input(ws->bev);
    if (ws->slot == NULL && evbuffer_get_length(in) == 0)
        return 0;
    int rc = slot_attach(ws);
    if (rc != 0)
        return rc;
    wslay_event_context_ptr ctx = ws->slot->ctx;
    if ((rc = wslay_event_recv(ctx)) != 0)
        return wslay_error(rc);
    fail_if_refused(ws);   /* wslay may stop asking for bytes before the bad ones */
    if ((rc = wslay_event_send(ctx)) != 0)
        return wslay_error(rc);
    if (wslay_event_get_close_sent(ctx) || wslay_event_get_close_received(ctx))
        ws->closing = true;
    /* Once wslay stops reading (close received, or the connection failed),
     * whatever else the peer sends is discarded, never buffered. */
    if (!wslay_event_want_read(ctx))
        evbuffer_drain(in, evbuffer_get_length(in));
    /* Done when wslay has nothing more to read or write (close handshake
     * complete, or a protocol error it answered with a close frame). */
    if (!wslay_event_want_read(ctx) && !wslay_event_want_write(ctx))
        return NF_EOF;
    slot_detach_if_idle(ws);
    return 0;
}

bool nf_ws_is_closing(const nf_ws *ws) { return ws->closing; }

size_t nf_ws_queued_bytes(const nf_ws *ws)
{
    size_t n = evbuffer_get_length(bufferevent_get_output(ws->bev));
    if (ws->held)
        n += evbuffer_get_length(ws->held);   /* frames behind a ping barrier */
    if (ws->slot) {
        wslay_event_context_ptr ctx = ws->slot->ctx;
        n += wslay_event_get_queued_msg_length(ctx) + wslay_event_get_queued_msg_count(ctx) * WS_MAX_HEADER;
    }
    return n;
}

uint16_t nf_ws_peer_close_code(const nf_ws *ws)
{
    return ws->slot ? wslay_event_get_status_code_received(ws->slot->ctx) : 1006;
}

size_t nf_ws_frame_header(uint8_t *hdr, bool binary, size_t len)
{
    hdr[0] = 0x80 | (binary ? WSLAY_BINARY_FRAME : WSLAY_TEXT_FRAME);   /* FIN + opcode */
    if (len < 126) {
        hdr[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        hdr[1] = 126;
        hdr[2] = (uint8_t)(len >> 8);
        hdr[3] = (uint8_t)len;
        return 4;
    }
    hdr[1] = 127;
    for (int i = 0; i < 8; i++)
        hdr[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

int nf_ws_send_with(nf_ws *ws, bool binary, size_t len, void (*fill)(void *ctx, char *dst), void *ctx)
{
    struct evbuffer *out = out_of(ws);
    struct evbuffer_iovec vec;
    uint8_t hdr[10];
    size_t hlen;

    if (ws->closing)
        return NF_EPIPE;
    hlen = nf_ws_frame_header(hdr, binary, len);
    if (evbuffer_reserve_space(out, (ev_ssize_t)(hlen + len), &vec, 1) != 1)
        return NF_ENOMEM;
    memcpy(vec.iov_base, hdr, hlen);
    fill(ctx, (char *)vec.iov_base + hlen);
    vec.iov_len = hlen + len;
    if (evbuffer_commit_space(out, &vec, 1) != 0)
        return NF_ENOMEM;
    output_added(ws);
    return 0;
}

typedef struct bytes_ctx {
    const void *data;
    size_t len;
} bytes_ctx;

static void fill_bytes(void *ctx, char *dst)
{
    bytes_ctx *b = ctx;
    if (b->len)
        memcpy(dst, b->data, b->len);
}

int nf_ws_send(nf_ws *ws, bool binary, const void *data, size_t len)
{
    bytes_ctx b = { data, len };
    return nf_ws_send_with(ws, binary, len, fill_bytes, &b);
}

int nf_ws_ping(nf_ws *ws, const void *payload, size_t len)
{
    uint8_t frame[2 + 125];
    if (ws->closing)
        return NF_EPIPE;
    if (len > 125)
        return NF_EINVAL;
    frame[0] = 0x80 | WSLAY_PING;   /* FIN + opcode; server frames are unmasked */
    frame[1] = (uint8_t)len;
    memcpy(frame + 2, payload, len);
    if (evbuffer_add(out_of(ws), frame, 2 + len) != 0)
        return NF_ENOMEM;
    output_added(ws);
    return 0;
}

void nf_ws_hold_output(nf_ws *ws, struct evbuffer *held) { ws->held = held; }

void nf_ws_close(nf_ws *ws, uint16_t code, const char *reason, size_t reason_len)
{
    if (ws->closing)
        return;
    if (reason_len > 123)
        reason_len = 123;
    ws->closing = true;   /* keeps the context lent until the connection goes */
    if (slot_attach(ws) != 0)
        return;
    wslay_event_queue_close(ws->slot->ctx, code, (const uint8_t *)reason, reason_len);
    wslay_event_send(ws->slot->ctx);
}

nf_shared_frame *nf_shared_frame_new(bool binary, size_t payload_len,
                                     void (*fill)(void *ctx, char *dst), void *ctx)
{
    uint8_t hdr[10];
    size_t hlen = nf_ws_frame_header(hdr, binary, payload_len);
    nf_shared_frame *f = malloc(sizeof *f + hlen + payload_len);
    if (f == NULL)
        return NULL;
    f->refs = 1;
    f->len = hlen + payload_len;
    memcpy(f->bytes, hdr, hlen);
    fill(ctx, f->bytes + hlen);
    return f;
}

void nf_shared_frame_release(nf_shared_frame *f)
{
    if (f && --f->refs == 0)
        free(f);
}

static void shared_cleanup(const void *data, size_t len, void *arg)
{
    nf_shared_frame_release(arg);
}

int nf_ws_send_shared(nf_ws *ws, nf_shared_frame *f)
{
    if (ws->closing)
        return NF_EPIPE;
    f->refs++;
    if (evbuffer_add_reference(out_of(ws), f->bytes, f->len, shared_cleanup, f) != 0) {
        f->refs--;
        return NF_ENOMEM;
    }
    output_added(ws);
    return 0;
}

size_t nf_shared_frame_size(const nf_shared_frame *f) { return f->len; }

void nf_ws_pool_release(void)
{
    while (slot_pool) {
        ws_slot *slot = slot_pool;
        slot_pool = slot->next;
        slot_destroy(slot);
    }
    slot_pool_size = 0;
}
