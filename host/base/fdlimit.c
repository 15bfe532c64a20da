/* fdlimit.c - see fdlimit.h. */
#include "fdlimit.h"

#include <errno.h>
#include <stdio.h>
#include <sys/resource.h>

#define NR_OPEN_FALLBACK 1048576u

/* The kernel's ceiling for RLIM_INFINITY: setrlimit refuses more. */
static uint64_t nr_open(void)
{
    unsigned long long v = 0;
    FILE *f = fopen("/proc/sys/fs/nr_open", "re");
    if (f) {
        if (fscanf(f, "%llu", &v) != 1)
            v = 0;
        fclose(f);
    }
    return v ? (uint64_t)v : NR_OPEN_FALLBACK;
}

int nf_fdlimit_raise(uint64_t *before, uint64_t *after)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -errno;
    *before = *after = rl.rlim_cur;
    rlim_t want = rl.rlim_max;
    if (want == RLIM_INFINITY)
        want = (rlim_t)nr_open();
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= want)
        return 0;
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -errno;
    *after = want;
    return 0;
}

uint64_t nf_fdlimit_budget(uint64_t nofile)
{
    /* A tenth for static files in flight and sockets being closed; at
     * least half for connections when the limit is tiny. */
    uint64_t half = nofile / 2;
    uint64_t reserved = NF_FD_RESERVE + nofile / 10;
    return nofile > reserved && nofile - reserved > half ? nofile - reserved : half;
}

size_t nf_fdlimit_max_connections(uint64_t nofile)
{
    uint64_t n = nf_fdlimit_budget(nofile);
    return n < NF_FD_MAX_DEFAULT ? (size_t)n : NF_FD_MAX_DEFAULT;
}
