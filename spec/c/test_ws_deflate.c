/* test_ws_deflate.c - permessage-deflate in host/ws/ws.c, without sockets (the
 * harness of test_ws.c: client bytes into a bufferevent's input, the
 * server's frames read from its output). What the design promises and the
 * robustness tests over TCP cannot count: an idle connection keeps no zlib
 * state unless the client keeps its context; a shared (broadcast) frame is
 * compressed once per window size, whatever the number of receivers; the
 * threshold and RSV1 on what the server sends. */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <zlib.h>

#include "test.h"
#include "clock.h"
#include "deflate.h"
#include "errors.h"
#include "log.h"
#include "utf8.h"
#include "ws.h"

#if defined(__SANITIZE_ADDRESS__)
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

#define MAX_MSG 65536

static struct event_base *base;
static int delivered;
static size_t delivered_len;
static bool delivered_binary;
static uint8_t delivered_data[MAX_MSG];

static void on_message(void *ud, bool binary, const uint8_t *data, size_t len)
{
    (void)ud;
    delivered++;
    delivered_len = len;
    delivered_binary = binary;
    memcpy(delivered_data, data, len < MAX_MSG ? len : MAX_MSG);
}

static void on_activity(void *ud) { (void)ud; }

static const nf_ws_callbacks callbacks = { on_message, on_activity, NULL, NULL };

typedef struct peer {
    struct bufferevent *bev;
    nf_ws *ws;
    struct evbuffer *wire;   /* what the server wrote, in order */
} peer;

static void peer_open(peer *p, const nf_deflate_params *agreed, size_t min_bytes)
{
    p->bev = bufferevent_socket_new(base, -1, 0);
    evbuffer_unfreeze(bufferevent_get_input(p->bev), 0);
    evbuffer_unfreeze(bufferevent_get_output(p->bev), 1);
    p->ws = nf_ws_new(p->bev, MAX_MSG, 0, &callbacks, NULL);
    p->wire = evbuffer_new();
    if (agreed)
        CHECK(nf_ws_set_deflate(p->ws, agreed, min_bytes) == 0);
}

static void peer_close(peer *p)
{
    nf_ws_free(p->ws);
    bufferevent_free(p->bev);
    evbuffer_free(p->wire);
}

/* A masked client frame with first byte b0 (FIN, RSV, opcode) into p's input, then a read. */
static int peer_feed(peer *p, uint8_t b0, const uint8_t *payload, size_t n)
{
    static const uint8_t key[4] = { 1, 2, 3, 4 };
    uint8_t hdr[14];
    size_t o = 0;
    hdr[o++] = b0;
    if (n < 126) {
        hdr[o++] = 0x80 | (uint8_t)n;
    } else {
        hdr[o++] = 0x80 | 126;
        hdr[o++] = (uint8_t)(n >> 8);
        hdr[o++] = (uint8_t)n;
    }
    memcpy(hdr + o, key, 4);
    o += 4;
    struct evbuffer *in = bufferevent_get_input(p->bev);
    evbuffer_add(in, hdr, o);
    for (size_t i = 0; i < n; i++) {
        uint8_t b = payload[i] ^ key[i % 4];
        evbuffer_add(in, &b, 1);
    }
    return nf_ws_read(p->ws);
}

/* Raw deflate with a sync flush, the tail removed: a client's compressed message. */
static size_t client_compress(const void *in, size_t len, uint8_t *out, size_t cap)
{
    z_stream z = { 0 };
    deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    deflate(&z, Z_SYNC_FLUSH);
    size_t n = cap - z.avail_out - 4;
    deflateEnd(&z);
    return n;
}

/* Writes the server's output queue (owned bytes and shared frames, in
 * order) to p->wire, as the connection writes it to the socket. */
static void write_out(peer *p)
{
    struct iovec iov[16];
    int n;
    while ((n = nf_ws_output_peek(p->ws, iov, 16)) > 0) {
        size_t sum = 0;
        for (int i = 0; i < n; i++) {
            evbuffer_add(p->wire, iov[i].iov_base, iov[i].iov_len);
            sum += iov[i].iov_len;
        }
        nf_ws_output_drain(p->ws, sum);
    }
}

