/* test_core_dispatch.c - the dispatch table of an acknowledged connection
 * (host/conn.c dispatch_frame, host/namespace.c) through the fake transport:
 * each system request and each kind of event, with the exact bytes of the
 * answer (docs/protocol.md §6, §7.2, §7.4, §7.9, §5.6, §5.7). */
#include <stdlib.h>
#include <string.h>

#include "fake_conn.h"
#include "test.h"

static fake_app app;
static nf_host *host;
static fake_conn fc;

static void setup_with(const nf_limits *lim)
{
    CHECK(fake_setup(&app, &host, &fc, lim, NULL, 0, 5000000, true) == 0);
    app.namespaces[1] = "chat";
    fake_app_clear_calls(&app);
}

static void setup(void) { setup_with(NULL); }

static void teardown(void)
{
    CHECK(fake_teardown(&app, host, &fc) == 0);
}

/* Sends one text frame, pumps. */
static void send(const char *frame)
{
    CHECK(fake_conn_send_text(&fc, frame) == 0);
    fake_conn_pump(&fc);
}

static void connect_default(void)
{
    send("$1;default;;_OnNamespaceConnect;0;0;");
    CHECK(fake_conn_expect_text(&fc, "$1;;;;;;"));
    fake_app_clear_calls(&app);
}

/* ---- _OnNamespaceConnect (docs/protocol.md §7.2) ------------------------------------ */

static void test_connect(void)
{
    setup();
    send("$1;default;;_OnNamespaceConnect;0;0;");
    CHECK(fake_conn_expect_text(&fc, "$1;;;;;;"));
    CHECK(fake_conn_quiet(&fc));
    /* _OnNamespaceConnect decides (not local), then _OnNamespaceConnected. */
    CHECK(app.ncalls == 2);
    CHECK(strcmp(app.calls[0].event, "_OnNamespaceConnect") == 0 && !app.calls[0].is_local &&
          app.calls[0].wants_result && strcmp(app.calls[0].ns, "default") == 0);
    CHECK(strcmp(app.calls[1].event, "_OnNamespaceConnected") == 0 && !app.calls[1].is_local &&
          !app.calls[1].wants_result && app.calls[1].has_nsconn);
    CHECK(nf_conn_namespace(fc.conn, NF_SLICE("default")) != NULL);

    /* Already connected: the empty reply, no events. */
    fake_app_clear_calls(&app);
    send("$2;default;;_OnNamespaceConnect;0;0;");
    CHECK(fake_conn_expect_text(&fc, "$2;;;;;;"));
    CHECK(app.ncalls == 0);

    /* Not declared. */
    send("$3;nope;;_OnNamespaceConnect;0;0;");
    CHECK(fake_conn_expect_text(&fc, "$3;nope;;_OnNamespaceConnect;1;0;bad namespace"));
    CHECK(app.ncalls == 0);
    CHECK(fake_conn_quiet(&fc));
    teardown();
}

static void test_connect_refused(void)
{
    setup();
    fake_app_on(&app, "_OnNamespaceConnect", FAKE_ERROR, "no entry");
    send("$1;chat;;_OnNamespaceConnect;0;0;");
    CHECK(fake_conn_expect_text(&fc, "$1;chat;;_OnNamespaceConnect;1;0;no entry"));
    CHECK(app.ncalls == 1);   /* no _OnNamespaceConnected */
    CHECK(nf_conn_namespace(fc.conn, NF_SLICE("chat")) == NULL);

    /* An empty error text goes out as "error" (docs/protocol.md §5.5). */
    fake_app_on(&app, "_OnNamespaceConnect", FAKE_ERROR, "");
    send("$2;chat;;_OnNamespaceConnect;0;0;");
    CHECK(fake_conn_expect_text(&fc, "$2;chat;;_OnNamespaceConnect;1;0;error"));

    /* A returned value is success: still the empty reply (§7.9). */
    fake_app_on(&app, "_OnNamespaceConnect", FAKE_REPLY, "ignored");
    send("$3;chat;;_OnNamespaceConnect;0;0;");
    CHECK(fake_conn_expect_text(&fc, "$3;;;;;;"));
    CHECK(nf_conn_namespace(fc.conn, NF_SLICE("chat")) != NULL);
    CHECK(fake_conn_quiet(&fc));
    teardown();
}

