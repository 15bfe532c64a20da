/* tls.c - see tls.h. */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "errors.h"
#include "log.h"
#include "watch.h"

/* TLS 1.2's ciphers: forward secrecy (ECDHE) and AEAD only, the server's
 * order (Mozilla's "intermediate" profile without DHE). TLS 1.3 has only
 * such suites; OpenSSL's default list of them is kept. */
#define TLS12_CIPHERS "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
                      "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
                      "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

struct nf_tls {
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
     * each otherwise). The write modes are nf_tls_write's (tls.h). */
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
    free(t);
}

int nf_tls_reload(nf_tls *t, char *err, size_t errcap)
{
    char why[512];
    SSL_CTX *ctx = build_ctx(t, why, sizeof why);
    if (ctx == NULL) {
        t->stats.reloads_failed++;
        nf_warn("tls: the new certificate was not loaded, the old one keeps serving: %s", why);
        if (err)
            snprintf(err, errcap, "%s", why);
        return NF_EINVAL;
    }
    SSL_CTX_free(t->ctx);   /* the connections made with it keep it until they close */
    t->ctx = ctx;
    t->stats.reloads_ok++;
    t->stats.not_after = leaf_not_after(ctx);
    time_t na = (time_t)t->stats.not_after;
    struct tm tm;
    char until[32] = "?";
    if (na && gmtime_r(&na, &tm))
        strftime(until, sizeof until, "%Y-%m-%dT%H:%M:%SZ", &tm);
    nf_info("tls: certificate reloaded from %s (valid until %s)", t->cert_file, until);
    return 0;
}

void nf_tls_get_stats(const nf_tls *t, nf_tls_stats *out) { *out = t->stats; }

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
    SSL *ssl = SSL_new(t->ctx);
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

int nf_tls_write(struct bufferevent *bev)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    struct evbuffer *out = bufferevent_get_output(bev);
    size_t written = 0;
    int rc = 0;
    /* Unlike a socket bufferevent, an OpenSSL one does not freeze the front
     * of its output (its own writes drain it unfrozen): nothing to undo. */
    while (written < NF_TLS_WRITE_MAX_BYTES) {
        size_t len = evbuffer_get_length(out);
        if (len == 0)
            break;
        if (len > NF_TLS_RECORD_BYTES)
            len = NF_TLS_RECORD_BYTES;
        /* One record from contiguous bytes: the queued frames (many small
         * chunks, shared broadcast frames) leave in one SSL_write, not one
         * record and one send() per chunk. Being the front chunk, these bytes
         * are also where libevent's own SSL_write, after EV_WRITE, retries a
         * write the socket refused (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER: the
         * same bytes, at least as many). */
        unsigned char *p = evbuffer_pullup(out, (ev_ssize_t)len);
        if (p == NULL) {
            rc = NF_ENOMEM;
            break;
        }
        ERR_clear_error();
        int n = SSL_write(ssl, p, (int)len);
        if (n <= 0) {
            int e = SSL_get_error(ssl, n);
            rc = e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? NF_EAGAIN : NF_EPIPE;
            ERR_clear_error();
            break;
        }
        if (evbuffer_drain(out, (size_t)n) != 0) {
            rc = NF_EIO;   /* cannot happen unfrozen: the bytes would go out twice */
            break;
        }
        written += (size_t)n;
    }
    return rc;
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
