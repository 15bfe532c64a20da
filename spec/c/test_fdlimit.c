/* test_fdlimit.c - the descriptor budget (host/base/fdlimit.h): the default
 * --max-connections formula, and raising the soft RLIMIT_NOFILE. */
#include <sys/resource.h>

#include "fdlimit.h"
#include "test.h"

int main(void)
{
    /* The documented examples. */
    CHECK(nf_fdlimit_max_connections(64) == 32);
    CHECK(nf_fdlimit_max_connections(1024) == 858);
    CHECK(nf_fdlimit_max_connections(20000) == 17936);
    CHECK(nf_fdlimit_max_connections(65536) == 58919);
    CHECK(nf_fdlimit_max_connections(1048576) == NF_FD_MAX_DEFAULT);
    CHECK(nf_fdlimit_max_connections(UINT64_MAX) == NF_FD_MAX_DEFAULT);
    CHECK(nf_fdlimit_budget(1048576) == 1048576 - NF_FD_RESERVE - 104857);
    /* Never above the limit, never zero for a usable one. */
    for (uint64_t n = 2; n < 5000; n++) {
        size_t m = nf_fdlimit_max_connections(n);
        if (m == 0 || m >= n)
            CHECK(!"0 < max_connections < nofile");
    }

    /* Lower the soft limit, then raise it back to the hard one. */
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max > 64) {
        struct rlimit low = { 64, rl.rlim_max };
        CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
        uint64_t before = 0, after = 0;
        CHECK(nf_fdlimit_raise(&before, &after) == 0);
        CHECK(before == 64 && after == (uint64_t)rl.rlim_max);
        CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur == rl.rlim_max);
        CHECK(nf_fdlimit_raise(&before, &after) == 0 && before == after);   /* already there */
    }
    return TEST_REPORT();
}
