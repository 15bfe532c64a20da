/* heap.h - the process's allocator: its tuning, giving freed memory back to
 * the system, and how much is in use.
 *
 * Which allocator is a build choice (CMake NEFFOS_MALLOC, README
 * "Operations"):
 *   jemalloc (default, as redis does): small allocations of one size share
 *     slabs of their own, so the few that outlive a burst of connections
 *     (libevent keeps an entry per descriptor number until the loop is freed)
 *     pin only their own slabs, and the pages every other connection used go
 *     back. nf_heap_trim purges every arena's unused pages (arena.<all>.purge).
 *   libc (glibc; the sanitizer and valgrind builds, whose runtimes bring their
 *     own allocator): freed memory stays in the heap for the next allocations;
 *     nf_heap_trim returns the free pages inside it (malloc_trim(3)), but a page
 *     with one live entry among freed connections' memory stays: after 10,000
 *     connections left, ~20 MB for 2 MB in use (docs/bench.md).
 * Elsewhere (another libc) the functions are no-ops. */
#ifndef NF_HEAP_H
#define NF_HEAP_H

#include <stdbool.h>
#include <stddef.h>

/* Tunes the allocator for a server, before the first connection: under glibc,
 * slack kept at the heap's top, large blocks from mmap, and with threads
 * (workers > 1) a fixed trim threshold per arena (heap.c says why, with the
 * figures). Nothing to tune under jemalloc. Call it once from main(), before
 * any thread starts. */
void nf_heap_configure(bool threaded);

/* Returns free heap pages to the system, and the calling thread's cached
 * blocks to the heap. Costs a walk over the free memory (a few ms for
 * hundreds of MB): call it when memory was freed, not per message. Any thread
 * may call it (--workers N: each worker's sweep trims, neffos_heap_trims_total
 * sums them). */
void nf_heap_trim(void);

/* Bytes allocated and not freed (malloc'd by anyone in the process, libevent
 * and Lua included, every thread's); 0 when unknown. Under AddressSanitizer
 * and ThreadSanitizer, the sanitizer's own count. */
size_t nf_heap_live_bytes(void);

/* The allocator this build uses, for --version: "jemalloc <version> (headers)"
 * or "libc". */
const char *nf_heap_allocator(void);

#endif
