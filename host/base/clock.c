/* clock.c - see clock.h. */
#include "clock.h"

#include <stddef.h>
#include <time.h>

static nf_clock_fn clock_fn;
static void *clock_ud;

uint64_t nf_now_ms(void)
{
    if (clock_fn)
        return clock_fn(clock_ud);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void nf_clock_set(nf_clock_fn fn, void *ud)
{
    clock_fn = fn;
    clock_ud = ud;
}

struct timeval nf_clock_timeval(uint64_t ms)
{
    return (struct timeval){ (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
}
