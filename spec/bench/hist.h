/* hist.h - a log-linear latency histogram (the HdrHistogram layout).
 *
 * Values below 2^HIST_SUB_BITS land in their own bucket; above, each power
 * of two is split into 2^(HIST_SUB_BITS-1) equal buckets, so every recorded
 * value is known to within 1/256 (0.4%) at any magnitude, with a fixed
 * 115 KB table and O(1) recording: no averages, no sorting. */
#ifndef NF_BENCH_HIST_H
#define NF_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 9
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 2) << (HIST_SUB_BITS - 1))

typedef struct hist {
    uint64_t count;
    uint64_t min, max;
    uint64_t counts[HIST_BUCKETS];
} hist;

void hist_reset(hist *h);
void hist_record(hist *h, uint64_t v);
/* The value at quantile q (0..1): the highest value equivalent to the
 * bucket holding it, as HdrHistogram reports; 0 when empty. */
uint64_t hist_quantile(const hist *h, double q);

#endif
