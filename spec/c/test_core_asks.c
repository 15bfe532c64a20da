/* test_core_asks.c - asks through the fake transport: a client's ask answered
 * by a handler that waits; server asks with their decimal tokens, answers,
 * errors, the timeout driven by the manual clock, the pending limit, a
 * close; and the forced connect and join, which are server asks
 * (docs/protocol.md §5.4, §7.3, §7.6, §8). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_conn.h"
#include "test.h"

static fake_app app;
static nf_host *host;
static fake_conn fc;

static void setup_with(const nf_limits *lim, bool connect)
{
    CHECK(fake_setup(&app, &host, &fc, lim, NULL, 0, 9000000, connect) == 0);
    app.namespaces[1] = "chat";
    if (!connect)
        return;
    CHECK(fake_conn_connect_ns(&fc, "default") == 0);
    fake_app_clear_calls(&app);
}

static void setup(void) { setup_with(NULL, true); }

static void teardown(void)
{
    CHECK(fake_teardown(&app, host, &fc) == 0);
}

static void send(const char *frame)
{
    CHECK(fake_conn_send_text(&fc, frame) == 0);
    fake_conn_pump(&fc);
}

static nf_nsconn *ns(void) { return nf_conn_namespace(fc.conn, NF_SLICE("default")); }

/* What a server ask's callback got. */
typedef struct answer {
    int calls;
    nf_ask_status status;
    char body[64];
} answer;

static void on_answer(void *ud, nf_ask_status status, const nf_msg *reply)
{
    answer *a = ud;
    a->calls++;
    a->status = status;
    a->body[0] = '\0';
    if (reply)
        snprintf(a->body, sizeof a->body, "%.*s", (int)reply->body.len, reply->body.ptr);
}

/* Takes the next frame: a server ask "<digits><rest>". Copies the token to
 * token[] and returns whether the frame is exactly that shape. */
static bool expect_ask(const char *rest, char *token, size_t cap)
{
    fake_frame f;
    if (!fake_conn_next(&fc, &f))
        return false;
    size_t n = 0;
    while (n < f.len && f.data[n] >= '0' && f.data[n] <= '9')
        n++;
    bool ok = f.opcode == 1 && n > 0 && n < cap && f.len - n == strlen(rest) && memcmp(f.data + n, rest, f.len - n) == 0;
    if (ok) {
        memcpy(token, f.data, n);
        token[n] = '\0';
    } else {
        fprintf(stderr, "  expected <digits>%s, got \"%.*s\"\n", rest, (int)f.len, (const char *)f.data);
    }
    fake_frame_free(&f);
    return ok;
}

/* A client's ask whose handler waits: the answer, sent later, carries the
 * ask's token byte for byte (the invocation keeps it). */
static void test_client_ask_answered_later(void)
{
    setup();
    fake_app_on(&app, "q", FAKE_WAIT, NULL);
    send("$482000000000591300638;default;room;q;0;0;question");
    CHECK(fake_conn_quiet(&fc));
    CHECK(app.nwaiting == 1);
    CHECK(fake_app_finish(&app, 0, NF_RESULT_REPLY, "answer") == 0);
    fake_conn_pump(&fc);
    CHECK(fake_conn_expect_text(&fc, "$482000000000591300638;default;room;q;0;0;answer"));
    teardown();
}

/* docs/protocol.md §8.2: "N;ns;room;event;0;0;body" with a decimal token; the answer is
 * matched by the token, consumed (never dispatched), and its isError decides. */
