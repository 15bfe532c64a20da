/* test_metrics_sum.c - nf_metrics_add (host/core/metrics.h), how /metrics of
 * --workers N sums its workers' figures: every counter is summed, so are the
 * gauges each worker holds for itself (lingering sockets, the broker's
 * channels and unconfirmed subscriptions: worker 1's), and those every worker
 * counts alike (reloads, accept paused, broker up) take the largest. */
#include "metrics.h"
#include "test.h"

int main(void)
{
    nf_metrics sum = { .exchange_connected = -1 };
    nf_metrics w1 = { .closed = 3, .heap_trims = 2, .limit_worker_queue = 1, .reloads_ok = 4, .accept_paused = 0,
                      .lingering = 5, .exchange_connected = 1, .exchange_channels = 7, .exchange_pending = 2 };
    nf_metrics w2 = { .closed = 10, .heap_trims = 1, .http_requests = 6, .reloads_ok = 4, .reloads_failed = 1,
                      .accept_paused = 1, .lingering = 3, .exchange_connected = -1 };
    nf_metrics_add(&sum, &w1);
    nf_metrics_add(&sum, &w2);

    /* counters: the first, the last before accept_paused, one between */
    CHECK(sum.http_requests == 6);
    CHECK(sum.closed == 13);
    CHECK(sum.heap_trims == 3);
    CHECK(sum.limit_worker_queue == 1);
    /* alike on every worker */
    CHECK(sum.reloads_ok == 4);
    CHECK(sum.reloads_failed == 1);
    CHECK(sum.accept_paused == 1);
    CHECK(sum.exchange_connected == 1);
    /* each worker's own */
    CHECK(sum.lingering == 8);
    CHECK(sum.exchange_channels == 7);
    CHECK(sum.exchange_pending == 2);
    return TEST_REPORT();
}
