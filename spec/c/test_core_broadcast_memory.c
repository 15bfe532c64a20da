/* test_core_broadcast_memory.c - what a queued broadcast delivery costs, and
 * that the memory goes back when the receivers leave (issue 14, point 3).
 *
 * Receivers that do not read fill their socket (a small SO_SNDBUF), so what
 * is broadcast afterwards stays queued in the server. The heap's live bytes
 * (host/base/heap.h: glibc's count, or ASan's in the test build) grow by the
 * shared frames plus what each queued delivery costs: a reference, not a
 * copy and not libevent's 1 KiB reference chain. And the queue keeps the
 * order of shared and owned frames through partial writes, within the
 * outgoing bound. Counts, not timings: the same figures on a busy machine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_conn.h"
#include "heap.h"
#include "test.h"

#define RECEIVERS 100
#define SNDBUF 4096                 /* the server end's: full after a few KB */
#define BACKLOG 64                  /* broadcasts queued per receiver while measured */
#define BODY_LEN 100
#define MAX_PER_DELIVERY 64         /* bytes a queued delivery may cost beyond the shared frame */
#define FRAME_OVERHEAD 64           /* a shared frame's header, struct and allocator slack */
#define GIVE_BACK_SLACK (64 * 1024) /* what the host may keep after everyone left */

static fake_app app;
static nf_host *host;
static fake_conn fcs[RECEIVERS];
static char body[BODY_LEN];

static size_t queued_total(void)
{
    size_t n = 0;
    for (int i = 0; i < RECEIVERS; i++) {
        nf_conn_stats st;
        nf_conn_get_stats(fcs[i].conn, &st);
        n += st.output_bytes;
    }
    return n;
}

static bool all_queued(void)
{
    for (int i = 0; i < RECEIVERS; i++) {
        nf_conn_stats st;
        nf_conn_get_stats(fcs[i].conn, &st);
        if (st.output_bytes == 0)
            return false;
    }
    return true;
}

/* One broadcast to everyone in "default", written as far as the sockets take it. */
static size_t shout(void)
{
    nf_broadcast b = { .ns = NF_SLICE("default"), .event = NF_SLICE("chat"), .body = nf_slice_of(body, sizeof body) };
    size_t n = nf_endpoint_broadcast(nf_conn_endpoint(fcs[0].conn), &b);
    fake_conn_pump(&fcs[0]);
    return n;
}

static void open_receivers(void)
{
    for (int i = 0; i < RECEIVERS; i++) {
        CHECK(fake_conn_open(&fcs[i], host, SNDBUF) == 0);
        CHECK(fake_conn_handshake(&fcs[i], "/echo") == 0);
        CHECK(fake_conn_connect_ns(&fcs[i], "default") == 0);   /* its ping barrier answered */
        fake_conn_discard(&fcs[i]);
    }
}

static void test_queued_delivery_is_a_reference(void)
{
    nf_limits lim = nf_limits_default();
    lim.max_outgoing_bytes = 64u << 20;   /* the slow readers stay: nothing is closed */
    memset(body, 'x', sizeof body);
    fake_clock_install(9000000);
    fake_app_init(&app);
    app.namespaces[0] = "default";
    host = fake_host_new(&lim, &app, NULL);
    CHECK(host != NULL);
    size_t live_before = nf_heap_live_bytes();
    open_receivers();
    for (int i = 0; i < RECEIVERS; i++)
        fcs[i].reading = false;

    /* Fill every socket: from now on deliveries stay in the server. */
    for (int k = 0; k < 5000 && !all_queued(); k++)
        CHECK(shout() == RECEIVERS);
    CHECK(all_queued());

    size_t heap0 = nf_heap_live_bytes(), q0 = queued_total();
    for (int k = 0; k < BACKLOG; k++)
        CHECK(shout() == RECEIVERS);
    size_t heap1 = nf_heap_live_bytes(), q1 = queued_total();

    size_t frame = 2 + strlen(";default;;chat;0;0;") + BODY_LEN;
    size_t deliveries = (q1 - q0) / frame;
    CHECK(deliveries >= RECEIVERS * BACKLOG * 9 / 10);   /* they did stay queued */
    size_t shared = BACKLOG * (frame + FRAME_OVERHEAD);
    size_t grown = heap1 > heap0 + shared ? heap1 - heap0 - shared : 0;
    printf("%zu deliveries queued, %zu bytes each beyond the shared frames (at most %d)\n", deliveries,
           deliveries ? grown / deliveries : 0, MAX_PER_DELIVERY);
    CHECK(deliveries > 0 && grown / deliveries <= MAX_PER_DELIVERY);

    /* Everyone leaves: after the sweep that finds the server quiet, the host
     * holds about what it held before they came. */
    for (int i = 0; i < RECEIVERS; i++)
        fake_conn_free(&fcs[i]);
    nf_host_sweep(host);
    nf_host_sweep(host);
    size_t live_after = nf_heap_live_bytes();
    printf("live heap: %zu bytes before the receivers came, %zu after they left\n", live_before, live_after);
    CHECK(live_after <= live_before + GIVE_BACK_SLACK);
    fake_host_free(host);
    CHECK(app.conns_freed == RECEIVERS);
}

