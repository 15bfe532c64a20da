/* test.h - a tiny unit test harness: CHECK() records failures and goes on,
 * TEST_MAIN prints "N passed, N failed" and exits non-zero on failure. */
#ifndef NF_TEST_H
#define NF_TEST_H

#include <stdio.h>
#include <string.h>

static int test_passed, test_failed;

#define CHECK(cond) do { \
    if (cond) test_passed++; \
    else { test_failed++; fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

#define CHECK_MEM(a, alen, b, blen) CHECK((alen) == (blen) && memcmp((a), (b), (alen)) == 0)
#define CHECK_STR(slice, cstr) CHECK_MEM((slice).ptr, (slice).len, (cstr), strlen(cstr))

#define TEST_REPORT() (printf("%d passed, %d failed\n", test_passed, test_failed), test_failed ? 1 : 0)

#endif
