/* fuzz_ws.c - libFuzzer target for the WebSocket frame path (host/ws/ws.c),
 * exactly as a connection uses it: client bytes arrive, nf_ws_read parses
 * them, the server's frames go to its output. Each input runs three times:
 * once with the bytes landing in the bufferevent's input (the bytes read
 * before the upgrade), once read through the transport seam (sock.h) from a
 * socket that has `chunk` more bytes each time and ends the stream at the
 * end, as the connection's own reads do, and once more like the first with
 * permessage-deflate agreed.
 *
 * Input: byte 0 = how to feed the rest
 *     bits 0-5  chunk size - 1 (1..64 bytes per nf_ws_read)
 *     bit 6     all at once instead
 *     bit 7     the server also sends a data frame after every read
 * then the client's bytes.
 *
 * Invariants checked (a violation traps):
 *  - a delivered message is at most MAX_MSG bytes; a text message is valid UTF-8;
 *  - what the server wrote is a sequence of well-formed server frames:
 *    unmasked, no RSV bits, known opcodes, control frames final and <= 125
 *    bytes, a close payload empty or a valid code (+ UTF-8 reason), nothing
 *    after the close frame;
 *  - once nf_ws_read has reported the end, no input is left buffered;
 *  - the second run has a small output bound and the output drained only
 *    every fourth read (a peer that reads slowly): a read never takes the
 *    output further past the bound than one control frame and a close frame
 *    (parsing stops before the next frame once the output is over);
 *  - through the socket, nf_ws_read ends with NF_EPIPE once the stream ended,
 *    and never reads past it;
 *  - and a third time with permessage-deflate agreed (RFC 7692; every server
 *    message compressed): an inflated message is still at most MAX_MSG bytes
 *    and valid UTF-8 when text; RSV1 is allowed on server data frames only. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "deflate.h"
#include "errors.h"
#include "sock.h"
#include "ws.h"

#define MAX_MSG 1024
#define MAX_OUTPUT 512
#define OVERSHOOT (2 * 127)   /* past the output bound: a pong, then our close frame */

/* A socket over the fuzz input: `ready` bytes have arrived; at the end of
 * the input, the stream ends. */
typedef struct mem_sock {
    nf_sock s;
    const uint8_t *p;
    size_t ready, left;
    bool read_eof;
} mem_sock;

static ssize_t mem_read(nf_sock *s, void *buf, size_t len)
{
    mem_sock *m = (mem_sock *)s;
    if (m->read_eof)
        __builtin_trap();   /* read again after the end of the stream */
    if (m->ready == 0) {
        if (m->left == 0) {
            m->read_eof = true;
            return 0;
        }
        return NF_EAGAIN;
    }
    size_t n = len < m->ready ? len : m->ready;
    memcpy(buf, m->p, n);
    m->p += n;
    m->ready -= n;
    m->left -= n;
    return (ssize_t)n;
}

static ssize_t mem_write(nf_sock *s, const struct iovec *iov, int n)
{
    (void)s;
    (void)iov;
    (void)n;
    return NF_EAGAIN;   /* the harness reads the output itself */
}

static const nf_sock_ops mem_ops = { mem_read, mem_write, NULL };

static bool utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

static void on_message(void *ud, bool binary, const uint8_t *data, size_t len)
{
    (void)ud;
    if (len > MAX_MSG)
        __builtin_trap();
    if (!binary && !utf8_valid(data, len))
        __builtin_trap();
}

static void on_activity(void *ud) { (void)ud; }

static bool close_code_valid(unsigned code)
{
    return (code >= 1000 && code <= 1011 && code != 1004 && code != 1005 && code != 1006) ||
           (code >= 3000 && code <= 4999);
}

/* Checks and drains the server's output; *closed is set after a close frame.
 * deflate: RSV1 may mark a compressed data frame. */
