/* test_ws.c - host/ws/ws.c against RFC 6455, frame by frame.
 *
 * The server side of one connection runs on a socket bufferevent without a
 * socket: the test appends client bytes to its input, calls nf_ws_read, and
 * reads what the server queued in its output. Each case is one of the
 * Autobahn TestSuite groups 1-7 (case numbers in the comments) and asserts
 * what the RFC asks: the message delivered, the pong echoed, or the close
 * frame's status code and the end of the connection (nf_ws_read = NF_EOF, distinct from a failure).
 * spec/robust/rfc6455.test.mjs runs the same cases over TCP. */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "test.h"
#include "errors.h"
#include "ws.h"

#if defined(__SANITIZE_ADDRESS__)
/* ASan's allocator interface (its header is not always installed). */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

#define MAX_MSG 4096

typedef struct harness {
    struct event_base *base;
    struct bufferevent *bev;
    nf_ws *ws;
    int messages;
    bool last_binary;
    uint8_t last[MAX_MSG + 1];
    size_t last_len;
    uint32_t last_sum;   /* of all the bytes of the last message, whatever its size */
    int rc;           /* the last nf_ws_read result */
} harness;

static void on_message(void *ud, bool binary, const uint8_t *data, size_t len)
{
    harness *h = ud;
    h->messages++;
    h->last_binary = binary;
    h->last_len = len <= MAX_MSG ? len : MAX_MSG + 1;
    if (len && len <= MAX_MSG)
        memcpy(h->last, data, len);
    h->last_sum = 0;
    for (size_t i = 0; i < len; i++)
        h->last_sum += data[i];
}

static void on_activity(void *ud) { (void)ud; }

static const nf_ws_callbacks callbacks = { on_message, on_activity, NULL, NULL };

static void h_open_with(harness *h, size_t max_msg, size_t max_output)
{
    memset(h, 0, sizeof *h);
    h->base = event_base_new();
    h->bev = bufferevent_socket_new(h->base, -1, 0);   /* no socket: buffers only */
    /* The test plays the socket: it fills the input and empties the output. */
    evbuffer_unfreeze(bufferevent_get_input(h->bev), 0);
    evbuffer_unfreeze(bufferevent_get_output(h->bev), 1);
    h->ws = nf_ws_new(h->bev, max_msg, max_output, &callbacks, h);
}

static void h_open(harness *h) { h_open_with(h, MAX_MSG, 0); }

static void h_close(harness *h)
{
    nf_ws_free(h->ws);
    bufferevent_free(h->bev);
    event_base_free(h->base);
}

/* Client bytes in, one nf_ws_read. */
static int h_feed(harness *h, const void *bytes, size_t n)
{
    evbuffer_add(bufferevent_get_input(h->bev), bytes, n);
    h->rc = nf_ws_read(h->ws);
    return h->rc;
}

/* Appends a client frame: masked unless `unmasked`, with the given first
 * byte (FIN/RSV/opcode) and payload. */
