/* test_core_broadcast_memory.c - what a queued broadcast delivery costs, and
 * that the memory goes back when the receivers leave (issue 14, point 3).
 *
 * Receivers that do not read fill their socket (a small SO_SNDBUF), so what
 * is broadcast afterwards stays queued in the server. The heap's live bytes
 * (host/base/heap.h: glibc's count, or ASan's in the test build) grow by the
 * shared frames plus what each queued delivery costs: a reference, not a
 * copy and not libevent's 1 KiB reference chain. Counts, not timings: the
 * same figures on a busy machine. */
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

int main(void)
{
    test_queued_delivery_is_a_reference();
    fake_clock_uninstall();
    return TEST_REPORT();
}