static void check_output(struct evbuffer *out, bool *closed, bool deflate)
{
    for (;;) {
        size_t have = evbuffer_get_length(out);
        if (have == 0)
            return;
        if (*closed)
            __builtin_trap();   /* nothing after the close frame */
        uint8_t h[10];
        if (have < 2)
            __builtin_trap();   /* frames are written whole */
        evbuffer_copyout(out, h, have < 10 ? have : 10);
        unsigned opcode = h[0] & 0x0f;
        if ((h[0] & (deflate && opcode != 0 && opcode < 8 ? 0x30 : 0x70)) || (h[1] & 0x80))
            __builtin_trap();   /* RSV bits, or a masked server frame */
        if (!(opcode == 1 || opcode == 2 || opcode == 8 || opcode == 9 || opcode == 10))
            __builtin_trap();
        uint64_t len = h[1] & 0x7f;
        size_t hl = 2;
        if (len == 126) {
            hl = 4;
            len = (uint64_t)h[2] << 8 | h[3];
        } else if (len == 127) {
            hl = 10;
            len = 0;
            for (int i = 2; i < 10; i++)
                len = len << 8 | h[i];
        }
        if (have < hl || have - hl < len)
            __builtin_trap();
        if ((opcode & 8) && (len > 125 || !(h[0] & 0x80)))
            __builtin_trap();
        evbuffer_drain(out, hl);
        if (opcode == 8) {
            uint8_t pl[125];
            evbuffer_remove(out, pl, (size_t)len);
            if (len == 1)
                __builtin_trap();
            if (len >= 2 && (!close_code_valid((unsigned)pl[0] << 8 | pl[1]) || !utf8_valid(pl + 2, len - 2)))
                __builtin_trap();
            *closed = true;
        } else {
            evbuffer_drain(out, (size_t)len);
        }
    }
}

static void run(struct event_base *base, const uint8_t *data, size_t size, size_t max_output, bool deflate)
{
    static const nf_ws_callbacks callbacks = { on_message, on_activity, NULL, NULL };
    uint8_t mode = data[0];
    size_t chunk = (mode & 0x40) ? size : (size_t)(mode & 0x3f) + 1;
    bool server_sends = mode & 0x80;
    data++;
    size--;

    struct bufferevent *bev = bufferevent_socket_new(base, -1, 0);   /* buffers only */
    struct evbuffer *in = bufferevent_get_input(bev), *out = bufferevent_get_output(bev);
    evbuffer_unfreeze(in, 0);
    evbuffer_unfreeze(out, 1);
    nf_ws *ws = nf_ws_new(bev, MAX_MSG, max_output, &callbacks, NULL);
    bool via_sock = max_output != 0;
    mem_sock ms = { { &mem_ops, -1, NULL }, data, 0, size, false };
    if (via_sock)
        nf_ws_set_sock(ws, &ms.s);
    nf_deflate_params agreed = { 15, 15, true, true, false };
    if (deflate)
        nf_ws_set_deflate(ws, &agreed, 0);
    bool closed = false;
    int rc = 0;
    unsigned reads = 0;
    for (size_t off = 0; off < size && rc == 0; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        size_t before = nf_ws_queued_bytes(ws);
        if (via_sock)
            ms.ready += n;
        else
            evbuffer_add(in, data + off, n);
        rc = nf_ws_read(ws);
        if (max_output && nf_ws_queued_bytes(ws) > (before > max_output ? before : max_output) + OVERSHOOT)
            __builtin_trap();
        if (rc == 0 && server_sends && !nf_ws_is_closing(ws))
            nf_ws_send(ws, (off & 1) != 0, "server;frame", 12);
        if (max_output == 0 || ++reads % 4 == 0)
            check_output(out, &closed, deflate);
    }
    /* Through the socket: what is left is read once the output drains, and
     * then the stream's end is seen. */
    for (int i = 0; via_sock && rc == 0 && i < 4 && !ms.read_eof; i++) {
        check_output(out, &closed, deflate);
        rc = nf_ws_read(ws);
        if (nf_ws_queued_bytes(ws) > max_output + OVERSHOOT)
            __builtin_trap();
    }
    if (via_sock && rc == 0 && ms.left == 0 && !ms.read_eof)
        __builtin_trap();   /* all parsed, output drained, yet the end not read */
    if (via_sock && ms.read_eof && rc != NF_EPIPE && rc != NF_EOF)
        __builtin_trap();
    check_output(out, &closed, deflate);
    if (rc != 0 && (evbuffer_get_length(in) != 0 || nf_ws_input_pending(ws)))
        __builtin_trap();   /* input after the end is discarded, never kept */
    nf_ws_free(ws);
    bufferevent_free(bev);
    /* libevent 2.1 finishes freeing a bufferevent in a finalizer callback
     * run by the loop: without this, every input leaks one. */
    event_base_loop(base, EVLOOP_NONBLOCK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct event_base *base;
    if (size < 1)
        return 0;
    if (base == NULL)
        base = event_base_new();
    run(base, data, size, 0, false);
    run(base, data, size, MAX_OUTPUT, false);
    run(base, data, size, 0, true);
    return 0;
}
