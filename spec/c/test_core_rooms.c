/* test_core_rooms.c - rooms through the fake transport: the client's join and
 * leave requests, "already joined", the room limit, refusals, neffos.js's
 * leaveAll() form, the host's room index, and the forced room events of a
 * namespace disconnect (docs/protocol.md §7.4, §7.6, §7.7, §7.9). */
#include <stdlib.h>
#include <string.h>

#include "fake_conn.h"
#include "test.h"

static fake_app app;
static nf_host *host;
static fake_conn fc;

static void setup_with(const nf_limits *lim)
{
    CHECK(fake_setup(&app, &host, &fc, lim, NULL, 0, 7000000, true) == 0);
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

static nf_nsconn *ns(void) { return nf_conn_namespace(fc.conn, NF_SLICE("default")); }

static void test_join(void)
{
    setup();
    send("$1;default;r1;_OnRoomJoin;0;0;");
    CHECK(fake_conn_expect_text(&fc, "$1;;;;;;"));
    CHECK(fake_conn_quiet(&fc));
    CHECK(app.ncalls == 2);
    CHECK(strcmp(app.calls[0].event, "_OnRoomJoin") == 0 && strcmp(app.calls[0].room, "r1") == 0 &&
          app.calls[0].wants_result && !app.calls[0].is_local);
    CHECK(strcmp(app.calls[1].event, "_OnRoomJoined") == 0 && !app.calls[1].wants_result);
    CHECK(nf_nsconn_in_room(ns(), NF_SLICE("r1")));
    nf_host_stats st;
    nf_host_get_stats(host, &st);
    CHECK(st.rooms == 1);

    /* Already joined: the empty reply, no events. */
    fake_app_clear_calls(&app);
    send("$2;default;r1;_OnRoomJoin;0;0;");
    CHECK(fake_conn_expect_text(&fc, "$2;;;;;;"));
    CHECK(app.ncalls == 0);

    /* Refused by the handler. */
    fake_app_on(&app, "_OnRoomJoin", FAKE_ERROR, "private");
    send("$3;default;r2;_OnRoomJoin;0;0;");
    CHECK(fake_conn_expect_text(&fc, "$3;default;r2;_OnRoomJoin;1;0;private"));
    CHECK(!nf_nsconn_in_room(ns(), NF_SLICE("r2")));
    CHECK(fake_app_count(&app, "_OnRoomJoined") == 0);

    /* Namespace not connected: nothing at all. */
    fake_app_clear_calls(&app);
    send("$4;other;r1;_OnRoomJoin;0;0;");
    CHECK(fake_conn_quiet(&fc));
    CHECK(app.ncalls == 0);

    /* A broadcast to the room reaches the member. */
    nf_broadcast b = { .ns = NF_SLICE("default"), .room = NF_SLICE("r1"), .event = NF_SLICE("news"),
                       .body = NF_SLICE("hi") };
    CHECK(nf_endpoint_broadcast(nf_conn_endpoint(fc.conn), &b) == 1);
    fake_conn_pump(&fc);
    CHECK(fake_conn_expect_text(&fc, ";default;r1;news;0;0;hi"));
    b.room = NF_SLICE("r2");
    CHECK(nf_endpoint_broadcast(nf_conn_endpoint(fc.conn), &b) == 0);
    fake_conn_pump(&fc);
    CHECK(fake_conn_quiet(&fc));
    teardown();
}

static void test_room_limit(void)
{
    nf_limits lim = nf_limits_default();
    lim.max_rooms_per_conn = 2;
    setup_with(&lim);
    send("$1;default;a;_OnRoomJoin;0;0;");
    send("$2;default;b;_OnRoomJoin;0;0;");
    CHECK(fake_conn_expect_text(&fc, "$1;;;;;;"));
    CHECK(fake_conn_expect_text(&fc, "$2;;;;;;"));
    fake_app_clear_calls(&app);
    send("$3;default;c;_OnRoomJoin;0;0;");
    CHECK(fake_conn_expect_text(&fc, "$3;default;c;_OnRoomJoin;1;0;too many rooms"));
    CHECK(app.ncalls == 0);
    nf_conn_stats cs;
    nf_conn_get_stats(fc.conn, &cs);
    CHECK(cs.rooms == 2 && cs.max_rooms == 2 && cs.namespaces == 1);
    teardown();
}

static void test_leave(void)
{
    setup();
    send("$1;default;r1;_OnRoomJoin;0;0;");
    CHECK(fake_conn_expect_text(&fc, "$1;;;;;;"));
    fake_app_clear_calls(&app);

    /* Not joined: the empty reply, no events. */
    send("$2;default;zz;_OnRoomLeave;0;0;");
    CHECK(fake_conn_expect_text(&fc, "$2;;;;;;"));
    CHECK(app.ncalls == 0);

    /* Refused: the room stays. */
    fake_app_on(&app, "_OnRoomLeave", FAKE_ERROR, "stay");
    send("$3;default;r1;_OnRoomLeave;0;0;");
    CHECK(fake_conn_expect_text(&fc, "$3;default;r1;_OnRoomLeave;1;0;stay"));
    CHECK(nf_nsconn_in_room(ns(), NF_SLICE("r1")));

    /* Accepted: the answer, then _OnRoomLeft. */
    fake_app_on(&app, "_OnRoomLeave", FAKE_NONE, NULL);
    fake_app_clear_calls(&app);
    send("$4;default;r1;_OnRoomLeave;0;0;");
    CHECK(fake_conn_expect_text(&fc, "$4;;;;;;"));
    CHECK(app.ncalls == 2 && strcmp(app.calls[0].event, "_OnRoomLeave") == 0 &&
          strcmp(app.calls[1].event, "_OnRoomLeft") == 0);
    CHECK(!nf_nsconn_in_room(ns(), NF_SLICE("r1")));
    nf_host_stats st;
    nf_host_get_stats(host, &st);
    CHECK(st.rooms == 0);
    CHECK(fake_conn_quiet(&fc));
    teardown();
}

/* neffos.js leaveAll() sends _OnRoomLeft with a token: the leave it meant,
 * decided by _OnRoomLeave (docs/protocol.md §7.7). */
static void test_leave_all_form(void)
{
    setup();
    send("$1;default;r1;_OnRoomJoin;0;0;");
    CHECK(fake_conn_expect_text(&fc, "$1;;;;;;"));
    fake_app_clear_calls(&app);
    send("$2;default;r1;_OnRoomLeft;0;0;");
    CHECK(fake_conn_expect_text(&fc, "$2;;;;;;"));
    CHECK(app.ncalls == 2 && strcmp(app.calls[0].event, "_OnRoomLeave") == 0 && app.calls[0].wants_result);
    CHECK(!nf_nsconn_in_room(ns(), NF_SLICE("r1")));
    teardown();
}

/* A client's namespace disconnect leaves every room first: _OnRoomLeave and
 * _OnRoomLeft, forced, not local, in join order (docs/protocol.md §7.4). */
static void test_disconnect_leaves_rooms(void)
{
    setup();
    send("$1;default;a;_OnRoomJoin;0;0;");
    send("$2;default;b;_OnRoomJoin;0;0;");
    CHECK(fake_conn_expect_text(&fc, "$1;;;;;;"));
    CHECK(fake_conn_expect_text(&fc, "$2;;;;;;"));
    fake_app_clear_calls(&app);
    send("$3;default;;_OnNamespaceDisconnect;0;0;");
    CHECK(fake_conn_expect_text(&fc, "$3;;;;;;"));
    const char *order[] = { "_OnNamespaceDisconnect", "_OnRoomLeave", "_OnRoomLeft", "_OnRoomLeave", "_OnRoomLeft" };
    const char *rooms[] = { "", "a", "a", "b", "b" };
    CHECK(app.ncalls == 5);
    for (size_t i = 0; i < 5 && i < app.ncalls; i++) {
        CHECK(strcmp(app.calls[i].event, order[i]) == 0 && strcmp(app.calls[i].room, rooms[i]) == 0);
        if (i > 0)
            CHECK(app.calls[i].is_forced && !app.calls[i].is_local);
    }
    nf_host_stats st;
    nf_host_get_stats(host, &st);
    CHECK(st.rooms == 0 && st.namespaces == 0);
    teardown();
}

int main(void)
{
    test_join();
    test_room_limit();
    test_leave();
    test_leave_all_form();
    test_disconnect_leaves_rooms();
    fake_clock_uninstall();
    return TEST_REPORT();
}
