/* clock.h - the protocol core's clock: monotonic milliseconds, and a hook
 * that lets a test or a fuzzer drive it by hand.
 *
 * Every deadline of the core is measured with nf_now_ms(): the handshake,
 * read and write timeouts, the wait for the peer's close frame, the rate
 * window, and server-ask deadlines as the host's sweep checks them
 * (docs/protocol.md §12.4). With a manual clock and the periodic sweep
 * stopped (nf_host_sweep_every(h, 0)), a test fires any of them by moving
 * the clock and calling nf_host_sweep(), without sleeping. */
#ifndef NF_CLOCK_H
#define NF_CLOCK_H

#include <stdint.h>
#include <sys/time.h>

/* Returns "now" in milliseconds; must never go backwards. */
typedef uint64_t (*nf_clock_fn)(void *ud);

/* Milliseconds of CLOCK_MONOTONIC, or of the clock set with nf_clock_set. */
uint64_t nf_now_ms(void);

/* Replaces the clock for the whole process (fn(ud) from now on); NULL
 * restores CLOCK_MONOTONIC. Meant for tests: set it before the first
 * connection and keep it until the last is gone. */
void nf_clock_set(nf_clock_fn fn, void *ud);

/* ms milliseconds as the struct timeval libevent's timers take. */
struct timeval nf_clock_timeval(uint64_t ms);

#endif
