/* nf_target.h - where the C client dials: a ws:// URL parsed (by the
 * project's one URL parser, host/base/url.h) and resolved once, so that dialling
 * ten thousand connections does not resolve ten thousand times.
 *
 * Owns nothing: an nf_target is a plain value, copied or kept by the caller
 * and shared read-only by every client dialling it. */
#ifndef NF_TARGET_H
#define NF_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define NF_TARGET_HOST_MAX 256
#define NF_TARGET_PATH_MAX 2048

typedef struct nf_target {
    char host[NF_TARGET_HOST_MAX];          /* as written, without brackets */
    char hostport[NF_TARGET_HOST_MAX + 8];  /* the Host: header value */
    char path[NF_TARGET_PATH_MAX];          /* request target: "/path?query", at least "/" */
    unsigned short port;
    struct sockaddr_storage addr;           /* resolved address */
    socklen_t addrlen;
} nf_target;

/* Parses "ws://host[:port][/path][?query]" and resolves host (blocking
 * getaddrinfo: call it before the loop runs). Returns 0, or -1 with a
 * one-line reason in err. Only ws:// is supported: the client speaks no TLS. */
int nf_target_resolve(const char *url, nf_target *out, char *err, size_t errlen);

/* True when the resolved address is 127.0.0.0/8 or ::1 (or ::ffff:127.x). */
bool nf_target_is_loopback(const nf_target *t);

#endif
