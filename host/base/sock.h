/* sock.h - the one seam between a connection's bytes and its socket.
 *
 * Everything a WebSocket connection reads or writes after the upgrade goes
 * through nf_sock_read / nf_sock_writev, so a transport other than a plain
 * socket (TLS: SSL_read / SSL_write) plugs in by giving its own ops and ctx,
 * and nothing above this file changes. The plain transport (nf_sock_plain)
 * is read(2) into the caller's buffer and writev(2); the TLS one is
 * host/tls (nf_tls_sock_init).
 *
 * Owns nothing: the descriptor belongs to the caller (its bufferevent). */
#ifndef NF_SOCK_H
#define NF_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct iovec;
typedef struct nf_sock nf_sock;

typedef struct nf_sock_ops {
    /* Reads at most len (> 0) bytes into buf. Returns the bytes read (> 0),
     * 0 at the end of the stream, NF_EAGAIN when nothing can be read now,
     * or another negative errno value (the connection is broken). */
    ssize_t (*read)(nf_sock *s, void *buf, size_t len);
    /* Writes what it can of the n (> 0) extents, in order. Returns the
     * bytes written (> 0; fewer than asked: the socket is full), NF_EAGAIN
     * when none could be, or another negative errno value. A transport that
     * must be offered the same bytes again after NF_EAGAIN (TLS) relies on
     * the caller doing so: the caller drains only what was written. */
    ssize_t (*writev)(nf_sock *s, const struct iovec *iov, int n);
    /* True if the transport holds input it could return now, already
     * taken from the socket (TLS: a decrypted record the last read had no
     * room for), which the descriptor's readiness does not show: the
     * caller reads again without waiting for it. NULL: never (a plain
     * socket). */
    bool (*pending)(const nf_sock *s);
} nf_sock_ops;

struct nf_sock {
    const nf_sock_ops *ops;
    int fd;
    void *ctx;   /* the transport's own state (an SSL *), NULL for plain */
};

extern const nf_sock_ops nf_sock_plain;

static inline void nf_sock_init_plain(nf_sock *s, int fd)
{
    s->ops = &nf_sock_plain;
    s->fd = fd;
    s->ctx = NULL;
}

static inline ssize_t nf_sock_read(nf_sock *s, void *buf, size_t len) { return s->ops->read(s, buf, len); }
static inline ssize_t nf_sock_writev(nf_sock *s, const struct iovec *iov, int n) { return s->ops->writev(s, iov, n); }
static inline bool nf_sock_pending(const nf_sock *s) { return s->ops->pending && s->ops->pending(s); }

#endif