static size_t frame(uint8_t *out, uint8_t b0, const void *payload, size_t n, bool unmasked)
{
    static const uint8_t key[4] = { 0x37, 0xfa, 0x21, 0x3d };
    size_t o = 0;
    out[o++] = b0;
    uint8_t mask = unmasked ? 0 : 0x80;
    if (n < 126) {
        out[o++] = mask | (uint8_t)n;
    } else if (n <= 0xFFFF) {
        out[o++] = mask | 126;
        out[o++] = (uint8_t)(n >> 8);
        out[o++] = (uint8_t)n;
    } else {
        out[o++] = mask | 127;
        for (int i = 7; i >= 0; i--)
            out[o++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    if (!unmasked) {
        memcpy(out + o, key, 4);
        o += 4;
    }
    for (size_t i = 0; i < n; i++)
        out[o + i] = ((const uint8_t *)payload)[i] ^ (unmasked ? 0 : key[i % 4]);
    return o + n;
}

static int send_frame(harness *h, uint8_t b0, const void *payload, size_t n)
{
    uint8_t buf[MAX_MSG + 64];
    return h_feed(h, buf, frame(buf, b0, payload, n, false));
}

/* The first server frame in the output: returns its opcode (-1 if none) and
 * removes it; payload copied to pl (up to 256 bytes). */
static int take_frame(harness *h, uint8_t *pl, size_t *pl_len)
{
    struct evbuffer *out = bufferevent_get_output(h->bev);
    uint8_t hdr[10];
    size_t have = evbuffer_get_length(out);
    if (have < 2)
        return -1;
    evbuffer_copyout(out, hdr, have < 10 ? have : 10);
    size_t hlen = 2, len = hdr[1] & 0x7f;
    if (hdr[1] & 0x80)
        return -2;   /* a server must not mask */
    if (len == 126) {
        hlen = 4;
        len = (size_t)hdr[2] << 8 | hdr[3];
    } else if (len == 127) {
        hlen = 10;
        len = 0;
        for (int i = 2; i < 10; i++)
            len = len << 8 | hdr[i];
    }
    if (have < hlen + len)
        return -3;
    evbuffer_drain(out, hlen);
    size_t keep = len < 256 ? len : 256;
    evbuffer_remove(out, pl, keep);
    evbuffer_drain(out, len - keep);
    *pl_len = len;
    return hdr[0];   /* FIN/RSV/opcode byte */
}

/* Expects the output to be exactly one close frame with `code`, and the
 * connection finished. */
static void expect_close(harness *h, uint16_t code, const char *what)
{
    uint8_t pl[256];
    size_t n = 0;
    int b0 = take_frame(h, pl, &n);
    bool ok = b0 == 0x88 && n >= 2 && (pl[0] << 8 | pl[1]) == code && h->rc == NF_EOF &&
              evbuffer_get_length(bufferevent_get_output(h->bev)) == 0;
    if (!ok)
        fprintf(stderr, "%s: expected close %u, got frame 0x%x len %zu code %d, rc %d\n", what, code, b0, n,
                n >= 2 ? pl[0] << 8 | pl[1] : -1, h->rc);
    CHECK(ok);
}

static void expect_open_and_quiet(harness *h, const char *what)
{
    bool ok = h->rc == 0 && !nf_ws_is_closing(h->ws) &&
              evbuffer_get_length(bufferevent_get_output(h->bev)) == 0;
    if (!ok)
        fprintf(stderr, "%s: expected the connection open with nothing sent (rc %d)\n", what, h->rc);
    CHECK(ok);
}

/* ---- cases ---------------------------------------------------------------------- */

typedef struct bad_case {
    const char *name;
    uint8_t b0;
    const char *payload;
    size_t len;
    uint16_t code;
} bad_case;

/* One frame, answered with a close code. */
static void single_bad_frames(void)
{
    static const bad_case cases[] = {
        { "3.1 RSV1 text", 0xC1, "Hello", 5, 1002 },
        { "3.2 RSV2 text", 0xA1, "Hello", 5, 1002 },
        { "3.3 RSV1+RSV2", 0xE1, "Hello", 5, 1002 },
        { "3.4 RSV3 ping", 0x99, "", 0, 1002 },
        { "3.7 RSV all close", 0xF8, "", 0, 1002 },
        { "4.1.1 opcode 3", 0x83, "", 0, 1002 },
        { "4.1.2 opcode 4", 0x84, "x", 1, 1002 },
        { "4.1.3 opcode 5", 0x85, "", 0, 1002 },
        { "opcode 6", 0x86, "", 0, 1002 },
        { "opcode 7", 0x87, "", 0, 1002 },
        { "4.2.1 opcode 11", 0x8B, "", 0, 1002 },
        { "4.2.2 opcode 12", 0x8C, "x", 1, 1002 },
        { "opcode 13", 0x8D, "", 0, 1002 },
        { "opcode 14", 0x8E, "", 0, 1002 },
        { "opcode 15", 0x8F, "", 0, 1002 },
        { "5.1 fragmented ping", 0x09, "frag", 4, 1002 },
        { "5.2 fragmented pong", 0x0A, "frag", 4, 1002 },
        { "5.3 continuation without start", 0x80, "cont", 4, 1002 },
        { "5.9 unfinished continuation first", 0x00, "cont", 4, 1002 },
        { "6.x invalid UTF-8 text", 0x81, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64", 20, 1007 },
        { "6.x overlong NUL", 0x81, "\xc0\x80", 2, 1007 },
        { "6.x surrogate", 0x81, "\xed\xa0\x80", 3, 1007 },
        { "6.x > U+10FFFF", 0x81, "\xf4\x90\x80\x80", 4, 1007 },
        { "6.x truncated sequence", 0x81, "ab\xe2\x82", 4, 1007 },
        { "7.3.2 close with 1-byte payload", 0x88, "\x03", 1, 1002 },
        { "7.5.1 close reason invalid UTF-8", 0x88, "\x03\xe8\xce\xba\xed\xa0\x80", 7, 1007 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        harness h;
        h_open(&h);
        send_frame(&h, cases[i].b0, cases[i].payload, cases[i].len);
        expect_close(&h, cases[i].code, cases[i].name);
        CHECK(h.messages == 0);
        h_close(&h);
    }
}

static void unmasked_frame(void)
{
    harness h;
    uint8_t buf[64];
    h_open(&h);
    h_feed(&h, buf, frame(buf, 0x81, "Hello", 5, true));
    expect_close(&h, 1002, "unmasked client frame");
    CHECK(h.messages == 0);
    h_close(&h);
}

/* 7.9.x / 7.7.x: close codes the peer may and may not send. */
static void close_codes(void)
{
    static const uint16_t invalid[] = { 0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535 };
    static const uint16_t valid[] = { 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999 };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        harness h;
        uint8_t pl[2] = { (uint8_t)(invalid[i] >> 8), (uint8_t)invalid[i] };
        char what[64];
        snprintf(what, sizeof what, "close code %u", invalid[i]);
        h_open(&h);
        send_frame(&h, 0x88, pl, 2);
        expect_close(&h, 1002, what);
        h_close(&h);
    }
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        harness h;
        uint8_t pl[6] = { (uint8_t)(valid[i] >> 8), (uint8_t)valid[i], 'b', 'y', 'e', '!' };
        char what[64];
        snprintf(what, sizeof what, "close code %u (echoed)", valid[i]);
        h_open(&h);
        send_frame(&h, 0x88, pl, sizeof pl);
        expect_close(&h, valid[i], what);
        CHECK(nf_ws_peer_close_code(h.ws) == valid[i]);
        h_close(&h);
    }
    /* 7.3.1: an empty close is answered with an empty close. */
    harness h;
    uint8_t pl[256];
    size_t n = 99;
    h_open(&h);
    send_frame(&h, 0x88, "", 0);
    CHECK(take_frame(&h, pl, &n) == 0x88 && n == 0 && h.rc == NF_EOF);
    CHECK(nf_ws_peer_close_code(h.ws) == 1005);
    h_close(&h);
}

/* 2.x ping/pong, 5.x fragmentation with control frames in between. */
static void valid_sequences(void)
{
    harness h;
    uint8_t pl[256];
    size_t n;

    /* 2.2 / 2.4: ping with payload (125 bytes is the maximum) -> pong with the same. */
    uint8_t big[125];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7);
    h_open(&h);
    send_frame(&h, 0x89, big, sizeof big);
    CHECK(take_frame(&h, pl, &n) == 0x8A && n == sizeof big && memcmp(pl, big, n) == 0);
    expect_open_and_quiet(&h, "after ping 125");
    /* 2.6: an unsolicited pong is ignored. */
    send_frame(&h, 0x8A, "unsolicited", 11);
    expect_open_and_quiet(&h, "unsolicited pong");
    /* 5.6-5.8: fragmented text with ping and pong in between: one message. */
    send_frame(&h, 0x01, "frag", 4);
    send_frame(&h, 0x89, "p", 1);
    CHECK(take_frame(&h, pl, &n) == 0x8A && n == 1 && pl[0] == 'p');
    send_frame(&h, 0x00, "men", 3);
    send_frame(&h, 0x8A, "", 0);
    CHECK(h.messages == 0);
    send_frame(&h, 0x80, "ted", 3);
    CHECK(h.messages == 1 && !h.last_binary && h.last_len == 10 && memcmp(h.last, "fragmented", 10) == 0);
    expect_open_and_quiet(&h, "after fragmented text");
    /* 6.x: valid UTF-8 split in the middle of a code point across fragments. */
    send_frame(&h, 0x01, "\xce", 1);
    send_frame(&h, 0x80, "\xba\xe1\xbd\xb9", 4);
    CHECK(h.messages == 2 && h.last_len == 5 && memcmp(h.last, "\xce\xba\xe1\xbd\xb9", 5) == 0);
    /* 1.x: empty text and binary messages, binary with any bytes. */
    send_frame(&h, 0x81, "", 0);
    CHECK(h.messages == 3 && h.last_len == 0);
    send_frame(&h, 0x82, "\xff\x00\xfe", 3);
    CHECK(h.messages == 4 && h.last_binary && h.last_len == 3);
    /* A frame delivered one byte at a time. */
    uint8_t buf[64];
    size_t fl = frame(buf, 0x81, "bytewise", 8, false);
    for (size_t i = 0; i < fl; i++)
        h_feed(&h, buf + i, 1);
    CHECK(h.messages == 5 && h.last_len == 8 && memcmp(h.last, "bytewise", 8) == 0);
    /* The largest message allowed, with a 16-bit length. */
    static uint8_t maxmsg[MAX_MSG];
    memset(maxmsg, 'a', sizeof maxmsg);
    send_frame(&h, 0x82, maxmsg, sizeof maxmsg);
    CHECK(h.messages == 6 && h.last_len == MAX_MSG);
    expect_open_and_quiet(&h, "after the valid sequences");
    h_close(&h);
}

/* Fail fast: the connection is failed as soon as the invalid bytes arrive,
 * before the message (or even the frame) is complete. */
static void utf8_fail_fast(void)
{
    harness h;
    uint8_t buf[64];
    /* 6.4.1-like: first fragment valid, second carries the invalid bytes,
     * the final fragment never comes. */
    h_open(&h);
    send_frame(&h, 0x01, "\xce\xba\xe1\xbd\xb9", 5);
    expect_open_and_quiet(&h, "valid first fragment");
    send_frame(&h, 0x00, "\xf4\x90\x80\x80", 4);
    expect_close(&h, 1007, "invalid UTF-8 in a middle fragment");
    CHECK(h.messages == 0);
    h_close(&h);
    /* 6.4.3-like: one frame, only its first part arrived, invalid already. */
    h_open(&h);
    size_t fl = frame(buf, 0x81, "\xce\xba\xf4\x90\x80\x80\x65\x64\x69\x74\x65\x64", 12, false);
    h_feed(&h, buf, fl - 6);
    expect_close(&h, 1007, "invalid UTF-8 in a partial frame");
    h_close(&h);
    /* Truncated code point at the end of the final fragment. */
    h_open(&h);
    send_frame(&h, 0x01, "ok", 2);
    send_frame(&h, 0x80, "\xe2\x82", 2);
    expect_close(&h, 1007, "code point cut at the end of the message");
    h_close(&h);
}

/* A close reason split across reads: wslay alone checks only the first
 * read's part and then echoes the reason. */
static void close_reason_split(void)
{
    static const uint8_t reason[] = { 0x0f, 0xa0, 'o', 'k', 0xce, 0xba, 0xed, 0xa0, 0x80, 'x' };   /* 4000 + bad */
    uint8_t buf[64];
    size_t n = frame(buf, 0x88, reason, sizeof reason, false);
    for (size_t cut = 3; cut < n; cut++) {
        harness h;
        char what[64];
        snprintf(what, sizeof what, "invalid close reason cut at byte %zu", cut);
        h_open(&h);
        h_feed(&h, buf, cut);
        if (h.rc == 0)
            h_feed(&h, buf + cut, n - cut);
        expect_close(&h, 1007, what);
        h_close(&h);
    }
    /* A valid reason cut anywhere is echoed. */
    static const uint8_t good[] = { 0x0f, 0xa0, 'o', 'k', 0xce, 0xba, 0xe1, 0xbd, 0xb9 };
    n = frame(buf, 0x88, good, sizeof good, false);
    for (size_t cut = 3; cut < n; cut++) {
        harness h;
        h_open(&h);
        h_feed(&h, buf, cut);
        h_feed(&h, buf + cut, n - cut);
        expect_close(&h, 4000, "valid close reason cut");
        h_close(&h);
    }
}

static void fragmentation_errors(void)
{
    harness h;
    /* 5.17-5.20: a new data frame while a fragmented message is open. */
    h_open(&h);
    send_frame(&h, 0x01, "one", 3);
    send_frame(&h, 0x81, "two", 3);
    expect_close(&h, 1002, "text frame interleaved in a fragmented message");
    CHECK(h.messages == 0);
    h_close(&h);
    h_open(&h);
    send_frame(&h, 0x02, "one", 3);
    send_frame(&h, 0x01, "two", 3);
    expect_close(&h, 1002, "new fragmented message while one is open");
    h_close(&h);
    /* 5.4-like: continuation after a complete message. */
    h_open(&h);
    send_frame(&h, 0x81, "done", 4);
    CHECK(h.messages == 1);
    send_frame(&h, 0x80, "more", 4);
    expect_close(&h, 1002, "continuation after a final frame");
    h_close(&h);
}

/* Frame-layer errors: wslay answers them with a close without status code;
 * ws.c's header guard makes them 1002. */
static void header_errors(void)
{
    harness h;
    uint8_t buf[300];
    /* 2.5: ping with a 126-byte payload (16-bit length form). */
    static uint8_t big[126];
    h_open(&h);
    send_frame(&h, 0x89, big, sizeof big);
    expect_close(&h, 1002, "ping with 126 bytes");
    h_close(&h);
    /* Close frame longer than 125 bytes. */
    h_open(&h);
    big[0] = 0x03;
    big[1] = 0xe8;
    send_frame(&h, 0x88, big, sizeof big);
    expect_close(&h, 1002, "close with 126 bytes");
    h_close(&h);
    /* A 64-bit length with the top bit set (CVE-2020-27813 class): only the
     * header arrives; the answer must not wait for the payload. */
    static const uint8_t top[] = { 0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4 };
    h_open(&h);
    h_feed(&h, top, sizeof top);
    expect_close(&h, 1002, "64-bit length with the top bit set");
    h_close(&h);
    /* All ones: the largest 64-bit length. */
    static const uint8_t ones[] = { 0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    h_open(&h);
    h_feed(&h, ones, sizeof ones);
    expect_close(&h, 1002, "64-bit length all ones");
    h_close(&h);
    /* Non-minimal lengths: 16-bit form for 5 bytes; 64-bit form for 200. */
    static const uint8_t nm16[] = { 0x81, 0xfe, 0x00, 0x05 };
    h_open(&h);
    h_feed(&h, nm16, sizeof nm16);
    expect_close(&h, 1002, "16-bit length below 126");
    h_close(&h);
    static const uint8_t nm64[] = { 0x81, 0xff, 0, 0, 0, 0, 0, 0, 0, 200 };
    h_open(&h);
    h_feed(&h, nm64, sizeof nm64);
    expect_close(&h, 1002, "64-bit length below 65536");
    h_close(&h);
    /* A valid message in the same read before the bad header still counts. */
    h_open(&h);
    size_t n = frame(buf, 0x81, "first", 5, false);
    buf[n++] = 0x89;
    buf[n++] = 0xfe;   /* masked ping, 16-bit length */
    h_feed(&h, buf, n);
    CHECK(h.messages == 1 && h.last_len == 5);
    expect_close(&h, 1002, "bad header after a good frame");
    h_close(&h);
}

/* 9.x-like: the size limit, for one frame and across fragments. */
static void size_limit(void)
{
    harness h;
    static uint8_t big[MAX_MSG + 1];
    h_open(&h);
    send_frame(&h, 0x82, big, sizeof big);
    expect_close(&h, 1009, "one byte over the maximum");
    CHECK(h.messages == 0);
    h_close(&h);
    h_open(&h);
    send_frame(&h, 0x02, big, MAX_MSG / 2);
    send_frame(&h, 0x00, big, MAX_MSG / 2);
    expect_open_and_quiet(&h, "fragments up to the maximum");
    send_frame(&h, 0x80, big, 1);
    expect_close(&h, 1009, "fragments one byte over the maximum");
    CHECK(h.messages == 0);
    h_close(&h);
    /* A huge announced length (without the top bit): 1009 as soon as the
     * header is complete, without waiting for payload. */
    static const uint8_t huge[] = { 0x82, 0xff, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 1, 2, 3, 4 };
    h_open(&h);
    h_feed(&h, huge, sizeof huge);
    expect_close(&h, 1009, "1 TiB announced");
    h_close(&h);
}

/* After the connection failed, more input is discarded, not buffered. */
static void input_after_failure(void)
{
    harness h;
    static uint8_t junk[65536];
    h_open(&h);
    send_frame(&h, 0x83, "", 0);
    expect_close(&h, 1002, "opcode 3");
    h_feed(&h, junk, sizeof junk);
    CHECK(h.rc == NF_EOF);
    CHECK(evbuffer_get_length(bufferevent_get_input(h.bev)) == 0);
    CHECK(evbuffer_get_length(bufferevent_get_output(h.bev)) == 0);
    h_close(&h);
}

/* The server's own close and frames. */
static void server_side(void)
{
    harness h;
    uint8_t pl[256];
    size_t n;
    h_open(&h);
    CHECK(nf_ws_send(h.ws, false, "hi", 2) == 0);
    CHECK(take_frame(&h, pl, &n) == 0x81 && n == 2 && memcmp(pl, "hi", 2) == 0);
    nf_ws_close(h.ws, 1001, "going away", 10);
    CHECK(nf_ws_is_closing(h.ws));
    CHECK(take_frame(&h, pl, &n) == 0x88 && n == 12 && pl[0] == 0x03 && pl[1] == 0xe9);
    CHECK(nf_ws_send(h.ws, false, "late", 4) == NF_EPIPE);
    /* The peer's answering close finishes the connection. */
    uint8_t cl[2] = { 0x03, 0xe9 };
    send_frame(&h, 0x88, cl, 2);
    CHECK(h.rc == NF_EOF);
    CHECK(evbuffer_get_length(bufferevent_get_output(h.bev)) == 0);   /* no second close */
    h_close(&h);
}

/* Heap bytes in use, from the allocator itself (ASan's in the sanitizer
 * build, glibc's otherwise). */
static size_t heap_in_use(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return __sanitizer_get_current_allocated_bytes();
#else
    return mallinfo2().uordblks;
#endif
}

/* Feeds one frame of a 1-byte payload. */
static void send_byte_frame(harness *h, uint8_t b0, uint8_t byte)
{
    uint8_t buf[8];
    h_feed(h, buf, frame(buf, b0, &byte, 1, false));
}

/* A message sent as 1-byte fragments costs the server about its payload,
 * not a heap chunk per fragment (issue 11 point 3); it is delivered whole,
 * with pings in between answered, and the size limit counts the sum. */
static void tiny_fragments(void)
{
    enum { BIG = 65536 };
    harness h;
    uint8_t pl[256];
    size_t n;
    uint32_t sum = 0;
    h_open_with(&h, BIG, 0);
    size_t before = heap_in_use(), peak = 0;
    for (size_t i = 0; i < BIG - 1; i++) {
        uint8_t c = (uint8_t)('a' + i % 26);
        sum += c;
        send_byte_frame(&h, i == 0 ? 0x01 : 0x00, c);
        if (i % 4096 == 0) {
            send_frame(&h, 0x89, "p", 1);
            CHECK(take_frame(&h, pl, &n) == 0x8A && n == 1);
        }
    }
    size_t now = heap_in_use();
    peak = now > before ? now - before : 0;
    CHECK(h.rc == 0 && h.messages == 0);
    /* The buffer (at most twice the payload) and wslay's fixed state. */
    if (peak > 2 * BIG + 16384)
        fprintf(stderr, "tiny fragments: %zu heap bytes for a %d-byte message\n", peak, BIG);
    CHECK(peak <= 2 * BIG + 16384);
    sum += 'z';
    send_byte_frame(&h, 0x80, 'z');
    CHECK(h.messages == 1 && !h.last_binary && h.last_len == MAX_MSG + 1 && h.last_sum == sum);
    expect_open_and_quiet(&h, "after a message of 1-byte fragments");
    h_close(&h);

    /* The maximum counts the sum of the fragments: one more byte is 1009,
     * before the message ends. */
    h_open_with(&h, BIG, 0);
    for (size_t i = 0; i < BIG; i++)
        send_byte_frame(&h, i == 0 ? 0x02 : 0x00, 1);
    expect_open_and_quiet(&h, "1-byte fragments up to the maximum");
    send_byte_frame(&h, 0x00, 1);
    expect_close(&h, 1009, "1-byte fragments one byte over the maximum");
    CHECK(h.messages == 0);
    h_close(&h);

    /* UTF-8 is checked across 1-byte fragments, failing at the bad byte. */
    static const uint8_t text[] = { 0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xf4, 0x90, 0x80, 0x80 };
    h_open(&h);
    for (size_t i = 0; i < 6; i++) {
        send_byte_frame(&h, i == 0 ? 0x01 : 0x00, text[i]);
        expect_open_and_quiet(&h, "valid UTF-8 so far, 1 byte per fragment");
    }
    send_byte_frame(&h, 0x00, text[6]);
    expect_close(&h, 1007, "invalid UTF-8 across 1-byte fragments");
    CHECK(h.messages == 0);
    h_close(&h);
}

/* Control-frame replies count against the output bound: while the output is
 * over it, input is left unparsed, so pings read while nobody drains the
 * output cannot grow it without end (issue 11 point 1). Draining lets the
 * rest be parsed: every ping is answered, none is lost. */
static void output_bound(void)
{
    enum { BOUND = 1024, PINGS = 200 };
    harness h;
    static uint8_t buf[PINGS * 131];
    static uint8_t ping[125];
    size_t len = 0;
    for (size_t i = 0; i < PINGS; i++)
        len += frame(buf + len, 0x89, ping, sizeof ping, false);
    h_open_with(&h, MAX_MSG, BOUND);
    h_feed(&h, buf, len);
    struct evbuffer *out = bufferevent_get_output(h.bev);
    size_t pongs = 0, rounds = 0;
    /* Parsing stops before the frame after the one whose pong passed the
     * bound: it is passed by one control frame at most. */
    CHECK(h.rc == 0 && nf_ws_queued_bytes(h.ws) > BOUND && nf_ws_queued_bytes(h.ws) <= BOUND + 127);
    CHECK(nf_ws_input_pending(h.ws));
    while (pongs < PINGS && rounds++ < PINGS) {
        CHECK(nf_ws_queued_bytes(h.ws) <= BOUND + 127);
        uint8_t pl[256];
        size_t n;
        while (take_frame(&h, pl, &n) == 0x8A && n == sizeof ping)
            pongs++;
        CHECK(evbuffer_get_length(out) == 0);
        h.rc = nf_ws_read(h.ws);
    }
    CHECK(pongs == PINGS);
    CHECK(evbuffer_get_length(bufferevent_get_input(h.bev)) == 0 && !nf_ws_input_pending(h.ws));
    expect_open_and_quiet(&h, "after every ping was answered");
    h_close(&h);
}

int main(void)
{
    single_bad_frames();
    unmasked_frame();
    close_codes();
    valid_sequences();
    utf8_fail_fast();
    close_reason_split();
    fragmentation_errors();
    header_errors();
    size_limit();
    input_after_failure();
    server_side();
    tiny_fragments();
    output_bound();
    return TEST_REPORT();
}
