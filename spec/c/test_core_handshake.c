/* test_core_handshake.c - the neffos handshake through the real core
 * (host/host.c upgrade, host/conn.c), over the fake transport: "M" -> "A<id>",
 * refusal with "H", frames before "M", and the handshake timeouts driven by
 * the manual clock (docs/protocol.md §4, §12.1). */
#include <stdlib.h>
#include <string.h>

#include "fake_conn.h"
#include "test.h"

static fake_app app;
static nf_host *host;
static fake_conn fc;

static void setup(const nf_limits *lim)
{
    CHECK(fake_setup(&app, &host, &fc, lim, NULL, 0, 1000000, false) == 0);
}

static void teardown(void)
{
    CHECK(fake_teardown(&app, host, &fc) == 0);
}

/* docs/protocol.md §3.1, §4.2: 101 with the RFC 6455 sample accept key, nothing before
 * "M", then "A" + the ID as the first frame, and on_connect ran once. */
static void test_ack(void)
{
    setup(NULL);
    CHECK(fake_conn_upgrade(&fc, "/echo") == 101);
    CHECK(fake_conn_quiet(&fc));
    CHECK(app.ncalls == 0);
    CHECK(fake_conn_send_text(&fc, "M") == 0);
    fake_conn_pump(&fc);
    CHECK(fake_conn_expect_ack(&fc));
    CHECK(fake_conn_quiet(&fc));
    CHECK(app.ncalls == 1 && app.calls[0].kind == NF_INVOKE_CONNECT && app.calls[0].wants_result);
    CHECK(nf_conn_is_acknowledged(fc.conn));
    CHECK(nf_conn_id(fc.conn).len == 36);   /* the default ID: a UUID v4 */
    teardown();
    /* the close procedure: on_disconnect exactly once */
    CHECK(fake_app_count(&app, FAKE_ON_DISCONNECT) == 1);
}

/* The exact 101 answer head. */
static void test_upgrade_bytes(void)
{
    setup(NULL);
    const char *req = "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    fc.http_status = -1;   /* keep the head for this test: read_http parses nothing */
    CHECK(fake_conn_write(&fc, req, strlen(req)) == 0);
    fake_conn_pump(&fc);
    const char *want = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    CHECK_MEM(fc.rx, fc.rx_len, want, strlen(want));
    fake_conn_discard(&fc);
    teardown();
}

/* docs/protocol.md §4.5: frames before "M" are dropped, never answered, never dispatched. */
static void test_frames_before_m(void)
{
    setup(NULL);
    CHECK(fake_conn_upgrade(&fc, "/echo") == 101);
    fake_conn_send_text(&fc, "$1;default;;_OnNamespaceConnect;0;0;");
    fake_conn_send_text(&fc, ";default;;chat;0;0;hi");
    fake_conn_send_text(&fc, "Afake");
    fake_conn_pump(&fc);
    CHECK(fake_conn_quiet(&fc));
    CHECK(app.ncalls == 0);
    fake_conn_send_text(&fc, "M");
    fake_conn_pump(&fc);
    CHECK(fake_conn_expect_ack(&fc));
    CHECK(fake_conn_quiet(&fc));
    CHECK(nf_conn_namespace(fc.conn, NF_SLICE("default")) == NULL);
    teardown();
}

/* docs/protocol.md §4.3: a refusal is "H<text>", then close 1000 "refused"; an empty
 * text becomes "error"; on_disconnect still runs once. */
static void refused(const char *text, const char *wire)
{
    setup(NULL);
    fake_app_on(&app, FAKE_ON_CONNECT, FAKE_ERROR, text);
    CHECK(fake_conn_upgrade(&fc, "/echo") == 101);
    fake_conn_send_text(&fc, "M");
    fake_conn_pump(&fc);
    CHECK(fake_conn_expect_text(&fc, wire));
    CHECK(fake_conn_expect_close(&fc, 1000, "refused"));
    CHECK(fake_conn_quiet(&fc));
    CHECK(!nf_conn_is_acknowledged(fc.conn) && nf_conn_is_closed(fc.conn));
    /* The client answers the close: the server drops the socket. */
    fake_conn_send_close(&fc, 1000, "");
    fake_conn_pump(&fc);
    CHECK(fc.eof);
    CHECK(fake_app_count(&app, FAKE_ON_DISCONNECT) == 1);
    teardown();
}

static void test_refusal(void)
{
    refused("not you", "Hnot you");
    refused("", "Herror");
}

