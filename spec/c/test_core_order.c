/* test_core_order.c - per-connection ordering through the fake transport: a
 * handler that has not finished holds the connection's next messages (events
 * and system requests alike), which then run in arrival order; answers to
 * the server's own asks bypass the queue; the queue is bounded
 * (docs/protocol.md §6 steps 3 and 4). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_conn.h"
#include "test.h"

static fake_app app;
static nf_host *host;
static fake_conn fc;

static void setup_with(const nf_limits *lim)
{
    CHECK(fake_setup(&app, &host, &fc, lim, NULL, 0, 11000000, true) == 0);
    CHECK(fake_conn_connect_ns(&fc, "default") == 0);
    fake_app_clear_calls(&app);
}

static void setup(void) { setup_with(NULL); }

static void teardown(void)
{
    CHECK(fake_teardown(&app, host, &fc) == 0);
}

static void send(const char *frame)
{
    CHECK(fake_conn_send_text(&fc, frame) == 0);
    fake_conn_pump(&fc);
}

/* A waiting handler holds the next event; finishing it writes its answer,
 * then the held event runs and answers, in that order. */
static void test_waiting_handler_holds_next(void)
{
    setup();
    fake_app_on(&app, "slow", FAKE_WAIT, NULL);
    fake_app_on(&app, "fast", FAKE_REPLY, "2");
    send("$1;default;;slow;0;0;");
    send("$2;default;;fast;0;0;");
    send("$3;default;;fast;0;0;");
    CHECK(fake_conn_quiet(&fc));
    CHECK(app.ncalls == 1 && app.nwaiting == 1);
    nf_conn_stats cs;
    nf_conn_get_stats(fc.conn, &cs);
    CHECK(cs.inbox_frames == 2);
    CHECK(fake_app_finish(&app, 0, NF_RESULT_REPLY, "1") == 0);
    fake_conn_pump(&fc);
    CHECK(fake_conn_expect_text(&fc, "$1;default;;slow;0;0;1"));
    CHECK(fake_conn_expect_text(&fc, "$2;default;;fast;0;0;2"));
    CHECK(fake_conn_expect_text(&fc, "$3;default;;fast;0;0;2"));
    CHECK(fake_conn_quiet(&fc));
    CHECK(app.ncalls == 3);
    nf_conn_get_stats(fc.conn, &cs);
    CHECK(cs.inbox_frames == 0 && cs.inbox_bytes == 0);
    teardown();
}

/* A system request that waits holds what follows too. */
static void test_waiting_join_holds_next(void)
{
    setup();
    fake_app_on(&app, "_OnRoomJoin", FAKE_WAIT, NULL);
    fake_app_on(&app, "chat", FAKE_REPLY, "after");
    send("$1;default;r;_OnRoomJoin;0;0;");
    send("$2;default;r;chat;0;0;");
    CHECK(fake_conn_quiet(&fc));
    CHECK(app.ncalls == 1);
    CHECK(fake_app_finish(&app, 0, NF_RESULT_NONE, NULL) == 0);
    fake_conn_pump(&fc);
    CHECK(fake_conn_expect_text(&fc, "$1;;;;;;"));
    CHECK(fake_conn_expect_text(&fc, "$2;default;r;chat;0;0;after"));
    CHECK(fake_conn_quiet(&fc));
    int joined = fake_app_find(&app, "_OnRoomJoined", 0), chat = fake_app_find(&app, "chat", 0);
    CHECK(joined >= 0 && chat > joined);
    teardown();
}

/* A handler that asks its own client and waits for the answer: the answer
 * bypasses the queue (else the handler would wait for itself), while an
 * event sent before it stays held until the handler finishes. */
typedef struct asking {
    nf_invocation *inv;
    int answered;
} asking;

static asking pending;

static void asked(void *ud, nf_ask_status st, const nf_msg *reply)
{
    asking *p = ud;
    p->answered++;
    char body[64];
    snprintf(body, sizeof body, "client said %.*s", reply ? (int)reply->body.len : 0, reply ? reply->body.ptr : "");
    nf_invocation_finish(p->inv, st == NF_ASK_OK ? NF_RESULT_REPLY : NF_RESULT_ERROR, body, strlen(body));
}

static void ask_client(fake_app *a, nf_invocation *inv, void *ud)
{
    pending.inv = inv;
    nf_nsconn_ask(nf_invocation_nsconn(inv), NF_SLICE_EMPTY, NF_SLICE("who"), NF_SLICE_EMPTY, false, 0, asked,
                  &pending);
}

static void test_answers_bypass(void)
{
    setup();
    memset(&pending, 0, sizeof pending);
    fake_app_hook(&app, "outer", ask_client, NULL);
    fake_app_on(&app, "next", FAKE_REPLY, "n");
    send("$1;default;;outer;0;0;");
    fake_frame f;
    CHECK(fake_conn_next(&fc, &f));
    size_t n = 0;
    while (n < f.len && f.data[n] >= '0' && f.data[n] <= '9')
        n++;
    CHECK(n > 0 && strcmp((char *)f.data + n, ";default;;who;0;0;") == 0);
    char token[32] = "", frame[96];
    snprintf(token, sizeof token, "%.*s", (int)n, (char *)f.data);
    fake_frame_free(&f);

    send("$2;default;;next;0;0;");   /* held behind "outer" */
    CHECK(fake_conn_quiet(&fc));
    snprintf(frame, sizeof frame, "%s;default;;who;0;0;alice", token);
    send(frame);
    CHECK(pending.answered == 1);
    CHECK(fake_conn_expect_text(&fc, "$1;default;;outer;0;0;client said alice"));
    CHECK(fake_conn_expect_text(&fc, "$2;default;;next;0;0;n"));
    CHECK(fake_conn_quiet(&fc));
    teardown();
}

/* --max-incoming-queue: parking more closes with 1008 "incoming queue full". */
static void test_inbox_bound(void)
{
    nf_limits lim = nf_limits_default();
    lim.max_incoming_queue = 2;
    setup_with(&lim);
    fake_app_on(&app, "slow", FAKE_WAIT, NULL);
    send("$1;default;;slow;0;0;");
    send(";default;;x;0;0;1");
    send(";default;;x;0;0;2");
    nf_conn_stats cs;
    nf_conn_get_stats(fc.conn, &cs);
    CHECK(cs.inbox_frames == 2 && cs.inbox_bytes >= 2 * 17);   /* framing is the core's own */
    CHECK(fake_conn_quiet(&fc));
    send(";default;;x;0;0;3");
    CHECK(fake_conn_expect_close(&fc, 1008, "incoming queue full"));
    CHECK(nf_conn_is_closed(fc.conn));
    /* The waiting handler finishes on a closed connection: nothing is sent,
     * nothing held runs. */
    CHECK(fake_app_finish(&app, 0, NF_RESULT_REPLY, "late") == 0);
    fake_conn_pump(&fc);
    CHECK(fake_conn_quiet(&fc));
    CHECK(fake_app_count(&app, "x") == 0);
    teardown();
}

int main(void)
{
    test_waiting_handler_holds_next();
    test_waiting_join_holds_next();
    test_answers_bypass();
    test_inbox_bound();
    fake_clock_uninstall();
    return TEST_REPORT();
}
