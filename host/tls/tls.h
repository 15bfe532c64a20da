/* tls.h - the server's TLS (OpenSSL): a certificate that can be replaced
 * while it serves, and the transport of one TLS connection.
 *
 * A TLS connection is a libevent OpenSSL bufferevent (bufferevent_ssl.h) on
 * the accepted socket: libevent runs the handshake and decrypts what it
 * reads into the bufferevent's input, so the HTTP and WebSocket layers read
 * plaintext from it as they do from a plain socket. Writing is ours
 * (nf_tls_write), like a plain socket's: everything a loop iteration queued
 * leaves from the output evbuffer in one SSL_write per record (16 KiB), in
 * the same iteration, without an epoll_ctl per flush; only what the socket
 * refused is left to libevent (EV_WRITE), as for a plain socket.
 *
 * The certificate: nf_tls_reload builds a new SSL_CTX from the files and,
 * only if that succeeds, makes it the one new connections get; connections
 * already open keep the context they started with (SSL_new holds a
 * reference), so a renewal drops nothing and a bad new file changes
 * nothing. nf_tls_watch reloads when the files change (inotify, host/base
 * watch.h: a certbot renewal, a Kubernetes secret update).
 *
 * Errors: 0 or a negative NF_E* code (errors.h); err/errcap get a line for
 * the operator where given. */
#ifndef NF_TLS_H
#define NF_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bufferevent;
struct event_base;

typedef struct nf_tls nf_tls;

/* The lowest protocol version offered (--tls-min-version). */
typedef enum nf_tls_version { NF_TLS_1_2 = 0x0303, NF_TLS_1_3 = 0x0304 } nf_tls_version;

/* The most plaintext one SSL_write takes: one TLS record (RFC 8446 5.1). */
#define NF_TLS_RECORD_BYTES 16384

/* How much nf_tls_write writes in one call (four records) before it leaves
 * the rest to libevent's EV_WRITE: a loop iteration is not held by one
 * connection's large output (a static file). */
#define NF_TLS_WRITE_MAX_BYTES (4 * NF_TLS_RECORD_BYTES)

/* After a change of the files, the reload waits this long for the burst of
 * writes to end (a renewal writes the chain and the key one after the other). */
#define NF_TLS_WATCH_DEBOUNCE_MS 200

typedef struct nf_tls_stats {
    uint64_t reloads_ok;             /* nf_tls_reload that put a new certificate in use */
    uint64_t reloads_failed;         /* ... that failed: the old one kept serving */
    int64_t not_after;               /* the serving leaf certificate's expiry, Unix seconds (0: unknown) */
} nf_tls_stats;

/* Parses "1.2" / "1.3". Returns the version, or NF_EINVAL. */
int nf_tls_parse_version(const char *s);

/* Loads the certificate chain (PEM: the leaf first, then intermediates) and
 * the private key (PEM; key_file NULL: it is in cert_file) and checks that
 * they match. TLS min_version..1.3, forward-secret AEAD ciphers only (TLS
 * 1.2: ECDHE with AES-GCM or ChaCha20-Poly1305; TLS 1.3: OpenSSL's
 * defaults), no renegotiation, no compression. Returns 0 and *out, or
 * NF_EINVAL (a file unreadable or not a matching PEM certificate and key:
 * err says which and why), NF_ENOMEM. */
int nf_tls_new(const char *cert_file, const char *key_file, nf_tls_version min_version, nf_tls **out,
               char *err, size_t errcap);
void nf_tls_free(nf_tls *t);

/* Reads the files again. Returns 0 when the new certificate serves the
 * connections accepted from now on, or NF_EINVAL (err says why) when the
 * old one stays: both are logged and counted (nf_tls_stats). */
int nf_tls_reload(nf_tls *t, char *err, size_t errcap);

/* Reloads whenever the certificate or key file changes (debounced,
 * NF_TLS_WATCH_DEBOUNCE_MS), for as long as t lives. Returns 0, or a
 * negative errno value when inotify cannot watch them (then SIGHUP still
 * reloads). */
int nf_tls_watch(nf_tls *t, struct event_base *base);

void nf_tls_get_stats(const nf_tls *t, nf_tls_stats *out);

/* A bufferevent that serves TLS on the accepted, non-blocking socket fd
 * (the server side: the handshake starts with the first read). The
 * bufferevent owns fd and its SSL (freed with bufferevent_free). It reports
 * BEV_EVENT_CONNECTED once the handshake is complete, BEV_EVENT_ERROR if it
 * fails (nf_tls_error says why). NULL when out of memory (fd stays open). */
struct bufferevent *nf_tls_accept(nf_tls *t, struct event_base *base, int fd);

/* The write seam of a TLS connection: writes what bev's output holds, in
 * records of up to NF_TLS_RECORD_BYTES, at most NF_TLS_WRITE_MAX_BYTES.
 * Returns 0 (the output is empty, or what is left is for EV_WRITE),
 * NF_EAGAIN when the socket took no more (what is left must be written by
 * the bufferevent: enable EV_WRITE; SSL_write's retry finds the same bytes
 * at the front of the output), NF_EPIPE when the connection cannot write
 * any more (reset, TLS error). The retry is libevent's: its first SSL_write
 * takes the whole front chunk, which the pullup made at least as long as
 * the refused record's plaintext, as OpenSSL requires (its single write is
 * at most 16 KiB by default, = NF_TLS_RECORD_BYTES: keep them so). */
int nf_tls_write(struct bufferevent *bev);

/* Why a TLS bufferevent reported BEV_EVENT_ERROR, for a log line: OpenSSL's
 * reason ("wrong version number", "no shared cipher", ...), the socket's
 * errno, or "closed". Writes into buf, returns buf. */
const char *nf_tls_error(struct bufferevent *bev, char *buf, size_t cap);

#endif