/* An on_connect that waits holds the frames that follow "M"; they are
 * dispatched in order after "A" (docs/protocol.md §4.2). */
static void test_waiting_on_connect(void)
{
    setup(NULL);
    fake_app_on(&app, FAKE_ON_CONNECT, FAKE_WAIT, NULL);
    CHECK(fake_conn_upgrade(&fc, "/echo") == 101);
    fake_conn_send_text(&fc, "M");
    fake_conn_send_text(&fc, "$1;default;;_OnNamespaceConnect;0;0;");
    fake_conn_pump(&fc);
    CHECK(fake_conn_quiet(&fc));
    CHECK(app.nwaiting == 1 && app.ncalls == 1);
    CHECK(fake_app_finish(&app, 0, NF_RESULT_NONE, NULL) == 0);
    fake_conn_pump(&fc);
    CHECK(fake_conn_expect_ack(&fc));
    CHECK(fake_conn_expect_text(&fc, "$1;;;;;;"));
    CHECK(fake_conn_quiet(&fc));
    CHECK(fake_app_find(&app, "_OnNamespaceConnect", 0) == 1);
    teardown();
}

/* A refusal decided later (a waiting on_connect) has the same bytes. */
static void test_waiting_refusal(void)
{
    setup(NULL);
    fake_app_on(&app, FAKE_ON_CONNECT, FAKE_WAIT, NULL);
    CHECK(fake_conn_upgrade(&fc, "/echo") == 101);
    fake_conn_send_text(&fc, "M");
    fake_conn_pump(&fc);
    CHECK(fake_app_finish(&app, 0, NF_RESULT_ERROR, "later") == 0);
    fake_conn_pump(&fc);
    CHECK(fake_conn_expect_text(&fc, "Hlater"));
    CHECK(fake_conn_expect_close(&fc, 1000, "refused"));
    teardown();
}

/* docs/protocol.md §4.2: "M" must come within --handshake-timeout-ms, else close 1008
 * "handshake timeout"; the sweep drives it, not a timer of its own. */
static void test_handshake_timeout(void)
{
    nf_limits lim = nf_limits_default();
    lim.handshake_timeout_ms = 2000;
    setup(&lim);
    CHECK(fake_conn_upgrade(&fc, "/echo") == 101);
    fake_conn_tick(&fc, 1999);
    CHECK(fake_conn_quiet(&fc) && !fc.eof);
    fake_conn_tick(&fc, 1);
    CHECK(fake_conn_expect_close(&fc, 1008, "handshake timeout"));
    CHECK(!fc.eof);
    /* No close from the client: the socket goes after the 1 s grace. */
    fake_conn_tick(&fc, 999);
    CHECK(!fc.eof);
    fake_conn_tick(&fc, 1);
    CHECK(fc.eof);
    CHECK(app.ncalls == 0);   /* on_connect never ran, so no on_disconnect either */
    teardown();
}

/* In the HTTP phase the socket is just dropped. */
static void test_http_timeout(void)
{
    nf_limits lim = nf_limits_default();
    lim.handshake_timeout_ms = 2000;
    setup(&lim);
    fake_conn_write(&fc, "GET /echo HTTP/1.1\r\n", 20);
    fake_conn_tick(&fc, 1999);
    CHECK(!fc.eof);
    fake_conn_tick(&fc, 1);
    CHECK(fc.eof && fc.rx_len == 0);
    teardown();
}

/* Answers in the HTTP phase: 404 elsewhere, 302 to the HEAD probe. */
static void test_http_answers(void)
{
    setup(NULL);
    const char *req = "HEAD /echo HTTP/1.1\r\nHost: x\r\n\r\n";
    fake_conn_write(&fc, req, strlen(req));
    fake_conn_pump(&fc);
    CHECK(fc.http_status == 302);
    CHECK(fc.eof);   /* closed once the answer is out */
    teardown();

    setup(NULL);
    req = "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n";
    fake_conn_write(&fc, req, strlen(req));
    fake_conn_pump(&fc);
    CHECK(fc.http_status == 404);
    CHECK(fc.eof);
    teardown();
}

int main(void)
{
    test_ack();
    test_upgrade_bytes();
    test_frames_before_m();
    test_refusal();
    test_waiting_on_connect();
    test_waiting_refusal();
    test_handshake_timeout();
    test_http_timeout();
    test_http_answers();
    fake_clock_uninstall();
    return TEST_REPORT();
}
