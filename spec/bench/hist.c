/* hist.c - see hist.h. */
#include "hist.h"

#include <string.h>

#define SUB_HALF (1u << (HIST_SUB_BITS - 1))

static unsigned bucket_of(uint64_t v)
{
    if (v < (1u << HIST_SUB_BITS))
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - (HIST_SUB_BITS - 1);
    /* v >> shift is in [SUB_HALF, 2*SUB_HALF): the linear part. */
    return shift * SUB_HALF + (unsigned)(v >> shift);
}

static uint64_t bucket_high(unsigned b)
{
    if (b < (1u << HIST_SUB_BITS))
        return b;
    unsigned shift = b / SUB_HALF - 1;
    uint64_t mant = b - (uint64_t)shift * SUB_HALF;
    return ((mant + 1) << shift) - 1;
}

void hist_reset(hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

void hist_record(hist *h, uint64_t v)
{
    h->counts[bucket_of(v)]++;
    h->count++;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

uint64_t hist_quantile(const hist *h, double q)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.5);
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (unsigned b = 0; b < HIST_BUCKETS; b++) {
        seen += h->counts[b];
        if (seen >= rank) {
            uint64_t v = bucket_high(b);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}
