/* loop.c - a libevent loop that spins a while before it sleeps (loop.h). */
#include "loop.h"

#include <event2/event.h>
#include <time.h>

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int nf_loop_run(struct event_base *base, unsigned spin_us, nf_loop_activity_fn activity, void *arg,
                uint64_t *idle_poll_us)
{
    if (spin_us == 0 || activity == NULL)
        return event_base_dispatch(base) < 0 ? -1 : 0;
    uint64_t seen = activity(arg);
    uint64_t last = now_us();
    for (;;) {
        /* Inside the window: one pass over what is ready, without sleeping.
         * Past it: sleep until something is (EVLOOP_ONCE). */
        uint64_t start = now_us();
        int flags = start - last <= spin_us ? EVLOOP_NONBLOCK : EVLOOP_ONCE;
        int rc = event_base_loop(base, flags);
        if (rc < 0)
            return -1;
        if (rc > 0 || event_base_got_break(base) || event_base_got_exit(base))
            return 0;   /* rc 1: no events left, as event_base_dispatch() ends */
        uint64_t now = activity(arg);
        if (now != seen) {
            seen = now;
            last = now_us();
        } else if (flags == EVLOOP_NONBLOCK && idle_poll_us) {
            *idle_poll_us += now_us() - start;
        }
    }
}
