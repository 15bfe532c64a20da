/* nf_url.h - ws:// URLs for the client: parsed and resolved once, so that
 * dialling ten thousand connections does not resolve ten thousand times. */
#ifndef NF_URL_H
#define NF_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define NF_URL_HOST_MAX 256
#define NF_URL_PATH_MAX 1024

typedef struct nf_url {
    char host[NF_URL_HOST_MAX];   /* as written, without brackets: used in Host: */
    char hostport[NF_URL_HOST_MAX + 8];  /* the Host: header value */
    char path[NF_URL_PATH_MAX];   /* path and query, at least "/" */
    unsigned short port;
    struct sockaddr_storage addr; /* resolved address */
    socklen_t addrlen;
} nf_url;

/* Parses "ws://host[:port][/path]" and resolves host. Returns 0, or -1 with
 * a reason in err. Only ws:// is supported: the client speaks no TLS. */
int nf_url_parse(const char *url, nf_url *out, char *err, size_t errlen);

/* True when the resolved address is 127.0.0.0/8 or ::1 (or ::ffff:127.x). */
bool nf_url_is_loopback(const nf_url *u);

#endif