static void test_connect_limit(void)
{
    nf_limits lim = nf_limits_default();
    lim.max_namespaces_per_conn = 1;
    setup_with(&lim);
    connect_default();
    send("$2;chat;;_OnNamespaceConnect;0;0;");
    CHECK(fake_conn_expect_text(&fc, "$2;chat;;_OnNamespaceConnect;1;0;too many namespaces"));
    CHECK(app.ncalls == 0);
    teardown();
}

/* docs/protocol.md §7.9: the four system requests without a token, or with isNoOp=1,
 * get nothing and fire nothing. */
static void test_system_requests_ignored(void)
{
    setup();
    send(";default;;_OnNamespaceConnect;0;0;");
    send("$1;default;;_OnNamespaceConnect;0;1;");
    CHECK(fake_conn_quiet(&fc));
    CHECK(app.ncalls == 0);
    connect_default();
    send(";default;;_OnNamespaceDisconnect;0;0;");
    send("$2;default;;_OnNamespaceDisconnect;0;1;");
    send(";default;r;_OnRoomJoin;0;0;");
    send("$3;default;r;_OnRoomJoin;0;1;");
    send(";default;r;_OnRoomLeave;0;0;");
    send("$4;default;r;_OnRoomLeave;0;1;");
    CHECK(fake_conn_quiet(&fc));
    CHECK(app.ncalls == 0);
    CHECK(nf_conn_namespace(fc.conn, NF_SLICE("default")) != NULL);
    teardown();
}

/* ---- _OnNamespaceDisconnect (docs/protocol.md §7.4) --------------------------------- */

static void test_disconnect(void)
{
    setup();
    /* Not connected: the empty reply, no events. */
    send("$1;default;;_OnNamespaceDisconnect;0;0;");
    CHECK(fake_conn_expect_text(&fc, "$1;;;;;;"));
    CHECK(app.ncalls == 0);

    connect_default();
    fake_app_on(&app, "_OnNamespaceDisconnect", FAKE_ERROR, "stay");
    send("$2;default;;_OnNamespaceDisconnect;0;0;");
    CHECK(fake_conn_expect_text(&fc, "$2;default;;_OnNamespaceDisconnect;1;0;stay"));
    CHECK(nf_conn_namespace(fc.conn, NF_SLICE("default")) != NULL);

    fake_app_on(&app, "_OnNamespaceDisconnect", FAKE_NONE, NULL);
    fake_app_clear_calls(&app);
    send("$3;default;;_OnNamespaceDisconnect;0;0;");
    CHECK(fake_conn_expect_text(&fc, "$3;;;;;;"));
    CHECK(app.ncalls == 1 && !app.calls[0].is_local && app.calls[0].wants_result);
    CHECK(nf_conn_namespace(fc.conn, NF_SLICE("default")) == NULL);
    CHECK(fake_conn_quiet(&fc));
    teardown();
}

/* ---- events (docs/protocol.md §6 step 8, §5.6) -------------------------------------- */

static void test_events(void)
{
    setup();
    /* Not connected: an ask gets "bad namespace", an emit nothing. */
    send("$1;default;;chat;0;0;hi");
    CHECK(fake_conn_expect_text(&fc, "$1;default;;chat;1;0;bad namespace"));
    send(";default;;chat;0;0;hi");
    CHECK(fake_conn_quiet(&fc));
    CHECK(app.ncalls == 0);

    connect_default();
    /* Nothing returned: nothing sent; the handler saw the message. */
    send("$2;default;room;chat;0;0;hello");
    CHECK(fake_conn_quiet(&fc));
    CHECK(app.ncalls == 1 && strcmp(app.calls[0].room, "room") == 0 && app.calls[0].body_len == 5 &&
          memcmp(app.calls[0].body, "hello", 5) == 0 && app.calls[0].wants_result && !app.calls[0].is_local);

    /* A value: written back with the token, names and body; with or without a token. */
    fake_app_on(&app, "chat", FAKE_REPLY, "pong");
    send("$3;default;room;chat;0;0;ping");
    CHECK(fake_conn_expect_text(&fc, "$3;default;room;chat;0;0;pong"));
    send(";default;;chat;0;0;ping");
    CHECK(fake_conn_expect_text(&fc, ";default;;chat;0;0;pong"));
    fake_app_on(&app, "chat", FAKE_REPLY, "");
    send("$4;default;;chat;0;0;x");
    CHECK(fake_conn_expect_text(&fc, "$4;default;;chat;0;0;"));

    /* An error: isError 1 with the text, "error" for an empty one. */
    fake_app_on(&app, "chat", FAKE_ERROR, "nope");
    send("$5;default;;chat;0;0;x");
    CHECK(fake_conn_expect_text(&fc, "$5;default;;chat;1;0;nope"));
    fake_app_on(&app, "chat", FAKE_ERROR, "");
    send("$6;default;;chat;0;0;x");
    CHECK(fake_conn_expect_text(&fc, "$6;default;;chat;1;0;error"));
    /* ...but not in answer to an error (the loop guard). */
    send("$7;default;;chat;1;0;bad");
    CHECK(fake_conn_quiet(&fc));
    CHECK(fake_app_count(&app, "chat") == 7);

    /* Names with ';' are escaped both ways (docs/protocol.md §5.2). */
    fake_app_on(&app, "a;b", FAKE_REPLY, "x;y");
    send("$8;default;r@%!semicolon@%!1;a@%!semicolon@%!b;0;0;z");
    CHECK(fake_conn_expect_text(&fc, "$8;default;r@%!semicolon@%!1;a@%!semicolon@%!b;0;0;x;y"));
    CHECK(fake_conn_quiet(&fc));
    teardown();
}

