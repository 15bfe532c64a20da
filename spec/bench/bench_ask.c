/* bench_ask.c - closed-loop asks: every connection keeps --inflight asks
 * outstanding and sends the next one the moment a reply arrives, so the
 * rate measured is what the server sustains, and the latency is what a
 * client sees at that rate. */
#include "bench.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"

typedef struct ask_run {
    bench_fleet fleet;
    const bench_opts *o;
    nf_slice event, body;
    char *body_buf;
    hist lat;
    bool measuring, stopping;
    uint64_t t_start, t_end;
    uint64_t replies, errors, mismatches, closed, send_failures;
    uint64_t outstanding;
    double srv_cpu0, srv_cpu1, self_cpu0, self_cpu1;
    struct event *phase_timer;
    int phase;                      /* 0 warmup, 1 measuring, 2 draining */
    char first_reply_error[160];
} ask_run;

static void ask_done(nf_client *c, nf_client_ask_status st, const nf_msg *reply, void *arg);

static void issue(ask_run *r, bench_conn *bc)
{
    /* The send time rides in the callback argument: no per-ask state. */
    void *arg = (void *)(uintptr_t)bench_now_ns();
    if (nf_client_ask(bc->c, r->fleet.ns, r->event, r->body, ask_done, arg) < 0) {
        r->send_failures++;
        return;
    }
    bc->outstanding++;
    r->outstanding++;
}

static void ask_done(nf_client *c, nf_client_ask_status st, const nf_msg *reply, void *arg)
{
    bench_conn *bc = nf_client_udata(c);
    ask_run *r = bc->fleet->mode;
    bc->outstanding--;
    r->outstanding--;
    if (st == NF_CLIENT_ASK_OK) {
        if (r->measuring) {
            uint64_t lat = bench_now_ns() - (uint64_t)(uintptr_t)arg;
            hist_record(&r->lat, lat);
            bc->lat_sum_ns += lat;
            bc->lat_n++;
            r->replies++;
            if (reply->body.len != r->body.len)
                r->mismatches++;
        }
    } else if (st == NF_CLIENT_ASK_ERROR) {
        if (r->measuring)
            r->errors++;
        if (r->first_reply_error[0] == '\0')
            snprintf(r->first_reply_error, sizeof(r->first_reply_error), "%.*s",
                     (int)reply->body.len, reply->body.ptr);
    } else {
        r->closed++;
        if (r->stopping && r->outstanding == 0)
            event_base_loopbreak(r->fleet.base);
        return;
    }
    if (!r->stopping)
        issue(r, bc);
    else if (r->outstanding == 0)
        event_base_loopbreak(r->fleet.base);
}

static void arm(ask_run *r, double seconds)
{
    struct timeval tv = { (time_t)seconds, (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6) };
    evtimer_add(r->phase_timer, &tv);
}

static void phase_cb(evutil_socket_t fd, short what, void *arg)
{
    ask_run *r = arg;
    switch (r->phase) {
    case 0:     /* warmup over: start counting from a clean slate */
        r->phase = 1;
        r->measuring = true;
        hist_reset(&r->lat);
        r->replies = r->errors = r->mismatches = 0;
        for (unsigned i = 0; i < r->fleet.n; i++)
            r->fleet.conns[i].lat_sum_ns = r->fleet.conns[i].lat_n = 0;
        r->srv_cpu0 = bench_proc_cpu_s(r->o->server_pid);
        r->self_cpu0 = bench_self_cpu_s();
        r->t_start = bench_now_ns();
        arm(r, r->o->seconds);
        break;
    case 1:     /* measurement over: stop issuing, let the last replies in */
        r->t_end = bench_now_ns();
        r->srv_cpu1 = bench_proc_cpu_s(r->o->server_pid);
        r->self_cpu1 = bench_self_cpu_s();
        r->measuring = false;
        r->stopping = true;
        r->phase = 2;
        if (r->outstanding == 0) {
            event_base_loopbreak(r->fleet.base);
            break;
        }
        arm(r, r->o->drain);
        break;
    default:    /* drain timed out: what is left is lost */
        event_base_loopbreak(r->fleet.base);
    }
}

static void all_dialled(bench_fleet *f)
{
    ask_run *r = f->mode;
    fprintf(stderr, "ask: %u/%u connections ready (%u failed)\n", f->ready, f->n, f->failed);
    if (f->ready == 0) {
        event_base_loopbreak(f->base);
        return;
    }
    for (unsigned i = 0; i < f->n; i++)
        if (f->conns[i].ready)
            for (unsigned k = 0; k < r->o->inflight; k++)
                issue(r, &f->conns[i]);
    if (r->o->warmup > 0) {
        arm(r, r->o->warmup);
    } else {
        phase_cb(-1, 0, r);
    }
}

