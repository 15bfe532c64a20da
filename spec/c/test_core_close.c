/* test_core_close.c - the ways a connection ends, through the fake transport:
 * the client's close frame, a TCP close, conn:close from a handler, the read
 * timeout and the write timeout driven by the manual clock, and output over
 * --max-outgoing-bytes; each runs the close procedure once, in order
 * (docs/protocol.md §7.8, §12.1, §12.4). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_conn.h"
#include "test.h"

static fake_app app;
static nf_host *host;
static fake_conn fc;

static void setup_with(const nf_limits *lim, const nf_endpoint_config *cfg, int sndbuf)
{
    CHECK(fake_setup(&app, &host, &fc, lim, cfg, sndbuf, 13000000, true) == 0);
    CHECK(fake_conn_connect_ns(&fc, "default") == 0);
    CHECK(fake_conn_send_text(&fc, "$1;default;lobby;_OnRoomJoin;0;0;") == 0);
    fake_conn_pump(&fc);
    CHECK(fake_conn_expect_text(&fc, "$1;;;;;;"));
    fake_app_clear_calls(&app);
}

static void setup(void) { setup_with(NULL, NULL, 0); }

static void teardown(void)
{
    CHECK(fake_teardown(&app, host, &fc) == 0);
}

static void send(const char *frame)
{
    CHECK(fake_conn_send_text(&fc, frame) == 0);
    fake_conn_pump(&fc);
}

/* docs/protocol.md §7.8: per room _OnRoomLeave then _OnRoomLeft, then _OnNamespaceDisconnect
 * (all local and forced), then on_disconnect; each once. */
static void check_close_procedure(void)
{
    const char *order[] = { "_OnRoomLeave", "_OnRoomLeft", "_OnNamespaceDisconnect", FAKE_ON_DISCONNECT };
    CHECK(app.ncalls == 4);
    if (app.ncalls != 4)
        for (size_t i = 0; i < app.ncalls && i < FAKE_MAX_CALLS; i++)
            fprintf(stderr, "  call %zu: %s %s/%s\n", i, app.calls[i].event, app.calls[i].ns, app.calls[i].room);
    for (size_t i = 0; i < 4 && i < app.ncalls; i++) {
        CHECK(strcmp(app.calls[i].event, order[i]) == 0);
        CHECK(app.calls[i].is_local && app.calls[i].is_forced && !app.calls[i].wants_result);
    }
    CHECK(strcmp(app.calls[0].room, "lobby") == 0 && strcmp(app.calls[2].ns, "default") == 0);
}

/* The client's close frame is answered with one (same code), then the socket goes. */
static void test_client_close_frame(void)
{
    setup();
    fake_conn_send_close(&fc, 1000, "bye");
    fake_conn_pump(&fc);
    fake_frame f;
    CHECK(fake_conn_next(&fc, &f) && f.opcode == 0x8 && f.close_code == 1000);
    fake_frame_free(&f);
    CHECK(fake_conn_quiet(&fc));
    CHECK(fc.eof);
    check_close_procedure();
    teardown();
}

/* A TCP close without a close frame: the same procedure. */
static void test_tcp_close(void)
{
    setup();
    fake_conn_shutdown(&fc);
    fake_conn_pump(&fc);
    CHECK(nf_conn_is_closed(fc.conn));
    check_close_procedure();
    teardown();
}

static void kick(fake_app *a, nf_invocation *inv, void *ud)
{
    nf_conn_close(nf_invocation_conn(inv), 4000, NF_SLICE("kicked"));
    nf_invocation_finish(inv, NF_RESULT_REPLY, "too late", 8);
}

/* conn:close from a handler: that code and reason; the handler's reply is
 * not sent after the close frame. */
static void test_close_from_handler(void)
{
    setup();
    fake_app_hook(&app, "kick", kick, NULL);
    send("$5;default;;kick;0;0;");
    CHECK(fake_conn_expect_close(&fc, 4000, "kicked"));
    CHECK(fake_conn_quiet(&fc));
    CHECK(!fc.eof);   /* waiting for the client's close frame */
    fake_app_clear_calls(&app);
    fake_conn_send_close(&fc, 4000, "");
    fake_conn_pump(&fc);
    CHECK(fc.eof);
    check_close_procedure();
    teardown();
}

/* docs/protocol.md §12.4: no frame (data, empty or ping) for read_timeout_ms closes with
 * 1001 "read timeout"; a ping counts as activity. */
