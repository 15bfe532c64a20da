/* poison.h - telling AddressSanitizer about memory kept in a free list.
 *
 * The hot paths recycle what they free (invocations, input buffers): to
 * ASan a recycled block is still allocated, so a use after its "free" would
 * go unnoticed. NF_POISON marks a block put on a free list as not to be
 * touched; NF_UNPOISON gives it back when it is taken again. Without ASan
 * both are nothing. A block is only caught while it waits in the list: a
 * list that reuses at once (lua_run.c's spare runs) keeps nothing under ASan
 * instead (NF_POISON_ASAN), leaving it to ASan's quarantine. Header only;
 * owns nothing. */
#ifndef NF_POISON_H
#define NF_POISON_H

#include <stddef.h>

/* gcc says __SANITIZE_ADDRESS__; clang before 16 only __has_feature. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NF_POISON_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define NF_POISON_ASAN 1
#endif

#if defined(NF_POISON_ASAN)
/* The ASan runtime's (sanitizer/asan_interface.h, not always installed). */
void __asan_poison_memory_region(void const volatile *addr, size_t size);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#define NF_POISON(p, n) __asan_poison_memory_region((p), (n))
#define NF_UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define NF_POISON(p, n) ((void)(p), (void)(n))
#define NF_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#endif
