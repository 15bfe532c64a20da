/* tls.c - see tls.h. */
#include "tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "errors.h"
#include "sock.h"
#include "log.h"
#include "watch.h"

/* TLS 1.2's ciphers: forward secrecy (ECDHE) and AEAD only, the server's
 * order (Mozilla's "intermediate" profile without DHE). TLS 1.3 has only
 * such suites; OpenSSL's default list of them is kept. */
#define TLS12_CIPHERS "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
                      "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
                      "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* --workers N: one nf_tls serves every worker's loop. A reload (SIGHUP or
 * the file watcher, on worker 1's loop) swaps ctx while other workers call
 * SSL_new on it: lock guards ctx and stats; SSL_new takes its reference to
 * the context under it, so the old one is freed only by its last SSL. */
struct nf_tls {
    pthread_mutex_t lock;
    SSL_CTX *ctx;                    /* what new connections get; open ones hold their own reference */
    char *cert_file;
    char *key_file;
    nf_tls_version min_version;
    nf_tls_stats stats;
    nf_watch *watch;                 /* or NULL */
};

/* The oldest OpenSSL error as one line ("file: reason"), then the queue cleared. */
static void ssl_reason(const char *what, char *err, size_t errcap)
{
    unsigned long e = ERR_peek_last_error();
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    if (err)
        snprintf(err, errcap, "%s: %s", what, why ? why : e ? "error" : strerror(errno ? errno : EINVAL));
    ERR_clear_error();
}

static int64_t leaf_not_after(SSL_CTX *ctx)
{
    X509 *leaf = SSL_CTX_get0_certificate(ctx);
    struct tm tm;
    if (leaf == NULL || ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

/* A context with the files' certificate and key, or NULL (err says why). */
static SSL_CTX *build_ctx(const nf_tls *t, char *err, size_t errcap)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        ssl_reason("cannot create a TLS context", err, errcap);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, (int)t->min_version);
    /* IGNORE_UNEXPECTED_EOF: a peer that closes the TCP connection without
     * close_notify (a browser tab gone, a TCP health check during the
     * handshake) has closed, it has not failed a handshake; nothing we
     * speak can be cut short unseen (WebSocket frames, Content-Length). */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* RELEASE_BUFFERS: an idle connection holds no record buffers (~34 KiB
     * each otherwise). The write modes are tls_writev's (see there). */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
        ssl_reason("TLS 1.2 ciphers", err, errcap);
        goto fail;
    }
    errno = 0;
    if (SSL_CTX_use_certificate_chain_file(ctx, t->cert_file) != 1) {
        ssl_reason(t->cert_file, err, errcap);
        goto fail;
    }
    const char *key = t->key_file ? t->key_file : t->cert_file;
    errno = 0;
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        ssl_reason(key, err, errcap);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ssl_reason("the key does not match the certificate", err, errcap);
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

int nf_tls_parse_version(const char *s)
{
    if (strcmp(s, "1.2") == 0)
        return NF_TLS_1_2;
    if (strcmp(s, "1.3") == 0)
        return NF_TLS_1_3;
    return NF_EINVAL;
}

int nf_tls_new(const char *cert_file, const char *key_file, nf_tls_version min_version, nf_tls **out,
               char *err, size_t errcap)
{
    *out = NULL;
    nf_tls *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NF_ENOMEM;
    pthread_mutex_init(&t->lock, NULL);
    t->min_version = min_version;
    t->cert_file = strdup(cert_file);
    t->key_file = key_file ? strdup(key_file) : NULL;
    if (t->cert_file == NULL || (key_file && t->key_file == NULL)) {
        nf_tls_free(t);
        return NF_ENOMEM;
    }
    t->ctx = build_ctx(t, err, errcap);
    if (t->ctx == NULL) {
        nf_tls_free(t);
        return NF_EINVAL;
    }
    t->stats.not_after = leaf_not_after(t->ctx);
    *out = t;
    return 0;
}

