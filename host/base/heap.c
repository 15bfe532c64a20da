/* heap.c - see heap.h. */
#include "heap.h"

#include <stdint.h>
#include <stdlib.h>   /* defines __GLIBC__ under glibc */

/* gcc says __SANITIZE_ADDRESS__; clang before 16 only __has_feature (the
 * fuzz build, spec/fuzz/run.sh, is clang's ASan). */
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define HEAP_SANITIZER 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HEAP_SANITIZER 1
#endif

#if defined(HEAP_SANITIZER)
/* The sanitizer runtime's (sanitizer/allocator_interface.h, not always installed). */
size_t __sanitizer_get_current_allocated_bytes(void);
#elif defined(NF_JEMALLOC)
#include <jemalloc/jemalloc.h>
#elif defined(__GLIBC__)
#define HEAP_GLIBC 1
#include <malloc.h>
#endif

#define HEAP_STR_(x) #x
#define HEAP_STR(x) HEAP_STR_(x)

/* glibc: bytes of free heap kept at its top (M_TOP_PAD). It gives the top
 * back (brk) once 128 KiB of it is free and takes it again for the next
 * messages: under load that was a brk and freshly zeroed pages every few
 * dozen messages (a sixth of the server's CPU at 4 KB bodies). */
#define HEAP_TOP_PAD (4 << 20)
/* glibc: allocations this large or larger are mmapped. Setting M_TOP_PAD
 * turns off glibc's adaptive mmap threshold, which left at 128 KiB would give
 * every large-message input buffer (ws.c) fresh mmapped, zeroed pages: a
 * fifth of the CPU at 64 KB bodies. */
#define HEAP_MMAP_THRESHOLD (1 << 20)
/* glibc with threads: each worker thread allocates from an arena of its own,
 * which free() shrinks (madvise) whenever its top passes the trim threshold:
 * a broadcast's burst of output chains then costs page faults on every round
 * (perf: ~18% in _int_free and faulting, and 1.7x the server CPU per delivery
 * at 1,000 receivers, docs/bench.md). HEAP_TOP_PAD is less than such a burst:
 * every arena gets a fixed threshold (a worker heap's size) instead; the
 * sweep's nf_heap_trim still gives everything back. */
#define HEAP_WORKER_TRIM_BYTES (64 << 20)

void nf_heap_configure(bool threaded)
{
#ifdef HEAP_GLIBC
    mallopt(M_TOP_PAD, HEAP_TOP_PAD);
    mallopt(M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD);
    if (threaded)
        mallopt(M_TRIM_THRESHOLD, HEAP_WORKER_TRIM_BYTES);
#else
    (void)threaded;
#endif
}

void nf_heap_trim(void)
{
#if defined(HEAP_GLIBC)
    malloc_trim(0);
#elif defined(NF_JEMALLOC) && !defined(HEAP_SANITIZER)
    /* The thread cache first: its blocks are otherwise still "in use" to the
     * arenas. Then every arena's dirty and muzzy pages, now rather than after
     * the decay time, which without a background thread only passes while
     * the process allocates (a server left idle would keep them). */
    mallctl("thread.tcache.flush", NULL, NULL, NULL, 0);
    mallctl("arena." HEAP_STR(MALLCTL_ARENAS_ALL) ".purge", NULL, NULL, NULL, 0);
#endif
}

size_t nf_heap_live_bytes(void)
{
#if defined(HEAP_SANITIZER)
    return __sanitizer_get_current_allocated_bytes();
#elif defined(NF_JEMALLOC)
    uint64_t epoch = 1;   /* the statistics are a snapshot: take a new one */
    size_t len = sizeof epoch, allocated = 0;
    if (mallctl("epoch", &epoch, &len, &epoch, len) != 0)
        return 0;
    len = sizeof allocated;
    return mallctl("stats.allocated", &allocated, &len, NULL, 0) == 0 ? allocated : 0;
#elif defined(HEAP_GLIBC) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
#else
    return 0;
#endif
}

const char *nf_heap_allocator(void)
{
#if defined(NF_JEMALLOC) && !defined(HEAP_SANITIZER)
    return "jemalloc " JEMALLOC_VERSION " (headers)";
#else
    return "libc";
#endif
}
