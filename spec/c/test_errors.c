/* test_errors.c - the error vocabulary of host/ (host/base/errors.h): every
 * NF_E* code is negative, distinct, and named by nf_strerror; NF_EOF
 * ("finished") is told apart from every failure. */
#include <errno.h>
#include <string.h>

#include "errors.h"
#include "test.h"

int main(void)
{
    const int codes[] = { NF_EOF, NF_ENOMEM, NF_EINVAL, NF_EAGAIN, NF_ENOBUFS, NF_ENAMETOOLONG,
                          NF_ENOENT, NF_EEXIST, NF_EPIPE, NF_EIO, NF_EPROTO };
    const size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        CHECK(codes[i] < 0);
        CHECK(nf_strerror(codes[i]) != NULL && strcmp(nf_strerror(codes[i]), "unknown error") != 0);
        for (size_t j = i + 1; j < n; j++)
            CHECK(codes[i] != codes[j]);
    }
    CHECK(strcmp(nf_strerror(0), "ok") == 0);
    CHECK(strcmp(nf_strerror(NF_EOF), "end of stream") == 0);
    CHECK(strcmp(nf_strerror(NF_ENOMEM), strerror(ENOMEM)) == 0);
    CHECK(NF_ENOMEM == -ENOMEM);   /* a system call's -errno passes through as it is */
    CHECK(strcmp(nf_strerror(1), "unknown error") == 0);
    return TEST_REPORT();
}