/* Shared frames and a connection's own frames (a direct emit, here) leave
 * in the order they were queued, whole, through partial writes into a
 * small socket; the close frame of the outgoing bound comes last. */
static void test_shared_and_owned_frames_keep_their_order(void)
{
    enum { ROUNDS = 300, PAD = 300 };
    static char msg[PAD + 32], want[PAD + 64];
    nf_limits lim = nf_limits_default();
    lim.max_outgoing_bytes = 48 * 1024;
    CHECK(fake_setup(&app, &host, &fcs[0], &lim, NULL, SNDBUF, 9500000, true) == 0);
    CHECK(fake_conn_connect_ns(&fcs[0], "default") == 0);
    fake_conn_discard(&fcs[0]);
    fcs[0].reading = false;
    nf_endpoint *ep = nf_conn_endpoint(fcs[0].conn);
    size_t queued = 0, max_queued = 0, sent = 0;
    bool closed = false;
    for (int k = 0; k < ROUNDS && !closed; k++) {
        int n = snprintf(msg, sizeof msg, "%d ", k);
        memset(msg + n, 'a' + k % 26, PAD);
        nf_slice text = nf_slice_of(msg, (size_t)n + PAD);
        if (k % 3 == 0) {
            nf_nsconn *nc = nf_conn_namespace(fcs[0].conn, NF_SLICE("default"));
            closed = nc == NULL || nf_nsconn_emit(nc, NF_SLICE_EMPTY, NF_SLICE("direct"), text, false) != 0;
        } else {
            nf_broadcast b = { .ns = NF_SLICE("default"), .event = NF_SLICE("chat"), .body = text };
            closed = nf_endpoint_broadcast(ep, &b) != 1;
        }
        sent += !closed;
        fake_conn_pump(&fcs[0]);
        nf_conn_stats st;
        nf_conn_get_stats(fcs[0].conn, &st);
        queued = st.output_bytes;
        if (queued > max_queued)
            max_queued = queued;
    }
    /* The bound holds, shared frames counted by their size: past it, the
     * connection is closed rather than queued to. */
    CHECK(closed && sent > 0 && sent < ROUNDS);
    CHECK(max_queued <= lim.max_outgoing_bytes + PAD + 64);
    fcs[0].reading = true;
    size_t got = 0;
    fake_frame f = { 0 };
    bool in_order = true, saw_close = false;
    for (int round = 0; round < 1000 && !saw_close; round++) {
        fake_conn_pump(&fcs[0]);
        while (!saw_close && fake_conn_next(&fcs[0], &f)) {
            if (f.opcode == 0x8) {
                saw_close = f.close_code == 1008;
            } else {
                int n = snprintf(want, sizeof want, ";default;;%s;0;0;%zu ", got % 3 == 0 ? "direct" : "chat", got);
                memset(want + n, 'a' + (int)(got % 26), PAD);
                in_order = in_order && f.opcode == 0x1 && f.len == (size_t)n + PAD && memcmp(f.data, want, f.len) == 0;
                got++;
            }
            fake_frame_free(&f);
        }
    }
    CHECK(in_order);
    CHECK(got == sent);
    CHECK(saw_close);
    fake_conn_send_close(&fcs[0], 1000, "");
    fake_conn_pump(&fcs[0]);
    CHECK(fake_teardown(&app, host, &fcs[0]) == 0);
}

int main(void)
{
    test_queued_delivery_is_a_reference();
    test_shared_and_owned_frames_keep_their_order();
    fake_clock_uninstall();
    return TEST_REPORT();
}
