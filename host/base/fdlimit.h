/* fdlimit.h - the descriptor budget: RLIMIT_NOFILE, raised at start, and the
 * default --max-connections derived from it.
 *
 * Every connection holds one socket (two while it sends a static file);
 * besides them the process needs descriptors of its own: stdio, the event
 * loop, signals, the file watcher, broker connections, the files a reload
 * reads, log files. A connection limit above what the descriptors allow
 * only turns into accept() failing with EMFILE (host.c pauses accepting
 * then), so the default stays below the budget with a reserve:
 *
 *     max_connections = min(NF_FD_MAX_DEFAULT,
 *                           max(nofile / 2, nofile - NF_FD_RESERVE - nofile / 10))
 *
 * (64 -> 32, 1024 -> 858, 20000 -> 17936, 65536 -> 58919, 1048576 -> 100000). */
#ifndef NF_FDLIMIT_H
#define NF_FDLIMIT_H

#include <stddef.h>
#include <stdint.h>

#define NF_FD_RESERVE 64              /* the process's own descriptors, brokers, reload */
#define NF_FD_MAX_DEFAULT 100000      /* the default's cap: memory, not descriptors */

/* Raises the soft RLIMIT_NOFILE to the hard limit. *before and *after get
 * the soft limit before and after (equal when it was already the hard one,
 * or when raising failed). Returns 0 or a negative errno. An unlimited
 * hard limit is capped at the kernel's nr_open (1048576 if unknown). */
int nf_fdlimit_raise(uint64_t *before, uint64_t *after);

/* Connections `nofile` descriptors can hold once the reserve is set aside
 * (the formula above without its cap): an explicit --max-connections
 * above this gets a warning at start. */
uint64_t nf_fdlimit_budget(uint64_t nofile);

/* The default --max-connections for a soft limit of `nofile` descriptors. */
size_t nf_fdlimit_max_connections(uint64_t nofile);

#endif
