/* test_heap.c - host/base/heap.h in whichever build runs it (jemalloc,
 * glibc, or a sanitizer's allocator, gcc's or clang's): the live bytes see a
 * block while it is allocated, and a trim leaves the heap usable. */
#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "test.h"

#define BLOCK (4u << 20)

int main(void)
{
    nf_heap_configure(false);
    size_t before = nf_heap_live_bytes();
    char *volatile p = malloc(BLOCK);
    CHECK(p != NULL);
    memset(p, 1, BLOCK);
    size_t during = nf_heap_live_bytes();
    CHECK(during >= before + BLOCK);   /* 0 here: the build asks an allocator nobody uses */
    free(p);
    nf_heap_trim();
    CHECK(nf_heap_live_bytes() < during);
    char *q = malloc(64);
    CHECK(q != NULL);
    free(q);
    CHECK(strlen(nf_heap_allocator()) > 0);
    return TEST_REPORT();
}
