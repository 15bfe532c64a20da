/* bench_broadcast.c - one sender, many receivers. The sender emits --event
 * with a sequence number as the body; the app broadcasts it to everyone
 * else as --recv-event. Each receiver checks that numbers arrive in order
 * and counts them; what is missing after the drain is loss.
 *
 * Pacing: the sender stays at most --window messages ahead of the slowest
 * receiver. That keeps the server saturated (there is always a window's
 * worth queued for every receiver, so several messages can leave in one
 * write) while its queues stay bounded, so what we measure is throughput,
 * not how much the server can buffer. The sender refills in bursts, once
 * the slowest receiver is within half a window, so that the server finds
 * several messages per read and can send several per receiver per write,
 * as a busy chat server would. */
#include "bench.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bcast_run {
    bench_fleet fleet;
    const bench_opts *o;
    nf_slice event, recv_event;
    bench_conn *sender;
    char *body_buf;
    uint64_t sent;              /* last sequence number emitted (they start at 1) */
    uint64_t min_last;          /* the slowest receiver's last sequence number */
    unsigned n_at_min;          /* receivers whose last == min_last */
    uint64_t deliveries;
    uint64_t sender_got;        /* frames the sender received (should be 0) */
    bool running, draining;
    uint64_t t_start, t_stop, t_last_delivery;
    double srv_cpu0, srv_cpu1, self_cpu0, self_cpu1;
    struct event *phase_timer;
    unsigned send_failures;
} bcast_run;

static void recompute_min(bcast_run *r)
{
    bench_fleet *f = &r->fleet;
    uint64_t m = UINT64_MAX;
    unsigned n = 0;
    for (unsigned i = 1; i < f->n; i++) {
        bench_conn *bc = &f->conns[i];
        if (!bc->ready || bc->closed)
            continue;
        if (bc->last_seq < m) {
            m = bc->last_seq;
            n = 1;
        } else if (bc->last_seq == m) {
            n++;
        }
    }
    r->min_last = m == UINT64_MAX ? r->sent : m;
    r->n_at_min = n;
}

static void finish_run(bcast_run *r)
{
    r->srv_cpu1 = bench_proc_cpu_s(r->o->server_pid);
    r->self_cpu1 = bench_self_cpu_s();
    event_base_loopbreak(r->fleet.base);
}

static void pump(bcast_run *r)
{
    char body[64];
    bench_conn *s = r->sender;
    if (r->sent - r->min_last > r->o->window / 2)
        return;
    while (r->running && !s->closed && r->sent - r->min_last < r->o->window) {
        uint64_t seq = r->sent + 1;
        int n = snprintf(body, sizeof(body), "%llu", (unsigned long long)seq);
        /* Pad to --size so the payload size is the caller's choice; the
         * number stays first so receivers can parse it. */
        nf_slice b;
        if ((size_t)n < r->o->size) {
            memcpy(r->body_buf, body, (size_t)n);
            r->body_buf[n] = ' ';
            b = nf_slice_of(r->body_buf, r->o->size);
        } else {
            b = nf_slice_of(body, (size_t)n);
        }
        if (nf_client_emit(s->c, r->fleet.ns, r->event, b) < 0) {
            r->send_failures++;
            return;
        }
        r->sent = seq;
    }
}

static void on_event(nf_client *c, const nf_msg *m)
{
    bench_conn *bc = nf_client_udata(c);
    bcast_run *r = bc->fleet->mode;
    if (bc == r->sender) {
        r->sender_got++;
        return;
    }
    if (!nf_slice_eq(m->event, r->recv_event)) {
        bc->unexpected++;
        return;
    }
    uint64_t seq = 0;
    for (size_t i = 0; i < m->body.len && m->body.ptr[i] >= '0' && m->body.ptr[i] <= '9'; i++)
        seq = seq * 10 + (uint64_t)(m->body.ptr[i] - '0');
    bc->received++;
    r->deliveries++;
    r->t_last_delivery = bench_now_ns();
    if (seq <= bc->last_seq) {
        bc->order_violations++;
        return;
    }
    uint64_t old = bc->last_seq;
    bc->last_seq = seq;
    if (old == r->min_last && --r->n_at_min == 0) {
        recompute_min(r);
        if (r->running)
            pump(r);
        else if (r->draining && r->min_last >= r->sent)
            finish_run(r);
    }
}

/* A receiver dropped out: it no longer holds the sender back. */
static void on_lost(bench_fleet *f, bench_conn *bc)
{
    bcast_run *r = f->mode;
    if (bc == r->sender)
        return;
    recompute_min(r);
    if (r->running)
        pump(r);
    else if (r->draining && r->min_last >= r->sent)
        finish_run(r);
}

static void arm(bcast_run *r, double seconds)
{
    struct timeval tv = { (time_t)seconds, (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6) };
    evtimer_add(r->phase_timer, &tv);
}

static void phase_cb(evutil_socket_t fd, short what, void *arg)
{
    bcast_run *r = arg;
    if (r->running) {           /* time is up: stop sending, wait for the tail */
        r->running = false;
        r->draining = true;
        r->t_stop = bench_now_ns();
        recompute_min(r);
        if (r->min_last >= r->sent) {
            finish_run(r);
            return;
        }
        arm(r, r->o->drain);
    } else {                    /* the drain timed out: the rest is lost */
        finish_run(r);
    }
}

