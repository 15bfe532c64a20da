/* heap.h - giving freed memory back to the system, and how much is in use.
 *
 * glibc keeps what a program frees for its next allocations: a server that
 * held 10,000 connections' queues keeps their pages after the clients left
 * (the heap's top is rarely free, and freed mmap chunks raise its trim
 * threshold). nf_heap_trim returns the free pages inside the heap too
 * (malloc_trim(3)). Elsewhere (another libc) both are no-ops. */
#ifndef NF_HEAP_H
#define NF_HEAP_H

#include <stddef.h>

/* Returns free heap pages to the system. Costs a walk over the heap's free
 * chunks (a few ms for hundreds of MB): call it when memory was freed, not
 * per message. Any thread may call it: glibc locks each arena as it walks
 * it (--workers N: each worker's sweep trims, neffos_heap_trims_total sums
 * them). */
void nf_heap_trim(void);

/* Bytes allocated and not freed (malloc'd by anyone in the process, libevent
 * and Lua included, every thread's); 0 when unknown. Under AddressSanitizer
 * and ThreadSanitizer, the sanitizer's own count. */
size_t nf_heap_live_bytes(void);

#endif
