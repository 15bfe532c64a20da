/* sock.c - see sock.h: the plain transport. */
#include "sock.h"

#include "errors.h"

#include <errno.h>
#include <unistd.h>

#include <event2/buffer.h>

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

static ssize_t plain_write(nf_sock *s, struct evbuffer *out)
{
    errno = 0;
    int n = evbuffer_write(out, s->fd);
    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return NF_EAGAIN;
    return errno ? -errno : NF_EIO;
}

const nf_sock_ops nf_sock_plain = { plain_read, plain_write };