static void all_dialled(bench_fleet *f)
{
    bcast_run *r = f->mode;
    fprintf(stderr, "broadcast: %u/%u connections ready (%u failed)\n", f->ready, f->n, f->failed);
    if (!r->sender->ready || f->ready < 2) {
        event_base_loopbreak(f->base);
        return;
    }
    r->srv_cpu0 = bench_proc_cpu_s(r->o->server_pid);
    r->self_cpu0 = bench_self_cpu_s();
    r->t_start = bench_now_ns();
    r->running = true;
    recompute_min(r);
    arm(r, r->o->seconds);
    pump(r);
}

int bench_broadcast(const bench_opts *o)
{
    bcast_run *r = calloc(1, sizeof(*r));
    struct event_base *base = event_base_new();
    if (r == NULL || base == NULL)
        return 2;
    r->o = o;
    r->srv_cpu0 = r->srv_cpu1 = -1;     /* "not measured" unless the run starts */
    r->event = nf_slice_of(o->event, strlen(o->event));
    r->recv_event = nf_slice_of(o->recv_event, strlen(o->recv_event));
    r->body_buf = malloc(o->size + 1);
    memset(r->body_buf, 'x', o->size + 1);
    r->phase_timer = evtimer_new(base, phase_cb, r);
    r->fleet.mode = r;
    r->fleet.on_all_dialled = all_dialled;
    r->fleet.h.on_event = on_event;
    r->fleet.on_lost = on_lost;
    if (bench_fleet_start(&r->fleet, base, o, o->receivers + 1) < 0)
        return 2;
    r->sender = &r->fleet.conns[0];
    event_base_dispatch(base);

    bench_fleet *f = &r->fleet;
    uint64_t expected = 0, received = 0, order = 0, unexpected = 0, lost = 0;
    unsigned receivers = 0;
    for (unsigned i = 1; i < f->n; i++) {
        bench_conn *bc = &f->conns[i];
        if (!bc->ready)
            continue;
        receivers++;
        expected += r->sent;
        received += bc->received;
        order += bc->order_violations;
        unexpected += bc->unexpected;
        /* Messages that never came, counted per receiver; duplicates do
         * not make up for missing ones. */
        uint64_t distinct = bc->received - bc->order_violations;
        if (distinct < r->sent)
            lost += r->sent - distinct;
    }
    uint64_t t_end = r->t_last_delivery > r->t_start ? r->t_last_delivery : r->t_stop;
    double secs = t_end > r->t_start ? (double)(t_end - r->t_start) / 1e9 : 0;
    double rate = secs > 0 ? (double)received / secs : 0;
    double srv_cpu = (o->server_pid && r->srv_cpu0 >= 0 && r->srv_cpu1 >= 0) ? r->srv_cpu1 - r->srv_cpu0 : -1;
    double self_cpu = r->self_cpu1 - r->self_cpu0;

    printf("broadcast %s ns=%s event=%s -> %s: 1 sender, %u receivers, window %u, %.2f s\n",
           o->url_str, o->ns, o->event, o->recv_event, receivers, o->window, secs);
    printf("  messages sent  %llu (%.0f /s)\n", (unsigned long long)r->sent, secs > 0 ? (double)r->sent / secs : 0);
    printf("  deliveries     %llu of %llu expected  (%.0f /s)\n", (unsigned long long)received,
           (unsigned long long)expected, rate);
    printf("  lost           %llu   order violations %llu   unexpected events %llu   echoed to sender %llu\n",
           (unsigned long long)lost, (unsigned long long)order, (unsigned long long)unexpected,
           (unsigned long long)r->sender_got);
    if (srv_cpu >= 0)
        printf("  server CPU     %.2f s  (%.0f deliveries per server CPU-second)\n", srv_cpu,
               srv_cpu > 0 ? (double)received / srv_cpu : 0);
    printf("  client CPU     %.2f s\n", self_cpu);
    if (f->first_error[0])
        printf("  first error    %s (dial failures %u, closed later %u)\n", f->first_error, f->failed,
               f->closed_after_ready);

    char err[420], n1[32], n2[32];
    bench_json_string(err, sizeof(err), f->first_error);
    printf("{\"mode\":\"broadcast\",\"receivers\":%u,\"window\":%u,\"seconds\":%.3f,\"sent\":%llu,"
           "\"deliveries\":%llu,\"expected\":%llu,\"deliveries_per_s\":%.0f,\"lost\":%llu,"
           "\"order_violations\":%llu,\"unexpected\":%llu,\"sender_echoes\":%llu,\"dial_failures\":%u,"
           "\"server_cpu_s\":%s,\"deliveries_per_server_cpu_s\":%s,\"client_cpu_s\":%.2f,\"first_error\":%s}\n",
           receivers, o->window, secs, (unsigned long long)r->sent, (unsigned long long)received,
           (unsigned long long)expected, rate, (unsigned long long)lost, (unsigned long long)order,
           (unsigned long long)unexpected, (unsigned long long)r->sender_got, f->failed, bench_json_num(n1, srv_cpu, 2),
           bench_json_num(n2, srv_cpu > 0 ? (double)received / srv_cpu : -1, 0), self_cpu, err);

    int rc = (received > 0 && lost == 0 && order == 0 && f->failed == 0) ? 0 : 1;
    bench_fleet_free(f);
    event_free(r->phase_timer);
    event_base_free(base);
    free(r->body_buf);
    free(r);
    return rc;
}