void nf_tls_free(nf_tls *t)
{
    if (t == NULL)
        return;
    if (t->watch)
        nf_watch_free(t->watch);
    SSL_CTX_free(t->ctx);
    free(t->cert_file);
    free(t->key_file);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

int nf_tls_reload(nf_tls *t, char *err, size_t errcap)
{
    char why[512];
    SSL_CTX *ctx = build_ctx(t, why, sizeof why);
    if (ctx == NULL) {
        pthread_mutex_lock(&t->lock);
        t->stats.reloads_failed++;
        pthread_mutex_unlock(&t->lock);
        nf_warn("tls: the new certificate was not loaded, the old one keeps serving: %s", why);
        if (err)
            snprintf(err, errcap, "%s", why);
        return NF_EINVAL;
    }
    int64_t not_after = leaf_not_after(ctx);
    pthread_mutex_lock(&t->lock);
    SSL_CTX *old = t->ctx;
    t->ctx = ctx;
    t->stats.reloads_ok++;
    t->stats.not_after = not_after;
    pthread_mutex_unlock(&t->lock);
    SSL_CTX_free(old);   /* the connections made with it keep it until they close */
    time_t na = (time_t)not_after;
    struct tm tm;
    char until[32] = "?";
    if (na && gmtime_r(&na, &tm))
        strftime(until, sizeof until, "%Y-%m-%dT%H:%M:%SZ", &tm);
    nf_info("tls: certificate reloaded from %s (valid until %s)", t->cert_file, until);
    return 0;
}

void nf_tls_get_stats(const nf_tls *t, nf_tls_stats *out)
{
    pthread_mutex_t *lock = (pthread_mutex_t *)&t->lock;   /* const to the caller: a read */
    pthread_mutex_lock(lock);
    *out = t->stats;
    pthread_mutex_unlock(lock);
}

/* ---- watching the files ---------------------------------------------------------- */

/* Follows path by name from its directory, which stays (a Kubernetes
 * secret's mount point, certbot's live/<name>/); the symlinks on the way
 * are followed by watch.c. */
static int follow_file(nf_watch *w, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return nf_watch_follow(w, ".", path);
    char dir[4096];
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    if (n >= sizeof dir)
        return -ENAMETOOLONG;
    memcpy(dir, path, n);
    dir[n] = '\0';
    return nf_watch_follow(w, dir, slash + 1);
}

static int follow_files(nf_tls *t)
{
    nf_watch_begin(t->watch);
    int rc = follow_file(t->watch, t->cert_file);
    if (rc == 0 && t->key_file)
        rc = follow_file(t->watch, t->key_file);
    nf_watch_end(t->watch);
    return rc;
}

static void on_files_changed(void *ud)
{
    nf_tls *t = ud;
    nf_info("tls: %s%s%s changed, reloading", t->cert_file, t->key_file ? " or " : "", t->key_file ? t->key_file : "");
    nf_tls_reload(t, NULL, 0);
    follow_files(t);   /* the names may lead elsewhere now (a symlink swapped) */
}

int nf_tls_watch(nf_tls *t, struct event_base *base)
{
    if (t->watch == NULL) {
        t->watch = nf_watch_new(base, NF_TLS_WATCH_DEBOUNCE_MS, NULL, on_files_changed, t);
        if (t->watch == NULL)
            return errno ? -errno : NF_ENOMEM;
    }
    return follow_files(t);
}

/* ---- one connection --------------------------------------------------------------- */

struct bufferevent *nf_tls_accept(nf_tls *t, struct event_base *base, int fd)
{
    pthread_mutex_lock(&t->lock);
    SSL *ssl = SSL_new(t->ctx);
    pthread_mutex_unlock(&t->lock);
    if (ssl == NULL) {
        ERR_clear_error();
        return NULL;
    }
    struct bufferevent *bev =
        bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        SSL_free(ssl);
        return NULL;
    }
    /* A peer that closes the TCP connection without close_notify (every
     * browser tab that goes away) ends the connection, it is no error. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

/* ---- the transport after the upgrade (sock.h) ---------------------------------------- */

static SSL *sock_ssl(const nf_sock *s) { return s->ctx; }

/* An SSL_read / SSL_write that returned no bytes, as sock.h's result:
 * NF_EAGAIN when the socket must be waited for, 0 at close_notify, or a
 * negative errno value. Clears OpenSSL's error queue. */
static ssize_t ssl_failure(SSL *ssl, int ret)
{
    int err = errno;
    int e = SSL_get_error(ssl, ret);
    ERR_clear_error();
    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return NF_EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;   /* close_notify (or, with IGNORE_UNEXPECTED_EOF, the TCP end) */
    case SSL_ERROR_SYSCALL:
        if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)
            return NF_EAGAIN;
        return err > 0 ? -err : NF_EPIPE;
    default:
        return NF_EPROTO;   /* a record that does not decrypt, an alert */
    }
}

/* Reads records until the buffer is full or OpenSSL wants the socket, so a
 * short read means "nothing more now", as for a plain socket; what a full
 * buffer leaves inside OpenSSL is tls_pending's. */
