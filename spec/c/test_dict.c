/* test_dict.c - the hash table (host/base/dict.h): lookups, replacing,
 * deleting with backward shifts, and the class of fault this file was made
 * for: a table that many entries grew gives its memory back once they are
 * deleted (10,000 connections' IDs left 0.5 MB behind them), and still finds
 * every entry left through the shrinking. The memory is the allocator's own
 * count (nf_heap_live_bytes: ASan's in the test build). */
#include <stdio.h>
#include <stdlib.h>

#include "dict.h"
#include "heap.h"
#include "test.h"

#define N 10000

static char keys[N][16];

static nf_slice key(int i) { return nf_slice_of(keys[i], strlen(keys[i])); }

int main(void)
{
    for (int i = 0; i < N; i++)
        snprintf(keys[i], sizeof keys[i], "conn-%d", i);

    size_t live0 = nf_heap_live_bytes();
    nf_dict *d = nf_dict_new();
    CHECK(d != NULL);
    for (int i = 0; i < N; i++)
        CHECK(nf_dict_set(d, key(i), keys[i]) == 0);
    CHECK(nf_dict_size(d) == N);
    CHECK(nf_dict_set(d, key(7), keys[8]) == 0);   /* replaces */
    CHECK(nf_dict_size(d) == N && nf_dict_get(d, key(7)) == keys[8]);
    CHECK(nf_dict_set(d, key(7), keys[7]) == 0);
    size_t live_full = nf_heap_live_bytes();
    CHECK(live_full > live0 + N * 16);   /* the slots: 16,384 of 32 bytes */

    /* Delete all but every 1000th: each remaining entry is found after every
     * shrink, each deleted one is not. */
    for (int i = 0; i < N; i++)
        if (i % 1000 != 0)
            CHECK(nf_dict_delete(d, key(i)) == keys[i]);
    CHECK(nf_dict_size(d) == N / 1000);
    for (int i = 0; i < N; i++)
        CHECK(nf_dict_get(d, key(i)) == (i % 1000 == 0 ? keys[i] : NULL));
    CHECK(nf_dict_delete(d, key(1)) == NULL);
    size_t cur = 0, seen = 0;
    while (nf_dict_next(d, &cur, NULL) != NULL)
        seen++;
    CHECK(seen == N / 1000);

    /* Ten entries left: a table of that size, not of 10,000. */
    size_t live_few = nf_heap_live_bytes();
    if (live0 != 0) {
        CHECK(live_few < live0 + 4096);
        if (live_few >= live0 + 4096)
            fprintf(stderr, "heap: %zu bytes before, %zu full, %zu with ten entries\n", live0, live_full, live_few);
    }

    /* Empty, then full again: the table grows back and works. */
    for (int i = 0; i < N; i += 1000)
        CHECK(nf_dict_delete(d, key(i)) == keys[i]);
    CHECK(nf_dict_size(d) == 0);
    for (int i = 0; i < N; i++)
        CHECK(nf_dict_set(d, key(i), keys[i]) == 0);
    for (int i = 0; i < N; i++)
        CHECK(nf_dict_get(d, key(i)) == keys[i]);
    nf_dict_free(d);
    return TEST_REPORT();
}
