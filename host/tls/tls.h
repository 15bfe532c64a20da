/* tls.h - the server's TLS (OpenSSL): a certificate that can be replaced
 * while it serves, and the transport of one TLS connection.
 *
 * A TLS connection is a libevent OpenSSL bufferevent (bufferevent_ssl.h) on
 * the accepted socket until the WebSocket upgrade: libevent runs the
 * handshake and decrypts the HTTP request into the bufferevent's input.
 * Writing is never the bufferevent's: the connection's transport
 * (nf_tls_sock_init, the sock.h seam) writes through SSL_write, in the HTTP
 * phase and after, like a plain connection's writev: everything a loop
 * iteration queued leaves in the same iteration, without an epoll_ctl per
 * flush. After the upgrade the bufferevent is disabled and the WebSocket
 * reads through the transport too (SSL_read into its one input buffer,
 * after what the bufferevent had already decrypted); the bufferevent only
 * keeps owning the SSL and the socket, freed with it.
 *
 * The certificate: nf_tls_reload builds a new SSL_CTX from the files and,
 * only if that succeeds, makes it the one new connections get; connections
 * already open keep the context they started with (SSL_new holds a
 * reference), so a renewal drops nothing and a bad new file changes
 * nothing. nf_tls_watch reloads when the files change (inotify, host/base
 * watch.h: a certbot renewal, a Kubernetes secret update).
 *
 * Threads: one nf_tls may serve several event loops (--workers N):
 * nf_tls_accept, nf_tls_reload and nf_tls_get_stats may run on any of them
 * at once; nf_tls_watch's reloads run on the loop given to it.
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
struct nf_sock;

typedef struct nf_tls nf_tls;

/* The lowest protocol version offered (--tls-min-version). */
typedef enum nf_tls_version { NF_TLS_1_2 = 0x0303, NF_TLS_1_3 = 0x0304 } nf_tls_version;

/* The most plaintext one SSL_write takes: one TLS record (RFC 8446 5.1). */
#define NF_TLS_RECORD_BYTES 16384

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

/* The transport (sock.h) of the TLS connection on bev (nf_tls_accept):
 * read: SSL_read until the buffer is full or the socket has nothing more;
 * writev: the extents in records of up to NF_TLS_RECORD_BYTES, small ones
 * copied into one record; after NF_EAGAIN OpenSSL keeps the record it made
 * and the caller must offer the same bytes again, at least as many (the
 * seam's rule: it drains only what was written); pending: bytes of a
 * record OpenSSL decrypted and the last read had no room for, which epoll
 * does not see (half a record read is not pending: its rest wakes epoll). The
 * bufferevent must no longer read or write once this is used for reading
 * (disable EV_READ and EV_WRITE): both would move the SSL. s stays valid
 * as long as bev. */
void nf_tls_sock_init(struct nf_sock *s, struct bufferevent *bev);

/* Sends close_notify once, without waiting for the socket or the peer's
 * (best effort: a full socket drops it). Only once the handshake is done
 * and the connection had no fatal error (then OpenSSL must not be asked). */
void nf_tls_close_notify(struct bufferevent *bev);

/* Why a TLS bufferevent reported BEV_EVENT_ERROR, for a log line: OpenSSL's
 * reason ("wrong version number", "no shared cipher", ...), the socket's
 * errno, or "closed". Writes into buf, returns buf. */
const char *nf_tls_error(struct bufferevent *bev, char *buf, size_t cap);

#endif
