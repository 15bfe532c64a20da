/* loop.h - runs a libevent loop that may spin a while before it sleeps.
 *
 * A loop that goes to sleep in epoll_wait() the moment it runs out of work
 * pays a wake-up when the next input comes: on a virtual machine the idle
 * vCPU halts, and waking it takes the hypervisor ~50-100 us, more than the
 * loopback path itself. For a client that asks again right after each reply
 * this is most of the round trip. With a spin time, the loop keeps polling
 * without blocking (EVLOOP_NONBLOCK) for that long after the last input, so
 * input arriving within the window finds it awake; past it, it blocks as
 * event_base_dispatch() would. The price is CPU: up to spin_us of polling
 * after each burst of input, a whole core under steady input spaced closer
 * than spin_us. An idle loop costs nothing. (Linux's net.core.busy_poll
 * does this in the kernel, for devices with NAPI polling; loopback has none.)
 *
 * Owns nothing: the base, the counter and its argument stay the caller's. */
#ifndef NF_LOOP_H
#define NF_LOOP_H

#include <stdint.h>

struct event_base;

/* A counter that grows whenever the loop handled input (messages read,
 * requests, calls from other threads). Compared before and after each
 * iteration; it may wrap. */
typedef uint64_t (*nf_loop_activity_fn)(void *arg);

/* Runs base until event_base_loopbreak() or event_base_loopexit(), or until
 * it has no events left, like event_base_dispatch(). With spin_us > 0 and an
 * activity counter, it polls without blocking while the last input is at
 * most spin_us microseconds old (CLOCK_MONOTONIC). spin_us = 0 or activity
 * NULL: event_base_dispatch() itself. *idle_poll_us (may be NULL) grows by
 * the microseconds of the polling passes that brought no input: what the
 * spin cost (the passes that did are work the loop would have done anyway).
 * Returns 0 when stopped by a break or exit or for want of events, -1 when
 * the backend failed (as event_base_dispatch()). Break it from its own
 * thread (a callback): each pass of event_base_loop() clears the break flag
 * as it starts, so an event_base_loopbreak() another thread makes between
 * two passes is lost; event_base_loopexit() is not (it runs as an event).
 * neffos's drain breaks from the loop's own callback. */
int nf_loop_run(struct event_base *base, unsigned spin_us, nf_loop_activity_fn activity, void *arg,
                uint64_t *idle_poll_us);

#endif