/* The server's next frame: its first byte, payload into buf (inflated when RSV1). */
static int take(peer *p, uint8_t *buf, size_t cap, size_t *len, size_t *wire)
{
    struct evbuffer *out = p->wire;
    write_out(p);
    uint8_t h[4];
    if (evbuffer_get_length(out) < 2)
        return -1;
    evbuffer_copyout(out, h, 4);
    size_t hl = 2, n = h[1] & 0x7f;
    if (n == 126)
        hl = 4, n = (size_t)h[2] << 8 | h[3];
    uint8_t *payload = malloc(n + 4);
    evbuffer_drain(out, hl);
    evbuffer_remove(out, payload, n);
    *wire = n;
    if (h[0] & 0x40) {
        memcpy(payload + n, "\x00\x00\xff\xff", 4);
        z_stream z = { 0 };
        inflateInit2(&z, -15);
        z.next_in = payload;
        z.avail_in = (uInt)n + 4;
        z.next_out = buf;
        z.avail_out = (uInt)cap;
        inflate(&z, Z_SYNC_FLUSH);
        *len = cap - z.avail_out;
        inflateEnd(&z);
    } else {
        memcpy(buf, payload, n < cap ? n : cap);
        *len = n;
    }
    free(payload);
    return h[0];
}

static size_t allocated(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return __sanitizer_get_current_allocated_bytes();
#else
    return mallinfo2().uordblks;
#endif
}

static const nf_deflate_params ON = { 15, 15, true, true, false };        /* --compression on */
static const nf_deflate_params CONTEXT = { 15, 15, false, true, false };  /* --compression context */

/* What K connections hold after each sent one 2 KB compressed message, less
 * what they hold with compression off, per connection. */
static long held_per_conn(const nf_deflate_params *agreed)
{
    enum { K = 64 };
    static peer peers[K];
    char text[2048];
    uint8_t z[4096];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = "abcdefgh {}\":,0123"[(i * 7 + i / 13) % 18];
    size_t zlen = client_compress(text, sizeof text, z, sizeof z);
    long bytes[2];
    for (int pass = 0; pass < 2; pass++) {
        const nf_deflate_params *a = pass ? agreed : NULL;
        for (int i = 0; i < K; i++)
            peer_open(&peers[i], a, 256);
        size_t before = allocated();
        for (int i = 0; i < K; i++)
            CHECK((a ? peer_feed(&peers[i], 0xc1, z, zlen) : peer_feed(&peers[i], 0x81, (uint8_t *)text, sizeof text)) == 0);
        bytes[pass] = (long)(allocated() - before);
        for (int i = 0; i < K; i++)
            peer_close(&peers[i]);
    }
    return (bytes[1] - bytes[0]) / K;
}

static void test_idle_memory(void)
{
    int d0 = delivered;
    held_per_conn(&ON);   /* warm up: the shared inflater, the slot pool */
    long on = held_per_conn(&ON), ctx = held_per_conn(&CONTEXT);
    printf("held per connection after one compressed message: on %ld bytes, context %ld bytes\n", on, ctx);
    CHECK(delivered - d0 == 3 * 2 * 64 && delivered_len == 2048);
    CHECK(on < 512);                  /* no zlib state: the agreement only */
    CHECK(ctx > 32 * 1024);           /* the client's window, 2^15, and the inflate state */
}

#define BODY 3000
static char body[BODY];

static void fill_body(void *ctx, char *dst) { memcpy(dst, ctx, BODY); }