int bench_ask(const bench_opts *o)
{
    ask_run *r = calloc(1, sizeof(*r));
    struct event_base *base = event_base_new();
    if (r == NULL || base == NULL)
        return 2;
    r->o = o;
    r->srv_cpu0 = r->srv_cpu1 = -1;     /* "not measured" unless the run starts */
    r->event = nf_slice_of(o->event, strlen(o->event));
    r->body_buf = malloc(o->size ? o->size : 1);
    /* Printable, and no ';' so that it reads the same in any log. */
    for (size_t i = 0; i < o->size; i++)
        r->body_buf[i] = (char)('a' + i % 26);
    r->body = nf_slice_of(r->body_buf, o->size);
    hist_reset(&r->lat);
    r->phase_timer = evtimer_new(base, phase_cb, r);
    r->fleet.mode = r;
    r->fleet.on_all_dialled = all_dialled;
    if (bench_fleet_start(&r->fleet, base, o, o->conns) < 0)
        return 2;
    event_base_dispatch(base);

    bench_fleet *f = &r->fleet;
    double secs = r->t_end > r->t_start ? (double)(r->t_end - r->t_start) / 1e9 : 0;
    double rate = secs > 0 ? (double)r->replies / secs : 0;
    double srv_cpu = (r->srv_cpu0 >= 0 && r->srv_cpu1 >= 0 && o->server_pid) ? r->srv_cpu1 - r->srv_cpu0 : -1;
    double self_cpu = r->self_cpu1 - r->self_cpu0;
    double p50 = (double)hist_quantile(&r->lat, 0.50) / 1e3;
    double p99 = (double)hist_quantile(&r->lat, 0.99) / 1e3;
    double p999 = (double)hist_quantile(&r->lat, 0.999) / 1e3;
    double pmax = r->lat.count ? (double)r->lat.max / 1e3 : 0;
    /* The shape of the latency: more quantiles, and the slowest and fastest
     * connection's mean. Equal means with a wide spread of single replies
     * say the wait is the same for every connection (no unfairness), so
     * the tail is in the loop's rounds or the machine, not in who is
     * served first (docs/bench.md, "The shape of the ask64 latency"). */
    double q[3] = { 0.01, 0.10, 0.90 }, qv[3];
    for (int i = 0; i < 3; i++)
        qv[i] = (double)hist_quantile(&r->lat, q[i]) / 1e3;
    double cmin = -1, cmax = -1;
    for (unsigned i = 0; i < f->n; i++) {
        if (f->conns[i].lat_n == 0)
            continue;
        double m = (double)f->conns[i].lat_sum_ns / (double)f->conns[i].lat_n / 1e3;
        if (cmin < 0 || m < cmin)
            cmin = m;
        if (m > cmax)
            cmax = m;
    }
    uint64_t lost = r->outstanding;     /* unanswered after the drain */
    uint64_t errors = r->errors + r->mismatches + r->closed + r->send_failures + lost + f->failed;

    printf("ask %s ns=%s event=%s: %u conns x %u in flight, %zu B bodies, %.2f s measured\n",
           o->url_str, o->ns, o->event, f->ready, o->inflight, o->size, secs);
    printf("  replies        %llu  (%.0f /s)\n", (unsigned long long)r->replies, rate);
    printf("  latency (us)   p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n", p50, p99, p999, pmax);
    printf("  shape (us)     p1 %.1f  p10 %.1f  p90 %.1f; connections' means %.1f..%.1f\n", qv[0], qv[1], qv[2],
           cmin, cmax);
    printf("  errors         %llu  (error replies %llu, wrong size %llu, closed %llu, unanswered %llu, dial failures %u)\n",
           (unsigned long long)errors, (unsigned long long)r->errors, (unsigned long long)r->mismatches,
           (unsigned long long)r->closed, (unsigned long long)lost, f->failed);
    if (srv_cpu >= 0)
        printf("  server CPU     %.2f s  (%.0f replies per server CPU-second)\n", srv_cpu,
               srv_cpu > 0 ? (double)r->replies / srv_cpu : 0);
    printf("  client CPU     %.2f s\n", self_cpu);
    if (f->first_error[0] || r->first_reply_error[0])
        printf("  first error    %s%s\n", f->first_error, r->first_reply_error);

    char err[420], tmp[400], n1[32], n2[32], n3[32], n4[32];
    snprintf(tmp, sizeof(tmp), "%s%s", f->first_error, r->first_reply_error);
    bench_json_string(err, sizeof(err), tmp);
    printf("{\"mode\":\"ask\",\"conns\":%u,\"inflight\":%u,\"size\":%zu,\"seconds\":%.3f,"
           "\"replies\":%llu,\"replies_per_s\":%.0f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
           "\"max_us\":%.1f,\"p1_us\":%.1f,\"p10_us\":%.1f,\"p90_us\":%.1f,\"conn_mean_us_min\":%s,"
           "\"conn_mean_us_max\":%s,\"errors\":%llu,\"server_cpu_s\":%s,\"replies_per_server_cpu_s\":%s,"
           "\"client_cpu_s\":%.2f,\"first_error\":%s}\n",
           f->ready, o->inflight, o->size, secs, (unsigned long long)r->replies, rate, p50, p99, p999,
           pmax, qv[0], qv[1], qv[2], bench_json_num(n3, cmin, 1), bench_json_num(n4, cmax, 1),
           (unsigned long long)errors, bench_json_num(n1, srv_cpu, 2),
           bench_json_num(n2, srv_cpu > 0 ? (double)r->replies / srv_cpu : -1, 0), self_cpu, err);

    int rc = (r->replies > 0 && errors == 0) ? 0 : 1;
    bench_fleet_free(f);
    event_free(r->phase_timer);
    event_base_free(base);
    free(r->body_buf);
    free(r);
    return rc;
}
