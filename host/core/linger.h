/* linger.h - closing a socket whose peer may still be sending ("lingering
 * close", as Apache and nginx do it).
 *
 * close(2) on a TCP socket with unread input sends RST instead of FIN, and
 * an RST may make the peer's kernel or client library drop what we sent
 * last: a close frame with 1009 after an oversized message arrives as
 * "connection reset" (1006), an HTTP 4xx answer as a reset. So the server
 * half-closes (shutdown SHUT_WR: our FIN follows our last bytes), reads and
 * discards what still arrives until the peer's FIN, then closes.
 *
 * Bounds: a socket lingers at most NF_LINGER_MS and discards at most
 * NF_LINGER_MAX_BYTES; at most NF_LINGER_MAX_SOCKETS linger at once (past
 * that, a socket is closed at once, as without lingering). The set owns the
 * descriptors handed to it and closes every one when freed. */
#ifndef NF_LINGER_H
#define NF_LINGER_H

#include <event2/util.h>

#define NF_LINGER_MS 2000
#define NF_LINGER_MAX_BYTES (4u << 20)
#define NF_LINGER_MAX_SOCKETS 1024

struct event_base;
typedef struct nf_linger nf_linger;

/* A set of lingering sockets on base. NULL when out of memory. */
nf_linger *nf_linger_new(struct event_base *base);

/* Closes every socket still lingering and frees the set. NULL is a no-op. */
void nf_linger_free(nf_linger *l);

/* Takes fd (connected, non-blocking, our output already written): from now
 * on the set owns it and closes it by the rules above. Never fails: when the
 * set is full or out of memory, fd is closed at once. */
void nf_linger_close(nf_linger *l, evutil_socket_t fd);

/* Sockets lingering now (a gauge for /metrics). */
unsigned nf_linger_count(const nf_linger *l);

#endif