static ssize_t tls_read(nf_sock *s, void *buf, size_t len)
{
    SSL *ssl = sock_ssl(s);
    size_t got = 0;
    while (got < len) {
        size_t n = 0;
        ERR_clear_error();
        if (SSL_read_ex(ssl, (char *)buf + got, len - got, &n) != 1) {
            ssize_t rc = ssl_failure(ssl, 0);
            if (got > 0)
                return (ssize_t)got;   /* an end or error shows again at the next read */
            return rc;
        }
        got += n;
    }
    return (ssize_t)got;
}

/* Writes the extents in records of up to NF_TLS_RECORD_BYTES: small
 * extents (frame headers, replies, shared broadcast frames) are copied into
 * one record, a large one is encrypted where it lies. A record the socket
 * did not take is OpenSSL's to finish: SSL_write returns NF_EAGAIN having
 * kept it, and must be offered the same bytes again, at least as many
 * (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER: from anywhere). The caller drains
 * only what was written and its queue only grows at the end, so the next
 * call starts at the same byte and cuts a record at least as long:
 * min(NF_TLS_RECORD_BYTES, what is queued). */
static ssize_t tls_writev(nf_sock *s, const struct iovec *iov, int n)
{
    SSL *ssl = sock_ssl(s);
    unsigned char rec[NF_TLS_RECORD_BYTES];
    size_t done = 0;   /* bytes written */
    int i = 0;
    size_t off = 0;    /* into iov[i] */
    while (i < n) {
        if (off == iov[i].iov_len) {
            i++;
            off = 0;
            continue;
        }
        size_t len = 0;
        const void *p;
        if (iov[i].iov_len - off >= NF_TLS_RECORD_BYTES || i == n - 1) {
            p = (const char *)iov[i].iov_base + off;   /* a record from one extent */
            len = iov[i].iov_len - off;
            if (len > NF_TLS_RECORD_BYTES)
                len = NF_TLS_RECORD_BYTES;
        } else {
            for (int j = i; j < n && len < sizeof rec; j++) {   /* gathered: one record */
                size_t from = j == i ? off : 0;
                size_t take = iov[j].iov_len - from;
                if (take > sizeof rec - len)
                    take = sizeof rec - len;
                memcpy(rec + len, (const char *)iov[j].iov_base + from, take);
                len += take;
            }
            p = rec;
        }
        size_t w = 0;
        ERR_clear_error();
        if (SSL_write_ex(ssl, p, len, &w) != 1) {
            ssize_t rc = ssl_failure(ssl, 0);
            if (done > 0)
                return (ssize_t)done;
            return rc == 0 ? NF_EPIPE : rc;
        }
        done += w;
        for (size_t left = w; left > 0;) {   /* step over what was written */
            size_t take = iov[i].iov_len - off < left ? iov[i].iov_len - off : left;
            off += take;
            left -= take;
            if (off == iov[i].iov_len && left > 0) {
                i++;
                off = 0;
            }
        }
        if (w < len)
            break;   /* a partial write: the socket is full */
    }
    return (ssize_t)done;
}

/* Decrypted bytes only (SSL_pending), not SSL_has_pending: that one is also
 * true for half a record read from the socket, whose rest epoll does
 * report; waking for it would spin until it came. Without read-ahead (off:
 * OpenSSL reads a record's header, then its body) nothing else can wait
 * inside OpenSSL. */
static bool tls_pending(const nf_sock *s)
{
    return SSL_pending(sock_ssl(s)) > 0;
}

static const nf_sock_ops tls_sock_ops = { tls_read, tls_writev, tls_pending };

void nf_tls_sock_init(nf_sock *s, struct bufferevent *bev)
{
    s->ops = &tls_sock_ops;
    s->fd = bufferevent_getfd(bev);
    s->ctx = bufferevent_openssl_get_ssl(bev);
}

void nf_tls_close_notify(struct bufferevent *bev)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    ERR_clear_error();
    if (ssl && SSL_is_init_finished(ssl))
        SSL_shutdown(ssl);   /* once: we do not wait for the peer's */
    ERR_clear_error();
}

const char *nf_tls_error(struct bufferevent *bev, char *buf, size_t cap)
{
    unsigned long e = bufferevent_get_openssl_error(bev);
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    int err = EVUTIL_SOCKET_ERROR();
    if (why)
        snprintf(buf, cap, "%s", why);
    else if (e)
        snprintf(buf, cap, "OpenSSL error %lx", e);
    else if (err)
        snprintf(buf, cap, "%s", strerror(err));
    else
        snprintf(buf, cap, "closed");
    while (bufferevent_get_openssl_error(bev) != 0)
        ;   /* the rest of the queue: one line says enough */
    return buf;
}
