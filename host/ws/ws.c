/* ws.c - see ws.h. */
#include "ws.h"

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

static ws_slot *slot_pool;
static size_t slot_pool_size;

struct nf_ws {
    struct bufferevent *bev;
    struct evbuffer *held;    /* frames go here instead of the output, or NULL */
    ws_slot *slot;        /* lent while parsing or closing, else NULL */
    nf_ws_callbacks cb;
    void *ud;
    bool closing;
    bool in_message;      /* a fragmented data message is open */
    /* A shadow of wslay's frame-header parser (see guard_input). */
    uint8_t hdr[14];
    uint8_t hdr_len;
    uint64_t skip;        /* payload bytes of the current frame still to pass */
    uint16_t fail_code;   /* a header was refused: answer with this close code */
    bool in_close;        /* skipping a close frame's payload (held back until whole) */
    size_t max_message_bytes;
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
                /* A data frame announcing more than the maximum: 1009 now
                 * (wslay would wait for its first payload byte). */
                if ((ws->hdr[0] & 0x7f) <= 2 && (ws->hdr[1] & 0x80) && payload_len > ws->max_message_bytes) {
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

/* wslay pulls input from the bufferevent. */
static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    nf_ws *ws = ((ws_slot *)user)->ws;
    struct evbuffer *in = bufferevent_get_input(ws->bev);
    ev_ssize_t n = ws->fail_code ? 0 : evbuffer_copyout(in, buf, len);
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
    if (arg->opcode <= WSLAY_BINARY_FRAME)   /* continuation, text, binary */
        ws->in_message = !arg->fin;
    if (ws->cb.on_activity)
        ws->cb.on_activity(ws->ud);
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
    nf_ws *ws = ((ws_slot *)user)->ws;
    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME)
        ws->cb.on_message(ws->ud, arg->opcode == WSLAY_BINARY_FRAME, arg->msg, arg->msg_length);
    else if (arg->opcode == WSLAY_CONNECTION_CLOSE)
        ws->closing = true;   /* wslay has queued the answering close frame */
    else if (arg->opcode == WSLAY_PONG && ws->cb.on_pong)
        ws->cb.on_pong(ws->ud, arg->msg, arg->msg_length);
}

static const struct wslay_event_callbacks callbacks = {
    recv_cb, send_cb, NULL, frame_start_cb, NULL, NULL, msg_cb
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
            return -1;
        if (wslay_event_context_server_init(&slot->ctx, &callbacks, slot) != 0) {
            free(slot);
            return -1;
        }
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

nf_ws *nf_ws_new(struct bufferevent *bev, size_t max_message_bytes, const nf_ws_callbacks *cb, void *ud)
{
    nf_ws *ws = calloc(1, sizeof *ws);
    if (ws == NULL)
        return NULL;
    ws->max_message_bytes = max_message_bytes;
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
        free(ws);
    }
}

int nf_ws_read(nf_ws *ws)
{
    struct evbuffer *in = bufferevent_get_input(ws->bev);
    if (ws->slot == NULL && evbuffer_get_length(in) == 0)
        return 0;
    if (slot_attach(ws) != 0)
        return -1;
    wslay_event_context_ptr ctx = ws->slot->ctx;
    if (wslay_event_recv(ctx) != 0)
        return -1;
    fail_if_refused(ws);   /* wslay may stop asking for bytes before the bad ones */
    if (wslay_event_send(ctx) != 0)
        return -1;
    if (wslay_event_get_close_sent(ctx) || wslay_event_get_close_received(ctx))
        ws->closing = true;
    /* Once wslay stops reading (close received, or the connection failed),
     * whatever else the peer sends is discarded, never buffered. */
    if (!wslay_event_want_read(ctx))
        evbuffer_drain(in, evbuffer_get_length(in));
    /* Done when wslay has nothing more to read or write (close handshake
     * complete, or a protocol error it answered with a close frame). */
    if (!wslay_event_want_read(ctx) && !wslay_event_want_write(ctx))
        return -1;
    slot_detach_if_idle(ws);
    return 0;
}

bool nf_ws_is_closing(const nf_ws *ws) { return ws->closing; }

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
        return -1;
    hlen = nf_ws_frame_header(hdr, binary, len);
    if (evbuffer_reserve_space(out, (ev_ssize_t)(hlen + len), &vec, 1) != 1)
        return -1;
    memcpy(vec.iov_base, hdr, hlen);
    fill(ctx, (char *)vec.iov_base + hlen);
    vec.iov_len = hlen + len;
    if (evbuffer_commit_space(out, &vec, 1) != 0)
        return -1;
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
    if (ws->closing || len > 125)
        return -1;
    frame[0] = 0x80 | WSLAY_PING;   /* FIN + opcode; server frames are unmasked */
    frame[1] = (uint8_t)len;
    memcpy(frame + 2, payload, len);
    if (evbuffer_add(out_of(ws), frame, 2 + len) != 0)
        return -1;
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
        return -1;
    f->refs++;
    if (evbuffer_add_reference(out_of(ws), f->bytes, f->len, shared_cleanup, f) != 0) {
        f->refs--;
        return -1;
    }
    output_added(ws);
    return 0;
}

size_t nf_shared_frame_size(const nf_shared_frame *f) { return f->len; }
