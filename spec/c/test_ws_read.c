/* test_ws_read.c - the read path of host/ws/ws.c over a real socket
 * (issue 14 point 1): as much as the socket holds is read at once into one
 * buffer, a message in one frame is handed over from where the socket put
 * it (copied once, by the kernel), the output bound stops reading, and the
 * end of the stream is reported.
 *
 * The server end of a socketpair is read through the transport seam
 * (sock.h) by a transport that wraps the plain one and records every read:
 * how many, and into which memory. The test writes masked client frames to
 * the other end. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "test.h"
#include "errors.h"
#include "sock.h"
#include "ws.h"

#define BIG 60000   /* a large message that still fits the pooled input buffer (64 KiB) */
#define MAX_MSG (1 << 20)
#define READS_KEPT 64

typedef struct harness {
    struct event_base *base;
    struct bufferevent *bev;
    nf_ws *ws;
    int sv[2];
    nf_sock sock;
    /* the reads through the seam */
    unsigned reads;
    const uint8_t *read_at[READS_KEPT];
    size_t read_len[READS_KEPT];
    /* the messages */
    unsigned messages;
    size_t last_len;
    bool last_binary;
    bool last_in_read_buffer;   /* the data handed over lies where a read put it */
    uint32_t last_sum;
} harness;

static ssize_t counting_read(nf_sock *s, void *buf, size_t len)
{
    harness *h = s->ctx;
    ssize_t n = nf_sock_plain.read(s, buf, len);
    if (n > 0 && h->reads < READS_KEPT) {
        h->read_at[h->reads] = buf;
        h->read_len[h->reads] = (size_t)n;
    }
    if (n > 0)
        h->reads++;
    return n;
}

static const nf_sock_ops counting_ops = { counting_read, NULL, NULL };

static bool in_a_read(const harness *h, const uint8_t *p, size_t len)
{
    /* Inside the memory the reads since the last reset filled (they are
     * contiguous when the input buffer is: one buffer, not a copy). */
    for (unsigned i = 0; i < h->reads && i < READS_KEPT; i++) {
        for (unsigned j = i; j < h->reads && j < READS_KEPT; j++) {
            const uint8_t *lo = h->read_at[i], *hi = h->read_at[j] + h->read_len[j];
            if (p >= lo && p + len <= hi)
                return true;
        }
    }
    return false;
}

static void on_message(void *ud, bool binary, const uint8_t *data, size_t len)
{
    harness *h = ud;
    h->messages++;
    h->last_len = len;
    h->last_binary = binary;
    h->last_in_read_buffer = in_a_read(h, data, len);
    h->last_sum = 0;
    for (size_t i = 0; i < len; i++)
        h->last_sum += data[i];
}

static void on_activity(void *ud) { (void)ud; }

static const nf_ws_callbacks callbacks = { on_message, on_activity, NULL, NULL };

