/* ws.c - see ws.h. */
#include "ws.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <wslay/wslay.h>

struct nf_ws {
    struct bufferevent *bev;
    wslay_event_context_ptr ctx;
    nf_ws_callbacks cb;
    void *ud;
    bool closing;
};

struct nf_shared_frame {
    unsigned refs;
    size_t len;
    char bytes[];
};

/* wslay pulls input from the bufferevent. */
static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    nf_ws *ws = user;
    int n = evbuffer_remove(bufferevent_get_input(ws->bev), buf, len);
    if (n <= 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    return n;
}

/* wslay's own frames (pong, close) go to the same output, in order. */
static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user)
{
    nf_ws *ws = user;
    if (evbuffer_add(bufferevent_get_output(ws->bev), data, len) != 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static void frame_start_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_frame_recv_start_arg *arg,
                           void *user)
{
    nf_ws *ws = user;
    if (ws->cb.on_activity)
        ws->cb.on_activity(ws->ud);
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
    nf_ws *ws = user;
    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME)
        ws->cb.on_message(ws->ud, arg->opcode == WSLAY_BINARY_FRAME, arg->msg, arg->msg_length);
    else if (arg->opcode == WSLAY_CONNECTION_CLOSE)
        ws->closing = true;   /* wslay has queued the answering close frame */
}

nf_ws *nf_ws_new(struct bufferevent *bev, size_t max_message_bytes, const nf_ws_callbacks *cb, void *ud)
{
    static const struct wslay_event_callbacks callbacks = {
        recv_cb, send_cb, NULL, frame_start_cb, NULL, NULL, msg_cb
    };
    nf_ws *ws = calloc(1, sizeof *ws);
    if (ws == NULL)
        return NULL;
    if (wslay_event_context_server_init(&ws->ctx, &callbacks, ws) != 0) {
        free(ws);
        return NULL;
    }
    /* Never wslay's default (2 GiB): a peer could make us buffer that much. */
    wslay_event_config_set_max_recv_msg_length(ws->ctx, max_message_bytes);
    ws->bev = bev;
    ws->cb = *cb;
    ws->ud = ud;
    return ws;
}

void nf_ws_free(nf_ws *ws)
{
    if (ws) {
        wslay_event_context_free(ws->ctx);
        free(ws);
    }
}

int nf_ws_read(nf_ws *ws)
{
    if (wslay_event_recv(ws->ctx) != 0)
        return -1;
    if (wslay_event_send(ws->ctx) != 0)
        return -1;
    if (wslay_event_get_close_sent(ws->ctx) || wslay_event_get_close_received(ws->ctx))
        ws->closing = true;
    /* Done when wslay has nothing more to read or write (close handshake
     * complete, or a protocol error it answered with a close frame). */
    if (!wslay_event_want_read(ws->ctx) && !wslay_event_want_write(ws->ctx))
        return -1;
    return 0;
}

bool nf_ws_is_closing(const nf_ws *ws) { return ws->closing; }

uint16_t nf_ws_peer_close_code(const nf_ws *ws)
{
    return wslay_event_get_status_code_received(ws->ctx);
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
    struct evbuffer *out = bufferevent_get_output(ws->bev);
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
    return evbuffer_commit_space(out, &vec, 1) == 0 ? 0 : -1;
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

void nf_ws_close(nf_ws *ws, uint16_t code, const char *reason, size_t reason_len)
{
    if (ws->closing)
        return;
    if (reason_len > 123)
        reason_len = 123;
    wslay_event_queue_close(ws->ctx, code, (const uint8_t *)reason, reason_len);
    wslay_event_send(ws->ctx);
    ws->closing = true;
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
    if (evbuffer_add_reference(bufferevent_get_output(ws->bev), f->bytes, f->len, shared_cleanup, f) != 0) {
        f->refs--;
        return -1;
    }
    return 0;
}

size_t nf_shared_frame_size(const nf_shared_frame *f) { return f->len; }
