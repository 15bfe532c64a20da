/* watchdog.h - a thread that watches the event loop from outside it.
 *
 * App code runs on the loop thread; the instruction budget stops Lua code,
 * but one long C call (a sort of millions of items, a table.move over 10^12
 * slots, a C library that blocks) cannot be interrupted. The watchdog has
 * its own clock: the loop thread names the code it is about to run
 * (nf_watchdog_enter, "handler v1/echo (app.lua:12)") and says when it is
 * back (nf_watchdog_leave). When the same code has run for warn_ms, the
 * watchdog logs it; for kill_ms, it logs and ends the process with exit
 * code NF_WATCHDOG_EXIT, so a supervisor (systemd Restart=on-failure)
 * restarts it instead of a server that hangs for good.
 *
 * It also owns SIGTERM and SIGINT, so that signals work whatever the loop
 * does: the handler (async-signal-safe: one write to a pipe) wakes the
 * watchdog, which passes the signal on to the loop (one byte per signal on
 * nf_watchdog_signal_fd(), the signal number) and ends the process itself
 * if the loop is still running grace_ms + NF_WATCHDOG_STOP_MARGIN_MS after
 * the first signal, or at once (exit 0) on the second.
 *
 * With --workers N it watches N loops, each on its own thread, apart.
 *
 * The watchdog never touches the Lua state: it reads a copy of the label,
 * made under a mutex by the loop thread. Knows nothing of Lua. */
#ifndef NF_WATCHDOG_H
#define NF_WATCHDOG_H

#include <stddef.h>

#define NF_WATCHDOG_EXIT 3                 /* exit code when the watchdog ends the process */
#define NF_WATCHDOG_STOP_MARGIN_MS 1000    /* after the grace period, before a stop is forced */

typedef struct nf_watchdog nf_watchdog;

typedef struct nf_watchdog_config {
    unsigned warn_ms;    /* log code that has run this long without returning; 0 = never */
    unsigned kill_ms;    /* exit NF_WATCHDOG_EXIT when it has run this long; 0 = never */
    unsigned grace_ms;   /* the drain's grace period (--grace-ms) */
    unsigned loops;      /* event loops watched (--workers N); 0 = 1 */
} nf_watchdog_config;

/* The calling thread runs loop `loop` (0-based, below cfg.loops) from now
 * on: its enter/leave are judged apart from the other loops'. A thread that
 * never calls it runs loop 0. */
void nf_watchdog_bind_thread(unsigned loop);

/* Installs the SIGTERM/SIGINT handler and starts the thread. NULL with a
 * message in err on failure (no thread, no handler). One per process. */
nf_watchdog *nf_watchdog_start(const nf_watchdog_config *cfg, char *err, size_t errcap);

/* Read end of the pipe on which the loop receives SIGTERM/SIGINT, one byte
 * (the signal number) each; non-blocking. */
int nf_watchdog_signal_fd(const nf_watchdog *wd);

/* Loop thread: code named `what` starts running (nests: a handler may start
 * another); nf_watchdog_leave when it returns or waits. NULL wd: no-op. */
void nf_watchdog_enter(nf_watchdog *wd, const char *what);
void nf_watchdog_leave(nf_watchdog *wd);

/* The loop is over (cleanup follows): stop judging it. A second signal
 * still exits at once. */
void nf_watchdog_disarm(nf_watchdog *wd);

/* Stops the thread, restores the default signal dispositions. */
void nf_watchdog_free(nf_watchdog *wd);

#endif
