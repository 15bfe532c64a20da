/* bench_idle.c - memory per idle connection: the server's RSS before any
 * connection and after --conns connections have connected to the
 * namespace and sat idle, divided by the count. */
#include "bench.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct idle_run {
    bench_fleet fleet;
    const bench_opts *o;
    long long rss0, rss1;
    double srv_cpu0, srv_cpu1, srv_cpu_hold0;
    uint64_t t0, t_ready;
    struct event *hold_timer;
} idle_run;

static void hold_over(evutil_socket_t fd, short what, void *arg)
{
    idle_run *r = arg;
    r->rss1 = bench_proc_rss(r->o->server_pid);
    r->srv_cpu1 = bench_proc_cpu_s(r->o->server_pid);
    event_base_loopbreak(r->fleet.base);
}

static void all_dialled(bench_fleet *f)
{
    idle_run *r = f->mode;
    r->t_ready = bench_now_ns();
    r->srv_cpu_hold0 = bench_proc_cpu_s(r->o->server_pid);
    fprintf(stderr, "idle: %u/%u connections ready (%u failed) in %.2f s\n", f->ready, f->n, f->failed,
            (double)(r->t_ready - r->t0) / 1e9);
    /* Hold them: the RSS is read at the end, once whatever the dial burst
     * left in the server's allocator had a chance to settle. */
    double s = r->o->seconds;
    struct timeval tv = { (time_t)s, (suseconds_t)((s - (double)(time_t)s) * 1e6) };
    evtimer_add(r->hold_timer, &tv);
}

int bench_idle(const bench_opts *o)
{
    idle_run *r = calloc(1, sizeof(*r));
    struct event_base *base = event_base_new();
    if (r == NULL || base == NULL)
        return 2;
    r->o = o;
    r->hold_timer = evtimer_new(base, hold_over, r);
    r->fleet.mode = r;
    r->fleet.on_all_dialled = all_dialled;
    r->rss0 = bench_proc_rss(o->server_pid);
    r->srv_cpu0 = bench_proc_cpu_s(o->server_pid);
    r->rss1 = -1;
    r->t0 = bench_now_ns();
    if (bench_fleet_start(&r->fleet, base, o, o->conns) < 0)
        return 2;
    event_base_dispatch(base);

    bench_fleet *f = &r->fleet;
    unsigned alive = 0;
    for (unsigned i = 0; i < f->n; i++)
        alive += f->conns[i].ready && !f->conns[i].closed;
    double dial_s = r->t_ready > r->t0 ? (double)(r->t_ready - r->t0) / 1e9 : 0;
    bool have_rss = o->server_pid && r->rss0 >= 0 && r->rss1 >= 0;
    double per_conn = have_rss && alive ? (double)(r->rss1 - r->rss0) / alive : -1;
    double dial_cpu = (o->server_pid && r->srv_cpu0 >= 0) ? r->srv_cpu_hold0 - r->srv_cpu0 : -1;
    double hold_cpu = (o->server_pid && r->srv_cpu1 >= 0) ? r->srv_cpu1 - r->srv_cpu_hold0 : -1;

    printf("idle %s ns=%s: %u of %u connections held for %.1f s (dialled in %.2f s, %.0f /s)\n",
           o->url_str, o->ns, alive, o->conns, o->seconds, dial_s, dial_s > 0 ? f->ready / dial_s : 0);
    if (have_rss) {
        printf("  server RSS     %.1f MB before, %.1f MB after\n", r->rss0 / 1048576.0, r->rss1 / 1048576.0);
        printf("  per connection %.0f bytes (%.2f KB)\n", per_conn, per_conn / 1024.0);
        printf("  server CPU     %.2f s dialling, %.2f s holding\n", dial_cpu, hold_cpu);
    } else {
        printf("  (no --server-pid: server RSS not measured)\n");
    }
    if (f->first_error[0])
        printf("  first error    %s (failed %u, closed later %u)\n", f->first_error, f->failed,
               f->closed_after_ready);

    char err[420], n1[32], n2[32], n3[32], n4[32], n5[32];
    bench_json_string(err, sizeof(err), f->first_error);
    printf("{\"mode\":\"idle\",\"conns\":%u,\"held\":%u,\"failed\":%u,\"dial_seconds\":%.3f,"
           "\"rss_before\":%s,\"rss_after\":%s,\"bytes_per_conn\":%s,\"server_cpu_dial_s\":%s,"
           "\"server_cpu_hold_s\":%s,\"first_error\":%s}\n",
           o->conns, alive, f->failed, dial_s, bench_json_num(n1, have_rss ? (double)r->rss0 : -1, 0),
           bench_json_num(n2, have_rss ? (double)r->rss1 : -1, 0), bench_json_num(n3, per_conn, 0),
           bench_json_num(n4, dial_cpu, 2), bench_json_num(n5, hold_cpu, 2), err);

    int rc = (alive == o->conns) ? 0 : 1;
    bench_fleet_free(f);
    event_free(r->hold_timer);
    event_base_free(base);
    free(r);
    return rc;
}