/* A binary request is answered in a binary frame; empty replies stay text
 * (docs/protocol.md §3.4). */
static void test_binary(void)
{
    setup();
    fake_conn_send_binary(&fc, "$1;default;;_OnNamespaceConnect;0;0;", 36);
    fake_conn_pump(&fc);
    CHECK(fake_conn_expect_text(&fc, "$1;;;;;;"));
    fake_app_on(&app, "bin", FAKE_REPLY, "ok");
    const char req[] = "$2;default;;bin;0;0;\x01;\xff";
    fake_conn_send_binary(&fc, req, sizeof req - 1);
    fake_conn_pump(&fc);
    CHECK(fake_conn_expect_binary(&fc, "$2;default;;bin;0;0;ok", 22));
    int i = fake_app_find(&app, "bin", 0);
    CHECK(i >= 0 && app.calls[i].binary && app.calls[i].body_len == 3 && memcmp(app.calls[i].body, "\x01;\xff", 3) == 0);
    teardown();
}

/* Events that only ever fire locally are not requests from the wire
 * (docs/protocol.md §6 step 8); late answers to server asks are dropped (step 7);
 * frames that are not messages are dropped unless "" is connected (§11). */
static void test_ignored(void)
{
    setup();
    connect_default();
    fake_app_on(&app, "_OnNamespaceConnected", FAKE_REPLY, "x");
    fake_app_on(&app, "_OnAnyEvent", FAKE_REPLY, "x");
    send("$1;default;;_OnNamespaceConnected;0;0;");
    send("$2;default;;_OnRoomJoined;0;0;");
    send(";default;r;_OnRoomLeft;0;0;");
    send("$3;default;;_OnAnyEvent;0;0;");
    send("$4;default;;_OnNativeMessage;0;0;");
    send("12345;default;;chat;0;0;late");
    send("hello");
    send(";default;;chat;0;0");   /* five ';': not a message */
    CHECK(fake_conn_quiet(&fc));
    CHECK(app.ncalls == 0);
    teardown();
}

/* Mixed mode: raw frames go to _OnNativeMessage of "" once "" is connected. */
static void test_native(void)
{
    setup();
    app.namespaces[2] = "";
    send("hello");
    CHECK(app.ncalls == 0);
    send("$1;;;_OnNamespaceConnect;0;0;");
    CHECK(fake_conn_expect_text(&fc, "$1;;;;;;"));
    fake_app_clear_calls(&app);
    fake_app_on(&app, "_OnNativeMessage", FAKE_REPLY, "ignored for native");
    send("hello");
    CHECK(app.ncalls == 1 && strcmp(app.calls[0].event, "_OnNativeMessage") == 0 && app.calls[0].is_native &&
          app.calls[0].body_len == 5);
    CHECK(fake_conn_quiet(&fc));   /* a native handler's result is not written back */
    teardown();
}

int main(void)
{
    test_connect();
    test_connect_refused();
    test_connect_limit();
    test_system_requests_ignored();
    test_disconnect();
    test_events();
    test_binary();
    test_ignored();
    test_native();
    fake_clock_uninstall();
    return TEST_REPORT();
}