static void test_read_timeout(void)
{
    nf_limits lim = nf_limits_default();
    nf_endpoint_config cfg = { .read_timeout_ms = 5000 };
    setup_with(&lim, &cfg, 0);
    fake_conn_tick(&fc, 4000);
    CHECK(fake_conn_quiet(&fc));
    fake_conn_send_frame(&fc, 0x89, "hb", 2);   /* a ping: activity, answered with a pong */
    fake_conn_pump(&fc);
    fake_frame f;
    CHECK(fake_conn_next(&fc, &f) && f.opcode == 0xA && f.len == 2 && memcmp(f.data, "hb", 2) == 0);
    fake_frame_free(&f);
    fake_conn_tick(&fc, 4999);
    CHECK(fake_conn_quiet(&fc));
    CHECK(app.ncalls == 0);
    fake_conn_tick(&fc, 1);
    CHECK(fake_conn_expect_close(&fc, 1001, "read timeout"));
    /* No answer from the client: dropped after the 1 s grace. */
    fake_conn_tick(&fc, 1000);
    CHECK(fc.eof);
    check_close_procedure();
    teardown();
}

typedef struct flood {
    size_t frames, ok, max_output;
} flood;

static void flood_hook(fake_app *a, nf_invocation *inv, void *ud)
{
    flood *fl = ud;
    static char body[500];
    memset(body, 'x', sizeof body);
    nf_nsconn *nc = nf_invocation_nsconn(inv);
    nf_conn *c = nf_invocation_conn(inv);
    for (size_t i = 0; i < fl->frames; i++) {
        if (nf_nsconn_emit(nc, NF_SLICE_EMPTY, NF_SLICE("f"), nf_slice_of(body, sizeof body), false) == 0)
            fl->ok++;
        nf_conn_stats cs;
        nf_conn_get_stats(c, &cs);
        if (cs.output_bytes > fl->max_output)
            fl->max_output = cs.output_bytes;
    }
    nf_invocation_finish(inv, NF_RESULT_NONE, NULL, 0);
}

/* docs/protocol.md §12.1: output queued over --max-outgoing-bytes closes with 1008
 * "outgoing queue full"; the queue never holds more than the bound plus one frame. */
static void test_output_bound(void)
{
    nf_limits lim = nf_limits_default();
    lim.max_outgoing_bytes = 4096;
    setup_with(&lim, NULL, 0);
    flood fl = { .frames = 50 };
    fake_app_hook(&app, "flood", flood_hook, &fl);
    send(";default;;flood;0;0;");
    const size_t frame = 4 + strlen(";default;;f;0;0;") + 500;
    CHECK(fl.ok >= 4096 / frame && fl.ok <= 4096 / frame + 1);
    CHECK(fl.max_output <= lim.max_outgoing_bytes + frame);
    size_t got = 0;
    fake_frame f;
    while (fake_conn_next(&fc, &f) && f.opcode == 0x1) {
        got++;
        fake_frame_free(&f);
    }
    CHECK(got == fl.ok);
    CHECK(f.opcode == 0x8 && f.close_code == 1008 && f.len == 2 + 19 && memcmp(f.data + 2, "outgoing queue full", 19) == 0);
    fake_frame_free(&f);
    fake_app_clear_calls(&app);
    fake_conn_send_close(&fc, 1000, "");
    fake_conn_pump(&fc);
    CHECK(fc.eof);
    check_close_procedure();
    teardown();
}

/* docs/protocol.md §12.4: output that stays unsent for write_timeout_ms drops the socket
 * (no close frame: it could not be sent either). The client does not read,
 * the kernel buffers are small. */
static void test_write_timeout(void)
{
    nf_limits lim = nf_limits_default();
    nf_endpoint_config cfg = { .write_timeout_ms = 3000 };
    setup_with(&lim, &cfg, 4096);
    flood fl = { .frames = 400 };   /* ~200 KB, far more than the socket buffers */
    fake_app_hook(&app, "flood", flood_hook, &fl);
    fc.reading = false;
    send(";default;;flood;0;0;");
    CHECK(fl.ok == 400);
    nf_conn_stats cs;
    nf_conn_get_stats(fc.conn, &cs);
    CHECK(cs.output_bytes > 0);
    fake_conn_tick(&fc, 1);      /* the sweep sees output pending: the stall starts */
    fake_conn_tick(&fc, 2999);
    CHECK(!nf_conn_is_closed(fc.conn));
    fake_app_clear_calls(&app);
    fake_clock_advance(1);
    nf_host_sweep(host);
    CHECK(nf_conn_is_closed(fc.conn));
    fc.reading = true;
    fake_conn_pump(&fc);
    CHECK(fc.eof);
    /* What reached the client is whole frames, no close frame. */
    size_t got = 0;
    fake_frame f;
    while (fake_conn_next(&fc, &f)) {
        CHECK(f.opcode == 0x1);
        got++;
        fake_frame_free(&f);
    }
    CHECK(got > 0 && got < 400 && fake_conn_pending(&fc) < 520);
    fake_conn_discard(&fc);
    check_close_procedure();
    teardown();
}

int main(void)
{
    test_client_close_frame();
    test_tcp_close();
    test_close_from_handler();
    test_read_timeout();
    test_output_bound();
    test_write_timeout();
    fake_clock_uninstall();
    return TEST_REPORT();
}
