/* sock.c - see sock.h: the plain transport. */
#include "sock.h"

#include "errors.h"

#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>

static ssize_t plain_read(nf_sock *s, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = read(s->fd, buf, len);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? NF_EAGAIN : -errno;
    }
}

static ssize_t plain_writev(nf_sock *s, const struct iovec *iov, int n)
{
    for (;;) {
        ssize_t w = writev(s->fd, iov, n);
        if (w >= 0)
            return w;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? NF_EAGAIN : -errno;
    }
}

const nf_sock_ops nf_sock_plain = { plain_read, plain_writev, NULL };