static void test_broadcast_once_per_window(void)
{
    const nf_deflate_params w10 = { 10, 15, true, true, true };
    peer p[6];
    for (int i = 0; i < 4; i++)
        peer_open(&p[i], &ON, 256);
    peer_open(&p[4], &w10, 256);
    peer_open(&p[5], NULL, 0);
    for (size_t i = 0; i < BODY; i++)
        body[i] = "{\"user\":\"ann\",\"text\":\"hello\"},"[i % 30];
    for (int round = 0; round < 2; round++) {
        uint64_t runs = nf_deflate_get_stats().deflated;
        nf_shared_frame *f = nf_shared_frame_new(false, BODY, fill_body, body);
        for (int i = 0; i < 6; i++)
            CHECK(nf_ws_send_shared(p[i].ws, f) == 0);
        nf_shared_frame_release(f);   /* the receivers' outputs hold the rest */
        /* Window 15 (four receivers) and window 10 (one): two compressor runs. */
        CHECK(nf_deflate_get_stats().deflated - runs == 2);
        static uint8_t got[BODY + 16];
        size_t len, wire;
        for (int i = 0; i < 6; i++) {
            int b0 = take(&p[i], got, sizeof got, &len, &wire);
            CHECK(b0 == (i < 5 ? 0xc1 : 0x81));   /* FIN, RSV1 for the compressing ones, text */
            CHECK(len == BODY && memcmp(got, body, BODY) == 0);
            CHECK(i < 5 ? wire < BODY / 10 : wire == BODY);
        }
    }
    for (int i = 0; i < 6; i++)
        peer_close(&p[i]);
}

/* Replies: under the threshold plain, from it compressed; deflate that would
 * not shrink the message sends it plain. */
static void test_threshold(void)
{
    peer p;
    uint8_t got[512];
    size_t len, wire;
    peer_open(&p, &ON, 100);
    CHECK(nf_ws_send(p.ws, false, body, 99) == 0);
    CHECK(take(&p, got, sizeof got, &len, &wire) == 0x81 && len == 99);
    CHECK(nf_ws_send(p.ws, true, body, 100) == 0);
    CHECK(take(&p, got, sizeof got, &len, &wire) == 0xc2 && len == 100 && memcmp(got, body, 100) == 0);
    uint8_t noise[300];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof noise; i++)
        noise[i] = (uint8_t)((x = x * 1103515245 + 12345) >> 16);
    CHECK(nf_ws_send(p.ws, true, noise, sizeof noise) == 0);
    CHECK(take(&p, got, sizeof got, &len, &wire) == 0x82 && len == sizeof noise && memcmp(got, noise, len) == 0);
    peer_close(&p);
}

/* A compressed text message is checked as UTF-8 once inflated, never on
 * its wire bytes (which are deflate data, not text), whether it comes in
 * one frame (handed over from the input buffer) or in fragments (RSV1 on
 * the first only, RFC 7692 6.1); its text must still be UTF-8 once inflated. */