static void h_open(harness *h, size_t max_output)
{
    memset(h, 0, sizeof *h);
    h->base = event_base_new();
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, h->sv) == 0);
    int big = 1 << 20;
    setsockopt(h->sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(h->sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    fcntl(h->sv[0], F_SETFL, O_NONBLOCK);
    h->bev = bufferevent_socket_new(h->base, -1, 0);   /* its output only: the test empties it */
    evbuffer_unfreeze(bufferevent_get_output(h->bev), 1);
    h->ws = nf_ws_new(h->bev, MAX_MSG, max_output, &callbacks, h);
    h->sock.ops = &counting_ops;
    h->sock.fd = h->sv[0];
    h->sock.ctx = h;
    nf_ws_set_sock(h->ws, &h->sock);
}

static void h_close(harness *h)
{
    nf_ws_free(h->ws);
    bufferevent_free(h->bev);
    close(h->sv[0]);
    if (h->sv[1] >= 0)
        close(h->sv[1]);
    event_base_loop(h->base, EVLOOP_NONBLOCK);
    event_base_free(h->base);
}

/* A masked client frame of len payload bytes (fill: byte i = i * 7 + seed). */
static size_t client_frame(uint8_t *out, uint8_t b0, const uint8_t *payload, size_t len)
{
    static const uint8_t key[4] = { 0x37, 0xfa, 0x21, 0x3d };
    size_t n = 0;
    out[n++] = b0;
    if (len < 126) {
        out[n++] = (uint8_t)(0x80 | len);
    } else if (len <= 0xFFFF) {
        out[n++] = 0x80 | 126;
        out[n++] = (uint8_t)(len >> 8);
        out[n++] = (uint8_t)len;
    } else {
        out[n++] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            out[n++] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    }
    memcpy(out + n, key, 4);
    n += 4;
    for (size_t i = 0; i < len; i++)
        out[n + i] = payload[i] ^ key[i & 3];
    return n + len;
}

static void send_all(harness *h, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(h->sv[1], p, n);
        CHECK(w > 0);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* The status code of the close frame the server queued, or 0. */
static unsigned close_code_sent(harness *h)
{
    struct evbuffer *out = bufferevent_get_output(h->bev);
    uint8_t f[4];
    if (evbuffer_get_length(out) < 4 || evbuffer_copyout(out, f, 4) != 4 || f[0] != 0x88)
        return 0;
    return (unsigned)f[2] << 8 | f[3];
}

/* A 60 kB message written at once is read with one or two reads (not one
 * per 4 KiB) and handed over from the buffer the socket was read into. */
static void big_message_one_read(void)
{
    harness h;
    h_open(&h, 0);
    uint8_t *payload = malloc(BIG), *frame = malloc(BIG + 14);
    uint32_t sum = 0;
    for (size_t i = 0; i < BIG; i++) {
        payload[i] = (uint8_t)(i * 7 + 3);
        sum += payload[i];
    }
    size_t n = client_frame(frame, 0x82, payload, BIG);
    send_all(&h, frame, n);
    CHECK(nf_ws_read(h.ws) == 0);
    CHECK(h.messages == 1 && h.last_len == BIG && h.last_binary && h.last_sum == sum);
    CHECK(h.reads <= 2);
    CHECK(h.last_in_read_buffer);
    free(payload);
    free(frame);
    h_close(&h);
}

/* Many small frames that arrived together: one read, every message. */
static void small_frames_one_read(void)
{
    enum { FRAMES = 200 };
    harness h;
    h_open(&h, 0);
    static uint8_t buf[FRAMES * 80];
    uint8_t body[64];
    memset(body, 'x', sizeof body);
    size_t n = 0;
    for (int i = 0; i < FRAMES; i++)
        n += client_frame(buf + n, 0x81, body, sizeof body);
    send_all(&h, buf, n);
    CHECK(nf_ws_read(h.ws) == 0);
    CHECK(h.messages == FRAMES);
    CHECK(h.reads == 1);
    CHECK(h.last_in_read_buffer);
    h_close(&h);
}

/* A message that trickles in is parsed as its bytes come and handed over
 * whole, from one buffer, whatever the reads were. */
static void big_message_in_pieces(void)
{
    harness h;
    h_open(&h, 0);
    size_t len = 5 * BIG;   /* larger than the pooled buffer: it grows */
    uint8_t *payload = malloc(len), *frame = malloc(len + 14);
    uint32_t sum = 0;
    for (size_t i = 0; i < len; i++) {
        payload[i] = (uint8_t)(i * 13 + 1);
        sum += payload[i];
    }
    size_t n = client_frame(frame, 0x82, payload, len);
    for (size_t off = 0; off < n; off += 10000) {
        send_all(&h, frame + off, n - off < 10000 ? n - off : 10000);
        CHECK(nf_ws_read(h.ws) == 0);
        CHECK(h.messages == (off + 10000 >= n ? 1u : 0u));
    }
    CHECK(h.messages == 1 && h.last_len == len && h.last_sum == sum);
    free(payload);
    free(frame);
    h_close(&h);
}

/* Invalid UTF-8 deep in a large text frame fails the connection (1007) as
 * soon as the bad byte arrived, before the frame is whole (RFC 6455 8.1). */
static void utf8_fail_fast_big(void)
{
    harness h;
    h_open(&h, 0);
    uint8_t *payload = malloc(BIG), *frame = malloc(BIG + 14);
    memset(payload, 'a', BIG);
    payload[BIG / 2] = 0xff;
    size_t n = client_frame(frame, 0x81, payload, BIG);
    send_all(&h, frame, n / 2 + 64);   /* the bad byte is there, the rest is not */
    CHECK(nf_ws_read(h.ws) == NF_EOF);
    CHECK(close_code_sent(&h) == 1007);
    CHECK(h.messages == 0);
    free(payload);
    free(frame);
    h_close(&h);
}

/* While the output is over its bound the socket is not read at all, and
 * what was read waits unparsed (issue 11: the output bound holds on this
 * path too). */
static void output_bound_stops_reading(void)
{
    enum { BOUND = 1024 };
    harness h;
    h_open(&h, BOUND);
    static uint8_t buf[64 * 131];
    uint8_t ping[125];
    memset(ping, 'p', sizeof ping);
    size_t n = 0;
    for (int i = 0; i < 64; i++)
        n += client_frame(buf + n, 0x89, ping, sizeof ping);
    send_all(&h, buf, n);
    CHECK(nf_ws_read(h.ws) == 0);
    CHECK(nf_ws_queued_bytes(h.ws) > BOUND && nf_ws_queued_bytes(h.ws) <= BOUND + 127);
    CHECK(nf_ws_input_pending(h.ws));
    unsigned reads = h.reads;
    send_all(&h, buf, 131);   /* more arrives: not read while over */
    CHECK(nf_ws_read(h.ws) == 0);
    CHECK(h.reads == reads);
    /* Drained, the rest is parsed and read: every ping answered. */
    struct evbuffer *out = bufferevent_get_output(h.bev);
    size_t pongs = 0;
    for (int round = 0; round < 200 && pongs < 65; round++) {
        pongs += evbuffer_get_length(out) / 127;
        evbuffer_drain(out, evbuffer_get_length(out));
        CHECK(nf_ws_read(h.ws) == 0);
    }
    CHECK(pongs == 65);
    CHECK(!nf_ws_input_pending(h.ws));
    h_close(&h);
}

/* The peer ends the stream: NF_EPIPE (the owner tears the connection down),
 * after every frame that came before it was delivered. */
static void end_of_stream(void)
{
    harness h;
    h_open(&h, 0);
    uint8_t buf[80];
    size_t n = client_frame(buf, 0x81, (const uint8_t *)"last words", 10);
    send_all(&h, buf, n);
    close(h.sv[1]);
    h.sv[1] = -1;
    int rc = nf_ws_read(h.ws);
    if (rc == 0)
        rc = nf_ws_read(h.ws);
    CHECK(rc == NF_EPIPE);
    CHECK(h.messages == 1 && h.last_len == 10);
    h_close(&h);
}

/* After the connection failed, what the peer still sends is read and
 * dropped: left in the socket, it would keep it readable and the loop
 * would spin on it until the connection is gone. */
static void input_after_end_is_drained(void)
{
    harness h;
    h_open(&h, 0);
    uint8_t buf[4096 + 64];
    size_t n = client_frame(buf, 0x83, (const uint8_t *)"x", 1);   /* opcode 3: reserved */
    send_all(&h, buf, n);
    CHECK(nf_ws_read(h.ws) == NF_EOF);
    CHECK(close_code_sent(&h) == 1002);
    memset(buf, 'z', sizeof buf);
    send_all(&h, buf, sizeof buf);
    CHECK(nf_ws_read(h.ws) == NF_EOF);
    uint8_t peek;
    CHECK(recv(h.sv[0], &peek, 1, MSG_PEEK | MSG_DONTWAIT) < 0);   /* nothing left to read */
    CHECK(h.messages == 0 && !nf_ws_input_pending(h.ws));
    h_close(&h);
}

/* Frames the bufferevent read before the upgrade (pipelined behind the
 * request) come first, then the socket's, whatever their amount (more than
 * one input buffer here), in order. */
static void bytes_before_upgrade_first(void)
{
    enum { FRAMES = 300, BODY = 400 };
    harness h;
    h_open(&h, 0);
    struct evbuffer *in = bufferevent_get_input(h.bev);
    evbuffer_unfreeze(in, 0);
    static uint8_t buf[BODY + 14];
    uint8_t body[BODY];
    memset(body, 'b', sizeof body);
    for (int i = 0; i < FRAMES; i++)
        evbuffer_add(in, buf, client_frame(buf, 0x82, body, sizeof body));
    size_t n = client_frame(buf, 0x81, (const uint8_t *)"from the socket", 15);
    send_all(&h, buf, n);
    CHECK(nf_ws_read(h.ws) == 0);
    CHECK(h.messages == FRAMES + 1);
    CHECK(h.last_len == 15 && !h.last_binary);
    CHECK(evbuffer_get_length(in) == 0 && !nf_ws_input_pending(h.ws));
    h_close(&h);
}

int main(void)
{
    big_message_one_read();
    small_frames_one_read();
    big_message_in_pieces();
    utf8_fail_fast_big();
    output_bound_stops_reading();
    end_of_stream();
    input_after_end_is_drained();
    bytes_before_upgrade_first();
    return TEST_REPORT();
}