static void test_server_ask(void)
{
    setup();
    answer a1 = { 0 }, a2 = { 0 }, a3 = { 0 };
    char t1[32], t2[32], t3[32];
    nf_nsconn_ask(ns(), NF_SLICE("r"), NF_SLICE("q"), NF_SLICE("body"), false, 0, on_answer, &a1);
    nf_nsconn_ask(ns(), NF_SLICE_EMPTY, NF_SLICE("q"), NF_SLICE("2"), false, 0, on_answer, &a2);
    nf_nsconn_ask(ns(), NF_SLICE_EMPTY, NF_SLICE("q"), NF_SLICE("3"), false, 0, on_answer, &a3);
    fake_conn_pump(&fc);
    CHECK(expect_ask(";default;r;q;0;0;body", t1, sizeof t1));
    CHECK(expect_ask(";default;;q;0;0;2", t2, sizeof t2));
    CHECK(expect_ask(";default;;q;0;0;3", t3, sizeof t3));
    CHECK(strcmp(t1, t2) != 0 && strcmp(t2, t3) != 0);
    nf_conn_stats cs;
    nf_conn_get_stats(fc.conn, &cs);
    CHECK(cs.asks == 3);

    char frame[128];
    snprintf(frame, sizeof frame, "%s;default;;q;1;0;no", t2);   /* an error */
    send(frame);
    CHECK(a2.calls == 1 && a2.status == NF_ASK_REMOTE_ERROR && strcmp(a2.body, "no") == 0);
    snprintf(frame, sizeof frame, "%s;;;;;;", t3);                /* the empty reply */
    send(frame);
    CHECK(a3.calls == 1 && a3.status == NF_ASK_OK && a3.body[0] == '\0');
    snprintf(frame, sizeof frame, "%s;default;r;q;1;0;", t1);     /* error flag, empty text: success (§5.5) */
    send(frame);
    CHECK(a1.calls == 1 && a1.status == NF_ASK_OK);
    CHECK(app.ncalls == 0);   /* answers are not events */
    /* An answer again: no longer pending, dropped (§6 step 7). */
    send(frame);
    CHECK(a1.calls == 1 && app.ncalls == 0);
    CHECK(fake_conn_quiet(&fc));
    nf_conn_get_stats(fc.conn, &cs);
    CHECK(cs.asks == 0);
    teardown();
}

/* docs/protocol.md §8.2: every server ask has a timeout; the manual clock drives it
 * (the sweep checks the deadline), and a late answer is dropped. The timeouts
 * are long in real time, so the ask's own libevent timer never fires first. */
static void test_server_ask_timeout(void)
{
    setup();
    answer a = { 0 };
    char t[32], frame[128];
    nf_nsconn_ask(ns(), NF_SLICE_EMPTY, NF_SLICE("q"), NF_SLICE_EMPTY, false, 60000, on_answer, &a);
    fake_conn_pump(&fc);
    CHECK(expect_ask(";default;;q;0;0;", t, sizeof t));
    fake_conn_tick(&fc, 59999);
    CHECK(a.calls == 0);
    fake_conn_tick(&fc, 1);
    CHECK(a.calls == 1 && a.status == NF_ASK_TIMEOUT);
    snprintf(frame, sizeof frame, "%s;default;;q;0;0;late", t);
    send(frame);
    CHECK(a.calls == 1 && app.ncalls == 0);
    CHECK(fake_conn_quiet(&fc));

    /* The default timeout is --ask-timeout-ms. */
    nf_nsconn_ask(ns(), NF_SLICE_EMPTY, NF_SLICE("q"), NF_SLICE_EMPTY, false, 0, on_answer, &a);
    fake_conn_pump(&fc);
    CHECK(expect_ask(";default;;q;0;0;", t, sizeof t));
    fake_conn_tick(&fc, nf_limits_default().ask_timeout_ms - 1);
    CHECK(a.calls == 1);
    fake_conn_tick(&fc, 1);
    CHECK(a.calls == 2 && a.status == NF_ASK_TIMEOUT);
    teardown();
}

/* --max-pending-asks: one more fails at once; a close fails the pending ones. */
static void test_pending_limit_and_close(void)
{
    nf_limits lim = nf_limits_default();
    lim.max_pending_asks = 2;
    setup_with(&lim, true);
    answer a[3] = { { 0 } };
    for (int i = 0; i < 3; i++)
        nf_nsconn_ask(ns(), NF_SLICE_EMPTY, NF_SLICE("q"), NF_SLICE_EMPTY, false, 0, on_answer, &a[i]);
    CHECK(a[0].calls == 0 && a[1].calls == 0);
    CHECK(a[2].calls == 1 && a[2].status == NF_ASK_CLOSED);
    fake_conn_send_close(&fc, 1000, "bye");
    fake_conn_pump(&fc);
    CHECK(a[0].calls == 1 && a[0].status == NF_ASK_CLOSED);
    CHECK(a[1].calls == 1 && a[1].status == NF_ASK_CLOSED);
    /* Asking a closed connection fails at once. */
    answer late = { 0 };
    nf_ask_cb cb = on_answer;
    nf_endpoint_ask(nf_conn_endpoint(fc.conn), nf_conn_id(fc.conn), NF_SLICE("default"), NF_SLICE_EMPTY,
                    NF_SLICE("q"), NF_SLICE_EMPTY, false, 0, cb, &late);
    CHECK(late.calls == 1 && late.status != NF_ASK_OK);
    teardown();
}