static void test_text_checked_inflated(void)
{
    char text[1200];
    uint8_t z[2048];
    size_t n = 0;
    while (n + 14 < sizeof text)
        n += (size_t)snprintf(text + n, sizeof text - n, "h\xc3\xa9llo w\xc3\xb6rld %zu ", n % 7);
    size_t zlen = client_compress(text, n, z, sizeof z);
    CHECK(!nf_utf8_valid(z, zlen));   /* the wire bytes alone would be refused */
    peer p;
    peer_open(&p, &ON, 256);
    int d0 = delivered;
    CHECK(peer_feed(&p, 0xc1, z, zlen) == 0);
    CHECK(delivered == d0 + 1 && !delivered_binary && delivered_len == n && memcmp(delivered_data, text, n) == 0);
    size_t a = zlen / 3, b = 2 * zlen / 3;
    CHECK(peer_feed(&p, 0x41, z, a) == 0);             /* RSV1, text, not final */
    CHECK(peer_feed(&p, 0x89, (const uint8_t *)"p", 1) == 0);   /* a ping between fragments */
    CHECK(peer_feed(&p, 0x00, z + a, b - a) == 0);     /* continuation, RSV1 clear */
    CHECK(delivered == d0 + 1);
    CHECK(peer_feed(&p, 0x80, z + b, zlen - b) == 0);  /* the last */
    CHECK(delivered == d0 + 2 && !delivered_binary && delivered_len == n && memcmp(delivered_data, text, n) == 0);
    peer_close(&p);
    /* Inflated bytes that are not UTF-8: 1007. */
    zlen = client_compress("h\xc0\xaf", 3, z, sizeof z);
    peer_open(&p, &ON, 256);
    CHECK(peer_feed(&p, 0xc1, z, zlen) == NF_EOF && delivered == d0 + 2);
    uint8_t got[8];
    size_t len, wire;
    CHECK(take(&p, got, sizeof got, &len, &wire) == 0x88 && len == 2 && (got[0] << 8 | got[1]) == 1007);
    peer_close(&p);
    /* RSV1 on a continuation or a control frame, or not agreed: 1002. */
    for (int i = 0; i < 3; i++) {
        peer_open(&p, i == 2 ? NULL : &ON, 256);
        int rc = i == 0 ? (peer_feed(&p, 0x41, z, 1), peer_feed(&p, 0xc0, z + 1, zlen - 1))
               : i == 1 ? peer_feed(&p, 0xc9, (const uint8_t *)"p", 1)
                        : peer_feed(&p, 0xc1, z, zlen);
        CHECK(rc == NF_EOF);
        CHECK(take(&p, got, sizeof got, &len, &wire) == 0x88 && len == 2 && (got[0] << 8 | got[1]) == 1002);
        peer_close(&p);
    }
    CHECK(delivered == d0 + 2);
}

static uint64_t fake_ms;
static uint64_t fake_clock(void *ud) { (void)ud; return fake_ms; }

static int log_lines;
static char last_line[512];
static void log_sink(void *ud, nf_log_level level, const char *text)
{
    (void)ud, (void)level;
    log_lines++;
    snprintf(last_line, sizeof last_line, "%s", text);
}

/* Compressed messages refused: the parser closes with 1009 past the
 * maximum and 1007 for data that is not deflate, and logs them at most
 * once a second, the ones left out counted in the next line. */
static void test_refused_logged(void)
{
    static uint8_t zeros[MAX_MSG + 1], z[4096];
    size_t zlen = client_compress(zeros, sizeof zeros, z, sizeof z);
    uint8_t got[64];
    size_t len, wire;
    fake_ms = nf_now_ms() + 5000;   /* whatever was logged before is a second old */
    nf_clock_set(fake_clock, NULL);
    log_lines = 0;
    for (int i = 0; i < 4; i++) {
        peer p;
        peer_open(&p, &ON, 256);
        int rc = i % 2 ? peer_feed(&p, 0xc2, (const uint8_t *)"\xff\xff\xff", 3) : peer_feed(&p, 0xc2, z, zlen);
        CHECK(rc == NF_EOF);
        CHECK(take(&p, got, sizeof got, &len, &wire) == 0x88 && len == 2);
        CHECK((got[0] << 8 | got[1]) == (i % 2 ? 1007 : 1009));
        peer_close(&p);
    }
    CHECK(log_lines == 1 && strstr(last_line, "close 1009") && !strstr(last_line, "more"));
    fake_ms += 1001;
    peer p;
    peer_open(&p, &ON, 256);
    CHECK(peer_feed(&p, 0xc1, (const uint8_t *)"\xff\xff\xff", 3) == NF_EOF);
    peer_close(&p);
    CHECK(log_lines == 2 && strstr(last_line, "close 1007") && strstr(last_line, "and 3 more"));
    nf_clock_set(NULL, NULL);
}

int main(void)
{
    base = event_base_new();
    nf_log_set_sink(log_sink, NULL);   /* the refusals' lines, counted (test_refused_logged) */
    test_idle_memory();
    test_broadcast_once_per_window();
    test_threshold();
    test_text_checked_inflated();
    test_refused_logged();
    event_base_loop(base, EVLOOP_NONBLOCK);
    event_base_free(base);
    return TEST_REPORT();
}