/* ---- forced connect and join (docs/protocol.md §7.3, §7.6) ---------------------------- */

typedef struct done {
    int calls;
    char err[64];
} done;

static void on_done(void *ud, const char *err, size_t len)
{
    done *d = ud;
    d->calls++;
    snprintf(d->err, sizeof d->err, "%.*s", err ? (int)len : 0, err ? err : "");
}

static done forced;

static void connect_from_on_connect(fake_app *a, nf_invocation *inv, void *ud)
{
    nf_conn_connect(nf_invocation_conn(inv), NF_SLICE("chat"), on_done, &forced);
    nf_invocation_finish(inv, NF_RESULT_NONE, NULL, 0);
}

static void test_forced_connect(void)
{
    nf_limits lim = nf_limits_default();
    setup_with(&lim, false);
    memset(&forced, 0, sizeof forced);
    fake_app_hook(&app, FAKE_ON_CONNECT, connect_from_on_connect, NULL);
    CHECK(fake_conn_upgrade(&fc, "/echo") == 101);
    fake_conn_send_text(&fc, "M");
    fake_conn_pump(&fc);
    /* "A" first, then the request (queued until after it). */
    char t[32], frame[128];
    CHECK(fake_conn_expect_ack(&fc));
    CHECK(expect_ask(";chat;;_OnNamespaceConnect;0;0;", t, sizeof t));
    CHECK(forced.calls == 0);
    /* The local _OnNamespaceConnect ran first, local. */
    int i = fake_app_find(&app, "_OnNamespaceConnect", 0);
    CHECK(i >= 0 && app.calls[i].is_local);
    snprintf(frame, sizeof frame, "%s;;;;;;", t);
    send(frame);
    CHECK(forced.calls == 1 && forced.err[0] == '\0');
    CHECK(nf_conn_namespace(fc.conn, NF_SLICE("chat")) != NULL);
    i = fake_app_find(&app, "_OnNamespaceConnected", 0);
    CHECK(i >= 0 && app.calls[i].is_local);
    CHECK(fake_conn_quiet(&fc));
    teardown();
}

static void test_forced_join(void)
{
    setup();
    done d = { 0 };
    char t[32], frame[128];
    nf_nsconn_join_room(ns(), NF_SLICE("r1"), on_done, &d);
    fake_conn_pump(&fc);
    CHECK(expect_ask(";default;r1;_OnRoomJoin;0;0;", t, sizeof t));
    CHECK(d.calls == 0 && !nf_nsconn_in_room(ns(), NF_SLICE("r1")));
    snprintf(frame, sizeof frame, "%s;;;;;;", t);
    send(frame);
    CHECK(d.calls == 1 && d.err[0] == '\0');
    CHECK(nf_nsconn_in_room(ns(), NF_SLICE("r1")));
    CHECK(app.ncalls == 2 && strcmp(app.calls[0].event, "_OnRoomJoin") == 0 && app.calls[0].is_local &&
          strcmp(app.calls[1].event, "_OnRoomJoined") == 0 && app.calls[1].is_local);

    /* The client refuses a second one. */
    done d2 = { 0 };
    nf_nsconn_join_room(ns(), NF_SLICE("r2"), on_done, &d2);
    fake_conn_pump(&fc);
    CHECK(expect_ask(";default;r2;_OnRoomJoin;0;0;", t, sizeof t));
    snprintf(frame, sizeof frame, "%s;default;r2;_OnRoomJoin;1;0;no thanks", t);
    send(frame);
    CHECK(d2.calls == 1 && strcmp(d2.err, "no thanks") == 0);
    CHECK(!nf_nsconn_in_room(ns(), NF_SLICE("r2")));
    teardown();
}

int main(void)
{
    test_client_ask_answered_later();
    test_server_ask();
    test_server_ask_timeout();
    test_pending_limit_and_close();
    test_forced_connect();
    test_forced_join();
    fake_clock_uninstall();
    return TEST_REPORT();
}
